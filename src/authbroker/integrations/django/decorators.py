"""Per-view guards: decorators for function views, mixins for class-based views.

``@login_required(loa="substantial")``, ``@link_required(scope=..., resource=
"{invoice}")`` (``{name}`` takes the URL kwarg), ``@bearer_required("scope")``,
``@public``. The middleware checks the guard before the view runs; the decorator
itself refuses to run the view (a :class:`~authbroker.errors.ConfigError`) if the
middleware did not check it, so a missing middleware fails closed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast

from ...identity import Loa
from ...web.core import Guard
from ..guards import GUARD_ATTR, guard_for, mark, not_checked
from .middleware import CHECKED_ATTR

__all__ = [
    "BearerRequiredMixin",
    "LinkRequiredMixin",
    "LoginRequiredMixin",
    "bearer_required",
    "link_required",
    "login_required",
    "public",
]

F = TypeVar("F", bound=Callable[..., Any])


def _guarded(guard: Guard) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(request, CHECKED_ATTR, None) is not guard:
                raise not_checked("Django")
            return view(request, *args, **kwargs)

        return mark(cast(F, wrapper), guard)

    return decorate


def login_required(*, loa: Loa | str | None = None) -> Callable[[F], F]:
    """A full (strongly identified) session of at least ``loa`` (default: any)."""
    return _guarded(guard_for("login", loa=loa))


def link_required(*, scope: str, resource: str | None = None) -> Callable[[F], F]:
    """A direct-link session for ``scope``/``resource``; a full session passes too."""
    return _guarded(guard_for("link", scope=scope, resource=resource))


def bearer_required(
    scope: str | None = None, *, check_revocation: bool = False
) -> Callable[[F], F]:
    """A mobile API route: a bearer access token with ``scope`` (no session cookie)."""
    return _guarded(guard_for("bearer", scope=scope, check_revocation=check_revocation))


def public(view: F) -> F:
    """Open to everyone (the principal is still loaded when a session exists)."""
    return _guarded(guard_for("public"))(view)


class _GuardMixin:
    """Marks the view ``as_view()`` returns with the class's guard and checks it ran."""

    authbroker_guard: ClassVar[Guard]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        view = super().as_view(**initkwargs)  # type: ignore[misc]
        setattr(view, GUARD_ATTR, cls.authbroker_guard)
        return view

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(request, CHECKED_ATTR, None) is not self.authbroker_guard:
            raise not_checked("Django")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class LoginRequiredMixin(_GuardMixin):
    """``class Ledger(LoginRequiredMixin, View): loa = "substantial"``."""

    loa: ClassVar[Loa | str | None] = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.authbroker_guard = guard_for("login", loa=cls.loa)


class LinkRequiredMixin(_GuardMixin):
    """``link_scope`` and ``link_resource`` (``"{name}"``: the URL kwarg)."""

    link_scope: ClassVar[str | None] = None
    link_resource: ClassVar[str | None] = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.link_scope is not None:
            cls.authbroker_guard = guard_for(
                "link", scope=cls.link_scope, resource=cls.link_resource
            )


class BearerRequiredMixin(_GuardMixin):
    """``bearer_scope``: the scope the access token must carry."""

    bearer_scope: ClassVar[str | None] = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.authbroker_guard = guard_for("bearer", scope=cls.bearer_scope)
