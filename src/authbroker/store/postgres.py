"""PostgreSQL store: the state-store primitives in one table, for shops that run only
PostgreSQL (and get its replication and failover for free).

Each primitive is one SQL statement in its own autocommit transaction, and
PostgreSQL's row locks make it atomic under READ COMMITTED (the PostgreSQL manual,
"Transaction Isolation", https://www.postgresql.org/docs/current/transaction-iso.html):

* ``take`` is ``DELETE ... RETURNING``: a second concurrent DELETE of the row waits
  for the first, re-checks, finds the row gone and returns nothing.
* ``put_if_absent`` is ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <expired>``:
  an expired row may be overwritten, a live one never; RETURNING yields a row only
  when this call wrote (https://www.postgresql.org/docs/current/sql-insert.html).
* ``incr`` is the same upsert adding to the counter, with the Redis INCRBY rules
  (canonical 64-bit decimal, no overflow) in the WHERE clause, and a fixed window:
  the expiry is set when the counter is created and kept afterwards.
* ``replace`` (compare-and-set) is ``UPDATE ... WHERE value = expected AND live``;
  a concurrent writer makes the UPDATE re-check its WHERE on the new row version.

Expiry is the ``expires_at`` column, compared with the *server's* clock
(``statement_timestamp()``) in every statement, so application hosts with skewed
clocks agree; expired rows are removed by a bounded sweep every ``sweep_every``
writes (``FOR UPDATE SKIP LOCKED``, so sweepers never queue behind each other).
Keys are ``prefix + key`` in one table (``authbroker_state`` by default) created if
absent under an advisory lock, so processes starting together do not race.

Connections: psycopg 3 with ``psycopg_pool`` rather than SQLAlchemy. The store runs
seven fixed statements and needs nothing from an ORM or dialect layer; psycopg_pool
is psycopg's own pool with the same API for threads and asyncio, checks a connection
before lending it (a server restart costs no failed call) and bounds the wait for a
free connection, which is how the store fails fast with
:class:`~authbroker.errors.StoreUnavailable`. A ``statement_timeout`` bounds every
statement. Only ``get``, ``put`` and ``delete`` are retried after a connection error
(:func:`~authbroker.store._common.retry_idempotent`).

This module imports ``psycopg`` and ``psycopg_pool``; install ``authbroker[sql]``.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import psycopg
import psycopg_pool
from psycopg import sql

from ..errors import ConfigError, StoreUnavailable
from ._common import (
    bad_counter,
    check_amount,
    check_key,
    check_ttl,
    check_value,
    retry_idempotent,
    retry_idempotent_async,
)
from .atomic import Write, check_program, run_program
from .base import Atomic, AtomicResult

__all__ = ["DEFAULT_TABLE", "AsyncPostgresStore", "PostgresStore", "parse_postgres_url"]

DEFAULT_PREFIX = "ab:"
DEFAULT_TABLE = "authbroker_state"
# Unquoted-style identifiers only; 40 characters leave room for the index name
# suffix within PostgreSQL's 63-byte limit.
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,39}")
_OWN_PARAMS = frozenset({"prefix", "table", "schema"})
#: pg_advisory_xact_lock key serialising CREATE TABLE IF NOT EXISTS between processes.
_DDL_LOCK = 0x61757468  # "auth"
_RETRY_ON: tuple[type[BaseException], ...] = (psycopg.OperationalError,)

_NOW = "statement_timestamp()"
_EXPIRES = _NOW + " + make_interval(secs => %(ttl)s)"
# {t} is the table, {now} the server clock, {expires} now + ttl (composed with
# psycopg.sql, identifiers quoted; every value is a bound parameter).
_STATEMENTS = {
    "put": (
        "INSERT INTO {t} (key, value, expires_at) VALUES (%(key)s, %(value)s, {expires}) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
    ),
    "get": "SELECT value FROM {t} WHERE key = %(key)s AND expires_at > {now}",
    # An expired row is deleted too, but it does not count as taken.
    "take": "DELETE FROM {t} WHERE key = %(key)s RETURNING value, expires_at > {now}",
    "delete": "DELETE FROM {t} WHERE key = %(key)s RETURNING expires_at > {now}",
    "put_if_absent": (
        "INSERT INTO {t} AS old (key, value, expires_at) VALUES (%(key)s, %(value)s, {expires}) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
        " expires_at = excluded.expires_at WHERE old.expires_at <= {now} RETURNING 1"
    ),
    # encode(..., 'escape') never fails on arbitrary bytes and leaves ASCII digits as
    # they are; the regex is Redis' canonical integer form (no "-0", no leading zeros,
    # no spaces) and the numeric sum must fit in 64 bits. Otherwise the WHERE is
    # false, nothing is written and RETURNING yields no row.
    "incr": (
        "INSERT INTO {t} AS old (key, value, expires_at) VALUES (%(key)s,"
        " convert_to(%(amount)s::bigint::text, 'SQL_ASCII'), {expires}) "
        "ON CONFLICT (key) DO UPDATE SET"
        " value = CASE WHEN old.expires_at <= {now} THEN excluded.value"
        "  ELSE convert_to((encode(old.value, 'escape')::numeric + %(amount)s)::text,"
        " 'SQL_ASCII') END,"
        " expires_at = CASE WHEN old.expires_at <= {now} THEN excluded.expires_at"
        "  ELSE old.expires_at END "
        "WHERE old.expires_at <= {now} OR ("
        " encode(old.value, 'escape') ~ '^(0|-?[1-9][0-9]{{0,18}})$'"
        " AND encode(old.value, 'escape')::numeric + %(amount)s"
        "  BETWEEN -9223372036854775808 AND 9223372036854775807) "
        "RETURNING value"
    ),
    "replace": (
        "UPDATE {t} SET value = %(value)s, expires_at = {expires} "
        "WHERE key = %(key)s AND expires_at > {now} AND value = %(expected)s RETURNING 1"
    ),
    # An atomic program (store/atomic.py) first makes sure each of its keys has a row
    # (an already-expired placeholder counts as absent everywhere), then locks them all
    # in key order: every primitive on those keys, even an insert of a key the
    # program saw absent, waits for the program's commit.
    "atomic_rows": (
        "INSERT INTO {t} (key, value, expires_at)"
        " SELECT k, ''::bytea, 'epoch'::timestamptz FROM unnest(%(keys)s::text[]) AS k"
        " ORDER BY k ON CONFLICT (key) DO NOTHING"
    ),
    "atomic_lock": (
        "SELECT key, value, expires_at > {now} FROM {t}"
        " WHERE key = ANY(%(keys)s::text[]) ORDER BY key FOR UPDATE"
    ),
    "set_keep_ttl": "UPDATE {t} SET value = %(value)s WHERE key = %(key)s",
    "sweep": (
        "DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE expires_at <= {now}"
        " ORDER BY expires_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED)"
    ),
}
_DDL = (
    "CREATE TABLE IF NOT EXISTS {t} ("
    " key text PRIMARY KEY, value bytea NOT NULL, expires_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at)",
)


def parse_postgres_url(url: str) -> tuple[str, dict[str, str]]:
    """``(libpq URL, {prefix, table, schema})`` for a ``postgresql[+psycopg]://`` URL.

    authbroker's own query parameters are removed; the rest (``sslmode``,
    ``sslrootcert``, ``target_session_attrs``...) is left for libpq.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in {"postgresql", "postgresql+psycopg"}:
        raise ConfigError("expected a postgresql:// store URL", key="store")
    base, _, query = rest.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    own = [(name, value) for name, value in params if name in _OWN_PARAMS]
    if len({name for name, _ in own}) != len(own):
        raise ConfigError("prefix, table and schema may each be given once", key="store")
    rest_query = urlencode([(name, value) for name, value in params if name not in _OWN_PARAMS])
    return "postgresql://" + base + ("?" + rest_query if rest_query else ""), dict(own)


def _identifier(value: str | None, name: str) -> str | None:
    if value is not None and _IDENT.fullmatch(value) is None:
        raise ConfigError(
            "must be a lower-case SQL identifier of at most 40 characters", key=f"store.{name}"
        )
    return value


def _timeout(value: float, name: str) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError("must be a positive number of seconds", key=f"store.{name}")
    return float(value)


def _unavailable(exc: BaseException) -> StoreUnavailable:
    # psycopg messages may quote the connection string or SQL; only the class goes out.
    return StoreUnavailable(
        "the PostgreSQL store failed",
        code="store_unavailable",
        details={"error": type(exc).__name__},
    )


@contextlib.contextmanager
def _translate() -> Iterator[None]:
    try:
        yield
    except (psycopg.Error, OSError) as exc:
        raise _unavailable(exc) from exc


class _Config:
    """Everything both stores derive from their arguments: statements and pool options."""

    def __init__(
        self,
        conninfo: str,
        *,
        prefix: str,
        table: str,
        schema: str | None,
        timeout: float,
        statement_timeout: float,
        max_connections: int,
        sweep_every: int,
        sweep_batch: int,
    ) -> None:
        if not isinstance(prefix, str):
            raise ConfigError("the key prefix must be a string", key="store.prefix")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise ConfigError("must be an integer", key="store.max_connections")
        if max_connections < 1:
            raise ConfigError("must be at least 1", key="store.max_connections")
        table_name = _identifier(table, "table")
        assert table_name is not None
        schema = _identifier(schema, "schema")
        self.conninfo = conninfo
        self.prefix = prefix
        self.timeout = _timeout(timeout, "timeout")
        self.statement_timeout_ms = max(
            1, math.ceil(_timeout(statement_timeout, "statement_timeout") * 1000)
        )
        self.max_connections = max_connections
        self.sweep_every = max(1, int(sweep_every))
        self.sweep_batch = max(1, int(sweep_batch))
        self.where = f"{schema}.{table_name}" if schema else table_name
        ident = sql.Identifier(schema, table_name) if schema else sql.Identifier(table_name)
        self.statements = {
            name: sql.SQL(text).format(t=ident, now=sql.SQL(_NOW), expires=sql.SQL(_EXPIRES))
            for name, text in _STATEMENTS.items()
        }
        self.ddl = [
            sql.SQL(text).format(t=ident, index=sql.Identifier(table_name + "_expires_at"))
            for text in _DDL
        ]
        self.lock = threading.Lock()
        self.writes = 0

    def pool_options(self) -> dict[str, Any]:
        """The options of both pools (``ConnectionPool`` and ``AsyncConnectionPool``
        take the same ones), so the sync and async stores connect alike."""
        return {
            "conninfo": self.conninfo,
            "min_size": 1,
            "max_size": self.max_connections,
            "timeout": self.timeout,
            # psycopg_pool retries a failed connection attempt in the background with
            # exponential backoff (1 s, 2 s, 4 s...) for reconnect_timeout (5 minutes
            # by default) and grows the pool by one attempt at a time, so after an
            # outage the server was back while every call still waited for the next
            # scheduled attempt (up to as long as the outage again). Bounded here, a
            # failed attempt is given up after about a second and the next call starts
            # a fresh one. At least 1 s, the pool's own first retry delay
            # (psycopg_pool AttemptWithBackoff.INITIAL_DELAY), so an attempt is still
            # retried once before it is dropped.
            # https://www.psycopg.org/psycopg3/docs/api/pool.html
            "reconnect_timeout": max(self.timeout, 1.0),
            "kwargs": {
                "autocommit": True,
                "connect_timeout": max(1, math.ceil(self.timeout)),
                # Every statement is bounded; a stalled server fails the call in time.
                "options": f"-c statement_timeout={self.statement_timeout_ms}",
            },
            "open": False,
            "name": "authbroker-store",
        }

    def sweep_due(self) -> bool:
        with self.lock:
            self.writes += 1
            return self.writes % self.sweep_every == 0


def _program_keys(program: Atomic, prefix: str) -> list[str]:
    return sorted({prefix + str(getattr(step, "key", "")) for step in program.steps})


def _program_run(
    program: Atomic, prefix: str, rows: list[Any]
) -> tuple[AtomicResult, list[tuple[str, dict[str, Any]]]]:
    """Evaluate a program over its locked rows; the statements that apply it."""
    live = {str(row[0]): bytes(row[1]) for row in rows if row[2]}
    result, writes = run_program(program, lambda key: live.get(prefix + key))
    return result, [_write_statement(prefix, w) for w in writes]


def _write_statement(prefix: str, w: Write) -> tuple[str, dict[str, Any]]:
    if w.value is None:
        return "delete", {"key": prefix + w.key}
    if w.ttl is None:
        return "set_keep_ttl", {"key": prefix + w.key, "value": w.value}
    return "put", {"key": prefix + w.key, "value": w.value, "ttl": w.ttl}


def _counter(rows: list[Any]) -> int:
    if not rows:
        raise bad_counter()
    return int(bytes(rows[0][0]))


class PostgresStore:
    """:class:`~authbroker.store.base.StateStore` in one PostgreSQL table.

    ``timeout`` bounds the connect and the wait for a free pooled connection,
    ``statement_timeout`` each statement; both raise
    :class:`~authbroker.errors.StoreUnavailable` when exceeded.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        table: str = DEFAULT_TABLE,
        schema: str | None = None,
        timeout: float = 2.0,
        statement_timeout: float = 5.0,
        max_connections: int = 16,
        sweep_every: int = 256,
        sweep_batch: int = 1000,
    ) -> None:
        self._cfg = _Config(
            conninfo,
            prefix=prefix,
            table=table,
            schema=schema,
            timeout=timeout,
            statement_timeout=statement_timeout,
            max_connections=max_connections,
            sweep_every=sweep_every,
            sweep_batch=sweep_batch,
        )
        self.prefix = self._cfg.prefix
        self._pool = psycopg_pool.ConnectionPool(
            check=psycopg_pool.ConnectionPool.check_connection, **self._cfg.pool_options()
        )
        with _translate():
            self._pool.open(wait=False)
        try:
            self._create_table()
        except BaseException:
            self._pool.close()
            raise

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresStore:
        """A store for a ``postgresql[+psycopg]://`` URL; ``prefix``, ``table`` and
        ``schema`` may be given as query parameters."""
        conninfo, own = parse_postgres_url(url)
        return cls(conninfo, **{**own, **options})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table={self._cfg.where!r}, prefix={self.prefix!r})"

    def _create_table(self) -> None:
        with _translate(), self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
            for statement in self._cfg.ddl:
                conn.execute(statement)

    def _run(self, name: str, params: dict[str, Any], *, write: bool = True) -> list[Any]:
        with self._pool.connection() as conn:
            cursor = conn.execute(self._cfg.statements[name], params)
            rows = cursor.fetchall() if cursor.description is not None else []
        if write and self._cfg.sweep_due():
            self._sweep()
        return rows

    def _sweep(self) -> None:
        # Best effort: a failed sweep is retried at the next interval.
        with contextlib.suppress(psycopg.Error), self._pool.connection() as conn:
            conn.execute(self._cfg.statements["sweep"], {"batch": self._cfg.sweep_batch})

    def put(self, key: str, value: bytes, ttl: float) -> None:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        params = {"key": self.prefix + key, "value": value, "ttl": ttl}
        with _translate():
            retry_idempotent(lambda: self._run("put", params), _RETRY_ON)

    def get(self, key: str) -> bytes | None:
        params = {"key": self.prefix + check_key(key)}
        with _translate():
            rows = retry_idempotent(lambda: self._run("get", params, write=False), _RETRY_ON)
        return bytes(rows[0][0]) if rows else None

    def take(self, key: str) -> bytes | None:
        params = {"key": self.prefix + check_key(key)}
        with _translate():
            rows = self._run("take", params)
        return bytes(rows[0][0]) if rows and rows[0][1] else None

    def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        with _translate():
            rows = self._run(
                "put_if_absent", {"key": self.prefix + key, "value": value, "ttl": ttl}
            )
        return bool(rows)

    def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        key, ttl, amount = check_key(key), check_ttl(ttl), check_amount(amount)
        with _translate():
            rows = self._run("incr", {"key": self.prefix + key, "ttl": ttl, "amount": amount})
        return _counter(rows)

    def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        key, ttl = check_key(key), check_ttl(ttl)
        expected, value = check_value(expected), check_value(value)
        params = {"key": self.prefix + key, "expected": expected, "value": value, "ttl": ttl}
        with _translate():
            return bool(self._run("replace", params))

    def delete(self, key: str) -> bool:
        params = {"key": self.prefix + check_key(key)}
        with _translate():
            rows = retry_idempotent(lambda: self._run("delete", params), _RETRY_ON)
        return bool(rows) and bool(rows[0][0])

    def atomic(self, program: Atomic) -> AtomicResult:
        """The program in one transaction holding row locks on all its keys."""
        program = check_program(program)
        keys = {"keys": _program_keys(program, self.prefix)}
        statements = self._cfg.statements
        with _translate(), self._pool.connection() as conn, conn.transaction():
            conn.execute(statements["atomic_rows"], keys)
            rows = conn.execute(statements["atomic_lock"], keys).fetchall()
            result, writes = _program_run(program, self.prefix, rows)
            for name, params in writes:
                conn.execute(statements[name], params)
        return result

    def close(self) -> None:
        with _translate():
            self._pool.close()


class AsyncPostgresStore:
    """:class:`~authbroker.store.base.AsyncStateStore` in one PostgreSQL table, on
    psycopg's asyncio connections (``psycopg_pool.AsyncConnectionPool``).

    Same options and statements as :class:`PostgresStore`. The pool opens and the
    table is created on first use, inside the event loop; create one store per loop.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        table: str = DEFAULT_TABLE,
        schema: str | None = None,
        timeout: float = 2.0,
        statement_timeout: float = 5.0,
        max_connections: int = 16,
        sweep_every: int = 256,
        sweep_batch: int = 1000,
    ) -> None:
        self._cfg = _Config(
            conninfo,
            prefix=prefix,
            table=table,
            schema=schema,
            timeout=timeout,
            statement_timeout=statement_timeout,
            max_connections=max_connections,
            sweep_every=sweep_every,
            sweep_batch=sweep_batch,
        )
        self.prefix = self._cfg.prefix
        self._pool: psycopg_pool.AsyncConnectionPool[Any] | None = None
        self._ready = False
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AsyncPostgresStore:
        conninfo, own = parse_postgres_url(url)
        return cls(conninfo, **{**own, **options})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table={self._cfg.where!r}, prefix={self.prefix!r})"

    async def _ensure(self) -> psycopg_pool.AsyncConnectionPool[Any]:
        if self._closed:
            raise StoreUnavailable("the PostgreSQL store is closed", code="store_closed")
        if self._pool is None:
            pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
                check=psycopg_pool.AsyncConnectionPool.check_connection,
                **self._cfg.pool_options(),
            )
            self._pool = pool
            await pool.open(wait=False)
        if not self._ready:
            # Concurrent first calls may both run the DDL; the advisory lock and
            # IF NOT EXISTS make that harmless.
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                for statement in self._cfg.ddl:
                    await conn.execute(statement)
            self._ready = True
        return self._pool

    async def _run(self, name: str, params: dict[str, Any], *, write: bool = True) -> list[Any]:
        pool = await self._ensure()
        async with pool.connection() as conn:
            cursor = await conn.execute(self._cfg.statements[name], params)
            rows = await cursor.fetchall() if cursor.description is not None else []
        if write and self._cfg.sweep_due():
            with contextlib.suppress(psycopg.Error):
                async with pool.connection() as conn:
                    await conn.execute(
                        self._cfg.statements["sweep"], {"batch": self._cfg.sweep_batch}
                    )
        return rows

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        params = {"key": self.prefix + key, "value": value, "ttl": ttl}
        with _translate():
            await retry_idempotent_async(lambda: self._run("put", params), _RETRY_ON)

    async def get(self, key: str) -> bytes | None:
        params = {"key": self.prefix + check_key(key)}
        with _translate():
            rows = await retry_idempotent_async(
                lambda: self._run("get", params, write=False), _RETRY_ON
            )
        return bytes(rows[0][0]) if rows else None

    async def take(self, key: str) -> bytes | None:
        params = {"key": self.prefix + check_key(key)}
        with _translate():
            rows = await self._run("take", params)
        return bytes(rows[0][0]) if rows and rows[0][1] else None

    async def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        params = {"key": self.prefix + key, "value": value, "ttl": ttl}
        with _translate():
            return bool(await self._run("put_if_absent", params))

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        key, ttl, amount = check_key(key), check_ttl(ttl), check_amount(amount)
        params = {"key": self.prefix + key, "ttl": ttl, "amount": amount}
        with _translate():
            rows = await self._run("incr", params)
        return _counter(rows)

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        key, ttl = check_key(key), check_ttl(ttl)
        expected, value = check_value(expected), check_value(value)
        params = {"key": self.prefix + key, "expected": expected, "value": value, "ttl": ttl}
        with _translate():
            return bool(await self._run("replace", params))

    async def delete(self, key: str) -> bool:
        params = {"key": self.prefix + check_key(key)}
        with _translate():
            rows = await retry_idempotent_async(lambda: self._run("delete", params), _RETRY_ON)
        return bool(rows) and bool(rows[0][0])

    async def atomic(self, program: Atomic) -> AtomicResult:
        """See :meth:`PostgresStore.atomic`."""
        program = check_program(program)
        keys = {"keys": _program_keys(program, self.prefix)}
        statements = self._cfg.statements
        with _translate():
            pool = await self._ensure()
            async with pool.connection() as conn, conn.transaction():
                await conn.execute(statements["atomic_rows"], keys)
                cursor = await conn.execute(statements["atomic_lock"], keys)
                result, writes = _program_run(program, self.prefix, await cursor.fetchall())
                for name, params in writes:
                    await conn.execute(statements[name], params)
        return result

    async def aclose(self) -> None:
        self._closed = True
        if self._pool is not None:
            with _translate():
                await self._pool.close()
