"""The StateStore contract: small atomic primitives every backend implements.

Everything that must be single-use or counted exactly (flow state, OAuth state and
nonce, OTP challenges, TUPAS stamps, Web eID challenges, refresh tokens, rate-limit
counters) is built from these primitives. Each primitive is atomic on its own in
every backend, so protocol code never needs a transaction:

* ``take`` is get-and-delete in one step: of N concurrent callers exactly one gets
  the value. That is how single use is enforced.
* ``put_if_absent`` is set-if-not-exists: the first writer wins (locks, replay caches).
* ``incr`` adds to a counter and returns the new value; the TTL is set when the
  counter is created and not extended by later increments (a fixed window).
* ``replace`` is compare-and-set: it writes only while the live value still equals
  the one the caller read, so a writer holding a stale copy cannot overwrite a newer
  state, nor bring back a value that was taken, deleted or expired meanwhile.
* ``atomic`` runs a short program of these steps plus guards as one unit, in one
  round trip (:mod:`authbroker.store.atomic`): an OTP verify, a session check or a
  lockout reservation that reads and counts several keys costs one command.

Protocol code is sans-I/O: instead of calling a store it *yields* the operation
values below (:class:`Get`, :class:`Take`...) and the runner in
:mod:`authbroker.flow` applies them to a sync or async store. Application-level
code may also call stores directly.

Keys are plain strings; backends may add their own namespace prefix. Values are
bytes. TTLs are seconds (float); a TTL must be positive: nothing is kept forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "AsyncStateStore",
    "Atomic",
    "AtomicResult",
    "Delete",
    "Get",
    "Incr",
    "Put",
    "PutIfAbsent",
    "Replace",
    "Require",
    "Reserve",
    "StateStore",
    "Step",
    "StoreOp",
    "Take",
    "apply_async",
    "apply_sync",
]


@runtime_checkable
class StateStore(Protocol):
    """Blocking store used by WSGI apps, the CLI and tests."""

    def put(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds, replacing any old value."""

    def get(self, key: str) -> bytes | None:
        """The live value, or None when absent or expired."""

    def take(self, key: str) -> bytes | None:
        """Atomically return and delete the value (None if absent or expired)."""

    def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only if no live value exists; True when this call stored it."""

    def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        """Add ``amount`` to an integer counter and return the new value.

        A counter that does not exist (or expired) starts at 0 with a TTL of
        ``ttl``; later increments keep the original expiry.
        """

    def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        """Compare-and-set: store ``value`` for ``ttl`` seconds only if the live value
        equals ``expected`` (byte for byte); True when this call stored it.

        An absent or expired key never matches, so nothing taken or deleted can be
        written back by a caller that read it earlier.
        """

    def delete(self, key: str) -> bool:
        """Remove the key; True when a live value was removed."""

    def atomic(self, program: Atomic) -> AtomicResult:
        """Run a multi-step program atomically, in one round trip
        (:mod:`authbroker.store.atomic`)."""

    def close(self) -> None:
        """Release connections."""


@runtime_checkable
class AsyncStateStore(Protocol):
    """Non-blocking store used by ASGI apps; same semantics as :class:`StateStore`."""

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def take(self, key: str) -> bytes | None: ...

    async def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool: ...

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int: ...

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool: ...

    async def delete(self, key: str) -> bool: ...

    async def atomic(self, program: Atomic) -> AtomicResult: ...

    async def aclose(self) -> None: ...


# --- operations as values (for sans-I/O protocol code) -------------------------------


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: bytes = field(repr=False)
    ttl: float


@dataclass(frozen=True, slots=True)
class Get:
    key: str


@dataclass(frozen=True, slots=True)
class Take:
    key: str


@dataclass(frozen=True, slots=True)
class PutIfAbsent:
    key: str
    value: bytes = field(repr=False)
    ttl: float


@dataclass(frozen=True, slots=True)
class Incr:
    key: str
    ttl: float
    amount: int = 1


@dataclass(frozen=True, slots=True)
class Replace:
    key: str
    expected: bytes = field(repr=False)
    value: bytes = field(repr=False)
    ttl: float


@dataclass(frozen=True, slots=True)
class Delete:
    key: str


@dataclass(frozen=True, slots=True)
class Reserve:
    """Program step: add ``amount`` to a counter (like :class:`Incr`) and stop the
    program when the new value exceeds ``limit``: a reservation taken whole or not
    at all, so no refund is ever needed. ``amount=0`` reserves nothing and writes
    nothing: it only bounds a stored integer (a time in ms stays ``<= limit``)."""

    key: str
    ttl: float
    limit: int
    amount: int = 1


@dataclass(frozen=True, slots=True)
class Require:
    """Program step: stop the program unless ``key`` is live (``present=True``; with
    ``equals`` also byte-equal to it) or absent (``present=False``). Its value is
    the live value read. ``keep=True``: when it stops the program, the writes of the
    steps before it are applied (an OTP check counts the attempt it refuses)."""

    key: str
    present: bool = True
    equals: bytes | None = field(default=None, repr=False)
    keep: bool = False


Step = Get | Take | Put | PutIfAbsent | Incr | Replace | Delete | Reserve | Require


@dataclass(frozen=True, slots=True)
class Atomic:
    """A program of steps the store runs as one atomic unit, in one round trip;
    semantics in :mod:`authbroker.store.atomic`."""

    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class AtomicResult:
    """``ok``: every guard held and the writes were applied. ``failed``: index of
    the guard that stopped the program (nothing was written). ``values``: one
    result per step run, as the primitive would have returned it."""

    ok: bool
    failed: int | None
    values: tuple[object, ...] = field(repr=False)


StoreOp = Put | Get | Take | PutIfAbsent | Incr | Replace | Delete | Atomic


def apply_sync(store: StateStore, op: StoreOp) -> object:
    """Run one operation value against a blocking store and return its result."""
    match op:
        case Atomic():  # first: the session check on every request is one
            return store.atomic(op)
        case Put(key, value, ttl):
            store.put(key, value, ttl)
            return None
        case Get(key):
            return store.get(key)
        case Take(key):
            return store.take(key)
        case PutIfAbsent(key, value, ttl):
            return store.put_if_absent(key, value, ttl)
        case Incr(key, ttl, amount):
            return store.incr(key, ttl, amount)
        case Replace(key, expected, value, ttl):
            return store.replace(key, expected, value, ttl)
        case Delete(key):
            return store.delete(key)
    raise TypeError(f"not a store operation: {type(op).__name__}")  # pragma: no cover


async def apply_async(store: AsyncStateStore, op: StoreOp) -> object:
    """Run one operation value against a non-blocking store and return its result."""
    match op:
        case Atomic():  # first: the session check on every request is one
            return await store.atomic(op)
        case Put(key, value, ttl):
            await store.put(key, value, ttl)
            return None
        case Get(key):
            return await store.get(key)
        case Take(key):
            return await store.take(key)
        case PutIfAbsent(key, value, ttl):
            return await store.put_if_absent(key, value, ttl)
        case Incr(key, ttl, amount):
            return await store.incr(key, ttl, amount)
        case Replace(key, expected, value, ttl):
            return await store.replace(key, expected, value, ttl)
        case Delete(key):
            return await store.delete(key)
    raise TypeError(f"not a store operation: {type(op).__name__}")  # pragma: no cover
