"""Estonian ID card (and other eID cards) through Web eID authentication tokens.

The browser extension / native app signs ``H(origin) || H(nonce)`` with the card's
authentication key and returns a JSON *authentication token* carrying the signature
and the (still untrusted) certificate. ``begin`` issues the challenge nonce;
``advance`` validates the token completely and turns the certificate subject into
an :class:`Identity`.

Protocol facts: ``web-eid/web-eid-system-architecture-doc`` ("Token format",
https://github.com/web-eid/web-eid-system-architecture-doc) and the reference validator
``web-eid/web-eid-authtoken-validation-java`` (``AuthTokenValidatorImpl``,
``certvalidators/*``). Section marks: 4b.1 token format 1.0, 4b.2 what is signed,
4b.3 challenge nonce, 4b.4 certificate checks, 4b.5 format 1.1. Validation follows
the reference validator's order (4b.4):

1. token shape and size, format ``web-eid:1`` or ``web-eid:1.<minor>`` (4b.1, 4b.5);
2. certificate decoding and validity at ``ctx.now``;
3. purpose: keyUsage digitalSignature, and clientAuth if an EKU is present (4b.4 #2);
4. policies: none of the Mobile-ID / Smart-ID policies (always), none of the
   configured disallowed OIDs, and one of the allow-list if one is configured (4b.4 #3);
5. chain to a configured trusted CA (4b.4 #4);
6. OCSP through the AIA or a designated responder (4b.4 #5, RFC 6960);
7. the signature with the declared algorithm (4b.2).

Security requirements EID-01..EID-06.

Modules: :mod:`.token` (token parsing and checks) and :mod:`.provider` (the
adapter). Import the public names from this package.
"""

from __future__ import annotations

from .provider import CONFIG_OPTIONS, WebEidProvider, from_config
from .token import (
    ALGORITHMS,
    DEFAULT_MAX_TOKEN_CHARS,
    MAX_EXTRA_CERTS,
    MAX_SIGNATURE_BYTES,
    MIN_RSA_BITS,
    MIN_TOKEN_CHARS,
    MOBILE_ID_POLICIES,
    NON_CARD_POLICY_ARCS,
    NONCE_BYTES,
    NONCE_TTL,
    REPLAY_KEY,
    SigningCertificate,
    WebEidToken,
    check_origin,
    parse_token,
    verify_token_signature,
)

__all__ = [
    "ALGORITHMS",
    "CONFIG_OPTIONS",
    "DEFAULT_MAX_TOKEN_CHARS",
    "MAX_EXTRA_CERTS",
    "MAX_SIGNATURE_BYTES",
    "MIN_RSA_BITS",
    "MIN_TOKEN_CHARS",
    "MOBILE_ID_POLICIES",
    "NONCE_BYTES",
    "NONCE_TTL",
    "NON_CARD_POLICY_ARCS",
    "REPLAY_KEY",
    "SigningCertificate",
    "WebEidProvider",
    "WebEidToken",
    "check_origin",
    "from_config",
    "parse_token",
    "verify_token_signature",
]
