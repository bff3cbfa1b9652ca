"""The blocking and the asyncio API of direct links, declared from :class:`LinkEngine`.

Each method is the engine routine of the same name run in the facade's runtime
(:mod:`authbroker.kernel.facade`): one implementation, two faces. ``open`` and
``resend`` send the SMS inside that one run, so a facade call and a web handler that
composes ``facade.engine.open(...)`` do exactly the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypedDict, Unpack

from ...audit import AuditLog
from ...http import AsyncDriver, SyncDriver
from ...kernel import AsyncFacade, AsyncRuntime, SyncFacade, SyncRuntime, op
from ...sms.base import SmsSender
from ...store.base import AsyncStateStore, StateStore
from .engine import LinkEngine
from .limits import LinkLimits

__all__ = ["AsyncDirectLinks", "DirectLinks"]


class LinkOptions(TypedDict, total=False):
    """The engine's optional settings, the same for both faces (defaults: the engine's)."""

    link_path: str
    audit: AuditLog | None
    clock: Callable[[], float]
    limits: LinkLimits | None
    allowed_regions: Sequence[str]
    default_region: str
    service_name: str | None


class _LinkFace:
    """Declared once for both faces: the operations (``op``: blocking on
    :class:`DirectLinks`, coroutines on :class:`AsyncDirectLinks`) and what both read
    from the engine."""

    engine: LinkEngine

    issue = op(LinkEngine.issue)
    issue_link = op(LinkEngine.issue_link)
    open = op(LinkEngine.open)
    resend = op(LinkEngine.resend)
    verify = op(LinkEngine.verify)
    revoke = op(LinkEngine.revoke)
    revoke_user = op(LinkEngine.revoke_user)
    link_live = op(LinkEngine.link_live)
    link_failures = op(LinkEngine.link_failures)
    challenge_attempts = op(LinkEngine.challenge_attempts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.engine.host!r}, sms={self.engine.sms.name!r})"

    @property
    def limits(self) -> LinkLimits:
        return self.engine.limits

    @property
    def audit(self) -> AuditLog:
        return self.engine.audit

    def link_id(self, token: str) -> str:
        """The link id inside a valid token (to revoke a link you only have the URL of)."""
        return self.engine.link_id(token)


def _engine(
    sms: SmsSender,
    secret_keys: Sequence[str],
    base_url: str,
    send_veto: Callable[[str, str], bool | Awaitable[bool]] | None,
    options: LinkOptions,
) -> LinkEngine:
    return LinkEngine(
        sms=sms,
        secret_keys=secret_keys,
        base_url=base_url,
        send_veto=send_veto,
        **options,
    )


class DirectLinks(_LinkFace, SyncFacade[LinkEngine]):
    """Blocking API for WSGI apps, jobs and the CLI.

    ``store``: where links, challenges and counters live (one store for all app
    instances). ``sms``: the sender; HTTP senders use ``driver`` (a default
    :class:`SyncDriver` is created). ``secret_keys``: newest first, each ≥ 32
    characters (the same list as ``AUTHBROKER_SECRET_KEYS``). ``base_url`` +
    ``link_path`` + ``/<token>`` is the link URL, and its host goes in the SMS
    ``@host`` line. The phone number is given to :meth:`issue` by the application
    (from the user's verified, strongly-bound number) and stored server-side with the
    link; a later request can never redirect the code elsewhere. ``sleep`` carries out
    the sender's retry waits (tests pass one that does not wait).
    """

    def __init__(
        self,
        store: StateStore,
        sms: SmsSender,
        *,
        secret_keys: Sequence[str],
        base_url: str,
        driver: SyncDriver | None = None,
        send_veto: Callable[[str, str], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **options: Unpack[LinkOptions],
    ) -> None:
        self.engine = _engine(sms, secret_keys, base_url, send_veto, options)
        self.store = store
        # Creating a driver opens nothing; httpx clients start on the first request.
        self.driver = driver or SyncDriver()
        self.runtime = SyncRuntime(self.driver, store, sleep=sleep)

    def close(self) -> None:
        self.driver.close()


class AsyncDirectLinks(_LinkFace, AsyncFacade[LinkEngine]):
    """Non-blocking API for ASGI apps; same semantics as :class:`DirectLinks`.

    ``send_veto`` may also be a coroutine function here.
    """

    def __init__(
        self,
        store: AsyncStateStore,
        sms: SmsSender,
        *,
        secret_keys: Sequence[str],
        base_url: str,
        driver: AsyncDriver | None = None,
        send_veto: Callable[[str, str], bool | Awaitable[bool]] | None = None,
        **options: Unpack[LinkOptions],
    ) -> None:
        self.engine = _engine(sms, secret_keys, base_url, send_veto, options)
        self.store = store
        self.driver = driver or AsyncDriver()
        self.runtime = AsyncRuntime(self.driver, store)

    async def aclose(self) -> None:
        await self.driver.aclose()
