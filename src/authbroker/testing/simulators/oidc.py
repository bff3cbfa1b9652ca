"""A configurable OpenID Provider on loopback, for every OIDC profile.

The simulator is a real, strict peer (DESIGN principle 1): it publishes discovery
metadata and a JWKS, validates authorization requests (exact ``redirect_uri``,
PKCE S256 only, signed request objects per RFC 9101 with the checks of security
requirements OIDC-13/X-28, pushed requests per RFC 9126 with single-use
``request_uri``), authenticates the client at the token endpoint
(``client_secret_basic`` or ``private_key_jwt`` with single-use ``jti``), issues
one-time authorization codes (a replayed code is refused and revokes the tokens
issued from it), signs (and, per profile, encrypts) ID tokens and serves UserInfo
as JSON, a signed JWT or a nested JWE.

It reads the same provider config as the RP (``profile``, ``client_auth``,
``request_object``, ``par``, ``id_token_encrypted``, ``userinfo``...), so the two
sides always agree, and it generates the RP's keys and client secret on the fly
(returned in ``overrides``).

Tests reach :class:`OpControl` through ``RunningSimulator.extra["control"]``:
``auto_approve`` picks a test person without the consent page, ``deny`` answers
with an error, and ``misbehave(...)`` switches on the mutations listed in
:data:`MISBEHAVIOURS` (both the legacy ``rp-*`` and the current
``oidcc-client-test-*`` variants of the OpenID Foundation conformance suite).
``extra["requests"]`` counts requests per endpoint (``count("token")``).
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit

from ...config import ProviderConfig, Settings
from ...crypto.jose import Key, KeySet, encrypt_jwe, sign_jwt, verify_jwt
from ...errors import AuthBrokerError, ConfigError
from ...providers.oidc import (
    CLIENT_ASSERTION_TYPE,
    PROFILE_MODULES,
    generate_rp_keys,
    parse_options,
    pkce_challenge,
    rp_key_algs,
    token_hash,
)
from ..registry import RunningSimulator
from .server import InProcessServer, LoopbackServer, SimRequest, SimResponse

__all__ = [
    "MISBEHAVIOURS",
    "PERSONS",
    "PUBLISHED",
    "OpControl",
    "OpenIdProviderSim",
    "Published",
    "TestPerson",
    "start",
]

PREFIX = "/op"

#: Every mutation the simulator can apply, with what it does.
MISBEHAVIOURS: Mapping[str, str] = {
    # ID token signature / header
    "sig-reorder": "reverse the characters of the ID token signature (legacy idts)",
    "sig-xor": "XOR every signature byte with 0x5A (current suite)",
    "alg-none": "unsigned ID token with alg none",
    "alg-hs256": "ID token MAC'ed with HS256 keyed by the client secret",
    "kid-absent-single": "JWKS keys without kid (one RSA, one EC); token without kid",
    "kid-absent-multiple": "JWKS with three RSA keys without kid; token without kid",
    "unparseable-key-in-jwks": "JWKS also holds an AKP key and an invented kty",
    "jwks-private-members": "JWKS publishes the RSA signing key with its private members",
    "rotate-before-signing": "new signing key and kid right before the next ID token (once)",
    "embedded-jwk": "signed by an attacker key that is embedded as jwk/jku in the header",
    # ID token claims
    "iss-example": "iss = https://example.org/",
    "iss-append": "iss = issuer + '1'",
    "iss-missing": "no iss",
    "aud-example": "aud = https://example.com/",
    "aud-append": "aud = client_id + '1'",
    "aud-missing": "no aud",
    "aud-secondary": "aud = [client_id, 'other-client']",
    "aud-array": "aud = [client_id] (valid)",
    "azp-other": "azp = 'other-client'",
    "nonce-012345678": "nonce = 012345678 (legacy)",
    "nonce-append": "nonce + '1'",
    "nonce-missing": "no nonce",
    "exp-expired": "exp five minutes and one second in the past",
    "exp-missing": "no exp",
    "exp-string": "exp as a string",
    "iat-missing": "no iat",
    "iat-future": "iat two minutes in the future",
    "iat-week-old": "iat one week in the past",
    "nbf-future": "nbf two minutes in the future",
    "sub-missing": "no sub",
    "sub-long": "sub of 300 characters",
    "acr-lower": "acr one level below what was requested",
    "acr-other-method": "acr names a method other than the requested one",
    "acr-missing": "no acr",
    "acr-unknown": "acr = urn:example:unknown",
    "at-hash-wrong": "at_hash + '1'",
    "at-hash-missing": "no at_hash (valid)",
    "c-hash-wrong": "c_hash present and wrong",
    "auth-time-missing": "no auth_time",
    "auth-time-future": "auth_time two minutes in the future",
    "national-id-bad-checksum": "the person's identity number with a wrong check character",
    # encryption
    "no-encryption": "signed-only ID token although encryption is agreed",
    "encrypt-plain-claims": "JWE whose plaintext is bare JSON claims (no inner JWS)",
    "encrypt-rsa1_5": "JWE header alg RSA1_5",
    "encrypt-dir": "JWE header alg dir",
    # front channel
    "iss-param-wrong": "authorization response iss = another issuer",
    "iss-param-missing": "authorization response without iss (while advertised)",
    "iss-param-slash": "authorization response iss with a trailing slash",
    "replay-code": "redirect with the last already-redeemed code",
    "error-foreign-state": "error response carrying a forged state",
    # discovery
    "discovery-issuer-mismatch": "metadata issuer = issuer + 'INVALID'",
    "discovery-issuer-example": "metadata issuer = https://example.com",
    "discovery-issuer-slash": "metadata issuer with a trailing slash",
    "discovery-http-endpoint": "token_endpoint on plain http on a public host",
    "discovery-malformed-url": "jwks_uri = https://[::1/x (not a parseable URL)",
    "iss-param-not-advertised": "metadata without authorization_response_iss_parameter_supported",
    # token endpoint
    "token-type-case": "token_type = bEARER (valid)",
    "token-no-expires-in": "token response without expires_in (valid)",
    "token-redirect": "token endpoint answers 302",
    "token-error": "token endpoint answers 400 invalid_grant",
    "access-token-bad-char": "access_token with a space, outside RFC 6750 b64token",
    "access-token-non-ascii": "access_token with a non-ASCII letter (so no at_hash)",
    # UserInfo
    "userinfo-sub-foobar": "UserInfo sub (and the profile's person-matching claims) = foobar",
    "userinfo-sub-append": "UserInfo sub (and the profile's person-matching claims) + 'invalid'",
    "userinfo-unsigned": "UserInfo as plain JSON although a JWT is agreed",
    "userinfo-wrong-key": "UserInfo signed by a key not in the JWKS",
    "userinfo-iss-wrong": "signed UserInfo with another iss",
    "userinfo-aud-wrong": "signed UserInfo with another aud",
    "userinfo-plain-jwe": "UserInfo JWE whose plaintext is bare JSON",
}


@dataclass(frozen=True, slots=True)
class TestPerson:
    """A simulator test person with a valid identity number."""

    id: str
    country: str
    national_id: str = field(repr=False)
    given_name: str
    family_name: str
    birthdate: str
    #: Finnish electronic identification number (Mobiilivarmenne / ID card); FI only.
    satu: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "country": self.country,
            "national_id": self.national_id,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "birthdate": self.birthdate,
        }


#: Test persons per country; every number passes its checksum (published test data:
#: Telia integration guide v2.35, Signicat's FTN documentation, TARA's Testing.md,
#: Idura's documentation, Skatteetaten's synthetic numbers).
PERSONS: Mapping[str, tuple[TestPerson, ...]] = {
    "FI": (
        TestPerson(
            "fi-vaino", "FI", "070770-905D", "Väinö", "Tunnistus", "1970-07-07", "99900101X"
        ),
        TestPerson("fi-aktia", "FI", "010170-999R", "Aino", "Aktia", "1970-01-01", "99900102Y"),
    ),
    "NO": (
        TestPerson("no-kari", "NO", "27034698436", "Kari", "Nordmann", "1946-03-27"),
        TestPerson("no-ola", "NO", "15108695088", "Ola", "Nordmann", "1986-10-15"),
    ),
    "EE": (
        TestPerson("ee-jaak", "EE", "38001085718", "Jaak-Kristjan", "Jõeorg", "1980-01-08"),
        TestPerson("ee-mid", "EE", "60001017869", "Eid2016", "Testnumber", "2000-01-01"),
    ),
    "SE": (
        TestPerson("se-sven", "SE", "196802020575", "Sven", "Svensson", "1968-02-02"),
        TestPerson("se-karin", "SE", "198112289874", "Karin", "Karlsson", "1981-12-28"),
    ),
}

_PROFILE_COUNTRIES = {"ftn": ("FI",), "bankid-no": ("NO",), "tara": ("EE",)}


@dataclass(frozen=True, slots=True)
class Published:
    """What the real OP of a profile publishes; the simulator accepts exactly this.

    The lists come from the provider's own documentation or metadata (``source``),
    never from the RP's configuration, so a misconfigured RP fails here as it would
    against the real service.
    """

    id_token_signing: tuple[str, ...]
    #: request_object_signing_alg_values_supported
    request_object_signing: tuple[str, ...]
    token_endpoint_auth_methods: tuple[str, ...]
    #: token_endpoint_auth_signing_alg_values_supported (private_key_jwt)
    token_endpoint_auth_signing: tuple[str, ...]
    #: id_token/userinfo_encryption_alg_values_supported and _enc_values_supported
    encryption_algs: tuple[str, ...]
    encryption_encs: tuple[str, ...]
    #: UserInfo JWT issued by a separate resource server (its base-URL path), or None.
    userinfo_server: str | None = None
    source: str = ""


#: Published algorithm sets per profile (docs/providers/oidc.md "Simulator fidelity").
PUBLISHED: Mapping[str, Published] = {
    # Telia Tunnistus: integration guide v2.35 §2.1.1, §2.4.2, §2.6 and client metadata /
    # entity statement (RS256 only for our JWTs; RSA-OAEP/RSA1_5/A128KW, no RSA-OAEP-256).
    "ftn": Published(
        id_token_signing=("RS256",),
        request_object_signing=("RS256",),
        token_endpoint_auth_methods=("private_key_jwt",),
        token_endpoint_auth_signing=("RS256",),
        encryption_algs=("RSA-OAEP", "RSA1_5", "A128KW"),
        encryption_encs=("A128CBC-HS256", "A128GCM"),
        source="https://github.com/JarmoTelia/tunnistus",
    ),
    # TARA TechnicalSpecification v1.21: RS256 ID tokens, client_secret_basic/_post,
    # no request objects, no encryption.
    "tara": Published(
        id_token_signing=("RS256",),
        request_object_signing=(),
        token_endpoint_auth_methods=("client_secret_basic", "client_secret_post"),
        token_endpoint_auth_signing=(),
        encryption_algs=(),
        encryption_encs=(),
        source="https://e-gov.github.io/TARA-Doku/TechnicalSpecification",
    ),
    # Norwegian BankID: RS256 ID tokens (historic metadata); private_key_jwt on request
    # (algorithms unpublished: Keycloak's RS256/PS256/ES256 assumed); signed request
    # objects supported; encrypted ID tokens not documented; UserInfo from TINFO.
    "bankid-no": Published(
        id_token_signing=("RS256",),
        request_object_signing=("RS256", "PS256", "ES256"),
        token_endpoint_auth_methods=(
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ),
        token_endpoint_auth_signing=("RS256", "PS256", "ES256"),
        encryption_algs=(),
        encryption_encs=(),
        userinfo_server="/tinfo",
        source="https://developer.bankid.no/bankid-oidc-provider/",
    ),
    # Idura: RS256 ID tokens; private_key_jwt RS256/ES256 (second-hand); JWE algorithms
    # unpublished (RSA-OAEP-256 / RSA-OAEP assumed, as a public Idura client uses).
    "broker-oidc": Published(
        id_token_signing=("RS256",),
        request_object_signing=("RS256", "ES256"),
        token_endpoint_auth_methods=(
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ),
        token_endpoint_auth_signing=("RS256", "ES256"),
        encryption_algs=("RSA-OAEP-256", "RSA-OAEP"),
        encryption_encs=("A128CBC-HS256", "A256GCM", "A128GCM"),
        source="https://docs.idura.app/verify/e-ids/finnish-trust-network",
    ),
}

#: A profile-less OP (conformance tests): a generic, FAPI-style modern OP.
_GENERIC = Published(
    id_token_signing=("RS256", "PS256", "ES256"),
    request_object_signing=("PS256", "ES256", "RS256"),
    token_endpoint_auth_methods=("client_secret_basic", "private_key_jwt"),
    token_endpoint_auth_signing=("PS256", "ES256", "RS256"),
    encryption_algs=("RSA-OAEP-256", "RSA-OAEP", "ECDH-ES+A256KW", "ECDH-ES+A128KW", "ECDH-ES"),
    encryption_encs=("A128CBC-HS256", "A256CBC-HS512", "A128GCM", "A256GCM"),
)

# Generated keys are shared by simulators of one process (RSA generation is slow);
# each simulator still has its own issuer, so tokens do not verify across them.
_POOL: dict[str, Key] = {}
_POOL_LOCK = threading.Lock()


def _unbound(key: Key, kid: str) -> Key:
    """The same key material without a fixed alg (one RSA key signs RS256 and PS256)."""
    full = key.private_jwk() if key.is_private else key.public_jwk()
    jwk = {k: v for k, v in full.items() if k != "alg"}
    jwk["kid"] = kid
    return Key.from_jwk(jwk)


def _pooled(name: str, factory: Callable[[], Key]) -> Key:
    with _POOL_LOCK:
        key = _POOL.get(name)
        if key is None:
            key = _POOL[name] = factory()
        return key


def _rsa(use: str, kid: str) -> Key:
    alg = "PS256" if use == "sig" else "RSA-OAEP-256"
    return _unbound(Key.generate("RSA", use=use, alg=alg), kid)  # type: ignore[arg-type]


def _rp_keys(config: ProviderConfig) -> KeySet:
    """The RP's keys exactly as ``authbroker keys generate --provider`` makes them
    (pooled per algorithm pair: RSA generation is slow); none if it needs none."""
    sig_alg, enc_alg = rp_key_algs(config)
    if sig_alg is None and enc_alg is None:
        return KeySet()
    name = f"rp-keys-{sig_alg}-{enc_alg}"
    with _POOL_LOCK:
        members = [k for k in (_POOL.get(f"{name}-sig"), _POOL.get(f"{name}-enc")) if k]
        if not members:
            for member in generate_rp_keys(config)["keys"]:
                _POOL[f"{name}-{member['use']}"] = key = Key.from_jwk(member)
                members.append(key)
        return KeySet(members)


def _extra_key(i: int) -> Key:
    return _pooled(f"op-extra-{i}", lambda: _rsa("sig", f"op-extra-{i}"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class OpControl:
    """Switches for tests and the CLI; plain attributes, read on every request."""

    def __init__(self) -> None:
        self._misbehave: set[str] = set()
        #: ``True`` (first suitable person) or a person id: skip the consent page.
        self.auto_approve: bool | str | None = None
        #: Answer the authorization request with this OAuth error code.
        self.deny: str | None = None
        #: Sign ID tokens with this algorithm (RS256 / PS256 / ES256).
        self.id_token_alg: str | None = None
        #: JWE key management algorithm for encrypted responses.
        self.jwe_alg: str | None = None
        #: Seconds added to the simulator clock.
        self.clock_offset = 0.0

    def misbehave(self, *names: str) -> None:
        """Replace the active mutations (no names: behave)."""
        unknown = set(names) - set(MISBEHAVIOURS)
        if unknown:
            raise ConfigError(f"unknown misbehaviour(s): {sorted(unknown)}")
        self._misbehave = set(names)

    def active(self, name: str) -> bool:
        return name in self._misbehave

    def consume(self, name: str) -> bool:
        """One-shot mutations switch themselves off when used."""
        if name in self._misbehave:
            self._misbehave.discard(name)
            return True
        return False

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


class _Refused(Exception):
    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


@dataclass
class _Grant:
    params: dict[str, str]
    person: TestPerson
    auth_time: int
    expires: float
    access_tokens: list[str] = field(default_factory=list)


class OpenIdProviderSim:
    """The provider side; one instance per started simulator."""

    def __init__(
        self, config: ProviderConfig, settings: Settings, *, in_process: bool = False
    ) -> None:
        self.config = config
        self.control = OpControl()
        self.profile = config.get("claims_profile")
        if self.profile is not None and self.profile not in PROFILE_MODULES:
            raise ConfigError("unknown profile", key=config.key("claims_profile"))
        self.client_id = str(config.get("client_id") or f"authbroker-{config.name}")
        self.client_secret = secrets.token_urlsafe(32)
        self.redirect_uri = f"{settings.callback_base}/callback/{config.name}"
        self.published = PUBLISHED.get(str(self.profile), _GENERIC)
        self.rp_keys = _rp_keys(config)
        self.rp_public = KeySet()
        self.register_client_keys(self.rp_keys.to_public_jwks())
        self.rsa_key = _pooled("op-rsa", lambda: _rsa("sig", "op-rsa-1"))
        self.ec_key = _pooled(
            "op-ec", lambda: Key.generate("EC", use="sig", alg="ES256", kid="op-ec-1")
        )
        self.lock = threading.Lock()
        self.codes: dict[str, _Grant] = {}
        self.redeemed: dict[str, _Grant] = {}
        self.access: dict[str, _Grant] = {}
        self.par_requests: dict[str, tuple[dict[str, str], float]] = {}
        self.txns: dict[str, tuple[dict[str, str], float]] = {}
        self.seen_jti: set[str] = set()
        self.last_redeemed: str | None = None
        self.jwks_path = f"{PREFIX}/jwks/{secrets.token_hex(8)}"
        self.server: LoopbackServer | InProcessServer = (
            InProcessServer(self.handle) if in_process else LoopbackServer(self.handle)
        )
        self.issuer = ""

    # -- plumbing --------------------------------------------------------------------

    def start(self) -> OpenIdProviderSim:
        self.server.start()
        self.issuer = f"{self.server.url}{PREFIX}"
        # The RP and the simulator read the same options; parse them once here so a
        # broken profile fails at start, with the RP's error message.
        self.options = parse_options(
            self.config.with_options(issuer=self.issuer, client_id=self.client_id)
        )
        return self

    def stop(self) -> None:
        self.server.stop()

    def now(self) -> float:
        return time.time() + self.control.clock_offset

    def count(self, endpoint: str) -> int:
        """Requests received by ``endpoint`` (``token``, ``par``, ``userinfo``, ``jwks``...)."""
        path = self.jwks_path if endpoint == "jwks" else f"{PREFIX}/{endpoint}"
        if endpoint == "userinfo":
            path = urlsplit(self.userinfo_endpoint()).path
        if endpoint == "discovery":
            path = f"{PREFIX}/.well-known/openid-configuration"
        return self.server.requests[path]

    def persons(self) -> list[TestPerson]:
        countries = _PROFILE_COUNTRIES.get(str(self.profile), ("FI", "NO", "EE", "SE"))
        return [p for c in countries for p in PERSONS[c]]

    def register_client_keys(self, jwks: Mapping[str, Any]) -> None:
        """Register the RP's public JWKS, as the provider's client registration does.

        Refused (``ConfigError``) like the real provider refuses it: a key without
        ``use`` (Telia wants separate sig and enc keys), or bound to an algorithm the
        provider does not publish for that use.
        """
        keys = KeySet.from_jwks(jwks)
        p = self.published
        for key in keys.keys:
            if key.use == "sig":
                accepted = p.request_object_signing + p.token_endpoint_auth_signing
            elif key.use == "enc":
                accepted = p.encryption_algs
            else:
                raise ConfigError(f"client key {key.kid} has no use (sig or enc)")
            if key.alg is not None and key.alg not in accepted:
                raise ConfigError(
                    f"client key {key.kid}: alg {key.alg} is not supported for use {key.use}"
                )
        self.rp_public = keys

    def rotate_signing_key(self) -> str:
        """Replace the RSA signing key by a fresh one with a new kid (old one removed)."""
        key = _rsa("sig", f"op-rsa-{secrets.token_hex(4)}")
        self.rsa_key = key
        return key.kid

    def handle(self, req: SimRequest) -> SimResponse:
        path = req.path
        try:
            if path == f"{PREFIX}/.well-known/openid-configuration":
                return SimResponse.json(self.metadata())
            if path == self.jwks_path:
                return SimResponse.json(self.jwks())
            if path == f"{PREFIX}/authorize" and req.method == "GET":
                return self.authorize(req)
            if path == f"{PREFIX}/approve" and req.method == "POST":
                return self.approve_form(req)
            if path == f"{PREFIX}/par":
                return self.par(req)
            if path == f"{PREFIX}/token" and req.method == "POST":
                return self.token(req)
            if path == urlsplit(self.userinfo_endpoint()).path and req.method == "GET":
                return self.userinfo(req)
        except _Refused as exc:
            return SimResponse.json({"error": exc.error}, status=exc.status)
        return SimResponse(404, b"not found")

    # -- discovery and keys ----------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        c = self.control
        issuer = self.issuer
        if c.active("discovery-issuer-mismatch"):
            issuer += "INVALID"
        elif c.active("discovery-issuer-example"):
            issuer = "https://example.com"
        elif c.active("discovery-issuer-slash"):
            issuer += "/"
        o = self.options
        p = self.published
        meta: dict[str, Any] = {
            "issuer": issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": self.userinfo_endpoint(),
            "jwks_uri": f"{self.server.url}{self.jwks_path}",
            "pushed_authorization_request_endpoint": f"{self.issuer}/par",
            "require_pushed_authorization_requests": o.par,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "scopes_supported": list(o.scopes),
            "acr_values_supported": sorted(o.acr_loa),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": list(p.token_endpoint_auth_methods),
            "token_endpoint_auth_signing_alg_values_supported": list(p.token_endpoint_auth_signing),
            "request_object_signing_alg_values_supported": list(p.request_object_signing),
            "id_token_signing_alg_values_supported": list(p.id_token_signing),
            "id_token_encryption_alg_values_supported": list(p.encryption_algs),
            "id_token_encryption_enc_values_supported": list(p.encryption_encs),
            "userinfo_signing_alg_values_supported": list(p.id_token_signing),
            "request_parameter_supported": bool(p.request_object_signing),
            "request_uri_parameter_supported": False,
            "require_signed_request_object": o.request_object,
            "authorization_response_iss_parameter_supported": True,
        }
        if c.active("iss-param-not-advertised"):
            del meta["authorization_response_iss_parameter_supported"]
        if c.active("discovery-http-endpoint"):
            meta["token_endpoint"] = "http://op.example.com/token"  # noqa: S105
        if c.active("discovery-malformed-url"):
            meta["jwks_uri"] = "https://[::1/x"
        return meta

    def jwks(self) -> dict[str, Any]:
        c = self.control
        keys = [self.rsa_key.public_jwk(), self.ec_key.public_jwk()]
        if c.active("kid-absent-single"):
            keys = [{k: v for k, v in j.items() if k not in ("kid", "alg")} for j in keys]
        elif c.active("kid-absent-multiple"):
            extra = [_extra_key(i) for i in range(2)]
            keys = [
                {k: v for k, v in j.items() if k not in ("kid", "alg")}
                for j in [self.rsa_key.public_jwk(), *(e.public_jwk() for e in extra)]
            ]
        if c.active("jwks-private-members"):
            keys[0] = self.rsa_key.private_jwk()
        if c.active("unparseable-key-in-jwks"):
            keys += [
                {"kty": "AKP", "alg": "ML-DSA-99", "kid": "akp-1", "pub": "AAAA"},
                {"kty": "made-up", "kid": "made-up-1", "x": "AAAA"},
            ]
        return {"keys": keys}

    # -- front channel ---------------------------------------------------------------

    def _verify_rp_jwt(self, token: str, algorithms: tuple[str, ...], error: str) -> dict[str, Any]:
        """Verify a JWT of the RP with exactly the algorithms the provider publishes."""
        if not algorithms:
            raise _Refused(error, 401 if error == "invalid_client" else 400)
        try:
            _, claims = verify_jwt(token, self.rp_public, algorithms=algorithms)
        except AuthBrokerError as exc:
            raise _Refused(error, 401 if error == "invalid_client" else 400) from exc
        return claims

    def _request_object(self, outer: Mapping[str, str]) -> dict[str, str]:
        """RFC 9101 §6 and the OIDF request-object checks (OIDC-13, X-28)."""
        claims = self._verify_rp_jwt(
            outer["request"], self.published.request_object_signing, "invalid_request_object"
        )
        now = self.now()
        if claims.get("iss") != self.client_id or claims.get("aud") != self.issuer:
            raise _Refused("invalid_request_object")
        if "sub" in claims or "request" in claims or "request_uri" in claims:
            raise _Refused("invalid_request_object")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise _Refused("invalid_request_object")
        if exp <= now or exp - iat > 300 or iat > now + 60:
            raise _Refused("invalid_request_object")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, int) or nbf > now + 60):
            raise _Refused("invalid_request_object")
        for name in ("client_id", "response_type"):
            if name in outer and outer[name] != claims.get(name):
                raise _Refused("invalid_request")
        return {k: v for k, v in claims.items() if isinstance(v, str)}

    def _resolve(self, query: Mapping[str, str]) -> dict[str, str]:
        o = self.options
        if "request_uri" in query:
            with self.lock:
                entry = self.par_requests.pop(query["request_uri"], None)
            if entry is None or entry[1] < self.now():
                raise _Refused("invalid_request_uri")
            params = entry[0]
            if query.get("client_id") != params.get("client_id"):
                raise _Refused("invalid_request_uri")
        elif o.par:
            raise _Refused("invalid_request")  # PAR required for this client
        else:
            params = self._parse_request(query)
        return params

    def _parse_request(self, query: Mapping[str, str]) -> dict[str, str]:
        if "request" in query:
            return self._request_object(query)
        if self.options.request_object:
            raise _Refused("invalid_request")  # signed request object required
        return dict(query)

    def _validate(self, params: Mapping[str, str]) -> None:
        if params.get("client_id") != self.client_id:
            raise _Refused("unauthorized_client")
        if params.get("redirect_uri") != self.redirect_uri:
            raise _Refused("invalid_request")  # exact match, never redirect there
        if params.get("response_type") != "code":
            raise _Refused("unsupported_response_type")
        if "openid" not in params.get("scope", "").split():
            raise _Refused("invalid_scope")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            raise _Refused("invalid_request")  # PKCE S256 required, plain refused
        for acr in params.get("acr_values", "").split():
            if acr not in self.options.acr_loa:
                raise _Refused("invalid_request")

    def _query(self, req: SimRequest) -> dict[str, str]:
        if any(len(v) > 1 for v in req.query.values()):
            raise _Refused("invalid_request")  # duplicated parameters
        return {k: v[0] for k, v in req.query.items()}

    def authorize(self, req: SimRequest) -> SimResponse:
        try:
            params = self._resolve(self._query(req))
            self._validate(params)
        except _Refused as exc:
            # Never redirect to an unverified redirect_uri: show an error page.
            return SimResponse.html(
                f"<h1>Authorization refused: {html.escape(exc.error)}</h1>", 400
            )
        c = self.control
        if c.deny:
            return self._redirect_error(params, c.deny)
        person = self._auto_person(params)
        if person is not None:
            return self._approve(params, person)
        txn = secrets.token_urlsafe(16)
        with self.lock:
            self.txns[txn] = (params, self.now() + 600)
        return self._consent_page(txn, params)

    def _suitable(self, params: Mapping[str, str]) -> list[TestPerson]:
        countries = self._method_countries(params)
        return [p for p in self.persons() if countries is None or p.country in countries]

    def _method_countries(self, params: Mapping[str, str]) -> set[str] | None:
        if self.profile != "broker-oidc":
            return None
        methods = self.config.get("methods", {})
        acrs = params.get("acr_values", "").split()
        found = {str(m["country"]) for m in methods.values() if m.get("acr") in acrs}
        return found or None

    def _auto_person(self, params: Mapping[str, str]) -> TestPerson | None:
        choice = self.control.auto_approve
        if not choice:
            return None
        suitable = self._suitable(params)
        if choice is True:
            return suitable[0] if suitable else None
        for person in [*suitable, *self.persons()]:
            if person.id == choice:
                return person
        return None

    def _consent_page(self, txn: str, params: Mapping[str, str]) -> SimResponse:
        rows = "".join(
            f'<li><button name="person" value="{html.escape(p.id)}">'
            f"{html.escape(p.given_name)} {html.escape(p.family_name)} ({p.country})"
            "</button></li>"
            for p in self._suitable(params)
        )
        page = (
            "<!doctype html><meta charset=utf-8><title>OpenID Provider simulator</title>"
            f"<h1>{html.escape(self.config.name)} simulator</h1>"
            f'<form method="post" action="{PREFIX}/approve">'
            f'<input type="hidden" name="txn" value="{html.escape(txn)}">'
            f'<p>Sign in as:</p><ul>{rows}</ul><button name="cancel" value="1">Cancel</button>'
            "</form>"
        )
        return SimResponse.html(page)

    def approve_form(self, req: SimRequest) -> SimResponse:
        form = req.form()
        with self.lock:
            entry = self.txns.pop(form.get("txn", ""), None)
        if entry is None or entry[1] < self.now():
            return SimResponse.html("<h1>Unknown or expired transaction</h1>", 400)
        params = entry[0]
        if form.get("cancel"):
            return self._redirect_error(params, "access_denied")
        person = next((p for p in self._suitable(params) if p.id == form.get("person")), None)
        if person is None:
            return SimResponse.html("<h1>Unknown test person</h1>", 400)
        return self._approve(params, person)

    def _front_iss(self) -> dict[str, str]:
        c = self.control
        if c.active("iss-param-missing"):
            return {}
        if c.active("iss-param-wrong"):
            return {"iss": "https://op.example.org/op"}
        if c.active("iss-param-slash"):
            return {"iss": self.issuer + "/"}
        return {"iss": self.issuer}

    def _redirect(self, params: Mapping[str, str], response: Mapping[str, str]) -> SimResponse:
        uri = params["redirect_uri"]
        sep = "&" if urlsplit(uri).query else "?"
        return SimResponse.redirect(uri + sep + urlencode(response))

    def _redirect_error(self, params: Mapping[str, str], error: str) -> SimResponse:
        response = {"error": error, "error_description": "<b>The user said no</b>"}
        state = params.get("state")
        if self.control.active("error-foreign-state"):
            state = "forged-" + secrets.token_urlsafe(8)
        if state:
            response["state"] = state
        response.update(self._front_iss())
        return self._redirect(params, response)

    def _approve(self, params: dict[str, str], person: TestPerson) -> SimResponse:
        now = self.now()
        code = secrets.token_urlsafe(32)
        grant = _Grant(params=params, person=person, auth_time=int(now), expires=now + 60)
        with self.lock:
            self.codes[code] = grant
            if self.control.active("replay-code") and self.last_redeemed:
                code = self.last_redeemed
        response = {"code": code}
        if params.get("state"):
            response["state"] = params["state"]
        response.update(self._front_iss())
        return self._redirect(params, response)

    # -- back channel ------------------------------------------------------------------

    def _authenticate_client(self, req: SimRequest, form: Mapping[str, str]) -> None:
        o = self.options
        if o.client_auth not in self.published.token_endpoint_auth_methods:
            raise _Refused("invalid_client", 401)  # the provider offers no such method
        if o.client_auth == "client_secret_basic":
            header = req.headers.get("authorization", "")
            if not header.startswith("Basic "):
                raise _Refused("invalid_client", 401)
            try:
                raw = base64.b64decode(header[6:], validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError) as exc:
                raise _Refused("invalid_client", 401) from exc
            user, _, password = raw.partition(":")
            # RFC 6749 §2.3.1: both parts were form-urlencoded before base64.
            ok_id = secrets.compare_digest(unquote_plus(user), self.client_id)
            ok_secret = secrets.compare_digest(
                unquote_plus(password).encode(), self.client_secret.encode()
            )
            if not (ok_id and ok_secret):
                raise _Refused("invalid_client", 401)
        else:
            if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
                raise _Refused("invalid_client", 401)
            claims = self._verify_rp_jwt(
                form.get("client_assertion", ""),
                self.published.token_endpoint_auth_signing,
                "invalid_client",
            )
            now = self.now()
            aud = self.issuer if o.client_assertion_aud == "issuer" else f"{self.issuer}/token"
            exp, iat, jti = claims.get("exp"), claims.get("iat"), claims.get("jti")
            if (
                claims.get("iss") != self.client_id
                or claims.get("sub") != self.client_id
                or claims.get("aud") != aud
                or not isinstance(exp, int)
                or exp <= now
                or exp > now + 300
                or (isinstance(iat, int) and iat > now + 60)
                or not isinstance(jti, str)
                or len(jti) < 16
            ):
                raise _Refused("invalid_client", 401)
            with self.lock:
                if jti in self.seen_jti:
                    raise _Refused("invalid_client", 401)  # replayed assertion
                self.seen_jti.add(jti)
        if "client_id" in form and form["client_id"] != self.client_id:
            raise _Refused("invalid_client", 401)

    def par(self, req: SimRequest) -> SimResponse:
        if req.method != "POST":
            raise _Refused("invalid_request", 405)
        form = req.form()
        self._authenticate_client(req, form)
        for name in ("client_assertion", "client_assertion_type"):
            form.pop(name, None)
        if "request_uri" in form:
            raise _Refused("invalid_request")
        params = self._parse_request(form)
        params.setdefault("client_id", self.client_id)
        self._validate(params)
        uri = "urn:ietf:params:oauth:request_uri:" + secrets.token_urlsafe(24)
        with self.lock:
            self.par_requests[uri] = (params, self.now() + 60)
        return SimResponse.json({"request_uri": uri, "expires_in": 60}, status=201)

    def token(self, req: SimRequest) -> SimResponse:
        c = self.control
        if c.active("token-redirect"):
            return SimResponse.redirect(f"{self.issuer}/elsewhere")
        form = req.form()
        self._authenticate_client(req, form)
        if form.get("grant_type") != "authorization_code":
            raise _Refused("unsupported_grant_type")
        code = form.get("code", "")
        with self.lock:
            grant = self.codes.pop(code, None)
            if grant is None:
                replayed = self.redeemed.get(code)
                if replayed is not None:
                    # RFC 6749 §4.1.2 / BCP: a reused code revokes what it issued.
                    for token in replayed.access_tokens:
                        self.access.pop(token, None)
                raise _Refused("invalid_grant")
            self.redeemed[code] = grant
            self.last_redeemed = code
        if c.active("token-error"):
            raise _Refused("invalid_grant")
        if grant.expires < self.now():
            raise _Refused("invalid_grant")
        if form.get("redirect_uri") != grant.params["redirect_uri"]:
            raise _Refused("invalid_grant")
        verifier = form.get("code_verifier", "")
        if not 43 <= len(verifier) <= 128 or not secrets.compare_digest(
            pkce_challenge(verifier), grant.params["code_challenge"]
        ):
            raise _Refused("invalid_grant")
        access_token = secrets.token_urlsafe(32)
        if c.active("access-token-bad-char"):
            access_token += " x"
        elif c.active("access-token-non-ascii"):
            access_token += "\u00e9"
        with self.lock:
            grant.access_tokens.append(access_token)
            self.access[access_token] = grant
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "bEARER" if c.active("token-type-case") else "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(grant, access_token, code),
        }
        if c.active("token-no-expires-in"):
            del body["expires_in"]
        response = SimResponse.json(body)
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- tokens ------------------------------------------------------------------------

    def _returned_acr(self, params: Mapping[str, str]) -> str | None:
        requested = params.get("acr_values", "").split()
        c = self.control
        o = self.options
        if c.active("acr-missing"):
            return None
        if c.active("acr-unknown"):
            return "urn:example:unknown"
        acr = requested[0] if requested else (o.acr_values[0] if o.acr_values else None)
        if acr is None:
            return None
        if self.profile == "bankid-no" and ";" not in acr:
            acr += ";LOA=4" if acr == "urn:bankid:bid" else ";LOA=3"
        if c.active("acr-lower"):
            level = o.acr_loa[acr]
            lower = [a for a, lv in o.acr_loa.items() if lv < level]
            acr = lower[-1] if lower else acr
        if c.active("acr-other-method"):
            others = [a for a in o.acr_loa if a not in requested and a != acr]
            acr = others[0] if others else acr
        return acr

    def _number(self, person: TestPerson) -> str:
        number = person.national_id
        if self.control.active("national-id-bad-checksum"):
            last = number[-1]
            number = number[:-1] + ("1" if last != "1" else "2")
        return number

    def _person_claims(self, person: TestPerson, acr: str | None, sub: str) -> dict[str, Any]:
        number = self._number(person)
        p = self.profile
        if p == "ftn":
            return {
                "urn:oid:1.2.246.21": number,
                "urn:oid:2.5.4.4": person.family_name,
                "urn:oid:1.2.246.575.1.14": person.given_name,
                "urn:oid:1.3.6.1.5.5.7.9.1": person.birthdate,
                "urn:oid:2.16.840.1.113730.3.1.241": f"{person.given_name} {person.family_name}",
                "amr": [f"{self.issuer}/saml2/names/ac/oidc.nordea.1"],
            }
        if p == "bankid-no":
            return {
                "bankid_altsub": f"9578-6000-4-{int(number[:6]) % 1000000}",
                "nnin_altsub": number,
                "name": f"{person.given_name} {person.family_name}",
                "given_name": person.given_name,
                "family_name": person.family_name,
                "birthdate": person.birthdate,
                "amr": ["bid", "bid-app"],
                "typ": "ID",
            }
        if p == "tara":
            return {
                "profile_attributes": {
                    "given_name": person.given_name,
                    "family_name": person.family_name,
                    "date_of_birth": person.birthdate,
                },
                "amr": ["mID"],
                "jti": secrets.token_hex(16),
            }
        claim = {"SE": "ssn", "NO": "socialno", "FI": "hetu"}.get(person.country, "nin")
        scheme = {"SE": "sebankid", "NO": "nobankid-oidc", "FI": "fitupas"}.get(person.country, "")
        extra: dict[str, Any] = {}
        if person.country == "FI":
            # Idura: satu filled for Mobiilivarmenne, empty for banks (fi-ee §2.4 source:
            # https://docs.criipto.com/eid-specifics/order-fi-bankid/).
            mobile = "urn:grn:authn:fi:mobile-id" in (acr or "")
            extra["satu"] = person.satu if mobile else ""
        return {
            **extra,
            claim: number,
            "identityscheme": scheme,
            "name": f"{person.given_name} {person.family_name}",
            "given_name": person.given_name,
            "family_name": person.family_name,
            "birthdate": person.birthdate,
            "country": person.country,
        }

    def userinfo_iss(self) -> str:
        """``iss`` of signed UserInfo: the OP, or BankID's TINFO base URL."""
        server = self.published.userinfo_server
        return f"{self.server.url}{server}" if server else self.issuer

    def userinfo_endpoint(self) -> str:
        server = self.published.userinfo_server
        return f"{self.server.url}{server}/userinfo" if server else f"{self.issuer}/userinfo"

    def _sub(self, person: TestPerson) -> str:
        if self.profile == "tara":
            return person.country + self._number(person)
        # A stable pseudonym per (simulator, person), broker style "{...}".
        return f"{{{person.id}-{self.server.port}}}"

    def _signing(self, alg: str) -> Key:
        return self.ec_key if alg.startswith("ES") else self.rsa_key

    def _alg(self) -> str:
        """The provider's published ID-token alg unless a test forces another."""
        return self.control.id_token_alg or str(
            self.config.get("sim_id_token_alg") or self.published.id_token_signing[0]
        )

    def id_token(self, grant: _Grant, access_token: str, code: str) -> str:
        c = self.control
        now = int(self.now())
        params = grant.params
        alg = self._alg()
        person = grant.person
        sub = self._sub(person)
        acr = self._returned_acr(params)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": self.client_id,
            "exp": now + 300,
            "iat": now,
            "auth_time": grant.auth_time,
        }
        if access_token.isascii():  # Core §3.3.2.11 hashes the ASCII octets
            claims["at_hash"] = token_hash(
                access_token, alg, encoding=self.options.at_hash_encoding
            )
        if params.get("nonce"):
            claims["nonce"] = params["nonce"]
        if acr is not None:
            claims["acr"] = acr
        if self.profile == "bankid-no":
            claims["azp"] = self.client_id
        if self.profile == "tara":
            claims["nbf"] = now
            claims["state"] = params.get("state", "")
        claims.update(self._person_claims(person, acr, sub))
        self._mutate_claims(claims, code, alg)
        token = self._sign(claims, alg)
        if c.active("sig-reorder") or c.active("sig-xor"):
            head, _, sig = token.rpartition(".")
            raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
            # Legacy idts reorders the signature (bytes reversed here, so the result
            # stays canonical base64url); the current suite XORs each byte with 0x5A.
            bad = raw[::-1] if c.active("sig-reorder") else bytes(b ^ 0x5A for b in raw)
            token = f"{head}.{_b64(bad)}"
        return self._maybe_encrypt(token, claims, for_userinfo=False)

    def _mutate_claims(self, claims: dict[str, Any], code: str, alg: str) -> None:
        c = self.control
        now = int(self.now())
        edits: dict[str, Callable[[], None]] = {
            "iss-example": lambda: claims.update(iss="https://example.org/"),
            "iss-append": lambda: claims.update(iss=claims["iss"] + "1"),
            "iss-missing": lambda: claims.pop("iss"),
            "aud-example": lambda: claims.update(aud="https://example.com/"),
            "aud-append": lambda: claims.update(aud=self.client_id + "1"),
            "aud-missing": lambda: claims.pop("aud"),
            "aud-secondary": lambda: claims.update(aud=[self.client_id, "other-client"]),
            "aud-array": lambda: claims.update(aud=[self.client_id]),
            "azp-other": lambda: claims.update(azp="other-client"),
            "nonce-012345678": lambda: claims.update(nonce="012345678"),
            "nonce-append": lambda: claims.update(nonce=str(claims.get("nonce")) + "1"),
            "nonce-missing": lambda: claims.pop("nonce", None),
            "exp-expired": lambda: claims.update(exp=now - 301, iat=now - 600),
            "exp-missing": lambda: claims.pop("exp"),
            "exp-string": lambda: claims.update(exp=str(claims["exp"])),
            "iat-missing": lambda: claims.pop("iat"),
            "iat-future": lambda: claims.update(iat=now + 120),
            "iat-week-old": lambda: claims.update(iat=now - 7 * 86400),
            "nbf-future": lambda: claims.update(nbf=now + 120),
            "sub-missing": lambda: claims.pop("sub"),
            "sub-long": lambda: claims.update(sub="x" * 300),
            "at-hash-wrong": lambda: claims.update(at_hash=claims["at_hash"] + "1"),
            "at-hash-missing": lambda: claims.pop("at_hash"),
            "c-hash-wrong": lambda: claims.update(c_hash=token_hash(code + "x", alg)),
            "auth-time-missing": lambda: claims.pop("auth_time"),
            "auth-time-future": lambda: claims.update(auth_time=now + 120),
        }
        for name, edit in edits.items():
            if c.active(name):
                edit()

    def _sign(self, claims: Mapping[str, Any], alg: str) -> str:
        c = self.control
        if c.active("alg-none"):
            header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
            return f"{header}.{_b64(json.dumps(claims).encode())}."
        if c.active("alg-hs256"):
            key = Key.from_secret(self.client_secret.encode(), alg="HS256")
            return sign_jwt(claims, key, alg="HS256")
        if c.active("embedded-jwk"):
            attacker = Key.generate("EC", use="sig", alg="ES256")
            headers = {"jwk": attacker.public_jwk(), "jku": f"{self.server.url}/attacker/jwks"}
            return sign_jwt(claims, attacker, alg="ES256", headers=headers)
        if c.consume("rotate-before-signing"):
            self.rotate_signing_key()
        key = self._signing(alg)
        if c.active("kid-absent-multiple"):
            return sign_jwt(claims, self.rsa_key, alg=alg, include_kid=False)
        return sign_jwt(claims, key, alg=alg, include_kid=not c.active("kid-absent-single"))

    def _maybe_encrypt(self, token: str, claims: Mapping[str, Any], *, for_userinfo: bool) -> str:
        c = self.control
        o = self.options
        wanted = o.userinfo == "encrypted" if for_userinfo else o.id_token_encrypted
        if not wanted or (not for_userinfo and c.active("no-encryption")):
            return token
        if c.active("encrypt-rsa1_5") or c.active("encrypt-dir"):
            alg = "RSA1_5" if c.active("encrypt-rsa1_5") else "dir"
            header = _b64(json.dumps({"alg": alg, "enc": "A128CBC-HS256"}).encode())
            return ".".join(
                [header, _b64(b"k" * 32), _b64(b"i" * 16), _b64(b"c" * 32), _b64(b"t" * 16)]
            )
        key, alg, enc = self._encryption_key()
        if c.jwe_alg:
            # A test forces another key-management algorithm (a misbehaving OP).
            alg = c.jwe_alg
            key = _unbound(key, key.kid)
        plain = token
        if (not for_userinfo and c.active("encrypt-plain-claims")) or (
            for_userinfo and c.active("userinfo-plain-jwe")
        ):
            plain = json.dumps(dict(claims))
        return encrypt_jwe(plain, key, alg=alg, enc=enc, headers={"cty": "JWT"})

    def _encryption_key(self) -> tuple[Key, str, str]:
        """The registered RP encryption key, and the alg/enc the provider uses with it.

        Like the real OP: the key's own ``alg`` if the provider supports it (else the
        key cannot be used), otherwise the provider's first algorithm the key fits;
        ``enc`` is the RP's registered preference among the provider's values.
        """
        p = self.published
        enc = next((e for e in self.options.jwe_encs if e in p.encryption_encs), None)
        for key in self.rp_public.keys:
            if key.use != "enc":
                continue
            for alg in (key.alg,) if key.alg else p.encryption_algs:
                if alg in p.encryption_algs and key._fits(alg, "enc") and enc is not None:
                    return key, alg, enc
        raise _Refused("invalid_client_metadata")

    def userinfo(self, req: SimRequest) -> SimResponse:
        if "access_token" in req.query or req.body:
            raise _Refused("invalid_request")  # header only (FAPI 2.0, OIDC-12)
        header = req.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise _Refused("invalid_token", 401)
        with self.lock:
            grant = self.access.get(header[7:].strip())
        if grant is None:
            raise _Refused("invalid_token", 401)
        c = self.control
        person = grant.person
        sub = self._sub(person)
        info: dict[str, Any] = {"sub": sub}
        info.update(self._person_claims(person, None, sub))
        info.pop("amr", None)
        info.pop("jti", None)
        info.pop("typ", None)
        if self.published.userinfo_server:
            # BankID TINFO: the resource server's own sub and the person's BankID id.
            info["sub"] = f"tinfo-{secrets.token_hex(8)}"
            info.pop("nnin_altsub", None)
            if "nnin" in grant.params.get("scope", "").split():
                info["nnin"] = self._number(person)
        if c.active("userinfo-sub-foobar") or c.active("userinfo-sub-append"):
            for name in ("sub", "bankid_altsub"):
                if name in info:
                    wrong = "foobar" if c.active("userinfo-sub-foobar") else info[name] + "invalid"
                    info[name] = wrong
        fmt = self.options.userinfo
        if fmt == "json" or c.active("userinfo-unsigned"):
            return SimResponse.json(info)
        info["iss"] = (
            "https://example.org/" if c.active("userinfo-iss-wrong") else self.userinfo_iss()
        )
        info["aud"] = "other-client" if c.active("userinfo-aud-wrong") else self.client_id
        alg = self._alg()
        key = self._signing(alg)
        if c.active("userinfo-wrong-key"):
            key = Key.generate("EC", use="sig", alg="ES256")
            alg = "ES256"
        kidless = c.active("kid-absent-single") or c.active("kid-absent-multiple")
        token = sign_jwt(info, key, alg=alg, include_kid=not kidless)
        token = self._maybe_encrypt(token, info, for_userinfo=True)
        return SimResponse(200, token.encode(), {"Content-Type": "application/jwt"})


def start(
    config: ProviderConfig, settings: Settings, *, in_process: bool = False
) -> RunningSimulator:
    """Start the OP for ``config`` (loopback or in process); the overrides point the RP at it."""
    op = OpenIdProviderSim(config, settings, in_process=in_process).start()
    overrides: dict[str, Any] = {
        "issuer": op.issuer,
        "client_id": op.client_id,
        "rp_keys": {"keys": [k.private_jwk() for k in op.rp_keys.keys]},
    }
    if op.options.client_auth == "client_secret_basic":
        overrides["client_secret"] = op.client_secret
    if op.published.userinfo_server:
        overrides["userinfo_issuer"] = op.userinfo_iss()
    overrides.pop("discovery_url", None)
    return RunningSimulator(
        overrides=overrides,
        server=op,
        extra={
            "op": op,
            "control": op.control,
            "persons": [p.to_dict() for p in op.persons()],
            "requests": op.server.requests,
            "count": op.count,
            "rotate_signing_key": op.rotate_signing_key,
            "misbehaviours": dict(MISBEHAVIOURS),
        },
    )
