"""``authbroker.testing``: simulators stay out of the production path.

* a production :class:`Broker` never starts a simulator: a provider configured for the
  ``simulator`` environment without an explicit adapter is a ConfigError at start-up;
* :func:`simulated_broker` starts them on first use and stops them on ``close``;
* in-process simulators behind :class:`SimulatorTransport` run a whole FTN login
  without opening a socket;
* the drivers' ``transport=`` reaches every client, mTLS ones included;
* the old import paths still work, with a DeprecationWarning, and the library itself
  never imports ``authbroker.testing``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from authbroker import AsyncBroker, Broker, Done, Redirect
from authbroker.config import load_config
from authbroker.errors import ConfigError, ProviderUnavailable
from authbroker.http import AsyncDriver, HttpRequest, MtlsConfig, SyncDriver
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from authbroker.testing import (
    SimulatorTransport,
    simulated_async_broker,
    simulated_broker,
)


def _only(*names: str) -> Any:
    return load_config(environ={}, overrides={"providers": {n: {} for n in names}})


# --- a production broker never starts a simulator ----------------------------------------


@pytest.mark.parametrize("cls", [Broker, AsyncBroker])
def test_broker_refuses_providers_on_the_simulator(cls: Any) -> None:
    store = MemoryStore() if cls is Broker else AsyncMemoryStore()
    with pytest.raises(ConfigError) as info:
        cls(_only("ftn", "tupas-op"), store=store)
    message = str(info.value)
    assert "ftn" in message and "tupas-op" in message
    assert "authbroker.testing.simulated_broker()" in message


def test_broker_accepts_explicit_providers_for_simulator_profiles() -> None:
    with simulated_broker(_only("ftn"), store=MemoryStore()) as sim:
        ftn = sim.provider("ftn")
        with Broker(_only("ftn"), store=MemoryStore(), providers={"ftn": ftn}) as broker:
            assert broker.provider("ftn") is ftn
            assert isinstance(broker.begin("ftn", insecure_unbound=True), Redirect)


def test_start_simulators_keyword_is_deprecated_and_changes_nothing() -> None:
    with (
        pytest.warns(DeprecationWarning, match="never starts simulators"),
        pytest.raises(ConfigError),
    ):
        Broker(_only("ftn"), store=MemoryStore(), start_simulators=True)


# --- simulated brokers --------------------------------------------------------------------


def test_simulated_broker_starts_lazily_and_close_stops() -> None:
    broker = simulated_broker(_only("ftn", "tupas-op"), store=MemoryStore())
    assert broker.simulators.get("ftn") is None  # nothing started yet
    sim = broker.simulator("ftn")
    assert sim is not None and broker.simulators.get("tupas-op") is None
    url = urlsplit(sim.extra["op"].issuer)
    broker.close()
    with pytest.raises(OSError):
        socket.create_connection((url.hostname, url.port), timeout=2).close()


def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise AssertionError("a socket was used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "bind", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def _approve(browser: httpx.Client, step: Redirect) -> dict[str, str]:
    resp = browser.get(step.url)
    assert resp.status_code == 302, resp.text
    return dict(parse_qsl(urlsplit(resp.headers["location"]).query))


def test_in_process_ftn_login_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = _no_sockets(monkeypatch)
    with simulated_broker(_only("ftn"), store=MemoryStore(), in_process=True) as broker:
        sim = broker.simulator("ftn")
        assert sim is not None
        sim.extra["control"].auto_approve = True
        step = broker.begin("ftn", binding="b", return_to="/invoices")
        assert isinstance(step, Redirect) and step.url.startswith("http://localhost:")
        with httpx.Client(transport=SimulatorTransport()) as browser:
            params = _approve(browser, step)
        done = broker.advance(step.flow_id, params, binding="b", provider="ftn")
        assert isinstance(done, Done) and done.return_to == "/invoices"
        assert done.identity.national_id is not None
        assert sim.extra["requests"]["/op/token"] == 1
    assert attempts == []


async def test_in_process_async_ftn_login_opens_no_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = simulated_async_broker(_only("ftn"), store=AsyncMemoryStore(), in_process=True)
    attempts = _no_sockets(monkeypatch)
    async with broker:
        sim = broker.simulator("ftn")
        assert sim is not None
        sim.extra["control"].auto_approve = True
        step = await broker.begin("ftn", binding="b")
        assert isinstance(step, Redirect)
        async with httpx.AsyncClient(transport=SimulatorTransport()) as browser:
            resp = await browser.get(step.url)
        params = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
        done = await broker.advance(step.flow_id, params, binding="b", provider="ftn")
        assert isinstance(done, Done)
    assert attempts == []


def test_in_process_refuses_the_mtls_simulator() -> None:
    broker = simulated_broker(_only("bankid-se"), store=MemoryStore(), in_process=True)
    with broker, pytest.raises(ConfigError, match="client certificates"):
        broker.provider("bankid-se")


def test_simulator_transport_refuses_other_origins() -> None:
    driver = SyncDriver(retries=0, transport=SimulatorTransport())
    with pytest.raises(ProviderUnavailable):
        driver.send(HttpRequest.get("http://localhost:1/nothing-here"))
    driver.close()


# --- drivers take a transport ----------------------------------------------------------------


def _recorder() -> tuple[list[str], httpx.MockTransport]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"ok": True})

    return seen, httpx.MockTransport(handler)


# Files that do not exist: with a transport the driver must not build an SSL context.
MTLS = MtlsConfig(cert_file="/nonexistent/cert.pem", ca_file="/nonexistent/ca.pem")


def test_sync_driver_uses_the_transport_for_every_client() -> None:
    seen, transport = _recorder()
    driver = SyncDriver(transport=transport)
    assert driver.send(HttpRequest.get("https://a.example/x")).json() == {"ok": True}
    assert driver.send(HttpRequest.get("https://b.example/y", mtls=MTLS)).status == 200
    driver.close()
    assert seen == ["https://a.example/x", "https://b.example/y"]


async def test_async_driver_uses_the_transport_for_every_client() -> None:
    seen, transport = _recorder()
    driver = AsyncDriver(transport=transport)
    assert (await driver.send(HttpRequest.get("https://a.example/x"))).status == 200
    assert (await driver.send(HttpRequest.get("https://b.example/y", mtls=MTLS))).status == 200
    await driver.aclose()
    assert seen == ["https://a.example/x", "https://b.example/y"]


async def test_async_driver_keeps_its_deadline_around_a_custom_transport() -> None:
    import asyncio

    class Stall(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(30)
            raise AssertionError("unreachable")

    driver = AsyncDriver(transport=Stall())
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ProviderUnavailable):
        await driver.send(HttpRequest.get("https://slow.example/", timeout=0.3))
    assert loop.time() - started < 2
    await driver.aclose()


# --- old paths, layering --------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "always::DeprecationWarning", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_old_import_paths_work_and_warn() -> None:
    result = _python(
        "import authbroker.broker as old, authbroker.engines.flows as new\n"
        "assert old.Broker is new.Broker and old.check_return_to is new.check_return_to\n"
        "from authbroker.simulators.oidc import OpenIdProviderSim as Old\n"
        "from authbroker.testing.simulators.oidc import OpenIdProviderSim as New\n"
        "assert Old is New\n"
        "from authbroker.providers.registry import RunningSimulator\n"
        "import authbroker.testing\n"
        "assert RunningSimulator is authbroker.testing.RunningSimulator\n"
    )
    assert result.returncode == 0, result.stderr
    for moved in ("authbroker.broker", "authbroker.simulators", "RunningSimulator"):
        assert f"{moved} moved to" in result.stderr, result.stderr


def test_library_never_imports_testing() -> None:
    result = _python(
        "import sys, warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "import authbroker, authbroker.engines.flows, authbroker.web.asgi, authbroker.web.wsgi\n"
        "import authbroker.providers.registry, authbroker.health\n"
        "assert not [m for m in sys.modules if m.startswith('authbroker.testing')], 'testing'\n"
        "assert 'authbroker.broker' not in sys.modules\n"
        "assert 'authbroker.simulators' not in sys.modules\n"
    )
    assert result.returncode == 0, result.stderr
