"""A real-browser FTN login and direct link + SMS code on docs/examples/fastapi_app.py,
served by uvicorn on loopback with every provider on its simulator."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser_demo import page  # noqa: F401 - the Chromium fixture

from authbroker.config import load_config
from authbroker.engines.links import AsyncDirectLinks
from authbroker.sms.outbox import OutboxSender
from authbroker.store.memory import AsyncMemoryStore
from authbroker.testing import simulated_async_broker
from authbroker.web.demo import _bound_socket

pytestmark = pytest.mark.browser
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fastapi_app.py"
PHONE = "+358401234567"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Any, OutboxSender]]:
    import uvicorn

    spec = importlib.util.spec_from_file_location("fastapi_example_browser", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
        yield base, links, outbox
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        broker.simulators.stop()


def test_ftn_login_in_browser(page: Any, served: Any) -> None:  # noqa: F811
    base, _, _ = served
    page.goto(base + "/ledger")
    page.wait_for_url(f"{base}/auth/*")
    page.click('a[data-provider="ftn"]')
    page.wait_for_selector('button[name="person"]')  # the OIDC simulator's consent page
    page.locator('button[name="person"]').first.click()
    page.wait_for_url(base + "/ledger")
    assert '"ledger":"ok"' in page.inner_text("body").replace(" ", "")


def test_direct_link_with_sms_code_in_browser(page: Any, served: Any) -> None:  # noqa: F811
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    base, links, outbox = served
    issue = links.issue("acct-1", PHONE, "invoice:approve", "INV-3", ttl=600)
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's loop
        url = pool.submit(asyncio.run, issue).result()
    page.goto(url)
    page.wait_for_url(base + "/auth/link")
    page.click("#send")
    page.wait_for_url(base + "/auth/link/code")
    deadline = time.monotonic() + 10
    while outbox.last(PHONE) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    message = outbox.last(PHONE)
    assert message is not None and message.code()
    page.fill("#code", str(message.code()))
    page.click("#verify")
    page.wait_for_url(base + "/invoices/INV-3")
    assert '"kind":"link"' in page.inner_text("body").replace(" ", "")
