"""Rendering the hosted pages: templates, translations, error pages, QR codes.

WEB-02 — every hosted page gets HSTS, a nonce-based CSP with ``frame-ancestors
'none'``, nosniff, ``Referrer-Policy: no-referrer``, COOP and ``Cache-Control:
no-store`` (:func:`~authbroker.web.core.requests.security_headers`).
WEB-04 — errors become localized generic pages (or JSON) with a typed code; OTP
errors share one message (OTP-07).
"""

from __future__ import annotations

import base64
import io
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jinja2

from ...errors import AuthBrokerError
from ...flow import Display
from ..i18n import translate
from .branding import Branding
from .context import WebContext
from .requests import WebResponse, security_headers

__all__ = ["Pages", "message", "qr_svg", "qr_svg_data_uri"]

_PACKAGE_LOADER = jinja2.PackageLoader("authbroker.web", "templates")


def template_env(dirs: Sequence[str | Path] = ()) -> jinja2.Environment:
    """The hosted pages' templates: the application's folders first (``dirs``, so an
    app overrides ``picker.html`` by a file of that name), then the package's."""
    loader: jinja2.BaseLoader = _PACKAGE_LOADER
    if dirs:
        loader = jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader([str(d) for d in dirs]), _PACKAGE_LOADER]
        )
    return jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_ENV = template_env()

#: Codes shown with one message (OTP-07: wrong, expired and locked look the same).
_CODE_ERRORS = frozenset(
    {
        "otp_wrong",
        "otp_expired",
        "otp_replayed",
        "challenge_locked",
        "otp_locked",
        "challenge_superseded",
        "challenge_unknown",
    }
)


def message(display: Display, lang: str) -> str:
    """A provider display message in ``lang`` (English when it has none)."""
    return display.message.get(lang) or display.message.get("en") or ""


def qr_svg(payload: str) -> bytes:
    """``payload`` as an SVG QR code (low error correction: animated BankID codes)."""
    import segno

    buf = io.BytesIO()
    segno.make(payload, error="l").save(buf, kind="svg", scale=6, border=2)
    return buf.getvalue()


def qr_svg_data_uri(payload: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(qr_svg(payload)).decode()


class Pages(WebContext):
    """Template rendering and the error pages, on top of the shared context."""

    #: The application's look (set by the web core); default: authbroker's own.
    branding: Branding = Branding()
    _env: jinja2.Environment = _ENV

    def render(
        self,
        template: str,
        lang: str,
        *,
        status: int = 200,
        form_action: Iterable[str] = (),
        cookies: Iterable[str] = (),
        **context: Any,
    ) -> WebResponse:
        nonce = secrets.token_urlsafe(16)

        def t(key: str, **values: str) -> str:
            return translate(lang, key, **values)

        body = (
            self._env.get_template(template)
            .render(t=t, lang=lang, nonce=nonce, prefix=self.prefix, brand=self.branding, **context)
            .encode()
        )
        headers = [("content-type", "text/html; charset=utf-8")]
        headers += security_headers(nonce, form_action=form_action)
        headers += [("set-cookie", c) for c in cookies]
        return WebResponse(status, headers, body)

    def error_page(
        self, exc: AuthBrokerError, lang: str, *, json_body: bool = False
    ) -> WebResponse:
        key = "error.code" if exc.code in _CODE_ERRORS else exc.user_message_key
        text = translate(lang, key)
        status = exc.http_status
        if json_body:
            return WebResponse.json(
                {"status": "failed", "error": exc.code, "message": text}, status
            )
        return self.render(
            "error.html", lang, status=status, message=text, code=exc.code, back=f"{self.prefix}/"
        )

    def internal_error(self, lang: str, *, json_body: bool = False) -> WebResponse:
        text = translate(lang, "error.internal")
        if json_body:
            return WebResponse.json({"status": "failed", "error": "internal", "message": text}, 500)
        return self.render(
            "error.html", lang, status=500, message=text, code="internal", back=f"{self.prefix}/"
        )

    def not_found(self, lang: str) -> WebResponse:
        return self.render(
            "error.html",
            lang,
            status=404,
            message=translate(lang, "error.not_found"),
            code="not_found",
            back=f"{self.prefix}/",
        )
