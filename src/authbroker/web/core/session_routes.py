"""Logout (local, RP-initiated, back-channel) and the published keys.

Logout composes the session engine's ``load``/``logout_everywhere``/``destroy``
routines (SES-01: logout deletes the record; WEB-01: ``return_to`` is checked):

* local: ``POST {prefix}/logout`` ends this session (record and cookie), and with
  ``everywhere=1`` every session of the user;
* RP-initiated (OpenID Connect RP-Initiated Logout 1.0,
  https://openid.net/specs/openid-connect-rpinitiated-1_0.html): a session opened by
  an OpenID Provider that publishes ``end_session_endpoint`` continues there with the
  ``id_token_hint`` kept server-side at login, ``client_id``, a ``state`` and the
  allow-listed ``return_to`` as ``post_logout_redirect_uri``;
* back-channel (OpenID Connect Back-Channel Logout 1.0,
  https://openid.net/specs/openid-connect-backchannel-1_0.html):
  ``POST {prefix}/backchannel-logout/<provider>`` with a ``logout_token`` ends the
  sessions of its ``sid``/``sub`` (the index written at login).

The key documents read the providers' relying-party keys: no I/O.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from ...engines.flows import check_return_to
from ...engines.sessions import Session
from ...errors import AccessDenied, AuthBrokerError, InvalidInput
from ...kernel.effects import Gen
from .pages import Pages
from .requests import Handler, WebRequest, WebResponse

__all__ = ["SessionRoutes"]


class SessionRoutes(Pages):
    """Handlers of logout and the key documents (mixed into the web core)."""

    home: str

    def logout(self, req: WebRequest, lang: str) -> Handler:
        form = req.form()
        self.check_origin(req)
        cookie = req.cookies.get(self.policy.cookie_name)
        session: Session | None = None
        if cookie:
            session = yield from self.sessions.load(cookie)
        target = check_return_to(
            form.get("return_to") or self.home, self.settings.return_to_origins
        )
        at_provider: str | None = None
        if session is not None:
            if not session.csrf_ok(form.get("csrf")):
                raise AccessDenied("the form token is missing or wrong", code="csrf")
            record = yield from self.sessions.provider_session(session)
            if form.get("everywhere") == "1":
                yield from self.sessions.logout_everywhere(session.user)
            yield from self.sessions.destroy(session)
            if record is not None:
                yield from self.sessions.forget_provider_session(session)
                at_provider = yield from self._end_session_url(record, target)
        resp = WebResponse.redirect(at_provider or target)
        resp.headers.append(("set-cookie", self.sessions.cookie_header(None, secure=self.secure)))
        if at_provider:
            # The ID token travels in the URL: no Referer may carry it further.
            resp.headers.append(("referrer-policy", "no-referrer"))
        return resp

    def _end_session_url(self, record: Mapping[str, Any], target: str) -> Gen[str | None]:
        """The OP's logout URL for a session it opened, or None (no hint kept, the OP
        publishes no ``end_session_endpoint``, or it cannot be reached now: the local
        logout has happened either way and must not fail)."""
        name, hint = record.get("p"), record.get("h")
        config = self.settings.providers.get(str(name))
        if not isinstance(hint, str) or config is None or config.protocol != "oidc":
            return None
        # post_logout_redirect_uri: absolute (RP-Initiated Logout 1.0 §2), and the
        # allow-listed return_to (WEB-01); it must also be registered at the OP.
        uri = self.origin + target if target.startswith("/") else target
        try:
            end = getattr(self.flows.provider(str(name)), "end_session_url", None)
            if not callable(end):
                return None
            url: str | None = yield from end(
                id_token_hint=hint, post_logout_redirect_uri=uri, state=secrets.token_urlsafe(32)
            )
        except AuthBrokerError:
            return None
        return url

    def backchannel_logout(self, req: WebRequest, provider: str, lang: str) -> Handler:
        """``POST {prefix}/backchannel-logout/<provider>``: the OP ends sessions.

        Back-Channel Logout 1.0 §2.5 (form field ``logout_token``), §2.6 (validation,
        :meth:`~authbroker.providers.oidc.rp.OidcProvider.verify_logout_token`) and §2.8
        (200 on success, 400 with an ``error`` otherwise, ``Cache-Control: no-store``).
        Server to server: no cookie, no CSRF token; the signature is the authentication.
        Every outcome is audited (``session.ended``) without token or subject.
        """
        audit = self.flows.audit
        try:
            config = self.provider_config(provider)
            if config.protocol != "oidc":
                raise InvalidInput("not an OpenID Connect provider", code="unknown_provider")
            form = req.form()
            token = form.get("logout_token", "")
            verify = getattr(self.flows.provider(provider), "verify_logout_token", None)
            if not callable(verify):
                raise InvalidInput("not an OpenID Connect provider", code="unknown_provider")
            request = yield from verify(token, time.time())
            ended = yield from self.sessions.end_provider_sessions(
                request.issuer, sid=request.sid, sub=request.sub
            )
        except AuthBrokerError as exc:
            audit.emit(
                "session.ended",
                "failure",
                provider=provider,
                reason=exc.code,
                details={"via": "backchannel"},
            )
            if exc.http_status >= 500:
                raise
            resp = WebResponse.json({"error": "invalid_request"}, 400)
            return resp
        audit.emit(
            "session.ended",
            "success",
            provider=provider,
            details={"via": "backchannel", "sessions": ended},
        )
        return WebResponse.json({}, 200)

    def _oidc_providers(self) -> list[str]:
        # Only OpenID Connect relying parties have keys to publish; others are not built.
        return [n for n, c in self.settings.providers.items() if c.protocol == "oidc"]

    def jwks(self, req: WebRequest, lang: str) -> Handler:
        """``GET {prefix}/jwks.json``: every OIDC provider's RP public keys, merged."""
        keys: list[dict[str, Any]] = []
        seen: set[str] = set()
        for name in self._oidc_providers():
            try:
                public = getattr(self.flows.provider(name), "public_jwks", None)
                document = public() if callable(public) else {"keys": []}
            except (AuthBrokerError, AttributeError):
                continue  # providers without RP keys publish nothing
            for key in document.get("keys", []):
                kid = str(key.get("kid", ""))
                if kid and kid in seen:
                    continue
                seen.add(kid)
                keys.append(key)
        resp = WebResponse.json({"keys": keys})
        resp.headers = [h for h in resp.headers if h[0] != "cache-control"]
        resp.headers.append(("cache-control", "public, max-age=300"))
        yield from ()
        return resp

    def signed_jwks(self, req: WebRequest, name: str, lang: str) -> Handler:
        """``GET {prefix}/jwks/<provider>.jwt``: the provider's RP JWKS as an OpenID
        Federation signed JWK Set (register this URL as ``signed_jwks_uri``)."""
        token: str | None = None
        if name in self._oidc_providers():
            try:
                sign = getattr(self.flows.provider(name), "signed_jwks", None)
                token = sign() if callable(sign) else None
            except AuthBrokerError:
                token = None  # no RP or federation keys: nothing to publish
        yield from ()
        if token is None:
            return self.not_found(lang)
        return WebResponse(
            200,
            [
                ("content-type", "application/jwk-set+jwt"),
                ("cache-control", "public, max-age=300"),
                ("x-content-type-options", "nosniff"),
            ],
            token.encode("ascii"),
        )
