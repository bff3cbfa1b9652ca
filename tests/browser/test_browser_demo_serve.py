"""``authbroker demo`` as a newcomer runs it: a real process, a real socket.

A port that is already taken must end the command at once with the documented exit
code (``EXIT_ADDRESS_IN_USE``, docs/cli.md) and a message naming the port, and the
demo must never print a URL before its socket is bound. A free port prints the URL
after the bind, and that URL answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from authbroker.web.demo import EXIT_ADDRESS_IN_USE, EXIT_USAGE

SRC = str(Path(__file__).resolve().parents[2] / "src")
CLI = "import sys; from authbroker.cli import main; sys.exit(main(sys.argv[1:]))"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_demo_on_a_taken_port_exits_with_code_and_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", CLI, "demo", "--port", str(port)],
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
            env=_env(),
        )
        elapsed = time.monotonic() - started
    assert proc.returncode == EXIT_ADDRESS_IN_USE == 3, proc.stderr
    assert f"127.0.0.1:{port}" in proc.stderr and "--port" in proc.stderr
    assert "http://" not in proc.stdout  # no URL for a server that never listened
    assert elapsed < 30


def test_demo_prints_its_url_after_the_bind_and_serves_it() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://localhost:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "demo", "--port", str(port), "--base-url", base],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"{base}/" in line, line
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(base + "/", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert r.status_code == 200 and "Demo accounting" in r.text
        # Another host name than the base URL's is refused with both names shown.
        wrong = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert wrong.status_code == 421
        assert f"localhost:{port}" in wrong.text and f"127.0.0.1:{port}" in wrong.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize(
    "base_url",
    ["http://devbox.example:8000", "ftp://localhost:8000", "http://localhost:8000/app"],
)
def test_demo_refuses_an_unusable_base_url_before_binding(base_url: str) -> None:
    with socket.socket() as taken:  # a taken port: the base URL is checked first
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-c", CLI, "demo", "--port", str(port), "--base-url", base_url],
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
            env=_env(),
        )
    assert proc.returncode == EXIT_USAGE == 2, proc.stderr
    assert base_url in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
