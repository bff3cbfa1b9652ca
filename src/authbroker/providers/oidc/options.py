"""The OIDC relying party's options: the ``CONFIG_OPTIONS`` schema and :class:`OidcOptions`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from ...config import ProviderConfig
from ...config_schema import Option, Schema, refuse_loopback_http, refuse_preproduction_acr
from ...crypto.jose import (
    DEFAULT_JWE_ALGORITHMS,
    DEFAULT_JWE_ENCRYPTIONS,
)
from ...errors import (
    ConfigError,
)
from ...identity import Loa
from ..base import (
    require_endpoint,
)
from .helpers import (
    _ASYMMETRIC_JWS,
    _USERINFO_FORMATS,
    DEFAULT_ID_TOKEN_ALGS,
    DEFAULT_MAX_ID_TOKEN_AGE,
    DEFAULT_SKEW,
    MAX_SKEW,
    PROFILE_MODULES,
    _is_number,
)

__all__ = ["CONFIG_OPTIONS", "OidcOptions", "parse_options"]


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
        # claims_profile = "broker-oidc" (authbroker.providers.oidc.profiles.broker_oidc)
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
