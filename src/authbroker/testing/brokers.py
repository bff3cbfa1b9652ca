"""Brokers wired to the simulators: for tests, the demo and the CLI's simulator mode.

:func:`simulated_broker` builds an ordinary :class:`~authbroker.engines.flows.Broker`
whose provider factory starts, on first use of a provider configured for the
``simulator`` environment, that provider's simulator
(:mod:`authbroker.testing.registry`) and points the adapter at it. Providers in other
environments are built from the configuration as in production, and ``providers=``
still takes precedence. The flow engine knows nothing of simulators.

``in_process=True`` runs the simulators that check no TLS client certificate
(OIDC, TUPAS, MSSP, OCSP) without sockets, behind a
:class:`~authbroker.testing.transport.SimulatorTransport` given to the broker's
driver; browsers cannot reach those, so the demo and browser tests use loopback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..audit import AuditLog
from ..config import Settings, load_config
from ..engines.flows import AsyncBroker, Broker
from ..http import AsyncDriver, SyncDriver
from ..providers.base import Provider
from ..providers.registry import create_provider
from ..store.base import AsyncStateStore, StateStore
from .registry import RunningSimulator, start_simulator
from .transport import SimulatorTransport

__all__ = [
    "AsyncSimulatedBroker",
    "SimulatedBroker",
    "Simulators",
    "simulated_async_broker",
    "simulated_broker",
]

_log = logging.getLogger("authbroker.broker")


class Simulators:
    """The simulators one broker started, and the provider factory that starts them."""

    def __init__(
        self,
        settings: Settings,
        *,
        in_process: bool = False,
        given: Collection[str] = (),
        browser_base: str | None = None,
    ) -> None:
        self.settings = settings
        self.in_process = in_process
        #: Browsers reach provider NAME's simulator pages at ``{browser_base}/NAME``
        #: (the demo mounts them there); None = at the simulator's own URL.
        self.browser_base = browser_base
        self._running: dict[str, RunningSimulator] = {}
        self._lock = threading.Lock()
        on_simulator = [
            name
            for name, config in settings.providers.items()
            if config.environment == "simulator" and name not in given
        ]
        if on_simulator:
            # Anyone who meets this line in a production log must notice it.
            _log.warning(
                "SIMULATOR MODE: providers %s run on their simulators with test persons; "
                "nobody is really identified. Set [broker] environment (or "
                "providers.NAME.environment) to test or production for the real services.",
                ", ".join(on_simulator),
            )

    def create(self, name: str) -> Provider:
        """The provider of ``name``: against its simulator in the simulator environment."""
        config = self.settings.provider(name)
        if config.environment == "simulator":
            config = config.with_options(**self.start(name).overrides)
        return create_provider(config, self.settings)

    def start(self, name: str) -> RunningSimulator:
        """The running simulator of ``name``, started on first use."""
        with self._lock:
            sim = self._running.get(name)
            if sim is None:
                config = self.settings.provider(name)
                browser_url = f"{self.browser_base}/{name}" if self.browser_base else None
                sim = start_simulator(
                    config, self.settings, in_process=self.in_process, browser_url=browser_url
                )
                self._running[name] = sim
            return sim

    def get(self, name: str) -> RunningSimulator | None:
        return self._running.get(name)

    def stop(self) -> None:
        with self._lock:
            running = list(self._running.values())
            self._running.clear()
        for sim in running:
            sim.stop()


class SimulatedBroker(Broker):
    """A :class:`~authbroker.engines.flows.Broker` with the simulators it started."""

    simulators: Simulators

    def simulator(self, name: str) -> RunningSimulator | None:
        """The running simulator of ``name`` (tests and the demo reach its test users);
        ``None`` when the provider is not on a simulator."""
        self.provider(name)
        return self.simulators.get(name)

    def close(self) -> None:
        try:
            self.simulators.stop()
        finally:
            super().close()

    def __enter__(self) -> SimulatedBroker:
        return self


class AsyncSimulatedBroker(AsyncBroker):
    """An :class:`~authbroker.engines.flows.AsyncBroker` with the simulators it started."""

    simulators: Simulators

    def simulator(self, name: str) -> RunningSimulator | None:
        """See :meth:`SimulatedBroker.simulator`."""
        self.provider(name)
        return self.simulators.get(name)

    async def aclose(self) -> None:
        try:
            self.simulators.stop()
        finally:
            await super().aclose()

    async def __aenter__(self) -> AsyncSimulatedBroker:
        return self


def simulated_broker(
    settings: Settings | None = None,
    *,
    store: StateStore | None = None,
    driver: SyncDriver | None = None,
    audit: AuditLog | None = None,
    now: Callable[[], float] = time.time,
    providers: Mapping[str, Provider] | None = None,
    in_process: bool = False,
    **kw: Any,
) -> SimulatedBroker:
    """A blocking broker whose ``simulator``-environment providers run on simulators.

    Each simulator starts on first use of its provider; ``close()`` stops them.
    ``in_process`` serves them without sockets (see the module docstring); a
    ``driver`` given with it must already route to them (``transport=
    SimulatorTransport()``).
    """
    settings = settings or load_config()
    sims = Simulators(settings, in_process=in_process, given=tuple(providers or ()))
    if driver is None and in_process:
        driver = SyncDriver(transport=SimulatorTransport())
    broker = SimulatedBroker(
        settings,
        store=store,
        driver=driver,
        providers=providers,
        audit=audit,
        now=now,
        provider_factory=sims.create,
        **kw,
    )
    broker.simulators = sims
    return broker


def simulated_async_broker(
    settings: Settings | None = None,
    *,
    store: AsyncStateStore | None = None,
    driver: AsyncDriver | None = None,
    audit: AuditLog | None = None,
    now: Callable[[], float] = time.time,
    providers: Mapping[str, Provider] | None = None,
    in_process: bool = False,
    browser_base: str | None = None,
    **kw: Any,
) -> AsyncSimulatedBroker:
    """The asyncio twin of :func:`simulated_broker`; ``browser_base`` see :class:`Simulators`."""
    settings = settings or load_config()
    sims = Simulators(
        settings, in_process=in_process, given=tuple(providers or ()), browser_base=browser_base
    )
    if driver is None and in_process:
        driver = AsyncDriver(transport=SimulatorTransport())
    broker = AsyncSimulatedBroker(
        settings,
        store=store,
        driver=driver,
        providers=providers,
        audit=audit,
        now=now,
        provider_factory=sims.create,
        **kw,
    )
    broker.simulators = sims
    return broker
