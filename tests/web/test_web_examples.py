"""The examples in docs/examples and the demo app, exercised through test clients."""

from __future__ import annotations

from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from authbroker import AsyncBroker, Broker
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from docs_support import load_example
from web_support import BASE, login, make_settings, providers


def _load(name: str) -> ModuleType:
    return load_example(f"{name}.py", f"example_{name}")


def _exercise(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "anonymous" in r.text
    r = client.get("/ledger")
    assert r.status_code == 303 and r.headers["location"].startswith("/auth/?return_to=")
    login(client, "echo", "/ledger")
    r = client.get("/ledger")
    assert r.status_code == 200
    assert r.json()["ledger"] == "ok"
    assert client.get("/invoices/INV-1").json()["kind"] == "full"


def test_starlette_example() -> None:
    module = _load("starlette_app")
    broker = AsyncBroker(make_settings(), store=AsyncMemoryStore(), providers=providers())
    app = module.create_app(broker)
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        _exercise(client)


def test_flask_example() -> None:
    module = _load("flask_app")
    broker = Broker(make_settings(), store=MemoryStore(), providers=providers())
    app = module.create_app(broker)
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url=BASE, follow_redirects=False) as client:
        _exercise(client)


@pytest.fixture(scope="module")
def demo_client() -> Any:
    from authbroker.web.demo import create_app

    app = create_app("http://127.0.0.1:8000")
    # A real client address: BankID orders carry the end user's IP.
    with TestClient(
        app, base_url="http://127.0.0.1:8000", follow_redirects=False, client=("127.0.0.1", 50000)
    ) as client:
        yield client, app.state.demo


def test_demo_home_shows_direct_link(demo_client: Any) -> None:
    client, services = demo_client
    r = client.get("/")
    assert r.status_code == 200
    assert services.link_url in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_demo_ftn_login_via_simulator_consent(demo_client: Any) -> None:
    client, _ = demo_client
    r = client.get("/auth/begin/ftn", params={"return_to": "/me"})
    assert r.status_code == 303
    # The OP's pages are served under the demo's own origin (works in a container).
    authorize = urlsplit(r.headers["location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == "http://127.0.0.1:8000"
    assert authorize.path == "/_sim/ftn/op/authorize"
    consent = client.get(r.headers["location"])
    assert consent.status_code == 200 and 'name="person"' in consent.text
    form = consent.text
    assert 'action="approve"' in form and 'href="consent.css"' in form
    assert client.get("/_sim/ftn/op/consent.css").status_code == 200
    txn = form.split('name="txn" value="', 1)[1].split('"', 1)[0]
    person = form.split('name="person" value="', 1)[1].split('"', 1)[0]
    back = client.post("/_sim/ftn/op/approve", data={"txn": txn, "person": person})
    assert back.status_code in (302, 303)
    callback = urlsplit(back.headers["location"])
    assert callback.path == "/auth/callback/ftn" and "code" in parse_qs(callback.query)
    r = client.get(callback.path + "?" + callback.query)
    assert r.status_code == 303 and r.headers["location"] == "/me"
    me = client.get("/me")
    assert 'id="kind">full<' in me.text
    assert client.get("/books").status_code == 200
    jwks = client.get("/auth/jwks.json").json()
    assert jwks["keys"] and all("d" not in k for k in jwks["keys"])


def test_demo_sim_pages_only_for_browser_simulators(demo_client: Any) -> None:
    client, _ = demo_client
    client.get("/auth/begin/ftn", params={"return_to": "/me"})
    # A provider without browser pages (or an unknown name) is not reachable here.
    assert client.get("/_sim/bankid-se/rp/v6.0/auth").status_code == 404
    assert client.get("/_sim/nope/op/authorize").status_code == 404
    assert client.get("/_sim/ftn/op/nothing").status_code == 404


def _bankid_flow(client: Any, same_device: bool) -> tuple[str, str]:
    import re

    page = client.get("/auth/begin/bankid-se", params={"return_to": "/me"})
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    r = client.post(
        "/auth/begin/bankid-se",
        data={"csrf": csrf.group(1), "return_to": "/me", "same_device": str(same_device).lower()},
    )
    assert r.status_code == 303
    wait = client.get(r.headers["location"])
    token = re.search(r'data-csrf="([^"]+)"', wait.text)
    assert token
    return r.headers["location"].rsplit("/", 1)[1], token.group(1)


def test_demo_bankid_app_on_this_device_returns_through_return_url(demo_client: Any) -> None:
    client, services = demo_client
    flow, csrf = _bankid_flow(client, same_device=True)
    url = f"/auth/simulate/bankid-se/{flow}/autostart"
    assert client.post(url).status_code == 403  # CSRF header required
    sim = services.broker.simulator("bankid-se").extra["simulator"]
    assert len(sim.pending_orders()) >= 1
    r = client.post(url, headers={"x-csrf-token": csrf})
    assert r.status_code == 200 and r.json()["result"] == "ok"
    back = urlsplit(r.json()["redirect"])
    assert back.path == "/auth/callback/bankid-se"
    assert set(parse_qs(back.query)) == {"flow_id", "nonce"}
    # Picked up once: a second launch is refused by the simulated app.
    again = client.post(url, headers={"x-csrf-token": csrf})
    assert again.json() == {"result": "not_pending"}
    # A QR flow has no autostart link to launch, and its QR answers 410 once gone.
    qr_flow, qr_csrf = _bankid_flow(client, same_device=False)
    bad = client.post(
        f"/auth/simulate/bankid-se/{qr_flow}/autostart", headers={"x-csrf-token": qr_csrf}
    )
    assert bad.status_code == 400 and bad.json()["error"] == "no_autostart"
    payload = client.get(f"/auth/qr/{qr_flow}").json()["qr"]
    assert sim.scan(payload, "199001010017") == "ok"
    polled = client.post(f"/auth/poll/{qr_flow}", json={}, headers={"x-csrf-token": qr_csrf})
    assert polled.json()["status"] == "pending"  # the app has it; no QR to show any more
    gone = client.get(f"/auth/qr/{qr_flow}")
    assert gone.status_code == 410 and gone.json()["code"] == "no_qr"


def test_demo_refuses_other_host_naming_both(demo_client: Any) -> None:
    client, _ = demo_client
    r = client.get("/", headers={"host": "localhost:8000"})
    assert r.status_code == 421
    assert "127.0.0.1:8000" in r.text and "localhost:8000" in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert client.get("/").status_code == 200


def test_demo_mobile_api_needs_bearer(demo_client: Any) -> None:
    client, _ = demo_client
    assert client.get("/api/mobile/invoices").status_code == 401
    token = client.post("/demo/mobile-token").json()["access_token"]
    r = client.get("/api/mobile/invoices", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["user"] == "acct-demo"
    assert client.get("/books", headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_demo_mobiilivarmenne_and_web_eid_on_simulators(demo_client: Any) -> None:
    import re
    import time

    client, _ = demo_client
    page = client.get("/auth/begin/mobiilivarmenne", params={"return_to": "/me"})
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    token = csrf.group(1)
    r = client.post(
        "/auth/begin/mobiilivarmenne",
        data={"csrf": token, "return_to": "/me", "phone": "+358401234567"},
    )
    assert r.status_code == 303
    assert 'id="verification-code"' in client.get(r.headers["location"]).text
    flow_id = r.headers["location"].rsplit("/", 1)[1]
    status = "pending"
    for _ in range(15):
        body = client.post(f"/auth/poll/{flow_id}", json={}, headers={"x-csrf-token": token})
        status = body.json()["status"]
        if status != "pending":
            break
        time.sleep(1.05)  # the provider polls the MSSP at most once per interval
    assert status == "done"
    r = client.get("/auth/begin/web-eid", params={"return_to": "/me"})
    challenge = re.search(r'data-challenge="([^"]+)"', r.text)
    flow = re.search(r'data-flow="([^"]+)"', r.text)
    assert challenge and flow
    signed = client.post(
        f"/auth/webeid/{flow.group(1)}/simulate",
        json={"challenge": challenge.group(1)},
        headers={"x-csrf-token": token},
    ).json()["token"]
    r = client.post(f"/auth/webeid/{flow.group(1)}", data={"csrf": token, "token": signed})
    assert r.status_code == 303 and r.headers["location"] == "/me"
    r = client.get("/auth/begin/tupas-op", params={"return_to": "/me"})
    assert r.status_code == 200 and 'id="autopost"' in r.text
    assert "form-action 'self' http://127.0.0.1:" in r.headers["content-security-policy"]
