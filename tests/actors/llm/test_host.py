"""The ModelHost actor against a real loopback fake server (OpenAI-compatible).

Covers the ask path from sync and async code, the concurrency limit and its queue,
deadlines, breaker transitions (and what counts), cancellation, statistics and cost,
streaming, inventory, load/unload, and the GenAI spans.
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.trace import SpanKind

import otel
from actors import Actor, AskError, Failure, FailureKind, System
from actors._reply import Callback
from actors.llm import BreakerConfig, HostConfig, ModelHost, PriceConfig
from actors.llm._messages import (
    Admission,
    AdmitModel,
    BreakerState,
    BreakerTransition,
    CancelChat,
    ChatRequest,
    Completion,
    HostStats,
    HostStatsQuery,
    InventoryQuery,
    LoadModel,
    ModelLoadChanged,
    UnloadModel,
)
from actors.testing import FakeModel, FakeServer, Fault, Reply
from otel.testing import InMemorySpanExporter
from tests.support.hosts import chat, chat_async, start_host, start_host_async


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer("openai", models=["fake-small", "fake-large"]) as server:
        yield server


def settings(server: FakeServer, **overrides: object) -> HostConfig:
    base: dict[str, object] = {
        "url": server.url,
        "protocol": "openai",
        "max_parallel": 4,
        "prices": {"fake-small": PriceConfig(input_per_mtok=1.0, output_per_mtok=2.0)},
        "connect_timeout_s": 1.0,
        "timeout_s": 5.0,
        "stream_idle_timeout_s": 1.0,
    }
    base.update(overrides)
    return HostConfig.model_validate(base)


def transitions(system: System) -> queue.Queue[BreakerTransition]:
    events: queue.Queue[BreakerTransition] = queue.Queue()
    system.bus.subscribe(BreakerTransition, events)
    return events


def test_sync_chat_returns_a_typed_completion_with_cost(system: System, fake: FakeServer) -> None:
    start_host(system, settings(fake))
    fake.script(Reply(text="Paris", input_tokens=10, output_tokens=4))
    answer = chat(system, "local", "Capital of France?", model="fake-small")
    assert isinstance(answer, Completion)
    assert answer.content == "Paris"
    assert answer.host == "local"
    assert answer.provider == "openai"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (10, 4)
    assert answer.cost_usd == pytest.approx((10 * 1.0 + 4 * 2.0) / 1e6)
    assert answer.latency_s > 0
    unpriced = chat(system, "local", "Hi", model="fake-large")
    assert unpriced.cost_usd is None


async def test_async_chat(system: System, fake: FakeServer) -> None:
    await start_host_async(system, settings(fake))
    answers = await asyncio.gather(
        *(chat_async(system, "local", f"q{i}", model="fake-small") for i in range(5))
    )
    assert [a.content.endswith(f"q{i}") for i, a in enumerate(answers)] == [True] * 5


def test_a_priced_model_without_reported_usage_is_never_silently_free(
    system: System, fake: FakeServer
) -> None:
    start_host(system, settings(fake))
    fake.script(Reply(text="twelve chars", input_tokens=0, output_tokens=0))
    answer = chat(system, "local", "x", model="fake-small")
    assert answer.cost_usd is not None
    assert answer.cost_usd > 0
    assert answer.extras["usage_estimated"] is True


async def test_max_parallel_is_respected_and_the_rest_queue(system: System) -> None:
    with FakeServer("openai", models=["m"], latency=0.1) as server:
        await start_host_async(system, settings(server, max_parallel=2))
        answers = await asyncio.gather(
            *(chat_async(system, "local", "x", model="m") for _ in range(6))
        )
        assert len(answers) == 6
        assert server.peak_in_flight == 2


def test_a_request_whose_deadline_passes_in_the_queue_is_never_sent(
    system: System, fake: FakeServer
) -> None:
    start_host(system, settings(fake, max_parallel=1))
    fake.inject(Fault(latency=0.5))
    first = system.lookup("local")
    slow = ChatRequest.prompt("fake-small", "slow")
    answers: queue.Queue[object] = queue.Queue()
    threading_ask(first, slow, answers, timeout=5)
    time.sleep(0.05)
    with pytest.raises(AskError) as caught:
        chat(system, "local", "late", model="fake-small", timeout=0.2)
    assert caught.value.kind is FailureKind.TIMEOUT
    assert isinstance(answers.get(timeout=5), Completion)
    time.sleep(0.05)
    assert [c.body["messages"][-1]["content"] for c in fake.calls] == ["slow"]


def threading_ask(
    ref: object, request: ChatRequest, out: queue.Queue[object], timeout: float
) -> None:
    import threading

    def run() -> None:
        try:
            out.put(ref.ask(request, timeout=timeout))  # type: ignore[attr-defined]
        except AskError as exc:
            out.put(exc.failure)

    threading.Thread(target=run, daemon=True).start()


def test_a_full_queue_refuses_at_once(system: System, fake: FakeServer) -> None:
    start_host(system, settings(fake, max_parallel=1, queue_limit=1))
    fake.inject(Fault(latency=0.3, times=2))
    out: queue.Queue[object] = queue.Queue()
    threading_ask(system.lookup("local"), ChatRequest.prompt("fake-small", "a"), out, 5)
    time.sleep(0.05)
    threading_ask(system.lookup("local"), ChatRequest.prompt("fake-small", "b"), out, 5)
    time.sleep(0.05)
    with pytest.raises(AskError) as caught:
        chat(system, "local", "c", model="fake-small")
    assert caught.value.kind is FailureKind.OVERLOADED
    assert "queue full" in caught.value.failure.message
    assert isinstance(out.get(timeout=5), Completion)
    assert isinstance(out.get(timeout=5), Completion)


def test_breaker_opens_fails_fast_then_probes_and_closes(system: System, fake: FakeServer) -> None:
    events = transitions(system)
    breaker = BreakerConfig(failure_threshold=3, open_s=0.3, min_calls=100, window=100)
    start_host(system, settings(fake, breaker=breaker))
    fake.inject(Fault(status=500, times=3))
    for _ in range(3):
        with pytest.raises(AskError) as caught:
            chat(system, "local", "x", model="fake-small")
        assert caught.value.kind is FailureKind.SERVER_ERROR
    opened = events.get(timeout=2)
    assert (opened.model, opened.from_state, opened.to_state) == (
        "fake-small",
        BreakerState.CLOSED,
        BreakerState.OPEN,
    )
    assert opened.open_for_s == pytest.approx(0.3)
    sent = len(fake.calls)
    with pytest.raises(AskError) as fast:
        chat(system, "local", "x", model="fake-small")
    assert fast.value.kind is FailureKind.CIRCUIT_OPEN
    assert fast.value.failure.retry_after is not None
    assert len(fake.calls) == sent  # failed fast: never reached the server
    # Another model on the same host is unaffected.
    assert chat(system, "local", "x", model="fake-large").content
    time.sleep(0.35)
    assert chat(system, "local", "x", model="fake-small").content
    assert [events.get(timeout=2).to_state for _ in range(2)] == [
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_bad_requests_do_not_open_the_breaker(system: System, fake: FakeServer) -> None:
    start_host(system, settings(fake, breaker=BreakerConfig(failure_threshold=2)))
    fake.inject(Fault(status=400, times=4))
    for _ in range(4):
        with pytest.raises(AskError) as caught:
            chat(system, "local", "x", model="fake-small")
        assert caught.value.kind is FailureKind.BAD_REQUEST
    stats: HostStats = system.lookup("local").ask(HostStatsQuery())
    (small,) = [m for m in stats.models if m.model == "fake-small"]
    assert small.breaker is BreakerState.CLOSED
    assert small.failures_by_kind == {"bad_request": 4}


def test_a_connection_failure_counts_for_every_model_of_the_host(system: System) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    events = transitions(system)
    start_host(
        system,
        HostConfig(
            url=f"http://127.0.0.1:{port}",
            protocol="openai",
            breaker=BreakerConfig(failure_threshold=2, min_calls=100, window=100),
        ),
        name="gone",
    )
    for model in ("a", "b"):
        with pytest.raises(AskError) as caught:
            chat(system, "gone", "x", model=model)
        assert caught.value.kind is FailureKind.CONNECTION
    # "a" failed once itself; b's connection failure counted for it too, so it is open.
    opened = events.get(timeout=2)
    assert (opened.model, opened.to_state) == ("a", BreakerState.OPEN)
    with pytest.raises(AskError) as fast:
        chat(system, "gone", "x", model="a")
    assert fast.value.kind is FailureKind.CIRCUIT_OPEN


async def test_cancel_an_in_flight_request(system: System, fake: FakeServer) -> None:
    ref = await start_host_async(system, settings(fake))
    fake.inject(Fault(hang=True))
    request = ChatRequest.prompt("fake-small", "never")
    pending = asyncio.ensure_future(ref.ask_async(request, timeout=10))
    for _ in range(100):
        if fake.in_flight:
            break
        await asyncio.sleep(0.01)
    assert await ref.ask_async(CancelChat(request_id=request.request_id))
    with pytest.raises(AskError) as caught:
        await pending
    assert caught.value.kind is FailureKind.CANCELLED
    # The slot is free again and the breaker did not count the cancellation.
    answer = await chat_async(system, "local", "next", model="fake-small")
    assert answer.content
    stats: HostStats = await ref.ask_async(HostStatsQuery())
    (small,) = [m for m in stats.models if m.model == "fake-small"]
    assert small.failures == 0
    assert small.breaker is BreakerState.CLOSED


def test_statistics_per_model(system: System, fake: FakeServer) -> None:
    start_host(system, settings(fake))
    for i in range(5):
        fake.script(Reply(text="a b c d", input_tokens=3, output_tokens=4))
        chat(system, "local", f"q{i}", model="fake-small")
    fake.inject(Fault(status=503))
    with pytest.raises(AskError):
        chat(system, "local", "x", model="fake-small")
    stats: HostStats = system.lookup("local").ask(HostStatsQuery())
    assert (stats.host, stats.in_flight, stats.queued, stats.max_parallel) == ("local", 0, 0, 4)
    (small,) = [m for m in stats.models if m.model == "fake-small"]
    assert (small.requests, small.successes, small.failures) == (6, 5, 1)
    assert small.success_rate == pytest.approx(5 / 6)
    assert small.latency_ewma_s is not None
    assert small.latency_p95_s is not None
    assert small.tokens_per_s is not None
    assert (small.input_tokens, small.output_tokens) == (15, 20)
    assert small.cost_usd == pytest.approx(5 * (3 * 1.0 + 4 * 2.0) / 1e6)
    assert small.failures_by_kind == {"overloaded": 1}


def test_streaming_on_the_wire_measures_time_to_first_token(system: System) -> None:
    with FakeServer("openai", models=["m"], ttft=0.05) as server:
        start_host(system, settings(server))
        server.script(Reply(text="one two three"))
        answer = chat(system, "local", ChatRequest.prompt("m", "count", stream=True))
        assert answer.content == "one two three"
        assert answer.ttft_s is not None
        assert answer.ttft_s >= 0.04


def test_load_and_unload_through_the_host(system: System) -> None:
    models = [FakeModel("qwen", loaded=False), FakeModel("llama", loaded=True)]
    with FakeServer("lmstudio", models=models) as server:
        changes: queue.Queue[ModelLoadChanged] = queue.Queue()
        system.bus.subscribe(ModelLoadChanged, changes)
        ref = start_host(system, settings(server, protocol="lmstudio"))
        inventory = ref.ask(InventoryQuery())
        assert {m.id: m.loaded for m in inventory.models} == {"qwen": False, "llama": True}
        assert ref.ask(LoadModel(model="qwen")).loaded is True
        assert server.models["qwen"].loaded
        assert ref.ask(UnloadModel(model="llama")).loaded is False
        assert not server.models["llama"].loaded
        assert [(e.model, e.loaded) for e in (changes.get(timeout=2), changes.get(timeout=2))] == [
            ("qwen", True),
            ("llama", False),
        ]
        cached = ref.ask(InventoryQuery())
        assert {m.id: m.loaded for m in cached.models} == {"qwen": True, "llama": False}


def test_chat_spans_follow_the_genai_conventions(
    system: System, fake: FakeServer, spans: InMemorySpanExporter
) -> None:
    """``chat {model}`` CLIENT spans carry the request, response and usage attributes."""
    start_host(system, settings(fake))
    fake.script(Reply(text="ok", input_tokens=7, output_tokens=2))
    with otel.tracer().start_as_current_span("caller") as caller:
        chat(
            system, "local", ChatRequest.prompt("fake-small", "hi", temperature=0.2, max_tokens=50)
        )
    fake.inject(Fault(status=429, retry_after=1))
    with pytest.raises(AskError):
        chat(system, "local", "again", model="fake-small")
    from otel.testing import wait_for_spans

    finished = wait_for_spans(spans, ["chat fake-small"])
    deadline = time.monotonic() + 5
    while sum(s.name == "chat fake-small" for s in finished) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
        finished = tuple(spans.get_finished_spans())
    ok, failed = [s for s in finished if s.name == "chat fake-small"]
    attrs = dict(ok.attributes or {})
    assert attrs[otel.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[otel.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[otel.GEN_AI_REQUEST_MODEL] == "fake-small"
    assert attrs[otel.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attrs[otel.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert attrs[otel.GEN_AI_USAGE_INPUT_TOKENS] == 7
    assert attrs[otel.GEN_AI_USAGE_OUTPUT_TOKENS] == 2
    assert attrs[otel.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == fake.port
    assert str(attrs[otel.GEN_AI_RESPONSE_ID]).startswith("chatcmpl-")
    assert attrs[otel.OPENAI_RESPONSE_SERVICE_TIER] == "default"
    assert attrs[otel.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] == "fp_fake"
    assert otel.GEN_AI_REQUEST_STREAM not in attrs  # set only when the request streams
    assert otel.GEN_AI_INPUT_MESSAGES not in attrs  # content capture is off by default
    assert ok.kind is SpanKind.CLIENT
    assert dict(failed.attributes or {})["error.type"] == "rate_limited"
    assert not failed.status.is_ok
    # The span is the child of the caller's (no actor-message spans in between).
    assert ok.parent is not None
    assert ok.parent.span_id == caller.get_span_context().span_id


def test_breaker_transitions_are_span_events(
    system: System, fake: FakeServer, spans: InMemorySpanExporter
) -> None:
    events = transitions(system)
    start_host(system, settings(fake, breaker=BreakerConfig(failure_threshold=1)))
    fake.inject(Fault(status=503))
    with pytest.raises(AskError):
        chat(system, "local", "x", model="fake-small")
    assert events.get(timeout=2).to_state is BreakerState.OPEN
    deadline = time.monotonic() + 5
    found: list[dict[str, object]] = []
    while not found and time.monotonic() < deadline:
        found = [
            dict(event.attributes or {})
            for span in spans.get_finished_spans()
            for event in span.events
            if event.name == "breaker.transition"
        ]
        time.sleep(0.01)
    assert found == [
        {
            otel.GEN_AI_REQUEST_MODEL: "fake-small",
            "breaker.from": "closed",
            "breaker.to": "open",
            "breaker.reason": "1 consecutive failures (last: overloaded)",
        }
    ]


def test_a_host_without_a_protocol_is_refused_naming_it() -> None:
    """A section whose protocol discovery never filled in cannot make a host spec."""
    with pytest.raises(ValueError, match=r"'nameless'.*no protocol"):
        ModelHost.spec("nameless", HostConfig(url="http://127.0.0.1:9"))


def test_a_freed_slot_starts_the_waiting_request_while_the_hosts_thread_is_busy(
    system: System, fake: FakeServer
) -> None:
    """Slots pass from call to call on the I/O loop: a thread host's thread is not in between."""
    spec = ModelHost.spec("local", settings(fake, max_parallel=1))
    system.spawn(dataclasses.replace(spec, on_loop=False))
    ref = system.lookup("local")
    fake.inject(Fault(hang=True))
    out: queue.Queue[object] = queue.Queue()
    threading_ask(ref, ChatRequest.prompt("fake-small", "first"), out, 1.0)  # ends at its deadline
    threading_ask(ref, ChatRequest.prompt("fake-small", "second"), out, 10.0)
    give_up = time.monotonic() + 5.0
    while (ref.ask(HostStatsQuery()).queued, fake.in_flight) != (1, 1):
        assert time.monotonic() < give_up, "both requests admitted, the first one sent"
        time.sleep(0.01)

    # Occupy the host's thread until the second request has reached the server.
    busy, release = threading.Event(), threading.Event()

    def occupy(_: object) -> None:
        busy.set()
        release.wait(10.0)

    assert ref._target is not None
    ref._target.tell(Callback(occupy, None, None, "occupied by the test"))
    assert busy.wait(5.0)
    try:
        while len(fake.calls) < 2:
            assert time.monotonic() < give_up + 5.0, "the second request never went out"
            time.sleep(0.01)
    finally:
        release.set()
    answers = [out.get(timeout=5), out.get(timeout=5)]
    kinds = sorted(a.kind.value if isinstance(a, Failure) else type(a).__name__ for a in answers)
    assert kinds == ["Completion", "timeout"]
    assert [c.body["messages"][-1]["content"] for c in fake.calls] == ["first", "second"]


def test_a_host_runs_on_the_io_loop_and_answers_from_there(
    system: System, fake: FakeServer
) -> None:
    """Spawned or from its spec, a host takes turns on the loop: a chat takes no thread hop."""
    ref = start_host(system, settings(fake))
    system.spawn(ModelHost.spec("other", settings(fake)))
    for host in (ref, system.lookup("other")):
        assert host._target is not None
        assert host._target.actor_urn.startswith("urn:loop:")  # no thread of its own
        answer = host.ask(ChatRequest.prompt("fake-small", "hi"))
        assert isinstance(answer, Completion)
        stats = host.ask(HostStatsQuery())
        assert stats.models[0].requests == 1


class _Admitting(Actor[AdmitModel]):
    """A stand-in ResourceMonitor on a thread of its own: admits every model, counting."""

    def __init__(self, asked: queue.Queue[AdmitModel]) -> None:
        super().__init__()
        self.asked = asked

    def receive(self, message: AdmitModel) -> Admission:
        self.asked.put(message)
        return Admission(host=message.host, model=message.model)


def test_a_host_on_the_loop_asks_its_monitor_before_an_unloaded_model_is_used(
    system: System,
) -> None:
    """The admission ask leaves the loop for the monitor's thread and comes back."""
    asked: queue.Queue[AdmitModel] = queue.Queue()
    monitor = system.spawn(_Admitting, name="monitor", args=(asked,))
    with FakeServer("lmstudio", models=[FakeModel("cold", loaded=False)]) as server:
        host = start_host(system, settings(server, protocol="lmstudio", prices={}), monitor=monitor)
        inventory = host.ask(InventoryQuery())
        assert [(m.id, m.loaded) for m in inventory.models] == [("cold", False)]
        answer = host.ask(ChatRequest.prompt("cold", "hi"))
        assert isinstance(answer, Completion)
        assert asked.get(timeout=5).model == "cold"
