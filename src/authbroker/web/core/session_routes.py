"""Logout and the published keys (``jwks.json``, signed JWK Sets).

Logout composes the session engine's ``load``/``logout_everywhere``/``destroy``
routines (SES-01: logout deletes the record; WEB-01: ``return_to`` is checked). The
key documents read the providers' relying-party keys: no I/O.
"""

from __future__ import annotations

from typing import Any

from ...engines.flows import check_return_to
from ...engines.sessions import Session
from ...errors import AccessDenied, AuthBrokerError
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
        if session is not None:
            if not session.csrf_ok(form.get("csrf")):
                raise AccessDenied("the form token is missing or wrong", code="csrf")
            if form.get("everywhere") == "1":
                yield from self.sessions.logout_everywhere(session.user)
            yield from self.sessions.destroy(session)
        target = check_return_to(
            form.get("return_to") or self.home, self.settings.return_to_origins
        )
        resp = WebResponse.redirect(target)
        resp.headers.append(("set-cookie", self.sessions.cookie_header(None, secure=self.secure)))
        return resp

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
