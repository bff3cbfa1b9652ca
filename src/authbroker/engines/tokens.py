"""Access and refresh tokens for the mobile apps.

After an email/password login (:mod:`authbroker.engines.credentials`) a mobile app holds:

* a short-lived **access token**: a JWT (RFC 9068 "JWT profile for OAuth 2.0 access
  tokens") signed with EdDSA (Ed25519) or ES256, header ``typ: at+jwt`` and ``kid``;
  claims ``iss``, ``aud``, ``sub`` (the account id), ``client_id``, ``scope`` (only
  the configured mobile scopes), ``jti``, ``iat``, ``exp`` (at most 15 minutes,
  TOK-01), ``sid`` (the refresh-token family, for revocation checks) and ``did``
  (the device). Any resource server can verify it with the published JWKS
  (:meth:`TokenIssuer.jwks`); ours calls :meth:`TokenIssuer.verify_access_token`.
* an opaque **refresh token**: 256 random bits, stored only as a SHA-256 hash. Mobile
  apps are public clients, so RFC 9700 §2.2.2 requires rotation (or sender
  constraint): every use returns a new refresh token and consumes the old one. All
  tokens descending from one login form a *family*; presenting a token that was
  already rotated means two parties hold the lineage, and the whole family is
  revoked (RFC 9700 §4.14.2), forcing a new password login.

Concurrency policy (TOK-04, decision 6 of the security requirements): rotation is
one atomic step in the credential database. If the same refresh token is presented
N times at once, exactly one call rotates it; every other call is treated as reuse
and revokes the family — including the pair the winner just received. A legitimate
app that retries a refresh whose response it lost therefore has to log in again.
No grace window is offered: handing the successor back to a retry would require
keeping the successor token recoverable, and a second successor is never minted.

Signing keys rotate with :meth:`TokenIssuer.rotate_key`: the new key signs at once,
the previous one stays in the JWKS (and verifies) until every token it signed has
expired (access lifetime plus leeway).

The rules live once in :class:`TokenEngine`, whose database operations are routines
that hand the blocking SQL to the runtime with ``yield from offload(...)``: the
blocking :class:`TokenIssuer` runs it in place, :class:`AsyncTokenIssuer` in a worker
thread. Other engines (the credential engine) compose these routines with
``yield from``.

Why one module above the usual size: the token rules (claims, rotation outcomes,
key rotation) are one concern that reads top to bottom, and about a sixth of the
file is the two declared facades, which must stay next to the engine whose
operations they list.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Required, TypedDict, Unpack

from ..audit import AuditLog
from ..credential_store import FamilyRecord, Rotation
from ..crypto.jose import Key, KeySet, sign_jwt, verify_jwt
from ..errors import (
    AlreadyUsed,
    ConfigError,
    Expired,
    InvalidInput,
    ScopeDenied,
)
from ..kernel import (
    AsyncFacade,
    AsyncRuntime,
    Gen,
    SyncFacade,
    SyncRuntime,
    offload,
    op,
)

if TYPE_CHECKING:
    from ..credential_store import CredentialStore

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "AccessTokenClaims",
    "AsyncTokenIssuer",
    "TokenEngine",
    "TokenIssuer",
    "TokenPair",
    "hash_refresh_token",
]

#: RFC 9068 §2.1 ``typ`` of our access tokens; ``application/at+jwt`` is accepted too.
ACCESS_TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 - a media type, not a secret
_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
#: TOK-01: access tokens live at most 15 minutes.
MAX_ACCESS_TTL: Final = 15 * 60
_ALGS: Final = frozenset({"EdDSA", "ES256"})
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token
_REFRESH_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """What the database keeps of a refresh token (high entropy: a plain hash is enough)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenPair:
    """The result of a login or refresh; tokens never appear in ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    scope: str
    device_id: str | None
    refresh_expires_at: float
    token_type: str = "Bearer"  # noqa: S105 - RFC 6750 token type name

    def to_response(self) -> dict[str, Any]:
        """The RFC 6749 §5.1 token response body."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    """A verified access token."""

    subject: str
    scopes: frozenset[str]
    client_id: str
    jti: str
    issued_at: float
    expires_at: float
    family_id: str | None
    device_id: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def _parse_scopes(scope: str | Iterable[str]) -> frozenset[str]:
    items = scope.split() if isinstance(scope, str) else list(scope)
    for item in items:
        if not isinstance(item, str) or _SCOPE_TOKEN.fullmatch(item) is None:
            raise InvalidInput("scope is malformed", code="invalid_scope")
    return frozenset(items)


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"access token has no {name}", code="missing_claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"access token {name} is not a number", code="bad_claim")
    return float(value)


class TokenEngine:
    """Issues, rotates, revokes and verifies the mobile tokens (the rules, no I/O).

    ``mobile_scopes`` is the closed set of scopes a mobile token may carry; a login
    asks for a subset (default: all of them). ``signing_key`` defaults to a fresh
    key of ``alg``; deployments with several instances pass the same key to each
    (and rotate by deploying the new key with the old one in ``verification_keys``).
    """

    def __init__(
        self,
        store: CredentialStore,
        *,
        issuer: str,
        audience: str,
        mobile_scopes: Iterable[str],
        client_id: str = "mobile-app",
        alg: Literal["EdDSA", "ES256"] = "EdDSA",
        signing_key: Key | None = None,
        verification_keys: Iterable[Key] = (),
        access_ttl: float = 10 * 60,
        refresh_absolute_ttl: float = 60 * 24 * 3600,
        refresh_idle_ttl: float = 14 * 24 * 3600,
        leeway: float = 30.0,
        audit: AuditLog | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if alg not in _ALGS:
            raise ConfigError("access tokens are signed with EdDSA or ES256", key="tokens.alg")
        if not issuer or not audience:
            raise ConfigError("issuer and audience are required", key="tokens.issuer")
        if not 0 < access_ttl <= MAX_ACCESS_TTL:
            raise ConfigError("access_ttl must be in (0, 900] seconds", key="tokens.access_ttl")
        if not 0 < refresh_idle_ttl <= refresh_absolute_ttl:
            raise ConfigError(
                "refresh_idle_ttl must be positive and at most refresh_absolute_ttl",
                key="tokens.refresh_idle_ttl",
            )
        if not 0 <= leeway <= 60:
            raise ConfigError("leeway must be within 0..60 seconds", key="tokens.leeway")
        try:
            scopes = _parse_scopes(mobile_scopes)
        except InvalidInput as exc:
            raise ConfigError("mobile scopes are malformed", key="tokens.mobile_scopes") from exc
        if not scopes:
            raise ConfigError("at least one mobile scope is needed", key="tokens.mobile_scopes")
        self.store = store
        self.issuer = issuer
        self.audience = audience
        self.mobile_scopes = scopes
        self.client_id = client_id
        self.alg = alg
        self.access_ttl = access_ttl
        self.refresh_absolute_ttl = refresh_absolute_ttl
        self.refresh_idle_ttl = refresh_idle_ttl
        self.leeway = leeway
        self.audit = audit or AuditLog()
        self.now = now
        self._lock = threading.Lock()
        self._current = signing_key or self._generate()
        if not self._current.is_private or self._current.alg not in (None, alg):
            raise ConfigError("signing key does not fit alg", key="tokens.signing_key")
        # Keys kept for verification only, with the time they may be dropped.
        self._previous: list[tuple[Key, float]] = [(k, math.inf) for k in verification_keys]
        self._keyset = self._build_keyset()

    def __repr__(self) -> str:
        return f"TokenEngine(issuer={self.issuer!r}, audience={self.audience!r})"

    # --- keys -------------------------------------------------------------------------

    def _generate(self) -> Key:
        kty: Literal["OKP", "EC"] = "OKP" if self.alg == "EdDSA" else "EC"
        return Key.generate(kty, use="sig", alg=self.alg)

    def _build_keyset(self) -> KeySet:
        now = self.now()
        self._previous = [(k, t) for k, t in self._previous if t > now]
        return KeySet([self._current, *(k for k, _ in self._previous)])

    @property
    def current_kid(self) -> str:
        return self._current.kid

    def rotate_key(self, new_key: Key | None = None) -> Key:
        """Sign with ``new_key`` (or a fresh one) from now on; keep the old key in the
        JWKS until the last token it signed has expired."""
        key = new_key or self._generate()
        if not key.is_private or key.alg not in (None, self.alg):
            raise ConfigError("signing key does not fit alg", key="tokens.signing_key")
        with self._lock:
            retire_at = self.now() + self.access_ttl + self.leeway
            self._previous.insert(0, (self._current, retire_at))
            self._current = key
            self._keyset = self._build_keyset()
        return key

    def jwks(self) -> dict[str, Any]:
        """The public JWKS to publish (current key first, then keys still verifying)."""
        with self._lock:
            self._keyset = self._build_keyset()
            return self._keyset.to_public_jwks()

    # --- issuing ----------------------------------------------------------------------

    def _check_scope(self, scope: str | Iterable[str] | None) -> frozenset[str]:
        if scope is None:
            return self.mobile_scopes
        asked = _parse_scopes(scope)
        if not asked or not asked <= self.mobile_scopes:
            raise ScopeDenied("a mobile token cannot carry this scope", code="invalid_scope")
        return asked

    def _access_token(self, family: FamilyRecord, now: float) -> str:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": family.user_id,
            "client_id": family.client_id,
            "scope": family.scope,
            "jti": secrets.token_urlsafe(16),
            "iat": int(now),
            "exp": int(now + self.access_ttl),
            "sid": family.family_id,
        }
        if family.device_id is not None:
            claims["did"] = family.device_id
        with self._lock:
            key = self._current
        return sign_jwt(claims, key, alg=self.alg, headers={"typ": ACCESS_TOKEN_TYPE})

    def issue(
        self,
        user_id: str,
        *,
        device_id: str | None = None,
        scope: str | Iterable[str] | None = None,
        device_name: str | None = None,
    ) -> Gen[TokenPair]:
        """A new token family (one per login) and its first pair; with
        ``device_name`` the device ``device_id`` is recorded in the same transaction."""
        scopes = self._check_scope(scope)
        now = self.now()
        family = FamilyRecord(
            family_id=secrets.token_urlsafe(24),
            user_id=user_id,
            device_id=device_id,
            client_id=self.client_id,
            scope=" ".join(sorted(scopes)),
            created_at=now,
            last_used_at=now,
            expires_at=now + self.refresh_absolute_ttl,
        )
        refresh = secrets.token_urlsafe(32)
        yield from offload(
            self.store.create_family, family, hash_refresh_token(refresh), device_name=device_name
        )
        self.audit.emit(
            "token.issued",
            "success",
            subject=user_id,
            details={"family": family.family_id, "device": device_id},
        )
        return TokenPair(
            access_token=self._access_token(family, now),
            refresh_token=refresh,
            expires_in=int(self.access_ttl),
            scope=family.scope,
            device_id=device_id,
            refresh_expires_at=min(family.expires_at, now + self.refresh_idle_ttl),
        )

    def refresh(self, refresh_token: str, *, client_ip: str | None = None) -> Gen[TokenPair]:
        """Rotate ``refresh_token``: a new pair, the old token consumed for good.

        Errors: :class:`InvalidInput` ``invalid_grant`` (unknown or malformed) or
        ``token_revoked``; :class:`AlreadyUsed` ``refresh_token_reused`` (the family
        is revoked now); :class:`Expired` ``refresh_token_expired``.
        """
        if not isinstance(refresh_token, str) or _REFRESH_RE.fullmatch(refresh_token) is None:
            raise InvalidInput("refresh token is not valid", code="invalid_grant")
        now = self.now()
        successor = secrets.token_urlsafe(32)
        result = yield from offload(
            self.store.rotate,
            hash_refresh_token(refresh_token),
            hash_refresh_token(successor),
            now,
            self.refresh_idle_ttl,
        )
        family = result.family
        if result.outcome is Rotation.ROTATED and family is not None:
            self.audit.emit(
                "token.refreshed",
                "success",
                subject=family.user_id,
                client_ip=client_ip,
                details={"family": family.family_id, "generation": result.generation},
            )
            return TokenPair(
                access_token=self._access_token(family, now),
                refresh_token=successor,
                expires_in=int(self.access_ttl),
                scope=family.scope,
                device_id=family.device_id,
                refresh_expires_at=min(family.expires_at, now + self.refresh_idle_ttl),
            )
        if result.outcome is Rotation.REUSED and family is not None:
            self.audit.emit(
                "token.reuse_detected",
                "failure",
                subject=family.user_id,
                client_ip=client_ip,
                reason="refresh_token_reused",
                details={"family": family.family_id, "generation": result.generation},
            )
            self.audit.emit(
                "token.revoked",
                "info",
                subject=family.user_id,
                reason="reuse_detected",
                details={"family": family.family_id},
            )
            raise AlreadyUsed(
                "refresh token was already used; the login has been revoked",
                code="refresh_token_reused",
            )
        if result.outcome is Rotation.EXPIRED:
            raise Expired("refresh token has expired", code="refresh_token_expired")
        if result.outcome is Rotation.REVOKED:
            raise InvalidInput("refresh token has been revoked", code="token_revoked")
        raise InvalidInput("refresh token is not valid", code="invalid_grant")

    # --- revocation -------------------------------------------------------------------

    def revoke(self, refresh_token: str, *, reason: str = "logout") -> Gen[bool]:
        """Revoke the family of a refresh token (app logout, RFC 7009 style).

        Unknown tokens are not an error (RFC 7009 §2.2); returns whether a live
        family was revoked.
        """
        if not isinstance(refresh_token, str) or _REFRESH_RE.fullmatch(refresh_token) is None:
            return False
        family = yield from offload(self.store.family_of_token, hash_refresh_token(refresh_token))
        if family is None:
            return False
        return (
            yield from self.revoke_family(family.family_id, reason=reason, user_id=family.user_id)
        )

    def revoke_family(
        self, family_id: str, *, reason: str, user_id: str | None = None
    ) -> Gen[bool]:
        """Revoke one token family; whether a live family was revoked."""
        done = yield from offload(self.store.revoke_family, family_id, self.now(), reason)
        if done:
            self.audit.emit(
                "token.revoked",
                "info",
                subject=user_id,
                reason=reason,
                details={"family": family_id},
            )
        return done

    def revoke_user(self, user_id: str, *, reason: str) -> Gen[int]:
        """Revoke every family of a user (password change or removal, TOK-03)."""
        count = yield from offload(self.store.revoke_user_families, user_id, self.now(), reason)
        if count:
            self.audit.emit(
                "token.revoked",
                "info",
                subject=user_id,
                reason=reason,
                details={"families": count},
            )
        return count

    def family_active(self, family_id: str) -> Gen[bool]:
        """Whether a token family is still live (not revoked, not expired)."""
        return (yield from offload(self.store.family_active, family_id, self.now()))

    # --- verification -----------------------------------------------------------------

    def verify_access_token(
        self,
        token: str,
        audience: str | None = None,
        required_scope: str | Collection[str] | None = None,
        *,
        check_revocation: bool = False,
    ) -> Gen[AccessTokenClaims]:
        """Verify one of our access tokens for a resource server (TOK-02).

        Only our algorithm and our keys; ``typ`` must be ``at+jwt`` (so an ID token or
        another JWT cannot pass, JOSE-10); ``iss``, ``aud``, ``exp``, ``nbf``, ``iat``
        with the configured leeway; every scope must be a mobile scope and
        ``required_scope`` must be granted (:class:`ScopeDenied` otherwise).
        ``check_revocation`` also asks the database whether the token's family is
        still live (sensitive routes): only then is there any database work.
        """
        with self._lock:
            keyset = self._keyset
        header, claims = verify_jwt(token, keyset, algorithms=[self.alg])
        if header.get("typ") not in _TYPES:
            raise InvalidInput("not an access token", code="wrong_token_type")
        if claims.get("iss") != self.issuer:
            raise InvalidInput("access token issuer is wrong", code="wrong_issuer")
        expected_aud = self.audience if audience is None else audience
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else None
        if not auds or expected_aud not in auds:
            raise InvalidInput("access token audience is wrong", code="wrong_audience")
        now = self.now()
        exp = _number(claims, "exp", required=True)
        iat = _number(claims, "iat", required=True)
        nbf = _number(claims, "nbf", required=False)
        assert exp is not None and iat is not None
        if now >= exp + self.leeway:
            raise Expired("access token has expired", code="token_expired")
        if iat > now + self.leeway or (nbf is not None and nbf > now + self.leeway):
            raise InvalidInput("access token is not valid yet", code="not_yet_valid")
        sub, jti, client_id = claims.get("sub"), claims.get("jti"), claims.get("client_id")
        if not (isinstance(sub, str) and sub and isinstance(jti, str) and jti):
            raise InvalidInput("access token lacks sub or jti", code="missing_claim")
        if not isinstance(client_id, str):
            raise InvalidInput("access token lacks client_id", code="missing_claim")
        scope = claims.get("scope")
        if not isinstance(scope, str):
            raise InvalidInput("access token lacks scope", code="missing_claim")
        scopes = _parse_scopes(scope)
        if not scopes <= self.mobile_scopes:
            raise ScopeDenied("access token carries a non-mobile scope", code="invalid_scope")
        if required_scope is not None:
            needed = _parse_scopes(required_scope)
            if not needed <= scopes:
                raise ScopeDenied(
                    "access token lacks the required scope", code="insufficient_scope"
                )
        sid, did = claims.get("sid"), claims.get("did")
        family_id = sid if isinstance(sid, str) else None
        if check_revocation and (
            family_id is None or not (yield from self.family_active(family_id))
        ):
            raise InvalidInput("access token has been revoked", code="token_revoked")
        return AccessTokenClaims(
            subject=sub,
            scopes=scopes,
            client_id=client_id,
            jti=jti,
            issued_at=iat,
            expires_at=exp,
            family_id=family_id,
            device_id=did if isinstance(did, str) else None,
            raw=claims,
        )


class TokenOptions(TypedDict, total=False):
    """The issuer's settings (the :class:`TokenEngine` constructor's, defaults there)."""

    issuer: Required[str]
    audience: Required[str]
    mobile_scopes: Required[Iterable[str]]
    client_id: str
    alg: Literal["EdDSA", "ES256"]
    signing_key: Key | None
    verification_keys: Iterable[Key]
    access_ttl: float
    refresh_absolute_ttl: float
    refresh_idle_ttl: float
    leeway: float
    audit: AuditLog | None
    now: Callable[[], float]


class _TokenFace:
    """Declared once for both faces: the operations (``op``: blocking on
    :class:`TokenIssuer`, coroutines on :class:`AsyncTokenIssuer`) and the key
    management both expose."""

    engine: TokenEngine

    issue = op(TokenEngine.issue)
    refresh = op(TokenEngine.refresh)
    revoke = op(TokenEngine.revoke)
    revoke_family = op(TokenEngine.revoke_family)
    revoke_user = op(TokenEngine.revoke_user)
    family_active = op(TokenEngine.family_active)
    verify_access_token = op(TokenEngine.verify_access_token)

    def rotate_key(self, new_key: Key | None = None) -> Key:
        """Sign with ``new_key`` (or a fresh one) from now on; keep the old key in the
        JWKS until the last token it signed has expired."""
        return self.engine.rotate_key(new_key)

    def jwks(self) -> dict[str, Any]:
        """The public JWKS to publish (current key first, then keys still verifying)."""
        return self.engine.jwks()


class TokenIssuer(_TokenFace, SyncFacade[TokenEngine]):
    """Blocking face of :class:`TokenEngine` (same constructor arguments).

    ``mobile_scopes`` is the closed set of scopes a mobile token may carry; a login
    asks for a subset (default: all of them). ``signing_key`` defaults to a fresh
    key of ``alg``; deployments with several instances pass the same key to each
    (and rotate by deploying the new key with the old one in ``verification_keys``).
    """

    def __init__(self, store: CredentialStore, **options: Unpack[TokenOptions]) -> None:
        self.engine = TokenEngine(store, **options)
        self.runtime = SyncRuntime()

    def __repr__(self) -> str:
        return f"TokenIssuer(issuer={self.issuer!r}, audience={self.audience!r})"

    # Today's public attributes, read from the engine (one source of truth).

    @property
    def store(self) -> CredentialStore:
        return self.engine.store

    @property
    def issuer(self) -> str:
        return self.engine.issuer

    @property
    def audience(self) -> str:
        return self.engine.audience

    @property
    def mobile_scopes(self) -> frozenset[str]:
        return self.engine.mobile_scopes

    @property
    def client_id(self) -> str:
        return self.engine.client_id

    @property
    def alg(self) -> str:
        return self.engine.alg

    @property
    def access_ttl(self) -> float:
        return self.engine.access_ttl

    @property
    def refresh_absolute_ttl(self) -> float:
        return self.engine.refresh_absolute_ttl

    @property
    def refresh_idle_ttl(self) -> float:
        return self.engine.refresh_idle_ttl

    @property
    def leeway(self) -> float:
        return self.engine.leeway

    @property
    def audit(self) -> AuditLog:
        return self.engine.audit

    @property
    def now(self) -> Callable[[], float]:
        return self.engine.now

    @property
    def current_kid(self) -> str:
        return self.engine.current_kid


class AsyncTokenIssuer(_TokenFace, AsyncFacade[TokenEngine]):
    """asyncio face of a :class:`TokenIssuer`'s engine: database work runs in a worker
    thread, a plain access-token check (no revocation lookup) never leaves the loop."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.sync = issuer
        self.engine = issuer.engine
        self.runtime = AsyncRuntime()
