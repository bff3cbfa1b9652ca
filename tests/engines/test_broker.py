"""The broker's own rules, independent of any real protocol.

A tiny "echo" protocol stands in for a provider here: it issues a Redirect whose
callback must return a per-flow secret, so the broker's binding, single-use,
locking, expiry and audit behaviour can be tested in isolation. Real protocols are
tested against their simulators in their own test modules.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from authbroker import AsyncBroker, Broker, Done, Loa, Poll, Redirect
from authbroker.audit import AuditLog, MemorySink
from authbroker.config import ProviderConfig, Settings
from authbroker.engines.flows import check_return_to
from authbroker.errors import (
    AlreadyUsed,
    ConfigError,
    Expired,
    FlowNotFound,
    InvalidInput,
    ProviderUnavailable,
    UserCancelled,
)
from authbroker.flow import Display, Gen, store_get
from authbroker.identity import Identity, NationalId
from authbroker.providers.base import AdvanceContext, BeginContext, Next, ProviderInfo
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from conftest import run_together

VALID_HETU = "131052-308T"


class EchoProvider:
    """Completes when the callback returns the secret handed out in ``begin``."""

    flow_ttl = 600.0

    def __init__(self) -> None:
        self.info = ProviderInfo("echo", "echo", {"en": "Echo"}, Loa.HIGH, "simulator")
        self.advances = 0

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        secret = secrets.token_urlsafe(16)
        yield from store_get("noop")  # exercises effect plumbing
        return Next(Redirect(f"https://idp.example/auth?s={secret}"), {"secret": secret})

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Next | Identity]:
        self.advances += 1
        yield from store_get("noop")
        if params.get("error") == "cancel":
            raise UserCancelled("user cancelled")
        if params.get("error") == "down":
            raise ProviderUnavailable("idp down")
        if not hmac.compare_digest(params.get("secret", ""), data["secret"]):
            raise InvalidInput("bad secret", code="bad_secret")
        return Identity(
            provider="echo",
            method="test",
            subject="s-1",
            national_id=NationalId.parse(VALID_HETU, "FI"),
            loa=Loa.HIGH,
            authenticated_at=datetime.now(UTC),
        )


class PollProvider:
    flow_ttl = 120.0

    def __init__(self) -> None:
        self.info = ProviderInfo("poll", "poll", {"en": "Poll"}, Loa.HIGH, "simulator")

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        yield from store_get("noop")
        return Next(Poll(2.0, Display(status="pending")), {"ticks": 0, "interval": 2.0})

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Next | Identity]:
        yield from store_get("noop")
        if params.get("fail") == "down":
            raise ProviderUnavailable("down")
        ticks = int(data["ticks"]) + 1
        if ticks < 3:
            return Next(Poll(2.0, Display(status="pending")), {"ticks": ticks, "interval": 2.0})
        return Identity("poll", "test", "s", None, Loa.HIGH, datetime.now(UTC))

    def refresh(self, data: Mapping[str, Any], now: float) -> Display:
        return Display(status="pending", qr=f"qr-{data['ticks']}")


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def make_broker(
    store: MemoryStore | None = None, clock: Clock | None = None
) -> tuple[Broker, MemorySink, MemoryStore]:
    sink = MemorySink()
    store = store or MemoryStore()
    broker = Broker(
        Settings(secret_keys=("x" * 40,)),
        store=store,
        providers={"echo": EchoProvider(), "poll": PollProvider()},
        audit=AuditLog([sink]),
        now=clock or Clock(),
    )
    return broker, sink, store


def _secret(step: Redirect) -> str:
    return step.url.split("s=")[1]


def test_redirect_flow_completes_once() -> None:
    broker, sink, _ = make_broker()
    step = broker.begin("echo", return_to="/invoices/1", binding="browser-a")
    assert isinstance(step, Redirect) and len(step.flow_id) >= 40
    done = broker.advance(step.flow_id, {"secret": _secret(step)}, binding="browser-a")
    assert isinstance(done, Done)
    assert done.return_to == "/invoices/1"
    assert done.identity.national_id is not None
    assert done.identity.national_id.value == VALID_HETU
    with pytest.raises(FlowNotFound):
        broker.advance(step.flow_id, {"secret": _secret(step)}, binding="browser-a")
    assert sink.names() == ["flow.begun", "flow.completed"]
    assert VALID_HETU not in repr(sink.events)


def test_flow_bound_to_browser_and_not_consumed_by_other_browser() -> None:
    broker, _, _ = make_broker()
    step = broker.begin("echo", binding="browser-a")
    assert isinstance(step, Redirect)
    with pytest.raises(InvalidInput) as err:
        broker.advance(step.flow_id, {"secret": _secret(step)}, binding="browser-b")
    assert err.value.code == "flow_binding"
    with pytest.raises(InvalidInput):
        broker.advance(step.flow_id, {"secret": _secret(step)})
    # The rightful browser can still finish.
    assert isinstance(
        broker.advance(step.flow_id, {"secret": _secret(step)}, binding="browser-a"), Done
    )


def test_bad_callback_consumes_flow_and_is_audited() -> None:
    broker, sink, _ = make_broker()
    step = broker.begin("echo", insecure_unbound=True)
    with pytest.raises(InvalidInput):
        broker.advance(step.flow_id, {"secret": "forged"})
    with pytest.raises(FlowNotFound):
        broker.advance(step.flow_id, {"secret": _secret(step)})  # type: ignore[arg-type]
    assert sink.names()[-1] == "flow.failed"
    assert sink.events[-1].reason == "bad_secret"


def test_user_cancel_is_typed() -> None:
    broker, sink, _ = make_broker()
    step = broker.begin("echo", insecure_unbound=True)
    with pytest.raises(UserCancelled):
        broker.advance(step.flow_id, {"error": "cancel"})
    assert sink.events[-1].reason == "cancelled"


def test_flow_expiry() -> None:
    clock = Clock()
    broker, _, _ = make_broker(clock=clock)
    step = broker.begin("echo", insecure_unbound=True)
    clock.t += 601
    with pytest.raises(Expired):
        broker.advance(step.flow_id, {"secret": _secret(step)})  # type: ignore[arg-type]


@pytest.mark.parametrize("flow_id", ["", "short", "x" * 500, "nonexistent" * 4])
def test_unknown_flow_ids(flow_id: str) -> None:
    broker, _, _ = make_broker()
    with pytest.raises(FlowNotFound):
        broker.advance(flow_id, {})


def test_unknown_provider_is_config_error() -> None:
    broker, _, _ = make_broker()
    with pytest.raises(ConfigError) as err:
        broker.begin("nope", insecure_unbound=True)
    assert err.value.key == "providers.nope"


def test_concurrent_callbacks_yield_exactly_one_identity() -> None:
    broker, _, _ = make_broker()
    step = broker.begin("echo", insecure_unbound=True)
    assert isinstance(step, Redirect)
    results = run_together(
        50,
        lambda _: broker.advance(step.flow_id, {"secret": _secret(step)}),
        catch=(AlreadyUsed, FlowNotFound),
    )
    assert sum(isinstance(r, Done) for r in results) == 1
    assert all(isinstance(r, Done | AlreadyUsed | FlowNotFound) for r in results)


def test_poll_flow_keeps_state_and_survives_transient_outage() -> None:
    broker, _, _ = make_broker()
    step = broker.begin("poll", insecure_unbound=True)
    assert isinstance(step, Poll)
    assert isinstance(broker.advance(step.flow_id), Poll)
    with pytest.raises(ProviderUnavailable):
        broker.advance(step.flow_id, {"fail": "down"})
    refreshed = broker.refresh(step.flow_id)
    assert refreshed.display.qr == "qr-1"
    assert isinstance(broker.advance(step.flow_id), Poll)
    assert isinstance(broker.advance(step.flow_id), Done)


def test_cancel_consumes_flow() -> None:
    broker, sink, _ = make_broker()
    step = broker.begin("poll", insecure_unbound=True)
    broker.cancel(step.flow_id)
    with pytest.raises(FlowNotFound):
        broker.advance(step.flow_id)
    assert "flow.cancelled" in sink.names()


async def test_async_broker_concurrent_tasks() -> None:
    sink = MemorySink()
    broker = AsyncBroker(
        Settings(secret_keys=("x" * 40,)),
        store=AsyncMemoryStore(),
        providers={"echo": EchoProvider()},
        audit=AuditLog([sink]),
    )
    step = await broker.begin("echo", binding="b")
    assert isinstance(step, Redirect)

    async def attempt() -> object:
        try:
            return await broker.advance(step.flow_id, {"secret": _secret(step)}, binding="b")
        except (AlreadyUsed, FlowNotFound) as exc:
            return exc

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    assert sum(isinstance(r, Done) for r in results) == 1
    await broker.aclose()


@pytest.mark.parametrize(
    "value",
    [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: x",
        "http://app.example.evil/",
        "/a\\b",
    ],
)
def test_return_to_refuses_open_redirects(value: str) -> None:
    with pytest.raises(InvalidInput):
        check_return_to(value, ("https://app.example",))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "/"),
        ("", "/"),
        ("/invoices?id=1", "/invoices?id=1"),
        ("https://app.example/x", "https://app.example/x"),
    ],
)
def test_return_to_accepts_local_and_allowed(value: str | None, expected: str) -> None:
    assert check_return_to(value, ("https://app.example",)) == expected


def test_begin_with_bad_return_to_writes_nothing() -> None:
    broker, sink, store = make_broker()
    with pytest.raises(InvalidInput):
        broker.begin("echo", return_to="https://evil.example/", insecure_unbound=True)
    assert sink.events == []
    assert store._data == {}


def test_provider_config_secret_rules() -> None:
    cfg = ProviderConfig(
        name="x",
        protocol="oidc",
        environment="production",
        display_name={},
        loa=Loa.HIGH,
        country=None,
        options={"client_secret": "literal", "api_key_env": "X_KEY"},
        environ={"X_KEY": "from-env"},
    )
    assert cfg.secret("api_key") == "from-env"
    with pytest.raises(ConfigError) as err:
        cfg.secret("client_secret")
    assert err.value.key == "providers.x.client_secret"
    assert "literal" not in str(err.value)
