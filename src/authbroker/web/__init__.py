"""Web integration: hosted login pages, sessions and guards for ASGI and WSGI apps.

``AuthMiddleware`` (ASGI 3) and ``WsgiAuthMiddleware`` (PEP 3333) share one
implementation in :mod:`authbroker.web.core`; guards are declared with
:func:`route`, :func:`require` and :func:`require_bearer`.
"""

from .core import PUBLIC, Guard, Principal, Rule, require, require_bearer, route, security_headers

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


def __getattr__(name: str) -> object:
    # Lazy: importing the adapters pulls in the broker; keep `import authbroker.web` cheap.
    if name == "AuthMiddleware":
        from .asgi import AuthMiddleware

        return AuthMiddleware
    if name == "WsgiAuthMiddleware":
        from .wsgi import WsgiAuthMiddleware

        return WsgiAuthMiddleware
    raise AttributeError(name)
