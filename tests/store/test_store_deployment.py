"""Several application processes on one shared store (R-10 on every shared backend).

Two spawned processes, each with its own ``Broker`` on the same Redis Cluster,
Sentinel or PostgreSQL store: process A begins FTN flows, process B plays the
browser's return and completes them. Each completes exactly once, with the test
person's identity, and the flow record is gone from the shared store afterwards.
"""

from __future__ import annotations

import multiprocessing
import secrets
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

import _mp_store_workers
from authbroker import load_config
from authbroker.store import open_store
from authbroker.testing import simulated_broker


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as executor:
        yield executor


@pytest.fixture(
    params=[
        pytest.param("redis-cluster", marks=pytest.mark.redis),
        pytest.param("redis-sentinel", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def shared_url(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_store_url"))
    servers = request.getfixturevalue(request.param.replace("-", "_"))
    return f"{servers.url}?prefix=abtest:{secrets.token_hex(6)}:"


def test_flow_begun_in_one_process_completes_in_another(
    shared_url: str, pool: ProcessPoolExecutor
) -> None:
    parent_store = open_store(shared_url)
    parent = simulated_broker(load_config(environ={}), store=parent_store)  # runs the OP
    try:
        running: Any = parent.simulator("ftn")
        assert running is not None
        running.extra["op"].control.auto_approve = True
        overrides = running.overrides
        flows = [
            pool.submit(_mp_store_workers.begin, shared_url, "ftn", overrides).result(60)
            for _ in range(3)
        ]
        results = [
            pool.submit(_mp_store_workers.complete, shared_url, "ftn", overrides, fid, url).result(
                60
            )
            for fid, url in flows
        ]
        assert results == [("070770-905D", "/invoices")] * 3
        for fid, _ in flows:
            assert parent_store.get("flow:" + fid) is None  # completed exactly once
    finally:
        parent.close()
        parent_store.close()
