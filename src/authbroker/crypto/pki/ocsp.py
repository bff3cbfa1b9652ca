"""OCSP (RFC 6960): requests, and strict verification of responses.

By hand: cryptography builds and parses OCSP messages but verifies none (signature,
responder, CertID, freshness, nonce), and its path verifier checks no revocation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp, verification
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ...errors import ProviderUnavailable, UntrustedCertificate
from .paths import _verify_signature, verified_path

__all__ = ["OcspResult", "build_ocsp_request", "ocsp_urls", "verify_ocsp_response"]


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
    certid_hash = algorithm or hashes.SHA1()  # noqa: S303 - a CertID hash, not a signature
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, certid_hash)
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


def _bad(message: str, code: str) -> UntrustedCertificate:
    return UntrustedCertificate(f"OCSP response rejected: {message}", code=code)


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

    In order (RFC 6960 4.2.2, 3.2, 4.4.1): it parses and is ``successful``
    (``tryLater``/``internalError``: :class:`ProviderUnavailable`); one SingleResponse,
    with ``cert``'s CertID; an authorized responder (:func:`_responder`) signed it;
    ``at - max_age <= thisUpdate <= at + max_skew``, ``nextUpdate`` (if any) not before
    ``at - max_skew``. ``revoked``/``unknown`` is returned then (refusing is safe); a
    ``good`` answer must echo ``nonce`` (if sent) or may be a replay. Anything forged,
    stale or inconsistent: :class:`UntrustedCertificate` with an ``ocsp_*`` code.
    """
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        raise _bad("malformed", "ocsp_malformed") from exc
    status = response.response_status
    if status in (ocsp.OCSPResponseStatus.TRY_LATER, ocsp.OCSPResponseStatus.INTERNAL_ERROR):
        raise ProviderUnavailable("OCSP responder cannot answer now", code="ocsp_busy")
    if status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _bad("responder refused the request", "ocsp_refused")
    try:
        singles = list(response.responses)
        if len(singles) != 1:
            raise _bad("must contain exactly one response", "ocsp_response_count")
        single = singles[0]
        # CertID must be ours: same serial and the same issuer (name and key hash).
        ours = ocsp.load_der_ocsp_request(
            build_ocsp_request(cert, issuer, nonce=None, algorithm=single.hash_algorithm)
        )
        want = (ours.serial_number, ours.issuer_name_hash, ours.issuer_key_hash)
        if (single.serial_number, single.issuer_name_hash, single.issuer_key_hash) != want:
            raise _bad("certificate ID differs from the request", "ocsp_cert_id")
        responder = _responder(response, issuer, designated_responder, at)
        tbs, algorithm = response.tbs_response_bytes, response.signature_hash_algorithm
        if not _verify_signature(responder, response.signature, tbs, algorithm):
            raise _bad("signature is invalid", "ocsp_signature")

        this_update, next_update = single.this_update_utc, single.next_update_utc
        if not at - max_age <= this_update <= at + max_skew:
            raise _bad("thisUpdate is too old or in the future", "ocsp_stale")
        if next_update is not None and next_update < at - max_skew:
            raise _bad("nextUpdate is in the past", "ocsp_stale")
        name = responder.subject.rfc4514_string()
        if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
            reason = single.revocation_reason and single.revocation_reason.name
            time = single.revocation_time_utc
            return OcspResult("revoked", this_update, next_update, time, reason, name)
        if single.certificate_status == ocsp.OCSPCertStatus.UNKNOWN:
            return OcspResult("unknown", this_update, next_update, responder=name)
        if nonce is not None:
            try:
                got = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            except x509.ExtensionNotFound:
                raise _bad("nonce missing", "ocsp_nonce") from None
            if got != nonce:
                raise _bad("nonce differs from the request", "ocsp_nonce")
        return OcspResult("good", this_update, next_update, responder=name)
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        raise _bad("malformed", "ocsp_malformed") from exc


def _names(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    """The response's ResponderID (RFC 6960 4.2.2.3) names ``cert``."""
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_hash = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    return response.responder_key_hash == key_hash


def _ocsp_signing(_: verification.Policy, c: x509.Certificate, eku: x509.ExtendedKeyUsage) -> None:
    if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
        raise ValueError("extendedKeyUsage lacks id-kp-OCSPSigning")


_DELEGATED = (
    verification.ExtensionPolicy.permit_all()
    .require_present(x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _ocsp_signing)
    .may_be_present(x509.OCSPNoCheck, verification.Criticality.AGNOSTIC, None)
)


def _responder(
    response: ocsp.OCSPResponse,
    issuer: x509.Certificate,
    designated: x509.Certificate | None,
    at: datetime,
) -> x509.Certificate:
    """Who must have signed ``response`` (RFC 6960 4.2.2.2): the ``designated`` one if
    configured (valid at ``at``), else the issuing CA itself, else its delegate."""
    if designated is not None:
        if not _names(response, designated):
            raise _bad("not signed by the designated responder", "ocsp_responder")
        if any(c != designated for c in response.certificates if _names(response, c)):
            raise _bad("responder certificate is not the designated one", "ocsp_responder")
        if not designated.not_valid_before_utc <= at <= designated.not_valid_after_utc:
            raise _bad("responder certificate is not valid now", "ocsp_responder")
        return designated
    if _names(response, issuer):
        return issuer
    for candidate in (c for c in response.certificates if _names(response, c)):
        # A one-link path for cryptography's verifier: issued by the CA itself, valid
        # at ``at``, SHA-2 signed, and its EKU has id-kp-OCSPSigning (RFC 6960 4.2.2.2).
        if verified_path(candidate, [], [issuer], at, 0, _DELEGATED) is None:
            raise _bad("responder is not authorized by the issuing CA", "ocsp_responder")
        return candidate
    raise _bad("responder certificate is missing", "ocsp_responder")
