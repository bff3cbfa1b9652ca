"""Audit events: who did what, with which outcome, without personal data or secrets.

Events are typed values; sinks decide where they go. The JSON-lines sink writes one
object per line to a logger (so operators route it like any other log), the callable
sink hands events to application code (metrics, a SIEM client).

What an event may carry is restricted on purpose: identifiers are masked
(:func:`authbroker.national_ids.mask`) and free-form ``details`` pass through
:func:`scrub`, which drops keys that name secrets. One-time codes, passwords, tokens
and keys have no field to go in.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "AuditEvent",
    "AuditLog",
    "CallableSink",
    "JsonLinesSink",
    "MemorySink",
    "OpenTelemetrySink",
    "Outcome",
    "Sink",
    "add_global_sink",
    "remove_global_sink",
    "scrub",
]

Outcome = Literal["success", "failure", "info"]

#: Event names used across the library (a closed vocabulary keeps dashboards stable).
EVENT_NAMES = frozenset(
    {
        "flow.begun",
        "flow.completed",
        "flow.failed",
        "flow.cancelled",
        "link.issued",
        "link.opened",
        "link.revoked",
        "otp.sent",
        "otp.verified",
        "otp.failed",
        "otp.locked",
        "sms.failed",
        "lockout",
        "credential.enrolled",
        "credential.changed",
        "credential.removed",
        "login.succeeded",
        "login.failed",
        "token.issued",
        "token.refreshed",
        "token.reuse_detected",
        "token.revoked",
        "session.created",
        "session.rotated",
        "session.ended",
        "api.authenticated",
        "api.denied",
        "web.error",
    }
)

_SECRET_WORDS = (
    "password",
    "secret",
    "token",
    "code",
    "otp",
    "key",
    "nonce",
    "verifier",
    "assertion",
    "signature",
    "mac",
    "cookie",
    "authorization",
    "hetu",
    "personnummer",
    "national_id_value",
)


def scrub(details: Mapping[str, Any]) -> dict[str, Any]:
    """Drop entries whose key names a secret; keep only JSON scalar values."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            continue
        if isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audited fact. ``subject`` must already be masked or a non-personal id."""

    name: str
    outcome: Outcome
    provider: str | None = None
    subject: str | None = None
    flow_id: str | None = None
    client_ip: str | None = None
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"event": self.name, "outcome": self.outcome, "at": self.at}
        for name in ("provider", "subject", "flow_id", "client_ip", "reason"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.details:
            data["details"] = scrub(self.details)
        return data


class Sink(Protocol):
    def emit(self, event: AuditEvent) -> None: ...


class JsonLinesSink:
    """Writes each event as one JSON line to a :mod:`logging` logger."""

    def __init__(self, logger: logging.Logger | str = "authbroker.audit") -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger

    def emit(self, event: AuditEvent) -> None:
        self.logger.info(json.dumps(event.to_dict(), sort_keys=True, separators=(",", ":")))


class CallableSink:
    """Hands events to application code; a failing callback never breaks a login."""

    def __init__(self, callback: Callable[[AuditEvent], None]) -> None:
        self.callback = callback

    def emit(self, event: AuditEvent) -> None:
        try:
            self.callback(event)
        except Exception:  # audit must not turn a success into an outage
            logging.getLogger("authbroker.audit").exception("audit callback failed")


class MemorySink:
    """Keeps events in a list (tests, the demo's event page)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self._lock = threading.Lock()

    def emit(self, event: AuditEvent) -> None:
        with self._lock:
            self.events.append(event)

    def names(self) -> list[str]:
        return [e.name for e in self.events]


class OpenTelemetrySink:
    """Audit events as OpenTelemetry metrics, and notes on the current span.

    Counters (attributes ``authbroker.provider`` and, for failures, ``reason``):
    ``authbroker.flows.begun`` / ``.completed`` / ``.failed`` / ``.cancelled``,
    ``authbroker.sms.sent`` / ``.failed`` / ``.limited`` (a code refused by a send
    cap). An event with a flow id stamps ``authbroker.flow_id`` on the span current
    when it is emitted and is added to it as a span event, which correlates the audit
    log with the trace. Only the closed vocabulary of names, providers and reason
    codes becomes an attribute: no subject, IP or detail (metric attributes must stay
    few and never personal). :func:`authbroker.telemetry.enable` installs one for
    every :class:`AuditLog`; ``opentelemetry`` is imported by the constructor only.
    """

    _FLOW_EVENTS = ("flow.begun", "flow.completed", "flow.failed", "flow.cancelled")

    def __init__(self, meter: Any = None) -> None:
        from opentelemetry import metrics, trace

        self._trace = trace
        meter = meter if meter is not None else metrics.get_meter("authbroker")
        self._counters = {
            name: meter.create_counter(f"authbroker.flows.{name.split('.')[1]}", unit="{flow}")
            for name in self._FLOW_EVENTS
        }
        for kind in ("sent", "failed", "limited"):
            self._counters[f"sms.{kind}"] = meter.create_counter(
                f"authbroker.sms.{kind}", unit="{message}"
            )

    def _counter_for(self, event: AuditEvent) -> str | None:
        if event.name in self._FLOW_EVENTS or event.name == "sms.failed":
            return event.name
        if event.name == "otp.sent":
            return "sms.sent"
        if event.name == "link.opened" and event.details.get("error") == "RateLimited":
            return "sms.limited"
        return None

    def emit(self, event: AuditEvent) -> None:
        try:
            attributes: dict[str, str] = {}
            if event.provider:
                attributes["authbroker.provider"] = event.provider
            if event.reason and event.outcome == "failure":
                attributes["reason"] = event.reason
            counter = self._counter_for(event)
            if counter is not None:
                self._counters[counter].add(1, attributes)
            span = self._trace.get_current_span()
            if span.is_recording():
                if event.flow_id:
                    span.set_attribute("authbroker.flow_id", event.flow_id)
                span.add_event(event.name, {"outcome": event.outcome, **attributes})
        except Exception:  # telemetry must not turn a success into an outage
            logging.getLogger("authbroker.audit").exception("OpenTelemetry sink failed")


#: Sinks every :class:`AuditLog` of the process also feeds (telemetry).
_GLOBAL_SINKS: list[Sink] = []


def add_global_sink(sink: Sink) -> None:
    """Feed ``sink`` the events of every :class:`AuditLog` (once, however often added)."""
    if sink not in _GLOBAL_SINKS:
        _GLOBAL_SINKS.append(sink)


def remove_global_sink(sink: Sink) -> None:
    if sink in _GLOBAL_SINKS:
        _GLOBAL_SINKS.remove(sink)


class AuditLog:
    """Fan-out to sinks. ``AuditLog()`` writes JSON lines to ``authbroker.audit``."""

    def __init__(self, sinks: Iterable[Sink] | None = None) -> None:
        self.sinks: list[Sink] = list(sinks) if sinks is not None else [JsonLinesSink()]

    def emit(self, name: str, outcome: Outcome, **fields: Any) -> AuditEvent:
        if name not in EVENT_NAMES:
            raise ValueError(f"unknown audit event {name!r}")  # programming error
        details = fields.pop("details", None) or {}
        event = AuditEvent(name=name, outcome=outcome, details=details, **fields)
        for sink in (*self.sinks, *_GLOBAL_SINKS):
            sink.emit(event)
        return event
