"""Tracing and logging for Reactor Swarm.

* :func:`configure_tracing` turns on OpenTelemetry export (OTLP over HTTP or gRPC,
  console, or none), from arguments and the standard ``OTEL_*`` variables.
* :func:`configure_logging` sets structlog up for JSON or console lines that carry
  ``trace_id``, ``span_id`` and the actor's name. Until it (or the program) configures
  structlog, the library logs warnings and errors only, on standard error
  (:func:`install_quiet_default`, run on import).
* :func:`inject` and :func:`extract` move the trace context in and out of messages.
* ``GEN_AI_*``: the attribute names of the OpenTelemetry GenAI conventions.
"""

from otel._genai import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_STOP_SEQUENCES,
    GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
)
from otel._logging import LogFormat, add_trace_ids, configure_logging, install_quiet_default
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
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MAX_TOKENS",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_REQUEST_STOP_SEQUENCES",
    "GEN_AI_REQUEST_TEMPERATURE",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "ExporterName",
    "LogFormat",
    "TracingConfigError",
    "add_trace_ids",
    "configure_logging",
    "configure_tracing",
    "enabled",
    "extract",
    "inject",
    "install_quiet_default",
    "shutdown_tracing",
    "span_tree",
    "tracer",
]

install_quiet_default()
