"""The atomic-program contract (:mod:`authbroker.store.atomic`) on every backend.

Same fixtures as tests/store/test_store_contract.py: memory, SQLite, Redis, Redis Cluster,
Redis Sentinel and PostgreSQL, each sync (through ``SyncAsAsync``) and async. Keys
of one program carry one ``{hash tag}`` so the programs also run on a Cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from test_store_contract import PAST_TTL, TTL, SyncAsAsync

from authbroker.errors import InvalidInput
from authbroker.store import AsyncStateStore, StateStore
from authbroker.store.atomic import MAX_PROGRAM_STEPS
from authbroker.store.base import (
    Atomic,
    Delete,
    Get,
    Incr,
    Put,
    PutIfAbsent,
    Replace,
    Require,
    Reserve,
    Take,
)
from conftest import TravelClock, run_together


@pytest.fixture(params=["sync", "async"])
def store(request: pytest.FixtureRequest, store_backend: str) -> Iterator[AsyncStateStore]:
    if request.param == "sync":
        yield SyncAsAsync(request.getfixturevalue("sync_store"))
    else:
        yield request.getfixturevalue("async_store")


def _p(*steps: object) -> Atomic:
    return Atomic(tuple(steps))  # type: ignore[arg-type]


async def test_every_step_returns_what_the_primitive_returns(store: AsyncStateStore) -> None:
    await store.put("{t}a", b"one", 60)
    await store.put("{t}c", b"old", 60)
    result = await store.atomic(
        _p(
            Get("{t}a"),
            Get("{t}missing"),
            Incr("{t}n", 60),
            Incr("{t}n", 60, 4),
            PutIfAbsent("{t}a", b"x", 60),
            PutIfAbsent("{t}b", b"new", 60),
            Replace("{t}c", b"nope", b"x", 60),
            Replace("{t}c", b"old", b"\x00\xff", 60),
            Take("{t}a"),
            Take("{t}a"),
            Delete("{t}b"),
            Delete("{t}b"),
            Put("{t}d", b"put", 60),
            Get("{t}d"),
        )
    )
    assert result.ok and result.failed is None
    assert result.values == (
        b"one",
        None,
        1,
        5,
        False,
        True,
        False,
        True,
        b"one",
        None,
        True,
        False,
        None,
        b"put",
    )
    assert await store.get("{t}a") is None
    assert await store.get("{t}b") is None
    assert await store.get("{t}c") == b"\x00\xff"
    assert await store.get("{t}n") == b"5"
    assert await store.get("{t}d") == b"put"


async def test_failed_guard_writes_nothing(store: AsyncStateStore) -> None:
    await store.put("{t}keep", b"v", 60)
    await store.incr("{t}cnt", 60, 2)
    result = await store.atomic(
        _p(
            Take("{t}keep"),
            Put("{t}new", b"x", 60),
            Incr("{t}cnt", 60),
            Reserve("{t}cnt", 60, limit=3),
            Put("{t}never", b"x", 60),
        )
    )
    assert not result.ok and result.failed == 3
    assert result.values == (b"v", None, 3, 4)
    # Nothing of the program was kept: the take, the put and both counter steps.
    assert await store.get("{t}keep") == b"v"
    assert await store.get("{t}new") is None
    assert await store.get("{t}cnt") == b"2"
    assert await store.get("{t}never") is None


async def test_require_present_absent_and_equal(store: AsyncStateStore) -> None:
    await store.put("{t}k", b"val", 60)
    ok = await store.atomic(
        _p(Require("{t}k"), Require("{t}k", equals=b"val"), Require("{t}z", present=False))
    )
    assert ok.ok and ok.values == (b"val", b"val", None)
    for guard in (Require("{t}z"), Require("{t}k", present=False), Require("{t}k", equals=b"v")):
        refused = await store.atomic(_p(Put("{t}w", b"x", 60), guard))
        assert not refused.ok and refused.failed == 1
        assert await store.get("{t}w") is None


async def test_keep_guard_keeps_the_writes_before_it(store: AsyncStateStore) -> None:
    """``Require(keep=True)``: a failed keep guard applies what the steps before it
    wrote (a wrong code is counted by the program that refuses it) and nothing after
    it; a held one lets the program run on; a plain guard still keeps nothing."""
    await store.put("{t}mac", b"right", 60)
    await store.put("{t}gone", b"v", 60)
    refused = await store.atomic(
        _p(
            Reserve("{t}att", 60, limit=5),
            Take("{t}gone"),
            Require("{t}mac", equals=b"wrong", keep=True),
            Put("{t}used", b"1", 60),
        )
    )
    assert not refused.ok and refused.failed == 2
    assert refused.values == (1, b"v", b"right")
    assert await store.get("{t}att") == b"1"
    assert await store.get("{t}gone") is None
    assert await store.get("{t}used") is None
    for guard in (
        Require("{t}absent", keep=True),
        Require("{t}mac", present=False, keep=True),
    ):
        again = await store.atomic(_p(Incr("{t}att", 60), guard, Put("{t}used", b"1", 60)))
        assert not again.ok and again.failed == 1
    assert await store.get("{t}att") == b"3"
    assert await store.get("{t}used") is None
    held = await store.atomic(
        _p(
            Reserve("{t}att", 60, limit=5),
            Require("{t}mac", equals=b"right", keep=True),
            Put("{t}used", b"1", 60),
        )
    )
    assert held.ok and held.values == (4, b"right", None)
    assert await store.get("{t}used") == b"1"
    # A keep guard after a failed reservation is never reached: nothing is kept.
    over = await store.atomic(
        _p(Reserve("{t}att", 60, limit=4), Require("{t}mac", equals=b"x", keep=True))
    )
    assert not over.ok and over.failed == 0
    assert await store.get("{t}att") == b"4"


async def test_bad_keep_flag_is_refused(store: AsyncStateStore) -> None:
    with pytest.raises(InvalidInput):
        await store.atomic(_p(Put("{t}x", b"1", 60), Require("{t}x", keep="yes")))  # type: ignore[arg-type]
    assert await store.get("{t}x") is None


async def test_program_sees_its_own_writes(store: AsyncStateStore) -> None:
    result = await store.atomic(
        _p(
            Put("{t}a", b"1", 60),
            Require("{t}a", equals=b"1"),
            Incr("{t}a", 60),
            Take("{t}a"),
            Require("{t}a", present=False),
            Incr("{t}a", 60, 7),
        )
    )
    assert result.ok and result.values == (None, b"1", 2, b"2", None, 7)
    assert await store.get("{t}a") == b"7"


async def test_counter_steps_keep_the_window_and_new_ones_get_the_ttl(
    store: AsyncStateStore, store_clock: TravelClock
) -> None:
    await store.incr("{t}old", TTL)
    await store.atomic(_p(Incr("{t}old", 60), Reserve("{t}new", TTL, limit=5)))
    store_clock.advance(PAST_TTL)
    # The live counter kept its original expiry; the created one got the step's TTL.
    assert await store.get("{t}old") is None
    assert await store.get("{t}new") is None


async def test_expired_values_are_absent_in_a_program(
    store: AsyncStateStore, store_clock: TravelClock
) -> None:
    await store.put("{t}gone", b"x", TTL)
    store_clock.advance(PAST_TTL)
    result = await store.atomic(_p(Require("{t}gone", present=False), Incr("{t}gone", 60)))
    assert result.ok and result.values == (None, 1)


async def test_reserving_nothing_bounds_a_stored_time(
    store: AsyncStateStore, store_clock: TravelClock
) -> None:
    """``Reserve(amount=0, limit=now_ms)``: a stored time (the login throttle's
    ``next``) refuses the program while it is later than ``limit``, and writes
    nothing: an absent key stays absent, a present one keeps its value and expiry."""
    await store.put("{t}next", b"1000", TTL)
    late = await store.atomic(_p(Put("{t}w", b"x", 60), Reserve("{t}next", 60, 999, 0)))
    assert not late.ok and late.failed == 1 and late.values == (None, 1000)
    assert await store.get("{t}w") is None
    due = await store.atomic(_p(Reserve("{t}next", 60, 1000, 0), Reserve("{t}none", 60, 0, 0)))
    assert due.ok and due.values == (1000, 0)
    assert await store.get("{t}none") is None  # nothing created
    store_clock.advance(PAST_TTL)
    assert await store.get("{t}next") is None  # its expiry was not renewed


async def test_bad_programs_raise_and_change_nothing(store: AsyncStateStore) -> None:
    await store.put("{t}text", b"abc", 60)
    bad: list[Atomic] = [
        _p(),
        _p(*([Get("{t}a")] * (MAX_PROGRAM_STEPS + 1))),
        _p(Put("{t}a", b"x", 60), Get("")),
        _p(Put("{t}a", b"x", 0)),
        _p(Put("{t}a", "str", 60)),
        _p(Put("{t}a", b"x", 60), Incr("{t}n", 60, 2**60)),
        _p(Put("{t}a", b"x", 60), Require("{t}a", present=False, equals=b"x")),
        _p(Put("{t}a", b"x", 60), "not a step"),
        _p(Put("{t}a", b"x", 60), Incr("{t}text", 60)),  # not a counter
    ]
    for program in bad:
        with pytest.raises(InvalidInput):
            await store.atomic(program)
    assert await store.get("{t}a") is None
    assert await store.get("{t}text") == b"abc"


async def test_reprs_hide_values() -> None:
    step = Require("k", equals=b"secret-bytes")
    assert "secret" not in repr(step)
    assert "secret" not in repr(Put("k", b"secret-bytes", 1))


def _reserve_program(i: int) -> Atomic:
    # The OTP verify shape: per-challenge, per-link and per-user reservations.
    return _p(
        Reserve("{u}ch", 60, limit=5),
        Reserve("{u}link", 60, limit=10),
        Reserve("{u}user", 60, limit=20),
    )


def test_threads_reservations_exact(sync_store: StateStore) -> None:
    results = run_together(40, lambda i: sync_store.atomic(_reserve_program(i)))
    assert sum(r.ok for r in results) == 5
    assert sorted(r.failed for r in results if not r.ok) == [0] * 35
    assert sync_store.get("{u}ch") == b"5"
    assert sync_store.get("{u}link") == b"5"
    assert sync_store.get("{u}user") == b"5"


def test_threads_take_in_program_exactly_once(sync_store: StateStore) -> None:
    sync_store.put("{p}prize", b"p", 60)
    program = _p(Require("{p}used", present=False), Take("{p}prize"), Put("{p}used", b"1", 60))
    results = run_together(30, lambda _: sync_store.atomic(program))
    assert [r.values[1] for r in results if r.ok] == [b"p"]
    assert sum(not r.ok for r in results) == 29


def test_threads_program_against_primitives(sync_store: StateStore) -> None:
    """Programs and plain increments on the same counter lose no update."""

    def work(i: int) -> object:
        if i % 2:
            return sync_store.incr("{m}n", 60)
        return sync_store.atomic(_p(Incr("{m}n", 60), Incr("{m}other", 60)))

    run_together(40, work)
    assert sync_store.get("{m}n") == b"40"
    assert sync_store.get("{m}other") == b"20"


async def test_tasks_reservations_exact(async_store: AsyncStateStore) -> None:
    results = await asyncio.wait_for(
        asyncio.gather(*(async_store.atomic(_reserve_program(i)) for i in range(40))), 60
    )
    assert sum(r.ok for r in results) == 5
    assert await async_store.get("{u}ch") == b"5"
    assert await async_store.get("{u}user") == b"5"


@pytest.mark.redis
def test_redis_refuses_keys_of_two_slots(redis_url: str, redis_prefix: str) -> None:
    from authbroker.store.redis import RedisStore

    store = RedisStore.from_url(redis_url, prefix=redis_prefix)
    try:
        with pytest.raises(InvalidInput) as err:
            store.atomic(_p(Put("{a}x", b"1", 60), Put("{b}y", b"1", 60)))
        assert err.value.code == "cross_slot"
        assert store.get("{a}x") is None
    finally:
        store.close()


@pytest.mark.redis
def test_redis_program_is_one_round_trip(redis_url: str, redis_prefix: str) -> None:
    import redis as redis_lib

    from authbroker.store.redis import RedisStore

    store = RedisStore.from_url(redis_url, prefix=redis_prefix)
    probe = redis_lib.Redis.from_url(redis_url)
    try:
        store.atomic(_p(Get("{r}a")))  # loads the script
        before = probe.info("stats")["total_commands_processed"]
        store.atomic(_reserve_program(0))
        after = probe.info("stats")["total_commands_processed"]
        # EVALSHA counts as one command plus the calls the script makes; what matters
        # is that the client sent one: the calls are server-side (3 GET, 3 SET).
        assert after - before <= 1 + 6 + 1  # + the INFO itself
    finally:
        probe.close()
        store.close()
