"""The real-browser logins every framework's example app must pass: FTN through the
OIDC simulator's consent page, Swedish BankID by its animated QR code (scanned by the
simulator, as the BankID app on another device would), and a direct link plus SMS
code read from the outbox. One headless Chromium per test module (``browser``), a
fresh context, with no cookies, per test (``page``).

Each login waits on explicit URLs and elements with bounded timeouts; nothing sleeps
for a fixed time.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_browser_demo import ARGS, CHROMIUM, _unavailable

from authbroker.sms.outbox import OutboxMessage, OutboxSender

PHONE = "+358401234567"
#: A test user of the BankID simulator (as in the demo's browser test).
BANKID_PERSON = "199001010017"
#: Every wait is bounded; the BankID poll loop gets longer (it collects once a second).
TIMEOUT_MS = 30_000
BANKID_TIMEOUT_MS = 45_000


@contextmanager
def serving_wsgi(build: Callable[[str], Any]) -> Iterator[str]:
    """Serve ``build(base_url)`` (a WSGI app) on a threaded werkzeug server on a free
    loopback port and yield that base URL; the app is built once the port is known,
    because the broker sends browsers back to its own ``base_url``."""
    from werkzeug.serving import make_server

    def not_yet(environ: Any, start_response: Any) -> Any:  # pragma: no cover
        raise RuntimeError("the app is not built yet")

    server = make_server("127.0.0.1", 0, not_yet, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    server.app = build(base)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the whole module (launching it is the slow part)."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh browser context: each login starts without cookies."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def body_text(page: Any) -> str:
    """The page's text without spaces (frameworks format their JSON differently)."""
    return str(page.inner_text("body")).replace(" ", "")


def ftn_login(page: Any, base: str, protected: str) -> None:
    """Open ``protected``, pick FTN on the login page, consent as the simulator's first
    test person and land back on ``protected``."""
    page.goto(base + protected)
    page.wait_for_url(re.compile(re.escape(base) + r"/auth/\?.*"))
    page.click('a[data-provider="ftn"]')
    page.wait_for_selector('button[name="person"]')  # the OIDC simulator's consent page
    page.locator('button[name="person"]').first.click()
    page.wait_for_url(base + protected)


def bankid_qr_login(page: Any, base: str, protected: str, scan: Callable[[str, str], str]) -> None:
    """Open ``protected``, pick BankID on the login page, choose "other device", let
    the page refresh its animated QR code, and scan the code shown (``scan(payload,
    personal_number)``, the simulator's). The page's poll loop lands on ``protected``."""
    page.goto(base + protected)
    page.wait_for_url(re.compile(re.escape(base) + r"/auth/\?.*"))
    page.click('a[data-provider="bankid-se"]')
    page.click("#other-device")
    page.wait_for_url(re.compile(re.escape(base) + r"/auth/flow/.*"))
    qr = page.locator("img#qr")
    qr.wait_for()
    first = qr.get_attribute("data-qr")
    assert first and first.startswith("bankid."), first
    # The QR is animated (a new HMAC every second): scan one the page refreshed to.
    page.wait_for_function("first => document.getElementById('qr').dataset.qr !== first", arg=first)
    payload = qr.get_attribute("data-qr")
    assert payload and payload != first
    result = scan(payload, BANKID_PERSON)
    assert result == "ok", result
    page.wait_for_url(base + protected, timeout=BANKID_TIMEOUT_MS)


def next_message(outbox: OutboxSender, before: int, to: str = PHONE) -> OutboxMessage:
    """The first message to ``to`` after the outbox held ``before`` messages."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        for message in list(outbox.messages)[before:]:
            if message.to == to:
                return message
        time.sleep(0.05)
    raise AssertionError(f"no SMS to {to} within {TIMEOUT_MS} ms")


def link_login(page: Any, base: str, link: str, outbox: OutboxSender, landing: str) -> None:
    """Open the direct ``link``, have the code texted, type it, land on ``landing``."""
    assert link.startswith(base + "/auth/link/"), link
    page.goto(link)
    page.wait_for_url(base + "/auth/link")  # the token left the address bar
    before = len(outbox.messages)
    page.click("#send")
    page.wait_for_url(base + "/auth/link/code")
    code = next_message(outbox, before).code()
    assert code and code.isdigit()
    page.fill("#code", code)
    page.click("#verify")
    page.wait_for_url(base + landing)
