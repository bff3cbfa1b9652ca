"""The credential engine: the mobile password login's operations, one routine each.

Every operation (:meth:`CredentialEngine.enroll`, ``login`` ...) is a routine: the
throttle counters are store effects, the database and argon2 work is handed to the
runtime with ``yield from offload(...)`` (in place under the blocking runtime, in a
worker thread under asyncio), the token work composes the
:class:`~authbroker.engines.tokens.TokenEngine` routines and the application's
notification hook is a ``call`` effect. The rules themselves are in the package
docstring (:mod:`authbroker.engines.credentials`).
"""

from __future__ import annotations

import logging
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from argon2.exceptions import InvalidHashError, VerificationError

from ...audit import AuditLog
from ...errors import AccessDenied, InsufficientLoa, InvalidInput, RateLimited
from ...kernel import Gen, call, offload
from ..tokens import TokenEngine, TokenPair
from .policy import Argon2Params, PasswordPolicy, canonical_email, normalize_password
from .throttle import Attempt, Throttle, ThrottlePolicy, account_key, ip_bucket

if TYPE_CHECKING:
    from ...credential_store import CredentialRecord, CredentialStore, DeviceRecord
    from ..sessions import Session

__all__ = ["CredentialEngine", "CredentialInfo", "NotifyHook"]

_log = logging.getLogger("authbroker.credentials")

#: PWD-07 hook: ``(event, account id)``; a plain function or a coroutine function.
NotifyHook: TypeAlias = Callable[[str, str], Awaitable[None] | None]

# One error for every failed password login (PWD-06): same class, message and code.
_BAD_LOGIN_MESSAGE: Final = "email or password is incorrect"
_BAD_LOGIN_CODE: Final = "invalid_credentials"


def _bad_login() -> AccessDenied:
    return AccessDenied(_BAD_LOGIN_MESSAGE, code=_BAD_LOGIN_CODE)


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """What the web UI may show about a user's mobile login."""

    user_id: str
    email: str
    created_at: float
    changed_at: float


def _device_name(device: str | None) -> str:
    if device is None:
        return "unnamed device"
    if not isinstance(device, str):
        raise InvalidInput("device name must be text", code="bad_device")
    text = unicodedata.normalize("NFKC", device[:512])
    clean = "".join(ch if ch.isprintable() else " " for ch in text)
    clean = " ".join(clean.split())[:128]
    return clean or "unnamed device"


def _names(session: Session) -> list[str]:
    ident: Mapping[str, Any] = session.identity or {}
    return [str(v) for k in ("given_name", "family_name") if (v := ident.get(k))]


def _scope(scope: str | Collection[str] | None) -> str | None:
    if scope is None or isinstance(scope, str):
        return scope
    return " ".join(scope)


class CredentialEngine:
    """The rules and operations of the mobile password login (no I/O of its own).

    ``store`` is the durable credential database (blocking: always offloaded),
    ``tokens`` the engine issuing the tokens a successful login returns; the throttle
    counters are store effects, carried out on the state store of the runtime.
    """

    def __init__(
        self,
        store: CredentialStore,
        tokens: TokenEngine,
        *,
        policy: PasswordPolicy | None = None,
        argon2: Argon2Params | None = None,
        throttle: ThrottlePolicy | None = None,
        reauth_max_age: float | None = 15 * 60,
        audit: AuditLog | None = None,
        notify: NotifyHook | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.policy = policy or PasswordPolicy()
        self.params = argon2 or Argon2Params()
        self.hasher = self.params.hasher()
        self.throttle = Throttle(throttle or ThrottlePolicy(), now)
        self.reauth_max_age = reauth_max_age
        self.audit = audit or tokens.audit
        self.notify_hook = notify
        self.now = now
        # Verified against for unknown addresses, so they cost one argon2 run too.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(24))

    # --- plain rules --------------------------------------------------------------------

    def require_strong(self, session: Session, *, recent: bool) -> None:
        """Managing the password needs a strong (and, for changes, recent) session."""
        if not session.is_strong:
            raise InsufficientLoa(
                "managing the mobile password needs a strong identification",
                code="step_up",
            )
        too_old = (
            recent
            and self.reauth_max_age is not None
            and self.now() - session.created_at > self.reauth_max_age
        )
        if too_old:
            raise InsufficientLoa(
                "please identify yourself again to manage the mobile password",
                code="reauthentication_required",
            )

    def login_attempt(self, email: str, client_ip: str | None) -> Attempt:
        """The throttle keys of a login attempt (a hash of the address, the IP bucket)."""
        return Attempt(account_key(email), ip_bucket(client_ip))

    # --- blocking helpers (always run through ``offload``) -----------------------------

    def _new_hash(self, password: str, email: str | None, names: list[str]) -> str:
        """Check a new password against the policy and hash it (CPU-heavy)."""
        return self.hasher.hash(self.policy.check(password, email=email, names=names))

    def _active(self, user_id: str) -> CredentialRecord:
        cred = self.store.credential_by_user(user_id)
        if cred is None or cred.status != "active" or cred.email is None:
            raise InvalidInput("no mobile password is set", code="not_enrolled")
        return cred

    def verify(self, email: str, password: str) -> tuple[CredentialRecord | None, str | None]:
        """(credential if ``password`` is right, id of the account the address names).

        Blocking (database and argon2). One argon2 run in every case. The account id
        of a failed attempt is for the audit log and the lockout notice only, never
        for the caller's answer.
        """
        try:
            canonical: str | None = canonical_email(email)
        except InvalidInput:
            canonical = None
        try:
            normalized: str | None = normalize_password(password)
        except InvalidInput:
            normalized = None
        if normalized is not None and len(normalized) > self.policy.max_length:
            normalized = None
        cred = self.store.credential_by_email(canonical) if canonical is not None else None
        stored = cred.password_hash if cred is not None else None
        known = cred.user_id if cred is not None else None
        # Same work for an unknown address, a removed credential and an unusable
        # password: verify against the dummy hash (PWD-06).
        usable = stored is not None and normalized is not None
        target = stored if usable and stored is not None else self._dummy_hash
        try:
            self.hasher.verify(target, normalized if normalized is not None else "-")
            ok = usable
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or cred is None or stored is None or normalized is None:
            return None, known
        if self.hasher.check_needs_rehash(stored):
            # PWD-04: parameters changed since this hash was made; only replace it
            # if nobody changed the password meanwhile.
            self.store.set_password_hash(
                cred.user_id, self.hasher.hash(normalized), self.now(), expected_old=stored
            )
        return cred, known

    # --- routines -----------------------------------------------------------------------

    def _notify(self, event: str, user_id: str) -> Gen[None]:
        """PWD-07 hook: (event, account id); never the address or the password."""
        if self.notify_hook is None:
            return
        try:
            yield from call(self.notify_hook, event, user_id)
        except Exception:  # a failing notifier must not undo a password change
            _log.exception("credential notification hook failed")

    def enroll(self, session: Session, email: str, password: str) -> Gen[CredentialInfo]:
        """Set up the mobile login of ``session.user`` (strong, recent session only)."""
        self.require_strong(session, recent=True)
        canonical = canonical_email(email)
        hashed = yield from offload(self._new_hash, password, canonical, _names(session))
        now = self.now()
        yield from offload(self.store.put_credential, session.user, canonical, hashed, now)
        self.audit.emit("credential.enrolled", "success", subject=session.user)
        yield from self._notify("credential.enrolled", session.user)
        return CredentialInfo(session.user, canonical, now, now)

    def change_password(self, session: Session, new_password: str) -> Gen[None]:
        """Replace the password; revokes every refresh-token family and clears locks."""
        self.require_strong(session, recent=True)
        cred = yield from offload(self._active, session.user)
        hashed = yield from offload(self._new_hash, new_password, cred.email, _names(session))
        yield from offload(self.store.set_password_hash, session.user, hashed, self.now())
        # TOK-03 / RFC 9700 §4.14: a password change ends every mobile login.
        yield from self.tokens.revoke_user(session.user, reason="password_changed")
        self.audit.emit("credential.changed", "success", subject=session.user)
        yield from self._notify("credential.changed", session.user)
        yield from self.throttle.reset_gen(Attempt(account_key(cred.email or ""), None))

    def remove(self, session: Session) -> Gen[None]:
        """Remove the mobile login, its devices and token families."""
        self.require_strong(session, recent=True)
        cred = yield from offload(self._active, session.user)
        yield from offload(self.store.remove_credential, session.user, self.now())
        yield from self.tokens.revoke_user(session.user, reason="credential_removed")
        yield from offload(self.store.revoke_all_devices, session.user, self.now())
        self.audit.emit("credential.removed", "success", subject=session.user)
        yield from self._notify("credential.removed", session.user)
        yield from self.throttle.reset_gen(Attempt(account_key(cred.email or ""), None))

    def credential(self, session: Session) -> Gen[CredentialInfo | None]:
        """What the web UI may show of the user's mobile login (None: not set up)."""
        self.require_strong(session, recent=False)
        cred = yield from offload(self.store.credential_by_user, session.user)
        if cred is None or cred.status != "active" or cred.email is None:
            return None
        return CredentialInfo(cred.user_id, cred.email, cred.created_at, cred.changed_at)

    def unlock(self, session: Session) -> Gen[None]:
        """Clear the throttle and lock of the user's own account (strong session)."""
        self.require_strong(session, recent=False)
        cred = yield from offload(self._active, session.user)
        yield from self.throttle.reset_gen(Attempt(account_key(cred.email or ""), None))

    def list_devices(self, session: Session) -> Gen[list[DeviceRecord]]:
        """The devices (mobile logins) of the session's user."""
        self.require_strong(session, recent=False)
        return (yield from offload(self.store.list_devices, session.user))

    def revoke_device(self, session: Session, device_id: str) -> Gen[bool]:
        """Revoke a device of the session's user and its token families."""
        self.require_strong(session, recent=False)
        if not isinstance(device_id, str) or not device_id or len(device_id) > 64:
            return False
        done = yield from offload(self.store.revoke_device, session.user, device_id, self.now())
        if done:
            self.audit.emit(
                "token.revoked",
                "info",
                subject=session.user,
                reason="device_revoked",
                details={"device": device_id},
            )
        return done

    def login(
        self,
        email: str,
        password: str,
        device: str | None,
        client_ip: str | None,
        *,
        scope: str | Collection[str] | None = None,
    ) -> Gen[TokenPair]:
        """Password login from a mobile app; a new device and token family.

        Every failure on the credentials is :class:`AccessDenied`
        ``invalid_credentials``; throttling is :class:`RateLimited` /
        :class:`Locked` (identical for existing and unknown addresses).
        """
        name = _device_name(device)
        attempt = self.login_attempt(email, client_ip)
        try:
            res = yield from self.throttle.before_gen(attempt)
        except RateLimited as exc:
            self._audit_failure(client_ip, exc.code)
            raise
        try:
            cred, known = yield from offload(self.verify, email, password)
        except Exception:
            # Not evaluated (database or store failure): give the reservations back.
            yield from self.throttle.before_undo_gen(attempt, res)
            raise
        if cred is None:
            lock = yield from self.throttle.failed_gen(attempt, res)
            self._audit_failure(client_ip, _BAD_LOGIN_CODE, known)
            if lock is not None:
                self.audit.emit(
                    "lockout", "info", subject=known, client_ip=client_ip, reason=f"{lock}_lock"
                )
                if known is not None:
                    yield from self._notify("lockout", known)
            raise _bad_login()
        yield from self.throttle.succeeded_gen(attempt, res)
        pair = yield from self.tokens.issue(
            cred.user_id,
            device_id=secrets.token_urlsafe(16),
            scope=_scope(scope),
            device_name=name,
        )
        self.audit.emit("login.succeeded", "success", subject=cred.user_id, client_ip=client_ip)
        return pair

    def _audit_failure(self, client_ip: str | None, reason: str, user: str | None = None) -> None:
        self.audit.emit("login.failed", "failure", subject=user, client_ip=client_ip, reason=reason)
