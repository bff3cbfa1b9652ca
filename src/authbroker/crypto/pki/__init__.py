"""X.509 for certificate-based providers (Web eID, Mobiilivarmenne): loading trust
anchors, parsing token certificates, path validation and OCSP.

Pure functions over :mod:`cryptography` objects: no I/O, no clock of their own (the
caller passes ``at``), every failure an :mod:`authbroker.errors` class with a stable
``code``. :func:`verify_chain`, the project's one path validator, has the path
validated by :mod:`cryptography.x509.verification` (the pyca RFC 5280 verifier) with
RFC 5280 extension profiles instead of its CA/B Forum Web PKI defaults, which national
eID certificates do not follow. Written here is only what it cannot do, each with a
comment saying why: the leaf checks whose error codes callers rely on, the first link
(leaf to issuing CA) of the Finnish cards' certificates, which are not DER (see
:func:`parse_der_certificate`), and OCSP. End-entity checks (key usage, EKU,
certificate policies, subject fields) belong to the caller, which knows its scheme.
docs/security-model.md, "Certificate path validation", lists which check is made where.

Modules: :mod:`.anchors` (loading certificates and trust anchors), :mod:`.paths`
(parsing token certificates, validity, paths) and :mod:`.ocsp`. Import from here.
"""

from __future__ import annotations

from .anchors import (
    ESTEID_CERTIFICATES_PREFIX,
    find_file,
    load_certificate_sources,
    load_certificates,
)
from .ocsp import OcspResult, build_ocsp_request, ocsp_urls, verify_ocsp_response
from .paths import (
    MAX_CHAIN_DEPTH,
    MAX_SIGNATURE_CHECKS,
    MIN_RSA_BITS,
    check_validity,
    is_issued_by,
    parse_der_certificate,
    verify_chain,
)

__all__ = [
    "ESTEID_CERTIFICATES_PREFIX",
    "MAX_CHAIN_DEPTH",
    "MAX_SIGNATURE_CHECKS",
    "MIN_RSA_BITS",
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
