"""A benchmark-owned redis-server on a free loopback port (no persistence)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """Yield the URL of a private redis-server, or of ``AUTHBROKER_BENCH_REDIS_URL``.

    Yields None when neither is available (the Redis figures are then reported as
    not measured).
    """
    url = os.environ.get("AUTHBROKER_BENCH_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="ab-bench-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


class CommandCounter:
    """Counts the commands a redis-py client sends (each is one round trip here:
    authbroker's stores use no pipelines)."""

    def __init__(self, client: object) -> None:
        self.count = 0
        inner = client.execute_command  # type: ignore[attr-defined]

        def counting(*args: object, **kwargs: object) -> object:
            self.count += 1
            return inner(*args, **kwargs)

        client.execute_command = counting  # type: ignore[attr-defined]
