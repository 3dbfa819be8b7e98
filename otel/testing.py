"""Helpers for testing code that traces: capture spans in memory.

Example::

    with capture_spans() as spans:
        ref.ask(Ping())
    assert [s.name for s in spans.get_finished_spans()]
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel._tracing import configure_tracing, shutdown_tracing

__all__ = ["InMemorySpanExporter", "capture_spans", "wait_for_spans"]


@contextmanager
def capture_spans(*, trace_actors: bool = False) -> Iterator[InMemorySpanExporter]:
    """Record every span of the block in memory, synchronously; tracing is off afterwards.

    Args:
        trace_actors: Also make a span of every actor message (see
            :func:`otel.configure_tracing`).
    """
    exporter = InMemorySpanExporter()
    configure_tracing(
        span_exporter=exporter, batch=False, set_global=False, trace_actors=trace_actors
    )
    try:
        yield exporter
    finally:
        shutdown_tracing()


def wait_for_spans(
    exporter: InMemorySpanExporter, names: Iterable[str], timeout: float = 5.0
) -> tuple[ReadableSpan, ...]:
    """Wait until spans with all of ``names`` have finished; return every finished span.

    A reply can reach the caller a moment before the replying handler's span ends, so
    tests wait for the spans they are about to inspect. A name given twice waits for two
    spans of that name, and so on.

    Raises:
        AssertionError: Some names did not appear in time (the message lists them).
    """
    wanted = collections.Counter(names)
    deadline = time.monotonic() + timeout
    while True:
        spans = exporter.get_finished_spans()
        missing = wanted - collections.Counter(s.name for s in spans)
        if not missing:
            return spans
        if time.monotonic() > deadline:
            got = sorted({s.name for s in spans})
            msg = f"spans {sorted(missing)} did not finish within {timeout}s (got {got})"
            raise AssertionError(msg)
        time.sleep(0.005)
