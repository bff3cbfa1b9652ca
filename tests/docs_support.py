"""Helpers the documentation samples use in their invisible set-up blocks.

A sample in the docs shows what an application writes; what the application's
*environment* does (a browser following a redirect, a person approving at the
provider) is played here, against the simulators, so the sample runs unchanged.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from click.testing import CliRunner

from authbroker.cli import cli
from authbroker.testing import SimulatedBroker


def browser_for(broker: SimulatedBroker, provider: str) -> Callable[[str], dict[str, str]]:
    """A browser that follows the authorization URL of ``provider``'s simulator, where
    a test person approves at once, and returns the callback's query parameters."""
    sim = broker.simulator(provider)
    assert sim is not None, "the sample's provider must run on its simulator"
    sim.extra["control"].auto_approve = True

    def follow(url: str) -> dict[str, str]:
        response = httpx.get(url, timeout=10)
        assert response.status_code == 302, response.text
        return dict(parse_qsl(urlsplit(response.headers["location"]).query))

    return follow


def run_cli(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Run ``authbroker ARGS`` in ``tmp_path``; absolute paths of the docs' examples
    (``/run/secrets/...``) are mapped into it."""
    monkeypatch.chdir(tmp_path)
    mapped = [a.replace("/run/secrets/", f"{tmp_path}/") for a in args]
    result = CliRunner().invoke(cli, mapped, catch_exceptions=False)
    return result.exit_code, result.output


def django_ready() -> None:
    """The example Django project (docs/examples/django_app) set up once, on a
    throw-away database, so the Django page's samples can import Django code."""
    import os
    import sys
    import tempfile

    import django

    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "django_app"
    if str(example) not in sys.path:
        sys.path.insert(0, str(example))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    os.environ.setdefault("EXAMPLE_DB", str(Path(tempfile.mkdtemp()) / "db.sqlite3"))
    django.setup()


EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def load_example(filename: str, module_name: str) -> ModuleType:
    """A fresh module object of ``docs/examples/<filename>`` (run as the reader would),
    named ``module_name``; not put in ``sys.modules``, so each test gets its own app."""
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / filename)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
