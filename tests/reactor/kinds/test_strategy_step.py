"""The ``strategy`` step in runs: an Engine, real ModelHosts, a fake server, the journal.

A consensus step answers with its provenance; the chooser, reading the engine's
catalog, picks a strategy for ``kind="auto"``; broken constraints fail where the
reactor is defined (or, when they need the catalog, before any member is asked); the
engine's Budget admits every member's call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import System
from actors.llm import Config, HostConfig
from actors.orchestration import HistoryQuery
from actors.orchestration.strategies import StrategyResult, member
from actors.testing import Exchange, FakeModel, FakeServer, Reply
from dsl import DefinitionError, Input, Reactor, step, strategy
from dsl.kinds import kind_named
from otel.testing import InMemorySpanExporter
from reactor.app import Engine
from reactor.run import RunFailedError
from tests.support.hosts import start_host
from tests.support.local import asked, local_catalog, local_engine

ANSWERS = {"a": "42", "b": "The answer is 42.", "c": "41"}
MODELS = [*ANSWERS, "emb"]


def respond(exchange: Exchange) -> Reply:
    """Each model's answer."""
    return Reply(text=ANSWERS.get(exchange.model or "", "?"))


@pytest.fixture
def server(system: System) -> Iterator[FakeServer]:
    """A fake OpenAI server with three chat models and an embedding model, host ``local``."""
    models = [*(FakeModel(x) for x in ANSWERS), FakeModel("emb", embeddings=True)]
    with FakeServer("openai", models=models, responder=respond) as fake:
        start_host(system, HostConfig(url=fake.url, protocol="openai", timeout_s=5.0))
        yield fake


def engine_for(
    system: System, tmp_path: Path, server: FakeServer, config: Config | None = None
) -> Engine:
    """An engine whose models are all on ``local``, with the server's catalog."""
    catalog = local_catalog(server, ANSWERS, embeddings=["emb"], size_bytes=1)
    return local_engine(system, tmp_path, MODELS, config=config, catalog=catalog)


class Vote(Reactor):
    """Three models vote; a step reads the answer and how sure it is."""

    question = Input(str)
    decided = strategy("{question}", kind="consensus", members=["a", "b", "c"], threshold=0.6)

    @step
    def summary(decided: StrategyResult) -> dict[str, object]:
        return {
            "answer": decided.answer,
            "agreement": decided.agreement,
            "agreed": decided.agreed,
            "members": sorted(c.member for c in decided.calls),
        }


def test_a_consensus_step_answers_with_its_agreement(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """Two of three agree on 42: the step's result says so, and every member was asked.

    The Selector learns the agreement as each member's quality (c disagreed).
    """
    with engine_for(system, tmp_path, server) as engine:
        result = engine.run(Vote, {"question": "What is six times seven?"})
        history = engine.selector.ask(HistoryQuery()).models
    assert {m: history[f"local/{m}"].quality for m in "abc"} == {"a": 1.0, "b": 1.0, "c": 0.0}
    assert result == {
        "answer": "42",
        "agreement": pytest.approx(2 / 3),
        "agreed": True,
        "members": ["a", "b", "c"],
    }
    assert sorted(asked(server)) == ["a", "b", "c"]


class Auto(Reactor):
    """The chooser decides, with the reasoning so far in front of the task."""

    question = Input(str)
    notes = Input(str)
    decided = strategy(
        "{question}", members=["a", "b", "c"], context="{notes}", embedding_model="emb"
    )


def test_auto_chooses_from_the_prompt_and_the_catalog(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """A reasoning prompt with three resident models: consensus, all at once, and why."""
    with engine_for(system, tmp_path, server) as engine:
        result: StrategyResult = engine.run(
            Auto, {"question": "Solve 6 * 7, step by step.", "notes": "Multiplication."}
        )
    assert result.strategy == "consensus"
    assert result.auto
    assert result.task_type == "reasoning"
    assert result.waves == ((0, 1, 2),)
    assert "one right answer" in result.reasons[0]
    assert all("Multiplication." in str(c.body) for c in server.calls)


def test_constraints_fail_where_the_reactor_is_defined() -> None:
    """Consensus of two, or a hierarchy without a coordinator: a DefinitionError naming both."""
    with pytest.raises(DefinitionError, match=r"strategy 'consensus': at least 3 members"):

        class TooFew(Reactor):
            decided = strategy("q", kind="consensus", members=["a", "b"])

    with pytest.raises(DefinitionError, match=r"exactly one member with role 'coordinator'"):

        class NoBoss(Reactor):
            decided = strategy("q", kind="hierarchical", members=["a", "b"])

    with pytest.raises(DefinitionError, match=r"'combinatorial': 2 to 16 agents: got 17"):

        class TooMany(Reactor):
            decided = strategy("q", kind="combinatorial", members=["a"] * 17)


class Resonant(Reactor):
    """A semantic strategy whose embedding model cannot embed."""

    decided = strategy("q", kind="semantic", members=["a", "b"], embedding_model="c")


def test_a_catalog_constraint_fails_the_step_before_any_call(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """The embedding model is a chat model: bad_argument naming step, strategy, constraint."""
    with engine_for(system, tmp_path, server) as engine, pytest.raises(RunFailedError) as caught:
        engine.run(Resonant, {})
    (error,) = caught.value.errors
    assert error.kind == "bad_argument"
    assert "step 'decided': strategy 'semantic': an embedding model: local/c has no" in (
        error.message
    )
    assert asked(server) == []


class Ladder(Reactor):
    """A hierarchy: the coordinator reads the workers' answers."""

    decided = strategy(
        "q", kind="hierarchical", members=[member("c", role="coordinator"), "a", "b"]
    )


def test_every_member_call_is_admitted_by_the_budget(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """A run budget too small for any call: every member is refused, none is sent."""
    config = Config.model_validate(
        {
            "prices": {x: {"input_per_mtok": 0, "output_per_mtok": 1000} for x in ANSWERS},
            "budgets": {"limits": [{"scope": "run", "usd": 0.5}]},
        }
    )
    with (
        engine_for(system, tmp_path, server, config) as engine,
        pytest.raises(RunFailedError) as caught,
    ):
        engine.run(Ladder, {})
    (error,) = caught.value.errors
    assert error.kind == "budget_exceeded"
    assert "strategy 'hierarchical': no member answered (a: budget_exceeded" in error.message
    assert asked(server) == []


def test_the_strategy_step_is_drawn_as_a_double_circle() -> None:
    """The Mermaid diagram marks a strategy step with its own shape."""
    assert "decided(((" in Vote.to_mermaid()


def test_a_strategy_step_is_journaled_as_data_and_read_back() -> None:
    """Members, roles and settings survive the JSON the journal keeps (not the aggregator)."""
    definition = strategy(
        "{q}",
        kind="hierarchical",
        members=[member("c", role="coordinator", temperature=0.1), "a"],
        task_type="analysis",
        context="{notes}",
        resident_limits={"local": 2},
    )
    kind = kind_named("strategy")
    data = json.loads(json.dumps(kind.describe(definition.impl)))
    assert kind.rebuild(data) == definition.impl


def test_the_step_span_carries_the_strategy_and_the_member_chats_are_its_children(
    system: System, tmp_path: Path, server: FakeServer, spans: InMemorySpanExporter
) -> None:
    """The step's span says which strategy ran and how much the members agreed."""
    with engine_for(system, tmp_path, server) as engine:
        engine.run(Vote, {"question": "What is six times seven?"})
    finished = spans.get_finished_spans()
    (step_span,) = [s for s in finished if (s.attributes or {}).get("reactor.strategy.kind")]
    attributes = dict(step_span.attributes or {})
    assert attributes["reactor.strategy.kind"] == "consensus"
    assert attributes["reactor.strategy.calls"] == 3
    assert attributes["reactor.strategy.agreed"] is True
    chats = [s for s in finished if s.name.startswith("chat")]
    assert len(chats) == 3
    assert all(
        s.parent is not None and s.parent.span_id == step_span.context.span_id for s in chats
    )
