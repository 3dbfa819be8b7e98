"""The ``select`` step and ``ask(model="auto")``: the Selector chooses, over real loopback HTTP.

The result is the chosen model's Completion; the decision travels in its
``extras["selection"]``, so it is in the journal with the step's result. ``Engine.feedback``
reads it back from the journal to teach the selector.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from actors import System
from actors.llm import Completion, Config, Fleet, start_fleet
from actors.orchestration import HistoryQuery
from actors.testing import FakeServer, Fault
from dsl import DefinitionError, Input, Reactor, ask, select
from dsl.kinds import describe_steps, rebuild_steps
from reactor.app import Engine
from reactor.run import StepCompleted


@pytest.fixture
def fleet(system: System) -> Iterator[Fleet]:
    """Two hosts: 'local' (ollama: small) and 'cloud' (openai: large, priced)."""
    with (
        FakeServer("ollama", models=["small"]) as ollama,
        FakeServer("openai", models=["large"]) as openai,
    ):
        config = Config.model_validate(
            {
                "discovery": {"enabled": False},
                "resources": {"nvml": False},
                "hosts": {
                    "local": {"url": ollama.url, "protocol": "ollama"},
                    "cloud": {"url": openai.url, "protocol": "openai"},
                },
                "prices": {"cloud/large": {"input_per_mtok": 3, "output_per_mtok": 15}},
                "models": {"large": {"tier": 3}, "small": {"tier": 2}},
                "selection": {
                    "policies": {"steady": {"kind": "best", "explore": False}},
                },
            }
        )
        running = start_fleet(system, config)
        running.simulated.extend([ollama, openai])  # for the tests to reach the servers
        yield running


@pytest.fixture
def engine(system: System, tmp_path: Path, fleet: Fleet) -> Iterator[Engine]:
    with Engine(system, db_path=tmp_path / "runs.db", logging=False, fleet=fleet) as running:
        yield running


def servers(fleet: Fleet) -> dict[str, FakeServer]:
    ollama, openai = fleet.simulated
    assert isinstance(ollama, FakeServer)
    assert isinstance(openai, FakeServer)
    return {"local": ollama, "cloud": openai}


class Pick(Reactor):
    topic = Input(str)
    answer = select("Write a python function about {topic}", policy="steady")


class Auto(Reactor):
    topic = Input(str)
    answer = ask("What is {topic}?", model="auto")


def test_a_select_step_returns_the_chosen_completion_with_its_decision(engine: Engine) -> None:
    """Tier 3 wins a 'best' policy without exploration; the decision is journaled."""
    handle = engine.start(Pick, {"topic": "sorting"})
    result = handle.result(10)
    assert isinstance(result, Completion)
    assert result.host == "cloud"
    selection = result.extras["selection"]
    assert selection["chosen"] == "cloud/large"
    assert selection["features"]["task_type"] == "code"
    assert selection["policy"] == "steady"
    completed = [e for e in engine.history(handle.run_id) if isinstance(e, StepCompleted)]
    journaled = msgspec.json.decode(completed[-1].value)
    assert journaled["extras"]["selection"]["chosen"] == "cloud/large"


def test_ask_with_model_auto_goes_through_the_selector(engine: Engine) -> None:
    """model='auto' lets the default policy choose; the result says so."""
    result = engine.run(Auto, {"topic": "a monad"})
    assert result.extras["selection"]["policy"] == "balanced"
    assert result.extras["selection"]["features"]["task_type"] == "factual"


def test_candidates_restrict_the_choice(engine: Engine, fleet: Fleet) -> None:
    """models=[...] limits the candidates: only that host is called."""

    class Local(Reactor):
        answer = select("hi", models=["local/small"], task_type="general")

    result = engine.run(Local, {})
    assert result.host == "local"
    assert not [c for c in servers(fleet)["cloud"].calls if c.model]


def test_a_retry_goes_elsewhere_after_the_chosen_model_fails(engine: Engine, fleet: Fleet) -> None:
    """The failing model is blamed (reward 0 each time), so a retry picks the other one.

    Priors 0.7 (tier 3) and 0.5 (tier 2), worth 4 observations: two failures bring the
    tier-3 model's mean to 2.8 / 6 = 0.47, below the other's 0.5.
    """
    servers(fleet)["cloud"].inject(Fault(status=500, times=None))

    class Retried(Reactor):
        answer = select("Write python", policy="steady", max_retries=2, backoff=0.0)

    result = engine.run(Retried, {})
    assert result.host == "local"
    report = engine.selector.ask(HistoryQuery())
    assert report.models["cloud/large"].failures == {"server_error": 2.0}


def test_feedback_reaches_the_selector_through_the_journal(engine: Engine) -> None:
    """engine.feedback(run, step, score) finds the model in the step's result."""
    handle = engine.start(Pick, {"topic": "graphs"})
    handle.result(10)
    sent = engine.feedback(handle.run_id, "answer", 0.0)
    assert (sent.model, sent.task_type, sent.counted) == ("cloud/large", "code", 1.0)
    assert engine.selector.ask(HistoryQuery()).models["cloud/large"].quality == 0.0
    with pytest.raises(LookupError, match="did not complete"):
        engine.feedback(handle.run_id, "nope", 1.0)
    with pytest.raises(ValueError, match="within 0 and 1"):
        engine.feedback(handle.run_id, "answer", 2.0)


def test_bad_select_options_fail_when_the_reactor_is_defined() -> None:
    """An unknown task type or capability is a DefinitionError naming the step."""
    with pytest.raises(DefinitionError, match=r"answer.*task_type.*poetry"):

        class Bad(Reactor):
            answer = select("hi", task_type="poetry")  # type: ignore[arg-type]

    with pytest.raises(DefinitionError, match=r"needs.*teleport"):

        class Worse(Reactor):
            answer = select("hi", needs=["teleport"])


def test_a_select_step_added_while_running_is_journaled_and_rebuilt() -> None:
    """describe/rebuild keep every request field."""
    step = select("Hi {x}", policy="cheapest", task_type="code", models=["a"], needs=["json"])
    described = describe_steps([step])
    rebuilt = rebuild_steps([{**described[0], "name": "s"}])["s"]
    assert rebuilt.impl == step.impl
