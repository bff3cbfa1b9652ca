"""Logout: local (record and cookie, everywhere), RP-initiated at the OP's
end_session_endpoint, and OIDC back-channel logout tokens (valid and misbehaving),
against the OIDC simulator; the sid/sub index under concurrent logins on every store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from authbroker.engines.sessions import SessionEngine, SessionPolicy, session_store_key
from authbroker.identity import Identity, Loa
from authbroker.store.base import StateStore
from authbroker.testing.simulators.oidc import LOGOUT_MISBEHAVIOURS
from conftest import run_together
from oidc_web_support import OUT, oidc_app, web_login
from runtimes import run_sync
from web_support import SECRET, Stack, build


@pytest.fixture(params=["asgi", "wsgi"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from build(request.param, tmp_path)


def _key_of(session_id: str) -> str:
    key = session_store_key(session_id)
    assert key is not None, "a session id this library made"
    return key


def _session(store: Any, client: httpx.Client, core: Any) -> tuple[str, dict[str, Any]] | None:
    cookie = client.cookies.get("ab_session")
    sid = core.sessions.session_id(cookie)
    key = session_store_key(sid) if sid else None
    raw = store.get(key) if key else None
    return None if raw is None else (sid, json.loads(raw))


# -- local logout ---------------------------------------------------------------------


def test_local_logout_destroys_record_and_cookie(stack: Stack) -> None:
    stack.login()
    session_id, record = _session(stack.mem, stack.client, stack.middleware.core) or ("", {})
    assert record
    r = stack.client.post("/auth/logout", data={"csrf": record["csrf"], "return_to": "/public"})
    assert r.status_code == 303 and r.headers["location"] == "/public"
    assert any(
        c.startswith("ab_session=;") and "Max-Age=0" in c for c in r.headers.get_list("set-cookie")
    )
    assert stack.mem.get(_key_of(session_id)) is None


def test_logout_everywhere_ends_the_users_other_sessions(stack: Stack) -> None:
    other = stack.fresh_client()
    stack.login()
    from web_support import login

    login(other)
    assert other.get("/full").status_code == 200
    _, record = _session(stack.mem, stack.client, stack.middleware.core) or ("", {})
    r = stack.client.post("/auth/logout", data={"csrf": record["csrf"], "everywhere": "1"})
    assert r.status_code == 303
    assert other.get("/full").status_code != 200  # the other browser is logged out too


def test_logout_with_bad_csrf_or_foreign_return_to_changes_nothing(stack: Stack) -> None:
    stack.login()
    session_id, record = _session(stack.mem, stack.client, stack.middleware.core) or ("", {})
    r = stack.client.post("/auth/logout", data={"csrf": "wrong"})
    assert r.status_code == 403
    r = stack.client.post(
        "/auth/logout", data={"csrf": record["csrf"], "return_to": "https://evil.example/"}
    )
    assert r.status_code == 400
    assert stack.mem.get(_key_of(session_id)) is not None


# -- RP-initiated logout ----------------------------------------------------------------


def test_rp_initiated_logout_at_the_op() -> None:
    with oidc_app() as (client, broker, _):
        op = web_login(client, broker, "ftn")
        store = broker.store
        core = client._transport.app.core  # type: ignore[attr-defined]
        session_id, record = _session(store, client, core) or ("", {})
        r = client.post("/auth/logout", data={"csrf": record["csrf"]})
        assert r.status_code == 303
        assert r.headers["referrer-policy"] == "no-referrer"
        target = urlsplit(r.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == op.issuer + "/logout"
        q = {k: v[0] for k, v in parse_qs(target.query).items()}
        assert set(q) == {"id_token_hint", "client_id", "post_logout_redirect_uri", "state"}
        assert q["client_id"] == op.client_id
        assert q["post_logout_redirect_uri"] == "http://127.0.0.1:8000/"
        assert len(q["state"]) >= 32
        # The local session is gone before the browser reaches the OP.
        assert store.get(_key_of(session_id)) is None
        assert store.get("sessop:" + session_id) is None
        back = OUT.get(r.headers["location"])
        assert back.status_code == 302
        assert back.headers["location"] == f"http://127.0.0.1:8000/?state={q['state']}"
        assert op.ended_sids == {op.sid_of()}


def test_rp_initiated_logout_can_be_switched_off() -> None:
    from oidc_web_support import oidc_settings

    settings = oidc_settings()
    ftn = settings.providers["ftn"]
    settings.providers["ftn"] = ftn.with_options(rp_initiated_logout=False)
    with oidc_app(settings=settings) as (client, broker, _):
        web_login(client, broker, "ftn")
        core = client._transport.app.core  # type: ignore[attr-defined]
        _, record = _session(broker.store, client, core) or ("", {})
        r = client.post("/auth/logout", data={"csrf": record["csrf"]})
        assert r.headers["location"] == "/"


# -- back-channel logout ----------------------------------------------------------------


def _two_logins(client: httpx.Client, broker: Any, other: httpx.Client) -> Any:
    op = web_login(client, broker, "ftn")
    sid_1 = op.sid_of()
    web_login(other, broker, "ftn")
    assert client.get("/full").status_code == 200
    assert other.get("/full").status_code == 200
    return op, sid_1


def _other(client: httpx.Client) -> httpx.Client:
    return httpx.Client(transport=client._transport, base_url=client.base_url)


def test_backchannel_logout_by_sid_ends_that_session_only() -> None:
    with oidc_app() as (client, broker, sink):
        other = _other(client)
        op, sid_1 = _two_logins(client, broker, other)
        r = op.send_backchannel_logout(op.logout_token(sid=sid_1), client)
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
        assert client.get("/full").status_code != 200
        assert other.get("/full").status_code == 200
        assert sink.events[-1].name == "session.ended"
        assert sink.events[-1].outcome == "success"


def test_backchannel_logout_by_sub_ends_every_session_of_the_person() -> None:
    with oidc_app() as (client, broker, _):
        other = _other(client)
        op, _ = _two_logins(client, broker, other)
        sub = broker.store  # the sub is the OP's, read from the ID token the RP kept
        core = client._transport.app.core  # type: ignore[attr-defined]
        _, record = _session(broker.store, client, core) or ("", {})
        hint = json.loads(
            sub.get("sessop:" + core.sessions.session_id(client.cookies["ab_session"]))
        )
        assert hint["h"].count(".") == 2  # the signed ID token is kept server-side
        person_sub = record["identity"]["subject"]
        r = op.send_backchannel_logout(op.logout_token(sub=person_sub), client)
        assert r.status_code == 200
        assert client.get("/full").status_code != 200
        assert other.get("/full").status_code != 200


@pytest.mark.parametrize("mutation", sorted(LOGOUT_MISBEHAVIOURS))
def test_misbehaving_logout_tokens_are_refused_and_end_nothing(mutation: str) -> None:
    with oidc_app() as (client, broker, sink):
        op = web_login(client, broker, "ftn")
        token = op.logout_token(sid=op.sid_of(), mutations=(mutation,))
        r = op.send_backchannel_logout(token, client)
        assert r.status_code == 400
        assert r.json() == {"error": "invalid_request"}
        assert client.get("/full").status_code == 200
        failed = [e for e in sink.events if e.name == "session.ended"]
        assert failed and failed[-1].outcome == "failure" and failed[-1].reason


def test_replayed_logout_token_is_refused() -> None:
    with oidc_app() as (client, broker, _):
        op = web_login(client, broker, "ftn")
        token = op.logout_token(sid=op.sid_of())
        assert op.send_backchannel_logout(token, client).status_code == 200
        assert op.send_backchannel_logout(token, client).status_code == 400


def test_concurrent_deliveries_of_one_logout_token_accept_one() -> None:
    with oidc_app() as (client, broker, _):
        op = web_login(client, broker, "ftn")
        token = op.logout_token(sid=op.sid_of())
        codes = run_together(8, lambda i: op.send_backchannel_logout(token, client).status_code)
        assert sorted(codes) == [200] + [400] * 7


def test_an_id_token_is_not_a_logout_token() -> None:
    with oidc_app() as (client, broker, _):
        op = web_login(client, broker, "ftn")
        core = client._transport.app.core  # type: ignore[attr-defined]
        sess = core.sessions.session_id(client.cookies["ab_session"])
        id_token = json.loads(broker.store.get("sessop:" + sess))["h"]
        assert op.send_backchannel_logout(id_token, client).status_code == 400
        assert client.get("/full").status_code == 200


def test_backchannel_logout_for_a_non_oidc_provider_is_refused() -> None:
    with oidc_app() as (client, _broker, _):
        r = client.post("/auth/backchannel-logout/tupas-op", data={"logout_token": "x.y.z"})
        assert r.status_code == 400


# -- the sid/sub index under concurrency, on every store --------------------------------


def test_index_keeps_every_concurrent_login_on_every_store(sync_store: StateStore) -> None:
    engine = SessionEngine([SECRET], SessionPolicy(), lambda: datetime.now(UTC).timestamp())
    identity = Identity("ftn", "bank", "s-1", None, Loa.HIGH, datetime.now(UTC))

    def login(i: int) -> str:
        def routine() -> Any:
            session = yield from engine.login(f"u{i % 2}", identity)
            yield from engine.remember_provider_session(
                session,
                provider="ftn",
                issuer="https://op.example",
                sub="s-1",
                sid=f"sid-{i}",
                id_token_hint="h",
            )
            return session.id

        return str(run_sync(routine(), None, sync_store))

    ids = run_together(12, login)
    ended = run_sync(
        engine.end_provider_sessions("https://op.example", sid=None, sub="s-1"), None, sync_store
    )
    assert ended == 12
    assert all(sync_store.get(_key_of(i)) is None for i in ids)
    # Taken: a second delivery ends nothing more; another issuer's index is separate.
    assert (
        run_sync(
            engine.end_provider_sessions("https://op.example", sid=None, sub="s-1"),
            None,
            sync_store,
        )
        == 0
    )
