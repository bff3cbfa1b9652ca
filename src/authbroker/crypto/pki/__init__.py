"""X.509 for certificate-based providers (Web eID, Mobiilivarmenne): trust anchors
(:mod:`.anchors`), token certificates and paths (:mod:`.paths`), OCSP (:mod:`.ocsp`).

Pure functions over :mod:`cryptography` objects: no I/O, no clock of their own (the
caller passes ``at``), every failure an :mod:`authbroker.errors` class with a stable
``code``. Paths are validated by :mod:`cryptography.x509.verification`; written here
is only what it cannot do, each with a comment saying why. End-entity checks (key
usage, EKU, certificate policies, subject fields) are the caller's, which knows its
scheme. docs/security-model.md ("Certificate path validation"): which check is where.
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
