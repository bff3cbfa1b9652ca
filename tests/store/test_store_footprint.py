"""What an active flow, a session and a direct link cost in each shared store, and
that docs/deployment.md says so.

For each kind of state the library keeps (an FTN login between begin and callback,
a login session, an issued direct link, a direct link opened with its SMS code sent)
the test creates ``N`` of them, each with its own user, phone number and client IP
as in real traffic, after one warm-up item that creates what all items share (the
daily SMS counter). Then it counts what was added:

* Redis, Redis Cluster, Redis Sentinel: the keys under the store's prefix and
  their ``MEMORY USAGE`` (https://redis.io/docs/latest/commands/memory-usage/),
  the server's own account of the key, its value and its allocation overhead.
* PostgreSQL: the rows of the store's table and the growth of
  ``pg_total_relation_size`` (heap, TOAST and both indexes) with only live rows, after
  ``VACUUM FULL`` rewrote the table
  (https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADMIN-DBSIZE).

The counts per item must equal the table in docs/deployment.md exactly and the bytes
must be within 15 % of it. ``-s`` prints the measured row for each backend.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from authbroker.config import load_config
from authbroker.engines.links import DirectLinks
from authbroker.engines.sessions import SessionManager
from authbroker.identity import Identity, Loa
from authbroker.sms.outbox import OutboxSender
from authbroker.store import StateStore
from authbroker.testing import simulated_broker
from identity_support import bank_identity

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
#: Items of each kind per measurement. Redis reports each key exactly; PostgreSQL
#: grows by 8 kB pages, so it needs enough items for a page more or less to be
#: about 20 bytes per item.
N = {"redis": 40, "postgres": 400}
TOLERANCE = 0.15
KINDS = ("flow", "session", "link issued", "link opened")
#: The first cell of each row of the documented table.
ROWS = {
    "flow": "an FTN (OIDC) login between begin and callback",
    "session": "a login session",
    "link issued": "a direct link, issued",
    "link opened": "a direct link, opened (OTP challenge and SMS counters)",
}
COLUMNS = {
    "redis": "Redis",
    "redis-cluster": "Redis Cluster",
    "redis-sentinel": "Redis Sentinel",
    "postgres": "PostgreSQL",
}


# --- counting what a store holds ---------------------------------------------------------


def _redis_keys(store: Any) -> dict[bytes, int]:
    client = store.client
    return {
        key: int(client.memory_usage(key) or 0)
        for key in client.scan_iter(match=store.prefix + "*", count=1000)
    }


class _Redis:
    """Keys and MEMORY USAGE under the store's prefix (every shard of a cluster)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.before: dict[bytes, int] = {}

    def mark(self) -> None:
        self.before = _redis_keys(self.store)

    def added(self) -> tuple[int, int]:
        after = _redis_keys(self.store)
        new = set(after) - set(self.before)
        grown = sum(after[k] - self.before[k] for k in set(after) & set(self.before))
        return len(new), sum(after[k] for k in new) + grown


class _Postgres:
    """Rows and on-disk size (live rows only) of the store's table."""

    def __init__(self, store: Any, url: str) -> None:
        import psycopg

        from authbroker.store.postgres import parse_postgres_url

        conninfo, own = parse_postgres_url(url)
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.table = own["table"]
        self.prefix = store.prefix
        self.before = (0, 0)

    def _now(self) -> tuple[int, int]:
        from psycopg import sql

        table = sql.Identifier(self.table)
        self.conn.execute(sql.SQL("VACUUM FULL {}").format(table))
        rows = self.conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE key LIKE %s AND expires_at > now()").format(
                table
            ),
            (self.prefix.replace("%", r"\%").replace("_", r"\_") + "%",),
        ).fetchone()
        size = self.conn.execute("SELECT pg_total_relation_size(%s)", (self.table,)).fetchone()
        assert rows is not None and size is not None
        return int(rows[0]), int(size[0])

    def mark(self) -> None:
        self.before = self._now()

    def added(self) -> tuple[int, int]:
        rows, size = self._now()
        return rows - self.before[0], size - self.before[1]

    def close(self) -> None:
        self.conn.close()


# --- making the items ----------------------------------------------------------------------


def _identity() -> Identity:
    return bank_identity(Loa.SUBSTANTIAL)


def _makers(store: StateStore) -> tuple[dict[str, Callable[[int], object]], Callable[[], None]]:
    """``kind -> make(i)`` creating the i-th item of that kind; and a closer."""
    broker = simulated_broker(load_config(environ={}), store=store, in_process=True)
    sessions = SessionManager(store, ["s" * 40])
    links = DirectLinks(store, OutboxSender(), secret_keys=["k" * 40], base_url="https://a.example")

    def flow(i: int) -> object:
        return broker.begin("ftn", binding=f"b{i}", return_to="/after")

    def session(i: int) -> object:
        return sessions.login(f"user-{i}", _identity())

    def issued(i: int) -> str:
        return links.issue(f"user-{i}", f"+35840{i:07d}", "invoice:approve", f"inv-{i}", 3600)

    def opened(i: int) -> object:
        token = issued(i).rsplit("/", 1)[1]
        return links.open(token, f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}")

    def close() -> None:
        links.close()
        broker.close()

    return {"flow": flow, "session": session, "link issued": issued, "link opened": opened}, close


def measure(store: StateStore, counter: Any, n: int) -> dict[str, tuple[float, float]]:
    """``kind -> (keys or rows per item, bytes per item)``."""
    makers, close = _makers(store)
    result: dict[str, tuple[float, float]] = {}
    try:
        for kind in KINDS:
            make = makers[kind]
            base = 10_000 * (KINDS.index(kind) + 1)
            make(base)  # warm-up: whatever all items of this kind share
            counter.mark()
            for i in range(1, n + 1):
                make(base + i)
            keys, size = counter.added()
            result[kind] = (keys / n, size / n)
    finally:
        close()
    return result


# --- the documented table --------------------------------------------------------------------


def documented() -> dict[str, dict[str, tuple[int, int]]]:
    """``row -> column -> (keys or rows, bytes)`` from the table in the guide."""
    text = DOC.read_text()
    start = text.index("<!-- footprint:")
    lines = [ln for ln in text[start:].splitlines()[1:] if ln.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    table: dict[str, dict[str, tuple[int, int]]] = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        row: dict[str, tuple[int, int]] = {}
        for name, cell in zip(header[1:], cells[1:], strict=True):
            match = re.fullmatch(r"(\d+) × ≈ ([\d ]+) B", cell)
            assert match is not None, f"unreadable cell {cell!r} in {DOC.name}"
            row[name] = (int(match[1]), int(match[2].replace(" ", "")))
        table[cells[0]] = row
    return table


def test_the_guide_has_a_row_for_each_kind_and_a_column_for_each_store() -> None:
    table = documented()
    assert set(table) == set(ROWS.values())
    assert all(set(row) == set(COLUMNS.values()) for row in table.values())


@pytest.mark.parametrize(
    "store_backend",
    [
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
        pytest.param("redis-sentinel", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def test_footprint_matches_the_guide(
    store_backend: str, sync_store: StateStore, request: pytest.FixtureRequest
) -> None:
    counter: Any
    if store_backend == "postgres":
        counter = _Postgres(sync_store, request.getfixturevalue("postgres_store_url"))
    else:
        counter = _Redis(sync_store)
    n = N["postgres" if store_backend == "postgres" else "redis"]
    try:
        measured = measure(sync_store, counter, n)
    finally:
        if isinstance(counter, _Postgres):
            counter.close()
    column = COLUMNS[store_backend]
    print(f"\n{column} (per item, {n} items of each kind):")
    for kind in KINDS:
        keys, size = measured[kind]
        print(f"  {ROWS[kind]}: {keys:g} × ≈ {f'{size:,.0f}'.replace(',', ' ')} B")
    table = documented()
    for kind in KINDS:
        keys, size = measured[kind]
        want_keys, want_bytes = table[ROWS[kind]][column]
        assert keys == want_keys, (kind, column, keys)
        assert abs(size - want_bytes) <= TOLERANCE * want_bytes, (kind, column, size, want_bytes)
