"""Redis Cluster and Redis Sentinel stores: the Redis primitives on highly available Redis.

The commands are those of :mod:`authbroker.store.redis` (one implementation): every
primitive is a single-key command or a single-key Lua script, so on a cluster each
one runs on the one node that owns the key's hash slot and stays atomic there; keys
spread over all shards (a ``{tag}`` in the prefix would pin every key to one shard).
The one operation over several keys, an atomic program (:mod:`authbroker.store.atomic`),
is one script (one ``MGET`` when it only reads) on one node: its keys must share a
hash slot, which the caller gets by
giving them one ``{tag}`` (say, the user's); it is checked before anything is sent.

*Cluster* uses redis-py's own ``RedisCluster`` clients, which learn the slot map and
follow ``MOVED`` and ``ASK`` redirections. Following a redirection is always safe:
the node that answered ``MOVED``/``ASK`` did not run the command. Their own retry
after a connection error is switched off (``Retry(NoBackoff(), 0)``: the client
refreshes its slot map and raises), so the store's rule holds here too: only GET,
plain SET and DEL are sent again, once.

*Sentinel* uses ``redis.sentinel.Sentinel``: every new connection asks the sentinels
for the current primary; after a failover the connections to the old primary fail
(or are told ``READONLY`` by the demoted server) and are dropped, and the next
command reaches the new primary.

Replication in Redis is asynchronous: a write acknowledged by a primary that dies
before its replica received it is lost by the failover. For a consumed one-time
value that window is what ``docs/deployment.md`` measures and discusses.

URLs (parsed by :func:`parse_ha_url`)::

    redis+cluster://[user:password@]host:port[,host:port...][/][?prefix=ab:]
    redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db][?prefix=ab:]

``rediss+cluster://`` and ``rediss+sentinel://`` use TLS with certificate and host
name verification (to the sentinels as well); ``ssl_ca_certs=/path/ca.pem`` names a
private CA. No other query parameter is accepted. The user name and password
authenticate to the data nodes, not to the sentinels.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.cluster
import redis.retry
import redis.sentinel
from redis.backoff import NoBackoff

from ..errors import ConfigError
from .redis import (
    DEFAULT_PREFIX,
    _AsyncRedisCommands,
    _check_timeout,
    _RedisCommands,
    _translate,
)

__all__ = [
    "AsyncRedisClusterStore",
    "AsyncRedisSentinelStore",
    "HaTarget",
    "RedisClusterStore",
    "RedisSentinelStore",
    "parse_ha_url",
]

CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})
SENTINEL_SCHEMES = frozenset({"redis+sentinel", "rediss+sentinel"})
_HOST_PORT = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-_]+)):(?P<port>\d{1,5})"
)
_SERVICE = re.compile(r"[A-Za-z0-9._\-]{1,64}")


@dataclass(frozen=True)
class HaTarget:
    """A parsed ``redis+cluster://`` or ``redis+sentinel://`` URL."""

    kind: str  # "cluster" or "sentinel"
    nodes: tuple[tuple[str, int], ...]
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    service: str | None = None
    db: int = 0
    prefix: str = DEFAULT_PREFIX
    ssl_ca_certs: str | None = None


def _bad(message: str) -> ConfigError:
    # Never echo the URL: it may carry a password.
    return ConfigError(message, key="store")


def parse_ha_url(url: str) -> HaTarget:
    """Split a cluster or Sentinel store URL; every part is checked (allow-list)."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme not in CLUSTER_SCHEMES | SENTINEL_SCHEMES:
        raise _bad("not a Redis Cluster or Sentinel URL")
    if "#" in rest:
        raise _bad("store URLs take no fragment")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, sep, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep else None
    nodes: list[tuple[str, int]] = []
    for item in netloc.split(","):
        match = _HOST_PORT.fullmatch(item)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise _bad("each node must be host:port (IPv6 in brackets)")
        nodes.append((match["v6"] or match["host"], int(match["port"])))
    params = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    names = [name for name, _ in params]
    if len(set(names)) != len(names) or not set(names) <= {"prefix", "ssl_ca_certs"}:
        raise _bad("the only query parameters are prefix and ssl_ca_certs, each once")
    values = dict(params)
    tls = scheme.startswith("rediss")
    if "ssl_ca_certs" in values and not tls:
        raise _bad("ssl_ca_certs needs a rediss+... URL")
    service, db = None, 0
    segments = [unquote(part) for part in path.split("/")] if path else []
    if scheme in CLUSTER_SCHEMES:
        if any(segments):
            raise _bad("a Redis Cluster URL has no path (a cluster has only database 0)")
        kind = "cluster"
    else:
        kind = "sentinel"
        if not 1 <= len(segments) <= 2 or _SERVICE.fullmatch(segments[0]) is None:
            raise _bad("expected redis+sentinel://host:port,.../service_name[/db]")
        service = segments[0]
        if len(segments) == 2:
            if not segments[1].isdigit() or int(segments[1]) > 15:
                raise _bad("the Sentinel database must be a number from 0 to 15")
            db = int(segments[1])
    prefix = values.get("prefix", DEFAULT_PREFIX)
    return HaTarget(
        kind=kind,
        nodes=tuple(nodes),
        tls=tls,
        username=username,
        password=password,
        service=service,
        db=db,
        prefix=prefix,
        ssl_ca_certs=values.get("ssl_ca_certs"),
    )


def _connection_kwargs(
    target: HaTarget, socket_timeout: float, socket_connect_timeout: float
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_timeout": _check_timeout(socket_timeout, "socket_timeout"),
        "socket_connect_timeout": _check_timeout(socket_connect_timeout, "socket_connect_timeout"),
        "decode_responses": False,
        "username": target.username,
        "password": target.password,
    }
    if target.tls:
        kwargs.update(ssl=True, ssl_cert_reqs="required", ssl_check_hostname=True)
        if target.ssl_ca_certs is not None:
            kwargs["ssl_ca_certs"] = target.ssl_ca_certs
    return kwargs


def _check_max(max_connections: int) -> int:
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise ConfigError("must be an integer", key="store.max_connections")
    if max_connections < 1:
        raise ConfigError("must be at least 1", key="store.max_connections")
    return max_connections


def _sentinel_kwargs(target: HaTarget, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Options for the connections to the sentinels: same timeouts and TLS, no data
    node credentials (a sentinel has its own ``requirepass``)."""
    keep = {k: v for k, v in kwargs.items() if k.startswith(("socket_", "ssl"))}
    return {**keep, "retry": redis.retry.Retry(NoBackoff(), 0)}


def _client_options(
    url_or_target: str | HaTarget,
    kind: str,
    socket_timeout: float,
    socket_connect_timeout: float,
    max_connections: int,
) -> tuple[HaTarget, dict[str, Any]]:
    """The parsed URL and the options every client of ``kind``, sync or async, is
    built with (timeouts, credentials, TLS, pool size): one place for the four stores."""
    target = url_or_target if isinstance(url_or_target, HaTarget) else parse_ha_url(url_or_target)
    if target.kind != kind:
        raise _bad(f"expected a redis+{kind}:// URL")
    options = _connection_kwargs(target, socket_timeout, socket_connect_timeout)
    options["max_connections"] = _check_max(max_connections)
    return target, options


class RedisClusterStore(_RedisCommands):
    """:class:`~authbroker.store.base.StateStore` on Redis Cluster
    (``redis.cluster.RedisCluster``); keys are ``prefix + key``, spread over all
    shards by their hash slot."""

    def __init__(
        self,
        url: str | HaTarget,
        *,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> None:
        target, kwargs = _client_options(
            url, "cluster", socket_timeout, socket_connect_timeout, max_connections
        )
        # The blocking client reads the slot map here, so an unreachable cluster
        # fails at start-up with StoreUnavailable.
        with _translate():
            client = redis.cluster.RedisCluster(
                startup_nodes=[
                    redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
                    for h, p in target.nodes
                ],
                retry=redis.retry.Retry(NoBackoff(), 0),
                **kwargs,
            )
        self._bind(
            client, target.prefix, gate=kwargs["max_connections"], gate_timeout=socket_timeout
        )

    def close(self) -> None:
        with _translate():
            self.client.close()


class AsyncRedisClusterStore(_AsyncRedisCommands):
    """:class:`~authbroker.store.base.AsyncStateStore` on Redis Cluster
    (``redis.asyncio.cluster.RedisCluster``); connects on first use."""

    def __init__(
        self,
        url: str | HaTarget,
        *,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> None:
        target, kwargs = _client_options(
            url, "cluster", socket_timeout, socket_connect_timeout, max_connections
        )
        client = redis.asyncio.cluster.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in target.nodes],
            retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
            **kwargs,
        )
        self._bind(
            client, target.prefix, gate=kwargs["max_connections"], gate_timeout=socket_timeout
        )
        self._initialized = False
        self._init_lock: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def _admit(self) -> AsyncIterator[None]:
        # The asyncio client reads the slot map on its first command; many first
        # commands at once would each start that and close each other's
        # connections, so the first one runs it alone.
        if not self._initialized:
            if self._init_lock is None:
                self._init_lock = asyncio.Lock()
            async with self._init_lock:
                if not self._initialized:
                    with _translate():
                        await self.client.initialize()
                    self._initialized = True
        async with super()._admit():
            yield

    async def aclose(self) -> None:
        with _translate():
            await self.client.aclose()


class RedisSentinelStore(_RedisCommands):
    """:class:`~authbroker.store.base.StateStore` on the primary that Redis Sentinel
    names for the service (``redis.sentinel.Sentinel``)."""

    def __init__(
        self,
        url: str | HaTarget,
        *,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> None:
        target, kwargs = _client_options(
            url, "sentinel", socket_timeout, socket_connect_timeout, max_connections
        )
        self.sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes), sentinel_kwargs=_sentinel_kwargs(target, kwargs)
        )
        assert target.service is not None  # parse_ha_url sets it for Sentinel URLs
        client = self.sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service,
            db=target.db,
            retry=redis.retry.Retry(NoBackoff(), 0),
            retry_on_error=[],
            **kwargs,
        )
        self._bind(
            client, target.prefix, gate=kwargs["max_connections"], gate_timeout=socket_timeout
        )

    def close(self) -> None:
        with _translate():
            self.client.close()
            for sentinel in self.sentinel.sentinels:
                sentinel.close()


class AsyncRedisSentinelStore(_AsyncRedisCommands):
    """:class:`~authbroker.store.base.AsyncStateStore` on the Sentinel-named primary
    (``redis.asyncio.sentinel.Sentinel``); connects on first use."""

    def __init__(
        self,
        url: str | HaTarget,
        *,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> None:
        target, kwargs = _client_options(
            url, "sentinel", socket_timeout, socket_connect_timeout, max_connections
        )
        sentinel_kwargs = _sentinel_kwargs(target, kwargs)
        sentinel_kwargs["retry"] = redis.asyncio.retry.Retry(NoBackoff(), 0)
        self.sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes), sentinel_kwargs=sentinel_kwargs
        )
        assert target.service is not None  # parse_ha_url sets it for Sentinel URLs
        client = self.sentinel.master_for(
            target.service,
            db=target.db,
            retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
            retry_on_error=[],
            **kwargs,
        )
        self._bind(
            client, target.prefix, gate=kwargs["max_connections"], gate_timeout=socket_timeout
        )

    async def aclose(self) -> None:
        with _translate():
            await self.client.aclose()
            for sentinel in self.sentinel.sentinels:
                await sentinel.aclose()
