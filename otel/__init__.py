"""Tracing and logging for Reactor Swarm.

* :func:`configure_tracing` turns on OpenTelemetry export (OTLP over HTTP or gRPC,
  console, or none), from arguments and the standard ``OTEL_*`` variables.
* :func:`configure_logging` sets structlog up for JSON or console lines that carry
  ``trace_id``, ``span_id`` and the actor's name. Until it (or the program) configures
  structlog, the library logs warnings and errors only, on standard error
  (:func:`install_quiet_default`, run on import).
* :func:`configure_metrics` turns on the OTLP metrics pipeline; :func:`instruments`
  gives the instruments (``None`` when off); :func:`configure_log_export` sends
  structlog lines over OTLP logs too (opt-in).
* :func:`configure_telemetry` / :func:`shutdown_telemetry` do all three signals at
  once (the shutdown waits at most a second for the collector).
* :func:`inject` and :func:`extract` move the trace context in and out of messages;
  :func:`trace_actors` says whether actor messages are spans (opt-in);
  :func:`start_span` and :func:`child_spans` start the runtime's own spans (a run's,
  its step attempts') at a fraction of the tracer's cost.
* ``GEN_AI_*``: the attribute names of the OpenTelemetry GenAI conventions;
  :func:`execute_tool_span` and :func:`invoke_agent_span` make the tool and agent
  spans; :func:`error_type` names a failure for ``error.type``.
"""

from otel._genai import (
    CAPTURE_CONTENT_VARIABLE,
    ERROR_TYPE,
    GEN_AI_AGENT_DESCRIPTION,
    GEN_AI_AGENT_ID,
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_OUTPUT_TYPE,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_STOP_SEQUENCES,
    GEN_AI_REQUEST_STREAM,
    GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_RESPONSE_ID,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_CALL_RESULT,
    GEN_AI_TOOL_DESCRIPTION,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_TYPE,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    GEN_AI_WORKFLOW_NAME,
    OPENAI_REQUEST_SERVICE_TIER,
    OPENAI_RESPONSE_SERVICE_TIER,
    OPENAI_RESPONSE_SYSTEM_FINGERPRINT,
    capture_content,
    error_type,
    execute_tool_span,
    invoke_agent_span,
    qualified_name,
)
from otel._logexport import configure_log_export, shutdown_log_export
from otel._logging import LogFormat, add_trace_ids, configure_logging, install_quiet_default
from otel._metrics import Instruments, configure_metrics, instruments, shutdown_metrics
from otel._render import span_tree
from otel._resource import VERSION
from otel._telemetry import configure_telemetry, shutdown_telemetry
from otel._tracing import (
    ExporterName,
    TracingConfigError,
    carrier_of,
    child_spans,
    configure_tracing,
    enabled,
    extract,
    inject,
    shutdown_tracing,
    start_span,
    trace_actors,
    tracer,
    tracing_state,
)

__all__ = [
    "CAPTURE_CONTENT_VARIABLE",
    "ERROR_TYPE",
    "GEN_AI_AGENT_DESCRIPTION",
    "GEN_AI_AGENT_ID",
    "GEN_AI_AGENT_NAME",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_INPUT_MESSAGES",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_OUTPUT_MESSAGES",
    "GEN_AI_OUTPUT_TYPE",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MAX_TOKENS",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_REQUEST_STOP_SEQUENCES",
    "GEN_AI_REQUEST_STREAM",
    "GEN_AI_REQUEST_TEMPERATURE",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK",
    "GEN_AI_TOOL_CALL_ARGUMENTS",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_CALL_RESULT",
    "GEN_AI_TOOL_DESCRIPTION",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_TOOL_TYPE",
    "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
    "GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS",
    "GEN_AI_WORKFLOW_NAME",
    "OPENAI_REQUEST_SERVICE_TIER",
    "OPENAI_RESPONSE_SERVICE_TIER",
    "OPENAI_RESPONSE_SYSTEM_FINGERPRINT",
    "VERSION",
    "ExporterName",
    "Instruments",
    "LogFormat",
    "TracingConfigError",
    "add_trace_ids",
    "capture_content",
    "carrier_of",
    "child_spans",
    "configure_log_export",
    "configure_logging",
    "configure_metrics",
    "configure_telemetry",
    "configure_tracing",
    "enabled",
    "error_type",
    "execute_tool_span",
    "extract",
    "inject",
    "install_quiet_default",
    "instruments",
    "invoke_agent_span",
    "qualified_name",
    "shutdown_log_export",
    "shutdown_metrics",
    "shutdown_telemetry",
    "shutdown_tracing",
    "span_tree",
    "start_span",
    "trace_actors",
    "tracer",
    "tracing_state",
]

install_quiet_default()
