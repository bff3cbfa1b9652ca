"""Swedish BankID pieces without a broker: QR vectors, messages, escaping, parsing,
the simulator's request validation, and fuzzing of collect answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authbroker.config import load_config
from authbroker.errors import AuthBrokerError, InvalidInput
from authbroker.flow import Poll
from authbroker.http import HttpRequest, HttpResponse, MtlsConfig, SyncDriver
from authbroker.identity import Identity
from authbroker.providers import bankid_se
from authbroker.providers.bankid_se import messages as msgs
from authbroker.providers.base import AdvanceContext, BeginContext, Next
from authbroker.store.memory import MemoryStore
from authbroker.testing import RunningSimulator
from authbroker.testing.simulators import bankid_se as simmod
from runtimes import run_sync

NAME = "bankid-se"

# --- §1.9 animated QR: BankID's published example values ------------------------------

VECTOR_TOKEN = "67df3917-fa0d-44e5-b327-edcc928297f8"
VECTOR_SECRET = "d28db9a7-4cde-429e-a983-359be676944c"
VECTORS = [
    (0, "dc69358e712458a66a7525beef148ae8526b1c71610eff2c16cdffb4cdac9bf8"),
    (1, "949d559bf23403952a94d103e67743126381eda00f0b3cbddbf7c96b1adcbce2"),
    (2, "a9e5ec59cb4eee4ef4117150abc58fad7a85439a6a96ccbecc3668b41795b3f3"),
    (3, "96077d77699971790b46ee1f04ff1e44fe96b0602c9c51e4ca9c6d031c7c3bb7"),
]


@pytest.mark.parametrize(("seconds", "code"), VECTORS)
def test_qr_vectors(seconds: int, code: str) -> None:
    assert bankid_se.qr_auth_code(VECTOR_SECRET, seconds) == code
    assert bankid_se.qr_payload(VECTOR_TOKEN, VECTOR_SECRET, seconds) == (
        f"bankid.{VECTOR_TOKEN}.{seconds}.{code}"
    )


def test_qr_seconds_are_whole_and_never_negative() -> None:
    assert bankid_se.qr_seconds(100.0, 100.0) == 0
    assert bankid_se.qr_seconds(100.0, 102.999) == 2
    assert bankid_se.qr_seconds(100.0, 99.0) == 0


def test_qr_svg_renders() -> None:
    svg = bankid_se.qr_svg(bankid_se.qr_payload(VECTOR_TOKEN, VECTOR_SECRET, 0))
    assert svg.startswith("<svg") and VECTOR_SECRET not in svg


def test_autostart_url() -> None:
    assert bankid_se.autostart_url("a-1") == "bankid:///?autostarttoken=a-1&redirect=null"


# --- messages ---------------------------------------------------------------------------


@pytest.mark.parametrize("hint", msgs.PENDING_HINTS)
@pytest.mark.parametrize("autostart", [False, True])
def test_every_pending_hint_has_messages(hint: str, autostart: bool) -> None:
    rfa = msgs.hint_rfa("pending", hint, autostart=autostart)
    texts = msgs.message(rfa)
    assert set(texts) == {"sv", "en", "fi"}
    assert all(t.strip() for t in texts.values())
    assert len(set(texts.values())) == 3  # really three languages


@pytest.mark.parametrize("hint", msgs.FAILED_HINTS)
@pytest.mark.parametrize("autostart", [False, True])
def test_every_failed_hint_has_messages_and_a_typed_error(hint: str, autostart: bool) -> None:
    rfa = msgs.hint_rfa("failed", hint, autostart=autostart)
    texts = msgs.message(rfa)
    assert set(texts) == {"sv", "en", "fi"} and len(set(texts.values())) == 3
    error = bankid_se.protocol._failure(hint, autostart=autostart)
    assert isinstance(error, AuthBrokerError)
    assert error.details["message"] == texts and error.details["rfa"] == rfa


def test_specific_rfa_mapping() -> None:
    h = msgs.hint_rfa
    assert h("pending", "outstandingTransaction", autostart=True) == "RFA13"
    assert h("pending", "outstandingTransaction", autostart=False) == "RFA1"
    assert h("pending", "started", autostart=True) == "RFA15A"
    assert h("pending", "started", autostart=True, mobile=True) == "RFA15B"
    assert h("pending", "userSign", autostart=False) == "RFA9"
    assert h("pending", "userMrtd", autostart=False) == "RFA23"
    assert h("pending", "somethingNew", autostart=False) == "RFA21"
    assert h("failed", "somethingNew", autostart=False) == "RFA22"
    assert h("failed", "startFailed", autostart=True) == "RFA17A"
    assert h("failed", "startFailed", autostart=False) == "RFA17B"
    assert h("failed", "cancelled", autostart=False) == "RFA3"
    assert msgs.message("RFA9")["en"] == (
        "Enter your security code in the BankID app and select Identify or Sign."
    )
    assert msgs.message("RFA1")["sv"] == "Starta BankID-appen."


@pytest.mark.parametrize("key", sorted(msgs.RFA))
def test_every_rfa_key_is_translated(key: str) -> None:
    assert set(msgs.RFA[key]) == set(msgs.LANGUAGES)


@pytest.mark.parametrize(
    "code",
    [
        "alreadyInProgress",
        "invalidParameters",
        "unauthorized",
        "notFound",
        "methodNotAllowed",
        "requestTimeout",
        "unsupportedMediaType",
        "tooManyRequests",
        "internalError",
        "maintenance",
        "somethingElse",
    ],
)
def test_every_error_code_has_messages(code: str) -> None:
    rfa, texts = msgs.error_message(code)
    assert rfa == ("RFA4" if code == "alreadyInProgress" else "RFA5")
    assert set(texts) == set(msgs.LANGUAGES)


# --- simpleMarkdownV1 escaping (SEB-07) ---------------------------------------------------


def test_escape_examples() -> None:
    e = bankid_se.escape_simple_markdown
    assert e("# Heading *b* +i+ | c \\") == "\\# Heading \\*b\\* \\+i\\+ \\| c \\\\"
    assert e("---\n2024-01-02") == "\\---\n2024-01-02"
    assert e("a\r\nb\rc") == "a\nb\nc"
    with pytest.raises(InvalidInput):
        e("tab\there")


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x85")
    | st.sampled_from("\n#*+|-\\ "),
    max_size=80,
)


@given(_text)
def test_escaped_text_renders_literally(text: str) -> None:
    escaped = bankid_se.escape_simple_markdown(text)
    assert simmod.render_simple_markdown(escaped) == text


# --- collect parsing and fuzzing ------------------------------------------------------------


def _completion(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user": {
            "personalNumber": "199001010017",
            "name": "Erik Andersson",
            "givenName": "Erik",
            "surname": "Andersson",
        },
        "device": {"ipAddress": "192.0.2.1", "uhi": "abc"},
        "bankIdIssueDate": "2024-01-15",
        "signature": "PHg+PC94Pg==",
        "ocspResponse": "MAo=",
    }
    data.update(over)
    return data


def test_parse_collect_accepts_valid_answers() -> None:
    assert bankid_se.parse_collect({"status": "pending", "hintCode": "userSign"}, "r") == (
        "pending",
        "userSign",
        {},
    )
    status, _, data = bankid_se.parse_collect(
        {"orderRef": "r", "status": "complete", "completionData": _completion()}, "r"
    )
    assert status == "complete" and data["user"]["givenName"] == "Erik"
    # A new, unknown hint code is tolerated; junk hint codes are neutralized.
    assert bankid_se.parse_collect({"status": "pending", "hintCode": "newHint"}, "r")[1] == (
        "newHint"
    )
    assert bankid_se.parse_collect({"status": "failed", "hintCode": "<b>x"}, "r")[1] == "unknown"


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"status": "pending", "orderRef": "other"},
        {"status": "pending", "orderRef": 5},
        {"status": "complete", "completionData": _completion(signature="not base64!")},
        {"status": "complete", "completionData": _completion(ocspResponse=None)},
        {"status": "complete", "completionData": _completion(user={"personalNumber": "x"})},
        {"status": "complete", "completionData": _completion(bankIdIssueDate="yesterday")},
        {"status": "complete", "completionData": _completion(stepUp={"mrtd": "yes"})},
        {"status": "complete", "completionData": _completion(risk="extreme")},
        {"status": "complete", "completionData": _completion(device=[])},
    ],
)
def test_parse_collect_rejects(answer: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        bankid_se.parse_collect(answer, "r")


@pytest.fixture(scope="module")
def running() -> Iterator[RunningSimulator]:
    settings = load_config(environ={}, overrides={"providers": {NAME: {}}})
    sim = simmod.start(settings.provider(NAME), settings)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def adapter(running: RunningSimulator) -> bankid_se.BankIdSe:
    settings = load_config(environ={}, overrides={"providers": {NAME: {}}})
    config = settings.provider(NAME).with_options(**running.overrides)
    return bankid_se.from_config(config, settings)


class _FakeDriver:
    """Answers /collect with a fixed response and /cancel with {}; counts calls."""

    def __init__(self, collect: HttpResponse) -> None:
        self.collect = collect
        self.calls: list[str] = []

    def send(self, req: HttpRequest) -> HttpResponse:
        self.calls.append(req.url.rsplit("/", 1)[-1])
        if req.url.endswith("/collect"):
            return self.collect
        if req.url.endswith("/auth"):
            body = {
                "orderRef": "11111111-2222-3333-4444-555555555555",
                "autoStartToken": "a-1",
                "qrStartToken": "q-1",
                "qrStartSecret": "s-1",
            }
            return HttpResponse(200, {}, json.dumps(body).encode())
        return HttpResponse(200, {}, b"{}")


def _begin(adapter: bankid_se.BankIdSe, store: MemoryStore) -> dict[str, Any]:
    driver = _FakeDriver(HttpResponse(200, {}, b"{}"))
    ctx = BeginContext(
        flow_id="f" * 43, callback_url="https://rp.example/cb", now=1000.0, client_ip="192.0.2.1"
    )
    nxt = run_sync(adapter.begin(ctx), driver, store)  # type: ignore[arg-type]
    assert isinstance(nxt, Next) and isinstance(nxt.step, Poll)
    return nxt.data


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
_collect_like = st.fixed_dictionaries(
    {},
    optional={
        "orderRef": st.just("11111111-2222-3333-4444-555555555555") | st.text(max_size=5),
        "status": st.sampled_from(["pending", "failed", "complete", "x"]) | _json,
        "hintCode": st.sampled_from([*msgs.PENDING_HINTS, *msgs.FAILED_HINTS]) | _json,
        "completionData": st.just(_completion()) | _json,
    },
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(_collect_like.map(json.dumps), _json.map(json.dumps), st.binary(max_size=40)),
    status=st.sampled_from([200, 200, 200, 400, 401, 404, 408, 429, 500, 503]),
)
def test_arbitrary_collect_answers_only_raise_authbroker_errors(
    adapter: bankid_se.BankIdSe, body: str | bytes, status: int
) -> None:
    store = MemoryStore()
    data = _begin(adapter, store)
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    driver = _FakeDriver(HttpResponse(status, {"ratelimit-reset": "x"}, raw))
    ctx = AdvanceContext(flow_id="f" * 43, now=1002.0)
    try:
        result = run_sync(adapter.advance(ctx, data, {}), driver, store)  # type: ignore[arg-type]
    except AuthBrokerError:
        return
    assert isinstance(result, Next | Identity)
    if isinstance(result, Next):
        json.dumps(result.data)  # the kept state stays JSON-serializable


def test_refresh_expires_and_hides_qr(adapter: bankid_se.BankIdSe) -> None:
    data = _begin(adapter, MemoryStore())
    assert adapter.refresh(data, 1000.0).qr == bankid_se.qr_payload("q-1", "s-1", 0)
    assert adapter.refresh(data, 1007.9).qr == bankid_se.qr_payload("q-1", "s-1", 7)
    assert adapter.refresh({**data, "hint": "userSign"}, 1010.0).qr is None
    late = adapter.refresh(data, 1000.0 + adapter.order_timeout)
    assert late.status == "expired" and late.qr is None
    assert "s-1" not in repr(adapter.refresh(data, 1001.0))


def test_begin_sends_no_secret_to_step_and_keeps_state_json(adapter: bankid_se.BankIdSe) -> None:
    data = _begin(adapter, MemoryStore())
    json.dumps(data)
    assert data["qr_secret"] == "s-1" and data["interval"] == 2.0


# --- the simulator as a strict peer ---------------------------------------------------------


def _call(
    running: RunningSimulator,
    path: str,
    body: Any,
    *,
    method: str = "POST",
    content_type: str = "application/json",
) -> HttpResponse:
    o = running.overrides
    mtls = MtlsConfig(o["cert_file"], o["key_file"], o["key_password"], o["ca_file"])
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = HttpRequest(method, o["api_url"] + path, {"Content-Type": content_type}, raw, mtls=mtls)
    driver = SyncDriver(retries=0)
    try:
        return driver.send(req)
    finally:
        driver.close()


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/auth", {}, 400, "invalidParameters"),
        ("/auth", {"endUserIp": "1.2.3"}, 400, "invalidParameters"),
        (
            "/auth",
            {"endUserIp": "192.0.2.1", "personalNumber": "199001010017"},
            400,
            "invalidParameters",
        ),
        (
            "/auth",
            {"endUserIp": "192.0.2.1", "requirement": {"personalNumber": "199001010018"}},
            400,
            "invalidParameters",
        ),
        (
            "/auth",
            {"endUserIp": "192.0.2.1", "requirement": {"pinCode": "yes"}},
            400,
            "invalidParameters",
        ),
        (
            "/auth",
            {"endUserIp": "192.0.2.1", "requirement": {"cardReader": "class3"}},
            400,
            "invalidParameters",
        ),
        ("/auth", {"endUserIp": "192.0.2.1", "userVisibleData": "%%%"}, 400, "invalidParameters"),
        (
            "/auth",
            {"endUserIp": "192.0.2.1", "userVisibleData": "eA==", "userVisibleDataFormat": "html"},
            400,
            "invalidParameters",
        ),
        (
            "/auth",
            {"endUserIp": "192.0.2.1", "returnUrl": "javascript:x"},
            400,
            "invalidParameters",
        ),
        ("/auth", [1, 2], 400, "invalidParameters"),
        ("/auth", b"{", 400, "invalidParameters"),
        ("/sign", {"endUserIp": "192.0.2.1"}, 400, "invalidParameters"),
        (
            "/phone/auth",
            {"personalNumber": "199001010017", "callInitiator": "rp"},
            400,
            "invalidParameters",
        ),
        ("/phone/auth", {"callInitiator": "user"}, 400, "invalidParameters"),
        (
            "/phone/auth",
            {"personalNumber": "199001010017", "callInitiator": "user", "endUserIp": "192.0.2.1"},
            400,
            "invalidParameters",
        ),
        ("/collect", {"orderRef": "nope"}, 400, "invalidParameters"),
        ("/collect", {}, 400, "invalidParameters"),
        ("/cancel", {"orderRef": "nope"}, 400, "invalidParameters"),
        ("/payment", {}, 404, "notFound"),
    ],
)
def test_simulator_validates_requests(
    running: RunningSimulator, path: str, body: Any, status: int, code: str
) -> None:
    before = len(running.extra["simulator"].orders)
    resp = _call(running, path, body)
    assert resp.status == status
    assert resp.json_object()["errorCode"] == code
    assert len(running.extra["simulator"].orders) == before


def test_simulator_wants_post_json(running: RunningSimulator) -> None:
    resp = _call(running, "/auth", {"endUserIp": "192.0.2.1"}, method="PUT")
    assert resp.status == 405 and resp.json_object()["errorCode"] == "methodNotAllowed"
    resp = _call(running, "/auth", {"endUserIp": "192.0.2.1"}, content_type="text/plain")
    assert resp.status == 415 and resp.json_object()["errorCode"] == "unsupportedMediaType"


def test_simulator_order_lifecycle_and_scan_endpoint(running: RunningSimulator) -> None:
    sim: simmod.BankIdSimulator = running.extra["simulator"]
    start = _call(running, "/auth", {"endUserIp": "192.0.2.7"}).json_object()
    assert set(start) == {"orderRef", "autoStartToken", "qrStartToken", "qrStartSecret"}
    order = sim.orders[start["orderRef"]]
    qr = bankid_se.qr_payload(start["qrStartToken"], start["qrStartSecret"], 0)
    forged = bankid_se.qr_payload(start["qrStartToken"], "not-the-secret", 0)
    assert sim.verify_qr(forged) == "bad_code"
    assert sim.verify_qr("bankid.x.0") == "malformed"
    assert sim.verify_qr(bankid_se.qr_payload("unknown", "s", 0)) == "unknown_order"
    assert sim.scan(qr, "190001010000") == "unknown_user"
    scanned = _call(running, "/_sim/scan", {"qr": qr, "personalNumber": "199001010017"})
    assert scanned.json_object() == {"result": "ok"}
    assert sim.verify_qr(qr) == "not_pending"
    ref = {"orderRef": start["orderRef"]}
    assert _call(running, "/collect", ref).json_object()["hintCode"] == "userSign"
    done = _call(running, "/collect", ref).json_object()
    assert done["status"] == "complete" and sim.verify_signature(
        done["completionData"]["signature"]
    )
    # A finished order is collected once (§1.4) and cannot be cancelled.
    assert _call(running, "/collect", ref).status == 400
    assert _call(running, "/cancel", ref).status == 400
    assert order.status == "complete"
