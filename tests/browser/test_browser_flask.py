"""Real-browser logins on docs/examples/flask_integration_app.py, served by a threaded
werkzeug server on loopback with every provider on its simulator: FTN, Swedish BankID
by QR code, and a direct link plus SMS code (:mod:`browser_support`)."""

from __future__ import annotations

from collections.abc import Iterator
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
    serving_wsgi,
)

from authbroker.config import load_config
from authbroker.engines.links import DirectLinks
from authbroker.sms.outbox import OutboxSender
from authbroker.store.memory import MemoryStore
from authbroker.testing import SimulatedBroker, simulated_broker
from docs_support import load_example

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, SimulatedBroker, DirectLinks, OutboxSender]]:
    module = load_example("flask_integration_app.py", "flask_example_browser")
    outbox = OutboxSender()
    made: dict[str, Any] = {}

    def build(base: str) -> Any:
        settings = load_config(environment="simulator", overrides={"broker": {"base_url": base}})
        made["broker"] = broker = simulated_broker(settings, store=MemoryStore())
        made["links"] = links = DirectLinks(
            broker.store,
            outbox,
            secret_keys=settings.secret_keys,
            base_url=base,
            link_path=settings.route_prefix + "/link",
            service_name="Example",
        )
        return module.create_app(broker, links=links)

    try:
        with serving_wsgi(build) as base:
            yield base, made["broker"], made["links"], outbox
    finally:
        if "broker" in made:
            made["broker"].close()


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
    url = links.issue("acct-1", PHONE, "invoice:approve", "INV-3", ttl=600)
    link_login(page, base, url, outbox, "/invoices/INV-3")
    assert '"kind":"link"' in body_text(page)
