"""Server-side sessions: signing, timeouts, rotation, logout everywhere, scope limits."""

from __future__ import annotations

import inspect

import pytest
from itsdangerous import Signer

from authbroker.engines.sessions import AsyncSessionManager, SessionManager, SessionPolicy
from authbroker.errors import ConfigError, InsufficientLoa, ScopeDenied
from authbroker.identity import Loa
from authbroker.kernel import Gen
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from identity_support import HETU, bank_identity

KEYS = ("a" * 40,)


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def manager(clock: Clock) -> SessionManager:
    return SessionManager(MemoryStore(now=clock), KEYS, now=clock)


def test_login_roundtrip_and_cookie_attributes(manager: SessionManager) -> None:
    s = manager.login("user-1", bank_identity())
    cookie = manager.engine.cookie_value(s)
    loaded = manager.load(cookie)
    assert loaded is not None and loaded.user == "user-1" and loaded.is_strong
    header = manager.cookie_header(s, secure=True)
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" in header
    assert "Secure" not in manager.cookie_header(s, secure=False)
    assert HETU not in repr(s) and s.id not in repr(s)


@pytest.mark.parametrize("cookie", [None, "", "garbage", "x" * 600])
def test_bad_cookies_give_no_session(manager: SessionManager, cookie: str | None) -> None:
    assert manager.load(cookie) is None


def test_forged_and_cross_purpose_signatures_refused(manager: SessionManager) -> None:
    s = manager.login("u", bank_identity())
    # Same key, other purpose (salt): refused.
    other = Signer(KEYS[0], salt="authbroker.link.v1").sign(s.id).decode()
    assert manager.load(other) is None
    # Tampered signature: refused.
    good = manager.engine.cookie_value(s)
    assert manager.load(good[:-2] + ("AA" if not good.endswith("AA") else "BB")) is None


def test_key_rotation_old_cookie_still_valid(clock: Clock) -> None:
    store = MemoryStore(now=clock)
    old = SessionManager(store, ("o" * 40,), now=clock)
    s = old.login("u", bank_identity())
    rotated = SessionManager(store, ("n" * 40, "o" * 40), now=clock)
    assert rotated.load(old.engine.cookie_value(s)) is not None
    assert rotated.engine.cookie_value(s) != old.engine.cookie_value(s)


def test_idle_and_absolute_timeouts(manager: SessionManager, clock: Clock) -> None:
    s = manager.login("u", bank_identity())
    cookie = manager.engine.cookie_value(s)
    clock.t += 29 * 60
    assert manager.load(cookie) is not None  # touched: idle window slides
    clock.t += 29 * 60
    assert manager.load(cookie) is not None
    clock.t += 31 * 60
    assert manager.load(cookie) is None  # idle timeout
    s2 = manager.login("u", bank_identity())
    c2 = manager.engine.cookie_value(s2)
    for _ in range(30):  # active all the time, still ends at the absolute timeout
        clock.t += 25 * 60
        if manager.load(c2) is None:
            break
    assert clock.t - s2.created_at <= 12 * 3600 + 25 * 60
    assert manager.load(c2) is None


def test_rotation_on_login_kills_old_id(manager: SessionManager) -> None:
    link = manager.open_link_session("u", "invoice:approve", "inv-1")
    old_cookie = manager.engine.cookie_value(link)
    full = manager.login("u", bank_identity(), replaces=link)
    assert full.id != link.id
    assert manager.load(old_cookie) is None
    assert manager.load(manager.engine.cookie_value(full)) is not None


def test_logout_everywhere(manager: SessionManager) -> None:
    a = manager.login("u", bank_identity())
    b = manager.login("u", bank_identity())
    other = manager.login("v", bank_identity())
    manager.logout_everywhere("u")
    assert manager.load(manager.engine.cookie_value(a)) is None
    assert manager.load(manager.engine.cookie_value(b)) is None
    assert manager.load(manager.engine.cookie_value(other)) is not None
    fresh = manager.login("u", bank_identity())
    assert manager.load(manager.engine.cookie_value(fresh)) is not None


def test_destroy(manager: SessionManager) -> None:
    s = manager.login("u", bank_identity())
    manager.destroy(s)
    assert manager.load(manager.engine.cookie_value(s)) is None


def test_link_session_limited_to_scope_and_resource(manager: SessionManager, clock: Clock) -> None:
    s = manager.open_link_session("u", "invoice:approve", "inv-1")
    s.require(scope="invoice:approve", resource="inv-1")
    with pytest.raises(ScopeDenied):
        s.require(scope="invoice:approve", resource="inv-2")
    with pytest.raises(ScopeDenied):
        s.require(scope="hours:enter", resource="inv-1")
    with pytest.raises(InsufficientLoa):
        s.require(loa=Loa.SUBSTANTIAL)
    with pytest.raises(InsufficientLoa):
        s.require()
    assert not s.is_strong
    clock.t += 16 * 60
    assert manager.load(manager.engine.cookie_value(s)) is None  # 15 min absolute


def test_full_session_step_up(manager: SessionManager) -> None:
    low = manager.login("u", bank_identity(Loa.LOW))
    with pytest.raises(InsufficientLoa):
        low.require(loa=Loa.SUBSTANTIAL)
    high = manager.login("u", bank_identity(Loa.HIGH), replaces=low)
    high.require(loa=Loa.HIGH)


def test_csrf(manager: SessionManager) -> None:
    s = manager.login("u", bank_identity())
    assert s.csrf_ok(s.csrf)
    assert not s.csrf_ok(None) and not s.csrf_ok("") and not s.csrf_ok(s.csrf + "x")


def test_no_keys_is_config_error() -> None:
    with pytest.raises(ConfigError):
        SessionManager(MemoryStore(), ())


@pytest.mark.parametrize(
    "keys",
    [("s" * 31,), ("a" * 40, "short"), "x" * 64, ("a" * 40, b"b" * 40)],
    ids=["31-chars", "old-key-short", "string-not-list", "bytes-key"],
)
def test_short_or_malformed_secret_is_config_error(keys: object) -> None:
    """The docs require secrets of at least 32 characters (C16): anything shorter, on
    the blocking and the async manager, is refused at start-up."""
    with pytest.raises(ConfigError) as exc:
        SessionManager(MemoryStore(), keys)  # type: ignore[arg-type]
    assert exc.value.key == "AUTHBROKER_SECRET_KEYS"
    with pytest.raises(ConfigError):
        AsyncSessionManager(AsyncMemoryStore(), keys)  # type: ignore[arg-type]
    SessionManager(MemoryStore(), ("s" * 32,))  # exactly 32 is enough


async def test_async_manager(clock: Clock) -> None:
    m = AsyncSessionManager(
        AsyncMemoryStore(now=clock), KEYS, now=clock, policy=SessionPolicy(idle_timeout=60)
    )
    s = await m.login("u", bank_identity())
    cookie = m.engine.cookie_value(s)
    assert (await m.load(cookie)) is not None
    clock.t += 61
    assert (await m.load(cookie)) is None
    s2 = await m.open_link_session("u", "hours:enter", "2026-11")
    await m.logout_everywhere("u")
    assert (await m.load(m.engine.cookie_value(s2))) is None


def test_engine_routines_compose_with_the_store_in_one_run(
    manager: SessionManager, clock: Clock
) -> None:
    """``manager.engine`` operations are whole routines: login, load and logout of a
    user compose in one run; the declared methods keep today's signatures."""

    def login_load_logout() -> Gen[tuple[bool, bool]]:
        s = yield from manager.engine.login("u1", bank_identity())
        cookie = manager.engine.cookie_value(s)
        loaded = yield from manager.engine.load(cookie)
        yield from manager.engine.logout_everywhere("u1")
        after = yield from manager.engine.load(cookie)
        return loaded is not None and loaded.id == s.id, after is None

    assert manager.run(login_load_logout()) == (True, True)
    assert list(inspect.signature(manager.open_link_session).parameters) == [
        "user",
        "scope",
        "resource",
        "link_id",
        "replaces",
    ]
    assert manager.policy.cookie_name == "ab_session"


async def test_async_manager_runs_the_same_engine(clock: Clock) -> None:
    store = AsyncMemoryStore(now=clock)
    m = AsyncSessionManager(store, KEYS, now=clock)
    s = await m.login("u1", bank_identity())
    assert inspect.iscoroutinefunction(m.load)
    loaded = await m.run(m.engine.load(m.engine.cookie_value(s)))
    assert loaded is not None and loaded.user == "u1"
