"""Store effect helpers for sans-I/O routines.

Protocol code is written as generators that *yield effects* (see
:mod:`authbroker.kernel.effects`) and receive their results. The helpers here give
typed results to ``yield from`` for the store operations of
:mod:`authbroker.store.base`.

The flow steps (:class:`~authbroker.steps.Redirect`, :class:`~authbroker.steps.Done`
...) live in :mod:`authbroker.steps` and are re-exported here for existing imports.
Routines run in :class:`~authbroker.kernel.runtime.SyncRuntime` or ``AsyncRuntime``,
the only runners in the library (``run_sync``/``run_async`` were removed with the
module-private effect systems they served).
"""

from __future__ import annotations

from .kernel.effects import Effect, Gen, fetch
from .steps import AutoPost, Challenge, Display, Done, Poll, Redirect, Step
from .store.base import Delete, Get, Incr, Put, PutIfAbsent, Replace, Take

__all__ = [
    "AutoPost",
    "Challenge",
    "Display",
    "Done",
    "Effect",
    "Gen",
    "Poll",
    "Redirect",
    "Step",
    "fetch",
    "store_delete",
    "store_get",
    "store_incr",
    "store_put",
    "store_put_if_absent",
    "store_replace",
    "store_take",
]


def store_get(key: str) -> Gen[bytes | None]:
    result = yield Get(key)
    return result  # type: ignore[no-any-return]


def store_take(key: str) -> Gen[bytes | None]:
    result = yield Take(key)
    return result  # type: ignore[no-any-return]


def store_put(key: str, value: bytes, ttl: float) -> Gen[None]:
    yield Put(key, value, ttl)


def store_put_if_absent(key: str, value: bytes, ttl: float) -> Gen[bool]:
    result = yield PutIfAbsent(key, value, ttl)
    return bool(result)


def store_incr(key: str, ttl: float, amount: int = 1) -> Gen[int]:
    result = yield Incr(key, ttl, amount)
    return int(result)


def store_replace(key: str, expected: bytes, value: bytes, ttl: float) -> Gen[bool]:
    """Compare-and-set: write ``value`` only while the live value is ``expected``."""
    result = yield Replace(key, expected, value, ttl)
    return bool(result)


def store_delete(key: str) -> Gen[bool]:
    result = yield Delete(key)
    return bool(result)
