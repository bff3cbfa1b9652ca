"""Fixtures shared by the whole suite.

Store fixtures: ``sync_store`` and ``async_store`` run a test once per backend (ids
``memory``, ``sqlite``, ``redis``, ``redis-cluster``, ``redis-sentinel``,
``postgres``); both follow the one ``store_backend`` parameter, so a test using both
gets one run per backend, not the square. ``store_clock`` is the clock the
memory and SQLite stores were given: ``store_clock.advance(s)`` moves it, and on Redis
(which keeps its own time) it sleeps instead, so one test body covers all three.

Redis tests need ``AUTHBROKER_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``).
They skip when it is unreachable, except under ``CI=true``, where they fail. Each test
gets its own random key prefix and deletes only its own keys afterwards.

``redis_cluster`` and ``redis_sentinel`` are real deployments started once per
session from the ``redis-server`` binary (tests/_redis_ha_servers.py); PostgreSQL
store tests use the server of tests/conftest_pg.py with a fresh table per test. A
missing binary or server skips, and fails under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
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
    open_async_store,
    open_store,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"

STORE_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", id="redis-cluster", marks=pytest.mark.redis),
    pytest.param("redis-sentinel", id="redis-sentinel", marks=pytest.mark.redis),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
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


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_service(probe: tuple[str, str | None]) -> str:
    """The probed URL; skips the test when the service is unreachable, but fails it
    under ``CI=true`` (in CI the service tests must run)."""
    url, problem = probe
    if problem is not None:
        if _in_ci():
            pytest.fail(problem)
        pytest.skip(problem)
    return url


def require_started(started: tuple[Any, str | None]) -> Any:
    """The deployment a session fixture started; skips (fails under ``CI=true``) when
    it could not be started, with the reason."""
    deployment, problem = started
    if problem is not None:
        if _in_ci():
            pytest.fail(problem)
        pytest.skip(problem)
    return deployment


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


@pytest.fixture(scope="session")
def _redis_cluster_started() -> Iterator[tuple[Any, str | None]]:
    from _redis_ha_servers import RedisClusterServers

    binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if binary is None or cli is None:
        yield None, "redis-server and redis-cli are needed for the Redis Cluster tests"
        return
    try:
        servers = RedisClusterServers(binary, cli)
    except Exception as exc:
        yield None, f"the test Redis Cluster did not start ({type(exc).__name__}: {exc})"
        return
    yield servers, None
    servers.close()


@pytest.fixture(scope="session")
def _redis_sentinel_started() -> Iterator[tuple[Any, str | None]]:
    from _redis_ha_servers import RedisSentinelServers

    binary = shutil.which("redis-server")
    if binary is None:
        yield None, "redis-server is needed for the Redis Sentinel tests"
        return
    try:
        servers = RedisSentinelServers(binary)
    except Exception as exc:
        yield None, f"the test Redis Sentinel set did not start ({type(exc).__name__}: {exc})"
        return
    yield servers, None
    servers.close()


@pytest.fixture
def redis_cluster(_redis_cluster_started: tuple[Any, str | None]) -> Any:
    """The session's Redis Cluster (3 primaries, 3 replicas), healthy at the start."""
    servers = require_started(_redis_cluster_started)
    servers.wait_healthy(30)
    return servers


@pytest.fixture
def redis_sentinel(_redis_sentinel_started: tuple[Any, str | None]) -> Any:
    """The session's Sentinel set (primary, replica, 3 sentinels), healthy at the start."""
    servers = require_started(_redis_sentinel_started)
    servers.wait_healthy(30)
    return servers


@pytest.fixture(scope="session")
def _postgres_store_probe() -> tuple[str, str | None]:
    from conftest_pg import DEFAULT_POSTGRES_URL, _select_1

    return probe_service(
        "PostgreSQL", "AUTHBROKER_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL, _select_1, detail=False
    )


@pytest.fixture
def postgres_store_url(_postgres_store_probe: tuple[str, str | None]) -> Iterator[str]:
    """A store URL on the test PostgreSQL with a table of its own, dropped afterwards."""
    import psycopg

    from conftest_pg import _libpq_url

    base = require_service(_postgres_store_probe)
    table = f"abtest_{secrets.token_hex(6)}"
    yield f"{base}{'&' if '?' in base else '?'}table={table}"
    with psycopg.connect(_libpq_url(base), autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')


def ha_url(servers: Any, prefix: str) -> str:
    return f"{servers.url}?prefix={prefix}"


def drop_prefix(client: Any, prefix: str) -> None:
    """Delete the keys under ``prefix`` one by one (works on a cluster too)."""
    for key in list(client.scan_iter(match=prefix + "*", count=500)):
        client.delete(key)


@pytest.fixture
def ha_prefix(store_backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh key prefix on the cluster or Sentinel backend, cleaned up afterwards."""
    prefix = f"abtest:{secrets.token_hex(8)}:"
    yield prefix
    from authbroker.store import open_store

    servers = request.getfixturevalue(store_backend.replace("-", "_"))
    with contextlib.suppress(Exception):
        store: Any = open_store(ha_url(servers, prefix))
        try:
            drop_prefix(store.client, prefix)
        finally:
            store.close()


@pytest.fixture
def store_clock() -> TravelClock:
    return TravelClock()


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _shared_store_url(request: pytest.FixtureRequest, backend: str) -> str:
    """The store URL of a cluster, Sentinel or PostgreSQL backend for this test."""
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_store_url"))
    servers = request.getfixturevalue(backend.replace("-", "_"))
    return ha_url(servers, request.getfixturevalue("ha_prefix"))


@pytest.fixture
def sync_store(
    request: pytest.FixtureRequest, store_backend: str, store_clock: TravelClock, tmp_path: Path
) -> Iterator[StateStore]:
    store: StateStore
    if store_backend == "memory":
        store = MemoryStore(now=store_clock)
    elif store_backend == "sqlite":
        store = SqliteStore(tmp_path / "sync-store.db", now=store_clock)
    elif store_backend != "redis":
        store_clock.real = True
        store = open_store(_shared_store_url(request, store_backend))
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
    elif store_backend != "redis":
        store_clock.real = True
        store = open_async_store(_shared_store_url(request, store_backend))
    else:
        from authbroker.store.redis import AsyncRedisStore

        url = request.getfixturevalue("redis_url")
        store_clock.real = True
        store = AsyncRedisStore.from_url(url, prefix=request.getfixturevalue("redis_prefix"))
    yield store
    await store.aclose()
