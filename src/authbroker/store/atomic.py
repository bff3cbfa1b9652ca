"""Multi-step atomic operations run by the store itself, in one round trip.

Protocol code that must read, count and write several keys as one unit (an OTP
verify reserves per-challenge, per-link and per-user attempts; a session check reads
the session and its revocation refs; a lockout reserves a slot) would otherwise pay
one network round trip per primitive and rely on refunds to stay exact. An
:class:`~authbroker.store.base.Atomic` value is a short *declarative* program of
the primitive steps of :mod:`authbroker.store.base` plus two guards
(:class:`~authbroker.store.base.Reserve`, :class:`~authbroker.store.base.Require`);
every backend runs the whole program without interleaving:

* Redis (single server, Sentinel, Cluster): one Lua script (``EVALSHA``); on a
  Cluster every key of one program must hash to one slot (give them one
  ``{hash tag}``), which is checked before anything is sent;
* SQLite: one ``BEGIN IMMEDIATE`` transaction; PostgreSQL: one transaction holding
  transaction-scoped advisory locks on the program's keys;
* memory: the store's lock.

Semantics (identical on every backend, proved by tests/store/test_store_contract.py):
steps run in order and each sees the writes of the steps before it. A guard that
fails (:class:`Reserve` over its limit, :class:`Require` not met) stops the program
and **nothing** it wrote is kept: the result has ``ok=False``, ``failed`` is the
index of that guard and ``values`` holds the results up to and including it. The
one exception is a ``Require(..., keep=True)`` guard: when it stops the program,
the writes of the steps before it are applied (so a wrong one-time code is counted
by the same program that refuses it, and a right one takes the success branch). An
invalid argument or a bad counter raises before any write. Otherwise all writes are
applied together and ``values`` holds one result per step, as the primitive
would have returned it.

Counters in a program are limited to +-2**53 (Lua numbers are doubles), well beyond
any limit the library counts.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from ..errors import InvalidInput
from ._common import bad_counter, check_amount, check_key, check_ttl, check_value, parse_counter
from .base import (
    Atomic,
    AtomicResult,
    Delete,
    Get,
    Incr,
    Put,
    PutIfAbsent,
    Replace,
    Require,
    Reserve,
    Step,
    Take,
)

__all__ = [
    "MAX_PROGRAM_STEPS",
    "PROGRAM_INT_MAX",
    "Write",
    "atomic",
    "check_program",
    "run_program",
]

#: Longest program accepted: these run while every other client of the key waits.
MAX_PROGRAM_STEPS = 32
#: Largest counter magnitude inside a program (exact in a Lua double).
PROGRAM_INT_MAX = 2**53


@dataclass(frozen=True, slots=True)
class Write:
    """One pending write: ``value`` None deletes; ``ttl`` None keeps the expiry the
    key had when the program started (a counter step on a live key)."""

    key: str
    value: bytes | None = field(repr=False)
    ttl: float | None


def check_program(program: object) -> Atomic:
    """Validate every step before anything runs (same errors as the primitives)."""
    if not isinstance(program, Atomic) or not isinstance(program.steps, tuple):
        raise InvalidInput("not an atomic store program", code="bad_program")
    if not 1 <= len(program.steps) <= MAX_PROGRAM_STEPS:
        raise InvalidInput(
            f"an atomic program has 1..{MAX_PROGRAM_STEPS} steps", code="bad_program"
        )
    for step in program.steps:
        check_key(getattr(step, "key", None))
        # Guards first: they are most of a program's steps (an OTP verify: 7 of 14).
        match step:
            case Require(_, present, equals, keep):
                if not isinstance(keep, bool):
                    raise InvalidInput("Require: keep is a bool", code="bad_program")
                if not isinstance(present, bool) or (equals is not None and not present):
                    raise InvalidInput("Require: equals needs present=True", code="bad_program")
                if equals is not None:
                    check_value(equals)
            case Get() | Take() | Delete():
                pass
            case Put(_, value, ttl) | PutIfAbsent(_, value, ttl):
                check_value(value)
                check_ttl(ttl)
            case Incr(_, ttl, amount):
                check_ttl(ttl)
                _check_program_int(check_amount(amount))
            case Reserve(_, ttl, limit, amount):
                check_ttl(ttl)
                _check_program_int(check_amount(amount))
                _check_program_int(check_amount(limit))
            case Replace(_, expected, value, ttl):
                check_value(expected)
                check_value(value)
                check_ttl(ttl)
            case _:
                raise InvalidInput("not an atomic program step", code="bad_program")
    return program


def _check_program_int(number: int) -> int:
    if not -PROGRAM_INT_MAX <= number <= PROGRAM_INT_MAX:
        raise bad_counter()
    return number


_ABSENT = object()


def run_program(
    program: Atomic, read: Callable[[str], bytes | None]
) -> tuple[AtomicResult, list[Write]]:
    """Evaluate ``program`` over ``read`` (the live value of a key at the start, as
    the caller's transaction sees it) and return the result plus the writes to apply
    (empty when a guard failed). Used by every backend except Redis, whose Lua
    script mirrors this function step for step."""
    overlay: dict[str, bytes | None] = {}
    pending: dict[str, Write] = {}
    values: list[object] = []

    def live(key: str) -> bytes | None:
        found = overlay.get(key, _ABSENT)
        if found is _ABSENT:
            found = read(key)
            overlay[key] = found
        return found  # type: ignore[return-value]

    def write(key: str, value: bytes | None, ttl: float | None) -> None:
        if ttl is None and key in pending:
            ttl = pending[key].ttl  # a counter step keeps the expiry set earlier
        overlay[key] = value
        pending[key] = Write(key, value, ttl)

    def counter(key: str, ttl: float, amount: int) -> int:
        current = live(key)
        result = amount if current is None else parse_counter(current) + amount
        _check_program_int(result)
        write(key, str(result).encode("ascii"), ttl if current is None else None)
        return result

    def peek(key: str) -> int:
        current = live(key)
        return 0 if current is None else parse_counter(current)

    for index, step in enumerate(program.steps):
        match step:
            case Get(key):
                values.append(live(key))
            case Take(key):
                values.append(live(key))
                if values[-1] is not None:
                    write(key, None, None)
            case Delete(key):
                values.append(live(key) is not None)
                if values[-1]:
                    write(key, None, None)
            case Put(key, value, ttl):
                write(key, value, ttl)
                values.append(None)
            case PutIfAbsent(key, value, ttl):
                stored = live(key) is None
                if stored:
                    write(key, value, ttl)
                values.append(stored)
            case Incr(key, ttl, amount):
                values.append(counter(key, ttl, amount))
            case Replace(key, expected, value, ttl):
                matched = live(key) == expected
                if matched:
                    write(key, value, ttl)
                values.append(matched)
            case Reserve(key, ttl, limit, amount):
                # Reserving nothing only bounds what is stored (a time, say): no write.
                reserved = counter(key, ttl, amount) if amount else peek(key)
                values.append(reserved)
                if reserved > limit:
                    return AtomicResult(False, index, tuple(values)), []
            case Require(key, present, equals, keep):
                current = live(key)
                values.append(current)
                # Byte equality, not compare_digest: the Lua script can only do ``==``,
                # and callers compare keyed MACs, whose timing tells an attacker nothing.
                held = (current is not None) == present and (equals is None or current == equals)
                if not held:
                    kept = list(pending.values()) if keep else []
                    return AtomicResult(False, index, tuple(values)), kept
    return AtomicResult(True, None, tuple(values)), list(pending.values())


def atomic(*steps: Step) -> Generator[Atomic, object, AtomicResult]:
    """Yield one :class:`~authbroker.store.base.Atomic` effect from sans-I/O code
    (``result = yield from atomic(Get(a), Reserve(b, ...))``)."""
    result = yield Atomic(steps)
    if not isinstance(result, AtomicResult):  # pragma: no cover - runner contract
        raise TypeError("the runner did not answer an atomic program")
    return result
