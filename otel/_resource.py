"""What every signal shares: the resource, the scope's version, and a bounded shutdown.

Traces, metrics and logs are three providers with one resource, so a backend sees one
service whichever signal it looks at. Shutting them down flushes what is buffered;
:func:`bounded_shutdown` gives that a deadline, so an unreachable collector delays an
exit by at most a second and says so in one line, rather than running the exporter's
whole retry schedule and printing a warning per attempt.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import metadata

from opentelemetry.sdk.resources import OTELResourceDetector, Resource

__all__ = [
    "INSTRUMENTATION",
    "VERSION",
    "bounded_shutdown",
    "env_flag",
    "exporter_names",
    "resource",
]

INSTRUMENTATION = "reactor-swarm"
"""The instrumentation scope's name (and the default ``service.name``)."""


def _version() -> str:
    try:
        return metadata.version("reactor-swarm")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


VERSION = _version()
"""This package's version: ``service.version`` and the instrumentation scope's version."""


def resource(service_name: str | None = None) -> Resource:
    """The resource of every provider.

    ``service.name``: the argument, else ``OTEL_SERVICE_NAME``, else the one in
    ``OTEL_RESOURCE_ATTRIBUTES``, else ``reactor-swarm`` (for the CLI and the library
    alike). ``service.version``: the one in ``OTEL_RESOURCE_ATTRIBUTES``, else this
    package's version. The rest of ``OTEL_RESOURCE_ATTRIBUTES`` is merged in by the SDK.
    """
    from_env = OTELResourceDetector().detect().attributes  # both variables, parsed
    defaults: dict[str, str] = {}
    if service_name:
        defaults["service.name"] = service_name
    elif not from_env.get("service.name"):
        defaults["service.name"] = INSTRUMENTATION
    if not from_env.get("service.version"):
        defaults["service.version"] = VERSION
    return Resource.create(defaults)


def env_flag(name: str) -> bool:
    """Whether the variable ``name`` says yes (``true``, ``1``, ``yes``, ``on``)."""
    return os.environ.get(name, "").strip().lower() in ("true", "1", "yes", "on")


class _Muffle(logging.Filter):
    """Drops the exporters' own log records while a shutdown runs, counting them."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.dropped.append(record.getMessage())
        return False


_EXPORT_LOGGERS = (  # each module's own logger: a filter applies to its logger only
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.sdk.metrics._internal.export",
    "opentelemetry.sdk._logs._internal.export",
)


def exporter_names(given: str | None, variable: str, endpoints: tuple[str, ...] = ()) -> list[str]:
    """The exporters to build: ``given``, else every name the ``variable`` lists.

    The standard ``OTEL_*_EXPORTER`` variables take a comma-separated list
    (``otlp,console`` sends to a collector and prints); each name counts once. Unset,
    ``otlp`` when one of the ``endpoints`` variables is set, else ``none``.
    """
    if given:
        return [given]
    value = os.environ.get(variable, "").strip().lower()
    if value:
        names = [n.strip() for n in value.split(",") if n.strip()]
        return list(dict.fromkeys(names)) or ["none"]
    return ["otlp"] if any(os.environ.get(v) for v in endpoints) else ["none"]


def bounded_shutdown(
    steps: Sequence[Callable[[], object]], *, what: str, timeout: float = 1.0
) -> bool:
    """Run ``steps`` (providers' ``shutdown``) on a helper thread, waiting ``timeout`` s.

    The exporters' warnings are held back meanwhile; if the steps did not finish in
    time, or an export failed, one warning line says what was lost. Returns whether
    everything finished cleanly. What has not finished keeps trying on a daemon thread
    that the interpreter does not wait for.
    """
    muffle = _Muffle()
    loggers = [logging.getLogger(name) for name in _EXPORT_LOGGERS]
    for each in loggers:
        each.addFilter(muffle)

    def run() -> None:
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - reported as the one warning below
                muffle.dropped.append(f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=run, name=f"otel-shutdown-{what}", daemon=True)
    worker.start()
    worker.join(timeout)
    finished = not worker.is_alive()
    if finished:
        for each in loggers:
            each.removeFilter(muffle)
    # (Left in place when unfinished: the late retries stay quiet too.)
    if finished and not muffle.dropped:
        return True
    reason = muffle.dropped[0] if muffle.dropped else "no answer"
    if len(reason) > _REASON_CHARS:  # cut visibly, not mid-word without a sign
        reason = reason[: _REASON_CHARS - 3].rstrip() + "..."
    why = "did not finish" if not finished else "failed"
    which = "" if what == "telemetry" else f" ({what})"
    sys.stderr.write(
        f"warning: exporting telemetry{which} {why} within {timeout:g}s at shutdown; "
        f"buffered data may be lost ({reason})\n"
    )
    return False


_REASON_CHARS = 160
"""The most of an exporter's error the shutdown warning quotes."""
