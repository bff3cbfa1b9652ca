"""Redis Cluster and Sentinel stores: URLs, the retry rule, and faults on real servers.

The contract itself runs in test_store_contract.py (backends ``redis-cluster`` and
``redis-sentinel``). Here: URL parsing is strict and never echoes a password; the
clients never resend a non-idempotent command; a single-server client against the
cluster fails with ``MOVED`` (the bug this store fixes) while the cluster store
follows redirections; a primary killed (cluster) or failed over (Sentinel) in the
middle of single-use traffic gives typed ``StoreUnavailable`` while it happens,
never the same value twice, and recovers by itself. The measured outage windows
are printed (``-s``) and reported in docs/deployment.md.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

from authbroker.errors import ConfigError, StoreUnavailable
from authbroker.store import open_async_store, open_store
from authbroker.store.redis_ha import (
    AsyncRedisClusterStore,
    AsyncRedisSentinelStore,
    RedisClusterStore,
    RedisSentinelStore,
    parse_ha_url,
)
from outage_support import Traffic

# --- URLs (no server needed) ------------------------------------------------------------


def test_cluster_url_parts() -> None:
    t = parse_ha_url("rediss+cluster://app:s%40cret@10.0.0.1:7000,[::1]:7001/?prefix=x:")
    assert t.kind == "cluster" and t.tls
    assert t.nodes == (("10.0.0.1", 7000), ("::1", 7001))
    assert (t.username, t.password, t.prefix) == ("app", "s@cret", "x:")
    assert "s@cret" not in repr(t)


def test_sentinel_url_parts() -> None:
    t = parse_ha_url("redis+sentinel://h1:26379,h2:26379/mymaster/3")
    assert (t.kind, t.service, t.db, t.tls, t.prefix) == ("sentinel", "mymaster", 3, False, "ab:")
    assert parse_ha_url("redis+sentinel://h1:26379/mymaster").db == 0
    tls = parse_ha_url("rediss+sentinel://h1:26379/m?ssl_ca_certs=/etc/ca.pem")
    assert tls.tls and tls.ssl_ca_certs == "/etc/ca.pem"


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://u:hunter2@h1/",  # no port
        "redis+cluster://u:hunter2@h1:7000/1",  # a cluster has only db 0
        "redis+cluster://u:hunter2@h1:70000",
        "redis+cluster://u:hunter2@h1:7000?prefix=a&prefix=b",
        "redis+cluster://u:hunter2@h1:7000?socket_timeout=0",  # not on the allow-list
        "redis+cluster://u:hunter2@h1:7000?ssl_ca_certs=/ca.pem",  # TLS option without TLS
        "redis+cluster://u:hunter2@h1:7000#frag",
        "redis+sentinel://u:hunter2@h1:26379",  # no service
        "redis+sentinel://u:hunter2@h1:26379/svc/16",
        "redis+sentinel://u:hunter2@h1:26379/svc/x",
        "redis+sentinel://u:hunter2@h1:26379/svc/0/extra",
        "redis+sentinel://u:hunter2@h1:26379/sv%20c",
    ],
)
def test_bad_ha_urls_are_config_errors_without_the_password(url: str) -> None:
    for opener in (open_store, open_async_store):
        with pytest.raises(ConfigError) as info:
            opener(url)
        assert info.value.key == "store"
        assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value)


def test_tls_urls_verify_certificates() -> None:
    store = AsyncRedisSentinelStore("rediss+sentinel://127.0.0.1:1/svc?ssl_ca_certs=/ca.pem")
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == "required" and kwargs["ssl_check_hostname"] is True
    assert kwargs["ssl_ca_certs"] == "/ca.pem"
    # The sentinels are reached over TLS as well, and without the data-node password.
    assert store.sentinel.sentinel_kwargs["ssl"] is True
    assert "password" not in store.sentinel.sentinel_kwargs


def test_clients_never_resend_commands_themselves() -> None:
    """redis-py's own retries are off on every client; only the store retries, and
    only GET, SET and DEL (see test_store_redis retry cases for the single server)."""
    cluster = AsyncRedisClusterStore("redis+cluster://127.0.0.1:1")
    assert cluster.client.retry.get_retries() == 0
    sentinel = RedisSentinelStore("redis+sentinel://127.0.0.1:1/svc")
    assert sentinel.client.connection_pool.connection_kwargs["retry"].get_retries() == 0
    sentinel.close()


def test_unreachable_cluster_is_unavailable_fast() -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        RedisClusterStore("redis+cluster://127.0.0.1:1", socket_connect_timeout=0.5)
    assert time.monotonic() - started < 2


def test_unreachable_sentinels_are_unavailable_fast() -> None:
    store = RedisSentinelStore("redis+sentinel://127.0.0.1:1/svc", socket_connect_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.take("k")
    assert time.monotonic() - started < 2
    store.close()


# --- real cluster -------------------------------------------------------------------------


def _prefix() -> str:
    return f"abtest:{secrets.token_hex(6)}:"


@pytest.mark.redis
def test_single_server_client_fails_on_a_cluster_and_cluster_store_does_not(
    redis_cluster: Any,
) -> None:
    """The reported bug: a plain redis:// client on a cluster node gets MOVED for
    most keys. The cluster store spreads keys over all three shards and serves them."""
    import redis

    prefix = _prefix()
    node = redis_cluster.nodes[0]
    plain = redis.Redis(port=node.port)
    moved = 0
    for i in range(20):
        try:
            plain.set(f"{prefix}k{i}", b"v")
        except redis.exceptions.ResponseError:
            moved += 1
    plain.close()
    assert moved > 0
    store = open_store(f"{redis_cluster.url}?prefix={prefix}")
    assert isinstance(store, RedisClusterStore)
    try:
        owners = set()
        for i in range(20):
            store.put(f"k{i}", b"v", 60)
            owners.add(redis_cluster.primary_of(f"{prefix}k{i}").port)
        assert len(owners) == 3  # no hash tag: keys are spread over every shard
        assert all(store.take(f"k{i}") == b"v" for i in range(20))
    finally:
        store.close()


def _run_fault(store: Any, fault: Callable[[], None], heal: Callable[[], None]) -> dict[str, Any]:
    traffic = Traffic(store)
    traffic.start()
    time.sleep(0.5)
    fault_at = time.monotonic()
    fault()
    heal()  # returns when the deployment is healthy again
    healed_at = time.monotonic()
    time.sleep(0.5)
    traffic.stop()
    errors = traffic.failed
    return {
        "seen": traffic.taken,
        "errors": errors,
        "window": traffic.failure_window(),
        "first_error_after": (errors[0] - fault_at) if errors else None,
        "heal": healed_at - fault_at,
    }


@pytest.mark.redis
def test_cluster_primary_killed_mid_traffic(redis_cluster: Any) -> None:
    prefix = _prefix()
    store = RedisClusterStore(
        f"{redis_cluster.url}?prefix={prefix}", socket_timeout=0.5, socket_connect_timeout=0.5
    )
    victim = redis_cluster.primary_of(f"{prefix}w0:1")
    try:
        key = f"{prefix}w0:1"
        result = _run_fault(
            store, victim.kill, lambda: redis_cluster.wait_failed_over(key, victim.port, 30)
        )
        # Typed outage while the shard had no primary; every value taken at most once.
        assert result["errors"], "killing a primary must be visible as StoreUnavailable"
        assert len(result["seen"]) == len(set(result["seen"]))
        # Recovered by itself: a fresh write and take on the failed-over shard work.
        store.put("w0:1", b"after", 60)
        assert store.take("w0:1") == b"after"
        print(
            f"\ncluster failover: writes failed {result['window']:.2f}s, ok {result['heal']:.2f}s"
        )
    finally:
        store.close()
        victim.start()  # rejoins as a replica of the promoted node
        redis_cluster.wait_healthy(30)


@pytest.mark.redis
def test_sentinel_primary_killed_mid_traffic(redis_sentinel: Any) -> None:
    prefix = _prefix()
    store = RedisSentinelStore(
        f"{redis_sentinel.url}?prefix={prefix}", socket_timeout=0.5, socket_connect_timeout=0.5
    )
    victim = redis_sentinel.primary()
    old_port = victim.port

    def healed() -> None:
        deadline = time.monotonic() + 30
        while redis_sentinel.primary_port() == old_port and time.monotonic() < deadline:
            time.sleep(0.05)
        assert redis_sentinel.primary_port() != old_port, "no failover happened"

    try:
        result = _run_fault(store, victim.kill, healed)
        assert result["errors"]
        assert len(result["seen"]) == len(set(result["seen"]))
        store.put("after", b"v", 60)
        assert store.take("after") == b"v"
        print(
            f"\nsentinel failover: writes failed {result['window']:.2f}s, ok {result['heal']:.2f}s"
        )
    finally:
        store.close()
        victim.start()  # sentinels reconfigure it as a replica of the new primary
        redis_sentinel.wait_healthy(30)


@pytest.mark.redis
async def test_async_sentinel_survives_manual_failover(redis_sentinel: Any) -> None:
    """SENTINEL FAILOVER (a planned switch): the async store follows the new primary;
    a value taken before the switch is not handed out again after it."""
    import redis

    store = open_async_store(f"{redis_sentinel.url}?prefix={_prefix()}")
    assert isinstance(store, AsyncRedisSentinelStore)
    try:
        await store.put("once", b"v", 60)
        await store.put("kept", b"k", 60)
        assert await store.take("once") == b"v"
        old = redis_sentinel.primary_port()
        admin = redis.Redis(port=redis_sentinel.sentinels[0].port)
        admin.execute_command("SENTINEL", "FAILOVER", "abtest")
        admin.close()
        deadline = time.monotonic() + 30
        outages = 0
        while time.monotonic() < deadline:
            try:
                if redis_sentinel.primary_port() != old and await store.get("kept") == b"k":
                    break
            except StoreUnavailable:
                outages += 1
            time.sleep(0.05)
        assert redis_sentinel.primary_port() != old
        assert await store.take("once") is None
        assert await store.take("kept") == b"k"
    finally:
        await store.aclose()
        redis_sentinel.wait_healthy(30)
