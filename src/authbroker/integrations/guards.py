"""What every integration's per-route guards share: the marker a decorator leaves on a
view, so the framework hook (Flask's ``before_request``, Django's ``process_view``)
checks the route's own guard instead of the path-rule table, and the decorator's own
fail-closed check that the hook really ran for this guard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ConfigError
from ..identity import Loa
from ..web.core import PUBLIC, Guard, require, require_bearer

__all__ = ["GUARD_ATTR", "guard_for", "guard_of", "mark", "not_checked"]

#: The attribute a guard decorator sets on the view it wraps.
GUARD_ATTR = "__authbroker_guard__"

F = TypeVar("F", bound=Callable[..., Any])


def guard_for(
    kind: str,
    *,
    loa: Loa | str | None = None,
    scope: str | None = None,
    resource: str | None = None,
    check_revocation: bool = False,
) -> Guard:
    """The core guard behind ``login_required`` / ``link_required`` /
    ``bearer_required`` / ``public`` (one spelling for every framework)."""
    if kind == "login":
        return require(loa=loa if loa is not None else Loa.LOW)
    if kind == "link":
        if scope is None:
            raise ConfigError("link_required needs a scope", key="web.require")
        return require(scope=scope, resource=resource)
    if kind == "bearer":
        return require_bearer(scope, check_revocation=check_revocation)
    return PUBLIC


def mark(view: F, guard: Guard) -> F:
    """Record ``guard`` on ``view`` (read back by :func:`guard_of`)."""
    setattr(view, GUARD_ATTR, guard)
    return view


def guard_of(view: Any) -> Guard | None:
    """The guard declared on a view (a function, or a class-based view's ``view_class``)."""
    guard = getattr(view, GUARD_ATTR, None)
    if guard is None:
        guard = getattr(getattr(view, "view_class", None), GUARD_ATTR, None)
    return guard if isinstance(guard, Guard) else None


def not_checked(framework: str) -> ConfigError:
    """The error a guarded view raises when the integration's hook did not check its
    guard (the extension or middleware is not installed): fail closed, never serve."""
    return ConfigError(
        f"an authbroker guard decorator ran without the {framework} integration "
        "checking it; install the extension/middleware (see docs/integrations)",
        key="web.integration",
    )
