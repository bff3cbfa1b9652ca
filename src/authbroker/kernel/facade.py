"""Declared facades: the blocking and the asyncio API of an engine, written once.

An *engine* (``FlowEngine``, ``LinkEngine`` ...) holds a service's rules and exposes
each operation as a routine (a method returning ``Gen[T]``). Its public faces are
declared, not written:

.. code-block:: python

    class Broker(SyncFacade[FlowEngine]):
        begin = sync_op(FlowEngine.begin)

    class AsyncBroker(AsyncFacade[FlowEngine]):
        begin = async_op(FlowEngine.begin)

``Broker(...).begin(...)`` then runs ``FlowEngine.begin(engine, ...)`` in the
facade's :class:`~authbroker.kernel.runtime.SyncRuntime`, and ``AsyncBroker``'s
``begin`` awaits it in an :class:`~authbroker.kernel.runtime.AsyncRuntime`. The
signature (minus the engine), the docstring and the return type come from the
routine: mypy sees ``begin(provider: str, *, ...) -> Step`` on one and
``-> Awaitable[Step]`` on the other (``tests/kernel/test_kernel.py`` pins this), and
``inspect.signature``/``help()`` show the routine's own.

Why a descriptor and not a code generator: the facades stay ordinary classes that a
reader finds with "go to definition", and the one place where sync and async differ
(``run`` versus ``await run``) is written once, here. The bound method is cached on
the instance at first use, so a call costs one dictionary lookup more than a
hand-written method, not a closure per call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from .runtime import AsyncRuntime, SyncRuntime

__all__ = ["AsyncFacade", "SyncFacade", "async_op", "op", "sync_op"]

E = TypeVar("E")
P = ParamSpec("P")
T = TypeVar("T")

Routine = Callable[Concatenate[E, P], Generator[Any, Any, T]]


class SyncFacade(Generic[E]):
    """Base of a blocking facade: an engine and the runtime that runs its routines."""

    engine: E
    runtime: SyncRuntime

    def run(self, routine: Generator[Any, Any, T]) -> T:
        """Run any routine (e.g. one composed of several engines) in this runtime."""
        return self.runtime.run(routine)


class AsyncFacade(Generic[E]):
    """Base of an asyncio facade: an engine and the runtime that runs its routines."""

    engine: E
    runtime: AsyncRuntime

    async def run(self, routine: Generator[Any, Any, T]) -> T:
        """Run any routine (e.g. one composed of several engines) in this runtime."""
        return await self.runtime.run(routine)


def _public_signature(routine: Callable[..., Any]) -> inspect.Signature:
    """The routine's signature without the engine, returning what the routine returns
    (``Gen[Step]`` becomes ``Step``)."""
    sig = inspect.signature(routine)
    params = list(sig.parameters.values())[1:]  # drop the engine (self)
    returns = sig.return_annotation
    if isinstance(returns, str) and returns.startswith("Gen[") and returns.endswith("]"):
        returns = returns[4:-1]
    return sig.replace(parameters=params, return_annotation=returns)


class _Op(Generic[E, P, T]):
    """Shared part of the two descriptors: name, docs, per-instance caching."""

    def __init__(self, routine: Routine[E, P, T]) -> None:
        self.routine = routine
        self.name = routine.__name__
        self.__doc__ = routine.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def _bind(self, facade: Any) -> Callable[..., Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _get(self, facade: Any) -> Callable[..., Any]:
        bound = self._bind(facade)
        functools.update_wrapper(bound, self.routine)
        bound.__name__ = bound.__qualname__ = self.name
        del bound.__wrapped__  # type: ignore[attr-defined]  # signature: not the engine's
        bound.__signature__ = _public_signature(self.routine)  # type: ignore[attr-defined]
        # Cached on the instance: later lookups find it before this descriptor.
        facade.__dict__[self.name] = bound
        return bound


class SyncOp(_Op[E, P, T]):
    """A facade method that runs an engine routine with blocking I/O."""

    @overload
    def __get__(self, facade: None, owner: type | None = None) -> SyncOp[E, P, T]: ...

    @overload
    def __get__(self, facade: SyncFacade[E], owner: type | None = None) -> Callable[P, T]: ...

    def __get__(self, facade: Any, owner: type | None = None) -> Any:
        if facade is None:
            return self
        return self._get(facade)

    def _bind(self, facade: Any) -> Callable[..., Any]:
        routine, engine, run = self.routine, facade.engine, facade.runtime.run

        def bound(*args: Any, **kwargs: Any) -> Any:
            return run(routine(engine, *args, **kwargs))

        return bound


class AsyncOp(_Op[E, P, T]):
    """A facade coroutine method that runs an engine routine with asyncio."""

    @overload
    def __get__(self, facade: None, owner: type | None = None) -> AsyncOp[E, P, T]: ...

    @overload
    def __get__(
        self, facade: AsyncFacade[E], owner: type | None = None
    ) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, facade: Any, owner: type | None = None) -> Any:
        if facade is None:
            return self
        return self._get(facade)

    def _bind(self, facade: Any) -> Callable[..., Any]:
        routine, engine, run = self.routine, facade.engine, facade.runtime.run

        async def bound(*args: Any, **kwargs: Any) -> Any:
            return await run(routine(engine, *args, **kwargs))

        return bound


def sync_op(routine: Routine[E, P, T]) -> SyncOp[E, P, T]:
    """Declare a blocking facade method from an engine routine."""
    return SyncOp(routine)


def async_op(routine: Routine[E, P, T]) -> AsyncOp[E, P, T]:
    """Declare an asyncio facade method from an engine routine."""
    return AsyncOp(routine)


class Op(_Op[E, P, T]):
    """A facade method declared once for both faces: blocking on a
    :class:`SyncFacade`, a coroutine method on an :class:`AsyncFacade`.

    The twins then share one declaration class (``class _LinkOps: open =
    op(LinkEngine.open)``; ``class DirectLinks(_LinkOps, SyncFacade[LinkEngine])``;
    ``class AsyncDirectLinks(_LinkOps, AsyncFacade[LinkEngine])``), and mypy still
    sees ``T`` on one and ``Awaitable[T]`` on the other.
    """

    @overload
    def __get__(self, facade: None, owner: type | None = None) -> Op[E, P, T]: ...

    @overload
    def __get__(
        self, facade: AsyncFacade[E], owner: type | None = None
    ) -> Callable[P, Awaitable[T]]: ...

    @overload
    def __get__(self, facade: SyncFacade[E], owner: type | None = None) -> Callable[P, T]: ...

    def __get__(self, facade: Any, owner: type | None = None) -> Any:
        if facade is None:
            return self
        return self._get(facade)

    def _bind(self, facade: Any) -> Callable[..., Any]:
        if isinstance(facade, AsyncFacade):
            return AsyncOp._bind(self, facade)  # type: ignore[arg-type]
        return SyncOp._bind(self, facade)  # type: ignore[arg-type]


def op(routine: Routine[E, P, T]) -> Op[E, P, T]:
    """Declare a facade method from an engine routine for the blocking and the asyncio
    face at once (see :class:`Op`)."""
    return Op(routine)
