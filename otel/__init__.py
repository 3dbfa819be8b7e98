"""Tracing and logging for Reactor Swarm.

* :func:`configure_tracing` turns on OpenTelemetry export (OTLP over HTTP or gRPC,
  console, or none), from arguments and the standard ``OTEL_*`` variables.
* :func:`configure_logging` sets structlog up for JSON or console lines that carry
  ``trace_id``, ``span_id`` and the actor's name.
* :func:`inject` and :func:`extract` move the trace context in and out of messages.
"""

from otel._logging import LogFormat, add_trace_ids, configure_logging
from otel._render import span_tree
from otel._tracing import (
    ExporterName,
    TracingConfigError,
    configure_tracing,
    enabled,
    extract,
    inject,
    shutdown_tracing,
    tracer,
)

__all__ = [
    "ExporterName",
    "LogFormat",
    "TracingConfigError",
    "add_trace_ids",
    "configure_logging",
    "configure_tracing",
    "enabled",
    "extract",
    "inject",
    "shutdown_tracing",
    "span_tree",
    "tracer",
]
