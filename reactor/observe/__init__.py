"""Middleware that watches runs: tracing, logging and live progress."""

from reactor.observe._otel import LoggingMiddleware, TracingMiddleware, log
from reactor.observe._progress import (
    ProgressModel,
    QueueMiddleware,
    RunFinishedItem,
    ViewMode,
    format_seconds,
    make_view,
)

__all__ = [
    "LoggingMiddleware",
    "ProgressModel",
    "QueueMiddleware",
    "RunFinishedItem",
    "TracingMiddleware",
    "ViewMode",
    "format_seconds",
    "log",
    "make_view",
]
