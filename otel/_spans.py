"""The runtime's own spans (a run's, its step attempts'), at a fraction of the tracer's cost.

A run makes one span per step attempt, every one a child of the run's span, sampled
exactly when the run's span is, with a handful of attributes the runtime itself knows
to be valid. The SDK's ``Tracer.start_span`` spends most of its time on what that
case does not need: looking up the parent in a context, asking the sampler,
validating each attribute, and allocating locks and bounded containers that most
step spans never touch (about 170,000 interpreter instructions per span, against a
no-op step's whole overhead of about 400,000).

:class:`ChildSpans` does that work once per parent (:func:`start_span` once per span,
for a run's own span, a root or a child of the step that composed it), and
:class:`ChildSpan` is a real
recording span: the API's whole :class:`~opentelemetry.trace.Span` interface, the
tracer provider's span limits on what user code adds, and at its end an SDK
:class:`~opentelemetry.sdk.trace.ReadableSpan` handed to the provider's span
processors, the same ones (batch or simple, whatever exporter) that receive the
tracer's spans. It is used only where it decides exactly as the SDK would: the
provider was built by :func:`otel.configure_tracing` with its parent-based sampler
(an ``OTEL_TRACES_SAMPLER`` of the user's choice, or the SDK's self-metrics, send
every span through the tracer instead).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Mapping
from time import time_ns
from typing import Any, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    SpanLimits,
    SynchronousMultiSpanProcessor,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

__all__ = ["ChildSpan", "ChildSpans", "Pipeline", "start_span"]

_RANDOM_TRACE_ID = int(getattr(TraceFlags, "RANDOM_TRACE_ID", 0))
"""W3C trace-context level 2's random flag (SDKs that know it carry it to children)."""

_UNSET = Status(StatusCode.UNSET)
_SIMPLE = frozenset((str, bool, int, float))
"""Attribute value types stored as they are (the SDK keeps them unchanged too)."""


class Pipeline:
    """What a child span needs from the tracer provider, gathered once per configuration.

    Built by :func:`otel.configure_tracing` from the pieces it handed the provider (its
    span processor, resource, limits and id generator), so nothing here reaches into
    the provider's private state.
    """

    __slots__ = (
        "info",
        "limits",
        "new_span_id",
        "new_trace_id",
        "processor",
        "random_trace_ids",
        "resource",
        "root_bound",
        "scope",
    )

    def __init__(
        self,
        *,
        processor: SynchronousMultiSpanProcessor,
        resource: Resource,
        limits: SpanLimits,
        ids: IdGenerator,
        root_bound: int,
        scope: InstrumentationScope,
        info: Any,
    ) -> None:
        self.processor = processor
        self.resource = resource
        self.limits = limits
        self.new_span_id = ids.generate_span_id
        self.new_trace_id = ids.generate_trace_id
        is_random = getattr(ids, "is_trace_id_random", None)
        self.random_trace_ids = bool(is_random()) if is_random is not None else False
        self.root_bound = root_bound  # a root is sampled when the trace id's low 64 bits are below
        self.scope = scope
        self.info = info  # the tracer's deprecated InstrumentationInfo, as its spans carry


def start_span(
    name: str,
    *,
    context: otel_context.Context,
    attributes: dict[str, types.AttributeValue],
    tracer: trace.Tracer,
    pipeline: Pipeline | None,
) -> trace.Span:
    """``tracer.start_span(name, context, attributes=attributes)``, cheaper where it can be.

    A root span (``context`` holds no valid span) is sampled by the ratio of its trace
    id, a child when its parent is; a recording span is a :class:`ChildSpan`. Where
    the span would not record, or there is no pipeline, the tracer starts it.
    """
    if pipeline is None:
        return tracer.start_span(name, context=context, attributes=attributes)
    parent = trace.get_current_span(context).get_span_context()
    if parent.is_valid:
        if not parent.trace_flags.sampled:
            return tracer.start_span(name, context=context, attributes=attributes)
        span_context = SpanContext(
            parent.trace_id,
            pipeline.new_span_id(),
            False,
            TraceFlags(TraceFlags.SAMPLED | (parent.trace_flags & _RANDOM_TRACE_ID)),
            parent.trace_state,
        )
        span = ChildSpan(pipeline, name, span_context, parent, SpanKind.INTERNAL, attributes)
    else:
        trace_id = pipeline.new_trace_id()
        random = _RANDOM_TRACE_ID if pipeline.random_trace_ids else 0
        if trace_id & _TRACE_ID_LIMIT >= pipeline.root_bound:
            # Dropped by the ratio: what the tracer returns for this trace id (asking
            # the tracer instead would draw another id and decide a second time).
            return trace.NonRecordingSpan(
                SpanContext(trace_id, pipeline.new_span_id(), False, TraceFlags(random))
            )
        span_context = SpanContext(
            trace_id, pipeline.new_span_id(), False, TraceFlags(TraceFlags.SAMPLED | random)
        )
        span = ChildSpan(pipeline, name, span_context, None, SpanKind.INTERNAL, attributes)
    pipeline.processor.on_start(span, parent_context=context)  # type: ignore[arg-type]
    return span


_TRACE_ID_LIMIT = (1 << 64) - 1


class ChildSpans:
    """Starts children of one span (a run's step attempts).

    ``pipeline`` is ``None`` when the fast path does not apply: then :meth:`start` is
    ``tracer.start_span`` in the parent's context.
    """

    __slots__ = ("_context", "_flags", "_parent", "_pipeline", "_tracer")

    def __init__(self, parent: trace.Span, tracer: trace.Tracer, pipeline: Pipeline | None) -> None:
        self._context = trace.set_span_in_context(parent)
        self._tracer = tracer
        parent_context = parent.get_span_context()
        self._parent = parent_context
        # A child of a sampled parent is sampled (parent-based sampling); of an
        # unsampled or invalid one, the tracer decides (it drops or starts a trace).
        sampled = parent_context.is_valid and parent_context.trace_flags.sampled
        self._pipeline = pipeline if sampled else None
        self._flags = TraceFlags(
            TraceFlags.SAMPLED | (parent_context.trace_flags & _RANDOM_TRACE_ID)
        )

    @property
    def context(self) -> otel_context.Context:
        """The context with the parent as current span (made once, shared)."""
        return self._context

    def start(
        self,
        name: str,
        attributes: dict[str, types.AttributeValue],
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> trace.Span:
        """A started child span named ``name``.

        ``attributes`` must be valid attribute values (strings, numbers, booleans) and
        the dict is the span's own from here on: the caller hands it over.
        """
        pipeline = self._pipeline
        if pipeline is None:
            return self._tracer.start_span(
                name, context=self._context, kind=kind, attributes=attributes
            )
        parent = self._parent
        context = SpanContext(
            parent.trace_id,
            pipeline.new_span_id(),
            False,
            self._flags,
            parent.trace_state,
        )
        span = ChildSpan(pipeline, name, context, parent, kind, attributes)
        pipeline.processor.on_start(span, parent_context=self._context)  # type: ignore[arg-type]
        return span


class ChildSpan(trace.Span):
    """A recording span started by :class:`ChildSpans`, ended into the SDK's processors.

    Attributes the runtime passes at start are taken as they are (it only passes
    valid ones); whatever is added later (user code's ``set_attribute``, events,
    links) goes through the SDK's own bounded, validating containers with the
    provider's limits. Like the SDK's span, it is safe to use from several threads.
    """

    __slots__ = (
        "_attributes",
        "_context",
        "_end_time",
        "_events",
        "_kind",
        "_links",
        "_lock",
        "_name",
        "_parent",
        "_pipeline",
        "_start_time",
        "_status",
    )

    def __init__(  # noqa: PLR0917 - a span's fields
        self,
        pipeline: Pipeline,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, types.AttributeValue],
    ) -> None:
        self._pipeline = pipeline
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes: dict[str, types.AttributeValue] | BoundedAttributes = attributes
        self._events: BoundedList[Event] | None = None
        self._links: BoundedList[Link] | None = None
        self._status = _UNSET
        self._end_time: int | None = None
        self._lock = threading.Lock()
        self._start_time = time_ns()

    def __repr__(self) -> str:
        return f'{type(self).__name__}(name="{self._name}", context={self._context})'

    # ---- what the runtime reads --------------------------------------------------------

    @property
    def name(self) -> str:
        """The span's name."""
        return self._name

    @property
    def attributes(self) -> Mapping[str, types.AttributeValue]:
        """The attributes so far (read-only view)."""
        return dict(self._attributes)

    def get_span_context(self) -> SpanContext:
        """The span's context (its trace and span ids)."""
        return self._context

    def is_recording(self) -> bool:
        """True until the span ends."""
        return self._end_time is None

    # ---- the API's writers ---------------------------------------------------------------

    def _bounded(self) -> BoundedAttributes:
        """The attributes as the SDK's validating container (made on first use)."""
        attributes = self._attributes
        if isinstance(attributes, BoundedAttributes):
            return attributes
        limits = self._pipeline.limits
        bounded = BoundedAttributes(
            limits.max_span_attributes,
            attributes,
            immutable=False,
            max_value_len=limits.max_span_attribute_length,
        )
        self._attributes = bounded
        return bounded

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        """Add or replace attributes (validated, within the provider's limits)."""
        with self._lock:
            if self._end_time is not None:
                return
            for key, value in attributes.items():
                self._put(key, value)

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        """Add or replace one attribute (validated, within the provider's limits)."""
        with self._lock:
            if self._end_time is not None:
                return
            self._put(key, value)

    def _put(self, key: str, value: types.AnyValue) -> None:
        """Store one attribute, as the SDK's container would.

        A plain string, number or boolean goes straight in while the attributes are a
        plain dict within the count limit (a string cut to the length limit);
        anything else through the SDK's container.
        """
        attributes = self._attributes
        kind = type(value)
        if type(attributes) is dict and type(key) is str and key and kind in _SIMPLE:
            limits = self._pipeline.limits
            count = limits.max_span_attributes
            if count is None or key in attributes or len(attributes) < count:
                length = limits.max_span_attribute_length
                if kind is str and length is not None:
                    value = cast("str", value)[:length]
                attributes[key] = value
                return
        self._bounded()[key] = value

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        """Record an event, as the SDK's span does."""
        limits = self._pipeline.limits
        event = Event(
            name,
            BoundedAttributes(
                limits.max_event_attributes,
                attributes,
                max_value_len=limits.max_attribute_length,
                immutable=True,
            ),
            timestamp,
        )
        with self._lock:
            if self._end_time is not None:
                return
            events = self._events
            if events is None:
                events = self._events = BoundedList(limits.max_events)
            events.append(event)

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        """Link another span, as the SDK's span does (invalid contexts are ignored)."""
        if context is None or not context.is_valid:
            return
        limits = self._pipeline.limits
        link = Link(
            context,
            BoundedAttributes(
                limits.max_link_attributes,
                attributes,
                max_value_len=limits.max_attribute_length,
                immutable=True,
            ),
        )
        with self._lock:
            if self._end_time is not None:
                return
            links = self._links
            if links is None:
                links = self._links = BoundedList(limits.max_links)
            links.append(link)

    def update_name(self, name: str) -> None:
        """Rename the span (before it ends)."""
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """Set the status; as in the SDK, ``OK`` is final and ``UNSET`` changes nothing."""
        if self._end_time is not None:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if self._status.status_code is StatusCode.OK or status.status_code is StatusCode.UNSET:
            return
        self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """An ``exception`` event, with the attributes the SDK's span gives it."""
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        recorded: dict[str, types.AttributeValue] = {
            "exception.type": qualname
            if not module or module == "builtins"
            else f"{module}.{qualname}",
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            recorded.update(attributes)
        self.add_event("exception", recorded, timestamp)

    # ---- the end -------------------------------------------------------------------------

    def end(self, end_time: int | None = None) -> None:
        """End the span and hand it to the provider's span processors (once)."""
        with self._lock:
            if self._end_time is not None:
                return
            self._end_time = end_time if end_time is not None else time_ns()
        # No writer reaches the attributes after the end (the writers check it, and
        # the ReadableSpan shows them read-only).
        attributes = self._attributes
        pipeline = self._pipeline
        pipeline.processor.on_end(
            ReadableSpan(
                name=self._name,
                context=self._context,
                parent=self._parent,
                resource=pipeline.resource,
                attributes=attributes,
                events=self._events if self._events is not None else (),
                links=self._links if self._links is not None else (),
                kind=self._kind,
                instrumentation_info=pipeline.info,
                status=self._status,
                start_time=self._start_time,
                end_time=self._end_time,
                instrumentation_scope=pipeline.scope,
            )
        )
