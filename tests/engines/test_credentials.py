"""Mobile email/password credentials (PWD-01..PWD-07).

Storage-dependent tests run on SQLite and on a real PostgreSQL (``cred_store``);
argon2 runs with tiny parameters except where a test is about the parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import statistics
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

import pytest
from argon2 import extract_parameters

from authbroker.audit import AuditLog, MemorySink
from authbroker.credential_store import CredentialStore
from authbroker.engines.credentials import (
    Argon2Params,
    AsyncCredentialManager,
    Blocklist,
    CredentialManager,
    PasswordPolicy,
    ThrottlePolicy,
    canonical_email,
)
from authbroker.engines.sessions import Session
from authbroker.engines.tokens import TokenIssuer
from authbroker.errors import (
    AccessDenied,
    AuthBrokerError,
    ConfigError,
    InsufficientLoa,
    InvalidInput,
    Locked,
    RateLimited,
    StoreUnavailable,
)
from authbroker.identity import Loa
from authbroker.kernel import Gen
from authbroker.store import AsyncMemoryStore, MemoryStore, SqliteStore, StateStore
from conftest import run_together

if TYPE_CHECKING:
    from conftest_pg import Clock

# Fixtures clock, cred_store (SQLite + PostgreSQL), postgres_url, pg_schema.
pytest_plugins = ["conftest_pg"]

EMAIL = "Aino.Kettunen@Example.FI"
PASSWORD = "kuusi kissaa kiipeää puuhun"
NAMES = {"given_name": "Aino", "family_name": "Kettunen"}
LOW = Argon2Params.insecure_for_tests()


def session(
    clock: Clock,
    user: str = "acct-1",
    *,
    kind: str = "full",
    loa: Loa = Loa.SUBSTANTIAL,
    age: float = 0.0,
    identity: dict[str, Any] | None = None,
) -> Session:
    now = clock()
    return Session(
        id="sid-" + user,
        user=user,
        kind=kind,  # type: ignore[arg-type]
        loa=loa,
        created_at=now - age,
        last_seen=now,
        expires_at=now + 3600,
        epoch=0,
        csrf="csrf",
        identity=NAMES if identity is None else identity,
    )


class Env:
    def __init__(
        self,
        store: CredentialStore,
        clock: Clock,
        *,
        state: StateStore | None = None,
        throttle: ThrottlePolicy | None = None,
        argon2: Argon2Params = LOW,
        notify: Any = None,
    ) -> None:
        self.sink = MemorySink()
        self.audit = AuditLog([self.sink])
        self.state = state if state is not None else MemoryStore(now=clock)
        self.issuer = TokenIssuer(
            store,
            issuer="https://auth.example.test",
            audience="mobile-api",
            mobile_scopes=["invoices:read", "profile"],
            audit=self.audit,
            now=clock,
        )
        self.manager = CredentialManager(
            store,
            self.state,
            self.issuer,
            argon2=argon2,
            throttle=throttle,
            audit=self.audit,
            notify=notify,
            now=clock,
        )
        self.store = store


@pytest.fixture
def sqlite_store(tmp_path: Any, clock: Clock) -> Any:
    store = CredentialStore(f"sqlite:///{tmp_path}/cred.db", now=clock)
    yield store
    store.close()


@pytest.fixture
def env(sqlite_store: CredentialStore, clock: Clock) -> Env:
    return Env(sqlite_store, clock)


# --- password policy (PWD-02, PWD-03) ---------------------------------------------------

policy = PasswordPolicy()
_rng = random.Random(8)
LONG_1024 = "".join(_rng.choice("abcdefghijklmnopqrstuvwxyz ÄÖÅ0123456789") for _ in range(1024))


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("vihreä tee jäähtyy", None),  # 18 code points, spaces and non-ASCII allowed
        ("abcdefghij klmn", "password_blocklisted"),  # 15, a run: see below
        ("qx7 lumi vaahtera", None),
        ("kq7 lumi vaahter", None),  # exactly 16
        ("kq7 lumi vaahte", None),  # exactly 15 code points
        ("kq7 lumi vaaht", "password_too_short"),  # 14
        # 14 letters + one combining accent: NFKC composes "é" -> 14 code points.
        ("kq7 lumi vaahe\u0301", "password_too_short"),  # 15 raw, 14 after NFKC
        ("kq7 lumi vaahtée", None),  # precomposed: 15 after NFKC too
        (LONG_1024[:64], None),  # 64
        ("x" * 64, "password_blocklisted"),  # a run
        (LONG_1024, None),
        (LONG_1024 + "z", "password_too_long"),  # 1 025
        ("k" * 5000, "password_too_long"),  # refused before NFKC
        ("dragon", "password_too_short"),
        ("Password123456789", "password_blocklisted"),
        ("P@ssw0rd2024!!!!", "password_blocklisted"),
        ("ｐａｓｓｗｏｒｄ１２３４５６７８９", "password_blocklisted"),  # full-width → NFKC
        ("123456789012345", "password_blocklisted"),
        ("qwertyuiopasdfgh", "password_blocklisted"),
        ("monkeymonkeymonkey", "password_blocklisted"),
        ("sunshinebaseball!", "password_blocklisted"),
        ("correct horse battery staple", "password_blocklisted"),
        ("               ", "password_blocklisted"),
        ("aino rakastaa merta", "password_contains_context"),  # given name
        ("KETTUNEN-kesämökki", "password_contains_context"),  # family name, any case
        ("aino.kettunen on paras", "password_contains_context"),  # e-mail local part
        ("my authbroker phone pass", "password_contains_context"),  # service name
        ("\ud800 lone surrogate here", "password_invalid"),
    ],
)
def test_password_policy(password: str, code: str | None) -> None:
    kwargs = {"email": canonical_email(EMAIL), "names": ["Aino", "Kettunen"]}
    if code is None:
        assert policy.check(password, **kwargs)
        return
    with pytest.raises(InvalidInput) as exc:
        policy.check(password, **kwargs)
    assert exc.value.code == code
    assert password not in str(exc.value)


def test_policy_returns_nfkc_and_never_truncates() -> None:
    assert policy.check("ｋｑ７ ｌｕｍｉ ｖａａｈｔｅ") == "kq7 lumi vaahte"
    assert policy.check(LONG_1024) == LONG_1024


def test_policy_configuration_bounds() -> None:
    with pytest.raises(ConfigError):
        PasswordPolicy(min_length=7)
    with pytest.raises(ConfigError):
        PasswordPolicy(max_length=63)
    assert PasswordPolicy(min_length=8).check("kq7 lumi") == "kq7 lumi"


def test_shipped_blocklist() -> None:
    bl = Blocklist.default()
    assert len(bl) > 30_000  # well beyond ASVS's 3 000
    assert bl.matches("password") and bl.matches("Dragon")
    assert not bl.matches("kq7 lumi vaahtera")


# --- canonical e-mail (PWD-06, class C22) -----------------------------------------------


def test_canonical_email_variants_collapse() -> None:
    forms = [
        "Aino.Kettunen@Example.FI",
        " aino.kettunen@example.fi ",
        "ＡＩＮＯ.kettunen@example.fi",
    ]
    assert {canonical_email(f) for f in forms} == {"aino.kettunen@example.fi"}
    assert canonical_email("STRASSE@example.de") == canonical_email("straße@example.de")


@pytest.mark.parametrize(
    "bad",
    [
        "jöhn@gıthub.com",
        "no-at-sign",
        "@example.com",
        "a@b",
        "a b@example.com",
        "a@@b.fi",
        "x" * 300 + "@e.fi",
    ],
)
def test_canonical_email_rejects(bad: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        canonical_email(bad)
    assert exc.value.code == "email_invalid"


# --- enrollment needs a strong, recent session (PWD-01) ---------------------------------


@pytest.mark.parametrize(
    ("kind", "loa", "age", "code"),
    [
        ("link", Loa.LOW, 0.0, "step_up"),
        ("link", Loa.HIGH, 0.0, "step_up"),
        ("full", Loa.LOW, 0.0, "step_up"),
        ("full", Loa.HIGH, 16 * 60, "reauthentication_required"),
    ],
)
def test_enroll_refused_without_strong_recent_session(
    env: Env, clock: Clock, kind: str, loa: Loa, age: float, code: str
) -> None:
    weak = session(clock, kind=kind, loa=loa, age=age)
    with pytest.raises(InsufficientLoa) as exc:
        env.manager.enroll(weak, EMAIL, PASSWORD)
    assert isinstance(exc.value, AccessDenied) and exc.value.code == code
    assert env.store.credential_by_user("acct-1") is None  # no state changed
    assert env.sink.events == []
    with pytest.raises(InsufficientLoa):
        env.manager.change_password(weak, PASSWORD + " uusi")
    with pytest.raises(InsufficientLoa):
        env.manager.remove(weak)


def test_enroll_stores_argon2id_hash(env: Env, clock: Clock) -> None:
    notes: list[tuple[str, str]] = []
    env.manager.engine.notify_hook = lambda event, user: notes.append((event, user))
    info = env.manager.enroll(session(clock), EMAIL, PASSWORD)
    assert info.email == "aino.kettunen@example.fi"
    cred = env.store.credential_by_user("acct-1")
    assert cred is not None and cred.password_hash is not None
    assert cred.password_hash.startswith("$argon2id$v=19$")
    assert PASSWORD not in cred.password_hash
    assert notes == [("credential.enrolled", "acct-1")]
    assert env.sink.names() == ["credential.enrolled"]


def test_enroll_conflicts(env: Env, clock: Clock) -> None:
    env.manager.enroll(session(clock), EMAIL, PASSWORD)
    with pytest.raises(InvalidInput) as exc:
        env.manager.enroll(session(clock), "other@example.fi", PASSWORD)
    assert exc.value.code == "already_enrolled"
    with pytest.raises(InvalidInput) as exc:
        env.manager.enroll(session(clock, "acct-2", identity={}), EMAIL.upper(), PASSWORD)
    assert exc.value.code == "email_taken"
    with pytest.raises(InvalidInput) as exc:
        env.manager.enroll(session(clock, "acct-3"), "bad address", PASSWORD)
    assert exc.value.code == "email_invalid"


def test_default_argon2_parameters_are_owasp(sqlite_store: CredentialStore, clock: Clock) -> None:
    e = Env(sqlite_store, clock, argon2=Argon2Params())
    e.manager.enroll(session(clock), EMAIL, PASSWORD)
    cred = sqlite_store.credential_by_user("acct-1")
    assert cred is not None and cred.password_hash is not None
    params = extract_parameters(cred.password_hash)
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19456, 2, 1)
    assert params.salt_len == 16 and params.hash_len == 32
    with pytest.raises(ConfigError):
        Argon2Params(memory_cost=8192, time_cost=2)
    Argon2Params(memory_cost=12288, time_cost=3)  # another OWASP row
    Argon2Params(memory_cost=47104, time_cost=1)


# --- login and enumeration resistance (PWD-06) ------------------------------------------


def test_login_success_returns_tokens(env: Env, clock: Clock) -> None:
    env.manager.enroll(session(clock), EMAIL, PASSWORD)
    pair = env.manager.login(" AINO.kettunen@example.fi", PASSWORD, "Pixel 9", "198.51.100.1")
    claims = env.issuer.verify_access_token(pair.access_token, "mobile-api", "profile")
    assert claims.subject == "acct-1" and claims.device_id == pair.device_id
    # NFKC at login too: full-width input of the same password works.
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in PASSWORD)
    env.manager.login(EMAIL, full_width, None, None)


def _uniform_failures(env: Env, clock: Clock) -> list[AuthBrokerError]:
    env.manager.enroll(session(clock), EMAIL, PASSWORD)
    env.manager.enroll(session(clock, "acct-2", identity={}), "gone@example.fi", PASSWORD)
    env.manager.remove(session(clock, "acct-2", identity={}))
    errors: list[AuthBrokerError] = []
    for email, password in [
        ("nobody@example.fi", PASSWORD),  # unknown address
        (EMAIL, PASSWORD + "x"),  # wrong password
        ("gone@example.fi", PASSWORD),  # removed credential
        ("not an address", PASSWORD),  # malformed address
        (EMAIL, "y" * 2000),  # over the maximum length
        (EMAIL, ""),
    ]:
        with pytest.raises(AuthBrokerError) as exc:
            env.manager.login(email, password, "phone", None)
        errors.append(exc.value)
    return errors


def test_failures_are_indistinguishable(env: Env, clock: Clock) -> None:
    errors = _uniform_failures(env, clock)
    shapes = {(type(e), str(e), e.code, e.http_status, tuple(e.details.items())) for e in errors}
    assert len(shapes) == 1, shapes
    assert type(errors[0]) is AccessDenied and errors[0].code == "invalid_credentials"
    dumped = repr([e.to_dict() for e in env.sink.events])
    assert PASSWORD not in dumped and "kettunen" not in dumped.lower()


def test_enumeration_timing(sqlite_store: CredentialStore, clock: Clock) -> None:
    """R-12 (CI-sized): unknown address vs wrong password, interleaved; the medians
    must be within noise. Real figures with OWASP parameters: docs/mobile-credentials.md."""
    relaxed = ThrottlePolicy(
        free_failures=100_000, lock_after=100_001, hard_limit=None, ip_max_failures=None
    )
    e = Env(
        sqlite_store,
        clock,
        throttle=relaxed,
        argon2=Argon2Params.insecure_for_tests(time_cost=1, memory_cost=2048),
    )
    e.manager.enroll(session(clock), EMAIL, PASSWORD)
    unknown: list[float] = []
    wrong: list[float] = []
    for i in range(200):
        for email, bucket in (
            ((f"nobody{i}@example.fi", unknown), (EMAIL, wrong))
            if i % 2
            else ((EMAIL, wrong), (f"nobody{i}@example.fi", unknown))
        ):
            start = time.perf_counter()
            with pytest.raises(AccessDenied):
                e.manager.login(email, "wrong password here", None, None)
            bucket.append(time.perf_counter() - start)
    med_u, med_w = statistics.median(unknown), statistics.median(wrong)
    start = time.perf_counter()
    for _ in range(20):
        with contextlib.suppress(Exception):
            e.manager.engine.hasher.verify(e.manager.engine._dummy_hash, "x")
    one_verify = (time.perf_counter() - start) / 20
    # Generous bound for shared CI machines: half an argon2 verification.
    assert abs(med_u - med_w) < max(0.5 * one_verify, 0.002), (med_u, med_w, one_verify)


# --- throttling (PWD-05) ----------------------------------------------------------------

THROTTLE = ThrottlePolicy(
    free_failures=3,
    base_delay=2.0,
    max_delay=60.0,
    lock_after=6,
    lock_duration=900.0,
    hard_limit=None,
    ip_max_failures=None,
)


def _attempt(env: Env, email: str, password: str, ip: str | None = None) -> str:
    try:
        env.manager.login(email, password, None, ip)
        return "ok"
    except Locked as exc:
        return f"locked:{exc.code}"
    except RateLimited as exc:
        assert exc.retry_after is not None and exc.retry_after > 0
        return "wait"
    except AccessDenied:
        return "denied"


@pytest.mark.parametrize("target", [EMAIL, "nobody@example.fi"])
def test_backoff_then_lock(sqlite_store: CredentialStore, clock: Clock, target: str) -> None:
    """Existing and unknown addresses throttle identically (no enumeration)."""
    e = Env(sqlite_store, clock, throttle=THROTTLE)
    e.manager.enroll(session(clock), EMAIL, PASSWORD)
    log = [_attempt(e, target, "wrong password!!") for _ in range(3)]
    assert log == ["denied"] * 3  # free failures
    assert _attempt(e, target, PASSWORD) == "wait"  # even the right password waits
    clock.advance(2.0)
    assert _attempt(e, target, "wrong password!!") == "denied"  # 4th failure
    assert _attempt(e, target, "wrong password!!") == "wait"  # needs 4 s now
    clock.advance(4.0)
    assert _attempt(e, target, "wrong password!!") == "denied"  # 5th
    clock.advance(8.0)
    assert _attempt(e, target, "wrong password!!") == "denied"  # 6th: lock
    assert _attempt(e, target, PASSWORD) == "locked:temporarily_locked"
    clock.advance(899.0)
    assert _attempt(e, target, PASSWORD) == "locked:temporarily_locked"
    clock.advance(2.0)
    expected = "ok" if target == EMAIL else "denied"
    assert _attempt(e, target, PASSWORD) == expected
    assert "lockout" in e.sink.names()


def test_success_resets_failures(sqlite_store: CredentialStore, clock: Clock) -> None:
    e = Env(sqlite_store, clock, throttle=THROTTLE)
    e.manager.enroll(session(clock), EMAIL, PASSWORD)
    for _ in range(3):
        assert _attempt(e, EMAIL, "wrong password!!") == "denied"
    clock.advance(2.0)
    assert _attempt(e, EMAIL, PASSWORD) == "ok"
    assert [_attempt(e, EMAIL, "wrong password!!") for _ in range(3)] == ["denied"] * 3


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_concurrent_wrong_logins_counted_exactly(
    sqlite_store: CredentialStore, clock: Clock, tmp_path: Any, backend: str
) -> None:
    """200 concurrent wrong passwords with a frozen clock: exactly ``free_failures``
    are evaluated, the rest wait; a correct password afterwards is refused too."""
    state: StateStore = (
        MemoryStore(now=clock) if backend == "memory" else SqliteStore(tmp_path / "s.db", now=clock)
    )
    e = Env(sqlite_store, clock, throttle=THROTTLE, state=state)
    e.manager.enroll(session(clock), EMAIL, PASSWORD)
    n = 200
    out: list[str] = run_together(
        n, lambda i: _attempt(e, EMAIL, f"wrong password {i:03d}"), catch=()
    )
    assert out.count("denied") == THROTTLE.free_failures
    assert out.count("wait") == n - THROTTLE.free_failures
    attempt = e.manager.engine.login_attempt(EMAIL, None)
    assert (
        state.get(f"pwd:acct:{{{attempt.account}}}:fails") == str(THROTTLE.free_failures).encode()
    )
    assert _attempt(e, EMAIL, PASSWORD) == "wait"
    state.close()


def test_ip_limit(sqlite_store: CredentialStore, clock: Clock) -> None:
    e = Env(
        sqlite_store,
        clock,
        throttle=ThrottlePolicy(ip_max_failures=3, ip_window=600, hard_limit=None),
    )
    e.manager.enroll(session(clock), EMAIL, PASSWORD)
    for i in range(3):  # credential stuffing: one IP, many accounts
        assert _attempt(e, f"user{i}@example.fi", PASSWORD, "2001:db8::1") == "denied"
    assert _attempt(e, EMAIL, PASSWORD, "2001:db8::2") == "wait"  # same /64
    assert _attempt(e, EMAIL, PASSWORD, "::ffff:203.0.113.9") == "ok"
    clock.advance(601)
    assert _attempt(e, EMAIL, PASSWORD, "2001:db8::1") == "ok"


def test_hard_limit_needs_strong_session(sqlite_store: CredentialStore, clock: Clock) -> None:
    e = Env(
        sqlite_store,
        clock,
        throttle=ThrottlePolicy(free_failures=50, lock_after=60, hard_limit=4),
    )
    e.manager.enroll(session(clock), EMAIL, PASSWORD)
    notes: list[tuple[str, str]] = []
    e.manager.engine.notify_hook = lambda event, user: notes.append((event, user))
    assert [_attempt(e, EMAIL, "wrong password!!") for _ in range(4)] == ["denied"] * 4
    assert _attempt(e, EMAIL, PASSWORD) == "locked:account_locked"
    clock.advance(7 * 24 * 3600)  # waiting does not help: only a strong session does
    assert _attempt(e, EMAIL, PASSWORD) == "locked:account_locked"
    assert notes == [("lockout", "acct-1")]  # PWD-07: the user hears about it
    with pytest.raises(InsufficientLoa):
        e.manager.unlock(session(clock, loa=Loa.LOW))
    e.manager.unlock(session(clock))
    assert _attempt(e, EMAIL, PASSWORD) == "ok"


# --- rehash (PWD-04) --------------------------------------------------------------------


def test_transparent_rehash_on_parameter_change(
    sqlite_store: CredentialStore, clock: Clock
) -> None:
    old = Env(sqlite_store, clock, argon2=Argon2Params.insecure_for_tests(1, 64))
    old.manager.enroll(session(clock), EMAIL, PASSWORD)
    before = sqlite_store.credential_by_user("acct-1")
    assert before is not None and before.password_hash is not None
    assert "m=64,t=1,p=1" in before.password_hash
    new = Env(sqlite_store, clock, argon2=Argon2Params.insecure_for_tests(2, 128))
    with pytest.raises(AccessDenied):
        new.manager.login(EMAIL, "wrong password!!", None, None)
    same = sqlite_store.credential_by_user("acct-1")
    assert same is not None and same.password_hash == before.password_hash  # no rehash
    new.manager.login(EMAIL, PASSWORD, None, None)
    after = sqlite_store.credential_by_user("acct-1")
    assert after is not None and after.password_hash is not None
    assert "m=128,t=2,p=1" in after.password_hash
    assert after.changed_at == before.changed_at  # a rehash is not a password change
    new.manager.login(EMAIL, PASSWORD, None, None)  # still the same password
    again = sqlite_store.credential_by_user("acct-1")
    assert again is not None and again.password_hash == after.password_hash


# --- change, removal, devices (PWD-01, TOK-03) ------------------------------------------


def test_password_change_revokes_all_families(cred_store: CredentialStore, clock: Clock) -> None:
    e = Env(cred_store, clock)
    s = session(clock)
    e.manager.enroll(s, EMAIL, PASSWORD)
    phone = e.manager.login(EMAIL, PASSWORD, "phone", None)
    tablet = e.manager.login(EMAIL, PASSWORD, "tablet", None)
    new_password = "seitsemän sinistä purjevenettä"
    e.manager.change_password(s, new_password)
    for pair in (phone, tablet):
        with pytest.raises(InvalidInput) as exc:
            e.issuer.refresh(pair.refresh_token)
        assert exc.value.code == "token_revoked"
    assert {f.revoke_reason for f in cred_store.families_of("acct-1")} == {"password_changed"}
    with pytest.raises(AccessDenied):
        e.manager.login(EMAIL, PASSWORD, None, None)
    e.manager.login(EMAIL, new_password, None, None)
    with pytest.raises(InvalidInput) as exc2:
        e.manager.change_password(s, "Password123456789")
    assert exc2.value.code == "password_blocklisted"
    assert "credential.changed" in e.sink.names()


def test_remove_credential(cred_store: CredentialStore, clock: Clock) -> None:
    e = Env(cred_store, clock)
    s = session(clock)
    e.manager.enroll(s, EMAIL, PASSWORD)
    pair = e.manager.login(EMAIL, PASSWORD, "phone", None)
    e.manager.remove(s)
    with pytest.raises(InvalidInput):
        e.issuer.refresh(pair.refresh_token)
    with pytest.raises(AccessDenied) as exc:
        e.manager.login(EMAIL, PASSWORD, None, None)
    assert exc.value.code == "invalid_credentials"
    assert e.manager.list_devices(s) == []
    assert e.manager.credential(s) is None
    with pytest.raises(InvalidInput):
        e.manager.remove(s)
    e.manager.enroll(s, EMAIL, PASSWORD)  # the address is free again
    e.manager.login(EMAIL, PASSWORD, None, None)


def test_devices_list_and_revoke(cred_store: CredentialStore, clock: Clock) -> None:
    e = Env(cred_store, clock)
    s = session(clock)
    e.manager.enroll(s, EMAIL, PASSWORD)
    phone = e.manager.login(EMAIL, PASSWORD, "  Aino's\nphone\x00 ", None)
    clock.advance(1)
    tablet = e.manager.login(EMAIL, PASSWORD, "tablet", None)
    devices = e.manager.list_devices(s)
    assert [d.name for d in devices] == ["Aino's phone", "tablet"]
    assert [d.device_id for d in devices] == [phone.device_id, tablet.device_id]
    other = session(clock, "acct-9", identity={})
    assert e.manager.revoke_device(other, str(phone.device_id)) is False  # not theirs
    assert e.manager.revoke_device(s, str(phone.device_id)) is True
    assert e.manager.revoke_device(s, str(phone.device_id)) is False
    with pytest.raises(InvalidInput):
        e.issuer.refresh(phone.refresh_token)
    e.issuer.refresh(tablet.refresh_token)  # the other device is unaffected
    assert [d.name for d in e.manager.list_devices(s)] == ["tablet"]
    with pytest.raises(InsufficientLoa):
        e.manager.list_devices(session(clock, kind="link", loa=Loa.LOW))


async def test_async_manager(sqlite_store: CredentialStore, clock: Clock) -> None:
    e = Env(sqlite_store, clock)
    manager = AsyncCredentialManager(
        sqlite_store,
        AsyncMemoryStore(now=clock),
        e.issuer,
        argon2=LOW,
        throttle=THROTTLE,
        now=clock,
    )
    s = session(clock)
    await manager.enroll(s, EMAIL, PASSWORD)
    pair = await manager.login(EMAIL, PASSWORD, "phone", "192.0.2.1")
    assert e.issuer.verify_access_token(pair.access_token).subject == "acct-1"
    for _ in range(3):
        with pytest.raises(AccessDenied):
            await manager.login(EMAIL, "wrong password!!", None, None)
    with pytest.raises(RateLimited):
        await manager.login(EMAIL, PASSWORD, None, None)
    await manager.change_password(s, "uusi salasana merenrannalla")  # also clears throttle
    await manager.login(EMAIL, "uusi salasana merenrannalla", None, None)
    assert len(await manager.list_devices(s)) == 2
    assert (await manager.credential(s)) is not None
    await manager.remove(s)
    assert (await manager.credential(s)) is None


# --- one engine, one runtime (issue 17) ----------------------------------------------------


class _ThreadRecordingStore:
    """A CredentialStore proxy that records the thread each database call runs in."""

    def __init__(self, inner: CredentialStore) -> None:
        self.inner = inner
        self.threads: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.threads.append((name, threading.get_ident()))
            return attr(*args, **kwargs)

        return recorded


async def test_async_manager_never_blocks_the_loop(
    sqlite_store: CredentialStore, clock: Clock
) -> None:
    """Database and argon2 work of every async operation runs off the event loop."""
    recording = _ThreadRecordingStore(sqlite_store)
    store: Any = recording
    e = Env(store, clock)
    manager = AsyncCredentialManager(
        store, AsyncMemoryStore(now=clock), e.issuer, argon2=LOW, throttle=THROTTLE, now=clock
    )
    hashed_in: list[int] = []
    real = manager.engine.hasher

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def hash(self, password: str) -> str:
            hashed_in.append(threading.get_ident())
            return real.hash(password)

        def verify(self, stored: str, password: str) -> bool:
            hashed_in.append(threading.get_ident())
            return real.verify(stored, password)

    manager.engine.hasher = Recording()  # type: ignore[assignment]
    s = session(clock)
    await manager.enroll(s, EMAIL, PASSWORD)
    await manager.login(EMAIL, PASSWORD, "phone", None)
    await manager.change_password(s, "uusi salasana merenrannalla")
    await manager.revoke_device(s, "nope")
    await manager.remove(s)
    loop_thread = threading.get_ident()
    called = {name for name, _ in recording.threads}
    assert {"put_credential", "create_family", "set_password_hash", "remove_credential"} <= called
    assert all(t != loop_thread for _, t in recording.threads), recording.threads
    assert hashed_in and all(t != loop_thread for t in hashed_in)


async def test_async_notify_hook_is_awaited(sqlite_store: CredentialStore, clock: Clock) -> None:
    """Under asyncio the PWD-07 hook may be a coroutine function: it is awaited (it was
    called in a worker thread and its coroutine dropped before)."""
    notes: list[tuple[str, str]] = []

    async def notify(event: str, user: str) -> None:
        await asyncio.sleep(0)
        notes.append((event, user))

    e = Env(sqlite_store, clock)
    manager = AsyncCredentialManager(
        sqlite_store,
        AsyncMemoryStore(now=clock),
        e.issuer,
        argon2=LOW,
        notify=notify,
        now=clock,
    )
    s = session(clock)
    await manager.enroll(s, EMAIL, PASSWORD)
    await manager.change_password(s, "uusi salasana merenrannalla")
    assert notes == [("credential.enrolled", "acct-1"), ("credential.changed", "acct-1")]


def test_async_notify_hook_under_blocking_manager_is_logged_not_fatal(
    env: Env, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async def notify(event: str, user: str) -> None:  # pragma: no cover - never awaited
        raise AssertionError("must not run")

    env.manager.engine.notify_hook = notify
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "never awaited" coroutine
        env.manager.enroll(session(clock), EMAIL, PASSWORD)
    assert env.store.credential_by_user("acct-1") is not None
    assert "notification hook failed" in caplog.text


def test_engine_routines_compose_in_one_run(env: Env, clock: Clock) -> None:
    """``manager.engine.login`` is the whole operation: it composes with other engines'
    routines (a token check with a revocation lookup) in one run of one runtime."""

    def login_and_check() -> Gen[str]:
        pair = yield from env.manager.engine.login(EMAIL, PASSWORD, "phone", None)
        claims = yield from env.issuer.engine.verify_access_token(
            pair.access_token, check_revocation=True
        )
        return claims.subject

    env.manager.enroll(session(clock), EMAIL, PASSWORD)
    assert env.manager.run(login_and_check()) == "acct-1"
    assert list(inspect.signature(env.manager.login).parameters) == [
        "email",
        "password",
        "device",
        "client_ip",
        "scope",
    ]


async def test_failed_database_refunds_reservations_under_asyncio(
    sqlite_store: CredentialStore, clock: Clock
) -> None:
    """A login whose database call fails is not evaluated: every throttle reservation is
    given back (the exception reaches the routine through the asyncio runtime)."""
    state = AsyncMemoryStore(now=clock)
    e = Env(sqlite_store, clock)
    manager = AsyncCredentialManager(
        sqlite_store, state, e.issuer, argon2=LOW, throttle=THROTTLE, now=clock
    )
    await manager.enroll(session(clock), EMAIL, PASSWORD)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("database down")

    real = sqlite_store.credential_by_email
    sqlite_store.credential_by_email = down  # type: ignore[method-assign]
    for _ in range(THROTTLE.free_failures + 3):
        with pytest.raises(StoreUnavailable):
            await manager.login(EMAIL, "wrong password!!", None, "192.0.2.7")
    sqlite_store.credential_by_email = real  # type: ignore[method-assign]
    attempt = manager.engine.login_attempt(EMAIL, "192.0.2.7")
    assert await state.get(f"pwd:acct:{{{attempt.account}}}:fails") in (None, b"0")
    assert await state.get("pwd:ip:192.0.2.7") in (None, b"0")
    await manager.login(EMAIL, PASSWORD, None, "192.0.2.7")
