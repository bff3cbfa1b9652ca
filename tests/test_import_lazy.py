"""``import authbroker.web`` stays cheap: jinja2 and sqlite3 load only where used."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["authbroker", "authbroker.web"])
def test_import_loads_neither_jinja2_nor_sqlite3(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('jinja2', 'sqlite3', '_sqlite3') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_lazy_names_still_resolve() -> None:
    code = (
        "from authbroker.web import route, AuthMiddleware, PUBLIC\n"
        "from authbroker.store import SqliteStore, AsyncSqliteStore, open_store\n"
        "import sys; assert 'jinja2' in sys.modules and 'sqlite3' in sys.modules\n"
        "print(type(open_store('sqlite://')).__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "SqliteStore"
