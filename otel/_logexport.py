"""structlog lines over OTLP logs (opt-in), each carrying the trace and span it was logged in.

:func:`configure_log_export` turns it on when asked (``exporter=`` or
``OTEL_LOGS_EXPORTER=otlp``/``console``; an OTLP endpoint alone does not, since log
lines can be many and a collector may bill for them). :data:`export_logs` is the
structlog processor that :func:`~otel.configure_logging` puts in every chain: it hands
each line to the OpenTelemetry logger provider, and costs one attribute read when log
export is off. A line keeps its level (as severity), its event (as body) and its other
fields (as attributes); the SDK fills in the trace and span ids from the current
context, so a line logged while a step runs belongs to the step's trace.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry._logs import Logger, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
    SimpleLogRecordProcessor,
)
from structlog.typing import EventDict, WrappedLogger

from otel._resource import INSTRUMENTATION, VERSION, bounded_shutdown, exporter_names, resource
from otel._tracing import TracingConfigError

__all__ = ["configure_log_export", "export_logs", "shutdown_log_export"]

_SEVERITY = {
    "debug": SeverityNumber.DEBUG,
    "info": SeverityNumber.INFO,
    "warning": SeverityNumber.WARN,
    "warn": SeverityNumber.WARN,
    "error": SeverityNumber.ERROR,
    "exception": SeverityNumber.ERROR,
    "critical": SeverityNumber.FATAL,
}
_SKIP = frozenset({"event", "level", "log_level", "timestamp", "trace_id", "span_id", "exc_info"})


class _State:
    __slots__ = ("logger", "provider")

    def __init__(self) -> None:
        self.provider: LoggerProvider | None = None
        self.logger: Logger | None = None


_state = _State()
_lock = threading.Lock()


class _ExportLogs:
    """structlog processor: also emit the line as an OpenTelemetry log record."""

    __slots__ = ()

    def __call__(self, _logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        target = _state.logger
        if target is None:
            return event
        level = str(event.get("level") or event.get("log_level") or method).lower()
        attributes = {k: _value(v) for k, v in event.items() if k not in _SKIP}
        target.emit(
            body=str(event.get("event", "")),
            severity_text=level.upper(),
            severity_number=_SEVERITY.get(level, SeverityNumber.INFO),
            attributes=attributes,
        )
        return event


def _value(value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    return str(value)


export_logs = _ExportLogs()


def configure_log_export(
    *,
    service_name: str | None = None,
    exporter: str | None = None,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    log_exporter: LogRecordExporter | None = None,
) -> LoggerProvider | None:
    """Send structlog lines over OTLP logs too (opt-in; see the module docstring).

    Args:
        service_name: ``service.name`` (``reactor-swarm`` unless set).
        exporter: ``otlp``, ``otlp-http``, ``otlp-grpc``, ``console`` or ``none``;
            default ``OTEL_LOGS_EXPORTER``, else ``none``.
        endpoint: OTLP collector address (else the standard endpoint variables).
        headers: Extra OTLP headers.
        log_exporter: An extra exporter, synchronous (tests pass an in-memory one).

    Returns:
        The provider, or ``None`` when log export ends up off.
    """
    names = exporter_names(exporter and exporter.strip().lower(), "OTEL_LOGS_EXPORTER")
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        names = ["none"]
    built = [
        one
        for name in names
        if (one := _build_exporter(name, endpoint, headers, explicit=exporter is not None))
    ]
    if not built and log_exporter is None:
        shutdown_log_export()
        return None
    provider = LoggerProvider(
        resource=resource(service_name),
        shutdown_on_exit=False,  # otel._telemetry flushes at exit, with a deadline
    )
    for one in built:
        provider.add_log_record_processor(BatchLogRecordProcessor(one))
    if log_exporter is not None:
        provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    with _lock:
        previous = _state.provider
        _state.provider = provider
        _state.logger = provider.get_logger(INSTRUMENTATION, VERSION)
    if previous is not None:
        bounded_shutdown([previous.shutdown], what="logs")
    return provider


def shutdown_log_export(timeout: float = 1.0) -> None:
    """Send what is buffered and stop exporting log lines (waits ≤ ``timeout`` s)."""
    with _lock:
        previous = _state.provider
        _state.provider = None
        _state.logger = None
    if previous is not None:
        bounded_shutdown([previous.shutdown], what="logs", timeout=timeout)


def _build_exporter(
    name: str, endpoint: str | None, headers: Mapping[str, str] | None, *, explicit: bool
) -> LogRecordExporter | None:
    if name == "otlp":
        protocol = (
            os.environ.get("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        name = {"http/protobuf": "otlp-http", "grpc": "otlp-grpc"}.get(protocol, protocol)
    match name:
        case "none":
            return None
        case "console":
            return ConsoleLogRecordExporter(out=sys.stdout)
        case "otlp-http":
            from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
                OTLPLogExporter as HttpExporter,
            )

            url = endpoint
            if url is not None and not url.rstrip("/").endswith("/v1/logs"):
                url = url.rstrip("/") + "/v1/logs"
            return HttpExporter(endpoint=url, headers=dict(headers or {}))
        case "otlp-grpc":
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (  # noqa: PLC0415
                OTLPLogExporter as GrpcExporter,
            )

            return GrpcExporter(endpoint=endpoint, headers=dict(headers or {}) or None)
        case _:
            source = "exporter" if explicit else "OTEL_LOGS_EXPORTER"
            msg = (
                f"log export {source}={name!r} is not one of "
                "otlp, otlp-http, otlp-grpc, console, none"
            )
            raise TracingConfigError(msg)
