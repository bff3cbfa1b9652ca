"""Small, general X.509 helpers: loading trust anchors, path validation and OCSP.

Certificate-based providers (Web eID, Mobiilivarmenne, ...) share these pieces. They
are pure functions over :mod:`cryptography` objects: no I/O, no clock of their own
(the caller passes ``at``), and every failure is an :mod:`authbroker.errors` class
with a stable ``code``, never a library exception.

:func:`verify_chain` is the project's one certificate path validator. The path itself
is validated by :mod:`cryptography.x509.verification` (the pyca RFC 5280 verifier:
name chaining, signatures, validity at the pinned time, basicConstraints cA,
pathLenConstraint, keyCertSign, refusal of unprocessed critical extensions, an
algorithm floor, loops, depth), with RFC 5280 extension profiles instead of its CA/B
Forum Web PKI defaults, which national eID certificates do not follow. Written here
are only what it cannot do, each with a comment saying why: the leaf checks whose
distinct error codes callers rely on (and the leaf's key, which it does not check),
and the first link, leaf to issuing CA, which is searched here for every leaf and
verified here when the library cannot verify it: the Finnish DVV/VRK ID-card
certificates (public Web eID test vectors in ``tests/data/web-eid``) are not valid
DER (one carries an explicit NULL in its ecdsa-with-SHA384 AlgorithmIdentifier,
the other encodes basicConstraints "cA FALSE"), :func:`parse_der_certificate`
re-encodes them, but the CA signed the *original* bytes and the verifier checks
signatures over the loaded encoding only ("candidates exhausted: signature does not
match"); :func:`is_issued_by` verifies them over the bytes actually signed. The
verifier then validates the path from the issuing CA up. End-entity checks (key
usage, extended key usage, certificate policies) belong to the caller, which knows
its scheme. docs/security-model.md, "Certificate path validation", lists which
check is made where and how the result differs from the verifier's defaults.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp, verification
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    SignatureAlgorithmOID,
)

from .errors import ConfigError, InvalidInput, ProviderUnavailable, UntrustedCertificate

__all__ = [
    "ESTEID_CERTIFICATES_PREFIX",
    "OcspResult",
    "build_ocsp_request",
    "check_validity",
    "find_file",
    "is_issued_by",
    "load_certificate_sources",
    "load_certificates",
    "ocsp_urls",
    "parse_der_certificate",
    "verify_chain",
    "verify_ocsp_response",
]

#: Most CA certificates (intermediates and the anchor) above a leaf; eID PKIs use 1-2.
MAX_CHAIN_DEPTH = 6
#: Most issuer signatures checked to find one path: bounds the work a token with
#: many (untrusted) intermediates can cause.
MAX_SIGNATURE_CHECKS = 32
#: Smallest RSA modulus accepted for any key on a path.
MIN_RSA_BITS = 2048
#: A configuration value ``"esteid-certificates:<name>"`` names an Estonian CA
#: certificate shipped by the ``esteid-certificates`` package (ISC licence,
#: https://github.com/thorgate/esteid-certificates), which follows the issuers'
#: repositories (SK ID Solutions, Zetes): its copy is kept current instead of ours.
ESTEID_CERTIFICATES_PREFIX = "esteid-certificates:"


# --- loading ---------------------------------------------------------------------------


def load_certificates(data: bytes | str) -> list[x509.Certificate]:
    """All certificates of a PEM bundle, or the single certificate of a DER blob."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        if b"-----BEGIN" in raw:
            certs = x509.load_pem_x509_certificates(raw)
        else:
            certs = [x509.load_der_x509_certificate(raw)]
    except ValueError as exc:
        raise InvalidInput("not a certificate", code="cert_decode") from exc
    return certs


def load_certificate_sources(
    sources: Iterable[object], *, base_dirs: Sequence[Path] = (), key: str = "certificates"
) -> list[x509.Certificate]:
    """Certificates from configuration values: inline PEM text, file paths, or
    ``esteid-certificates:<name>`` references (see :data:`ESTEID_CERTIFICATES_PREFIX`).

    A relative path is looked up in ``base_dirs`` in order (the shipped profile
    folder first), then relative to the working directory. Problems raise
    :class:`ConfigError` naming ``key``.
    """
    out: list[x509.Certificate] = []
    for item in sources:
        if isinstance(item, x509.Certificate):
            out.append(item)
            continue
        if not isinstance(item, str) or not item.strip():
            raise ConfigError("must be a PEM text or a certificate file path", key=key)
        if item.startswith(ESTEID_CERTIFICATES_PREFIX):
            out.extend(_esteid_certificate(item[len(ESTEID_CERTIFICATES_PREFIX) :], key))
            continue
        if "-----BEGIN" in item:
            try:
                out.extend(load_certificates(item))
            except InvalidInput:
                raise ConfigError("contains an unreadable PEM certificate", key=key) from None
            continue
        found = find_file(item, base_dirs)
        if found is None:
            raise ConfigError(f"certificate file not found: {item}", key=key)
        try:
            out.extend(load_certificates(found.read_bytes()))
        except InvalidInput:
            raise ConfigError(f"certificate file {found.name} is unreadable", key=key) from None
    return out


def find_file(item: str, base_dirs: Sequence[Path] = ()) -> Path | None:
    """``item`` if absolute, else the first ``base_dirs / item``, else ``item``
    relative to the working directory; None when no such file exists."""
    path = Path(item)
    candidates = [path] if path.is_absolute() else [d / path for d in base_dirs] + [path]
    return next((p for p in candidates if p.is_file()), None)


def _esteid_certificate(name: str, key: str) -> list[x509.Certificate]:
    """The CA certificate ``name`` (e.g. ``ESTEID2025``, ``Test ESTEID2025``) from
    the ``esteid-certificates`` package; only the issuing CAs it registers by name."""
    import esteid_certificates

    try:
        data = esteid_certificates.get_certificate(name)
    except esteid_certificates.UnknownCertificateError:
        raise ConfigError(
            f"esteid-certificates has no certificate named {name!r}", key=key
        ) from None
    try:
        return load_certificates(data)
    except InvalidInput:
        raise ConfigError(f"esteid-certificates: {name!r} is unreadable", key=key) from None


def parse_der_certificate(der: bytes, *, lenient: bool = True) -> x509.Certificate:
    """Parse untrusted DER (from a token); malformed input is :class:`InvalidInput`.

    With ``lenient`` (the default), two encoding slips that real national eID cards
    carry and that strict DER parsers refuse are repaired (see :func:`_normalize`);
    the issuer's signature is then still verified over the *original* bytes, so
    the repair cannot be abused to alter a certificate.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        _ = cert.extensions, cert.subject, cert.issuer
        return cert
    except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        if not lenient:
            raise InvalidInput("certificate cannot be decoded", code="cert_decode") from exc
        error = exc
    fixed = _normalize(der)
    if fixed is None:
        raise InvalidInput("certificate cannot be decoded", code="cert_decode") from error
    normalized, original_tbs = fixed
    try:
        cert = x509.load_der_x509_certificate(normalized)
        _ = cert.extensions, cert.subject, cert.issuer
    except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        raise InvalidInput("certificate cannot be decoded", code="cert_decode") from exc
    with _ORIGINAL_TBS_LOCK:
        while len(_ORIGINAL_TBS) >= _ORIGINAL_TBS_MAX:
            _ORIGINAL_TBS.pop(next(iter(_ORIGINAL_TBS)))
        _ORIGINAL_TBS[cert.fingerprint(hashes.SHA256())] = original_tbs
    return cert


# Certificates repaired by _normalize: fingerprint of the repaired DER -> the signed
# (original) tbsCertificate bytes. Public data; bounded.
_ORIGINAL_TBS: dict[bytes, bytes] = {}
_ORIGINAL_TBS_MAX = 1024
_ORIGINAL_TBS_LOCK = threading.Lock()

_ECDSA_SIG_OID_PREFIX = bytes.fromhex("06082a8648ce3d0403")  # ecdsa-with-SHA2 family
_BASIC_CONSTRAINTS_OID = bytes.fromhex("0603551d13")
_FALSE_DEFAULT = bytes.fromhex("010100")


def _tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``."""
    if pos + 2 > end:
        raise ValueError("truncated")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte tags are not expected here")
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if not 1 <= n <= 3 or pos + n > end:
            raise ValueError("bad length")
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    if pos + length > end:
        raise ValueError("truncated")
    return tag, pos, pos + length


def _children(buf: bytes, start: int, end: int) -> list[bytes]:
    out: list[bytes] = []
    pos = start
    while pos < end:
        _, _, cend = _tlv(buf, pos, end)
        out.append(buf[pos:cend])
        pos = cend
    return out


def _encode(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _fix_algid(element: bytes) -> bytes:
    # ecdsa-with-SHA* AlgorithmIdentifier must omit parameters (RFC 5758 3.2); some
    # card CAs (Finnish DVV test CA) encode an explicit NULL.
    tag, s, e = _tlv(element, 0, len(element))
    kids = _children(element, s, e)
    if (
        tag == 0x30
        and len(kids) == 2
        and kids[0].startswith(_ECDSA_SIG_OID_PREFIX)
        and kids[1] == b"\x05\x00"
    ):
        return _encode(0x30, kids[0])
    return element


def _fix_extension(element: bytes) -> bytes:
    # DER forbids encoding DEFAULT values (X.690 11.5): "critical FALSE" and the
    # basicConstraints "cA FALSE" seen on Finnish ID cards are dropped.
    _, s, e = _tlv(element, 0, len(element))
    kids = _children(element, s, e)
    kids = [k for i, k in enumerate(kids) if not (i == 1 and k == _FALSE_DEFAULT)]
    if kids and kids[0] == _BASIC_CONSTRAINTS_OID and kids[-1][0] == 0x04:
        _, vs, ve = _tlv(kids[-1], 0, len(kids[-1]))
        value = kids[-1][vs:ve]
        _, bs, be = _tlv(value, 0, len(value))
        inner = [k for k in _children(value, bs, be) if k != _FALSE_DEFAULT]
        kids[-1] = _encode(0x04, _encode(0x30, b"".join(inner)))
    return _encode(0x30, b"".join(kids))


def _normalize(der: bytes) -> tuple[bytes, bytes] | None:
    """Re-encode the DER-rule slips above; (repaired DER, original tbs) or None."""
    try:
        tag, s, e = _tlv(der, 0, len(der))
        if tag != 0x30 or e != len(der):
            return None
        tbs, algid, signature = _children(der, s, e)
        ttag, ts, te = _tlv(tbs, 0, len(tbs))
        if ttag != 0x30:
            return None
        parts = _children(tbs, ts, te)
        new_parts: list[bytes] = []
        for i, part in enumerate(parts):
            sig_index = 2 if parts[0][0] == 0xA0 else 1
            if i == sig_index:
                new_parts.append(_fix_algid(part))
            elif part[0] == 0xA3:
                _, xs, xe = _tlv(part, 0, len(part))
                seq = _children(part, xs, xe)[0]
                _, qs, qe = _tlv(seq, 0, len(seq))
                exts = [_fix_extension(x) for x in _children(seq, qs, qe)]
                new_parts.append(_encode(0xA3, _encode(0x30, b"".join(exts))))
            else:
                new_parts.append(part)
        new_tbs = _encode(0x30, b"".join(new_parts))
        fixed = _encode(0x30, new_tbs + _fix_algid(algid) + signature)
    except (ValueError, IndexError):
        return None
    if fixed == der:
        return None
    return fixed, tbs


# --- validity and path ----------------------------------------------------------------


def check_validity(cert: x509.Certificate, at: datetime, *, what: str = "certificate") -> None:
    """Reject ``cert`` outside its validity period at ``at`` (timezone-aware)."""
    if at < cert.not_valid_before_utc:
        raise UntrustedCertificate(f"{what} is not yet valid", code="cert_not_yet_valid")
    if at > cert.not_valid_after_utc:
        raise UntrustedCertificate(f"{what} has expired", code="cert_expired")


def is_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name matches and its key verifies ``cert``'s signature."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, UnsupportedAlgorithm, _CryptoInvalidSignature):
        original = _original_tbs(cert)
        if original is None or cert.issuer != issuer.subject:
            return False
        # A repaired certificate: the CA signed the original encoding.
        try:
            key = issuer.public_key()
        except (ValueError, UnsupportedAlgorithm):
            return False
        return _verify_signature(key, cert.signature, original, cert.signature_hash_algorithm)
    return True


def _original_tbs(cert: x509.Certificate) -> bytes | None:
    """The signed tbsCertificate of a certificate :func:`parse_der_certificate` repaired."""
    with _ORIGINAL_TBS_LOCK:
        return _ORIGINAL_TBS.get(cert.fingerprint(hashes.SHA256()))


_SIGNATURE_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_EDDSA_SIGNATURES = (SignatureAlgorithmOID.ED25519, SignatureAlgorithmOID.ED448)
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
# Extensions that may be marked critical on a path certificate: processed by the
# verifier (basicConstraints, keyUsage), by the caller's end-entity checks (extended
# key usage, certificate policies), or informational. A critical extension outside
# this set (nameConstraints, policyConstraints, policyMappings, inhibitAnyPolicy,
# unknown) makes the certificate unusable (RFC 5280 4.2). The same set builds the
# verifier's extension policies below, so the leaf pre-check and the path agree.
_CRITICAL_UNDERSTOOD_TYPES: tuple[type[x509.ExtensionType], ...] = (
    x509.BasicConstraints,
    x509.KeyUsage,
    x509.ExtendedKeyUsage,
    x509.CertificatePolicies,
    x509.SubjectKeyIdentifier,
    x509.AuthorityKeyIdentifier,
    x509.SubjectAlternativeName,
    x509.IssuerAlternativeName,
    x509.AuthorityInformationAccess,
    x509.SubjectInformationAccess,
    x509.CRLDistributionPoints,
)
_CRITICAL_UNDERSTOOD = frozenset(t.oid for t in _CRITICAL_UNDERSTOOD_TYPES)


def _critical_understood(cert: x509.Certificate) -> bool:
    return all(not e.critical or e.oid in _CRITICAL_UNDERSTOOD for e in cert.extensions)


def _signature_acceptable(cert: x509.Certificate) -> bool:
    """The issuer signed ``cert`` with SHA-2 (RSA, RSA-PSS, ECDSA) or EdDSA."""
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return False
    if algorithm is None:
        return cert.signature_algorithm_oid in _EDDSA_SIGNATURES
    return isinstance(algorithm, _SIGNATURE_HASHES)


def _key_acceptable(cert: x509.Certificate) -> bool:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return False
    if isinstance(key, rsa.RSAPublicKey):
        return key.key_size >= MIN_RSA_BITS
    if isinstance(key, ec.EllipticCurvePublicKey):
        return isinstance(key.curve, _CURVES)
    return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)


# --- the path: cryptography.x509.verification ---------------------------------------
# Its default extension profiles are the CA/B Forum Web PKI ones, which national eID
# certificates do not follow (Belgian cards carry no subjectAltName, the Estonian
# ESTEID2018 CA a critical EKU): these are RFC 5280's (docs/security-model.md).


def _must_be_ca(_: verification.Policy, c: x509.Certificate, bc: x509.BasicConstraints) -> None:
    # The verifier checks cA itself on issuers, but not on the issuing CA it gets
    # as its leaf from _build_path.
    if not bc.ca:
        raise ValueError("basicConstraints cA is not asserted")


def _key_cert_sign(_: verification.Policy, c: x509.Certificate, ku: x509.KeyUsage | None) -> None:
    # RFC 5280 4.2.1.3: a CA key usage asserts keyCertSign (the verifier's Web PKI
    # profile requires it, permit_all does not check it).
    if ku is not None and not ku.key_cert_sign:
        raise ValueError("keyUsage lacks keyCertSign")


def _extension_policy(*, ca: bool) -> verification.ExtensionPolicy:
    agnostic = verification.Criticality.AGNOSTIC
    policy = verification.ExtensionPolicy.permit_all()
    for kind in _CRITICAL_UNDERSTOOD_TYPES:
        if ca and kind is x509.BasicConstraints:
            policy = policy.require_present(kind, agnostic, _must_be_ca)
        else:
            check = _key_cert_sign if ca and kind is x509.KeyUsage else None
            policy = policy.may_be_present(kind, agnostic, check)  # type: ignore[arg-type]
    # The verifier matches name constraints against DNS, IP and e-mail names only,
    # never directoryName (the subject DNs eID certificates name people by): a
    # critical nameConstraints cannot be honoured, so it is refused.
    return policy.may_be_present(x509.NameConstraints, verification.Criticality.NON_CRITICAL, None)


_CA_POLICY = _extension_policy(ca=True)
_EE_POLICY = _extension_policy(ca=False)


def _verified_path(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
    depth: int,
    leaf_policy: verification.ExtensionPolicy,
) -> list[x509.Certificate] | None:
    """The verifier's path ``[leaf, ..., anchor]`` with at most ``depth`` CAs
    between them, or None."""
    if depth < 0:
        return None
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(list(anchors)))
        .time(at)
        .max_chain_depth(min(depth, 255))
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=leaf_policy)
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(leaf, list(intermediates)).chain)
    except (verification.VerificationError, x509.UnsupportedGeneralNameType):
        return None  # the latter: a valid path, a leaf SAN type it cannot return


def _build_path(
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
    max_depth: int,
) -> list[x509.Certificate] | None:
    """Find the issuing CA of ``cert`` here, then have the verifier validate the path.

    The verifier checks signatures over a certificate's own encoding only, so it
    rejects every certificate :func:`parse_der_certificate` repaired (Finnish
    cards: "signature does not match"), and it refuses EdDSA: :func:`is_issued_by`
    checks this first link. Searching it here for every leaf also bounds the work
    decoy issuers in a token cause (:data:`MAX_SIGNATURE_CHECKS`). If the verifier
    can check the leaf's signature, it validates the whole path, this link again;
    otherwise the path from the issuing CA up, which it sees as its leaf: it does
    not check that one's key and counts path lengths one lower, so both are done here.
    """
    der = serialization.Encoding.DER
    anchor_ders = {a.public_bytes(der) for a in anchors}
    pool = {c.public_bytes(der): c for c in [*anchors, *intermediates] if c != cert}
    others = [c for c in pool.values() if c.subject != cert.issuer and c not in anchors]
    candidates = [c for c in pool.values() if c.subject == cert.issuer]
    whole = _original_tbs(cert) is None and cert.signature_algorithm_oid not in _EDDSA_SIGNATURES
    for candidate in candidates[:MAX_SIGNATURE_CHECKS]:
        if not is_issued_by(cert, candidate):
            continue
        trusted = candidate.public_bytes(der) in anchor_ders
        if whole:
            stones = others if trusted else [candidate, *others]
            path = _verified_path(cert, stones, anchors, at, max_depth - 1, _EE_POLICY)
        else:
            depth = 0 if trusted else max_depth - 2
            above = _verified_path(candidate, others, anchors, at, depth, _CA_POLICY)
            ok = above is not None and _key_acceptable(candidate) and _path_lengths_ok(above)
            path = [cert, *above] if above is not None and ok else None
        if path is not None and len(path) - 1 <= max_depth:
            return path
    return None


def _path_lengths_ok(issuers: Sequence[x509.Certificate]) -> bool:
    """Each CA's pathLenConstraint over the CAs between it and the leaf below
    ``issuers[0]`` (RFC 5280 6.1.4 (m))."""
    for below, ca in enumerate(issuers):
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.path_length is not None and below > bc.path_length:
            return False
    return True


def verify_chain(
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
    *,
    max_depth: int = MAX_CHAIN_DEPTH,
) -> list[x509.Certificate]:
    """Build and check a path ``[cert, ..., anchor]``; return it.

    Anchors are trusted as configured (typically the *issuing* CAs of a national
    eID scheme, not roots); their own signature is not checked, and an unrelated
    expired one does not matter. Untrusted ``intermediates`` (from a token) never
    end a path; at most ``max_depth`` CAs (anchor included) sit above the leaf.
    The leaf is checked first, here, because the verifier reports only "no path"
    and callers need the codes (and it does not check a leaf's key): validity
    (``cert_not_yet_valid`` / ``cert_expired``), critical extensions
    (``cert_critical_extension``), algorithms (``cert_algorithm``). No path:
    ``untrusted_issuer``; an undecodable extension on the way: ``chain``.
    """
    if not anchors:
        raise UntrustedCertificate("no trust anchors configured", code="no_trust_anchors")
    check_validity(cert, at, what="user certificate")
    try:
        if not _critical_understood(cert):
            raise UntrustedCertificate(
                "user certificate has an unsupported critical extension",
                code="cert_critical_extension",
            )
        if not _key_acceptable(cert) or not _signature_acceptable(cert):
            raise UntrustedCertificate(
                "user certificate uses a weak or unsupported algorithm", code="cert_algorithm"
            )
        path = _build_path(cert, intermediates, anchors, at, max_depth)
    except (ValueError, x509.DuplicateExtension) as exc:
        raise UntrustedCertificate("certificate chain cannot be parsed", code="chain") from exc
    if path is None:
        raise UntrustedCertificate(
            "certificate is not issued by a trusted certification authority",
            code="untrusted_issuer",
        )
    return path


# --- OCSP (RFC 6960) -------------------------------------------------------------------


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """The OCSP responder URLs of the certificate's AIA extension (RFC 5280 4.2.2.1)."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and d.access_location.value.lower().startswith(("http://", "https://"))
    ]


def build_ocsp_request(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    nonce: bytes | None,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    """A DER OCSPRequest for one certificate; CertID with SHA-1 by default, which
    every responder supports (RFC 6960 4.1.1, Web eID validator practice)."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        cert,
        issuer,
        algorithm or hashes.SHA1(),  # noqa: S303 - CertID hash, not a signature
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True, slots=True)
class OcspResult:
    """A verified OCSP answer about one certificate."""

    status: str  # "good", "revoked" or "unknown"
    this_update: datetime
    next_update: datetime | None = None
    revocation_time: datetime | None = None
    revocation_reason: str | None = None
    responder: str = ""


def _ocsp_bad(message: str, code: str) -> UntrustedCertificate:
    return UntrustedCertificate(f"OCSP response rejected: {message}", code=code)


def _key_hash(cert: x509.Certificate) -> bytes:
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _verify_signature(
    key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (_CryptoInvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _responder_matches(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    return response.responder_key_hash == _key_hash(cert)


def _has_ocsp_signing(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in eku


def verify_ocsp_response(
    der: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    at: datetime,
    nonce: bytes | None,
    designated_responder: x509.Certificate | None = None,
    max_skew: timedelta = timedelta(minutes=15),
    max_age: timedelta = timedelta(minutes=2),
) -> OcspResult:
    """Verify an OCSP response about ``cert`` (issued by ``issuer``) and return it.

    Checks, in order (RFC 6960 4.2.2, 3.2, 4.4.1): the response parses and is
    ``successful`` (``tryLater``/``internalError`` -> :class:`ProviderUnavailable`);
    exactly one SingleResponse whose CertID matches ``cert``; the responder is
    authorized (the ``designated_responder`` if given, byte for byte; otherwise the
    issuing CA itself or a certificate it issued with id-kp-OCSPSigning, valid at
    ``at``) and its signature verifies; ``thisUpdate`` is not later than
    ``at + max_skew`` nor older than ``at - max_age``, and ``nextUpdate`` (if any) not
    before ``at - max_skew``. A ``revoked``/``unknown`` answer is returned at that
    point (refusing is always safe); a ``good`` answer must also echo ``nonce``
    (when one was sent) or it could be a replay.

    Raises :class:`UntrustedCertificate` (codes ``ocsp_*``) for anything forged,
    stale or inconsistent.
    """
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        raise _ocsp_bad("malformed", "ocsp_malformed") from exc
    status = response.response_status
    if status in (ocsp.OCSPResponseStatus.TRY_LATER, ocsp.OCSPResponseStatus.INTERNAL_ERROR):
        raise ProviderUnavailable(
            "OCSP responder is temporarily unable to answer", code="ocsp_busy"
        )
    if status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _ocsp_bad("responder refused the request", "ocsp_refused")
    try:
        singles = list(response.responses)
        if len(singles) != 1:
            raise _ocsp_bad("must contain exactly one response", "ocsp_response_count")
        single = singles[0]
        # CertID must be ours: same serial and the same issuer (name and key hash).
        expected = ocsp.load_der_ocsp_request(
            build_ocsp_request(cert, issuer, nonce=None, algorithm=single.hash_algorithm)
        )
        if (
            single.serial_number != cert.serial_number
            or single.issuer_name_hash != expected.issuer_name_hash
            or single.issuer_key_hash != expected.issuer_key_hash
        ):
            raise _ocsp_bad("certificate ID differs from the request", "ocsp_cert_id")

        responder = _find_responder(response, issuer, designated_responder)
        if responder is not issuer and not (
            responder.not_valid_before_utc <= at <= responder.not_valid_after_utc
        ):
            raise _ocsp_bad("responder certificate is not valid now", "ocsp_responder")
        if not _verify_signature(
            responder.public_key(),
            response.signature,
            response.tbs_response_bytes,
            response.signature_hash_algorithm,
        ):
            raise _ocsp_bad("signature is invalid", "ocsp_signature")

        this_update = single.this_update_utc
        next_update = single.next_update_utc
        if this_update > at + max_skew:
            raise _ocsp_bad("thisUpdate is in the future", "ocsp_stale")
        if this_update < at - max_age:
            raise _ocsp_bad("thisUpdate is too old", "ocsp_stale")
        if next_update is not None and next_update < at - max_skew:
            raise _ocsp_bad("nextUpdate is in the past", "ocsp_stale")

        cert_status = single.certificate_status
        responder_name = responder.subject.rfc4514_string()
        if cert_status == ocsp.OCSPCertStatus.REVOKED:
            reason = single.revocation_reason
            return OcspResult(
                "revoked",
                this_update,
                next_update,
                single.revocation_time_utc,
                reason.name if reason is not None else None,
                responder_name,
            )
        if cert_status == ocsp.OCSPCertStatus.UNKNOWN:
            return OcspResult("unknown", this_update, next_update, responder=responder_name)

        if nonce is not None:
            try:
                got = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            except x509.ExtensionNotFound:
                raise _ocsp_bad("nonce missing", "ocsp_nonce") from None
            if got != nonce:
                raise _ocsp_bad("nonce differs from the request", "ocsp_nonce")
        return OcspResult("good", this_update, next_update, responder=responder_name)
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        raise _ocsp_bad("malformed", "ocsp_malformed") from exc


def _find_responder(
    response: ocsp.OCSPResponse,
    issuer: x509.Certificate,
    designated: x509.Certificate | None,
) -> x509.Certificate:
    """The certificate that must have signed ``response`` (RFC 6960 4.2.2.2)."""
    if designated is not None:
        if not _responder_matches(response, designated):
            raise _ocsp_bad("not signed by the designated responder", "ocsp_responder")
        included = [c for c in response.certificates if _responder_matches(response, c)]
        if included and any(c != designated for c in included):
            raise _ocsp_bad("responder certificate is not the designated one", "ocsp_responder")
        return designated
    if _responder_matches(response, issuer):
        return issuer  # signed by the issuing CA itself
    for candidate in response.certificates:
        if not _responder_matches(response, candidate):
            continue
        if not is_issued_by(candidate, issuer) or not _has_ocsp_signing(candidate):
            raise _ocsp_bad("responder is not authorized by the issuing CA", "ocsp_responder")
        return candidate
    raise _ocsp_bad("responder certificate is missing", "ocsp_responder")
