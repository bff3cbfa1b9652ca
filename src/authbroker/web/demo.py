"""``authbroker demo``: a small accounting app on Starlette with every provider simulated.

What it shows:

* the hosted login pages at ``/auth/`` for every built-in provider, each talking to
  its simulator (FTN and the other OIDC providers show the simulator's consent page;
  Swedish BankID shows the animated QR and a "simulator: scan" button; Web eID signs
  with the simulator's test card);
* ``/me``: the normalized identity and the access level of the current session;
* ``/books``: a full-access page (strong identification, LoA substantial);
* an invoice-approval direct link, issued at start-up and printed on the home page;
  opening it texts a one-time code to the demo phone — read it on ``/outbox``
  (demo only: a real deployment sends the SMS through a gateway);
* ``/api/mobile/invoices``: a mobile API route that takes only bearer tokens
  (``POST /demo/mobile-token`` hands one out for the demo account).

The simulators' browser pages (the OIDC providers' consent pages, the TUPAS test
bank) are served under the demo's own origin at ``/_sim/<provider>/`` (see
:class:`SimulatorPages`), so the demo works wherever its one port is reachable: in a
container, through an SSH tunnel, on a remote development box. The back-channel
calls stay on loopback inside the process. The demo answers only for the host of its
base URL (``--base-url``); a request for another host gets a page naming both.

Everything lives in memory.

Why one module past the usual ~600 lines: the demo is an example application a
newcomer reads from top to bottom (routes, pages, the simulator helpers it mounts);
split into pieces it would stop reading like one app.
"""

from __future__ import annotations

import contextlib
import html
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import jinja2
import markupsafe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..config import Settings, load_config
from ..engines.links import AsyncDirectLinks
from ..errors import AccessDenied, AuthBrokerError, InvalidInput
from ..identity import Loa
from ..kernel.effects import Gen
from ..providers.base import LOOPBACK_HOSTS
from ..sms.outbox import OutboxMessage, OutboxSender
from ..store.memory import AsyncMemoryStore
from ..testing import AsyncSimulatedBroker, simulated_async_broker
from ..testing.simulators.server import SimRequest
from .asgi import ASGIApp, AuthMiddleware, Receive, Scope, Send, _read_body, _send
from .core import (
    PUBLIC,
    Principal,
    WebCore,
    WebRequest,
    WebResponse,
    require,
    require_bearer,
    route,
    security_headers,
)

__all__ = [
    "DEMO_PHONE",
    "DEMO_USER",
    "EXIT_ADDRESS_IN_USE",
    "SIM_PREFIX",
    "DemoServices",
    "create_app",
    "running",
    "serve",
]

DEMO_USER = "acct-demo"
DEMO_PHONE = "+358401234567"
DEMO_INVOICE = "INV-1001"
MOBILE_SCOPE = "invoices:read"
#: Where the simulators' browser pages live under the demo's origin.
SIM_PREFIX = "/_sim"
#: ``authbroker demo`` exit code when the address cannot be bound (port taken, host
#: not on this machine, privileged port): documented in docs/cli.md.
EXIT_ADDRESS_IN_USE = 3
#: ``authbroker demo`` exit code for an unusable ``--base-url`` (the CLI's usage code).
EXIT_USAGE = 2

INVOICES: dict[str, dict[str, str]] = {
    "INV-1001": {"supplier": "Paperitehdas Oy", "amount": "1 240,00 EUR", "due": "2025-12-31"},
    "INV-1002": {"supplier": "Kahvila Aroma Ab", "amount": "86,50 EUR", "due": "2025-12-15"},
}

_TEMPLATES = {
    "base": """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · Demo accounting</title>
<style nonce="{{ nonce }}">
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f6fa;color:#1d2433}
header{background:#0b5cad;color:#fff;padding:.8rem 1.5rem;display:flex;gap:1.2rem;
align-items:center}
header a{color:#fff} main{max-width:48rem;margin:1.5rem auto;background:#fff;padding:1.5rem;
border-radius:12px} code,pre{background:#eef1f6;padding:.15rem .3rem;border-radius:4px;
word-break:break-all;white-space:pre-wrap} table{border-collapse:collapse}
td,th{padding:.3rem .8rem;border-bottom:1px solid #dde3ee;text-align:left}
.btn{padding:.5rem 1rem;border-radius:6px;border:1px solid #0b5cad;background:#0b5cad;color:#fff}
main a{overflow-wrap:anywhere} header form{margin:0}
</style></head><body><header><strong>Demo accounting</strong><a href="/">Home</a>
<a href="/me">Me</a><a href="/books">Books</a><a href="/outbox">SMS outbox</a>
{% if principal.is_authenticated and principal.csrf_token %}
<form method="post" action="/auth/logout">
<input type="hidden" name="csrf" value="{{ principal.csrf_token }}">
<button class="btn" id="logout">Log out</button></form>
{% else %}<a href="/auth/" id="header-login">Log in</a>{% endif %}
</header><main>{{ content }}</main></body></html>""",
    "home": """<h1>Demo accounting</h1>
<p>Signed in as: <strong id="who">{{ principal.display_name or "nobody" }}</strong>
(<span id="level">{{ principal.access_level }}</span>)</p>
<ul><li><a href="/auth/" id="login">Identify yourself</a>
(every provider runs on its simulator)</li>
<li><a href="/books">Books</a> — needs strong identification</li>
<li>Invoice approval direct link for {{ invoice }} (sent to the supplier contact by e-mail
in real life):<br><a id="direct-link" href="{{ link }}">{{ link }}</a></li>
<li><a href="/outbox">SMS outbox</a> — where the one-time codes go (demo only)</li></ul>""",
    "me": """<h1>Who am I</h1>
<table><tr><th>Access level</th><td id="access-level">{{ principal.access_level }}</td></tr>
<tr><th>Kind</th><td id="kind">{{ principal.kind }}</td></tr>
<tr><th>User</th><td>{{ principal.user_id or "" }}</td></tr>
{% if principal.kind == "link" %}<tr><th>Scope</th><td>{{ principal.scope }}
{{ principal.resource }}</td></tr>{% endif %}</table>
{% if identity %}<h2>Normalized identity</h2><table id="identity">
{% for k, v in identity %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
{% endif %}""",
    "books": """<h1>Books</h1><p id="books">General ledger for {{ principal.display_name }}.</p>
<table><tr><th>Account</th><th>Balance</th></tr><tr><td>1910 Bank</td><td>12 400,00</td></tr>
<tr><td>2871 Payables</td><td>-1 326,50</td></tr></table>""",
    "invoice": """<h1>Invoice {{ id }}</h1>
<table><tr><th>Supplier</th><td>{{ inv.supplier }}</td></tr>
<tr><th>Amount</th><td>{{ inv.amount }}</td></tr><tr><th>Due</th><td>{{ inv.due }}</td></tr>
<tr><th>Status</th><td id="status">{{ status }}</td></tr></table>
<form method="post" action="/invoices/{{ id }}/approve">
<input type="hidden" name="csrf" value="{{ principal.csrf_token or '' }}">
<p><button class="btn" id="approve">Approve invoice</button></p></form>
<p>Access: <span id="access-level">{{ principal.access_level }}</span></p>""",
    "outbox": """<h1>SMS outbox (demo only)</h1>
<p>Messages the demo "sent". A real deployment uses an SMS gateway.</p>
<table id="outbox"><tr><th>To</th><th>Code</th><th>Message</th></tr>
{% for m in messages %}<tr><td>{{ m.to }}</td><td class="otp-code">{{ m.code() or "" }}</td>
<td><pre>{{ m.body }}</pre></td></tr>{% endfor %}</table>""",
}

_ENV = jinja2.Environment(
    loader=jinja2.DictLoader(_TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
)


@dataclass
class DemoServices:
    """The demo's live objects (tests reach the simulators and the outbox here)."""

    settings: Settings
    broker: AsyncSimulatedBroker
    links: AsyncDirectLinks
    outbox: OutboxSender
    tokens: Any
    link_url: str = ""
    approvals: dict[str, str] = field(default_factory=dict)
    tmpdir: str = ""


def _page(template: str, title: str, principal: Principal, code: int = 200, **ctx: Any) -> Response:
    nonce = secrets.token_urlsafe(16)
    content = _ENV.get_template(template).render(principal=principal, **ctx)
    body = _ENV.get_template("base").render(
        title=title,
        nonce=nonce,
        principal=principal,
        content=markupsafe.Markup(content),  # noqa: S704 - rendered with autoescape above
    )
    headers = dict(security_headers(nonce, referrer="same-origin"))
    return HTMLResponse(body, status_code=code, headers=headers)


def _principal(request: Request) -> Principal:
    value = request.scope.get("auth")
    assert isinstance(value, Principal)
    return value


def _make_tokens(base_url: str, folder: str) -> Any:
    from ..credential_store import CredentialStore
    from ..engines.tokens import AsyncTokenIssuer, TokenIssuer

    store = CredentialStore(f"sqlite:///{Path(folder) / 'credentials.db'}")
    issuer = TokenIssuer(
        store,
        issuer=base_url,
        audience=base_url + "/api/mobile",
        mobile_scopes=[MOBILE_SCOPE],
    )
    return AsyncTokenIssuer(issuer)


def create_app(
    base_url: str = "http://127.0.0.1:8000",
    *,
    settings: Settings | None = None,
    echo: bool = False,
) -> Starlette:
    """The demo as an ASGI app; ``base_url`` must be where it is reachable."""
    # The demo offers every language with a catalog (TARA and Web eID users read
    # Estonian, Norwegian BankID users bokmål); the library default is fi, sv, en.
    demo_broker = {"base_url": base_url, "languages": ["fi", "sv", "en", "et", "nb"]}
    settings = settings or load_config(environment="simulator", overrides={"broker": demo_broker})
    broker = simulated_async_broker(
        settings, store=AsyncMemoryStore(), browser_base=settings.base_url + SIM_PREFIX
    )
    tmpdir = tempfile.mkdtemp(prefix="authbroker-demo-")

    def print_sms(message: OutboxMessage) -> None:
        print(f"[demo SMS to {message.to}] {message.body!r}")

    outbox = OutboxSender(echo=print_sms if echo else None)
    links = AsyncDirectLinks(
        broker.store,
        outbox,
        secret_keys=settings.secret_keys,
        base_url=settings.base_url,
        link_path=settings.route_prefix + "/link",
        service_name="Demo accounting",
    )
    services = DemoServices(
        settings=settings,
        broker=broker,
        links=links,
        outbox=outbox,
        tokens=_make_tokens(settings.base_url, tmpdir),
        tmpdir=tmpdir,
    )

    async def home(request: Request) -> Response:
        return _page(
            "home", "Home", _principal(request), link=services.link_url, invoice=DEMO_INVOICE
        )

    async def me(request: Request) -> Response:
        principal = _principal(request)
        identity = [(k, v) for k, v in principal.identity.items() if v not in (None, {}, "")]
        return _page("me", "Me", principal, identity=identity)

    async def books(request: Request) -> Response:
        return _page("books", "Books", _principal(request))

    async def invoice(request: Request) -> Response:
        invoice_id = request.path_params["invoice"]
        inv = INVOICES.get(invoice_id)
        if inv is None:
            return _page("books", "Not found", _principal(request), code=404)
        principal = _principal(request)
        if request.method == "POST":
            # Plain urlencoded parsing: Starlette's form parser needs python-multipart.
            form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
            csrf = form.get("csrf", [])
            if len(csrf) != 1 or not principal.csrf_ok(csrf[0]):
                return JSONResponse({"error": "csrf"}, status_code=403)
            services.approvals[invoice_id] = principal.user_id or ""
            return RedirectResponse(f"/invoices/{invoice_id}", status_code=303)
        status = "approved" if invoice_id in services.approvals else "waiting for approval"
        return _page("invoice", invoice_id, principal, id=invoice_id, inv=inv, status=status)

    async def outbox_page(request: Request) -> Response:
        messages = list(reversed(outbox.messages))
        return _page("outbox", "SMS outbox", _principal(request), messages=messages)

    async def mobile_invoices(request: Request) -> Response:
        principal = _principal(request)
        return JSONResponse(
            {"user": principal.user_id, "invoices": sorted(INVOICES), "scopes": principal.scopes}
        )

    async def mobile_token(request: Request) -> Response:
        pair = await services.tokens.issue(DEMO_USER, device_id="demo-device")
        return JSONResponse(pair.to_response(), headers={"cache-control": "no-store"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for name, config in settings.providers.items():
            if config.protocol == "tupas" and config.environment == "simulator":
                # docs/web.md: the simulated bank shows its page (pick a customer,
                # identify, cancel or reject) instead of approving at once.
                sim = broker.simulator(name)
                if sim is not None:
                    sim.extra["control"].interactive = True
        services.link_url = await links.issue(
            DEMO_USER, DEMO_PHONE, "invoice:approve", DEMO_INVOICE, ttl=7 * 86400, language="en"
        )
        try:
            yield
        finally:
            await links.aclose()
            await broker.aclose()

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/me", me),
            Route("/books", books),
            Route("/invoices/{invoice}", invoice, methods=["GET"]),
            Route("/invoices/{invoice}/approve", invoice, methods=["POST"]),
            Route("/outbox", outbox_page),
            Route("/api/mobile/invoices", mobile_invoices),
            Route("/demo/mobile-token", mobile_token, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.demo = services
    app.add_middleware(
        AuthMiddleware,
        broker=broker,
        links=links,
        tokens=services.tokens,
        mobile_audience=settings.base_url + "/api/mobile",
        rules=[
            route("/", PUBLIC),
            route("/me", PUBLIC),
            route("/outbox", PUBLIC),
            route("/demo/mobile-token", PUBLIC),
            route("/books", require(loa=Loa.SUBSTANTIAL)),
            route("/invoices/{invoice}", require(scope="invoice:approve", resource="{invoice}")),
            route(
                "/invoices/{invoice}/approve",
                require(scope="invoice:approve", resource="{invoice}"),
            ),
            route("/api/mobile/*", require_bearer(MOBILE_SCOPE)),
        ],
        link_landing=lambda scope, resource: f"/invoices/{resource}",
    )
    # Added last, so outermost: it sees the simulator-button routes first.
    app.add_middleware(SimulatorHelpers, broker=broker)
    app.add_middleware(SimulatorPages, broker=broker)
    app.add_middleware(HostCheck, base_url=settings.base_url)
    return app


class HostCheck:
    """Demo only: answer 421 with a page naming both hosts when the browser used
    another host than the base URL's.

    Cookies, the OIDC ``redirect_uri`` and the flow binding all live on the base URL's
    host: a login begun on ``localhost`` that returns to ``127.0.0.1`` can only fail
    later with a confusing flow-binding error, so the demo says so at once.
    """

    def __init__(self, app: ASGIApp, *, base_url: str) -> None:
        self.app = app
        self.base_url = base_url.rstrip("/")
        self.netloc = urlsplit(base_url).netloc.lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v for k, v in scope["headers"] if k == b"host"), b"")
        got = host.decode("latin-1").lower()
        if got == self.netloc:
            await self.app(scope, receive, send)
            return
        text = (
            "<!doctype html><meta charset=utf-8><title>Wrong host</title>"
            f'<p>This demo runs as <a href="{html.escape(self.base_url)}/">'
            f"{html.escape(self.base_url)}</a>, but the browser asked for host "
            f"<code>{html.escape(got or '(none)')}</code>. Open the demo at "
            f"<code>{html.escape(self.netloc)}</code>, or restart it with "
            "<code>--base-url</code> (<code>make demo BASE_URL=...</code>) naming "
            "the address you use.</p>"
        )
        headers = [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store")]
        headers += list(security_headers(secrets.token_urlsafe(16), referrer="no-referrer"))
        await _send(send, WebResponse(421, headers, text.encode()))


class SimulatorPages:
    """Demo only: the simulators' browser pages under the demo's origin.

    ``{SIM_PREFIX}/<provider>/<path>`` is answered by provider's running simulator as
    if ``/<path>`` had reached its own server (the simulator was started with this
    browser URL, so its authorization endpoint or bank form points here). Only
    simulators that have browser pages are reachable; everything else is 404.
    """

    def __init__(self, app: ASGIApp, *, broker: AsyncSimulatedBroker) -> None:
        self.app = app
        self.broker = broker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith(SIM_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        name, _, rest = path[len(SIM_PREFIX) + 1 :].partition("/")
        sim = self.broker.simulators.get(name)
        if sim is None or sim.handle is None:
            await _send(send, WebResponse(404, [("content-type", "text/plain")], b"not found"))
            return
        body = await _read_body(receive)
        query = scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        req = SimRequest(
            method=str(scope["method"]),
            path="/" + rest,
            query=parse_qs(query),
            headers=headers,
            body=body or b"",
        )
        # Simulators are blocking code (signing, their own locks): off the event loop.
        resp = await anyio.to_thread.run_sync(sim.handle, req)
        headers_out = [(k.lower(), v) for k, v in resp.headers.items()]
        await _send(send, WebResponse(resp.status, headers_out, resp.body))


class SimulatorHelpers:
    """Demo only: the routes the hosted pages' "simulator" buttons call.

    ``POST {prefix}/webeid/<flow>/simulate`` signs the Web eID challenge with the
    simulator's test card; ``POST {prefix}/simulate/bankid-se/<flow>`` lets the BankID
    test user scan the QR code shown now; ``POST {prefix}/simulate/bankid-se/<flow>/autostart``
    plays the BankID app on this device: it is launched with the flow's autostart token,
    the test user identifies, and the answer names the order's ``returnUrl`` (with its
    SEB-04 nonce) that the real app opens in the browser next. They are not part of
    the production web core (which never reaches a simulator); the demo mounts this ASGI middleware
    outside :class:`AuthMiddleware` and reuses its core for the flow cookie and CSRF
    checks. Each request is one run of the broker's runtime, like the core's.
    """

    def __init__(self, app: ASGIApp, *, broker: AsyncSimulatedBroker) -> None:
        if not isinstance(app, AuthMiddleware):
            raise TypeError("mount SimulatorHelpers directly outside AuthMiddleware")
        self.app = app
        self.core: WebCore = app.core
        self.broker = broker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._target(scope)
        if target is None:
            await self.app(scope, receive, send)
            return
        kind, flow_id = target
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        req = WebRequest("POST", str(scope["path"]), "", headers, body or b"", None)
        if kind == "webeid":
            routine = self._webeid(req)
        elif kind == "bankid-app":
            routine = self._bankid_app(req, flow_id)
        else:
            routine = self._bankid(req, flow_id)
        try:
            response = await self.broker.runtime.run(routine)
        except AuthBrokerError as exc:
            response = self.core.error_page(exc, self.core.language(req), json_body=True)
        await _send(send, response)

    def _target(self, scope: Scope) -> tuple[str, str] | None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return None
        parts = [p for p in str(scope.get("path", ""))[len(self.core.prefix) :].split("/") if p]
        if len(parts) == 3 and parts[0] == "webeid" and parts[2] == "simulate":
            return "webeid", parts[1]
        if len(parts) == 3 and parts[:2] == ["simulate", "bankid-se"]:
            return "bankid", parts[2]
        if len(parts) == 4 and parts[:2] == ["simulate", "bankid-se"] and parts[3] == "autostart":
            return "bankid-app", parts[2]
        return None

    def _simulator(self, protocol: str) -> tuple[str, Any]:
        name = next(
            (n for n, c in self.core.settings.providers.items() if c.protocol == protocol), ""
        )
        config = self.core.provider_config(name)
        if not self.core.simulator_helpers or config.environment != "simulator":
            raise AccessDenied("not a simulated provider", code="not_simulator")
        sim = self.broker.simulator(name)
        if sim is None:
            raise AccessDenied("no simulator is running", code="not_simulator")
        return name, sim

    def _webeid(self, req: WebRequest) -> Gen[WebResponse]:
        state = self.core.load_flow(req)
        self.core.check_post(req, state, req.header("x-csrf-token"))
        nonce = req.json().get("challenge")
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
            raise InvalidInput("challenge missing", code="challenge")
        _, sim = self._simulator("web-eid")
        yield from ()
        return WebResponse.json({"token": sim.extra["make_token"](self.core.origin, nonce)})

    def _bankid(self, req: WebRequest, flow_id: str) -> Gen[WebResponse]:
        state = self.core.load_flow(req)
        self.core.check_post(req, state, req.header("x-csrf-token"))
        name, sim = self._simulator("bankid-se")
        poll = yield from self.core.flows.refresh(flow_id, binding=state.binding)
        if not poll.display.qr:
            raise InvalidInput("this flow shows no QR code", code="no_qr")
        result = sim.extra["simulator"].scan(poll.display.qr, self._user(name))
        return WebResponse.json({"result": str(result)})

    def _bankid_app(self, req: WebRequest, flow_id: str) -> Gen[WebResponse]:
        state = self.core.load_flow(req)
        self.core.check_post(req, state, req.header("x-csrf-token"))
        name, sim = self._simulator("bankid-se")
        poll = yield from self.core.flows.refresh(flow_id, binding=state.binding)
        query = parse_qs(urlsplit(poll.display.autostart_url or "").query)
        tokens = query.get("autostarttoken", [])
        if len(tokens) != 1:
            raise InvalidInput("this flow has no autostart link", code="no_autostart")
        simulator = sim.extra["simulator"]
        result = str(simulator.autostart(tokens[0], self._user(name)))
        if result != "ok":
            return WebResponse.json({"result": result})
        # The app returns the browser only to this broker's own callback (the returnUrl
        # the adapter sent); anything else would be an open redirect.
        back = simulator.return_url(tokens[0]) or ""
        own = f"{self.core.settings.callback_base}/callback/{name}?"
        if not back.startswith(own):
            return WebResponse.json({"result": result})
        return WebResponse.json({"result": result, "redirect": back})

    def _user(self, name: str) -> str:
        """The test user of the demo's BankID buttons (``simulator_user``)."""
        return str(self.core.provider_config(name).options.get("simulator_user", "199001010017"))


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def default_base_url(host: str, port: int) -> str:
    """The URL a browser on this machine opens: a wildcard bind is shown as localhost."""
    shown = "localhost" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - compared
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def base_url_problem(url: str) -> str | None:
    """Why browsers could not use ``url`` as the demo's base URL, or None.

    The simulated providers accept plain http only on loopback (the same rule as every
    simulator endpoint, :func:`authbroker.providers.base.require_endpoint`), so a
    remote box is reached through a tunnel to ``localhost`` or through TLS.
    """
    shape = "must be http(s)://HOST[:PORT] with no path"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return shape
    if parts.scheme not in ("http", "https") or not host or parts.path not in ("", "/"):
        return shape
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        return (
            "plain http is only for localhost / 127.0.0.1: open the demo through a tunnel "
            "(ssh -L 8000:127.0.0.1:8000 devbox, then http://localhost:8000) "
            "or behind TLS (--base-url https://...)"
        )
    return None


def serve(host: str = "127.0.0.1", port: int = 8000, *, base_url: str | None = None) -> None:
    """Run the demo until Ctrl-C (``authbroker demo`` / ``make demo``).

    The socket is bound before anything is printed: a taken port (or a host that is
    not this machine's) ends the process with :data:`EXIT_ADDRESS_IN_USE` and a
    message on stderr, never with a URL that does not work. ``base_url`` is the
    address browsers use (another host name, a tunnel, a container's published port).
    """
    import uvicorn

    url = (base_url or default_base_url(host, port)).rstrip("/")
    problem = base_url_problem(url)
    if problem is not None:
        print(f"authbroker demo: base URL {url}: {problem}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    try:
        sock = _bound_socket(host, port)
    except OSError as exc:
        print(
            f"authbroker demo: cannot listen on {host}:{port}: {exc.strerror or exc}. "
            "Is another program using the port? Choose another with --port "
            "(make demo PORT=...).",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_ADDRESS_IN_USE) from None
    try:
        app = create_app(url, echo=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        print(f"Demo accounting on {url}/  (listening on {host}:{port}; Ctrl-C stops)", flush=True)
        server.run(sockets=[sock])
    finally:
        sock.close()


@contextlib.contextmanager
def running(
    host: str = "127.0.0.1", *, public_host: str | None = None
) -> Iterator[tuple[str, Starlette]]:
    """Serve the demo with uvicorn on a free port in a background thread (tests);
    ``public_host`` is the host name of its base URL (default: ``host``)."""
    import uvicorn

    sock = _bound_socket(host, 0)
    port = sock.getsockname()[1]
    base_url = f"http://{public_host or host}:{port}"
    app = create_app(base_url)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the demo server did not start")
        time.sleep(0.05)
    try:
        yield base_url, app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
