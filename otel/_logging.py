"""structlog set-up: JSON or console lines carrying trace and actor context.

Every line gets ``trace_id`` and ``span_id`` from the current OpenTelemetry span (when
one is recording) and whatever the runtime bound with ``structlog.contextvars``: the
runtime binds ``actor`` on each actor's thread, and later layers bind ``run_id``.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from otel._logexport import export_logs

__all__ = ["LogFormat", "add_trace_ids", "configure_logging"]

LogFormat = Literal["json", "console"]


class _TraceIds:
    """Processor that adds the current span's ``trace_id`` and ``span_id``."""

    __slots__ = ()

    def __call__(self, _logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            event.setdefault("trace_id", format(ctx.trace_id, "032x"))
            event.setdefault("span_id", format(ctx.span_id, "016x"))
        return event


add_trace_ids: Processor = _TraceIds()


def configure_logging(
    *,
    format: LogFormat = "console",
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog for the whole process.

    Args:
        format: ``json`` for one JSON object per line (for collectors), ``console``
            for coloured, aligned lines (for people).
        level: The lowest level written, as a number or a name (``"debug"``).
        stream: Where lines go; standard error by default.
    """
    numeric = level if isinstance(level, int) else logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        msg = f"configure_logging(level={level!r}): not a logging level name"
        raise ValueError(msg)
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if format == "json"
        # Plain tracebacks: with rich installed, structlog's default formatter draws
        # boxed tracebacks with locals, which takes ~0.2 s per exception.
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        structlog.processors.StackInfoRenderer(),
        export_logs,  # a no-op unless configure_log_export() turned OTLP logs on
    ]
    if format == "json":
        processors.append(structlog.processors.format_exc_info)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
