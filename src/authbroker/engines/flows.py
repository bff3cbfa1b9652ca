"""The broker: one entry point that runs any provider flow.

``begin`` creates a flow record in the store and returns the provider's first step;
``advance`` feeds back what the browser or poll brought until a :class:`Done` step
carries the :class:`Identity`. The broker, not the adapters, enforces the rules
every flow shares:

* the flow id is 256 random bits and the record lives only in the store, with a TTL;
* the flow is bound to the browser that began it (a hash of a per-browser value,
  compared in constant time), so a flow cannot be completed from another browser
  (login CSRF, BankID same-device relay: security requirements C12, SEB-04);
* only one ``advance`` of a flow runs at a time (a store lock that outlives the
  provider's longest call), and completion *takes* the record atomically, so of any
  number of concurrent callbacks exactly one yields an identity;
* the record is read under the lock and a non-final step is written back only by
  compare-and-set on the version read, so a finished flow never comes back;
* a redirect callback must arrive on the redirect URI of the flow's own provider
  (mix-up defence);
* a failure, expected or not, consumes the flow (fail closed), except a transient
  provider outage while polling, which keeps it for the next poll, and always
  releases the lock, is audited and leaves as a typed error;
* ``return_to`` is checked against an allow-list (no open redirect);
* every outcome is audited without personal data.

The rules live in :class:`FlowEngine`, whose operations are routines (no I/O);
:class:`Broker` runs them with blocking I/O and :class:`AsyncBroker` with asyncio,
both declared from the engine (:mod:`authbroker.kernel.facade`).

A broker never starts a simulator: a provider whose environment is ``simulator`` must
be handed in (``providers=``) or built by a ``provider_factory``, which is what
:func:`authbroker.testing.simulated_broker` does.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypedDict, Unpack
from urllib.parse import urlsplit

from ..audit import AuditLog
from ..config import Settings, load_config
from ..errors import (
    AlreadyUsed,
    AuthBrokerError,
    ConfigError,
    Expired,
    FlowNotFound,
    InvalidInput,
    ProviderUnavailable,
    StoreUnavailable,
)
from ..flow import (
    store_delete,
    store_get,
    store_put,
    store_put_if_absent,
    store_replace,
    store_take,
)
from ..http import AsyncDriver, SyncDriver
from ..identity import Identity
from ..kernel.effects import Gen
from ..kernel.facade import AsyncFacade, SyncFacade, op
from ..kernel.runtime import AsyncRuntime, SyncRuntime
from ..providers.base import (
    Abandonable,
    AdvanceContext,
    BeginContext,
    Next,
    Provider,
    Refreshable,
)
from ..providers.registry import create_provider
from ..steps import Display, Done, Poll, Step
from ..store.base import AsyncStateStore, StateStore
from .flow_records import cause, decode_record, encode_record, hash_binding, short_id, typed

__all__ = ["AsyncBroker", "Broker", "FlowEngine", "ProviderFactory", "check_return_to"]

FLOW_KEY = "flow:"
LOCK_KEY = "flowlock:"
#: How long one advance may hold the flow lock, unless its provider declares calls
#: that can take longer (``max_call_seconds``; see :meth:`FlowEngine.lock_ttl`).
LOCK_TTL = 60.0
#: Added to a provider's ``max_call_seconds``: connecting, store round trips, parsing.
LOCK_MARGIN = 30.0
MAX_PARAM_BYTES = 64 * 1024


def check_return_to(value: str | None, allowed_origins: tuple[str, ...] = ()) -> str:
    """Accept a same-site path or a URL on an allow-listed origin; refuse the rest.

    ``//evil.example`` and ``/\\evil.example`` are protocol-relative in browsers and
    therefore refused, as are control characters and other schemes.
    """
    if value is None or value == "":
        return "/"
    if len(value) > 2048 or any(ord(ch) < 0x20 or ch == "\x7f" for ch in value):
        raise InvalidInput("return_to is not acceptable", code="return_to")
    if value.startswith("/") and not value.startswith(("//", "/\\")) and "\\" not in value:
        return value
    parts = urlsplit(value)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if parts.scheme in ("https", "http") and origin in {o.lower() for o in allowed_origins}:
        return value
    raise InvalidInput("return_to is not on the allow-list", code="return_to")


#: Builds the provider of a configured name (see :class:`FlowEngine`).
ProviderFactory = Callable[[str], Provider]


class FlowEngine:
    """The flow rules and state (providers, settings, audit); no I/O here.

    Each operation is one routine (``begin``, ``advance``, ``refresh``, ``cancel``)
    that :class:`Broker` and :class:`AsyncBroker` run, and that other routines (the
    web handlers) compose with ``yield from``.

    Providers come from ``providers`` (built by the caller), else from
    ``provider_factory(name)``, else from the configuration. Without a factory a
    provider configured for the ``simulator`` environment is refused at construction:
    a broker built for production never starts a simulator, and a site that forgot
    to leave the simulator fails at start-up instead of accepting test persons.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        providers: Mapping[str, Provider] | None = None,
        audit: AuditLog | None = None,
        now: Callable[[], float] = time.time,
        provider_factory: ProviderFactory | None = None,
    ) -> None:
        self.settings = settings or load_config()
        self.audit = audit or AuditLog()
        self.now = now
        if self.settings.section("broker").get("telemetry") is True:
            # `[broker] telemetry = true`: spans and metrics (authbroker[otel]); the
            # telemetry module, and OpenTelemetry, load only when asked for.
            from ..telemetry import enable_from_settings

            enable_from_settings(self.settings)
        self._providers: dict[str, Provider] = dict(providers or {})
        self._factory = provider_factory
        if provider_factory is None:
            on_simulator = [
                name
                for name, config in self.settings.providers.items()
                if config.environment == "simulator" and name not in self._providers
            ]
            if on_simulator:
                raise ConfigError(
                    f"providers {', '.join(on_simulator)} are configured for the simulator "
                    "environment; a Broker never starts simulators. Set [broker] environment "
                    "(or providers.NAME.environment) to test or production, pass providers=, "
                    "or use authbroker.testing.simulated_broker() in tests and demos",
                    key=f"providers.{on_simulator[0]}.environment",
                )

    # -- providers ---------------------------------------------------------------

    def provider(self, name: str) -> Provider:
        """The provider adapter of ``name``, built on first use."""
        provider = self._providers.get(name)
        if provider is not None:
            return provider
        if self._factory is not None:
            provider = self._factory(name)
        else:
            provider = create_provider(self.settings.provider(name), self.settings)
        self._providers[name] = provider
        return provider

    def built_provider(self, name: str) -> Provider | None:
        """The adapter of ``name`` if it was already built, else None (never builds:
        the health endpoint reads caches without starting anything)."""
        return self._providers.get(name)

    @property
    def provider_names(self) -> list[str]:
        names = list(self.settings.providers)
        return names + [n for n in self._providers if n not in names]

    # -- flow routines -----------------------------------------------------------

    def begin(
        self,
        provider: str,
        *,
        return_to: str | None = None,
        client_ip: str | None = None,
        binding: str | None = None,
        params: Mapping[str, str] | None = None,
        language: str = "en",
        origin: str = "",
        insecure_unbound: bool = False,
    ) -> Gen[Step]:
        """Start a flow; ``binding`` is a per-browser secret (cookie) the flow is tied to.

        The binding is required: a flow begun without one could be completed from any
        browser that learns its id (login CSRF, a relayed BankID autostart link). A
        caller with no browser at all (a server-side script) must say so with
        ``insecure_unbound=True``, and then the flow id alone completes the flow.
        """
        if not binding and not insecure_unbound:
            raise InvalidInput(
                "a flow needs a per-browser binding (or insecure_unbound=True)",
                code="binding_required",
            )
        if binding and insecure_unbound:
            raise InvalidInput("a flow is bound or unbound, not both", code="binding_required")
        provider_name = provider
        target = check_return_to(return_to, self.settings.return_to_origins)
        adapter = self.provider(provider_name)
        flow_id = secrets.token_urlsafe(32)
        now = self.now()
        ttl = self.flow_ttl(adapter)
        ctx = BeginContext(
            flow_id=flow_id,
            callback_url=f"{self.settings.callback_base}/callback/{provider_name}",
            now=now,
            client_ip=client_ip,
            language=language,
            params=dict(params or {}),
            origin=origin,
        )
        try:
            nxt = yield from adapter.begin(ctx)
        except AuthBrokerError as exc:
            self._audit_failure(provider_name, flow_id, client_ip, exc)
            raise
        record = {
            "v": 1,
            "p": provider_name,
            "b": hash_binding(binding),
            "r": target,
            "c": now,
            "e": now + ttl,
            "k": type(nxt.step).__name__,
            "d": nxt.data,
        }
        yield from store_put(FLOW_KEY + flow_id, encode_record(record), ttl)
        self.audit.emit(
            "flow.begun",
            "info",
            provider=provider_name,
            flow_id=short_id(flow_id),
            client_ip=client_ip,
        )
        return replace(nxt.step, flow_id=flow_id)

    def _load_record(self, flow_id: str, binding: str | None) -> Gen[tuple[dict[str, Any], bytes]]:
        """The live flow record and its exact stored bytes (the version a write-back
        must still find: see :meth:`_advance_locked`)."""
        if not isinstance(flow_id, str) or not 16 <= len(flow_id) <= 128:
            raise FlowNotFound("unknown flow")
        raw = yield from store_get(FLOW_KEY + flow_id)
        if raw is None:
            raise FlowNotFound("unknown or finished flow")
        record = decode_record(raw)
        expected = str(record.get("b", ""))
        if expected and not hmac.compare_digest(expected, hash_binding(binding)):
            raise InvalidInput("flow belongs to another browser", code="flow_binding")
        if float(record["e"]) < self.now():
            yield from store_delete(FLOW_KEY + flow_id)
            raise Expired("flow expired", code="flow_expired")
        return record, raw

    def flow_ttl(self, provider: Provider) -> float:
        """Seconds a new flow of ``provider`` lives: the provider's own ``flow_ttl``,
        never more than ``[broker] flow_ttl`` (the operator's upper bound)."""
        own = float(getattr(provider, "flow_ttl", self.settings.flow_ttl))
        return min(own, self.settings.flow_ttl)

    @staticmethod
    def lock_ttl(provider: Provider) -> float:
        """Seconds one ``advance`` may hold the flow lock.

        The lock must outlive the longest call the provider can make inside one
        advance, or a poll arriving after it expired would start that call a second
        time (a second Mobiilivarmenne signature request while the first still
        blocks). Providers whose calls can outlast :data:`LOCK_TTL` say so with
        ``max_call_seconds``; the lock then lasts that long plus :data:`LOCK_MARGIN`.
        """
        longest = getattr(provider, "max_call_seconds", None)
        if isinstance(longest, int | float) and not isinstance(longest, bool) and longest > 0:
            return max(LOCK_TTL, float(longest) + LOCK_MARGIN)
        return LOCK_TTL

    def advance(
        self,
        flow_id: str,
        params: Mapping[str, str] | None = None,
        *,
        binding: str | None = None,
        client_ip: str | None = None,
        language: str = "en",
        origin: str = "",
        provider: str | None = None,
    ) -> Gen[Step]:
        """Feed callback parameters / a poll tick / a token; returns the next step.

        ``provider`` is the provider whose callback URI the parameters came back on;
        pass it from redirect callbacks so a flow begun with another provider is
        refused and consumed (mix-up defence, RFC 9700 section 4.4.2).

        The flow advances under its lock. Every exception that reaches this routine
        (a typed error, a store failure, a bug or an unexpected exception in provider
        code) releases the lock, is audited, consumes the flow (except a transient
        outage while polling) and leaves as an :class:`AuthBrokerError`; unexpected
        ones become an :class:`InternalError` with the original chained as
        ``__cause__``.
        """
        via = provider
        params = dict(params or {})
        if sum(len(k) + len(str(v)) for k, v in params.items()) > MAX_PARAM_BYTES:
            raise InvalidInput("parameters too large", code="params_too_large")
        # Existence, browser binding and expiry are checked before taking the lock,
        # so nobody without the flow's browser can hold it.
        record, _ = yield from self._load_record(flow_id, binding)
        name = str(record["p"])
        if via is not None and via != name:
            mixup = InvalidInput(
                "the callback arrived for another provider than the flow's",
                code="flow_provider_mismatch",
            )
            self._audit_failure(name, flow_id, client_ip, mixup)
            yield from store_delete(FLOW_KEY + flow_id)
            raise mixup
        adapter = self.provider(name)
        lock_key = LOCK_KEY + flow_id
        locked = yield from store_put_if_absent(lock_key, b"1", self.lock_ttl(adapter))
        if not locked:
            if record.get("k") == "Poll":
                return self._current_poll(adapter, flow_id, record)
            raise AlreadyUsed("flow is already being completed", code="flow_busy")
        ctx = AdvanceContext(
            flow_id=flow_id,
            now=self.now(),
            client_ip=client_ip,
            language=language,
            origin=origin,
        )
        try:
            step = yield from self._advance_locked(adapter, name, ctx, binding, params)
        except Exception as exc:
            error = typed(exc)
            self._audit_failure(name, flow_id, client_ip, error)
            # A transient outage while polling keeps the flow for the next poll;
            # anything else consumes it (fail closed).
            if not (isinstance(error, ProviderUnavailable) and record.get("k") == "Poll"):
                with contextlib.suppress(StoreUnavailable):
                    yield from store_delete(FLOW_KEY + flow_id)
            with contextlib.suppress(StoreUnavailable):
                yield from store_delete(lock_key)
            if error is exc:
                raise
            raise error from exc
        # Not in a ``finally``: a generator cannot yield while it is being closed.
        # When the runner abandons this routine (a cancelled task) the lock simply
        # expires after its TTL.
        with contextlib.suppress(StoreUnavailable):
            yield from store_delete(lock_key)
        return step

    def _advance_locked(
        self,
        provider: Provider,
        name: str,
        ctx: AdvanceContext,
        binding: str | None,
        params: Mapping[str, str],
    ) -> Gen[Step]:
        """One advance with the lock held.

        The record is read again here, under the lock, and a non-final step is
        written back only by compare-and-set against exactly those bytes (the record
        carries a version ``n`` that every write increments). If the flow ended or
        moved on meanwhile (completed, failed, cancelled, expired, or written by an
        advance whose lock had run out) the write-back fails: a finished flow never
        comes back, whatever the timing and the store.
        """
        flow_id = ctx.flow_id
        record, raw = yield from self._load_record(flow_id, binding)
        result = yield from provider.advance(ctx, record["d"], params)
        if isinstance(result, Next):
            remaining = float(record["e"]) - self.now()
            if remaining <= 0:
                raise Expired("flow expired", code="flow_expired")
            record.update(
                k=type(result.step).__name__, d=result.data, n=int(record.get("n", 0)) + 1
            )
            written = yield from store_replace(
                FLOW_KEY + flow_id, raw, encode_record(record), remaining
            )
            if not written:
                raise AlreadyUsed("the flow ended while it was advanced", code="flow_conflict")
            return replace(result.step, flow_id=flow_id)
        if not isinstance(result, Identity):
            raise TypeError(f"provider {name!r} returned {type(result).__name__}")
        identity: Identity = result
        taken = yield from store_take(FLOW_KEY + flow_id)
        if taken is None or not hmac.compare_digest(taken, raw):
            # Gone, or a newer version than the one this identity was derived from.
            raise AlreadyUsed("flow was already completed", code="flow_replayed")
        self.audit.emit(
            "flow.completed",
            "success",
            provider=name,
            flow_id=short_id(flow_id),
            client_ip=ctx.client_ip,
            subject=identity.national_id.masked if identity.national_id else None,
            details={"loa": identity.loa.name.lower(), "method": identity.method},
        )
        return Done(identity=identity, flow_id=flow_id, return_to=str(record["r"]))

    def _current_poll(self, provider: Provider, flow_id: str, record: Mapping[str, Any]) -> Poll:
        display = (
            provider.refresh(record["d"], self.now())
            if isinstance(provider, Refreshable)
            else Display(status="pending")
        )
        return Poll(
            interval=float(record["d"].get("interval", 2.0)), display=display, flow_id=flow_id
        )

    def refresh(self, flow_id: str, *, binding: str | None = None) -> Gen[Poll]:
        """The current display of a polling flow without advancing it (animated QR)."""
        record, _ = yield from self._load_record(flow_id, binding)
        if record.get("k") != "Poll":
            raise InvalidInput("flow is not polling", code="not_polling")
        return self._current_poll(self.provider(str(record["p"])), flow_id, record)

    def cancel(self, flow_id: str, *, binding: str | None = None) -> Gen[None]:
        """Abandon a flow: consume it and tell the provider where the protocol needs it."""
        record, _ = yield from self._load_record(flow_id, binding)
        taken = yield from store_take(FLOW_KEY + flow_id)
        if taken is None:
            raise FlowNotFound("unknown or finished flow")
        name = str(record["p"])
        provider = self.provider(name)
        if isinstance(provider, Abandonable):
            # The flow is gone either way; the provider expires the order itself.
            with contextlib.suppress(AuthBrokerError):
                yield from provider.abandon(record["d"])
        self.audit.emit("flow.cancelled", "info", provider=name, flow_id=short_id(flow_id))

    def _audit_failure(
        self, provider: str, flow_id: str, client_ip: str | None, exc: AuthBrokerError
    ) -> None:
        self.audit.emit(
            "flow.failed",
            "failure",
            provider=provider,
            flow_id=short_id(flow_id),
            client_ip=client_ip,
            reason=exc.code,
            details={"error": type(exc).__name__, **cause(exc)},
        )


class FlowOptions(TypedDict, total=False):
    """The engine's optional settings, the same for both brokers (defaults: the engine's)."""

    providers: Mapping[str, Provider] | None
    audit: AuditLog | None
    now: Callable[[], float]
    provider_factory: ProviderFactory | None


class _FlowViews:
    """What both brokers declare and read from their engine, written once: the
    operations (``op``: blocking on :class:`Broker`, coroutines on
    :class:`AsyncBroker`) and the engine's settings, audit log and providers."""

    engine: FlowEngine

    begin = op(FlowEngine.begin)
    advance = op(FlowEngine.advance)
    refresh = op(FlowEngine.refresh)
    cancel = op(FlowEngine.cancel)

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    @property
    def audit(self) -> AuditLog:
        return self.engine.audit

    def provider(self, name: str) -> Provider:
        return self.engine.provider(name)

    @property
    def provider_names(self) -> list[str]:
        return self.engine.provider_names


class Broker(_FlowViews, SyncFacade[FlowEngine]):
    """Blocking broker for WSGI apps, scripts and the CLI."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: StateStore | None = None,
        driver: SyncDriver | None = None,
        start_simulators: bool | None = None,
        **options: Unpack[FlowOptions],
    ) -> None:
        _no_simulators(start_simulators)
        self.engine = FlowEngine(settings, **options)
        if store is None:
            from ..store import open_store

            store = open_store(self.engine.settings.store_url)
        self.store = store
        self.driver = driver or SyncDriver()
        self.runtime = SyncRuntime(self.driver, self.store)

    def close(self) -> None:
        try:
            self.driver.close()
        finally:
            self.store.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncBroker(_FlowViews, AsyncFacade[FlowEngine]):
    """Non-blocking broker for ASGI apps; same semantics as :class:`Broker`."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: AsyncStateStore | None = None,
        driver: AsyncDriver | None = None,
        start_simulators: bool | None = None,
        **options: Unpack[FlowOptions],
    ) -> None:
        _no_simulators(start_simulators)
        self.engine = FlowEngine(settings, **options)
        if store is None:
            from ..store import open_async_store

            store = open_async_store(self.engine.settings.store_url)
        self.store = store
        self.driver = driver or AsyncDriver()
        self.runtime = AsyncRuntime(self.driver, self.store)

    async def aclose(self) -> None:
        try:
            await self.driver.aclose()
        finally:
            await self.store.aclose()

    async def __aenter__(self) -> AsyncBroker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _no_simulators(start_simulators: bool | None) -> None:
    """``start_simulators`` is accepted for one release and has no effect: a broker
    never starts simulators (:func:`authbroker.testing.simulated_broker` does)."""
    if start_simulators is not None:
        import warnings

        warnings.warn(
            "start_simulators has no effect: a Broker never starts simulators; "
            "use authbroker.testing.simulated_broker() for simulators",
            DeprecationWarning,
            stacklevel=3,
        )
