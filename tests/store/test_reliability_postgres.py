"""The PostgreSQL store when its server crashes in the middle of flows.

The tests run their own PostgreSQL (tests/_pg_servers.py) so they can kill it with
SIGKILL, the way a crash or the OOM killer ends it, and start it again (crash
recovery replays the WAL). While the server is down every call fails with a typed
:class:`~authbroker.errors.StoreUnavailable`: no grant, no identity, no SMS, no
other exception, nothing of the connection string in the error. Unlike a Redis run
without persistence, committed state survives the crash: a flow begun before it
completes after it, exactly once, and a value consumed before it stays consumed.
The same store object recovers by itself, without a restart of the application.

How long writes fail during a 1 s and an 8 s outage, and how long after the restart
the first write succeeds, is printed with ``-s`` and reported in docs/deployment.md;
nothing here asserts a duration.

Under ``CI=true`` missing PostgreSQL binaries fail these tests instead of skipping.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from _pg_servers import PostgresServer, find_bindir, missing_tools
from authbroker import Done
from authbroker.engines.sessions import SessionManager
from authbroker.errors import AuthBrokerError, StoreUnavailable
from authbroker.identity import Loa
from authbroker.store.postgres import AsyncPostgresStore, PostgresStore
from conftest import require_started
from identity_support import bank_identity
from outage_support import DownAfterToken, OutageEnv, Traffic, begin_oidc

pytestmark = pytest.mark.postgres

#: The store timeout these tests configure (seconds): connect and pool wait.
TIMEOUT = 0.5
T = TypeVar("T")


@pytest.fixture(scope="module")
def _server_started() -> Iterator[tuple[PostgresServer | None, str | None]]:
    bindir, problem = find_bindir(), missing_tools()
    if bindir is None or problem is not None:
        yield None, problem or "PostgreSQL server binaries are not installed"
        return
    try:
        server = PostgresServer(bindir)
    except Exception as exc:
        yield None, f"initdb failed ({type(exc).__name__}: {exc})"
        return
    try:
        server.start()
    except Exception as exc:
        server.close()
        yield None, f"the test PostgreSQL did not start ({type(exc).__name__}: {exc})"
        return
    yield server, None
    server.close()


@pytest.fixture
def pg(_server_started: tuple[PostgresServer | None, str | None]) -> Iterator[PostgresServer]:
    """The module's server, running at the start and at the end of each test. Skips
    with the reason when it cannot run here, and fails instead under ``CI=true``."""
    server: PostgresServer = require_started(_server_started)
    if server.proc is None:
        server.start()
    yield server
    if server.proc is None:
        server.start()


def _store(server: PostgresServer) -> PostgresStore:
    return PostgresStore(
        server.conninfo,
        table=f"rel_{secrets.token_hex(6)}",
        timeout=TIMEOUT,
        statement_timeout=2.0,
    )


def _typed_outage(call: Callable[[], T]) -> StoreUnavailable:
    """``call`` must fail with StoreUnavailable that names no host, port or URL."""
    with pytest.raises(StoreUnavailable) as err:
        call()
    shown = str(err.value) + repr(err.value) + repr(err.value.details)
    assert "postgresql://" not in shown and "127.0.0.1" not in shown
    return err.value


# --- flows ----------------------------------------------------------------------------


def test_flow_begun_before_a_crash_completes_once_after_it(pg: PostgresServer) -> None:
    env = OutageEnv(_store(pg))
    try:
        flow_id, params = begin_oidc(env)
        pg.kill()
        _typed_outage(lambda: env.broker.advance(flow_id, params, binding="b"))
        _typed_outage(lambda: env.broker.begin("ftn", binding="b"))  # new flows too
        assert env.grants() == 0
        pg.start()
        # The flow record was committed before the crash: the same callback now
        # completes, through the same store object, and only once.
        done = env.broker.advance(flow_id, params, binding="b")
        assert isinstance(done, Done) and done.return_to == "/after"
        with pytest.raises(AuthBrokerError):
            env.broker.advance(flow_id, params, binding="b")
        assert env.grants() == 1
    finally:
        env.close()


def test_crash_during_the_callback_never_grants_twice(pg: PostgresServer) -> None:
    driver = DownAfterToken(pg.kill)
    env = OutageEnv(_store(pg), driver)
    try:
        flow_id, params = begin_oidc(env)
        driver.armed = True
        outcome: object
        try:
            outcome = env.broker.advance(flow_id, params, binding="b")
        except StoreUnavailable as exc:
            outcome = exc
        assert pg.proc is None, "the crash really happened mid-callback"
        assert isinstance(outcome, StoreUnavailable), outcome
        assert env.grants() == 0
        pg.start()
        # The browser retries the same callback: the authorization code was spent
        # at the provider, so it is refused, typed; still no grant.
        with pytest.raises(AuthBrokerError):
            env.broker.advance(flow_id, params, binding="b")
        assert env.grants() == 0
        flow_id2, params2 = begin_oidc(env)
        assert isinstance(env.broker.advance(flow_id2, params2, binding="b"), Done)
        assert env.grants() == 1
    finally:
        env.close()


def test_session_survives_a_crash(pg: PostgresServer) -> None:
    store = _store(pg)
    sessions = SessionManager(store, ["s" * 40])
    try:
        identity = bank_identity(Loa.SUBSTANTIAL)
        cookie = sessions.engine.cookie_value(sessions.login("user-1", identity))
        pg.kill()
        _typed_outage(lambda: sessions.load(cookie))
        pg.start()
        loaded = sessions.load(cookie)
        assert loaded is not None and loaded.user == "user-1"
    finally:
        store.close()


def test_direct_link_single_use_survives_a_crash(pg: PostgresServer) -> None:
    from authbroker.engines.links import DirectLinks
    from authbroker.sms.outbox import OutboxSender

    store = _store(pg)
    outbox = OutboxSender()
    links = DirectLinks(store, outbox, secret_keys=["k" * 40], base_url="https://app.example")
    ip = "203.0.113.1"

    def opened(user: str, phone: str, ref: str) -> tuple[str, str, str]:
        url = links.issue(user, phone, "invoice:approve", ref, 3600)
        token = url.rsplit("/", 1)[1]
        challenge = links.open(token, ip)
        code = outbox.last().code()  # type: ignore[union-attr]
        assert code is not None
        return token, challenge.challenge_id, code

    try:
        _, used_id, used_code = opened("user-1", "+358401234567", "inv-1")
        token, pending_id, pending_code = opened("user-2", "+358401234568", "inv-2")
        assert links.verify(used_id, used_code, client_ip=ip).allows("invoice:approve", "inv-1")
        sent = len(outbox.messages)
        pg.kill()
        _typed_outage(lambda: links.verify(pending_id, pending_code, client_ip=ip))
        _typed_outage(lambda: links.open(token, ip))
        _typed_outage(lambda: links.issue("user-3", "+358401234569", "invoice:approve", "x", 60))
        assert len(outbox.messages) == sent  # no SMS while the store is down
        pg.start()
        with pytest.raises(AuthBrokerError):  # consumed before the crash: still consumed
            links.verify(used_id, used_code, client_ip=ip)
        grant = links.verify(pending_id, pending_code, client_ip=ip)  # durable challenge
        assert grant.allows("invoice:approve", "inv-2")
        with pytest.raises(AuthBrokerError):
            links.verify(pending_id, pending_code, client_ip=ip)
    finally:
        links.close()
        store.close()


# --- the pool after an outage -----------------------------------------------------------


#: Outage with no calls before the restart. psycopg_pool's background attempts run
#: about 0, 1, 3, 7, 15 s after the first failure (1 s doubling, +-10 % jitter;
#: psycopg_pool/base.py AttemptWithBackoff): a call 10-11 s after the first failure
#: lands in the widest gap, where an unbounded pool does not try again for seconds.
QUIET = 10.0


async def _async_calls(server: PostgresServer) -> None:
    store = AsyncPostgresStore(
        server.conninfo, table=f"rel_{secrets.token_hex(6)}", timeout=TIMEOUT
    )
    try:
        await store.put("k", b"v", 60)
        server.kill()
        for _ in range(3):  # the later calls wait for a new connection: the pool grows
            with pytest.raises(StoreUnavailable):
                await store.put_if_absent("during", b"x", 60)
        await asyncio.sleep(QUIET)
        server.start()
        assert await store.put_if_absent("after", b"y", 60)
        assert await store.take("k") == b"v"
    finally:
        await store.aclose()


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_first_call_after_a_long_outage_succeeds(pg: PostgresServer, flavour: str) -> None:
    """psycopg_pool grows the pool by one connection at a time and retries a failed
    attempt in the background with exponential backoff (1 s, 2 s, 4 s... for
    ``reconnect_timeout``, 5 minutes by default), starting no other connection
    meanwhile: after a few seconds of outage the server was back but every call
    still failed until the next scheduled attempt. The store bounds those retries,
    so the first call after the restart connects afresh."""
    if flavour == "async":
        asyncio.run(_async_calls(pg))
        return
    store = _store(pg)
    try:
        store.put("k", b"v", 60)
        pg.kill()
        for _ in range(3):  # the later calls wait for a new connection: the pool grows
            with pytest.raises(StoreUnavailable):
                store.put_if_absent("during", b"x", 60)
        time.sleep(QUIET)
        pg.start()
        assert store.put_if_absent("after", b"y", 60)
        assert store.take("k") == b"v"
    finally:
        store.close()


# --- traffic through a crash: single use and the outage window ---------------------------


def _traffic_through_outage(server: PostgresServer, outage: float) -> dict[str, Any]:
    """4 threads put a unique value and take it twice, in a loop; the server is
    killed, stays down ``outage`` seconds and is started again. Returns what was
    taken, when writes failed and when the first write succeeded after the restart."""
    store = _store(server)
    traffic = Traffic(store)
    try:
        traffic.start()
        time.sleep(0.5)
        killed_at = time.monotonic()
        server.kill()
        time.sleep(max(0.0, outage - (time.monotonic() - killed_at)))
        server.start()
        started_at = time.monotonic()
        deadline = started_at + 60
        while time.monotonic() < deadline and not any(t > started_at for t in traffic.written):
            time.sleep(0.01)
        time.sleep(0.5)
    finally:
        try:
            traffic.stop()
        finally:
            store.close()
    after = [t for t in traffic.written if t > started_at]
    return {
        "taken": traffic.taken,
        "failed": traffic.failed,
        "window": traffic.failure_window(),
        "down": started_at - killed_at,
        "first_write": (after[0] - started_at) if after else None,
    }


@pytest.mark.parametrize("outage", [1.0, 8.0], ids=["1s", "8s"])
def test_traffic_through_a_crash(pg: PostgresServer, outage: float) -> None:
    result = _traffic_through_outage(pg, outage)
    assert result["failed"], "a crash must be visible as StoreUnavailable"
    assert len(result["taken"]) == len(set(result["taken"])), "a value was taken twice"
    assert result["first_write"] is not None, "the store did not recover by itself"
    print(
        f"\npostgres outage {result['down']:.1f}s: writes failed {result['window']:.2f}s,"
        f" first write {result['first_write']:.2f}s after restart"
    )
