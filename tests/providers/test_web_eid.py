"""Web eID against its simulator: real tokens, real certificates, a real OCSP responder.

Every tampering the issue lists is tried once against a live loopback OCSP responder
(the simulator), plus end-to-end flows through :class:`Broker` and
:class:`AsyncBroker`, concurrent replays, and arbitrary token strings (hypothesis).
The public Web eID vectors are in ``test_web_eid_vectors.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authbroker import AsyncBroker, Broker, Done
from authbroker.config import ProviderConfig, Settings, load_config
from authbroker.errors import (
    AlreadyUsed,
    AuthBrokerError,
    Expired,
    FlowNotFound,
    InvalidInput,
    InvalidSignature,
    ProviderUnavailable,
    UntrustedCertificate,
)
from authbroker.flow import Challenge
from authbroker.http import SyncDriver
from authbroker.identity import Identity, Loa
from authbroker.providers.base import AdvanceContext, BeginContext, Next
from authbroker.providers.web_eid import WebEidProvider, from_config
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from authbroker.testing import RunningSimulator, simulated_async_broker, simulated_broker
from authbroker.testing.simulators.web_eid import (
    MOBILE_ID_POLICY,
    SimCard,
    WebEidSimulator,
    _self_signed,
    start,
)
from conftest import run_together
from runtimes import run_sync

ORIGIN = "https://app.example"
DEFAULT = "38001085718"


@pytest.fixture(scope="module")
def running() -> Iterator[RunningSimulator]:
    cfg = ProviderConfig("web-eid", "web-eid", "simulator", {"en": "x"}, Loa.HIGH, "EE", {})
    sim = start(cfg, Settings())
    yield sim
    sim.stop()


@pytest.fixture
def sim(running: RunningSimulator) -> Iterator[WebEidSimulator]:
    simulator: WebEidSimulator = running.extra["simulator"]
    yield simulator
    for key in simulator.switches:
        simulator.switches[key] = False


@pytest.fixture(scope="module")
def driver() -> Iterator[SyncDriver]:
    d = SyncDriver(retries=0)
    yield d
    d.close()


def make_provider(running: RunningSimulator, **options: Any) -> WebEidProvider:
    cfg = ProviderConfig(
        "web-eid",
        "web-eid",
        "simulator",
        {"en": "Web eID"},
        Loa.HIGH,
        "EE",
        {**running.overrides, "origin": ORIGIN, **options},
    )
    return from_config(cfg, Settings())


class Flow:
    """One provider flow driven by hand: begin, then advance with a token."""

    def __init__(self, provider: WebEidProvider, driver: SyncDriver) -> None:
        self.provider = provider
        self.driver = driver
        self.store = MemoryStore()
        self.now = time.time()
        nxt = run_sync(provider.begin(BeginContext("f" * 20, "", self.now)), None, self.store)
        assert isinstance(nxt, Next) and isinstance(nxt.step, Challenge)
        self.nonce = nxt.step.nonce
        self.data = nxt.data

    def advance(self, token: str, *, now: float | None = None) -> Identity:
        ctx = AdvanceContext("f" * 20, self.now if now is None else now)
        return run_sync(
            self.provider.advance(ctx, self.data, {"token": token}), self.driver, self.store
        )


def fail(flow: Flow, token: str, error: type[AuthBrokerError], code: str | None = None) -> None:
    with pytest.raises(AuthBrokerError) as err:
        flow.advance(token)
    assert type(err.value) is error, repr(err.value)
    if code is not None:
        assert err.value.code == code
    # Only the consumed nonce may remain (fail closed, nothing else written).
    assert list(flow.store._data) == [k for k in flow.store._data if k.startswith("webeid:nonce:")]


# --- begin -----------------------------------------------------------------------------


def test_begin_issues_a_fresh_256_bit_nonce(running: RunningSimulator) -> None:
    p = make_provider(running)
    assert p.flow_ttl == 300
    nonces = set()
    for _ in range(20):
        nxt = run_sync(p.begin(BeginContext("f" * 20, "", 1000.0)), None, None)
        assert isinstance(nxt.step, Challenge)
        assert len(nxt.step.nonce) == 44
        assert len(base64.b64decode(nxt.step.nonce, validate=True)) == 32
        assert nxt.data == {"nonce": nxt.step.nonce, "issued_at": 1000.0, "origin": ORIGIN}
        json.dumps(nxt.data)
        nonces.add(nxt.step.nonce)
    assert len(nonces) == 20


# --- success -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "algorithm"),
    [
        ("ec-p384", "ES384"),
        ("ec-p256", "ES256"),
        ("ec-p521", "ES512"),
        ("rsa", "RS256"),
        ("rsa", "RS384"),
        ("rsa", "RS512"),
        ("rsa", "PS256"),
        ("rsa", "PS384"),
        ("rsa", "PS512"),
    ],
)
def test_every_algorithm(
    running: RunningSimulator,
    sim: WebEidSimulator,
    driver: SyncDriver,
    key_type: str,
    algorithm: str,
) -> None:
    card = sim.issue_card("39901012239", "KEY", key_type.upper(), key_type=key_type)
    flow = Flow(make_provider(running), driver)
    before = sim.ocsp_requests
    identity = flow.advance(sim.make_token(ORIGIN, flow.nonce, card=card, algorithm=algorithm))
    assert identity.national_id is not None and identity.national_id.value == "39901012239"
    assert identity.raw["algorithm"] == algorithm
    assert sim.ocsp_requests == before + 1


def test_identity_from_certificate(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    flow = Flow(make_provider(running), driver)
    identity = flow.advance(sim.make_token(ORIGIN, flow.nonce))
    assert identity.provider == "web-eid" and identity.method == "idcard"
    assert identity.loa is Loa.HIGH and identity.is_strong
    assert identity.subject == "PNOEE-38001085718"
    assert identity.national_id is not None and identity.national_id.kind == "isikukood"
    assert identity.birthdate is not None and identity.birthdate.isoformat() == "1980-01-08"
    assert (identity.given_name, identity.family_name) == ("JAAK-KRISTJAN", "JÕEORG")
    assert identity.authenticated_at == datetime.fromtimestamp(flow.now, UTC)
    assert "38001085718" not in repr(identity) + str(identity)


@pytest.mark.parametrize(
    ("prefix", "country", "attrs"),
    [
        ("PNOLV-", "LV", {"personal_code": "010180-12345", "personal_code_country": "LV"}),
        ("PNOLT-", "LT", {"personal_code": "010180-12345", "personal_code_country": "LT"}),
    ],
)
def test_baltic_subjects(
    running: RunningSimulator,
    sim: WebEidSimulator,
    driver: SyncDriver,
    prefix: str,
    country: str,
    attrs: dict[str, str],
) -> None:
    card = sim.issue_card("010180-12345", "ANNA", "BERZINA", serial_prefix=prefix, country=country)
    flow = Flow(make_provider(running), driver)
    identity = flow.advance(sim.make_token(ORIGIN, flow.nonce, card=card))
    assert identity.national_id is None
    assert {k: identity.attributes[k] for k in attrs} == attrs


def test_certificate_without_eku_is_accepted(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    card = sim.issue_card("48808080008", "NO", "EKU", eku=None)
    flow = Flow(make_provider(running), driver)
    assert flow.advance(sim.make_token(ORIGIN, flow.nonce, card=card)).national_id is not None


def test_web_eid_1_1_token(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    flow = Flow(make_provider(running), driver)
    token = sim.make_token(ORIGIN, flow.nonce, fmt="web-eid:1.1")
    assert flow.advance(token).raw["format"] == "web-eid:1.1"


def test_web_eid_1_1_signing_certificate_of_another_person(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    flow = Flow(make_provider(running), driver)
    token = json.loads(sim.make_token(ORIGIN, flow.nonce, fmt="web-eid:1.1"))
    other = sim.cards["60001017869"]
    token["unverifiedSigningCertificates"][0]["certificate"] = sim.signing_certificate(other)
    fail(flow, json.dumps(token), UntrustedCertificate, "signing_certificate")


def test_web_eid_1_1_needs_signing_certificates(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    flow = Flow(make_provider(running), driver)
    token = json.loads(sim.make_token(ORIGIN, flow.nonce, fmt="web-eid:1.1"))
    del token["unverifiedSigningCertificates"]
    fail(flow, json.dumps(token), InvalidInput, "token_field")


# --- tampering -------------------------------------------------------------------------


def test_wrong_origin(running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver) -> None:
    flow = Flow(make_provider(running), driver)
    fail(flow, sim.make_token("https://evil.example", flow.nonce), InvalidSignature)


def test_origin_with_trailing_slash(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    flow = Flow(make_provider(running), driver)
    fail(flow, sim.make_token(ORIGIN + "/", flow.nonce), InvalidSignature)


def test_wrong_nonce(running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver) -> None:
    flow = Flow(make_provider(running), driver)
    other = Flow(make_provider(running), driver)
    fail(flow, sim.make_token(ORIGIN, other.nonce), InvalidSignature)


def test_reused_nonce(running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver) -> None:
    flow = Flow(make_provider(running), driver)
    token = sim.make_token(ORIGIN, flow.nonce)
    assert flow.advance(token).national_id is not None
    with pytest.raises(AlreadyUsed):
        flow.advance(token)


def test_nonce_consumed_by_a_failed_attempt(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    flow = Flow(make_provider(running), driver)
    fail(flow, sim.make_token("https://evil.example", flow.nonce), InvalidSignature)
    with pytest.raises(AlreadyUsed):
        flow.advance(sim.make_token(ORIGIN, flow.nonce))


def test_expired_nonce(running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver) -> None:
    flow = Flow(make_provider(running), driver)
    with pytest.raises(Expired) as err:
        flow.advance(sim.make_token(ORIGIN, flow.nonce), now=flow.now + 301)
    assert err.value.code == "nonce_expired"
    assert flow.store._data == {}


def test_bad_signature(running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver) -> None:
    flow = Flow(make_provider(running), driver)
    token = json.loads(sim.make_token(ORIGIN, flow.nonce))
    sig = bytearray(base64.b64decode(token["signature"]))
    sig[10] ^= 1
    token["signature"] = base64.b64encode(bytes(sig)).decode()
    before = sim.ocsp_requests
    fail(flow, json.dumps(token), InvalidSignature)
    # A forged token never makes the adapter contact the OCSP responder.
    assert sim.ocsp_requests == before


def test_truncated_signature(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    flow = Flow(make_provider(running), driver)
    token = json.loads(sim.make_token(ORIGIN, flow.nonce))
    token["signature"] = base64.b64encode(base64.b64decode(token["signature"])[:-2]).decode()
    fail(flow, json.dumps(token), InvalidSignature)


@pytest.mark.parametrize(
    ("algorithm", "code"),
    [("ES256", "algorithm_key_mismatch"), ("RS256", "algorithm_key_mismatch"), ("HS256", None)],
)
def test_algorithm_does_not_fit_key(
    running: RunningSimulator,
    sim: WebEidSimulator,
    driver: SyncDriver,
    algorithm: str,
    code: str | None,
) -> None:
    flow = Flow(make_provider(running), driver)
    token = json.loads(sim.make_token(ORIGIN, flow.nonce))
    token["algorithm"] = algorithm
    fail(flow, json.dumps(token), InvalidInput, code or "unsupported_algorithm")


def test_pss_signature_presented_as_pkcs1(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    flow = Flow(make_provider(running), driver)
    token = json.loads(sim.make_token(ORIGIN, flow.nonce, user="60001017869", algorithm="PS256"))
    token["algorithm"] = "RS256"
    fail(flow, json.dumps(token), InvalidSignature)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        (
            {
                "not_before": datetime.now(UTC) - timedelta(days=30),
                "not_after": datetime.now(UTC) - timedelta(days=1),
            },
            "cert_expired",
        ),
        ({"not_before": datetime.now(UTC) + timedelta(days=1)}, "cert_not_yet_valid"),
        ({"policies": [MOBILE_ID_POLICY]}, "disallowed_policy"),
        ({"policies": ["1.3.6.1.4.1.51361.1.2.1", "1.3.6.1.4.1.10015.1.3.2"]}, "disallowed_policy"),
        ({"digital_signature": False}, "wrong_purpose"),
        ({"key_usage": False}, "key_usage_missing"),
        ({"eku": [ExtendedKeyUsageOID.EMAIL_PROTECTION]}, "wrong_purpose"),
    ],
)
def test_defective_certificates(
    running: RunningSimulator,
    sim: WebEidSimulator,
    driver: SyncDriver,
    kwargs: dict[str, Any],
    code: str,
) -> None:
    card = sim.issue_card("50001018865", "DEFECT", "CARD", register=False, **kwargs)
    flow = Flow(make_provider(running), driver)
    before = sim.ocsp_requests
    fail(flow, sim.make_token(ORIGIN, flow.nonce, card=card), UntrustedCertificate, code)
    assert sim.ocsp_requests == before  # rejected before any OCSP traffic


def _rogue_card(sim: WebEidSimulator, *, same_name: bool) -> SimCard:
    key = ec.generate_private_key(ec.SECP384R1())
    start_at = datetime.now(UTC) - timedelta(days=2)
    if same_name:
        # A forged CA carrying the real CA's name, signed with another key.
        ca = (
            x509.CertificateBuilder()
            .subject_name(sim.ca_cert.subject)
            .issuer_name(sim.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start_at)
            .not_valid_after(start_at + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA384())
        )
    else:
        ca = _self_signed("TEST of ROGUE ESTEID", key, start_at)
    return sim.issue_card("60001019906", "ROGUE", "CARD", issuer=(ca, key), register=False)


@pytest.mark.parametrize("same_name", [False, True])
def test_untrusted_ca(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver, same_name: bool
) -> None:
    card = _rogue_card(sim, same_name=same_name)
    flow = Flow(make_provider(running), driver)
    fail(
        flow,
        sim.make_token(ORIGIN, flow.nonce, card=card),
        UntrustedCertificate,
        "untrusted_issuer",
    )


def test_revoked_by_ocsp(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    flow = Flow(make_provider(running), driver)
    fail(
        flow,
        sim.make_token(ORIGIN, flow.nonce, user="49403136515"),
        UntrustedCertificate,
        "revoked",
    )


def test_ocsp_unknown(running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver) -> None:
    flow = Flow(make_provider(running), driver)
    fail(
        flow,
        sim.make_token(ORIGIN, flow.nonce, user="50001029996"),
        UntrustedCertificate,
        "ocsp_unknown",
    )


def test_revocation_takes_effect_immediately(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    card = sim.issue_card("37605030299", "SOON", "REVOKED")
    flow = Flow(make_provider(running), driver)
    assert flow.advance(sim.make_token(ORIGIN, flow.nonce, card=card)).national_id is not None
    sim.set_status("37605030299", "revoked")
    flow2 = Flow(make_provider(running), driver)
    fail(flow2, sim.make_token(ORIGIN, flow2.nonce, card=card), UntrustedCertificate, "revoked")


@pytest.mark.parametrize(
    ("switch", "error", "code"),
    [
        ("ocsp_down", ProviderUnavailable, "ocsp_http_status"),
        ("ocsp_try_later", ProviderUnavailable, "ocsp_busy"),
        ("stale", UntrustedCertificate, "ocsp_stale"),
        ("wrong_nonce", UntrustedCertificate, "ocsp_nonce"),
        ("omit_nonce", UntrustedCertificate, "ocsp_nonce"),
        ("wrong_signer", UntrustedCertificate, "ocsp_responder"),
    ],
)
def test_ocsp_misbehaviour(
    running: RunningSimulator,
    sim: WebEidSimulator,
    driver: SyncDriver,
    switch: str,
    error: type[AuthBrokerError],
    code: str,
) -> None:
    sim.switches[switch] = True
    flow = Flow(make_provider(running), driver)
    fail(flow, sim.make_token(ORIGIN, flow.nonce), error, code)


def test_ocsp_nonce_disabled_url_accepts_nonceless_answers(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    sim.switches["omit_nonce"] = True
    p = make_provider(running, ocsp_nonce_disabled_urls=[sim.ocsp_url])
    flow = Flow(p, driver)
    assert flow.advance(sim.make_token(ORIGIN, flow.nonce)).national_id is not None


def test_ocsp_unreachable(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    p = make_provider(
        running,
        ocsp_designated_url="http://127.0.0.1:9/ocsp",
        ocsp_designated_certificate=running.extra["ca_pem"],
    )
    flow = Flow(p, driver)
    fail(flow, sim.make_token(ORIGIN, flow.nonce), ProviderUnavailable, "ocsp_unavailable")


def test_fail_open_only_covers_outages(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    sim.switches["ocsp_down"] = True
    p = make_provider(running, ocsp_fail_open=True)
    flow = Flow(p, driver)
    assert flow.advance(sim.make_token(ORIGIN, flow.nonce)).national_id is not None
    sim.switches["ocsp_down"] = False
    flow2 = Flow(p, driver)
    fail(
        flow2,
        sim.make_token(ORIGIN, flow2.nonce, user="49403136515"),
        UntrustedCertificate,
        "revoked",
    )


def test_designated_responder(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = sim.responder_cert.public_bytes(serialization.Encoding.PEM).decode()
    p = make_provider(running, ocsp_designated_url=sim.ocsp_url, ocsp_designated_certificate=pem)
    flow = Flow(p, driver)
    assert flow.advance(sim.make_token(ORIGIN, flow.nonce)).national_id is not None
    # Pinned to another certificate: the same (valid, delegated) responder is refused.
    p2 = make_provider(
        running,
        ocsp_designated_url=sim.ocsp_url,
        ocsp_designated_certificate=sim.rogue_cert.public_bytes(
            serialization.Encoding.PEM
        ).decode(),
    )
    flow2 = Flow(p2, driver)
    fail(flow2, sim.make_token(ORIGIN, flow2.nonce), UntrustedCertificate, "ocsp_responder")


@pytest.mark.parametrize(
    ("mutation", "code"),
    [
        (lambda t: t[:-1], "token_json"),
        (lambda t: t.replace('"format": "web-eid:1.0"', '"format": "web-eid:9"'), "token_format"),
        (
            lambda t: t.replace('"unverifiedCertificate": "MII', '"unverifiedCertificate": "*MI'),
            "token_base64",
        ),
        (lambda t: t + " " * 10_001, "token_size"),
        (lambda t: "[" + t + "]", "token_json"),
    ],
)
def test_malformed(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver, mutation: Any, code: str
) -> None:
    flow = Flow(make_provider(running), driver)
    fail(flow, mutation(sim.make_token(ORIGIN, flow.nonce)), InvalidInput, code)


def test_missing_token(running: RunningSimulator, driver: SyncDriver) -> None:
    flow = Flow(make_provider(running), driver)
    with pytest.raises(InvalidInput) as err:
        run_sync(
            flow.provider.advance(AdvanceContext("f" * 20, flow.now), flow.data, {}),
            driver,
            flow.store,
        )
    assert err.value.code == "token_missing"


# --- through the broker ----------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    b = simulated_broker(load_config(environ={}), store=MemoryStore())
    yield b
    b.close()


def _base_origin(b: Broker | AsyncBroker) -> str:
    return b.settings.base_url


def test_broker_end_to_end(broker: Broker) -> None:
    step = broker.begin("web-eid", binding="browser-a", return_to="/account")
    assert isinstance(step, Challenge)
    sim = broker.simulator("web-eid")
    assert sim is not None
    token = sim.extra["make_token"](_base_origin(broker), step.nonce)
    done = broker.advance(step.flow_id, {"token": token}, binding="browser-a")
    assert isinstance(done, Done)
    assert done.return_to == "/account"
    assert done.identity.national_id is not None and done.identity.national_id.value == DEFAULT
    with pytest.raises(FlowNotFound):
        broker.advance(step.flow_id, {"token": token}, binding="browser-a")


def test_broker_nonce_from_another_browser(broker: Broker) -> None:
    step = broker.begin("web-eid", binding="browser-a")
    assert isinstance(step, Challenge)
    sim = broker.simulator("web-eid")
    assert sim is not None
    token = sim.extra["make_token"](_base_origin(broker), step.nonce)
    with pytest.raises(InvalidInput) as err:
        broker.advance(step.flow_id, {"token": token}, binding="browser-b")
    assert err.value.code == "flow_binding"
    # A token made for another flow's nonce is refused in this flow.
    other = broker.begin("web-eid", binding="browser-b")
    assert isinstance(other, Challenge)
    with pytest.raises(InvalidSignature):
        broker.advance(other.flow_id, {"token": token}, binding="browser-b")


def test_broker_failure_consumes_flow(broker: Broker) -> None:
    step = broker.begin("web-eid", binding="b")
    assert isinstance(step, Challenge)
    sim = broker.simulator("web-eid")
    assert sim is not None
    with pytest.raises(InvalidSignature):
        broker.advance(
            step.flow_id,
            {"token": sim.extra["make_token"]("https://evil.example", step.nonce)},
            binding="b",
        )
    good = sim.extra["make_token"](_base_origin(broker), step.nonce)
    with pytest.raises(FlowNotFound):
        broker.advance(step.flow_id, {"token": good}, binding="b")


def test_broker_concurrent_replay_exactly_one_success(broker: Broker) -> None:
    step = broker.begin("web-eid", binding="b")
    assert isinstance(step, Challenge)
    sim = broker.simulator("web-eid")
    assert sim is not None
    token = sim.extra["make_token"](_base_origin(broker), step.nonce)
    n = 12
    results = run_together(
        n,
        lambda _: broker.advance(step.flow_id, {"token": token}, binding="b"),
        catch=(AuthBrokerError,),
    )
    assert sum(isinstance(r, Done) for r in results) == 1
    assert all(isinstance(r, Done | AlreadyUsed | FlowNotFound) for r in results), results


async def test_async_broker_end_to_end_and_concurrent_replay() -> None:
    broker = simulated_async_broker(load_config(environ={}), store=AsyncMemoryStore())
    try:
        step = await broker.begin("web-eid", binding="b")
        assert isinstance(step, Challenge)
        sim = broker.simulator("web-eid")
        assert sim is not None
        token = sim.extra["make_token"](broker.settings.base_url, step.nonce, user="60001017869")

        async def attempt() -> object:
            try:
                return await broker.advance(step.flow_id, {"token": token}, binding="b")
            except AuthBrokerError as exc:
                return exc

        results = await asyncio.gather(*(attempt() for _ in range(10)))
        done = [r for r in results if isinstance(r, Done)]
        assert len(done) == 1
        assert done[0].identity.national_id is not None
        assert done[0].identity.national_id.value == "60001017869"
        assert all(isinstance(r, Done | AlreadyUsed | FlowNotFound) for r in results)

        step2 = await broker.begin("web-eid", binding="b")
        assert isinstance(step2, Challenge)
        revoked = sim.extra["make_token"](broker.settings.base_url, step2.nonce, user="49403136515")
        with pytest.raises(UntrustedCertificate):
            await broker.advance(step2.flow_id, {"token": revoked}, binding="b")
    finally:
        await broker.aclose()


# --- hypothesis: hostile input only ever yields authbroker errors ---------------------------


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=st.one_of(st.text(max_size=400), st.text(min_size=100, max_size=300)))
def test_arbitrary_strings(running: RunningSimulator, token: str) -> None:
    p = make_provider(running, ocsp=False)
    data = {"nonce": "n" * 44, "issued_at": time.time(), "origin": ORIGIN}
    with pytest.raises(AuthBrokerError):
        run_sync(
            p.advance(AdvanceContext("f" * 20, time.time()), data, {"token": token}),
            None,
            MemoryStore(),
        )


_json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40)
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(
        [
            "algorithm",
            "unverifiedCertificate",
            "signature",
            "format",
            "appVersion",
            "unverifiedIntermediateCertificates",
            "unverifiedSigningCertificates",
        ]
    ),
    value=_json,
    v11=st.booleans(),
)
def test_arbitrary_field_values(
    running: RunningSimulator, field: str, value: Any, v11: bool
) -> None:
    sim: WebEidSimulator = running.extra["simulator"]
    p = make_provider(running, ocsp=False)
    nonce = "m" * 44
    token = json.loads(sim.make_token(ORIGIN, nonce, fmt="web-eid:1.1" if v11 else "web-eid:1.0"))
    token[field] = value
    data = {"nonce": nonce, "issued_at": time.time(), "origin": ORIGIN}
    with contextlib.suppress(AuthBrokerError):
        run_sync(
            p.advance(AdvanceContext("f" * 20, time.time()), data, {"token": json.dumps(token)}),
            None,
            MemoryStore(),
        )


# --- issue 23: non-ID-card certificate policies are refused even under a trusted CA ---


@pytest.mark.parametrize(
    "policies",
    [
        ["1.3.6.1.4.1.10015.17.2", "0.4.0.2042.1.2"],  # Smart-ID qualified
        ["1.3.6.1.4.1.10015.17.1", "0.4.0.2042.1.1"],  # Smart-ID non-qualified
        ["1.3.6.1.4.1.10015.17.3"],  # any other policy under the Smart-ID arc
        ["1.3.6.1.4.1.10015.18.1", "0.4.0.2042.1.2"],  # SK Mobile-ID since 2022
        ["1.3.6.1.4.1.10015.1.3.1"],  # ESTEID-SK 2015 Mobile-ID
        ["1.3.6.1.4.1.51361.1.2.1", "1.3.6.1.4.1.10015.17.2"],  # card policy + Smart-ID
    ],
)
@pytest.mark.parametrize("configured", [None, []])
def test_smart_id_and_mobile_id_certificates_refused_under_trusted_ca(
    running: RunningSimulator,
    sim: WebEidSimulator,
    driver: SyncDriver,
    policies: list[str],
    configured: list[str] | None,
) -> None:
    """Issued by the trusted (simulator) CA, valid, right key usage: still not a card."""
    card = sim.issue_card("50001018865", "SMART", "ID", policies=policies)
    options = {} if configured is None else {"disallowed_policies": configured}
    flow = Flow(make_provider(running, **options), driver)
    before = sim.ocsp_requests
    fail(
        flow,
        sim.make_token(ORIGIN, flow.nonce, card=card),
        UntrustedCertificate,
        "disallowed_policy",
    )
    assert sim.ocsp_requests == before


def test_id_card_policy_still_accepted_with_empty_disallowed_list(
    running: RunningSimulator, sim: WebEidSimulator, driver: SyncDriver
) -> None:
    card = sim.issue_card("50001018865", "CARD", "HOLDER")
    flow = Flow(make_provider(running, disallowed_policies=[]), driver)
    ident = flow.advance(sim.make_token(ORIGIN, flow.nonce, card=card))
    assert isinstance(ident, Identity)
