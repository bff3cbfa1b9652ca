"""The effects a routine may yield, and typed helpers to yield them.

A *routine* is a generator that does no I/O itself: it yields effect values and
receives their results, and a runtime (:mod:`authbroker.kernel.runtime`) carries them
out, blocking or with asyncio. Protocol steps, service operations and web handlers
are all routines, so each is written once and runs under WSGI, ASGI and the CLI.

The effects:

* :class:`~authbroker.http.HttpRequest` → :class:`~authbroker.http.HttpResponse`
  (through the runtime's HTTP driver);
* the store operations of :mod:`authbroker.store.base` (``Get``, ``Take``, ``Put``,
  ``PutIfAbsent``, ``Incr``, ``Delete`` ...) → their results;
* :class:`Sleep` — wait (an SMS gateway's ``Retry-After``, a back-off);
* :class:`Offload` — CPU or database work (argon2, SQL): called in place by the
  blocking runtime, in a worker thread by the asyncio runtime, so the event loop is
  never blocked;
* :class:`Call` — an application callback (a resolver, a veto hook) that may be a
  plain function or a coroutine function: called in place, awaited when it returns
  an awaitable.

Nothing else is an effect: a routine that needs another service composes that
service's routine with ``yield from``; it never names a service by string.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

from ..http import HttpRequest, HttpResponse
from ..store.base import StoreOp

__all__ = [
    "Call",
    "Effect",
    "Gen",
    "Offload",
    "Sleep",
    "call",
    "fetch",
    "offload",
    "sleep",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause the routine for ``seconds`` (a back-off, a provider's ``Retry-After``)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Offload(Generic[T]):
    """Run ``fn(*args, **kwargs)`` off the event loop (CPU or database work)."""

    fn: Callable[..., T]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """Call an application callback, sync or async; its result is the effect's result."""

    fn: Callable[..., T | Awaitable[T]]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


Effect: TypeAlias = HttpRequest | StoreOp | Sleep | Offload[Any] | Call[Any]
#: A routine: yields effects, receives their results, returns a T.
Gen: TypeAlias = Generator[Effect, Any, T]


def fetch(request: HttpRequest) -> Gen[HttpResponse]:
    """Yield an HTTP request and receive its response."""
    response = yield request
    assert isinstance(response, HttpResponse)
    return response


def sleep(seconds: float) -> Gen[None]:
    """Yield a pause of ``seconds``."""
    yield Sleep(seconds)


def offload(fn: Callable[..., T], *args: Any, **kwargs: Any) -> Gen[T]:
    """Run ``fn`` off the event loop and receive its result."""
    result = yield Offload(fn, args, kwargs)
    return result  # type: ignore[no-any-return]


def call(fn: Callable[..., T | Awaitable[T]], *args: Any, **kwargs: Any) -> Gen[T]:
    """Call an application callback (sync or async) and receive its result."""
    result = yield Call(fn, args, kwargs)
    return result  # type: ignore[no-any-return]
