"""Parsing token certificates, and the project's one path validator: the path by
:mod:`cryptography.x509.verification` (RFC 5280 extension profiles), here only what it
cannot do, each with a comment saying why."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import SignatureAlgorithmOID

from ...errors import InvalidInput, UntrustedCertificate

__all__ = [
    "MAX_CHAIN_DEPTH",
    "MAX_SIGNATURE_CHECKS",
    "MIN_RSA_BITS",
    "check_validity",
    "is_issued_by",
    "parse_der_certificate",
    "verify_chain",
]

#: Most CA certificates (intermediates and the anchor) above a leaf; eID PKIs use 1-2.
MAX_CHAIN_DEPTH = 6
#: Most issuer signatures checked to find one path: bounds the work a token with
#: many (untrusted) intermediates can cause.
MAX_SIGNATURE_CHECKS = 32
#: Smallest RSA modulus accepted for any key on a path.
MIN_RSA_BITS = 2048

# --- parsing a token's DER --------------------------------------------------------------


def parse_der_certificate(der: bytes, *, lenient: bool = True) -> x509.Certificate:
    """Parse untrusted DER (from a token); anything else, a version other than v1-v3
    included, is :class:`InvalidInput` ``cert_decode``.

    cryptography takes DER only (X.690 section 10), but real Finnish DVV/VRK ID cards
    carry two slips (Web eID vectors, web-eid-authtoken-validation-java
    ``AuthTokenCertificateFinnishIdCardTest``): a NULL in an ecdsa-with-SHA*
    AlgorithmIdentifier (RFC 5758 section 3.2: absent) and basicConstraints encoding
    its DEFAULT ``cA FALSE`` (X.690 section 11.5). With ``lenient`` asn1crypto
    re-encodes these two, only if putting them back gives the input byte for byte:
    no other non-DER input, so two parsers never read one certificate differently.
    :func:`is_issued_by` verifies the CA's signature over the original bytes.
    """
    try:
        return _load(der)
    except InvalidInput:
        repaired = _repair(der) if lenient else None
        if repaired is None:
            raise
    cert = _load(repaired[0])
    with _SIGNED_TBS_LOCK:
        while len(_SIGNED_TBS) >= _SIGNED_TBS_MAX:
            _SIGNED_TBS.pop(next(iter(_SIGNED_TBS)))
        _SIGNED_TBS[cert.fingerprint(hashes.SHA256())] = repaired[1]
    return cert


def _load(der: bytes) -> x509.Certificate:
    try:
        cert = x509.load_der_x509_certificate(der)
        _ = cert.extensions, cert.subject, cert.issuer
    except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension, x509.InvalidVersion) as e:
        raise InvalidInput("certificate cannot be decoded", code="cert_decode") from e
    return cert


# SHA-256 of a repaired certificate -> the tbsCertificate its CA signed. Bounded.
_SIGNED_TBS: dict[bytes, bytes] = {}
_SIGNED_TBS_MAX = 1024
_SIGNED_TBS_LOCK = threading.Lock()
_CA_FALSE = bytes.fromhex("3003010100")  # BasicConstraints ::= SEQUENCE { cA FALSE }
_NO_CA = bytes.fromhex("3000")  # the same in DER: SEQUENCE {}


def _repair(der: bytes) -> tuple[bytes, bytes] | None:
    """(DER, the signed tbsCertificate) if ``der`` is DER but for the two slips."""
    try:
        cert = asn1_x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        signed = tbs.dump()
        algorithms = [tbs["signature"], cert["signature_algorithm"]]
        nulls = [a for a in algorithms if a["parameters"].dump() == b"\x05\x00"]  # NULL
        nulls = [a for a in nulls if a["algorithm"].native.endswith("_ecdsa")]
        cas = [e for e in tbs["extensions"] if e["extn_value"].contents == _CA_FALSE]
        cas = [e for e in cas if e["extn_id"].native == "basic_constraints"]

        def encode(*, slipped: bool) -> bytes:
            for a in nulls:
                a["parameters"] = asn1_core.Null() if slipped else None
            for e in cas:
                e["extn_value"] = asn1_core.ParsableOctetString(_CA_FALSE if slipped else _NO_CA)
            return bytes(cert.dump())

        fixed = encode(slipped=False)
        canonical = asn1_x509.Certificate.load(fixed).dump(force=True)
        if (nulls or cas) and canonical == fixed and encode(slipped=True) == der:
            return fixed, signed
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
        pass
    return None


# --- validity and signatures -------------------------------------------------------------


def check_validity(cert: x509.Certificate, at: datetime, *, what: str = "certificate") -> None:
    """Reject ``cert`` outside its validity period at ``at`` (timezone-aware)."""
    if at < cert.not_valid_before_utc:
        raise UntrustedCertificate(f"{what} is not yet valid", code="cert_not_yet_valid")
    if at > cert.not_valid_after_utc:
        raise UntrustedCertificate(f"{what} has expired", code="cert_expired")


def is_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name matches and its key verifies ``cert``'s signature
    (of a certificate :func:`parse_der_certificate` repaired: over the signed bytes)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, UnsupportedAlgorithm, InvalidSignature):
        with _SIGNED_TBS_LOCK:
            signed = _SIGNED_TBS.get(cert.fingerprint(hashes.SHA256()))
        if signed is None or cert.issuer != issuer.subject:
            return False
        return _verify_signature(issuer, cert.signature, signed, cert.signature_hash_algorithm)
    return True


def _verify_signature(
    signer: x509.Certificate, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> bool:
    # cryptography verifies a certificate's signature over its own encoding only, and
    # an OCSP response's not at all.
    try:
        key = signer.public_key()
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


# --- the leaf: checked here for the codes callers rely on --------------------------------
# The verifier re-checks the leaf's validity, critical extensions and signature
# algorithm but reports only "no path"; it never checks a leaf's own key.

_EDDSA = (SignatureAlgorithmOID.ED25519, SignatureAlgorithmOID.ED448)
# Extensions that may be critical on a path certificate: processed by the verifier
# (basicConstraints, keyUsage), by the caller's end-entity checks (EKU, certificate
# policies), or informational. Any other critical one (nameConstraints,
# policyConstraints, policyMappings, inhibitAnyPolicy, unknown) makes a certificate
# unusable (RFC 5280 4.2). The verifier's extension policies are built from it too.
_UNDERSTOOD: tuple[type[x509.ExtensionType], ...] = (
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
_UNDERSTOOD_OIDS = frozenset(t.oid for t in _UNDERSTOOD)


def _signature_acceptable(cert: x509.Certificate) -> bool:
    """The issuer signed ``cert`` with SHA-2 (RSA, RSA-PSS, ECDSA) or EdDSA."""
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return False
    if algorithm is None:
        return cert.signature_algorithm_oid in _EDDSA
    return isinstance(algorithm, hashes.SHA256 | hashes.SHA384 | hashes.SHA512)


def _key_acceptable(cert: x509.Certificate) -> bool:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return False
    if isinstance(key, rsa.RSAPublicKey):
        return key.key_size >= MIN_RSA_BITS
    if isinstance(key, ec.EllipticCurvePublicKey):
        return isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1 | ec.SECP521R1)
    return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)


# --- the path: cryptography.x509.verification -------------------------------------------
# Its default extension profiles are the CA/B Forum Web PKI ones, which national eID
# certificates do not follow (Belgian cards carry no subjectAltName, the Estonian
# ESTEID2018 CA a critical EKU): these are RFC 5280's (docs/security-model.md).


def _must_be_ca(_: verification.Policy, c: x509.Certificate, bc: x509.BasicConstraints) -> None:
    # The verifier checks cA on issuers, not on the issuing CA _build_path gives as leaf.
    if not bc.ca:
        raise ValueError("basicConstraints cA is not asserted")


def _key_cert_sign(_: verification.Policy, c: x509.Certificate, ku: x509.KeyUsage | None) -> None:
    # RFC 5280 4.2.1.3: a CA key usage asserts keyCertSign (the Web PKI profile
    # requires it; permit_all does not check it).
    if ku is not None and not ku.key_cert_sign:
        raise ValueError("keyUsage lacks keyCertSign")


def _extension_policy(*, ca: bool) -> verification.ExtensionPolicy:
    agnostic = verification.Criticality.AGNOSTIC
    policy = verification.ExtensionPolicy.permit_all()
    for kind in _UNDERSTOOD:
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


def verified_path(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
    depth: int,
    leaf_policy: verification.ExtensionPolicy,
) -> list[x509.Certificate] | None:
    """The verifier's path ``[leaf, ..., anchor]``, at most ``depth`` CAs between."""
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

    The first link is searched here, bounding the work of decoy issuers in a token
    (:data:`MAX_SIGNATURE_CHECKS`), and checked by :func:`is_issued_by`, as the
    verifier cannot check it for a repaired certificate ("signature does not match":
    it uses the repaired bytes) nor EdDSA. For those it validates the path from the
    issuing CA up, as its leaf: it does not check that one's key and counts path
    lengths one lower, so both are done here. Other leaves: the whole path.
    """
    der = serialization.Encoding.DER
    pool = {c.public_bytes(der): c for c in [*anchors, *intermediates] if c != cert}
    others = [c for c in pool.values() if c.subject != cert.issuer and c not in anchors]
    candidates = [c for c in pool.values() if c.subject == cert.issuer]
    with _SIGNED_TBS_LOCK:
        repaired = cert.fingerprint(hashes.SHA256()) in _SIGNED_TBS
    whole = not repaired and cert.signature_algorithm_oid not in _EDDSA
    for candidate in candidates[:MAX_SIGNATURE_CHECKS]:
        if not is_issued_by(cert, candidate):
            continue
        trusted = candidate in anchors
        if whole:
            stones = others if trusted else [candidate, *others]
            path = verified_path(cert, stones, anchors, at, max_depth - 1, _EE_POLICY)
        else:
            depth = 0 if trusted else max_depth - 2
            above = verified_path(candidate, others, anchors, at, depth, _CA_POLICY)
            ok = above is not None and _key_acceptable(candidate) and _path_lengths_ok(above)
            path = [cert, *above] if above is not None and ok else None
        if path is not None and len(path) - 1 <= max_depth:
            return path
    return None


def _path_lengths_ok(issuers: Sequence[x509.Certificate]) -> bool:
    """Each CA's pathLenConstraint over the CAs between it and the leaf below
    ``issuers[0]`` (RFC 5280 6.1.4 (m))."""
    bcs = (c.extensions.get_extension_for_class(x509.BasicConstraints).value for c in issuers)
    return all(bc.path_length is None or n <= bc.path_length for n, bc in enumerate(bcs))


def verify_chain(
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
    *,
    max_depth: int = MAX_CHAIN_DEPTH,
) -> list[x509.Certificate]:
    """Build and check a path ``[cert, ..., anchor]``; return it.

    Anchors are trusted as configured (typically a national eID scheme's *issuing*
    CAs), their own signature unchecked; untrusted ``intermediates`` (from a token)
    never end a path; at most ``max_depth`` CAs (anchor included) sit above the leaf.
    Codes: ``cert_not_yet_valid``, ``cert_expired``, ``cert_critical_extension``,
    ``cert_algorithm`` (the leaf), ``untrusted_issuer`` (no path), ``chain``.
    """
    if not anchors:
        raise UntrustedCertificate("no trust anchors configured", code="no_trust_anchors")
    check_validity(cert, at, what="user certificate")
    try:
        if any(e.critical and e.oid not in _UNDERSTOOD_OIDS for e in cert.extensions):
            raise UntrustedCertificate("unknown critical extension", code="cert_critical_extension")
        if not _key_acceptable(cert) or not _signature_acceptable(cert):
            raise UntrustedCertificate("weak or unsupported algorithm", code="cert_algorithm")
        path = _build_path(cert, intermediates, anchors, at, max_depth)
    except (ValueError, x509.DuplicateExtension) as exc:
        raise UntrustedCertificate("certificate chain cannot be parsed", code="chain") from exc
    if path is None:
        raise UntrustedCertificate("no path to a trusted CA", code="untrusted_issuer")
    return path
