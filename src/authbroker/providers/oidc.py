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
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, cast
from urllib.parse import quote_plus, urlencode, urlsplit

from ..config import ProviderConfig, Settings
from ..config_schema import Option, Schema, refuse_loopback_http, refuse_preproduction_acr
from ..crypto.jose import (
    DEFAULT_JWE_ALGORITHMS,
    DEFAULT_JWE_ENCRYPTIONS,
    JwksCache,
    Key,
    KeySet,
    decrypt_jwe,
    peek_header,
    sign_jwt,
)
from ..errors import (
    AlreadyUsed,
    AuthBrokerError,
    ConfigError,
    Expired,
    InsufficientLoa,
    InvalidInput,
    ProviderError,
    ProviderUnavailable,
    UserCancelled,
)
from ..flow import Redirect, store_put, store_take
from ..http import HttpRequest, HttpResponse
from ..identity import Identity, Loa
from ..kernel.effects import Gen, fetch
from .base import (
    LOOPBACK_HOSTS,
    AdvanceContext,
    BeginContext,
    Next,
    ProviderInfo,
    require_endpoint,
)

__all__ = [
    "CONFIG_OPTIONS",
    "PROFILE_MODULES",
    "AcrChoice",
    "OidcOptions",
    "OidcProvider",
    "VerifiedClaims",
    "check_rp_keys",
    "from_config",
    "generate_rp_keys",
    "load_rp_keys",
    "pkce_challenge",
    "rp_key_algs",
    "rp_public_jwks",
    "rp_signing_algs",
    "signed_rp_jwks",
    "validate_id_token_claims",
]

#: Claim-mapping module per ``profile`` key of a provider profile.
PROFILE_MODULES: Mapping[str, str] = {
    "ftn": "authbroker.providers.ftn",
    "bankid-no": "authbroker.providers.bankid_no",
    "tara": "authbroker.providers.tara",
    "broker-oidc": "authbroker.providers.broker_oidc",
}

#: Signing algorithms an ID token may use unless the profile narrows the list.
DEFAULT_ID_TOKEN_ALGS = ("RS256", "PS256", "ES256")
#: Algorithms we accept for our own signatures (request objects, client assertions).
_OWN_SIGNING_ALGS = frozenset({"PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "RS256"})
_ASYMMETRIC_JWS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: Core §3.1.3.7 items 9-10: one skew for every time check; FAPI tests need < 5 min.
DEFAULT_SKEW = 60.0
MAX_SKEW = 120.0
#: Maximum ID-token age counted from iat (FAPI1 ``iat-is-week-in-past``).
DEFAULT_MAX_ID_TOKEN_AGE = 600.0
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]{1,2048}")
#: RFC 6750 §2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
#: (https://www.rfc-editor.org/rfc/rfc6750#section-2.1). ASCII only, so nothing else
#: can reach the Authorization header or the at_hash input.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*", re.ASCII)
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_ERROR_CODE = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}")  # RFC 6749 §4.1.2.1
_CANCEL_ERRORS = frozenset({"access_denied", "user_cancel", "cancelled", "user_cancelled"})
_USERINFO_FORMATS = ("none", "json", "signed", "encrypted")


# --- helpers shared with the profile modules ------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 §4.2 S256: BASE64URL(SHA256(ASCII(code_verifier)))."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _sha_for_alg(alg: str) -> Callable[[bytes], Any]:
    bits = alg[-3:]
    if bits == "384":
        return hashlib.sha384
    if bits == "512":
        return hashlib.sha512
    return hashlib.sha256


def token_hash(value: str, alg: str, *, encoding: str = "base64url") -> str:
    """Core §3.1.3.8 / §3.3.2.11: left half of the hash of the ASCII value.

    ``encoding="base64"`` reproduces TARA's legacy ``at_hash`` (standard base64,
    TARA TechnicalSpecification v1.21); every other provider uses base64url without padding.
    """
    digest = _sha_for_alg(alg)(value.encode("ascii")).digest()
    half = digest[: len(digest) // 2]
    if encoding == "base64":
        return base64.b64encode(half).decode("ascii")
    return _b64url(half)


def claim_str(claims: Mapping[str, Any], name: str, *, max_len: int = 256) -> str | None:
    """A string claim, or None; non-strings and oversized values are refused."""
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise InvalidInput(f"claim {name} is not a valid string", code="bad_claim")
    return value


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) < 2**53
    )


#: RFC 3986 §2 characters (unreserved, reserved and "%"): no spaces, controls or
#: non-ASCII, which URL parsers and HTTP clients treat differently.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def _check_url(url: Any, what: str, *, provider: str, allow_loopback_http: bool) -> str:
    """A URL from discovery metadata, parsed safely before anything uses it.

    Endpoints must be https (OIDC-01); plain http only on loopback for simulators.
    Anything unparseable (``https://[::1/x``, a bad port) is a :class:`ProviderError`
    naming the provider and the metadata field, never a bare ``ValueError``.
    RFC 6749 §3.1-§3.2 (https://www.rfc-editor.org/rfc/rfc6749#section-3.1): endpoint
    URIs carry no fragment.
    """
    details = {"provider": provider, "field": what}
    invalid = ProviderError(
        f"provider {provider} metadata has no valid {what}", code="bad_metadata", details=details
    )
    if not isinstance(url, str) or not url or len(url) > 2048 or not _URL_CHARS.fullmatch(url):
        raise invalid
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise invalid from None
    if "#" in url or "@" in parts.netloc:
        raise invalid
    if parts.scheme == "https" and host:
        return url
    if allow_loopback_http and parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return url
    raise ProviderError(
        f"provider {provider} {what} is not an https URL",
        code="insecure_endpoint",
        details=details,
    )


def _with_query(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def _shash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# --- options -------------------------------------------------------------------------


#: Every key an ``oidc`` provider table or profile may hold (checked at load_config;
#: declare a new option here when parse_options or a claims profile starts reading it).
CONFIG_OPTIONS = Schema(
    "oidc",
    "OpenID Connect providers (FTN, Norwegian BankID, TARA, eID brokers).",
    (
        Option("issuer", "string", None, "the OP's issuer URL, compared exactly (required)"),
        Option(
            "discovery_url",
            "string",
            None,
            "discovery document (default: issuer + /.well-known/...)",
        ),
        Option("client_id", "string", None, "client id registered at the OP (required)"),
        Option("client_secret", "string", None, "secret for client_secret_basic", secret=True),
        Option(
            "client_auth",
            "string",
            "client_secret_basic",
            "token endpoint authentication",
            choices=("private_key_jwt", "client_secret_basic"),
        ),
        Option(
            "scopes", "string or string list", ["openid"], "requested scopes (must include openid)"
        ),
        Option(
            "acr_values",
            "string or string list",
            [],
            "acr values requested by default",
            production=refuse_preproduction_acr,
        ),
        Option(
            "acr_values_allowed",
            "string or string list",
            None,
            "acr values a flow may ask for (default: acr_values)",
            production=refuse_preproduction_acr,
        ),
        Option("acr_loa", "table", {}, "level of assurance of each acr value"),
        Option(
            "acr_match",
            "string",
            "loa",
            "returned acr must reach the LoA or match exactly",
            choices=("loa", "exact"),
        ),
        Option("require_acr", "boolean", True, "refuse ID tokens without acr"),
        Option("request_object", "boolean", False, "send a signed request object (RFC 9101)"),
        Option(
            "request_object_typ",
            "string",
            "oauth-authz-req+jwt",
            "typ header of request objects (empty: none)",
        ),
        Option("par", "boolean", False, "use pushed authorization requests (RFC 9126)"),
        Option("id_token_encrypted", "boolean", False, "ID tokens arrive as nested JWE"),
        Option(
            "id_token_signing_algs",
            "string or string list",
            list(DEFAULT_ID_TOKEN_ALGS),
            "accepted ID-token JWS algorithms",
        ),
        Option(
            "jwe_algs",
            "string or string list",
            sorted(DEFAULT_JWE_ALGORITHMS),
            "accepted JWE key-management algorithms",
        ),
        Option(
            "jwe_encs",
            "string or string list",
            sorted(DEFAULT_JWE_ENCRYPTIONS),
            "accepted JWE content encryptions",
        ),
        Option(
            "userinfo",
            "string",
            "none",
            "whether and how UserInfo is fetched",
            choices=_USERINFO_FORMATS,
        ),
        Option(
            "client_assertion_aud",
            "string",
            "issuer",
            "aud of private_key_jwt assertions",
            choices=("issuer", "token_endpoint"),
        ),
        Option(
            "at_hash_encoding",
            "string",
            "base64url",
            "at_hash encoding (TARA: base64)",
            choices=("base64url", "base64"),
        ),
        Option(
            "clock_skew", "number", DEFAULT_SKEW, f"seconds of clock skew allowed (0..{MAX_SKEW:g})"
        ),
        Option(
            "max_id_token_age",
            "number",
            DEFAULT_MAX_ID_TOKEN_AGE,
            "oldest ID token accepted, seconds from iat",
        ),
        Option("max_age", "integer", None, "max_age authentication request parameter"),
        Option("ui_locales", "string or string list", [], "languages passed as ui_locales"),
        Option(
            "extra_auth_params",
            "table",
            {},
            "extra authorization request parameters",
            production=refuse_preproduction_acr,
        ),
        Option("discovery_ttl", "number", 3600, "seconds discovery metadata is cached"),
        Option("jwks_ttl", "number", 3600, "seconds the OP's JWKS is cached"),
        Option("jwks_min_refetch_interval", "number", 60, "least seconds between JWKS refetches"),
        Option("timeout", "number", 10, "HTTP timeout in seconds"),
        Option(
            "allow_loopback_http",
            "boolean",
            False,
            "accept http://127.0.0.1 endpoints outside the simulator (never production)",
            production=refuse_loopback_http,
        ),
        Option(
            "claims_profile", "string", None, "claim mapping module", choices=tuple(PROFILE_MODULES)
        ),
        Option(
            "allow_synthetic_ids",
            "boolean",
            None,
            "accept test identity numbers (default: not in production)",
        ),
        Option("require_iss_param", "boolean", False, "require RFC 9207 iss in every response"),
        Option(
            "rp_keys",
            "string or table",
            None,
            "RP private JWKS: file path, or _env with the JSON",
            secret=True,
        ),
        Option("rp_signing_kid", "string", None, "kid of the RP signing key to use"),
        Option("rp_signing_alg", "string", None, "signing algorithm when the key names none"),
        Option(
            "rp_signing_algs",
            "string list",
            None,
            "algorithms the OP accepts for our request objects and client assertions",
        ),
        Option("userinfo_issuer", "string", None, "issuer of signed UserInfo when not the OP"),
        Option(
            "userinfo_subject_claims",
            "string list",
            ["sub"],
            "claims that must match between ID token and UserInfo",
        ),
        Option(
            "federation_keys",
            "string or table",
            None,
            "private JWKS signing the signed RP JWKS (file path, or _env with the JSON)",
            secret=True,
        ),
        Option("entity_id", "string", None, "iss/sub of the signed JWKS (default: client_id)"),
        Option("signed_jwks_lifetime", "integer", 86400, "seconds a signed JWKS is valid"),
        # claims_profile = "broker-oidc" (authbroker.providers.broker_oidc)
        Option(
            "methods",
            "table",
            None,
            "broker-oidc: method name -> {acr, country, method}",
            production=refuse_preproduction_acr,
        ),
        Option(
            "default_method", "string", None, "broker-oidc: method used when the flow names none"
        ),
        # authbroker.simulators.oidc
        Option("sim_id_token_alg", "string", None, "simulator only: ID-token signing algorithm"),
    ),
)


@dataclass(frozen=True, slots=True)
class OidcOptions:
    """A provider config read once and type-checked (errors name the exact key)."""

    issuer: str
    discovery_url: str
    client_id: str
    client_auth: Literal["private_key_jwt", "client_secret_basic"]
    scopes: tuple[str, ...]
    acr_values: tuple[str, ...]
    acr_values_allowed: tuple[str, ...]
    acr_loa: Mapping[str, Loa]
    acr_match: Literal["loa", "exact"]
    require_acr: bool
    request_object: bool
    request_object_typ: str | None
    par: bool
    id_token_encrypted: bool
    id_token_algs: tuple[str, ...]
    jwe_algs: tuple[str, ...]
    jwe_encs: tuple[str, ...]
    userinfo: Literal["none", "json", "signed", "encrypted"]
    client_assertion_aud: Literal["issuer", "token_endpoint"]
    at_hash_encoding: str
    skew: float
    max_id_token_age: float
    max_age: int | None
    ui_locales: tuple[str, ...]
    extra_auth_params: Mapping[str, str]
    discovery_ttl: float
    jwks_ttl: float
    jwks_min_refetch_interval: float
    timeout: float
    allow_loopback_http: bool
    profile: str | None
    allow_synthetic_ids: bool
    #: ``iss`` of a signed UserInfo when not the OP issuer (BankID's TINFO server).
    userinfo_issuer: str | None = None
    #: How UserInfo is tied to the ID token's person: ``"claim"`` (same claim on both
    #: sides) or ``"id_claim:userinfo_claim"``; default Core §5.3.4 ``sub``.
    userinfo_subject_claims: tuple[str, ...] = ("sub",)
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @property
    def needs_rp_keys(self) -> bool:
        return (
            self.client_auth == "private_key_jwt"
            or self.request_object
            or self.id_token_encrypted
            or self.userinfo == "encrypted"
        )


def _str_list(config: ProviderConfig, key: str, default: Sequence[str]) -> tuple[str, ...]:
    value = config.get(key, list(default))
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError("must be a list of strings", key=config.key(key))
    return tuple(value)


def _bool(config: ProviderConfig, key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError("must be true or false", key=config.key(key))
    return value


def _num(config: ProviderConfig, key: str, default: float, lo: float, hi: float) -> float:
    value = config.get(key, default)
    if not _is_number(value) or not lo <= float(value) <= hi:
        raise ConfigError(f"must be a number between {lo} and {hi}", key=config.key(key))
    return float(value)


def _choice(config: ProviderConfig, key: str, default: str, choices: Sequence[str]) -> str:
    value = config.get(key, default)
    if value not in choices:
        raise ConfigError(f"must be one of {', '.join(choices)}", key=config.key(key))
    return str(value)


def parse_options(config: ProviderConfig) -> OidcOptions:
    """Validate the provider config once, at construction (fail at start, not mid-flow)."""
    simulator = config.environment == "simulator"
    allow_loopback = simulator or _bool(config, "allow_loopback_http", False)
    issuer = config.require("issuer")
    if not isinstance(issuer, str):
        raise ConfigError("must be a string", key=config.key("issuer"))
    require_endpoint(config, "issuer", allow_loopback_http=allow_loopback)
    # Discovery §4: the configuration document lives under the issuer, path appended.
    discovery = config.get("discovery_url") or issuer.rstrip("/") + (
        "/.well-known/openid-configuration"
    )
    client_id = config.require("client_id")
    if not isinstance(client_id, str):
        raise ConfigError("must be a string", key=config.key("client_id"))
    acr_loa_raw = config.get("acr_loa", {})
    if not isinstance(acr_loa_raw, Mapping):
        raise ConfigError("must be a table of acr -> level", key=config.key("acr_loa"))
    acr_loa: dict[str, Loa] = {}
    for name, level in acr_loa_raw.items():
        try:
            acr_loa[str(name)] = Loa.parse(level)
        except ConfigError:
            raise ConfigError("unknown level of assurance", key=config.key("acr_loa")) from None
    acr_values = _str_list(config, "acr_values", ())
    allowed = _str_list(config, "acr_values_allowed", acr_values)
    for value in (*acr_values, *allowed):
        if value not in acr_loa:
            raise ConfigError(f"acr value {value!r} has no level", key=config.key("acr_loa"))
    id_token_algs = _str_list(config, "id_token_signing_algs", DEFAULT_ID_TOKEN_ALGS)
    bad = [a for a in id_token_algs if a not in _ASYMMETRIC_JWS]
    if bad or not id_token_algs:
        # JOSE-01: no "none", and HMAC ID tokens are not offered at all.
        raise ConfigError("only asymmetric JWS algorithms", key=config.key("id_token_signing_algs"))
    jwe_algs = _str_list(config, "jwe_algs", sorted(DEFAULT_JWE_ALGORITHMS))
    jwe_encs = _str_list(config, "jwe_encs", sorted(DEFAULT_JWE_ENCRYPTIONS))
    if not set(jwe_algs) <= DEFAULT_JWE_ALGORITHMS or not set(jwe_encs) <= (
        DEFAULT_JWE_ENCRYPTIONS
    ):
        raise ConfigError(
            "JWE algorithm not on the allow-list (JOSE-06)", key=config.key("jwe_algs")
        )
    max_age = config.get("max_age")
    if max_age is not None and (not isinstance(max_age, int) or max_age < 0):
        raise ConfigError("must be a non-negative integer", key=config.key("max_age"))
    extra = config.get("extra_auth_params", {})
    if not isinstance(extra, Mapping) or not all(isinstance(v, str) for v in extra.values()):
        raise ConfigError("must be a table of strings", key=config.key("extra_auth_params"))
    scopes = _str_list(config, "scopes", ("openid",))
    if "openid" not in scopes:
        raise ConfigError("must include openid", key=config.key("scopes"))
    profile = config.get("claims_profile")
    if profile is not None and profile not in PROFILE_MODULES:
        raise ConfigError(
            f"must be one of {', '.join(PROFILE_MODULES)}", key=config.key("claims_profile")
        )
    typ = config.get("request_object_typ", "oauth-authz-req+jwt")
    userinfo_issuer = config.get("userinfo_issuer")
    if userinfo_issuer is not None:
        if not isinstance(userinfo_issuer, str):
            raise ConfigError("must be a string", key=config.key("userinfo_issuer"))
        require_endpoint(config, "userinfo_issuer", allow_loopback_http=allow_loopback)
    subject_claims = _str_list(config, "userinfo_subject_claims", ("sub",))
    if not subject_claims or any(
        not 1 <= len(part) <= 64 for c in subject_claims for part in c.split(":", 1)
    ):
        raise ConfigError(
            "must list claim names (or id_claim:userinfo_claim pairs)",
            key=config.key("userinfo_subject_claims"),
        )
    return OidcOptions(
        issuer=issuer,
        discovery_url=str(discovery),
        client_id=client_id,
        client_auth=cast(
            Any,
            _choice(
                config,
                "client_auth",
                "client_secret_basic",
                ("private_key_jwt", "client_secret_basic"),
            ),
        ),
        scopes=scopes,
        acr_values=acr_values,
        acr_values_allowed=allowed,
        acr_loa=acr_loa,
        acr_match=cast(Any, _choice(config, "acr_match", "loa", ("loa", "exact"))),
        require_acr=_bool(config, "require_acr", True),
        request_object=_bool(config, "request_object", False),
        request_object_typ=str(typ) if typ else None,
        par=_bool(config, "par", False),
        id_token_encrypted=_bool(config, "id_token_encrypted", False),
        id_token_algs=id_token_algs,
        jwe_algs=jwe_algs,
        jwe_encs=jwe_encs,
        userinfo=cast(Any, _choice(config, "userinfo", "none", _USERINFO_FORMATS)),
        client_assertion_aud=cast(
            Any, _choice(config, "client_assertion_aud", "issuer", ("issuer", "token_endpoint"))
        ),
        at_hash_encoding=_choice(config, "at_hash_encoding", "base64url", ("base64url", "base64")),
        skew=_num(config, "clock_skew", DEFAULT_SKEW, 0, MAX_SKEW),
        max_id_token_age=_num(config, "max_id_token_age", DEFAULT_MAX_ID_TOKEN_AGE, 30, 3600),
        max_age=max_age,
        ui_locales=_str_list(config, "ui_locales", ()),
        extra_auth_params={str(k): str(v) for k, v in extra.items()},
        discovery_ttl=_num(config, "discovery_ttl", 3600, 0, 86400),
        jwks_ttl=_num(config, "jwks_ttl", 3600, 1, 86400),
        jwks_min_refetch_interval=_num(config, "jwks_min_refetch_interval", 60, 0, 3600),
        timeout=_num(config, "timeout", 10, 0.1, 60),
        allow_loopback_http=allow_loopback,
        profile=str(profile) if profile else None,
        allow_synthetic_ids=_bool(
            config, "allow_synthetic_ids", config.environment != "production"
        ),
        userinfo_issuer=userinfo_issuer,
        userinfo_subject_claims=subject_claims,
        raw=dict(config.options),
    )


# --- RP keys --------------------------------------------------------------------------

#: Without a profile list: the key algorithms authbroker prefers (FAPI-style).
_PREFERRED_SIGNING = ("PS256", "ES256", "RS256")
_PREFERRED_JWE = ("RSA-OAEP-256", "RSA-OAEP", "ECDH-ES+A256KW", "ECDH-ES+A128KW", "ECDH-ES")
_RSA_JWE = frozenset({"RSA-OAEP", "RSA-OAEP-256"})


def rp_signing_algs(config: ProviderConfig) -> tuple[str, ...]:
    """``rp_signing_algs``: what the provider accepts for our request objects and
    client assertions (its ``request_object_signing_alg_values_supported`` /
    ``token_endpoint_auth_signing_alg_values_supported``), in our order of preference.

    A profile states its provider's published set; Telia, for one, accepts RS256
    only, so a PS256 request object is refused there (every FTN login failed).
    """
    algs = _str_list(config, "rp_signing_algs", _PREFERRED_SIGNING)
    if not algs or not set(algs) <= _OWN_SIGNING_ALGS:
        raise ConfigError(
            f"must list algorithms from {', '.join(sorted(_OWN_SIGNING_ALGS))}",
            key=config.key("rp_signing_algs"),
        )
    return algs


def _rp_jwe_algs(config: ProviderConfig) -> tuple[str, ...]:
    algs = _str_list(config, "jwe_algs", _PREFERRED_JWE)
    if not set(algs) <= DEFAULT_JWE_ALGORITHMS:
        raise ConfigError(
            "JWE algorithm not on the allow-list (JOSE-06)", key=config.key("jwe_algs")
        )
    return algs


def _uses_rp_keys(config: ProviderConfig) -> tuple[bool, bool]:
    """(needs a signing key, needs an encryption key) for this provider config."""
    sig = config.get("client_auth") == "private_key_jwt" or config.get("request_object") is True
    enc = config.get("id_token_encrypted") is True or config.get("userinfo") == "encrypted"
    return sig, enc


def rp_key_algs(
    config: ProviderConfig | None, kty: Literal["RSA", "EC"] = "RSA"
) -> tuple[str | None, str | None]:
    """(signing alg, encryption alg) of new RP keys of type ``kty`` for this provider.

    Each is the first of the provider's ``rp_signing_algs`` / ``jwe_algs`` that such a
    key can do, or None when the provider config needs no key of that use (no
    private_key_jwt or request object; no encrypted responses). Without a config:
    both, with authbroker's preferences.
    """
    need_sig, need_enc = _uses_rp_keys(config) if config else (True, True)
    sig_algs = rp_signing_algs(config) if config else _PREFERRED_SIGNING
    jwe_algs = _rp_jwe_algs(config) if config else _PREFERRED_JWE
    family = ("ES",) if kty == "EC" else ("RS", "PS")
    sig = next((a for a in sig_algs if a.startswith(family)), None) if need_sig else None
    enc = (
        next((a for a in jwe_algs if (a in _RSA_JWE) == (kty == "RSA")), None) if need_enc else None
    )
    if (need_sig and sig is None) or (need_enc and enc is None):
        where = config.key("rp_signing_algs" if sig is None else "jwe_algs") if config else "kty"
        raise ConfigError(f"the provider accepts no {kty} key algorithm", key=where)
    return sig, enc


def generate_rp_keys(
    config: ProviderConfig | None = None, *, kty: Literal["RSA", "EC"] = "RSA"
) -> dict[str, Any]:
    """A fresh private JWKS for an RP: a signing and an encryption key, as needed.

    Separate keys per ``use`` with distinct kids (PROF-02), each bound to the one
    ``alg`` the provider of ``config`` accepts (:func:`rp_key_algs`): for FTN through
    Telia RS256 and RSA-OAEP. Without a config: PS256 and RSA-OAEP-256. Store the
    result as a secret (file readable only by the service, or an environment
    variable) and publish :func:`rp_public_jwks` to the provider.
    """
    sig_alg, enc_alg = rp_key_algs(config, kty)
    if config is not None and sig_alg is None and enc_alg is None:
        raise ConfigError(
            "this provider uses no RP keys (no private_key_jwt, request objects or encryption)",
            key=config.key("client_auth"),
        )
    keys: list[Key] = []
    if sig_alg is not None:
        keys.append(Key.generate(kty, use="sig", alg=sig_alg))
    if enc_alg is not None:
        crv = "P-256" if kty == "EC" else None
        keys.append(Key.generate(kty, use="enc", alg=enc_alg, crv=crv))
    return {"keys": [k.private_jwk() for k in keys]}


def check_rp_keys(config: ProviderConfig, keys: KeySet) -> None:
    """Refuse RP keys bound to an algorithm the provider does not accept.

    Such a key can never work: a request object or client assertion it signs is
    refused by the OP, and a token the OP encrypts with the algorithm it supports
    finds no matching key. The error names the key (kid), so ``check-config``
    points at the exact key to replace.
    """
    where = config.key("rp_keys_env" if config.get("rp_keys_env") else "rp_keys")
    sig_algs = rp_signing_algs(config)
    jwe_algs = _rp_jwe_algs(config)
    for k in keys.keys:
        if k.alg is None:
            continue
        accepted = sig_algs if k.use == "sig" else jwe_algs
        if k.alg not in accepted:
            raise ConfigError(
                f"key {k.kid} has alg {k.alg}, which the provider does not accept "
                f"(accepted for use {k.use}: {', '.join(accepted)})",
                key=where,
            )


def _private_keyset(document: Any, key: str) -> KeySet:
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ConfigError("must be a JWKS with private keys", key=key)
    keys: list[Key] = []
    for member in document["keys"]:
        try:
            k = Key.from_jwk(member)
        except InvalidInput as exc:
            raise ConfigError(f"contains an unusable key ({exc.code})", key=key) from None
        if not k.is_private or k.use not in ("sig", "enc"):
            raise ConfigError("every key must be private and have use sig or enc", key=key)
        keys.append(k)
    if len({k.kid for k in keys}) != len(keys):
        raise ConfigError("key ids must be unique", key=key)
    return KeySet(keys)


def load_rp_keys(config: ProviderConfig) -> KeySet | None:
    """The RP's private keys: ``rp_keys_env`` (JWKS JSON), ``rp_keys`` (a file path),
    or, in the simulator environment only, a JWKS table injected by the simulator."""
    return _load_private_keys(config, "rp_keys")


def _load_private_keys(config: ProviderConfig, name: str) -> KeySet | None:
    """A private JWKS from ``<name>_env``, a file path ``<name>`` or (simulator) inline."""
    env_name = config.get(f"{name}_env")
    if env_name:
        raw = config.secret(name)
        try:
            document = json.loads(raw or "")
        except ValueError:
            raise ConfigError("is not JSON", key=config.key(f"{name}_env")) from None
        return _private_keyset(document, config.key(f"{name}_env"))
    value = config.get(name)
    if value is None:
        return None
    if isinstance(value, Mapping):
        if config.environment != "simulator":
            raise ConfigError("inline keys are only allowed in the simulator", key=config.key(name))
        return _private_keyset(value, config.key(name))
    if not isinstance(value, str):
        raise ConfigError("must be a file path", key=config.key(name))
    try:
        document = json.loads(Path(value).read_text("utf-8"))
    except OSError:
        raise ConfigError("file cannot be read", key=config.key(name)) from None
    except ValueError:
        raise ConfigError("file is not JSON", key=config.key(name)) from None
    return _private_keyset(document, config.key(name))


def rp_public_jwks(config: ProviderConfig, settings: Settings | None = None) -> dict[str, Any]:
    """The RP's public JWKS to publish (middleware route, ``authbroker keys``)."""
    keys = load_rp_keys(config)
    if keys is None:
        raise ConfigError("no RP keys are configured", key=config.key("rp_keys"))
    return keys.to_public_jwks()


#: OpenID Federation 1.0, "Signed JWK Set": the JWT ``typ`` and the HTTP media type.
SIGNED_JWKS_TYP = "jwk-set+jwt"
SIGNED_JWKS_MEDIA_TYPE = "application/jwk-set+jwt"


def signed_rp_jwks(
    config: ProviderConfig, keys: KeySet | None = None, *, now: float | None = None
) -> str:
    """The RP's public JWKS as a signed JWT (OpenID Federation 1.0 ``signed_jwks_uri``,
    https://openid.net/specs/openid-federation-1_0.html#name-signed-jwk-set).

    Traficom requires it for FTN when RP keys rotate automatically (Telia's guide,
    https://github.com/JarmoTelia/tunnistus): the provider trusts a JWKS it fetches
    only through the signature of a long-lived *federation* key registered with it
    out of band, so that key (``federation_keys`` / ``federation_keys_env``) is never
    one of the RP keys it vouches for. Claims: ``iss`` = ``sub`` = the RP's entity id
    (``entity_id``, default ``client_id``), ``iat``, ``exp`` (``signed_jwks_lifetime``
    seconds, default one day) and ``keys``; header ``typ: jwk-set+jwt``; signed with an
    algorithm the provider accepts (``rp_signing_algs``; Telia: RS256).
    """
    keys = keys if keys is not None else load_rp_keys(config)
    if keys is None or not len(keys):
        raise ConfigError("no RP keys are configured", key=config.key("rp_keys"))
    federation = _load_private_keys(config, "federation_keys")
    if federation is None:
        raise ConfigError(
            "a federation signing key is required for a signed JWKS",
            key=config.key("federation_keys"),
        )
    accepted = rp_signing_algs(config)
    own = {k.kid for k in keys.keys}
    for signer in federation.keys:
        if signer.use != "sig" or signer.kid in own:
            continue
        for alg in (signer.alg,) if signer.alg else accepted:
            if alg in accepted and signer._fits(alg, "sig"):
                entity = config.get("entity_id") or config.require("client_id")
                issued = int(time.time() if now is None else now)
                lifetime = int(_num(config, "signed_jwks_lifetime", 86400, 300, 30 * 86400))
                claims = {
                    "iss": str(entity),
                    "sub": str(entity),
                    "iat": issued,
                    "exp": issued + lifetime,
                    "keys": keys.to_public_jwks()["keys"],
                }
                return sign_jwt(claims, signer, alg=alg, headers={"typ": SIGNED_JWKS_TYP})
    raise ConfigError(
        f"no federation signing key (apart from the RP keys) for {', '.join(accepted)}",
        key=config.key("federation_keys"),
    )


# --- verified results handed to the profile modules -----------------------------------


@dataclass(frozen=True, slots=True)
class AcrChoice:
    """The ``acr_values`` requested for one flow, their LoA floor and broker method."""

    values: tuple[str, ...]
    loa: Loa
    method: str | None = None


@dataclass(frozen=True, slots=True)
class VerifiedClaims:
    """Everything a profile needs to build an Identity; all of it already verified."""

    provider: str
    options: OidcOptions
    id_token: Mapping[str, Any] = field(repr=False)
    userinfo: Mapping[str, Any] | None = field(repr=False)
    acr: str | None
    loa: Loa
    method: str | None
    now: float

    @property
    def sub(self) -> str:
        return str(self.id_token["sub"])

    def claim(self, name: str, *, max_len: int = 256) -> str | None:
        """A string claim from the ID token, else from UserInfo."""
        value = claim_str(self.id_token, name, max_len=max_len)
        if value is None and self.userinfo is not None:
            value = claim_str(self.userinfo, name, max_len=max_len)
        return value

    @property
    def authenticated_at(self) -> datetime:
        ts = self.id_token.get("auth_time")
        if not _is_number(ts):
            ts = self.id_token.get("iat")
        return datetime.fromtimestamp(float(cast(float, ts)), UTC)

    @property
    def raw(self) -> dict[str, Any]:
        data = {"id_token": dict(self.id_token)}
        if self.userinfo is not None:
            data["userinfo"] = dict(self.userinfo)
        return data


def _generic_identity(v: VerifiedClaims) -> Identity:
    return Identity(
        provider=v.provider,
        method=v.method or "oidc",
        subject=v.sub,
        national_id=None,
        loa=v.loa,
        authenticated_at=v.authenticated_at,
        given_name=v.claim("given_name"),
        family_name=v.claim("family_name"),
        email=v.claim("email"),
        raw=v.raw,
    )


# --- ID token claim checks (Core §3.1.3.7) --------------------------------------------


def validate_id_token_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
    skew: float = DEFAULT_SKEW,
    max_token_age: float = DEFAULT_MAX_ID_TOKEN_AGE,
    max_age: int | None = None,
) -> None:
    """Items 2-5 and 9-11, 13 of Core §3.1.3.7 (signature and acr are checked elsewhere).

    Raises :class:`InvalidInput` (or :class:`Expired` for time) naming the check in
    ``code``; messages never contain claim values.
    """
    # Item 2: iss exactly equal, no normalisation.
    iss = claims.get("iss")
    if not isinstance(iss, str):
        raise InvalidInput("ID token has no issuer", code="iss_missing")
    if not hmac.compare_digest(iss.encode(), issuer.encode()):
        raise InvalidInput("ID token issuer does not match", code="iss_mismatch")
    # Items 3-5: aud contains client_id; authbroker trusts no other audience.
    aud = claims.get("aud")
    if aud is None:
        raise InvalidInput("ID token has no audience", code="aud_missing")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise InvalidInput("ID token audience is malformed", code="aud_invalid")
    if client_id not in audiences:
        raise InvalidInput("ID token is not for this client", code="aud_mismatch")
    if any(a != client_id for a in audiences):
        raise InvalidInput("ID token names an untrusted audience", code="aud_untrusted")
    azp = claims.get("azp")
    if azp is not None and azp != client_id:
        raise InvalidInput("ID token azp is not this client", code="azp_mismatch")
    # Core §2: sub required, at most 255 ASCII characters.
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 1 <= len(sub) <= 255 or _PRINTABLE.fullmatch(sub) is None:
        raise InvalidInput("ID token subject is missing or malformed", code="sub_invalid")
    # Items 9-10 and RFC 7519 §4.1.5 (JOSE-11).
    exp, iat = claims.get("exp"), claims.get("iat")
    if exp is None:
        raise InvalidInput("ID token has no exp", code="exp_missing")
    if iat is None:
        raise InvalidInput("ID token has no iat", code="iat_missing")
    if not _is_number(exp) or not _is_number(iat):
        raise InvalidInput("ID token time claims are not numbers", code="bad_time_claim")
    if now >= float(exp) + skew:
        raise Expired("ID token has expired", code="id_token_expired")
    if float(iat) > now + skew:
        raise InvalidInput("ID token was issued in the future", code="iat_future")
    if now - float(iat) > max_token_age + skew:
        raise Expired("ID token is too old", code="id_token_too_old")
    nbf = claims.get("nbf")
    if nbf is not None and (not _is_number(nbf) or float(nbf) > now + skew):
        raise InvalidInput("ID token is not yet valid", code="nbf_future")
    # Item 11: nonce always sent, so always required and compared exactly.
    got = claims.get("nonce")
    if not isinstance(got, str):
        raise InvalidInput("ID token has no nonce", code="nonce_missing")
    if not hmac.compare_digest(got.encode(), nonce.encode()):
        raise InvalidInput("ID token nonce does not match", code="nonce_mismatch")
    # Item 13: auth_time present and recent when max_age was requested.
    auth_time = claims.get("auth_time")
    if max_age is not None and not _is_number(auth_time):
        raise InvalidInput("ID token has no auth_time", code="auth_time_missing")
    if _is_number(auth_time):
        # An authentication "in the future" would pass any max_age and date the
        # Identity wrongly: beyond the skew it is refused like iat (items 10, 13).
        authenticated = float(cast(float, auth_time))
        if authenticated > now + skew:
            raise InvalidInput("ID token auth_time is in the future", code="auth_time_future")
        if max_age is not None and now - authenticated > max_age + skew:
            raise Expired("authentication is older than max_age", code="auth_time_too_old")


# --- the provider ---------------------------------------------------------------------


class OidcProvider:
    """Generic OIDC RP; ``profile`` supplies acr selection and claim mapping."""

    flow_ttl = 600.0

    def __init__(
        self,
        config: ProviderConfig,
        settings: Settings,
        *,
        rp_keys: KeySet | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.settings = settings
        self.options = opts = parse_options(config)
        self._profile: ModuleType | None = (
            importlib.import_module(PROFILE_MODULES[opts.profile]) if opts.profile else None
        )
        self._clock = clock
        self._meta: dict[str, Any] | None = None
        self._meta_expires = 0.0
        self._jwks: JwksCache | None = None
        self._secret: str | None = None
        if opts.client_auth == "client_secret_basic":
            self._secret = config.secret("client_secret")
        keys = rp_keys if rp_keys is not None else load_rp_keys(config)
        if keys is None and opts.needs_rp_keys:
            if config.environment != "simulator":
                raise ConfigError(
                    "RP keys are required for this profile (rp_keys or rp_keys_env)",
                    key=config.key("rp_keys"),
                )
            keys = _private_keyset(generate_rp_keys(config), config.key("rp_keys"))
        if keys is not None:
            check_rp_keys(config, keys)
        self.rp_keys = keys or KeySet()
        self._signing: tuple[Key, str] | None = (
            self._pick_signing_key() if opts.needs_rp_keys else None
        )
        methods: tuple[str, ...] = ()
        if self._profile is not None and hasattr(self._profile, "methods"):
            methods = tuple(self._profile.methods(opts))
        self.info = ProviderInfo.from_config(config, methods=methods)

    # -- keys and metadata -------------------------------------------------------------

    def _pick_signing_key(self) -> tuple[Key, str]:
        """The RP key that signs request objects and client assertions, and its alg.

        Newest first: the first listed signing key signs; the others stay published
        for overlap during rotation (PROF-02). The alg is the key's own, else
        ``rp_signing_alg``, else the first of the provider's ``rp_signing_algs`` the
        key can do; it must be one the provider accepts (Telia: RS256 only).
        """
        wanted = self.config.get("rp_signing_kid")
        accepted = rp_signing_algs(self.config)
        for k in self.rp_keys.keys:
            if k.use != "sig" or (wanted and k.kid != wanted):
                continue
            chosen = k.alg or self.config.get("rp_signing_alg")
            candidates = [str(chosen)] if chosen else list(accepted)
            for alg in candidates:
                if alg in accepted and k._fits(alg, "sig"):
                    return k, alg
        raise ConfigError(
            f"no RP signing key for an algorithm the provider accepts ({', '.join(accepted)})",
            key=self.config.key("rp_keys"),
        )

    def public_jwks(self) -> dict[str, Any]:
        """The RP's public signing + encryption keys (for the provider to fetch)."""
        return self.rp_keys.to_public_jwks()

    def signed_jwks(self, now: float | None = None) -> str:
        """The same keys as a signed JWK Set (:func:`signed_rp_jwks`)."""
        return signed_rp_jwks(self.config, self.rp_keys, now=now)

    def _metadata(self) -> Gen[dict[str, Any]]:
        now = self._clock()
        if self._meta is not None and now < self._meta_expires:
            return self._meta
        opts = self.options
        resp = yield from fetch(
            HttpRequest.get(
                opts.discovery_url,
                headers={"Accept": "application/json"},
                timeout=opts.timeout,
                tag="discovery",
                shareable=True,
            )
        )
        if resp.status != 200:
            raise ProviderUnavailable(
                "provider metadata is unavailable",
                code="discovery_unavailable",
                details={"status": resp.status},
            )
        meta = resp.json_object()
        # Discovery §4.3 / RFC 8414 §3.3: byte-for-byte equal, no normalisation.
        issuer = meta.get("issuer")
        if not isinstance(issuer, str) or not hmac.compare_digest(
            issuer.encode(), opts.issuer.encode()
        ):
            raise ProviderError(
                "provider metadata names another issuer", code="discovery_issuer_mismatch"
            )
        loop = opts.allow_loopback_http
        name = self.config.name
        for field_name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            _check_url(meta.get(field_name), field_name, provider=name, allow_loopback_http=loop)
        if opts.userinfo != "none":
            _check_url(
                meta.get("userinfo_endpoint"),
                "userinfo_endpoint",
                provider=name,
                allow_loopback_http=loop,
            )
        if opts.par:
            _check_url(
                meta.get("pushed_authorization_request_endpoint"),
                "pushed_authorization_request_endpoint",
                provider=name,
                allow_loopback_http=loop,
            )
        elif meta.get("require_pushed_authorization_requests") is True:
            raise ConfigError(
                "the provider requires PAR; set par = true", key=self.config.key("par")
            )
        methods = meta.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise ProviderError("provider does not support PKCE S256", code="no_pkce_s256")
        jwks_uri = str(meta["jwks_uri"])
        if self._jwks is None or self._jwks.jwks_uri != jwks_uri:
            self._jwks = JwksCache(
                jwks_uri,
                ttl=opts.jwks_ttl,
                min_refetch_interval=opts.jwks_min_refetch_interval,
                now=self._clock,
                timeout=opts.timeout,
                provider=self.config.name,
            )
        self._meta = meta
        self._meta_expires = now + opts.discovery_ttl
        return meta

    @property
    def jwks(self) -> JwksCache | None:
        """The issuer's JWKS cache (after the first discovery)."""
        return self._jwks

    # -- client authentication ---------------------------------------------------------

    def _client_auth(
        self, form: dict[str, str], meta: Mapping[str, Any], now: float
    ) -> dict[str, str]:
        opts = self.options
        if opts.client_auth == "client_secret_basic":
            # RFC 6749 §2.3.1: form-urlencode id and secret, then base64 "id:secret".
            secret = self._secret or ""
            raw = f"{quote_plus(opts.client_id)}:{quote_plus(secret)}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        key, alg = cast(tuple[Key, str], self._signing)
        aud = opts.issuer if opts.client_assertion_aud == "issuer" else str(meta["token_endpoint"])
        claims = {
            # RFC 7523 §3 / Core §9: iss = sub = client_id; aud a plain string.
            "iss": opts.client_id,
            "sub": opts.client_id,
            "aud": aud,
            "jti": secrets.token_urlsafe(32),
            "iat": int(now),
            "exp": int(now) + 60,
        }
        form["client_id"] = opts.client_id
        form["client_assertion_type"] = CLIENT_ASSERTION_TYPE
        form["client_assertion"] = sign_jwt(claims, key, alg=alg)
        return {}

    # -- begin -------------------------------------------------------------------------

    def _choose_acr(self, params: Mapping[str, str]) -> AcrChoice:
        if self._profile is not None and hasattr(self._profile, "choose_acr"):
            return cast(AcrChoice, self._profile.choose_acr(self.options, params))
        return default_choose_acr(self.options, params)

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        opts = self.options
        meta = yield from self._metadata()
        choice = self._choose_acr(ctx.params)
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)  # 43 characters: within FAPI's 64
        verifier = secrets.token_urlsafe(32)  # RFC 7636 §4.1: 43 unreserved characters
        now = ctx.now
        request: dict[str, str] = {
            "response_type": "code",
            "client_id": opts.client_id,
            "redirect_uri": ctx.callback_url,
            "scope": " ".join(opts.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if choice.values:
            request["acr_values"] = " ".join(choice.values)
        if opts.max_age is not None:
            request["max_age"] = str(opts.max_age)
        if ctx.language in opts.ui_locales:
            request["ui_locales"] = ctx.language
        for name, value in opts.extra_auth_params.items():
            request.setdefault(name, value)
        front = self._request_object(request, now) if opts.request_object else request
        if opts.par:
            front = yield from self._push(front, meta, now)
        url = _with_query(str(meta["authorization_endpoint"]), front)
        # OIDC-03: the state is a single-use store entry besides the flow record.
        yield from store_put("oidc:state:" + _shash(state), b"1", self.flow_ttl)
        data = {
            "state": state,
            "nonce": nonce,
            "verifier": verifier,
            "issuer": opts.issuer,
            "redirect_uri": ctx.callback_url,
            "acr": list(choice.values),
            "loa": int(choice.loa),
            "method": choice.method,
            "iss_param": meta.get("authorization_response_iss_parameter_supported") is True
            or _bool(self.config, "require_iss_param", False),
        }
        return Next(Redirect(url), data)

    def _request_object(self, request: Mapping[str, str], now: float) -> dict[str, str]:
        """RFC 9101 §4-§6 / Core §6.1: a signed request object sent by value."""
        opts = self.options
        claims: dict[str, Any] = dict(request)
        claims.update(
            iss=opts.client_id,
            aud=opts.issuer,
            iat=int(now),
            nbf=int(now),
            exp=int(now) + 300,
            jti=secrets.token_urlsafe(32),
        )
        key, alg = cast(tuple[Key, str], self._signing)
        headers = {"typ": opts.request_object_typ} if opts.request_object_typ else None
        jar = sign_jwt(claims, key, alg=alg, headers=headers)
        # client_id and response_type (and scope, for OIDC) also outside (Core §6.1).
        return {
            "client_id": opts.client_id,
            "response_type": "code",
            "scope": request["scope"],
            "request": jar,
        }

    def _push(
        self, front: Mapping[str, str], meta: Mapping[str, Any], now: float
    ) -> Gen[dict[str, str]]:
        """RFC 9126 §2: push the request; the browser only carries the request_uri."""
        opts = self.options
        form = dict(front)
        headers = self._client_auth(form, meta, now)
        resp = yield from fetch(
            HttpRequest.post_form(
                str(meta["pushed_authorization_request_endpoint"]),
                form,
                headers=headers,
                timeout=opts.timeout,
                tag="par",
            )
        )
        if resp.status >= 500:
            raise ProviderUnavailable("PAR endpoint failed", code="par_unavailable")
        if resp.status not in (200, 201):
            raise ProviderError(
                "provider refused the pushed request",
                code="par_refused",
                details={"status": resp.status, "error": _error_code(resp)},
            )
        body = resp.json_object()
        uri = body.get("request_uri")
        if not isinstance(uri, str) or not 0 < len(uri) <= 512:
            raise InvalidInput("PAR response has no request_uri", code="par_bad_response")
        return {"client_id": opts.client_id, "request_uri": uri}

    # -- advance -----------------------------------------------------------------------

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Identity]:
        opts = self.options
        # OIDC-03: state first; nothing else is looked at before it matches.
        state = params.get("state")
        if not isinstance(state, str) or not state:
            raise InvalidInput("authorization response has no state", code="state_missing")
        if not hmac.compare_digest(state.encode(), str(data["state"]).encode()):
            raise InvalidInput("authorization response state does not match", code="state_mismatch")
        taken = yield from store_take("oidc:state:" + _shash(state))
        if taken is None:
            raise AlreadyUsed("authorization response was already used", code="state_replayed")
        # RFC 9207 §2.4: compare iss when present; required when advertised.
        iss = params.get("iss")
        if iss is not None:
            if not hmac.compare_digest(iss.encode(), str(data["issuer"]).encode()):
                raise InvalidInput(
                    "authorization response is from another issuer", code="iss_param_mismatch"
                )
        elif data.get("iss_param"):
            raise InvalidInput("authorization response has no iss", code="iss_param_missing")
        if "error" in params:
            raise _authorization_error(params)
        code = params.get("code")
        if not isinstance(code, str) or _UNRESERVED.fullmatch(code) is None:
            raise InvalidInput("authorization response has no valid code", code="code_missing")
        meta = yield from self._metadata()
        tokens = yield from self._redeem(code, data, meta, ctx.now)
        alg, claims = yield from self._verify_id_token(str(tokens["id_token"]), data, ctx.now)
        self._check_hashes(alg, claims, tokens, code)
        acr, loa = self._check_acr(claims, data)
        userinfo = None
        if opts.userinfo != "none":
            userinfo = yield from self._userinfo(str(tokens["access_token"]), claims, meta)
        verified = VerifiedClaims(
            provider=self.config.name,
            options=opts,
            id_token=claims,
            userinfo=userinfo,
            acr=acr,
            loa=loa,
            method=data.get("method"),
            now=ctx.now,
        )
        try:
            if self._profile is None:
                return _generic_identity(verified)
            return cast(Identity, self._profile.map_identity(verified))
        except AuthBrokerError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput("provider claims cannot be mapped", code="bad_claims") from exc

    def _redeem(
        self, code: str, data: Mapping[str, Any], meta: Mapping[str, Any], now: float
    ) -> Gen[dict[str, Any]]:
        opts = self.options
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": str(data["redirect_uri"]),
            "code_verifier": str(data["verifier"]),
        }
        headers = self._client_auth(form, meta, now)
        headers["Accept"] = "application/json"
        resp = yield from fetch(
            HttpRequest.post_form(
                str(meta["token_endpoint"]),
                form,
                headers=headers,
                timeout=opts.timeout,
                tag="token",
            )
        )
        if 300 <= resp.status < 400:
            # OIDC-10 / ASVS 15.3.2: back-channel redirects are never followed.
            raise ProviderError("token endpoint answered with a redirect", code="token_redirect")
        if resp.status >= 500:
            raise ProviderUnavailable("token endpoint failed", code="token_unavailable")
        if resp.status != 200:
            raise ProviderError(
                "token request was refused",
                code="token_refused",
                details={"status": resp.status, "error": _error_code(resp)},
            )
        if resp.content_type != "application/json":
            raise InvalidInput("token response is not JSON", code="token_bad_response")
        body = resp.json_object()
        token_type = body.get("token_type")
        # RFC 6749 §5.1 / §7.1: the type is case-insensitive.
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise InvalidInput("token response has an unsupported token_type", code="token_type")
        for name in ("access_token", "id_token"):
            value = body.get(name)
            if not isinstance(value, str) or not value or len(value) > 65536:
                raise InvalidInput(f"token response has no valid {name}", code="token_bad_response")
        # Before any use (at_hash, the UserInfo Authorization header): RFC 6750 §2.1.
        if _B64TOKEN.fullmatch(body["access_token"]) is None:
            raise InvalidInput(
                "token response access_token is not a bearer token", code="access_token_syntax"
            )
        return body

    def _verify_id_token(
        self, token: str, data: Mapping[str, Any], now: float
    ) -> Gen[tuple[str, dict[str, Any]]]:
        opts = self.options
        header = peek_header(token)
        if "enc" in header:
            token = self._decrypt_nested(token, "ID token")
        elif opts.id_token_encrypted:
            # JOSE-07 / PROF-01: encryption was agreed; a signed-only token is refused.
            raise InvalidInput("ID token was not encrypted", code="not_encrypted")
        jwks = cast(JwksCache, self._jwks)
        header, claims = yield from jwks.verify_jwt(token, algorithms=opts.id_token_algs)
        validate_id_token_claims(
            claims,
            issuer=str(data["issuer"]),
            client_id=opts.client_id,
            nonce=str(data["nonce"]),
            now=now,
            skew=opts.skew,
            max_token_age=opts.max_id_token_age,
            max_age=opts.max_age,
        )
        return str(header["alg"]), claims

    def _decrypt_nested(self, token: str, what: str) -> str:
        opts = self.options
        if not any(k.use == "enc" for k in self.rp_keys.keys):
            raise InvalidInput(f"{what} is encrypted but no key was agreed", code="unexpected_jwe")
        _, plaintext = decrypt_jwe(
            token, self.rp_keys, algorithms=opts.jwe_algs, encryptions=opts.jwe_encs
        )
        try:
            inner = plaintext.decode("ascii")
        except UnicodeDecodeError:
            inner = ""
        # JOSE-07: the plaintext must be a JWS; bare JSON encrypted to our public key
        # could come from anyone.
        if inner.count(".") != 2 or inner.startswith("{"):
            raise InvalidInput(f"encrypted {what} does not contain a JWS", code="not_nested")
        return inner

    def _check_hashes(
        self, alg: str, claims: Mapping[str, Any], tokens: Mapping[str, Any], code: str
    ) -> None:
        at_hash = claims.get("at_hash")
        if at_hash is not None:
            expected = token_hash(
                str(tokens["access_token"]), str(alg), encoding=self.options.at_hash_encoding
            )
            if not isinstance(at_hash, str) or not hmac.compare_digest(at_hash, expected):
                raise InvalidInput("ID token at_hash does not match", code="at_hash_mismatch")
        c_hash = claims.get("c_hash")
        if c_hash is not None:
            expected = token_hash(code, str(alg))
            if not isinstance(c_hash, str) or not hmac.compare_digest(c_hash, expected):
                raise InvalidInput("ID token c_hash does not match", code="c_hash_mismatch")

    def _check_acr(
        self, claims: Mapping[str, Any], data: Mapping[str, Any]
    ) -> tuple[str | None, Loa]:
        """Core §3.1.3.7 item 12, fail closed (PROF-03, PROF-04)."""
        opts = self.options
        acr = claims.get("acr")
        requested = [str(v) for v in data.get("acr") or ()]
        floor = Loa(int(data.get("loa", int(self.config.loa))))
        if acr is None:
            if opts.require_acr:
                raise InsufficientLoa("ID token has no acr", code="acr_missing")
            return None, floor
        if not isinstance(acr, str):
            raise InvalidInput("ID token acr is malformed", code="acr_invalid")
        loa = opts.acr_loa.get(acr)
        if loa is None:
            raise InsufficientLoa("ID token acr is not a known level", code="acr_unknown")
        if opts.acr_match == "exact" and requested and acr not in requested:
            raise InsufficientLoa("ID token acr is not the requested method", code="acr_mismatch")
        if loa < floor:
            raise InsufficientLoa(
                "authentication level is below the requested", code="acr_insufficient"
            )
        return acr, loa

    def _userinfo(
        self, access_token: str, claims: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> Gen[dict[str, Any]]:
        """Core §5.3: bearer token in the header only; format per profile; sub must match."""
        opts = self.options
        resp = yield from fetch(
            HttpRequest.get(
                str(meta["userinfo_endpoint"]),
                headers={
                    "Authorization": f"Bearer {access_token}",
                    "Accept": "application/jwt, application/json",
                },
                timeout=opts.timeout,
                tag="userinfo",
            )
        )
        if resp.status >= 500:
            raise ProviderUnavailable("UserInfo endpoint failed", code="userinfo_unavailable")
        if resp.status != 200:
            raise ProviderError(
                "UserInfo request was refused",
                code="userinfo_refused",
                details={"status": resp.status},
            )
        ctype = resp.content_type
        if opts.userinfo == "json":
            if ctype != "application/json":
                raise InvalidInput("UserInfo is not JSON", code="userinfo_format")
            info = resp.json_object()
        else:
            if ctype != "application/jwt":
                raise InvalidInput("UserInfo is not a JWT", code="userinfo_format")
            try:
                token = resp.body.decode("ascii").strip()
            except UnicodeDecodeError as exc:
                raise InvalidInput("UserInfo is not a JWT", code="userinfo_format") from exc
            header = peek_header(token)
            if "enc" in header:
                if opts.userinfo != "encrypted":
                    raise InvalidInput("UserInfo is unexpectedly encrypted", code="userinfo_format")
                token = self._decrypt_nested(token, "UserInfo")
            elif opts.userinfo == "encrypted":
                raise InvalidInput("UserInfo was not encrypted", code="not_encrypted")
            jwks = cast(JwksCache, self._jwks)
            _, info = yield from jwks.verify_jwt(token, algorithms=opts.id_token_algs)
            # Core §5.3.2: when signed, iss and aud should be present; check when they
            # are. iss is the OP issuer unless the profile names the server that signs
            # UserInfo (BankID: the TINFO resource server's base URL).
            iss = info.get("iss")
            expected_iss = opts.userinfo_issuer or opts.issuer
            if iss is not None and iss != expected_iss:
                raise InvalidInput("UserInfo issuer does not match", code="userinfo_iss_mismatch")
            aud = info.get("aud")
            if aud is not None and aud not in (opts.client_id, [opts.client_id]):
                raise InvalidInput("UserInfo audience does not match", code="userinfo_aud_mismatch")
        _match_userinfo_subject(opts.userinfo_subject_claims, claims, info)
        return info


def _match_userinfo_subject(
    pairs: Sequence[str], id_token: Mapping[str, Any], info: Mapping[str, Any]
) -> None:
    """UserInfo describes the ID token's person (Core §5.3.4: equal ``sub``).

    Each entry is a claim name (same on both sides) or ``id_claim:userinfo_claim``.
    Every pair present in both must be equal, and at least one must be present:
    BankID's TINFO has its own ``sub``, so that profile compares ``bankid_altsub``
    and ``nnin_altsub``/``nnin`` instead. A missing or different value is refused.
    """
    compared = 0
    for pair in pairs:
        id_name, _, info_name = pair.partition(":")
        mine, theirs = id_token.get(id_name), info.get(info_name or id_name)
        if mine is None or theirs is None:
            continue
        if not isinstance(theirs, str) or not hmac.compare_digest(
            theirs.encode(), str(mine).encode()
        ):
            raise InvalidInput("UserInfo subject does not match", code="userinfo_sub_mismatch")
        compared += 1
    if not compared:
        raise InvalidInput("UserInfo subject does not match", code="userinfo_sub_mismatch")


def default_choose_acr(opts: OidcOptions, params: Mapping[str, str]) -> AcrChoice:
    """``acr`` begin parameter (one of ``acr_values_allowed``) or the profile default."""
    wanted = params.get("acr")
    if wanted is not None:
        if wanted not in opts.acr_values_allowed:
            raise InvalidInput("requested acr is not offered", code="acr_not_offered")
        values: tuple[str, ...] = (wanted,)
    else:
        values = opts.acr_values
    if not values:
        return AcrChoice((), Loa.LOW)
    return AcrChoice(values, min(opts.acr_loa[v] for v in values))


def _error_code(resp: HttpResponse) -> str | None:
    try:
        value = resp.json_object().get("error")
    except InvalidInput:
        return None
    if isinstance(value, str) and _ERROR_CODE.fullmatch(value):
        return value
    return None


def _authorization_error(params: Mapping[str, str]) -> AuthBrokerError:
    """Core §3.1.2.6: the user's cancel is not a provider failure."""
    error = params.get("error", "")
    code = error if _ERROR_CODE.fullmatch(error) else "invalid_error"
    # error_description is untrusted text: length-capped, printable only, details only.
    description = params.get("error_description", "")[:200]
    if _PRINTABLE.fullmatch(description) is None:
        description = ""
    details = {"error": code, "description": description}
    if code in _CANCEL_ERRORS:
        return UserCancelled(
            "the user cancelled at the provider", code="cancelled", details=details
        )
    return ProviderError(
        "the provider returned an error", code="authorization_error", details=details
    )


def from_config(config: ProviderConfig, settings: Settings) -> OidcProvider:
    """Registry entry point for protocol ``oidc``."""
    return OidcProvider(config, settings)
