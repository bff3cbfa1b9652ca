"""The guard of every routed Django request, and ``request.user`` from the identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from ...web.core.guards import ANONYMOUS
from ..guards import guard_of
from . import conf
from .responses import to_django, web_request
from .users import user_for_principal

CHECKED_ATTR = "authbroker_checked_guard"


class AuthBrokerMiddleware:
    """Put it after ``AuthenticationMiddleware`` in ``MIDDLEWARE``.

    ``process_view`` checks the view's own guard (:mod:`.decorators`), else the
    path-rule table / default guard, in one runtime call; a refusal is the core's
    response (redirect to the login page, 401, 403). On success the request gets
    ``auth_principal``, ``auth_identity`` and — for a full session — ``user``.
    The hosted pages (under the route prefix) check their own flow cookie instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.auth_principal = ANONYMOUS  # type: ignore[attr-defined]
        request.auth_identity = {}  # type: ignore[attr-defined]
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        adapter = conf.adapter()
        req = web_request(adapter, request)
        if adapter.core.is_auth_path(req.path):
            return None
        guard = guard_of(view_func)
        groups = {k: str(v) for k, v in view_kwargs.items()}
        outcome = adapter.check(req, guard, groups) if guard else adapter.check(req)
        if outcome.response is not None:
            return to_django(outcome.response)
        principal = outcome.principal
        request.auth_principal = principal  # type: ignore[attr-defined]
        request.auth_identity = principal.identity  # type: ignore[attr-defined]
        setattr(request, CHECKED_ATTR, guard)
        user = user_for_principal(principal)
        if user is not None:
            request.user = user
        return None
