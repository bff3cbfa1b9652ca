"""SMS gateway senders against local gateways that behave like Twilio and GatewayAPI.

The simulators check credentials, paths and fields the way the real APIs do and can
be told to answer 401/400/429/5xx or to stall. Waits between retries go through an
injected ``sleep`` so no test sleeps for real (except the one timeout test, which
waits for its own short client timeout).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from authbroker.errors import ConfigError, ProviderError, ProviderUnavailable, RateLimited
from authbroker.http import AsyncDriver, HttpRequest, HttpResponse, SyncDriver
from authbroker.kernel import AsyncRuntime, Sleep, SyncRuntime
from authbroker.sms import (
    GatewayApiSender,
    OutboxSender,
    RetryPolicy,
    SmsMessage,
    SmsReceipt,
    SmsSender,
    TwilioSender,
    mask_phone,
    sender_from_config,
)
from authbroker.sms.base import parse_retry_after
from authbroker.testing.simulators.server import LoopbackServer, SimRequest, SimResponse
from authbroker.testing.simulators.sms_gateways import GatewayApiSimulator, TwilioSimulator

TO = "+358401234567"
BODY = "Your one-time code for app.example.fi: 123456.\n\n@app.example.fi #123456"
MESSAGE = SmsMessage(to=TO, body=BODY, reference="ref12345")
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_wait=5.0)


class Sleeps:
    """Records waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


def deliver_sync(
    sender: SmsSender, message: SmsMessage, driver: SyncDriver | None, *, sleep: Sleeps
) -> SmsReceipt:
    """Run a sender's routine in the blocking runtime, recording its waits."""
    return SyncRuntime(driver, sleep=sleep).run(sender.send(message))


async def deliver_async(
    sender: SmsSender, message: SmsMessage, driver: AsyncDriver, *, sleep: Sleeps | None = None
) -> SmsReceipt:
    """Run a sender's routine in the asyncio runtime (real waits unless ``sleep``)."""
    runtime = AsyncRuntime(driver, sleep=sleep.async_sleep if sleep else None)
    return await runtime.run(sender.send(message))


# One server per gateway for the whole module (stopping a loopback server takes up to
# half a second); each test starts from a reset simulator.
@pytest.fixture(scope="module")
def _twilio_server() -> Iterator[TwilioSimulator]:
    sim = TwilioSimulator()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def _gwapi_server() -> Iterator[GatewayApiSimulator]:
    sim = GatewayApiSimulator()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def twilio(_twilio_server: TwilioSimulator) -> TwilioSimulator:
    _twilio_server.reset()
    return _twilio_server


@pytest.fixture
def gwapi(_gwapi_server: GatewayApiSimulator) -> GatewayApiSimulator:
    _gwapi_server.reset()
    return _gwapi_server


class Gateway:
    """One simulated gateway and a factory for a sender pointed at it."""

    def __init__(self, kind: str, sim: TwilioSimulator | GatewayApiSimulator) -> None:
        self.kind = kind
        self.sim = sim

    def sender(self, *, bad_credentials: bool = False) -> SmsSender:
        if isinstance(self.sim, TwilioSimulator):
            return twilio_sender(self.sim, **({"auth_token": "wrong"} if bad_credentials else {}))
        return gw_sender(self.sim, **({"token": "w" * 32} if bad_credentials else {}))


@pytest.fixture(params=["twilio", "gatewayapi"])
def gateway(request: pytest.FixtureRequest) -> Gateway:
    kind = str(request.param)
    sim = request.getfixturevalue("twilio" if kind == "twilio" else "gwapi")
    return Gateway(kind, sim)


@pytest.fixture
def driver() -> Iterator[SyncDriver]:
    d = SyncDriver()
    yield d
    d.close()


def twilio_sender(sim: TwilioSimulator, **kw: object) -> TwilioSender:
    args: dict[str, object] = {
        "account_sid": sim.account_sid,
        "auth_token": sim.auth_token,
        "from_number": "+358501112223",
        "base_url": sim.url,
        "retry": FAST,
        "timeout": 2.0,
    }
    args.update(kw)
    return TwilioSender(**args)  # type: ignore[arg-type]


def gw_sender(sim: GatewayApiSimulator, **kw: object) -> GatewayApiSender:
    args: dict[str, object] = {
        "token": sim.token,
        "sender": "Authbroker",
        "base_url": sim.url,
        "retry": FAST,
        "timeout": 2.0,
    }
    args.update(kw)
    return GatewayApiSender(**args)  # type: ignore[arg-type]


# --- request shapes -------------------------------------------------------------------


def test_twilio_request_is_the_messages_api_shape() -> None:
    sender = TwilioSender(
        account_sid="AC" + "a" * 32, auth_token="tok-secret-123", from_number="+358501112223"
    )
    req = sender.build_request(MESSAGE)
    assert req.method == "POST"
    assert req.url == f"https://api.twilio.com/2010-04-01/Accounts/AC{'a' * 32}/Messages.json"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    user, _, password = base64.b64decode(req.headers["Authorization"][6:]).decode().partition(":")
    assert (user, password) == ("AC" + "a" * 32, "tok-secret-123")
    form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
    assert form == {"To": TO, "Body": BODY, "From": "+358501112223"}
    # Neither the token nor the body shows in a repr.
    assert "tok-secret-123" not in repr(req) + repr(sender)
    assert "123456" not in repr(req) + repr(MESSAGE)


def test_twilio_messaging_service_and_api_key() -> None:
    sender = TwilioSender(
        account_sid="AC" + "b" * 32,
        auth_token="secret",
        api_key_sid="SK" + "c" * 32,
        messaging_service_sid="MG" + "d" * 32,
    )
    req = sender.build_request(MESSAGE)
    form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
    assert form["MessagingServiceSid"] == "MG" + "d" * 32
    assert "From" not in form
    user = base64.b64decode(req.headers["Authorization"][6:]).decode().split(":")[0]
    assert user == "SK" + "c" * 32


def test_gatewayapi_request_is_json_with_token_header() -> None:
    sender = GatewayApiSender(token="t" * 40, sender="Authbroker")
    req = sender.build_request(MESSAGE)
    assert req.url == "https://gatewayapi.com/rest/mtsms"
    assert req.headers["Authorization"] == "Token " + "t" * 40
    assert "token=" not in req.url  # never in the URL (access logs)
    body = json.loads(req.body)
    assert body == {
        "sender": "Authbroker",
        "message": BODY,
        "recipients": [{"msisdn": 358401234567}],
        "userref": "ref12345",
    }
    assert "t" * 40 not in repr(sender)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"account_sid": "bad", "auth_token": "x", "from_number": "+3584"}, "sms.account_sid"),
        ({"account_sid": "AC" + "a" * 32, "auth_token": "", "from_number": "+1"}, "sms.auth_token"),
        ({"account_sid": "AC" + "a" * 32, "auth_token": "x"}, "sms.from"),
        (
            {
                "account_sid": "AC" + "a" * 32,
                "auth_token": "x",
                "from_number": "+1",
                "base_url": "http://evil.example",
            },
            "sms.base_url",
        ),
        (
            {"account_sid": "AC" + "a" * 32, "auth_token": "x", "from_number": "+1", "timeout": 0},
            "sms.twilio.timeout",
        ),
    ],
)
def test_twilio_config_errors(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        TwilioSender(**kwargs)  # type: ignore[arg-type]
    assert err.value.key == key


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"token": "short", "sender": "X"}, "sms.token"),
        ({"token": "t" * 20, "sender": "Far too long sender"}, "sms.sender"),
        ({"token": "t" * 20, "sender": "X", "base_url": "ftp://x"}, "sms.base_url"),
    ],
)
def test_gatewayapi_config_errors(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        GatewayApiSender(**kwargs)  # type: ignore[arg-type]
    assert err.value.key == key


def test_retry_policy_bounds() -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigError):
        RetryPolicy(base_delay=5, max_delay=1)
    policy = RetryPolicy(base_delay=1.0, max_delay=2.0)
    assert all(0 <= policy.backoff(n) <= 2.0 for n in range(1, 10))


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


# --- against the simulated gateways -----------------------------------------------


def test_send_success(gateway: Gateway, driver: SyncDriver) -> None:
    sim, kind, sender = gateway.sim, gateway.kind, gateway.sender()
    receipt = deliver_sync(sender, MESSAGE, driver, sleep=Sleeps())
    assert receipt.provider == kind
    assert receipt.attempts == 1
    assert len(sim.accepted) == 1
    accepted = sim.accepted[0]
    assert (accepted.to, accepted.body) == (TO, BODY)
    assert accepted.message_id == receipt.message_id
    if kind == "twilio":
        assert receipt.message_id.startswith("SM")
    else:
        assert accepted.reference == "ref12345"


def test_wrong_credentials_are_final_and_not_retried(gateway: Gateway, driver: SyncDriver) -> None:
    sim, kind, sender = gateway.sim, gateway.kind, gateway.sender(bad_credentials=True)
    sleeps = Sleeps()
    with pytest.raises(ProviderError) as err:
        deliver_sync(sender, MESSAGE, driver, sleep=sleeps)
    assert err.value.code == "sms_auth"
    assert err.value.details["status"] == 401
    assert sim.request_count == 1
    assert sim.accepted == []
    assert sleeps.waits == []
    if kind == "twilio":
        assert err.value.details["gateway_error"] == "20003"


def test_twilio_invalid_number_is_rejected(twilio: TwilioSimulator, driver: SyncDriver) -> None:
    with pytest.raises(ProviderError) as err:
        deliver_sync(twilio_sender(twilio), SmsMessage("+1", "x"), driver, sleep=Sleeps())
    assert err.value.code == "sms_rejected"
    assert err.value.details["gateway_error"] == "21211"
    assert twilio.request_count == 1


def test_429_with_retry_after_is_waited_out(gateway: Gateway, driver: SyncDriver) -> None:
    sim, sender = gateway.sim, gateway.sender()
    sim.fail_next(429, retry_after="2")
    sleeps = Sleeps()
    receipt = deliver_sync(sender, MESSAGE, driver, sleep=sleeps)
    assert receipt.attempts == 2
    assert sleeps.waits == [2.0]
    assert sim.request_count == 2
    assert len(sim.accepted) == 1


def test_429_until_the_attempts_run_out(twilio: TwilioSimulator, driver: SyncDriver) -> None:
    twilio.fail_next(429, times=5)
    sleeps = Sleeps()
    with pytest.raises(RateLimited) as err:
        deliver_sync(twilio_sender(twilio), MESSAGE, driver, sleep=sleeps)
    assert err.value.code == "sms_rate_limited"
    assert twilio.request_count == 3  # max_attempts, bounded
    assert len(sleeps.waits) == 2
    assert twilio.accepted == []


def test_429_with_a_long_retry_after_fails_at_once(
    gwapi: GatewayApiSimulator, driver: SyncDriver
) -> None:
    gwapi.fail_next(429, retry_after="3600")
    sleeps = Sleeps()
    with pytest.raises(RateLimited) as err:
        deliver_sync(gw_sender(gwapi), MESSAGE, driver, sleep=sleeps)
    assert err.value.retry_after == 3600.0
    assert gwapi.request_count == 1
    assert sleeps.waits == []


def test_503_is_retried(gateway: Gateway, driver: SyncDriver) -> None:
    sim, sender = gateway.sim, gateway.sender()
    sim.fail_next(503, times=2)
    receipt = deliver_sync(sender, MESSAGE, driver, sleep=Sleeps())
    assert receipt.attempts == 3
    assert sim.request_count == 3
    assert len(sim.accepted) == 1


def test_503_until_the_attempts_run_out(gwapi: GatewayApiSimulator, driver: SyncDriver) -> None:
    gwapi.fail_next(503, times=10)
    with pytest.raises(ProviderUnavailable) as err:
        deliver_sync(gw_sender(gwapi), MESSAGE, driver, sleep=Sleeps())
    assert err.value.code == "sms_unavailable"
    assert gwapi.request_count == 3


@pytest.mark.parametrize("status", [500, 502, 504])
def test_ambiguous_5xx_is_not_retried(gateway: Gateway, status: int, driver: SyncDriver) -> None:
    """The message may already be on its way: a retry could send (and bill) it twice."""
    sim, sender = gateway.sim, gateway.sender()
    sim.fail_next(status)
    sleeps = Sleeps()
    with pytest.raises(ProviderUnavailable) as err:
        deliver_sync(sender, MESSAGE, driver, sleep=sleeps)
    assert err.value.code == "sms_ambiguous"
    assert sim.request_count == 1
    assert sleeps.waits == []


def test_ambiguous_5xx_retried_when_the_operator_allows(
    twilio: TwilioSimulator, driver: SyncDriver
) -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=0, max_delay=0, retry_ambiguous=True)
    twilio.fail_next(500)
    receipt = deliver_sync(twilio_sender(twilio, retry=policy), MESSAGE, driver, sleep=Sleeps())
    assert receipt.attempts == 2
    assert twilio.request_count == 2


def test_timeout_is_ambiguous_and_not_retried(twilio: TwilioSimulator, driver: SyncDriver) -> None:
    twilio.stall_next(0.8)
    sender = twilio_sender(twilio, timeout=0.3)
    with pytest.raises(ProviderUnavailable) as err:
        deliver_sync(sender, MESSAGE, driver, sleep=Sleeps())
    assert err.value.code == "sms_ambiguous"
    assert err.value.details["cause"] == "http_timeout"
    assert twilio.request_count == 1


def test_connection_refused_is_retried_then_typed(driver: SyncDriver) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = GatewayApiSender(
        token="t" * 32, sender="X", base_url=f"http://127.0.0.1:{port}", retry=FAST
    )
    sleeps = Sleeps()
    with pytest.raises(ProviderUnavailable) as err:
        deliver_sync(sender, MESSAGE, driver, sleep=sleeps)
    assert err.value.code == "sms_unavailable"
    assert err.value.details == {"attempts": 3, "cause": "http_connect"}
    assert len(sleeps.waits) == 2


def test_unreadable_success_is_a_final_provider_error(driver: SyncDriver) -> None:
    calls: list[str] = []

    def handler(req: SimRequest) -> SimResponse:
        calls.append(req.path)
        return SimResponse.json({"ids": ["not-an-int"]})

    with LoopbackServer(handler) as srv:
        sender = GatewayApiSender(token="t" * 32, sender="X", base_url=srv.url, retry=FAST)
        with pytest.raises(ProviderError) as err:
            deliver_sync(sender, MESSAGE, driver, sleep=Sleeps())
    assert err.value.code == "sms_bad_response"
    assert calls == ["/rest/mtsms"]


def test_error_detail_is_sanitized() -> None:
    sender = GatewayApiSender(token="t" * 32, sender="X")
    resp = HttpResponse(400, {}, json.dumps({"code": "0x04\r\n<script>" + "a" * 50}).encode())
    detail = sender.error_detail(resp)
    assert "\n" not in detail and "<" not in detail and len(detail) <= 32
    assert sender.error_detail(HttpResponse(500, {}, b"not json")) == ""


async def test_async_delivery_with_retry(twilio: TwilioSimulator) -> None:
    twilio.fail_next(429, retry_after="1")
    sleeps = Sleeps()
    driver = AsyncDriver()
    try:
        receipt = await deliver_async(twilio_sender(twilio), MESSAGE, driver, sleep=sleeps)
    finally:
        await driver.aclose()
    assert receipt.attempts == 2
    assert sleeps.waits == [1.0]
    assert len(twilio.accepted) == 1


async def test_async_gatewayapi_ambiguous_failure(gwapi: GatewayApiSimulator) -> None:
    gwapi.fail_next(500)
    driver = AsyncDriver()
    try:
        with pytest.raises(ProviderUnavailable):
            await deliver_async(gw_sender(gwapi), MESSAGE, driver)
    finally:
        await driver.aclose()
    assert gwapi.request_count == 1


def test_no_secret_or_body_in_logs(
    twilio: TwilioSimulator, driver: SyncDriver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    twilio.fail_next(429, retry_after="0")
    deliver_sync(twilio_sender(twilio), MESSAGE, driver, sleep=Sleeps())
    with pytest.raises(ProviderError) as err:
        deliver_sync(twilio_sender(twilio, auth_token="bad"), MESSAGE, driver, sleep=Sleeps())
    text = caplog.text + str(err.value) + repr(err.value) + json.dumps(dict(err.value.details))
    for secret in (twilio.auth_token, "123456", TO, TO[1:]):
        assert secret not in text


# --- senders are kernel routines ---------------------------------------------------


def test_sender_routine_yields_requests_and_kernel_sleeps() -> None:
    """The retry wait is the kernel's Sleep (any runtime carries it out); a refused
    connection is thrown back in and retried, the send never sleeps on its own."""
    sender = GatewayApiSender(token="t" * 32, sender="X", retry=FAST)
    routine = sender.send(MESSAGE)
    first = next(routine)
    assert isinstance(first, HttpRequest) and first.url.endswith("/rest/mtsms")
    wait = routine.throw(ProviderUnavailable("refused", code="http_connect"))
    assert isinstance(wait, Sleep) and 0 <= wait.seconds <= FAST.max_delay
    again = routine.send(None)
    assert isinstance(again, HttpRequest) and again == first
    with pytest.raises(StopIteration) as done:
        routine.send(HttpResponse(200, {}, json.dumps({"ids": [7]}).encode()))
    assert done.value.value.message_id == "7" and done.value.value.attempts == 2


def test_outbox_without_echo_is_a_routine_without_effects() -> None:
    outbox = OutboxSender()
    routine = outbox.send(MESSAGE)
    with pytest.raises(StopIteration) as done:
        next(routine)
    assert done.value.value.provider == "outbox" and len(outbox) == 1


# --- outbox and configuration ------------------------------------------------------


def test_outbox_keeps_messages_and_parses_codes() -> None:
    echoed: list[str] = []
    outbox = OutboxSender(capacity=2, echo=lambda m: echoed.append(m.message_id))
    for i in range(3):
        deliver_sync(outbox, SmsMessage(TO, f"text\n\n@h.example #00{i}123"), None, sleep=Sleeps())
    assert len(outbox) == 2  # capacity bound
    assert [m.code() for m in outbox.messages] == ["001123", "002123"]
    assert outbox.last(TO) is not None and outbox.last(TO).host() == "h.example"  # type: ignore[union-attr]
    assert outbox.to("+358000000000") == []
    assert echoed == ["outbox-1", "outbox-2", "outbox-3"]
    assert "002123" not in repr(outbox.messages) and TO not in repr(outbox.messages)
    assert outbox.messages[0].code() is not None
    assert OutboxSender().last() is None
    outbox.clear()
    assert len(outbox) == 0


def test_mask_phone() -> None:
    assert mask_phone("+358401234567") == "+358******67"
    assert mask_phone("+46701234567") == "+46******67"
    assert mask_phone("+37251234567") == "+372******67"
    assert mask_phone("garbage") == "+********"
    assert mask_phone("+123") == "+********"


def test_sender_from_config() -> None:
    assert isinstance(sender_from_config({}, environment="simulator"), OutboxSender)
    with pytest.raises(ConfigError):
        sender_from_config({}, environment="production")
    env = {"TW_TOKEN": "secret-token"}
    sender = sender_from_config(
        {
            "backend": "twilio",
            "account_sid": "AC" + "1" * 32,
            "auth_token_env": "TW_TOKEN",
            "from_number": "+358501112223",
            "retry": {"max_attempts": 2},
        },
        environment="production",
        environ=env,
    )
    assert isinstance(sender, TwilioSender) and sender.retry.max_attempts == 2
    gw = sender_from_config(
        {"backend": "gatewayapi", "token": "t" * 32, "sender": "Acme"},
        environment="simulator",
        environ={},
    )
    assert isinstance(gw, GatewayApiSender)
    with pytest.raises(ConfigError) as err:
        sender_from_config(
            {"backend": "gatewayapi", "token": "t" * 32, "sender": "Acme"},
            environment="production",
            environ={},
        )
    assert err.value.key == "sms.token"
    with pytest.raises(ConfigError) as err:
        sender_from_config(
            {"backend": "twilio", "auth_token_env": "MISSING"}, environment="test", environ={}
        )
    assert err.value.key == "sms.auth_token_env"
    with pytest.raises(ConfigError):
        sender_from_config({"backend": "carrier-pigeon"}, environment="simulator")
    with pytest.raises(ConfigError):
        sender_from_config({"retry": {"bogus": 1}}, environment="simulator")
    with pytest.raises(TypeError):
        sender_from_config({})  # type: ignore[call-arg]  # the environment is required
