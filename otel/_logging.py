"""structlog set-up: JSON or console lines carrying trace and actor context.

Every line gets ``trace_id`` and ``span_id`` from the current OpenTelemetry span (when
one is recording) and whatever the runtime bound with ``structlog.contextvars``: the
runtime binds ``actor`` on each actor's thread, and later layers bind ``run_id``.

A library prints nothing its host program did not ask for: until someone configures
structlog (:func:`configure_logging`, or the program's own ``structlog.configure``),
importing this package installs a quiet default (:func:`install_quiet_default`):
warnings and errors only, on standard error, tracebacks without local variables.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Literal, TextIO

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from otel._logexport import export_logs

__all__ = ["LogFormat", "add_trace_ids", "configure_logging", "install_quiet_default"]

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


class _LineLogger:
    """A structlog logger that prints each line to a stream, and never raises.

    With no stream given it writes to whatever ``sys.stderr`` is when the line is
    logged (not when the logger was bound), so a program (or a test) that redirects
    standard error later still gets the lines. A line that cannot be written (the stream
    was closed) is dropped: logging must not crash the actor or step that logs.
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        """Write one line."""
        stream = self._stream if self._stream is not None else sys.stderr
        with contextlib.suppress(ValueError, OSError):
            print(message, file=stream, flush=True)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _LineLoggerFactory:
    """Makes :class:`_LineLogger` s for one stream (``None``: standard error as it is)."""

    __slots__ = ("_stream",)

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def __call__(self, *_args: object) -> _LineLogger:
        return _LineLogger(self._stream)


def install_quiet_default() -> bool:
    """Make structlog quiet unless its configuration was chosen already; whether it did.

    Without this, structlog's own default prints every level, debug included, to
    standard output (between the program's own prints), and with ``rich`` installed
    draws crash tracebacks with every frame's local variables (API keys included).
    Installed: warning and above, on standard error, plain tracebacks without locals.
    A program that configured structlog before is left alone; one that configures it
    later (or calls :func:`configure_logging`) replaces this.
    """
    if structlog.is_configured():
        return False
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            ),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=_LineLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    return True


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
        logger_factory=_LineLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
