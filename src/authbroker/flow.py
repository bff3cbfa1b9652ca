"""Store effect helpers for sans-I/O routines, and the legacy runner entry points.

Protocol code is written as generators that *yield effects* (see
:mod:`authbroker.kernel.effects`) and receive their results. The helpers here give
typed results to ``yield from`` for the store operations of
:mod:`authbroker.store.base`.

The flow steps (:class:`~authbroker.steps.Redirect`, :class:`~authbroker.steps.Done`
...) live in :mod:`authbroker.steps` and are re-exported here for existing imports.
:func:`run_sync` / :func:`run_async` are kept for callers that have not moved to
:class:`~authbroker.kernel.runtime.SyncRuntime` / ``AsyncRuntime`` yet; they delegate
to those runtimes, the only runners in the library.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from .http import HttpRequest
from .kernel.effects import Call, Effect, Gen, Offload, Sleep, fetch
from .kernel.runtime import AsyncRuntime, SyncRuntime
from .steps import AutoPost, Challenge, Display, Done, Poll, Redirect, Step
from .store.base import Delete, Get, Incr, Put, PutIfAbsent, Replace, StoreOp, Take

if TYPE_CHECKING:
    from .http import AsyncDriver, SyncDriver
    from .store.base import AsyncStateStore, StateStore

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
    "run_async",
    "run_sync",
    "store_delete",
    "store_get",
    "store_incr",
    "store_put",
    "store_put_if_absent",
    "store_replace",
    "store_take",
]

T = TypeVar("T")
_KERNEL_EFFECTS = (HttpRequest, StoreOp, Sleep, Offload, Call)


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


# --- legacy runners (delegate to the kernel runtimes) ----------------------------------


class _SyncWithOther(SyncRuntime):
    """A :class:`SyncRuntime` that hands effects foreign to the kernel to ``other``
    (kept only while modules still yield effects of their own)."""

    def __init__(self, driver: Any, store: Any, other: Callable[[Any], object]) -> None:
        super().__init__(driver, store)
        self._other = other

    def _carry_out(self, effect: object) -> object:
        if isinstance(effect, _KERNEL_EFFECTS):
            return super()._carry_out(effect)
        return self._other(effect)


class _AsyncWithOther(AsyncRuntime):
    """The asyncio twin of :class:`_SyncWithOther`."""

    def __init__(self, driver: Any, store: Any, other: Callable[[Any], Awaitable[object]]) -> None:
        super().__init__(driver, store)
        self._other = other

    async def _carry_out(self, effect: object) -> object:
        if isinstance(effect, _KERNEL_EFFECTS):
            return await super()._carry_out(effect)
        return await self._other(effect)


def run_sync(
    gen: Generator[Any, Any, T],
    driver: SyncDriver | None,
    store: StateStore | None,
    *,
    other: Callable[[Any], object] | None = None,
) -> T:
    """Run a routine with blocking I/O: ``SyncRuntime(driver, store).run(gen)``.

    ``other`` carries out effects that are not kernel effects (legacy modules that
    still yield their own); new code yields :class:`~authbroker.kernel.effects.Call`.
    """
    if other is None:
        return SyncRuntime(driver, store).run(gen)
    return _SyncWithOther(driver, store, other).run(gen)


async def run_async(
    gen: Generator[Any, Any, T],
    driver: AsyncDriver | None,
    store: AsyncStateStore | None,
    *,
    other: Callable[[Any], Awaitable[object]] | None = None,
) -> T:
    """Run a routine with asyncio: ``AsyncRuntime(driver, store).run(gen)``."""
    if other is None:
        return await AsyncRuntime(driver, store).run(gen)
    return await _AsyncWithOther(driver, store, other).run(gen)
