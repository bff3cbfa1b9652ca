"""The route table of the auth routes: (methods, path pattern) → handler.

Paths are matched below the route prefix (``/auth``), with empty segments dropped
(``/auth`` and ``/auth/`` are both ``/``). ``{name}`` matches one path
segment and is passed to the handler by keyword; the first matching row wins, so
fixed paths come before placeholders. A path no row matches gets the 404 page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .requests import Handler, WebRequest

if TYPE_CHECKING:
    from .app import WebCore

__all__ = ["ROUTES", "AuthRoute", "find_route"]

_GET = frozenset({"GET", "HEAD"})
_POST = frozenset({"POST"})
_ANY: frozenset[str] = frozenset()

#: ``handler(core, request, lang, **placeholders)``
RouteHandler = Callable[..., Handler]


@dataclass(frozen=True, slots=True)
class AuthRoute:
    """One row: ``methods`` (empty: any method), the pattern and its handler.

    ``json``: errors on this route are JSON (scripts call it), not an HTML page.
    ``free_segments``: the segments may hold characters the usual segment check
    refuses (a direct-link token has ``=``); the handler checks them itself.
    """

    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: RouteHandler
    json: bool = False
    free_segments: bool = False

    def match(self, method: str, sub: str) -> dict[str, str] | None:
        if self.methods and method not in self.methods:
            return None
        m = self.pattern.fullmatch(sub)
        return None if m is None else m.groupdict()


def _row(
    methods: frozenset[str],
    path: str,
    handler: RouteHandler,
    *,
    json: bool = False,
    free_segments: bool = False,
) -> AuthRoute:
    regex = re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return AuthRoute(methods, re.compile(regex), handler, json, free_segments)


def _picker(core: WebCore, req: WebRequest, lang: str) -> Handler:
    return core.picker(req, lang)


ROUTES: tuple[AuthRoute, ...] = (
    _row(_GET, "/", _picker),
    _row(_ANY, "/begin/{provider}", lambda c, r, lang, provider: c.begin(r, provider, lang)),
    _row(_GET, "/flow/{flow_id}", lambda c, r, lang, flow_id: c.wait_page(r, flow_id, lang)),
    _row(_POST, "/poll/{flow_id}", lambda c, r, lang, flow_id: c.poll(r, flow_id, lang), json=True),
    _row(_GET, "/qr/{name}", lambda c, r, lang, name: c.qr(r, name), json=True),
    _row(
        frozenset({"GET", "POST"}),
        "/callback/{provider}",
        lambda c, r, lang, provider: c.callback(r, provider, lang),
    ),
    _row(_POST, "/webeid/{flow_id}", lambda c, r, lang, flow_id: c.webeid_token(r, flow_id, lang)),
    _row(_POST, "/cancel/{flow_id}", lambda c, r, lang, flow_id: c.cancel(r, flow_id, lang)),
    _row(_GET, "/link", lambda c, r, lang: c.link_page(r, lang), free_segments=True),
    _row(_GET, "/link/code", lambda c, r, lang: c.link_code_page(r, lang), free_segments=True),
    _row(_POST, "/link/send", lambda c, r, lang: c.link_send(r, lang), free_segments=True),
    _row(_POST, "/link/resend", lambda c, r, lang: c.link_resend(r, lang), free_segments=True),
    _row(_POST, "/link/verify", lambda c, r, lang: c.link_verify(r, lang), free_segments=True),
    _row(
        _GET,
        "/link/{token}",
        lambda c, r, lang, token: c.link_open(r, token, lang),
        free_segments=True,
    ),
    AuthRoute(
        _ANY,
        re.compile(r"/link(?:/.*)?"),
        lambda c, r, lang: c.link_unknown(r, lang),
        free_segments=True,
    ),
    _row(_POST, "/logout", lambda c, r, lang: c.logout(r, lang)),
    _row(_GET, "/health", lambda c, r, lang: c.health(r, lang), json=True),
    _row(
        _POST,
        "/backchannel-logout/{provider}",
        lambda c, r, lang, provider: c.backchannel_logout(r, provider, lang),
        json=True,
    ),
    _row(_GET, "/jwks.json", lambda c, r, lang: c.jwks(r, lang)),
    AuthRoute(
        _GET,
        re.compile(r"/jwks/(?P<name>[^/]+)\.jwt"),
        lambda c, r, lang, name: c.signed_jwks(r, name, lang),
    ),
)


def find_route(
    routes: tuple[AuthRoute, ...], method: str, sub: str
) -> tuple[AuthRoute, dict[str, str]] | None:
    """The first row matching ``method`` and the path below the prefix."""
    for row in routes:
        groups = row.match(method, sub)
        if groups is not None:
            return row, groups
    return None
