"""Redis store: shared by every process and host of a deployment.

Each primitive is one atomic Redis command (or one Lua script, which Redis runs
without interleaving): ``take`` is GETDEL (Redis >= 6.2), ``put_if_absent`` is
``SET NX PX``, ``incr`` is a script doing INCRBY and, only when it created the key,
PEXPIRE, and ``replace`` (compare-and-set) is a script doing GET, a byte-exact
comparison and SET PX. Every script touches the one key it is given (cluster-safe).
TTLs are sent in milliseconds, rounded up.

Failures are fast and typed: connect and read timeouts default to 2 s, and the
connection pool blocks for at most the socket timeout when all connections are
busy. Anything that goes wrong talking to Redis becomes
:class:`~authbroker.errors.StoreUnavailable`.

Retries: a connection error after a command was sent leaves it unknown whether
Redis applied it. Only idempotent commands are retried (once): ``get`` (GET),
``put`` (SET of the same value and TTL), ``delete`` (DEL) and a read-only atomic
program (MGET). ``incr`` (the counter
script), ``take`` (GETDEL) and ``put_if_absent`` (SET NX) are never retried: a lost
reply would otherwise count twice, refund twice, or report a consumed value or a
won lock as absent. redis-py's own per-connection retry is switched off, so this is
the only retry (a stale pooled connection is already replaced by the pool before
use).

This module imports ``redis``; install the ``authbroker[redis]`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.exceptions
import redis.retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from ..errors import ConfigError, InvalidInput, StoreUnavailable
from ._common import (
    bad_counter,
    check_amount,
    check_key,
    check_ttl,
    check_value,
    retry_idempotent,
    retry_idempotent_async,
)
from .atomic import check_program, run_program
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
    Take,
)

__all__ = ["AsyncRedisStore", "RedisStore"]

DEFAULT_PREFIX = "ab:"
T = TypeVar("T")

# INCRBY keeps an existing key's TTL, so the window is fixed at creation. Checking
# existence (rather than "result == amount") is right even when an existing counter
# was at 0 or the amount is 0. The result is read back with GET because an integer
# reply becomes a Lua number (a double) and would lose precision above 2**53.
_INCR_LUA = """
local created = redis.call('EXISTS', KEYS[1]) == 0
redis.call('INCRBY', KEYS[1], ARGV[1])
if created then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('GET', KEYS[1])
"""

# Compare-and-set on one key. GET of a missing key is false in Lua, which equals no
# string, so a taken, deleted or expired value never matches. Lua strings are
# binary-safe, so the comparison is byte for byte.
_REPLACE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


# An atomic program (store/atomic.py, mirrored step for step from run_program): every
# step reads through an overlay of the program's own writes; a failed guard returns
# before anything is written (a keep=True guard first writes what the steps before it
# wrote); the writes go out together at the end (KEEPTTL keeps a live counter's
# expiry, Redis >= 6.0). KEYS holds each distinct key once (every key is declared,
# so the script is routed to, and stays on, the keys' Cluster slot). The arguments
# travel as ONE string: per step an opcode letter and the 1-based index of its key
# in KEYS as one character (byte 48 + index), "|", then the arguments the steps
# need, each as "<length>:<bytes>"; the reply is ONE string, "<ok> <failed index,
# 0-based, -1 if none> " followed by a value per step run, "-" for none or
# "<length>:<bytes>": redis-py encodes, packs and parses every argument and reply
# element in Python, which cost more than the round trip (benchmarks/bench_links.py).
# Counters stay within +-2**53, where Lua numbers are exact.
_ATOMIC_LUA = """
local ov, written, order, out = {}, {}, {}, {}
local LIM = 9007199254740992
local blob = ARGV[1]
local bar = string.find(blob, '|', 1, true)
local ops, pos = string.sub(blob, 1, bar - 1), bar + 1
local function arg()
  local colon = string.find(blob, ':', pos, true)
  local stop = colon + tonumber(string.sub(blob, pos, colon - 1))
  pos = stop + 1
  return string.sub(blob, colon + 1, stop)
end
local function reply(ok, failed, upto)
  local parts = {ok .. ' ' .. failed .. ' '}
  for j = 1, upto do
    local v = out[j]
    if v == false or v == nil then parts[j + 1] = '-'
    else v = tostring(v); parts[j + 1] = string.len(v) .. ':' .. v end
  end
  return table.concat(parts)
end
local function live(k)
  local v = ov[k]
  if v == nil then v = redis.call('GET', k); ov[k] = v end
  return v
end
local function write(k, v, px)
  if px == false and written[k] then px = written[k][2] end
  if not written[k] then order[#order + 1] = k end
  ov[k] = v
  written[k] = {v, px}
end
local function flush()
  for _, k in ipairs(order) do
    local w = written[k]
    if w[1] == false then redis.call('DEL', k)
    elseif w[2] == false then redis.call('SET', k, w[1], 'KEEPTTL')
    else redis.call('SET', k, w[1], 'PX', w[2]) end
  end
end
local function counter(k, amount, px, peek)
  local cur = live(k)
  local c = amount
  if cur ~= false then
    if (cur ~= '0' and not string.match(cur, '^%-?[1-9]%d*$')) or string.len(cur) > 17 then
      return nil
    end
    c = tonumber(cur) + amount
  end
  if c > LIM or c < -LIM then return nil end
  if amount == 0 and peek then return c end
  if cur == false then write(k, string.format('%d', c), px)
  else write(k, string.format('%d', c), false) end
  return c
end
local steps = string.len(ops) / 2
for i = 1, steps do
  local k, op = KEYS[string.byte(ops, 2 * i) - 48], string.sub(ops, 2 * i - 1, 2 * i - 1)
  if op == 'g' then out[i] = live(k)
  elseif op == 't' or op == 'd' then
    local v = live(k)
    if v ~= false then write(k, false, false) end
    if op == 't' then out[i] = v elseif v ~= false then out[i] = 1 else out[i] = 0 end
  elseif op == 'p' then
    local v = arg(); write(k, v, arg()); out[i] = false
  elseif op == 'n' then
    local v, px = arg(), arg()
    if live(k) == false then write(k, v, px); out[i] = 1 else out[i] = 0 end
  elseif op == 'r' then
    local e, v, px = arg(), arg(), arg()
    if live(k) == e then write(k, v, px); out[i] = 1 else out[i] = 0 end
  elseif op == 'i' or op == 'v' then
    local amount, px = tonumber(arg()), arg()
    local limit = nil
    if op == 'v' then limit = tonumber(arg()) end
    local c = counter(k, amount, px, op == 'v')
    if c == nil then return redis.error_reply('ERR value is not an integer or out of range') end
    out[i] = string.format('%d', c)
    if limit ~= nil and c > limit then return reply(0, i - 1, i) end
  else
    -- 'P' present, 'A' absent, 'Q' present and equal to the next argument; 'X',
    -- 'Y', 'K' the same guards keeping the earlier writes when they fail (keep=True).
    local v = live(k)
    out[i] = v
    local held
    if op == 'A' or op == 'Y' then held = v == false
    elseif op == 'P' or op == 'X' then held = v ~= false
    else held = v == arg() end
    if not held then
      if op == 'X' or op == 'Y' or op == 'K' then flush() end
      return reply(0, i - 1, i)
    end
  end
end
flush()
return reply(1, -1, steps)
"""


def _program_args(program: Atomic, prefix: str) -> tuple[list[str], list[bytes]]:
    """KEYS and the one packed argument of :data:`_ATOMIC_LUA`; every key of one
    program must hash to one slot (checked on every Redis store, so a program that
    works on one server also works on a Cluster)."""
    keys: list[str] = []
    where: dict[str, str] = {}
    ops: list[str] = []
    args: list[bytes] = []
    for step in program.steps:
        key = prefix + step.key
        if key not in where:
            keys.append(key)
            where[key] = chr(48 + len(keys))  # MAX_PROGRAM_STEPS keys at most: ASCII
        match step:
            case Require(_, present, equals, keep):
                if equals is not None:
                    ops.append("K" if keep else "Q")
                    args.append(equals)
                else:
                    ops.append(("X" if present else "Y") if keep else ("P" if present else "A"))
            case Get() | Take() | Delete():
                ops.append(_OPCODES[type(step)])
            case Put(_, value, ttl) | PutIfAbsent(_, value, ttl):
                ops.append(_OPCODES[type(step)])
                args += [value, b"%d" % _ms(ttl)]
            case Incr(_, ttl, amount):
                ops.append("i")
                args += [b"%d" % amount, b"%d" % _ms(ttl)]
            case Reserve(_, ttl, limit, amount):
                ops.append("v")
                args += [b"%d" % amount, b"%d" % _ms(ttl), b"%d" % limit]
            case Replace(_, expected, value, ttl):
                ops.append("r")
                args += [expected, value, b"%d" % _ms(ttl)]
        ops.append(where[key])
    _check_one_slot(keys)
    packed = b"".join(b"%d:%s" % (len(arg), arg) for arg in args)
    return keys, ["".join(ops).encode("ascii") + b"|" + packed]


def _check_one_slot(keys: list[str]) -> None:
    """Refuse a program whose keys do not all hash to one Cluster slot. Keys carrying
    the same non-empty ``{hash tag}`` (the first ``{`` and the first ``}`` after it,
    as Redis reads it) share a slot without computing it; anything else is hashed."""
    tags = set()
    for key in keys:
        start = key.find("{")
        end = key.find("}", start + 1) if start >= 0 else -1
        tags.add(key[start + 1 : end] if end > start + 1 else None)
    if len(tags) == 1 and None not in tags:
        return
    if len({key_slot(k.encode()) for k in keys}) > 1:
        raise InvalidInput(
            "the keys of one atomic program must share a hash slot ({tag})",
            code="cross_slot",
        )


_OPCODES: dict[type, str] = {Get: "g", Take: "t", Delete: "d", Put: "p", PutIfAbsent: "n"}


def _read_only_keys(program: Atomic, prefix: str) -> list[str] | None:
    """The prefixed keys of a program that only reads (``Get`` and ``Require``
    steps, e.g. a session check), else None. Such a program is one ``MGET``: Redis
    runs every command on its own, so the values are one snapshot, and with no
    writes the guards can be decided on that snapshot client-side exactly as the
    script would (:func:`~authbroker.store.atomic.run_program`). Cheaper than
    ``EVALSHA`` on the server and in redis-py, and, being read-only, retried like
    ``GET``. One slot per program, as for the script (checked the same way)."""
    keys = []
    for step in program.steps:
        if type(step) is not Get and type(step) is not Require:
            return None
        keys.append(prefix + step.key)
    _check_one_slot(keys)
    return keys


def _snapshot_result(program: Atomic, reply: Any) -> AtomicResult:
    values = [_as_bytes(v) for v in reply]
    if len(values) != len(program.steps):
        raise StoreUnavailable("Redis answered with an unexpected type", code="store_unavailable")
    if all(type(step) is Get for step in program.steps):
        return AtomicResult(True, None, tuple(values))
    snapshot = {step.key: value for step, value in zip(program.steps, values, strict=True)}
    result, _ = run_program(program, snapshot.__getitem__)
    return result


def _program_result(program: Atomic, reply: Any) -> AtomicResult:
    """Parse the one-string reply of :data:`_ATOMIC_LUA`."""
    raw = _as_bytes(reply) or b""
    ok, failed, rest = raw.split(b" ", 2)
    values: list[object] = []
    pos, end = 0, len(rest)
    for step in program.steps:
        if pos >= end:
            break
        value: bytes | None = None
        if rest[pos] == 45:  # "-": none
            pos += 1
        else:
            colon = rest.index(b":", pos)
            stop = colon + 1 + int(rest[pos:colon])
            value, pos = rest[colon + 1 : stop], stop
        match step:
            case Get() | Take() | Require():
                values.append(value)
            case Incr() | Reserve():
                values.append(int(value or b"0"))
            case Put():
                values.append(None)
            case _:
                values.append(value == b"1")
    return AtomicResult(ok == b"1", None if failed == b"-1" else int(failed), tuple(values))


def _ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


@contextlib.contextmanager
def _translate(*, counter: bool = False) -> Iterator[None]:
    """Turn redis-py errors into authbroker errors (messages carry no keys or values)."""
    try:
        yield
    except redis.exceptions.ResponseError as exc:
        text = str(exc).lower()
        if counter and ("not an integer" in text or "overflow" in text or "wrongtype" in text):
            raise bad_counter() from exc
        raise StoreUnavailable(
            "Redis rejected a store command",
            code="store_unavailable",
            details={"error": type(exc).__name__},
        ) from exc
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
        # RedisClusterException (no reachable node, slot map disagreement) is not a
        # RedisError in redis-py, but it is an outage all the same.
        raise StoreUnavailable(
            "Redis could not be reached in time",
            code="store_unavailable",
            details={"error": type(exc).__name__},
        ) from exc


def _busy() -> StoreUnavailable:
    return StoreUnavailable(
        "no Redis connection became free in time",
        code="store_unavailable",
        details={"error": "PoolExhausted"},
    )


def _check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str):
        raise ConfigError("the Redis key prefix must be a string", key="store.prefix")
    return prefix


def _check_timeout(value: float, name: str) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError("must be a positive number of seconds", key=f"store.{name}")
    return float(value)


def _as_bytes(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    raise StoreUnavailable("Redis answered with an unexpected type", code="store_unavailable")


def _pool_kwargs(
    socket_timeout: float, socket_connect_timeout: float, max_connections: int
) -> dict[str, Any]:
    socket_timeout = _check_timeout(socket_timeout, "socket_timeout")
    socket_connect_timeout = _check_timeout(socket_connect_timeout, "socket_connect_timeout")
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise ConfigError("must be an integer", key="store.max_connections")
    if max_connections < 1:
        raise ConfigError("must be at least 1", key="store.max_connections")
    return {
        "max_connections": max_connections,
        # How long to wait for a free pooled connection.
        "timeout": socket_timeout,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        "decode_responses": False,
    }


def _no_retry() -> dict[str, Any]:
    """Pool options that switch off redis-py's retry of every command (including
    INCR, scripts, GETDEL and SET NX); idempotent ones are retried by the store."""
    return {"retry": redis.retry.Retry(NoBackoff(), 0), "retry_on_error": []}


#: Errors after which an idempotent command is sent once more. A cluster client
#: follows MOVED and ASK redirections itself (the command did not run on the node
#: that redirected it), so they never reach this level.
RETRY_ON: tuple[type[BaseException], ...] = (redis.exceptions.ConnectionError,)


def _retrying(call: Callable[[], T]) -> T:
    return retry_idempotent(call, RETRY_ON)


async def _aretrying(call: Callable[[], Awaitable[T]]) -> T:
    return await retry_idempotent_async(call, RETRY_ON)


class _RedisCommands:
    """The seven primitives on any blocking redis-py client (single server, Sentinel
    primary or Cluster): each is one single-key command or single-key script, so it
    is atomic on one server and routable by key on a cluster."""

    prefix: str
    client: Any
    _gate: threading.BoundedSemaphore | None = None
    _gate_timeout = 0.0

    def _bind(
        self, client: Any, prefix: str, *, gate: int | None = None, gate_timeout: float = 0.0
    ) -> None:
        """``gate``: admit at most this many commands at once, waiting up to
        ``gate_timeout`` for a turn. Cluster and Sentinel pools refuse a connection
        beyond their limit at once instead of waiting like the single-server
        ``BlockingConnectionPool``; the gate gives them the same queueing."""
        self.prefix = _check_prefix(prefix)
        self.client = client
        self._incr = client.register_script(_INCR_LUA)
        self._replace = client.register_script(_REPLACE_LUA)
        self._atomic = client.register_script(_ATOMIC_LUA)
        if gate is not None:
            self._gate, self._gate_timeout = threading.BoundedSemaphore(gate), gate_timeout

    @contextlib.contextmanager
    def _admit(self) -> Iterator[None]:
        if self._gate is None:
            yield
            return
        if not self._gate.acquire(timeout=self._gate_timeout):
            raise _busy()
        try:
            yield
        finally:
            self._gate.release()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"

    def put(self, key: str, value: bytes, ttl: float) -> None:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        with self._admit(), _translate():
            _retrying(lambda: self.client.set(self.prefix + key, value, px=_ms(ttl)))

    def get(self, key: str) -> bytes | None:
        key = check_key(key)
        with self._admit(), _translate():
            return _as_bytes(_retrying(lambda: self.client.get(self.prefix + key)))

    def take(self, key: str) -> bytes | None:
        key = check_key(key)
        with self._admit(), _translate():
            return _as_bytes(self.client.getdel(self.prefix + key))

    def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        with self._admit(), _translate():
            return bool(self.client.set(self.prefix + key, value, px=_ms(ttl), nx=True))

    def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        key, ttl, amount = check_key(key), check_ttl(ttl), check_amount(amount)
        with self._admit(), _translate(counter=True):
            return int(self._incr(keys=[self.prefix + key], args=[amount, _ms(ttl)]))

    def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        key, ttl = check_key(key), check_ttl(ttl)
        expected, value = check_value(expected), check_value(value)
        with self._admit(), _translate():
            args: list[bytes | int] = [expected, value, _ms(ttl)]
            return int(self._replace(keys=[self.prefix + key], args=args)) == 1

    def delete(self, key: str) -> bool:
        key = check_key(key)
        with self._admit(), _translate():
            return bool(_retrying(lambda: self.client.delete(self.prefix + key)))

    def atomic(self, program: Atomic) -> AtomicResult:
        """One ``MGET`` for a read-only program, retried like ``GET``
        (:func:`_read_only_keys`); otherwise one ``EVALSHA`` of the program script,
        never retried (it writes)."""
        program = check_program(program)
        read = _read_only_keys(program, self.prefix)
        if read is not None:
            with self._admit(), _translate():
                return _snapshot_result(program, _retrying(lambda: self.client.mget(read)))
        keys, args = _program_args(program, self.prefix)
        with self._admit(), _translate(counter=True):
            return _program_result(program, self._atomic(keys=keys, args=args))


class _AsyncRedisCommands:
    """:class:`_RedisCommands` for the asyncio clients of redis-py."""

    prefix: str
    client: Any
    _gate: asyncio.Semaphore | None = None
    _gate_timeout = 0.0

    def _bind(
        self, client: Any, prefix: str, *, gate: int | None = None, gate_timeout: float = 0.0
    ) -> None:
        """See :meth:`_RedisCommands._bind`."""
        self.prefix = _check_prefix(prefix)
        self.client = client
        self._incr = client.register_script(_INCR_LUA)
        self._replace = client.register_script(_REPLACE_LUA)
        self._atomic = client.register_script(_ATOMIC_LUA)
        if gate is not None:
            self._gate, self._gate_timeout = asyncio.Semaphore(gate), gate_timeout

    @contextlib.asynccontextmanager
    async def _admit(self) -> AsyncIterator[None]:
        if self._gate is None:
            yield
            return
        try:
            await asyncio.wait_for(self._gate.acquire(), self._gate_timeout)
        except TimeoutError:
            raise _busy() from None
        try:
            yield
        finally:
            self._gate.release()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        async with self._admit():
            with _translate():
                await _aretrying(lambda: self.client.set(self.prefix + key, value, px=_ms(ttl)))

    async def get(self, key: str) -> bytes | None:
        key = check_key(key)
        async with self._admit():
            with _translate():
                return _as_bytes(await _aretrying(lambda: self.client.get(self.prefix + key)))

    async def take(self, key: str) -> bytes | None:
        key = check_key(key)
        async with self._admit():
            with _translate():
                return _as_bytes(await self.client.getdel(self.prefix + key))

    async def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        key, value, ttl = check_key(key), check_value(value), check_ttl(ttl)
        async with self._admit():
            with _translate():
                return bool(await self.client.set(self.prefix + key, value, px=_ms(ttl), nx=True))

    async def incr(self, key: str, ttl: float, amount: int = 1) -> int:
        key, ttl, amount = check_key(key), check_ttl(ttl), check_amount(amount)
        async with self._admit():
            with _translate(counter=True):
                return int(await self._incr(keys=[self.prefix + key], args=[amount, _ms(ttl)]))

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        key, ttl = check_key(key), check_ttl(ttl)
        expected, value = check_value(expected), check_value(value)
        async with self._admit():
            with _translate():
                args: list[bytes | int] = [expected, value, _ms(ttl)]
                return int(await self._replace(keys=[self.prefix + key], args=args)) == 1

    async def delete(self, key: str) -> bool:
        key = check_key(key)
        async with self._admit():
            with _translate():
                return bool(await _aretrying(lambda: self.client.delete(self.prefix + key)))

    async def atomic(self, program: Atomic) -> AtomicResult:
        """See :meth:`_RedisCommands.atomic`."""
        program = check_program(program)
        read = _read_only_keys(program, self.prefix)
        if read is not None:
            async with self._admit():
                with _translate():
                    reply = await _aretrying(lambda: self.client.mget(read))
                    return _snapshot_result(program, reply)
        keys, args = _program_args(program, self.prefix)
        async with self._admit():
            with _translate(counter=True):
                return _program_result(program, await self._atomic(keys=keys, args=args))


class RedisStore(_RedisCommands):
    """:class:`~authbroker.store.base.StateStore` on Redis (``redis.Redis``).

    Connects lazily to a ``redis://``, ``rediss://`` or ``unix://`` URL; every key
    is stored as ``prefix + key``.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> None:
        kwargs = _pool_kwargs(socket_timeout, socket_connect_timeout, max_connections)
        try:
            self._pool = redis.BlockingConnectionPool.from_url(url, **_no_retry(), **kwargs)
        except (ValueError, TypeError) as exc:
            raise ConfigError("not a usable Redis URL", key="store") from exc
        self._bind(redis.Redis(connection_pool=self._pool), prefix)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> RedisStore:
        return cls(
            url,
            prefix=prefix,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            max_connections=max_connections,
        )

    def close(self) -> None:
        with _translate():
            self._pool.disconnect()


class AsyncRedisStore(_AsyncRedisCommands):
    """:class:`~authbroker.store.base.AsyncStateStore` on Redis (``redis.asyncio``).

    Same URL, options and key layout as :class:`RedisStore`. Connections belong to
    the event loop that first uses them; create one store per loop.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> None:
        kwargs = _pool_kwargs(socket_timeout, socket_connect_timeout, max_connections)
        try:
            # Any: the pool's generic parameters differ between redis-py's own
            # annotations and the types-redis stubs.
            self._pool: Any = redis.asyncio.BlockingConnectionPool.from_url(
                url,
                retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
                retry_on_error=[],
                **kwargs,
            )
        except (ValueError, TypeError) as exc:
            raise ConfigError("not a usable Redis URL", key="store") from exc
        self._bind(redis.asyncio.Redis(connection_pool=self._pool), prefix)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> AsyncRedisStore:
        return cls(
            url,
            prefix=prefix,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            max_connections=max_connections,
        )

    async def aclose(self) -> None:
        with _translate():
            await self._pool.disconnect()
