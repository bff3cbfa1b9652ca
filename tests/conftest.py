"""Fixtures shared by the whole suite.

Store fixtures: ``sync_store`` and ``async_store`` run a test once per backend (ids
``memory``, ``sqlite``, ``redis``); both follow the one ``store_backend`` parameter,
so a test using both gets three runs, not nine. ``store_clock`` is the clock the
memory and SQLite stores were given: ``store_clock.advance(s)`` moves it, and on Redis
(which keeps its own time) it sleeps instead, so one test body covers all three.

Redis tests need ``AUTHBROKER_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``).
They skip when it is unreachable, except under ``CI=true``, where they fail. Each test
gets its own random key prefix and deletes only its own keys afterwards.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authbroker.store import (
    AsyncMemoryStore,
    AsyncSqliteStore,
    AsyncStateStore,
    MemoryStore,
    SqliteStore,
    StateStore,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"

STORE_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


class TravelClock:
    """A settable clock; ``advance`` moves it, or sleeps once ``real`` is set."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start
        self.real = False

    def __call__(self) -> float:
        return time.time() if self.real else self.t

    def advance(self, seconds: float) -> None:
        if self.real:
            time.sleep(seconds)
        else:
            self.t += seconds


def probe_service(
    label: str, env_var: str, default: str, check: Callable[[str], object], *, detail: bool = True
) -> tuple[str, str | None]:
    """``(url, problem)``: the service URL from ``env_var`` and why ``check(url)``
    failed (None when it worked). ``detail`` adds the exception text to the problem."""
    url = os.environ.get(env_var, default)
    try:
        check(url)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}" if detail else type(exc).__name__
        return url, f"{label} test server unreachable ({reason})"
    return url, None


def require_service(probe: tuple[str, str | None]) -> str:
    """The probed URL; skips the test when the service is unreachable, but fails it
    under ``CI=true`` (in CI the service tests must run)."""
    url, problem = probe
    if problem is not None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(problem)
        pytest.skip(problem)
    return url


def _ping_redis(url: str) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(
        url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        client.ping()
    finally:
        client.close()


def run_together(
    n: int, fn: Callable[[int], Any], *, catch: tuple[type[BaseException], ...] = (Exception,)
) -> list[Any]:
    """Run ``fn(i)`` for ``i`` in ``range(n)`` in ``n`` threads released at once by a
    barrier (real concurrency for single-use checks). Returns the results in order,
    an exception of a ``catch`` type standing in for its result; any other exception
    is raised here once every thread has finished."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    unexpected: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except catch as exc:
            results[i] = exc
        except BaseException as exc:
            unexpected.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if unexpected:
        raise unexpected[0]
    return results


@pytest.fixture(scope="session")
def _redis_probe() -> tuple[str, str | None]:
    return probe_service("Redis", "AUTHBROKER_TEST_REDIS_URL", DEFAULT_REDIS_URL, _ping_redis)


@pytest.fixture
def redis_url(_redis_probe: tuple[str, str | None]) -> str:
    """URL of the test Redis; skips (fails under CI=true) when it is unreachable."""
    return require_service(_redis_probe)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A fresh key prefix; keys under it are deleted after the test."""
    import redis

    prefix = f"abtest:{secrets.token_hex(8)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def store_clock() -> TravelClock:
    return TravelClock()


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sync_store(
    request: pytest.FixtureRequest, store_backend: str, store_clock: TravelClock, tmp_path: Path
) -> Iterator[StateStore]:
    store: StateStore
    if store_backend == "memory":
        store = MemoryStore(now=store_clock)
    elif store_backend == "sqlite":
        store = SqliteStore(tmp_path / "sync-store.db", now=store_clock)
    else:
        from authbroker.store.redis import RedisStore

        url = request.getfixturevalue("redis_url")
        store_clock.real = True
        store = RedisStore.from_url(url, prefix=request.getfixturevalue("redis_prefix"))
    yield store
    store.close()


@pytest.fixture
async def async_store(
    request: pytest.FixtureRequest, store_backend: str, store_clock: TravelClock, tmp_path: Path
) -> AsyncIterator[AsyncStateStore]:
    store: AsyncStateStore
    if store_backend == "memory":
        store = AsyncMemoryStore(now=store_clock)
    elif store_backend == "sqlite":
        store = AsyncSqliteStore(SqliteStore(tmp_path / "async-store.db", now=store_clock))
    else:
        from authbroker.store.redis import AsyncRedisStore

        url = request.getfixturevalue("redis_url")
        store_clock.real = True
        store = AsyncRedisStore.from_url(url, prefix=request.getfixturevalue("redis_prefix"))
    yield store
    await store.aclose()
