"""Flow steps and the sans-I/O effect runner.

Every provider is driven through ``begin`` and ``advance``; each returns a *step*
telling the web layer (or CLI) what to do next: redirect the browser
(:class:`Redirect`), auto-post a form (:class:`AutoPost`), poll while showing
something (:class:`Poll`), have the browser sign a challenge (:class:`Challenge`),
or finish (:class:`Done`).

Protocol code is written as generators that *yield effects* (an
:class:`~authbroker.http.HttpRequest` to send, or a store operation from
:mod:`authbroker.store.base`) and receive their results. :func:`run_sync` and
:func:`run_async` carry the effects out with a sync or async driver and store, so
the same protocol code serves WSGI, ASGI and the CLI. Helpers :func:`fetch` and
:func:`store` give typed results to ``yield from``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

from .http import AsyncDriver, HttpRequest, HttpResponse, SyncDriver
from .identity import Identity
from .store.base import (
    AsyncStateStore,
    Delete,
    Get,
    Incr,
    Put,
    PutIfAbsent,
    Replace,
    StateStore,
    StoreOp,
    Take,
    apply_async,
    apply_sync,
)

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
_STORE_OPS = (Put, Get, Take, PutIfAbsent, Incr, Replace, Delete)
Effect: TypeAlias = HttpRequest | StoreOp
#: A sans-I/O routine: yields effects, receives their results, returns a T.
Gen: TypeAlias = Generator[Effect, Any, T]


@dataclass(frozen=True, slots=True)
class Display:
    """What a decoupled flow (BankID, Mobile ID) asks the user interface to show.

    ``message`` is keyed by language (``{"sv": ..., "en": ..., "fi": ...}``).
    ``qr`` is never the QR secret, only the payload valid for the current second;
    the web layer asks the server for a fresh one every second.
    """

    message: Mapping[str, str] = field(default_factory=dict)
    status: str = ""
    hint_code: str = ""
    qr: str | None = None
    autostart_url: str | None = None
    verification_code: str | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    """Send the browser to ``url`` (OIDC authorization request)."""

    url: str
    flow_id: str = ""


@dataclass(frozen=True, slots=True)
class AutoPost:
    """Have the browser POST ``fields`` to ``url`` (TUPAS request form)."""

    url: str
    fields: Mapping[str, str]
    flow_id: str = ""


@dataclass(frozen=True, slots=True)
class Poll:
    """Call ``advance`` again after ``interval`` seconds, showing ``display``."""

    interval: float
    display: Display = field(default_factory=Display)
    flow_id: str = ""


@dataclass(frozen=True, slots=True)
class Challenge:
    """The browser must sign ``nonce`` (Web eID) and post the token to ``advance``."""

    nonce: str
    flow_id: str = ""


@dataclass(frozen=True, slots=True)
class Done:
    """The flow completed; ``return_to`` is the checked local path to continue at."""

    identity: Identity
    flow_id: str = ""
    return_to: str = "/"


Step: TypeAlias = Redirect | AutoPost | Poll | Challenge | Done


# --- effect helpers -------------------------------------------------------------------


def fetch(request: HttpRequest) -> Gen[HttpResponse]:
    """Yield an HTTP request and receive its response."""
    response = yield request
    assert isinstance(response, HttpResponse)
    return response


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


# --- runners --------------------------------------------------------------------------


def run_sync(
    gen: Generator[Any, Any, T],
    driver: SyncDriver | None,
    store: StateStore | None,
    *,
    other: Callable[[Any], object] | None = None,
) -> T:
    """Drive a sans-I/O routine to completion with blocking I/O.

    ``other`` carries out effects of a module's own (an SMS back-off wait, a call to
    an application resolver); HTTP requests and store operations are handled here.
    """
    try:
        effect = next(gen)
        while True:
            try:
                if isinstance(effect, HttpRequest):
                    if driver is None:
                        raise RuntimeError("this routine needs an HTTP driver")
                    result: object = driver.send(effect)
                elif isinstance(effect, _STORE_OPS):
                    if store is None:
                        raise RuntimeError("this routine needs a state store")
                    result = apply_sync(store, effect)
                else:
                    if other is None:
                        raise TypeError(f"unknown effect {type(effect).__name__}")
                    result = other(effect)
            except Exception as exc:
                # Every failure goes back into the routine at the point it arose, so
                # its cleanup runs (release a lock, consume a flow, cancel an order)
                # before the error leaves; closing it instead would skip that cleanup.
                effect = gen.throw(exc)
                continue
            effect = gen.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        gen.close()


async def run_async(
    gen: Generator[Any, Any, T],
    driver: AsyncDriver | None,
    store: AsyncStateStore | None,
    *,
    other: Callable[[Any], Awaitable[object]] | None = None,
) -> T:
    """Drive a sans-I/O routine to completion with non-blocking I/O (see :func:`run_sync`)."""
    try:
        effect = next(gen)
        while True:
            try:
                if isinstance(effect, HttpRequest):
                    if driver is None:
                        raise RuntimeError("this routine needs an HTTP driver")
                    result: object = await driver.send(effect)
                elif isinstance(effect, _STORE_OPS):
                    if store is None:
                        raise RuntimeError("this routine needs a state store")
                    result = await apply_async(store, effect)
                else:
                    if other is None:
                        raise TypeError(f"unknown effect {type(effect).__name__}")
                    result = await other(effect)
            except Exception as exc:
                effect = gen.throw(exc)
                continue
            effect = gen.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        gen.close()
