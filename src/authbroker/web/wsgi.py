"""WSGI (PEP 3333) adapter: a thin shell around :class:`~authbroker.web.core.WebCore`.

Requests under the route prefix are served by the core; every other request passes
the core's guard and reaches the application with ``environ["authbroker.principal"]``
set to the :class:`~authbroker.web.core.Principal`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..engines.flows import Broker
from ..engines.sessions import SessionManager
from ..errors import AuthBrokerError
from .asgi import _audit_internal
from .core import MAX_BODY, Guard, MiddlewareBase, WebRequest, WebResponse
from .core.guards import ANONYMOUS, GuardOutcome

__all__ = ["PRINCIPAL_KEY", "WsgiAuthMiddleware"]

PRINCIPAL_KEY = "authbroker.principal"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_log = logging.getLogger("authbroker.web")
_REASONS = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class WsgiAuthMiddleware(MiddlewareBase[WsgiApp, Broker, SessionManager]):
    """``WsgiAuthMiddleware(app, broker=Broker(...), rules=[...])``; the blocking twin of
    :class:`authbroker.web.asgi.AuthMiddleware` (``links``: :class:`DirectLinks`,
    ``tokens``: :class:`TokenIssuer`)."""

    session_manager = SessionManager

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        req = self.web_request(environ)
        path = req.path
        if self.core.is_auth_path(path):
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                return _respond(start_response, WebResponse.json({"error": "body_too_large"}, 413))
            body = environ["wsgi.input"].read(length) if length else b""
            return _respond(start_response, self.serve(self.web_request(environ, body)))
        outcome = self.check(req)
        if outcome.response is not None:
            return _respond(start_response, outcome.response)
        environ[PRINCIPAL_KEY] = outcome.principal
        return self.app(environ, start_response)

    def web_request(self, environ: Mapping[str, Any], body: bytes = b"") -> WebRequest:
        """The :class:`WebRequest` of a WSGI ``environ`` (Flask's ``request.environ``,
        Django's ``request.META``); ``body`` is read by the caller."""
        # PEP 3333: PATH_INFO is bytes decoded as latin-1; undo that to get UTF-8 text.
        raw_path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        try:
            path = raw_path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            path = raw_path
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").lower()] = str(value)
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        peer = environ.get("REMOTE_ADDR")
        return WebRequest(
            method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
            path=path,
            query_string=str(environ.get("QUERY_STRING", "")),
            headers=headers,
            body=body,
            client_ip=self.core.client_ip(str(peer) if peer else None, headers),
        )

    def serve(self, req: WebRequest) -> WebResponse:
        """Serve one request under the route prefix in one runtime call; never raises
        (an unexpected error becomes the generic page and a ``web.error`` audit event).
        Framework integrations (:mod:`authbroker.integrations`) call this too."""
        lang = self.core.language(req)
        found = self.core.route_for(req)
        json_route = found is not None and found[0].json
        try:
            # One runtime call per request: the handler composes the engines.
            response: WebResponse = self.runtime.run(self.core.handle(req))
        except AuthBrokerError as exc:
            response = self.core.error_page(exc, lang, json_body=json_route)
        except Exception:  # WEB-04 last resort
            _log.exception("unexpected error in an auth route")
            _audit_internal(self.broker, req)
            response = self.core.internal_error(lang, json_body=json_route)
        return response

    def check(
        self,
        req: WebRequest,
        guard: Guard | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> GuardOutcome:
        """Run the guard (the route's own ``guard``, else the path-rule table) in one
        runtime call: the outcome has the principal, or the response refusing it."""
        try:
            outcome: GuardOutcome = self.runtime.run(
                self.core.guard(req, required=guard, groups=groups)
            )
        except AuthBrokerError as exc:
            return GuardOutcome(ANONYMOUS, WebResponse.json({"error": exc.code}, exc.http_status))
        return outcome


def _respond(start_response: Callable[..., Any], response: WebResponse) -> list[bytes]:
    headers = list(response.headers)
    if not any(k.lower() == "content-length" for k, _ in headers):
        headers.append(("content-length", str(len(response.body))))
    reason = _REASONS.get(response.status, "Unknown")
    start_response(f"{response.status} {reason}", headers)
    return [response.body]
