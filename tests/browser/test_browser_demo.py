"""Real-browser tests: headless Debian chromium, driven by Playwright, against the demo
served by uvicorn on 127.0.0.1 with every provider on its simulator.

In CI (``CI=true``) a missing chromium or Playwright is a failure, never a skip; `make
system` / `.ci/system` installs Debian's ``chromium`` package. Screenshots go to
``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authbroker.web.demo import DEMO_INVOICE, DemoServices, running

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests must run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, DemoServices]]:
    with running() as (base_url, app):
        yield base_url, app.state.demo


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
        )
        context.set_default_timeout(30_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_ftn_login_through_consent_page(page: Any, demo: tuple[str, DemoServices]) -> None:
    base, _ = demo
    page.goto(base + "/")
    page.click("#login")
    page.wait_for_url(re.compile(r".*/auth/.*"))
    shot(page, "picker")
    page.click('a[data-provider="ftn"]')
    page.wait_for_selector('button[name="person"]')  # the OIDC simulator's consent page
    shot(page, "ftn-consent")
    page.locator('button[name="person"]').first.click()
    page.wait_for_url(base + "/")
    page.goto(base + "/me")
    assert page.inner_text("#kind") == "full"
    assert "full" in page.inner_text("#access-level")
    assert page.locator("#identity").count() == 1
    shot(page, "ftn-me")
    page.goto(base + "/books")
    assert "General ledger" in page.inner_text("#books")


def test_swedish_bankid_qr_scanned_by_simulator(page: Any, demo: tuple[str, DemoServices]) -> None:
    base, services = demo
    page.goto(base + "/auth/begin/bankid-se?return_to=/me")
    page.click("#other-device")
    page.wait_for_url(re.compile(r".*/auth/flow/.*"))
    qr = page.locator("img#qr")
    qr.wait_for()
    first = qr.get_attribute("data-qr")
    assert first and first.startswith("bankid.")
    # the page refreshes the animated QR every second from the server
    page.wait_for_function("first => document.getElementById('qr').dataset.qr !== first", arg=first)
    shot(page, "bankid-qr")
    sim_handle = services.broker.simulator("bankid-se")
    assert sim_handle is not None
    payload = qr.get_attribute("data-qr")
    assert payload
    result = sim_handle.extra["simulator"].scan(payload, "199001010017")
    assert result == "ok", result
    page.wait_for_url(base + "/me", timeout=45_000)
    assert page.inner_text("#kind") == "full"
    assert "high" in page.inner_text("#access-level")
    shot(page, "bankid-me")


def test_direct_link_with_sms_code(page: Any, demo: tuple[str, DemoServices]) -> None:
    base, services = demo
    page.goto(base + "/")
    link = page.get_attribute("#direct-link", "href")
    assert link and link.startswith(base + "/auth/link/")
    page.goto(link)
    page.wait_for_url(base + "/auth/link")  # the token left the address bar
    before = len(services.outbox.messages)
    page.click("#send")
    page.wait_for_url(base + "/auth/link/code")
    shot(page, "link-code")
    deadline = time.monotonic() + 10
    while len(services.outbox.messages) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    message = services.outbox.last()
    assert message is not None
    code = message.code()
    assert code and code.isdigit()
    # the demo's outbox page shows the same code
    outbox = page.context.new_page()
    outbox.goto(base + "/outbox")
    assert code in outbox.inner_text("#outbox")
    outbox.close()
    page.fill("#code", code)
    page.click("#verify")
    page.wait_for_url(base + f"/invoices/{DEMO_INVOICE}")
    assert "direct link" in page.inner_text("#access-level")
    page.click("#approve")
    page.wait_for_url(base + f"/invoices/{DEMO_INVOICE}")
    assert page.inner_text("#status") == "approved"
    shot(page, "link-approved")
    # anything else needs strong identification (step-up)
    page.goto(base + "/books")
    page.wait_for_url(re.compile(r".*/auth/\?.*step_up=1.*"))
    assert page.locator("#step-up").count() == 1
    shot(page, "link-step-up")


# -- issue 21: what a newcomer meets on the first run -------------------------------


def _csp_errors(page: Any) -> list[str]:
    """Collect the console's CSP violation reports of ``page`` (filled as it runs)."""
    errors: list[str] = []

    def on_console(msg: Any) -> None:
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            errors.append(f"{page.url}: {msg.text}")

    page.on("console", on_console)
    return errors


def _ftn_login(page: Any, base: str) -> None:
    page.goto(base + "/auth/begin/ftn?return_to=/me")
    page.wait_for_selector('button[name="person"]')
    # The OP's consent page is served under the demo's own origin.
    assert page.url.startswith(base + "/_sim/ftn/op/authorize"), page.url
    page.locator('button[name="person"]').first.click()
    page.wait_for_url(base + "/me")
    assert page.inner_text("#kind") == "full"


def test_no_csp_violation_on_the_demo_pages(page: Any, demo: tuple[str, DemoServices]) -> None:
    base, _ = demo
    errors = _csp_errors(page)
    page.goto(base + "/")
    signed_out = (page.locator("#header-login").count(), page.locator("#logout").count())
    _ftn_login(page, base)
    page.goto(base + "/")
    page.wait_for_load_state("load")
    assert errors == []  # the header's logout form keeps to the CSP
    assert signed_out == (1, 0)
    # Signed in: "Log out" only, no "Log in" beside it.
    assert page.locator("#logout").count() == 1
    assert page.locator("#header-login").count() == 0
    for path in ("/", "/me", "/books", "/outbox", "/auth/", "/auth/begin/bankid-se"):
        page.goto(base + path)
        page.wait_for_load_state("load")
    page.goto(base + "/auth/begin/bankid-se?return_to=/me")
    page.click("#other-device")
    page.wait_for_selector("img#qr")
    page.wait_for_timeout(1500)  # one QR refresh
    shot(page, "csp-clean-wait")
    page.click("#cancel")
    page.wait_for_url(re.compile(r".*/auth/.*"))
    assert errors == []


def test_qr_refresher_gets_no_400_around_completion(
    page: Any, demo: tuple[str, DemoServices]
) -> None:
    base, services = demo
    bad: list[str] = []
    qr_after_done: list[str] = []
    done = {"at": False}

    def on_response(resp: Any) -> None:
        if resp.status == 400:
            bad.append(f"{resp.status} {resp.url}")
        if done["at"] and "/auth/qr/" in resp.url:
            qr_after_done.append(f"{resp.status} {resp.url}")

    page.on("response", on_response)
    page.goto(base + "/auth/begin/bankid-se?return_to=/me")
    page.click("#other-device")
    page.wait_for_url(re.compile(r".*/auth/flow/.*"))
    qr = page.locator("img#qr")
    qr.wait_for()
    page.wait_for_timeout(1200)  # the refresher runs
    sim = services.broker.simulator("bankid-se")
    assert sim is not None
    payload = page.get_attribute("img#qr", "data-qr")
    assert payload
    assert sim.extra["simulator"].scan(payload, "199001010017") == "ok"
    page.wait_for_url(base + "/me", timeout=45_000)
    done["at"] = True
    page.wait_for_timeout(2500)  # a refresher left running would ask again by now
    assert "high" in page.inner_text("#access-level")
    assert bad == []
    assert qr_after_done == []


def test_bankid_on_this_device_through_the_simulated_app(
    page: Any, demo: tuple[str, DemoServices]
) -> None:
    base, _ = demo
    errors = _csp_errors(page)
    page.goto(base + "/auth/begin/bankid-se?return_to=/me")
    page.click("#same-device")
    page.wait_for_url(re.compile(r".*/auth/flow/.*"))
    assert page.locator("#autostart").count() == 1  # the real app's link stays
    assert page.locator("img#qr").count() == 0
    shot(page, "bankid-same-device")
    page.click("#sim-app")
    # The app returns the browser through the order's returnUrl (flow id and nonce),
    # and the page polls with the nonce until the flow is done (SEB-04).
    page.wait_for_url(base + "/me", timeout=45_000)
    assert page.inner_text("#kind") == "full"
    assert "high" in page.inner_text("#access-level")
    assert errors == []
    shot(page, "bankid-same-device-me")


def test_tupas_shows_the_bank_page_and_completes(page: Any, demo: tuple[str, DemoServices]) -> None:
    base, _ = demo
    errors = _csp_errors(page)
    page.goto(base + "/auth/")
    # The banks are folded under one picker entry (Branding's default grouping).
    page.click("li.group details summary")
    page.click('a[data-provider="tupas-nordea"]')
    # The auto-posted form lands on the simulated bank's page, under the demo's origin.
    page.wait_for_selector('select[name="sim_customer"]')
    assert page.url.startswith(base + "/_sim/tupas-nordea/"), page.url
    shot(page, "tupas-bank")
    page.select_option('select[name="sim_customer"]', "ville")
    page.click('button[name="sim_action"][value="approve"]')
    page.wait_for_url(re.compile(re.escape(base) + r"/(me)?$"))
    page.goto(base + "/me")
    assert page.inner_text("#kind") == "full"
    assert "TESTI" in page.inner_text("#identity") or "VILLE" in page.inner_text("#identity")
    assert errors == []


@pytest.fixture(scope="module")
def demo_localhost() -> Iterator[tuple[str, DemoServices]]:
    with running(public_host="localhost") as (base_url, app):
        yield base_url, app.state.demo


def test_oidc_login_when_reached_as_localhost(
    page: Any, demo_localhost: tuple[str, DemoServices]
) -> None:
    base, _ = demo_localhost
    assert base.startswith("http://localhost:")
    page.goto(base + "/")
    page.click("#login")
    page.click('a[data-provider="ftn"]')
    page.wait_for_selector('button[name="person"]')
    # Not a random loopback port: the OP's page is reached through the demo's host.
    assert page.url.startswith(base + "/_sim/ftn/"), page.url
    page.locator('button[name="person"]').first.click()
    page.wait_for_url(base + "/")
    page.goto(base + "/me")
    assert page.inner_text("#kind") == "full"
    # The same server under its IP address says which host to use.
    other = base.replace("localhost", "127.0.0.1")
    resp = page.goto(other + "/")
    assert resp is not None and resp.status == 421
    assert base.split("//", 1)[1] in page.inner_text("body")
