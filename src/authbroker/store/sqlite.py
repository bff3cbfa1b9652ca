"""SQLite store: one file, shared by threads and processes on one host, survives restarts.

Concurrency comes from SQLite itself: WAL lets readers run beside the one writer,
``busy_timeout`` makes writers queue instead of failing, and every mutating
operation runs in ``BEGIN IMMEDIATE`` so it holds the write lock from its first
statement. ``take`` is ``DELETE ... RETURNING`` and ``incr`` is an upsert with
``RETURNING`` (both need SQLite >= 3.35), so each primitive is one statement in one
transaction and atomic across threads and processes; ``replace`` (compare-and-set)
is one conditional ``UPDATE ... RETURNING``.

Connections come from a small pool (a thread borrows one per operation), which keeps
the number of open connections bounded by concurrency rather than by how many
threads ever touched the store.

Expiry uses the wall clock (``time.time``) because entries persist across restarts,
and a monotonic clock restarts with the process. Expired rows are ignored at once
and deleted by an occasional bounded sweep.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError, StoreUnavailable
from ._common import bad_counter, check_amount, check_key, check_ttl, check_value
from .atomic import check_program, run_program
from .base import Atomic, AtomicResult

__all__ = ["AsyncSqliteStore", "SqliteStore"]

_MIN_VERSION = (3, 35, 0)  # RETURNING (SQLite release notes, 3.35.0)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv ("
    " key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at)",
)

_PUT = (
    "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)
_GET = "SELECT value FROM kv WHERE key = ? AND expires_at > ?"
_TAKE = "DELETE FROM kv WHERE key = ? RETURNING value, expires_at"
_DELETE = "DELETE FROM kv WHERE key = ? RETURNING expires_at"
# The DO UPDATE runs only when the old row has expired; RETURNING yields a row only
# when a row was inserted or updated, i.e. exactly when this call stored the value.
_PUT_IF_ABSENT = (
    "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at "
    "WHERE kv.expires_at <= ? RETURNING 1"
)
# A live old value must be a canonical 64-bit decimal (text round-trips through
# INTEGER unchanged) and the sum must stay an integer (SQLite turns an overflowing
# integer sum into REAL). Otherwise the WHERE fails, nothing is written and
# RETURNING yields no row: the same rules as Redis INCRBY.
_INCR = (
    "INSERT INTO kv (key, value, expires_at) "
    "VALUES (:key, CAST(CAST(:amount AS TEXT) AS BLOB), :expires_at) "
    "ON CONFLICT (key) DO UPDATE SET "
    " value = CASE WHEN kv.expires_at <= :now THEN excluded.value"
    "  ELSE CAST(CAST(CAST(CAST(kv.value AS TEXT) AS INTEGER) + :amount AS TEXT) AS BLOB) END,"
    " expires_at = CASE WHEN kv.expires_at <= :now THEN excluded.expires_at"
    "  ELSE kv.expires_at END "
    "WHERE kv.expires_at <= :now"
    " OR (CAST(CAST(CAST(kv.value AS TEXT) AS INTEGER) AS TEXT) = CAST(kv.value AS TEXT)"
    "     AND typeof(CAST(CAST(kv.value AS TEXT) AS INTEGER) + :amount) = 'integer') "
    "RETURNING value"
)
# Compare-and-set: the row must be live and hold exactly the expected bytes (BLOB
# comparison is memcmp); RETURNING yields a row only when it was updated.
_REPLACE = (
    "UPDATE kv SET value = ?, expires_at = ? "
    "WHERE key = ? AND expires_at > ? AND value = ? RETURNING 1"
)
_SET_KEEP_TTL = "UPDATE kv SET value = ? WHERE key = ?"
_SWEEP = (
    "DELETE FROM kv WHERE rowid IN "
    "(SELECT rowid FROM kv WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"
)


_T = TypeVar("_T")


async def _in_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """``asyncio.to_thread``, imported on first use: plain ``import authbroker`` stays
    free of asyncio (import time is measured in benchmarks/)."""
    import asyncio

    return await asyncio.to_thread(fn, *args)


def _unavailable(exc: BaseException) -> StoreUnavailable:
    # sqlite3 messages name tables and SQL, never bound values; still, only the class
    # name goes into details.
    return StoreUnavailable(
        "the SQLite store failed", code="store_unavailable", details={"error": type(exc).__name__}
    )


class SqliteStore:
    """:class:`~authbroker.store.base.StateStore` in one SQLite file.

    ``busy_timeout`` (seconds) bounds how long an operation waits for the write lock
    before :class:`~authbroker.errors.StoreUnavailable`. ``synchronous`` defaults to
    ``FULL`` so a consumed one-time value stays consumed after a power loss.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        now: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        synchronous: str = "FULL",
        max_idle_connections: int = 8,
        sweep_every: int = 256,
        sweep_batch: int = 1000,
    ) -> None:
        if sqlite3.sqlite_version_info < _MIN_VERSION:
            raise ConfigError(
                f"SQLite {sqlite3.sqlite_version} is too old; the store needs >= 3.35",
                key="store",
                code="sqlite_too_old",
            )
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigError("synchronous must be OFF, NORMAL, FULL or EXTRA", key="store")
        self.path = Path(path)
        self._now = now
        self._busy_timeout = busy_timeout
        self._write_lock = threading.Lock()
        self._synchronous = synchronous.upper()
        self._max_idle = max_idle_connections
        self._sweep_every = sweep_every
        self._sweep_batch = sweep_batch
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._writes = 0
        self._closed = False
        self._tmpdir: str | None = None
        self._init_db()

    @classmethod
    def temporary(
        cls,
        *,
        now: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        synchronous: str = "FULL",
    ) -> SqliteStore:
        """A store in a fresh temporary file that is deleted on :meth:`close`.

        A plain ``:memory:`` database would be private to one connection, and this
        store uses one connection per concurrent caller.
        """
        tmpdir = tempfile.mkdtemp(prefix="authbroker-store-")
        try:
            store = cls(
                Path(tmpdir) / "store.db",
                now=now,
                busy_timeout=busy_timeout,
                synchronous=synchronous,
            )
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        store._tmpdir = tmpdir
        return store

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r})"

    # --- connections ----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,  # autocommit; transactions are explicit
            check_same_thread=False,  # pooled: used by one thread at a time
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _init_db(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        try:
            # Switching to WAL needs an exclusive lock and may report "locked"
            # without consulting the busy handler when several processes open the
            # file at once; retry within the busy timeout.
            deadline = time.monotonic() + self._busy_timeout
            while True:
                try:
                    conn.execute("PRAGMA journal_mode = WAL").fetchall()
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    break
                except sqlite3.OperationalError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.01)
        except sqlite3.Error as exc:
            conn.close()
            raise _unavailable(exc) from exc
        self._idle.append(conn)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the SQLite store is closed", code="store_closed")
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = self._connect()
            yield conn
        except sqlite3.Error as exc:
            if conn is not None:
                self._discard_or_release(conn)
            raise _unavailable(exc) from exc
        except BaseException:
            if conn is not None:
                self._discard_or_release(conn)
            raise
        else:
            self._release(conn)

    def _discard_or_release(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.rollback()
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            return
        self._release(conn)

    def _release(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        with contextlib.suppress(sqlite3.Error):
            conn.close()

    def _write(
        self, conn: sqlite3.Connection, sql: str, params: tuple[object, ...] | dict[str, object]
    ) -> list[Any]:
        """Run one statement in its own ``BEGIN IMMEDIATE`` transaction.

        Writers of this process queue on a lock first: SQLite's busy handler polls
        with growing sleeps, so hundreds of threads contending for the write lock can
        starve one past the busy timeout under load. Other processes still meet the
        busy timeout, which is what it is for.
        """
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(sql, params).fetchall()
            conn.execute("COMMIT")
        self._maybe_sweep(conn)
        return rows

    def _maybe_sweep(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            self._writes += 1
            if self._writes % self._sweep_every:
                return
        # Best effort: a busy database just sweeps next time.
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_SWEEP, (self._now(), self._sweep_batch))
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.rollback()

    # --- StateStore -----------------------------------------------------------------

    def put(self, key: str, value: bytes, ttl: float) -> None:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        with self._connection() as conn:
            self._write(conn, _PUT, (key, value, self._now() + ttl))

    def get(self, key: str) -> bytes | None:
        key = check_key(key)
        with self._connection() as conn:
            # fetchall finishes the statement, so no read snapshot stays open on the
            # pooled connection.
            rows = conn.execute(_GET, (key, self._now())).fetchall()
        return bytes(rows[0][0]) if rows else None

    def take(self, key: str) -> bytes | None:
        key = check_key(key)
        with self._connection() as conn:
            rows = self._write(conn, _TAKE, (key,))
        # An expired row is deleted as well, but it does not count as taken.
        if not rows or rows[0][1] <= self._now():
            return None
        return bytes(rows[0][0])

    def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        with self._connection() as conn:
            now = self._now()
            rows = self._write(conn, _PUT_IF_ABSENT, (key, value, now + ttl, now))
        return bool(rows)

    def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        key, ttl, amount = check_key(key), check_ttl(ttl), check_amount(amount)
        with self._connection() as conn:
            now = self._now()
            params = {"key": key, "amount": amount, "expires_at": now + ttl, "now": now}
            rows = self._write(conn, _INCR, params)
        if not rows:
            raise bad_counter()
        return int(bytes(rows[0][0]))

    def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        key, ttl = check_key(key), check_ttl(ttl)
        expected, value = check_value(expected), check_value(value)
        with self._connection() as conn:
            now = self._now()
            rows = self._write(conn, _REPLACE, (value, now + ttl, key, now, expected))
        return bool(rows)

    def delete(self, key: str) -> bool:
        key = check_key(key)
        with self._connection() as conn:
            now = self._now()
            rows = self._write(conn, _DELETE, (key,))
        return bool(rows) and bool(rows[0][0] > now)

    def atomic(self, program: Atomic) -> AtomicResult:
        """The program in one ``BEGIN IMMEDIATE`` transaction: it holds the write
        lock from its first read, so no other writer interleaves; a failed guard or
        an error rolls everything back."""
        program = check_program(program)
        with self._connection() as conn, self._write_lock:
            now = self._now()
            conn.execute("BEGIN IMMEDIATE")
            try:

                def read(key: str) -> bytes | None:
                    rows = conn.execute(_GET, (key, now)).fetchall()
                    return bytes(rows[0][0]) if rows else None

                result, writes = run_program(program, read)
                for w in writes:
                    if w.value is None:
                        conn.execute(_DELETE, (w.key,)).fetchall()
                    elif w.ttl is None:
                        conn.execute(_SET_KEEP_TTL, (w.value, w.key)).fetchall()
                    else:
                        conn.execute(_PUT, (w.key, w.value, now + w.ttl))
                conn.execute("COMMIT")
            except BaseException:
                conn.rollback()
                raise
        return result

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


class AsyncSqliteStore:
    """:class:`~authbroker.store.base.AsyncStateStore` running a :class:`SqliteStore`
    in worker threads (``asyncio.to_thread``), so the event loop never waits on disk
    or on the write lock.

    A cancelled call may still complete in its thread (a ``take`` may consume a
    value nobody receives); for single-use artifacts that errs on the safe side.
    """

    def __init__(self, store: SqliteStore) -> None:
        self.sync = store

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        now: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        synchronous: str = "FULL",
    ) -> AsyncSqliteStore:
        """Open the file (blocking, once at start-up) and wrap it."""
        return cls(SqliteStore(path, now=now, busy_timeout=busy_timeout, synchronous=synchronous))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.sync!r})"

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        await _in_thread(self.sync.put, key, value, ttl)

    async def get(self, key: str) -> bytes | None:
        return await _in_thread(self.sync.get, key)

    async def take(self, key: str) -> bytes | None:
        return await _in_thread(self.sync.take, key)

    async def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        return await _in_thread(self.sync.put_if_absent, key, value, ttl)

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        return await _in_thread(self.sync.incr, key, ttl, amount)

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        return await _in_thread(self.sync.replace, key, expected, value, ttl)

    async def delete(self, key: str) -> bool:
        return await _in_thread(self.sync.delete, key)

    async def atomic(self, program: Atomic) -> AtomicResult:
        return await _in_thread(self.sync.atomic, program)

    async def aclose(self) -> None:
        await _in_thread(self.sync.close)
