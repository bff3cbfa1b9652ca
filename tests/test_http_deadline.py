"""The HTTP drivers bound a whole provider call by the wall clock (issue 15, issue 23 #8).

A real socket server on 127.0.0.1 drips one byte every 0.2 s: each single read
succeeds well inside any per-read timeout, so only an overall deadline ends the call.
The adapters' tests point BankID (mTLS), the Mobiilivarmenne MSSP and the Web eID
OCSP responder at the same server and expect a typed error within the deadline.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType

import pytest

from authbroker.config import ProviderConfig, Settings, load_config
from authbroker.errors import AuthBrokerError, ProviderUnavailable
from authbroker.flow import Challenge
from authbroker.http import AsyncDriver, HttpRequest, SyncDriver
from authbroker.identity import Loa
from authbroker.providers import bankid_se, mobiilivarmenne, web_eid
from authbroker.providers.base import AdvanceContext, BeginContext, Next
from authbroker.store.memory import MemoryStore
from authbroker.testing import simulated_broker
from authbroker.testing.simulators import web_eid as web_eid_sim
from runtimes import run_sync

DRIP_INTERVAL = 0.2
#: What the deadline may be overrun by: thread wake-ups and connection teardown.
MARGIN = 0.5


class DripServer:
    """A threaded TCP (optionally TLS) server that answers one byte at a time.

    ``mode="headers"`` drips from the first byte of the status line; ``"body"``
    sends the headers at once and drips a long body. Each byte arrives 0.2 s after
    the last, for up to ``limit`` seconds, so only a whole-call deadline stops it.
    """

    def __init__(
        self,
        mode: str = "headers",
        *,
        tls: ssl.SSLContext | None = None,
        limit: float = 20.0,
    ) -> None:
        self.mode = mode
        self.tls = tls
        self.limit = limit
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)  # so the acceptor notices stop promptly
        self.port = int(self.sock.getsockname()[1])
        self.stop = threading.Event()
        self.connections = 0
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> DripServer:
        self.acceptor.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop.set()
        for t in [self.acceptor, *self.threads]:
            t.join(timeout=2)
        self.sock.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, raw: socket.socket) -> None:
        conn = raw
        try:
            raw.settimeout(5)
            if self.tls is not None:
                conn = self.tls.wrap_socket(raw, server_side=True)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            head += b"Content-Length: 100000\r\n\r\n"
            if self.mode == "body":
                conn.sendall(head)
                payload = b"{" + b" " * 99999
            else:
                payload = head
            started = time.monotonic()
            for i in range(len(payload)):
                if self.stop.wait(DRIP_INTERVAL) or time.monotonic() - started > self.limit:
                    return
                conn.sendall(payload[i : i + 1])
        except OSError:
            return  # the client gave up: what the tests want
        finally:
            conn.close()


@pytest.fixture(params=["headers", "body"])
def drip(request: pytest.FixtureRequest) -> Iterator[DripServer]:
    with DripServer(request.param) as server:
        yield server


def _assert_deadline(started: float, timeout: float, err: ProviderUnavailable) -> None:
    elapsed = time.monotonic() - started
    assert elapsed < timeout + MARGIN, elapsed
    assert err.code == "http_timeout"
    assert err.details == {"host": "127.0.0.1"}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sync_whole_call_deadline(drip: DripServer, method: str) -> None:
    driver = SyncDriver()
    try:
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as err:
            driver.send(HttpRequest(method, drip.url + "/x", body=b"{}", timeout=1.0))
        _assert_deadline(started, 1.0, err.value)
        assert drip.connections == 1  # a timeout is not retried, not even for a GET
    finally:
        driver.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_async_whole_call_deadline(drip: DripServer, method: str) -> None:
    driver = AsyncDriver()
    try:
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as err:
            await driver.send(HttpRequest(method, drip.url + "/x", body=b"{}", timeout=1.0))
        _assert_deadline(started, 1.0, err.value)
        assert drip.connections == 1
    finally:
        await driver.aclose()


def test_sync_deadline_holds_for_a_client_already_in_use() -> None:
    """The bound lives in the pool's sockets: a client built before still has it, and
    later calls on it are not shortened by the earlier call's deadline."""
    from authbroker.testing.simulators.server import LoopbackServer, SimResponse

    with LoopbackServer(lambda req: SimResponse.json({"ok": True})) as fine:
        driver = SyncDriver()
        try:
            assert driver.send(HttpRequest.get(fine.url + "/a", timeout=1.0)).status == 200
            with DripServer("body") as drip:
                started = time.monotonic()
                with pytest.raises(ProviderUnavailable) as err:
                    driver.send(HttpRequest.get(drip.url + "/b", timeout=1.0))
                _assert_deadline(started, 1.0, err.value)
            # The driver is still usable and unbounded calls are not affected afterwards.
            assert driver.send(HttpRequest.get(fine.url + "/c", timeout=1.0)).status == 200
        finally:
            driver.close()


def test_sync_deadline_is_per_call_not_per_thread() -> None:
    """Concurrent calls each get their own deadline (threads released together)."""
    driver = SyncDriver()
    barrier = threading.Barrier(3)
    results: list[float] = []
    errors: list[BaseException] = []

    def call(url: str, timeout: float) -> None:
        barrier.wait()
        started = time.monotonic()
        try:
            driver.send(HttpRequest.get(url, timeout=timeout))
        except ProviderUnavailable as exc:
            assert exc.code == "http_timeout"
            results.append(time.monotonic() - started)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with DripServer("body") as drip:
        threads = [
            threading.Thread(target=call, args=(drip.url + f"/{i}", t))
            for i, t in enumerate((0.6, 1.2, 1.8))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    driver.close()
    assert not errors
    assert len(results) == 3
    assert max(results) < 1.8 + MARGIN
    assert min(results) < 0.6 + MARGIN


# --- the adapters: BankID (mTLS), Mobiilivarmenne MSSP, Web eID OCSP (issue 23 #8) --------


def _timed_failure(call: Callable[[], object]) -> tuple[AuthBrokerError, float]:
    started = time.monotonic()
    with pytest.raises(AuthBrokerError) as err:
        call()
    return err.value, time.monotonic() - started


def test_bankid_se_call_is_bounded_over_mtls() -> None:
    """The drip server presents the simulator's server certificate from the pinned CA
    and requires the RP's client certificate, so only the deadline can end the call."""
    settings = load_config(environ={}, overrides={"providers": {"bankid-se": {}}})
    with simulated_broker(settings, store=MemoryStore()) as sim_broker:
        running = sim_broker.simulator("bankid-se")
        assert running is not None
        files = running.extra["files"]
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(files["server_cert"], files["server_key"])
        tls.load_verify_locations(files["ca_file"])
        tls.verify_mode = ssl.CERT_REQUIRED
        with DripServer("body", tls=tls) as drip:
            config = settings.provider("bankid-se").with_options(
                **{**running.overrides, "api_url": drip.url + "/rp/v6.0", "request_timeout": 1.0}
            )
            provider = bankid_se.from_config(config, settings)
            broker = simulated_broker(
                settings, store=MemoryStore(), providers={"bankid-se": provider}
            )
            try:
                error, elapsed = _timed_failure(
                    lambda: broker.begin("bankid-se", client_ip="192.0.2.10", binding="b")
                )
            finally:
                broker.close()
    assert type(error) is ProviderUnavailable and error.code == "http_timeout"
    assert elapsed < 1.0 + MARGIN, elapsed
    assert drip.connections == 1


def test_mobiilivarmenne_mssp_call_is_bounded() -> None:
    settings = load_config(environ={})
    with simulated_broker(settings, store=MemoryStore()) as sim_broker:
        running = sim_broker.simulator("mobiilivarmenne")
        assert running is not None
        with DripServer("headers") as drip:
            config = settings.provider("mobiilivarmenne").with_options(
                **{**running.overrides, "endpoint": drip.url + "/mssp", "http_timeout": 1.0}
            )
            provider = mobiilivarmenne.from_config(config, settings)
            broker = simulated_broker(
                settings, store=MemoryStore(), providers={"mobiilivarmenne": provider}
            )
            try:
                error, elapsed = _timed_failure(
                    lambda: broker.begin(
                        "mobiilivarmenne", params={"msisdn": "+358401234567"}, binding="b"
                    )
                )
            finally:
                broker.close()
    assert type(error) is ProviderUnavailable and error.code == "http_timeout"
    assert elapsed < 1.0 + MARGIN, elapsed


def test_web_eid_ocsp_call_is_bounded() -> None:
    cfg = ProviderConfig("web-eid", "web-eid", "simulator", {"en": "x"}, Loa.HIGH, "EE", {})
    running = web_eid_sim.start(cfg, Settings())
    sim: web_eid_sim.WebEidSimulator = running.extra["simulator"]
    try:
        with DripServer("body") as drip:
            options = {
                **running.overrides,
                "origin": "https://app.example",
                "ocsp_designated_url": drip.url + "/ocsp",
                "ocsp_designated_certificate": running.extra["ca_pem"],
                "ocsp_timeout": 1.0,
            }
            provider = web_eid.from_config(
                ProviderConfig(
                    "web-eid", "web-eid", "simulator", {"en": "x"}, Loa.HIGH, "EE", options
                ),
                Settings(),
            )
            store = MemoryStore()
            now = time.time()
            nxt = run_sync(provider.begin(BeginContext("f" * 20, "", now)), None, store)
            assert isinstance(nxt, Next) and isinstance(nxt.step, Challenge)
            token = sim.make_token("https://app.example", nxt.step.nonce)
            driver = SyncDriver(retries=0)
            try:
                error, elapsed = _timed_failure(
                    lambda: run_sync(
                        provider.advance(AdvanceContext("f" * 20, now), nxt.data, {"token": token}),
                        driver,
                        store,
                    )
                )
            finally:
                driver.close()
    finally:
        running.stop()
    assert type(error) is ProviderUnavailable and error.code == "ocsp_unavailable"
    assert isinstance(error.__cause__, ProviderUnavailable)
    assert error.__cause__.code == "http_timeout"
    assert elapsed < 1.0 + MARGIN, elapsed
