"""Flows fail closed and cannot come back (issues 15 and 23).

* A write-back of a non-final step is a compare-and-set against the record read
  under the lock: a poll holding a stale copy cannot resurrect a flow that was
  completed (a second ``Done``) or consumed by a failure, on any store.
* A callback is bound to the provider of the redirect URI it arrived on.
* Any exception reaching a flow releases the lock, is audited, consumes the flow
  and leaves as a typed error with the cause chained.
* The flow lock outlives the provider's longest call; ``[broker] flow_ttl`` caps
  every provider's flow lifetime.

Interleavings are forced deterministically with a store wrapper that parks one
thread at a chosen operation; real concurrency runs threads behind a barrier and
asyncio tasks on every backend.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from test_broker import Clock, EchoProvider, _secret

from authbroker import Broker, Done, Loa, Poll, Redirect
from authbroker.audit import AuditLog, MemorySink
from authbroker.config import Settings, load_config
from authbroker.engines.flows import LOCK_MARGIN, LOCK_TTL
from authbroker.errors import (
    AlreadyUsed,
    AuthBrokerError,
    Expired,
    FlowNotFound,
    InternalError,
    InvalidInput,
)
from authbroker.flow import Display, Gen, store_delete, store_get, store_put
from authbroker.http import HttpRequest, HttpResponse, SyncDriver
from authbroker.identity import Identity
from authbroker.providers.base import AdvanceContext, BeginContext, Next, ProviderInfo
from authbroker.store import AsyncMemoryStore, AsyncStateStore, MemoryStore, StateStore
from authbroker.testing import simulated_async_broker, simulated_broker
from conftest import TravelClock, run_together
from runtimes import run_async, run_sync
from web_support import Stack, build

SETTINGS = Settings(secret_keys=("x" * 40,))


class AppReturnProvider:
    """BankID same-device in miniature: the page polls (pending) until the app's
    return request brings ``done``; ``fetch`` makes each advance send a request."""

    flow_ttl = 300.0

    def __init__(self, *, fetch: bool = False, max_call_seconds: float | None = None) -> None:
        self.info = ProviderInfo("app", "app", {"en": "App"}, Loa.HIGH, "simulator")
        self.fetch = fetch
        self.calls = 0
        if max_call_seconds is not None:
            self.max_call_seconds = max_call_seconds

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        yield from store_get("noop")
        return Next(Poll(2.0, Display(status="pending")), {"ticks": 0, "interval": 2.0})

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Next | Identity]:
        self.calls += 1
        yield from store_get("provider-call")  # the wrapper can park a thread here
        if self.fetch:
            yield HttpRequest.get("https://idp.example/collect", headers={"x": params["tok"]})
        if params.get("fail") == "value":
            raise ValueError("adapter bug")
        if params.get("done"):
            return Identity("app", "test", "s-1", None, Loa.HIGH, datetime.now(UTC))
        ticks = int(data["ticks"]) + 1
        return Next(Poll(2.0, Display(status="pending")), {"ticks": ticks, "interval": 2.0})


class ParkingStore:
    """Delegates to ``inner``; the first call of ``op`` on a key starting with
    ``prefix`` signals ``arrived`` and waits for ``release`` before it runs.
    ``forget_locks`` drops a held flow lock before each lock attempt (a lock that
    has expired, however that came about)."""

    def __init__(
        self, inner: StateStore, op: str, prefix: str, *, forget_locks: bool = False
    ) -> None:
        self.inner = inner
        self.op, self.prefix = op, prefix
        self.forget_locks = forget_locks
        self.arrived = threading.Event()
        self.release = threading.Event()
        self._parked = False
        self._guard = threading.Lock()

    def _maybe_park(self, op: str, key: str) -> None:
        with self._guard:
            park = not self._parked and op == self.op and key.startswith(self.prefix)
            if park:
                self._parked = True
        if park:
            self.arrived.set()
            assert self.release.wait(30)

    def put(self, key: str, value: bytes, ttl: float) -> None:
        self._maybe_park("put", key)
        self.inner.put(key, value, ttl)

    def get(self, key: str) -> bytes | None:
        self._maybe_park("get", key)
        return self.inner.get(key)

    def take(self, key: str) -> bytes | None:
        self._maybe_park("take", key)
        return self.inner.take(key)

    def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        self._maybe_park("put_if_absent", key)
        if self.forget_locks and key.startswith("flowlock:"):
            self.inner.delete(key)
        return self.inner.put_if_absent(key, value, ttl)

    def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        return self.inner.incr(key, ttl, amount)

    def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        self._maybe_park("replace", key)
        return self.inner.replace(key, expected, value, ttl)

    def delete(self, key: str) -> bool:
        return self.inner.delete(key)

    def close(self) -> None:
        self.inner.close()


def _broker(store: Any, provider: Any, sink: MemorySink, **kw: Any) -> Broker:
    return simulated_broker(
        kw.pop("settings", SETTINGS),
        store=store,
        providers={"app": provider, "echo": EchoProvider()},
        audit=AuditLog([sink]),
        now=kw.pop("now", Clock()),
        **kw,
    )


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except Exception as exc:
            out.append(exc)

    t = threading.Thread(target=run)
    t.start()
    return t, out


def _flow_keys(store: StateStore, flow_id: str) -> tuple[bytes | None, bytes | None]:
    return store.get("flow:" + flow_id), store.get("flowlock:" + flow_id)


# --- 1. a stale poll cannot resurrect a finished flow ---------------------------------


def test_poll_delayed_before_the_lock_cannot_bring_back_a_completed_flow(
    sync_store: StateStore,
) -> None:
    """The page poll has loaded the flow and is delayed before it takes the lock; the
    app's return request completes the flow meanwhile. The poll must not write the
    flow back, and loading the return URL again must not give a second Done."""
    store = ParkingStore(sync_store, "put_if_absent", "flowlock:")
    sink = MemorySink()
    provider = AppReturnProvider()
    broker = _broker(store, provider, sink)
    step = broker.begin("app", binding="b")
    poll, out = _in_thread(lambda: broker.advance(step.flow_id, {}, binding="b"))
    assert store.arrived.wait(30)
    done = broker.advance(step.flow_id, {"done": "1"}, binding="b")
    assert isinstance(done, Done)
    store.release.set()
    poll.join(30)
    assert isinstance(out[0], FlowNotFound)
    assert _flow_keys(sync_store, step.flow_id) == (None, None)
    with pytest.raises(FlowNotFound):
        broker.advance(step.flow_id, {"done": "1"}, binding="b")
    assert sink.names().count("flow.completed") == 1


def test_write_back_after_the_lock_was_lost_fails_closed(sync_store: StateStore) -> None:
    """Even when the lock no longer protects it (expired mid-call), a poll holding a
    stale record cannot write it back over a completed flow: the CAS fails."""
    store = ParkingStore(sync_store, "get", "provider-call", forget_locks=True)
    sink = MemorySink()
    provider = AppReturnProvider()
    broker = _broker(store, provider, sink)
    step = broker.begin("app", binding="b")
    poll, out = _in_thread(lambda: broker.advance(step.flow_id, {}, binding="b"))
    assert store.arrived.wait(30)  # the poll is inside the provider call
    done = broker.advance(step.flow_id, {"done": "1"}, binding="b")
    assert isinstance(done, Done)
    store.release.set()
    poll.join(30)
    assert isinstance(out[0], AlreadyUsed) and out[0].code == "flow_conflict"
    assert _flow_keys(sync_store, step.flow_id) == (None, None)
    with pytest.raises(FlowNotFound):
        broker.advance(step.flow_id, {"done": "1"}, binding="b")
    assert sink.names().count("flow.completed") == 1
    failed = [e for e in sink.events if e.name == "flow.failed"]
    assert [e.reason for e in failed] == ["flow_conflict"]


def test_stale_poll_cannot_revive_a_flow_consumed_by_a_failure(sync_store: StateStore) -> None:
    store = ParkingStore(sync_store, "get", "provider-call", forget_locks=True)
    sink = MemorySink()
    broker = _broker(store, AppReturnProvider(), sink)
    step = broker.begin("app", binding="b")
    poll, out = _in_thread(lambda: broker.advance(step.flow_id, {}, binding="b"))
    assert store.arrived.wait(30)
    with pytest.raises(InternalError):
        broker.advance(step.flow_id, {"fail": "value"}, binding="b")
    store.release.set()
    poll.join(30)
    assert isinstance(out[0], AlreadyUsed)
    assert _flow_keys(sync_store, step.flow_id) == (None, None)
    with pytest.raises(FlowNotFound):
        broker.advance(step.flow_id, {"done": "1"}, binding="b")


def test_write_back_over_a_newer_version_fails(sync_store: StateStore) -> None:
    """Two advances that both believe they hold the lock: the later write-back of the
    older copy loses, and the flow is consumed rather than forked."""
    store = ParkingStore(sync_store, "get", "provider-call", forget_locks=True)
    broker = _broker(store, AppReturnProvider(), MemorySink())
    step = broker.begin("app", binding="b")
    poll, out = _in_thread(lambda: broker.advance(step.flow_id, {}, binding="b"))
    assert store.arrived.wait(30)
    assert isinstance(broker.advance(step.flow_id, {}, binding="b"), Poll)  # newer version
    store.release.set()
    poll.join(30)
    assert isinstance(out[0], AlreadyUsed)
    assert _flow_keys(sync_store, step.flow_id) == (None, None)


def test_racing_polls_and_returns_give_one_done_per_flow(sync_store: StateStore) -> None:
    """Real concurrency: polls and app returns released together; every flow ends
    with exactly one Done and never comes back."""
    sink = MemorySink()
    broker = _broker(sync_store, AppReturnProvider(), sink)
    for _ in range(8):
        step = broker.begin("app", binding="b")

        def hit(i: int, flow_id: str = step.flow_id) -> object:
            return broker.advance(flow_id, {"done": "1"} if i % 4 == 0 else {}, binding="b")

        results = run_together(16, hit, catch=(AuthBrokerError,))
        assert sum(isinstance(r, Done) for r in results) <= 1
        for r in results:
            assert isinstance(r, Done | Poll | AlreadyUsed | FlowNotFound), r
        if not any(isinstance(r, Done) for r in results):
            # Every return met a busy lock: the flow is still polling; finish it.
            assert isinstance(broker.advance(step.flow_id, {"done": "1"}, binding="b"), Done)
        assert _flow_keys(sync_store, step.flow_id) == (None, None)
        with pytest.raises(FlowNotFound):
            broker.advance(step.flow_id, {"done": "1"}, binding="b")
    assert sink.names().count("flow.completed") == 8


async def test_async_tasks_racing_give_one_done(async_store: AsyncStateStore) -> None:
    broker = simulated_async_broker(
        SETTINGS, store=async_store, providers={"app": AppReturnProvider()}, now=Clock()
    )
    for _ in range(5):
        step = await broker.begin("app", binding="b")
        barrier = asyncio.Barrier(12)

        async def hit(
            i: int, flow_id: str = step.flow_id, barrier: asyncio.Barrier = barrier
        ) -> object:
            await barrier.wait()
            try:
                return await broker.advance(
                    flow_id, {"done": "1"} if i % 3 == 0 else {}, binding="b"
                )
            except AuthBrokerError as exc:
                return exc

        results = await asyncio.gather(*(hit(i) for i in range(12)))
        dones = [r for r in results if isinstance(r, Done)]
        assert len(dones) <= 1
        if not dones:
            assert isinstance(await broker.advance(step.flow_id, {"done": "1"}, binding="b"), Done)
        assert await async_store.get("flow:" + step.flow_id) is None
        assert await async_store.get("flowlock:" + step.flow_id) is None
        with pytest.raises(FlowNotFound):
            await broker.advance(step.flow_id, {"done": "1"}, binding="b")


@pytest.mark.redis
def test_redis_processes_style_race_two_brokers(redis_url: str, redis_prefix: str) -> None:
    """Two brokers (as two app servers would) on separate Redis connections race
    polls against returns; the shared flow ends exactly once."""
    from authbroker.store.redis import RedisStore

    stores = [RedisStore.from_url(redis_url, prefix=redis_prefix) for _ in range(2)]
    sink = MemorySink()
    brokers = [_broker(s, AppReturnProvider(), sink) for s in stores]
    try:
        for _ in range(10):
            step = brokers[0].begin("app", binding="b")

            def hit(i: int, flow_id: str = step.flow_id) -> object:
                params = {"done": "1"} if i % 5 == 0 else {}
                return brokers[i % 2].advance(flow_id, params, binding="b")

            results = run_together(20, hit, catch=(AuthBrokerError,))
            assert sum(isinstance(r, Done) for r in results) <= 1
            if not any(isinstance(r, Done) for r in results):
                assert isinstance(
                    brokers[1].advance(step.flow_id, {"done": "1"}, binding="b"), Done
                )
            assert _flow_keys(stores[0], step.flow_id) == (None, None)
        assert sink.names().count("flow.completed") == 10
    finally:
        for s in stores:
            s.close()


# --- 2. a callback is bound to its provider ---------------------------------------------


def test_callback_for_another_provider_is_refused_and_consumes_the_flow() -> None:
    sink = MemorySink()
    store = MemoryStore()
    broker = _broker(store, AppReturnProvider(), sink)
    step = broker.begin("echo", binding="b")
    assert isinstance(step, Redirect)
    with pytest.raises(InvalidInput) as info:
        broker.advance(step.flow_id, {"secret": _secret(step)}, binding="b", provider="app")
    assert info.value.code == "flow_provider_mismatch"
    assert _flow_keys(store, step.flow_id) == (None, None)
    with pytest.raises(FlowNotFound):
        broker.advance(step.flow_id, {"secret": _secret(step)}, binding="b", provider="echo")
    failed = [e for e in sink.events if e.name == "flow.failed"]
    assert [(e.provider, e.reason) for e in failed] == [("echo", "flow_provider_mismatch")]
    assert "flow.completed" not in sink.names()


def test_callback_on_the_flows_own_provider_completes() -> None:
    broker = _broker(MemoryStore(), AppReturnProvider(), MemorySink())
    step = broker.begin("echo", binding="b")
    assert isinstance(step, Redirect)
    done = broker.advance(step.flow_id, {"secret": _secret(step)}, binding="b", provider="echo")
    assert isinstance(done, Done)


async def test_async_callback_for_another_provider_is_refused() -> None:
    broker = simulated_async_broker(
        SETTINGS,
        store=AsyncMemoryStore(),
        providers={"app": AppReturnProvider(), "echo": EchoProvider()},
        now=Clock(),
    )
    step = await broker.begin("echo", binding="b")
    assert isinstance(step, Redirect)
    with pytest.raises(InvalidInput):
        await broker.advance(step.flow_id, {"secret": _secret(step)}, binding="b", provider="app")
    with pytest.raises(FlowNotFound):
        await broker.advance(step.flow_id, {"secret": _secret(step)}, binding="b")


# --- 3. unexpected exceptions -------------------------------------------------------------


def _assert_failed_closed(
    store: StateStore, sink: MemorySink, flow_id: str, exc: AuthBrokerError, cause: type
) -> None:
    assert isinstance(exc, InternalError) and exc.code == "internal"
    assert isinstance(exc.__cause__, cause)
    assert _flow_keys(store, flow_id) == (None, None)
    failed = [e for e in sink.events if e.name == "flow.failed"]
    assert [(e.reason, e.details["cause"]) for e in failed] == [("internal", cause.__name__)]


def test_provider_raising_value_error_fails_closed(sync_store: StateStore) -> None:
    sink = MemorySink()
    broker = _broker(sync_store, AppReturnProvider(), sink)
    step = broker.begin("app", binding="b")
    with pytest.raises(InternalError) as info:
        broker.advance(step.flow_id, {"fail": "value"}, binding="b")
    _assert_failed_closed(sync_store, sink, step.flow_id, info.value, ValueError)
    assert "adapter bug" not in str(info.value)  # a foreign message is not repeated
    with pytest.raises(FlowNotFound):
        broker.advance(step.flow_id, {"done": "1"}, binding="b")


class AsciiHeaderDriver(SyncDriver):
    """Encodes headers as HTTP/1.1 clients do; a non-ASCII value fails there."""

    def send(self, req: HttpRequest) -> HttpResponse:
        for value in req.headers.values():
            value.encode("ascii")
        return HttpResponse(200, {}, b"{}")


def test_driver_raising_unexpected_exception_fails_closed() -> None:
    store, sink = MemoryStore(), MemorySink()
    broker = _broker(store, AppReturnProvider(fetch=True), sink, driver=AsciiHeaderDriver())
    step = broker.begin("app", binding="b")
    assert isinstance(broker.advance(step.flow_id, {"tok": "ascii"}, binding="b"), Poll)
    with pytest.raises(InternalError) as info:
        broker.advance(step.flow_id, {"tok": "tökeni"}, binding="b")
    _assert_failed_closed(store, sink, step.flow_id, info.value, UnicodeEncodeError)


async def test_async_provider_raising_value_error_fails_closed() -> None:
    mem, sink = MemoryStore(), MemorySink()
    broker = simulated_async_broker(
        SETTINGS,
        store=AsyncMemoryStore(store=mem),
        providers={"app": AppReturnProvider()},
        audit=AuditLog([sink]),
        now=Clock(),
    )
    step = await broker.begin("app", binding="b")
    with pytest.raises(InternalError) as info:
        await broker.advance(step.flow_id, {"fail": "value"}, binding="b")
    _assert_failed_closed(mem, sink, step.flow_id, info.value, ValueError)


def _cleanup_routine(log: list[str]) -> Gen[str]:
    yield from store_put("held", b"1", 60)
    try:
        yield from store_get("explode")
    except Exception as exc:
        log.append(type(exc).__name__)
        yield from store_delete("held")  # cleanup needs I/O
        raise
    return "unreachable"


class ExplodingStore(MemoryStore):
    def get(self, key: str) -> bytes | None:
        if key == "explode":
            raise KeyError("not one of ours")
        return super().get(key)


def test_runner_throws_every_exception_into_the_routine() -> None:
    store, log = ExplodingStore(), []
    with pytest.raises(KeyError):
        run_sync(_cleanup_routine(log), None, store)
    assert log == ["KeyError"]
    assert store.get("held") is None


async def test_async_runner_throws_every_exception_into_the_routine() -> None:
    store, log = ExplodingStore(), []
    with pytest.raises(KeyError):
        await run_async(_cleanup_routine(log), None, AsyncMemoryStore(store=store))
    assert log == ["KeyError"]
    assert store.get("held") is None


# --- 4. the lock outlives the provider's longest call -------------------------------------


class SlowCallStore(MemoryStore):
    """The provider call takes ``seconds`` (on the injected clock); meanwhile another
    poll of the same flow arrives."""

    def __init__(self, clock: TravelClock, seconds: float) -> None:
        super().__init__(now=clock)
        self.clock, self.seconds = clock, seconds
        self.during: Callable[[], object] | None = None
        self.seen: list[object] = []

    def get(self, key: str) -> bytes | None:
        if key == "provider-call" and self.during is not None:
            during, self.during = self.during, None
            self.clock.advance(self.seconds)
            try:
                self.seen.append(during())
            except AuthBrokerError as exc:
                self.seen.append(exc)
        return super().get(key)


def test_lock_outlives_a_provider_call_longer_than_the_default() -> None:
    clock = TravelClock()
    store = SlowCallStore(clock, 195.0)
    provider = AppReturnProvider(max_call_seconds=195.0)
    broker = _broker(store, provider, MemorySink(), now=clock)
    step = broker.begin("app", binding="b")
    store.during = lambda: broker.advance(step.flow_id, {}, binding="b")
    assert isinstance(broker.advance(step.flow_id, {}, binding="b"), Poll)
    assert provider.calls == 1  # the poll during the call did not start a second one
    assert isinstance(store.seen[0], Poll)


def test_default_lock_is_kept_for_providers_without_long_calls() -> None:
    clock = TravelClock()
    store = SlowCallStore(clock, LOCK_TTL - 1)
    provider = AppReturnProvider()
    broker = _broker(store, provider, MemorySink(), now=clock)
    step = broker.begin("app", binding="b")
    store.during = lambda: broker.advance(step.flow_id, {}, binding="b")
    broker.advance(step.flow_id, {}, binding="b")
    assert provider.calls == 1


def test_mobiilivarmenne_declares_its_longest_call() -> None:
    from authbroker.providers.mobiilivarmenne import from_config

    settings = load_config(environ={})
    with simulated_broker(settings, store=MemoryStore()) as broker:
        sim = broker.simulator("mobiilivarmenne")
        assert sim is not None
        config = settings.provider("mobiilivarmenne").with_options(**sim.overrides)
        synch = from_config(config.with_options(messaging_mode="synch"), settings)
        assert synch.max_call_seconds == synch.timeout + synch.http_timeout == 195
        assert broker.engine.lock_ttl(synch) == 195 + LOCK_MARGIN > LOCK_TTL
        polling = from_config(config, settings)
        assert polling.max_call_seconds == polling.http_timeout
        assert broker.engine.lock_ttl(polling) == LOCK_TTL


# --- 5. [broker] flow_ttl caps every provider ---------------------------------------------


def test_broker_flow_ttl_caps_the_providers_own() -> None:
    clock = TravelClock()
    store = MemoryStore(now=clock)
    settings = Settings(secret_keys=("x" * 40,), flow_ttl=60)
    broker = _broker(store, AppReturnProvider(), MemorySink(), settings=settings, now=clock)
    step = broker.begin("echo", binding="b")  # EchoProvider.flow_ttl is 600
    assert isinstance(step, Redirect)
    clock.advance(61)
    with pytest.raises((Expired, FlowNotFound)):
        broker.advance(step.flow_id, {"secret": _secret(step)}, binding="b")
    assert store.get("flow:" + step.flow_id) is None


def test_shorter_provider_flow_ttl_still_applies() -> None:
    clock = TravelClock()
    broker = _broker(MemoryStore(now=clock), AppReturnProvider(), MemorySink(), now=clock)
    step = broker.begin("app", binding="b")  # 300 s, under the broker's 600 s
    clock.advance(301)
    with pytest.raises((Expired, FlowNotFound)):
        broker.advance(step.flow_id, {}, binding="b")


# --- 2 (web). the callback URI's provider is passed to the broker ----------------------


@pytest.fixture(params=["wsgi", "asgi"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from build(request.param, tmp_path)


def test_web_callback_on_another_providers_uri_is_refused(stack: Stack) -> None:
    """A flow begun with "echo" (high) answered on "weak"'s redirect URI: refused,
    consumed, audited; the right URI cannot finish it afterwards."""
    r = stack.client.get("/auth/begin/echo", params={"return_to": "/full"})
    assert r.status_code == 303
    secret = parse_qs(urlsplit(r.headers["location"]).query)["s"][0]
    r = stack.client.get("/auth/callback/weak", params={"secret": secret})
    assert r.status_code == 400
    assert 'id="error-code">flow_provider_mismatch<' in r.text
    assert stack.session_cookie() is None
    assert not [k for k in stack.mem._data if k.startswith(("flow:", "flowlock:"))]
    failed = [e for e in stack.sink.events if e.name == "flow.failed"]
    assert [(e.provider, e.reason) for e in failed] == [("echo", "flow_provider_mismatch")]
    r = stack.client.get("/auth/callback/echo", params={"secret": secret})
    assert r.status_code == 404


def test_web_callback_on_the_flows_own_uri_completes(stack: Stack) -> None:
    r = stack.login("weak")
    assert r.headers["location"] == "/full"
    assert stack.session_cookie()
