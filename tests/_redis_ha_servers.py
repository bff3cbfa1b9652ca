"""Real Redis Cluster and Redis Sentinel deployments for the store tests.

Both are started from the ``redis-server`` binary on free loopback ports in
temporary directories (no persistence) and stopped at the end of the session by the
fixtures in ``conftest.py``:

* :class:`RedisClusterServers`: 3 primaries and 3 replicas, created with
  ``redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes``;
  ``cluster-node-timeout`` is 1 s so a killed primary is replaced within seconds.
* :class:`RedisSentinelServers`: a primary, a replica and 3 sentinels (quorum 2,
  ``down-after-milliseconds`` 1000).

The timeouts are short so the fault tests stay short; production values are larger
(docs/deployment.md).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SERVICE = "abtest"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A free port below 55535 whose cluster bus port (port + 10000) is free too."""
    for _ in range(1000):
        port = random.randrange(20000, 45000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair")


def _wait_ping(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), 0.2) as conn,
        ):
            conn.sendall(b"PING\r\n")
            if conn.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.02)
    raise RuntimeError(f"redis on port {port} did not start")


class Node:
    """One redis-server (or sentinel) process that can be killed and restarted."""

    def __init__(self, binary: str, root: Path, args: list[str], *, sentinel: bool = False) -> None:
        self.binary = binary
        self.port = free_port()
        self.dir = root / str(self.port)
        self.dir.mkdir()
        self.args = args
        self.sentinel = sentinel
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None
        base = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        if self.sentinel:
            conf = self.dir / "sentinel.conf"
            if not conf.exists():
                conf.write_text("\n".join(self.args) + "\n")
            cmd = [self.binary, str(conf), "--sentinel", *base]
        else:
            cmd = [
                self.binary,
                *base,
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                "redis.log",
                *self.args,
            ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_ping(self.port, time.monotonic() + 10)

    def kill(self) -> None:
        """SIGKILL: the node dies without closing anything, as in a crash."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class _Deployment:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="ab-redis-ha-"))
        self.nodes: list[Node] = []

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class RedisClusterServers(_Deployment):
    def __init__(self, binary: str, cli: str) -> None:
        super().__init__(binary)
        args = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "1000",
        ]  # fmt: skip
        try:
            self.nodes = [Node(binary, self.root, args) for _ in range(6)]
            for node in self.nodes:
                node.start()
            subprocess.run(
                [cli, "--cluster", "create"]
                + [f"127.0.0.1:{n.port}" for n in self.nodes]
                + ["--cluster-replicas", "1", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            self.wait_healthy(30)
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def info(self, node: Node) -> dict[str, str]:
        import redis

        client = redis.Redis(port=node.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            text = client.execute_command("CLUSTER", "INFO")
        finally:
            client.close()
        raw = text.decode() if isinstance(text, bytes) else str(text)
        return dict(line.split(":", 1) for line in raw.split() if ":" in line)

    def replica_synced(self, node: Node) -> bool:
        """A primary, or a replica whose link to its primary is up (a replica that
        never synced cannot take over)."""
        import redis

        client = redis.Redis(port=node.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            info = client.info("replication")
        finally:
            client.close()
        return info["role"] == "master" or info.get("master_link_status") == "up"

    def wait_failed_over(self, key: str, old_port: int, seconds: float) -> None:
        """The shard of ``key`` has a primary other than ``old_port`` and the
        cluster is ok again."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if self.primary_of(key).port != old_port:
                    break
            time.sleep(0.05)
        self.wait_healthy(max(1.0, deadline - time.monotonic()))

    def wait_healthy(self, seconds: float) -> None:
        """Every running node reports ``cluster_state:ok`` with all slots served."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                states = [self.info(n) for n in self.nodes if n.proc is not None]
                if all(
                    s.get("cluster_state") == "ok" and s.get("cluster_slots_ok") == "16384"
                    for s in states
                ) and all(self.replica_synced(n) for n in self.nodes if n.proc is not None):
                    return
            time.sleep(0.1)
        raise RuntimeError("the Redis cluster did not become healthy")

    def primary_of(self, key: str) -> Node:
        import redis

        running = next(n for n in self.nodes if n.proc is not None)
        client = redis.Redis(port=running.port, socket_timeout=1)
        try:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(primary[1])
                    return next(n for n in self.nodes if n.port == port)
        finally:
            client.close()
        raise LookupError(key)


class RedisSentinelServers(_Deployment):
    def __init__(self, binary: str) -> None:
        super().__init__(binary)
        try:
            primary = Node(binary, self.root, [])
            primary.start()
            replica = Node(binary, self.root, ["--replicaof", "127.0.0.1", str(primary.port)])
            replica.start()
            conf = [
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 2",
                f"sentinel down-after-milliseconds {SERVICE} 1000",
                f"sentinel failover-timeout {SERVICE} 5000",
                f"sentinel parallel-syncs {SERVICE} 1",
            ]
            sentinels = [Node(binary, self.root, conf, sentinel=True) for _ in range(3)]
            self.nodes = [primary, replica, *sentinels]
            for node in sentinels:
                node.start()
            self.data_nodes = [primary, replica]
            self.sentinels = sentinels
            self.wait_healthy(30)
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return (
            "redis+sentinel://"
            + ",".join(f"127.0.0.1:{n.port}" for n in self.sentinels)
            + f"/{SERVICE}/0"
        )

    def primary_port(self) -> int:
        import redis

        for node in self.sentinels:
            client = redis.Redis(port=node.port, socket_timeout=1, socket_connect_timeout=1)
            try:
                host_port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
                return int(host_port[1])
            except Exception:
                continue
            finally:
                client.close()
        raise RuntimeError("no sentinel answered")

    def primary(self) -> Node:
        port = self.primary_port()
        return next(n for n in self.data_nodes if n.port == port)

    def wait_healthy(self, seconds: float) -> None:
        """Every sentinel knows the replica and the two other sentinels, the primary
        has its replica attached and in sync."""
        import redis

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ok = True
            for node in self.sentinels:
                client = redis.Redis(port=node.port, socket_timeout=1, socket_connect_timeout=1)
                try:
                    master = client.sentinel_master(SERVICE)
                    replicas = client.sentinel_slaves(SERVICE)
                    ok &= master["num-other-sentinels"] == 2
                    ok &= not master["is_sdown"] and not master["is_odown"]
                    ok &= any(
                        not r["is_sdown"] and r.get("master-link-status") == "ok" for r in replicas
                    )
                except Exception:
                    ok = False
                finally:
                    client.close()
            if ok:
                return
            time.sleep(0.1)
        raise RuntimeError("the Sentinel deployment did not become healthy")
