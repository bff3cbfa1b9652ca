"""A Flask app with the authbroker extension: hosted pages as a blueprint, guards as
decorators on the routes.

Run: ``flask --app docs.examples.flask_integration_app:create_app run`` (every
provider on its simulator).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from authbroker import Broker
from authbroker.integrations.flask import (
    AuthBroker,
    bearer_required,
    current_identity,
    current_principal,
    link_required,
    login_required,
    public,
)


def create_app(broker: Broker | None = None, **options: Any) -> Flask:
    app = Flask(__name__)
    approvals: dict[str, str] = {}

    @app.get("/")
    @public
    def home() -> Any:
        return jsonify(kind=current_principal.kind, level=current_principal.access_level)

    @app.get("/ledger")
    @login_required(loa="substantial")
    def ledger() -> Any:
        return jsonify(
            ledger="ok",
            user=current_principal.user_id,
            name=current_identity.get("given_name"),
            loa=current_principal.loa.name if current_principal.loa else None,
        )

    @app.route("/invoices/<invoice>", methods=["GET", "POST"])
    @link_required(scope="invoice:approve", resource="{invoice}")
    def invoice(invoice: str) -> Any:
        if request.method == "POST":
            # The app's own forms carry the session's CSRF token (compared in constant time).
            if not current_principal.csrf_ok(request.form.get("csrf")):
                return jsonify(error="csrf"), 403
            approvals[invoice] = current_principal.user_id or ""
        return jsonify(
            invoice=invoice,
            kind=current_principal.kind,
            approved=invoice in approvals,
            csrf=current_principal.csrf_token,
        )

    @app.get("/api/mobile/invoices")
    @bearer_required("invoices:read")
    def mobile_invoices() -> Any:
        return jsonify(user=current_principal.user_id, scopes=current_principal.scopes)

    AuthBroker(
        app,
        broker=broker or Broker(),
        link_landing=lambda scope, resource: f"/invoices/{resource}",
        **options,
    )
    return app
