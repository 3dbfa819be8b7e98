"""Helpers for testing code that traces: capture spans in memory.

Example::

    with capture_spans() as spans:
        ref.ask(Ping())
    assert [s.name for s in spans.get_finished_spans()]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel._tracing import configure_tracing, shutdown_tracing

__all__ = ["InMemorySpanExporter", "capture_spans"]


@contextmanager
def capture_spans() -> Iterator[InMemorySpanExporter]:
    """Record every span of the block in memory, synchronously; tracing is off afterwards."""
    exporter = InMemorySpanExporter()
    configure_tracing(span_exporter=exporter, batch=False, set_global=False)
    try:
        yield exporter
    finally:
        shutdown_tracing()
