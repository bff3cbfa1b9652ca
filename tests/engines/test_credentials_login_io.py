"""Login's database work: the credential lookup takes no write lock and costs no
commit; a login commits once, and only that fail-closed commit skips its own fsync
on SQLite (docs/mobile-credentials.md "Durability"); a pooled connection in use
moments ago is not pinged before the next call."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest
from sqlalchemy import event
from test_credentials import EMAIL, PASSWORD, Env, session

from authbroker.credential_store import CredentialStore, database
from authbroker.engines.credentials.policy import canonical_email
from conftest_pg import Clock, _libpq_url

pytest_plugins = ["conftest_pg"]


def _commits(store: CredentialStore) -> list[str]:
    seen: list[str] = []
    event.listen(store.engine, "commit", lambda conn: seen.append("commit"))
    return seen


def test_credential_lookup_does_not_wait_for_the_write_lock(tmp_path: Any, clock: Clock) -> None:
    store = CredentialStore(f"sqlite:///{tmp_path}/c.db", now=clock)
    env = Env(store, clock)
    env.manager.enroll(session(clock), EMAIL, PASSWORD)
    blocker = sqlite3.connect(f"{tmp_path}/c.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock (busy_timeout 30 s)
    found: list[object] = []
    reader = threading.Thread(
        target=lambda: found.append(store.credential_by_email(canonical_email(EMAIL)))
    )
    try:
        reader.start()
        reader.join(5)
        assert not reader.is_alive(), "a read queued behind the writer"
        assert found and found[0] is not None
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        reader.join()
        store.close()


def test_login_commits_once(cred_store: CredentialStore, clock: Clock) -> None:
    """SQLite: one transaction (one commit). PostgreSQL: one INSERT statement with
    CTEs in autocommit (atomic on its own), no BEGIN/COMMIT round trips."""
    env = Env(cred_store, clock)
    env.manager.enroll(session(clock), EMAIL, PASSWORD)
    commits = _commits(cred_store)
    statements: list[str] = []
    event.listen(
        cred_store.engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_a: statements.append(sql.split()[0].upper()),
    )
    env.manager.login(EMAIL, PASSWORD, "Pixel 9", "198.51.100.1")
    writes = [s for s in statements if s in {"INSERT", "UPDATE", "DELETE", "WITH"}]
    if cred_store.dialect == "sqlite":
        assert commits == ["commit"]  # the device + family + first token, together
        assert writes == ["INSERT", "INSERT", "INSERT"]
    else:
        assert commits == []
        assert writes == ["WITH"]
    assert env.store.families_of("acct-1")[0].device_id is not None


def test_only_the_family_insert_is_fail_closed(tmp_path: Any, clock: Clock) -> None:
    store = CredentialStore(f"sqlite:///{tmp_path}/c.db", now=clock)
    levels: list[int] = []

    def at_commit(conn: Any) -> None:
        driver = conn.connection.driver_connection
        levels.append(int(driver.execute("PRAGMA synchronous").fetchone()[0]))

    try:
        env = Env(store, clock)
        env.manager.enroll(session(clock), EMAIL, PASSWORD)
        event.listen(store.engine, "commit", at_commit)
        pair = env.manager.login(EMAIL, PASSWORD, "Pixel 9", None)
        env.issuer.refresh(pair.refresh_token)  # rotation: single use, must be durable
        # 1 = NORMAL for the new family, 2 = FULL for the rotation (and after it).
        assert levels[0] == 1 and set(levels[1:]) == {2}
        with store.engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert int(driver.execute("PRAGMA synchronous").fetchone()[0]) == 2
    finally:
        store.close()


def test_pooled_connection_is_pinged_only_after_sitting_idle(
    cred_store: CredentialStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-to-back logins check out a connection used moments ago: no ping (a round
    trip per database call on PostgreSQL). One idle past ``PING_AFTER_IDLE`` is
    pinged, and if its server side is gone, replaced before the login uses it."""
    env = Env(cred_store, clock)
    env.manager.enroll(session(clock), EMAIL, PASSWORD)
    dialect = cred_store.engine.dialect
    real_ping = dialect.do_ping
    pings: list[bool] = []

    def counted(dbapi: Any) -> bool:
        pings.append(True)
        return real_ping(dbapi)

    monkeypatch.setattr(dialect, "do_ping", counted)
    for _ in range(3):
        env.manager.login(EMAIL, PASSWORD, "Pixel 9", "198.51.100.1")
    assert pings == []
    if cred_store.dialect == "postgresql":
        import psycopg

        # The server ends the pooled session while it sits idle.
        with cred_store.engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with psycopg.connect(
            _libpq_url(cred_store.engine.url.render_as_string(hide_password=False)), autocommit=True
        ) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    later = time.monotonic() + database.PING_AFTER_IDLE + 1
    monkeypatch.setattr(database, "monotonic", lambda: later)
    env.manager.login(EMAIL, PASSWORD, "Pixel 9", "198.51.100.1")
    assert pings  # the idle connection was pinged (and, if dead, replaced)


@pytest.mark.postgres
def test_only_the_family_insert_commits_asynchronously_on_postgresql(
    pg_schema: str, postgres_url: str, clock: Clock
) -> None:
    """The login's one statement sets ``synchronous_commit`` off for its own
    transaction (the counterpart of SQLite's NORMAL); the rotation after it, and
    anything else later on the same pooled connection, commits synchronously."""
    store = CredentialStore(postgres_url, schema=pg_schema, now=clock)
    relaxed: list[str] = []

    def watch(_conn: Any, _cur: Any, sql: str, params: Any, *_rest: Any) -> None:
        values = params.values() if isinstance(params, dict) else params or ()
        if "synchronous_commit" in values:
            relaxed.append(sql.split(maxsplit=1)[0].upper())

    try:
        env = Env(store, clock)
        env.manager.enroll(session(clock), EMAIL, PASSWORD)
        event.listen(store.engine, "before_cursor_execute", watch)
        pair = env.manager.login(EMAIL, PASSWORD, "Pixel 9", None)
        assert relaxed == ["WITH"]
        env.issuer.refresh(pair.refresh_token)  # rotation: single use, must be durable
        assert relaxed == ["WITH"]
        with store.engine.connect() as conn:  # the setting did not outlive the statement
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    finally:
        store.close()
