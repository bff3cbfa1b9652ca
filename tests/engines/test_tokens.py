"""Mobile access tokens (JWT) and rotating refresh-token families (TOK-01..TOK-04).

Refresh-token storage and rotation run on SQLite and on a real PostgreSQL
(``cred_store`` is parametrized; PostgreSQL skips locally when absent, fails in CI).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import jwt
import pytest

from authbroker.audit import AuditLog, MemorySink
from authbroker.credential_store import SCHEMA_VERSION, CredentialStore
from authbroker.crypto.jose import Key, sign_jwt
from authbroker.engines.credentials import Argon2Params, CredentialManager
from authbroker.engines.sessions import Session
from authbroker.engines.tokens import AsyncTokenIssuer, TokenIssuer, hash_refresh_token
from authbroker.errors import (
    AccessDenied,
    AlreadyUsed,
    ConfigError,
    Expired,
    InvalidInput,
    InvalidSignature,
    ScopeDenied,
)
from authbroker.identity import Loa
from authbroker.store import MemoryStore
from conftest import run_together

if TYPE_CHECKING:
    from conftest_pg import Clock

# Fixtures clock, cred_store (SQLite + PostgreSQL), postgres_url, pg_schema.
pytest_plugins = ["conftest_pg"]

ISS = "https://auth.example.test"
AUD = "mobile-api"
SCOPES = ("invoices:read", "invoices:approve", "profile")
DAY = 24 * 3600.0


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def issuer(cred_store: CredentialStore, clock: Clock, sink: MemorySink) -> TokenIssuer:
    return TokenIssuer(
        cred_store,
        issuer=ISS,
        audience=AUD,
        mobile_scopes=SCOPES,
        audit=AuditLog([sink]),
        now=clock,
    )


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One SQLite store for the tests about JWTs alone (no storage behaviour)."""
    path = tmp_path_factory.mktemp("tokens") / "shared.db"
    store = CredentialStore(f"sqlite:///{path}")
    yield store
    store.close()


@pytest.fixture
def jwt_issuer(shared_store: CredentialStore, clock: Clock, sink: MemorySink) -> TokenIssuer:
    return TokenIssuer(
        shared_store,
        issuer=ISS,
        audience=AUD,
        mobile_scopes=SCOPES,
        audit=AuditLog([sink]),
        now=clock,
    )


def pyjwt_decode(issuer: TokenIssuer, token: str, **kw: Any) -> dict[str, Any]:
    """Verify as an independent resource server would: PyJWT + the published JWKS."""
    jwks = jwt.PyJWKSet.from_dict(issuer.jwks())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    options = kw.pop("options", {})
    return jwt.decode(
        token,
        key.key,
        algorithms=[issuer.alg],
        audience=AUD,
        issuer=ISS,
        options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"], **options},
        **kw,
    )


# --- access tokens ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_access_token_verifies_with_pyjwt(shared_store: CredentialStore, alg: Any) -> None:
    issuer = TokenIssuer(
        shared_store, issuer=ISS, audience=AUD, mobile_scopes=SCOPES, alg=alg, now=time.time
    )
    pair = issuer.issue("acct-1", device_id="dev-1", scope="invoices:read")
    header = jwt.get_unverified_header(pair.access_token)
    assert header == {"alg": alg, "kid": issuer.current_kid, "typ": "at+jwt"}
    claims = pyjwt_decode(issuer, pair.access_token)
    assert claims["sub"] == "acct-1"
    assert claims["scope"] == "invoices:read"
    assert claims["client_id"] == "mobile-app"
    assert claims["did"] == "dev-1"
    assert 0 < claims["exp"] - claims["iat"] <= 15 * 60
    assert set(claims) == {
        "iss",
        "aud",
        "sub",
        "client_id",
        "scope",
        "jti",
        "iat",
        "exp",
        "sid",
        "did",
    }
    # Our own resource-server check agrees.
    verified = issuer.verify_access_token(pair.access_token, AUD, "invoices:read")
    assert verified.subject == "acct-1" and verified.device_id == "dev-1"


def test_jwks_is_public_only(jwt_issuer: TokenIssuer) -> None:
    jwks = jwt_issuer.jwks()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert key["kid"] == jwt_issuer.current_kid and key["alg"] == "EdDSA" and key["use"] == "sig"
    assert "d" not in key


def test_scope_limited_to_mobile_scopes(jwt_issuer: TokenIssuer) -> None:
    with pytest.raises(ScopeDenied):
        jwt_issuer.issue("acct-1", scope="invoices:read admin")
    with pytest.raises(ScopeDenied):
        jwt_issuer.issue("acct-1", scope="")
    pair = jwt_issuer.issue("acct-1")  # default: all mobile scopes
    assert set(pair.scope.split()) == set(SCOPES)
    limited = jwt_issuer.issue("acct-1", scope=["profile"])
    with pytest.raises(ScopeDenied) as exc:
        jwt_issuer.verify_access_token(limited.access_token, AUD, "invoices:approve")
    assert exc.value.code == "insufficient_scope"
    # A token carrying a non-mobile scope, even if signed with our key, is refused.
    forged = sign_jwt(
        _claims(jwt_issuer, scope="profile admin"),
        jwt_issuer.engine._current,
        alg="EdDSA",
        headers={"typ": "at+jwt"},
    )
    with pytest.raises(ScopeDenied):
        jwt_issuer.verify_access_token(forged, AUD)


def _claims(issuer: TokenIssuer, **over: Any) -> dict[str, Any]:
    now = int(issuer.now())
    claims = {
        "iss": ISS,
        "aud": AUD,
        "sub": "acct-1",
        "client_id": "mobile-app",
        "scope": "profile",
        "jti": "j1",
        "iat": now,
        "exp": now + 300,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("over", "headers", "error", "code"),
    [
        ({"aud": "other-api"}, {"typ": "at+jwt"}, InvalidInput, "wrong_audience"),
        ({"iss": "https://evil.test"}, {"typ": "at+jwt"}, InvalidInput, "wrong_issuer"),
        ({}, {"typ": "JWT"}, InvalidInput, "wrong_token_type"),
        ({}, {}, InvalidInput, "wrong_token_type"),
        ({"exp": None}, {"typ": "at+jwt"}, InvalidInput, "missing_claim"),
        ({"exp": "9999999999"}, {"typ": "at+jwt"}, InvalidInput, "bad_claim"),
        ({"iat": 1_800_000_000 + 3600}, {"typ": "at+jwt"}, InvalidInput, "not_yet_valid"),
        ({"exp": 1_800_000_000 - 31}, {"typ": "at+jwt"}, Expired, "token_expired"),
        ({"sub": None}, {"typ": "at+jwt"}, InvalidInput, "missing_claim"),
    ],
)
def test_verify_access_token_rejects(
    jwt_issuer: TokenIssuer,
    over: dict[str, Any],
    headers: dict[str, Any],
    error: type[Exception],
    code: str,
) -> None:
    token = sign_jwt(
        _claims(jwt_issuer, **over), jwt_issuer.engine._current, alg="EdDSA", headers=headers
    )
    with pytest.raises(error) as exc:
        jwt_issuer.verify_access_token(token, AUD)
    assert getattr(exc.value, "code", None) == code


def test_verify_rejects_foreign_key_tampering_and_other_alg(jwt_issuer: TokenIssuer) -> None:
    stranger = Key.generate("OKP", use="sig", alg="EdDSA", kid=jwt_issuer.current_kid)
    forged = sign_jwt(_claims(jwt_issuer), stranger, alg="EdDSA", headers={"typ": "at+jwt"})
    with pytest.raises(InvalidSignature):
        jwt_issuer.verify_access_token(forged, AUD)
    good = jwt_issuer.issue("acct-1").access_token
    h, p, s = good.split(".")
    tampered = f"{h}.{p[:-2]}{'A' if p[-2] != 'A' else 'B'}{p[-1]}.{s}"
    with pytest.raises(InvalidInput):
        jwt_issuer.verify_access_token(tampered, AUD)
    es = Key.generate("EC", use="sig", alg="ES256")
    other = sign_jwt(_claims(jwt_issuer), es, alg="ES256", headers={"typ": "at+jwt"})
    with pytest.raises(InvalidInput):
        jwt_issuer.verify_access_token(other, AUD)
    with pytest.raises(InvalidInput):
        jwt_issuer.verify_access_token("eyJhbGciOiJub25lIn0.e30.", AUD)


def test_access_token_expires(jwt_issuer: TokenIssuer, clock: Clock) -> None:
    token = jwt_issuer.issue("acct-1").access_token
    clock.advance(jwt_issuer.access_ttl + jwt_issuer.leeway - 1)
    jwt_issuer.verify_access_token(token, AUD)
    clock.advance(2)
    with pytest.raises(Expired):
        jwt_issuer.verify_access_token(token, AUD)


def test_key_rotation_keeps_old_key_until_its_tokens_expire(
    jwt_issuer: TokenIssuer, clock: Clock
) -> None:
    old_kid = jwt_issuer.current_kid
    old_token = jwt_issuer.issue("acct-1").access_token
    jwt_issuer.rotate_key()
    new_token = jwt_issuer.issue("acct-1").access_token
    assert jwt.get_unverified_header(new_token)["kid"] == jwt_issuer.current_kid != old_kid
    kids = [k["kid"] for k in jwt_issuer.jwks()["keys"]]
    assert kids == [jwt_issuer.current_kid, old_kid]
    # Both verify, by us and by PyJWT with the published JWKS (use real time there).
    jwt_issuer.verify_access_token(old_token, AUD)
    jwt_issuer.verify_access_token(new_token, AUD)
    pyjwt_decode(jwt_issuer, old_token, options={"verify_exp": False, "verify_iat": False})
    clock.advance(jwt_issuer.access_ttl + jwt_issuer.leeway + 1)
    assert [k["kid"] for k in jwt_issuer.jwks()["keys"]] == [jwt_issuer.current_kid]
    with pytest.raises(InvalidInput) as exc:
        jwt_issuer.verify_access_token(old_token, AUD)
    assert exc.value.code == "unknown_kid"


def test_config_validation(shared_store: CredentialStore) -> None:
    cred_store = shared_store
    base: dict[str, Any] = {"issuer": ISS, "audience": AUD, "mobile_scopes": SCOPES}
    with pytest.raises(ConfigError):
        TokenIssuer(cred_store, **base, access_ttl=16 * 60)
    with pytest.raises(ConfigError):
        TokenIssuer(cred_store, **base, alg="RS256")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        TokenIssuer(cred_store, issuer=ISS, audience=AUD, mobile_scopes=[])
    with pytest.raises(ConfigError):
        TokenIssuer(cred_store, **base, refresh_idle_ttl=70 * DAY)
    with pytest.raises(ConfigError):
        TokenIssuer(cred_store, **base, signing_key=Key.generate("EC", use="sig", alg="ES256"))


# --- refresh tokens ---------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_family(
    issuer: TokenIssuer, cred_store: CredentialStore, sink: MemorySink
) -> None:
    first = issuer.issue("acct-1", device_id="dev-1")
    second = issuer.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.device_id == "dev-1" and second.scope == first.scope
    third = issuer.refresh(second.refresh_token)
    family_id = issuer.verify_access_token(third.access_token).family_id
    assert family_id is not None
    assert [r["used"] for r in cred_store.token_rows(family_id)] == [1, 1, 0]

    with pytest.raises(AlreadyUsed) as exc:
        issuer.refresh(first.refresh_token)  # replay of a rotated token
    assert exc.value.code == "refresh_token_reused"
    fam = cred_store.family(family_id)
    assert fam is not None and fam.revoked_at is not None
    assert fam.revoke_reason == "reuse_detected"
    # The whole family is dead, including the newest token and its access tokens.
    with pytest.raises(InvalidInput) as exc2:
        issuer.refresh(third.refresh_token)
    assert exc2.value.code == "token_revoked"
    with pytest.raises(InvalidInput):
        issuer.verify_access_token(third.access_token, check_revocation=True)
    issuer.verify_access_token(third.access_token)  # without the check: short-lived
    assert "token.reuse_detected" in sink.names()


def test_refresh_tokens_stored_only_hashed(
    issuer: TokenIssuer, cred_store: CredentialStore
) -> None:
    pair = issuer.issue("acct-1")
    family = cred_store.family_of_token(hash_refresh_token(pair.refresh_token))
    assert family is not None
    tokens = cred_store.t["tokens"]
    with cred_store.engine.connect() as conn:
        rows = [tuple(map(str, r)) for r in conn.execute(tokens.select())]
    assert rows and not any(pair.refresh_token in v for row in rows for v in row)
    assert len(pair.refresh_token) == 43  # 256 bits, base64url


@pytest.mark.parametrize("bad", ["", "x" * 43 + "=", "short", "a" * 400, None, 42])
def test_malformed_refresh_token(jwt_issuer: TokenIssuer, bad: Any) -> None:
    with pytest.raises(InvalidInput) as exc:
        jwt_issuer.refresh(bad)
    assert exc.value.code == "invalid_grant"
    with pytest.raises(InvalidInput):
        jwt_issuer.refresh("A" * 43)  # well-formed but unknown


def test_idle_expiry(issuer: TokenIssuer, clock: Clock, cred_store: CredentialStore) -> None:
    pair = issuer.issue("acct-1")
    clock.advance(14 * DAY - 1)
    pair = issuer.refresh(pair.refresh_token)  # in time: the idle clock restarts
    clock.advance(14 * DAY)
    with pytest.raises(Expired):
        issuer.refresh(pair.refresh_token)


def test_absolute_expiry(issuer: TokenIssuer, clock: Clock) -> None:
    pair = issuer.issue("acct-1")
    assert pair.refresh_expires_at == clock() + 14 * DAY
    for _ in range(4):  # 4 × 13 days = 52 days, always within the idle window
        clock.advance(13 * DAY)
        pair = issuer.refresh(pair.refresh_token)
    assert pair.refresh_expires_at == 1_800_000_000.0 + 60 * DAY
    clock.advance(8 * DAY)  # day 60
    with pytest.raises(Expired):
        issuer.refresh(pair.refresh_token)


def test_revoke_logout(jwt_issuer: TokenIssuer) -> None:
    pair = jwt_issuer.issue("acct-1")
    assert jwt_issuer.revoke(pair.refresh_token) is True
    assert jwt_issuer.revoke(pair.refresh_token) is False  # already revoked
    assert jwt_issuer.revoke("B" * 43) is False  # unknown: no error (RFC 7009 §2.2)
    assert jwt_issuer.revoke("nonsense") is False
    with pytest.raises(InvalidInput):
        jwt_issuer.refresh(pair.refresh_token)


def test_concurrent_refresh_exactly_one_pair(
    issuer: TokenIssuer, cred_store: CredentialStore
) -> None:
    """R-04 / TOK-04: 50 concurrent refreshes of one token → exactly one new pair;
    policy "reuse ⇒ revoke family": afterwards the family is revoked."""
    pair = issuer.issue("acct-1", device_id="dev-1")
    family_id = issuer.verify_access_token(pair.access_token).family_id
    assert family_id is not None
    results = run_together(50, lambda _: issuer.refresh(pair.refresh_token))
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(
        isinstance(e, AlreadyUsed) or (isinstance(e, InvalidInput) and e.code == "token_revoked")
        for e in losers
    ), {type(e).__name__ for e in losers}
    assert any(isinstance(e, AlreadyUsed) for e in losers)
    fam = cred_store.family(family_id)
    assert fam is not None and fam.revoke_reason == "reuse_detected"
    rows = cred_store.token_rows(family_id)
    assert [(r["generation"], r["used"]) for r in rows] == [(0, 1), (1, 0)]
    with pytest.raises(InvalidInput):
        issuer.refresh(winners[0].refresh_token)


async def test_async_concurrent_refresh(issuer: TokenIssuer) -> None:
    aissuer = AsyncTokenIssuer(issuer)
    pair = await aissuer.issue("acct-1")
    results = await asyncio.gather(
        *(aissuer.refresh(pair.refresh_token) for _ in range(20)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    claims = await aissuer.verify_access_token(pair.access_token, AUD, "profile")
    with pytest.raises(InvalidInput):
        await aissuer.verify_access_token(pair.access_token, AUD, check_revocation=True)
    assert claims.subject == "acct-1"


async def test_async_issuer_offloads_only_database_work(issuer: TokenIssuer) -> None:
    """A plain access-token check stays on the event loop (no thread hop); the
    revocation lookup and every write run in a worker thread."""
    threads: list[tuple[str, int]] = []
    real_store = issuer.store

    class Recording:
        def __getattr__(self, name: str) -> Any:
            attr = getattr(real_store, name)

            def recorded(*args: Any, **kwargs: Any) -> Any:
                threads.append((name, threading.get_ident()))
                return attr(*args, **kwargs)

            return recorded

    issuer.engine.store = Recording()  # type: ignore[assignment]
    aissuer = AsyncTokenIssuer(issuer)
    loop_thread = threading.get_ident()
    pair = await aissuer.issue("acct-1")
    await aissuer.verify_access_token(pair.access_token, AUD)
    assert [name for name, _ in threads] == ["create_family"]
    await aissuer.verify_access_token(pair.access_token, AUD, check_revocation=True)
    await aissuer.refresh(pair.refresh_token)
    assert [name for name, _ in threads] == ["create_family", "family_active", "rotate"]
    assert all(t != loop_thread for _, t in threads)


# --- schema -----------------------------------------------------------------------------


def test_migrations_are_versioned_and_idempotent(cred_store: CredentialStore) -> None:
    assert cred_store.schema_version() == SCHEMA_VERSION
    again = CredentialStore(
        cred_store.engine, schema=cred_store.metadata.schema, now=cred_store.now
    )
    assert again.migrate() == SCHEMA_VERSION  # nothing to do
    sv = cred_store.t["schema_version"]
    with cred_store.engine.begin() as conn:
        conn.execute(sv.update().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(ConfigError) as exc:
        cred_store.migrate()
    assert exc.value.code == "schema_too_new"


def test_purge_removes_dead_families(
    issuer: TokenIssuer, cred_store: CredentialStore, clock: Clock
) -> None:
    old = issuer.issue("acct-1")
    clock.advance(61 * DAY)
    fresh = issuer.issue("acct-1")
    assert cred_store.purge(clock()) == 1
    assert cred_store.family_of_token(hash_refresh_token(old.refresh_token)) is None
    assert cred_store.family_of_token(hash_refresh_token(fresh.refresh_token)) is not None


# --- the whole path (issue 8 "Checked by") ----------------------------------------------


def test_enroll_login_refresh_reuse_end_to_end(
    cred_store: CredentialStore, clock: Clock, sink: MemorySink
) -> None:
    """Enroll from a strong session → login → refresh → replay → family revoked,
    through the public API, on SQLite and PostgreSQL; access token checked by PyJWT."""
    audit = AuditLog([sink])
    issuer = TokenIssuer(
        cred_store, issuer=ISS, audience=AUD, mobile_scopes=SCOPES, audit=audit, now=time.time
    )
    manager = CredentialManager(
        cred_store,
        MemoryStore(),
        issuer,
        argon2=Argon2Params.insecure_for_tests(),
        audit=audit,
        now=time.time,
    )
    now = time.time()
    session = Session(
        id="s1",
        user="acct-42",
        kind="full",
        loa=Loa.HIGH,
        created_at=now,
        last_seen=now,
        expires_at=now + 3600,
        epoch=0,
        csrf="c",
        identity={"given_name": "Maija", "family_name": "Virtanen"},
    )
    password = "lumisade kattojen yllä illalla"
    manager.enroll(session, "Maija.Virtanen@Example.FI", password)
    pair = manager.login("maija.virtanen@example.fi", password, "Maija's phone", "192.0.2.7")
    claims = pyjwt_decode(issuer, pair.access_token)
    assert claims["sub"] == "acct-42" and claims["did"] == pair.device_id
    refreshed = issuer.refresh(pair.refresh_token, client_ip="192.0.2.7")
    pyjwt_decode(issuer, refreshed.access_token)
    with pytest.raises(AlreadyUsed):
        issuer.refresh(pair.refresh_token)  # the old token comes back: theft or bug
    families = cred_store.families_of("acct-42")
    assert len(families) == 1 and families[0].revoke_reason == "reuse_detected"
    with pytest.raises(InvalidInput):
        issuer.refresh(refreshed.refresh_token)
    with pytest.raises(InvalidInput):
        issuer.verify_access_token(refreshed.access_token, AUD, check_revocation=True)
    # A fresh password login is the way back.
    again = manager.login("MAIJA.VIRTANEN@example.fi", password, "Maija's phone", "192.0.2.7")
    issuer.verify_access_token(again.access_token, AUD, "profile", check_revocation=True)
    with pytest.raises(AccessDenied):
        manager.login("maija.virtanen@example.fi", password + "!", None, "192.0.2.7")
    names = sink.names()
    for expected in (
        "credential.enrolled",
        "login.succeeded",
        "token.issued",
        "token.refreshed",
        "token.reuse_detected",
        "token.revoked",
        "login.failed",
    ):
        assert expected in names
    dumped = repr([e.to_dict() for e in sink.events])
    assert password not in dumped and pair.refresh_token not in dumped
    assert "maija.virtanen" not in dumped.lower()
