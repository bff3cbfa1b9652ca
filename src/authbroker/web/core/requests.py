"""HTTP requests and responses as the web core sees them, parsing and WEB-02 headers.

The adapters (:mod:`authbroker.web.asgi`, :mod:`authbroker.web.wsgi`) build a
:class:`WebRequest` from their server's request and send back the
:class:`WebResponse` a handler returns. Parsing refuses what a browser never sends
legitimately: repeated parameters and oversized queries or bodies (WEB-06).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from ...errors import InvalidInput
from ...kernel.effects import Gen
from ...providers.base import RAW_QUERY

__all__ = [
    "MAX_BODY",
    "MAX_QUERY",
    "Handler",
    "WebRequest",
    "WebResponse",
    "callback_query",
    "security_headers",
]

MAX_QUERY = 8 * 1024
MAX_BODY = 64 * 1024

#: A handler: a routine (engine routines composed with ``yield from``) that returns
#: the response; the adapter runs it in one runtime call.
Handler: TypeAlias = Gen["WebResponse"]


@dataclass(frozen=True, slots=True)
class WebRequest:
    """What the core needs of an HTTP request (headers lower-cased)."""

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    client_ip: str | None = None
    # Parsed once per request (the guard, the handler and the adapter all ask).
    _jar: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    _query: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies by name; the first of a repeated name wins (most specific path).
        Parsed on first use; callers get a copy, so the parsed jar cannot change."""
        return dict(self._cookie_jar())

    def cookie(self, name: str) -> str | None:
        """One cookie (as :attr:`cookies` has it), without copying the jar."""
        return self._cookie_jar().get(name)

    def _cookie_jar(self) -> dict[str, str]:
        if self._jar is None:
            jar: dict[str, str] = {}
            raw = self.headers.get("cookie")
            if raw:
                for part in raw.split(";"):
                    name, sep, value = part.strip().partition("=")
                    if sep and name and name not in jar:
                        jar[name] = value.strip().strip('"')
            object.__setattr__(self, "_jar", jar)
            return jar
        return self._jar

    def query(self) -> dict[str, str]:
        """Query parameters (parsed on first use; a copy each call). A malformed
        query raises on every call, it is never cached."""
        if self._query is None:
            parsed = (
                _parse_unique(self.query_string, MAX_QUERY, "query") if self.query_string else {}
            )
            object.__setattr__(self, "_query", parsed)
            return dict(parsed)
        return dict(self._query)

    def form(self) -> dict[str, str]:
        ctype = (self.header("content-type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            if not self.body:
                return {}
            raise InvalidInput("form body expected", code="bad_content_type")
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput("form body is not UTF-8", code="bad_encoding") from exc
        return _parse_unique(text, MAX_BODY, "body")

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        if len(self.body) > MAX_BODY:
            raise InvalidInput("body too large", code="body_too_large")
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise InvalidInput("body is not JSON", code="bad_json") from exc
        if not isinstance(value, dict):
            raise InvalidInput("JSON object expected", code="bad_json")
        return value


def _parse_unique(text: str, limit: int, what: str) -> dict[str, str]:
    """Parse form/query text; a repeated name is refused (WEB-06, RFC 6749 §3.1)."""
    if len(text) > limit:
        raise InvalidInput(f"{what} too large", code=f"{what}_too_large")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{what} is malformed", code="malformed_parameters") from exc
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise InvalidInput("a parameter appears twice", code="duplicate_parameter")
        out[name] = value
    return out


def callback_query(req: WebRequest) -> dict[str, str]:
    """A callback's query parameters plus the raw query string under ``RAW_QUERY``.

    The provider decides the character set: TUPAS banks percent-encode ISO-8859-1
    (``M%C4KI``), which is not UTF-8, so such a query yields only ``RAW_QUERY`` here
    and the adapter decodes it with the bank's charset.
    """
    try:
        params = req.query()
    except InvalidInput as exc:
        if exc.code != "malformed_parameters":
            raise
        params = {}
    if req.query_string:
        params[RAW_QUERY] = req.query_string
    return params


@dataclass(slots=True)
class WebResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> WebResponse:
        return cls(
            status,
            [("location", location), ("cache-control", "no-store"), ("content-length", "0")],
        )

    @classmethod
    def json(cls, data: Any, status: int = 200) -> WebResponse:
        body = json.dumps(data, separators=(",", ":")).encode()
        return cls(
            status,
            [
                ("content-type", "application/json"),
                ("cache-control", "no-store"),
                ("x-content-type-options", "nosniff"),
            ],
            body,
        )


def security_headers(
    nonce: str,
    *,
    form_action: Iterable[str] = (),
    referrer: str = "no-referrer",
) -> list[tuple[str, str]]:
    """WEB-02 headers of a hosted page; inline CSS/JS run only with ``nonce``."""
    actions = " ".join(["'self'", *form_action])
    csp = (
        "default-src 'self'; "
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        f"form-action {actions}"
    )
    return [
        ("content-security-policy", csp),
        ("strict-transport-security", "max-age=63072000; includeSubDomains"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", referrer),
        ("cross-origin-opener-policy", "same-origin"),
        ("cache-control", "no-store"),
        ("pragma", "no-cache"),
    ]
