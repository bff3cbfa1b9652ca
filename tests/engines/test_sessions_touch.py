"""The idle timeout (OWASP ASVS V7.3.1; NIST SP 800-63B-4 §2.2.3) stays exact while
``last_seen`` is written back at most once per min(30 s, idle/60), not per request."""

from __future__ import annotations

from typing import Any

from authbroker.engines.sessions import SessionManager, SessionPolicy
from authbroker.store.base import Atomic, AtomicResult
from authbroker.store.memory import MemoryStore
from identity_support import bank_identity

KEYS = ("t" * 40,)


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


class Writes:
    """A memory store counting the writes the session check makes."""

    def __init__(self, clock: Clock) -> None:
        self.inner = MemoryStore(now=clock)
        self.puts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, key: str, value: bytes, ttl: float) -> None:
        self.puts += 1
        self.inner.put(key, value, ttl)

    def atomic(self, program: Atomic) -> AtomicResult:
        return self.inner.atomic(program)


def _manager(idle: float) -> tuple[SessionManager, Clock, Writes]:
    clock = Clock()
    store = Writes(clock)
    policy = SessionPolicy(idle_timeout=idle)
    return SessionManager(store, KEYS, policy=policy, now=clock), clock, store  # type: ignore[arg-type]


def test_short_idle_timeout_is_not_cut_short_by_the_write_interval() -> None:
    """With a 60 s idle timeout, a request 29 s after login and the next 59 s
    later: never idle for 60 s, so the session lives. The touch is written after
    1 s (idle/60); a fixed 30 s interval skipped the write at 29 s and let the
    session die although it was in use."""
    manager, clock, _ = _manager(60)
    cookie = manager.engine.cookie_value(manager.login("user-1", bank_identity()))
    for step in (29, 59, 29, 59, 59):
        clock.t += step
        assert manager.load(cookie) is not None
    clock.t += 60  # idle for the whole timeout: gone
    assert manager.load(cookie) is None


def test_touch_written_once_per_interval_not_per_request() -> None:
    manager, clock, store = _manager(600)  # interval: min(30, 600/60) = 10 s
    cookie = manager.engine.cookie_value(manager.login("user-1", bank_identity()))
    store.puts = 0
    for _ in range(20):  # 20 requests within 7.5 s: no write at all
        clock.t += 0.375
        assert manager.load(cookie) is not None
    assert store.puts == 0
    clock.t += 2.5  # 10 s since the last write: one write
    assert manager.load(cookie) is not None
    assert store.puts == 1
    clock.t += 0.1
    assert manager.load(cookie) is not None
    assert store.puts == 1
