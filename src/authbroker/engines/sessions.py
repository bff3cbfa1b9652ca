"""Server-side sessions: what a browser is allowed to do after it authenticated.

A session lives in the StateStore under a random 256-bit id; the browser holds only
that id, signed with itsdangerous under a purpose-specific salt (a value signed for
a direct link or a CSRF token is never accepted as a session cookie). The record
says who the user is, how strongly they authenticated (LoA) and, for sessions opened
by a direct link, the exact scope and resource they may touch.

Rules (OWASP ASVS V7, NIST SP 800-63B-4 §2.2.3 for the timeouts):

* idle and absolute timeouts, both enforced server-side; a direct-link session has a
  short absolute lifetime of its own;
* the id changes on login and on step-up (:meth:`SessionManager.rotate`), so an id
  planted before login is worthless afterwards (session fixation, CWE-384);
* "log out everywhere" bumps a per-user epoch; sessions from an older epoch die;
* each session carries its own CSRF token for POST forms.

The logic is written once in :class:`SessionEngine`, one routine per operation
(store effects only, see :mod:`authbroker.kernel`); :class:`SessionManager` runs them
blocking and :class:`AsyncSessionManager` with asyncio, and the web layer composes
them with ``yield from``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from itsdangerous import BadSignature, Signer

from ..config import check_secret_keys
from ..errors import InsufficientLoa, ScopeDenied
from ..flow import (
    store_delete,
    store_get,
    store_incr,
    store_put,
    store_put_if_absent,
    store_replace,
    store_take,
)
from ..identity import Identity, Loa
from ..kernel import (
    AsyncFacade,
    AsyncRuntime,
    Gen,
    SyncFacade,
    SyncRuntime,
    async_op,
    sync_op,
)
from ..store.base import AsyncStateStore, StateStore
from .links import link_live_gen

__all__ = [
    "AsyncSessionManager",
    "Session",
    "SessionEngine",
    "SessionKind",
    "SessionManager",
    "SessionPolicy",
]

SessionKind = Literal["full", "link"]
SESSION_SALT = "authbroker.session.v1"
CSRF_SALT = "authbroker.csrf.v1"
_KEY = "sess:"
_EPOCH = "sessepoch:"
_EPOCH_TTL = 400 * 24 * 3600.0  # outlives any session
#: What logout at the provider needs of a session (provider, ``id_token_hint``).
_PROVIDER_SESSION = "sessop:"
#: Index provider ``sid``/``sub`` → session ids, for back-channel logout.
_INDEX = "sessidx:"
_INDEX_LABEL = b"authbroker.session.index.v1"
#: Session ids an index entry keeps; past it, ids of sessions already gone are
#: dropped first, then the oldest.
_INDEX_MAX = 64


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """Timeouts in seconds; defaults from the security requirements' appendix."""

    idle_timeout: float = 30 * 60
    absolute_timeout: float = 12 * 3600
    link_absolute_timeout: float = 15 * 60
    cookie_name: str = "ab_session"


@dataclass(frozen=True, slots=True)
class Session:
    """One live session; ``identity`` is the dict form kept server-side."""

    id: str = field(repr=False)
    user: str
    kind: SessionKind
    loa: Loa
    created_at: float
    last_seen: float
    expires_at: float
    epoch: int
    csrf: str = field(repr=False)
    identity: Mapping[str, Any] = field(default_factory=dict, repr=False)
    scope: str | None = None
    resource: str | None = None
    provider: str | None = None
    #: The direct link that opened a link session: revoking it ends the session.
    link: str | None = field(default=None, repr=False)

    @property
    def is_strong(self) -> bool:
        return self.kind == "full" and self.loa.is_strong

    def require(
        self, *, loa: Loa | None = None, scope: str | None = None, resource: str | None = None
    ) -> None:
        """Raise unless this session may do an action needing ``loa`` / ``scope``+``resource``.

        A direct-link session may reach exactly its scope and resource and nothing
        else; a full session needs at least the asked LoA (step-up otherwise).
        """
        if self.kind == "link":
            if scope is None or loa is not None:
                raise InsufficientLoa("this action needs strong authentication", code="step_up")
            if not (
                hmac.compare_digest(scope, self.scope or "")
                and hmac.compare_digest(resource or "", self.resource or "")
            ):
                raise ScopeDenied("outside the scope of this link", code="scope_denied")
            return
        if loa is not None and self.loa < loa:
            raise InsufficientLoa("a stronger authentication is needed", code="step_up")

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf)

    def to_record(self) -> dict[str, Any]:
        return {
            "v": 1,
            "user": self.user,
            "kind": self.kind,
            "loa": int(self.loa),
            "created": self.created_at,
            "seen": self.last_seen,
            "exp": self.expires_at,
            "epoch": self.epoch,
            "csrf": self.csrf,
            "identity": dict(self.identity),
            "scope": self.scope,
            "resource": self.resource,
            "provider": self.provider,
            "link": self.link,
        }

    @classmethod
    def from_record(cls, session_id: str, rec: Mapping[str, Any]) -> Session:
        return cls(
            id=session_id,
            user=str(rec["user"]),
            kind=rec["kind"],
            loa=Loa(int(rec["loa"])),
            created_at=float(rec["created"]),
            last_seen=float(rec["seen"]),
            expires_at=float(rec["exp"]),
            epoch=int(rec["epoch"]),
            csrf=str(rec["csrf"]),
            identity=rec.get("identity") or {},
            scope=rec.get("scope"),
            resource=rec.get("resource"),
            provider=rec.get("provider"),
            link=rec.get("link"),
        )


class SessionEngine:
    """Cookie signing (plain methods) and the session operations (routines); no I/O."""

    def __init__(
        self,
        secret_keys: Sequence[str],
        policy: SessionPolicy,
        now: Callable[[], float],
    ) -> None:
        # The docs require secrets of at least 32 characters (C16); a shorter one is a
        # configuration error, not a weaker session.
        secret_keys = check_secret_keys(secret_keys, key="AUTHBROKER_SECRET_KEYS")
        # Newest key signs; all keys verify (rotation). itsdangerous takes the list.
        self.signer = Signer(
            list(reversed(secret_keys)), salt=SESSION_SALT, digest_method=hashlib.sha256
        )
        self.policy = policy
        self.now = now
        # Index keys are keyed hashes (a ``sub`` may be a personal identifier); the
        # newest key writes, every key is looked up (rotation).
        self._index_keys = [
            hmac.new(k.encode(), _INDEX_LABEL, hashlib.sha256).digest()
            for k in reversed(secret_keys)
        ]

    def cookie_value(self, session: Session) -> str:
        """The signed cookie value naming ``session``."""
        return self.signer.sign(session.id).decode()

    def session_id(self, cookie: str | None) -> str | None:
        """The session id a cookie names, or None if its signature does not verify."""
        if not cookie or len(cookie) > 512:
            return None
        try:
            return self.signer.unsign(cookie).decode()
        except BadSignature:
            return None

    def cookie_header(self, session: Session | None, *, secure: bool) -> str:
        """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Secure outside localhost."""
        name = self.policy.cookie_name
        attrs = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")
        if session is None:
            return f"{name}=; Max-Age=0{attrs}"
        max_age = max(0, int(session.expires_at - self.now()))
        return f"{name}={self.cookie_value(session)}; Max-Age={max_age}{attrs}"

    def _create(
        self,
        user: str,
        *,
        kind: SessionKind,
        loa: Loa,
        identity: Mapping[str, Any] | None = None,
        scope: str | None = None,
        resource: str | None = None,
        provider: str | None = None,
        link: str | None = None,
        replaces: Session | None = None,
    ) -> Gen[Session]:
        now = self.now()
        absolute = (
            self.policy.link_absolute_timeout if kind == "link" else self.policy.absolute_timeout
        )
        epoch_raw = yield from store_get(_EPOCH + user)
        session = Session(
            id=secrets.token_urlsafe(32),
            user=user,
            kind=kind,
            loa=loa,
            created_at=now,
            last_seen=now,
            expires_at=now + absolute,
            epoch=int(epoch_raw or 0),
            csrf=secrets.token_urlsafe(32),
            identity=dict(identity or {}),
            scope=scope,
            resource=resource,
            provider=provider,
            link=link,
        )
        if replaces is not None:
            # Login / step-up: the old id dies at once (no fixation).
            yield from store_delete(_KEY + replaces.id)
        yield from store_put(_KEY + session.id, _dump(session), self._ttl(session, now))
        return session

    def _ttl(self, session: Session, now: float) -> float:
        return max(1.0, min(session.expires_at, now + self.policy.idle_timeout) - now)

    def login(
        self, user: str, identity: Identity, *, replaces: Session | None = None
    ) -> Gen[Session]:
        """A full session after strong (or any provider) authentication; rotates the id."""
        return (
            yield from self._create(
                user,
                kind="full",
                loa=identity.loa,
                identity=identity_record(identity),
                provider=identity.provider,
                replaces=replaces,
            )
        )

    def open_link_session(
        self,
        user: str,
        scope: str,
        resource: str,
        *,
        link_id: str | None = None,
        replaces: Session | None = None,
    ) -> Gen[Session]:
        """A session limited to exactly one scope and resource (direct link + OTP).

        Pass the grant's ``link_id``: the session then ends as soon as the link is
        revoked (per link or per user) or expires; the session must share the
        links' store for that check.
        """
        return (
            yield from self._create(
                user,
                kind="link",
                loa=Loa.LOW,
                scope=scope,
                resource=resource,
                link=link_id,
                replaces=replaces,
            )
        )

    def load(self, cookie: str | None) -> Gen[Session | None]:
        """The live session a cookie names, or None (bad signature, expired, idle, logged
        out everywhere, or a link session whose link was revoked)."""
        session_id = self.session_id(cookie)
        if session_id is None:
            return None
        raw = yield from store_get(_KEY + session_id)
        if raw is None:
            return None
        try:
            session = Session.from_record(session_id, json.loads(raw))
        except (ValueError, KeyError, TypeError):
            yield from store_delete(_KEY + session_id)
            return None
        now = self.now()
        if now >= session.expires_at or now - session.last_seen >= self.policy.idle_timeout:
            yield from store_delete(_KEY + session_id)
            return None
        epoch_raw = yield from store_get(_EPOCH + session.user)
        if int(epoch_raw or 0) != session.epoch:
            yield from store_delete(_KEY + session_id)
            return None
        if session.kind == "link" and session.link is not None:
            # A revoked (or expired) link ends what it granted, now, not at expiry.
            live = yield from link_live_gen(session.link, now)
            if not live:
                yield from store_delete(_KEY + session_id)
                return None
        if now - session.last_seen >= 30:  # sliding idle window; bounded write rate
            session = _touch(session, now)
            yield from store_put(_KEY + session_id, _dump(session), self._ttl(session, now))
        return session

    def destroy(self, session: Session) -> Gen[None]:
        """End one session (logout)."""
        yield from store_delete(_KEY + session.id)

    def logout_everywhere(self, user: str) -> Gen[None]:
        """End every session of ``user`` (bumps the user's epoch)."""
        yield from store_incr(_EPOCH + user, _EPOCH_TTL)

    # -- the provider's session: RP-initiated and back-channel logout -----------------

    def _index_key(self, key: bytes, issuer: str, kind: str, value: str) -> str:
        mac = hmac.new(key, f"{kind}\0{issuer}\0{value}".encode(), hashlib.sha256)
        return f"{_INDEX}{kind}:{mac.hexdigest()}"

    def remember_provider_session(
        self,
        session: Session,
        *,
        provider: str,
        issuer: str,
        sub: str | None,
        sid: str | None,
        id_token_hint: str | None,
    ) -> Gen[None]:
        """Keep, beside ``session``, what ends it at and from the provider: the
        ``id_token_hint`` for RP-initiated logout, and index entries ``sid``/``sub`` →
        session id that a back-channel logout token names (OpenID Connect Back-Channel
        Logout 1.0 §2.7). Written at login; every entry lives as long as the session
        can."""
        ttl = max(1.0, session.expires_at - self.now())
        record = {"p": provider, "iss": issuer, "h": id_token_hint}
        yield from store_put(_PROVIDER_SESSION + session.id, json.dumps(record).encode(), ttl)
        for kind, value in (("sid", sid), ("sub", sub)):
            if value:
                key = self._index_key(self._index_keys[0], issuer, kind, value)
                yield from self._index_add(key, session.id, ttl)

    def _index_add(self, key: str, session_id: str, ttl: float) -> Gen[None]:
        # Compare-and-swap: concurrent logins of one person never lose an entry.
        while True:
            raw = yield from store_get(key)
            if raw is None:
                if (yield from store_put_if_absent(key, json.dumps([session_id]).encode(), ttl)):
                    return
                continue
            ids = [i for i in _json_list(raw) if i != session_id] + [session_id]
            if len(ids) > _INDEX_MAX:
                live = []
                for old in ids[:-1]:
                    if (yield from store_get(_KEY + old)) is not None:
                        live.append(old)
                ids = [*live, session_id][-_INDEX_MAX:]
            # The newest session expires last: its TTL covers every older one.
            if (yield from store_replace(key, raw, json.dumps(ids).encode(), ttl)):
                return

    def provider_session(self, session: Session) -> Gen[dict[str, Any] | None]:
        """What :meth:`remember_provider_session` kept for ``session``, or None."""
        raw = yield from store_get(_PROVIDER_SESSION + session.id)
        if raw is None:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    def forget_provider_session(self, session: Session) -> Gen[None]:
        """Drop the provider data of an ended session (local logout)."""
        yield from store_delete(_PROVIDER_SESSION + session.id)

    def end_provider_sessions(self, issuer: str, *, sid: str | None, sub: str | None) -> Gen[int]:
        """End the sessions a back-channel logout token names: those of its ``sid``
        when it has one, else every session of its ``sub`` at ``issuer`` (Back-Channel
        Logout 1.0 §2.7). Each index entry is taken (atomic), so two deliveries of a
        logout end each session once. Returns how many sessions ended."""
        kind, value = ("sid", sid) if sid else ("sub", sub)
        if not value:
            return 0
        ended = 0
        for key in self._index_keys:
            raw = yield from store_take(self._index_key(key, issuer, kind, value))
            if raw is None:
                continue
            for session_id in _json_list(raw):
                if (yield from store_delete(_KEY + session_id)):
                    ended += 1
                yield from store_delete(_PROVIDER_SESSION + session_id)
        return ended


def _json_list(raw: bytes) -> list[str]:
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _touch(session: Session, now: float) -> Session:
    rec = session.to_record()
    rec["seen"] = now
    return Session.from_record(session.id, rec)


def _dump(session: Session) -> bytes:
    return json.dumps(session.to_record(), separators=(",", ":")).encode()


def identity_record(identity: Identity) -> dict[str, Any]:
    """What a session keeps of an identity (server-side only)."""
    return identity.to_dict(show_personal_data=True)


class SessionManager(SyncFacade[SessionEngine]):
    """Blocking session manager (WSGI)."""

    login = sync_op(SessionEngine.login)
    open_link_session = sync_op(SessionEngine.open_link_session)
    load = sync_op(SessionEngine.load)
    destroy = sync_op(SessionEngine.destroy)
    logout_everywhere = sync_op(SessionEngine.logout_everywhere)
    remember_provider_session = sync_op(SessionEngine.remember_provider_session)
    provider_session = sync_op(SessionEngine.provider_session)
    end_provider_sessions = sync_op(SessionEngine.end_provider_sessions)

    def __init__(
        self,
        store: StateStore,
        secret_keys: Sequence[str],
        *,
        policy: SessionPolicy | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.engine = SessionEngine(secret_keys, policy or SessionPolicy(), now)
        self.runtime = SyncRuntime(store=store)

    @property
    def policy(self) -> SessionPolicy:
        return self.engine.policy

    def cookie_header(self, session: Session | None, *, secure: bool) -> str:
        """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Secure outside localhost."""
        return self.engine.cookie_header(session, secure=secure)


class AsyncSessionManager(AsyncFacade[SessionEngine]):
    """Non-blocking session manager (ASGI); same semantics as :class:`SessionManager`."""

    login = async_op(SessionEngine.login)
    open_link_session = async_op(SessionEngine.open_link_session)
    load = async_op(SessionEngine.load)
    destroy = async_op(SessionEngine.destroy)
    logout_everywhere = async_op(SessionEngine.logout_everywhere)
    remember_provider_session = async_op(SessionEngine.remember_provider_session)
    provider_session = async_op(SessionEngine.provider_session)
    end_provider_sessions = async_op(SessionEngine.end_provider_sessions)

    def __init__(
        self,
        store: AsyncStateStore,
        secret_keys: Sequence[str],
        *,
        policy: SessionPolicy | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.engine = SessionEngine(secret_keys, policy or SessionPolicy(), now)
        self.runtime = AsyncRuntime(store=store)

    @property
    def policy(self) -> SessionPolicy:
        return self.engine.policy

    def cookie_header(self, session: Session | None, *, secure: bool) -> str:
        """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Secure outside localhost."""
        return self.engine.cookie_header(session, secure=secure)
