"""The web core: the auth routes, the guard and the middleware base tying them together.

The ASGI and WSGI adapters (:mod:`authbroker.web.asgi`, :mod:`authbroker.web.wsgi`)
only translate their server's request into a
:class:`~authbroker.web.core.requests.WebRequest`, run :meth:`WebCore.handle` (or
:meth:`WebCore.guard`) in **one** runtime call — the broker's runtime, blocking or
asyncio — and send back the response. A handler is a routine that composes the
engines' routines with ``yield from`` (``self.flows.advance(...)``,
``self.sessions.login(...)``, ``self.links.verify(...)``,
``self.tokens.verify_access_token(...)``), so every rule is written once and an OIDC
callback or a link code POST is one run however many services it touches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from ...config import Settings
from ...errors import AuthBrokerError, ConfigError, InvalidInput
from ...identity import Identity
from .branding import Branding
from .flows import FlowRoutes
from .guards import Guard, Guards, Rule, require
from .health import HealthRoutes
from .links import LinkRoutes
from .pages import template_env
from .requests import MAX_BODY, Handler, WebRequest
from .routes import ROUTES, AuthRoute, find_route
from .session_routes import SessionRoutes

__all__ = ["MiddlewareBase", "WebCore"]

_SEGMENT = re.compile(r"[A-Za-z0-9_.~-]{1,128}")


class WebCore(FlowRoutes, LinkRoutes, SessionRoutes, HealthRoutes, Guards):
    """Configuration and handlers shared by the ASGI and WSGI middleware.

    ``rules`` are tried in order (first match wins); unmatched paths get
    ``default_guard`` (deny by default: any full session). ``branding``
    (:class:`~authbroker.web.core.branding.Branding`) sets the hosted pages' name,
    logo, colours, template folders and provider order. ``user_for`` maps a
    verified :class:`Identity` to the application's user id (default: a keyed,
    pseudonymous hash of the national id or provider subject). ``link_landing``
    maps a link grant's scope and resource to where the browser goes next.

    The middleware attaches the engines (``flow_engine``, ``session_engine``,
    ``link_engine``, ``token_engine``); ``routes`` is the route table
    (:data:`~authbroker.web.core.routes.ROUTES`).
    """

    routes: tuple[AuthRoute, ...] = ROUTES

    def __init__(
        self,
        settings: Settings,
        *,
        rules: Sequence[Rule] = (),
        default_guard: Guard | None = None,
        user_for: Callable[[Identity], str] | None = None,
        link_landing: Callable[[str, str], str] | None = None,
        trusted_proxies: Sequence[str] = (),
        simulator_helpers: bool | None = None,
        mobile_audience: str | None = None,
        home: str = "/",
        branding: Branding | None = None,
    ) -> None:
        super().__init__(
            settings,
            trusted_proxies=trusted_proxies,
            simulator_helpers=simulator_helpers,
            user_for=user_for,
        )
        self.rules = list(rules)
        self.default_guard = default_guard or require()
        self.link_landing = link_landing or (lambda scope, resource: home)
        self.home = home
        self.mobile_audience = mobile_audience
        self._principals = {}
        self.branding = branding or Branding()
        if self.branding.template_dirs:
            self._env = template_env(self.branding.template_dirs)

    def route_for(self, req: WebRequest) -> tuple[AuthRoute, dict[str, str]] | None:
        """The route table row serving ``req`` (a path under the prefix), if any."""
        parts = [p for p in req.path[len(self.prefix) :].split("/") if p]
        return find_route(self.routes, req.method, "/" + "/".join(parts))

    def handle(self, req: WebRequest) -> Handler:
        """Serve one request under the route prefix."""
        lang = self.language(req)
        parts = [p for p in req.path[len(self.prefix) :].split("/") if p]
        found = self.route_for(req)
        json_route = found is not None and found[0].json
        try:
            if len(req.body) > MAX_BODY:
                raise InvalidInput("body too large", code="body_too_large")
            free = found is not None and found[0].free_segments
            if not free and not all(_SEGMENT.fullmatch(p) for p in parts[1:]):
                raise InvalidInput("bad path", code="bad_path")
            if found is None:
                return self.not_found(lang)
            row, groups = found
            return (yield from row.handler(self, req, lang, **groups))
        except AuthBrokerError as exc:
            return self.error_page(exc, lang, json_body=json_route)


class _BrokerLike(Protocol):
    @property
    def settings(self) -> Any: ...

    @property
    def store(self) -> Any: ...

    @property
    def engine(self) -> Any: ...

    @property
    def runtime(self) -> Any: ...


AppT = TypeVar("AppT")
BrokerT = TypeVar("BrokerT", bound=_BrokerLike)
SessionsT = TypeVar("SessionsT")


class MiddlewareBase(Generic[AppT, BrokerT, SessionsT]):
    """What the ASGI and WSGI middleware share: the :class:`WebCore`, the session
    manager and the one runtime each request runs in.

    ``sessions`` defaults to ``session_manager`` (set by each adapter: the blocking or
    the async manager) on the broker's store and secret keys; ``links`` and ``tokens``
    enable the direct-link routes and the bearer guard. The remaining keyword
    arguments go to :class:`WebCore`.

    One request is one run of the broker's runtime (``broker.runtime``): the session
    and link routines it composes use the broker's store and HTTP driver. So
    ``sessions`` and ``links`` must be built on the broker's store (the same object) —
    a link session must also see its link's revocation in the store it lives in — and
    anything else is refused here with a :class:`ConfigError`. A link route texts its
    code through the broker's driver; the links facade's own driver (and ``sleep``)
    serve only the calls the application makes on it. Tokens need neither (their
    database work is offloaded).
    """

    #: The session manager class built when no ``sessions`` is given.
    session_manager: Callable[..., SessionsT]

    def __init__(
        self,
        app: AppT,
        *,
        broker: BrokerT,
        sessions: SessionsT | None = None,
        links: Any = None,
        tokens: Any = None,
        rules: Sequence[Rule] = (),
        default_guard: Guard | None = None,
        user_for: Callable[[Identity], str] | None = None,
        link_landing: Callable[[str, str], str] | None = None,
        trusted_proxies: Sequence[str] = (),
        simulator_helpers: bool | None = None,
        mobile_audience: str | None = None,
        home: str = "/",
        branding: Branding | None = None,
    ) -> None:
        self.app = app
        self.core = WebCore(
            broker.settings,
            rules=rules,
            default_guard=default_guard,
            user_for=user_for,
            link_landing=link_landing,
            trusted_proxies=trusted_proxies,
            simulator_helpers=simulator_helpers,
            mobile_audience=mobile_audience,
            home=home,
            branding=branding,
        )
        if sessions is None:
            sessions = self.session_manager(
                broker.store, broker.settings.secret_keys, policy=self.core.policy
            )
        for name, facade in (("sessions", sessions), ("links", links)):
            if facade is not None and getattr(facade, "store", None) is not broker.store:
                raise ConfigError(
                    f"the middleware's {name} must use the broker's store (the same object): "
                    "each request runs in the broker's runtime",
                    key=f"web.{name}",
                )
        self.broker = broker
        self.sessions: SessionsT = sessions
        self.links = links
        self.tokens = tokens
        self.runtime = broker.runtime
        self.core.flow_engine = broker.engine
        self.core.session_engine = getattr(sessions, "engine", None)
        self.core.link_engine = None if links is None else links.engine
        self.core.token_engine = None if tokens is None else tokens.engine
