"""The guard's session check through both adapters: the cookie MAC is verified once
per cookie and the principal is built once per stored record, yet every request
still asks the store, so a revoked session is refused on the very next request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authbroker.engines.sessions import SessionManager, session_store_key
from web_support import SECRET, Stack, build

KINDS = ["asgi", "wsgi"]


@pytest.fixture(params=KINDS)
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from build(request.param, tmp_path)


def _count_macs(stack: Stack) -> list[int]:
    """Count the HMAC computations of the session cookie signer."""
    signer: Any = stack.middleware.sessions.engine.signer
    counted = [0]
    real = signer._mac

    def mac(key: bytes, value: bytes) -> bytes:
        counted[0] += 1
        return real(key, value)

    signer._mac = mac
    return counted


def test_cookie_mac_once_and_logout_everywhere_refused_next_request(stack: Stack) -> None:
    stack.login()
    macs = _count_macs(stack)
    for _ in range(3):
        r = stack.client.get("/full")
        assert r.status_code == 200 and r.json()["kind"] == "full"
    assert macs[0] == 1  # the cookie was verified once, not per request
    user = r.json()["user"]
    SessionManager(stack.mem, [SECRET]).logout_everywhere(user)
    r = stack.client.get("/full")
    assert r.status_code == 303  # refused at once, whatever was cached
    assert stack.client.get("/public").json()["kind"] == "anonymous"


def test_deleted_session_refused_next_request(stack: Stack) -> None:
    stack.login()
    macs = _count_macs(stack)
    assert stack.client.get("/full").status_code == 200
    assert stack.client.get("/full").status_code == 200
    assert macs[0] == 1
    cookie = stack.session_cookie()
    session_id = stack.middleware.sessions.engine.session_id(cookie)
    assert stack.mem.delete(session_store_key(session_id) or "")
    assert stack.client.get("/full").status_code == 303


def test_revoked_link_session_refused_next_request(stack: Stack) -> None:
    link_id = stack.link_login("INV-1")
    macs = _count_macs(stack)
    assert stack.client.get("/invoices/INV-1").status_code == 200
    assert stack.client.get("/invoices/INV-1").status_code == 200
    assert macs[0] == 1
    stack.links.revoke(link_id)
    assert stack.client.get("/invoices/INV-1").status_code == 303
    assert stack.client.get("/public").json()["kind"] == "anonymous"


def test_principal_built_once_per_record(stack: Stack) -> None:
    """The same stored record gives the same principal object; a changed record
    (another session, or the same one rewritten) gives a new one."""
    stack.login()
    cookie = stack.session_cookie()
    core = stack.middleware.core
    sync = SessionManager(stack.mem, [SECRET])
    sync.engine = stack.middleware.sessions.engine  # the adapter's engine and caches
    first = sync.load(cookie)
    again = sync.load(cookie)
    assert first is not None and again is first
    principal = core.principal(first)
    assert core.principal(again) is principal
    assert principal.user_id == first.user and principal.session is first
    # A rewritten record (as a touch writes it) parses to a new session object.
    key = session_store_key(first.id) or ""
    raw = stack.mem.get(key)
    assert raw is not None
    stack.mem.put(key, raw.replace(b'"v":1', b'"v": 1'), 60)
    changed = sync.load(cookie)
    assert changed is not None and changed is not first
    assert core.principal(changed) is not principal
    assert core.principal(changed).session is changed
