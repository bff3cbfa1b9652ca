"""Which simulator plays which protocol's provider side.

``start(config, settings) -> RunningSimulator`` starts the provider side of one
configured provider and returns the option overrides (endpoints, credentials, trust
anchors) that point the adapter at it. Simulators are test equipment: only
:func:`authbroker.testing.simulated_broker`, the demo and the CLI start them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import ProviderConfig, Settings
from ..errors import ConfigError
from ..providers.registry import load_callable
from .simulators.server import SimRequest, SimResponse

__all__ = [
    "BROWSER_PROTOCOLS",
    "BUILTIN_SIMULATORS",
    "IN_PROCESS_PROTOCOLS",
    "RunningSimulator",
    "start_simulator",
]

BUILTIN_SIMULATORS: Mapping[str, str] = {
    "oidc": "authbroker.testing.simulators.oidc:start",
    "bankid-se": "authbroker.testing.simulators.bankid_se:start",
    "tupas": "authbroker.testing.simulators.tupas:start",
    "mobiilivarmenne": "authbroker.testing.simulators.mobiilivarmenne:start",
    "web-eid": "authbroker.testing.simulators.web_eid:start",
}

#: Protocols whose simulator can run without a socket (no TLS client-certificate
#: check). BankID's checks the RP's client certificate over real TLS, as the service
#: does (RP API: https://developers.bankid.com/), so it always
#: listens on loopback.
IN_PROCESS_PROTOCOLS = frozenset({"oidc", "tupas", "mobiilivarmenne", "web-eid"})

#: Protocols whose simulator has pages a browser opens (the OP's authorization and
#: consent pages, the bank's identification page); their ``start`` takes
#: ``browser_url``, so the demo can serve those pages under its own origin.
BROWSER_PROTOCOLS = frozenset({"oidc", "tupas"})


class _Stoppable(Protocol):
    def stop(self) -> None: ...


@dataclass
class RunningSimulator:
    """A started simulator: the options to merge into the provider config, and a stop.

    ``handle`` answers a request without the socket: the demo serves the pages of a
    :data:`BROWSER_PROTOCOLS` simulator through it under its own origin."""

    overrides: dict[str, Any]
    server: _Stoppable | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    handle: Callable[[SimRequest], SimResponse] | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def start_simulator(
    config: ProviderConfig,
    settings: Settings,
    *,
    in_process: bool = False,
    browser_url: str | None = None,
) -> RunningSimulator:
    """Start the simulator of ``config``'s protocol on loopback, or in process (reached
    only through :class:`~authbroker.testing.transport.SimulatorTransport`).

    ``browser_url`` (for :data:`BROWSER_PROTOCOLS`; ignored for the others, whose
    simulators no browser opens) is where browsers reach the simulator's pages."""
    target = BUILTIN_SIMULATORS.get(config.protocol)
    if target is None:
        raise ConfigError(
            f"protocol '{config.protocol}' has no simulator", key=config.key("environment")
        )
    start = load_callable(target, "simulator")
    kw: dict[str, Any] = {}
    if browser_url is not None and config.protocol in BROWSER_PROTOCOLS:
        kw["browser_url"] = browser_url
    if in_process:
        if config.protocol not in IN_PROCESS_PROTOCOLS:
            raise ConfigError(
                f"the {config.protocol} simulator checks TLS client certificates and "
                "cannot run in process; use in_process=False",
                key=config.key("environment"),
            )
        result = start(config, settings, in_process=True, **kw)
    else:
        result = start(config, settings, **kw)
    if not isinstance(result, RunningSimulator):
        raise ConfigError(f"simulator for {config.protocol} returned {type(result).__name__}")
    return result
