"""The two runtimes: carry out a routine's effects, blocking or with asyncio.

These are the only runners in the library. A facade method, a web request, a CLI
command: each is one ``run`` of one routine, however many services the routine
composes with ``yield from``.

Failure semantics (the same in both runtimes): when carrying out an effect raises
*any* exception, it is thrown back into the routine at the ``yield`` that asked for
it, so the routine's ``try``/``finally`` blocks run (a flow lock is released, a
reservation refunded, an audit event written) before the exception leaves ``run``.
A routine never sees a ``GeneratorExit`` for a failure, and the runtime never
swallows one: what the routine does not handle reaches the caller unchanged (the
engines turn unexpected exceptions into typed ``AuthBrokerError``\\ s where they own
the state). When ``run`` itself is interrupted (a cancelled task), the routine is
closed, which runs its ``finally`` blocks as far as they need no further effect.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from ..http import HttpRequest
from ..store.base import AsyncStateStore, StateStore, StoreOp, apply_async, apply_sync
from .effects import Call, Offload, Sleep

if TYPE_CHECKING:
    from ..http import AsyncDriver, SyncDriver

__all__ = ["AsyncRuntime", "SyncRuntime"]

T = TypeVar("T")


class _Missing(RuntimeError):
    """A routine yielded an effect this runtime was built without (a programming error)."""


class SyncRuntime:
    """Runs routines with blocking I/O (WSGI apps, scripts, the CLI).

    ``driver`` and ``store`` may be omitted when the routines it runs need no HTTP or
    no state; ``sleep`` is injectable so tests do not wait.
    """

    def __init__(
        self,
        driver: SyncDriver | None = None,
        store: StateStore | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.driver = driver
        self.store = store
        self._sleep = sleep

    def _carry_out(self, effect: object) -> object:
        if isinstance(effect, HttpRequest):
            if self.driver is None:
                raise _Missing("this routine needs an HTTP driver")
            return self.driver.send(effect)
        if isinstance(effect, StoreOp):
            if self.store is None:
                raise _Missing("this routine needs a state store")
            return apply_sync(self.store, effect)
        if isinstance(effect, Offload):
            return effect.fn(*effect.args, **effect.kwargs)
        if isinstance(effect, Call):
            result = effect.fn(*effect.args, **effect.kwargs)
            if inspect.isawaitable(result):
                _close(result)
                raise _Missing("an async callback cannot run under the blocking runtime")
            return result
        if isinstance(effect, Sleep):
            if effect.seconds > 0:
                self._sleep(effect.seconds)
            return None
        raise TypeError(f"not an effect: {type(effect).__name__}")

    def run(self, routine: Generator[Any, Any, T]) -> T:
        """Carry out every effect of ``routine`` and return its result."""
        try:
            effect = next(routine)
            while True:
                try:
                    result = self._carry_out(effect)
                except Exception as exc:
                    effect = routine.throw(exc)
                    continue
                effect = routine.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            routine.close()


class AsyncRuntime:
    """Runs routines with asyncio (ASGI apps); same semantics as :class:`SyncRuntime`."""

    def __init__(
        self,
        driver: AsyncDriver | None = None,
        store: AsyncStateStore | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.driver = driver
        self.store = store
        self._sleep = sleep

    async def _carry_out(self, effect: object) -> object:
        import asyncio

        if isinstance(effect, HttpRequest):
            if self.driver is None:
                raise _Missing("this routine needs an HTTP driver")
            return await self.driver.send(effect)
        if isinstance(effect, StoreOp):
            if self.store is None:
                raise _Missing("this routine needs a state store")
            return await apply_async(self.store, effect)
        if isinstance(effect, Offload):
            return await asyncio.to_thread(effect.fn, *effect.args, **effect.kwargs)
        if isinstance(effect, Call):
            result = effect.fn(*effect.args, **effect.kwargs)
            return await result if inspect.isawaitable(result) else result
        if isinstance(effect, Sleep):
            if effect.seconds > 0:
                await (self._sleep or asyncio.sleep)(effect.seconds)
            return None
        raise TypeError(f"not an effect: {type(effect).__name__}")

    async def run(self, routine: Generator[Any, Any, T]) -> T:
        """Carry out every effect of ``routine`` and return its result."""
        try:
            effect = next(routine)
            while True:
                try:
                    result = await self._carry_out(effect)
                except Exception as exc:
                    effect = routine.throw(exc)
                    continue
                effect = routine.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            routine.close()


def _close(awaitable: object) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()  # no "coroutine was never awaited" warning
