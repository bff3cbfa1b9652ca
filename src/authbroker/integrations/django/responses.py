"""Django request/response conversion for the web core."""

from __future__ import annotations

from http.cookies import Morsel
from typing import Any

from django.http import HttpRequest, HttpResponse

from ...web.core import MAX_BODY, WebRequest, WebResponse
from ...web.wsgi import WsgiAuthMiddleware


class _RawMorsel(Morsel[str]):
    """A ``Set-Cookie`` header exactly as the core wrote it: Django sends cookies only
    through ``response.cookies``, and re-serializing could change the value's quoting."""

    def __init__(self, raw: str) -> None:
        super().__init__()
        first, *attrs = raw.split(";")
        name, _, value = first.strip().partition("=")
        self.set(name, value, value)
        for attr in attrs:
            key, _, val = attr.strip().partition("=")
            if key.lower() in ("path", "max-age", "samesite", "domain", "expires"):
                self[key.lower()] = val
            elif key.lower() in ("httponly", "secure"):
                self[key.lower()] = True
        self.raw = raw

    def output(self, attrs: Any = None, header: str = "Set-Cookie:") -> str:
        return f"{header} {self.raw}"


def to_django(response: WebResponse) -> HttpResponse:
    out = HttpResponse(response.body, status=response.status)
    del out["Content-Type"]
    for name, value in response.headers:
        if name.lower() == "set-cookie":
            morsel = _RawMorsel(value)
            out.cookies[morsel.key] = morsel
        elif name.lower() != "content-length":
            out.headers[name] = value
    return out


def web_request(adapter: WsgiAuthMiddleware, request: HttpRequest, body: bytes = b"") -> WebRequest:
    """The :class:`WebRequest` of a Django request (``request.META`` is the WSGI environ)."""
    return adapter.web_request(request.META, body)


def read_body(request: HttpRequest) -> bytes | None:
    """The body, or ``None`` when it exceeds the core's limit (read at most one byte
    more than it)."""
    body = request.read(MAX_BODY + 1)
    return None if len(body) > MAX_BODY else body
