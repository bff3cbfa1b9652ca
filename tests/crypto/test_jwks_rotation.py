"""R-07: a key rotation seen by a burst of concurrent validations costs one JWKS fetch,
and every validation of a token signed with the new key succeeds."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from authbroker.crypto.jose import JwksCache, Key, KeyNotFound, KeySet, sign_jwt
from authbroker.http import AsyncDriver, HttpRequest, SyncDriver
from authbroker.testing.simulators.server import LoopbackServer, SimRequest, SimResponse
from runtimes import run_async, run_sync


class Jwks:
    """A JWKS endpoint that answers slowly (so callers overlap) and counts fetches."""

    def __init__(self) -> None:
        self.keys = [Key.generate("EC", use="sig", alg="ES256")]
        self.delay = 0.3

    def __call__(self, req: SimRequest) -> SimResponse:
        time.sleep(self.delay)
        return SimResponse.json(KeySet(self.keys).to_public_jwks())

    def rotate(self) -> Key:
        key = Key.generate("EC", use="sig", alg="ES256")
        self.keys.insert(0, key)
        return key


@pytest.fixture
def endpoint() -> tuple[Jwks, LoopbackServer]:
    jwks = Jwks()
    server = LoopbackServer(jwks).start()
    yield jwks, server  # type: ignore[misc]
    server.stop()


def test_threads_share_one_fetch_on_rotation(endpoint: tuple[Jwks, LoopbackServer]) -> None:
    jwks, server = endpoint
    cache = JwksCache(server.url + "/jwks", min_refetch_interval=60)
    driver = SyncDriver()
    old = sign_jwt({"sub": "a"}, jwks.keys[0])
    run_sync(cache.verify_jwt(old, algorithms=["ES256"]), driver, None)
    assert server.requests["/jwks"] == 1
    token = sign_jwt({"sub": "b"}, jwks.rotate())
    barrier = threading.Barrier(100)
    results: list[object] = []
    lock = threading.Lock()

    def validate() -> None:
        barrier.wait()
        try:
            r: object = run_sync(cache.verify_jwt(token, algorithms=["ES256"]), driver, None)
        except KeyNotFound as exc:
            r = exc
        with lock:
            results.append(r)

    threads = [threading.Thread(target=validate) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, tuple) and r[1]["sub"] == "b" for r in results), results[:3]
    assert server.requests["/jwks"] == 2  # one forced refetch for all 100
    # A flood of unknown kids right after is refused without any fetch (rate limit).
    stranger = sign_jwt({"sub": "x"}, Key.generate("EC", use="sig", alg="ES256"))
    for _ in range(50):
        with pytest.raises(KeyNotFound):
            run_sync(cache.verify_jwt(stranger, algorithms=["ES256"]), driver, None)
    assert server.requests["/jwks"] == 2


async def test_tasks_share_one_fetch_on_rotation(endpoint: tuple[Jwks, LoopbackServer]) -> None:
    jwks, server = endpoint
    cache = JwksCache(server.url + "/jwks", min_refetch_interval=60)
    driver = AsyncDriver()
    await run_async(
        cache.verify_jwt(sign_jwt({}, jwks.keys[0]), algorithms=["ES256"]), driver, None
    )
    token = sign_jwt({"sub": "b"}, jwks.rotate())
    results = await asyncio.gather(
        *(
            run_async(cache.verify_jwt(token, algorithms=["ES256"]), driver, None)
            for _ in range(100)
        )
    )
    assert all(r[1]["sub"] == "b" for r in results)
    assert server.requests["/jwks"] == 2
    await driver.aclose()


def test_only_shareable_gets_are_coalesced(endpoint: tuple[Jwks, LoopbackServer]) -> None:
    jwks, server = endpoint
    jwks.delay = 0.2
    driver = SyncDriver()

    def burst(shareable: bool) -> int:
        before = server.requests["/doc"]
        barrier = threading.Barrier(10)
        bodies: list[bytes] = []

        def get() -> None:
            barrier.wait()
            bodies.append(
                driver.send(HttpRequest.get(server.url + "/doc", shareable=shareable)).body
            )

        threads = [threading.Thread(target=get) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(bodies) == 10 and all(json.loads(b)["keys"] for b in bodies)
        return server.requests["/doc"] - before

    assert burst(shareable=True) == 1
    assert burst(shareable=False) == 10
