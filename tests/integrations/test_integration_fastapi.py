"""The FastAPI integration and docs/examples/fastapi_app.py, through FastAPI's
TestClient on a simulated async broker: FTN and direct-link logins, dependencies
returning the typed principal, OpenAPI security schemes."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

import docs_support
from authbroker.engines.links import DirectLinks
from authbroker.errors import ConfigError
from authbroker.integrations.fastapi import AuthBroker, by_rules, require
from authbroker.sms.outbox import OutboxSender
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from authbroker.testing import simulated_async_broker
from authbroker.web import PUBLIC, Principal, route
from integration_support import (
    INVOICE,
    PHONE,
    Reply,
    async_links,
    ftn_login,
    link_kwargs,
    link_login,
    sim_settings,
)

BASE = "http://testserver"


def load_example() -> ModuleType:
    return docs_support.load_example("fastapi_app.py", "fastapi_example_app")


class Client:
    def __init__(self, client: TestClient) -> None:
        self.c = client

    def _reply(self, r: Any) -> Reply:
        return Reply(r.status_code, dict(r.headers), r.text)

    def get(self, path: str, **kw: Any) -> Reply:
        return self._reply(self.c.get(path, **kw))

    def post(self, path: str, data: dict[str, str], **kw: Any) -> Reply:
        return self._reply(self.c.post(path, data=data, **kw))


@pytest.fixture
def stack() -> Iterator[tuple[Client, Any, OutboxSender]]:
    mem = MemoryStore()
    broker = simulated_async_broker(sim_settings(), store=AsyncMemoryStore(store=mem))
    outbox = OutboxSender()
    app = load_example().create_app(broker, links=async_links(broker, outbox))
    # A blocking issuer over the same memory, as an application's back office would use.
    issuer = DirectLinks(mem, outbox, **link_kwargs(broker.settings))
    with TestClient(app, base_url=BASE, follow_redirects=False) as tc:
        yield Client(tc), issuer, outbox


def test_example_ftn_login_reaches_require_dependency(stack: Any) -> None:
    client, _, _ = stack
    assert '"kind":"anonymous"' in client.get("/").text
    r = client.get("/ledger")
    assert r.status == 303 and r.location.startswith("/auth/?return_to=%2Fledger")
    assert 'data-provider="ftn"' in client.get(r.location).text
    ftn_login(client, "/ledger")
    r = client.get("/ledger")
    assert r.status == 200, r.text
    assert '"ledger":"ok"' in r.text and '"loa":"SUBSTANTIAL"' in r.text


def test_example_direct_link_and_csrf(stack: Any) -> None:
    client, issuer, outbox = stack
    url = issuer.issue("acct-1", PHONE, "invoice:approve", INVOICE, ttl=600)
    assert link_login(client, url, outbox) == f"/invoices/{INVOICE}"
    r = client.c.get(f"/invoices/{INVOICE}")
    assert r.status_code == 200 and r.json()["kind"] == "link"
    csrf = r.json()["csrf"]
    assert client.c.post(f"/invoices/{INVOICE}", headers={"x-csrf-token": "x"}).status_code == 403
    ok = client.c.post(f"/invoices/{INVOICE}", headers={"x-csrf-token": csrf})
    assert ok.status_code == 200 and ok.json()["approved"] is True
    assert "step_up=1" in client.get("/invoices/INV-8").location
    assert "step_up=1" in client.get("/ledger").location


def test_example_bearer_route_and_openapi_schemes(stack: Any) -> None:
    client, _, _ = stack
    r = client.get("/api/mobile/invoices")
    assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.text == '{"error":"missing_token"}'
    r = client.get("/api/mobile/invoices", headers={"authorization": "Bearer nope"})
    assert r.status == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    spec = client.c.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["authbroker_bearer"] == {"type": "http", "scheme": "bearer"}
    assert schemes["authbroker_session"]["in"] == "cookie"
    assert spec["paths"]["/api/mobile/invoices"]["get"]["security"] == [{"authbroker_bearer": []}]
    assert spec["paths"]["/ledger"]["get"]["security"] == [{"authbroker_session": []}]
    assert not any(p.startswith("/auth") for p in spec["paths"])


def test_rules_dependency_and_missing_init_fail_closed() -> None:
    broker = simulated_async_broker(sim_settings(), store=AsyncMemoryStore())
    app = FastAPI(dependencies=[Depends(by_rules)])
    AuthBroker(broker, rules=[route("/open", PUBLIC)]).init_app(app)

    @app.get("/open")
    async def open_page() -> str:
        return "open"

    @app.get("/closed")
    async def closed() -> str:
        return "closed"

    with TestClient(app, base_url=BASE, follow_redirects=False) as tc:
        assert tc.get("/open").status_code == 200
        assert tc.get("/closed").status_code == 303  # WEB-05: deny by default
    bare = FastAPI()

    @bare.get("/x")
    async def x(user: Annotated[Principal, Depends(require())]) -> str:
        return "x"

    with (
        TestClient(bare, base_url=BASE) as tc,
        pytest.raises(ConfigError),
    ):
        tc.get("/x")


def test_hosted_pages_refuse_oversized_bodies(stack: Any) -> None:
    client, _, _ = stack
    r = client.c.post("/auth/link/send", content=b"x" * (70 * 1024))
    assert r.status_code == 413
