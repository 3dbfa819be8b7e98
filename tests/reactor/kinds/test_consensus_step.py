"""The ``consensus`` step in runs: an Engine, a real ModelHost and a fake server over loopback.

The step's result carries the provenance into the journal; a low consensus is routed by
a ``switch``, fails the step, or halts the run until a person answers; a budget admits
each member's call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import System
from actors.llm import Config, HostConfig
from actors.orchestration import ConsensusResult
from actors.orchestration.consensus import OnLow
from actors.testing import FakeModel, FakeServer, Reply
from actors.testing._server import Exchange
from dsl import DefinitionError, Input, Reactor, consensus, ref, step, switch
from reactor.app import Engine
from reactor.kinds import answer_review
from reactor.run import RunFailedError, RunHaltedError, StepCompleted
from tests.support.hosts import start_host
from tests.support.local import local_engine

WAIT = 20.0
ANSWERS = {"a": "Answer: yes", "b": "yes.", "c": "YES", "d": "no", "e": "no, not at all"}


def answering(exchange: Exchange) -> Reply:
    """Each model answers its scripted text."""
    return Reply(text=ANSWERS.get(exchange.model or "", "maybe"))


@pytest.fixture
def server(system: System) -> Iterator[FakeServer]:
    """Five models on a fake OpenAI server, behind a host ``local``."""
    models = [FakeModel(m) for m in ANSWERS]
    with FakeServer("openai", models=models, responder=answering) as fake:
        start_host(system, HostConfig(url=fake.url, protocol="openai", timeout_s=5.0))
        yield fake


def engine_for(system: System, tmp_path: Path, config: Config | None = None) -> Engine:
    """An engine whose models are all on ``local``."""
    return local_engine(system, tmp_path, ANSWERS, config=config)


class Vote(Reactor):
    """Three models vote; a step reads the answer and the confidence."""

    claim = Input(str)
    verdict = consensus(
        "Is it true that {claim}? Answer yes or no.",
        members=["a", "b", "d"],
        choices=["yes", "no"],
        threshold=0.2,
    )

    @step
    def report(verdict: ConsensusResult) -> dict[str, Any]:
        return {
            "answer": verdict.answer,
            "confidence": verdict.confidence,
            "members": [(m.member, m.value, m.agrees) for m in verdict.members],
        }


def test_a_consensus_step_votes_and_journals_its_provenance(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """Two yes, one no: yes; the journaled result keeps every member's answer."""
    with engine_for(system, tmp_path) as engine:
        handle = engine.start(Vote, {"claim": "water is wet"})
        result = handle.result(WAIT)
        events = engine.history(handle.run_id)
    assert result["answer"] == "yes"
    assert result["members"] == [("a", "yes", True), ("b", "yes", True), ("d", "no", False)]
    completed = [e for e in events if isinstance(e, StepCompleted) and e.step == "verdict"]
    journaled = msgspec.json.decode(bytes(completed[0].value), type=ConsensusResult)
    assert journaled.answer == "yes"
    assert [m.member for m in journaled.members] == ["a", "b", "d"]
    assert journaled.clusters == (("a", "b"), ("d",))
    prompts = [c.body["messages"][-1]["content"] for c in server.calls]
    assert prompts == ["Is it true that water is wet? Answer yes or no."] * 3


class Human(Reactor):
    """The branch for a low consensus."""

    verdict = Input(Any)

    @step
    def review(verdict: ConsensusResult) -> str:
        return f"review needed ({verdict.confidence:.2f})"


class Accept(Reactor):
    """The branch for a clear consensus."""

    verdict = Input(Any)

    @step
    def accept(verdict: ConsensusResult) -> str:
        return f"accepted {verdict.answer}"


def routed(members: list[str]) -> type[Reactor]:
    """A reactor whose ``switch`` routes on the low-consensus flag."""

    class Routed(Reactor):
        claim = Input(str)
        verdict = consensus("{claim}?", members=members, choices=["yes", "no"], threshold=0.4)
        route = switch(
            ref("verdict", "low_consensus"),
            [(bool, Human)],
            default=Accept,
            verdict=ref("verdict"),
        )

    return Routed


def test_a_switch_routes_on_the_low_consensus_flag(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """Split answers go to the human branch; unanimous ones are accepted."""
    with engine_for(system, tmp_path) as engine:
        split = engine.run(routed(["a", "d", "e"]), {"claim": "x"}, timeout=WAIT)
        clear = engine.run(routed(["a", "b", "c"]), {"claim": "x"}, timeout=WAIT)
    assert split.startswith("review needed")
    assert clear == "accepted yes"


def low_step(on_low: OnLow) -> type[Reactor]:
    """A reactor whose consensus is split, with the given ``on_low``."""

    class Low(Reactor):
        claim = Input(str)
        verdict = consensus(
            "{claim}?", members=["a", "d", "e"], choices=["yes", "no"], on_low=on_low
        )

        @step
        def final(verdict: ConsensusResult) -> Any:
            return {"answer": verdict.answer, "method": verdict.method}

    return Low


def test_on_low_fail_fails_the_step_with_the_confidence(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """on_low="fail": the step fails ``low_consensus``, naming confidence and threshold."""
    with engine_for(system, tmp_path) as engine, pytest.raises(RunFailedError) as caught:
        engine.run(low_step("fail"), {"claim": "x"}, timeout=WAIT)
    (error,) = caught.value.errors
    assert error.kind == "low_consensus"
    assert "< 0.5" in error.message


def test_on_low_halt_waits_for_a_human_answer_and_resumes_with_it(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """The run halts; a person's answer, written to the review stream, is the step's result."""
    with engine_for(system, tmp_path) as engine:
        reactor = low_step("halt")
        handle = engine.start(reactor, {"claim": "x"})
        with pytest.raises(RunHaltedError) as caught:
            handle.result(WAIT)
        assert caught.value.step == "verdict"
        assert "needs a human's answer" in caught.value.reason
        answer_review(engine.journal, handle.run_id, "verdict", "no", reviewer="ana")
        calls = len(server.calls)
        resumed = engine.resume(handle.run_id, reactor=reactor)
        assert resumed.result(WAIT) == {"answer": "no", "method": "human"}
        assert len(server.calls) == calls  # the members were not asked again


def test_a_bad_spec_fails_when_the_reactor_is_defined() -> None:
    """The spec is checked at definition: the error names the reactor, step and field."""
    with pytest.raises(DefinitionError) as caught:

        class Bad(Reactor):
            verdict = consensus("x", members=["a"], output="numeric", aggregator="weighted")

    text = str(caught.value)
    assert "Bad" in text
    assert "verdict" in text
    assert "does not serve numeric" in text


def test_each_member_call_is_admitted_by_the_budget(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """A run budget too small for any member: each is refused before its request is sent."""
    config = Config.model_validate(
        {
            "prices": {m: {"input_per_mtok": 0, "output_per_mtok": 1000} for m in ANSWERS},
            "budgets": {"limits": [{"scope": "run", "usd": 0.01}]},
        }
    )
    with engine_for(system, tmp_path, config) as engine, pytest.raises(RunFailedError) as caught:
        engine.run(Vote, {"claim": "x"}, timeout=WAIT)
    (error,) = caught.value.errors
    assert error.kind == "budget_exceeded"
    assert server.calls == []
