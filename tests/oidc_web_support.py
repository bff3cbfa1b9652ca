"""A web app on a simulated broker with real OIDC simulators, and a browser for it.

The browser is an httpx client on the WSGI app (the broker's own base URL, so the
flow and session cookies apply); the simulator's front channel is reached with a
second client, as a real browser follows the redirect to the provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from authbroker.audit import AuditLog, MemorySink
from authbroker.config import Settings, load_config
from authbroker.store.base import StateStore
from authbroker.store.memory import MemoryStore
from authbroker.testing import simulated_broker
from authbroker.testing.simulators.oidc import OpenIdProviderSim
from authbroker.web import require, route
from authbroker.web.wsgi import WsgiAuthMiddleware
from web_support import wsgi_app

OUT = httpx.Client(timeout=10)


def oidc_settings(**broker: Any) -> Settings:
    overrides: dict[str, Any] = {"broker": {"return_to_origins": ["https://app.example"], **broker}}
    return load_config(environ={}, overrides=overrides)


@contextmanager
def oidc_app(
    store: StateStore | None = None, settings: Settings | None = None, **web: Any
) -> Iterator[tuple[httpx.Client, Any, MemorySink]]:
    """(browser, broker, audit sink) of a WSGI app over the simulators."""
    settings = settings or oidc_settings()
    sink = MemorySink()
    broker = simulated_broker(
        settings, store=MemoryStore() if store is None else store, audit=AuditLog([sink])
    )
    app = WsgiAuthMiddleware(wsgi_app, broker=broker, rules=[route("/full", require())], **web)
    client = httpx.Client(
        transport=httpx.WSGITransport(app=app),
        base_url=settings.base_url,
        follow_redirects=False,
    )
    try:
        with client:
            yield client, broker, sink
    finally:
        broker.close()


def op_of(broker: Any, name: str) -> OpenIdProviderSim:
    sim = broker.simulator(name)
    assert sim is not None
    op = sim.extra["op"]
    assert isinstance(op, OpenIdProviderSim)
    return op


def web_login(client: httpx.Client, broker: Any, name: str = "ftn") -> OpenIdProviderSim:
    """Log ``client`` in through provider ``name`` (auto-approved test person)."""
    r = client.get(f"/auth/begin/{name}", params={"return_to": "/full"})
    assert r.status_code == 303, r.text
    op = op_of(broker, name)
    op.control.auto_approve = True
    back = OUT.get(r.headers["location"])
    assert back.status_code == 302, back.text
    target = urlsplit(back.headers["location"])
    r = client.get(f"{target.path}?{target.query}")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/full"
    return op
