"""One contract for every state store, sync and async: memory, SQLite, Redis, Redis
Cluster, Redis Sentinel and PostgreSQL.

The semantics are those of :mod:`authbroker.store.base`. Each case below runs on
every combination (ids ``<backend>-<api>``); time-dependent cases use
``store_clock.advance``, which moves the injected clock of the memory and SQLite
stores and really sleeps on the servers (Redis, PostgreSQL), which keep their own
time. Concurrency cases use real threads, tasks and processes released together by
a barrier.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from authbroker.errors import ConfigError, InvalidInput, StoreUnavailable
from authbroker.store import (
    AsyncMemoryStore,
    AsyncSqliteStore,
    AsyncStateStore,
    MemoryStore,
    SqliteStore,
    StateStore,
    open_async_store,
    open_store,
)
from authbroker.store.base import Atomic, AtomicResult
from conftest import TravelClock

TTL = 0.3  # short enough to sleep through on Redis, long enough not to expire by accident
PAST_TTL = 0.4


class SyncAsAsync:
    """Presents a blocking store through the async protocol so one case body serves both."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self.store.put(key, value, ttl)

    async def get(self, key: str) -> bytes | None:
        return self.store.get(key)

    async def take(self, key: str) -> bytes | None:
        return self.store.take(key)

    async def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        return self.store.put_if_absent(key, value, ttl)

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        return self.store.incr(key, ttl, amount)

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        return self.store.replace(key, expected, value, ttl)

    async def delete(self, key: str) -> bool:
        return self.store.delete(key)

    async def atomic(self, program: Atomic) -> AtomicResult:
        return self.store.atomic(program)

    async def aclose(self) -> None:
        self.store.close()


@pytest.fixture(params=["sync", "async"])
def store(request: pytest.FixtureRequest, store_backend: str) -> Iterator[AsyncStateStore]:
    """The backend's sync store (through :class:`SyncAsAsync`) or its async store."""
    if request.param == "sync":
        yield SyncAsAsync(request.getfixturevalue("sync_store"))
    else:
        yield request.getfixturevalue("async_store")


def test_backends_satisfy_protocols(tmp_path: Path) -> None:
    sqlite = SqliteStore(tmp_path / "p.db")
    try:
        assert isinstance(MemoryStore(), StateStore)
        assert isinstance(sqlite, StateStore)
        assert isinstance(AsyncMemoryStore(), AsyncStateStore)
        assert isinstance(AsyncSqliteStore(sqlite), AsyncStateStore)
    finally:
        sqlite.close()


# --- contract cases -------------------------------------------------------------------


async def test_put_get_overwrite(store: AsyncStateStore) -> None:
    await store.put("k", b"one", 60)
    assert await store.get("k") == b"one"
    await store.put("k", b"two", 60)
    assert await store.get("k") == b"two"
    assert await store.get("k") == b"two"  # get does not consume


async def test_get_missing(store: AsyncStateStore) -> None:
    assert await store.get("missing") is None
    assert await store.take("missing") is None
    assert await store.delete("missing") is False


async def test_take_returns_once(store: AsyncStateStore) -> None:
    await store.put("k", b"v", 60)
    assert await store.take("k") == b"v"
    assert await store.take("k") is None
    assert await store.get("k") is None


async def test_take_expired_is_none(store: AsyncStateStore, store_clock: TravelClock) -> None:
    await store.put("k", b"v", TTL)
    store_clock.advance(PAST_TTL)
    assert await store.take("k") is None
    assert await store.get("k") is None


async def test_ttl_expiry(store: AsyncStateStore, store_clock: TravelClock) -> None:
    await store.put("short", b"v", TTL)
    await store.put("long", b"w", 60)
    assert await store.get("short") == b"v"
    store_clock.advance(PAST_TTL)
    assert await store.get("short") is None
    assert await store.get("long") == b"w"


async def test_overwrite_resets_ttl(store: AsyncStateStore, store_clock: TravelClock) -> None:
    await store.put("k", b"v", TTL)
    await store.put("k", b"w", 60)
    store_clock.advance(PAST_TTL)
    assert await store.get("k") == b"w"


async def test_put_if_absent_first_wins(store: AsyncStateStore) -> None:
    assert await store.put_if_absent("k", b"first", 60) is True
    assert await store.put_if_absent("k", b"second", 60) is False
    assert await store.get("k") == b"first"


async def test_put_if_absent_after_expiry(store: AsyncStateStore, store_clock: TravelClock) -> None:
    assert await store.put_if_absent("k", b"old", TTL) is True
    store_clock.advance(PAST_TTL)
    assert await store.put_if_absent("k", b"new", 60) is True
    assert await store.get("k") == b"new"


async def test_put_if_absent_after_take(store: AsyncStateStore) -> None:
    await store.put("k", b"v", 60)
    await store.take("k")
    assert await store.put_if_absent("k", b"again", 60) is True


async def test_incr_from_zero(store: AsyncStateStore) -> None:
    assert await store.incr("c", 60) == 1
    assert await store.incr("c", 60) == 2
    assert await store.incr("c", 60, 5) == 7
    assert await store.incr("c", 60, -10) == -3
    assert await store.incr("c", 60, 0) == -3
    assert await store.get("c") == b"-3"  # counters read back as ASCII decimal
    assert await store.incr("other", 60, -2) == -2


async def test_incr_of_put_counter(store: AsyncStateStore) -> None:
    await store.put("c", b"41", 60)
    assert await store.incr("c", 60) == 42


async def test_incr_keeps_original_ttl(store: AsyncStateStore, store_clock: TravelClock) -> None:
    assert await store.incr("c", 0.6) == 1
    store_clock.advance(0.35)
    assert await store.incr("c", 0.6) == 2  # must not move the expiry to t=0.95
    store_clock.advance(0.35)
    assert await store.get("c") is None
    assert await store.incr("c", 0.6) == 1  # a new window


async def test_incr_rejects_non_counter_without_change(store: AsyncStateStore) -> None:
    for bad in [b"abc", b"1.5", b" 1", b"01", b"-0", b"+1", b"", b"9223372036854775808", b"\x001"]:
        await store.put("c", bad, 60)
        with pytest.raises(InvalidInput) as info:
            await store.incr("c", 60)
        assert info.value.code == "bad_counter"
        assert await store.get("c") == bad


async def test_incr_overflow_rejected_without_change(store: AsyncStateStore) -> None:
    await store.put("c", b"9223372036854775807", 60)
    with pytest.raises(InvalidInput):
        await store.incr("c", 60)
    assert await store.get("c") == b"9223372036854775807"
    await store.put("d", b"-9223372036854775808", 60)
    with pytest.raises(InvalidInput):
        await store.incr("d", 60, -1)
    assert await store.get("d") == b"-9223372036854775808"


async def test_delete_returns_bool(store: AsyncStateStore, store_clock: TravelClock) -> None:
    await store.put("k", b"v", 60)
    assert await store.delete("k") is True
    assert await store.delete("k") is False
    assert await store.get("k") is None
    await store.put("gone", b"v", TTL)
    store_clock.advance(PAST_TTL)
    assert await store.delete("gone") is False


async def test_binary_values_round_trip(store: AsyncStateStore) -> None:
    every_byte = bytes(range(256))
    await store.put("all", every_byte, 60)
    await store.put("empty", b"", 60)
    await store.put("big", every_byte * 256, 60)
    assert await store.get("all") == every_byte
    assert await store.get("empty") == b""
    assert await store.take("big") == every_byte * 256
    assert await store.put_if_absent("nul", b"\x00\x00", 60) is True
    assert await store.take("nul") == b"\x00\x00"


async def test_replace_writes_only_over_the_expected_value(store: AsyncStateStore) -> None:
    await store.put("k", b"v1", 60)
    assert await store.replace("k", b"v0", b"x", 60) is False  # stale copy
    assert await store.get("k") == b"v1"
    assert await store.replace("k", b"v1", b"v2", 60) is True
    assert await store.get("k") == b"v2"
    assert await store.replace("k", b"v1", b"v3", 60) is False  # the same CAS twice
    assert await store.get("k") == b"v2"
    # Byte-exact: a prefix, an extension or another case is a different value.
    assert await store.replace("k", b"v", b"x", 60) is False
    assert await store.replace("k", b"v2\x00", b"x", 60) is False
    assert await store.replace("k", b"V2", b"x", 60) is False
    assert await store.get("k") == b"v2"
    await store.put("bin", b"\x00\xff\x00", 60)
    assert await store.replace("bin", b"\x00\xff\x00", b"", 60) is True
    assert await store.replace("bin", b"", b"\x00", 60) is True  # empty value matches too
    assert await store.get("bin") == b"\x00"


async def test_replace_never_revives_a_taken_or_deleted_value(store: AsyncStateStore) -> None:
    assert await store.replace("absent", b"", b"x", 60) is False
    assert await store.get("absent") is None
    await store.put("k", b"state", 60)
    assert await store.take("k") == b"state"
    assert await store.replace("k", b"state", b"state2", 60) is False
    assert await store.get("k") is None
    await store.put("d", b"state", 60)
    assert await store.delete("d") is True
    assert await store.replace("d", b"state", b"state2", 60) is False
    assert await store.get("d") is None


async def test_replace_never_revives_an_expired_value(
    store: AsyncStateStore, store_clock: TravelClock
) -> None:
    await store.put("k", b"state", TTL)
    store_clock.advance(PAST_TTL)
    assert await store.replace("k", b"state", b"state2", 60) is False
    assert await store.get("k") is None
    assert await store.put_if_absent("k", b"fresh", 60) is True


async def test_replace_sets_the_new_ttl(store: AsyncStateStore, store_clock: TravelClock) -> None:
    await store.put("shorter", b"a", 60)
    assert await store.replace("shorter", b"a", b"b", TTL) is True
    await store.put("longer", b"a", TTL)
    assert await store.replace("longer", b"a", b"b", 60) is True
    store_clock.advance(PAST_TTL)
    assert await store.get("shorter") is None
    assert await store.get("longer") == b"b"


async def test_keys_are_independent_and_unicode(store: AsyncStateStore) -> None:
    await store.put("ä:ö/ü 1", b"a", 60)
    await store.put("ä:ö/ü 2", b"b", 60)
    assert await store.take("ä:ö/ü 1") == b"a"
    assert await store.get("ä:ö/ü 2") == b"b"
    await store.put("a*", b"glob", 60)
    assert await store.get("ab") is None


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda s: s.put("k", b"v", 0), "bad_ttl"),
        (lambda s: s.put("k", b"v", -1), "bad_ttl"),
        (lambda s: s.put("k", b"v", float("nan")), "bad_ttl"),
        (lambda s: s.put("k", b"v", float("inf")), "bad_ttl"),
        (lambda s: s.put("k", b"v", True), "bad_ttl"),
        (lambda s: s.put("k", b"v", "60"), "bad_ttl"),
        (lambda s: s.put("k", b"v", 1e12), "bad_ttl"),
        (lambda s: s.put_if_absent("k", b"v", 0), "bad_ttl"),
        (lambda s: s.incr("k", 0), "bad_ttl"),
        (lambda s: s.incr("k", 60, 1.5), "bad_amount"),
        (lambda s: s.incr("k", 60, True), "bad_amount"),
        (lambda s: s.incr("k", 60, 2**63), "bad_amount"),
        (lambda s: s.put("", b"v", 60), "bad_key"),
        (lambda s: s.get(""), "bad_key"),
        (lambda s: s.take(b"k"), "bad_key"),
        (lambda s: s.delete(None), "bad_key"),
        (lambda s: s.put("k", "v", 60), "bad_value"),
        (lambda s: s.put("k", bytearray(b"v"), 60), "bad_value"),
        (lambda s: s.put_if_absent("k", None, 60), "bad_value"),
        (lambda s: s.replace("k", b"before", b"v", 0), "bad_ttl"),
        (lambda s: s.replace("k", b"before", b"v", float("nan")), "bad_ttl"),
        (lambda s: s.replace("", b"before", b"v", 60), "bad_key"),
        (lambda s: s.replace("k", "before", b"v", 60), "bad_value"),
        (lambda s: s.replace("k", b"before", "v", 60), "bad_value"),
        (lambda s: s.replace("k", b"before", None, 60), "bad_value"),
    ],
)
async def test_invalid_arguments_rejected_without_change(
    store: AsyncStateStore, call: Callable[[Any], Any], code: str
) -> None:
    await store.put("k", b"before", 60)
    with pytest.raises(InvalidInput) as info:
        await call(store)
    assert info.value.code == code
    assert await store.get("k") == b"before"


# --- concurrency: threads on sync stores ---------------------------------------------


def _run_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def runner(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    return results


def test_threads_take_exactly_once(sync_store: StateStore) -> None:
    sync_store.put("one", b"prize", 60)
    results = _run_threads(50, lambda _: sync_store.take("one"))
    assert results.count(b"prize") == 1
    assert results.count(None) == 49


def test_threads_incr_exact(sync_store: StateStore) -> None:
    results = _run_threads(200, lambda _: sync_store.incr("n", 60))
    assert sorted(results) == list(range(1, 201))  # every value handed out exactly once
    assert sync_store.get("n") == b"200"


def test_threads_put_if_absent_one_winner(sync_store: StateStore) -> None:
    results = _run_threads(50, lambda i: sync_store.put_if_absent("lock", str(i).encode(), 60))
    assert results.count(True) == 1
    assert sync_store.get("lock") == str(results.index(True)).encode()


def test_threads_replace_one_winner(sync_store: StateStore) -> None:
    """50 threads holding the same copy race to write it back: exactly one CAS wins."""
    sync_store.put("flow", b"version-0", 60)
    results = _run_threads(
        50, lambda i: sync_store.replace("flow", b"version-0", f"version-1-{i}".encode(), 60)
    )
    assert results.count(True) == 1
    assert sync_store.get("flow") == f"version-1-{results.index(True)}".encode()


def test_threads_replace_chain_loses_no_update(sync_store: StateStore) -> None:
    """Read-modify-CAS retried until it wins: every increment lands exactly once."""
    sync_store.put("c", b"0", 60)

    def bump(_: int) -> int:
        tries = 0
        while True:
            tries += 1
            current = sync_store.get("c")
            assert current is not None
            if sync_store.replace("c", current, str(int(current) + 1).encode(), 60):
                return tries

    _run_threads(20, bump)
    assert sync_store.get("c") == b"20"


def test_threads_replace_against_take(sync_store: StateStore) -> None:
    """A completion taking the value races stale write-backs: once taken, it stays gone."""
    for round_ in range(5):
        key = f"flow{round_}"
        sync_store.put(key, b"live", 60)

        def work(i: int, key: str = key) -> object:
            if i == 0:
                return sync_store.take(key)
            return sync_store.replace(key, b"live", b"stale-write-back", 60)

        results = _run_threads(20, work)
        winners = [r for r in results[1:] if r is True]
        if results[0] == b"live":  # the take came first: nothing was written back
            assert winners == []
            assert sync_store.get(key) is None
        else:  # one write-back came first; then the take got its value
            assert len(winners) == 1
            assert results[0] == b"stale-write-back"
            assert sync_store.get(key) is None


# --- concurrency: tasks on async stores -----------------------------------------------


async def _run_tasks(n: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = asyncio.Barrier(n)

    async def runner(i: int) -> Any:
        await barrier.wait()
        return await work(i)

    return await asyncio.wait_for(asyncio.gather(*(runner(i) for i in range(n))), 60)


async def test_tasks_take_exactly_once(async_store: AsyncStateStore) -> None:
    await async_store.put("one", b"prize", 60)
    results = await _run_tasks(50, lambda _: async_store.take("one"))
    assert results.count(b"prize") == 1
    assert results.count(None) == 49


async def test_tasks_incr_exact(async_store: AsyncStateStore) -> None:
    results = await _run_tasks(200, lambda _: async_store.incr("n", 60))
    assert sorted(results) == list(range(1, 201))
    assert await async_store.get("n") == b"200"


async def test_tasks_put_if_absent_one_winner(async_store: AsyncStateStore) -> None:
    results = await _run_tasks(50, lambda i: async_store.put_if_absent("lock", str(i).encode(), 60))
    assert results.count(True) == 1
    assert await async_store.get("lock") == str(results.index(True)).encode()


async def test_tasks_replace_one_winner(async_store: AsyncStateStore) -> None:
    await async_store.put("flow", b"version-0", 60)
    results = await _run_tasks(
        50, lambda i: async_store.replace("flow", b"version-0", f"v1-{i}".encode(), 60)
    )
    assert results.count(True) == 1
    assert await async_store.get("flow") == f"v1-{results.index(True)}".encode()


# --- concurrency: processes sharing one SQLite file or Redis database ------------------

PROCESSES = 4
PER_PROCESS = 25


def _process_worker(
    kind: str,
    location: str,
    prefix: str,
    barrier: Any,
    keys: list[str],
    results: Any,
) -> None:
    store: StateStore
    if kind == "sqlite":
        store = SqliteStore(location)
    elif kind == "url":
        store = open_store(location)
    else:
        from authbroker.store.redis import RedisStore

        store = RedisStore.from_url(location, prefix=prefix)
    try:
        order = list(keys)
        random.shuffle(order)
        barrier.wait(timeout=60)
        taken = [key for key in order if store.take(key) is not None]
        counts = [store.incr("counter", 60) for _ in range(PER_PROCESS)]
        results.put((taken, counts))
    finally:
        store.close()


def _run_processes(kind: str, location: str, prefix: str, store: StateStore) -> None:
    keys = [f"k{i}" for i in range(PROCESSES * PER_PROCESS)]
    for key in keys:
        store.put(key, b"v", 60)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_process_worker, args=(kind, location, prefix, barrier, keys, results))
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
    assert all(p.exitcode == 0 for p in procs)
    taken = [key for got, _ in outcomes for key in got]
    counts = [n for _, got in outcomes for n in got]
    assert sorted(taken) == sorted(keys)  # every key taken exactly once, by one process
    assert sorted(counts) == list(range(1, PROCESSES * PER_PROCESS + 1))
    assert store.get("counter") == str(PROCESSES * PER_PROCESS).encode()


def test_processes_share_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    store = SqliteStore(path)
    try:
        _run_processes("sqlite", str(path), "", store)
    finally:
        store.close()


@pytest.mark.redis
def test_processes_share_redis(redis_url: str, redis_prefix: str) -> None:
    from authbroker.store.redis import RedisStore

    store = RedisStore.from_url(redis_url, prefix=redis_prefix)
    try:
        _run_processes("redis", redis_url, redis_prefix, store)
    finally:
        store.close()


@pytest.mark.redis
def test_processes_share_redis_cluster(redis_cluster: Any) -> None:
    url = f"{redis_cluster.url}?prefix=abtest:{secrets.token_hex(8)}:"
    store = open_store(url)
    try:
        _run_processes("url", url, "", store)
    finally:
        store.close()


@pytest.mark.redis
def test_processes_share_redis_sentinel(redis_sentinel: Any) -> None:
    url = f"{redis_sentinel.url}?prefix=abtest:{secrets.token_hex(8)}:"
    store = open_store(url)
    try:
        _run_processes("url", url, "", store)
    finally:
        store.close()


@pytest.mark.postgres
def test_processes_share_postgres(postgres_store_url: str) -> None:
    store = open_store(postgres_store_url)
    try:
        _run_processes("url", postgres_store_url, "", store)
    finally:
        store.close()


# --- stateful parity with a model (R-20) ----------------------------------------------

KEYS = ("a", "b", "c")
_COUNTER = re.compile(rb"0|-?[1-9][0-9]*")


class Model:
    """The documented semantics as a dict of key -> (value, expires_at)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.data: dict[str, tuple[bytes, float]] = {}

    def live(self, key: str) -> bytes | None:
        entry = self.data.get(key)
        if entry is None or entry[1] <= self.now():
            self.data.pop(key, None)
            return None
        return entry[0]

    def put(self, key: str, value: bytes, ttl: float) -> None:
        self.data[key] = (value, self.now() + ttl)

    def take(self, key: str) -> bytes | None:
        value = self.live(key)
        self.data.pop(key, None)
        return value

    def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        if self.live(key) is not None:
            return False
        self.put(key, value, ttl)
        return True

    def incr(self, key: str, ttl: float, amount: int) -> int | None:
        """The new value, or None when the call must fail with bad_counter."""
        value = self.live(key)
        if value is None:
            self.data[key] = (str(amount).encode(), self.now() + ttl)
            return amount
        if not _COUNTER.fullmatch(value):
            return None
        result = int(value) + amount
        if not -(2**63) <= int(value) < 2**63 or not -(2**63) <= result < 2**63:
            return None
        self.data[key] = (str(result).encode(), self.data[key][1])
        return result

    def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        if self.live(key) != expected:
            return False
        self.put(key, value, ttl)
        return True

    def delete(self, key: str) -> bool:
        live = self.live(key) is not None
        self.data.pop(key, None)
        return live


values = st.one_of(
    st.binary(max_size=6),
    st.integers(-3, 3).map(lambda i: str(i).encode()),
    st.sampled_from(
        [
            b"-0",
            b"01",
            b" 1",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"99999999999999999999",
        ]
    ),
)
amounts = st.one_of(st.integers(-3, 3), st.sampled_from([2**63 - 1, -(2**63)]))


class StoreParity(RuleBasedStateMachine):
    """Random operations on a backend and the model; every key must agree after each step."""

    make_store: Callable[[TravelClock], tuple[StateStore, bool]]

    def __init__(self) -> None:
        super().__init__()
        self.clock = TravelClock()
        self.store, self.real_time = type(self).make_store(self.clock)
        self.model = Model(self.clock)

    def ttl(self, data: st.DataObject) -> float:
        if self.real_time:  # Redis keeps real time: TTLs that cannot expire mid-run
            return data.draw(st.sampled_from([60.0, 120.0]))
        return data.draw(st.sampled_from([0.25, 0.5, 1.0, 2.0]))

    @rule(key=st.sampled_from(KEYS), value=values, data=st.data())
    def put(self, key: str, value: bytes, data: st.DataObject) -> None:
        ttl = self.ttl(data)
        self.store.put(key, value, ttl)
        self.model.put(key, value, ttl)

    @rule(key=st.sampled_from(KEYS))
    def get(self, key: str) -> None:
        assert self.store.get(key) == self.model.live(key)

    @rule(key=st.sampled_from(KEYS))
    def take(self, key: str) -> None:
        assert self.store.take(key) == self.model.take(key)

    @rule(key=st.sampled_from(KEYS), value=values, data=st.data())
    def put_if_absent(self, key: str, value: bytes, data: st.DataObject) -> None:
        ttl = self.ttl(data)
        assert self.store.put_if_absent(key, value, ttl) == self.model.put_if_absent(
            key, value, ttl
        )

    @rule(key=st.sampled_from(KEYS), amount=amounts, data=st.data())
    def incr(self, key: str, amount: int, data: st.DataObject) -> None:
        ttl = self.ttl(data)
        expected = self.model.incr(key, ttl, amount)
        if expected is None:
            with pytest.raises(InvalidInput):
                self.store.incr(key, ttl, amount)
        else:
            assert self.store.incr(key, ttl, amount) == expected

    @rule(key=st.sampled_from(KEYS), expected=values, value=values, data=st.data())
    def replace(self, key: str, expected: bytes, value: bytes, data: st.DataObject) -> None:
        ttl = self.ttl(data)
        if data.draw(st.booleans()):  # often compare with what is really there
            expected = self.model.live(key) or expected
        assert self.store.replace(key, expected, value, ttl) == self.model.replace(
            key, expected, value, ttl
        )

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key: str) -> None:
        assert self.store.delete(key) == self.model.delete(key)

    @precondition(lambda self: not self.real_time)
    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def agrees_with_model(self) -> None:
        for key in KEYS:
            assert self.store.get(key) == self.model.live(key)

    def teardown(self) -> None:
        for key in KEYS:
            self.store.delete(key)
        self.store.close()


PARITY_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _run_parity(make_store: Callable[[TravelClock], tuple[StateStore, bool]]) -> None:
    machine = type("Parity", (StoreParity,), {"make_store": staticmethod(make_store)})
    run_state_machine_as_test(machine, settings=PARITY_SETTINGS)


def test_parity_memory() -> None:
    _run_parity(lambda clock: (MemoryStore(now=clock), False))


def test_parity_sqlite() -> None:
    _run_parity(lambda clock: (SqliteStore.temporary(now=clock, synchronous="OFF"), False))


@pytest.mark.redis
def test_parity_redis(redis_url: str) -> None:
    from authbroker.store.redis import RedisStore

    def make(clock: TravelClock) -> tuple[StateStore, bool]:
        clock.real = True
        prefix = f"abtest:{secrets.token_hex(8)}:"
        return RedisStore.from_url(redis_url, prefix=prefix), True

    _run_parity(make)


# --- memory backend specifics ---------------------------------------------------------


def test_memory_sweeps_expired_entries() -> None:
    clock = TravelClock()
    store = MemoryStore(now=clock)
    for i in range(5000):
        store.put(f"k{i}", b"v", 1)
    assert len(store) == 5000
    clock.advance(2)
    store.get("anything")  # any operation sweeps what has expired
    assert len(store) == 0


def test_memory_heap_stays_bounded_under_overwrites() -> None:
    clock = TravelClock()
    store = MemoryStore(now=clock)
    for i in range(20_000):
        store.put("same", str(i).encode(), 3600 + i)
    assert store.get("same") == b"19999"
    assert len(store._heap) <= 2 * 1024 + 2


def test_memory_closed_store_is_unavailable() -> None:
    store = MemoryStore()
    store.close()
    with pytest.raises(StoreUnavailable):
        store.get("k")


# --- SQLite specifics -----------------------------------------------------------------


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    clock = TravelClock()
    path = tmp_path / "persist.db"
    first = SqliteStore(path, now=clock)
    first.put("kept", b"\x00value", 60)
    first.incr("counter", 10, 3)
    first.close()

    second = SqliteStore(path, now=clock)
    try:
        assert second.get("kept") == b"\x00value"
        assert second.incr("counter", 10) == 4
        clock.advance(10)  # the counter's window survived the restart as well
        assert second.get("counter") is None
        assert second.take("kept") == b"\x00value"
    finally:
        second.close()


def test_sqlite_default_clock_is_wall_time(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "wall.db")
    try:
        store.put("k", b"v", TTL)
        assert store.get("k") == b"v"
        time.sleep(PAST_TTL)
        assert store.get("k") is None
    finally:
        store.close()


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    import sqlite3

    store = SqliteStore(tmp_path / "wal.db")
    store.close()
    conn = sqlite3.connect(tmp_path / "wal.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = [row[1] for row in conn.execute("PRAGMA table_info(kv)")]
        assert columns == ["key", "value", "expires_at"]
    finally:
        conn.close()


def test_sqlite_sweep_deletes_expired_rows(tmp_path: Path) -> None:
    clock = TravelClock()
    store = SqliteStore(tmp_path / "sweep.db", now=clock, sweep_every=10)
    try:
        for i in range(30):
            store.put(f"k{i}", b"v", 1)
        clock.advance(2)
        for i in range(10):
            store.put(f"new{i}", b"v", 60)
        conn = store._connect()
        try:
            assert conn.execute("SELECT count(*) FROM kv").fetchone()[0] == 10
        finally:
            conn.close()
    finally:
        store.close()


def test_sqlite_busy_database_is_unavailable_in_time(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "busy.db"
    store = SqliteStore(path, busy_timeout=0.3)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        store.put("k", b"v", 60)
        blocker.execute("BEGIN IMMEDIATE")  # hold the write lock
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            store.take("k")
        assert time.monotonic() - started < 2
        assert info.value.code == "store_unavailable"
        assert store.get("k") == b"v"  # readers still work in WAL; nothing was consumed
        blocker.execute("ROLLBACK")
        assert store.take("k") == b"v"
    finally:
        blocker.close()
        store.close()


def test_sqlite_unusable_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable):
        SqliteStore(path)
    with pytest.raises(StoreUnavailable):
        SqliteStore(tmp_path / "no" / "such" / "dir.db")


def test_sqlite_closed_and_temporary(tmp_path: Path) -> None:
    store = SqliteStore.temporary()
    store.put("k", b"v", 60)
    assert store.path.exists()
    store.close()
    assert not store.path.parent.exists()
    with pytest.raises(StoreUnavailable) as info:
        store.get("k")
    assert info.value.code == "store_closed"
    store.close()  # idempotent


async def test_async_sqlite_runs_off_the_loop(tmp_path: Path) -> None:
    sync = SqliteStore(tmp_path / "loop.db")
    store = AsyncSqliteStore(sync)
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = sync.take

    def spy(key: str) -> bytes | None:
        seen.append(threading.get_ident())
        return original(key)

    sync.take = spy  # type: ignore[method-assign]
    await store.put("k", b"v", 60)
    assert await store.take("k") == b"v"
    assert seen and seen[0] != loop_thread
    await store.aclose()


# --- Redis specifics ------------------------------------------------------------------


@pytest.mark.redis
def test_redis_prefix_namespacing_and_px(redis_url: str, redis_prefix: str) -> None:
    import redis

    from authbroker.store.redis import RedisStore

    mine = RedisStore.from_url(redis_url, prefix=redis_prefix + "a:")
    other = RedisStore.from_url(redis_url, prefix=redis_prefix + "b:")
    raw = redis.Redis.from_url(redis_url)
    try:
        mine.put("k", b"v", 1.5)
        assert other.get("k") is None
        assert raw.get(redis_prefix + "a:k") == b"v"
        assert 1000 < raw.pttl(redis_prefix + "a:k") <= 1500
        mine.incr("c", 2)
        ttl_before = raw.pttl(redis_prefix + "a:c")
        mine.incr("c", 100)
        assert raw.pttl(redis_prefix + "a:c") <= ttl_before  # not extended
    finally:
        raw.close()
        mine.close()
        other.close()


def _blackhole() -> socket.socket:
    """A TCP listener that accepts connections (via the backlog) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server


def test_redis_dead_port_fails_fast() -> None:
    from authbroker.store.redis import RedisStore

    store = RedisStore.from_url(
        "redis://127.0.0.1:1/0", socket_timeout=1.0, socket_connect_timeout=1.0
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        store.take("k")
    assert time.monotonic() - started < 1.0
    assert info.value.code == "store_unavailable"
    store.close()


def test_redis_silent_server_times_out() -> None:
    from authbroker.store.redis import RedisStore

    server = _blackhole()
    port = server.getsockname()[1]
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.incr("k", 60)
        assert time.monotonic() - started < 1.5
    finally:
        store.close()
        server.close()


async def test_async_redis_dead_port_fails_fast() -> None:
    from authbroker.store.redis import AsyncRedisStore

    store = AsyncRedisStore.from_url(
        "redis://127.0.0.1:1/0", socket_timeout=1.0, socket_connect_timeout=1.0
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.take("k")
    assert time.monotonic() - started < 1.0
    await store.aclose()


async def test_async_redis_silent_server_times_out() -> None:
    from authbroker.store.redis import AsyncRedisStore

    server = _blackhole()
    port = server.getsockname()[1]
    store = AsyncRedisStore.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.get("k")
        assert time.monotonic() - started < 1.5
    finally:
        await store.aclose()
        server.close()


# --- URL factory ----------------------------------------------------------------------


def test_open_store_memory_and_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db")  # four slashes: absolute path
    assert isinstance(absolute, SqliteStore)
    assert absolute.path == tmp_path / "abs.db"
    absolute.close()
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rel.db")
    assert isinstance(relative, SqliteStore)
    assert relative.path.resolve() == (tmp_path / "rel.db").resolve()
    relative.close()
    for temporary_url in ["sqlite://", "sqlite:///:memory:"]:
        temporary = open_store(temporary_url)
        assert isinstance(temporary, SqliteStore)
        temporary.put("k", b"v", 60)
        temporary.close()


async def test_open_async_store(tmp_path: Path) -> None:
    memory = open_async_store("memory://")
    assert isinstance(memory, AsyncMemoryStore)
    sqlite = open_async_store(f"sqlite:///{tmp_path}/a.db")
    assert isinstance(sqlite, AsyncSqliteStore)
    await sqlite.put("k", b"v", 60)
    assert await sqlite.take("k") == b"v"
    await sqlite.aclose()


@pytest.mark.redis
async def test_open_store_redis(redis_url: str, redis_prefix: str) -> None:
    from authbroker.store.redis import AsyncRedisStore, RedisStore

    url = f"{redis_url}?prefix={redis_prefix}"
    sync = open_store(url)
    assert isinstance(sync, RedisStore)
    assert sync.prefix == redis_prefix
    sync.put("k", b"v", 60)
    async_store = open_async_store(url)
    assert isinstance(async_store, AsyncRedisStore)
    assert await async_store.take("k") == b"v"
    await async_store.aclose()
    sync.close()
    default = open_store(redis_url)
    assert isinstance(default, RedisStore)
    assert default.prefix == "ab:"
    default.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgres://user:hunter2@db/x",
        "memcached://h",
        "memory://extra",
        "sqlite://host/file.db",
        "sqlite:///file.db?mode=ro",
        "no-scheme",
    ],
)
def test_open_store_rejects_bad_urls(url: str) -> None:
    for opener in (open_store, open_async_store):
        with pytest.raises(ConfigError) as info:
            opener(url)
        assert info.value.key == "store"
        assert "hunter2" not in str(info.value)


def test_store_package_exports_redis_lazily() -> None:
    import authbroker.store as store_package
    from authbroker.store.redis import AsyncRedisStore, RedisStore

    assert store_package.RedisStore is RedisStore
    assert store_package.AsyncRedisStore is AsyncRedisStore
    with pytest.raises(AttributeError):
        _ = store_package.NoSuchStore
