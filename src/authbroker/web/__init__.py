"""Web integration: hosted login pages, sessions and guards for ASGI and WSGI apps.

``AuthMiddleware`` (ASGI 3) and ``WsgiAuthMiddleware`` (PEP 3333) share one
implementation in :mod:`authbroker.web.core`; guards are declared with
:func:`route`, :func:`require` and :func:`require_bearer`.

Every name is resolved lazily (PEP 562): :mod:`.core` loads jinja2 for the hosted
pages and the adapters pull in the broker, so ``import authbroker.web`` stays cheap
until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .asgi import AuthMiddleware
    from .core import (
        PUBLIC,
        Guard,
        Principal,
        Rule,
        require,
        require_bearer,
        route,
        security_headers,
    )
    from .wsgi import WsgiAuthMiddleware

__all__ = [
    "PUBLIC",
    "AuthMiddleware",
    "Guard",
    "Principal",
    "Rule",
    "WsgiAuthMiddleware",
    "require",
    "require_bearer",
    "route",
    "security_headers",
]

_CORE = frozenset(__all__) - {"AuthMiddleware", "WsgiAuthMiddleware"}


def __getattr__(name: str) -> object:
    if name in _CORE:
        from . import core

        return getattr(core, name)
    if name == "AuthMiddleware":
        from .asgi import AuthMiddleware

        return AuthMiddleware
    if name == "WsgiAuthMiddleware":
        from .wsgi import WsgiAuthMiddleware

        return WsgiAuthMiddleware
    raise AttributeError(name)
