"""Metrics and log export set-up, the GenAI span helpers, and ``error.type`` naming."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry.trace import SpanKind, StatusCode

import otel
from actors import AskError, Failure, FailureKind
from otel._resource import bounded_shutdown, resource
from otel.testing import InMemorySpanExporter, capture_spans
from tests.support.otlp import OtlpReceiver, attributes


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory."""
    with capture_spans() as exporter:
        yield exporter


def test_metrics_are_off_without_variables_and_cost_a_none_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No exporter variable, no endpoint: no provider, and ``instruments()`` is None."""
    for name in ("OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", raising=False)
    assert otel.configure_metrics() is None
    assert otel.instruments() is None


def test_a_bad_metrics_exporter_name_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_METRICS_EXPORTER=zipkin is an error naming the variable."""
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "zipkin")
    with pytest.raises(otel.TracingConfigError, match="OTEL_METRICS_EXPORTER='zipkin'"):
        otel.configure_metrics()


def test_log_lines_go_over_otlp_with_their_trace_and_span(spans: InMemorySpanExporter) -> None:
    """Opted in, a structlog line becomes an OTLP log record carrying the current span's ids."""
    buffer = io.StringIO()
    with OtlpReceiver() as receiver:
        otel.configure_logging(format="json", level="info", stream=buffer)
        otel.configure_log_export(exporter="otlp-http", endpoint=receiver.endpoint)
        try:
            with otel.tracer().start_as_current_span("work") as work:
                structlog.get_logger("t").warning("disk nearly full", free_mb=12)
            structlog.get_logger("t").debug("below the level: not sent")
        finally:
            otel.shutdown_log_export()
            otel.configure_logging(level="warning")
        records = list(receiver.received.logs)
    assert [r.body.string_value for r in records] == ["disk nearly full"]
    record = records[0]
    ctx = work.get_span_context()
    assert record.trace_id.hex() == f"{ctx.trace_id:032x}"
    assert record.span_id.hex() == f"{ctx.span_id:016x}"
    assert record.severity_text == "WARNING"
    assert attributes(record.attributes)["free_mb"] == 12
    assert "disk nearly full" in buffer.getvalue()  # the console/JSON line is still written


def test_log_export_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """An OTLP endpoint alone turns traces on, never log export."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("OTEL_LOGS_EXPORTER", raising=False)
    assert otel.configure_log_export() is None


def test_execute_tool_span_names_the_tool_and_records_failures(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``execute_tool {tool}``: INTERNAL, the tool's attributes, error.type on a raise."""
    with otel.execute_tool_span("search", call_id="call_1", arguments={"q": "owls"}):
        pass
    monkeypatch.setenv(otel.CAPTURE_CONTENT_VARIABLE, "true")
    with (
        pytest.raises(KeyError),
        otel.execute_tool_span("lookup", arguments={"k": 1}),
    ):
        raise KeyError("k")
    ok, failed = spans.get_finished_spans()
    assert (ok.name, ok.kind) == ("execute_tool search", SpanKind.INTERNAL)
    attrs = dict(ok.attributes or {})
    assert attrs[otel.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert attrs[otel.GEN_AI_TOOL_NAME] == "search"
    assert attrs[otel.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert attrs[otel.GEN_AI_TOOL_TYPE] == "function"
    assert otel.GEN_AI_TOOL_CALL_ARGUMENTS not in attrs  # content capture was off
    failed_attrs = dict(failed.attributes or {})
    assert failed_attrs[otel.ERROR_TYPE] == "KeyError"
    assert failed_attrs[otel.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"k": 1}'
    assert failed.status.status_code is StatusCode.ERROR


def test_invoke_agent_span_is_client_for_a_remote_agent(spans: InMemorySpanExporter) -> None:
    """``invoke_agent {agent}`` nests what the agent does; CLIENT when remote."""
    with (
        otel.invoke_agent_span("reviewer", agent_id="a-1", model="m", remote=True),
        otel.execute_tool_span("read_file"),
    ):
        pass
    tool, agent = spans.get_finished_spans()
    assert agent.name == "invoke_agent reviewer"
    assert agent.kind is SpanKind.CLIENT
    attrs = dict(agent.attributes or {})
    assert attrs[otel.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert (attrs[otel.GEN_AI_AGENT_ID], attrs[otel.GEN_AI_REQUEST_MODEL]) == ("a-1", "m")
    assert tool.parent is not None
    assert agent.context is not None
    assert tool.parent.span_id == agent.context.span_id


def test_the_helpers_cost_nothing_when_tracing_is_off() -> None:
    """With tracing off the helpers yield a non-recording span and make nothing."""
    assert not otel.enabled()
    with otel.execute_tool_span("t") as span:
        assert not span.is_recording()


class CardDeclinedError(Exception):
    """A user-defined exception."""


def test_error_type_names_failures_by_kind_and_exceptions_by_qualified_name() -> None:
    """Taxonomy kinds win; user exceptions get module.QualName; built-ins their name."""
    failure = Failure(kind=FailureKind.CIRCUIT_OPEN, message="open")
    assert otel.error_type(failure) == "circuit_open"
    assert otel.error_type(AskError(failure)) == "circuit_open"
    assert otel.error_type(ValueError("x")) == "ValueError"
    assert otel.error_type(CardDeclinedError()) == f"{__name__}.CardDeclinedError"
    assert otel.error_type(object()) == "_OTHER"


def test_the_shutdown_warning_cuts_a_long_reason_visibly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An exporter's long error is cut with '...', and 'telemetry' is not said twice."""

    def fails() -> None:
        raise ConnectionError("Max retries exceeded with url: /v1/traces " + "x" * 300)

    assert bounded_shutdown([fails], what="telemetry") is False
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("warning: exporting telemetry failed within 1s at shutdown; ")
    assert "(ConnectionError: Max retries exceeded with url: /v1/traces xxx" in line
    assert line.endswith("...)")
    assert len(line) < 260


@pytest.mark.parametrize(
    ("service_variable", "expected_name"),
    [(None, "billing"), ("billing-api", "billing-api")],
)
def test_otel_resource_attributes_name_the_service_unless_otel_service_name_does(
    monkeypatch: pytest.MonkeyPatch, service_variable: str | None, expected_name: str
) -> None:
    """``service.name``/``service.version`` in OTEL_RESOURCE_ATTRIBUTES reach the receiver.

    Our defaults (``reactor-swarm``, this package's version) apply only where neither
    variable says otherwise; OTEL_SERVICE_NAME wins over OTEL_RESOURCE_ATTRIBUTES.
    """
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.name=billing,service.version=2.3.1,deployment.environment.name=prod",
    )
    if service_variable is None:
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    else:
        monkeypatch.setenv("OTEL_SERVICE_NAME", service_variable)
    with OtlpReceiver() as receiver:
        otel.configure_tracing(exporter="otlp-http", endpoint=receiver.endpoint, set_global=False)
        try:
            with otel.tracer().start_as_current_span("work"):
                pass
        finally:
            otel.shutdown_tracing()
        resources = list(receiver.received.span_resources)
    assert len(resources) == 1
    assert resources[0]["service.name"] == expected_name
    assert resources[0]["service.version"] == "2.3.1"
    assert resources[0]["deployment.environment.name"] == "prod"


def test_without_resource_variables_the_service_is_reactor_swarm_at_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The defaults: ``service.name=reactor-swarm``, ``service.version`` = the package's."""
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    made = resource().attributes
    assert made["service.name"] == "reactor-swarm"
    assert made["service.version"] == otel.VERSION
    assert resource("given").attributes["service.name"] == "given"


def test_every_exporter_a_variable_lists_is_used(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``OTEL_TRACES_EXPORTER=otlp,console``: the spans reach the collector and are printed.

    The standard variables take a comma-separated list; only the first name was used.
    """
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp, console,otlp")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console,otlp")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        otel.configure_tracing(set_global=False)
        otel.configure_metrics()
        try:
            with otel.tracer().start_as_current_span("listed"):
                pass
            meters = otel.instruments()
            assert meters is not None
            meters.runs_started.add(1, {"reactor.name": "Listed"})
        finally:
            otel.shutdown_tracing()
            otel.shutdown_metrics()
        assert receiver.span_names() == ["listed"]  # once: a name listed twice counts once
        assert "reactor.runs.started" in receiver.received.metrics
    printed = capsys.readouterr().out
    assert '"name": "listed"' in printed
    assert "reactor.runs.started" in printed
