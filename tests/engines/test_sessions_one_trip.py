"""The session check is one atomic store program (one round trip), on every store,
and the faster cookie MAC keeps itsdangerous' format exactly."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from itsdangerous import Signer

from authbroker.engines.sessions import SESSION_SALT, SessionManager, session_store_key
from authbroker.store import StateStore
from authbroker.store.base import Atomic, AtomicResult
from identity_support import bank_identity

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


def test_session_check_is_one_store_operation(sync_store: StateStore) -> None:
    store = Counting(sync_store)
    manager = SessionManager(store, KEYS)  # type: ignore[arg-type]
    cookie = manager.engine.cookie_value(manager.login("user-1", bank_identity()))
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
    a = manager.login("alice", bank_identity())
    b = manager.login("bob", bank_identity())
    manager.logout_everywhere("alice")
    assert manager.load(manager.engine.cookie_value(a)) is None
    assert manager.load(manager.engine.cookie_value(b)) is not None


def test_record_under_another_users_tag_is_refused(sync_store: StateStore) -> None:
    """A record moved under an id whose tag names another user is not accepted (its
    epoch key would be the other user's)."""
    manager = SessionManager(sync_store, KEYS)
    s = manager.login("alice", bank_identity())
    other = manager.login("bob", bank_identity())
    forged_id = other.id.split("~")[0] + "~" + s.id.split("~")[1] + "x"
    raw = sync_store.get(session_store_key(s.id) or "")
    assert raw is not None
    sync_store.put(session_store_key(forged_id) or "", raw, 60)
    assert manager.load(manager.engine.signer.sign(forged_id)) is None


def test_cookie_format_is_itsdangerous_signer() -> None:
    manager = SessionManager(_memory(), KEYS)
    reference = Signer(list(reversed(KEYS)), salt=SESSION_SALT, digest_method=hashlib.sha256)
    session = manager.login("user-1", bank_identity())
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
    session = manager.login("user-1", bank_identity())
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
    s = manager.login("user-1", bank_identity())
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


# --- link sessions: the link's revocation is checked in the same round trip ------------

LINK_KEYS = ("l" * 40,)


def _links(store: StateStore) -> Any:
    from authbroker.engines.links import DirectLinks
    from authbroker.sms import OutboxSender

    return DirectLinks(
        store, OutboxSender(), secret_keys=LINK_KEYS, base_url="https://app.example.fi"
    )


def _issue(links: Any, user: str, resource: str = "INV-1") -> str:
    issued = links.issue_link(user, "+358401234567", "invoice:approve", resource, 3600)
    return str(issued.link_id)


def test_link_session_check_is_one_store_operation(sync_store: StateStore) -> None:
    store = Counting(sync_store)
    links = _links(sync_store)
    manager = SessionManager(store, LINK_KEYS)  # type: ignore[arg-type]
    link_id = _issue(links, "user-1")
    session = manager.open_link_session("user-1", "invoice:approve", "INV-1", link_id=link_id)
    cookie = manager.engine.cookie_value(session)
    store.calls.clear()
    assert manager.load(cookie) is not None
    assert store.calls == ["atomic"]
    # Revoking the link ends the session on the very next check, still one read.
    links.revoke(link_id)
    store.calls.clear()
    assert manager.load(cookie) is None
    assert store.calls[0] == "atomic" and "get" not in store.calls


def test_another_users_link_id_is_refused(sync_store: StateStore) -> None:
    """A session of one user bound to another user's link would live and die with
    the other user's revocations; it is refused when it would open."""
    from authbroker.errors import AccessDenied

    links = _links(sync_store)
    manager = SessionManager(sync_store, LINK_KEYS)
    alice_link = _issue(links, "alice")
    with pytest.raises(AccessDenied) as refused:
        manager.open_link_session("mallory", "invoice:approve", "INV-1", link_id=alice_link)
    assert refused.value.code == "link_other_user"
    links.revoke(alice_link)
    with pytest.raises(AccessDenied):
        manager.open_link_session("alice", "invoice:approve", "INV-1", link_id=alice_link)
    with pytest.raises(AccessDenied):
        manager.open_link_session("alice", "invoice:approve", "INV-1", link_id="not-a-link")


def test_link_session_record_moved_under_another_link_is_refused(
    sync_store: StateStore,
) -> None:
    """The id names the link whose revocation keys are read: a record stored under
    an id naming another (live) link of the same user is not accepted."""
    links = _links(sync_store)
    manager = SessionManager(sync_store, LINK_KEYS)
    first, second = _issue(links, "alice", "INV-1"), _issue(links, "alice", "INV-2")
    session = manager.open_link_session("alice", "invoice:approve", "INV-1", link_id=first)
    raw = sync_store.get(session_store_key(session.id) or "")
    assert raw is not None
    forged = session.id.rsplit("~", 1)[0] + "~" + second
    sync_store.put(session_store_key(forged) or "", raw, 60)
    links.revoke(first)
    assert manager.load(manager.engine.signer.sign(forged)) is None


@pytest.mark.parametrize(
    "store_backend",
    [
        pytest.param(name, id=name, marks=pytest.mark.redis)
        for name in ("redis", "redis-cluster", "redis-sentinel")
    ],
)
def test_read_only_program_is_one_mget_on_redis(
    sync_store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On every Redis store the session check is a plain MGET: no script runs (so
    no EVALSHA, no script cache, retried like GET)."""
    client = getattr(sync_store, "client", None)
    assert client is not None and hasattr(client, "mget"), type(sync_store).__name__
    sent: list[str] = []
    real_mget = client.mget

    def mget(*args: Any, **kwargs: Any) -> Any:
        sent.append("MGET")
        return real_mget(*args, **kwargs)

    def no_script(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a script ran for a read-only program")

    manager = SessionManager(sync_store, KEYS)
    cookie = manager.engine.cookie_value(manager.login("user-1", bank_identity()))
    monkeypatch.setattr(client, "mget", mget)
    monkeypatch.setattr(client, "evalsha", no_script)
    monkeypatch.setattr(client, "eval", no_script)
    assert manager.load(cookie) is not None
    assert sent == ["MGET"]
