"""The session check is one atomic store program (one round trip), on every store,
and the faster cookie MAC keeps itsdangerous' format exactly."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from itsdangerous import Signer

from authbroker.engines.sessions import SESSION_SALT, SessionManager, session_store_key
from authbroker.identity import Identity, Loa, NationalId
from authbroker.store import StateStore
from authbroker.store.base import Atomic, AtomicResult

KEYS = ("n" * 40, "o" * 40)  # first signs, both verify


class Counting:
    """A store that counts the calls made to it (each is one round trip on Redis)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if callable(attr) and name != "close":
            self.calls.append(name)
        return attr

    def atomic(self, program: Atomic) -> AtomicResult:
        self.calls.append("atomic")
        return self.inner.atomic(program)


def ident() -> Identity:
    return Identity(
        provider="ftn",
        method="bank",
        subject="sub",
        loa=Loa.HIGH,
        national_id=NationalId.parse("131052-308T", "FI"),
        authenticated_at=datetime.now(UTC),
    )


def test_session_check_is_one_store_operation(sync_store: StateStore) -> None:
    store = Counting(sync_store)
    manager = SessionManager(store, KEYS)  # type: ignore[arg-type]
    cookie = manager.engine.cookie_value(manager.login("user-1", ident()))
    store.calls.clear()
    loaded = manager.load(cookie)
    assert loaded is not None and loaded.user == "user-1"
    assert store.calls == ["atomic"]
    # Logging out everywhere still ends the session, checked in that one operation.
    manager.logout_everywhere("user-1")
    store.calls.clear()
    assert manager.load(cookie) is None
    assert store.calls[0] == "atomic"


def test_epoch_of_another_user_never_applies(sync_store: StateStore) -> None:
    manager = SessionManager(sync_store, KEYS)
    a = manager.login("alice", ident())
    b = manager.login("bob", ident())
    manager.logout_everywhere("alice")
    assert manager.load(manager.engine.cookie_value(a)) is None
    assert manager.load(manager.engine.cookie_value(b)) is not None


def test_record_under_another_users_tag_is_refused(sync_store: StateStore) -> None:
    """A record moved under an id whose tag names another user is not accepted (its
    epoch key would be the other user's)."""
    manager = SessionManager(sync_store, KEYS)
    s = manager.login("alice", ident())
    other = manager.login("bob", ident())
    forged_id = other.id.split("~")[0] + "~" + s.id.split("~")[1] + "x"
    raw = sync_store.get(session_store_key(s.id) or "")
    assert raw is not None
    sync_store.put(session_store_key(forged_id) or "", raw, 60)
    assert manager.load(manager.engine.signer.sign(forged_id)) is None


def test_cookie_format_is_itsdangerous_signer() -> None:
    manager = SessionManager(_memory(), KEYS)
    reference = Signer(list(reversed(KEYS)), salt=SESSION_SALT, digest_method=hashlib.sha256)
    session = manager.login("user-1", ident())
    ours = manager.engine.cookie_value(session)
    assert ours == reference.sign(session.id).decode()
    # Either key verifies (rotation); a cookie signed with the old key still loads.
    old_only = Signer(KEYS[1], salt=SESSION_SALT, digest_method=hashlib.sha256)
    assert manager.load(old_only.sign(session.id).decode()) is not None


@pytest.mark.parametrize(
    "cookie",
    ["", "x", ".", "abc.", ".sig", "a" * 600, "é.é", "no-signature-here"],
)
def test_bad_cookies_load_nothing(cookie: str) -> None:
    manager = SessionManager(_memory(), KEYS)
    assert manager.load(cookie) is None


def test_tampered_signature_or_other_salt_refused() -> None:
    manager = SessionManager(_memory(), KEYS)
    session = manager.login("user-1", ident())
    cookie = manager.engine.cookie_value(session)
    flipped = cookie[:-1] + ("A" if cookie[-1] != "A" else "B")
    assert manager.load(flipped) is None
    other_salt = Signer(KEYS[0], salt="authbroker.csrf.v1", digest_method=hashlib.sha256)
    assert manager.load(other_salt.sign(session.id).decode()) is None


def _memory() -> StateStore:
    from authbroker.store.memory import MemoryStore

    return MemoryStore()


def test_parsed_record_cache_follows_the_stored_bytes(sync_store: StateStore) -> None:
    """The parse cache is keyed by the exact record: a rewritten record is parsed
    again, and a cached parse never outlives expiry, idle or epoch checks."""
    import json

    from authbroker.engines.sessions import session_store_key

    manager = SessionManager(sync_store, KEYS)
    s = manager.login("user-1", ident())
    cookie = manager.engine.cookie_value(s)
    assert manager.load(cookie) is not None  # parsed and cached
    key = session_store_key(s.id)
    assert key is not None
    raw = sync_store.get(key)
    assert raw is not None
    record = json.loads(raw)
    record["scope"] = "changed"
    sync_store.put(key, json.dumps(record).encode(), 60)
    loaded = manager.load(cookie)
    assert loaded is not None and loaded.scope == "changed"
    sync_store.delete(key)
    assert manager.load(cookie) is None


def test_request_parsing_is_cached_and_copied() -> None:
    from authbroker.errors import InvalidInput
    from authbroker.web.core.requests import WebRequest

    req = WebRequest("GET", "/", "a=1", {"cookie": "x=1; y=2; x=3"})
    jar = req.cookies
    jar["x"] = "tampered"
    assert req.cookies == {"x": "1", "y": "2"}
    q = req.query()
    q["a"] = "tampered"
    assert req.query() == {"a": "1"}
    bad = WebRequest("GET", "/", "a=1&a=2")
    for _ in range(2):  # a refusal is never cached as an empty query
        with pytest.raises(InvalidInput):
            bad.query()
