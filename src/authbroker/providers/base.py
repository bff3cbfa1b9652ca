"""What a provider adapter is: two sans-I/O routines and a little metadata.

The broker owns everything around the protocol (flow ids, storage, binding to the
browser, single use, audit); an adapter only speaks its protocol. ``begin`` starts
the protocol and ``advance`` takes what came back (callback parameters, a posted
form, a poll tick, a signed token) until it can return an :class:`Identity`.

Provider state between calls lives in ``data``: a JSON-serializable dict the broker
stores server-side under the flow id. It never reaches the browser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..flow import Display, Step
from ..identity import Identity, Loa
from ..kernel.effects import Gen

if TYPE_CHECKING:
    from ..config import ProviderConfig

__all__ = [
    "LOOPBACK_HOSTS",
    "RAW_QUERY",
    "AdvanceContext",
    "BeginContext",
    "Next",
    "Provider",
    "ProviderInfo",
    "require_endpoint",
]

#: Hosts a simulator endpoint may use over plain http.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Longest endpoint URL accepted from configuration.
MAX_URL_CHARS = 2048
#: Callback parameter carrying the callback URL's raw (still percent-encoded) query
#: string. Most providers read the UTF-8-decoded parameters; a provider whose peer
#: encodes another character set (TUPAS banks percent-encode ISO-8859-1) decodes
#: this one itself. The web layer always sets it on callbacks; callers of
#: ``Broker.advance`` pass it when they forward a callback themselves.
RAW_QUERY = "_raw_query"


@dataclass(frozen=True, slots=True)
class BeginContext:
    """Everything an adapter may need to start a flow.

    ``callback_url`` is where the provider must send the browser back (redirect
    flows); it already names the flow's provider and is on the configured base URL.
    ``params`` carries per-flow user choices (phone number for Mobile ID,
    ``same_device`` for BankID, ``acr`` / ``method`` for brokers); adapters validate them.
    """

    flow_id: str
    callback_url: str
    now: float
    client_ip: str | None = None
    language: str = "en"
    params: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""


@dataclass(frozen=True, slots=True)
class AdvanceContext:
    """Per-call context for ``advance``; ``data`` is what the last step stored."""

    flow_id: str
    now: float
    client_ip: str | None = None
    language: str = "en"
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Next:
    """A non-final step plus the provider state to keep until the next call."""

    step: Step
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """Static facts shown by the provider picker and ``authbroker providers``.

    Two UI hints tell the hosted pages what to ask before a flow begins (the pages
    follow the step kinds after that, never the protocol name): ``needs_input`` names
    the begin parameters the user must type (``("phone",)`` for Mobile ID), and
    ``device_choice`` says the user picks this device or another one (BankID same or
    other device; the web layer then also sends the browser's device information).
    """

    name: str
    protocol: str
    display_name: Mapping[str, str]
    loa: Loa
    environment: str
    country: str | None = None
    methods: tuple[str, ...] = ()
    needs_input: tuple[str, ...] = ()
    device_choice: bool = False

    @classmethod
    def from_config(
        cls,
        config: ProviderConfig,
        *,
        methods: tuple[str, ...],
        country: str | None = None,
        needs_input: tuple[str, ...] = (),
        device_choice: bool = False,
    ) -> ProviderInfo:
        """The info of a configured provider; ``country`` overrides ``config.country``."""
        return cls(
            name=config.name,
            protocol=config.protocol,
            display_name=dict(config.display_name),
            loa=config.loa,
            environment=config.environment,
            country=country if country is not None else config.country,
            methods=methods,
            needs_input=needs_input,
            device_choice=device_choice,
        )


def require_endpoint(
    config: ProviderConfig,
    key: str,
    *,
    allow_loopback_http: bool | None = None,
    message: str = "must be an https URL",
) -> str:
    """The endpoint URL configured under ``key``, checked before any request is made.

    It must be ``https://`` with a host; plain ``http://`` is accepted only to a
    loopback host and only when ``allow_loopback_http`` (by default: in the
    simulator environment). Anything else is a :class:`ConfigError` naming the key.
    """
    url = str(config.require(key))
    if allow_loopback_http is None:
        allow_loopback_http = config.environment == "simulator"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ConfigError(message, key=config.key(key)) from None
    if len(url) <= MAX_URL_CHARS and host:
        if parts.scheme == "https":
            return url
        if allow_loopback_http and parts.scheme == "http" and host in LOOPBACK_HOSTS:
            return url
    raise ConfigError(message, key=config.key(key))


def certificate_sources(config: ProviderConfig, key: str) -> list[object]:
    """The certificate sources configured under ``key`` (a string or a list of them).

    Read raw, after the schema has checked the type (``string or string list``): the
    schema's whitespace split of such a value would cut an inline PEM certificate
    apart, so here one string is always one source.
    """
    value = config.get(key)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@runtime_checkable
class Provider(Protocol):
    """The adapter contract (see docs/development.md).

    An adapter whose single ``advance`` can take longer than the broker's default
    flow lock (60 s, :data:`authbroker.broker.LOCK_TTL`) also sets
    ``max_call_seconds`` (its longest call); the broker then holds the lock that
    long plus a margin, so a poll never starts the same call twice.
    """

    info: ProviderInfo
    #: Seconds a flow of this provider may stay open (BankID orders live 30 s per QR
    #: start, the whole order longer; OIDC flows 10 minutes).
    flow_ttl: float

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        """Start the protocol; return the first step and the state to keep."""
        ...

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Next | Identity]:
        """Take the browser's or poll's input; return the next step or the Identity."""
        ...


@runtime_checkable
class Refreshable(Protocol):
    """Decoupled flows whose display changes without advancing (animated QR)."""

    def refresh(self, data: Mapping[str, Any], now: float) -> Display: ...


@runtime_checkable
class Abandonable(Protocol):
    """Adapters that must tell the provider when a flow is abandoned (BankID cancel)."""

    def abandon(self, data: Mapping[str, Any]) -> Gen[None]: ...


ProviderFactory = Callable[..., Provider]
