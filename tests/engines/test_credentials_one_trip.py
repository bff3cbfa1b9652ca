"""A password login's store round trips: the per-IP ``incr``, one reservation program
and one settlement program whose keys share the account's hash tag (so they also run
on a Redis Cluster); a second reservation program only beyond the free failures.
Old code: 8 round trips per successful login, 8 for a first failure, 10 later on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_credentials import EMAIL, PASSWORD, Env, session
from test_sessions_one_trip import Counting

from authbroker.credential_store import CredentialStore
from authbroker.engines.credentials import ThrottlePolicy
from authbroker.engines.credentials.throttle import Attempt, Throttle
from authbroker.errors import AccessDenied, Locked, RateLimited
from authbroker.kernel import SyncRuntime
from authbroker.store import StateStore
from authbroker.store.base import Atomic, AtomicResult
from conftest import TravelClock

IP = "198.51.100.23"
POLICY = ThrottlePolicy(
    free_failures=2, base_delay=1.0, max_delay=4.0, lock_after=4, lock_duration=60.0
)


class Programs(Counting):
    """Counts calls and keeps each program's keys."""

    def __init__(self, inner: StateStore) -> None:
        super().__init__(inner)
        self.keys: list[set[str]] = []

    def atomic(self, program: Atomic) -> AtomicResult:
        self.keys.append({step.key for step in program.steps})
        return super().atomic(program)


@pytest.fixture
def env(tmp_path: Path, sync_store: StateStore, store_clock: TravelClock) -> Any:
    db = CredentialStore(f"sqlite:///{tmp_path}/cred.db", now=store_clock)
    counting = Programs(sync_store)
    e = Env(db, store_clock, state=counting, throttle=POLICY)  # type: ignore[arg-type]
    e.manager.enroll(session(store_clock), EMAIL, PASSWORD)  # type: ignore[arg-type]
    yield e, counting
    db.close()


def _wrong(e: Env) -> type[Exception]:
    try:
        e.manager.login(EMAIL, "not the password at all", None, IP)
    except (AccessDenied, RateLimited, Locked) as exc:
        return type(exc)
    raise AssertionError("a wrong password logged in")


def test_success_is_four_round_trips_two_of_them_programs(env: Any) -> None:
    e, counting = env
    counting.calls.clear()
    e.manager.login(EMAIL, PASSWORD, None, IP)
    assert counting.calls == ["incr", "atomic", "atomic", "incr"]
    counting.calls.clear()
    e.manager.login(EMAIL, PASSWORD, None, None)  # no address: no per-IP counter
    assert counting.calls == ["atomic", "atomic"]
    account = e.manager.engine.login_attempt(EMAIL, None).account
    for keys in counting.keys:  # one hash slot per program
        assert keys and all(k.startswith(f"pwd:acct:{{{account}}}:") for k in keys)


def test_failures_cost_three_round_trips_then_four(env: Any, store_clock: TravelClock) -> None:
    e, counting = env
    for _ in range(POLICY.free_failures):
        counting.calls.clear()
        assert _wrong(e) is AccessDenied
        assert counting.calls == ["incr", "atomic", "atomic"]
    store_clock.advance(POLICY.base_delay + 0.1)  # sleeps on the real-clock backends
    counting.calls.clear()
    assert _wrong(e) is AccessDenied  # beyond the free failures: a second program
    assert counting.calls == ["incr", "atomic", "atomic", "atomic"]
    counting.calls.clear()
    assert _wrong(e) is RateLimited  # within the delay: refused, the IP given back
    assert counting.calls == ["incr", "atomic", "atomic", "incr"]


def test_settlements_of_an_earlier_generation_change_nothing(
    sync_store: StateStore, store_clock: TravelClock
) -> None:
    """An attempt still in flight when a right password (or a reset) starts a new
    generation: its late failure, lock or refund must not touch the new counters
    (no negative ``busy`` letting two attempts run at once, no stray lock)."""
    policy = ThrottlePolicy(free_failures=1, base_delay=0.1, lock_after=2, hard_limit=5)
    throttle, run = Throttle(policy, store_clock), SyncRuntime(store=sync_store).run
    attempt = Attempt("a" * 40, None)
    first = run(throttle.before_gen(attempt))
    assert run(throttle.failed_gen(attempt, first)) is None
    store_clock.advance(policy.base_delay + 0.05)
    late = run(throttle.before_gen(attempt))  # the lock_after-th, still in flight
    run(throttle.reset_gen(attempt))  # the user unlocks from the web service
    assert run(throttle.failed_gen(attempt, late)) is None  # no lock written
    run(throttle.before_undo_gen(attempt, late))
    for what in ("fails", "busy", "next", "total", "lock"):
        assert sync_store.get(f"pwd:acct:{{{attempt.account}}}:{what}") is None, what
    # The new generation starts with its free failure and nothing in flight.
    fresh = run(throttle.before_gen(attempt))
    assert (fresh.n, fresh.total) == (1, 1)
