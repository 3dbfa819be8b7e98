"""A demo-like run exported over OTLP/HTTP to a loopback receiver that decodes it.

The run has several ``ask`` steps (one retried after a server error) and a failing
step. What the receiver gets is what Jaeger would show: exactly one trace, the run's
span at its root, a span per step attempt under it, a ``chat {model}`` CLIENT span
under each ask attempt with the GenAI attributes, and no actor bookkeeping at all. The
fake LLM server saw each chat span as its caller (``traceparent``), and the metrics
arrived under the GenAI conventions' names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import otel
from actors import System
from actors.llm import Completion, HostConfig
from actors.testing import FakeServer, Fault
from dsl import Input, Reactor, ask, step
from reactor.app import Engine
from reactor.run import RunFailedError
from tests.support.hosts import start_host
from tests.support.otlp import OtlpReceiver, attributes


class Brief(Reactor):
    """Two analysts in parallel (one on a flaky model), an editor, then a failing report."""

    topic = Input(str)

    @step
    def question(topic: str) -> str:
        return f"Consider {topic}."

    optimist = ask("{question} Argue for it.", model="fake-small", max_tokens=60)
    sceptic = ask("{question} Argue against it.", model="fake-large", max_retries=1, backoff=0)
    editor = ask(
        "Combine: {optimist.content} / {sceptic.content}", model="fake-small", temperature=0.3
    )

    @step
    def report(editor: Completion) -> str:
        msg = "the printer is on fire"
        raise RuntimeError(msg)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """A loopback OTLP receiver, with the standard variables pointing at it.

    The test shuts telemetry down (flushing it) itself; this only makes sure it is off.
    """
    with OtlpReceiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.endpoint)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "otlp-test")
        monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
        monkeypatch.delenv("OTEL_METRICS_EXPORTER", raising=False)
        try:
            yield running
        finally:
            otel.shutdown_telemetry()


def _hex(raw: bytes) -> str:
    return raw.hex()


def test_a_demo_like_run_is_one_readable_trace_with_metrics(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """One trace: run → step attempts → chat spans; GenAI attributes; traceparent; metrics."""
    otel.configure_telemetry()
    with FakeServer("openai") as server, System(name="otlp", default_timeout=10.0) as system:
        server.inject(Fault(status=500, model="fake-large", times=1))
        start_host(system, HostConfig(url=server.url, protocol="openai", timeout_s=5.0))
        hosts = {"fake-small": "local", "fake-large": "local"}
        with Engine(system, db_path=tmp_path / "runs.db", logging=False, hosts=hosts) as engine:
            handle = engine.start(Brief, {"topic": "owls"})
            with pytest.raises(RunFailedError):
                handle.result(20)
        calls = [c for c in server.calls if c.path.endswith("/chat/completions")]
    assert otel.shutdown_telemetry()  # everything reached the receiver within a second

    received = receiver.received
    spans = received.spans
    names = Counter(s.name for s in spans)
    assert names == {
        "reactor.run Brief": 1,
        "reactor.step question": 1,
        "reactor.step optimist": 1,
        "reactor.step sceptic": 2,  # the 500, then the retry
        "reactor.step editor": 1,
        "reactor.step report": 1,
        "chat fake-small": 2,
        "chat fake-large": 2,
    }
    assert len({s.trace_id for s in spans}) == 1  # exactly one trace for the run

    by_id = {s.span_id: s for s in spans}
    run = next(s for s in spans if s.name == "reactor.run Brief")
    assert run.parent_span_id == b""  # the root
    for span in spans:
        if span.name.startswith("reactor.step"):
            assert by_id[span.parent_span_id] is run
        if span.name.startswith("chat "):
            parent = by_id[span.parent_span_id]
            assert parent.name in ("reactor.step optimist", "reactor.step sceptic",
                                   "reactor.step editor")  # fmt: skip

    run_attrs = attributes(run.attributes)
    assert run_attrs["gen_ai.operation.name"] == "invoke_workflow"
    assert run_attrs["gen_ai.workflow.name"] == "Brief"
    assert run_attrs["error.type"] == "RuntimeError"
    assert run_attrs["reactor.run_id"] == handle.run_id
    report = next(s for s in spans if s.name == "reactor.step report")
    assert attributes(report.attributes)["error.type"] == "RuntimeError"

    chats = [s for s in spans if s.name.startswith("chat ")]
    ok = [s for s in chats if s.status.code != s.status.STATUS_CODE_ERROR]
    failed = [s for s in chats if s.status.code == s.status.STATUS_CODE_ERROR]
    assert len(ok) == 3
    assert [attributes(s.attributes)["error.type"] for s in failed] == ["server_error"]
    for span in ok:
        attrs = attributes(span.attributes)
        assert span.kind == span.SPAN_KIND_CLIENT
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.request.model"] == span.name.removeprefix("chat ")
        assert attrs["gen_ai.response.id"].startswith("chatcmpl-")
        assert attrs["gen_ai.usage.input_tokens"] > 0
        assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
        assert attrs["server.address"] == "127.0.0.1"
    editor_chat = next(s for s in ok if by_id[s.parent_span_id].name == "reactor.step editor")
    assert attributes(editor_chat.attributes)["gen_ai.request.temperature"] == 0.3

    # The server saw each chat span as its caller.
    sent = {c.headers.get("traceparent", c.headers.get("Traceparent", "")) for c in calls}
    expected = {f"00-{_hex(s.trace_id)}-{_hex(s.span_id)}" for s in chats}
    assert {t.rsplit("-", 1)[0] for t in sent} == expected

    # The resource and the scope name the service and its version.
    assert {r["service.name"] for r in received.span_resources} == {"otlp-test"}
    assert all(r["service.version"] for r in received.span_resources)
    assert set(received.scopes) == {("reactor-swarm", otel.VERSION)}

    metrics: dict[str, list[Any]] = received.metrics
    durations = metrics["gen_ai.client.inference.duration"]
    assert received.metric_units["gen_ai.client.inference.duration"] == "s"
    assert sum(p.count for p in durations) == 4
    assert sum(p.as_int for p in metrics["gen_ai.client.inference.usage.input_tokens"]) > 0
    assert received.metric_units["gen_ai.client.inference.usage.input_tokens"] == "{token}"
    # The conventions' older family too: chat under operation.duration and token.usage.
    chat_durations = [
        p
        for p in metrics["gen_ai.client.operation.duration"]
        if attributes(p.attributes)["gen_ai.operation.name"] == "chat"
    ]
    assert sum(p.count for p in chat_durations) == 4
    usage = metrics["gen_ai.client.token.usage"]
    assert received.metric_units["gen_ai.client.token.usage"] == "{token}"
    kinds = {attributes(p.attributes)["gen_ai.token.type"] for p in usage}
    assert kinds == {"input", "output"}
    assert sum(p.count for p in usage) == 6  # input and output for each of 3 answers
    started = metrics["reactor.runs.started"]
    assert [(attributes(p.attributes)["reactor.name"], p.as_int) for p in started] == [("Brief", 1)]
    ended = metrics["reactor.runs.ended"]
    assert [attributes(p.attributes)["reactor.status"] for p in ended] == ["failed"]
    assert sum(p.count for p in metrics["reactor.step.duration"]) == 6  # one per attempt
    assert sum(p.count for p in metrics["reactor.journal.commit.duration"]) > 0
    assert "reactor.host.queue.depth" in metrics
