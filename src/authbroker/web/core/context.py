"""What every handler shares: configuration, the engines, and the browser's state.

:class:`WebContext` is the base of :class:`~authbroker.web.core.app.WebCore`: the
settings, the four engines the handlers compose (flows, sessions, links, tokens), and
the per-browser state every hosted page needs — the signed flow cookie
(:class:`FlowState`), the CSRF token derived from its binding, the same-origin checks
and the language negotiation. Keeping them here, in one place, means a new field of
the flow cookie (e.g. a chosen language) is added in :class:`FlowState`,
:meth:`WebContext.load_flow` and :meth:`WebContext.language` and nowhere else.

Rules held here (security requirements a.10):

* SES-06 — a per-browser random *binding* lives in the signed, HttpOnly flow cookie;
  the broker ties each flow to it. Hosted POST forms carry a CSRF token derived from
  the binding; ``Origin``/``Sec-Fetch-Site`` are checked.
* WEB-03 — the client IP is the socket peer unless ``trusted_proxies`` lists it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ...config import ProviderConfig, Settings
from ...errors import AccessDenied, ConfigError, InvalidInput
from ...identity import Identity
from ...providers.base import ProviderInfo
from ..i18n import check_languages, negotiate
from .requests import WebRequest

if TYPE_CHECKING:
    from ...engines.flows import FlowEngine
    from ...engines.links import LinkEngine
    from ...engines.sessions import SessionEngine
    from ...engines.tokens import TokenEngine

__all__ = ["FLOW_COOKIE_SALT", "FlowState", "WebContext"]

FLOW_COOKIE_SALT = "authbroker.web.flow.v1"
CSRF_LABEL = b"authbroker.web.csrf.v1"
FLOW_COOKIE_AGE = 24 * 3600

T = TypeVar("T")


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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FlowState:
        return cls(
            binding=data["b"],
            flow_id=data.get("f"),
            provider=data.get("p"),
            link_token=data.get("t"),
            challenge=data.get("c"),
            masked_phone=data.get("m"),
            return_to=data.get("r"),
            lang=data.get("l"),
        )


def _need(engine: T | None, name: str) -> T:
    if engine is None:
        raise ConfigError("this route needs a service", key=f"web.{name}")
    return engine


class WebContext:
    """Configuration, engines and browser state shared by every handler.

    The engines are attached by the middleware (``flow_engine`` ...); a core built
    without one (``WebCore(settings)`` in tests) refuses the routes that need it
    with a :class:`ConfigError`, as a missing service always did.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        trusted_proxies: Sequence[str] = (),
        simulator_helpers: bool | None = None,
        user_for: Callable[[Identity], str] | None = None,
    ) -> None:
        if not settings.secret_keys:
            raise ConfigError("at least one secret key is needed", key="AUTHBROKER_SECRET_KEYS")
        check_languages(settings.languages, settings.default_language)
        from ...engines.sessions import SessionPolicy

        self.settings = settings
        self.prefix = settings.route_prefix.rstrip("/")
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
        self.user_for = user_for or self._default_user
        self.flow_engine: FlowEngine | None = None
        self.session_engine: SessionEngine | None = None
        self.link_engine: LinkEngine | None = None
        self.token_engine: TokenEngine | None = None

    # -- the engines the handlers compose ---------------------------------------------

    @property
    def flows(self) -> FlowEngine:
        return _need(self.flow_engine, "broker")

    @property
    def sessions(self) -> SessionEngine:
        return _need(self.session_engine, "sessions")

    @property
    def links(self) -> LinkEngine:
        return _need(self.link_engine, "links")

    @property
    def tokens(self) -> TokenEngine:
        return _need(self.token_engine, "tokens")

    def provider_config(self, name: str) -> ProviderConfig:
        """The configured provider named in the URL; an unknown name is client input
        (400), not a configuration error of ours (500)."""
        config = self.settings.providers.get(name)
        if config is None:
            raise InvalidInput("unknown provider", code="unknown_provider")
        return config

    def provider_info(self, name: str | None) -> ProviderInfo | None:
        """The adapter's metadata (its UI hints) of a configured provider, else None."""
        if not name or name not in self.settings.providers:
            return None
        return self.flows.provider(name).info

    # -- users, addresses, language ---------------------------------------------------

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
            self.chosen_language(req),
            req.header("accept-language"),
            self.settings.default_language,
            self.settings.languages,
            remembered=self.load_flow(req).lang,
        )

    def chosen_language(self, req: WebRequest) -> str | None:
        """The offered language named by ``?lang=`` (anything else is ignored)."""
        try:
            explicit = req.query().get("lang")
        except InvalidInput:
            return None
        return explicit if explicit in self.settings.languages else None

    def lang_links(self, req: WebRequest) -> list[tuple[str, str]]:
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

    def picker_url(self, return_to: str, *, step_up: bool = False) -> str:
        query = {"return_to": return_to}
        if step_up:
            query["step_up"] = "1"
        return f"{self.prefix}/?{urlencode(query)}"

    # -- the flow cookie and CSRF -----------------------------------------------------

    def load_flow(self, req: WebRequest) -> FlowState:
        """This browser's flow state; a new random binding when it has none (fresh)."""
        raw = req.cookies.get(self.flow_cookie)
        if raw and len(raw) <= 4096:
            try:
                data = self._serializer.loads(raw, max_age=FLOW_COOKIE_AGE)
                if isinstance(data, dict) and isinstance(data.get("b"), str):
                    state = FlowState.from_json(data)
                    state.lang = self.chosen_language(req) or state.lang
                    return state
            except BadSignature:
                pass
        return FlowState(
            binding=secrets.token_urlsafe(32), lang=self.chosen_language(req), fresh=True
        )

    def flow_cookie_header(self, state: FlowState) -> str:
        """The ``Set-Cookie`` value carrying ``state`` (signed, HttpOnly, SameSite=Lax)."""
        value = self._serializer.dumps(state.to_json())
        attrs = f"; Path=/; Max-Age={FLOW_COOKIE_AGE}; HttpOnly; SameSite=Lax"
        return f"{self.flow_cookie}={value}{attrs}" + ("; Secure" if self.secure else "")

    # The names tests and older callers use.
    _load_flow = load_flow
    _flow_cookie = flow_cookie_header

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

    def device_id(self, binding: str) -> str:
        """A device identifier stable per browser that names no user (BankID RP API
        v6.0 ``web.deviceIdentifier``)."""
        return hmac.new(
            self._csrf_keys[0], b"bankid-se device:" + binding.encode(), hashlib.sha256
        ).hexdigest()[:40]

    def check_post(self, req: WebRequest, state: FlowState, token: str | None) -> None:
        """SES-06: same-origin POST with the CSRF token of this browser's binding."""
        self.check_origin(req)
        if state.fresh or not token or not self._csrf_ok(state.binding, token):
            raise AccessDenied("the form token is missing or wrong", code="csrf")

    def check_origin(self, req: WebRequest) -> None:
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
