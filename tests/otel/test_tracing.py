"""Spans across actor hops and the I/O loop; log lines with ids; exporters and OTLP."""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
import structlog
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan

import otel
from actors import Actor, System
from otel.testing import InMemorySpanExporter, capture_spans, wait_for_spans
from tests.support.actors import Forward, Hop, Ping, Pong


@pytest.fixture
def actor_spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on with a span per actor message (the opt-in debugging mode)."""
    with capture_spans(trace_actors=True) as exporter:
        yield exporter


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    """The one finished span called ``name``."""
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in spans]}"
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    """The parent's span id, if any."""
    return span.parent.span_id if span.parent is not None else None


def of_actor(spans: tuple[ReadableSpan, ...], actor: str, name: str) -> ReadableSpan:
    """The one span called ``name`` handled by the actor named ``actor``."""
    found = [s for s in spans if s.name == name and (s.attributes or {}).get("actor.name") == actor]
    assert len(found) == 1, f"expected one span {name!r} of {actor!r}, got {len(found)}"
    return found[0]


def span_id(span: ReadableSpan) -> int:
    """A span's own id."""
    assert span.context is not None
    value: int = span.context.span_id
    return value


def test_spans_chain_across_three_hops_and_one_io_call(
    system: System, actor_spans: InMemorySpanExporter
) -> None:
    """Opted in: each handled message is a child of the sender's span, through the loop too."""
    for name in ("hop1", "hop2", "hop3"):
        system.spawn(Hop, name=name)
    with otel.tracer().start_as_current_span("client") as client:
        answer = system.lookup("hop1").ask(Forward(path=["hop2", "hop3"], io_seconds=0.01))
    assert answer == Pong(n=2)
    finished = wait_for_spans(actor_spans, ["Hop io sleep", "Hop reply Forward"])
    chain = [
        by_name(finished, "client"),
        of_actor(finished, "hop1", "Hop Forward"),
        of_actor(finished, "hop2", "Hop Forward"),
        of_actor(finished, "hop3", "Hop Forward"),
        by_name(finished, "io sleep"),
        of_actor(finished, "hop3", "Hop io sleep"),
    ]
    for parent, child in itertools.pairwise(chain):
        assert parent_of(child) == span_id(parent), f"{child.name} is a child of {parent.name}"
    trace_ids = {s.context.trace_id for s in finished if s.context is not None}
    assert trace_ids == {client.get_span_context().trace_id}
    # Span names are low-cardinality: the actor's class, not its (id-bearing) name.
    assert {s.name for s in finished} <= {
        "client",
        "Hop Forward",
        "Hop io sleep",
        "Hop reply Forward",
        "io sleep",
    }


def test_by_default_messages_are_no_spans_but_keep_the_trace(
    system: System, spans: InMemorySpanExporter
) -> None:
    """Without the opt-in only the client's span exists, yet a handler's span joins its trace."""
    seen: list[tuple[int, int]] = []

    class Inner(Actor[Ping]):
        def receive(self, message: Ping) -> object:
            with otel.tracer().start_as_current_span("work inside") as work:
                ctx = work.get_span_context()
                seen.append((ctx.trace_id, parent_of(work) or 0))  # type: ignore[arg-type]
            return Pong(n=1)

    for name in ("hop1", "hop2"):
        system.spawn(Hop, name=name)
    system.spawn(Inner, name="inner")
    with otel.tracer().start_as_current_span("client") as client:
        system.lookup("hop1").ask(Forward(path=["hop2"], io_seconds=0.0))
        system.lookup("inner").ask(Ping())
    finished = wait_for_spans(spans, ["client", "work inside"])
    assert sorted(s.name for s in finished) == ["client", "work inside"]
    work = by_name(finished, "work inside")
    assert work.context is not None
    assert work.context.trace_id == client.get_span_context().trace_id
    assert parent_of(work) == client.get_span_context().span_id


def test_an_untraced_message_is_no_span_even_when_opted_in(
    system: System, actor_spans: InMemorySpanExporter
) -> None:
    """Opted in, a message sent outside any trace starts no trace of its own."""
    system.spawn(Hop, name="hop1").ask(Forward(path=[], io_seconds=0.0))
    with otel.tracer().start_as_current_span("marker"):
        pass
    finished = wait_for_spans(actor_spans, ["marker"])
    assert [s.name for s in finished] == ["marker"]


def test_a_crash_is_recorded_on_the_handler_span(
    system: System, actor_spans: InMemorySpanExporter
) -> None:
    """Opted in, a handler that raises leaves an error status and an exception event."""
    from actors import AskError
    from tests.support.actors import Crash, Echo

    ref = system.spawn(Echo, name="echo")
    with otel.tracer().start_as_current_span("client"), pytest.raises(AskError):
        ref.ask(Crash(why="traced"))
    span = by_name(wait_for_spans(actor_spans, ["Echo Crash"]), "Echo Crash")
    assert not span.status.is_ok
    assert any(e.name == "exception" for e in span.events)


def test_no_spans_and_no_trace_fields_when_tracing_is_off(system: System) -> None:
    """With tracing off, messages carry no trace context."""
    seen: list[dict[str, str] | None] = []

    class Peek(Actor[Ping]):
        def receive(self, message: Ping) -> object:
            seen.append(message.trace)
            return Pong(n=0)

    system.spawn(Peek, name="peek").ask(Ping())
    assert not otel.enabled()
    assert seen == [None]


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Structlog writing JSON lines into a buffer; defaults restored afterwards."""
    buffer = io.StringIO()
    otel.configure_logging(format="json", level="debug", stream=buffer)
    yield buffer
    otel.configure_logging(level="warning")


def test_log_lines_carry_trace_span_and_actor(
    json_logs: io.StringIO, actor_spans: InMemorySpanExporter
) -> None:
    """Lines logged by a handler and by its I/O carry trace_id, span_id and the actor."""
    import asyncio

    class Chatty(Actor[Ping]):
        def receive(self, message: Ping) -> object:
            self.log.info("handling ping")
            reply = self.defer_reply()

            async def lookup() -> int:
                structlog.get_logger().info("doing io")
                await asyncio.sleep(0)
                return 1

            self.pipe_to_self(lookup(), lambda out: reply.send(Pong(n=1)), name="lookup")
            return None

    with System(name="logs") as system, otel.tracer().start_as_current_span("client"):
        system.spawn(Chatty, name="chatty").ask(Ping())
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    handling = next(line for line in lines if line["event"] == "handling ping")
    in_io = next(line for line in lines if line["event"] == "doing io")
    finished = wait_for_spans(actor_spans, ["Chatty Ping", "io lookup"])
    handler_span = by_name(finished, "Chatty Ping")
    io_span = by_name(finished, "io lookup")
    assert handling["actor"] == "chatty"
    assert in_io["actor"] == "chatty"
    assert handling["span_id"] == format(span_id(handler_span), "016x")
    assert in_io["span_id"] == format(span_id(io_span), "016x")
    assert (
        handling["trace_id"]
        == in_io["trace_id"]
        == format(
            handler_span.context.trace_id,
            "032x",
        )
    )


class _Collector(BaseHTTPRequestHandler):
    bodies: list[bytes]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

    def log_message(self, format: str, *args: Any) -> None:
        return


def _exported_names(bodies: list[bytes]) -> set[str]:
    names: set[str] = set()
    for body in bodies:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                names.update(span.name for span in scope.spans)
    return names


def test_otlp_http_export_reaches_a_collector(system: System) -> None:
    """configure_tracing(exporter='otlp-http') posts protobuf spans to /v1/traces."""
    handler: type[_Collector] = type("Collector", (_Collector,), {"bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        otel.configure_tracing(
            exporter="otlp-http", endpoint=f"http://127.0.0.1:{server.server_port}"
        )
        with otel.tracer().start_as_current_span("client"):
            system.spawn(Hop, name="hop").ask(Forward(path=[]))
        otel.shutdown_tracing()  # flushes the batch
    finally:
        server.shutdown()
        server.server_close()
    assert "client" in _exported_names(handler.bodies)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def Export(  # noqa: N802 - the gRPC method's name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.bodies.append(request.SerializeToString())
        return trace_service_pb2.ExportTraceServiceResponse()


def test_otlp_grpc_export_from_otel_variables(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_TRACES_EXPORTER=otlp with protocol grpc exports to a gRPC collector."""
    service = _TraceService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "grpc-test")
    try:
        provider = otel.configure_tracing()
        assert provider is not None
        assert provider.resource.attributes["service.name"] == "grpc-test"
        assert provider.resource.attributes["service.version"]
        with otel.tracer().start_as_current_span("client"):
            system.spawn(Hop, name="hop").ask(Forward(path=[]))
        otel.shutdown_tracing()
    finally:
        server.stop(grace=None)
    assert "client" in _exported_names(service.bodies)


def test_console_exporter_prints_spans(system: System, capsys: pytest.CaptureFixture[str]) -> None:
    """exporter='console' writes each span as JSON to standard output."""
    otel.configure_tracing(exporter="console")
    try:
        with otel.tracer().start_as_current_span("client"):
            system.spawn(Hop, name="hop").ask(Forward(path=[]))
    finally:
        otel.shutdown_tracing()
    assert '"name": "client"' in capsys.readouterr().out


def test_exporter_none_and_sdk_disabled_turn_tracing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exporter none, no variables, or OTEL_SDK_DISABLED=true leave tracing off."""
    assert otel.configure_tracing(exporter="none") is None
    assert not otel.enabled()
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert otel.configure_tracing() is None
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert otel.configure_tracing(span_exporter=InMemorySpanExporter()) is None
    assert not otel.enabled()


def test_bad_tracing_settings_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown exporter or protocol, or a bad ratio, names the argument or variable."""
    with pytest.raises(otel.TracingConfigError, match="exporter='jaeger'"):
        otel.configure_tracing(exporter="jaeger")  # type: ignore[arg-type]
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(otel.TracingConfigError, match="OTEL_TRACES_EXPORTER='zipkin'"):
        otel.configure_tracing()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "smoke-signals")
    with pytest.raises(otel.TracingConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        otel.configure_tracing()
    with pytest.raises(otel.TracingConfigError, match="sample_ratio=1.5"):
        otel.configure_tracing(
            exporter="none", span_exporter=InMemorySpanExporter(), sample_ratio=1.5
        )
    assert not otel.enabled()


@pytest.mark.parametrize("ratio", [None, 0.0, 1.0])
def test_sampling_follows_the_parent_else_the_ratio(
    ratio: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``ParentBased(TraceIdRatioBased(ratio))``: a parent's decision wins, local or remote."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    exporter = InMemorySpanExporter()
    otel.configure_tracing(
        span_exporter=exporter, batch=False, set_global=False, sample_ratio=ratio
    )
    try:
        tracer = otel.tracer()

        def remote(sampled: bool) -> Any:
            flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
            parent = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=flags)
            return trace.set_span_in_context(NonRecordingSpan(parent))

        root = tracer.start_span("root")
        root_sampled = ratio != 0.0  # None is the SDK's default: always on
        assert root.get_span_context().trace_flags.sampled is root_sampled
        child = tracer.start_span("child", context=trace.set_span_in_context(root))
        assert child.get_span_context().trace_flags.sampled is root_sampled
        assert child.is_recording() is root_sampled
        for sampled in (True, False):
            span = tracer.start_span("remote child", context=remote(sampled))
            assert span.get_span_context().trace_flags.sampled is sampled
            assert span.get_span_context().trace_id == 0xABC
            span.end()
        child.end()
        root.end()
    finally:
        otel.shutdown_tracing()
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == (["child", "remote child", "root"] if root_sampled else ["remote child"])
