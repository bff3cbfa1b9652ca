"""Deprecated: the broker moved to :mod:`authbroker.engines.flows` (one minor release)."""

import warnings

from .engines.flows import (
    FLOW_KEY,
    LOCK_KEY,
    LOCK_MARGIN,
    LOCK_TTL,
    MAX_PARAM_BYTES,
    AsyncBroker,
    Broker,
    FlowEngine,
    check_return_to,
)

warnings.warn(
    "authbroker.broker moved to authbroker.engines.flows", DeprecationWarning, stacklevel=2
)

__all__ = [
    "FLOW_KEY",
    "LOCK_KEY",
    "LOCK_MARGIN",
    "LOCK_TTL",
    "MAX_PARAM_BYTES",
    "AsyncBroker",
    "Broker",
    "FlowEngine",
    "check_return_to",
]
