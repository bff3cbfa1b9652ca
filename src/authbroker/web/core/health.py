"""``GET {prefix}/health``: is this instance fit to take traffic (for load balancers)?

Two questions, both answered without touching a provider:

* the state store answers one cheap round trip (a ``get`` of a key nobody writes);
  :class:`~authbroker.errors.StoreUnavailable` makes the answer 503, since no flow,
  session or link can work without it;
* each OpenID Connect provider's discovery document and JWKS: their cache age and
  whether both are within their TTL, read from the caches only (nothing is fetched on
  the request path, so a provider outage cannot slow or fail the probe). An adapter
  not built yet is not built here; it and a cache never filled report ``fresh: null``.
  A stale cache is reported (``"status": "degraded"``) but keeps the 200: the next
  login refetches it, and pulling every instance out of the pool because a provider
  was idle would take the service down for nothing.

The JSON names the configured providers and ages only: no URLs, keys, counters or
error texts (a public endpoint must not reveal usage or configuration secrets).
"""

from __future__ import annotations

from typing import Any

from ...errors import StoreUnavailable
from ...flow import store_get
from .pages import Pages
from .requests import Handler, WebRequest, WebResponse

__all__ = ["HEALTH_PROBE_KEY", "HealthRoutes"]

#: The key the store probe reads; never written, so the probe changes no state.
HEALTH_PROBE_KEY = "health:probe"


class HealthRoutes(Pages):
    """The health handler (mixed into the web core)."""

    def _provider_health(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, config in self.settings.providers.items():
            if config.protocol != "oidc":
                continue
            adapter = self.flows.built_provider(name)
            status = getattr(adapter, "metadata_status", None)
            cold: dict[str, Any] = {"discovery_age": None, "jwks_age": None, "fresh": None}
            out[name] = dict(status()) if callable(status) else cold
        return out

    def health(self, req: WebRequest, lang: str) -> Handler:
        store_ok = True
        try:
            yield from store_get(HEALTH_PROBE_KEY)
        except StoreUnavailable:
            store_ok = False
        providers = self._provider_health()
        if not store_ok:
            status = "unavailable"
        elif all(p["fresh"] is not False for p in providers.values()):
            status = "ok"
        else:
            status = "degraded"
        body = {
            "status": status,
            "store": "ok" if store_ok else "unavailable",
            "providers": providers,
        }
        return WebResponse.json(body, 200 if store_ok else 503)
