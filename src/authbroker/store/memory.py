"""In-process store for tests, the CLI and single-process deployments.

One implementation serves both APIs: every operation is a few dictionary steps under
a :class:`threading.Lock` and never waits on I/O, so :class:`AsyncMemoryStore` simply
calls the synchronous store. Holding a thread lock for microseconds inside the event
loop is cheaper than an ``asyncio.Lock`` and also protects against threads sharing the
same instance.

Expiry is lazy (an expired entry is treated as absent and dropped when touched) plus
a sweep: every write pushes ``(expires_at, key)`` on a heap and each operation pops
the entries whose time has passed, so memory is bounded by what is live (and stale
heap entries, which are compacted when they outnumber live ones).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable

from ..errors import StoreUnavailable
from ._common import (
    INT64_MAX,
    INT64_MIN,
    bad_counter,
    check_amount,
    check_key,
    check_ttl,
    check_value,
    parse_counter,
)
from .atomic import check_program, run_program
from .base import Atomic, AtomicResult, Get

__all__ = ["AsyncMemoryStore", "MemoryStore"]

# Below this many heap entries compaction is not worth it.
_COMPACT_MIN = 1024


class MemoryStore:
    """Thread-safe in-memory :class:`~authbroker.store.base.StateStore`.

    ``now`` is a monotonic clock by default: entries do not outlive the process, so
    wall-clock jumps must not expire or revive them. Tests inject a fake clock.
    """

    def __init__(self, *, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._data: dict[str, tuple[bytes, float]] = {}
        self._heap: list[tuple[float, str]] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(entries={len(self._data)})"

    # --- internals (call with the lock held) ----------------------------------------

    def _begin(self) -> float:
        if self._closed:
            raise StoreUnavailable("the memory store is closed", code="store_closed")
        now = self._now()
        heap, data = self._heap, self._data
        while heap and heap[0][0] <= now:
            expires_at, key = heapq.heappop(heap)
            entry = data.get(key)
            # Only drop the entry this heap item was pushed for; a newer write of the
            # same key has its own heap item.
            if entry is not None and entry[1] == expires_at:
                del data[key]
        return now

    def _live(self, key: str, now: float) -> tuple[bytes, float] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._data[key]
            return None
        return entry

    def _set(self, key: str, value: bytes, expires_at: float) -> None:
        self._data[key] = (value, expires_at)
        heapq.heappush(self._heap, (expires_at, key))
        if len(self._heap) > _COMPACT_MIN and len(self._heap) > 2 * len(self._data):
            self._heap = [(exp, k) for k, (_, exp) in self._data.items()]
            heapq.heapify(self._heap)

    # --- StateStore -----------------------------------------------------------------

    def put(self, key: str, value: bytes, ttl: float) -> None:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        with self._lock:
            now = self._begin()
            self._set(key, value, now + ttl)

    def get(self, key: str) -> bytes | None:
        key = check_key(key)
        with self._lock:
            entry = self._live(key, self._begin())
            return None if entry is None else entry[0]

    def take(self, key: str) -> bytes | None:
        key = check_key(key)
        with self._lock:
            entry = self._live(key, self._begin())
            if entry is None:
                return None
            del self._data[key]
            return entry[0]

    def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        with self._lock:
            now = self._begin()
            if self._live(key, now) is not None:
                return False
            self._set(key, value, now + ttl)
            return True

    def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        key, ttl, amount = check_key(key), check_ttl(ttl), check_amount(amount)
        with self._lock:
            now = self._begin()
            entry = self._live(key, now)
            if entry is None:
                current, expires_at = 0, now + ttl
            else:
                current, expires_at = parse_counter(entry[0]), entry[1]
            result = current + amount
            if not INT64_MIN <= result <= INT64_MAX:
                raise bad_counter()
            if entry is None:
                self._set(key, str(result).encode("ascii"), expires_at)
            else:
                # Same expiry: the existing heap item still matches, no new push.
                self._data[key] = (str(result).encode("ascii"), expires_at)
            return result

    def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        key, ttl = check_key(key), check_ttl(ttl)
        expected, value = check_value(expected), check_value(value)
        with self._lock:
            now = self._begin()
            entry = self._live(key, now)
            if entry is None or entry[0] != expected:
                return False
            self._set(key, value, now + ttl)
            return True

    def delete(self, key: str) -> bool:
        key = check_key(key)
        with self._lock:
            if self._live(key, self._begin()) is None:
                return False
            del self._data[key]
            return True

    def atomic(self, program: Atomic) -> AtomicResult:
        """The whole program under the store's lock (no other operation interleaves)."""
        program = check_program(program)
        if all(type(step) is Get for step in program.steps):
            # Reads only (a session check): no overlay, no writes to apply.
            with self._lock:
                now = self._begin()
                values = tuple(
                    None if (e := self._live(step.key, now)) is None else e[0]
                    for step in program.steps
                )
            return AtomicResult(True, None, values)
        with self._lock:
            now = self._begin()

            def read(key: str) -> bytes | None:
                entry = self._live(key, now)
                return None if entry is None else entry[0]

            result, writes = run_program(program, read)
            for w in writes:
                if w.value is None:
                    self._data.pop(w.key, None)
                elif w.ttl is None:
                    # Same expiry as the live entry: its heap item still matches.
                    self._data[w.key] = (w.value, self._data[w.key][1])
                else:
                    self._set(w.key, w.value, now + w.ttl)
            return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._data.clear()
            self._heap.clear()

    # --- introspection for tests ----------------------------------------------------

    def __len__(self) -> int:
        """Entries held, including expired ones not yet swept."""
        return len(self._data)


class AsyncMemoryStore:
    """:class:`~authbroker.store.base.AsyncStateStore` over a :class:`MemoryStore`.

    Pass ``store`` to share one instance between sync and async code.
    """

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.monotonic,
        store: MemoryStore | None = None,
    ) -> None:
        self.sync = store if store is not None else MemoryStore(now=now)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.sync!r})"

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self.sync.put(key, value, ttl)

    async def get(self, key: str) -> bytes | None:
        return self.sync.get(key)

    async def take(self, key: str) -> bytes | None:
        return self.sync.take(key)

    async def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        return self.sync.put_if_absent(key, value, ttl)

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        return self.sync.incr(key, ttl, amount)

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        return self.sync.replace(key, expected, value, ttl)

    async def delete(self, key: str) -> bool:
        return self.sync.delete(key)

    async def atomic(self, program: Atomic) -> AtomicResult:
        return self.sync.atomic(program)

    async def aclose(self) -> None:
        self.sync.close()
