"""The direct-link routes: open a link, send or resend its code, verify the code.

The handlers compose the link engine's routines (``open``/``resend`` store the
challenge *and* text the code; ``verify`` checks it) and the session engine's
``load``/``open_link_session``, so each POST is one runtime call.

Rules: LNK-03 — the link token is traded for the flow cookie and a clean URL at once
(no token in later URLs, history or ``Referer``); SES-02 — the link session rotates
any current session id; SES-06 — every POST carries the binding's CSRF token and the
challenge is bound to this browser.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ...engines.flows import check_return_to
from ...engines.sessions import Session
from ...errors import InvalidInput
from .pages import Pages
from .requests import Handler, WebRequest, WebResponse

__all__ = ["LinkRoutes"]

_TOKEN_RE = re.compile(r"[A-Za-z0-9_.=-]{16,512}")


class LinkRoutes(Pages):
    """Handlers of the direct-link pages (mixed into the web core)."""

    #: Where a link grant's browser goes next: ``link_landing(scope, resource)``.
    link_landing: Callable[[str, str], str]

    def link_open(self, req: WebRequest, token: str, lang: str) -> Handler:
        """``GET /link/<token>``: check the signature, keep the token in the cookie."""
        if not _TOKEN_RE.fullmatch(token):
            raise InvalidInput("link is malformed", code="link_malformed")
        self.links.link_id(token)  # raises for a forged or malformed token
        state = self.load_flow(req)
        state.link_token = token
        state.challenge = None
        state.masked_phone = None
        resp = WebResponse.redirect(f"{self.prefix}/link")
        resp.headers += [
            ("set-cookie", self.flow_cookie_header(state)),
            ("referrer-policy", "no-referrer"),
        ]
        yield from ()
        return resp

    def link_page(self, req: WebRequest, lang: str) -> Handler:
        """``GET /link``: the page that offers to text the code."""
        state = self.load_flow(req)
        if not state.link_token:
            raise InvalidInput("no link for this browser", code="link_missing")
        yield from ()
        return self._link_render(state.binding, lang, "start", "")

    def link_code_page(self, req: WebRequest, lang: str) -> Handler:
        """``GET /link/code``: the form for the code just sent."""
        state = self.load_flow(req)
        if not state.challenge:
            raise InvalidInput("no code was sent", code="challenge_unknown")
        yield from ()
        return self._link_render(state.binding, lang, "code", state.masked_phone or "")

    def _link_render(self, binding: str, lang: str, step: str, phone: str) -> WebResponse:
        return self.render(
            "link.html",
            lang,
            step=step,
            csrf=self.csrf_for(binding),
            phone=phone,
            picker=f"{self.prefix}/",
        )

    def link_send(self, req: WebRequest, lang: str, *, resend: bool = False) -> Handler:
        """``POST /link/send`` and ``/link/resend``: store a challenge, text its code."""
        state = self.load_flow(req)
        form = req.form()
        self.check_post(req, state, form.get("csrf"))
        if resend and state.challenge:
            challenge = yield from self.links.resend(
                state.challenge, req.client_ip, binding=state.binding
            )
        else:
            if not state.link_token:
                raise InvalidInput("no link for this browser", code="link_missing")
            challenge = yield from self.links.open(
                state.link_token, req.client_ip, binding=state.binding
            )
        state.challenge = challenge.challenge_id
        state.masked_phone = challenge.masked_phone
        resp = WebResponse.redirect(f"{self.prefix}/link/code")
        resp.headers.append(("set-cookie", self.flow_cookie_header(state)))
        return resp

    def link_resend(self, req: WebRequest, lang: str) -> Handler:
        return self.link_send(req, lang, resend=True)

    def link_verify(self, req: WebRequest, lang: str) -> Handler:
        """``POST /link/verify``: check the code and open the link session."""
        state = self.load_flow(req)
        form = req.form()
        self.check_post(req, state, form.get("csrf"))
        if not state.challenge:
            raise InvalidInput("no code was sent", code="challenge_unknown")
        grant = yield from self.links.verify(
            state.challenge,
            form.get("code", "").strip(),
            binding=state.binding,
            client_ip=req.client_ip,
        )
        current: Session | None = None
        cookie = req.cookies.get(self.policy.cookie_name)
        if cookie:
            current = yield from self.sessions.load(cookie)
        session = yield from self.sessions.open_link_session(
            grant.user_id, grant.scope, grant.resource, link_id=grant.link_id, replaces=current
        )
        state.link_token = None
        state.challenge = None
        state.masked_phone = None
        landing = check_return_to(
            self.link_landing(grant.scope, grant.resource), self.settings.return_to_origins
        )
        resp = WebResponse.redirect(landing)
        resp.headers += [
            ("set-cookie", self.sessions.cookie_header(session, secure=self.secure)),
            ("set-cookie", self.flow_cookie_header(state)),
        ]
        return resp

    def link_unknown(self, req: WebRequest, lang: str) -> Handler:
        yield from ()
        raise InvalidInput("unknown link route", code="bad_path")
