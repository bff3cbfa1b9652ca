"""The Web eID page in a real browser (headless Debian chromium, Playwright) against the
demo: a fake Web eID extension, injected with ``page.add_init_script``, speaks the
extension's window-messaging protocol as the official library expects it
(https://github.com/web-eid/web-eid.js, src/services/WebExtensionService.ts):
``web-eid:authenticate`` in, ``web-eid:authenticate-ack`` then ``-success`` (a real
token from the simulator's test card) or ``-failure`` out. Without the extension no
ack comes within the library's 1 s handshake and the page says so, localized.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import test_browser_demo as browser_demo

from authbroker.web.demo import DemoServices
from authbroker.web.i18n import translate

pytestmark = pytest.mark.browser

# The demo server and the chromium page of the demo suite, as this module's fixtures.
demo = browser_demo.demo
page = browser_demo.page
shot = browser_demo.shot

#: The fake extension's content script. ``MODE`` is "success" or an error code; the
#: token comes from Python (``webeidSign``): the simulator's card signs the nonce.
FAKE_EXTENSION = """
(() => {
  const mode = %s;
  window.addEventListener("message", async (event) => {
    if (event.source !== window || !event.data) { return; }
    const request = event.data;
    if (request.action !== "web-eid:authenticate") { return; }
    window.postMessage({action: "web-eid:authenticate-ack"}, window.location.origin);
    const answer = await window.webeidSign(JSON.stringify(request));
    if (mode === "success") {
      window.postMessage(Object.assign({action: "web-eid:authenticate-success"},
                                       JSON.parse(answer)), window.location.origin);
    } else {
      window.postMessage({action: "web-eid:authenticate-failure",
                          error: {code: mode, message: "from the fake extension"}},
                         window.location.origin);
    }
  });
})();
"""


def _install_extension(tab: Any, base: str, services: DemoServices, mode: str) -> list[Any]:
    """The fake extension in ``tab``; returns the requests it receives."""
    requests: list[Any] = []
    sim = services.broker.simulator("web-eid")
    assert sim is not None

    def sign(raw: str) -> str:
        request = json.loads(raw)
        requests.append(request)
        return str(sim.extra["make_token"](base, request["challengeNonce"]))

    tab.expose_function("webeidSign", sign)
    tab.add_init_script(FAKE_EXTENSION % json.dumps(mode))
    return requests


def _open_card_page(tab: Any, base: str, lang: str) -> str:
    tab.goto(base + f"/auth/begin/web-eid?return_to=/me&lang={lang}")
    tab.wait_for_selector("#webeid-start")
    challenge = tab.get_attribute("[data-challenge]", "data-challenge")
    assert challenge
    return challenge


def test_extension_present_completes_the_login(
    page: Any,
    demo: tuple[str, DemoServices],
) -> None:
    base, services = demo
    requests = _install_extension(page, base, services, "success")
    challenge = _open_card_page(page, base, "et")
    page.click("#webeid-start")
    page.wait_for_url(base + "/me", timeout=30_000)
    assert page.inner_text("#kind") == "full"
    assert "high" in page.inner_text("#access-level")
    shot(page, "webeid-me")
    # The request as web-eid.js sends it (src/web-eid.ts authenticate()).
    assert len(requests) == 1
    request = requests[0]
    assert request["action"] == "web-eid:authenticate"
    assert re.fullmatch(r"\d+\.\d+\.\d+", request["libraryVersion"])
    assert request["challengeNonce"] == challenge
    assert request["options"]["lang"] == "et"


@pytest.mark.parametrize(
    ("mode", "key", "lang"),
    [
        ("ERR_WEBEID_USER_CANCELLED", "webeid.cancelled", "nb"),
        ("ERR_WEBEID_NATIVE_UNAVAILABLE", "webeid.no_native", "fi"),
    ],
)
def test_extension_failure_shows_a_localized_message(
    page: Any,
    demo: tuple[str, DemoServices],
    mode: str,
    key: str,
    lang: str,
) -> None:
    base, services = demo
    _install_extension(page, base, services, mode)
    _open_card_page(page, base, lang)
    page.click("#webeid-start")
    page.wait_for_selector("#status.error", timeout=10_000)
    assert page.inner_text("#status") == translate(lang, key)
    assert page.url.startswith(base + "/auth/begin/web-eid")  # no login happened


@pytest.mark.parametrize("lang", ["et", "sv"])
def test_extension_missing_shows_a_localized_message(
    page: Any,
    demo: tuple[str, DemoServices],
    lang: str,
) -> None:
    base, _ = demo
    _open_card_page(page, base, lang)
    page.click("#webeid-start")
    # web-eid.js: 1 s extension load delay + 1 s handshake without an ack.
    page.wait_for_selector("#status.error", timeout=10_000)
    assert page.inner_text("#status") == translate(lang, "webeid.no_extension")
    assert page.is_enabled("#webeid-start")  # the user may retry after installing
    shot(page, f"webeid-no-extension-{lang}")
