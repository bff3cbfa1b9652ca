"""ASGI 3 adapter: a thin shell around :class:`~authbroker.web.core.WebCore`.

Requests under the route prefix (``/auth``) are served by the core's hosted pages
and endpoints; every other HTTP request passes the core's guard first and reaches
the application with ``scope["auth"]`` and ``scope["user"]`` set (Starlette's
convention: ``request.auth`` / ``request.user``) to the same
:class:`~authbroker.web.core.Principal`. No framework is needed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from ..engines.flows import AsyncBroker
from ..engines.sessions import AsyncSessionManager
from ..errors import AuthBrokerError
from .core import MAX_BODY, Guard, MiddlewareBase, WebRequest, WebResponse
from .core.guards import ANONYMOUS, GuardOutcome

__all__ = ["AuthMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = logging.getLogger("authbroker.web")


class AuthMiddleware(MiddlewareBase[ASGIApp, AsyncBroker, AsyncSessionManager]):
    """``AuthMiddleware(app, broker=AsyncBroker(...), rules=[...])``.

    ``sessions`` defaults to an :class:`AsyncSessionManager` on the broker's store and
    secret keys; ``links`` (:class:`authbroker.engines.links.AsyncDirectLinks`) and ``tokens``
    (:class:`authbroker.engines.tokens.AsyncTokenIssuer`) enable the direct-link routes and
    the bearer guard. Remaining keyword arguments go to :class:`WebCore`.
    """

    session_manager = AsyncSessionManager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        req = self.web_request(scope)
        if scope["type"] == "http" and self.core.is_auth_path(req.path):
            body = await _read_body(receive)
            if body is None:
                await _send(send, WebResponse.json({"error": "body_too_large"}, 413))
                return
            await _send(send, await self.serve(self.web_request(scope, body)))
            return
        outcome = await self.check(req)
        if outcome.response is not None:
            await _send(send, outcome.response)
            return
        scope["auth"] = outcome.principal
        scope["user"] = outcome.principal
        scope["authbroker.principal"] = outcome.principal
        await self.app(scope, receive, send)

    def web_request(self, scope: Scope, body: bytes = b"") -> WebRequest:
        """The :class:`WebRequest` of an ASGI ``scope`` (Starlette's ``request.scope``);
        ``body`` is read by the caller."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name in headers:  # RFC 9110 §5.3 (fields), RFC 6265 §5.4 (cookie: "; ")
                value = headers[name] + ("; " if name == "cookie" else ", ") + value
            headers[name] = value
        client = scope.get("client")
        peer = str(client[0]) if client else None
        return WebRequest(
            method=str(scope.get("method", "GET")).upper(),
            path=str(scope.get("path", "")),
            query_string=bytes(scope.get("query_string", b"")).decode("latin-1"),
            headers=headers,
            body=body,
            client_ip=self.core.client_ip(peer, headers),
        )

    async def serve(self, req: WebRequest) -> WebResponse:
        """Serve one request under the route prefix in one runtime call; never raises
        (an unexpected error becomes the generic page and a ``web.error`` audit event).
        Framework integrations (:mod:`authbroker.integrations`) call this too."""
        lang = self.core.language(req)
        found = self.core.route_for(req)
        json_route = found is not None and found[0].json
        try:
            # One runtime call per request: the handler composes the engines.
            response: WebResponse = await self.runtime.run(self.core.handle(req))
        except AuthBrokerError as exc:  # a service failed outside a handler's try
            response = self.core.error_page(exc, lang, json_body=json_route)
        except Exception:  # WEB-04 last resort: generic page, no traceback
            _log.exception("unexpected error in an auth route")
            _audit_internal(self.broker, req)
            response = self.core.internal_error(lang, json_body=json_route)
        return response

    async def check(
        self,
        req: WebRequest,
        guard: Guard | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> GuardOutcome:
        """Run the guard (the route's own ``guard``, else the path-rule table) in one
        runtime call: the outcome has the principal, or the response refusing it."""
        try:
            outcome: GuardOutcome = await self.runtime.run(
                self.core.guard(req, required=guard, groups=groups)
            )
        except AuthBrokerError as exc:
            return GuardOutcome(ANONYMOUS, WebResponse.json({"error": exc.code}, exc.http_status))
        return outcome


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, response: WebResponse) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    if not any(k.lower() == "content-length" for k, _ in response.headers):
        headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def _audit_internal(broker: Any, req: WebRequest) -> None:
    with contextlib.suppress(Exception):  # auditing must not mask the original failure
        broker.audit.emit(
            "web.error",
            "failure",
            client_ip=req.client_ip,
            reason="internal",
            details={"path": req.path.split("/")[1:3]},
        )
