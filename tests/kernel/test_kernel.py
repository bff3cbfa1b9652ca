"""The kernel: both runtimes carry out every effect alike, failures reach the routine's
cleanup, and declared facades have the routine's signature (checked by mypy too)."""

from __future__ import annotations

import asyncio
import inspect
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from authbroker.errors import InvalidInput, ProviderUnavailable
from authbroker.http import HttpRequest, HttpResponse
from authbroker.kernel import (
    AsyncFacade,
    AsyncRuntime,
    Gen,
    SyncFacade,
    SyncRuntime,
    async_op,
    call,
    fetch,
    offload,
    op,
    sleep,
    sync_op,
)
from authbroker.store import AsyncMemoryStore, MemoryStore
from authbroker.store.base import Get, Put, Take


class Answers:
    """A driver answering every request with its URL, or failing when told to."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail
        self.sent: list[str] = []

    def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request.url)
        if self.fail is not None:
            raise self.fail
        return HttpResponse(200, {}, request.url.encode())


class AsyncAnswers(Answers):
    async def send(self, request: HttpRequest) -> HttpResponse:  # type: ignore[override]
        return super().send(request)


def everything(log: list[str]) -> Gen[str]:
    """One routine using every kind of effect."""
    yield Put("k", b"v", 60)
    value = yield Get("k")
    response = yield from fetch(HttpRequest.get("https://op.example/x"))
    yield from sleep(0.5)
    thread = yield from offload(lambda: threading.current_thread().name)
    doubled = yield from call(lambda n: n * 2, 21)
    taken = yield Take("k")
    log.append(thread)
    return f"{value!r} {response.body.decode()} {doubled} {taken!r}"


def test_sync_runtime_carries_out_every_effect() -> None:
    slept: list[float] = []
    log: list[str] = []
    runtime = SyncRuntime(Answers(), MemoryStore(), sleep=slept.append)  # type: ignore[arg-type]
    assert runtime.run(everything(log)) == "b'v' https://op.example/x 42 b'v'"
    assert slept == [0.5]
    assert log == [threading.current_thread().name]  # offloaded work runs in place


async def test_async_runtime_carries_out_every_effect() -> None:
    slept: list[float] = []
    log: list[str] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    runtime = AsyncRuntime(AsyncAnswers(), AsyncMemoryStore(), sleep=fake_sleep)  # type: ignore[arg-type]
    assert await runtime.run(everything(log)) == "b'v' https://op.example/x 42 b'v'"
    assert slept == [0.5]
    assert log != [threading.current_thread().name]  # offloaded to a worker thread


async def test_async_runtime_awaits_async_callbacks() -> None:
    async def lookup(user: str) -> bool:
        await asyncio.sleep(0)
        return user == "u-1"

    def routine() -> Gen[tuple[bool, bool]]:
        a = yield from call(lookup, "u-1")
        b = yield from call(lookup, "u-2")
        return a, b

    assert await AsyncRuntime().run(routine()) == (True, False)


def test_sync_runtime_refuses_an_async_callback() -> None:
    async def lookup() -> bool:
        return True

    def routine() -> Gen[bool]:
        return (yield from call(lookup))

    with pytest.raises(RuntimeError, match="async callback"):
        SyncRuntime().run(routine())


def cleanup_routine(state: dict[str, Any]) -> Gen[None]:
    """Holds a lock across an HTTP call and must release it whatever happens."""
    yield Put("lock", b"1", 60)
    try:
        yield from fetch(HttpRequest.get("https://op.example/slow"))
    finally:
        state["released"] = yield Take("lock")


@pytest.mark.parametrize(
    "failure", [ProviderUnavailable("down"), UnicodeEncodeError("ascii", "ä", 0, 1, "x")]
)
def test_any_failure_reaches_the_routine_cleanup_sync(failure: Exception) -> None:
    """Not only AuthBrokerError: an unexpected exception must not skip the cleanup
    (a 'generator ignored GeneratorExit' would leave the lock behind)."""
    store = MemoryStore()
    state: dict[str, Any] = {}
    with pytest.raises(type(failure)):
        SyncRuntime(Answers(failure), store).run(cleanup_routine(state))  # type: ignore[arg-type]
    assert state["released"] == b"1"
    assert store.get("lock") is None


@pytest.mark.parametrize(
    "failure", [ProviderUnavailable("down"), UnicodeEncodeError("ascii", "ä", 0, 1, "x")]
)
async def test_any_failure_reaches_the_routine_cleanup_async(failure: Exception) -> None:
    store = AsyncMemoryStore()
    state: dict[str, Any] = {}
    with pytest.raises(type(failure)):
        await AsyncRuntime(AsyncAnswers(failure), store).run(cleanup_routine(state))  # type: ignore[arg-type]
    assert state["released"] == b"1"
    assert await store.get("lock") is None


def test_a_routine_may_handle_a_failure_and_go_on() -> None:
    def routine() -> Gen[str]:
        try:
            yield from fetch(HttpRequest.get("https://op.example/x"))
        except ProviderUnavailable:
            return "fallback"
        return "unreachable"

    assert SyncRuntime(Answers(ProviderUnavailable("down"))).run(routine()) == "fallback"  # type: ignore[arg-type]


def test_missing_driver_or_store_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="HTTP driver"):
        SyncRuntime().run(fetch(HttpRequest.get("https://op.example/x")))

    def needs_store() -> Gen[object]:
        return (yield Get("k"))

    with pytest.raises(RuntimeError, match="state store"):
        SyncRuntime().run(needs_store())


# --- declared facades -------------------------------------------------------------------


class CounterEngine:
    """A tiny engine: its operations are routines."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def bump(self, name: str, *, by: int = 1) -> Gen[int]:
        """Add ``by`` to counter ``name`` and return the new value."""
        key = self.prefix + name
        raw = yield Get(key)
        value = int(raw or b"0") + by
        if value > 10:
            raise InvalidInput("too much", code="too_much")
        yield Put(key, str(value).encode(), 60)
        return value


class Counter(SyncFacade[CounterEngine]):
    bump = sync_op(CounterEngine.bump)

    def __init__(self) -> None:
        self.engine = CounterEngine("c:")
        self.runtime = SyncRuntime(None, MemoryStore())


class AsyncCounter(AsyncFacade[CounterEngine]):
    bump = async_op(CounterEngine.bump)

    def __init__(self) -> None:
        self.engine = CounterEngine("c:")
        self.runtime = AsyncRuntime(None, AsyncMemoryStore())


class _CounterOps:
    """Declared once for both faces."""

    bump = op(CounterEngine.bump)


class SharedCounter(_CounterOps, SyncFacade[CounterEngine]):
    def __init__(self) -> None:
        self.engine = CounterEngine("c:")
        self.runtime = SyncRuntime(None, MemoryStore())


class AsyncSharedCounter(_CounterOps, AsyncFacade[CounterEngine]):
    def __init__(self) -> None:
        self.engine = CounterEngine("c:")
        self.runtime = AsyncRuntime(None, AsyncMemoryStore())


async def test_one_declaration_serves_both_faces() -> None:
    sync, asynchronous = SharedCounter(), AsyncSharedCounter()
    assert sync.bump("a", by=3) == 3
    assert await asynchronous.bump("a", by=4) == 4
    assert inspect.iscoroutinefunction(asynchronous.bump)
    assert not inspect.iscoroutinefunction(sync.bump)
    assert str(inspect.signature(sync.bump)) == "(name: 'str', *, by: 'int' = 1) -> 'int'"
    assert sync.bump.__doc__ == CounterEngine.bump.__doc__


async def test_declared_facades_run_the_engine_routine() -> None:
    sync, asynchronous = Counter(), AsyncCounter()
    assert sync.bump("a") == 1
    assert sync.bump("a", by=4) == 5
    assert await asynchronous.bump("a", by=2) == 2
    with pytest.raises(InvalidInput):
        sync.bump("a", by=6)
    assert sync.bump("a") == 6  # the failed call changed nothing


def test_declared_facades_show_the_routine_signature_and_docs() -> None:
    sync, asynchronous = Counter(), AsyncCounter()
    for method in (sync.bump, asynchronous.bump, Counter.bump, AsyncCounter.bump):
        assert method.__doc__ == CounterEngine.bump.__doc__
    assert str(inspect.signature(sync.bump)) == "(name: 'str', *, by: 'int' = 1) -> 'int'"
    assert str(inspect.signature(asynchronous.bump)) == "(name: 'str', *, by: 'int' = 1) -> 'int'"
    assert inspect.iscoroutinefunction(asynchronous.bump)
    assert not inspect.iscoroutinefunction(sync.bump)
    assert sync.bump is sync.bump  # bound once, cached on the instance
    assert Counter().bump is not sync.bump


def test_mypy_sees_the_declared_signatures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The facade methods type-check as the routine minus the engine, returning T
    (sync) or Awaitable[T] (async); wrong calls are type errors."""
    from mypy import api

    source = textwrap.dedent(
        """
        from collections.abc import Awaitable
        from test_kernel import AsyncCounter, AsyncSharedCounter, Counter, SharedCounter

        reveal_type(Counter().bump)
        reveal_type(AsyncCounter().bump)
        reveal_type(SharedCounter().bump)
        reveal_type(AsyncSharedCounter().bump)
        n: int = Counter().bump("a", by=2)
        a: Awaitable[int] = AsyncCounter().bump("a")
        Counter().bump(1)
        """
    )
    snippet = tmp_path / "snippet.py"
    snippet.write_text(source)
    here = Path(__file__).resolve().parent  # this module, imported by the snippet
    monkeypatch.setenv("MYPYPATH", f"{here.parents[1] / 'src'}:{here}")
    out, _err, _code = api.run(
        [
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--follow-imports=silent",
            "--ignore-missing-imports",
            "--config-file=",
            str(snippet),
        ]
    )
    lines = [line.split(": ", 1)[1] for line in out.splitlines() if ": " in line]
    sync_type = 'note: Revealed type is "def (name: str, *, by: int =) -> int"'
    assert lines.count(sync_type) == 2, out  # sync_op and the shared op alike
    awaitable = "typing.Awaitable[int]"
    async_type = f'note: Revealed type is "def (name: str, *, by: int =) -> {awaitable}"'
    assert lines.count(async_type) == 2, out
    assert any("error: Argument 1" in line and '"int"' in line for line in lines), out
    assert sum("error:" in line for line in lines) == 1, out
