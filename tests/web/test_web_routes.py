"""Every auth route of the middleware, on ASGI and WSGI: hosted pages and their headers
(WEB-02), CSRF (SES-06), parameter pollution (WEB-06), open redirects (WEB-01),
errors (WEB-04), polling/QR, Web eID challenge and direct links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from authbroker.errors import InvalidInput
from authbroker.web.core import WebCore, WebRequest
from web_support import BASE, PHONE, Stack, build, csrf_of, make_settings


@pytest.fixture(params=["asgi", "wsgi"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from build(request.param, tmp_path)


def assert_hosted_headers(headers: object) -> None:
    """WEB-02 on a hosted page."""
    h = headers  # httpx.Headers
    csp = h["content-security-policy"]  # type: ignore[index]
    for part in (
        "default-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ):
        assert part in csp
    assert "unsafe-inline" not in csp
    assert h["strict-transport-security"].startswith("max-age=")  # type: ignore[index]
    assert h["x-content-type-options"] == "nosniff"  # type: ignore[index]
    assert h["referrer-policy"] == "no-referrer"  # type: ignore[index]
    assert h["cross-origin-opener-policy"] == "same-origin"  # type: ignore[index]
    assert h["cache-control"] == "no-store"  # type: ignore[index]
    assert h["x-frame-options"] == "DENY"  # type: ignore[index]


def _no_external_assets(html: str) -> None:
    assert not re.search(r'(src|href)="(https?:)?//', html)
    nonces = set(re.findall(r'nonce="([^"]+)"', html))
    assert len(nonces) <= 1


def test_picker_lists_providers_and_sets_flow_cookie(stack: Stack) -> None:
    r = stack.client.get("/auth/", params={"return_to": "/full", "step_up": "1"})
    assert r.status_code == 200
    assert_hosted_headers(r.headers)
    _no_external_assets(r.text)
    for name in ("echo", "weak", "qr", "card"):
        assert f'data-provider="{name}"' in r.text
    assert 'id="step-up"' in r.text
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("ab_flow=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    ("lang", "accept", "expected"),
    [
        ("fi", None, "Tunnistaudu"),
        ("sv", None, "Identifiera dig"),
        (None, "sv-SE,sv;q=0.9", "Identifiera dig"),
        (None, "de", "Identify yourself"),
    ],
)
def test_picker_localized(
    stack: Stack, lang: str | None, accept: str | None, expected: str
) -> None:
    params = {"lang": lang} if lang else {}
    headers = {"accept-language": accept} if accept else {}
    r = stack.client.get("/auth/", params=params, headers=headers)
    assert f"<h1>{expected}</h1>" in r.text


OPEN_REDIRECTS = [
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "https:evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "data:text/html,x",
    "https://good@evil.example",
    "https://evil.example#@good",
    "/\t/evil.example",
    "/\r\nSet-Cookie:x=y",
    "／／evil.example",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_return_to_open_redirects_refused(stack: Stack, target: str) -> None:
    r = stack.client.get("/auth/begin/echo", params={"return_to": target})
    assert r.status_code == 400
    assert "return_to" in r.text
    assert not stack.sink.events  # no flow was begun


def test_redirect_login_roundtrip_sets_session_cookie(stack: Stack) -> None:
    r = stack.client.get("/auth/begin/echo", params={"return_to": "/full?x=1"})
    assert r.status_code == 303
    assert r.headers["location"].startswith("https://idp.example/auth?s=")
    secret = parse_qs(urlsplit(r.headers["location"]).query)["s"][0]
    r = stack.client.get("/auth/callback/echo", params={"secret": secret})
    assert r.status_code == 303
    assert r.headers["location"] == "/full?x=1"
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("ab_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Path=/" in session
    assert "Secure" not in session  # http://testserver is not TLS
    value = session.split(";", 1)[0].split("=", 1)[1]
    assert "131052" not in value and "Maija" not in value  # opaque: id + signature only
    me = stack.client.get("/full").json()
    assert me["kind"] == "full"
    assert me["user"].startswith("u_") and "131052" not in me["user"]


def test_duplicate_callback_parameter_refused_and_flow_survives(stack: Stack) -> None:
    r = stack.client.get("/auth/begin/echo")
    secret = parse_qs(urlsplit(r.headers["location"]).query)["s"][0]
    r = stack.client.get(f"/auth/callback/echo?secret={secret}&secret=x")
    assert r.status_code == 400
    assert "duplicate_parameter" in r.text
    r = stack.client.get("/auth/callback/echo", params={"secret": secret})
    assert r.status_code == 303  # the duplicated call consumed nothing


def test_callback_from_another_browser_refused(stack: Stack) -> None:
    r = stack.client.get("/auth/begin/echo")
    secret = parse_qs(urlsplit(r.headers["location"]).query)["s"][0]
    flow_cookie = stack.client.cookies["ab_flow"]
    other = stack.fresh_client()
    r = other.get("/auth/callback/echo", params={"secret": secret})
    assert r.status_code == 400  # no flow cookie: no flow for this browser
    # an attacker replaying a different browser's cookie jar without the flow fails too
    other.get("/auth/")  # gets its own binding
    r = other.get("/auth/callback/echo", params={"secret": secret})
    assert r.status_code == 400
    assert stack.client.cookies["ab_flow"] == flow_cookie
    r = stack.client.get("/auth/callback/echo", params={"secret": secret})
    assert r.status_code == 303


def test_cross_site_callback_post_is_reposted_same_site(stack: Stack) -> None:
    r = stack.client.get("/auth/begin/echo")
    secret = parse_qs(urlsplit(r.headers["location"]).query)["s"][0]
    bare = stack.fresh_client()  # a cross-site POST arrives without SameSite=Lax cookies
    r = bare.post("/auth/callback/echo", data={"secret": secret})
    assert r.status_code == 200
    assert 'name="_ab_resubmit"' in r.text and f'value="{secret}"' in r.text
    assert_hosted_headers(r.headers)
    r = stack.client.post("/auth/callback/echo", data={"secret": secret, "_ab_resubmit": "1"})
    assert r.status_code == 303


def test_unexpected_exception_gives_generic_500_and_audit(stack: Stack) -> None:
    r = stack.client.get("/auth/begin/echo")
    secret = parse_qs(urlsplit(r.headers["location"]).query)["s"][0]
    r = stack.client.get("/auth/callback/echo", params={"secret": secret, "boom": "1"})
    assert r.status_code == 500
    assert "Traceback" not in r.text and "provider bug" not in r.text
    assert 'id="error-code">internal<' in r.text
    assert_hosted_headers(r.headers)
    # The broker typed, audited and consumed it, and released the flow lock.
    failed = [e for e in stack.sink.events if e.name == "flow.failed"]
    assert [(e.reason, e.details["cause"]) for e in failed] == [("internal", "RuntimeError")]
    assert not [k for k in stack.mem._data if k.startswith(("flow:", "flowlock:"))]
    r = stack.client.get("/auth/callback/echo", params={"secret": secret})
    assert r.status_code == 404  # consumed: the good answer cannot finish it now


def test_error_page_localized_with_code(stack: Stack) -> None:
    r = stack.client.get("/auth/callback/echo", params={"lang": "fi"})
    assert r.status_code == 400
    assert "Tunnistus epäonnistui" in r.text
    assert 'id="error-code">flow_binding<' in r.text
    assert_hosted_headers(r.headers)


def test_unknown_route_404(stack: Stack) -> None:
    r = stack.client.get("/auth/nothing/here")
    assert r.status_code == 404
    assert_hosted_headers(r.headers)


def test_body_size_capped(stack: Stack) -> None:
    r = stack.client.post(
        "/auth/link/verify",
        content=b"a=" + b"x" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413


def test_qr_poll_flow(stack: Stack) -> None:
    r = stack.client.get("/auth/begin/qr", params={"return_to": "/full"})
    assert r.status_code == 303
    wait_url = r.headers["location"]
    flow_id = wait_url.rsplit("/", 1)[1]
    page = stack.client.get(wait_url)
    assert page.status_code == 200
    assert_hosted_headers(page.headers)
    _no_external_assets(page.text)
    assert 'data-qr="qr-0"' in page.text
    q = stack.client.get(f"/auth/qr/{flow_id}").json()
    assert q["qr"] == "qr-0" and q["src"].startswith("data:image/svg+xml;base64,")
    svg = stack.client.get(f"/auth/qr/{flow_id}.svg")
    assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content
    # another browser sees nothing of the flow
    assert stack.fresh_client().get(f"/auth/qr/{flow_id}").status_code == 400
    # polling needs the CSRF header
    r = stack.client.post(f"/auth/poll/{flow_id}", json={})
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    csrf = csrf_of(page.text)
    r = stack.client.post(f"/auth/poll/{flow_id}", json={}, headers={"x-csrf-token": csrf})
    assert r.json()["status"] == "pending"
    r = stack.client.post(f"/auth/poll/{flow_id}", json={}, headers={"x-csrf-token": csrf})
    body = r.json()
    assert body == {"status": "done", "redirect": "/full"}
    assert any(c.startswith("ab_session=") for c in r.headers.get_list("set-cookie"))
    assert stack.client.get("/full").json()["kind"] == "full"


def test_cancel_flow(stack: Stack) -> None:
    r = stack.client.get("/auth/begin/qr")
    flow_id = r.headers["location"].rsplit("/", 1)[1]
    page = stack.client.get(r.headers["location"])
    r = stack.client.post(f"/auth/cancel/{flow_id}", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    assert stack.client.get(f"/auth/flow/{flow_id}").status_code == 404


def test_webeid_challenge_page_and_token(stack: Stack) -> None:
    r = stack.client.get("/auth/begin/card", params={"return_to": "/full"})
    assert r.status_code == 200
    assert_hosted_headers(r.headers)
    _no_external_assets(r.text)
    challenge = re.search(r'data-challenge="([^"]+)"', r.text)
    flow = re.search(r'data-flow="([^"]+)"', r.text)
    assert challenge and flow
    assert "web-eid:authenticate" in r.text
    csrf = csrf_of(r.text)
    bad = stack.client.post(f"/auth/webeid/{flow.group(1)}", data={"token": "x"})
    assert bad.status_code == 403  # no CSRF token
    r = stack.client.post(
        f"/auth/webeid/{flow.group(1)}",
        data={"csrf": csrf, "token": "signed:" + challenge.group(1)},
    )
    assert r.status_code == 303 and r.headers["location"] == "/full"


def test_direct_link_flow_pages(stack: Stack) -> None:
    url = stack.issue_link("INV-7")
    assert url.startswith(BASE + "/auth/link/")
    r = stack.client.get(urlsplit(url).path)
    assert r.status_code == 303
    assert r.headers["location"] == "/auth/link"  # clean URL (LNK-03)
    assert r.headers["referrer-policy"] == "no-referrer"
    start = stack.client.get("/auth/link")
    assert_hosted_headers(start.headers)
    assert len(stack.outbox.messages) == 0  # opening the link sends nothing by itself
    stack.client.post("/auth/link/send", data={"csrf": csrf_of(start.text)})
    code_page = stack.client.get("/auth/link/code")
    assert_hosted_headers(code_page.headers)
    assert "+358" in code_page.text and "401234567" not in code_page.text
    csrf = csrf_of(code_page.text)
    sms = stack.outbox.last()
    assert sms is not None and sms.code()
    wrong = "000000" if sms.code() != "000000" else "111111"
    r = stack.client.post("/auth/link/verify", data={"csrf": csrf, "code": wrong})
    assert r.status_code == 400
    assert "Request a new code" in r.text
    r = stack.client.post("/auth/link/verify", data={"csrf": csrf, "code": sms.code()})
    assert r.status_code == 303 and r.headers["location"] == "/invoices/INV-7"
    assert stack.client.get("/invoices/INV-7").json()["kind"] == "link"


def test_forged_link_token_refused(stack: Stack) -> None:
    url = stack.issue_link()
    token = urlsplit(url).path.rsplit("/", 1)[1]
    r = stack.client.get("/auth/link/" + token[:-3] + "abc")
    assert r.status_code == 400
    assert stack.client.get("/auth/link").status_code == 400  # no link was stored


def test_jwks_route(stack: Stack) -> None:
    r = stack.client.get("/auth/jwks.json")
    assert r.status_code == 200 and r.json() == {"keys": []}


def test_forwarded_for_ignored_by_default() -> None:
    core = WebCore(make_settings())
    assert core.client_ip("10.0.0.5", {"x-forwarded-for": "1.2.3.4"}) == "10.0.0.5"
    proxied = WebCore(make_settings(), trusted_proxies=["10.0.0.0/8"])
    assert proxied.client_ip("10.0.0.5", {"x-forwarded-for": "1.2.3.4, 10.0.0.7"}) == "1.2.3.4"
    assert proxied.client_ip("8.8.8.8", {"x-forwarded-for": "1.2.3.4"}) == "8.8.8.8"


def test_https_deployment_uses_host_prefix_and_secure_cookies() -> None:
    from dataclasses import replace

    from web_support import SECRET

    settings = replace(make_settings(), base_url="https://app.example.fi", secret_keys=(SECRET,))
    core = WebCore(settings)
    assert core.policy.cookie_name == "__Host-ab_session"
    assert core.flow_cookie == "__Host-ab_flow"
    req = WebRequest("GET", "/auth/")
    state = core._load_flow(req)
    cookie = core._flow_cookie(state)
    assert cookie.startswith("__Host-ab_flow=") and "; Secure" in cookie and "Path=/" in cookie


def test_parameter_parser_refuses_repeats() -> None:
    req = WebRequest("GET", "/auth/", query_string="state=a&state=b")
    with pytest.raises(InvalidInput) as info:
        req.query()
    assert info.value.code == "duplicate_parameter"
    big = WebRequest("GET", "/auth/", query_string="a=" + "x" * 9000)
    with pytest.raises(InvalidInput):
        big.query()


# -- one runtime run per request (the handlers compose the engines) ---------------------


def _count_runs(stack: Stack) -> list[str]:
    """Wrap every runtime a request could use; record which one ran."""
    runs: list[str] = []
    mw = stack.middleware
    runtimes = {"broker": mw.runtime}
    if mw.links is not None:
        runtimes["links"] = mw.links.runtime
    runtimes["sessions"] = mw.sessions.runtime
    for name, runtime in runtimes.items():
        inner = runtime.run
        if stack.kind == "asgi":

            async def arun(routine: object, _inner: object = inner, _name: str = name) -> object:
                runs.append(_name)
                return await _inner(routine)  # type: ignore[operator]

            runtime.run = arun
        else:

            def srun(routine: object, _inner: object = inner, _name: str = name) -> object:
                runs.append(_name)
                return _inner(routine)  # type: ignore[operator]

            runtime.run = srun
    return runs


def test_oidc_callback_and_link_posts_are_one_runtime_run_each(stack: Stack) -> None:
    """A callback (advance + session load + login) and each link POST (open/verify +
    session) run as one routine in the broker's runtime, not one runner per service."""
    runs = _count_runs(stack)
    r = stack.client.get("/auth/begin/echo", params={"return_to": "/full"})
    secret = parse_qs(urlsplit(r.headers["location"]).query)["s"][0]
    runs.clear()
    r = stack.client.get("/auth/callback/echo", params={"secret": secret})
    assert r.status_code == 303 and r.headers["location"] == "/full"
    assert runs == ["broker"]
    url = stack.issue_link("INV-7")
    r = stack.client.get(urlsplit(url).path)
    page = stack.client.get(r.headers["location"])
    runs.clear()
    r = stack.client.post("/auth/link/send", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303, r.text
    assert runs == ["broker"]
    code = stack.outbox.last(PHONE)
    assert code is not None
    runs.clear()
    r = stack.client.post(
        "/auth/link/verify", data={"csrf": csrf_of(page.text), "code": code.code()}
    )
    assert r.status_code == 303 and r.headers["location"] == "/invoices/INV-7"
    assert runs == ["broker"]
    runs.clear()
    assert stack.client.get("/invoices/INV-7").status_code == 200  # the guard: one run too
    assert runs == ["broker"]


def test_links_or_sessions_on_another_store_are_refused(tmp_path: Path) -> None:
    """Each request runs in the broker's runtime, so the link and session routines must
    use the broker's store; a facade on another store would read and write elsewhere
    (a link session would not even find its link). Refused at construction."""
    from authbroker import Broker
    from authbroker.engines.links import DirectLinks
    from authbroker.engines.sessions import SessionManager
    from authbroker.errors import ConfigError
    from authbroker.sms.outbox import OutboxSender
    from authbroker.store.memory import MemoryStore
    from authbroker.web.wsgi import WsgiAuthMiddleware
    from web_support import SECRET, providers, wsgi_app

    settings = make_settings()
    broker = Broker(settings, store=MemoryStore(), providers=providers())
    other = DirectLinks(MemoryStore(), OutboxSender(), secret_keys=[SECRET], base_url=BASE)
    with pytest.raises(ConfigError) as info:
        WsgiAuthMiddleware(wsgi_app, broker=broker, links=other)
    assert info.value.key == "web.links"
    sessions = SessionManager(MemoryStore(), [SECRET])
    with pytest.raises(ConfigError) as info:
        WsgiAuthMiddleware(wsgi_app, broker=broker, sessions=sessions)
    assert info.value.key == "web.sessions"
    same = DirectLinks(broker.store, OutboxSender(), secret_keys=[SECRET], base_url=BASE)
    assert WsgiAuthMiddleware(wsgi_app, broker=broker, links=same).runtime is broker.runtime


def test_production_core_serves_no_simulator_helpers(stack: Stack) -> None:
    """The simulator buttons' routes belong to the demo (SimulatorHelpers), not to the
    web core every deployment runs: here they are unknown paths."""
    assert stack.client.get("/auth/").status_code == 200  # the browser has a flow cookie
    for path in ("/auth/webeid/" + "f" * 43 + "/simulate", "/auth/simulate/bankid-se/" + "f" * 43):
        r = stack.client.post(path, json={"challenge": "c" * 43})
        assert r.status_code == 404, path
    source = "\n".join(
        p.read_text() for p in (Path(__file__).parents[2] / "src/authbroker/web/core").glob("*.py")
    )
    assert "authbroker.testing" not in source and ".simulator(" not in source
