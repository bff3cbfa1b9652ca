"""The sans-I/O kernel: effect values, the two runtimes, declared facades.

It imports no service, provider or framework (a test holds that rule): services,
providers and the web layer are written against it.
"""

from .effects import Call, Effect, Gen, Offload, Sleep, call, fetch, offload, sleep
from .facade import AsyncFacade, SyncFacade, async_op, op, sync_op
from .runtime import AsyncRuntime, SyncRuntime

__all__ = [
    "AsyncFacade",
    "AsyncRuntime",
    "Call",
    "Effect",
    "Gen",
    "Offload",
    "Sleep",
    "SyncFacade",
    "SyncRuntime",
    "async_op",
    "call",
    "fetch",
    "offload",
    "op",
    "sleep",
    "sync_op",
]
