"""Interop: the client signer (httpx auth) against the verifier mounted as ASGI and
WSGI middleware, in-process and over a real socket (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from flask import Flask, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authbroker.api_auth import (
    ApiKey,
    ApiPrincipal,
    ApiSigner,
    ApiVerifier,
    HmacSecret,
    IntegrationCredential,
    MemoryKeyRegistry,
    SigningKey,
)
from authbroker.audit import AuditLog, MemorySink
from authbroker.store import AsyncMemoryStore, MemoryStore
from authbroker.web.api_auth_middleware import (
    PRINCIPAL_KEY,
    AsgiApiAuthMiddleware,
    WsgiApiAuthMiddleware,
)

COMPANY = "1234567-8"
ED = ed25519.Ed25519PrivateKey.generate()
EC = ec.generate_private_key(ec.SECP256R1())
SECRET = HmacSecret(b"0123456789abcdef0123456789abcdef")
KEYS: dict[str, SigningKey] = {"k-ed": ED, "k-ec": EC, "k-hmac": SECRET}


def principal_json(principal: ApiPrincipal | None) -> dict[str, Any]:
    if principal is None:
        return {"principal": None}
    return {
        "user": principal.user_id,
        "company": principal.company_id,
        "credential": principal.credential_id,
        "key": principal.key_id,
    }


async def echo(req: Request) -> JSONResponse:
    body = await req.body()
    data = principal_json(req.scope.get(PRINCIPAL_KEY))
    data["body"] = body.decode()
    return JSONResponse(data)


def make_verifier(
    sink: MemorySink | None = None, users: dict[str, bool] | None = None
) -> ApiVerifier:
    registry = MemoryKeyRegistry()
    registry.add_credential(
        IntegrationCredential("cred-1", "acme-erp", "u-100", companies=frozenset({COMPANY}))
    )
    registry.add_key(ApiKey("k-ed", "cred-1", ED.public_key()))
    registry.add_key(ApiKey("k-ec", "cred-1", EC.public_key()))
    registry.add_key(ApiKey("k-hmac", "cred-1", SECRET))
    active = users if users is not None else {"u-100": True}
    return ApiVerifier(
        keys=registry,
        users=active.get,
        audit=AuditLog([sink or MemorySink()]),
    )


def starlette_app(**options: Any) -> AsgiApiAuthMiddleware:
    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST", "PUT"])])
    return AsgiApiAuthMiddleware(app, make_verifier(), AsyncMemoryStore(), **options)


def flask_app(**options: Any) -> WsgiApiAuthMiddleware:
    app = Flask(__name__)

    @app.route("/<path:path>", methods=["GET", "POST", "PUT"])
    def echo_wsgi(path: str) -> Any:
        data = principal_json(request.environ.get(PRINCIPAL_KEY))
        data["body"] = request.get_data().decode()
        return data

    return WsgiApiAuthMiddleware(app.wsgi_app, make_verifier(), MemoryStore(), **options)


# --- ASGI, in process ---------------------------------------------------------------------


@pytest.mark.parametrize("key_id", sorted(KEYS))
async def test_asgi_two_line_integration(key_id: str) -> None:
    auth = ApiSigner(key_id, KEYS[key_id], company=COMPANY)
    transport = httpx.ASGITransport(app=starlette_app())
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
        response = await client.post("/v1/invoices?year=2025", json={"amount": 1}, auth=auth)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "user": "u-100",
            "company": COMPANY,
            "credential": "cred-1",
            "key": key_id,
            "body": '{"amount":1}',
        }
        response = await client.get("/v1/invoices", auth=auth)
        assert response.status_code == 200
        assert response.json()["body"] == ""


async def test_asgi_unsigned_and_replayed_requests() -> None:
    transport = httpx.ASGITransport(app=starlette_app())
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
        response = await client.get("/v1/invoices")
        assert response.status_code == 401
        assert response.json()["error"] == "missing_signature"
        assert response.json()["type"] == "InvalidInput"
        assert response.headers["cache-control"] == "no-store"

        signed = client.build_request("POST", "/v1/x", content=b"{}")
        ApiSigner("k-ed", ED, company=COMPANY).sign_request(signed)
        assert (await client.send(signed)).status_code == 200
        replay = await client.send(signed)
        assert replay.status_code == 401
        assert replay.json() == {
            "error": "nonce_replayed",
            "type": "AlreadyUsed",
            "message": "the request was already used",
        }


async def test_asgi_wrong_company_is_403() -> None:
    transport = httpx.ASGITransport(app=starlette_app())
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
        auth = ApiSigner("k-ed", ED, company="9999999-9")
        response = await client.get("/v1/invoices", auth=auth)
        assert response.status_code == 403
        assert response.json()["type"] == "CompanyDenied"


async def test_asgi_body_tampered_in_transit() -> None:
    transport = httpx.ASGITransport(app=starlette_app())
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
        signed = client.build_request("POST", "/v1/x", content=b'{"amount": 1}')
        ApiSigner("k-ec", EC, company=COMPANY).sign_request(signed)
        forged = client.build_request(
            "POST", "/v1/x", content=b'{"amount": 9}', headers=dict(signed.headers)
        )
        response = await client.send(forged)
        assert response.status_code == 401
        assert response.json()["type"] == "DigestMismatch"


async def test_asgi_origin_pins_scheme_and_host() -> None:
    app = starlette_app(origin="https://api.example.com")
    auth = ApiSigner("k-ed", ED, company=COMPANY)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8000") as client:
        response = await client.get("/v1/a", auth=auth)
        assert response.status_code == 401 and response.json()["error"] == "bad_signature"
    async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as client:
        assert (await client.get("/v1/a", auth=auth)).status_code == 200


async def test_asgi_limits_and_unprotected_paths() -> None:
    app = starlette_app(path_prefixes=("/api/",), max_body=16)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
        open_response = await client.get("/health")
        assert open_response.status_code == 200 and open_response.json()["principal"] is None
        auth = ApiSigner("k-ed", ED, company=COMPANY)
        big = await client.post("/api/x", content=b"x" * 17, auth=auth)
        assert big.status_code == 413 and big.json()["error"] == "body_too_large"
        assert (await client.post("/api/x", content=b"x" * 16, auth=auth)).status_code == 200


# --- ASGI over a real socket ------------------------------------------------------------


@pytest.fixture
def uvicorn_url() -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(starlette_app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_uvicorn_sync_and_async_clients(uvicorn_url: str) -> None:
    auth = ApiSigner("k-hmac", SECRET, company=COMPANY)
    with httpx.Client(base_url=uvicorn_url, auth=auth) as client:
        response = client.put("/v1/orders/7?dry=1", json={"state": "paid"})
        assert response.status_code == 200, response.text
        assert response.json()["key"] == "k-hmac"
        assert client.get("/v1/orders", auth=None).status_code == 401

    async def run() -> None:
        async with httpx.AsyncClient(base_url=uvicorn_url, auth=auth) as client:
            responses = [await client.post("/v1/orders", json={"n": n}) for n in range(3)]
            assert [r.status_code for r in responses] == [200, 200, 200]
            assert json.loads(responses[2].json()["body"]) == {"n": 2}

    import asyncio

    asyncio.run(run())


# --- WSGI ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key_id", sorted(KEYS))
def test_wsgi_two_line_integration(key_id: str) -> None:
    auth = ApiSigner(key_id, KEYS[key_id], company=COMPANY)
    transport = httpx.WSGITransport(app=flask_app())
    with httpx.Client(transport=transport, base_url="https://api.test") as client:
        response = client.post("/v1/invoices?year=2025", json={"amount": 1}, auth=auth)
        assert response.status_code == 200, response.text
        assert response.json()["key"] == key_id
        assert response.json()["body"] == '{"amount":1}'
        assert client.get("/v1/invoices", auth=auth).json()["company"] == COMPANY


def test_wsgi_rejections() -> None:
    transport = httpx.WSGITransport(app=flask_app())
    with httpx.Client(transport=transport, base_url="https://api.test") as client:
        unsigned = client.get("/v1/invoices")
        assert unsigned.status_code == 401 and unsigned.json()["error"] == "missing_signature"
        signed = client.build_request("POST", "/v1/x", content=b"{}")
        ApiSigner("k-ed", ED, company=COMPANY).sign_request(signed)
        assert client.send(signed).status_code == 200
        assert client.send(signed).json()["type"] == "AlreadyUsed"
        denied = client.get("/v1/x", auth=ApiSigner("k-ed", ED, company="other"))
        assert denied.status_code == 403 and denied.json()["type"] == "CompanyDenied"


def test_wsgi_inactive_user_is_403_and_audited() -> None:
    sink = MemorySink()
    app = Flask(__name__)
    middleware = WsgiApiAuthMiddleware(
        app.wsgi_app, make_verifier(sink, users={"u-100": False}), MemoryStore()
    )
    transport = httpx.WSGITransport(app=middleware)
    with httpx.Client(transport=transport, base_url="https://api.test") as client:
        response = client.get("/v1/x", auth=ApiSigner("k-ed", ED, company=COMPANY))
    assert response.status_code == 403
    assert response.json()["type"] == "UserInactive"
    assert sink.names() == ["api.denied"]
    assert sink.events[0].reason == "user_inactive"
