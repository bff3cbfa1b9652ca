"""OpenID relying-party conformance cases, run against the simulator OP.

One test per relying-party case of the OpenID Foundation conformance suites, named (pytest id) after
the conformance test id it covers: legacy ``rp-*`` (b.2), current
``oidcc-client-test-*`` (b.3), FAPI client tests (b.4) and the extra cases ``X-nn``
(b.6). The simulator applies the mutation for real (signs, encrypts, serves
metadata); the RP must reject with the exact error class, create no identity, and
make no further call: no token request after a bad front-channel value, no UserInfo
request after a bad ID token. ACCEPT cases must yield the normalized Identity.

Two simulator-backed providers are used: ``conf`` (Norwegian BankID profile without
PAR, signed UserInfo, client_secret_basic) and ``conf-ftn`` (FTN profile: JAR,
private_key_jwt, encrypted ID token and UserInfo). Each test gets a fresh RP (own
metadata and JWKS cache) against the shared simulators.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from authbroker import Done, Redirect
from authbroker.audit import AuditLog, MemorySink
from authbroker.config import Settings, load_config
from authbroker.crypto.jose import KeyNotFound, KeySet
from authbroker.errors import (
    AlreadyUsed,
    AuthBrokerError,
    Expired,
    FlowNotFound,
    InsufficientLoa,
    InvalidInput,
    InvalidSignature,
    ProviderError,
    UserCancelled,
)
from authbroker.http import SyncDriver
from authbroker.providers.oidc import OidcProvider, load_rp_keys
from authbroker.store.memory import MemoryStore
from authbroker.testing import RunningSimulator, simulated_broker
from authbroker.testing.simulators.oidc import OpenIdProviderSim, start

OVERRIDES: dict[str, Any] = {
    "providers": {
        "conf": {
            "profile": "bankid-no",
            "par": False,
            "userinfo": "signed",
            "jwks_min_refetch_interval": 0,
        },
        "conf-ftn": {
            "profile": "ftn",
            "userinfo": "encrypted",
            "jwks_min_refetch_interval": 0,
        },
    }
}


@dataclass
class Env:
    settings: Settings
    sims: dict[str, RunningSimulator]
    keys: dict[str, KeySet]
    # One connection pool for the whole module (an httpx client costs ~50 ms to build).
    driver: SyncDriver = field(default_factory=SyncDriver)
    browser: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def op(self, name: str) -> OpenIdProviderSim:
        op = self.sims[name].extra["op"]
        assert isinstance(op, OpenIdProviderSim)
        return op


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    settings = load_config(environ={}, overrides=OVERRIDES)
    sims = {name: start(settings.provider(name), settings) for name in ("conf", "conf-ftn")}
    keys: dict[str, KeySet] = {}
    for name, sim in sims.items():
        loaded = load_rp_keys(settings.provider(name).with_options(**sim.overrides))
        assert loaded is not None
        keys[name] = loaded
    env = Env(settings, sims, keys)
    yield env
    env.driver.close()
    env.browser.close()
    for sim in sims.values():
        sim.stop()


@dataclass
class Flow:
    """One RP instance (fresh caches) wired to a shared simulator."""

    env: Env
    name: str
    rp_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sim = self.env.sims[self.name]
        config = self.env.settings.provider(self.name).with_options(
            **sim.overrides, **self.rp_options
        )
        self.provider = OidcProvider(config, self.env.settings, rp_keys=self.env.keys[self.name])
        self.sink = MemorySink()
        self.store = MemoryStore()
        self.broker = simulated_broker(
            self.env.settings,
            store=self.store,
            providers={self.name: self.provider},
            audit=AuditLog([self.sink]),
            driver=self.env.driver,
        )
        self.op = self.env.op(self.name)

    def begin(self, **params: str) -> Redirect:
        step = self.broker.begin(self.name, binding="browser", params=params)
        assert isinstance(step, Redirect)
        return step

    def authorize(self, step: Redirect) -> dict[str, str]:
        resp = self.env.browser.get(step.url)
        assert resp.status_code == 302, resp.text
        return dict(parse_qsl(urlsplit(resp.headers["location"]).query))

    def complete(self, step: Redirect, params: dict[str, str]) -> Done:
        done = self.broker.advance(step.flow_id, params, binding="browser")
        assert isinstance(done, Done)
        return done

    def run(self, **begin_params: str) -> Done:
        step = self.begin(**begin_params)
        return self.complete(step, self.authorize(step))


@pytest.fixture
def flow_factory(env: Env) -> Iterator[Any]:
    made: list[Flow] = []

    def make(name: str = "conf", **rp_options: Any) -> Flow:
        f = Flow(env, name, rp_options)
        f.op.control.auto_approve = True
        made.append(f)
        return f

    yield make
    for f in made:
        f.op.control.reset()


@dataclass(frozen=True)
class Case:
    id: str
    misbehave: tuple[str, ...] = ()
    expect: type[AuthBrokerError] | None = None
    provider: str = "conf"
    alg: str | None = None
    jwe_alg: str | None = None
    rp_options: tuple[tuple[str, Any], ...] = ()
    #: "front": rejected before any token request; "id_token": after the token
    #: request, before UserInfo; "userinfo": after UserInfo; "begin": no flow starts.
    stage: str = "id_token"
    code: str | None = None


REJECT_ID = "id_token"

CASES = [
    # --- b.2 legacy RP tests -----------------------------------------------------------
    Case("rp-discovery-openid-configuration"),
    Case("rp-discovery-jwks_uri-keys"),
    Case(
        "rp-discovery-issuer-not-matching-config",
        ("discovery-issuer-example",),
        ProviderError,
        stage="begin",
        code="discovery_issuer_mismatch",
    ),
    Case("rp-id_token-aud", ("aud-example",), InvalidInput, code="aud_mismatch"),
    Case("rp-id_token-bad-at_hash", ("at-hash-wrong",), InvalidInput, code="at_hash_mismatch"),
    Case("rp-id_token-bad-c_hash", ("c-hash-wrong",), InvalidInput, code="c_hash_mismatch"),
    Case("rp-id_token-bad-sig-es256", ("sig-reorder",), InvalidSignature, alg="ES256"),
    Case("rp-id_token-bad-sig-hs256", ("alg-hs256",), InvalidInput, code="alg_not_allowed"),
    Case("rp-id_token-bad-sig-rs256", ("sig-reorder",), InvalidSignature, alg="RS256"),
    Case("rp-id_token-iat", ("iat-missing",), InvalidInput, code="iat_missing"),
    Case("rp-id_token-issuer-mismatch", ("iss-example",), InvalidInput, code="iss_mismatch"),
    Case(
        "rp-id_token-kid-absent-multiple-jwks",
        ("kid-absent-multiple",),
        InvalidInput,
        alg="RS256",
        code="ambiguous_key",
    ),
    Case("rp-id_token-kid-absent-single-jwks", ("kid-absent-single",), alg="RS256"),
    Case("rp-id_token-sig+enc", provider="conf-ftn", jwe_alg="RSA-OAEP"),
    Case("rp-id_token-sig+enc-rsa1_5", ("encrypt-rsa1_5",), InvalidInput, "conf-ftn"),
    Case("rp-id_token-sig-es256", alg="ES256"),
    Case("rp-id_token-sig-hs256", ("alg-hs256",), InvalidInput, code="alg_not_allowed"),
    Case("rp-id_token-sig-none", ("alg-none",), InvalidInput, code="alg_refused"),
    Case("rp-id_token-sig-rs256", alg="RS256"),
    Case("rp-id_token-sub", ("sub-missing",), InvalidInput, code="sub_invalid"),
    Case("rp-nonce-invalid", ("nonce-012345678",), InvalidInput, code="nonce_mismatch"),
    Case("rp-response_type-code"),
    Case("rp-scope-userinfo-claims"),
    Case("rp-token_endpoint-client_secret_basic"),
    Case("rp-token_endpoint-private_key_jwt", provider="conf-ftn"),
    Case(
        "rp-userinfo-bad-sub-claim",
        ("userinfo-sub-foobar",),
        InvalidInput,
        stage="userinfo",
        code="userinfo_sub_mismatch",
    ),
    Case("rp-userinfo-bearer-header"),
    # POLICY (JOSE-07): encrypted-only UserInfo (bare JSON in a JWE) is refused.
    Case(
        "rp-userinfo-enc",
        ("userinfo-plain-jwe",),
        InvalidInput,
        "conf-ftn",
        stage="userinfo",
        code="not_nested",
    ),
    Case("rp-userinfo-sig+enc", provider="conf-ftn"),
    Case("rp-userinfo-sig"),
    # Plain JSON UserInfo for a profile that agreed on it (the simulator's unsigned mode).
    Case(
        "rp-userinfo-bearer-header-plain-json",
        ("userinfo-unsigned",),
        rp_options=(("userinfo", "json"),),
    ),
    # --- b.3 current conformance-suite modules -----------------------------------------
    Case("oidcc-client-test"),
    Case("oidcc-client-test-nonce-invalid", ("nonce-append",), InvalidInput, code="nonce_mismatch"),
    Case("oidcc-client-test-client-secret-basic"),
    Case("oidcc-client-test-scope-userinfo-claims"),
    Case("oidcc-client-test-kid-absent-single-jwks", ("kid-absent-single",), alg="RS256"),
    Case(
        "oidcc-client-test-kid-absent-multiple-jwks",
        ("kid-absent-multiple",),
        InvalidInput,
        alg="RS256",
        code="ambiguous_key",
    ),
    Case("oidcc-client-test-missing-iat", ("iat-missing",), InvalidInput, code="iat_missing"),
    Case("oidcc-client-test-missing-aud", ("aud-missing",), InvalidInput, code="aud_missing"),
    Case("oidcc-client-test-invalid-aud", ("aud-append",), InvalidInput, code="aud_mismatch"),
    Case("oidcc-client-test-idtoken-sig-none", ("alg-none",), InvalidInput, code="alg_refused"),
    Case("oidcc-client-test-idtoken-sig-rs256", alg="RS256"),
    Case("oidcc-client-test-missing-sub", ("sub-missing",), InvalidInput, code="sub_invalid"),
    Case("oidcc-client-test-invalid-sig-rs256", ("sig-xor",), InvalidSignature, alg="RS256"),
    Case("oidcc-client-test-invalid-sig-es256", ("sig-xor",), InvalidSignature, alg="ES256"),
    Case("oidcc-client-test-invalid-sig-hs256", ("alg-hs256",), InvalidInput),
    Case("oidcc-client-test-invalid-iss", ("iss-append",), InvalidInput, code="iss_mismatch"),
    Case(
        "oidcc-client-test-userinfo-invalid-sub",
        ("userinfo-sub-append",),
        InvalidInput,
        stage="userinfo",
        code="userinfo_sub_mismatch",
    ),
    Case("oidcc-client-test-userinfo-bearer-header"),
    Case("oidcc-client-test-discovery-openid-config"),
    Case("oidcc-client-test-discovery-jwks-uri-keys"),
    Case(
        "oidcc-client-test-discovery-issuer-mismatch",
        ("discovery-issuer-mismatch",),
        ProviderError,
        stage="begin",
        code="discovery_issuer_mismatch",
    ),
    Case("oidcc-client-test-signing-key-rotation-just-before-signing", ("rotate-before-signing",)),
    Case("oidcc-client-test-userinfo-signed"),
    Case("oidcc-client-test-ignores-unparseable-key-in-jwks", ("unparseable-key-in-jwks",)),
    # --- b.4 FAPI client tests ---------------------------------------------------------
    Case("fapi2-security-profile-final-client-test-happy-path", provider="conf-ftn"),
    Case(
        "fapi2-security-profile-final-client-test-invalid-authorization-response-iss",
        ("iss-param-wrong",),
        InvalidInput,
        stage="front",
        code="iss_param_mismatch",
    ),
    Case(
        "fapi2-security-profile-final-client-test-remove-authorization-response-iss",
        ("iss-param-missing",),
        InvalidInput,
        stage="front",
        code="iss_param_missing",
    ),
    Case(
        "fapi2-security-profile-final-client-test-invalid-alternate-alg",
        (),
        InvalidInput,
        alg="RS256",
        rp_options=(("id_token_signing_algs", ["PS256", "ES256"]),),
        code="alg_not_allowed",
    ),
    Case("fapi2-security-profile-final-client-test-invalid-null-alg", ("alg-none",), InvalidInput),
    Case("fapi2-security-profile-final-client-test-invalid-aud", ("aud-append",), InvalidInput),
    Case(
        "fapi2-security-profile-final-client-test-invalid-missing-aud",
        ("aud-missing",),
        InvalidInput,
    ),
    Case(
        "fapi2-security-profile-final-client-test-invalid-secondary-aud",
        ("aud-secondary",),
        InvalidInput,
        code="aud_untrusted",
    ),
    Case("fapi2-security-profile-final-client-test-valid-aud-as-array", ("aud-array",)),
    Case("fapi2-security-profile-final-client-test-invalid-iss", ("iss-append",), InvalidInput),
    Case(
        "fapi2-security-profile-final-client-test-invalid-missing-iss",
        ("iss-missing",),
        InvalidInput,
        code="iss_missing",
    ),
    Case(
        "fapi2-security-profile-final-client-test-invalid-expired-exp",
        ("exp-expired",),
        Expired,
        code="id_token_expired",
    ),
    Case(
        "fapi2-security-profile-final-client-test-invalid-missing-exp",
        ("exp-missing",),
        InvalidInput,
        code="exp_missing",
    ),
    Case("fapi2-security-profile-final-client-test-invalid-nonce", ("nonce-append",), InvalidInput),
    Case(
        "fapi2-security-profile-final-client-test-invalid-missing-nonce",
        ("nonce-missing",),
        InvalidInput,
        code="nonce_missing",
    ),
    Case(
        "fapi2-security-profile-final-client-test-token-endpoint-response-without-expires_in",
        ("token-no-expires-in",),
    ),
    Case(
        "fapi2-security-profile-final-client-test-token-type-case-insensitivity",
        ("token-type-case",),
    ),
    Case(
        "fapi1-advanced-final-client-test-encrypted-idtoken",
        provider="conf-ftn",
        jwe_alg="RSA-OAEP",
    ),
    # Telia publishes no RSA-OAEP-256: an FTN ID token encrypted with it is refused by
    # the profile's allow-list before any key is tried.
    Case(
        "X-ftn-encrypted-idtoken-rsa-oaep-256",
        provider="conf-ftn",
        jwe_alg="RSA-OAEP-256",
        expect=InvalidInput,
        code="alg_not_allowed",
    ),
    Case(
        "fapi1-advanced-final-client-test-encrypted-idtoken-usingrsa15",
        ("encrypt-rsa1_5",),
        InvalidInput,
        "conf-ftn",
        code="alg_refused",
    ),
    Case(
        "fapi1-advanced-final-client-test-iat-is-week-in-past",
        ("iat-week-old",),
        Expired,
        code="id_token_too_old",
    ),
    Case("fapi1-advanced-final-client-test-missing-athash", ("at-hash-missing",)),
    Case(
        "fapi1-advanced-final-client-test-discovery-issuer-mismatch",
        ("discovery-issuer-mismatch",),
        ProviderError,
        stage="begin",
    ),
    # --- b.6 further cases -------------------------------------------------------------
    Case("X-02-nbf-future", ("nbf-future",), InvalidInput, code="nbf_future"),
    Case("X-03-iat-future", ("iat-future",), InvalidInput, code="iat_future"),
    Case("X-04-exp-string", ("exp-string",), InvalidInput, code="bad_time_claim"),
    Case("X-07-azp-other", ("azp-other",), InvalidInput, code="azp_mismatch"),
    Case("X-09-sub-long", ("sub-long",), InvalidInput, code="sub_invalid"),
    Case("X-10-acr-lower", ("acr-lower",), InsufficientLoa, code="acr_insufficient"),
    Case("X-10-acr-missing", ("acr-missing",), InsufficientLoa, code="acr_missing"),
    Case("PROF-03-acr-unknown", ("acr-unknown",), InsufficientLoa, code="acr_unknown"),
    Case(
        "X-11-auth-time-missing",
        ("auth-time-missing",),
        InvalidInput,
        rp_options=(("max_age", 300),),
        code="auth_time_missing",
    ),
    Case("X-11-max-age-ok", rp_options=(("max_age", 300),)),
    Case("X-14-embedded-jwk", ("embedded-jwk",), KeyNotFound, code="unknown_kid"),
    Case("X-17-jwe-dir", ("encrypt-dir",), InvalidInput, "conf-ftn", code="alg_not_allowed"),
    Case("X-17-jwe-without-inner-jws", ("encrypt-plain-claims",), InvalidInput, "conf-ftn"),
    Case("X-18-not-encrypted", ("no-encryption",), InvalidInput, "conf-ftn", code="not_encrypted"),
    Case(
        "X-19-iss-param-trailing-slash",
        ("iss-param-slash",),
        InvalidInput,
        stage="front",
        code="iss_param_mismatch",
    ),
    Case(
        "X-21-replayed-code",
        ("replay-code",),
        ProviderError,
        stage="token",
        code="token_refused",
    ),
    Case(
        "X-22-http-endpoint",
        ("discovery-http-endpoint",),
        ProviderError,
        stage="begin",
        code="insecure_endpoint",
    ),
    Case("X-23-token-redirect", ("token-redirect",), ProviderError, stage="token"),
    Case(
        "X-24-userinfo-wrong-key",
        ("userinfo-wrong-key",),
        KeyNotFound,
        stage="userinfo",
    ),
    Case(
        "X-24-userinfo-iss-wrong",
        ("userinfo-iss-wrong",),
        InvalidInput,
        stage="userinfo",
        code="userinfo_iss_mismatch",
    ),
    Case(
        "X-24-userinfo-aud-wrong",
        ("userinfo-aud-wrong",),
        InvalidInput,
        stage="userinfo",
        code="userinfo_aud_mismatch",
    ),
    Case(
        "X-24-userinfo-unsigned",
        ("userinfo-unsigned",),
        InvalidInput,
        stage="userinfo",
        code="userinfo_format",
    ),
    # --- issue 15: hardening beyond the conformance suites ------------------------------
    Case(
        "rfc6750-access-token-not-b64token",
        ("access-token-bad-char",),
        InvalidInput,
        stage="token",
        code="access_token_syntax",
    ),
    Case(
        "rfc6750-access-token-non-ascii",
        ("access-token-non-ascii",),
        InvalidInput,
        stage="token",
        code="access_token_syntax",
    ),
    Case(
        "core-auth-time-future-with-max-age",
        ("auth-time-future",),
        InvalidInput,
        rp_options=(("max_age", 300),),
        code="auth_time_future",
    ),
    Case("core-auth-time-future", ("auth-time-future",), InvalidInput, code="auth_time_future"),
    Case(
        "discovery-malformed-url",
        ("discovery-malformed-url",),
        ProviderError,
        stage="begin",
        code="bad_metadata",
    ),
    Case("jwks-private-members", ("jwks-private-members",), ProviderError, code="jwks_private_key"),
    Case(
        "PROF-01-ftn-acr-lower",
        ("acr-lower",),
        InsufficientLoa,
        "conf-ftn",
        code="acr_insufficient",
    ),
]


def _counts(op: OpenIdProviderSim) -> dict[str, int]:
    return {e: op.count(e) for e in ("token", "userinfo", "jwks")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance(case: Case, flow_factory: Any) -> None:
    flow = flow_factory(case.provider, **dict(case.rp_options))
    control = flow.op.control
    control.id_token_alg = case.alg
    control.jwe_alg = case.jwe_alg
    begin_params = (
        {"acr": "http://ftn.ficora.fi/2017/loa3"} if case.id.startswith("PROF-01") else {}
    )
    if case.stage == "begin":
        control.misbehave(*case.misbehave)
        with pytest.raises(case.expect or AuthBrokerError) as err:
            flow.begin()
        assert type(err.value) is case.expect
        if case.code:
            assert err.value.code == case.code
        assert flow.sink.names() == ["flow.failed"]
        return
    if case.id == "X-21-replayed-code":
        flow.run()  # redeem one code, which the simulator then replays
    control.misbehave(*case.misbehave)
    step = flow.begin(**begin_params)
    callback = flow.authorize(step)
    before = _counts(flow.op)
    if case.expect is None:
        done = flow.complete(step, callback)
        identity = done.identity
        assert identity.national_id is not None
        assert identity.loa.is_strong
        assert flow.sink.names()[-1] == "flow.completed"
        return
    with pytest.raises(AuthBrokerError) as err:
        flow.complete(step, callback)
    assert type(err.value) is case.expect, repr(err.value)
    if case.code:
        assert err.value.code == case.code
    after = _counts(flow.op)
    # REJECT means no follow-up call (a REJECT case of the conformance suites).
    if case.stage == "front":
        assert after["token"] == before["token"]
    elif case.stage in ("id_token", "token"):
        assert after["token"] == before["token"] + 1
        assert after["userinfo"] == before["userinfo"]
    else:
        assert after["userinfo"] == before["userinfo"] + 1
    # No identity and the flow is consumed: the same callback cannot be retried.
    assert flow.sink.names()[-1] == "flow.failed"
    with pytest.raises(FlowNotFound):
        flow.complete(step, callback)


def test_rp_key_rotation_op_sign_key(flow_factory: Any) -> None:
    """rp-key-rotation-op-sign-key / oidcc-client-test-signing-key-rotation:
    verify, rotate, verify again with exactly one JWKS refetch."""
    flow = flow_factory("conf")
    flow.op.control.id_token_alg = "RS256"
    flow.run()
    fetches = flow.op.count("jwks")
    flow.run()
    assert flow.op.count("jwks") == fetches  # cached
    flow.op.rotate_signing_key()
    flow.run()
    assert flow.op.count("jwks") == fetches + 1


def test_rp_key_rotation_op_sign_key_native(flow_factory: Any) -> None:
    """rp-key-rotation-op-sign-key-native: rotation before the first ID token."""
    flow = flow_factory("conf")
    flow.op.control.id_token_alg = "RS256"
    flow.op.rotate_signing_key()
    flow.run()
    assert flow.op.count("jwks") >= 1


def test_rp_nonce_unless_code_flow_nonce_always_sent(flow_factory: Any) -> None:
    """rp-nonce-unless-code-flow / oidcc-client-test-nonce-unless-code-flow."""
    flow = flow_factory("conf")
    step = flow.begin()
    query = dict(parse_qsl(urlsplit(step.url).query))
    assert 43 <= len(query["nonce"]) <= 64
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 43


@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param(
            {"state": "forged"}, id="fapi2-ensure-authorization-response-with-invalid-state-fails"
        ),
        pytest.param(
            {"state": None},
            id="fapi2-ensure-authorization-response-with-invalid-missing-state-fails",
        ),
    ],
)
def test_fapi2_state_checks(flow_factory: Any, mutation: dict[str, Any]) -> None:
    flow = flow_factory("conf")
    step = flow.begin()
    callback = flow.authorize(step)
    for key, value in mutation.items():
        if value is None:
            callback.pop(key)
        else:
            callback[key] = value
    before = flow.op.count("token")
    with pytest.raises(InvalidInput) as err:
        flow.complete(step, callback)
    assert err.value.code in ("state_mismatch", "state_missing")
    assert flow.op.count("token") == before


@pytest.mark.parametrize(
    ("error", "expected"),
    [("access_denied", UserCancelled), ("login_required", ProviderError)],
    ids=["oidcc-client-test-form-post-error-access_denied", "error-login_required"],
)
def test_authorization_error_responses(flow_factory: Any, error: str, expected: type) -> None:
    flow = flow_factory("conf")
    flow.op.control.deny = error
    step = flow.begin()
    callback = flow.authorize(step)
    assert "<b>" in callback["error_description"]
    before = flow.op.count("token")
    with pytest.raises(expected) as err:
        flow.complete(step, callback)
    # error_description is untrusted text: never in the message.
    assert "<b>" not in str(err.value)
    assert flow.op.count("token") == before


def test_error_with_foreign_state_is_forged(flow_factory: Any) -> None:
    """OIDC-08: an error response is still state-checked."""
    flow = flow_factory("conf")
    flow.op.control.deny = "access_denied"
    flow.op.control.misbehave("error-foreign-state")
    step = flow.begin()
    with pytest.raises(InvalidInput) as err:
        flow.complete(step, flow.authorize(step))
    assert err.value.code == "state_mismatch"


def test_iss_param_not_required_when_not_advertised(flow_factory: Any) -> None:
    """RFC 9207 §2.4: without the metadata flag a missing iss is tolerated."""
    flow = flow_factory("conf")
    flow.op.control.misbehave("iss-param-not-advertised", "iss-param-missing")
    assert isinstance(flow.run(), Done)


def test_front_channel_tokens_are_ignored(flow_factory: Any) -> None:
    """OIDC-02: an id_token in the callback is not used; the code exchange happens."""
    flow = flow_factory("conf")
    step = flow.begin()
    callback = flow.authorize(step)
    callback["id_token"] = "x.y.z"
    callback["access_token"] = "front"
    before = flow.op.count("token")
    assert isinstance(flow.complete(step, callback), Done)
    assert flow.op.count("token") == before + 1


def test_replayed_state_in_new_flow_is_refused(flow_factory: Any) -> None:
    """X-20/X-21: a completed callback replayed into another flow fails before the token call."""
    flow = flow_factory("conf")
    step = flow.begin()
    callback = flow.authorize(step)
    flow.complete(step, callback)
    other = flow.begin()
    before = flow.op.count("token")
    with pytest.raises(InvalidInput):
        flow.complete(other, callback)
    with pytest.raises(FlowNotFound):
        flow.complete(step, callback)
    assert flow.op.count("token") == before


def test_state_entry_is_single_use_even_if_flow_record_survives(flow_factory: Any) -> None:
    """OIDC-03: the state store entry is taken atomically; a second take fails."""
    flow = flow_factory("conf")
    step = flow.begin()
    callback = flow.authorize(step)
    record = flow.store.get("flow:" + step.flow_id)
    assert record is not None
    flow.complete(step, callback)
    flow.store.put("flow:" + step.flow_id, record, 60)  # resurrect the flow record
    with pytest.raises(AlreadyUsed) as err:
        flow.complete(step, callback)
    assert err.value.code == "state_replayed"


# --- issue 15: typed, named errors for OP misconfiguration ---------------------------------


def test_malformed_discovery_url_names_provider_and_field(flow_factory: Any) -> None:
    flow = flow_factory("conf")
    flow.op.control.misbehave("discovery-malformed-url")
    with pytest.raises(ProviderError) as err:
        flow.begin()
    assert err.value.code == "bad_metadata"
    assert err.value.details == {"provider": "conf", "field": "jwks_uri"}
    assert "conf" in str(err.value) and "jwks_uri" in str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1/x",
        "https://[not-an-ip]/x",
        "https://op.example:99999/token",
        "https://op.example:port/token",
        "https://op.example/to ken",
        "https://op.example/t\u00f6ken",
        "https://op.example/token\r\nX-Injected: 1",
        "https://op.example/token#frag",
        "https://user:pw@op.example/token",
        "",
        None,
        42,
        "https://op.example/" + "a" * 2048,
    ],
)
@pytest.mark.parametrize("field_name", ["authorization_endpoint", "token_endpoint", "jwks_uri"])
def test_every_discovery_url_is_parsed_safely(url: Any, field_name: str) -> None:
    from authbroker.providers.oidc.helpers import _check_url

    with pytest.raises(ProviderError) as err:
        _check_url(url, field_name, provider="ftn", allow_loopback_http=True)
    assert err.value.code == "bad_metadata"
    assert err.value.details == {"provider": "ftn", "field": field_name}


def test_discovery_urls_that_are_fine_stay_fine() -> None:
    from authbroker.providers.oidc.helpers import _check_url

    for url in (
        "https://op.example/token",
        "https://op.example:8443/a/b?x=1&y=%20",
        "https://[2001:db8::1]/jwks",
        "http://127.0.0.1:8080/op/token",
    ):
        assert _check_url(url, "token_endpoint", provider="p", allow_loopback_http=True) == url
    with pytest.raises(ProviderError) as err:
        _check_url(
            "http://op.example/token", "token_endpoint", provider="p", allow_loopback_http=True
        )
    assert err.value.code == "insecure_endpoint"
    assert err.value.details == {"provider": "p", "field": "token_endpoint"}


def test_jwks_with_private_members_names_the_provider(flow_factory: Any) -> None:
    flow = flow_factory("conf")
    flow.op.control.misbehave("jwks-private-members")
    step = flow.begin()
    callback = flow.authorize(step)
    before = flow.op.count("userinfo")
    with pytest.raises(ProviderError) as err:
        flow.complete(step, callback)
    assert err.value.code == "jwks_private_key"
    assert err.value.details == {"provider": "conf"}
    assert flow.op.count("userinfo") == before
    assert flow.sink.names()[-1] == "flow.failed"


@pytest.mark.parametrize(
    ("offset", "max_age", "ok"),
    [(59, None, True), (59, 300, True), (61, None, False), (61, 300, False), (3600, 300, False)],
)
def test_auth_time_in_the_future_is_refused_beyond_the_skew(
    offset: int, max_age: int | None, ok: bool
) -> None:
    from authbroker.providers.oidc import validate_id_token_claims

    now = 1_700_000_000.0
    claims = {
        "iss": "https://op.example",
        "aud": "client",
        "sub": "s",
        "exp": now + 300,
        "iat": now,
        "nonce": "n",
        "auth_time": now + offset,
    }

    def check() -> None:
        validate_id_token_claims(
            claims,
            issuer="https://op.example",
            client_id="client",
            nonce="n",
            now=now,
            skew=60,
            max_age=max_age,
        )

    if ok:
        check()
        return
    with pytest.raises(InvalidInput) as err:
        check()
    assert err.value.code == "auth_time_future"
