"""Deprecated: moved to :mod:`authbroker.engines.sessions` (kept for one minor release)."""

import warnings

from .engines.sessions import (
    AsyncSessionManager,
    Session,
    SessionEngine,
    SessionKind,
    SessionManager,
    SessionPolicy,
    identity_record,
)

warnings.warn(
    "authbroker.sessions moved to authbroker.engines.sessions", DeprecationWarning, stacklevel=2
)

__all__ = [
    "AsyncSessionManager",
    "Session",
    "SessionEngine",
    "SessionKind",
    "SessionManager",
    "SessionPolicy",
    "identity_record",
]
