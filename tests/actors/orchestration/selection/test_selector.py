"""The Selector actor over real loopback HTTP: routes, records, learns, persists, traces.

Fake servers, real ModelHosts, the real catalog watcher and a real SQLite store; nothing
is mocked. Tests wait on bus events and catalog changes, never on sleeps.
"""

from __future__ import annotations

import functools
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import ActorRestarted, AskError, FailureKind, Ref, System
from actors.llm import BreakerState, Catalog, ChatRequest, Completion, Config, Fleet, start_fleet
from actors.orchestration import (
    Feedback,
    HistoryLoaded,
    HistoryQuery,
    ModelClassifier,
    Observed,
    Policy,
    SaveHistory,
    SelectChat,
    SelectModel,
    Selector,
    TaskFeatures,
)
from actors.orchestration.selection import CLASSIFIER_PROMPT
from actors.store import Store
from actors.testing import FakeModel, FakeServer, Fault, Reply
from otel.testing import InMemorySpanExporter, wait_for_spans


@pytest.fixture
def servers() -> Iterator[tuple[FakeServer, FakeServer]]:
    with (
        FakeServer("ollama", models=[FakeModel("small", context_length=2048)]) as ollama,
        FakeServer("openai", models=[FakeModel("large", context_length=4096)]) as openai,
    ):
        yield ollama, openai


def fleet_of(system: System, ollama: FakeServer, openai: FakeServer) -> Fleet:
    config = Config.model_validate(
        {
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
            "hosts": {
                "local": {
                    "url": ollama.url,
                    "protocol": "ollama",
                    "breaker": {"failure_threshold": 1},
                },
                "cloud": {
                    "url": openai.url,
                    "protocol": "openai",
                    "breaker": {"failure_threshold": 1},
                },
            },
            "prices": {"cloud/large": {"input_per_mtok": 1, "output_per_mtok": 4}},
            "models": {"large": {"context_length": 4096}},  # OpenAI's list does not say
        }
    )
    return start_fleet(system, config)


def _is_open(catalog: Catalog, *, name: str) -> bool:
    return catalog.resolve(name).breaker is BreakerState.OPEN


def start_selector(system: System, fleet: Fleet, name: str = "selector", **kwargs: Any) -> Ref[Any]:
    return system.spawn(Selector, name=name, args=(fleet.catalog,), kwargs=kwargs)


def ask(selector: Ref[Any], prompt: str = "hello", **fields: Any) -> Completion:
    answer: Completion = selector.ask(SelectChat(request=ChatRequest.prompt("", prompt), **fields))
    return answer


def test_a_request_goes_to_the_chosen_model_with_the_decision_in_its_result(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """The completion names the decision: chosen model, reason, every model considered."""
    ollama, openai = servers
    selector = start_selector(system, fleet_of(system, ollama, openai))
    answer = ask(selector, "Write a python function", candidates=("cloud/large",))
    selection = answer.extras["selection"]
    assert (answer.host, answer.model) == ("cloud", "large")
    assert selection["chosen"] == "cloud/large"
    assert selection["features"]["task_type"] == "code"
    assert selection["reward"] == 1.0
    assert [c["model"] for c in selection["considered"]] == ["cloud/large"]
    assert [c.model for c in openai.calls if c.model] == ["large"]
    assert not [c for c in ollama.calls if c.model]


def test_only_choosing_answers_with_a_decision_and_calls_nothing(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """SelectModel returns the decision without asking any model."""
    ollama, openai = servers
    selector = start_selector(system, fleet_of(system, ollama, openai))
    choice = selector.ask(SelectModel(request=ChatRequest.prompt("", "hi"), policy="cheapest"))
    assert choice.decision.qualified in {"local/small", "cloud/large"}
    assert choice.decision.policy == "cheapest"
    assert not [c for s in servers for c in s.calls if c.model]


def test_a_failing_model_is_blamed_and_avoided(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """server_error counts as reward 0; with learning, the healthy model takes over."""
    ollama, openai = servers
    fleet = fleet_of(system, ollama, openai)
    ollama.inject(Fault(status=500, times=None))
    policy = Policy(name="steady", kind="best", explore=False)
    selector = start_selector(system, fleet, policies={"steady": policy})
    with pytest.raises(AskError) as caught:
        ask(selector, policy="steady", candidates=("local/small", "cloud/large"))  # tie: first
    failure = caught.value.failure
    assert failure.kind is FailureKind.SERVER_ERROR
    assert "selected local/small" in failure.message
    assert msgspec.json.decode(failure.details["selection"])["reward"] == 0.0
    answer = ask(selector, policy="steady", candidates=("local/small", "cloud/large"))
    assert answer.host == "cloud"
    report = selector.ask(HistoryQuery())
    assert report.models["local/small"].failures == {"server_error": 1.0}
    assert report.models["cloud/large"].success_rate == 1.0


def test_open_breakers_everywhere_fail_circuit_open_before_any_request(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """Every candidate's breaker open: the answer is circuit_open, naming each rejection."""
    ollama, openai = servers
    fleet = fleet_of(system, ollama, openai)
    for server, host, model in ((ollama, "local", "small"), (openai, "cloud", "large")):
        server.inject(Fault(status=500))
        with pytest.raises(AskError):
            system.lookup(host).ask(ChatRequest.prompt(model, "hi"))
        name = f"{host}/{model}"
        assert fleet.catalog.wait_until(functools.partial(_is_open, name=name), 10)
    sent = len(ollama.calls) + len(openai.calls)
    selector = start_selector(system, fleet)
    with pytest.raises(AskError) as caught:
        ask(selector)
    assert caught.value.failure.kind is FailureKind.CIRCUIT_OPEN
    assert "local/small: circuit breaker open" in caught.value.failure.message
    assert len(ollama.calls) + len(openai.calls) == sent


def test_a_model_whose_breaker_opened_is_probed_again_once_its_open_time_is_over(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """The Selector skips open breakers, so no call of its own would ever half-open one.

    The host half-opens it when its open time ends and says so; the Selector then sends
    the probe, which closes it.
    """
    ollama, _ = servers
    config = Config.model_validate(
        {
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
            "hosts": {
                "local": {
                    "url": ollama.url,
                    "protocol": "ollama",
                    "breaker": {"failure_threshold": 1, "open_s": 0.2},
                }
            },
        }
    )
    fleet = start_fleet(system, config)
    ollama.inject(Fault(status=500))
    with pytest.raises(AskError):
        system.lookup("local").ask(ChatRequest.prompt("small", "hi"))
    assert fleet.catalog.wait_until(functools.partial(_is_open, name="local/small"), 10)
    half_open = functools.partial(_in_state, name="local/small", state=BreakerState.HALF_OPEN)
    assert fleet.catalog.wait_until(half_open, 10), "the breaker half-opened by itself"
    selector = start_selector(system, fleet)
    answer = ask(selector, candidates=("local/small",))
    assert (answer.host, answer.model) == ("local", "small")
    closed = functools.partial(_in_state, name="local/small", state=BreakerState.CLOSED)
    assert fleet.catalog.wait_until(closed, 10)


def test_a_model_priced_per_gpu_second_is_not_taken_for_free(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """$1 per GPU-second, 30 s allowed: its worst case is $30, over a $0.01 cap; not $0."""
    ollama, openai = servers
    config = Config.model_validate(
        {
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
            "hosts": {
                "local": {"url": ollama.url, "protocol": "ollama"},
                "cloud": {"url": openai.url, "protocol": "openai"},
            },
            "prices": {
                "local/small": {"per_gpu_second": 1.0},
                "cloud/large": {"input_per_mtok": 1, "output_per_mtok": 4},
            },
            "models": {"large": {"context_length": 4096}},
        }
    )
    selector = start_selector(system, start_fleet(system, config))
    choice = selector.ask(
        SelectModel(
            request=ChatRequest.prompt("", "hi", max_tokens=100),
            policy="cheapest",
            max_cost_usd=0.01,
            deadline=time.time() + 30,
        )
    )
    assert choice.decision.qualified == "cloud/large"
    (local,) = [c for c in choice.decision.considered if c.model == "local/small"]
    assert local.rejected is not None
    assert local.rejected.startswith("costs up to $")


def test_a_restarted_host_s_models_are_candidates_again(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """A host that restarts has fresh, closed breakers: the catalog must not keep one open."""
    ollama, _ = servers
    config = Config.model_validate(
        {
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
            "hosts": {
                "local": {
                    "url": ollama.url,
                    "protocol": "ollama",
                    "breaker": {"failure_threshold": 1, "open_s": 600.0, "max_open_s": 600.0},
                }
            },
        }
    )
    fleet = start_fleet(system, config)
    restarts: queue.Queue[ActorRestarted] = queue.Queue()
    system.bus.subscribe(ActorRestarted, restarts)
    ollama.inject(Fault(status=500))
    host = system.lookup("local")
    with pytest.raises(AskError):
        host.ask(ChatRequest.prompt("small", "hi"))
    assert fleet.catalog.wait_until(functools.partial(_is_open, name="local/small"), 10)
    target = host._target
    assert target is not None
    target.stop()  # the supervisor starts it again
    assert restarts.get(timeout=10).name == "local"
    closed = functools.partial(_in_state, name="local/small", state=BreakerState.CLOSED)
    assert fleet.catalog.wait_until(closed, 10)
    answer = ask(start_selector(system, fleet), candidates=("local/small",))
    assert (answer.host, answer.model) == ("local", "small")


def _in_state(catalog: Catalog, *, name: str, state: BreakerState) -> bool:
    return catalog.resolve(name).breaker is state


def test_a_request_too_big_for_every_context_fails_before_it_is_sent(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """Prompt plus max_tokens larger than every window: context_window_exceeded, no call."""
    ollama, openai = servers
    selector = start_selector(system, fleet_of(system, ollama, openai))
    request = ChatRequest.prompt("", "word " * 100, max_tokens=5000)
    with pytest.raises(AskError) as caught:
        selector.ask(SelectChat(request=request))
    assert caught.value.failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert not [c for s in servers for c in s.calls if c.model]
    fits = selector.ask(SelectChat(request=ChatRequest.prompt("", "hi", max_tokens=3000)))
    assert fits.host == "cloud"  # only the 4096 window takes 3000 more tokens


def test_a_scorer_and_a_classifier_shape_what_is_learnt(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """The scorer's value is the reward; the classifier names the task type."""
    ollama, openai = servers

    def scorer(completion: Completion, features: TaskFeatures) -> float:
        return 0.25 if completion.host == "local" else 1.0

    async def classifier(text: str) -> str:
        return "creative"

    selector = start_selector(
        system, fleet_of(system, ollama, openai), scorer=scorer, classifier=classifier
    )
    answer = ask(selector, "What is 2+2?", candidates=("local/small",))
    selection = answer.extras["selection"]
    assert selection["reward"] == 0.25
    assert selection["features"]["task_type"] == "creative"
    report = selector.ask(HistoryQuery())
    assert report.models["local/small"].quality == 0.25


def test_feedback_replaces_the_counted_reward(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """A later score of 0 turns the answer's counted 1 into a loss, recorded as quality."""
    ollama, openai = servers
    selector = start_selector(system, fleet_of(system, ollama, openai))
    answer = ask(selector, candidates=("local/small",))
    task = answer.extras["selection"]["features"].get("task_type", "general")
    selector.tell(Feedback(model="local/small", task_type=task, score=0.0, counted=1.0))
    report = selector.ask(HistoryQuery())
    assert report.models["local/small"].quality == 0.0


def test_history_is_persisted_and_loaded_by_the_next_selector(
    system: System, servers: tuple[FakeServer, FakeServer], tmp_path: Path
) -> None:
    """SaveHistory writes a snapshot to the store; a new Selector loads it and says so."""
    ollama, openai = servers
    fleet = fleet_of(system, ollama, openai)
    store: Ref[Any] = system.spawn(Store.spec(tmp_path / "history.db"))
    loaded: queue.Queue[Any] = queue.Queue()
    system.bus.subscribe(HistoryLoaded, loaded)
    first = start_selector(system, fleet, name="first", store=store)
    for _ in range(3):
        ask(first, "Write a python script", candidates=("cloud/large",))
    assert first.ask(SaveHistory()).cells == 1  # waits for the (empty) history to be read
    assert loaded.get(timeout=10).cells == 0
    second = start_selector(system, fleet, name="second", store=store)
    event = loaded.get(timeout=10)
    assert (event.selector, event.cells) == ("second", 1)
    summary = second.ask(HistoryQuery()).models["cloud/large"]
    assert summary.calls == pytest.approx(3, rel=0.01)
    assert summary.by_task == {"code": pytest.approx(3, rel=0.01)}


def test_the_decision_is_a_span_with_the_chat_span_inside(
    system: System, servers: tuple[FakeServer, FakeServer], spans: InMemorySpanExporter
) -> None:
    """A 'select <task type>' span carries the choice and the reasons; 'chat' is inside it."""
    ollama, openai = servers
    selector = start_selector(system, fleet_of(system, ollama, openai))
    ask(selector, "Write a poem", candidates=("local/small",))
    # The answer reaches the caller as it arrives, a moment before the host's chat span ends.
    finished = wait_for_spans(spans, ["select creative", "chat small"])
    select = next(s for s in finished if s.name == "select creative")
    chat = next(s for s in finished if s.name == "chat small")
    assert select.attributes is not None
    assert select.attributes["reactor.select.model"] == "local/small"
    assert select.attributes["reactor.select.reward"] == 1.0
    assert any(e.name == "selection.decision" for e in select.events)
    by_id = {s.context.span_id: s for s in finished}
    ancestors = []
    parent = chat.parent
    while parent is not None and parent.span_id in by_id:
        ancestors.append(by_id[parent.span_id].name)
        parent = by_id[parent.span_id].parent
    assert "select creative" in ancestors


def test_an_unknown_policy_is_a_failure_naming_the_known_ones(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """policy='fancy' fails not_found listing balanced, best, cheapest, fastest."""
    ollama, openai = servers
    selector = start_selector(system, fleet_of(system, ollama, openai))
    with pytest.raises(AskError, match=r"no selection policy 'fancy' \(known: balanced, best"):
        ask(selector, policy="fancy")


def test_a_model_based_classifier_names_the_task_type(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """ModelClassifier asks a model; its one-word answer is the task type; junk is ignored."""
    ollama, openai = servers
    fleet = fleet_of(system, ollama, openai)
    classifier = ModelClassifier(system.lookup("local"), "small")
    selector = start_selector(system, fleet, classifier=classifier)
    ollama.script(Reply(text="Reasoning."), Reply(text="the answer"))
    answer = ask(selector, "hello there", candidates=("cloud/large",))
    assert answer.extras["selection"]["features"]["task_type"] == "reasoning"
    classify_prompt = ollama.calls[-1].body["messages"][0]["content"]
    assert classify_prompt.startswith(CLASSIFIER_PROMPT)
    fallback = ask(selector, "Write a poem", candidates=("cloud/large",))
    assert fallback.extras["selection"]["features"]["task_type"] == "creative"  # keywords


def test_outcomes_observed_elsewhere_teach_the_selector(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """Observed (a fallback link, a consensus vote): answers and blamed failures count."""
    ollama, openai = servers
    selector = start_selector(system, fleet_of(system, ollama, openai))
    selector.tell(Observed(model="local/small", task_type="code", ok=True, quality=0.5))
    selector.tell(Observed(model="local/small", task_type="code", ok=False, kind="timeout"))
    selector.tell(Observed(model="local/small", task_type="code", ok=False, kind="bad_request"))
    summary = selector.ask(HistoryQuery()).models["local/small"]
    assert summary.calls == 3
    assert summary.failures == {"timeout": 1.0, "bad_request": 1.0}
    assert summary.quality == 0.5
    choice = selector.ask(
        SelectModel(request=ChatRequest.prompt("", "x"), task_type="code", policy="best")
    )
    small = next(c for c in choice.decision.considered if c.model == "local/small")
    assert small.quality is not None


def test_user_code_that_raises_fails_the_request_not_the_selector(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """A raising policy function is an 'internal' failure; a raising classifier is ignored."""
    ollama, openai = servers

    def broken_choice(candidates: object, features: TaskFeatures) -> str | None:
        raise RuntimeError("oops")

    def broken_classifier(text: str) -> str:
        raise ValueError("no idea")

    selector = start_selector(
        system,
        fleet_of(system, ollama, openai),
        policies={"broken": Policy(name="broken", choose=broken_choice)},
        classifier=broken_classifier,
    )
    with pytest.raises(AskError) as caught:
        ask(selector, policy="broken")
    assert caught.value.failure.kind is FailureKind.INTERNAL
    assert "'broken' raised RuntimeError: oops" in caught.value.failure.message
    answer = ask(selector, "Write a poem")  # still running; the keywords decided
    assert answer.extras["selection"]["features"]["task_type"] == "creative"


def test_a_cost_ceiling_leaves_the_cheaper_models_and_refuses_when_none_is_left(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """max_cost_usd rejects models whose worst case is more; none left: budget_exceeded."""
    ollama, openai = servers
    selector = start_selector(system, fleet_of(system, ollama, openai))
    request = ChatRequest.prompt("", "hi", max_tokens=1000)  # cloud: up to $0.004
    answer = selector.ask(
        SelectChat(request=request, max_cost_usd=0.001, candidates=("cloud/large", "local/small"))
    )
    assert answer.host == "local"  # unpriced: not refused by a ceiling
    rejected = {c["model"]: c.get("rejected") for c in answer.extras["selection"]["considered"]}
    assert rejected["cloud/large"].startswith("costs up to $0.004")
    sent = len(openai.calls)
    with pytest.raises(AskError) as caught:
        selector.ask(SelectChat(request=request, max_cost_usd=0.001, candidates=("cloud/large",)))
    assert caught.value.failure.kind is FailureKind.BUDGET_EXCEEDED
    assert len(openai.calls) == sent  # nothing was sent


def test_a_failed_choice_span_says_why_in_error_type(
    system: System, servers: tuple[FakeServer, FakeServer], spans: InMemorySpanExporter
) -> None:
    """The chosen model failed: the 'select' span is an error with the failure's kind."""
    ollama, openai = servers
    fleet = fleet_of(system, ollama, openai)
    ollama.inject(Fault(status=500, times=None))
    selector = start_selector(system, fleet)
    with pytest.raises(AskError):
        ask(selector, "Write a poem", candidates=("local/small",))
    finished = wait_for_spans(spans, ["select creative"])
    select = next(s for s in finished if s.name == "select creative")
    assert not select.status.is_ok
    assert dict(select.attributes or {})["error.type"] == "server_error"
