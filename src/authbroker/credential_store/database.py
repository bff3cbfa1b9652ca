"""Engine, transactions and migrations of the credential store (no table logic)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from time import monotonic
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError, IntegrityError, SQLAlchemyError

from ..errors import AuthBrokerError, ConfigError
from .schema import (
    COMPONENT,
    FAIL_CLOSED,
    READ_ONLY,
    SCHEMA_VERSION,
    sqlite_immediate,
    tables,
    unavailable,
)


class StoreBase:
    """The database plumbing the table mixins share: ``engine``, ``t`` (tables),
    ``_tx`` and the migrations; :class:`~authbroker.credential_store.CredentialStore`
    adds the tables' operations."""

    def __init__(
        self,
        url: str | Engine,
        *,
        schema: str | None = None,
        prefix: str = "ab_",
        migrate: bool = True,
        now: Callable[[], float] = time.time,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not prefix.replace("_", "").isalnum() and prefix:
            raise ConfigError("table prefix must be alphanumeric or _", key="credentials.prefix")
        self.now = now
        if isinstance(url, Engine):
            self.engine = url
        else:
            try:
                options = dict(engine_options or {})
                ping_when_idle = "pool_pre_ping" not in options
                if url.startswith("sqlite"):
                    options.setdefault("connect_args", {"check_same_thread": False})
                self.engine = sa.create_engine(url, **options)
            except (SQLAlchemyError, ImportError, ValueError) as exc:
                raise ConfigError(
                    "cannot create the credential database engine",
                    key="credentials.database_url",
                    details={"error": type(exc).__name__},
                ) from exc
            if ping_when_idle:
                _ping_after_idle(self.engine)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            sqlite_immediate(self.engine)
            self._sqlite_wal()
        self.metadata = sa.MetaData(schema=schema)
        self.t = tables(self.metadata, prefix)
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"CredentialStore(dialect={self.dialect!r})"

    def close(self) -> None:
        self.engine.dispose()

    # --- plumbing ---------------------------------------------------------------------

    @contextmanager
    def _tx(
        self, *, integrity_errors: bool = False, fail_closed: bool = False
    ) -> Iterator[Connection]:
        """One write transaction; database failures become :class:`StoreUnavailable`.

        With ``integrity_errors`` a constraint violation propagates as is, for a
        caller that gives it a meaning (``email_taken``). ``fail_closed`` marks a
        write whose loss in a power failure only makes a user sign in again (a new
        login's device and token family): on SQLite it commits with ``synchronous =
        NORMAL`` (no fsync of its own; durable against a process crash, see
        docs/mobile-credentials.md "Durability"). Everything else commits with FULL.
        """
        try:
            with self.engine.connect() as conn:
                if fail_closed and self.dialect == "sqlite":
                    conn.execution_options(**{FAIL_CLOSED: True})
                try:
                    with conn.begin():
                        yield conn
                finally:
                    if fail_closed and self.dialect == "sqlite":
                        # On the driver connection: through SQLAlchemy it would
                        # auto-begin a transaction, inside which SQLite refuses it.
                        driver: Any = conn.connection.driver_connection
                        driver.execute("PRAGMA synchronous = FULL")
        except AuthBrokerError:
            raise
        except IntegrityError as exc:
            if integrity_errors:
                raise
            raise unavailable(exc) from exc
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc

    @contextmanager
    def _one_statement(self) -> Iterator[Connection]:
        """One statement without an explicit transaction: on SQLite no ``BEGIN
        IMMEDIATE`` (no write lock, no commit), on PostgreSQL autocommit (no
        BEGIN/COMMIT round trips). A single statement is atomic on its own; use it
        for single SELECTs everywhere and, on PostgreSQL only, for a write that is
        one statement (the login's insert)."""
        try:
            with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    conn.execution_options(**{READ_ONLY: True})
                else:
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                # No explicit begin/commit: the connection's implicit unit of work is
                # rolled back on close, which costs nothing in autocommit mode.
                yield conn
        except AuthBrokerError:
            raise
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc

    def _sqlite_wal(self) -> None:
        """Write-ahead log: one fsync per commit instead of the rollback journal's
        several, and readers never block the writer. The mode is stored in the file."""
        if self.engine.url.database in (None, "", ":memory:"):
            return
        try:
            # On the driver connection: SQLAlchemy would wrap it in our BEGIN
            # IMMEDIATE, and the journal mode cannot change inside a transaction.
            raw = self.engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute("PRAGMA journal_mode = WAL")
                cur.close()
            finally:
                raw.close()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise unavailable(exc) from exc

    def migrate(self) -> int:
        """Bring the schema to :data:`SCHEMA_VERSION`; return the version found before.

        Steps are idempotent (``CREATE ... IF NOT EXISTS`` via ``checkfirst``), so two
        instances migrating at the same moment both succeed; a concurrent insert of
        the version row is tolerated.
        """
        sv = self.t["schema_version"]
        try:
            sv.create(self.engine, checkfirst=True)
        except SQLAlchemyError:
            # Another instance may have created it between check and create.
            try:
                sv.create(self.engine, checkfirst=True)
            except SQLAlchemyError as exc:
                raise unavailable(exc) from exc
        with self._tx() as conn:
            found = conn.execute(
                sa.select(sv.c.version).where(sv.c.component == COMPONENT)
            ).scalar_one_or_none()
        current = int(found or 0)
        if current > SCHEMA_VERSION:
            raise ConfigError(
                f"credential schema version {current} is newer than this authbroker "
                f"({SCHEMA_VERSION}); upgrade authbroker",
                key="credentials.database_url",
                code="schema_too_new",
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            _MIGRATIONS[version](self)
        if current < SCHEMA_VERSION:
            with self._tx(integrity_errors=True) as conn:
                if found is None:
                    try:
                        with conn.begin_nested():
                            conn.execute(
                                sv.insert().values(
                                    component=COMPONENT,
                                    version=SCHEMA_VERSION,
                                    applied_at=self.now(),
                                )
                            )
                    except IntegrityError:
                        pass  # a concurrent instance recorded it
                else:
                    conn.execute(
                        sv.update()
                        .where(sv.c.component == COMPONENT, sv.c.version < SCHEMA_VERSION)
                        .values(version=SCHEMA_VERSION, applied_at=self.now())
                    )
        return current

    def schema_version(self) -> int:
        sv = self.t["schema_version"]
        with self._tx() as conn:
            found = conn.execute(
                sa.select(sv.c.version).where(sv.c.component == COMPONENT)
            ).scalar_one_or_none()
        return int(found or 0)

    def _create_v1(self) -> None:
        names = ("credentials", "devices", "families", "tokens")
        for name in names:
            try:
                self.t[name].create(self.engine, checkfirst=True)
            except SQLAlchemyError:
                try:
                    self.t[name].create(self.engine, checkfirst=True)
                except SQLAlchemyError as exc:
                    raise unavailable(exc) from exc

    def drop_all(self) -> None:
        """Drop every table of this store (tests, uninstall)."""
        try:
            self.metadata.drop_all(self.engine)
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc


#: A pooled connection idle this long (seconds) is pinged before use.
PING_AFTER_IDLE = 5.0
_IDLE_SINCE = "authbroker_idle_since"


def _ping_after_idle(engine: Engine) -> None:
    """Ping a pooled connection on checkout only when it sat idle ``PING_AFTER_IDLE``.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more network round
    trip per database call, a quarter of a PostgreSQL login's database time. A
    connection that was in use moments ago is alive as far as anything can tell;
    one that sat idle may have been closed by the server, a proxy or a firewall
    (the case pre-ping exists for: SQLAlchemy, "Dealing with Disconnects",
    https://docs.sqlalchemy.org/en/20/core/pooling.html#pool-disconnects). A failed
    ping raises ``DisconnectionError`` from the checkout event, on which the pool
    discards the connection and checks out another (same documentation, "Custom /
    Legacy Pessimistic Ping"). A server lost within the idle period fails the
    statements in flight then, as it would mid-request anyway.
    """
    dialect = engine.dialect

    @sa.event.listens_for(engine, "checkin")
    def _idle(_dbapi: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping(dbapi: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or monotonic() - since < PING_AFTER_IDLE:
            return  # fresh, or in use moments ago
        try:
            dialect.do_ping(dbapi)
        except dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("pooled connection failed its ping") from exc


_MIGRATIONS: dict[int, Callable[[StoreBase], None]] = {
    1: StoreBase._create_v1,
}
