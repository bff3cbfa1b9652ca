"""Server-side sessions: what a browser is allowed to do after it authenticated.

A session lives in the StateStore under a random 256-bit id; the browser holds only
that id, signed (itsdangerous' format, HMAC-SHA256) under a purpose-specific salt (a
value signed for a direct link or a CSRF token is never accepted as a session cookie).

The id starts with the user's unkeyed reference (the links' ``user_ref``) used as a
store hash tag: the session record, the user's logout-everywhere epoch and, for a
session opened by a direct link, the link's revocation keys share one ``{tag}``; a
link session's id also ends with its link id. So checking any session is *one*
read-only atomic store program, one round trip (one ``MGET`` on Redis, even on a
Cluster; :mod:`authbroker.store.atomic`) whose keys follow from the cookie alone. The record
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

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, Unpack

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
    op,
)
from ..store.base import AsyncStateStore, Atomic, AtomicResult, Get, StateStore
from .links.records import (
    LinkBinding,
    link_binding_gen,
    link_live_keys,
    link_live_now,
    user_ref,
)
from .links.tokens import ID_RE

__all__ = [
    "AsyncSessionManager",
    "Session",
    "SessionEngine",
    "SessionKind",
    "SessionManager",
    "SessionPolicy",
    "session_store_key",
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
#: The user's reference (:func:`~authbroker.engines.links.user_ref`): 96 bits, so two
#: users sharing an epoch key is out of reach. Unkeyed on purpose: the epoch key must
#: survive secret rotation. It names no one; it only groups one user's keys.
_TAG_RE = re.compile(r"u_[0-9a-f]{24}")
_ID_SEP = "~"
_CACHE_MAX = 4096  # parsed records / verified cookies kept (see SessionEngine)
#: At most this share of the idle timeout may pass between two writes of
#: ``last_seen`` (and at most 30 s): the idle timeout is exact to 1/60 of itself.
_TOUCH_SHARE = 1 / 60
_TOUCH_MAX = 30.0


@dataclass(frozen=True, slots=True)
class _Checked:
    """A verified cookie's session id, split, and the program that checks it."""

    session_id: str
    tag: str
    key: str
    link_id: str | None
    program: Atomic


def _split_id(session_id: str) -> tuple[str, str, str | None] | None:
    """``(tag, store key, link id or None)`` of a well-formed session id
    (``tag~random`` or, for a link session, ``tag~random~link id``), else None (an
    id from before this format, or garbage with a valid signature)."""
    tag, sep, rest = session_id.partition(_ID_SEP)
    if not sep or not rest or not _TAG_RE.fullmatch(tag):
        return None
    _, has_link, link_id = rest.partition(_ID_SEP)
    if has_link and not ID_RE.fullmatch(link_id):
        return None
    return tag, f"{_KEY}{{{tag}}}{rest}", link_id if has_link else None


def session_store_key(session_id: str) -> str | None:
    """The store key of a session: ``sess:{tag}rest`` for a well-formed id, else None."""
    parts = _split_id(session_id)
    return None if parts is None else parts[1]


def _epoch_key(tag: str) -> str:
    return f"{_EPOCH}{{{tag}}}"


class _CookieSigner:
    """itsdangerous' ``Signer`` format (django-concat key derivation, HMAC-SHA256,
    url-safe base64 without padding, ``.`` separator) computed with one
    ``hmac.digest`` call. The session check runs on every request; itsdangerous
    builds a key and an HMAC object per call and was most of its CPU. Cookies stay
    interchangeable with ``Signer(keys, salt=..., digest_method=sha256)`` (tested).
    The first (newest) key signs, every key verifies (rotation)."""

    def __init__(self, secret_keys: Sequence[str], salt: str) -> None:
        self._keys = [
            hashlib.sha256(salt.encode() + b"signer" + key.encode()).digest() for key in secret_keys
        ]

    def _mac(self, key: bytes, value: bytes) -> bytes:
        return base64.urlsafe_b64encode(hmac.digest(key, value, "sha256")).rstrip(b"=")

    def sign(self, value: str) -> str:
        raw = value.encode()
        return (raw + b"." + self._mac(self._keys[0], raw)).decode()

    def unsign(self, signed: str) -> str | None:
        value, sep, sig = signed.encode().rpartition(b".")
        if not sep:
            return None
        for key in self._keys:
            if hmac.compare_digest(sig, self._mac(key, value)):
                return value.decode()
        return None


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
    #: What the session keeps of that link to check it in its own round trip.
    link_binding: LinkBinding | None = field(default=None, repr=False)

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
            "lexp": None if self.link_binding is None else self.link_binding.expires_at,
            "lep": None if self.link_binding is None else self.link_binding.epoch,
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
            link_binding=(
                None
                if rec.get("lexp") is None
                else LinkBinding(float(rec["lexp"]), str(rec["lep"]))
            ),
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
        self.signer = _CookieSigner(secret_keys, SESSION_SALT)
        self._parsed: dict[tuple[str, bytes], Session] = {}
        self._verified: dict[str, _Checked] = {}
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
        return self.signer.sign(session.id)

    def session_id(self, cookie: str | None) -> str | None:
        """The session id a cookie names, or None if its signature does not verify."""
        if not cookie or len(cookie) > 512 or not cookie.isascii():
            return None
        return self.signer.unsign(cookie)

    def _check_cookie(self, cookie: str | None) -> _Checked | None:
        """What :meth:`load` needs of a cookie naming a well-formed session id: the
        id, its store key, its link id and the read-only program checking it.

        Kept per verified cookie (bounded): the MAC of the same cookie is not
        recomputed, nor the program rebuilt, on every request. Only verified values
        enter, so a forged cookie is always checked; whether the session still lives
        is asked of the store on every request regardless (revocation stays
        immediate). The lookup is a dict probe on a salted string hash, then an
        equality test on a full-hash match: it leaks nothing an attacker could steer
        towards a valid MAC."""
        if cookie is None:
            return None
        checked = self._verified.get(cookie)
        if checked is not None:
            return checked
        session_id = self.session_id(cookie)
        parts = None if session_id is None else _split_id(session_id)
        if session_id is None or parts is None:
            return None
        tag, key, link_id = parts
        # One round trip, read-only: the record, its user's epoch and, for a link
        # session, the link's revocation keys (all in the user's hash slot).
        steps = [Get(key), Get(_epoch_key(tag))]
        if link_id is not None:
            steps += [Get(k) for k in link_live_keys(tag, link_id)]
        checked = _Checked(session_id, tag, key, link_id, Atomic(tuple(steps)))
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        self._verified[cookie] = checked
        return checked

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
        tag = user_ref(user)
        session_id = tag + _ID_SEP + secrets.token_urlsafe(32)
        binding = None
        if kind == "link" and link is not None:
            binding = yield from link_binding_gen(link, user, now)
            session_id += _ID_SEP + link
        epoch_raw = yield from store_get(_epoch_key(tag))
        session = Session(
            id=session_id,
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
            link_binding=binding,
        )
        if replaces is not None:
            # Login / step-up: the old id dies at once (no fixation).
            yield from _delete(replaces.id)
        yield from store_put(_key(session.id), _dump(session), self._ttl(session, now))
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
        links' store for that check. A link that is not live, or was issued to
        another user than ``user``, is refused (``AccessDenied``).
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
        checked = self._check_cookie(cookie)
        if checked is None:
            return None
        key = checked.key
        found = yield checked.program
        if not isinstance(found, AtomicResult):  # pragma: no cover - runner contract
            raise TypeError("the runner did not answer an atomic program")
        raw, epoch_raw, *link_values = found.values
        if not isinstance(raw, bytes):
            return None
        session = self._parse(checked.session_id, checked.tag, checked.link_id, raw)
        now = self.now()
        if (
            session is None
            or now >= session.expires_at
            or now - session.last_seen >= self.policy.idle_timeout
            or int(epoch_raw if isinstance(epoch_raw, bytes) else 0) != session.epoch
        ):
            yield from store_delete(key)
            return None
        if session.link_binding is not None:
            # A revoked (or expired) link ends what it granted, now, not at expiry.
            user_epoch, revoked = (v if isinstance(v, bytes) else None for v in link_values)
            if not link_live_now(session.link_binding, user_epoch, revoked, now):
                yield from store_delete(key)
                return None
        # Sliding idle window with a bounded write rate: ``last_seen`` is rewritten
        # once per min(30 s, idle/60), not on every request.
        if now - session.last_seen >= min(_TOUCH_MAX, self.policy.idle_timeout * _TOUCH_SHARE):
            session = _touch(session, now)
            yield from store_put(key, _dump(session), self._ttl(session, now))
        return session

    def _parse(self, session_id: str, tag: str, link_id: str | None, raw: bytes) -> Session | None:
        """The session a stored record describes, or None if it is malformed, belongs
        to another user than the id's tag, or is a link session whose id does not
        name its link (the id decides which revocation keys are read).

        Parsing the JSON and building the object was most of a session check's CPU,
        yet a record changes only when it is written (at most every 30 s, the idle
        touch). So the result is kept per (id, exact record bytes): a changed record
        is a new key, and every check that can change without the record changing
        (expiry, idle time, epoch, link revocation) still runs on every load.
        """
        cache_key = (session_id, raw)
        session = self._parsed.get(cache_key)
        if session is not None:
            return session
        try:
            session = Session.from_record(session_id, json.loads(raw))
        except (ValueError, KeyError, TypeError):
            return None
        if user_ref(session.user) != tag or session.link != link_id:
            return None
        if session.kind == "link" and session.link is not None and session.link_binding is None:
            return None
        if len(self._parsed) >= _CACHE_MAX:
            self._parsed.clear()
        self._parsed[cache_key] = session
        return session

    def destroy(self, session: Session) -> Gen[None]:
        """End one session (logout)."""
        yield from _delete(session.id)

    def logout_everywhere(self, user: str) -> Gen[None]:
        """End every session of ``user`` (bumps the user's epoch)."""
        yield from store_incr(_epoch_key(user_ref(user)), _EPOCH_TTL)

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
                    old_key = session_store_key(old)
                    if old_key is not None and (yield from store_get(old_key)) is not None:
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
                session_key = session_store_key(session_id)
                if session_key is not None and (yield from store_delete(session_key)):
                    ended += 1
                yield from store_delete(_PROVIDER_SESSION + session_id)
        return ended


def _key(session_id: str) -> str:
    key = session_store_key(session_id)
    if key is None:  # pragma: no cover - every id this module makes is well-formed
        raise ValueError("not a session id")
    return key


def _delete(session_id: str) -> Gen[None]:
    key = session_store_key(session_id)
    if key is not None:
        yield from store_delete(key)


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


class SessionOptions(TypedDict, total=False):
    """The managers' optional settings (the same for both faces)."""

    policy: SessionPolicy | None
    now: Callable[[], float]


def _engine(secret_keys: Sequence[str], options: SessionOptions) -> SessionEngine:
    return SessionEngine(
        secret_keys, options.get("policy") or SessionPolicy(), options.get("now", time.time)
    )


class _SessionFace:
    """Declared once for both faces: the operations (``op``: blocking on
    :class:`SessionManager`, coroutines on :class:`AsyncSessionManager`) and the pure
    helpers both expose."""

    engine: SessionEngine

    login = op(SessionEngine.login)
    open_link_session = op(SessionEngine.open_link_session)
    load = op(SessionEngine.load)
    destroy = op(SessionEngine.destroy)
    logout_everywhere = op(SessionEngine.logout_everywhere)
    remember_provider_session = op(SessionEngine.remember_provider_session)
    provider_session = op(SessionEngine.provider_session)
    end_provider_sessions = op(SessionEngine.end_provider_sessions)

    @property
    def policy(self) -> SessionPolicy:
        return self.engine.policy

    def cookie_header(self, session: Session | None, *, secure: bool) -> str:
        """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Secure outside localhost."""
        return self.engine.cookie_header(session, secure=secure)


class SessionManager(_SessionFace, SyncFacade[SessionEngine]):
    """Blocking session manager (WSGI)."""

    def __init__(
        self, store: StateStore, secret_keys: Sequence[str], **options: Unpack[SessionOptions]
    ) -> None:
        self.store = store
        self.engine = _engine(secret_keys, options)
        self.runtime = SyncRuntime(store=store)


class AsyncSessionManager(_SessionFace, AsyncFacade[SessionEngine]):
    """Non-blocking session manager (ASGI); same semantics as :class:`SessionManager`."""

    def __init__(
        self, store: AsyncStateStore, secret_keys: Sequence[str], **options: Unpack[SessionOptions]
    ) -> None:
        self.store = store
        self.engine = _engine(secret_keys, options)
        self.runtime = AsyncRuntime(store=store)
