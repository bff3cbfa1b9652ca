"""FastAPI (and Starlette): the hosted pages as an ``APIRouter``, guards as dependencies.

::

    auth = AuthBroker(AsyncBroker(...), links=..., tokens=...)
    auth.init_app(app)  # router, exception handler, app.state.authbroker

    @app.get("/ledger")
    async def ledger(user: Principal = Depends(require(loa="substantial"))): ...

    @app.get("/api/mobile/invoices")
    async def api(user: Principal = Depends(require_bearer("invoices:read"))): ...

A dependency returns the typed :class:`~authbroker.web.core.Principal` or refuses the
request with the core's own response (a redirect to the login page, a 401 with a
``WWW-Authenticate: Bearer`` challenge, a 403) via :class:`GuardRefused`. Each
dependency also declares its OpenAPI security scheme: ``authbroker_session`` (the
session cookie) or ``authbroker_bearer`` (HTTP bearer), so ``/docs`` shows which
routes take which credential. ``Depends(by_rules)`` applies the path-rule table
(``rules=[route(...)]``) instead, e.g. to a whole router or app. The session is the
broker's own cookie; requests run in the broker's asyncio runtime.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPBearer
from starlette.responses import Response

from ..engines.flows import AsyncBroker
from ..engines.sessions import SessionPolicy
from ..errors import ConfigError
from ..identity import Loa
from ..web.asgi import AuthMiddleware, Receive, Scope, Send
from ..web.core import MAX_BODY, PUBLIC, Guard, Principal, Rule, WebResponse
from .guards import guard_for

__all__ = [
    "AuthBroker",
    "GuardRefused",
    "by_rules",
    "public",
    "require",
    "require_bearer",
    "require_link",
]

_BEARER = HTTPBearer(auto_error=False, scheme_name="authbroker_bearer")
_COOKIE = APIKeyCookie(
    name=SessionPolicy().cookie_name,  # OpenAPI text only: the guard reads the policy's name
    auto_error=False,
    scheme_name="authbroker_session",
)


async def _no_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The adapter's inner app, never called: FastAPI routes the request itself."""
    raise RuntimeError("unreachable")  # pragma: no cover


class GuardRefused(HTTPException):
    """A guard refused the request; ``response`` is the core's exact answer (sent as is
    by the handler :meth:`AuthBroker.init_app` installs)."""

    def __init__(self, response: WebResponse) -> None:
        headers = {k: v for k, v in response.headers if k.lower() != "content-length"}
        super().__init__(status_code=response.status, headers=headers)
        self.response = response


class AuthBroker:
    """The hosted pages (:attr:`router`) and the guard runner of one broker.

    Keyword arguments go to :class:`~authbroker.web.asgi.AuthMiddleware` (``links``:
    :class:`~authbroker.engines.links.AsyncDirectLinks`, ``tokens``:
    :class:`~authbroker.engines.tokens.AsyncTokenIssuer`, ``rules``,
    ``default_guard``, ``mobile_audience``, ``link_landing``, ...).
    """

    def __init__(self, broker: AsyncBroker, *, rules: Sequence[Rule] = (), **options: Any):
        self.middleware = AuthMiddleware(_no_app, broker=broker, rules=rules, **options)
        self.broker = broker
        prefix = self.middleware.core.prefix
        from fastapi import APIRouter

        self.router = APIRouter()
        for path in (prefix, prefix + "/{rest:path}"):
            self.router.add_api_route(
                path, self._hosted, methods=["GET", "POST"], include_in_schema=False
            )

    def init_app(self, app: FastAPI) -> None:
        """Mount the hosted pages, send refusals as the core wrote them, and let the
        dependencies find this instance (``app.state.authbroker``)."""
        app.state.authbroker = self
        app.include_router(self.router)
        app.add_exception_handler(GuardRefused, _refused)

    async def _hosted(self, request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return to_response(WebResponse.json({"error": "body_too_large"}, 413))
        mw = self.middleware
        return to_response(await mw.serve(mw.web_request(request.scope, bytes(body))))

    async def check(self, request: Request, guard: Guard | None) -> Principal:
        """Run ``guard`` (``None``: the path-rule table) for ``request``."""
        mw = self.middleware
        req = mw.web_request(request.scope)
        params = {k: str(v) for k, v in request.path_params.items()}
        outcome = await (mw.check(req, guard, params) if guard else mw.check(req))
        if outcome.response is not None:
            raise GuardRefused(outcome.response)
        request.state.authbroker_principal = outcome.principal
        return outcome.principal


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GuardRefused)
    return to_response(exc.response)


def to_response(response: WebResponse) -> Response:
    """A Starlette response with exactly the core's status, headers and body."""
    out = Response(content=response.body, status_code=response.status)
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in response.headers
        if k.lower() != "content-length"
    ]
    out.raw_headers = [*headers, (b"content-length", str(len(response.body)).encode())]
    return out


def _instance(request: Request) -> AuthBroker:
    auth = getattr(request.app.state, "authbroker", None)
    if not isinstance(auth, AuthBroker):
        raise ConfigError(
            "AuthBroker.init_app(app) was not called for this app", key="web.integration"
        )
    return auth


Dependency = Callable[..., Awaitable[Principal]]


def _dependency(guard: Guard | None, scheme: Any) -> Dependency:
    # No ``from __future__ import annotations`` here: FastAPI reads this annotation at
    # run time, and ``scheme`` is a closure variable a string could not name.
    async def dependency(
        request: Request, _credential: Annotated[Any, Depends(scheme)]
    ) -> Principal:
        return await _instance(request).check(request, guard)

    return dependency


def require(*, loa: Loa | str | None = None) -> Dependency:
    """``Depends(require(loa="substantial"))``: a full session of at least ``loa``."""
    return _dependency(guard_for("login", loa=loa), _COOKIE)


def require_link(*, scope: str, resource: str | None = None) -> Dependency:
    """A direct-link session for ``scope``/``resource`` (``"{name}"``: the path
    parameter); a full session passes too."""
    return _dependency(guard_for("link", scope=scope, resource=resource), _COOKIE)


def require_bearer(scope: str | None = None, *, check_revocation: bool = False) -> Dependency:
    """A mobile API route: a bearer access token with ``scope`` (header only)."""
    guard = guard_for("bearer", scope=scope, check_revocation=check_revocation)
    return _dependency(guard, _BEARER)


def public() -> Dependency:
    """Anyone; the principal (anonymous or the session's) is still returned."""
    return _dependency(PUBLIC, _COOKIE)


async def by_rules(request: Request) -> Principal:
    """The path-rule table's guard (``rules=[route(...)]``, else ``default_guard``)."""
    return await _instance(request).check(request, None)
