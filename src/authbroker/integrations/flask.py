"""Flask: the :class:`AuthBroker` extension (``AuthBroker(app)`` or ``init_app``).

* a blueprint serves the hosted pages under the route prefix (``/auth``);
* ``before_request`` checks each request: the guard declared on the view
  (:func:`login_required`, :func:`link_required`, :func:`bearer_required`,
  :func:`public`), else the path-rule table (``rules=[route(...)]``), else
  ``default_guard`` — deny by default (WEB-05), like the middleware;
* :data:`current_principal` / :data:`current_identity` are the request's
  :class:`~authbroker.web.core.Principal` and its normalized identity, as
  Flask-Login's ``current_user`` is its user.

The session is the broker's own cookie (``ab_session``), not Flask's signed
``session``: it is server-side, revocable and carries the LoA. The extension is the
WSGI adapter (:class:`~authbroker.web.wsgi.WsgiAuthMiddleware`) driven from Flask's
hooks, so a request is one run of the broker's blocking runtime.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.local import LocalProxy

from ..config import load_config
from ..engines.flows import Broker
from ..identity import Loa
from ..web.core import MAX_BODY, PUBLIC, Guard, Principal, Rule, WebResponse
from ..web.core.guards import ANONYMOUS
from ..web.wsgi import WsgiAuthMiddleware
from .guards import guard_for, guard_of, mark, not_checked

__all__ = [
    "AuthBroker",
    "bearer_required",
    "current_identity",
    "current_principal",
    "link_required",
    "login_required",
    "public",
]

F = TypeVar("F", bound=Callable[..., Any])
_PRINCIPAL = "authbroker_principal"
_CHECKED = "authbroker_checked_guard"


def _no_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The adapter's inner app, never called: Flask routes the request itself."""
    raise RuntimeError("unreachable")  # pragma: no cover


class AuthBroker:
    """``AuthBroker(app, broker=Broker(...), links=..., tokens=..., rules=[...])``.

    Without ``broker``, one is built from ``app.config["AUTHBROKER_CONFIG"]`` (a
    configuration file path; ``$AUTHBROKER_CONFIG`` or the embedded defaults if
    unset). Other keyword arguments go to :class:`~authbroker.web.core.WebCore`
    (``default_guard``, ``user_for``, ``link_landing``, ``trusted_proxies``, ...).
    The ``static`` endpoint is public unless a rule says otherwise.
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        self.options = options
        self.middleware: WsgiAuthMiddleware | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, **options: Any) -> None:
        opts = {**self.options, **options}
        broker = opts.pop("broker", None)
        if broker is None:
            broker = Broker(load_config(app.config.get("AUTHBROKER_CONFIG")))
        rules: list[Rule] = list(opts.pop("rules", ()))
        self.middleware = WsgiAuthMiddleware(_no_app, broker=broker, rules=rules, **opts)
        prefix = self.middleware.core.prefix
        bp = Blueprint("authbroker", __name__, url_prefix=prefix)
        bp.add_url_rule("/", "hosted", self._hosted, methods=["GET", "POST"], defaults={"rest": ""})
        bp.add_url_rule("/<path:rest>", "hosted", self._hosted, methods=["GET", "POST"])
        app.register_blueprint(bp)
        app.before_request(self._before_request)
        app.extensions["authbroker"] = self

    @property
    def mw(self) -> WsgiAuthMiddleware:
        if self.middleware is None:
            raise RuntimeError("AuthBroker.init_app(app) was not called")
        return self.middleware

    def _hosted(self, rest: str) -> Response:
        """A hosted page or endpoint: the request as the core sees it, one runtime call."""
        length = request.content_length
        if length is not None and length > MAX_BODY:
            return _to_flask(WebResponse.json({"error": "body_too_large"}, 413))
        body = request.stream.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _to_flask(WebResponse.json({"error": "body_too_large"}, 413))
        return _to_flask(self.mw.serve(self.mw.web_request(request.environ, body)))

    def _before_request(self) -> Response | None:
        if request.blueprint == "authbroker":
            return None  # the hosted pages check their own flow cookie and CSRF token
        view = current_app.view_functions.get(request.endpoint or "")
        guard = guard_of(view)
        req = self.mw.web_request(request.environ)
        if (
            guard is None
            and request.endpoint == "static"
            and not any(rule.match(req.path) is not None for rule in self.mw.core.rules)
        ):
            guard = PUBLIC
        groups = {k: str(v) for k, v in (request.view_args or {}).items()}
        outcome = self.mw.check(req, guard, groups) if guard else self.mw.check(req)
        if outcome.response is not None:
            return _to_flask(outcome.response)
        setattr(g, _PRINCIPAL, outcome.principal)
        setattr(g, _CHECKED, guard)
        return None


def _to_flask(response: WebResponse) -> Response:
    out = Response(response.body, status=response.status)
    out.headers.clear()
    for name, value in response.headers:
        out.headers.add(name, value)
    return out


def _principal() -> Principal:
    value = g.get(_PRINCIPAL)
    return value if isinstance(value, Principal) else ANONYMOUS


#: The request's :class:`~authbroker.web.core.Principal` (anonymous outside a request
#: the extension checked).
current_principal: Principal = cast(Principal, LocalProxy(_principal))
#: The normalized identity of the request's session (empty when there is none).
current_identity: Mapping[str, Any] = cast(
    "Mapping[str, Any]", LocalProxy(lambda: _principal().identity)
)


def _guarded(guard: Guard) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if g.get(_CHECKED) is not guard:
                raise not_checked("Flask")
            return view(*args, **kwargs)

        return mark(cast(F, wrapper), guard)

    return decorate


def login_required(*, loa: Loa | str | None = None) -> Callable[[F], F]:
    """A full (strongly identified) session of at least ``loa`` (default: any)."""
    return _guarded(guard_for("login", loa=loa))


def link_required(*, scope: str, resource: str | None = None) -> Callable[[F], F]:
    """A direct-link session for ``scope`` and ``resource`` (``"{name}"`` takes the
    route's ``<name>`` value); a full session passes too."""
    return _guarded(guard_for("link", scope=scope, resource=resource))


def bearer_required(
    scope: str | None = None, *, check_revocation: bool = False
) -> Callable[[F], F]:
    """A mobile API route: a bearer access token with ``scope`` (no session cookie)."""
    return _guarded(guard_for("bearer", scope=scope, check_revocation=check_revocation))


def public(view: F) -> F:
    """Open to everyone (the principal is still loaded when a session exists)."""
    return _guarded(guard_for("public"))(view)
