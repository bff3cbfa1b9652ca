"""A Starlette app behind authbroker's ASGI middleware (works the same for FastAPI,
which is Starlette underneath: ``app.add_middleware(AuthMiddleware, ...)``).

Run: ``uvicorn --factory docs.examples.starlette_app:create_app`` (simulator environment).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from authbroker import AsyncBroker, Loa
from authbroker.web import PUBLIC, Principal, require, require_bearer, route
from authbroker.web.asgi import AuthMiddleware


async def home(request: Request) -> PlainTextResponse:
    user: Principal = request.user  # scope["user"], set by the middleware
    return PlainTextResponse(f"hello {user.display_name or 'stranger'} ({user.access_level})")


async def ledger(request: Request) -> JSONResponse:
    return JSONResponse({"ledger": "ok", "scopes": request.auth.scopes})


async def invoice(request: Request) -> JSONResponse:
    return JSONResponse({"invoice": request.path_params["invoice"], "kind": request.user.kind})


def create_app(broker: AsyncBroker | None = None, **options: Any) -> Starlette:
    broker = broker or AsyncBroker()
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/ledger", ledger),
            Route("/invoices/{invoice}", invoice),
        ]
    )
    app.add_middleware(
        AuthMiddleware,
        broker=broker,
        rules=[
            route("/", PUBLIC),
            route("/ledger", require(loa=Loa.SUBSTANTIAL)),
            route("/invoices/{invoice}", require(scope="invoice:approve", resource="{invoice}")),
            route("/api/mobile/*", require_bearer("invoices:read")),
        ],
        **options,
    )
    return app
