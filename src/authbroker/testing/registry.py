"""Which simulator plays which protocol's provider side.

``start(config, settings) -> RunningSimulator`` starts the provider side of one
configured provider and returns the option overrides (endpoints, credentials, trust
anchors) that point the adapter at it. Simulators are test equipment: only
:func:`authbroker.testing.simulated_broker`, the demo and the CLI start them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import ProviderConfig, Settings
from ..errors import ConfigError
from ..providers.registry import load_callable

__all__ = ["BUILTIN_SIMULATORS", "IN_PROCESS_PROTOCOLS", "RunningSimulator", "start_simulator"]

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


class _Stoppable(Protocol):
    def stop(self) -> None: ...


@dataclass
class RunningSimulator:
    """A started simulator: the options to merge into the provider config, and a stop."""

    overrides: dict[str, Any]
    server: _Stoppable | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def start_simulator(
    config: ProviderConfig, settings: Settings, *, in_process: bool = False
) -> RunningSimulator:
    """Start the simulator of ``config``'s protocol on loopback, or in process (reached
    only through :class:`~authbroker.testing.transport.SimulatorTransport`)."""
    target = BUILTIN_SIMULATORS.get(config.protocol)
    if target is None:
        raise ConfigError(
            f"protocol '{config.protocol}' has no simulator", key=config.key("environment")
        )
    start = load_callable(target, "simulator")
    if in_process:
        if config.protocol not in IN_PROCESS_PROTOCOLS:
            raise ConfigError(
                f"the {config.protocol} simulator checks TLS client certificates and "
                "cannot run in process; use in_process=False",
                key=config.key("environment"),
            )
        result = start(config, settings, in_process=True)
    else:
        result = start(config, settings)
    if not isinstance(result, RunningSimulator):
        raise ConfigError(f"simulator for {config.protocol} returned {type(result).__name__}")
    return result
