"""A Flask app behind authbroker's WSGI middleware.

Run: ``flask --app docs.examples.flask_app:create_app run`` (simulator environment).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from authbroker import Broker, Loa
from authbroker.web import PUBLIC, require, route
from authbroker.web.wsgi import PRINCIPAL_KEY, WsgiAuthMiddleware


def create_app(broker: Broker | None = None, **options: Any) -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def home() -> Any:
        user = request.environ[PRINCIPAL_KEY]
        return jsonify(kind=user.kind, level=user.access_level)

    @app.get("/ledger")
    def ledger() -> Any:
        user = request.environ[PRINCIPAL_KEY]
        return jsonify(ledger="ok", user=user.user_id, loa=user.loa.name)

    @app.get("/invoices/<invoice>")
    def invoice(invoice: str) -> Any:
        return jsonify(invoice=invoice, kind=request.environ[PRINCIPAL_KEY].kind)

    app.wsgi_app = WsgiAuthMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        broker=broker or Broker(),
        rules=[
            route("/", PUBLIC),
            route("/ledger", require(loa=Loa.SUBSTANTIAL)),
            route("/invoices/{invoice}", require(scope="invoice:approve", resource="{invoice}")),
        ],
        **options,
    )
    return app
