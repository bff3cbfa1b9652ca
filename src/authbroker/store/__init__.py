"""State stores: the atomic primitives of :mod:`authbroker.store.base` on real backends.

Pick a backend with a URL (``AUTHBROKER_STORE_URL``):

``memory://``
    :class:`MemoryStore`, one process only; state is lost on restart.
``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db``
    :class:`SqliteStore`, one host; threads and processes share the file. The path
    follows the SQLAlchemy convention: what follows ``sqlite:///`` is the file name,
    so an absolute path has four slashes. ``sqlite://`` (or ``sqlite:///:memory:``)
    is a temporary file deleted on close.
``redis://[user:password@]host:port/db``, ``rediss://...``, ``unix:///path.sock``
    The Redis stores (``authbroker[redis]`` extra), shared by every host. A
    ``prefix`` query parameter replaces the default key prefix ``ab:``.
``redis+cluster://host:port,host:port/``, ``rediss+cluster://...``
    :class:`RedisClusterStore` on Redis Cluster (any reachable nodes as seeds).
``redis+sentinel://host:port,host:port/service_name/db``, ``rediss+sentinel://...``
    :class:`RedisSentinelStore` on the primary Redis Sentinel names for the service
    (sentinel addresses in the URL). See :mod:`authbroker.store.redis_ha`.
``postgresql://user@host/db``, ``postgresql+psycopg://...``
    :class:`PostgresStore` (``authbroker[sql]`` extra): one table in PostgreSQL;
    ``prefix``, ``table`` and ``schema`` query parameters, everything else goes to
    libpq. See :mod:`authbroker.store.postgres`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError
from .base import AsyncStateStore, StateStore
from .memory import AsyncMemoryStore, MemoryStore

if TYPE_CHECKING:
    from .postgres import AsyncPostgresStore, PostgresStore
    from .redis import AsyncRedisStore, RedisStore
    from .redis_ha import (
        AsyncRedisClusterStore,
        AsyncRedisSentinelStore,
        RedisClusterStore,
        RedisSentinelStore,
    )
    from .sqlite import AsyncSqliteStore, SqliteStore

__all__ = [
    "AsyncMemoryStore",
    "AsyncPostgresStore",
    "AsyncRedisClusterStore",
    "AsyncRedisSentinelStore",
    "AsyncRedisStore",
    "AsyncSqliteStore",
    "AsyncStateStore",
    "MemoryStore",
    "PostgresStore",
    "RedisClusterStore",
    "RedisSentinelStore",
    "RedisStore",
    "SqliteStore",
    "StateStore",
    "open_async_store",
    "open_store",
]

_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_REDIS_HA_SCHEMES = frozenset(
    {"redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel"}
)
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgresql+psycopg"})

#: Classes imported on first use, so ``redis`` and ``psycopg`` stay optional and
#: ``sqlite3`` is loaded only by apps that use it.
_LAZY = {
    "SqliteStore": "sqlite",
    "AsyncSqliteStore": "sqlite",
    "RedisStore": "redis",
    "AsyncRedisStore": "redis",
    "RedisClusterStore": "redis_ha",
    "AsyncRedisClusterStore": "redis_ha",
    "RedisSentinelStore": "redis_ha",
    "AsyncRedisSentinelStore": "redis_ha",
    "PostgresStore": "postgres",
    "AsyncPostgresStore": "postgres",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _scheme(url: object) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError("the store URL must look like scheme://...", key="store")
    return url.split("://", 1)[0].lower()


def _sqlite_path(url: str) -> str | None:
    """The file name in a ``sqlite://`` URL, or None for a temporary database."""
    rest = url.split("://", 1)[1]
    if "?" in rest or "#" in rest:
        raise ConfigError("sqlite store URLs take no query or fragment", key="store")
    if rest in {"", "/:memory:"}:
        return None
    if not rest.startswith("/") or rest == "/":
        raise ConfigError("expected sqlite:///relative.db or sqlite:////absolute.db", key="store")
    return unquote(rest[1:])


def _redis_target(url: str) -> tuple[str, str]:
    """The URL without authbroker's own ``prefix`` parameter, and the prefix."""
    from .redis import DEFAULT_PREFIX

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    if len(prefixes) > 1:
        raise ConfigError("the prefix parameter is given more than once", key="store")
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefixes[0] if prefixes else DEFAULT_PREFIX


def _import_redis() -> None:
    try:
        import redis  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "a Redis store needs the redis package: install authbroker[redis]",
            key="store",
            code="missing_extra",
        ) from exc


def _import_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "a PostgreSQL store needs psycopg and psycopg-pool: install authbroker[sql]",
            key="store",
            code="missing_extra",
        ) from exc


def open_store(url: str) -> StateStore:
    """A blocking store for ``url`` (see the module documentation)."""
    scheme = _scheme(url)
    if scheme == "memory":
        if url.split("://", 1)[1]:
            raise ConfigError("memory:// takes no host, path or options", key="store")
        return MemoryStore()
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        path = _sqlite_path(url)
        return SqliteStore.temporary() if path is None else SqliteStore(path)
    if scheme in _REDIS_SCHEMES:
        _import_redis()
        from .redis import RedisStore

        target, prefix = _redis_target(url)
        return RedisStore.from_url(target, prefix=prefix)
    if scheme in _REDIS_HA_SCHEMES:
        _import_redis()
        from .redis_ha import RedisClusterStore, RedisSentinelStore, parse_ha_url

        ha = parse_ha_url(url)
        return RedisClusterStore(ha) if ha.kind == "cluster" else RedisSentinelStore(ha)
    if scheme in _POSTGRES_SCHEMES:
        _import_psycopg()
        from .postgres import PostgresStore

        return PostgresStore.from_url(url)
    # The URL itself may carry a password; only the scheme is reported.
    raise ConfigError(f"unknown store scheme {scheme!r}", key="store", code="unknown_scheme")


def open_async_store(url: str) -> AsyncStateStore:
    """A non-blocking store for ``url``; opening a SQLite file blocks briefly."""
    scheme = _scheme(url)
    if scheme == "memory":
        if url.split("://", 1)[1]:
            raise ConfigError("memory:// takes no host, path or options", key="store")
        return AsyncMemoryStore()
    if scheme == "sqlite":
        from .sqlite import AsyncSqliteStore, SqliteStore

        path = _sqlite_path(url)
        return AsyncSqliteStore(SqliteStore.temporary() if path is None else SqliteStore(path))
    if scheme in _REDIS_SCHEMES:
        _import_redis()
        from .redis import AsyncRedisStore

        target, prefix = _redis_target(url)
        return AsyncRedisStore.from_url(target, prefix=prefix)
    if scheme in _REDIS_HA_SCHEMES:
        _import_redis()
        from .redis_ha import AsyncRedisClusterStore, AsyncRedisSentinelStore, parse_ha_url

        ha = parse_ha_url(url)
        if ha.kind == "cluster":
            return AsyncRedisClusterStore(ha)
        return AsyncRedisSentinelStore(ha)
    if scheme in _POSTGRES_SCHEMES:
        _import_psycopg()
        from .postgres import AsyncPostgresStore

        return AsyncPostgresStore.from_url(url)
    raise ConfigError(f"unknown store scheme {scheme!r}", key="store", code="unknown_scheme")
