"""Swedish BankID end to end: Broker/AsyncBroker -> adapter -> real mTLS -> simulator.

Every test starts its own simulator (fresh test CA, certificates and orders) and
drives time with an injected clock shared by the broker and the simulator, so the
30 s start window, the animated QR and the order deadline are exercised without
sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from authbroker import Broker, Done, Loa, Poll
from authbroker.audit import AuditLog, MemorySink
from authbroker.config import load_config
from authbroker.errors import (
    AccessDenied,
    AuthBrokerError,
    ConfigError,
    Expired,
    FlowNotFound,
    InvalidInput,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UntrustedCertificate,
    UserCancelled,
)
from authbroker.http import HttpRequest, MtlsConfig, SyncDriver
from authbroker.providers import bankid_se
from authbroker.providers.bankid_se.messages import LANGUAGES
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from authbroker.testing import simulated_async_broker, simulated_broker
from authbroker.testing.simulators import bankid_se as simmod
from authbroker.testing.simulators.bankid_se import BankIdSimulator

NAME = "bankid-se"
OK_USER = "199001010017"  # userSign -> complete
IP = "192.0.2.10"


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def _settings(**options: Any) -> Any:
    return load_config(environ={}, overrides={"providers": {NAME: options}})


class Env:
    """A broker on a fresh simulator, both on one clock."""

    def __init__(self, **options: Any) -> None:
        self.clock = Clock()
        self.sink = MemorySink()
        self.store = MemoryStore()
        self.broker = simulated_broker(
            _settings(**options), store=self.store, now=self.clock, audit=AuditLog([self.sink])
        )
        running = self.broker.simulator(NAME)
        assert running is not None
        self.running = running
        self.sim: BankIdSimulator = running.extra["simulator"]
        self.sim.clock = self.clock

    def begin(self, binding: str = "browser-a", ip: str | None = IP, **params: str) -> Poll:
        step = self.broker.begin(NAME, client_ip=ip, binding=binding, params=params)
        assert isinstance(step, Poll)
        return step

    def poll(self, flow_id: str, binding: str = "browser-a", **params: str) -> Any:
        self.clock.t += 2.0
        return self.broker.advance(flow_id, params, binding=binding)

    def count(self, path: str) -> int:
        return int(self.running.extra["server"].requests[simmod.API_PREFIX + path])

    def close(self) -> None:
        self.broker.close()


@pytest.fixture
def env() -> Any:
    e = Env()
    yield e
    e.close()


def _scan_current(env: Env, flow_id: str, pn: str, binding: str = "browser-a") -> None:
    qr = env.broker.refresh(flow_id, binding=binding).display.qr
    assert qr is not None
    assert env.sim.scan(qr, pn) == "ok"


def _order(env: Env) -> simmod.SimOrder:
    assert len(env.sim.orders) >= 1
    return list(env.sim.orders.values())[-1]


# --- happy paths ----------------------------------------------------------------------


def test_qr_auth_flow_sync(env: Env) -> None:
    step = env.begin()
    assert step.interval == 2.0  # §1.8 collect pace
    assert step.display.autostart_url is None  # QR flows expose no autostart token
    assert step.display.message["en"] == "Start your BankID app."
    assert set(step.display.message) == set(LANGUAGES)
    order = _order(env)
    assert step.display.qr is not None and step.display.qr.startswith(
        f"bankid.{order.qr_start_token}.0."
    )
    assert env.sim.verify_qr(step.display.qr) == "ok"
    # The browser refreshes the QR every second; each payload verifies at its time.
    for _ in range(4):
        env.clock.t += 1.0
        qr = env.broker.refresh(step.flow_id, binding="browser-a").display.qr
        assert qr is not None and env.sim.verify_qr(qr) == "ok"
    assert env.sim.verify_qr(step.display.qr) == "stale"  # the 0 s code no longer works
    _scan_current(env, step.flow_id, OK_USER)
    pending = env.poll(step.flow_id)
    assert isinstance(pending, Poll) and pending.display.hint_code == "userSign"
    assert pending.display.qr is None  # scanned: QR updates stop
    assert "säkerhetskod" in pending.display.message["sv"]
    done = env.poll(step.flow_id)
    assert isinstance(done, Done)
    ident = done.identity
    assert ident.national_id is not None and ident.national_id.value == OK_USER
    assert ident.national_id.country == "SE" and ident.national_id.kind == "personnummer"
    assert ident.loa is Loa.HIGH and ident.method == "bankid" and ident.provider == NAME
    assert (ident.given_name, ident.family_name) == ("Erik", "Andersson")
    assert ident.attributes["name"] == "Erik Andersson"
    assert ident.authenticated_at.timestamp() == env.clock.t
    assert env.sim.verify_signature(ident.raw["signature"])
    assert ident.raw["device"]["ipAddress"] == IP and ident.raw["device_ip_matches"] is True
    assert env.sim.pending_orders() == []
    with pytest.raises(FlowNotFound):
        env.broker.advance(step.flow_id, binding="browser-a")
    assert env.sink.names() == ["flow.begun", "flow.completed"]
    assert OK_USER not in repr(env.sink.events)
    assert OK_USER not in repr(ident)


def test_completion_ocsp_response_is_real_der_with_nonce(env: Env) -> None:
    step = env.begin()
    _scan_current(env, step.flow_id, OK_USER)
    env.poll(step.flow_id)
    done = env.poll(step.flow_id)
    assert isinstance(done, Done)
    resp = ocsp.load_der_ocsp_response(base64.b64decode(done.identity.raw["ocspResponse"]))
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    nonce = resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    sig = done.identity.raw["signature"].encode()
    assert len(nonce) == 32 and nonce[:20] == hashlib.sha1(sig).digest()  # §1.7 recipe
    xml = base64.b64decode(done.identity.raw["signature"]).decode()
    assert "SIMULATOR" in xml and "<SignatureValue>" in xml


async def test_qr_auth_flow_async() -> None:
    clock = Clock()
    async with simulated_async_broker(_settings(), store=AsyncMemoryStore(), now=clock) as broker:
        running = broker.simulator(NAME)
        assert running is not None
        sim: BankIdSimulator = running.extra["simulator"]
        sim.clock = clock
        step = await broker.begin(NAME, client_ip=IP, binding="b")
        assert isinstance(step, Poll) and step.display.qr is not None
        clock.t += 1
        fresh = await broker.refresh(step.flow_id, binding="b")
        assert fresh.display.qr is not None and sim.scan(fresh.display.qr, OK_USER) == "ok"
        clock.t += 2
        assert isinstance(await broker.advance(step.flow_id, binding="b"), Poll)
        clock.t += 2
        done = await broker.advance(step.flow_id, binding="b")
        assert isinstance(done, Done) and done.identity.national_id is not None
        assert done.identity.national_id.value == OK_USER
        assert sim.pending_orders() == []


def test_sign_flow_escapes_markdown(env: Env) -> None:
    text = "Pay *all* of invoice #12 | +fast+ \\ now\n---\n- item 2024-01-02"
    step = env.begin(action="sign", sign_title="Invoice *1*", sign_text=text, sign_data="doc-hash")
    order = _order(env)
    assert order.kind == "sign"
    assert order.body["userVisibleDataFormat"] == "simpleMarkdownV1"
    # SEB-07: what the app renders is exactly the text we were given.
    assert order.visible_text == "Invoice *1*\n\n" + text
    assert base64.b64decode(order.body["userNonVisibleData"]) == b"doc-hash"
    _scan_current(env, step.flow_id, OK_USER)
    env.poll(step.flow_id)
    done = env.poll(step.flow_id)
    assert isinstance(done, Done)
    assert done.identity.attributes["action"] == "sign"
    expected = hashlib.sha256(order.body["userVisibleData"].encode()).hexdigest()
    assert done.identity.attributes["signed_text_sha256"] == expected
    xml = base64.b64decode(done.identity.raw["signature"]).decode()
    assert order.body["userVisibleData"] in xml


def test_sign_needs_text_and_limits_length(env: Env) -> None:
    with pytest.raises(InvalidInput) as err:
        env.begin(action="sign")
    assert err.value.code == "sign_text"
    with pytest.raises(InvalidInput) as err:
        env.begin(action="sign", sign_text="x" * 40_000)
    assert err.value.code == "text_too_long"
    with pytest.raises(InvalidInput) as err:
        env.begin(auth_text="x" * 1200)  # auth: 1 500 after base64
    assert err.value.code == "text_too_long"
    with pytest.raises(InvalidInput):
        env.begin(action="sign", sign_text="bell\x07")
    with pytest.raises(InvalidInput):
        env.begin(action="pay")
    assert env.count("/sign") == 0 and env.count("/auth") == 0


def test_phone_auth_flow(env: Env) -> None:
    pn = "197911113335"  # userCallConfirm -> userSign -> complete
    step = env.begin(personal_number=pn, call_initiator="RP")
    assert step.display.qr is None and step.display.autostart_url is None
    path, body = env.sim.log[-1]
    assert path == "/phone/auth"
    assert body == {"personalNumber": pn, "callInitiator": "RP"}
    first = env.poll(step.flow_id)
    assert isinstance(first, Poll) and first.display.hint_code == "userCallConfirm"
    assert first.display.message["en"] == "An identification or signing is in progress."
    assert isinstance(env.poll(step.flow_id), Poll)
    done = env.poll(step.flow_id)
    assert isinstance(done, Done) and done.identity.national_id is not None
    assert done.identity.national_id.value == pn


def test_phone_sign_and_bad_phone_params(env: Env) -> None:
    env.begin(personal_number="197911113335", call_initiator="user", action="sign", sign_text="ok")
    assert env.sim.log[-1][0] == "/phone/sign"
    for params in (
        {"call_initiator": "rp", "personal_number": "197911113335"},
        {"call_initiator": "RP"},
        {"call_initiator": "RP", "personal_number": "197911113335", "same_device": "1"},
        {"call_initiator": "RP", "personal_number": "197911113336"},  # bad check digit
    ):
        with pytest.raises(InvalidInput):
            env.begin(**params)
    assert env.count("/phone/auth") == 0


@pytest.mark.parametrize(
    ("pn", "hints", "mobile", "rfa_en_start"),
    [
        ("198512242382", ["started", "userSign"], False, "Searching for BankID. Make sure"),
        ("198512242382", ["started", "userSign"], True, "Searching for BankID. Make sure"),
        ("197709092469", ["noClient", "userSign"], False, "Start your BankID app."),
        ("198808084449", ["userMrtd", "userSign"], False, "Take a photo of"),
    ],
)
def test_pending_hints_progress(
    env: Env, pn: str, hints: list[str], mobile: bool, rfa_en_start: str
) -> None:
    params = {"same_device": "true", "device": "mobile" if mobile else "desktop"}
    if pn == "198808084449":
        params["mrtd"] = "true"
    step = env.begin(**params)
    assert env.sim.autostart(_order(env).auto_start_token, pn) == "ok"
    seen = []
    first = env.poll(step.flow_id)
    assert first.display.message["en"].startswith(rfa_en_start)
    if hints[0] == "started":
        card = "card reader" in first.display.message["en"]
        assert card is (not mobile)  # RFA15A on a computer, RFA15B on a phone
    seen.append(first.display.hint_code)
    seen.append(env.poll(step.flow_id).display.hint_code)
    assert seen == hints
    last = env.poll(step.flow_id)
    # Same-device: the result waits for the browser to return with the nonce.
    assert isinstance(last, Poll) and last.display.status == "awaiting_return"
    nonce = parse_qs(urlsplit(_order(env).body["returnUrl"]).query)["nonce"][0]
    done = env.broker.advance(step.flow_id, {"nonce": nonce}, binding="browser-a")
    assert isinstance(done, Done)
    if pn == "198808084449":
        assert done.identity.raw["stepUp"] == {"mrtd": True}


# --- SEB-04: same-device binding ------------------------------------------------------


def test_same_device_autostart_and_return_nonce(env: Env) -> None:
    step = env.begin(same_device="1")
    order = _order(env)
    assert step.display.qr is None  # same-device flows show no QR
    assert step.display.autostart_url == (
        f"bankid:///?autostarttoken={order.auto_start_token}&redirect=null"
    )
    assert step.display.message["en"] == "Trying to start your BankID app."  # RFA13
    ret = urlsplit(order.body["returnUrl"])
    query = parse_qs(ret.query)
    assert ret.path.endswith(f"/callback/{NAME}") and query["flow_id"] == [step.flow_id]
    nonce = query["nonce"][0]
    assert len(nonce) >= 43  # 256 bits
    # The nonce goes only to BankID: never into anything the browser sees.
    assert nonce not in json.dumps(asdict(step))
    assert env.sim.autostart(order.auto_start_token, OK_USER) == "ok"
    env.poll(step.flow_id)
    held = env.poll(step.flow_id)
    assert isinstance(held, Poll) and held.display.status == "awaiting_return"
    assert held.display.autostart_url is None
    assert "webbläsarfönstret" in held.display.message["sv"]
    # Polling on never yields the identity without the nonce.
    for _ in range(3):
        assert isinstance(env.poll(step.flow_id), Poll)
    assert env.count("/collect") == 2  # the completed order is not collected again
    done = env.broker.advance(step.flow_id, {"nonce": nonce}, binding="browser-a")
    assert isinstance(done, Done) and done.identity.national_id is not None


def test_same_device_relay_attack_gives_nobody_a_session(env: Env) -> None:
    # The attacker begins in their browser and relays the autostart link to the victim.
    step = env.begin(binding="attacker", same_device="1")
    order = _order(env)
    assert step.display.autostart_url is not None
    assert env.sim.autostart(order.auto_start_token, OK_USER) == "ok"  # victim's app
    for _ in range(4):
        assert isinstance(env.poll(step.flow_id, binding="attacker"), Poll)
    nonce = parse_qs(urlsplit(order.body["returnUrl"]).query)["nonce"][0]
    # The app opens returnUrl in the victim's browser, which lacks the flow cookie.
    with pytest.raises(InvalidInput) as err:
        env.broker.advance(step.flow_id, {"nonce": nonce}, binding="victim")
    assert err.value.code == "flow_binding"
    # A guessed nonce from the attacker's browser fails and burns the flow.
    with pytest.raises(InvalidInput) as err:
        env.broker.advance(step.flow_id, {"nonce": "A" * 43}, binding="attacker")
    assert err.value.code == "bad_nonce"
    with pytest.raises(FlowNotFound):
        env.broker.advance(step.flow_id, {"nonce": nonce}, binding="attacker")
    assert env.sink.names().count("flow.completed") == 0


def test_nonce_on_qr_flow_is_refused_and_order_cancelled(env: Env) -> None:
    step = env.begin()
    with pytest.raises(InvalidInput) as err:
        env.broker.advance(step.flow_id, {"nonce": "x"}, binding="browser-a")
    assert err.value.code == "bad_nonce"
    assert env.sim.pending_orders() == []
    assert env.count("/cancel") == 1


def test_same_device_without_nonce_option_completes_on_poll() -> None:
    e = Env(same_device_return_nonce=False)
    try:
        step = e.begin(same_device="1")
        assert "returnUrl" not in _order(e).body
        assert e.sim.autostart(_order(e).auto_start_token, OK_USER) == "ok"
        e.poll(step.flow_id)
        assert isinstance(e.poll(step.flow_id), Done)
    finally:
        e.close()


def test_device_ip_check_and_risk() -> None:
    e = Env(require_device_ip_match=True, return_risk=True)
    try:
        e.sim.device_ip = "198.51.100.7"
        step = e.begin(same_device="1")
        assert _order(e).body["returnRisk"] is True
        e.sim.autostart(_order(e).auto_start_token, OK_USER)
        e.poll(step.flow_id)
        with pytest.raises(AccessDenied) as err:
            e.poll(step.flow_id)
        assert err.value.code == "device_ip_mismatch"
        e.sim.device_ip = None
        e.sim.risk = "high"
        step = e.begin()
        _scan_current(e, step.flow_id, OK_USER)
        e.poll(step.flow_id)
        with pytest.raises(AccessDenied) as err:
            e.poll(step.flow_id)
        assert err.value.code == "risk_high"
        e.sim.risk = "moderate"
        step = e.begin()
        _scan_current(e, step.flow_id, OK_USER)
        e.poll(step.flow_id)
        done = e.poll(step.flow_id)
        assert isinstance(done, Done) and done.identity.raw["risk"] == "moderate"
    finally:
        e.close()


# --- failures -------------------------------------------------------------------------

FAILURES = [
    ("197203154567", {}, UserCancelled, "user_cancel", "RFA6"),
    ("196507071238", {}, Expired, "expired_transaction", "RFA8"),
    ("199505307893", {}, ProviderError, "start_failed", "RFA17B"),
    ("199505307893", {"same_device": "1"}, ProviderError, "start_failed", "RFA17A"),
    ("200002296127", {}, UntrustedCertificate, "certificate_err", "RFA16"),
    ("199306151110", {}, ProviderError, "app_not_supported", "RFA22"),
    ("198104049872", {}, ProviderError, "risk_blocked", "RFA22"),
    ("196012315559", {"call_initiator": "user"}, UserCancelled, "call_declined", "RFA22"),
]


@pytest.mark.parametrize(("pn", "params", "cls", "code", "rfa"), FAILURES)
def test_failed_orders_raise_typed_errors(
    env: Env, pn: str, params: dict[str, str], cls: type[Exception], code: str, rfa: str
) -> None:
    if "call_initiator" in params:
        step = env.begin(personal_number=pn, **params)
    else:
        step = env.begin(**params)
        if params.get("same_device"):
            assert env.sim.autostart(_order(env).auto_start_token, pn) == "ok"
        else:
            _scan_current(env, step.flow_id, pn)
    with pytest.raises(AuthBrokerError) as err:
        for _ in range(5):
            env.poll(step.flow_id)
    assert type(err.value) is cls and err.value.code == code
    assert err.value.details["rfa"] == rfa
    assert set(err.value.details["message"]) == set(LANGUAGES)
    assert pn not in str(err.value)
    assert env.sim.pending_orders() == []
    assert env.count("/cancel") == 0  # the order had already ended: nothing to cancel
    with pytest.raises(FlowNotFound):
        env.broker.advance(step.flow_id, binding="browser-a")
    assert env.sink.names()[-1] == "flow.failed"


def test_nobody_scans_start_failed(env: Env) -> None:
    step = env.begin()
    env.poll(step.flow_id)
    env.clock.t += 30
    with pytest.raises(ProviderError) as err:
        env.poll(step.flow_id)
    assert err.value.code == "start_failed" and err.value.details["rfa"] == "RFA17B"
    assert env.sim.pending_orders() == []


def test_cancel_leaves_no_pending_order(env: Env) -> None:
    step = env.begin()
    assert len(env.sim.pending_orders()) == 1
    env.broker.cancel(step.flow_id, binding="browser-a")
    assert env.sim.pending_orders() == []
    assert env.count("/cancel") == 1
    with pytest.raises(FlowNotFound):
        env.broker.advance(step.flow_id, binding="browser-a")
    assert env.sink.names()[-1] == "flow.cancelled"


def test_flow_deadline_cancels_order(env: Env) -> None:
    step = env.begin(same_device="1")
    env.sim.autostart(_order(env).auto_start_token, "198512242382")
    env.poll(step.flow_id)
    env.clock.t += 180
    assert env.broker.refresh(step.flow_id, binding="browser-a").display.status == "expired"
    with pytest.raises(Expired) as err:
        env.broker.advance(step.flow_id, binding="browser-a")
    assert err.value.code == "order_timeout"
    assert env.sim.pending_orders() == []
    assert env.count("/cancel") == 1


@pytest.mark.parametrize("supersede", [True, False])
def test_already_in_progress_cancel_and_retry(env: Env, supersede: bool) -> None:
    env.sim.supersede_on_conflict = supersede
    pn = OK_USER
    first = env.begin(binding="tab-1", personal_number=pn)
    assert _order(env).body["requirement"] == {"personalNumber": pn}
    second = env.begin(binding="tab-2", personal_number=pn)
    assert env.count("/auth") == 3 and env.count("/cancel") == 1
    assert len(env.sim.pending_orders()) == 1
    # The first flow's order is gone: superseded (BankID's "cancelled") or cancelled by us.
    expected: type[Exception] = UserCancelled if supersede else Expired
    with pytest.raises(expected):
        env.poll(first.flow_id, binding="tab-1")
    _scan_current(env, second.flow_id, pn, binding="tab-2")
    env.poll(second.flow_id, binding="tab-2")
    assert isinstance(env.poll(second.flow_id, binding="tab-2"), Done)


def test_already_in_progress_for_unknown_order_is_not_retried(env: Env) -> None:
    with env.sim._lock:
        env.sim._start("auth", {"endUserIp": IP, "requirement": {"personalNumber": OK_USER}})
    env.sim.supersede_on_conflict = False
    with pytest.raises(ProviderError) as err:
        env.begin(personal_number=OK_USER)
    assert err.value.code == "already_in_progress" and err.value.details["rfa"] == "RFA4"
    assert "personnummer" in err.value.details["message"]["sv"]
    assert env.count("/auth") == 1 and env.count("/cancel") == 0


def test_scan_by_wrong_person_is_refused(env: Env) -> None:
    step = env.begin(personal_number=OK_USER)
    qr = step.display.qr
    assert qr is not None and env.sim.scan(qr, "198512242382") == "wrong_person"


def test_completion_for_another_person_is_refused(env: Env) -> None:
    step = env.begin(personal_number=OK_USER)
    _scan_current(env, step.flow_id, OK_USER)
    env.poll(step.flow_id)
    order = _order(env)
    completion = env.sim._completion(order)
    completion["user"]["personalNumber"] = "198512242382"
    body = {"orderRef": order.ref, "status": "complete", "completionData": completion}
    env.sim.inject("/collect", 200, body=json.dumps(body).encode())
    with pytest.raises(InvalidInput) as err:
        env.poll(step.flow_id)
    assert err.value.code == "person_mismatch"


# --- transport and API errors ---------------------------------------------------------


def _provider(env: Env, **overrides: Any) -> bankid_se.BankIdSe:
    config = env.broker.settings.provider(NAME).with_options(
        **{**env.running.overrides, **overrides}
    )
    return bankid_se.from_config(config, env.broker.settings)


def _broker_with(env: Env, provider: bankid_se.BankIdSe) -> Broker:
    return simulated_broker(
        env.broker.settings,
        store=MemoryStore(),
        providers={NAME: provider},
        now=env.clock,
        driver=SyncDriver(retries=0),
    )


def test_server_not_issued_by_pinned_ca_is_refused() -> None:
    a, b = Env(), Env()
    try:
        # Pin A's CA but talk to B's server: the adapter must refuse the handshake.
        provider = _provider(a, api_url=b.running.overrides["api_url"])
        broker = _broker_with(a, provider)
        with pytest.raises(UntrustedCertificate) as err:
            broker.begin(NAME, client_ip=IP, binding="x")
        assert err.value.code == "server_untrusted"
        assert b.count("/auth") == 0 and a.count("/auth") == 0
    finally:
        a.close()
        b.close()


def test_client_without_the_right_certificate_is_refused() -> None:
    a, b = Env(), Env()
    try:
        files_b = b.running.extra["files"]
        # A client certificate from another CA: the simulator drops the handshake.
        foreign = _provider(
            a,
            cert_file=files_b["cert_file"],
            key_file=files_b["key_file"],
            key_password=b.running.overrides["key_password"],
        )
        with pytest.raises(ProviderUnavailable):
            _broker_with(a, foreign).begin(NAME, client_ip=IP, binding="x")
        # No client certificate at all.
        driver = SyncDriver(retries=0)
        mtls = MtlsConfig(ca_file=a.running.overrides["ca_file"])
        with pytest.raises(ProviderUnavailable):
            driver.send(
                HttpRequest.post_json(
                    a.running.overrides["api_url"] + "/auth", {"endUserIp": IP}, mtls=mtls
                )
            )
        assert a.count("/auth") == 0
        # A certificate from the right CA, for an RP without access: 401 unauthorized.
        files_a = a.running.extra["files"]
        noaccess = _provider(
            a, cert_file=files_a["noaccess_cert"], key_file=files_a["noaccess_key"]
        )
        with pytest.raises(ProviderError) as err:
            _broker_with(a, noaccess).begin(NAME, client_ip=IP, binding="x")
        assert err.value.code == "rp_unauthorized"
        assert a.sim.orders == {}
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("status", "code", "cls", "our_code", "calls"),
    [
        (400, "invalidParameters", ProviderError, "invalid_parameters", 1),
        (401, "unauthorized", ProviderError, "rp_unauthorized", 1),
        (403, "unauthorized", ProviderError, "rp_unauthorized", 1),
        (404, "notFound", ProviderError, "not_found", 1),
        (405, "methodNotAllowed", ProviderError, "method_not_allowed", 1),
        (408, "requestTimeout", ProviderUnavailable, "request_timeout", 1),
        (415, "unsupportedMediaType", ProviderError, "unsupported_media_type", 1),
        (429, "tooManyRequests", RateLimited, "bankid_rate_limited", 1),
        (500, "internalError", ProviderUnavailable, "internal_error", 2),
        (503, "maintenance", ProviderUnavailable, "maintenance", 2),
        (502, "other", ProviderUnavailable, "server_error", 1),
        (418, "teapot", ProviderError, "unexpected_status", 1),
    ],
)
def test_start_errors_are_typed(
    env: Env, status: int, code: str, cls: type[Exception], our_code: str, calls: int
) -> None:
    for _ in range(2):
        env.sim.inject("/auth", status, code, headers={"RateLimit-Reset": "7"})
    with pytest.raises(AuthBrokerError) as err:
        env.begin()
    assert type(err.value) is cls and err.value.code == our_code
    assert env.count("/auth") == calls  # retried once only where §1.4 says "may retry"
    if cls is RateLimited:
        assert isinstance(err.value, RateLimited) and err.value.retry_after == 7.0
    assert env.sim.orders == {}


def test_maintenance_once_then_success(env: Env) -> None:
    env.sim.inject("/auth", 503, "maintenance")
    step = env.begin()
    assert step.display.qr is not None and env.count("/auth") == 2


def test_collect_outage_keeps_flow_then_recovers(env: Env) -> None:
    step = env.begin()
    _scan_current(env, step.flow_id, OK_USER)
    env.sim.inject("/collect", 503, "maintenance")
    with pytest.raises(ProviderUnavailable):
        env.poll(step.flow_id)
    assert env.count("/collect") == 1  # no retry inside a poll: the next poll is the retry
    assert isinstance(env.poll(step.flow_id), Poll)
    assert isinstance(env.poll(step.flow_id), Done)


def test_collect_of_unknown_order_is_expired(env: Env) -> None:
    step = env.begin()
    env.sim.inject("/collect", 400, "invalidParameters")
    with pytest.raises(Expired) as err:
        env.poll(step.flow_id)
    assert err.value.code == "order_gone"
    assert env.count("/cancel") == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"status": "sleeping"}',
        b'{"status": "pending", "hintCode": 5}',
        b'{"status": "pending", "orderRef": "another-order"}',
        b'{"status": "complete"}',
        b'{"status": "complete", "completionData": {"user": {"personalNumber": "1"}}}',
    ],
)
def test_malformed_collect_answers_are_invalid_input(env: Env, body: bytes) -> None:
    step = env.begin()
    env.sim.inject("/collect", 200, body=body)
    with pytest.raises(InvalidInput):
        env.poll(step.flow_id)
    # The flow is consumed and its order cancelled with it.
    assert env.sim.pending_orders() == []
    with pytest.raises(FlowNotFound):
        env.broker.advance(step.flow_id, binding="browser-a")


def test_malformed_start_answers(env: Env) -> None:
    env.sim.inject("/auth", 200, body=b"<html>")
    with pytest.raises(InvalidInput):
        env.begin()
    env.sim.inject("/auth", 200, body=b'{"orderRef": "abc-1"}')
    with pytest.raises(InvalidInput) as err:
        env.begin()
    assert err.value.code == "bad_start"
    assert env.count("/cancel") == 1  # the half-started order is cancelled


def test_end_user_ip_required(env: Env) -> None:
    for ip in (None, "", "not-an-ip", "10.0.0.300"):
        with pytest.raises(InvalidInput) as err:
            env.begin(ip=ip)
        assert err.value.code == "end_user_ip"
    env.begin(ip="2001:db8::1")
    assert env.sim.log[-1][1]["endUserIp"] == "2001:db8::1"
    assert env.count("/auth") == 1


def test_order_rate_limits() -> None:
    e = Env(order_limit_per_ip=2, order_limit_per_person=1)
    try:
        e.begin()
        e.begin()
        with pytest.raises(RateLimited) as err:
            e.begin()
        assert err.value.code == "order_rate_ip"
        e.begin(ip="192.0.2.99", personal_number="198512242382")
        with pytest.raises(RateLimited) as err:
            e.begin(ip="192.0.2.98", personal_number="198512242382")
        assert err.value.code == "order_rate_person"
        assert e.count("/auth") == 3
    finally:
        e.close()


def test_configuration_errors(env: Env) -> None:
    with pytest.raises(ConfigError) as err:
        _provider(env, ca_file="")
    assert err.value.key == f"providers.{NAME}.ca_file"
    with pytest.raises(ConfigError):
        _provider(env, api_url="http://127.0.0.1/rp/v6.0")
    with pytest.raises(ConfigError):
        _provider(env, key_password="wrong")
    with pytest.raises(ConfigError):
        _provider(env, cert_file="/nonexistent/rp.pem")
    with pytest.raises(ConfigError):
        _provider(env, order_timeout="soon")
    settings = load_config(
        environ={"AUTHBROKER_SECRET_KEYS": "k" * 40},
        environment="test",
        overrides={"providers": {NAME: {"cert_file": ""}}},
    )
    with pytest.raises(ConfigError):
        bankid_se.from_config(settings.provider(NAME), settings)
    assert settings.provider(NAME).get("api_url") == "https://appapi2.test.bankid.com/rp/v6.0"


def test_qr_secret_and_tokens_never_reach_the_browser(env: Env) -> None:
    step = env.begin()
    order = _order(env)
    shown = json.dumps(asdict(step)) + json.dumps(
        asdict(env.broker.refresh(step.flow_id, binding="browser-a"))
    )
    assert order.qr_start_secret not in shown
    assert order.auto_start_token not in shown  # QR flow: no autostart token either
    assert order.ref not in shown


# --- concurrency ----------------------------------------------------------------------


async def test_many_concurrent_orders_async() -> None:
    n = 50
    clock = Clock()
    settings = _settings()
    async with simulated_async_broker(settings, store=AsyncMemoryStore(), now=clock) as broker:
        running = broker.simulator(NAME)
        assert running is not None
        sim: BankIdSimulator = running.extra["simulator"]
        sim.clock = clock
        steps = await asyncio.gather(
            *(
                broker.begin(NAME, client_ip=f"10.0.{i // 200}.{i % 200 + 1}", binding=f"b{i}")
                for i in range(n)
            )
        )
        assert all(isinstance(s, Poll) for s in steps)
        assert len(sim.pending_orders()) == n
        users = ["199001010017", "198512242382", "197709092469", "197203154567"]
        for i, step in enumerate(steps):
            assert isinstance(step, Poll) and step.display.qr is not None
            assert sim.scan(step.display.qr, users[i % len(users)]) == "ok"
        results: dict[int, Any] = {}
        for _ in range(4):
            clock.t += 2
            open_ = [i for i in range(n) if i not in results]
            outcomes = await asyncio.gather(
                *(broker.advance(steps[i].flow_id, binding=f"b{i}") for i in open_),
                return_exceptions=True,
            )
            for i, outcome in zip(open_, outcomes, strict=True):
                if not isinstance(outcome, Poll):
                    results[i] = outcome
        assert len(results) == n
        for i, outcome in results.items():
            if users[i % len(users)] == "197203154567":
                assert isinstance(outcome, UserCancelled)
            else:
                assert isinstance(outcome, Done) and outcome.identity.national_id is not None
                assert outcome.identity.national_id.value == users[i % len(users)]
        assert sim.pending_orders() == []
