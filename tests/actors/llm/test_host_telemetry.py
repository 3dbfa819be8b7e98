"""A model host's telemetry: GenAI spans, trace context sent to servers, and metrics.

Each chat is one ``chat {model}`` CLIENT span, the child of whatever span the caller
had current; a refused request (an open circuit) is a span too, with ``error.type``;
breaker transitions are events on the span of the call that caused them; embeddings
are ``embeddings {model}`` spans. Every HTTP request to the server carries the chat
span as its W3C ``traceparent``, on both transports. Metrics follow the GenAI
conventions' names and units.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any, Literal

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import otel
from actors import AskError, FailureKind, System
from actors.llm import BreakerConfig, ChatRequest, EmbedRequest, HostConfig
from actors.testing import FakeServer, Fault, Reply
from otel.testing import InMemorySpanExporter, wait_for_spans
from tests.support.hosts import chat, start_host


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    """A fake OpenAI-compatible server."""
    with FakeServer("openai") as server:
        yield server


def settings(server: FakeServer, **overrides: object) -> HostConfig:
    """Host settings for ``server`` with short timeouts."""
    base: dict[str, object] = {
        "url": server.url,
        "protocol": "openai",
        "connect_timeout_s": 1.0,
        "timeout_s": 5.0,
        "stream_idle_timeout_s": 1.0,
    }
    base.update(overrides)
    return HostConfig.model_validate(base)


def chats(spans: InMemorySpanExporter, count: int, name: str = "chat fake-small") -> list[Any]:
    """Wait for ``count`` finished spans called ``name``; return them, oldest first.

    A host answers its caller a moment before it ends the call's span (the span waits
    for the breaker's verdict), so the test polls the exporter for the spans.
    """
    wait_for_spans(spans, [name])
    deadline = time.monotonic() + 5.0
    found = [s for s in spans.get_finished_spans() if s.name == name]
    while len(found) < count and time.monotonic() < deadline:
        time.sleep(0.005)
        found = [s for s in spans.get_finished_spans() if s.name == name]
    assert len(found) == count, f"expected {count} spans {name!r}, got {len(found)}"
    return sorted(found, key=lambda s: s.start_time or 0)


def names_span(traceparent: str, span: ReadableSpan) -> bool:
    """Whether a ``traceparent`` header names ``span`` (and says it is sampled)."""
    version, trace_id, span_id, flags = traceparent.split("-")
    assert span.context is not None
    return (
        version == "00"
        and trace_id == f"{span.context.trace_id:032x}"
        and span_id == f"{span.context.span_id:016x}"
        and int(flags, 16) & 1 == 1
    )


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_every_request_carries_the_chat_spans_traceparent(
    system: System,
    fake: FakeServer,
    spans: InMemorySpanExporter,
    transport: Literal["aiohttp", "httpx"],
) -> None:
    """The fake server records a ``traceparent`` naming the ``chat`` span, on both transports."""
    start_host(system, settings(fake, transport=transport))
    with otel.tracer().start_as_current_span("caller"):
        chat(system, "local", "hello", model="fake-small")
    (span,) = chats(spans, 1)
    (call,) = [c for c in fake.calls if c.path.endswith("/chat/completions")]
    headers = {k.lower(): v for k, v in call.headers.items()}
    assert names_span(headers["traceparent"], span)


def test_no_traceparent_when_tracing_is_off(system: System, fake: FakeServer) -> None:
    """With tracing off the request has no trace headers at all."""
    start_host(system, settings(fake))
    chat(system, "local", "hello", model="fake-small")
    (call,) = [c for c in fake.calls if c.path.endswith("/chat/completions")]
    assert "traceparent" not in {k.lower() for k in call.headers}


def test_a_streaming_chat_records_stream_and_time_to_first_chunk(
    system: System, fake: FakeServer, spans: InMemorySpanExporter
) -> None:
    """``gen_ai.request.stream`` is set at the start; the time to first chunk at the end."""
    start_host(system, settings(fake))
    chat(system, "local", ChatRequest.prompt("fake-small", "hi", stream=True))
    (span,) = chats(spans, 1)
    attrs = dict(span.attributes or {})
    assert attrs[otel.GEN_AI_REQUEST_STREAM] is True
    assert float(attrs[otel.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]) >= 0.0
    assert str(attrs[otel.GEN_AI_RESPONSE_ID]).startswith("chatcmpl-")
    assert "reactor.stream" not in attrs
    assert "reactor.ttft_s" not in attrs


def test_a_circuit_open_refusal_is_an_error_span_and_the_trip_is_on_the_failed_call(
    system: System, fake: FakeServer, spans: InMemorySpanExporter
) -> None:
    """The failing call's span has the ``breaker.transition``; the refused one ``circuit_open``."""
    start_host(system, settings(fake, breaker=BreakerConfig(failure_threshold=1)))
    fake.inject(Fault(status=503))
    with pytest.raises(AskError):
        chat(system, "local", "x", model="fake-small")
    with pytest.raises(AskError) as refused:
        chat(system, "local", "y", model="fake-small")
    assert refused.value.failure.kind is FailureKind.CIRCUIT_OPEN
    failed, rejected = chats(spans, 2)
    assert dict(failed.attributes or {})[otel.ERROR_TYPE] == "overloaded"
    assert [e.name for e in failed.events] == ["breaker.transition"]
    assert dict(failed.events[0].attributes or {})["breaker.to"] == "open"
    attrs = dict(rejected.attributes or {})
    assert attrs[otel.ERROR_TYPE] == "circuit_open"
    assert attrs["reactor.breaker.state"] == "open"
    assert float(attrs["reactor.retry_after_s"]) > 0
    assert not rejected.status.is_ok
    assert rejected.kind is SpanKind.CLIENT
    assert len([c for c in fake.calls if c.path.endswith("/chat/completions")]) == 1


def test_content_is_captured_only_when_asked(
    system: System, fake: FakeServer, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the standard variable set, input and output messages are recorded as JSON."""
    start_host(system, settings(fake))
    fake.script(Reply(text="fine, thanks"))
    monkeypatch.setenv(otel.CAPTURE_CONTENT_VARIABLE, "true")
    chat(system, "local", ChatRequest.prompt("fake-small", "how are you?", system="be brief"))
    (span,) = chats(spans, 1)
    attrs = dict(span.attributes or {})
    assert json.loads(str(attrs[otel.GEN_AI_INPUT_MESSAGES])) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "how are you?"}]},
    ]
    assert json.loads(str(attrs[otel.GEN_AI_OUTPUT_MESSAGES])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "fine, thanks"}],
            "finish_reason": "stop",
        }
    ]


def test_embeddings_are_a_client_span(
    system: System, fake: FakeServer, spans: InMemorySpanExporter
) -> None:
    """``embeddings {model}`` with the operation, provider, model and usage."""
    ref = start_host(system, settings(fake))
    with otel.tracer().start_as_current_span("caller") as caller:
        ref.ask(EmbedRequest(model="fake-small", inputs=("a", "b")))
    (span,) = chats(spans, 1, "embeddings fake-small")
    attrs = dict(span.attributes or {})
    assert attrs[otel.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attrs[otel.GEN_AI_PROVIDER_NAME] == "openai"
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None
    assert span.parent.span_id == caller.get_span_context().span_id


def test_an_embedding_cut_short_by_the_host_stopping_still_ends_its_span(
    system: System, fake: FakeServer, spans: InMemorySpanExporter
) -> None:
    """The system stops mid-call: the span ends, an error with ``error.type=cancelled``."""
    ref = start_host(system, settings(fake))
    fake.inject(Fault(hang=True))
    with futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(ref.ask, EmbedRequest(model="fake-small", inputs=("a",)), timeout=10)
        deadline = time.monotonic() + 5.0
        while not fake.in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        system.stop(timeout=10.0)  # the host with it
        with pytest.raises(AskError):
            pending.result(10)
    (span,) = chats(spans, 1, "embeddings fake-small")
    assert dict(span.attributes or {})[otel.ERROR_TYPE] == "cancelled"
    assert span.status.status_code is StatusCode.ERROR


def _points(data: MetricsData | None) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def test_chat_metrics_follow_the_genai_conventions(system: System, fake: FakeServer) -> None:
    """Duration and token metrics under their convention names, one failure with error.type."""
    reader = InMemoryMetricReader()
    otel.configure_metrics(reader=reader)
    try:
        start_host(system, settings(fake))
        fake.script(Reply(text="ok", input_tokens=7, output_tokens=2))
        chat(system, "local", "hi", model="fake-small")
        fake.inject(Fault(status=429))
        with pytest.raises(AskError):
            chat(system, "local", "again", model="fake-small")
        # The host records a call after answering it (once the breaker has its verdict).
        deadline = time.monotonic() + 5.0
        points = _points(reader.get_metrics_data())
        while time.monotonic() < deadline and (
            sum(p.count for p in points.get("gen_ai.client.inference.duration", [])) < 2
        ):
            time.sleep(0.005)
            points = _points(reader.get_metrics_data())
    finally:
        otel.shutdown_metrics()
    durations = points["gen_ai.client.inference.duration"]
    assert sum(p.count for p in durations) == 2
    kinds = {dict(p.attributes).get(otel.ERROR_TYPE) for p in durations}
    assert kinds == {None, "rate_limited"}
    assert all(dict(p.attributes)[otel.GEN_AI_OPERATION_NAME] == "chat" for p in durations)
    assert [p.value for p in points["gen_ai.client.inference.usage.input_tokens"]] == [7]
    assert [p.value for p in points["gen_ai.client.inference.usage.output_tokens"]] == [2]
    assert "reactor.host.queue.depth" in points
