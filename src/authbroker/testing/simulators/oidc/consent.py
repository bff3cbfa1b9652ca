"""The front channel of the OpenID Provider simulator: authorize, consent, redirect.

The consent page is a small real page: ``<html lang>`` from the request's language,
a viewport for phones (readable at 375 px) and an external stylesheet served by the
simulator itself, so the page works under a strict Content-Security-Policy without
``'unsafe-inline'``.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from ..server import SimRequest, SimResponse
from .core import PREFIX, _Grant, _Refused
from .persons import TestPerson
from .rp_requests import OpRequests

#: Path of the consent page's stylesheet (same origin, so ``style-src 'self'`` allows it).
STYLESHEET_PATH = f"{PREFIX}/consent.css"

#: The pages' stylesheet: one column, large touch targets, no fixed widths.
STYLESHEET = """\
*{box-sizing:border-box}
body{margin:0;padding:1rem;font:1rem/1.5 system-ui,sans-serif;color:#1b1b1b;background:#f4f5f7}
main{max-width:32rem;margin:0 auto;padding:1rem 1.25rem;background:#fff;border-radius:.5rem}
h1{font-size:1.25rem;margin:0 0 .75rem;overflow-wrap:anywhere}
ul{list-style:none;margin:0 0 1rem;padding:0}
li{margin:0 0 .5rem}
button{display:block;width:100%;min-height:2.75rem;padding:.5rem 1rem;font:inherit;
text-align:left;border:1px solid #8a8f98;border-radius:.375rem;background:#fff;cursor:pointer}
button:focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}
button.cancel{text-align:center;background:#eceef1}
"""

#: Every page is HTML only; styles come from :data:`STYLESHEET_PATH` (no inline styles).
PAGE_CSP = "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'"

# A BCP 47 language tag (RFC 5646 §2.1, https://www.rfc-editor.org/rfc/rfc5646), loosely:
# only ever echoed into ``lang``, so anything else falls back to English.
_LANG_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")


def page_language(params: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """The page's language: the first valid tag of ``ui_locales`` (OIDC Core §3.1.2.1,
    https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest), else the best of
    ``Accept-Language`` (RFC 9110 §12.5.4), else ``en``."""
    for tag in params.get("ui_locales", "").split():
        if _LANG_TAG.fullmatch(tag):
            return tag
    ranked: list[tuple[float, str]] = []
    for item in headers.get("accept-language", "").split(","):
        tag, _, weight = item.strip().partition(";")
        try:
            q = float(weight.strip()[2:]) if weight.strip().startswith("q=") else 1.0
        except ValueError:
            continue
        if q > 0 and _LANG_TAG.fullmatch(tag.strip()):
            ranked.append((q, tag.strip()))
    return max(ranked, key=lambda r: r[0])[1] if ranked else "en"


def page(title: str, body: str, lang: str, status: int = 200) -> SimResponse:
    """A complete HTML page (``body`` is already escaped) with the simulator's CSP."""
    text = (
        f'<!doctype html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        # Relative links (every page is under {PREFIX}/): the page works wherever the
        # OP is reached, on its own port or mounted under the demo's origin.
        f'<link rel="stylesheet" href="{STYLESHEET_PATH.rsplit("/", 1)[1]}"></head>'
        f"<body><main>{body}</main></body></html>"
    )
    response = SimResponse.html(text, status)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


def stylesheet() -> SimResponse:
    """The stylesheet the pages link to."""
    return SimResponse(
        200,
        STYLESHEET.encode(),
        {"Content-Type": "text/css; charset=utf-8", "Cache-Control": "max-age=3600"},
    )


class OpFrontChannel(OpRequests):
    """The authorization endpoint, the consent page and the redirect back to the RP."""

    def authorize(self, req: SimRequest) -> SimResponse:
        lang = page_language({}, req.headers)
        try:
            params = self._resolve(self._query(req))
            self._validate(params)
        except _Refused as exc:
            # Never redirect to an unverified redirect_uri: show an error page.
            title = f"Authorization refused: {exc.error}"
            return page(title, f"<h1>{html.escape(title)}</h1>", lang, 400)
        c = self.control
        if c.deny:
            return self._redirect_error(params, c.deny)
        person = self._auto_person(params)
        if person is not None:
            return self._approve(params, person)
        txn = secrets.token_urlsafe(16)
        with self.lock:
            self.txns[txn] = (params, self.now() + 600)
        return self._consent_page(txn, params, page_language(params, req.headers))

    def _suitable(self, params: Mapping[str, str]) -> list[TestPerson]:
        countries = self._method_countries(params)
        return [p for p in self.persons() if countries is None or p.country in countries]

    def _method_countries(self, params: Mapping[str, str]) -> set[str] | None:
        if self.profile != "broker-oidc":
            return None
        methods = self.config.get("methods", {})
        acrs = params.get("acr_values", "").split()
        found = {str(m["country"]) for m in methods.values() if m.get("acr") in acrs}
        return found or None

    def _auto_person(self, params: Mapping[str, str]) -> TestPerson | None:
        choice = self.control.auto_approve
        if not choice:
            return None
        suitable = self._suitable(params)
        if choice is True:
            return suitable[0] if suitable else None
        for person in [*suitable, *self.persons()]:
            if person.id == choice:
                return person
        return None

    def _consent_page(self, txn: str, params: Mapping[str, str], lang: str) -> SimResponse:
        rows = "".join(
            f'<li><button name="person" value="{html.escape(p.id)}">'
            f"{html.escape(p.given_name)} {html.escape(p.family_name)} ({p.country})"
            "</button></li>"
            for p in self._suitable(params)
        )
        body = (
            f"<h1>{html.escape(self.config.name)} simulator</h1>"
            '<form method="post" action="approve">'
            f'<input type="hidden" name="txn" value="{html.escape(txn)}">'
            f"<p>Sign in as:</p><ul>{rows}</ul>"
            '<button class="cancel" name="cancel" value="1">Cancel</button>'
            "</form>"
        )
        return page("OpenID Provider simulator", body, lang)

    def approve_form(self, req: SimRequest) -> SimResponse:
        form = req.form()
        with self.lock:
            entry = self.txns.pop(form.get("txn", ""), None)
        if entry is None or entry[1] < self.now():
            title = "Unknown or expired transaction"
            return page(title, f"<h1>{title}</h1>", page_language({}, req.headers), 400)
        params = entry[0]
        if form.get("cancel"):
            return self._redirect_error(params, "access_denied")
        person = next((p for p in self._suitable(params) if p.id == form.get("person")), None)
        if person is None:
            title = "Unknown test person"
            return page(title, f"<h1>{title}</h1>", page_language(params, req.headers), 400)
        return self._approve(params, person)

    def _front_iss(self) -> dict[str, str]:
        c = self.control
        if c.active("iss-param-missing"):
            return {}
        if c.active("iss-param-wrong"):
            return {"iss": "https://op.example.org/op"}
        if c.active("iss-param-slash"):
            return {"iss": self.issuer + "/"}
        return {"iss": self.issuer}

    def _redirect(self, params: Mapping[str, str], response: Mapping[str, str]) -> SimResponse:
        uri = params["redirect_uri"]
        sep = "&" if urlsplit(uri).query else "?"
        return SimResponse.redirect(uri + sep + urlencode(response))

    def _redirect_error(self, params: Mapping[str, str], error: str) -> SimResponse:
        response = {"error": error, "error_description": "<b>The user said no</b>"}
        state = params.get("state")
        if self.control.active("error-foreign-state"):
            state = "forged-" + secrets.token_urlsafe(8)
        if state:
            response["state"] = state
        response.update(self._front_iss())
        return self._redirect(params, response)

    def _approve(self, params: dict[str, str], person: TestPerson) -> SimResponse:
        now = self.now()
        code = secrets.token_urlsafe(32)
        grant = _Grant(params=params, person=person, auth_time=int(now), expires=now + 60)
        with self.lock:
            self.codes[code] = grant
            if self.control.active("replay-code") and self.last_redeemed:
                code = self.last_redeemed
        response = {"code": code}
        if params.get("state"):
            response["state"] = params["state"]
        response.update(self._front_iss())
        return self._redirect(params, response)

    # -- back channel ------------------------------------------------------------------
