"""Shared set-up of the web tests: the same app behind the ASGI and the WSGI adapter.

Stand-in providers (the broker's rules are tested elsewhere; here only the web
layer matters) and real sessions, direct links (outbox SMS) and mobile tokens.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.testclient import TestClient

from authbroker import AsyncBroker, Broker
from authbroker.audit import AuditLog, MemorySink
from authbroker.config import ProviderConfig, Settings
from authbroker.credential_store import CredentialStore
from authbroker.engines.links import AsyncDirectLinks, DirectLinks
from authbroker.engines.tokens import AsyncTokenIssuer, TokenIssuer
from authbroker.errors import InvalidInput
from authbroker.flow import Challenge, Display, Gen, Poll, Redirect, store_get
from authbroker.identity import Identity, Loa, NationalId
from authbroker.providers.base import AdvanceContext, BeginContext, Next, ProviderInfo
from authbroker.sms.outbox import OutboxSender
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from authbroker.web import PUBLIC, require, require_bearer, route
from authbroker.web.asgi import AuthMiddleware
from authbroker.web.wsgi import PRINCIPAL_KEY, WsgiAuthMiddleware

BASE = "http://testserver"
SECRET = "k" * 48
PHONE = "+358401234567"
HETU = "131052-308T"
MOBILE_SCOPE = "invoices:read"


class EchoProvider:
    """Redirects to a fake IdP; the callback must bring back the per-flow secret."""

    flow_ttl = 600.0

    def __init__(self, name: str, loa: Loa) -> None:
        self.info = ProviderInfo(name, "echo", {"en": name}, loa, "simulator")
        self.loa = loa
        self.name = name

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        secret = secrets.token_urlsafe(16)
        yield from store_get("noop")
        return Next(Redirect(f"https://idp.example/auth?s={secret}"), {"secret": secret})

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Next | Identity]:
        yield from store_get("noop")
        if params.get("boom"):
            raise RuntimeError("provider bug")  # WEB-04: an unexpected exception
        if not hmac.compare_digest(params.get("secret", ""), data["secret"]):
            raise InvalidInput("bad secret", code="bad_secret")
        return Identity(
            provider=self.name,
            method="test",
            subject="s-1",
            national_id=NationalId.parse(HETU, "FI"),
            loa=self.loa,
            authenticated_at=datetime.now(UTC),
            given_name="Maija",
            family_name="Meikäläinen",
        )


class QrProvider:
    """Polls twice, showing a QR payload, then completes."""

    flow_ttl = 120.0

    def __init__(self) -> None:
        self.info = ProviderInfo("qr", "qr", {"en": "QR"}, Loa.HIGH, "simulator")

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        yield from store_get("noop")
        return Next(Poll(1.0, Display(status="pending", qr="qr-0")), {"ticks": 0, "interval": 1})

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Next | Identity]:
        yield from store_get("noop")
        ticks = int(data["ticks"]) + 1
        if ticks < 2:
            display = Display(status="pending", qr=f"qr-{ticks}", message={"en": "Scan"})
            return Next(Poll(1.0, display), {"ticks": ticks, "interval": 1})
        return Identity("qr", "test", "q-1", None, Loa.HIGH, datetime.now(UTC))

    def refresh(self, data: Mapping[str, Any], now: float) -> Display:
        return Display(status="pending", qr=f"qr-{data['ticks']}")


class ChallengeProvider:
    flow_ttl = 300.0

    def __init__(self) -> None:
        self.info = ProviderInfo("card", "card", {"en": "Card"}, Loa.HIGH, "simulator")

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        nonce = secrets.token_urlsafe(32)
        yield from store_get("noop")
        return Next(Challenge(nonce), {"nonce": nonce})

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Next | Identity]:
        yield from store_get("noop")
        if params.get("token") != "signed:" + data["nonce"]:
            raise InvalidInput("bad token", code="bad_signature")
        return Identity("card", "idcard", "c-1", None, Loa.HIGH, datetime.now(UTC))


def _config(name: str, protocol: str, loa: Loa) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        protocol=protocol,
        environment="simulator",
        display_name={"en": name.title(), "fi": name.upper(), "sv": name.lower()},
        loa=loa,
        country="FI",
        options={},
    )


def make_settings() -> Settings:
    return Settings(
        base_url=BASE,
        secret_keys=(SECRET,),
        providers={
            "echo": _config("echo", "echo", Loa.HIGH),
            "weak": _config("weak", "echo", Loa.LOW),
            "qr": _config("qr", "qr", Loa.HIGH),
            "card": _config("card", "card", Loa.HIGH),
        },
    )


def providers() -> dict[str, Any]:
    return {
        "echo": EchoProvider("echo", Loa.HIGH),
        "weak": EchoProvider("weak", Loa.LOW),
        "qr": QrProvider(),
        "card": ChallengeProvider(),
    }


RULES = [
    route("/public", PUBLIC),
    route("/full", require()),
    route("/high", require(loa=Loa.HIGH)),
    route("/invoices/{inv}", require(scope="invoice:approve", resource="{inv}")),
    route("/api/mobile/*", require_bearer(MOBILE_SCOPE)),
]


def _describe(principal: Any, method: str, path: str) -> bytes:
    return json.dumps(
        {
            "kind": principal.kind,
            "user": principal.user_id,
            "path": path,
            "method": method,
            "loa": principal.loa.name if principal.loa else None,
            "scopes": principal.scopes,
        }
    ).encode()


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """A framework-free ASGI app echoing who the middleware said is calling."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["auth"] is scope["user"]
    body = _describe(scope["user"], scope["method"], scope["path"])
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    principal = environ[PRINCIPAL_KEY]
    body = _describe(principal, environ["REQUEST_METHOD"], environ["PATH_INFO"])
    start_response("200 OK", [("content-type", "application/json")])
    return [body]


@dataclass
class Stack:
    kind: str
    client: httpx.Client
    broker: Any
    mem: MemoryStore
    links: DirectLinks  # sync issuer over the shared store (tests issue links with it)
    outbox: OutboxSender
    tokens: TokenIssuer
    sink: MemorySink
    middleware: Any

    # -- helpers ---------------------------------------------------------------------

    def fresh_client(self) -> httpx.Client:
        """Another browser (empty cookie jar) on the same app."""
        return _client(self.kind, self.middleware)

    def login(self, provider: str = "echo", return_to: str = "/full") -> httpx.Response:
        return login(self.client, provider, return_to)

    def issue_link(self, resource: str = "INV-1", user: str = "acct-1") -> str:
        return self.links.issue(user, PHONE, "invoice:approve", resource, ttl=3600)

    def link_login(self, resource: str = "INV-1", client: httpx.Client | None = None) -> str:
        """Open a direct link and enter its code in ``client``; returns the link id."""
        c = client or self.client
        url = self.issue_link(resource)
        path = urlsplit(url).path
        r = c.get(path)
        assert r.status_code == 303, r.text
        page = c.get(r.headers["location"])
        r = c.post("/auth/link/send", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 303, r.text
        page = c.get("/auth/link/code")
        code = self.outbox.last(PHONE)
        assert code is not None
        r = c.post("/auth/link/verify", data={"csrf": csrf_of(page.text), "code": code.code()})
        assert r.status_code == 303, r.text
        assert r.headers["location"] == f"/invoices/{resource}"
        return self.links.link_id(path.rsplit("/", 1)[1])

    def bearer(self) -> str:
        return self.tokens.issue("acct-1", device_id="d1").access_token

    def session_cookie(self) -> str | None:
        return self.client.cookies.get("ab_session")


def login(client: httpx.Client, provider: str = "echo", return_to: str = "/full") -> httpx.Response:
    r = client.get(f"/auth/begin/{provider}", params={"return_to": return_to})
    assert r.status_code == 303, r.text
    secret = parse_qs(urlsplit(r.headers["location"]).query)["s"][0]
    r = client.get(f"/auth/callback/{provider}", params={"secret": secret})
    assert r.status_code == 303, r.text
    return r


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html) or re.search(r'data-csrf="([^"]+)"', html)
    assert m, "no csrf token on the page"
    return m.group(1)


def _client(kind: str, middleware: Any) -> httpx.Client:
    if kind == "asgi":
        return TestClient(middleware, base_url=BASE, follow_redirects=False)
    transport = httpx.WSGITransport(app=middleware)
    return httpx.Client(transport=transport, base_url=BASE, follow_redirects=False)


def build(kind: str, tmp: Path) -> Iterator[Stack]:
    settings = make_settings()
    mem = MemoryStore()
    sink = MemorySink()
    outbox = OutboxSender()
    link_opts: dict[str, Any] = {
        "secret_keys": settings.secret_keys,
        "base_url": BASE,
        "link_path": "/auth/link",
    }
    issuer = TokenIssuer(
        CredentialStore(f"sqlite:///{tmp / 'cred.db'}"),
        issuer=BASE,
        audience=BASE + "/api/mobile",
        mobile_scopes=[MOBILE_SCOPE, "other:read"],
    )
    sync_links = DirectLinks(mem, outbox, **link_opts)
    broker: Any
    if kind == "asgi":
        broker = AsyncBroker(
            settings,
            store=AsyncMemoryStore(store=mem),
            providers=providers(),
            audit=AuditLog([sink]),
        )
        middleware: Any = AuthMiddleware(
            asgi_app,
            broker=broker,
            # The links share the broker's store: each request runs in its runtime.
            links=AsyncDirectLinks(broker.store, outbox, **link_opts),
            tokens=AsyncTokenIssuer(issuer),
            rules=RULES,
            mobile_audience=BASE + "/api/mobile",
            link_landing=lambda scope, resource: f"/invoices/{resource}",
        )
    else:
        broker = Broker(settings, store=mem, providers=providers(), audit=AuditLog([sink]))
        middleware = WsgiAuthMiddleware(
            wsgi_app,
            broker=broker,
            links=sync_links,
            tokens=issuer,
            rules=RULES,
            mobile_audience=BASE + "/api/mobile",
            link_landing=lambda scope, resource: f"/invoices/{resource}",
        )
    client = _client(kind, middleware)
    with client:
        yield Stack(kind, client, broker, mem, sync_links, outbox, issuer, sink, middleware)
