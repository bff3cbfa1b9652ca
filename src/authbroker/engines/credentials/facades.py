"""The blocking and asyncio faces of :class:`~.engine.CredentialEngine`, declared.

Both run the same engine routines; only the runtime differs. The blocking manager
does the database and argon2 work in place, the asyncio one in a worker thread (the
``offload`` effects) with the throttle counters on an
:class:`~authbroker.store.base.AsyncStateStore`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict, Unpack

from ...audit import AuditLog
from ...kernel import AsyncFacade, AsyncRuntime, SyncFacade, SyncRuntime, op
from ...store.base import AsyncStateStore, StateStore
from ..tokens import TokenIssuer
from .engine import CredentialEngine, NotifyHook
from .policy import Argon2Params, PasswordPolicy
from .throttle import ThrottlePolicy

if TYPE_CHECKING:
    from ...credential_store import CredentialStore

__all__ = ["AsyncCredentialManager", "CredentialManager"]


class CredentialOptions(TypedDict, total=False):
    """The engine's optional settings, the same for both faces (defaults: the engine's)."""

    policy: PasswordPolicy | None
    argon2: Argon2Params | None
    throttle: ThrottlePolicy | None
    reauth_max_age: float | None
    audit: AuditLog | None
    notify: NotifyHook | None
    now: Callable[[], float]


class _CredentialFace:
    """Declared once for both faces (``op``: blocking on :class:`CredentialManager`,
    coroutines on :class:`AsyncCredentialManager`)."""

    engine: CredentialEngine

    enroll = op(CredentialEngine.enroll)
    change_password = op(CredentialEngine.change_password)
    remove = op(CredentialEngine.remove)
    credential = op(CredentialEngine.credential)
    unlock = op(CredentialEngine.unlock)
    list_devices = op(CredentialEngine.list_devices)
    revoke_device = op(CredentialEngine.revoke_device)
    login = op(CredentialEngine.login)

    @property
    def store(self) -> CredentialStore:
        return self.engine.store


class CredentialManager(_CredentialFace, SyncFacade[CredentialEngine]):
    """Blocking mobile credential service (WSGI apps, CLI, tests).

    ``state`` holds the throttle counters (share it between instances: Redis or
    SQLite); ``store`` is the durable credential database; ``issuer`` issues the
    tokens a successful login returns.
    """

    def __init__(
        self,
        store: CredentialStore,
        state: StateStore,
        issuer: TokenIssuer,
        **options: Unpack[CredentialOptions],
    ) -> None:
        self.state = state
        self.issuer = issuer
        self.engine = CredentialEngine(store, issuer.engine, **options)
        self.runtime = SyncRuntime(store=state)


class AsyncCredentialManager(_CredentialFace, AsyncFacade[CredentialEngine]):
    """asyncio mobile credential service: the same rules as :class:`CredentialManager`.

    Database and argon2 work run in a worker thread; the throttle counters go to an
    :class:`AsyncStateStore`. A ``notify`` hook may be a coroutine function here.
    """

    def __init__(
        self,
        store: CredentialStore,
        state: AsyncStateStore,
        issuer: TokenIssuer,
        **options: Unpack[CredentialOptions],
    ) -> None:
        self.state = state
        self.issuer = issuer
        self.engine = CredentialEngine(store, issuer.engine, **options)
        self.runtime = AsyncRuntime(store=state)
