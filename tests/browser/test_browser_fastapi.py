"""Real-browser logins on docs/examples/fastapi_app.py, served by uvicorn on loopback
with every provider on its simulator: FTN, Swedish BankID by QR code, and a direct link
plus SMS code (:mod:`browser_support`)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from browser_support import (  # noqa: F401 - browser, page: the Chromium fixtures
    PHONE,
    bankid_qr_login,
    body_text,
    browser,
    ftn_login,
    link_login,
    page,
)

from authbroker.config import load_config
from authbroker.engines.links import AsyncDirectLinks
from authbroker.sms.outbox import OutboxSender
from authbroker.store.memory import AsyncMemoryStore
from authbroker.testing import AsyncSimulatedBroker, simulated_async_broker
from authbroker.web.demo import _bound_socket
from docs_support import load_example

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, AsyncSimulatedBroker, AsyncDirectLinks, OutboxSender]]:
    import uvicorn

    module = load_example("fastapi_app.py", "fastapi_example_browser")
    sock = _bound_socket("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = load_config(environment="simulator", overrides={"broker": {"base_url": base}})
    broker = simulated_async_broker(settings, store=AsyncMemoryStore())
    outbox = OutboxSender()
    links = AsyncDirectLinks(
        broker.store,
        outbox,
        secret_keys=settings.secret_keys,
        base_url=base,
        link_path=settings.route_prefix + "/link",
        service_name="Example",
    )
    app = module.create_app(broker, links=links)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    try:
        yield base, broker, links, outbox
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        broker.simulators.stop()


def test_ftn_login_in_browser(page: Any, served: Any) -> None:  # noqa: F811
    base, _, _, _ = served
    ftn_login(page, base, "/ledger")
    assert '"ledger":"ok"' in body_text(page)
    assert '"loa":"SUBSTANTIAL"' in body_text(page)


def test_bankid_qr_login_in_browser(page: Any, served: Any) -> None:  # noqa: F811
    base, broker, _, _ = served
    sim = broker.simulator("bankid-se")
    assert sim is not None
    bankid_qr_login(page, base, "/ledger", sim.extra["simulator"].scan)
    assert '"ledger":"ok"' in body_text(page)
    assert '"loa":"HIGH"' in body_text(page)


def test_direct_link_with_sms_code_in_browser(page: Any, served: Any) -> None:  # noqa: F811
    base, _, links, outbox = served
    issue = links.issue("acct-1", PHONE, "invoice:approve", "INV-3", ttl=600)
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's loop
        url = pool.submit(asyncio.run, issue).result()
    link_login(page, base, url, outbox, "/invoices/INV-3")
    assert '"kind":"link"' in body_text(page)
