"""Authentication of server-to-server API calls with HTTP Message Signatures.

A partner's integration signs each request (RFC 9421) with a registered key: an
HMAC-SHA256 shared secret, or an Ed25519 / ECDSA P-256 key pair whose public half the
service holds. The service verifies the signature over the method, target URI, date,
company header and body digest (RFC 9530), consumes the nonce once, and then checks
two access levels: the credential's user is active, and the credential may act for the
company the request names. See ``docs/api-auth.md``.

* Server: :class:`ApiVerifier` (+ :mod:`authbroker.web.api_auth_middleware`).
* Client: :class:`ApiSigner` (an ``httpx.Auth``), :func:`sign_message`.
* Keys: :class:`MemoryKeyRegistry`, :class:`IntegrationCredential`, :class:`ApiKey`.
"""

from __future__ import annotations

from .components import Component, Message, SignatureParams, component_value, signature_base
from .digest import DIGEST_ALGORITHMS, check_content_digest, content_digest
from .errors import CompanyDenied, DigestMismatch, KeyRevoked, UserInactive
from .keys import (
    ALG_ECDSA_P256,
    ALG_ED25519,
    ALG_HMAC,
    ApiKey,
    HmacSecret,
    IntegrationCredential,
    KeyResolver,
    MemoryKeyRegistry,
    ResolvedKey,
    SigningKey,
    VerifyingKey,
    algorithm_of,
    load_private_key,
    load_public_key,
    sign_base,
    verify_base,
)
from .signer import ApiSigner, sign_message
from .verifier import ApiPrincipal, ApiVerifier, CompanyResolver, SignaturePolicy, UserResolver

__all__ = [
    "ALG_ECDSA_P256",
    "ALG_ED25519",
    "ALG_HMAC",
    "DIGEST_ALGORITHMS",
    "ApiKey",
    "ApiPrincipal",
    "ApiSigner",
    "ApiVerifier",
    "CompanyDenied",
    "CompanyResolver",
    "Component",
    "DigestMismatch",
    "HmacSecret",
    "IntegrationCredential",
    "KeyResolver",
    "KeyRevoked",
    "MemoryKeyRegistry",
    "Message",
    "ResolvedKey",
    "SignatureParams",
    "SignaturePolicy",
    "SigningKey",
    "UserInactive",
    "UserResolver",
    "VerifyingKey",
    "algorithm_of",
    "check_content_digest",
    "component_value",
    "content_digest",
    "load_private_key",
    "load_public_key",
    "sign_base",
    "sign_message",
    "signature_base",
    "verify_base",
]
