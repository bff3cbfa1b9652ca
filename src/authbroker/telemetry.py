"""OpenTelemetry spans and metrics, off unless asked for.

``authbroker.telemetry.enable()`` (or ``[broker] telemetry = true``, acted on by
:func:`enable_from_settings`) installs two things and imports ``opentelemetry`` only
then: the library's import time does not pay for an exporter nobody configured.

* **Spans** around every request the HTTP drivers send, named
  ``authbroker.http <tag>`` (``discovery``, ``jwks``, ``token``, ``bankid-se collect``,
  ``ocsp``, ``sms.twilio``...) with attributes ``authbroker.tag``,
  ``authbroker.provider`` (where the tag names it), ``http.request.method``,
  ``server.address`` and ``http.response.status_code``. No URL path or query, no
  header and no body is recorded: query strings and bodies carry codes and tokens.
* **Metrics** from the audit events (:class:`OpenTelemetrySink`): flows begun,
  completed and failed by provider and reason, SMS codes sent, failed and limited,
  and the latency of decoupled-flow polls (``collect`` / ``status``).

Correlation: an audit event that carries a flow id (its short form, as in the audit
log) stamps ``authbroker.flow_id`` on the span that is current when it is emitted
(the application's request span) and adds the event to it, so logs, audit events
and the request's HTTP child spans meet on one trace. The application provides the
tracer and meter providers and exporters (``docs/operations.md``); without them the
OpenTelemetry API's no-op providers make all of this free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .audit import OpenTelemetrySink, add_global_sink, remove_global_sink
from .errors import ConfigError
from .http import HttpRequest, set_request_observer

if TYPE_CHECKING:
    from .config import Settings

__all__ = ["disable", "enable", "enable_from_settings", "enabled"]

#: Instrumentation scope: https://opentelemetry.io/docs/specs/otel/glossary/#instrumentation-scope
SCOPE = "authbroker"
#: Tags whose request is one poll of a decoupled flow (BankID collect, MSSP status).
_POLL_WORDS = ("collect", "status", "poll")

_lock = threading.Lock()
_state: dict[str, Any] = {}


def enabled() -> bool:
    """Whether :func:`enable` is in force."""
    return bool(_state)


def enable(*, tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Turn spans and metrics on for the whole process (idempotent).

    Spans and metrics go to the given providers, by default the global ones the
    application set up (``opentelemetry.trace.set_tracer_provider``...). Raises
    :class:`~authbroker.errors.ConfigError` when ``opentelemetry-api`` is not
    installed (``pip install 'authbroker[otel]'``).
    """
    with _lock:
        if _state:
            return
        try:
            from opentelemetry import metrics, trace
        except ImportError:
            raise ConfigError(
                "needs the otel extra: pip install 'authbroker[otel]'", key="broker.telemetry"
            ) from None
        tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, meter_provider=meter_provider)
        poll = meter.create_histogram(
            "authbroker.poll.duration", unit="s", description="One poll of a decoupled flow"
        )
        sink = OpenTelemetrySink(meter)
        _state.update(sink=sink)
        add_global_sink(sink)
        set_request_observer(_observer(tracer, poll))


def disable() -> None:
    """Undo :func:`enable` (tests; an application that reconfigures)."""
    with _lock:
        sink = _state.pop("sink", None)
        _state.clear()
        set_request_observer(None)
        if sink is not None:
            remove_global_sink(sink)


def enable_from_settings(settings: Settings) -> bool:
    """:func:`enable` when ``[broker] telemetry = true``; whether it is on."""
    if settings.section("broker").get("telemetry") is True:
        enable()
    return enabled()


def _provider_of(tag: str) -> str | None:
    """``"bankid-se collect"`` names its provider; ``"token"`` does not."""
    head, sep, _ = tag.partition(" ")
    return head if sep else None


def _observer(tracer: Any, poll: Any) -> Callable[[HttpRequest], Any]:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    @contextmanager
    def observe(req: HttpRequest) -> Iterator[Callable[[int], None]]:
        tag = req.tag or "request"
        attributes: dict[str, str] = {
            "authbroker.tag": tag,
            "http.request.method": req.method,
            # Host only: paths and queries of provider URLs can carry identifiers.
            "server.address": urlsplit(req.url).hostname or "",
        }
        provider = _provider_of(tag)
        if provider:
            attributes["authbroker.provider"] = provider
        started = time.perf_counter()
        with tracer.start_as_current_span(
            f"authbroker.http {tag}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:

            def record(status: int) -> None:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))

            yield record
        if any(word in tag.split() for word in _POLL_WORDS):
            poll.record(time.perf_counter() - started, {"authbroker.tag": tag, **_p(provider)})

    return observe


def _p(provider: str | None) -> Mapping[str, str]:
    return {"authbroker.provider": provider} if provider else {}
