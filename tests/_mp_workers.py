"""Functions run in separate *spawned* processes by test_reliability_redis (R-10).

Each call builds its own broker (or link service) on the shared Redis, exactly as a
second application instance would; nothing is shared with the parent but the Redis
URL, the secret keys and the simulator's overrides (its loopback URLs and keys).
Results are plain values so they cross the process boundary.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from argon2 import PasswordHasher

from authbroker.testing import simulated_broker

SECRET_KEYS = "reliability-secret-key-" + "x" * 24


class CountingHasher(PasswordHasher):
    """An argon2 hasher that counts verifications (= evaluated passwords)."""

    def __init__(self, inner: PasswordHasher) -> None:
        super().__init__(
            time_cost=inner.time_cost,
            memory_cost=inner.memory_cost,
            parallelism=inner.parallelism,
            hash_len=inner.hash_len,
            salt_len=inner.salt_len,
            type=inner.type,
        )
        self.verified = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.verified += 1
        return super().verify(hash, password)


def _broker(redis_url: str, prefix: str, name: str, overrides: dict[str, Any]) -> Any:
    from authbroker.config import load_config
    from authbroker.providers.registry import create_provider
    from authbroker.store.redis import RedisStore

    settings = load_config(environ={"AUTHBROKER_SECRET_KEYS": SECRET_KEYS})
    config = settings.provider(name).with_options(**overrides)
    provider = create_provider(config, settings)
    store = RedisStore.from_url(redis_url, prefix=prefix)
    return simulated_broker(settings, store=store, providers={name: provider})


def begin_oidc(
    redis_url: str, prefix: str, name: str, overrides: dict[str, Any]
) -> tuple[str, str]:
    """Process A: begin a flow; returns (flow id, authorization URL)."""
    broker = _broker(redis_url, prefix, name, overrides)
    try:
        step = broker.begin(name, binding="browser-1", return_to="/invoices")
        return step.flow_id, step.url
    finally:
        broker.close()


def complete_oidc(
    redis_url: str, prefix: str, name: str, overrides: dict[str, Any], flow_id: str, url: str
) -> tuple[str, str]:
    """Process B: play the browser's return and complete the flow A began."""
    import httpx

    from authbroker import Done

    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 302, resp.status_code
    params = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
    broker = _broker(redis_url, prefix, name, overrides)
    try:
        done = broker.advance(flow_id, params, binding="browser-1")
        assert isinstance(done, Done)
        nid = done.identity.national_id
        return (nid.value if nid else ""), done.return_to
    finally:
        broker.close()


def verify_code(
    redis_url: str, prefix: str, challenge_id: str, code: str, barrier: Any
) -> list[str]:
    """Verify the same code several times in this process once the barrier opens."""
    import threading

    from authbroker.engines.links import DirectLinks
    from authbroker.errors import AuthBrokerError
    from authbroker.sms.outbox import OutboxSender
    from authbroker.store.redis import RedisStore

    store = RedisStore.from_url(redis_url, prefix=prefix)
    links = DirectLinks(
        store, OutboxSender(), secret_keys=[SECRET_KEYS], base_url="https://app.example"
    )
    outcomes: list[str] = []
    lock = threading.Lock()
    local = threading.Barrier(5)

    def one() -> None:
        local.wait()
        try:
            links.verify(challenge_id, code, client_ip="203.0.113.1")
            result = "grant"
        except AuthBrokerError as exc:
            result = type(exc).__name__
        with lock:
            outcomes.append(result)

    barrier.wait()
    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    links.close()
    store.close()
    return outcomes


def _state_store(target: dict[str, str]) -> Any:
    """The shared state store named by ``target`` (a SQLite file, a Redis prefix, or
    a store URL: Cluster, Sentinel, PostgreSQL)."""
    if "url" in target:
        from authbroker.store import open_store

        return open_store(target["url"])
    if "sqlite" in target:
        from authbroker.store import SqliteStore

        return SqliteStore(target["sqlite"])
    from authbroker.store.redis import RedisStore

    return RedisStore.from_url(target["redis"], prefix=target["prefix"])


def password_burst(
    target: dict[str, str], db_url: str, email: str, throttle: Any, barrier: Any
) -> tuple[int, list[str]]:
    """Five wrong-password logins in this process once the barrier opens; returns
    (argon2 verifications run here, outcome class names)."""
    import threading

    from authbroker.audit import AuditLog
    from authbroker.credential_store import CredentialStore
    from authbroker.engines.credentials import Argon2Params, CredentialManager
    from authbroker.engines.tokens import TokenIssuer
    from authbroker.errors import AuthBrokerError

    state = _state_store(target)
    db = CredentialStore(db_url)
    audit = AuditLog([])
    issuer = TokenIssuer(
        db,
        issuer="https://auth.example.test",
        audience="mobile-api",
        mobile_scopes=["invoices:read"],
        audit=audit,
    )
    manager = CredentialManager(
        db, state, issuer, argon2=Argon2Params.insecure_for_tests(), throttle=throttle, audit=audit
    )
    counting = CountingHasher(manager.engine.hasher)
    manager.engine.hasher = counting
    lock = threading.Lock()
    outcomes: list[str] = []
    local = threading.Barrier(5)

    def one(i: int) -> None:
        local.wait()
        try:
            manager.login(email, f"wrong {i} password here", None, None)
            result = "ok"
        except AuthBrokerError as exc:
            result = type(exc).__name__
        with lock:
            outcomes.append(result)

    barrier.wait()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state.close()
    db.close()
    return counting.verified, outcomes


def otp_guesses(
    target: dict[str, str], guesses: list[tuple[str, str]], limits: Any, barrier: Any
) -> tuple[int, list[str]]:
    """Verify each ``(challenge_id, code)`` in its own thread once the barrier opens;
    returns (codes compared here, per the ``otp_wrong`` audit events; outcomes)."""
    import threading

    from authbroker.audit import AuditLog, MemorySink
    from authbroker.engines.links import DirectLinks
    from authbroker.errors import AuthBrokerError
    from authbroker.sms.outbox import OutboxSender

    state = _state_store(target)
    sink = MemorySink()
    links = DirectLinks(
        state,
        OutboxSender(),
        secret_keys=[target["link_secret"]],
        base_url="https://app.example.fi",
        audit=AuditLog([sink]),
        limits=limits,
    )
    lock = threading.Lock()
    outcomes: list[str] = []
    local = threading.Barrier(len(guesses))

    def one(i: int) -> None:
        local.wait()
        try:
            links.verify(*guesses[i])
            result = "grant"
        except AuthBrokerError as exc:
            result = f"{type(exc).__name__}:{exc.code}"
        with lock:
            outcomes.append(result)

    barrier.wait()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(guesses))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wrong = sum(1 for e in sink.events if e.name == "otp.failed" and e.reason == "otp_wrong")
    links.close()
    state.close()
    return wrong, outcomes
