"""Tracing setup and the trace-context plumbing that travels inside messages.

The runtime asks two questions on every message: is tracing on (:func:`enabled`, a
plain attribute read, so an unconfigured system pays nothing), and if so, what carrier
describes the current span (:func:`inject`) or which context a carrier describes
(:func:`extract`). Everything else here is set-up: :func:`configure_tracing` builds a
``TracerProvider`` from its arguments and the standard ``OTEL_*`` variables.

The provider is held here rather than only in OpenTelemetry's global slot, because the
global slot can be set once per process and tests (and embedding services) need to
reconfigure.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import (
    SpanLimits,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes, AttributeValue

from otel._resource import (
    INSTRUMENTATION,
    VERSION,
    bounded_shutdown,
    env_flag,
    exporter_names,
    resource,
)
from otel._spans import ChildSpans, Pipeline
from otel._spans import start_span as _start_span

__all__ = [
    "ExporterName",
    "TracingConfigError",
    "child_spans",
    "configure_tracing",
    "enabled",
    "extract",
    "inject",
    "shutdown_tracing",
    "start_span",
    "trace_actors",
    "tracer",
]

ExporterName = Literal["otlp-http", "otlp-grpc", "console", "none"]
_propagator = TraceContextTextMapPropagator()
_lock = threading.Lock()


class TracingConfigError(ValueError):
    """A tracing setting (argument or ``OTEL_*`` variable) has a value we can't use."""


class _State:
    """The active provider; ``tracer`` is ``None`` exactly when tracing is off.

    ``actors`` says whether actor messages and I/O coroutines get spans of their own
    (a debugging aid for the runtime; off by default, when only runs, steps and
    LLM/tool calls are spans). ``pipeline`` is what :func:`child_spans` needs to start
    children without the tracer, ``None`` where it must not (see :mod:`otel._spans`).
    """

    __slots__ = ("actors", "pipeline", "provider", "tracer")

    def __init__(self) -> None:
        self.provider: TracerProvider | None = None
        self.tracer: trace.Tracer | None = None
        self.pipeline: Pipeline | None = None
        self.actors = False


_state = _State()

tracing_state = _state
"""The tracing state itself, for the runtime's per-message paths:
``tracing_state.tracer is not None`` is :func:`enabled` without the call."""


def enabled() -> bool:
    """Whether spans are being recorded (a cheap check for hot paths)."""
    return _state.tracer is not None


def trace_actors() -> bool:
    """Whether each actor message and I/O coroutine is a span (opt-in, for runtime debugging)."""
    return _state.actors


def tracer() -> trace.Tracer:
    """The tracer for the runtime's spans (a no-op tracer when tracing is off)."""
    active = _state.tracer
    return active if active is not None else trace.NoOpTracer()


def start_span(
    name: str, *, context: otel_context.Context, attributes: dict[str, AttributeValue]
) -> trace.Span:
    """A runtime span (a run's), as ``tracer().start_span`` makes it but cheaper.

    ``context`` is the parent's (an empty one for a new trace); ``attributes`` must be
    valid attribute values (they are not checked again) and become the span's own.
    """
    return _start_span(
        name, context=context, attributes=attributes, tracer=tracer(), pipeline=_state.pipeline
    )


def child_spans(parent: trace.Span) -> ChildSpans:
    """A starter of ``parent``'s children (a run's step attempts), made once per parent.

    Its spans are the same as the tracer's children of ``parent`` (real, recording,
    ended into the provider's processors), started at a fraction of the cost when
    :func:`configure_tracing` built the provider with its own sampler; otherwise
    through the tracer.
    """
    return ChildSpans(parent, tracer(), _state.pipeline)


_CACHE_SIZE = 4096
"""How many carriers (and extracted contexts) are remembered before the caches restart."""
_carriers: dict[tuple[int, int], dict[str, str]] = {}
_contexts: dict[str, otel_context.Context] = {}


def inject() -> dict[str, str] | None:
    """A W3C carrier for the current span, or ``None`` when there is no valid span.

    Every message a handler sends carries the same span, so carriers are made once per
    span and shared: treat the returned dict as read-only.
    """
    return _carrier(None)


def carrier_of(context: object) -> dict[str, str] | None:
    """:func:`inject` for the span in ``context`` (an OpenTelemetry context), not the current one.

    ``None`` when ``context`` is not a context or holds no valid span.
    """
    if not isinstance(context, otel_context.Context):
        return None
    return _carrier(context)


def _carrier(context: otel_context.Context | None) -> dict[str, str] | None:
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid:
        return None
    key = (span_context.trace_id, span_context.span_id)
    carrier = _carriers.get(key)
    if carrier is None:
        carrier = {}
        _propagator.inject(carrier, context=context)
        if len(_carriers) >= _CACHE_SIZE:
            _carriers.clear()
        _carriers[key] = carrier
    return carrier


def extract(carrier: Mapping[str, str] | None) -> otel_context.Context | None:
    """The context a carrier describes, or ``None`` for no carrier (start a root span).

    Contexts are immutable, so the one made for a carrier is remembered and shared by
    every message that carries it (a run's messages all carry a few spans).
    """
    if not carrier:
        return None
    parent = carrier.get("traceparent")
    if parent is None:
        return _propagator.extract(carrier)
    state = carrier.get("tracestate")
    key = parent if state is None else f"{parent};{state}"
    context = _contexts.get(key)
    if context is None:
        context = _propagator.extract(carrier)
        if len(_contexts) >= _CACHE_SIZE:
            _contexts.clear()
        _contexts[key] = context
    return context


def configure_tracing(
    *,
    service_name: str | None = None,
    exporter: ExporterName | None = None,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    sample_ratio: float | None = None,
    span_exporter: SpanExporter | None = None,
    batch: bool | None = None,
    set_global: bool = True,
    trace_actors: bool | None = None,
) -> TracerProvider | None:
    """Turn tracing on (or off) for the whole process.

    Arguments win over environment variables, which win over defaults:

    * ``service_name`` / ``OTEL_SERVICE_NAME`` (default ``reactor-swarm``);
      ``OTEL_RESOURCE_ATTRIBUTES`` is merged into the resource as usual.
    * ``exporter`` / ``OTEL_TRACES_EXPORTER`` (``otlp`` means OTLP with the protocol
      from ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` or ``OTEL_EXPORTER_OTLP_PROTOCOL``:
      ``http/protobuf``, the default, or ``grpc``). Default: ``none`` unless an OTLP
      endpoint variable is set, in which case OTLP.
    * ``endpoint`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``
      and ``headers`` / ``OTEL_EXPORTER_OTLP_HEADERS`` are passed to the OTLP exporter.
    * ``sample_ratio``: parent-based ratio sampling; otherwise the SDK reads
      ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG``.
    * ``trace_actors`` / ``REACTOR_TRACE_ACTORS`` (``true``/``1``): also make a span of
      every actor message and I/O coroutine that belongs to a trace (default off: a
      run's trace holds its run, step, LLM, embedding, tool and agent spans only).
    * ``OTEL_SDK_DISABLED=true`` turns tracing off whatever the arguments say.

    The resource carries ``service.name``, ``service.version`` (this package's version)
    and whatever ``OTEL_RESOURCE_ATTRIBUTES`` adds; the tracer's instrumentation scope is
    ``reactor-swarm`` at the same version.

    Args:
        service_name: ``service.name`` of the resource.
        exporter: Which exporter to build.
        endpoint: OTLP collector address (Jaeger accepts OTLP on 4318/HTTP, 4317/gRPC).
        headers: Extra OTLP headers (authentication).
        sample_ratio: Fraction of new traces to record, 0.0 to 1.0.
        span_exporter: An extra exporter, alongside the configured one (tests and the
            demo pass an in-memory one). Given alone, it is the only exporter.
        batch: Export in a background batch (the default for OTLP; the extra exporter
            is synchronous unless this is true) or synchronously.
        set_global: Also install the provider as OpenTelemetry's global one, when the
            global slot is still free, so user code's spans join the same traces.
        trace_actors: Span every actor message too (see above).

    Returns:
        The provider, or ``None`` when tracing ends up off.

    Raises:
        TracingConfigError: An unknown exporter or protocol name, or a ratio outside
            0..1; the message names the argument or variable.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        shutdown_tracing()
        return None
    names = exporter_names(
        exporter,
        "OTEL_TRACES_EXPORTER",
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    built = [
        one
        for name in names
        if (one := _build_exporter(name, endpoint, headers, explicit=exporter is not None))
    ]
    if not built and span_exporter is None:
        shutdown_tracing()
        return None
    sampler = _sampler(sample_ratio)
    processors = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
    limits = SpanLimits()  # the OTEL_*_LIMIT variables, as the provider would read them
    provider = TracerProvider(
        resource=resource(service_name),
        sampler=sampler,
        shutdown_on_exit=False,  # otel._telemetry flushes at exit, with a deadline
        active_span_processor=processors,
        span_limits=limits,
    )
    for one in built:
        # Network exporters batch in the background; the console prints as spans end.
        console = isinstance(one, ConsoleSpanExporter)
        provider.add_span_processor(_processor(one, batch=not console if batch is None else batch))
    if span_exporter is not None:
        provider.add_span_processor(_processor(span_exporter, batch=bool(batch)))
    actors = env_flag("REACTOR_TRACE_ACTORS") if trace_actors is None else trace_actors
    active = provider.get_tracer(INSTRUMENTATION, VERSION)
    pipeline = (
        # Children decided as the tracer would decide them: only under our own
        # parent-based sampler, and without the SDK's self-metrics (which count spans
        # the tracer starts).
        Pipeline(
            processor=processors,
            resource=provider.resource,
            limits=limits,
            ids=provider.id_generator,
            root_bound=sampler.root_bound,
            scope=InstrumentationScope(INSTRUMENTATION, VERSION),
            info=getattr(active, "instrumentation_info", None),
        )
        if isinstance(sampler, _ParentOrRatio) and not env_flag(_SDK_METRICS)
        else None
    )
    with _lock:
        previous = _state.provider
        _state.provider = provider
        _state.tracer = active
        _state.pipeline = pipeline
        _state.actors = actors
    if previous is not None:
        bounded_shutdown([previous.shutdown], what="spans")
    if set_global:
        _install_global(provider)
    return provider


_SDK_METRICS = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"


def _processor(exporter: SpanExporter, *, batch: bool) -> SpanProcessor:
    return BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)


def shutdown_tracing(timeout: float = 1.0) -> None:
    """Flush and stop the active provider; tracing is off afterwards.

    Waits at most ``timeout`` seconds for the exporter: an unreachable collector costs
    that long and one warning line, never the exporter's whole retry schedule.
    """
    with _lock:
        previous = _state.provider
        _state.provider = None
        _state.tracer = None
        _state.pipeline = None
        _state.actors = False
    if previous is not None:
        bounded_shutdown([previous.shutdown], what="spans", timeout=timeout)


def _install_global(provider: TracerProvider) -> None:
    # The global slot accepts one provider per process; later calls are ignored with
    # a warning by the API, so only try while it still holds the default proxy.
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)


def _sampler(ratio: float | None) -> Sampler | None:
    if ratio is None:
        if os.environ.get("OTEL_TRACES_SAMPLER", "").strip():
            return None  # the SDK reads it (and OTEL_TRACES_SAMPLER_ARG)
        ratio = 1.0  # the SDK's default, parentbased_always_on, decided in one step
    if not 0.0 <= ratio <= 1.0:
        msg = f"configure_tracing(sample_ratio={ratio!r}): must be between 0.0 and 1.0"
        raise TracingConfigError(msg)
    return _ParentOrRatio(ratio)


class _ParentOrRatio(Sampler):
    """``ParentBased(TraceIdRatioBased(ratio))`` with its default delegates, in one step.

    A span with a parent (local or remote) is sampled exactly when its parent is; a
    root span by the ratio of its trace id. The SDK's ``ParentBased`` decides the same
    through two more sampler calls and a second look-up of the parent for every span
    (a run makes one span per step attempt, so that is worth doing once).
    """

    def __init__(self, ratio: float) -> None:
        self._root = TraceIdRatioBased(ratio)

    @property
    def root_bound(self) -> int:
        """A root span is sampled when its trace id's low 64 bits are below this."""
        return self._root.bound

    def should_sample(  # noqa: PLR0917 - the Sampler interface's signature
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        """The parent's decision, or the ratio's for a root span."""
        parent = trace.get_current_span(parent_context).get_span_context()
        if not parent.is_valid:
            return self._root.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        if parent.trace_flags.sampled:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)
        return SamplingResult(Decision.DROP, None, parent.trace_state)

    def get_description(self) -> str:
        """As ``ParentBased`` describes itself."""
        return f"ParentBased{{root:{self._root.get_description()},remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}}"  # noqa: E501


def _build_exporter(
    name: str, endpoint: str | None, headers: Mapping[str, str] | None, *, explicit: bool
) -> SpanExporter | None:
    if name == "otlp":
        name = _otlp_protocol_from_env()
    match name:
        case "none":
            return None
        case "console":
            return ConsoleSpanExporter(out=sys.stdout)
        case "otlp-http":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter as HttpExporter,
            )

            return HttpExporter(endpoint=_http_endpoint(endpoint), headers=dict(headers or {}))
        case "otlp-grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter as GrpcExporter,
            )

            return GrpcExporter(endpoint=endpoint, headers=dict(headers or {}) or None)
        case _:
            source = "exporter" if explicit else "OTEL_TRACES_EXPORTER"
            msg = (
                f"tracing {source}={name!r} is not one of otlp, otlp-http, otlp-grpc, console, none"
            )
            raise TracingConfigError(msg)


def _http_endpoint(endpoint: str | None) -> str | None:
    # The HTTP exporter wants the full /v1/traces URL when given an endpoint argument;
    # accept a bare collector address too, as people type it.
    if endpoint is None or endpoint.rstrip("/").endswith("/v1/traces"):
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


def _otlp_protocol_from_env() -> str:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "http/protobuf":
        return "otlp-http"
    if protocol == "grpc":
        return "otlp-grpc"
    msg = f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not one of http/protobuf, grpc"
    raise TracingConfigError(msg)
