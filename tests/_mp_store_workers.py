"""Application processes for test_store_deployment: each builds its own Broker on a
shared store URL (Redis Cluster, PostgreSQL...), exactly as a second instance would.
Only the store URL, the secret keys and the simulator's overrides cross the process
boundary."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

SECRET_KEYS = "deployment-secret-key-" + "x" * 24


def _broker(store_url: str, name: str, overrides: dict[str, Any]) -> Any:
    from dataclasses import replace

    from authbroker import Broker, load_config
    from authbroker.providers.registry import create_provider
    from authbroker.store import open_store

    settings = load_config(environ={"AUTHBROKER_SECRET_KEYS": SECRET_KEYS})
    # Only the provider under test, built against the simulator the test runs: an
    # application instance that is handed its providers (a Broker never starts one).
    settings = replace(settings, providers={name: settings.provider(name)})
    provider = create_provider(settings.provider(name).with_options(**overrides), settings)
    store = open_store(store_url)
    return Broker(settings, store=store, providers={name: provider})


def begin(store_url: str, name: str, overrides: dict[str, Any]) -> tuple[str, str]:
    broker = _broker(store_url, name, overrides)
    try:
        step = broker.begin(name, binding="browser-1", return_to="/invoices")
        return step.flow_id, step.url
    finally:
        broker.close()


def complete(
    store_url: str, name: str, overrides: dict[str, Any], flow_id: str, url: str
) -> tuple[str, str]:
    import httpx

    from authbroker import Done

    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 302, resp.status_code
    params = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
    broker = _broker(store_url, name, overrides)
    try:
        done = broker.advance(flow_id, params, binding="browser-1")
        assert isinstance(done, Done)
        nid = done.identity.national_id
        return (nid.value if nid else ""), done.return_to
    finally:
        broker.close()
