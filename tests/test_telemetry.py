"""OpenTelemetry (issue 21): spans around provider requests, metrics from audit
events, the flow id on the trace; nothing imported while telemetry is off."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rich.console import Console

from authbroker import telemetry
from authbroker.audit import AuditLog, MemorySink
from authbroker.cli import run_flow
from authbroker.config import load_config
from authbroker.errors import UserCancelled
from authbroker.steps import Done
from authbroker.testing import simulated_broker


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        out += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
        return out


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    telemetry.enable(tracer_provider=o.tracer_provider, meter_provider=o.meter_provider)
    try:
        yield o
    finally:
        telemetry.disable()


def _login(provider: str, audit: AuditLog, person: str | None = None) -> Done:
    with simulated_broker(load_config(environ={}), audit=audit) as broker:
        return run_flow(
            broker,
            provider,
            params={},
            console=Console(file=io.StringIO()),
            simulated=True,
            interactive=False,
            language="en",
            timeout=60,
            person=person,
        )


def test_ftn_login_produces_spans_and_counters(otel: Otel) -> None:
    memory = MemorySink()
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("app request"):
        done = _login("ftn", AuditLog([memory]))
    assert done.identity.provider == "ftn"
    spans = otel.spans.get_finished_spans()
    names = {s.name for s in spans}
    assert {"authbroker.http discovery", "authbroker.http jwks", "authbroker.http token"} <= names
    root = next(s for s in spans if s.name == "app request")
    for span in spans:
        if span.name.startswith("authbroker.http "):
            attrs = dict(span.attributes or {})
            assert attrs["authbroker.tag"] == span.name.removeprefix("authbroker.http ")
            assert attrs["http.response.status_code"] == 200
            assert attrs["server.address"] == "127.0.0.1"
            # No URL, query or body of any kind on the span.
            assert not any("://" in str(v) or "?" in str(v) for v in attrs.values())
            assert span.parent is not None and span.parent.span_id == root.context.span_id
    # The flow id of the audit events is on the trace.
    flow_ids = {e.flow_id for e in memory.events if e.flow_id}
    assert len(flow_ids) == 1
    assert (root.attributes or {})["authbroker.flow_id"] in flow_ids
    assert {"flow.begun", "flow.completed"} <= {e.name for e in root.events}
    for name in ("authbroker.flows.begun", "authbroker.flows.completed"):
        points = otel.points(name)
        assert [(a, p.value) for a, p in points] == [({"authbroker.provider": "ftn"}, 1)]
    assert otel.points("authbroker.flows.failed") == []


def test_failed_flow_counted_by_reason_and_poll_latency(otel: Otel) -> None:
    with pytest.raises(UserCancelled):
        _login("bankid-se", AuditLog([]), person="197203154567")
    failed = otel.points("authbroker.flows.failed")
    assert len(failed) == 1
    attrs, point = failed[0]
    assert attrs["authbroker.provider"] == "bankid-se" and attrs["reason"] and point.value == 1
    polls = otel.points("authbroker.poll.duration")
    assert polls and all(a["authbroker.provider"] == "bankid-se" for a, _ in polls)
    assert sum(p.count for _, p in polls) >= 1
    collect = [s for s in otel.spans.get_finished_spans() if s.name.endswith(" collect")]
    assert collect and (collect[0].attributes or {})["authbroker.provider"] == "bankid-se"


def test_disabled_telemetry_records_nothing() -> None:
    o = Otel()
    telemetry.enable(tracer_provider=o.tracer_provider, meter_provider=o.meter_provider)
    telemetry.disable()
    _login("ftn", AuditLog([]))
    assert o.spans.get_finished_spans() == ()
    assert o.points("authbroker.flows.begun") == []


def test_enable_from_settings_follows_the_broker_option() -> None:
    try:
        assert telemetry.enable_from_settings(load_config(environ={})) is False
        settings = load_config(environ={}, overrides={"broker": {"telemetry": True}})
        assert telemetry.enable_from_settings(settings) is True
    finally:
        telemetry.disable()


def test_nothing_is_imported_while_telemetry_is_off() -> None:
    code = (
        "import sys\n"
        "import authbroker, authbroker.telemetry, authbroker.http, authbroker.audit\n"
        "from authbroker.config import load_config\n"
        "from authbroker.testing import simulated_broker\n"
        "with simulated_broker(load_config(environ={}), in_process=True) as b:\n"
        "    b.begin('ftn', binding='x', client_ip='127.0.0.1')\n"
        "bad = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_broker_option_turns_telemetry_on() -> None:
    """`[broker] telemetry = true` is enough: building the broker enables it."""
    from authbroker.testing import simulated_broker

    try:
        settings = load_config(environ={}, overrides={"broker": {"telemetry": True}})
        with simulated_broker(settings):
            assert telemetry.enabled()
    finally:
        telemetry.disable()
    with simulated_broker(load_config(environ={})):
        assert not telemetry.enabled()
