"""Metrics: the GenAI client instruments and the project's own, exported over OTLP.

:func:`configure_metrics` builds a ``MeterProvider`` from its arguments and the standard
variables (``OTEL_METRICS_EXPORTER``, ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_METRICS_PROTOCOL``,
``OTEL_METRIC_EXPORT_INTERVAL``). Off (the default) :func:`instruments` returns
``None``, so a call site pays one attribute read and nothing else.

The instruments (names and units from the GenAI conventions where they have one):

* ``gen_ai.client.inference.duration`` (s, histogram): a chat call, end to end;
  ``gen_ai.client.operation.duration`` (s) for every operation, chat and embeddings.
* ``gen_ai.client.inference.time_to_first_chunk`` (s, histogram): streaming calls.
* ``gen_ai.client.inference.usage.{input,output}_tokens``,
  ``...usage.cache_read.input_tokens``, ``...usage.cache_write.input_tokens``,
  ``...usage.reasoning.output_tokens`` ({token}, counters) and
  ``gen_ai.client.inference.operation.{input,output}_tokens`` ({token}, histograms):
  the conventions' newer names. The older ``gen_ai.client.token.usage`` ({token},
  histogram, by ``gen_ai.token.type``: ``input`` or ``output``) is recorded as well, with
  ``gen_ai.client.operation.duration``: the conventions define both families for now,
  and dashboards built on the older one find chat there too.
* ``reactor.runs.started`` / ``reactor.runs.ended`` ({run}, counters; by reactor, and
  by ``reactor.status`` when ended), ``reactor.step.duration`` (s, histogram; by
  reactor, step and outcome).
* ``reactor.breaker.state`` (gauge: 0 closed, 1 half-open, 2 open; by host and model),
  ``reactor.host.queue.depth`` ({request}, gauge; by host: requests waiting for a slot).
* ``reactor.journal.commit.duration`` (s, histogram): one group commit of the store.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping

from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.metrics import _Gauge as Gauge
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)

from otel._resource import INSTRUMENTATION, VERSION, bounded_shutdown, exporter_names, resource
from otel._tracing import ExporterName, TracingConfigError

__all__ = ["Instruments", "configure_metrics", "instruments", "shutdown_metrics"]

_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
"""The bucket boundaries the GenAI conventions give for durations."""

_TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
"""The bucket boundaries the GenAI conventions give for per-operation token counts."""

_FAST_BUCKETS = (
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
"""Step and commit durations: most are milliseconds."""


class Instruments:
    """Every instrument, made once per :func:`configure_metrics` (see the module docstring)."""

    __slots__ = (
        "breaker_state",
        "inference_duration",
        "journal_commit",
        "operation_duration",
        "operation_input_tokens",
        "operation_output_tokens",
        "queue_depth",
        "runs_ended",
        "runs_started",
        "step_duration",
        "time_to_first_chunk",
        "token_usage",
        "usage_cache_read",
        "usage_cache_write",
        "usage_input",
        "usage_output",
        "usage_reasoning",
    )

    def __init__(self, meter: Meter) -> None:
        def seconds(name: str, description: str, buckets: tuple[float, ...]) -> Histogram:
            return meter.create_histogram(
                name, unit="s", description=description,
                explicit_bucket_boundaries_advisory=buckets,
            )  # fmt: skip

        def tokens(name: str, description: str) -> Counter:
            return meter.create_counter(name, unit="{token}", description=description)

        self.inference_duration = seconds(
            "gen_ai.client.inference.duration", "GenAI client inference duration.",
            _DURATION_BUCKETS,
        )  # fmt: skip
        self.operation_duration = seconds(
            "gen_ai.client.operation.duration", "GenAI operation duration.", _DURATION_BUCKETS
        )
        self.time_to_first_chunk = seconds(
            "gen_ai.client.inference.time_to_first_chunk",
            "Time to the first chunk of a streaming response.",
            (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
             7.5, 10.0),
        )  # fmt: skip
        self.usage_input = tokens(
            "gen_ai.client.inference.usage.input_tokens", "Input tokens used, cached included."
        )
        self.usage_output = tokens(
            "gen_ai.client.inference.usage.output_tokens",
            "Output tokens used, reasoning included.",
        )
        self.usage_cache_read = tokens(
            "gen_ai.client.inference.usage.cache_read.input_tokens",
            "Input tokens served from the provider's cache.",
        )
        self.usage_cache_write = tokens(
            "gen_ai.client.inference.usage.cache_write.input_tokens",
            "Input tokens written to the provider's cache.",
        )
        self.usage_reasoning = tokens(
            "gen_ai.client.inference.usage.reasoning.output_tokens",
            "Output tokens spent on reasoning.",
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}",
            description="Input and output tokens per operation.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )  # fmt: skip
        self.operation_input_tokens = meter.create_histogram(
            "gen_ai.client.inference.operation.input_tokens", unit="{token}",
            description="Input tokens per inference operation.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )  # fmt: skip
        self.operation_output_tokens = meter.create_histogram(
            "gen_ai.client.inference.operation.output_tokens", unit="{token}",
            description="Output tokens per inference operation.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )  # fmt: skip
        self.runs_started = meter.create_counter(
            "reactor.runs.started", unit="{run}", description="Runs started (or resumed)."
        )
        self.runs_ended = meter.create_counter(
            "reactor.runs.ended", unit="{run}", description="Runs ended, by status."
        )
        self.step_duration = seconds(
            "reactor.step.duration", "Duration of one step attempt.", _FAST_BUCKETS
        )
        self.breaker_state: Gauge = meter.create_gauge(
            "reactor.breaker.state",
            description="Circuit breaker state per host and model: 0 closed, 1 half-open, 2 open.",
        )
        self.queue_depth: Gauge = meter.create_gauge(
            "reactor.host.queue.depth", unit="{request}",
            description="Requests waiting for one of a model host's slots.",
        )  # fmt: skip
        self.journal_commit = seconds(
            "reactor.journal.commit.duration", "Duration of one journal group commit.",
            _FAST_BUCKETS,
        )  # fmt: skip


class _State:
    __slots__ = ("instruments", "provider")

    def __init__(self) -> None:
        self.provider: MeterProvider | None = None
        self.instruments: Instruments | None = None


_state = _State()
_lock = threading.Lock()


def instruments() -> Instruments | None:
    """The instruments, or ``None`` when metrics are off (check it before measuring)."""
    return _state.instruments


def configure_metrics(
    *,
    service_name: str | None = None,
    exporter: ExporterName | None = None,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    reader: MetricReader | None = None,
    interval_s: float | None = None,
) -> MeterProvider | None:
    """Turn metrics on (or off) for the whole process.

    Arguments win over the standard variables: ``exporter`` / ``OTEL_METRICS_EXPORTER``
    (``otlp``, ``console`` or ``none``; default ``none`` unless an OTLP endpoint variable
    is set), the OTLP protocol from ``OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`` /
    ``OTEL_EXPORTER_OTLP_PROTOCOL``, ``endpoint`` / ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``
    / ``OTEL_EXPORTER_OTLP_ENDPOINT``, and the export interval ``interval_s`` /
    ``OTEL_METRIC_EXPORT_INTERVAL`` (milliseconds; 60 s by default).

    Args:
        service_name: ``service.name`` (as for tracing: ``reactor-swarm`` unless set).
        exporter: Which exporter to build.
        endpoint: OTLP collector address.
        headers: Extra OTLP headers.
        reader: An extra reader (tests pass an ``InMemoryMetricReader``); given alone,
            it is the only one.
        interval_s: Seconds between exports of the periodic reader.

    Returns:
        The provider, or ``None`` when metrics end up off.

    Raises:
        TracingConfigError: An unknown exporter or protocol name.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        shutdown_metrics()
        return None
    names = exporter_names(
        exporter,
        "OTEL_METRICS_EXPORTER",
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    readers: list[MetricReader] = []
    millis = None if interval_s is None else interval_s * 1000.0
    for name in names:
        built = _build_exporter(name, endpoint, headers, explicit=exporter is not None)
        if built is not None:
            readers.append(PeriodicExportingMetricReader(built, export_interval_millis=millis))
    if reader is not None:
        readers.append(reader)
    if not readers:
        shutdown_metrics()
        return None
    provider = MeterProvider(
        metric_readers=readers,
        resource=resource(service_name),
        shutdown_on_exit=False,  # otel._telemetry flushes at exit, with a deadline
    )
    made = Instruments(provider.get_meter(INSTRUMENTATION, VERSION))
    with _lock:
        previous = _state.provider
        _state.provider = provider
        _state.instruments = made
    if previous is not None:
        bounded_shutdown([previous.shutdown], what="metrics")
    return provider


def shutdown_metrics(timeout: float = 1.0) -> None:
    """Export what was measured and stop; metrics are off afterwards (waits ≤ ``timeout`` s)."""
    with _lock:
        previous = _state.provider
        _state.provider = None
        _state.instruments = None
    if previous is not None:
        bounded_shutdown([previous.shutdown], what="metrics", timeout=timeout)


def _build_exporter(
    name: str, endpoint: str | None, headers: Mapping[str, str] | None, *, explicit: bool
) -> MetricExporter | None:
    if name == "otlp":
        name = _protocol("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
    match name:
        case "none":
            return None
        case "console":
            return ConsoleMetricExporter(out=sys.stdout)
        case "otlp-http":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
                OTLPMetricExporter as HttpExporter,
            )

            url = endpoint
            if url is not None and not url.rstrip("/").endswith("/v1/metrics"):
                url = url.rstrip("/") + "/v1/metrics"
            return HttpExporter(endpoint=url, headers=dict(headers or {}))
        case "otlp-grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415
                OTLPMetricExporter as GrpcExporter,
            )

            return GrpcExporter(endpoint=endpoint, headers=dict(headers or {}) or None)
        case _:
            source = "exporter" if explicit else "OTEL_METRICS_EXPORTER"
            msg = (
                f"metrics {source}={name!r} is not one of otlp, otlp-http, otlp-grpc, console, none"
            )
            raise TracingConfigError(msg)


def _protocol(variable: str) -> str:
    protocol = (
        os.environ.get(variable) or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    ).strip()
    if protocol == "http/protobuf":
        return "otlp-http"
    if protocol == "grpc":
        return "otlp-grpc"
    msg = f"{variable} / OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not one of http/protobuf, grpc"
    raise TracingConfigError(msg)
