"""Issue 15: limits that hold exactly, whatever the timing.

Every burst here is released behind a barrier (threads), an ``asyncio.Event``
(tasks) or a cross-process barrier, on every store (memory, SQLite, Redis). The
assertions count what was *evaluated* (argon2 verifications through a counting
hasher, audit events of wrong codes), never timings. Memory and SQLite run on a
settable clock; Redis keeps its own time, so there the clock is real and the
policies use short delays.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import _mp_workers
from _mp_workers import CountingHasher
from authbroker.audit import AuditLog, MemorySink
from authbroker.credential_store import CredentialStore
from authbroker.engines.credentials import (
    Argon2Params,
    AsyncCredentialManager,
    CredentialManager,
    ThrottlePolicy,
)
from authbroker.engines.links import AsyncDirectLinks, DirectLinks, LinkGrant, LinkLimits
from authbroker.engines.sessions import Session
from authbroker.engines.tokens import TokenIssuer
from authbroker.errors import AccessDenied, AuthBrokerError, InvalidInput, Locked, RateLimited
from authbroker.identity import Loa
from authbroker.sms import OutboxSender
from authbroker.store import AsyncStateStore, StateStore
from conftest import STORE_BACKENDS, TravelClock, _shared_store_url, run_together
from web_support import Stack, build

EMAIL = "aino.kettunen@example.fi"
PASSWORD = "kuusi kissaa kiipeää puuhun"
LOW = Argon2Params.insecure_for_tests()


def _strong_session(clock: TravelClock) -> Session:
    now = clock()
    return Session(
        id="sid",
        user="acct-1",
        kind="full",
        loa=Loa.SUBSTANTIAL,
        created_at=now,
        last_seen=now,
        expires_at=now + 3600,
        epoch=0,
        csrf="csrf",
        identity={"given_name": "Aino", "family_name": "Kettunen"},
    )


def _issuer(db: CredentialStore, clock: TravelClock, audit: AuditLog) -> TokenIssuer:
    return TokenIssuer(
        db,
        issuer="https://auth.example.test",
        audience="mobile-api",
        mobile_scopes=["invoices:read"],
        audit=audit,
        now=clock,
    )


def _manager(
    db: CredentialStore, state: StateStore, clock: TravelClock, throttle: ThrottlePolicy
) -> tuple[CredentialManager, CountingHasher]:
    audit = AuditLog([MemorySink()])
    manager = CredentialManager(
        db, state, _issuer(db, clock, audit), argon2=LOW, throttle=throttle, audit=audit, now=clock
    )
    counting = CountingHasher(manager.engine.hasher)
    manager.engine.hasher = counting
    return manager, counting


def _outcome(fn: Any, *args: Any) -> str:
    try:
        fn(*args)
        return "ok"
    except Locked as exc:
        return f"locked:{exc.code}"
    except RateLimited:
        return "wait"
    except AccessDenied:
        return "denied"


@pytest.fixture
def db(tmp_path: Path, store_clock: TravelClock) -> Iterator[CredentialStore]:
    store = CredentialStore(f"sqlite:///{tmp_path}/cred.db", now=store_clock)
    yield store
    store.close()


# Short delays so the Redis runs (real clock) stay quick; the numbers are the rule.
BURST_POLICY = ThrottlePolicy(
    free_failures=2,
    base_delay=0.1,
    max_delay=0.2,
    lock_after=5,
    lock_duration=600.0,
    hard_limit=None,
    ip_max_failures=None,
)


def test_password_burst_after_backoff_evaluates_one_at_a_time(
    db: CredentialStore, sync_store: StateStore, store_clock: TravelClock
) -> None:
    """After the free failures, each burst (released together, once the longest delay
    has passed) evaluates exactly one password, until the lock at ``lock_after``;
    then nothing is evaluated. Old code evaluated the whole burst."""
    manager, counting = _manager(db, sync_store, store_clock, BURST_POLICY)
    manager.enroll(_strong_session(store_clock), EMAIL, PASSWORD)
    for _ in range(BURST_POLICY.free_failures):
        assert _outcome(manager.login, EMAIL, "wrong password!!", None, None) == "denied"
    assert counting.verified == BURST_POLICY.free_failures
    n = 30
    for failure in range(BURST_POLICY.free_failures + 1, BURST_POLICY.lock_after + 1):
        store_clock.advance(BURST_POLICY.max_delay + 0.05)
        before = counting.verified
        out = run_together(
            n, lambda i: _outcome(manager.login, EMAIL, f"wrong {i:03d} password", None, None)
        )
        assert counting.verified - before == 1, (failure, sorted(out))
        assert out.count("denied") == 1
        assert out.count("wait") + out.count("locked:temporarily_locked") == n - 1
    # The lock_after-th failure locked the account: a burst evaluates nothing.
    store_clock.advance(BURST_POLICY.max_delay + 0.05)
    before = counting.verified
    out = run_together(n, lambda i: _outcome(manager.login, EMAIL, PASSWORD, None, None))
    assert counting.verified == before
    assert set(out) == {"locked:temporarily_locked"}
    assert counting.verified == BURST_POLICY.lock_after


HARD_POLICY = ThrottlePolicy(
    free_failures=1,
    base_delay=0.1,
    max_delay=0.1,
    lock_after=2,
    lock_duration=0.3,
    hard_limit=5,
    ip_max_failures=None,
)


def test_password_bursts_never_cross_the_hard_cap(
    db: CredentialStore, sync_store: StateStore, store_clock: TravelClock
) -> None:
    """Bursts after every temporary lock: exactly ``hard_limit`` passwords are ever
    evaluated, then the account stays locked (``account_locked``)."""
    manager, counting = _manager(db, sync_store, store_clock, HARD_POLICY)
    manager.enroll(_strong_session(store_clock), EMAIL, PASSWORD)
    assert HARD_POLICY.hard_limit is not None
    outcomes: list[str] = []
    for _ in range(2 * HARD_POLICY.hard_limit):
        store_clock.advance(HARD_POLICY.lock_duration + HARD_POLICY.max_delay + 0.05)
        outcomes += run_together(
            20, lambda i: _outcome(manager.login, EMAIL, f"wrong {i:03d} password", None, None)
        )
    assert counting.verified == HARD_POLICY.hard_limit
    assert outcomes.count("denied") == HARD_POLICY.hard_limit
    assert outcomes[-20:] == ["locked:account_locked"] * 20
    store_clock.advance(HARD_POLICY.lock_duration + 1)
    assert _outcome(manager.login, EMAIL, PASSWORD, None, None) == "locked:account_locked"


IP_POLICY = ThrottlePolicy(free_failures=50, lock_after=60, hard_limit=None, ip_max_failures=10)


def test_per_ip_limit_reserved_before_evaluation(
    db: CredentialStore, sync_store: StateStore, store_clock: TravelClock
) -> None:
    """60 parallel attempts from one address against many accounts: exactly 10
    passwords are evaluated (old code: all 60); a right password afterwards is
    refused without evaluation too."""
    manager, counting = _manager(db, sync_store, store_clock, IP_POLICY)
    manager.enroll(_strong_session(store_clock), EMAIL, PASSWORD)
    out = run_together(
        60,
        lambda i: _outcome(manager.login, f"user{i}@example.fi", PASSWORD, None, "198.51.100.7"),
    )
    assert counting.verified == 10
    assert out.count("denied") == 10 and out.count("wait") == 50
    assert _outcome(manager.login, EMAIL, PASSWORD, None, "198.51.100.7") == "wait"
    assert counting.verified == 10
    # A success does not count as a failure of the address.
    assert _outcome(manager.login, EMAIL, PASSWORD, None, "198.51.100.8") == "ok"
    out = run_together(
        10, lambda i: _outcome(manager.login, f"x{i}@example.fi", PASSWORD, None, "198.51.100.8")
    )
    assert out.count("denied") == 10


async def test_password_burst_async_tasks(
    db: CredentialStore, async_store: AsyncStateStore, store_clock: TravelClock
) -> None:
    """The same rule for asyncio tasks released together by one Event."""
    audit = AuditLog([MemorySink()])
    manager = AsyncCredentialManager(
        db,
        async_store,
        _issuer(db, store_clock, audit),
        argon2=LOW,
        throttle=BURST_POLICY,
        audit=audit,
        now=store_clock,
    )
    counting = CountingHasher(manager.engine.hasher)
    manager.engine.hasher = counting
    await manager.enroll(_strong_session(store_clock), EMAIL, PASSWORD)
    for _ in range(BURST_POLICY.free_failures):
        with pytest.raises(AccessDenied):
            await manager.login(EMAIL, "wrong password!!", None, None)
    store_clock.advance(BURST_POLICY.max_delay + 0.05)
    go = asyncio.Event()

    async def one(i: int) -> str:
        await go.wait()
        try:
            await manager.login(EMAIL, f"wrong {i:03d} password", None, None)
            return "ok"
        except RateLimited:
            return "wait"
        except AccessDenied:
            return "denied"

    tasks = [asyncio.create_task(one(i)) for i in range(30)]
    await asyncio.sleep(0)
    go.set()
    out = await asyncio.gather(*tasks)
    assert counting.verified == BURST_POLICY.free_failures + 1
    assert out.count("denied") == 1 and out.count("wait") == 29


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=3, mp_context=ctx) as executor:
        yield executor


def _shared_state(
    request: pytest.FixtureRequest, sqlite_file: Path, backend: str
) -> tuple[dict[str, str], StateStore]:
    """The store the worker processes share (a SQLite file, a Redis prefix, or the
    URL of a Cluster, Sentinel or PostgreSQL store): its target, and this process's
    own connection to it, opened by the same ``_mp_workers._state_store`` the workers
    use."""
    if backend == "sqlite":
        target = {"sqlite": str(sqlite_file)}
    elif backend == "redis":
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        target = {"redis": url, "prefix": prefix}
    else:
        target = {"url": _shared_store_url(request, backend)}
    return target, _mp_workers._state_store(target)


#: Every store several processes can share (all but memory).
SHARED_BACKENDS = [p for p in STORE_BACKENDS if p.values[0] != "memory"]


@pytest.mark.parametrize("store_backend", SHARED_BACKENDS)
def test_password_burst_across_processes(
    request: pytest.FixtureRequest, tmp_path: Path, pool: ProcessPoolExecutor, store_backend: str
) -> None:
    """Three processes (five threads each) fire together after the back-off: one
    password is evaluated in all, on every shared store."""
    target, state = _shared_state(request, tmp_path / "state.db", store_backend)
    db_url = f"sqlite:///{tmp_path}/cred.db"
    clock = TravelClock()
    clock.real = True
    db = CredentialStore(db_url)
    manager, _ = _manager(db, state, clock, BURST_POLICY)
    manager.enroll(_strong_session(clock), EMAIL, PASSWORD)
    for _ in range(BURST_POLICY.free_failures):
        assert _outcome(manager.login, EMAIL, "wrong password!!", None, None) == "denied"
    clock.advance(BURST_POLICY.max_delay + 0.05)
    barrier = multiprocessing.get_context("spawn").Manager().Barrier(3)
    futures = [
        pool.submit(_mp_workers.password_burst, target, db_url, EMAIL, BURST_POLICY, barrier)
        for _ in range(3)
    ]
    results = [f.result(120) for f in futures]
    evaluated = sum(r[0] for r in results)
    outcomes = [o for r in results for o in r[1]]
    assert evaluated == 1, outcomes
    assert outcomes.count("AccessDenied") == 1 and outcomes.count("RateLimited") == 14
    state.close()
    db.close()


# --- per-user OTP failure cap (links) -----------------------------------------------

LINK_SECRET = "limits-attack-link-secret-" + "y" * 24
PHONE = "+358401234567"
OTP_LIMITS = LinkLimits(resend_cooldown=0, max_failures_per_user=20)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def _otp_wrong(sink: MemorySink) -> int:
    return sum(1 for e in sink.events if e.name == "otp.failed" and e.reason == "otp_wrong")


def test_user_otp_cap_holds_across_links_threads(sync_store: StateStore) -> None:
    """5 links of one user x 5 parallel wrong codes = 25 guesses against a per-user cap
    of 20: exactly 20 are evaluated (old code: 25), and the user is then locked."""
    sink, outbox = MemorySink(), OutboxSender()
    links = DirectLinks(
        sync_store,
        outbox,
        secret_keys=[LINK_SECRET],
        base_url="https://app.example.fi",
        audit=AuditLog([sink]),
        limits=OTP_LIMITS,
    )
    guesses: list[tuple[str, str]] = []
    tokens = []
    for i in range(5):
        url = links.issue("user-1", PHONE, "invoice:approve", f"INV-{i}", 3600)
        token = url.rsplit("/", 1)[1]
        tokens.append(token)
        challenge = links.open(token, f"203.0.113.{i}")
        code = outbox.last(PHONE).code()  # type: ignore[union-attr]
        assert code is not None
        guesses += [(challenge.challenge_id, _wrong(code))] * 5
    results = run_together(25, lambda i: links.verify(*guesses[i]), catch=(AuthBrokerError,))
    assert _otp_wrong(sink) == 20, [getattr(r, "code", r) for r in results]
    refused = [r for r in results if isinstance(r, Locked) and r.code == "user_locked"]
    assert len(refused) == 5
    with pytest.raises(Locked) as exc:
        links.open(tokens[0], "203.0.113.9")
    assert exc.value.code == "user_locked"
    links.close()


async def test_user_otp_cap_holds_across_links_tasks(async_store: AsyncStateStore) -> None:
    sink, outbox = MemorySink(), OutboxSender()
    links = AsyncDirectLinks(
        async_store,
        outbox,
        secret_keys=[LINK_SECRET],
        base_url="https://app.example.fi",
        audit=AuditLog([sink]),
        limits=OTP_LIMITS,
    )
    guesses: list[tuple[str, str]] = []
    for i in range(5):
        url = await links.issue("user-1", PHONE, "invoice:approve", f"INV-{i}", 3600)
        challenge = await links.open(url.rsplit("/", 1)[1], f"203.0.113.{i}")
        code = outbox.last(PHONE).code()  # type: ignore[union-attr]
        assert code is not None
        guesses += [(challenge.challenge_id, _wrong(code))] * 5
    go = asyncio.Event()

    async def one(i: int) -> object:
        await go.wait()
        try:
            return await links.verify(*guesses[i])
        except AuthBrokerError as exc:
            return exc

    tasks = [asyncio.create_task(one(i)) for i in range(25)]
    await asyncio.sleep(0)
    go.set()
    results = await asyncio.gather(*tasks)
    assert _otp_wrong(sink) == 20, [getattr(r, "code", r) for r in results]
    await links.aclose()


@pytest.mark.parametrize("store_backend", SHARED_BACKENDS)
def test_user_otp_cap_holds_across_processes(
    request: pytest.FixtureRequest, tmp_path: Path, pool: ProcessPoolExecutor, store_backend: str
) -> None:
    """5 links of one user, 25 wrong codes fired by 3 processes at once (threads in
    each) against a per-user cap of 20 on every shared store: exactly 20
    codes are compared, however the guesses interleave."""
    target, state = _shared_state(request, tmp_path / "links.db", store_backend)
    target["link_secret"] = LINK_SECRET
    outbox = OutboxSender()
    links = DirectLinks(
        state,
        outbox,
        secret_keys=[LINK_SECRET],
        base_url="https://app.example.fi",
        limits=OTP_LIMITS,
    )
    guesses: list[tuple[str, str]] = []
    for i in range(5):
        url = links.issue("user-1", PHONE, "invoice:approve", f"INV-{i}", 3600)
        challenge = links.open(url.rsplit("/", 1)[1], f"203.0.113.{i}")
        code = outbox.last(PHONE).code()  # type: ignore[union-attr]
        assert code is not None
        guesses += [(challenge.challenge_id, _wrong(code))] * 5
    shares = [guesses[0::3], guesses[1::3], guesses[2::3]]
    barrier = multiprocessing.get_context("spawn").Manager().Barrier(3)
    futures = [
        pool.submit(_mp_workers.otp_guesses, target, share, OTP_LIMITS, barrier) for share in shares
    ]
    results = [f.result(120) for f in futures]
    compared = sum(r[0] for r in results)
    outcomes = [o for r in results for o in r[1]]
    assert compared == 20, outcomes
    assert sum(o == "Locked:user_locked" for o in outcomes) == 5, outcomes
    links.close()
    state.close()


def test_user_otp_success_refunds_and_clears(sync_store: StateStore) -> None:
    """A right code is not a failure: the user's counter starts afresh after it, and
    the parallel losers of a right-code race leave no failure behind."""
    sink, outbox = MemorySink(), OutboxSender()
    limits = LinkLimits(resend_cooldown=0, max_failures_per_user=3)
    links = DirectLinks(
        sync_store,
        outbox,
        secret_keys=[LINK_SECRET],
        base_url="https://app.example.fi",
        audit=AuditLog([sink]),
        limits=limits,
    )
    url = links.issue("user-1", PHONE, "invoice:approve", "INV-1", 3600)
    token = url.rsplit("/", 1)[1]
    challenge = links.open(token, "203.0.113.1")
    code = outbox.last(PHONE).code()  # type: ignore[union-attr]
    assert code is not None
    for _ in range(2):
        with pytest.raises(InvalidInput):
            links.verify(challenge.challenge_id, _wrong(code))
    results = run_together(
        20, lambda i: links.verify(challenge.challenge_id, code), catch=(AuthBrokerError,)
    )
    assert sum(isinstance(r, LinkGrant) for r in results) == 1
    challenge = links.open(token, "203.0.113.1")
    code = outbox.last(PHONE).code()  # type: ignore[union-attr]
    assert code is not None
    for _ in range(3):  # three failures allowed again, not one
        with pytest.raises(InvalidInput):
            links.verify(challenge.challenge_id, _wrong(code))
    with pytest.raises(Locked) as exc:
        links.verify(challenge.challenge_id, code)
    assert exc.value.code == "user_locked"
    links.close()


# --- revoking a link ends what it granted -------------------------------------------


@pytest.fixture(params=["asgi", "wsgi"])
def web(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from build(request.param, tmp_path)


@pytest.mark.parametrize("how", ["link", "user"])
def test_revoked_link_session_refused_through_the_web(web: Stack, how: str) -> None:
    """A session opened with a link works (200) until the link is revoked, then the
    middleware treats the browser as anonymous at once (old code: 200 until expiry)."""
    link_id = web.link_login("INV-1")
    assert web.client.get("/invoices/INV-1").status_code == 200
    other = web.fresh_client()
    web.link_login("INV-2", client=other)  # another link of the same user
    if how == "link":
        assert web.links.revoke(link_id)
    else:
        web.links.revoke_user("acct-1")
    r = web.client.get("/invoices/INV-1")
    assert r.status_code == 303 and "/auth/" in r.headers["location"]
    assert web.client.post("/invoices/INV-1", data={}).status_code == 401
    # Revoking one link leaves the user's other link session alone; revoking the
    # user ends it too.
    expected = 200 if how == "link" else 303
    assert other.get("/invoices/INV-2").status_code == expected
    other.close()


def test_link_session_ends_with_revocation_on_every_store(
    sync_store: StateStore, store_clock: TravelClock
) -> None:
    from authbroker.engines.sessions import SessionManager

    outbox = OutboxSender()
    links = DirectLinks(
        sync_store, outbox, secret_keys=[LINK_SECRET], base_url="https://app.example.fi"
    )
    sessions = SessionManager(sync_store, [LINK_SECRET], now=store_clock)
    grants = []
    for resource in ("INV-1", "INV-2"):
        url = links.issue("user-1", PHONE, "invoice:approve", resource, 3600)
        challenge = links.open(url.rsplit("/", 1)[1], "203.0.113.1")
        code = outbox.last(PHONE).code()  # type: ignore[union-attr]
        assert code is not None
        grants.append(links.verify(challenge.challenge_id, code))
    opened = [
        sessions.open_link_session(g.user_id, g.scope, g.resource, link_id=g.link_id)
        for g in grants
    ]
    cookies = [sessions.engine.cookie_value(s) for s in opened]
    assert all(sessions.load(c) is not None for c in cookies)
    links.revoke(grants[0].link_id)
    assert sessions.load(cookies[0]) is None
    assert sessions.load(cookies[1]) is not None
    links.revoke_user("user-1")
    assert sessions.load(cookies[1]) is None
    links.close()


# --- Redis: only idempotent commands are retried ------------------------------------


class ReplyDroppingProxy:
    """A loopback TCP proxy in front of Redis that, once armed with a command name,
    forwards that command but closes the client's connection instead of relaying
    Redis's reply: the command ran, the client never hears so (a lost reply)."""

    def __init__(self, host: str, port: int) -> None:

        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed: bytes | None = None
        self.dropped = 0
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, command: bytes) -> None:
        with self.lock:
            self.armed = b"\r\n" + command + b"\r\n"

    def _accept(self) -> None:

        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream, timeout=5)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: Any, upstream: Any) -> None:
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    return
                with self.lock:
                    drop = self.armed is not None and self.armed in data.upper()
                    if drop:
                        self.armed = None
                upstream.sendall(data)
                reply = upstream.recv(65536)
                if drop:
                    with self.lock:
                        self.dropped += 1
                    return  # the command ran; its reply is lost with the connection
                client.sendall(reply)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()


@pytest.fixture
def lossy(redis_url: str, redis_prefix: str) -> Iterator[tuple[Any, Any, ReplyDroppingProxy]]:
    """(store through the proxy, direct redis client, proxy)."""
    from urllib.parse import urlsplit

    import redis

    from authbroker.store.redis import RedisStore

    parts = urlsplit(redis_url)
    proxy = ReplyDroppingProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    store = RedisStore.from_url(
        f"redis://127.0.0.1:{proxy.port}{parts.path}", prefix=redis_prefix, socket_timeout=2
    )
    direct = redis.Redis.from_url(redis_url)
    store.incr("warm-up", 60)  # loads the counter script, so EVALSHA runs it at once
    yield store, direct, proxy
    store.close()
    direct.close()
    proxy.close()


@pytest.mark.redis
def test_redis_lost_reply_never_double_counts(
    lossy: tuple[Any, Any, ReplyDroppingProxy], redis_prefix: str
) -> None:
    """INCR (script), GETDEL and SET NX whose reply is lost are not sent again (old
    code retried: a counter counted twice, a consumed value or a won lock came back
    as absent); GET, SET and DEL are retried and succeed."""
    from authbroker.errors import StoreUnavailable

    store, direct, proxy = lossy
    proxy.arm(b"EVALSHA")
    with pytest.raises(StoreUnavailable):
        store.incr("counter", 60)
    assert direct.get(redis_prefix + "counter") == b"1"  # applied exactly once
    store.incr("counter", 60, -1)  # the caller's refund leaves it exact
    assert direct.get(redis_prefix + "counter") == b"0"

    store.put("single", b"v", 60)
    proxy.arm(b"GETDEL")
    with pytest.raises(StoreUnavailable):
        store.take("single")  # never a silent None for a value that was consumed
    assert direct.get(redis_prefix + "single") is None

    proxy.arm(b"NX")
    with pytest.raises(StoreUnavailable):
        store.put_if_absent("lock", b"me", 60)  # never "someone else holds it"
    assert direct.get(redis_prefix + "lock") == b"me"

    store.put("plain", b"v", 60)
    proxy.arm(b"GET")
    assert store.get("plain") == b"v"  # idempotent: retried once
    proxy.arm(b"SET")
    store.put("plain", b"w", 60)
    assert direct.get(redis_prefix + "plain") == b"w"
    proxy.arm(b"DEL")
    store.delete("plain")
    assert direct.get(redis_prefix + "plain") is None
    assert proxy.dropped == 6


@pytest.mark.redis
async def test_async_redis_lost_reply_never_double_counts(
    redis_url: str, redis_prefix: str, lossy: tuple[Any, Any, ReplyDroppingProxy]
) -> None:
    from urllib.parse import urlsplit

    from authbroker.errors import StoreUnavailable
    from authbroker.store.redis import AsyncRedisStore

    _, direct, proxy = lossy
    parts = urlsplit(redis_url)
    store = AsyncRedisStore.from_url(
        f"redis://127.0.0.1:{proxy.port}{parts.path}", prefix=redis_prefix
    )
    await store.incr("warm-up", 60)
    proxy.arm(b"EVALSHA")
    with pytest.raises(StoreUnavailable):
        await store.incr("a-counter", 60)
    assert direct.get(redis_prefix + "a-counter") == b"1"
    await store.put("x", b"v", 60)
    proxy.arm(b"GET")
    assert await store.get("x") == b"v"
    await store.aclose()
