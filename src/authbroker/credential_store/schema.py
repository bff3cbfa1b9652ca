"""The credential tables, their version row and the SQLite connection settings."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ..errors import StoreUnavailable

#: Version of the schema this code writes (see ``database._MIGRATIONS``).
SCHEMA_VERSION = 1
COMPONENT = "mobile-credentials"


def tables(metadata: sa.MetaData, prefix: str) -> dict[str, sa.Table]:
    t: dict[str, sa.Table] = {}
    t["schema_version"] = sa.Table(
        f"{prefix}schema_version",
        metadata,
        sa.Column("component", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("applied_at", sa.Float, nullable=False),
    )
    t["credentials"] = sa.Table(
        f"{prefix}credentials",
        metadata,
        sa.Column("user_id", sa.String(255), primary_key=True),
        # NULL once removed, so the address can be enrolled again (UNIQUE allows
        # several NULLs on SQLite and PostgreSQL).
        sa.Column("email", sa.String(320), nullable=True, unique=True),
        sa.Column("password_hash", sa.String(512), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("changed_at", sa.Float, nullable=False),
    )
    t["devices"] = sa.Table(
        f"{prefix}devices",
        metadata,
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False, index=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    t["families"] = sa.Table(
        f"{prefix}refresh_families",
        metadata,
        sa.Column("family_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False, index=True),
        sa.Column("device_id", sa.String(64), nullable=True, index=True),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("revoke_reason", sa.String(32), nullable=True),
    )
    t["tokens"] = sa.Table(
        f"{prefix}refresh_tokens",
        metadata,
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("family_id", sa.String(64), nullable=False, index=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("used", sa.Integer, nullable=False, default=0),
        sa.Column("used_at", sa.Float, nullable=True),
    )
    return t


def unavailable(exc: BaseException) -> StoreUnavailable:
    # Driver messages can quote SQL parameters (e-mail addresses, hashes): only the
    # exception class goes into the error.
    return StoreUnavailable(
        "the credential database failed",
        code="store_unavailable",
        details={"error": type(exc).__name__},
    )


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = FULL")
    finally:
        cur.close()


#: Execution option of a read-only unit of work (``StoreBase._one_statement``): no write lock.
READ_ONLY = "authbroker_read_only"
#: Execution option of a write whose loss on power failure fails closed
#: (``StoreBase._tx(fail_closed=True)``): committed with ``synchronous = NORMAL``.
FAIL_CLOSED = "authbroker_fail_closed"


def _sqlite_on_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get(READ_ONLY):
        # One SELECT is atomic on its own (the connection is in autocommit mode):
        # no BEGIN, no write lock taken, no commit.
        return
    if options.get(FAIL_CLOSED):
        # Per connection and outside any transaction, so it is set before BEGIN;
        # StoreBase puts FULL back when the unit of work ends.
        conn.exec_driver_sql("PRAGMA synchronous = NORMAL")
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_immediate(engine: Engine) -> None:
    """Make every SQLite transaction ``BEGIN IMMEDIATE`` with a busy timeout.

    pysqlite's own deferred BEGIN lets two readers both try to upgrade to a writer,
    and one of them fails with "database is locked" instead of waiting; taking the
    write lock up front makes contenders queue (SQLite docs, "Transactions").
    Registered once per engine, so several stores may share one engine.
    """
    if not event.contains(engine, "connect", _sqlite_on_connect):
        event.listen(engine, "connect", _sqlite_on_connect)
    if not event.contains(engine, "begin", _sqlite_on_begin):
        event.listen(engine, "begin", _sqlite_on_begin)
