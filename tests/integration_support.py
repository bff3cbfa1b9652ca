"""Shared set-up of the framework-integration tests: a simulated broker (every provider
on its loopback simulator), direct links texting codes to an outbox, and the logins a
browser does — FTN through the OIDC simulator's consent page and a direct link plus
SMS code — driven through each framework's own test client (a :class:`Client`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import httpx

from authbroker.config import Settings, load_config
from authbroker.engines.links import AsyncDirectLinks, DirectLinks
from authbroker.sms.outbox import OutboxSender

PHONE = "+358401234567"
INVOICE = "INV-7"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


class Client(Protocol):
    """The calls the helpers make, over any framework's test client."""

    def get(self, path: str) -> Reply: ...

    def post(self, path: str, data: dict[str, str]) -> Reply: ...


def sim_settings(base_url: str = "http://testserver") -> Settings:
    return load_config(environment="simulator", overrides={"broker": {"base_url": base_url}})


def link_kwargs(settings: Settings) -> dict[str, Any]:
    return {
        "secret_keys": settings.secret_keys,
        "base_url": settings.base_url,
        "link_path": settings.route_prefix + "/link",
        "service_name": "Example",
    }


def sync_links(broker: Any, outbox: OutboxSender) -> DirectLinks:
    return DirectLinks(broker.store, outbox, **link_kwargs(broker.settings))


def async_links(broker: Any, outbox: OutboxSender) -> AsyncDirectLinks:
    return AsyncDirectLinks(broker.store, outbox, **link_kwargs(broker.settings))


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no csrf token on the page"
    return m.group(1)


def ftn_login(client: Client, return_to: str) -> None:
    """Log in with FTN: the broker's redirect, the simulator's consent page (a real
    HTTP round trip on loopback), the callback through the app."""
    r = client.get("/auth/begin/ftn?" + urlencode({"return_to": return_to}))
    assert r.status == 303, r.text
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        consent = browser.get(r.location)
        assert consent.status_code == 200 and 'name="person"' in consent.text
        txn = consent.text.split('name="txn" value="', 1)[1].split('"', 1)[0]
        person = consent.text.split('name="person" value="', 1)[1].split('"', 1)[0]
        op = urlsplit(r.location)
        back = browser.post(
            f"{op.scheme}://{op.netloc}/op/approve", data={"txn": txn, "person": person}
        )
    assert back.status_code in (302, 303)
    callback = urlsplit(back.headers["location"])
    assert callback.path == "/auth/callback/ftn"
    r = client.get(callback.path + "?" + callback.query)
    assert r.status == 303 and r.location == return_to, (r.status, r.text)


def link_login(client: Client, url: str, outbox: OutboxSender) -> str:
    """Open a direct link, have the code texted, enter it; returns the landing path."""
    r = client.get(urlsplit(url).path)
    assert r.status == 303, r.text
    page = client.get(r.location)
    r = client.post("/auth/link/send", {"csrf": csrf_of(page.text)})
    assert r.status == 303, r.text
    page = client.get("/auth/link/code")
    message = outbox.last(PHONE)
    assert message is not None and message.code()
    r = client.post("/auth/link/verify", {"csrf": csrf_of(page.text), "code": message.code()})
    assert r.status == 303, r.text
    return r.location
