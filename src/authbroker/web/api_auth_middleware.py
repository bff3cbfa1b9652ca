"""ASGI and WSGI middleware that authenticates signed API calls before the app runs.

Both adapters only translate the server's request into an
:class:`authbroker.api_auth.Message` and hand it to the one
:class:`~authbroker.api_auth.ApiVerifier`; every check lives there. On success the
principal (user, company, credential) is put in ``scope["authbroker.api_principal"]``
/ ``environ["authbroker.api_principal"]`` and the app runs with the body it would have
received anyway. On failure the app does not run: the client gets a JSON error body
``{"error": <code>, "type": <error class>, "message": <log-safe sentence>}`` with 401
(not authenticated), 403 (authenticated, not allowed), 413 (body too large) or 503
(the store or a resolver is down).

``origin`` (``"https://api.example.com"``) fixes the scheme and authority of the
``@target-uri`` the signature is checked against. Set it whenever the app runs
behind a TLS-terminating proxy (the app would otherwise see ``http``) and to pin
the public host name; without it they come from the server and the ``Host`` header.
"""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any, TypeAlias
from urllib.parse import quote, urlsplit

from ..api_auth import ApiVerifier, Message
from ..errors import AccessDenied, AuthBrokerError, ConfigError, InvalidInput
from ..kernel import AsyncRuntime, SyncRuntime
from ..store.base import AsyncStateStore, StateStore

__all__ = [
    "PRINCIPAL_KEY",
    "AsgiApiAuthMiddleware",
    "WsgiApiAuthMiddleware",
    "error_response",
]

PRINCIPAL_KEY = "authbroker.api_principal"
DEFAULT_MAX_BODY = 1024 * 1024
_MAX_HEADERS = 128
#: RFC 3986 §3.3 pchar plus "/" and "%": what a server passes through unencoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"

Scope: TypeAlias = MutableMapping[str, Any]
AsgiMessage: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[AsgiMessage]]
Send: TypeAlias = Callable[[AsgiMessage], Awaitable[None]]
AsgiApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse: TypeAlias = Callable[..., Any]
WsgiApp: TypeAlias = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _BodyTooLarge(InvalidInput):
    default_code = "body_too_large"
    http_status = 413


def error_response(exc: AuthBrokerError) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and JSON body answering a failed authentication."""
    if isinstance(exc, AccessDenied):
        status = 403
    elif exc.http_status in (413, 429) or exc.http_status >= 500:
        status = exc.http_status
    else:
        status = 401
    body = json.dumps(
        {"error": exc.code, "type": type(exc).__name__, "message": exc.message},
        separators=(",", ":"),
    ).encode("utf-8")
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    ]
    return status, headers, body


def _check_origin(origin: str | None) -> str | None:
    if origin is None:
        return None
    parts = urlsplit(origin)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
        raise ConfigError("must be scheme://host[:port]", key="api_auth.origin")
    return f"{parts.scheme}://{parts.netloc}"


def _target_uri(origin: str | None, scheme: str, host: str, path: str, query: str) -> str:
    base = origin if origin is not None else f"{scheme}://{host}"
    return base + (path or "/") + (f"?{query}" if query else "")


def _protected(path: str, prefixes: Sequence[str]) -> bool:
    return any(path.startswith(prefix) for prefix in prefixes)


class AsgiApiAuthMiddleware:
    """ASGI middleware; ``store`` keeps the nonce replay cache."""

    def __init__(
        self,
        app: AsgiApp,
        verifier: ApiVerifier,
        store: AsyncStateStore,
        *,
        origin: str | None = None,
        path_prefixes: Sequence[str] = ("/",),
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.store = store
        #: Runs the verifier's routine: nonces go to ``store``, resolvers may be async.
        self.runtime = AsyncRuntime(store=store)
        self.origin = _check_origin(origin)
        self.path_prefixes = tuple(path_prefixes)
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or not _protected(scope.get("path", ""), self.path_prefixes):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
            if body is None:
                return  # the client went away
            message = self._message(scope, body)
            principal = await self.runtime.run(self.verifier.authenticate(message))
        except AuthBrokerError as exc:
            await self._reject(send, exc)
            return
        replayed = False

        async def replay() -> AsgiMessage:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        scope = dict(scope)
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, replay, send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        for name, value in scope.get("headers", ()):
            if bytes(name).lower() == b"content-length":
                try:
                    declared = int(bytes(value))
                except ValueError as exc:
                    raise InvalidInput("bad Content-Length", code="bad_request") from exc
                if declared > self.max_body:
                    raise _BodyTooLarge("the request body is too large")
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await receive()
            if event.get("type") == "http.disconnect":
                return None
            chunk = bytes(event.get("body", b""))
            size += len(chunk)
            if size > self.max_body:
                raise _BodyTooLarge("the request body is too large")
            chunks.append(chunk)
            if not event.get("more_body", False):
                return b"".join(chunks)

    def _message(self, scope: Scope, body: bytes) -> Message:
        raw_headers = list(scope.get("headers", ()))
        if len(raw_headers) > _MAX_HEADERS:
            raise InvalidInput("too many headers", code="header_too_large")
        headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in raw_headers]
        host = next((v for k, v in headers if k.lower() == "host"), None)
        if host is None:
            server = scope.get("server") or ("localhost", None)
            host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
        raw_path = scope.get("raw_path")
        path = (
            bytes(raw_path).decode("latin-1")
            if raw_path
            else quote(str(scope.get("path", "/")), safe=_PATH_SAFE)
        )
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        return Message(
            method=str(scope.get("method", "GET")),
            target_uri=_target_uri(
                self.origin, str(scope.get("scheme", "http")), host, path, query
            ),
            headers=headers,
            body=body,
        )

    @staticmethod
    async def _reject(send: Send, exc: AuthBrokerError) -> None:
        status, headers, body = error_response(exc)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


class WsgiApiAuthMiddleware:
    """WSGI middleware; ``store`` keeps the nonce replay cache."""

    def __init__(
        self,
        app: WsgiApp,
        verifier: ApiVerifier,
        store: StateStore,
        *,
        origin: str | None = None,
        path_prefixes: Sequence[str] = ("/",),
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.store = store
        #: Runs the verifier's routine blocking: nonces go to ``store``.
        self.runtime = SyncRuntime(store=store)
        self.origin = _check_origin(origin)
        self.path_prefixes = tuple(path_prefixes)
        self.max_body = max_body

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path_info = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        if not _protected(path_info or "/", self.path_prefixes):
            return self.app(environ, start_response)
        try:
            body = self._read_body(environ)
            message = self._message(environ, path_info, body)
            principal = self.runtime.run(self.verifier.authenticate(message))
        except AuthBrokerError as exc:
            status, headers, payload = error_response(exc)
            start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
            return [payload]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ[PRINCIPAL_KEY] = principal
        return self.app(environ, start_response)

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        raw_length = str(environ.get("CONTENT_LENGTH") or "0").strip()
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise InvalidInput("bad Content-Length", code="bad_request") from exc
        if length < 0:
            raise InvalidInput("bad Content-Length", code="bad_request")
        if length > self.max_body:
            raise _BodyTooLarge("the request body is too large")
        stream = environ.get("wsgi.input")
        if stream is None or length == 0:
            return b""
        body = bytes(stream.read(length))
        if len(body) != length:
            raise InvalidInput("the request body was cut short", code="bad_request")
        return body

    def _message(self, environ: dict[str, Any], path_info: str, body: bytes) -> Message:
        headers: list[tuple[str, str]] = []
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers.append((key[5:].replace("_", "-").lower(), str(value)))
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers.append((key.replace("_", "-").lower(), str(environ[key])))
        if len(headers) > _MAX_HEADERS:
            raise InvalidInput("too many headers", code="header_too_large")
        scheme = str(environ.get("wsgi.url_scheme", "http"))
        host = environ.get("HTTP_HOST")
        if not host:
            host = f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
        raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if raw_uri and str(raw_uri).startswith("/"):
            path, _, query = str(raw_uri).partition("?")
        else:
            # PEP 3333: PATH_INFO is the decoded path as latin-1; re-encode it.
            try:
                path = quote(path_info.encode("latin-1"), safe=_PATH_SAFE)
            except UnicodeEncodeError as exc:
                raise InvalidInput("the request path is not WSGI text", code="bad_request") from exc
            query = str(environ.get("QUERY_STRING", ""))
        return Message(
            method=str(environ.get("REQUEST_METHOD", "GET")),
            target_uri=_target_uri(self.origin, scheme, str(host), path, query),
            headers=headers,
            body=body,
        )


_REASONS = {
    401: "Unauthorized",
    403: "Forbidden",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
