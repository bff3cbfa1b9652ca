"""The one implementation of the web layer: auth routes, hosted pages and guards.

A package split by concern; this module re-exports the public names:

* :mod:`.requests` — :class:`WebRequest`/:class:`WebResponse`, parsing, WEB-02 headers;
* :mod:`.context` — settings, engines, the flow cookie (:class:`FlowState`), CSRF,
  language negotiation;
* :mod:`.pages` — rendering, translations, error pages;
* :mod:`.branding` — :class:`Branding` (name, logo, colours, templates, order);
* :mod:`.health` — ``GET {prefix}/health``;
* :mod:`.guards` — :class:`Guard`, :func:`route`, :func:`require`,
  :func:`require_bearer`, :class:`Principal` and guard evaluation;
* :mod:`.flows`, :mod:`.links`, :mod:`.session_routes` — the handlers, routines
  composing the engines' routines with ``yield from``;
* :mod:`.routes` — the route table;
* :mod:`.app` — :class:`WebCore` and :class:`MiddlewareBase`.

A request is one run of the broker's runtime (see :mod:`.app`).
"""

from .app import MiddlewareBase, WebCore
from .branding import Branding
from .context import FlowState
from .guards import PUBLIC, Guard, Principal, Rule, require, require_bearer, route
from .requests import MAX_BODY, MAX_QUERY, Handler, WebRequest, WebResponse, security_headers
from .routes import ROUTES, AuthRoute

__all__ = [
    "MAX_BODY",
    "MAX_QUERY",
    "PUBLIC",
    "ROUTES",
    "AuthRoute",
    "Branding",
    "FlowState",
    "Guard",
    "Handler",
    "MiddlewareBase",
    "Principal",
    "Rule",
    "WebCore",
    "WebRequest",
    "WebResponse",
    "require",
    "require_bearer",
    "route",
    "security_headers",
]
