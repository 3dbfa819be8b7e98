"""The runtime's cheap spans (``otel.start_span``, ``otel.child_spans``) against the SDK's.

They must be what the tracer would have made: same trace and parentage, sampling,
resource and instrumentation scope, attributes within the provider's limits, events,
status, and ended into every configured span processor (simple or batch) as SDK
``ReadableSpan`` objects that the OTLP encoder accepts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.trace import SpanKind, StatusCode

import otel
from otel.testing import InMemorySpanExporter

_ROOT = otel_context.Context()


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    otel.configure_tracing(exporter="none", span_exporter=spans, batch=False, set_global=False)
    try:
        yield spans
    finally:
        otel.shutdown_tracing()


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


def test_a_run_span_and_its_children_are_what_the_tracer_makes(
    exporter: InMemorySpanExporter,
) -> None:
    run = otel.start_span("reactor.run R", context=_ROOT, attributes={"reactor.run_id": "r1"})
    children = otel.child_spans(run)
    step = children.start("reactor.step a", {"reactor.step": "a", "reactor.attempt": 1})
    # What user code in the step makes with the ordinary API nests under the step.
    with otel.tracer().start_as_current_span(
        "chat m", context=trace.set_span_in_context(step), kind=SpanKind.CLIENT
    ):
        pass
    step.end()
    run.end()
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {"reactor.run R", "reactor.step a", "chat m"}
    run_span, step_span, chat = spans["reactor.run R"], spans["reactor.step a"], spans["chat m"]
    assert all(isinstance(s, ReadableSpan) for s in spans.values())
    assert run_span.parent is None
    assert run_span.context is not None
    assert step_span.context is not None
    assert step_span.parent == run_span.context
    assert chat.parent is not None
    assert chat.parent.span_id == step_span.context.span_id
    assert {s.context.trace_id for s in spans.values() if s.context} == {run_span.context.trace_id}
    assert step_span.context.trace_flags.sampled
    assert step_span.context.span_id not in (0, run_span.context.span_id)
    # Resource and scope: the same objects' values as the tracer's own span carries.
    assert step_span.resource == chat.resource
    assert step_span.instrumentation_scope == chat.instrumentation_scope
    assert dict(step_span.attributes or {}) == {"reactor.step": "a", "reactor.attempt": 1}
    assert step_span.kind is SpanKind.INTERNAL
    assert step_span.start_time is not None
    assert step_span.end_time is not None
    assert step_span.start_time <= step_span.end_time
    # The OTLP encoder takes them like any SDK span.
    encoded = encode_spans(list(spans.values()))
    names = {s.name for rs in encoded.resource_spans for ss in rs.scope_spans for s in ss.spans}
    assert names == set(spans)


def annotate(span: trace.Span) -> None:
    """What user code might do to the current span."""
    span.set_attribute("user.count", 3)
    span.set_attributes({"user.tags": ["x", "y"], "user.flag": True, "user.ratio": 0.5})
    span.set_attribute("user.bad", None)
    span.set_attribute("user.object", object())  # type: ignore[arg-type]
    span.add_event("user.event", {"n": 1})
    span.set_status(StatusCode.ERROR, "no")
    span.record_exception(ValueError("boom"))
    span.update_name(f"{span.name} (renamed)")  # type: ignore[attr-defined]


def test_user_code_annotates_the_current_step_span_as_it_would_a_tracer_span(
    exporter: InMemorySpanExporter,
) -> None:
    run = otel.start_span("reactor.run R", context=_ROOT, attributes={})
    step = otel.child_spans(run).start("reactor.step a", {"reactor.step": "a"})
    token = otel_context.attach(trace.set_span_in_context(step))
    try:
        current = trace.get_current_span()
        assert current is step
        assert current.is_recording()
        annotate(current)
    finally:
        otel_context.detach(token)
    step.end()
    step.end()  # a second end changes nothing and exports nothing
    step.set_attribute("late", 1)  # after the end: ignored
    reference = otel.tracer().start_span(
        "reactor.step a", context=trace.set_span_in_context(run), attributes={"reactor.step": "a"}
    )
    annotate(reference)
    reference.end()
    run.end()
    finished = exporter.get_finished_spans()
    assert len(finished) == 3
    got, want = (s for s in finished if s.name == "reactor.step a (renamed)")
    assert dict(got.attributes or {}) == dict(want.attributes or {})
    assert got.attributes is not None
    assert got.attributes["user.tags"] == ("x", "y")
    assert [(e.name, dict(e.attributes or {})) for e in got.events if e.name != "exception"] == [
        ("user.event", {"n": 1})
    ]
    exception = {e.name: e for e in got.events}["exception"].attributes or {}
    reference_exception = {e.name: e for e in want.events}["exception"].attributes or {}
    assert set(exception) == set(reference_exception)
    assert exception["exception.type"] == "ValueError"
    assert exception["exception.message"] == "boom"
    assert got.status.status_code is StatusCode.ERROR
    assert got.status.description == want.status.description == "no"


def test_the_providers_attribute_limits_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
    spans = InMemorySpanExporter()
    otel.configure_tracing(exporter="none", span_exporter=spans, set_global=False)
    try:
        run = otel.start_span("reactor.run R", context=_ROOT, attributes={"a": "1"})
        step = otel.child_spans(run).start("reactor.step s", {"b": "2"})
        step.set_attribute("c", "long value")
        step.set_attribute("d", 4)
        step.set_attribute("e", 5)
        step.end()
        run.end()
    finally:
        otel.shutdown_tracing()
    got = by_name(spans.get_finished_spans())["reactor.step s"]
    attributes = dict(got.attributes or {})
    assert len(attributes) == 3
    assert attributes["c"] == "long"
    assert got.dropped_attributes == 1  # four set, three kept: the oldest goes, as in the SDK
    assert set(attributes) == {"c", "d", "e"}


def test_sampling_decides_as_the_tracer_does() -> None:
    spans = InMemorySpanExporter()
    otel.configure_tracing(exporter="none", span_exporter=spans, sample_ratio=0.0, set_global=False)
    try:
        run = otel.start_span("reactor.run R", context=_ROOT, attributes={})
        step = otel.child_spans(run).start("reactor.step s", {})
        assert not run.is_recording()
        assert not step.is_recording()
        assert not step.get_span_context().trace_flags.sampled
        step.end()
        run.end()
        # A sampled remote parent makes a sampled child, whatever the ratio.
        parent = otel.extract({"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})
        assert parent is not None
        child = otel.start_span("reactor.run C", context=parent, attributes={})
        assert child.is_recording()
        assert child.get_span_context().trace_id == int("ab" * 16, 16)
        child.end()
    finally:
        otel.shutdown_tracing()
    [only] = spans.get_finished_spans()
    assert only.name == "reactor.run C"
    assert only.parent is not None
    assert only.parent.span_id == int("cd" * 8, 16)


def test_root_spans_are_sampled_by_the_ratio_once() -> None:
    spans = InMemorySpanExporter()
    otel.configure_tracing(exporter="none", span_exporter=spans, sample_ratio=0.5, set_global=False)
    try:
        started = [
            otel.start_span("reactor.run R", context=_ROOT, attributes={}) for _ in range(2000)
        ]
        recording = [s for s in started if s.is_recording()]
        for span in started:
            assert span.get_span_context().trace_flags.sampled == span.is_recording()
            span.end()
    finally:
        otel.shutdown_tracing()
    # Half, as the SDK's ratio sampler decides (drawing again for a dropped root would
    # record three quarters); the band is more than four standard deviations wide.
    assert 0.45 < len(recording) / len(started) < 0.55
    assert len(spans.get_finished_spans()) == len(recording)


def test_a_sampler_from_the_environment_gets_the_tracers_spans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    spans = InMemorySpanExporter()
    otel.configure_tracing(exporter="none", span_exporter=spans, set_global=False)
    try:
        run = otel.start_span("reactor.run R", context=_ROOT, attributes={})
        step = otel.child_spans(run).start("reactor.step s", {"reactor.step": "s"})
        assert isinstance(run, SdkSpan)
        assert isinstance(step, SdkSpan)
        step.end()
        run.end()
    finally:
        otel.shutdown_tracing()
    got = by_name(spans.get_finished_spans())
    assert got["reactor.step s"].parent == got["reactor.run R"].context


def test_spans_reach_a_batch_processor_and_every_processor() -> None:
    batched, direct = InMemorySpanExporter(), InMemorySpanExporter()
    provider = otel.configure_tracing(
        exporter="none", span_exporter=batched, batch=True, set_global=False
    )
    assert provider is not None
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider.add_span_processor(SimpleSpanProcessor(direct))
    try:
        run = otel.start_span("reactor.run R", context=_ROOT, attributes={})
        otel.child_spans(run).start("reactor.step s", {}).end()
        run.end()
        assert provider.force_flush()
    finally:
        otel.shutdown_tracing()
    expected = {"reactor.run R", "reactor.step s"}
    assert {s.name for s in batched.get_finished_spans()} == expected
    assert {s.name for s in direct.get_finished_spans()} == expected


def test_with_tracing_off_the_spans_record_nothing() -> None:
    otel.shutdown_tracing()
    run = otel.start_span("reactor.run R", context=_ROOT, attributes={})
    step = otel.child_spans(run).start("reactor.step s", {})
    assert not run.is_recording()
    assert not step.is_recording()
    step.end()
    run.end()
