"""``GET /auth/health``: store round trip, OIDC metadata cache ages, nothing secret."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from authbroker.errors import StoreUnavailable
from authbroker.store.memory import MemoryStore
from oidc_web_support import oidc_app, web_login
from web_support import Stack, build


@pytest.fixture(params=["asgi", "wsgi"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from build(request.param, tmp_path)


class DownStore(MemoryStore):
    """A store whose every read fails as an unreachable Redis or database does."""

    def get(self, key: str) -> bytes | None:
        raise StoreUnavailable("store down", code="store_unavailable")


def test_health_up_without_oidc_providers(stack: Stack) -> None:
    r = stack.client.get("/auth/health")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    assert r.json() == {"status": "ok", "store": "ok", "providers": {}}
    assert stack.mem.get("health:probe") is None  # the probe writes nothing


def test_health_store_down_is_503(stack: Stack) -> None:
    stack.mem.close()  # every later operation raises StoreUnavailable
    r = stack.client.get("/auth/health")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "store": "unavailable", "providers": {}}


def test_health_store_raising_store_unavailable_on_oidc_app() -> None:
    with oidc_app(store=DownStore()) as (client, _broker, _):
        r = client.get("/auth/health")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable" and body["store"] == "unavailable"


def test_health_reports_metadata_ages_without_fetching() -> None:
    with oidc_app() as (client, broker, _):
        r = client.get("/auth/health")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ok"
        # Only the OpenID Connect providers, none built or fetched yet.
        assert set(body["providers"]) == {"ftn", "tara", "bankid-no", "broker-oidc"}
        for entry in body["providers"].values():
            assert entry == {"discovery_age": None, "jwks_age": None, "fresh": None}
        op = web_login(client, broker, "ftn")
        discovery, jwks = op.count("discovery"), op.count("jwks")
        body = client.get("/auth/health").json()
        ftn = body["providers"]["ftn"]
        assert ftn["fresh"] is True
        assert 0 <= ftn["discovery_age"] <= 5 and 0 <= ftn["jwks_age"] <= 5
        # Nothing fetched on the health path.
        assert (op.count("discovery"), op.count("jwks")) == (discovery, jwks)
        # Stale caches: degraded, still 200 (the next login refetches them).
        provider = broker.engine.provider("ftn")
        later = provider._clock() + 10 * 86400
        provider._clock = lambda: later
        provider.jwks._now = lambda: later
        r = client.get("/auth/health")
        assert r.status_code == 200
        ftn = r.json()["providers"]["ftn"]
        assert r.json()["status"] == "degraded"
        assert ftn["fresh"] is False and ftn["discovery_age"] >= 10 * 86400 - 5
        assert (op.count("discovery"), op.count("jwks")) == (discovery, jwks)


def test_health_json_reveals_nothing_secret() -> None:
    with oidc_app() as (client, broker, _):
        web_login(client, broker, "ftn")
        text = client.get("/auth/health").text
        body = json.loads(text)
        assert set(body) == {"status", "store", "providers"}
        for entry in body["providers"].values():
            assert set(entry) == {"discovery_age", "jwks_age", "fresh"}
        assert "http" not in text and "127.0.0.1" not in text
        assert not re.search(r'"(kid|keys|n|d|count|client_id|secret)"', text)
        secret = broker.settings.secret_keys[0]
        assert secret not in text
