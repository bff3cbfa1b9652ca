"""Argument checks and counter rules shared by every backend.

All backends validate the same way before touching storage, so a bad call fails
with the same :class:`~authbroker.errors.InvalidInput` everywhere and leaves no
state behind. Messages never echo the key or value: keys are often derived from
secrets (code hashes, nonces).
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import InvalidInput

T = TypeVar("T")

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_TTL",
    "bad_counter",
    "check_amount",
    "check_key",
    "check_ttl",
    "check_value",
    "parse_counter",
    "retry_idempotent",
    "retry_idempotent_async",
]

#: Longest TTL accepted (ten years). Nothing is kept forever, and every backend can
#: represent this in milliseconds without overflow.
MAX_TTL = 10 * 366 * 24 * 3600.0

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Counters are stored as canonical ASCII decimal, the way Redis stores them, so a
# counter reads back the same (``b"3"``) from every backend.
_COUNTER_RE = re.compile(rb"-?(?:0|[1-9][0-9]{0,18})")


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInput("store key must be a non-empty string", code="bad_key")
    return key


def check_value(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise InvalidInput("store value must be bytes", code="bad_value")
    return value


def check_ttl(ttl: object) -> float:
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, int | float)
        or not math.isfinite(ttl)
        or not 0 < ttl <= MAX_TTL
    ):
        raise InvalidInput(
            f"store TTL must be a positive number of seconds up to {MAX_TTL:.0f}",
            code="bad_ttl",
        )
    return float(ttl)


def check_amount(amount: object) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput("increment must be an integer", code="bad_amount")
    if not INT64_MIN <= amount <= INT64_MAX:
        raise InvalidInput("increment must fit in 64 bits", code="bad_amount")
    return amount


def bad_counter() -> InvalidInput:
    return InvalidInput(
        "stored value is not a 64-bit decimal counter or the increment overflows",
        code="bad_counter",
    )


def parse_counter(value: bytes) -> int:
    """The integer in a stored counter, with the same rules as Redis INCRBY."""
    if _COUNTER_RE.fullmatch(value) is None or value == b"-0":
        raise bad_counter()
    number = int(value)
    if not INT64_MIN <= number <= INT64_MAX:
        raise bad_counter()
    return number


#: Attempts of an idempotent command (a read, a plain overwrite, a delete): one retry.
IDEMPOTENT_ATTEMPTS = 2


def _pause(attempt: int) -> float:
    """Equal-jitter backoff capped at 0.1 s: a short wait, spread so that processes
    retrying after the same outage do not all arrive together."""
    step: float = min(0.1, 0.01 * 2**attempt)
    return step / 2 + random.uniform(0, step / 2)  # noqa: S311 - jitter, not a secret


def retry_idempotent(call: Callable[[], T], retry_on: tuple[type[BaseException], ...]) -> T:
    """Run an *idempotent* command once more after a connection error.

    A connection lost after a command was sent leaves it unknown whether the server
    applied it. Repeating a GET, a SET of the same value and TTL, or a DEL gives the
    same end state either way; repeating a take, a counter step, a compare-and-set or
    a set-if-absent would not (a lost reply would count twice or report a consumed
    value as absent). Every backend therefore calls this helper for ``get``, ``put``
    and ``delete`` only, and never retries anything else.
    """
    for attempt in range(1, IDEMPOTENT_ATTEMPTS + 1):
        try:
            return call()
        except retry_on:
            if attempt == IDEMPOTENT_ATTEMPTS:
                raise
            time.sleep(_pause(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


async def retry_idempotent_async(
    call: Callable[[], Awaitable[T]], retry_on: tuple[type[BaseException], ...]
) -> T:
    """:func:`retry_idempotent` for asyncio clients."""
    import asyncio

    for attempt in range(1, IDEMPOTENT_ATTEMPTS + 1):
        try:
            return await call()
        except retry_on:
            if attempt == IDEMPOTENT_ATTEMPTS:
                raise
            await asyncio.sleep(_pause(attempt))
    raise AssertionError("unreachable")  # pragma: no cover
