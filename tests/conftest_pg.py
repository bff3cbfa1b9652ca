"""PostgreSQL fixtures for the credential-store tests (imported by test modules).

``postgres_url`` is the SQLAlchemy URL of the test server
(``AUTHBROKER_TEST_POSTGRES_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). It skips when the server is
unreachable, except under ``CI=true``, where it fails: in CI the PostgreSQL tests
must run. ``pg_schema`` creates a fresh schema per test and drops it afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from conftest import probe_service, require_service

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _libpq_url(url: str) -> str:
    """``postgresql+psycopg://`` → ``postgresql://`` for psycopg itself."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgresql") else url


def _select_1(url: str) -> None:
    import psycopg

    with psycopg.connect(_libpq_url(url), connect_timeout=3) as conn:
        conn.execute("SELECT 1")


@pytest.fixture(scope="session")
def postgres_probe() -> tuple[str, str | None]:
    # No exception text: a libpq error may echo the URL and its password.
    return probe_service(
        "PostgreSQL",
        "AUTHBROKER_TEST_POSTGRES_URL",
        DEFAULT_POSTGRES_URL,
        _select_1,
        detail=False,
    )


@pytest.fixture
def postgres_url(postgres_probe: tuple[str, str | None]) -> str:
    """URL of the test PostgreSQL; skips (fails under CI=true) when unreachable."""
    return require_service(postgres_probe)


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A schema of its own for one test, dropped with everything in it afterwards."""
    import psycopg

    schema = f"abtest_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq_url(postgres_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(_libpq_url(postgres_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --- shared by the mobile credential and token tests ----------------------------------


class Clock:
    """Injected wall clock; tests travel in time instead of sleeping."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cred_store(
    request: pytest.FixtureRequest, tmp_path: os.PathLike[str], clock: Clock
) -> Iterator[object]:
    """A migrated :class:`CredentialStore` on SQLite (file) and on PostgreSQL."""
    from authbroker.credential_store import CredentialStore

    if request.param == "sqlite":
        store = CredentialStore(f"sqlite:///{tmp_path}/credentials.db", now=clock)
    else:
        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("pg_schema")
        store = CredentialStore(url, schema=schema, now=clock)
    yield store
    store.close()
