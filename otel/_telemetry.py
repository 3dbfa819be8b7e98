"""All three signals at once: what a command or a service calls at start and at exit.

At interpreter exit whatever is still configured is flushed once, with the same
one-second deadline (the SDK's own exit hooks, which would wait for the exporters'
whole retry schedule and shut a provider down twice, are turned off).
"""

from __future__ import annotations

import atexit

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from otel import _logexport, _metrics, _tracing
from otel._resource import bounded_shutdown

__all__ = ["configure_telemetry", "shutdown_telemetry"]


def configure_telemetry(*, service_name: str | None = None) -> None:
    """Traces, metrics and log export as the standard ``OTEL_*`` variables say.

    Each signal is off unless its variables turn it on (see :func:`configure_tracing`,
    :func:`configure_metrics`, :func:`configure_log_export`).

    Raises:
        TracingConfigError: A variable has a value that cannot be used.
    """
    _tracing.configure_tracing(service_name=service_name)
    _metrics.configure_metrics(service_name=service_name)
    _logexport.configure_log_export(service_name=service_name)


def shutdown_telemetry(timeout: float = 1.0) -> bool:
    """Flush and stop every signal together, waiting at most ``timeout`` seconds in all.

    An unreachable collector costs ``timeout`` and one warning line on standard error.
    Returns whether everything was sent.
    """
    providers: list[TracerProvider | MeterProvider | LoggerProvider] = []
    with _tracing._lock:
        if _tracing._state.provider is not None:
            providers.append(_tracing._state.provider)
        _tracing._state.provider = None
        _tracing._state.tracer = None
        _tracing._state.actors = False
    with _metrics._lock:
        if _metrics._state.provider is not None:
            providers.append(_metrics._state.provider)
        _metrics._state.provider = None
        _metrics._state.instruments = None
    with _logexport._lock:
        if _logexport._state.provider is not None:
            providers.append(_logexport._state.provider)
        _logexport._state.provider = None
        _logexport._state.logger = None
    if not providers:
        return True
    return bounded_shutdown([p.shutdown for p in providers], what="telemetry", timeout=timeout)


atexit.register(shutdown_telemetry)
