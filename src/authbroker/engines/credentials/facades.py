"""The blocking and asyncio faces of :class:`~.engine.CredentialEngine`, declared.

Both run the same engine routines; only the runtime differs. The blocking manager
does the database and argon2 work in place, the asyncio one in a worker thread (the
``offload`` effects) with the throttle counters on an
:class:`~authbroker.store.base.AsyncStateStore`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...audit import AuditLog
from ...kernel import AsyncFacade, AsyncRuntime, SyncFacade, SyncRuntime, async_op, sync_op
from ...store.base import AsyncStateStore, StateStore
from ..tokens import TokenIssuer
from .engine import CredentialEngine, NotifyHook
from .policy import Argon2Params, PasswordPolicy
from .throttle import ThrottlePolicy

if TYPE_CHECKING:
    from ...credential_store import CredentialStore

__all__ = ["AsyncCredentialManager", "CredentialManager"]


class CredentialManager(SyncFacade[CredentialEngine]):
    """Blocking mobile credential service (WSGI apps, CLI, tests).

    ``state`` holds the throttle counters (share it between instances: Redis or
    SQLite); ``store`` is the durable credential database; ``issuer`` issues the
    tokens a successful login returns.
    """

    enroll = sync_op(CredentialEngine.enroll)
    change_password = sync_op(CredentialEngine.change_password)
    remove = sync_op(CredentialEngine.remove)
    credential = sync_op(CredentialEngine.credential)
    unlock = sync_op(CredentialEngine.unlock)
    list_devices = sync_op(CredentialEngine.list_devices)
    revoke_device = sync_op(CredentialEngine.revoke_device)
    login = sync_op(CredentialEngine.login)

    def __init__(
        self,
        store: CredentialStore,
        state: StateStore,
        issuer: TokenIssuer,
        *,
        policy: PasswordPolicy | None = None,
        argon2: Argon2Params | None = None,
        throttle: ThrottlePolicy | None = None,
        reauth_max_age: float | None = 15 * 60,
        audit: AuditLog | None = None,
        notify: NotifyHook | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.issuer = issuer
        self.engine = CredentialEngine(
            store,
            issuer.engine,
            policy=policy,
            argon2=argon2,
            throttle=throttle,
            reauth_max_age=reauth_max_age,
            audit=audit,
            notify=notify,
            now=now,
        )
        self.runtime = SyncRuntime(store=state)

    @property
    def store(self) -> CredentialStore:
        return self.engine.store


class AsyncCredentialManager(AsyncFacade[CredentialEngine]):
    """asyncio mobile credential service: the same rules as :class:`CredentialManager`.

    Database and argon2 work run in a worker thread; the throttle counters go to an
    :class:`AsyncStateStore`. A ``notify`` hook may be a coroutine function here.
    """

    enroll = async_op(CredentialEngine.enroll)
    change_password = async_op(CredentialEngine.change_password)
    remove = async_op(CredentialEngine.remove)
    credential = async_op(CredentialEngine.credential)
    unlock = async_op(CredentialEngine.unlock)
    list_devices = async_op(CredentialEngine.list_devices)
    revoke_device = async_op(CredentialEngine.revoke_device)
    login = async_op(CredentialEngine.login)

    def __init__(
        self,
        store: CredentialStore,
        state: AsyncStateStore,
        issuer: TokenIssuer,
        *,
        policy: PasswordPolicy | None = None,
        argon2: Argon2Params | None = None,
        throttle: ThrottlePolicy | None = None,
        reauth_max_age: float | None = 15 * 60,
        audit: AuditLog | None = None,
        notify: NotifyHook | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.issuer = issuer
        self.engine = CredentialEngine(
            store,
            issuer.engine,
            policy=policy,
            argon2=argon2,
            throttle=throttle,
            reauth_max_age=reauth_max_age,
            audit=audit,
            notify=notify,
            now=now,
        )
        self.runtime = AsyncRuntime(store=state)

    @property
    def store(self) -> CredentialStore:
        return self.engine.store
