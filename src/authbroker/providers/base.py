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
from typing import Any, Protocol, runtime_checkable

from ..flow import Display, Gen, Step
from ..identity import Identity, Loa

__all__ = [
    "AdvanceContext",
    "BeginContext",
    "Next",
    "Provider",
    "ProviderInfo",
]


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
    """Static facts shown by the provider picker and ``authbroker providers``."""

    name: str
    protocol: str
    display_name: Mapping[str, str]
    loa: Loa
    environment: str
    country: str | None = None
    methods: tuple[str, ...] = ()


@runtime_checkable
class Provider(Protocol):
    """The adapter contract (see docs/development.md)."""

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
