"""The Flask extension and docs/examples/flask_integration_app.py, through Flask's test
client on a simulated broker: FTN and direct-link logins, per-route guards, the table."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from flask import Flask

import docs_support
from authbroker.errors import ConfigError
from authbroker.integrations.flask import AuthBroker, current_principal, login_required
from authbroker.sms.outbox import OutboxSender
from authbroker.store.memory import MemoryStore
from authbroker.testing import simulated_broker
from authbroker.web import PUBLIC, route
from integration_support import (
    INVOICE,
    PHONE,
    Reply,
    ftn_login,
    link_login,
    sim_settings,
    sync_links,
)


def load_example() -> ModuleType:
    return docs_support.load_example("flask_integration_app.py", "flask_integration_app")


class FlaskClient:
    def __init__(self, app: Flask) -> None:
        self.c = app.test_client()

    def _reply(self, r: Any) -> Reply:
        return Reply(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.get_data(True))

    def get(self, path: str, **kw: Any) -> Reply:
        return self._reply(self.c.get(path, **kw))

    def post(self, path: str, data: dict[str, str], **kw: Any) -> Reply:
        return self._reply(self.c.post(path, data=data, **kw))


@pytest.fixture
def stack() -> Iterator[tuple[Flask, Any, OutboxSender]]:
    broker = simulated_broker(sim_settings(), store=MemoryStore())
    outbox = OutboxSender()
    links = sync_links(broker, outbox)
    app = load_example().create_app(broker, links=links)
    try:
        yield app, links, outbox
    finally:
        broker.close()


def test_example_ftn_login_reaches_login_required_route(stack: Any) -> None:
    app, _, _ = stack
    client = FlaskClient(app)
    assert "anonymous" in client.get("/").text
    r = client.get("/ledger")
    assert r.status == 303 and r.location.startswith("/auth/?return_to=%2Fledger")
    picker = client.get(r.location)
    assert picker.status == 200 and 'data-provider="ftn"' in picker.text
    ftn_login(client, "/ledger")
    r = client.get("/ledger")
    assert r.status == 200, r.text
    assert '"ledger":"ok"' in r.text.replace(" ", "") and "SUBSTANTIAL" in r.text


def test_example_direct_link_grants_only_its_invoice(stack: Any) -> None:
    app, links, outbox = stack
    client = FlaskClient(app)
    url = links.issue("acct-1", PHONE, "invoice:approve", INVOICE, ttl=600)
    assert link_login(client, url, outbox) == f"/invoices/{INVOICE}"
    r = client.get(f"/invoices/{INVOICE}")
    assert r.status == 200 and '"kind":"link"' in r.text.replace(" ", "")
    # POST with the session's CSRF token works; without it the app refuses.
    csrf = r.text.split('"csrf":"', 1)[1].split('"', 1)[0]
    assert client.post(f"/invoices/{INVOICE}", {"csrf": "x"}).status == 403
    ok = client.post(f"/invoices/{INVOICE}", {"csrf": csrf})
    assert ok.status == 200 and '"approved":true' in ok.text.replace(" ", "")
    # another invoice, and a full-session page, step up instead
    other = client.get("/invoices/INV-8")
    assert other.status == 303 and "step_up=1" in other.location
    assert "step_up=1" in client.get("/ledger").location


def test_example_bearer_route_refuses_cookies_and_missing_tokens(stack: Any) -> None:
    app, _, _ = stack
    client = FlaskClient(app)
    r = client.get("/api/mobile/invoices")
    assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = client.get("/api/mobile/invoices?access_token=x")
    assert r.status == 400


def _app(**options: Any) -> tuple[Flask, Any]:
    broker = simulated_broker(sim_settings(), store=MemoryStore())
    app = Flask("t")

    @app.get("/open")
    def open_page() -> str:
        return current_principal.kind

    @app.get("/guarded")
    @login_required(loa="high")
    def guarded() -> str:
        return "secret"

    AuthBroker(app, broker=broker, **options)
    return app, broker


def test_undecorated_routes_are_denied_by_default_and_rules_apply() -> None:
    app, broker = _app()
    try:
        client = FlaskClient(app)
        assert client.get("/open").status == 303  # WEB-05: deny by default
        assert client.get("/guarded").status == 303
    finally:
        broker.close()
    app, broker = _app(rules=[route("/open", PUBLIC)])
    try:
        client = FlaskClient(app)
        r = client.get("/open")
        assert r.status == 200 and r.text == "anonymous"
    finally:
        broker.close()


def test_guard_decorator_without_extension_fails_closed() -> None:
    app = Flask("bare")

    @app.get("/guarded")
    @login_required()
    def guarded() -> str:
        return "secret"

    app.testing = True
    with pytest.raises(ConfigError):
        app.test_client().get("/guarded")


def test_hosted_pages_refuse_oversized_bodies(stack: Any) -> None:
    app, _, _ = stack
    r = FlaskClient(app).post("/auth/link/send", {"csrf": "x" * (70 * 1024)})
    assert r.status == 413


def test_guard_before_request_uses_route_params_for_resource(stack: Any) -> None:
    app, links, outbox = stack
    client = FlaskClient(app)
    url = links.issue("acct-1", PHONE, "invoice:approve", "INV-9", ttl=600)
    link_login(client, url, outbox)
    assert client.get("/invoices/INV-9").status == 200
    assert client.get(f"/invoices/{INVOICE}").status == 303
