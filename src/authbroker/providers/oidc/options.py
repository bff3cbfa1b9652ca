"""The OIDC relying party's options: the ``CONFIG_OPTIONS`` schema and :class:`OidcOptions`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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
)

__all__ = ["CONFIG_OPTIONS", "OidcOptions", "parse_options"]


# --- options -------------------------------------------------------------------------


#: Every key an ``oidc`` provider table or profile may hold (checked at load_config;
#: declare a new option here when parse_options or a claims profile starts reading it).
CONFIG_OPTIONS = Schema(
    "oidc",
    "OpenID Connect providers (FTN, Norwegian BankID, TARA, eID brokers).",
    (
        Option(
            "issuer",
            "string",
            None,
            "the OP's issuer URL, compared exactly",
            required=True,
        ),
        Option(
            "discovery_url",
            "string",
            None,
            "discovery document (default: issuer + /.well-known/...)",
        ),
        Option("client_id", "string", None, "client id registered at the OP", required=True),
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
            "clock_skew",
            "number",
            DEFAULT_SKEW,
            "seconds of clock skew allowed",
            bounds=(0, MAX_SKEW),
        ),
        Option(
            "max_id_token_age",
            "number",
            DEFAULT_MAX_ID_TOKEN_AGE,
            "oldest ID token accepted, seconds from iat",
            bounds=(30, 3600),
        ),
        Option(
            "max_age", "integer", None, "max_age authentication request parameter", bounds=(0, None)
        ),
        Option("ui_locales", "string or string list", [], "languages passed as ui_locales"),
        Option(
            "extra_auth_params",
            "table",
            {},
            "extra authorization request parameters",
            production=refuse_preproduction_acr,
        ),
        Option(
            "discovery_ttl",
            "number",
            3600,
            "seconds discovery metadata is cached",
            bounds=(0, 86400),
        ),
        Option("jwks_ttl", "number", 3600, "seconds the OP's JWKS is cached", bounds=(1, 86400)),
        Option(
            "jwks_min_refetch_interval",
            "number",
            60,
            "least seconds between JWKS refetches",
            bounds=(0, 3600),
        ),
        Option("timeout", "number", 10, "HTTP timeout in seconds", bounds=(0.1, 60)),
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
            "rp_initiated_logout",
            "boolean",
            True,
            "on logout, send the browser to the OP's end_session_endpoint when it has one",
        ),
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
            ["PS256", "ES256", "RS256"],
            "algorithms the OP accepts for our request objects and client assertions,"
            " in our order of preference",
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
        Option(
            "signed_jwks_lifetime",
            "integer",
            86400,
            "seconds a signed JWKS is valid",
            bounds=(300, 30 * 86400),
        ),
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
        # authbroker.testing.simulators.oidc
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
    #: RFC 9207 ``iss`` required in every authorization response, advertised or not.
    require_iss_param: bool = False
    #: RP-Initiated Logout 1.0: logout continues at the OP's ``end_session_endpoint``.
    rp_initiated_logout: bool = True
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @property
    def needs_rp_keys(self) -> bool:
        return (
            self.client_auth == "private_key_jwt"
            or self.request_object
            or self.id_token_encrypted
            or self.userinfo == "encrypted"
        )


def parse_options(config: ProviderConfig) -> OidcOptions:
    """Validate the provider config once, at construction (fail at start, not mid-flow).

    Types, choices, ranges, required keys and defaults come from
    :data:`CONFIG_OPTIONS` (:meth:`~authbroker.config_schema.Schema.read`); what is
    checked here are the rules a schema cannot express: between keys, and on the
    items of a list or table.
    """
    v = CONFIG_OPTIONS.read(config.options, config.key)
    simulator = config.environment == "simulator"
    allow_loopback = simulator or v["allow_loopback_http"]
    issuer: str = v["issuer"]
    require_endpoint(config, "issuer", allow_loopback_http=allow_loopback)
    # Discovery §4: the configuration document lives under the issuer, path appended.
    discovery = v["discovery_url"] or issuer.rstrip("/") + "/.well-known/openid-configuration"
    acr_loa: dict[str, Loa] = {}
    for name, level in v["acr_loa"].items():
        try:
            acr_loa[str(name)] = Loa.parse(level)
        except ConfigError:
            raise ConfigError("unknown level of assurance", key=config.key("acr_loa")) from None
    acr_values: tuple[str, ...] = v["acr_values"]
    allowed: tuple[str, ...] = (
        acr_values if v["acr_values_allowed"] is None else (v["acr_values_allowed"])
    )
    for value in (*acr_values, *allowed):
        if value not in acr_loa:
            raise ConfigError(f"acr value {value!r} has no level", key=config.key("acr_loa"))
    id_token_algs: tuple[str, ...] = v["id_token_signing_algs"]
    bad = [a for a in id_token_algs if a not in _ASYMMETRIC_JWS]
    if bad or not id_token_algs:
        # JOSE-01: no "none", and HMAC ID tokens are not offered at all.
        raise ConfigError("only asymmetric JWS algorithms", key=config.key("id_token_signing_algs"))
    jwe_algs: tuple[str, ...] = v["jwe_algs"]
    jwe_encs: tuple[str, ...] = v["jwe_encs"]
    if not set(jwe_algs) <= DEFAULT_JWE_ALGORITHMS or not set(jwe_encs) <= (
        DEFAULT_JWE_ENCRYPTIONS
    ):
        raise ConfigError(
            "JWE algorithm not on the allow-list (JOSE-06)", key=config.key("jwe_algs")
        )
    extra: dict[str, Any] = v["extra_auth_params"]
    if not all(isinstance(value, str) for value in extra.values()):
        raise ConfigError("must be a table of strings", key=config.key("extra_auth_params"))
    scopes: tuple[str, ...] = v["scopes"]
    if "openid" not in scopes:
        raise ConfigError("must include openid", key=config.key("scopes"))
    if v["userinfo_issuer"] is not None:
        require_endpoint(config, "userinfo_issuer", allow_loopback_http=allow_loopback)
    subject_claims: tuple[str, ...] = v["userinfo_subject_claims"]
    if not subject_claims or any(
        not 1 <= len(part) <= 64 for c in subject_claims for part in c.split(":", 1)
    ):
        raise ConfigError(
            "must list claim names (or id_claim:userinfo_claim pairs)",
            key=config.key("userinfo_subject_claims"),
        )
    synthetic = v["allow_synthetic_ids"]
    return OidcOptions(
        issuer=issuer,
        discovery_url=discovery,
        client_id=v["client_id"],
        client_auth=v["client_auth"],
        scopes=scopes,
        acr_values=acr_values,
        acr_values_allowed=allowed,
        acr_loa=acr_loa,
        acr_match=v["acr_match"],
        require_acr=v["require_acr"],
        request_object=v["request_object"],
        request_object_typ=v["request_object_typ"] or None,
        par=v["par"],
        id_token_encrypted=v["id_token_encrypted"],
        id_token_algs=id_token_algs,
        jwe_algs=jwe_algs,
        jwe_encs=jwe_encs,
        userinfo=v["userinfo"],
        client_assertion_aud=v["client_assertion_aud"],
        at_hash_encoding=v["at_hash_encoding"],
        skew=v["clock_skew"],
        max_id_token_age=v["max_id_token_age"],
        max_age=v["max_age"],
        ui_locales=v["ui_locales"],
        extra_auth_params=extra,
        discovery_ttl=v["discovery_ttl"],
        jwks_ttl=v["jwks_ttl"],
        jwks_min_refetch_interval=v["jwks_min_refetch_interval"],
        timeout=v["timeout"],
        allow_loopback_http=allow_loopback,
        profile=v["claims_profile"],
        allow_synthetic_ids=config.environment != "production" if synthetic is None else synthetic,
        userinfo_issuer=v["userinfo_issuer"],
        userinfo_subject_claims=subject_claims,
        require_iss_param=v["require_iss_param"],
        rp_initiated_logout=v["rp_initiated_logout"],
        raw=dict(config.options),
    )
