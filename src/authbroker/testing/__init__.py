"""Test equipment: provider simulators, an in-process transport, simulated brokers.

Nothing on the production path imports this package: a
:class:`~authbroker.engines.flows.Broker` never starts a simulator. Tests, the demo
(``authbroker.web.demo``) and the CLI's simulator mode use
:func:`simulated_broker` / :func:`simulated_async_broker`::

    from authbroker.testing import simulated_broker

    with simulated_broker() as broker:          # embedded defaults: every simulator
        step = broker.begin("ftn", return_to="/", binding="per-browser-value")
        op = broker.simulator("ftn")            # its test persons, its controls
"""

from .brokers import (
    AsyncSimulatedBroker,
    SimulatedBroker,
    Simulators,
    simulated_async_broker,
    simulated_broker,
)
from .registry import BUILTIN_SIMULATORS, IN_PROCESS_PROTOCOLS, RunningSimulator, start_simulator
from .transport import SimulatorTransport

__all__ = [
    "BUILTIN_SIMULATORS",
    "IN_PROCESS_PROTOCOLS",
    "AsyncSimulatedBroker",
    "RunningSimulator",
    "SimulatedBroker",
    "SimulatorTransport",
    "Simulators",
    "simulated_async_broker",
    "simulated_broker",
    "start_simulator",
]
