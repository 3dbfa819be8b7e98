"""A loopback OTLP/HTTP receiver that decodes what it is sent (traces, metrics, logs).

It stands in for a collector (or Jaeger with OTLP enabled): the exporters post
protobuf to ``/v1/traces``, ``/v1/metrics`` and ``/v1/logs``, and the receiver keeps
the decoded spans, metric names with their data points, and log records.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


@dataclass
class Received:
    """What the receiver decoded so far (guarded by ``lock``)."""

    spans: list[Any] = field(default_factory=list)
    span_resources: list[dict[str, Any]] = field(default_factory=list)
    scopes: list[tuple[str, str]] = field(default_factory=list)
    metrics: dict[str, list[Any]] = field(default_factory=dict)
    metric_units: dict[str, str] = field(default_factory=dict)
    logs: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)


def attributes(items: Any) -> dict[str, Any]:
    """A protobuf ``KeyValue`` list as a plain dict (arrays become tuples)."""
    found: dict[str, Any] = {}
    for item in items:
        value = item.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            values = value.array_value.values
            found[item.key] = tuple(
                getattr(v, v.WhichOneof("value") or "string_value") for v in values
            )
        elif kind is not None:
            found[item.key] = getattr(value, kind)
    return found


class OtlpReceiver:
    """Serve OTLP/HTTP on 127.0.0.1 (a free port); use as a context manager."""

    def __init__(self) -> None:
        self.received = Received()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    _traces(received, body)
                    reply = trace_service_pb2.ExportTraceServiceResponse()
                elif self.path == "/v1/metrics":
                    _metrics(received, body)
                    reply = metrics_service_pb2.ExportMetricsServiceResponse()
                else:
                    _logs(received, body)
                    reply = logs_service_pb2.ExportLogsServiceResponse()
                payload = reply.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL to give ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def span_names(self) -> list[str]:
        """Every received span's name."""
        with self.received.lock:
            return [s.name for s in self.received.spans]


def _traces(received: Received, body: bytes) -> None:
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
    with received.arrived:
        for resource in request.resource_spans:
            resource_attrs = attributes(resource.resource.attributes)
            for scope in resource.scope_spans:
                received.scopes.append((scope.scope.name, scope.scope.version))
                for span in scope.spans:
                    received.spans.append(span)
                    received.span_resources.append(resource_attrs)
        received.arrived.notify_all()


def _metrics(received: Received, body: bytes) -> None:
    request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
    with received.arrived:
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    points = list(getattr(metric, kind).data_points) if kind else []
                    received.metrics.setdefault(metric.name, []).extend(points)
                    received.metric_units[metric.name] = metric.unit
        received.arrived.notify_all()


def _logs(received: Received, body: bytes) -> None:
    request = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
    with received.arrived:
        for resource in request.resource_logs:
            for scope in resource.scope_logs:
                received.logs.extend(scope.log_records)
        received.arrived.notify_all()
