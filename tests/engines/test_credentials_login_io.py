"""Login's database work: the credential lookup takes no write lock and costs no
commit; a login commits once, and only that fail-closed commit skips its own fsync
on SQLite (docs/mobile-credentials.md "Durability")."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import event
from test_credentials import EMAIL, PASSWORD, Env, session

from authbroker.credential_store import CredentialStore
from authbroker.engines.credentials.policy import canonical_email
from conftest_pg import Clock

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
