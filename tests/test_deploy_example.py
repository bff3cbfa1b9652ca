"""The deployment example (docs/deploy/): compose.yaml's app command and environment
run here against the local Redis and PostgreSQL instead of their containers (no
container runtime in the tests), with several uvicorn workers."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "docs" / "deploy"

pytest_plugins = ["conftest_pg"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _compose_app() -> dict[str, Any]:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert set(compose["services"]) == {"app", "redis", "postgres"}
    app: dict[str, Any] = compose["services"]["app"]
    return app


def _interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's ``${NAME:?message}`` with the test's values (all must be given)."""
    return re.sub(r"\$\{(\w+)(?::\?[^}]*)?\}", lambda m: given[m.group(1)], value)


def test_the_dockerfile_runs_what_compose_runs() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd is not None and yaml.safe_load(cmd.group(1)) == _compose_app()["command"]
    assert "USER app" in dockerfile


def test_compose_app_serves_with_local_redis_and_postgres(
    redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    app = _compose_app()
    command: list[str] = list(app["command"])
    assert command[0] == "uvicorn" and int(command[command.index("--workers") + 1]) > 1
    port = _free_port()
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    given = {
        "POSTGRES_PASSWORD": "unused-locally",
        "AUTHBROKER_SECRET_KEYS": secrets.token_urlsafe(48),
        "TARA_CLIENT_SECRET": secrets.token_urlsafe(16),
    }
    env = {k: _interpolate(str(v), given) for k, v in app["environment"].items()}
    # The containers' addresses → the local services; /app → the repository.
    assert env["AUTHBROKER_STORE_URL"].startswith("redis://redis:6379/")
    env["AUTHBROKER_STORE_URL"] = redis_url
    assert env["AUTHBROKER_CREDENTIALS_URL"].startswith("postgresql+psycopg://")
    env["AUTHBROKER_CREDENTIALS_URL"] = postgres_url
    assert env["AUTHBROKER_CONFIG"] == "/app/authbroker.toml"
    env["AUTHBROKER_CONFIG"] = str(DEPLOY / "authbroker.toml")
    src = str(ROOT / "src")
    full_env = {**os.environ, **env, "PYTHONPATH": src}
    uvicorn = [sys.executable, "-m", "uvicorn", *command[1:]]
    log = (tmp_path / "app.log").open("w+b")
    proc = subprocess.Popen(uvicorn, cwd=ROOT, env=full_env, stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                home = httpx.get(base + "/", timeout=5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail("the app did not start:\n" + log.read().decode()[-3000:])
                time.sleep(0.3)
        assert home.status_code == 200 and home.text.startswith("hello stranger")
        # Several requests spread over the workers: every one answers the sign-in page.
        for _ in range(6):
            chooser = httpx.get(base + "/auth/", timeout=5)
            assert chooser.status_code == 200
            assert 'data-provider="tara"' in chooser.text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    assert proc.returncode == 0
