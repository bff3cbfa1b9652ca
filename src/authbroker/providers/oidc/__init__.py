"""A strict, generic OpenID Connect relying party (authorization code flow only).

One implementation serves every OIDC provider authbroker knows (FTN, Norwegian
BankID, TARA, commercial eID brokers). A provider profile (``providers/*.toml``)
switches features on and names a small *claim-mapping* module
(``claims_profile = "ftn" | "bankid-no" | "tara" | "broker-oidc"``) that turns verified
claims into an :class:`~authbroker.identity.Identity`. Everything else lives here:

* discovery, cached, with the exact-issuer rule (OIDC Discovery §4.3, RFC 8414 §3.3);
* ``state`` / ``nonce`` / PKCE S256 (RFC 7636 §4) per flow, kept server-side in the
  flow record; the state is additionally a single-use store entry, taken before any
  token request (security requirements OIDC-03..05);
* RFC 9207 ``iss`` in the authorization response (§2.4), also on error responses;
* signed request objects (RFC 9101 JAR, by value) and pushed authorization requests
  (RFC 9126 PAR) where the profile asks for them;
* client authentication ``private_key_jwt`` (Core §9, RFC 7523 §3) or
  ``client_secret_basic`` (RFC 6749 §2.3.1, form-encoded before base64);
* ID tokens signed (allow-listed algorithms) and optionally encrypted (nested JWE,
  the inner JWS is always verified: JOSE-07), JWKS rotation with one refetch on an
  unknown ``kid`` (:class:`authbroker.crypto.jose.JwksCache`);
* every ID-token check of Core §3.1.3.7 (items 2-13) plus ``acr`` against what was
  requested, ``at_hash``/``c_hash`` when present (§3.1.3.8, §3.3.2.11);
* UserInfo plain, signed or encrypted (Core §5.3.2), ``sub`` must match.

All JOSE work goes through :mod:`authbroker.crypto.jose`. Failures are typed
(:mod:`authbroker.errors`) and their messages never carry codes, tokens or claims.

Modules: :mod:`.options` (schema and typed options), :mod:`.keys` (RP keys, signed
JWKS, nested-JWE decryption), :mod:`.id_token` (claim, hash and acr checks, verified
results), :mod:`.logout` (the back-channel logout token's checks, RP-initiated
logout), :mod:`.rp` (the provider: discovery, requests, token exchange),
:mod:`.userinfo` (UserInfo), :mod:`.helpers`, and the claim profiles in
:mod:`.profiles`. Import the public names from this package.
"""

from __future__ import annotations

from .helpers import (
    CLIENT_ASSERTION_TYPE,
    DEFAULT_ID_TOKEN_ALGS,
    PROFILE_MODULES,
    claim_str,
    pkce_challenge,
    token_hash,
)
from .id_token import AcrChoice, VerifiedClaims, default_choose_acr, validate_id_token_claims
from .keys import (
    SIGNED_JWKS_MEDIA_TYPE,
    SIGNED_JWKS_TYP,
    check_rp_keys,
    generate_rp_keys,
    load_rp_keys,
    rp_key_algs,
    rp_public_jwks,
    rp_signing_algs,
    signed_rp_jwks,
)
from .logout import BACKCHANNEL_LOGOUT_EVENT, LogoutRequest, check_logout_claims
from .options import CONFIG_OPTIONS, OidcOptions, parse_options
from .rp import OidcProvider, from_config

__all__ = [
    "BACKCHANNEL_LOGOUT_EVENT",
    "CLIENT_ASSERTION_TYPE",
    "CONFIG_OPTIONS",
    "DEFAULT_ID_TOKEN_ALGS",
    "PROFILE_MODULES",
    "SIGNED_JWKS_MEDIA_TYPE",
    "SIGNED_JWKS_TYP",
    "AcrChoice",
    "LogoutRequest",
    "OidcOptions",
    "OidcProvider",
    "VerifiedClaims",
    "check_logout_claims",
    "check_rp_keys",
    "claim_str",
    "default_choose_acr",
    "from_config",
    "generate_rp_keys",
    "load_rp_keys",
    "parse_options",
    "pkce_challenge",
    "rp_key_algs",
    "rp_public_jwks",
    "rp_signing_algs",
    "signed_rp_jwks",
    "token_hash",
    "validate_id_token_claims",
]
