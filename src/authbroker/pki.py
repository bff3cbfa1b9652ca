"""Small, general X.509 helpers: loading trust anchors, path validation and OCSP.

Certificate-based providers (Web eID, Mobiilivarmenne, ...) share these pieces. They
are pure functions over :mod:`cryptography` objects: no I/O, no clock of their own
(the caller passes ``at``), and every failure is an :mod:`authbroker.errors` class
with a stable ``code``, never a library exception.

:func:`verify_chain` is the project's one certificate path validator. It is a small
path builder for the short chains of national eID PKIs (user certificate -> issuing
CA configured as a trust anchor, optionally through intermediates) doing the RFC 5280
section 6.1 checks that matter there: issuer signatures, name chaining, validity of
every certificate on the path, basicConstraints cA / keyCertSign, pathLenConstraint,
refusal of critical extensions it does not process (nameConstraints, policy
constraints and mappings, unknown ones), and an algorithm floor (SHA-2 or EdDSA
signatures; RSA >= 2048 bits, NIST P-256/384/521 or EdDSA keys). It is not a full
policy-tree implementation: end-entity checks (key usage, extended key usage,
certificate policies) belong to the caller, which knows its scheme.

Why not :mod:`cryptography.x509.verification` (tried; it handles intermediate CAs as
anchors, unrelated expired anchors and the Estonian and Belgian Web eID vectors
well): it cannot validate the Finnish DVV/VRK ID-card certificates (public Web eID
test vectors in ``tests/data/web-eid``). Those are not valid DER; one carries an
explicit NULL in its ecdsa-with-SHA384 AlgorithmIdentifier (cryptography: "ParseError
ExtraData at TbsCertificate::signature_alg"), the other encodes basicConstraints
"cA FALSE" (ParseError "EncodedDefault"), so cryptography refuses to load them as
they are. :func:`parse_der_certificate` re-encodes them, but the CA's signature
covers the *original* tbsCertificate bytes, and cryptography's verifier checks
signatures over the loaded certificate's own encoding with no way to supply the
signed bytes: it rejects every repaired certificate ("candidates exhausted:
signature does not match"). Splitting the path between the two (hand-checked first
link, library for the rest) would mean two path validators again, so this module
keeps its own builder, and :func:`is_issued_by` verifies repaired certificates over
the bytes their issuer actually signed.
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
from cryptography.x509 import ocsp
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    ExtensionOID,
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
        with _ORIGINAL_TBS_LOCK:
            original = _ORIGINAL_TBS.get(cert.fingerprint(hashes.SHA256()))
        if original is None or cert.issuer != issuer.subject:
            return False
        # A repaired certificate: the CA signed the original encoding.
        try:
            key = issuer.public_key()
        except (ValueError, UnsupportedAlgorithm):
            return False
        return _verify_signature(key, cert.signature, original, cert.signature_hash_algorithm)
    return True


_SIGNATURE_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_EDDSA_SIGNATURES = (SignatureAlgorithmOID.ED25519, SignatureAlgorithmOID.ED448)
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
# Extensions that may be marked critical on a path certificate: processed here
# (basicConstraints, keyUsage), by the caller's end-entity checks (extended key usage,
# certificate policies), or informational. A critical extension outside this set
# (nameConstraints, policyConstraints, policyMappings, inhibitAnyPolicy, unknown)
# makes the certificate unusable (RFC 5280 4.2).
_CRITICAL_UNDERSTOOD = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
        ExtensionOID.SUBJECT_INFORMATION_ACCESS,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
    }
)


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


def _is_ca(cert: x509.Certificate) -> tuple[bool, int | None]:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False, None
    if not bc.ca:
        return False, None
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.key_cert_sign:
            return False, None
    except x509.ExtensionNotFound:
        pass
    return True, bc.path_length


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
    eID scheme, not roots); their own signature is not checked. The leaf's validity
    is checked first (codes ``cert_not_yet_valid`` / ``cert_expired``), then its
    critical extensions (``cert_critical_extension``) and algorithms
    (``cert_algorithm``). Only CA certificates actually on the path are checked: an
    expired, unrelated anchor in the configuration does not break validation. Every
    issuer on the path must be valid at ``at``, a CA (basicConstraints cA,
    keyCertSign when key usage is present), respect pathLenConstraint, carry no
    critical extension this module does not process, have an acceptable key, and
    its signature over the certificate below must verify with an acceptable
    algorithm. Untrusted ``intermediates`` (from a token) are only stepping stones;
    they never end a path. At most ``max_depth`` CA certificates (anchor included)
    sit above the leaf, no certificate appears twice and the search is bounded by
    :data:`MAX_SIGNATURE_CHECKS`. No path: ``untrusted_issuer``; an undecodable
    extension on the way: ``chain``.
    """
    if not anchors:
        raise UntrustedCertificate("no trust anchors configured", code="no_trust_anchors")
    check_validity(cert, at, what="user certificate")
    anchor_ders = {a.public_bytes(serialization.Encoding.DER) for a in anchors}
    budget = [MAX_SIGNATURE_CHECKS]

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        tip = path[-1]
        if len(path) > max_depth or not _signature_acceptable(tip):
            return None
        for candidate in [*anchors, *intermediates]:
            if any(candidate == p for p in path) or candidate.subject != tip.issuer:
                continue
            if budget[0] <= 0:
                return None
            budget[0] -= 1
            if not is_issued_by(tip, candidate):
                continue
            ok, path_len = _is_ca(candidate)
            # CAs between this candidate and the leaf (the leaf itself excluded).
            below = len(path) - 1
            if not ok or (path_len is not None and below > path_len):
                continue
            if not (candidate.not_valid_before_utc <= at <= candidate.not_valid_after_utc):
                continue
            if not _key_acceptable(candidate) or not _critical_understood(candidate):
                continue
            new_path = [*path, candidate]
            if candidate.public_bytes(serialization.Encoding.DER) in anchor_ders:
                return new_path
            found = extend(new_path)
            if found is not None:
                return found
        return None

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
        path = extend([cert])
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
