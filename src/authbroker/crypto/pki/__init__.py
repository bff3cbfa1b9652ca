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

Modules, by concern: :mod:`.anchors` (loading certificates and trust anchors),
:mod:`.der_repair` (parsing untrusted DER), :mod:`.paths` (validity, path
validation) and :mod:`.ocsp`. Import the public names from this package.
"""

from __future__ import annotations

from .anchors import (
    ESTEID_CERTIFICATES_PREFIX,
    find_file,
    load_certificate_sources,
    load_certificates,
)
from .der_repair import parse_der_certificate
from .ocsp import OcspResult, build_ocsp_request, ocsp_urls, verify_ocsp_response
from .paths import (
    MAX_CHAIN_DEPTH,
    MAX_SIGNATURE_CHECKS,
    MIN_RSA_BITS,
    check_validity,
    is_issued_by,
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
