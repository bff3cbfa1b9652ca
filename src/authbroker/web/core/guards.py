"""Guards: who may reach an application route, and the :class:`Principal` it sees.

Rules (security requirements a.10):

* WEB-05 — deny by default: routes not matched by a rule get ``default_guard``.
* TOK-05 — bearer tokens are refused on web routes, session cookies on mobile API
  routes; a bearer token in the query string is refused.
* SES-01 — session cookies come from :mod:`authbroker.engines.sessions`; a guard
  loads the session with the session engine's ``load`` routine.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ...engines.flows import check_return_to
from ...engines.sessions import Session
from ...errors import (
    AccessDenied,
    AuthBrokerError,
    ConfigError,
    InsufficientLoa,
    InvalidInput,
    ScopeDenied,
)
from ...identity import Loa
from ...kernel.effects import Gen
from .pages import Pages
from .requests import WebRequest, WebResponse

__all__ = [
    "ANONYMOUS",
    "PUBLIC",
    "Guard",
    "GuardOutcome",
    "Guards",
    "Principal",
    "Rule",
    "auth_error",
    "require",
    "require_bearer",
    "route",
]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PRINCIPALS_MAX = 4096  # principals kept, one per live session id (see Guards.principal)


@dataclass(frozen=True, slots=True)
class Guard:
    """What a route needs. ``kind``: ``public``, ``web`` (session cookie) or ``bearer``."""

    kind: Literal["public", "web", "bearer"]
    loa: Loa | None = None
    scope: str | None = None
    resource: str | None = None
    check_revocation: bool = False


PUBLIC = Guard("public")


def require(
    *, loa: Loa | str | None = None, scope: str | None = None, resource: str | None = None
) -> Guard:
    """A web route guard.

    ``require()`` needs any full session; ``require(loa=Loa.HIGH)`` a session of at
    least that LoA; ``require(scope="invoice:approve", resource="{invoice}")`` also
    admits a direct-link session for exactly that scope and resource (``{name}``
    takes the value of a path placeholder). A full session passes scope routes.
    """
    if resource is not None and scope is None:
        raise ConfigError("resource needs a scope", key="web.require")
    level = Loa.parse(loa) if loa is not None else None
    return Guard("web", loa=level, scope=scope, resource=resource)


def require_bearer(scope: str | None = None, *, check_revocation: bool = False) -> Guard:
    """A mobile API route: a bearer access token (header only) with ``scope``."""
    return Guard("bearer", scope=scope, check_revocation=check_revocation)


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: re.Pattern[str]
    guard: Guard
    source: str

    def match(self, path: str) -> dict[str, str] | None:
        m = self.pattern.fullmatch(path)
        return None if m is None else m.groupdict()


def route(pattern: str, guard: Guard) -> Rule:
    """``/invoices/{invoice}`` (one segment per placeholder); a trailing ``/*`` or
    ``*`` matches any rest of the path."""
    regex = ""
    rest = pattern
    wildcard = rest.endswith("*")
    if wildcard:
        rest = rest[:-1]
    pos = 0
    for m in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", rest):
        regex += re.escape(rest[pos : m.start()]) + f"(?P<{m.group(1)}>[^/]+)"
        pos = m.end()
    regex += re.escape(rest[pos:])
    if wildcard:
        if regex.endswith("/"):
            regex = regex[:-1] + "(?:/.*)?"
        else:
            regex += ".*"
    return Rule(re.compile(regex), guard, pattern)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, exposed to the application.

    Starlette's convention: ``scope["auth"].scopes`` and ``scope["user"].is_authenticated``
    / ``.display_name`` — this one object serves as both.
    """

    kind: Literal["anonymous", "full", "link", "mobile"]
    user_id: str | None = None
    loa: Loa | None = None
    identity: Mapping[str, Any] = field(default_factory=dict, repr=False)
    scope: str | None = None
    resource: str | None = None
    token_scopes: frozenset[str] = frozenset()
    csrf_token: str | None = field(default=None, repr=False)
    session: Session | None = field(default=None, repr=False)
    expires_at: float | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def display_name(self) -> str:
        given = self.identity.get("given_name") or ""
        family = self.identity.get("family_name") or ""
        name = f"{given} {family}".strip()
        return name or (self.user_id or "")

    @property
    def identity_number_masked(self) -> str | None:
        from ...national_ids import mask

        nid = self.identity.get("national_id")
        return mask(str(nid["value"])) if isinstance(nid, Mapping) else None

    @property
    def access_level(self) -> str:
        if self.kind == "full" and self.loa is not None:
            return f"full ({self.loa.name.lower()})"
        if self.kind == "link":
            return f"direct link ({self.scope} {self.resource})"
        if self.kind == "mobile":
            return "mobile token (" + " ".join(sorted(self.token_scopes)) + ")"
        return "anonymous"

    @property
    def scopes(self) -> list[str]:
        if self.kind == "full" and self.loa is not None:
            return ["authenticated", f"loa:{self.loa.name.lower()}"]
        if self.kind == "link":
            return ["authenticated", f"link:{self.scope}:{self.resource}"]
        if self.kind == "mobile":
            return ["authenticated", *sorted(self.token_scopes)]
        return []

    def require(
        self, *, loa: Loa | None = None, scope: str | None = None, resource: str | None = None
    ) -> None:
        """Inline check for apps (raises InsufficientLoa / ScopeDenied / AccessDenied)."""
        if self.session is None:
            raise AccessDenied("authentication needed", code="not_authenticated")
        self.session.require(loa=loa, scope=scope, resource=resource)

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token and self.csrf_token) and hmac.compare_digest(
            str(token), str(self.csrf_token)
        )


ANONYMOUS = Principal("anonymous")


@dataclass(slots=True)
class GuardOutcome:
    principal: Principal
    response: WebResponse | None = None


def auth_error(status: int, code: str, *, bearer_challenge: bool = False) -> WebResponse:
    resp = WebResponse.json({"error": code}, status)
    if bearer_challenge or status == 401:
        error = "insufficient_scope" if status == 403 else "invalid_token"
        if code == "missing_token":
            resp.headers.append(("www-authenticate", 'Bearer realm="api"'))
        else:
            resp.headers.append(("www-authenticate", f'Bearer realm="api", error="{error}"'))
    return resp


class Guards(Pages):
    """Guard evaluation for application requests (mixed into the web core)."""

    rules: list[Rule]
    default_guard: Guard
    home: str
    mobile_audience: str | None
    _principals: dict[str, Principal]

    def match(self, path: str) -> tuple[Guard, dict[str, str]]:
        for rule in self.rules:
            groups = rule.match(path)
            if groups is not None:
                return rule.guard, groups
        return self.default_guard, {}

    def guard(
        self,
        req: WebRequest,
        *,
        required: Guard | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> Gen[GuardOutcome]:
        """Decide whether an application request may reach the app, and as whom.

        By default the path-rule table decides (:meth:`match`); a framework
        integration passes the guard declared on the route itself (``required``) and
        the route's path parameters (``groups``, for ``resource="{name}"``).
        """
        if required is None:
            guard, groups = self.match(req.path)
        else:
            guard, groups = required, dict(groups or {})
        auth = req.header("authorization") or ""
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        cookie = req.cookie(self.policy.cookie_name)
        try:
            query = req.query()
        except InvalidInput as exc:
            return GuardOutcome(ANONYMOUS, WebResponse.json({"error": exc.code}, 400))
        if guard.kind == "bearer":
            return (yield from self._guard_bearer(guard, bearer, auth, cookie, query))
        if bearer is not None or auth:
            # TOK-05: no ambient authority; a mobile token is not a web credential.
            return GuardOutcome(ANONYMOUS, auth_error(401, "bearer_not_accepted"))
        session: Session | None = None
        if cookie:
            session = yield from self.sessions.load(cookie)
        principal = self.principal(session)
        if guard.kind == "public":
            return GuardOutcome(principal)
        target = req.path + ("?" + req.query_string if req.query_string else "")
        if session is None:
            if req.method in _SAFE_METHODS:
                return GuardOutcome(principal, WebResponse.redirect(self._login_target(target)))
            return GuardOutcome(principal, auth_error(401, "not_authenticated"))
        resource = guard.resource.format(**groups) if guard.resource else None
        loa = guard.loa if guard.loa is not None else (None if guard.scope else Loa.LOW)
        try:
            session.require(loa=loa, scope=guard.scope, resource=resource)
        except (InsufficientLoa, ScopeDenied) as exc:
            if req.method in _SAFE_METHODS:
                return GuardOutcome(
                    principal, WebResponse.redirect(self._login_target(target, step_up=True))
                )
            return GuardOutcome(principal, auth_error(403, exc.code))
        if req.method not in _SAFE_METHODS:
            try:
                self.check_origin(req)
            except AccessDenied as exc:
                return GuardOutcome(principal, auth_error(403, exc.code))
        return GuardOutcome(principal)

    def _login_target(self, target: str, *, step_up: bool = False) -> str:
        try:
            safe = check_return_to(target, self.settings.return_to_origins)
        except InvalidInput:
            safe = self.home
        return self.picker_url(safe, step_up=step_up)

    def _guard_bearer(
        self,
        guard: Guard,
        bearer: str | None,
        auth: str,
        cookie: str | None,
        query: Mapping[str, str],
    ) -> Gen[GuardOutcome]:
        if "access_token" in query:
            # RFC 6750 §2.3 is not offered: tokens in URLs leak (TOK-05).
            return GuardOutcome(ANONYMOUS, auth_error(400, "token_in_query"))
        if not bearer:
            code = "session_not_accepted" if cookie and not auth else "missing_token"
            return GuardOutcome(ANONYMOUS, auth_error(401, code, bearer_challenge=True))
        try:
            claims = yield from self.tokens.verify_access_token(
                bearer,
                self.mobile_audience,
                guard.scope,
                check_revocation=guard.check_revocation,
            )
        except ScopeDenied as exc:
            return GuardOutcome(ANONYMOUS, auth_error(403, exc.code, bearer_challenge=True))
        except AuthBrokerError as exc:
            return GuardOutcome(ANONYMOUS, auth_error(401, exc.code, bearer_challenge=True))
        principal = Principal(
            "mobile",
            user_id=claims.subject,
            token_scopes=frozenset(claims.scopes),
            expires_at=claims.expires_at,
        )
        return GuardOutcome(principal)

    def principal(self, session: Session | None) -> Principal:
        """The principal of ``session``. Kept per session id while the session
        object is the same one (the session engine hands out one object per stored
        record, :meth:`SessionEngine._parse`): a changed record gives a new object
        and so a new principal; a revoked session never reaches here."""
        if session is None:
            return ANONYMOUS
        cache = self._principals
        cached = cache.get(session.id)
        if cached is not None and cached.session is session:
            return cached
        if len(cache) >= _PRINCIPALS_MAX:
            cache.clear()
        cache[session.id] = principal = self._new_principal(session)
        return principal

    @staticmethod
    def _new_principal(session: Session) -> Principal:
        return Principal(
            session.kind,
            user_id=session.user,
            loa=session.loa if session.kind == "full" else None,
            identity=session.identity,
            scope=session.scope,
            resource=session.resource,
            csrf_token=session.csrf,
            session=session,
            expires_at=session.expires_at,
        )
