"""The blocking and the asyncio API of direct links, declared from :class:`LinkEngine`.

Each method is the engine routine of the same name run in the facade's runtime
(:mod:`authbroker.kernel.facade`): one implementation, two faces. ``open`` and
``resend`` send the SMS inside that one run, so a facade call and a web handler that
composes ``facade.engine.open(...)`` do exactly the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from ...audit import AuditLog
from ...http import AsyncDriver, SyncDriver
from ...kernel import AsyncFacade, AsyncRuntime, SyncFacade, SyncRuntime, async_op, sync_op
from ...sms.base import SmsSender
from ...store.base import AsyncStateStore, StateStore
from .engine import DEFAULT_REGIONS, LinkEngine
from .limits import LinkLimits

__all__ = ["AsyncDirectLinks", "DirectLinks"]


class DirectLinks(SyncFacade[LinkEngine]):
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

    issue = sync_op(LinkEngine.issue)
    issue_link = sync_op(LinkEngine.issue_link)
    open = sync_op(LinkEngine.open)
    resend = sync_op(LinkEngine.resend)
    verify = sync_op(LinkEngine.verify)
    revoke = sync_op(LinkEngine.revoke)
    revoke_user = sync_op(LinkEngine.revoke_user)
    link_live = sync_op(LinkEngine.link_live)
    link_failures = sync_op(LinkEngine.link_failures)
    challenge_attempts = sync_op(LinkEngine.challenge_attempts)

    def __init__(
        self,
        store: StateStore,
        sms: SmsSender,
        *,
        secret_keys: Sequence[str],
        base_url: str,
        link_path: str = "/auth/link",
        driver: SyncDriver | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
        limits: LinkLimits | None = None,
        allowed_regions: Sequence[str] = DEFAULT_REGIONS,
        default_region: str = "FI",
        service_name: str | None = None,
        send_veto: Callable[[str, str], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = LinkEngine(
            sms=sms,
            secret_keys=secret_keys,
            base_url=base_url,
            link_path=link_path,
            audit=audit,
            clock=clock,
            limits=limits,
            allowed_regions=allowed_regions,
            default_region=default_region,
            service_name=service_name,
            send_veto=send_veto,
        )
        self.store = store
        # Creating a driver opens nothing; httpx clients start on the first request.
        self.driver = driver or SyncDriver()
        self.runtime = SyncRuntime(self.driver, store, sleep=sleep)

    def __repr__(self) -> str:
        return f"DirectLinks(host={self.engine.host!r}, sms={self.engine.sms.name!r})"

    @property
    def limits(self) -> LinkLimits:
        return self.engine.limits

    @property
    def audit(self) -> AuditLog:
        return self.engine.audit

    def link_id(self, token: str) -> str:
        """The link id inside a valid token (to revoke a link you only have the URL of)."""
        return self.engine.link_id(token)

    def close(self) -> None:
        self.driver.close()


class AsyncDirectLinks(AsyncFacade[LinkEngine]):
    """Non-blocking API for ASGI apps; same semantics as :class:`DirectLinks`.

    ``send_veto`` may also be a coroutine function here.
    """

    issue = async_op(LinkEngine.issue)
    issue_link = async_op(LinkEngine.issue_link)
    open = async_op(LinkEngine.open)
    resend = async_op(LinkEngine.resend)
    verify = async_op(LinkEngine.verify)
    revoke = async_op(LinkEngine.revoke)
    revoke_user = async_op(LinkEngine.revoke_user)
    link_live = async_op(LinkEngine.link_live)
    link_failures = async_op(LinkEngine.link_failures)
    challenge_attempts = async_op(LinkEngine.challenge_attempts)

    def __init__(
        self,
        store: AsyncStateStore,
        sms: SmsSender,
        *,
        secret_keys: Sequence[str],
        base_url: str,
        link_path: str = "/auth/link",
        driver: AsyncDriver | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
        limits: LinkLimits | None = None,
        allowed_regions: Sequence[str] = DEFAULT_REGIONS,
        default_region: str = "FI",
        service_name: str | None = None,
        send_veto: Callable[[str, str], bool | Awaitable[bool]] | None = None,
    ) -> None:
        self.engine = LinkEngine(
            sms=sms,
            secret_keys=secret_keys,
            base_url=base_url,
            link_path=link_path,
            audit=audit,
            clock=clock,
            limits=limits,
            allowed_regions=allowed_regions,
            default_region=default_region,
            service_name=service_name,
            send_veto=send_veto,
        )
        self.store = store
        self.driver = driver or AsyncDriver()
        self.runtime = AsyncRuntime(self.driver, store)

    def __repr__(self) -> str:
        return f"AsyncDirectLinks(host={self.engine.host!r}, sms={self.engine.sms.name!r})"

    @property
    def limits(self) -> LinkLimits:
        return self.engine.limits

    @property
    def audit(self) -> AuditLog:
        return self.engine.audit

    def link_id(self, token: str) -> str:
        """The link id inside a valid token (to revoke a link you only have the URL of)."""
        return self.engine.link_id(token)

    async def aclose(self) -> None:
        await self.driver.aclose()
