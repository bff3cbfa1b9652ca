"""The login flow routes: picker, begin, waiting page, poll, QR, callback, Web eID, cancel.

Each handler is a routine that composes the flow engine's routines
(``yield from self.flows.begin(...)``, ``advance``, ``refresh``, ``cancel``) and, when
a flow finishes, the session engine's ``login``: the whole request runs in one
runtime call. Which page a provider gets is read from its metadata
(:class:`~authbroker.providers.base.ProviderInfo`: ``needs_input``,
``device_choice``) and from the kind of step it returns, never from its protocol name.

Rules (security requirements a.10):

* SES-02 — every login and step-up rotates the session id (``replaces=``).
* SES-06 — each flow is tied to this browser's binding (flow cookie); POSTs carry the
  binding's CSRF token.
* WEB-01 — every ``return_to`` goes through :func:`authbroker.engines.flows.check_return_to`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ...engines.flows import check_return_to
from ...engines.sessions import Session
from ...errors import AuthBrokerError, InvalidInput
from ...flow import AutoPost, Challenge, Done, Poll, Redirect, Step
from ...identity import Identity
from ...kernel.effects import Gen
from .context import FlowState
from .pages import Pages, message, qr_svg, qr_svg_data_uri
from .requests import Handler, WebRequest, WebResponse, callback_query

__all__ = ["FlowRoutes", "display_name"]

#: Form fields a hosted begin form may send on to the provider (each ≤ 64 chars).
_BEGIN_FIELDS = ("phone", "msisdn", "nospam", "same_device", "device")


def display_name(names: Mapping[str, str], lang: str, default: str) -> str:
    """A provider's name in ``lang``, else in English, else ``default`` (its key)."""
    return names.get(lang) or names.get("en") or default


class FlowRoutes(Pages):
    """Handlers of the login flow (mixed into the web core)."""

    def _provider_entries(self) -> dict[str, dict[str, Any]]:
        providers = self.settings.providers
        return {
            name: {
                "name": name,
                "protocol": config.protocol,
                "display": config.display_name,
                "country": config.country or "",
                "loa": config.loa.name.lower(),
            }
            for name, config in providers.items()
        }

    def picker(self, req: WebRequest, lang: str) -> Handler:
        query = req.query()
        return_to = check_return_to(query.get("return_to"), self.settings.return_to_origins)
        state = self.load_flow(req)
        # The picker lists providers from configuration (building every adapter to read
        # its metadata would start work for providers nobody chose), in the order and
        # groups the application's Branding chose.
        entries = self._provider_entries()
        pairs = [(name, e["protocol"]) for name, e in entries.items()]
        ordered = self.branding.order(pairs)
        sections = [
            (label, [entries[n] for n in names])
            for label, names in self.branding.sections(
                [(n, entries[n]["protocol"]) for n in ordered]
            )
        ]
        # A language chosen here (?lang=, the language links) is kept for the flow.
        chosen = self.chosen_language(req) is not None
        cookies = [self.flow_cookie_header(state)] if state.fresh or chosen else []
        yield from ()
        return self.render(
            "picker.html",
            lang,
            sections=sections,
            # Flat lists for templates written before groups: grouped and the rest.
            banks=[e for label, group in sections if label for e in group],
            others=[e for label, group in sections if not label for e in group],
            return_to=return_to,
            step_up=query.get("step_up") == "1",
            cookies=cookies,
            lang_links=self.lang_links(req),
        )

    def begin(self, req: WebRequest, provider: str, lang: str) -> Handler:
        config = self.provider_config(provider)
        state = self.load_flow(req)
        params: dict[str, str] = {}
        if req.method == "POST":
            form = req.form()
            self.check_post(req, state, form.get("csrf"))
            return_to = form.get("return_to")
            for key in _BEGIN_FIELDS:
                if form.get(key):
                    params[key] = form[key][:64]
        elif req.method in ("GET", "HEAD"):
            return_to = req.query().get("return_to")
        else:
            raise InvalidInput("method not allowed", code="method")
        info = self.flows.provider(provider).info
        if req.method != "POST" and (info.needs_input or info.device_choice):
            # The user must answer first (a phone number, this or another device).
            checked = check_return_to(return_to, self.settings.return_to_origins)
            cookies = [self.flow_cookie_header(state)] if state.fresh else []
            return self.render(
                "input.html",
                lang,
                provider=provider,
                protocol=config.protocol,
                device_choice=info.device_choice,
                needs_input=info.needs_input,
                display=config.display_name,
                return_to=checked,
                csrf=self.csrf_for(state.binding),
                cookies=cookies,
            )
        if info.device_choice and req.method == "POST":
            params.setdefault("same_device", "false")
            # BankID RP API v6.0 asks for the browser's device information (the
            # adapter sends it as the order's "web" object): the user agent, and a
            # device identifier that is stable per browser but names no user.
            user_agent = req.header("user-agent")
            if user_agent:
                params["user_agent"] = user_agent[:512]
            params["device_id"] = self.device_id(state.binding)
        step = yield from self.flows.begin(
            provider,
            return_to=return_to,
            client_ip=req.client_ip,
            binding=state.binding,
            params=params,
            language=lang,
            origin=self.origin,
        )
        state.flow_id = step.flow_id
        state.provider = provider
        return self._step_response(step, state, lang, [self.flow_cookie_header(state)])

    def _step_response(
        self, step: Step, state: FlowState, lang: str, cookies: list[str]
    ) -> WebResponse:
        """The page of a non-final step, chosen by the step's kind."""
        if isinstance(step, Redirect):
            resp = WebResponse.redirect(step.url)
            resp.headers += [("set-cookie", c) for c in cookies]
            resp.headers.append(("referrer-policy", "no-referrer"))
            return resp
        if isinstance(step, AutoPost):
            target = urlsplit(step.url)
            return self.render(
                "autopost.html",
                lang,
                url=step.url,
                fields=list(step.fields.items()),
                form_action=[f"{target.scheme}://{target.netloc}"],
                cookies=cookies,
            )
        if isinstance(step, Challenge):
            return self.render(
                "webeid.html",
                lang,
                flow_id=step.flow_id,
                challenge=step.nonce,
                csrf=self.csrf_for(state.binding),
                simulator=self.simulator_helpers,
                cookies=cookies,
            )
        if isinstance(step, Poll):
            resp = WebResponse.redirect(f"{self.prefix}/flow/{step.flow_id}")
            resp.headers += [("set-cookie", c) for c in cookies]
            return resp
        raise InvalidInput("unexpected step", code="step")

    def _wait_render(
        self, poll: Poll, state: FlowState, lang: str, cookies: list[str], *, nonce: str | None
    ) -> WebResponse:
        display = poll.display
        info = self.provider_info(state.provider)
        config = self.settings.providers.get(state.provider or "")
        device_choice = info is not None and info.device_choice
        return self.render(
            "wait.html",
            lang,
            flow_id=poll.flow_id,
            interval=max(1.0, float(poll.interval)),
            message=message(display, lang),
            qr=display.qr or "",
            qr_src=qr_svg_data_uri(display.qr) if display.qr else "",
            # The app to scan the QR with, named in the alt text (WCAG 1.1.1: a text
            # alternative that serves the same purpose) and the instruction.
            provider_name=display_name(config.display_name, lang, config.name) if config else "",
            autostart_url=display.autostart_url or "",
            verification_code=display.verification_code or "",
            return_nonce=nonce or "",
            csrf=self.csrf_for(state.binding),
            protocol=info.protocol if info is not None else "",
            # The demo's simulator buttons: scan the QR, or play the app on this device.
            simulator=self.simulator_helpers
            and device_choice
            and bool(display.qr or display.autostart_url),
            cookies=cookies,
        )

    def wait_page(self, req: WebRequest, flow_id: str, lang: str) -> Handler:
        state = self.load_flow(req)
        poll = yield from self.flows.refresh(flow_id, binding=state.binding)
        state.flow_id = flow_id
        return self._wait_render(poll, state, lang, [], nonce=None)

    def poll(self, req: WebRequest, flow_id: str, lang: str) -> Handler:
        state = self.load_flow(req)
        self.check_post(req, state, req.header("x-csrf-token"))
        body = req.json()
        params: dict[str, str] = {}
        nonce = body.get("nonce")
        if isinstance(nonce, str) and nonce:
            params["nonce"] = nonce[:256]
        step = yield from self._advance(req, state, flow_id, params, lang)
        if isinstance(step, Done):
            done = WebResponse.json({"status": "done", "redirect": step.return_to})
            return (yield from self._finish(req, step, state, done))
        if isinstance(step, Poll):
            d = step.display
            return WebResponse.json(
                {
                    "status": "pending",
                    "interval": max(1.0, float(step.interval)),
                    "message": message(d, lang),
                    "hint_code": d.hint_code,
                    "verification_code": d.verification_code,
                }
            )
        raise InvalidInput("unexpected step", code="step")

    def qr(self, req: WebRequest, name: str) -> Handler:
        state = self.load_flow(req)
        svg = name.endswith(".svg")
        flow_id = name[:-4] if svg else name
        poll = yield from self.flows.refresh(flow_id, binding=state.binding)
        payload = poll.display.qr
        if not payload:
            # The order was picked up (or never had a QR): the code is gone for good, so
            # the page's refresher stops on 410 instead of asking again (no state changes).
            return WebResponse.json({"status": "gone", "code": "no_qr"}, status=410)
        if svg:
            headers = [
                ("content-type", "image/svg+xml"),
                ("cache-control", "no-store"),
                ("x-content-type-options", "nosniff"),
                ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'"),
            ]
            return WebResponse(200, headers, qr_svg(payload))
        return WebResponse.json({"qr": payload, "src": qr_svg_data_uri(payload)})

    def _advance(
        self,
        req: WebRequest,
        state: FlowState,
        flow_id: str,
        params: dict[str, str],
        lang: str,
        *,
        via: str | None = None,
    ) -> Gen[Step]:
        """Advance this browser's flow (bound by its flow cookie).

        ``via`` is the provider named by the callback URI; the broker refuses a flow
        of any other provider (mix-up defence, RFC 9700 section 4.4.2).
        """
        return (
            yield from self.flows.advance(
                flow_id,
                params,
                binding=state.binding,
                client_ip=req.client_ip,
                language=lang,
                origin=self.origin,
                provider=via,
            )
        )

    def _finish(
        self, req: WebRequest, done: Done, state: FlowState, resp: WebResponse
    ) -> Gen[WebResponse]:
        """A finished flow: rotate into a fresh full session (SES-02), set its cookies."""
        current: Session | None = None
        cookie = req.cookies.get(self.policy.cookie_name)
        if cookie:
            current = yield from self.sessions.load(cookie)
        user = self.user_for(done.identity)
        session = yield from self.sessions.login(user, done.identity, replaces=current)
        yield from self.remember_provider_session(session, done.identity)
        state.flow_id = None
        state.provider = None
        resp.headers += [
            ("set-cookie", self.sessions.cookie_header(session, secure=self.secure)),
            ("set-cookie", self.flow_cookie_header(state)),
        ]
        return resp

    def remember_provider_session(self, session: Session, identity: Identity) -> Gen[None]:
        """After an OpenID Connect login: keep the ID token (for ``id_token_hint``) and
        index the session under the OP's ``sid``/``sub`` (for back-channel logout)."""
        claims = identity.raw.get("id_token")
        config = self.settings.providers.get(identity.provider)
        if config is None or config.protocol != "oidc" or not isinstance(claims, Mapping):
            return
        issuer, sub, sid = claims.get("iss"), claims.get("sub"), claims.get("sid")
        if not isinstance(issuer, str):
            return
        hint = identity.raw.get("id_token_jwt")
        yield from self.sessions.remember_provider_session(
            session,
            provider=identity.provider,
            issuer=issuer,
            sub=sub if isinstance(sub, str) else None,
            sid=sid if isinstance(sid, str) else None,
            id_token_hint=hint if isinstance(hint, str) else None,
        )

    def callback(self, req: WebRequest, provider: str, lang: str) -> Handler:
        self.provider_config(provider)
        params = callback_query(req)
        if req.method == "POST":
            for key, value in req.form().items():
                if key in params:
                    raise InvalidInput("a parameter appears twice", code="duplicate_parameter")
                params[key] = value
        state = self.load_flow(req)
        if state.fresh and req.method == "POST" and "_ab_resubmit" not in params:
            # A cross-site POST (form_post, some banks) carries no SameSite=Lax cookie:
            # repost the same fields from our own origin so the flow cookie comes along.
            return self.render(
                "resubmit.html",
                lang,
                url=f"{self.prefix}/callback/{provider}",
                fields=list(params.items()),
            )
        params.pop("_ab_resubmit", None)
        flow_id = params.pop("flow_id", None) or state.flow_id
        if not flow_id:
            raise InvalidInput("no flow for this browser", code="flow_binding")
        step = yield from self._advance(req, state, flow_id, params, lang, via=provider)
        if isinstance(step, Done):
            return (yield from self._finish(req, step, state, WebResponse.redirect(step.return_to)))
        cookies = [self.flow_cookie_header(state)]
        if isinstance(step, Poll):
            # BankID same-device: keep sending the return nonce until Done (SEB-04).
            state.flow_id = step.flow_id
            state.provider = provider
            cookies = [self.flow_cookie_header(state)]
            return self._wait_render(step, state, lang, cookies, nonce=params.get("nonce"))
        return self._step_response(step, state, lang, cookies)

    def webeid_token(self, req: WebRequest, flow_id: str, lang: str) -> Handler:
        state = self.load_flow(req)
        form = req.form()
        self.check_post(req, state, form.get("csrf"))
        step = yield from self._advance(req, state, flow_id, {"token": form.get("token", "")}, lang)
        if not isinstance(step, Done):
            raise InvalidInput("unexpected step", code="step")
        return (yield from self._finish(req, step, state, WebResponse.redirect(step.return_to)))

    def cancel(self, req: WebRequest, flow_id: str, lang: str) -> Handler:
        state = self.load_flow(req)
        form = req.form()
        self.check_post(req, state, form.get("csrf"))
        with contextlib.suppress(AuthBrokerError):  # already gone: show the picker anyway
            yield from self.flows.cancel(flow_id, binding=state.binding)
        state.flow_id = None
        resp = WebResponse.redirect(f"{self.prefix}/")
        resp.headers.append(("set-cookie", self.flow_cookie_header(state)))
        return resp
