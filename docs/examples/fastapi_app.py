"""A FastAPI app with authbroker: the hosted pages as a router, guards as dependencies
that return the typed principal, and OpenAPI security schemes for the bearer routes.

Run: ``uvicorn --factory docs.examples.fastapi_app:create_app`` (every provider on
its simulator).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException

from authbroker import AsyncBroker
from authbroker.integrations.fastapi import (
    AuthBroker,
    public,
    require,
    require_bearer,
    require_link,
)
from authbroker.web import Principal

# Each dependency returns the typed principal or refuses the request (redirect to the
# login page, 401 with a Bearer challenge, 403).
Anyone = Annotated[Principal, Depends(public())]
Strong = Annotated[Principal, Depends(require(loa="substantial"))]
InvoiceLink = Annotated[
    Principal, Depends(require_link(scope="invoice:approve", resource="{invoice}"))
]
MobileUser = Annotated[Principal, Depends(require_bearer("invoices:read"))]


def create_app(broker: AsyncBroker | None = None, **options: Any) -> FastAPI:
    app = FastAPI(title="Invoices")
    approvals: dict[str, str] = {}
    auth = AuthBroker(
        broker or AsyncBroker(),
        link_landing=lambda scope, resource: f"/invoices/{resource}",
        **options,
    )
    auth.init_app(app)

    @app.get("/")
    async def home(user: Anyone) -> dict[str, Any]:
        return {"kind": user.kind, "level": user.access_level}

    @app.get("/ledger")
    async def ledger(user: Strong) -> dict[str, Any]:
        return {
            "ledger": "ok",
            "user": user.user_id,
            "name": user.identity.get("given_name"),
            "loa": user.loa.name if user.loa else None,
        }

    @app.get("/invoices/{invoice}")
    async def invoice(invoice: str, user: InvoiceLink) -> dict[str, Any]:
        return {
            "invoice": invoice,
            "kind": user.kind,
            "approved": invoice in approvals,
            "csrf": user.csrf_token,
        }

    @app.post("/invoices/{invoice}")
    async def approve(
        invoice: str, user: InvoiceLink, csrf: Annotated[str, Header(alias="x-csrf-token")] = ""
    ) -> dict[str, Any]:
        # The app's own requests carry the session's CSRF token (compared in constant time).
        if not user.csrf_ok(csrf):
            raise HTTPException(403, "csrf")
        approvals[invoice] = user.user_id or ""
        return {"invoice": invoice, "approved": True}

    @app.get("/api/mobile/invoices")
    async def mobile_invoices(
        user: MobileUser,
    ) -> dict[str, Any]:
        return {"user": user.user_id, "scopes": user.scopes}

    return app
