"""WEB-05 guard matrix, TOK-05 channel separation, SES-04 step-up and R-16 rotation,
each on the ASGI and the WSGI adapter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from web_support import Stack, build, csrf_of

KINDS = ["asgi", "wsgi"]


@pytest.fixture(params=KINDS)
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from build(request.param, tmp_path)


# principal kind -> how to become it
def _become(stack: Stack, who: str) -> dict[str, str]:
    """Sets up the client as ``who``; returns extra headers to send."""
    if who == "full":
        stack.login()
    elif who == "link":
        stack.link_login("INV-1")
    elif who == "mobile":
        return {"authorization": "Bearer " + stack.bearer()}
    return {}


ROUTES = {
    "full_route": "/full",
    "own_link_route": "/invoices/INV-1",
    "other_link_route": "/invoices/INV-2",
    "mobile_api": "/api/mobile/invoices",
    "auth_route": "/auth/",
}

# Expected outcome per (principal, route): "ok", "login" (303 to picker), "step_up"
# (303 to picker with step_up), or an HTTP status refusing the request.
MATRIX: dict[str, dict[str, str | int]] = {
    "full": {
        "full_route": "ok",
        "own_link_route": "ok",
        "other_link_route": "ok",
        "mobile_api": 401,
        "auth_route": "page",
    },
    "link": {
        "full_route": "step_up",
        "own_link_route": "ok",
        "other_link_route": "step_up",
        "mobile_api": 401,
        "auth_route": "page",
    },
    "mobile": {
        "full_route": 401,
        "own_link_route": 401,
        "other_link_route": 401,
        "mobile_api": "ok",
        "auth_route": "page",
    },
    "anonymous": {
        "full_route": "login",
        "own_link_route": "login",
        "other_link_route": "login",
        "mobile_api": 401,
        "auth_route": "page",
    },
}


@pytest.mark.parametrize("who", list(MATRIX))
def test_guard_matrix(stack: Stack, who: str) -> None:
    headers = _become(stack, who)
    for route_kind, path in ROUTES.items():
        expected = MATRIX[who][route_kind]
        r = stack.client.get(path, headers=headers)
        where = f"{stack.kind} {who} {route_kind}"
        if expected == "ok":
            assert r.status_code == 200, where
            assert r.json()["kind"] == who, where
        elif expected == "page":
            assert r.status_code == 200, where
            assert "text/html" in r.headers["content-type"], where
        elif expected in ("login", "step_up"):
            assert r.status_code == 303, where
            loc = urlsplit(r.headers["location"])
            assert loc.path == "/auth/", where
            q = parse_qs(loc.query)
            assert q["return_to"] == [path], where
            assert ("step_up" in q) == (expected == "step_up"), where
        else:
            assert r.status_code == expected, where
            assert r.json()["error"], where


def test_mobile_api_refuses_session_cookie_with_typed_code(stack: Stack) -> None:
    stack.login()
    r = stack.client.get("/api/mobile/invoices")
    assert r.status_code == 401
    assert r.json()["error"] == "session_not_accepted"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_bearer_refused_on_web_routes_even_with_a_session(stack: Stack) -> None:
    stack.login()
    token = stack.bearer()
    r = stack.client.get("/full", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["error"] == "bearer_not_accepted"


def test_bearer_token_in_query_refused(stack: Stack) -> None:
    token = stack.bearer()
    r = stack.client.get("/api/mobile/invoices", params={"access_token": token})
    assert r.status_code == 400
    assert r.json()["error"] == "token_in_query"


def test_bearer_wrong_scope_and_forged(stack: Stack) -> None:
    other = stack.tokens.issue("acct-1", scope="other:read").access_token
    r = stack.client.get("/api/mobile/x", headers={"authorization": f"Bearer {other}"})
    assert r.status_code == 403
    assert r.json()["error"] == "insufficient_scope"
    token = stack.bearer()
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = stack.client.get("/api/mobile/x", headers={"authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_link_session_post_outside_scope_is_403(stack: Stack) -> None:
    stack.link_login("INV-1")
    assert stack.client.post("/invoices/INV-1").status_code == 200
    r = stack.client.post("/invoices/INV-2")
    assert r.status_code == 403
    assert r.json()["error"] == "scope_denied"
    r = stack.client.post("/full")
    assert r.status_code == 403
    assert r.json()["error"] == "step_up"


def test_low_loa_session_steps_up_to_high(stack: Stack) -> None:
    stack.login("weak", "/full")
    assert stack.client.get("/full").json()["loa"] == "LOW"
    r = stack.client.get("/high")
    assert r.status_code == 303
    assert "step_up=1" in r.headers["location"]
    old = stack.session_cookie()
    stack.login("echo", "/high")
    assert stack.session_cookie() != old
    assert stack.client.get("/high").json()["loa"] == "HIGH"


def _replay(stack: Stack, cookie: str | None) -> httpx.Response:
    other = stack.fresh_client()
    assert cookie
    other.cookies.set("ab_session", cookie)
    return other.get("/public")


def test_session_rotation_r16(stack: Stack) -> None:
    """R-16: login, step-up, link grant, logout — the old cookie is anonymous after each."""
    attempts = rejected = 0
    # fixation: a planted cookie from an earlier (link) session does not survive login
    stack.link_login("INV-1")
    planted = stack.session_cookie()
    stack.login("weak", "/full")  # login (rotation from the link session)
    after_login = stack.session_cookie()
    assert after_login != planted
    attempts += 1
    rejected += _replay(stack, planted).json()["kind"] == "anonymous"
    # step-up
    stack.login("echo", "/high")
    attempts += 1
    rejected += _replay(stack, after_login).json()["kind"] == "anonymous"
    after_step_up = stack.session_cookie()
    # link grant while logged in rotates too
    stack.link_login("INV-1")
    attempts += 1
    rejected += _replay(stack, after_step_up).json()["kind"] == "anonymous"
    after_link = stack.session_cookie()
    # logout
    page = stack.client.get("/public")
    assert page.json()["kind"] == "link"
    csrf = _session_csrf(stack)
    r = stack.client.post("/auth/logout", data={"csrf": csrf})
    assert r.status_code == 303
    attempts += 1
    rejected += _replay(stack, after_link).json()["kind"] == "anonymous"
    assert (attempts, rejected) == (4, 4)
    assert stack.client.get("/public").json()["kind"] == "anonymous"


def _session_csrf(stack: Stack) -> str:
    cookie = stack.session_cookie()
    mw = stack.middleware
    session_id = mw.core.policy and mw.sessions.engine.session_id(cookie)
    import json

    from authbroker.engines.sessions import session_store_key

    key = session_store_key(session_id or "")
    assert key is not None
    raw = stack.mem.get(key)
    assert raw is not None
    return str(json.loads(raw)["csrf"])


def test_logout_needs_session_csrf_and_everywhere_ends_all(stack: Stack) -> None:
    stack.login()
    second = stack.fresh_client()
    from web_support import login

    login(second)
    assert second.get("/full").status_code == 200
    r = stack.client.post("/auth/logout", data={"csrf": "wrong"})
    assert r.status_code == 403
    assert stack.client.get("/full").status_code == 200  # nothing changed
    r = stack.client.post("/auth/logout", data={"csrf": _session_csrf(stack), "everywhere": "1"})
    assert r.status_code == 303
    assert "Max-Age=0" in r.headers["set-cookie"]
    assert second.get("/full").status_code == 303  # the other browser is logged out too


def test_cross_site_post_to_guarded_route_refused(stack: Stack) -> None:
    stack.login()
    r = stack.client.post("/full", headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    r = stack.client.post("/full", headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    assert stack.client.post("/full", headers={"origin": "http://testserver"}).status_code == 200


def test_link_page_csrf_required(stack: Stack) -> None:
    url = stack.issue_link()
    stack.client.get(urlsplit(url).path)
    page = stack.client.get("/auth/link")
    assert page.status_code == 200
    before = len(stack.outbox.messages)
    r = stack.client.post("/auth/link/send", data={"csrf": "nope"})
    assert r.status_code == 403
    assert len(stack.outbox.messages) == before  # nothing sent
    r = stack.client.post("/auth/link/send", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    assert len(stack.outbox.messages) == before + 1


# --- CSRF tokens across a key rotation ------------------------------------------------


def test_form_token_survives_key_rotation() -> None:
    """A form opened before a rotation posts after it: every listed key verifies
    the CSRF token; a key that was removed no longer does."""
    from dataclasses import replace as _replace

    from authbroker.web.core import WebCore
    from web_support import make_settings

    old_key, new_key = "o" * 40, "n" * 40
    before = WebCore(_replace(make_settings(), secret_keys=(old_key,)))
    token = before.csrf_for("browser-binding")
    rotated = WebCore(_replace(make_settings(), secret_keys=(new_key, old_key)))
    assert rotated._csrf_ok("browser-binding", token)
    assert rotated.csrf_for("browser-binding") != token  # the newest key signs new forms
    assert rotated._csrf_ok("browser-binding", rotated.csrf_for("browser-binding"))
    assert not rotated._csrf_ok("another-binding", token)
    retired = WebCore(_replace(make_settings(), secret_keys=(new_key,)))
    assert not retired._csrf_ok("browser-binding", token)
