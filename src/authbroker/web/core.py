"""The one implementation of the web layer: auth routes, hosted pages and guards.

The ASGI and WSGI adapters (:mod:`.asgi`, :mod:`.wsgi`) only translate their server's
request into a :class:`WebRequest`, run a handler of :class:`WebCore` and send back
the :class:`WebResponse`. Handlers are sans-I/O generators in the style of
:mod:`authbroker.flow`: they *yield* a :class:`Call` naming a service method
(``broker.begin``, ``sessions.login``, ``links.verify``, ``tokens.verify_access_token``)
and receive its result. The sync adapter calls :class:`~authbroker.broker.Broker`,
:class:`~authbroker.engines.sessions.SessionManager`... directly; the async adapter awaits
their asyncio twins. So every rule below is written once.

Rules (security requirements a.10):

* SES-01/02 — session cookies come from :mod:`authbroker.engines.sessions`; every login,
  step-up and link grant rotates the id (``replaces=``), logout deletes the record.
* SES-06 — a per-browser random *binding* lives in the signed, HttpOnly flow cookie;
  the broker ties each flow to it (login CSRF, BankID relay). Hosted POST forms carry
  a CSRF token derived from the binding; ``Origin``/``Sec-Fetch-Site`` are checked.
* WEB-01 — every ``return_to`` goes through :func:`authbroker.broker.check_return_to`.
* WEB-02 — hosted pages send HSTS, a nonce-based CSP with ``frame-ancestors 'none'``,
  nosniff, ``Referrer-Policy: no-referrer``, COOP and ``Cache-Control: no-store``.
* WEB-03 — the client IP is the socket peer unless ``trusted_proxies`` lists it.
* WEB-04 — errors become localized generic pages (or JSON) with a typed code.
* WEB-05 — deny by default: routes not matched by a rule get ``default_guard``.
* WEB-06 — repeated parameters are refused; query strings and bodies are capped.
* TOK-05 — bearer tokens are refused on web routes, session cookies on mobile API
  routes; a bearer token in the query string is refused.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import inspect
import ipaddress
import json
import re
import secrets
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import jinja2
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..config import ProviderConfig, Settings
from ..engines.flows import check_return_to
from ..engines.sessions import Session, SessionPolicy
from ..errors import (
    AccessDenied,
    AuthBrokerError,
    ConfigError,
    InsufficientLoa,
    InvalidInput,
    ScopeDenied,
)
from ..flow import AutoPost, Challenge, Display, Done, Poll, Redirect, Step, run_async, run_sync
from ..identity import Identity, Loa
from ..providers.base import RAW_QUERY
from .i18n import check_languages, negotiate, translate

__all__ = [
    "PUBLIC",
    "Call",
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

MAX_QUERY = 8 * 1024
MAX_BODY = 64 * 1024
FLOW_COOKIE_SALT = "authbroker.web.flow.v1"
CSRF_LABEL = b"authbroker.web.csrf.v1"
_FLOW_COOKIE_AGE = 24 * 3600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SEGMENT = re.compile(r"[A-Za-z0-9_.~-]{1,128}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_.=-]{16,512}")


# --- effects --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """A service call the adapter carries out: ``services[target].method(*args, **kw)``."""

    target: str  # "broker" | "sessions" | "links" | "tokens"
    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


#: A handler: yields :class:`Call`\ s, receives their results, returns a response.
Handler: TypeAlias = Generator[Call, Any, "WebResponse"]


def call(target: str, method: str, *args: Any, **kwargs: Any) -> Generator[Call, Any, Any]:
    result = yield Call(target, method, args, kwargs)
    return result


# --- requests and responses -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebRequest:
    """What the core needs of an HTTP request (headers lower-cased)."""

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    client_ip: str | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies by name; the first of a repeated name wins (most specific path)."""
        jar: dict[str, str] = {}
        for part in (self.header("cookie") or "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name and name not in jar:
                jar[name] = value.strip().strip('"')
        return jar

    def query(self) -> dict[str, str]:
        return _parse_unique(self.query_string, MAX_QUERY, "query")

    def form(self) -> dict[str, str]:
        ctype = (self.header("content-type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            if not self.body:
                return {}
            raise InvalidInput("form body expected", code="bad_content_type")
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput("form body is not UTF-8", code="bad_encoding") from exc
        return _parse_unique(text, MAX_BODY, "body")

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        if len(self.body) > MAX_BODY:
            raise InvalidInput("body too large", code="body_too_large")
        try:
            value = json.loads(self.body)
        except ValueError as exc:
            raise InvalidInput("body is not JSON", code="bad_json") from exc
        if not isinstance(value, dict):
            raise InvalidInput("JSON object expected", code="bad_json")
        return value


def _parse_unique(text: str, limit: int, what: str) -> dict[str, str]:
    """Parse form/query text; a repeated name is refused (WEB-06, RFC 6749 §3.1)."""
    if len(text) > limit:
        raise InvalidInput(f"{what} too large", code=f"{what}_too_large")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{what} is malformed", code="malformed_parameters") from exc
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise InvalidInput("a parameter appears twice", code="duplicate_parameter")
        out[name] = value
    return out


def _callback_query(req: WebRequest) -> dict[str, str]:
    """A callback's query parameters plus the raw query string under ``RAW_QUERY``.

    The provider decides the character set: TUPAS banks percent-encode ISO-8859-1
    (``M%C4KI``), which is not UTF-8, so such a query yields only ``RAW_QUERY`` here
    and the adapter decodes it with the bank's charset.
    """
    try:
        params = req.query()
    except InvalidInput as exc:
        if exc.code != "malformed_parameters":
            raise
        params = {}
    if req.query_string:
        params[RAW_QUERY] = req.query_string
    return params


@dataclass(slots=True)
class WebResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> WebResponse:
        return cls(
            status,
            [("location", location), ("cache-control", "no-store"), ("content-length", "0")],
        )

    @classmethod
    def json(cls, data: Any, status: int = 200) -> WebResponse:
        body = json.dumps(data, separators=(",", ":")).encode()
        return cls(
            status,
            [
                ("content-type", "application/json"),
                ("cache-control", "no-store"),
                ("x-content-type-options", "nosniff"),
            ],
            body,
        )


def security_headers(
    nonce: str,
    *,
    form_action: Iterable[str] = (),
    referrer: str = "no-referrer",
) -> list[tuple[str, str]]:
    """WEB-02 headers of a hosted page; inline CSS/JS run only with ``nonce``."""
    actions = " ".join(["'self'", *form_action])
    csp = (
        "default-src 'self'; "
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        f"form-action {actions}"
    )
    return [
        ("content-security-policy", csp),
        ("strict-transport-security", "max-age=63072000; includeSubDomains"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", referrer),
        ("cross-origin-opener-policy", "same-origin"),
        ("cache-control", "no-store"),
        ("pragma", "no-cache"),
    ]


# --- guards ---------------------------------------------------------------------------


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
        from ..national_ids import mask

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


# --- flow cookie ----------------------------------------------------------------------


@dataclass(slots=True)
class FlowState:
    """What the signed flow cookie carries: the binding, the current flow/link and the
    language the user chose (``lang``), so every page of the flow keeps it even where
    the URL has no ``?lang=`` (waiting page, provider callbacks, redirects)."""

    binding: str
    flow_id: str | None = None
    provider: str | None = None
    link_token: str | None = None
    challenge: str | None = None
    masked_phone: str | None = None
    return_to: str | None = None
    lang: str | None = None
    fresh: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "b": self.binding,
            "f": self.flow_id,
            "p": self.provider,
            "t": self.link_token,
            "c": self.challenge,
            "m": self.masked_phone,
            "r": self.return_to,
            "l": self.lang,
        }


# --- templates ------------------------------------------------------------------------

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("authbroker.web", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _needs_input(protocol: str) -> bool:
    return protocol in ("mobiilivarmenne", "bankid-se")


def _qr_svg_data_uri(payload: str) -> str:
    import io

    import segno

    buf = io.BytesIO()
    segno.make(payload, error="l").save(buf, kind="svg", scale=6, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def _qr_svg(payload: str) -> bytes:
    import io

    import segno

    buf = io.BytesIO()
    segno.make(payload, error="l").save(buf, kind="svg", scale=6, border=2)
    return buf.getvalue()


class WebCore:
    """Configuration and handlers shared by the ASGI and WSGI middleware.

    ``rules`` are tried in order (first match wins); unmatched paths get
    ``default_guard`` (deny by default: any full session). ``user_for`` maps a
    verified :class:`Identity` to the application's user id (default: a keyed,
    pseudonymous hash of the national id or provider subject). ``link_landing``
    maps a link grant's scope and resource to where the browser goes next.
    """

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
    ) -> None:
        if not settings.secret_keys:
            raise ConfigError("at least one secret key is needed", key="AUTHBROKER_SECRET_KEYS")
        check_languages(settings.languages, settings.default_language)
        self.settings = settings
        self.prefix = settings.route_prefix.rstrip("/")
        self.rules = list(rules)
        self.default_guard = default_guard or require()
        self.user_for = user_for or self._default_user
        self.link_landing = link_landing or (lambda scope, resource: home)
        self.home = home
        self.mobile_audience = mobile_audience
        base = urlsplit(settings.base_url)
        self.origin = f"{base.scheme}://{base.netloc}".lower()
        self.secure = base.scheme == "https"
        self.policy = SessionPolicy(
            cookie_name="__Host-ab_session" if self.secure else "ab_session"
        )
        self.flow_cookie = "__Host-ab_flow" if self.secure else "ab_flow"
        self.simulator_helpers = (
            settings.environment == "simulator" if simulator_helpers is None else simulator_helpers
        )
        if self.simulator_helpers and settings.environment != "simulator":
            raise ConfigError("simulator helpers only in the simulator environment", key="web")
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self._serializer = URLSafeTimedSerializer(
            list(reversed(settings.secret_keys)), salt=FLOW_COOKIE_SALT
        )
        # The newest key signs form tokens; every listed key verifies, so a form opened
        # before a key rotation still posts (the same rule as the signed cookies).
        self._csrf_keys = [
            hmac.new(key.encode(), CSRF_LABEL, "sha256").digest() for key in settings.secret_keys
        ]
        self._user_key = hmac.new(
            settings.secret_keys[-1].encode(), b"authbroker.web.user.v1", "sha256"
        ).digest()

    # -- helpers ---------------------------------------------------------------------

    def _default_user(self, identity: Identity) -> str:
        if identity.national_id is not None:
            basis = f"nid:{identity.national_id.country}:{identity.national_id.value}"
        else:
            basis = f"sub:{identity.provider}:{identity.subject}"
        return "u_" + hmac.new(self._user_key, basis.encode(), "sha256").hexdigest()[:32]

    def client_ip(self, peer: str | None, headers: Mapping[str, str]) -> str | None:
        """WEB-03: the socket peer, or the last untrusted X-Forwarded-For hop behind
        a configured proxy."""
        if not peer or not self.proxies:
            return peer

        def trusted(addr: str) -> bool:
            try:
                ip = ipaddress.ip_address(addr)
            except ValueError:
                return False
            return any(ip in net for net in self.proxies)

        if not trusted(peer):
            return peer
        hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer
        return peer

    def is_auth_path(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def language(self, req: WebRequest) -> str:
        """``?lang=``, else the language kept in the flow cookie, else Accept-Language."""
        return negotiate(
            self._chosen_language(req),
            req.header("accept-language"),
            self.settings.default_language,
            self.settings.languages,
            remembered=self._load_flow(req).lang,
        )

    def _chosen_language(self, req: WebRequest) -> str | None:
        """The offered language named by ``?lang=`` (anything else is ignored)."""
        try:
            explicit = req.query().get("lang")
        except InvalidInput:
            return None
        return explicit if explicit in self.settings.languages else None

    def _load_flow(self, req: WebRequest) -> FlowState:
        raw = req.cookies.get(self.flow_cookie)
        if raw and len(raw) <= 4096:
            try:
                data = self._serializer.loads(raw, max_age=_FLOW_COOKIE_AGE)
                if isinstance(data, dict) and isinstance(data.get("b"), str):
                    return FlowState(
                        binding=data["b"],
                        flow_id=data.get("f"),
                        provider=data.get("p"),
                        link_token=data.get("t"),
                        challenge=data.get("c"),
                        masked_phone=data.get("m"),
                        return_to=data.get("r"),
                        lang=self._chosen_language(req) or data.get("l"),
                    )
            except BadSignature:
                pass
        return FlowState(
            binding=secrets.token_urlsafe(32), lang=self._chosen_language(req), fresh=True
        )

    def _flow_cookie(self, state: FlowState) -> str:
        value = self._serializer.dumps(state.to_json())
        attrs = f"; Path=/; Max-Age={_FLOW_COOKIE_AGE}; HttpOnly; SameSite=Lax"
        return f"{self.flow_cookie}={value}{attrs}" + ("; Secure" if self.secure else "")

    def csrf_for(self, binding: str, key: bytes | None = None) -> str:
        """The form token of ``binding`` (under the newest key unless ``key`` is given)."""
        mac = hmac.new(key or self._csrf_keys[0], binding.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _csrf_ok(self, binding: str, token: str) -> bool:
        # Every key is tried (no early exit), so the answer takes the same time whichever
        # key, if any, matches.
        ok = False
        for key in self._csrf_keys:
            ok |= hmac.compare_digest(token, self.csrf_for(binding, key))
        return ok

    def _check_post(self, req: WebRequest, state: FlowState, token: str | None) -> None:
        """SES-06: same-origin POST with the CSRF token of this browser's binding."""
        self._check_origin(req)
        if state.fresh or not token or not self._csrf_ok(state.binding, token):
            raise AccessDenied("the form token is missing or wrong", code="csrf")

    def _check_origin(self, req: WebRequest) -> None:
        """Fetch metadata first; ``Origin`` only when the browser sends no metadata.

        Pages served with ``Referrer-Policy: no-referrer`` make browsers send
        ``Origin: null`` on their own form posts, so ``null`` is left to the CSRF token.
        """
        site = req.header("sec-fetch-site")
        if site is not None:
            if site not in ("same-origin", "none"):
                raise AccessDenied("cross-site request refused", code="cross_site")
            return
        origin = req.header("origin")
        if origin is not None and origin != "null" and origin.lower() != self.origin:
            raise AccessDenied("cross-origin request refused", code="cross_origin")

    def render(
        self,
        template: str,
        lang: str,
        *,
        status: int = 200,
        form_action: Iterable[str] = (),
        cookies: Iterable[str] = (),
        **context: Any,
    ) -> WebResponse:
        nonce = secrets.token_urlsafe(16)

        def t(key: str, **values: str) -> str:
            return translate(lang, key, **values)

        body = (
            _ENV.get_template(template)
            .render(t=t, lang=lang, nonce=nonce, prefix=self.prefix, **context)
            .encode()
        )
        headers = [("content-type", "text/html; charset=utf-8")]
        headers += security_headers(nonce, form_action=form_action)
        headers += [("set-cookie", c) for c in cookies]
        return WebResponse(status, headers, body)

    def error_page(
        self, exc: AuthBrokerError, lang: str, *, json_body: bool = False
    ) -> WebResponse:
        key = exc.user_message_key
        if exc.code in ("otp_wrong", "otp_expired", "otp_replayed", "challenge_locked") or (
            exc.code in ("otp_locked", "challenge_superseded", "challenge_unknown")
        ):
            key = "error.code"  # OTP-07: one message for wrong, expired and locked codes
        message = translate(lang, key)
        status = exc.http_status
        if json_body:
            return WebResponse.json(
                {"status": "failed", "error": exc.code, "message": message}, status
            )
        return self.render(
            "error.html",
            lang,
            status=status,
            message=message,
            code=exc.code,
            back=f"{self.prefix}/",
        )

    def internal_error(self, lang: str, *, json_body: bool = False) -> WebResponse:
        message = translate(lang, "error.internal")
        if json_body:
            return WebResponse.json(
                {"status": "failed", "error": "internal", "message": message}, 500
            )
        return self.render(
            "error.html",
            lang,
            status=500,
            message=message,
            code="internal",
            back=f"{self.prefix}/",
        )

    def picker_url(self, return_to: str, *, step_up: bool = False) -> str:
        query = {"return_to": return_to}
        if step_up:
            query["step_up"] = "1"
        return f"{self.prefix}/?{urlencode(query)}"

    # -- guards for application routes ------------------------------------------------

    def match(self, path: str) -> tuple[Guard, dict[str, str]]:
        for rule in self.rules:
            groups = rule.match(path)
            if groups is not None:
                return rule.guard, groups
        return self.default_guard, {}

    def guard(self, req: WebRequest) -> Generator[Call, Any, GuardOutcome]:
        """Decide whether an application request may reach the app, and as whom."""
        guard, groups = self.match(req.path)
        auth = req.header("authorization") or ""
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        cookie = req.cookies.get(self.policy.cookie_name)
        try:
            query = req.query()
        except InvalidInput as exc:
            return GuardOutcome(ANONYMOUS, WebResponse.json({"error": exc.code}, 400))
        if guard.kind == "bearer":
            return (yield from self._guard_bearer(guard, bearer, auth, cookie, query))
        if bearer is not None or auth:
            # TOK-05: no ambient authority; a mobile token is not a web credential.
            return GuardOutcome(ANONYMOUS, _auth_error(401, "bearer_not_accepted"))
        session: Session | None = None
        if cookie:
            session = yield from call("sessions", "load", cookie)
        principal = self.principal(session)
        if guard.kind == "public":
            return GuardOutcome(principal)
        target = req.path + ("?" + req.query_string if req.query_string else "")
        if session is None:
            if req.method in _SAFE_METHODS:
                return GuardOutcome(principal, WebResponse.redirect(self._login_target(target)))
            return GuardOutcome(principal, _auth_error(401, "not_authenticated"))
        resource = guard.resource.format(**groups) if guard.resource else None
        loa = guard.loa if guard.loa is not None else (None if guard.scope else Loa.LOW)
        try:
            session.require(loa=loa, scope=guard.scope, resource=resource)
        except (InsufficientLoa, ScopeDenied) as exc:
            if req.method in _SAFE_METHODS:
                return GuardOutcome(
                    principal, WebResponse.redirect(self._login_target(target, step_up=True))
                )
            return GuardOutcome(principal, _auth_error(403, exc.code))
        if req.method not in _SAFE_METHODS:
            try:
                self._check_origin(req)
            except AccessDenied as exc:
                return GuardOutcome(principal, _auth_error(403, exc.code))
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
    ) -> Generator[Call, Any, GuardOutcome]:
        if "access_token" in query:
            # RFC 6750 §2.3 is not offered: tokens in URLs leak (TOK-05).
            return GuardOutcome(ANONYMOUS, _auth_error(400, "token_in_query"))
        if not bearer:
            code = "session_not_accepted" if cookie and not auth else "missing_token"
            return GuardOutcome(ANONYMOUS, _auth_error(401, code, bearer_challenge=True))
        try:
            claims = yield from call(
                "tokens",
                "verify_access_token",
                bearer,
                self.mobile_audience,
                guard.scope,
                check_revocation=guard.check_revocation,
            )
        except ScopeDenied as exc:
            return GuardOutcome(ANONYMOUS, _auth_error(403, exc.code, bearer_challenge=True))
        except AuthBrokerError as exc:
            return GuardOutcome(ANONYMOUS, _auth_error(401, exc.code, bearer_challenge=True))
        principal = Principal(
            "mobile",
            user_id=claims.subject,
            token_scopes=frozenset(claims.scopes),
            expires_at=claims.expires_at,
        )
        return GuardOutcome(principal)

    def principal(self, session: Session | None) -> Principal:
        if session is None:
            return ANONYMOUS
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

    # -- auth routes ------------------------------------------------------------------

    def handle(self, req: WebRequest) -> Handler:
        """Serve one request under the route prefix."""
        lang = self.language(req)
        sub = req.path[len(self.prefix) :] or "/"
        parts = [p for p in sub.split("/") if p]
        json_route = (bool(parts) and parts[0] in ("poll", "qr")) or sub.endswith("/simulate")
        try:
            if len(req.body) > MAX_BODY:
                raise InvalidInput("body too large", code="body_too_large")
            return (yield from self._dispatch(req, parts, lang))
        except AuthBrokerError as exc:
            return self.error_page(exc, lang, json_body=json_route)

    def _dispatch(self, req: WebRequest, parts: list[str], lang: str) -> Handler:
        m = req.method
        get = m in ("GET", "HEAD")
        n = len(parts)
        head = parts[0] if parts else ""
        if n and not all(_SEGMENT.fullmatch(p) for p in parts[1:]) and head != "link":
            raise InvalidInput("bad path", code="bad_path")
        if n == 0 and get:
            return (yield from self.picker(req, lang))
        if head == "begin" and n == 2:
            return (yield from self.begin(req, parts[1], lang))
        if head == "flow" and n == 2 and get:
            return (yield from self.wait_page(req, parts[1], lang, nonce=None))
        if head == "poll" and n == 2 and m == "POST":
            return (yield from self.poll(req, parts[1], lang))
        if head == "qr" and n == 2 and get:
            return (yield from self.qr(req, parts[1]))
        if head == "callback" and n == 2 and m in ("GET", "POST"):
            return (yield from self.callback(req, parts[1], lang))
        if head == "webeid" and n == 2 and m == "POST":
            return (yield from self.webeid_token(req, parts[1], lang))
        if head == "webeid" and n == 3 and parts[2] == "simulate" and m == "POST":
            return (yield from self.webeid_simulate(req, parts[1]))
        if head == "simulate" and n == 3 and parts[1] == "bankid-se" and m == "POST":
            return (yield from self.bankid_simulate(req, parts[2]))
        if head == "cancel" and n == 2 and m == "POST":
            return (yield from self.cancel(req, parts[1], lang))
        if head == "link":
            return (yield from self.link(req, parts[1:], lang))
        if head == "logout" and n == 1 and m == "POST":
            return (yield from self.logout(req, lang))
        if head == "jwks.json" and n == 1 and get:
            return (yield from self.jwks())
        if head == "jwks" and n == 2 and get and parts[1].endswith(".jwt"):
            return (yield from self.signed_jwks(parts[1][: -len(".jwt")], lang))
        return self.render(
            "error.html",
            lang,
            status=404,
            message=translate(lang, "error.not_found"),
            code="not_found",
            back=f"{self.prefix}/",
        )

    def _provider_entries(self) -> list[dict[str, Any]]:
        entries = []
        for name in self.settings.providers:
            config = self.settings.providers[name]
            entries.append(
                {
                    "name": name,
                    "protocol": config.protocol,
                    "display": config.display_name,
                    "country": config.country or "",
                    "loa": config.loa.name.lower(),
                }
            )
        return entries

    def picker(self, req: WebRequest, lang: str) -> Handler:
        query = req.query()
        return_to = check_return_to(query.get("return_to"), self.settings.return_to_origins)
        state = self._load_flow(req)
        entries = self._provider_entries()
        banks = [e for e in entries if e["protocol"] == "tupas"]
        others = [e for e in entries if e["protocol"] != "tupas"]
        # A language chosen here (?lang=, the language links) is kept for the flow.
        chosen = self._chosen_language(req) is not None
        cookies = [self._flow_cookie(state)] if state.fresh or chosen else []
        yield from ()
        return self.render(
            "picker.html",
            lang,
            banks=banks,
            others=others,
            return_to=return_to,
            step_up=query.get("step_up") == "1",
            cookies=cookies,
            lang_links=self._lang_links(req),
        )

    def _lang_links(self, req: WebRequest) -> list[tuple[str, str]]:
        try:
            query = req.query()
        except InvalidInput:
            query = {}
        links = []
        for lang in self.settings.languages:
            q = dict(query)
            q["lang"] = lang
            links.append((lang, req.path + "?" + urlencode(q)))
        return links

    def _provider_config(self, name: str) -> ProviderConfig:
        """The configured provider named in the URL; an unknown name is client input
        (400), not a configuration error of ours (500)."""
        config = self.settings.providers.get(name)
        if config is None:
            raise InvalidInput("unknown provider", code="unknown_provider")
        return config

    def begin(self, req: WebRequest, provider: str, lang: str) -> Handler:
        config = self._provider_config(provider)
        state = self._load_flow(req)
        params: dict[str, str] = {}
        if req.method == "POST":
            form = req.form()
            self._check_post(req, state, form.get("csrf"))
            return_to = form.get("return_to")
            for key in ("phone", "msisdn", "nospam", "same_device", "device"):
                if form.get(key):
                    params[key] = form[key][:64]
        elif req.method in ("GET", "HEAD"):
            query = req.query()
            return_to = query.get("return_to")
            if _needs_input(config.protocol):
                checked = check_return_to(return_to, self.settings.return_to_origins)
                cookies = [self._flow_cookie(state)] if state.fresh else []
                return self.render(
                    "input.html",
                    lang,
                    provider=provider,
                    protocol=config.protocol,
                    display=config.display_name,
                    return_to=checked,
                    csrf=self.csrf_for(state.binding),
                    cookies=cookies,
                )
        else:
            raise InvalidInput("method not allowed", code="method")
        if config.protocol == "bankid-se" and req.method == "POST":
            params.setdefault("same_device", "false")
            # BankID RP API v6.0 asks for the browser's device information (the
            # adapter sends it as the order's "web" object): the user agent, and a
            # device identifier that is stable per browser but names no user.
            user_agent = req.header("user-agent")
            if user_agent:
                params["user_agent"] = user_agent[:512]
            params["device_id"] = hmac.new(
                self._csrf_keys[0], b"bankid-se device:" + state.binding.encode(), hashlib.sha256
            ).hexdigest()[:40]
        step: Step = yield from call(
            "broker",
            "begin",
            provider,
            return_to=return_to,
            client_ip=req.client_ip,
            binding=state.binding,
            params=params,
            language=lang,
            origin=self.origin,
        )
        state.flow_id = step.flow_id
        state.provider = provider
        cookie = self._flow_cookie(state)
        return self._step_response(step, state, lang, [cookie], nonce=None)

    def _step_response(
        self,
        step: Step,
        state: FlowState,
        lang: str,
        cookies: list[str],
        *,
        nonce: str | None,
    ) -> WebResponse:
        if isinstance(step, Redirect):
            resp = WebResponse.redirect(step.url)
            resp.headers += [("set-cookie", c) for c in cookies]
            resp.headers.append(("referrer-policy", "no-referrer"))
            return resp
        if isinstance(step, AutoPost):
            target = urlsplit(step.url)
            return self.render(
                "autopost.html",
                lang,
                url=step.url,
                fields=list(step.fields.items()),
                form_action=[f"{target.scheme}://{target.netloc}"],
                cookies=cookies,
            )
        if isinstance(step, Challenge):
            return self.render(
                "webeid.html",
                lang,
                flow_id=step.flow_id,
                challenge=step.nonce,
                csrf=self.csrf_for(state.binding),
                simulator=self.simulator_helpers,
                cookies=cookies,
            )
        if isinstance(step, Poll):
            location = f"{self.prefix}/flow/{step.flow_id}"
            if nonce:
                return self._wait_render(step, state, lang, cookies, nonce=nonce)
            resp = WebResponse.redirect(location)
            resp.headers += [("set-cookie", c) for c in cookies]
            return resp
        raise InvalidInput("unexpected step", code="step")

    def _wait_render(
        self,
        poll: Poll,
        state: FlowState,
        lang: str,
        cookies: list[str],
        *,
        nonce: str | None,
    ) -> WebResponse:
        display = poll.display
        config = self.settings.providers.get(state.provider or "")
        protocol = config.protocol if config is not None else ""
        return self.render(
            "wait.html",
            lang,
            flow_id=poll.flow_id,
            interval=max(1.0, float(poll.interval)),
            message=_message(display, lang),
            qr=display.qr or "",
            qr_src=_qr_svg_data_uri(display.qr) if display.qr else "",
            autostart_url=display.autostart_url or "",
            verification_code=display.verification_code or "",
            return_nonce=nonce or "",
            csrf=self.csrf_for(state.binding),
            protocol=protocol,
            simulator=self.simulator_helpers and protocol == "bankid-se" and bool(display.qr),
            cookies=cookies,
        )

    def wait_page(self, req: WebRequest, flow_id: str, lang: str, *, nonce: str | None) -> Handler:
        state = self._load_flow(req)
        poll: Poll = yield from call("broker", "refresh", flow_id, binding=state.binding)
        if state.flow_id != flow_id:
            state.flow_id = flow_id
        return self._wait_render(poll, state, lang, [], nonce=nonce)

    def poll(self, req: WebRequest, flow_id: str, lang: str) -> Handler:
        state = self._load_flow(req)
        self._check_post(req, state, req.header("x-csrf-token"))
        body = req.json()
        params: dict[str, str] = {}
        nonce = body.get("nonce")
        if isinstance(nonce, str) and nonce:
            params["nonce"] = nonce[:256]
        step = yield from self._advance(req, state, flow_id, params, lang)
        if isinstance(step, Done):
            return (
                yield from self._finish(
                    req,
                    step,
                    state,
                    WebResponse.json({"status": "done", "redirect": step.return_to}),
                )
            )
        if isinstance(step, Poll):
            d = step.display
            return WebResponse.json(
                {
                    "status": "pending",
                    "interval": max(1.0, float(step.interval)),
                    "message": _message(d, lang),
                    "hint_code": d.hint_code,
                    "verification_code": d.verification_code,
                }
            )
        raise InvalidInput("unexpected step", code="step")

    def qr(self, req: WebRequest, name: str) -> Handler:
        state = self._load_flow(req)
        svg = name.endswith(".svg")
        flow_id = name[:-4] if svg else name
        poll: Poll = yield from call("broker", "refresh", flow_id, binding=state.binding)
        payload = poll.display.qr
        if not payload:
            raise InvalidInput("this flow shows no QR code", code="no_qr")
        if svg:
            headers = [("content-type", "image/svg+xml"), ("cache-control", "no-store")]
            headers.append(("x-content-type-options", "nosniff"))
            headers.append(
                ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'")
            )
            return WebResponse(200, headers, _qr_svg(payload))
        return WebResponse.json({"qr": payload, "src": _qr_svg_data_uri(payload)})

    def _advance(
        self,
        req: WebRequest,
        state: FlowState,
        flow_id: str,
        params: dict[str, str],
        lang: str,
        *,
        via: str | None = None,
    ) -> Generator[Call, Any, Step]:
        """Advance this browser's flow (bound by its flow cookie).

        ``via`` is the provider named by the callback URI; the broker refuses a flow
        of any other provider (mix-up defence, RFC 9700 section 4.4.2).
        """
        extra: dict[str, Any] = {} if via is None else {"provider": via}
        step: Step = yield from call(
            "broker",
            "advance",
            flow_id,
            params,
            binding=state.binding,
            client_ip=req.client_ip,
            language=lang,
            origin=self.origin,
            **extra,
        )
        return step

    def _finish(
        self, req: WebRequest, done: Done, state: FlowState, resp: WebResponse
    ) -> Generator[Call, Any, WebResponse]:
        """Log the finished flow in (fresh session) and set its cookies on ``resp``."""
        cookies = yield from self._complete(req, done, state)
        resp.headers += [("set-cookie", c) for c in cookies]
        return resp

    def _complete(
        self, req: WebRequest, done: Done, state: FlowState
    ) -> Generator[Call, Any, list[str]]:
        """A finished flow: rotate into a fresh full session (SES-02)."""
        current: Session | None = None
        cookie = req.cookies.get(self.policy.cookie_name)
        if cookie:
            current = yield from call("sessions", "load", cookie)
        user = self.user_for(done.identity)
        session: Session = yield from call(
            "sessions", "login", user, done.identity, replaces=current
        )
        state.flow_id = None
        state.provider = None
        header: str = yield from call("sessions", "cookie_header", session, secure=self.secure)
        return [header, self._flow_cookie(state)]

    def callback(self, req: WebRequest, provider: str, lang: str) -> Handler:
        self._provider_config(provider)
        params = _callback_query(req)
        if req.method == "POST":
            form = req.form()
            for key, value in form.items():
                if key in params:
                    raise InvalidInput("a parameter appears twice", code="duplicate_parameter")
                params[key] = value
        state = self._load_flow(req)
        if state.fresh and req.method == "POST" and "_ab_resubmit" not in params:
            # A cross-site POST (form_post, some banks) carries no SameSite=Lax cookie:
            # repost the same fields from our own origin so the flow cookie comes along.
            return self.render(
                "resubmit.html",
                lang,
                url=f"{self.prefix}/callback/{provider}",
                fields=list(params.items()),
            )
        params.pop("_ab_resubmit", None)
        flow_id = params.pop("flow_id", None) or state.flow_id
        if not flow_id:
            raise InvalidInput("no flow for this browser", code="flow_binding")
        step = yield from self._advance(req, state, flow_id, params, lang, via=provider)
        if isinstance(step, Done):
            return (yield from self._finish(req, step, state, WebResponse.redirect(step.return_to)))
        if isinstance(step, Poll):
            # BankID same-device: keep sending the return nonce until Done (SEB-04).
            state.flow_id = step.flow_id
            state.provider = provider
            return self._wait_render(
                step, state, lang, [self._flow_cookie(state)], nonce=params.get("nonce")
            )
        return self._step_response(step, state, lang, [self._flow_cookie(state)], nonce=None)

    def webeid_token(self, req: WebRequest, flow_id: str, lang: str) -> Handler:
        state = self._load_flow(req)
        form = req.form()
        self._check_post(req, state, form.get("csrf"))
        step = yield from self._advance(req, state, flow_id, {"token": form.get("token", "")}, lang)
        if not isinstance(step, Done):
            raise InvalidInput("unexpected step", code="step")
        return (yield from self._finish(req, step, state, WebResponse.redirect(step.return_to)))

    def _simulator(self, provider: str) -> Generator[Call, Any, Any]:
        if not self.simulator_helpers:
            raise AccessDenied("simulator helpers are off", code="not_simulator")
        config = self._provider_config(provider)
        if config.environment != "simulator":
            raise AccessDenied("not a simulated provider", code="not_simulator")
        sim = yield from call("broker", "simulator", provider)
        if sim is None:
            raise AccessDenied("no simulator is running", code="not_simulator")
        return sim

    def webeid_simulate(self, req: WebRequest, flow_id: str) -> Handler:
        """Simulator only: sign the challenge with the simulator's test card."""
        state = self._load_flow(req)
        self._check_post(req, state, req.header("x-csrf-token"))
        nonce = req.json().get("challenge")
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
            raise InvalidInput("challenge missing", code="challenge")
        provider = next(
            (n for n, c in self.settings.providers.items() if c.protocol == "web-eid"), "web-eid"
        )
        sim = yield from self._simulator(provider)
        token = sim.extra["make_token"](self.origin, nonce)
        return WebResponse.json({"token": token})

    def bankid_simulate(self, req: WebRequest, flow_id: str) -> Handler:
        """Simulator only: the BankID test user scans the QR code shown now."""
        state = self._load_flow(req)
        self._check_post(req, state, req.header("x-csrf-token"))
        provider = next(
            (n for n, c in self.settings.providers.items() if c.protocol == "bankid-se"),
            "bankid-se",
        )
        sim = yield from self._simulator(provider)
        poll: Poll = yield from call("broker", "refresh", flow_id, binding=state.binding)
        if not poll.display.qr:
            raise InvalidInput("this flow shows no QR code", code="no_qr")
        user = str(self._provider_config(provider).options.get("simulator_user", "199001010017"))
        result = sim.extra["simulator"].scan(poll.display.qr, user)
        return WebResponse.json({"result": str(result)})

    def cancel(self, req: WebRequest, flow_id: str, lang: str) -> Handler:
        state = self._load_flow(req)
        form = req.form()
        self._check_post(req, state, form.get("csrf"))
        with contextlib.suppress(AuthBrokerError):  # already gone: show the picker anyway
            yield from call("broker", "cancel", flow_id, binding=state.binding)
        state.flow_id = None
        resp = WebResponse.redirect(f"{self.prefix}/")
        resp.headers.append(("set-cookie", self._flow_cookie(state)))
        return resp

    # -- direct links -----------------------------------------------------------------

    def link(self, req: WebRequest, parts: list[str], lang: str) -> Handler:
        state = self._load_flow(req)
        m = req.method
        if len(parts) == 1 and m in ("GET", "HEAD") and parts[0] not in ("code",):
            token = parts[0]
            if not _TOKEN_RE.fullmatch(token):
                raise InvalidInput("link is malformed", code="link_malformed")
            # Check the signature now; trade the URL for a cookie and a clean URL (LNK-03).
            yield from call("links", "link_id", token)
            state.link_token = token
            state.challenge = None
            state.masked_phone = None
            resp = WebResponse.redirect(f"{self.prefix}/link")
            resp.headers += [
                ("set-cookie", self._flow_cookie(state)),
                ("referrer-policy", "no-referrer"),
            ]
            return resp
        if not parts and m in ("GET", "HEAD"):
            if not state.link_token:
                raise InvalidInput("no link for this browser", code="link_missing")
            return self.render(
                "link.html",
                lang,
                step="start",
                csrf=self.csrf_for(state.binding),
                phone="",
                picker=f"{self.prefix}/",
            )
        if parts == ["code"] and m in ("GET", "HEAD"):
            if not state.challenge:
                raise InvalidInput("no code was sent", code="challenge_unknown")
            return self.render(
                "link.html",
                lang,
                step="code",
                csrf=self.csrf_for(state.binding),
                phone=state.masked_phone or "",
                picker=f"{self.prefix}/",
            )
        if parts in (["send"], ["resend"]) and m == "POST":
            form = req.form()
            self._check_post(req, state, form.get("csrf"))
            if parts == ["resend"] and state.challenge:
                challenge = yield from call(
                    "links", "resend", state.challenge, req.client_ip, binding=state.binding
                )
            else:
                if not state.link_token:
                    raise InvalidInput("no link for this browser", code="link_missing")
                challenge = yield from call(
                    "links", "open", state.link_token, req.client_ip, binding=state.binding
                )
            state.challenge = challenge.challenge_id
            state.masked_phone = challenge.masked_phone
            resp = WebResponse.redirect(f"{self.prefix}/link/code")
            resp.headers.append(("set-cookie", self._flow_cookie(state)))
            return resp
        if parts == ["verify"] and m == "POST":
            form = req.form()
            self._check_post(req, state, form.get("csrf"))
            if not state.challenge:
                raise InvalidInput("no code was sent", code="challenge_unknown")
            grant = yield from call(
                "links",
                "verify",
                state.challenge,
                form.get("code", "").strip(),
                binding=state.binding,
                client_ip=req.client_ip,
            )
            current: Session | None = None
            cookie = req.cookies.get(self.policy.cookie_name)
            if cookie:
                current = yield from call("sessions", "load", cookie)
            session: Session = yield from call(
                "sessions",
                "open_link_session",
                grant.user_id,
                grant.scope,
                grant.resource,
                link_id=grant.link_id,
                replaces=current,
            )
            header: str = yield from call("sessions", "cookie_header", session, secure=self.secure)
            state.link_token = None
            state.challenge = None
            state.masked_phone = None
            landing = check_return_to(
                self.link_landing(grant.scope, grant.resource), self.settings.return_to_origins
            )
            resp = WebResponse.redirect(landing)
            resp.headers += [("set-cookie", header), ("set-cookie", self._flow_cookie(state))]
            return resp
        raise InvalidInput("unknown link route", code="bad_path")

    # -- logout, keys -----------------------------------------------------------------

    def logout(self, req: WebRequest, lang: str) -> Handler:
        form = req.form()
        self._check_origin(req)
        cookie = req.cookies.get(self.policy.cookie_name)
        session: Session | None = None
        if cookie:
            session = yield from call("sessions", "load", cookie)
        if session is not None:
            if not session.csrf_ok(form.get("csrf")):
                raise AccessDenied("the form token is missing or wrong", code="csrf")
            if form.get("everywhere") == "1":
                yield from call("sessions", "logout_everywhere", session.user)
            yield from call("sessions", "destroy", session)
        target = check_return_to(
            form.get("return_to") or self.home, self.settings.return_to_origins
        )
        header: str = yield from call("sessions", "cookie_header", None, secure=self.secure)
        resp = WebResponse.redirect(target)
        resp.headers.append(("set-cookie", header))
        return resp

    def jwks(self) -> Handler:
        keys: list[dict[str, Any]] = []
        seen: set[str] = set()
        for name, config in self.settings.providers.items():
            if config.protocol != "oidc":
                continue
            try:
                provider = yield from call("broker", "provider", name)
                public = getattr(provider, "public_jwks", None)
                document = public() if callable(public) else {"keys": []}
            except (AuthBrokerError, AttributeError):
                continue  # providers without RP keys publish nothing
            for key in document.get("keys", []):
                kid = str(key.get("kid", ""))
                if kid and kid in seen:
                    continue
                seen.add(kid)
                keys.append(key)
        resp = WebResponse.json({"keys": keys})
        resp.headers = [h for h in resp.headers if h[0] != "cache-control"]
        resp.headers.append(("cache-control", "public, max-age=300"))
        return resp

    def signed_jwks(self, name: str, lang: str) -> Handler:
        """``GET {prefix}/jwks/<provider>.jwt``: the provider's RP JWKS as an OpenID
        Federation signed JWK Set (register this URL as ``signed_jwks_uri``)."""
        config = self.settings.providers.get(name)
        token: str | None = None
        if config is not None and config.protocol == "oidc":
            try:
                provider = yield from call("broker", "provider", name)
                sign = getattr(provider, "signed_jwks", None)
                token = sign() if callable(sign) else None
            except AuthBrokerError:
                token = None  # no RP or federation keys: nothing to publish
        if token is None:
            return self.render(
                "error.html",
                lang,
                status=404,
                message=translate(lang, "error.not_found"),
                code="not_found",
                back=f"{self.prefix}/",
            )
        return WebResponse(
            200,
            [
                ("content-type", "application/jwk-set+jwt"),
                ("cache-control", "public, max-age=300"),
                ("x-content-type-options", "nosniff"),
            ],
            token.encode("ascii"),
        )


def _message(display: Display, lang: str) -> str:
    return display.message.get(lang) or display.message.get("en") or ""


def _auth_error(status: int, code: str, *, bearer_challenge: bool = False) -> WebResponse:
    resp = WebResponse.json({"error": code}, status)
    if bearer_challenge or status == 401:
        error = "insufficient_scope" if status == 403 else "invalid_token"
        if code == "missing_token":
            resp.headers.append(("www-authenticate", 'Bearer realm="api"'))
        else:
            resp.headers.append(("www-authenticate", f'Bearer realm="api", error="{error}"'))
    return resp


def _service(op: Call, services: Mapping[str, Any]) -> Any:
    target = services.get(op.target)
    if target is None:
        raise ConfigError("this route needs a service", key=f"web.{op.target}")
    return getattr(target, op.method)(*op.args, **op.kwargs)


def drive_sync(gen: Handler | Generator[Call, Any, Any], services: Mapping[str, Any]) -> Any:
    """Run a handler with blocking services (the WSGI adapter)."""
    return run_sync(gen, None, None, other=lambda op: _service(op, services))


async def drive_async(gen: Handler | Generator[Call, Any, Any], services: Mapping[str, Any]) -> Any:
    """Run a handler with asyncio services (the ASGI adapter); sync methods are
    called directly (cookie headers, simulator handles)."""

    async def serve(op: Call) -> Any:
        result = _service(op, services)
        return (await result) if inspect.isawaitable(result) else result

    return await run_async(gen, None, None, other=serve)


# --- the adapters' shared constructor -------------------------------------------------


class _BrokerLike(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Any: ...


AppT = TypeVar("AppT")
BrokerT = TypeVar("BrokerT", bound=_BrokerLike)
SessionsT = TypeVar("SessionsT")


class MiddlewareBase(Generic[AppT, BrokerT, SessionsT]):
    """What the ASGI and WSGI middleware share: the :class:`WebCore`, the session
    manager and the services the handlers' :class:`Call`\\ s run against.

    ``sessions`` defaults to ``session_manager`` (set by each adapter: the blocking or
    the async manager) on the broker's store and secret keys; ``links`` and ``tokens``
    enable the direct-link routes and the bearer guard. The remaining keyword
    arguments go to :class:`WebCore`.
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
        )
        if sessions is None:
            sessions = self.session_manager(
                broker.store, broker.settings.secret_keys, policy=self.core.policy
            )
        self.broker = broker
        self.sessions: SessionsT = sessions
        self.services: dict[str, Any] = {
            "broker": broker,
            "sessions": sessions,
            "links": links,
            "tokens": tokens,
        }
