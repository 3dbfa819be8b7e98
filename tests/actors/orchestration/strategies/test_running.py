"""Running each strategy against real ModelHosts and fake servers over loopback HTTP.

One fake OpenAI server answers per model (a responder keyed by the model and the kind
of prompt: a member's answer, a refinement, a synthesis, a pairwise judgement), so each
strategy's answer, agreement and per-call provenance can be checked exactly; faults
make members fail, hang, or answer late.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from actors import System
from actors.llm import Catalog, HostConfig, HostInventory, ModelInfo
from actors.orchestration.consensus import SYNTHESIS_PROMPT, wilson_lower
from actors.orchestration.selection import TaskFeatures
from actors.orchestration.strategies import (
    Agreement,
    Member,
    StrategyFailed,
    StrategyResult,
    choose_strategy,
    embedder,
    host_caller,
    member,
    orchestrate,
    plurality,
    resonate,
    run_strategy,
)
from actors.sessions._orchestrator import outcome_of
from actors.testing import Exchange, FakeModel, FakeServer, Fault, Reply
from tests.support.hosts import start_host_async
from tests.support.local import local_resolver

ANSWERS = {"a": "The answer is 42.", "b": "Answer: 42", "c": "41", "d": "Paris", "e": "Paris"}


def respond(exchange: Exchange) -> Reply:
    """Each model's scripted behaviour, by the kind of prompt it is sent."""
    text = exchange.prompt_text()
    model = exchange.model or ""
    if "Reply with exactly one letter" in text:
        first, second = re.split(r"Answer B:", text.split("Answer A:", 1)[1], maxsplit=1)
        return Reply(text="A" if "42" in first and "42" not in second else "B")
    if "Responses from the models" in text:  # the consensus package's synthesis prompt
        return Reply(text=f"synthesis by {model}")
    if "A previous answer to this" in text:
        return Reply(text=f"{model} improved")
    return Reply(text=ANSWERS.get(model, f"{model} says hi"))


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fake OpenAI server with the members' models and an embedding model."""
    models = [*(FakeModel(x) for x in [*ANSWERS, "boss"]), FakeModel("emb", embeddings=True)]
    with FakeServer("openai", models=models, responder=respond) as fake:
        yield fake


def chats(server: FakeServer) -> list[tuple[str, str]]:
    """``(model, prompt)`` of every chat request, in order."""
    return [
        (c.model or "", str(c.body)) for c in server.calls if c.path.endswith("/chat/completions")
    ]


def task(task_type: str = "reasoning") -> TaskFeatures:
    """Features of a task of that type."""
    return TaskFeatures(task_type=task_type, complexity=0.5, inferred=False)  # type: ignore[arg-type]


async def run(
    system: System,
    server: FakeServer,
    kind: str,
    members: Sequence[str | Member],
    *,
    catalog: Catalog | None = None,
    task_type: str = "reasoning",
    **settings: Any,
) -> StrategyResult:
    """Start the host, choose ``kind`` over ``members`` and run it for one question."""
    await start_host_async(system, HostConfig(url=server.url, protocol="openai", timeout_s=5.0))
    aggregator = settings.pop("aggregator", None)
    given = [Member(m) if isinstance(m, str) else m for m in members]
    choice = choose_strategy(task(task_type), given, catalog, kind=kind, **settings)  # type: ignore[arg-type]
    resolve = local_resolver(system)
    embed = (
        embedder(resolve, settings["embedding_model"]) if "embedding_model" in settings else None
    )
    return await run_strategy(
        choice,
        "What is six times seven?",
        call=host_caller(resolve, timeout=5.0),
        aggregator=aggregator,
        embed=embed,
        context="We multiply.",
    )


# ---- aggregators (pure) ----------------------------------------------------------------------


def test_plurality_compares_normalised_answers_and_breaks_ties_by_member_order() -> None:
    """'The answer is 42.', 'Answer: 42', '42' are one answer; ties go first; weights count.

    The answers are extracted and voted on by the consensus package; the confidence is its
    Wilson lower bound of 3 of 4.
    """
    voted = plurality(["The answer is 42.", "Answer: 42", "42", "41"])
    assert voted.supporters == (0, 1, 2)
    assert voted.agreement == 0.75
    assert voted.answer == "The answer is 42."
    assert voted.confidence == pytest.approx(wilson_lower(3, 4))
    assert plurality(["Let me think.\nFinal answer: 42.", "\\boxed{42}"]).agreement == 1.0
    assert plurality(["y", "x", "x", "y"]).answer == "y"
    weighted = plurality(["x", "y", "y"], [Member("a", weight=3), Member("b"), Member("c")])
    assert (weighted.answer, weighted.agreement, weighted.method) == ("x", 0.6, "weighted")


def test_resonance_picks_the_answer_most_others_are_close_to() -> None:
    """Two close vectors and one far: the consensus clustering puts the pair together.

    The two are equally central, so the earlier one represents the cluster.
    """
    verdict = resonate(["p", "q", "r"], [[1.0, 0.0], [0.95, 0.05], [0.0, 1.0]], threshold=0.9)
    assert (verdict.answer, verdict.method) == ("p", "cluster")
    assert verdict.supporters == (0, 1)
    assert verdict.agreement == pytest.approx(2 / 3)


# ---- the strategies, over loopback ----------------------------------------------------------


async def test_consensus_votes_and_records_every_member(system: System, server: FakeServer) -> None:
    """Two of three say 42: that is the answer, agreement 2/3 over the 0.6 threshold."""
    result = await run(system, server, "consensus", ["a", "b", "c"])
    assert result.strategy == "consensus"
    assert result.answer == "The answer is 42."
    assert result.agreement == pytest.approx(2 / 3)
    assert result.agreed is True
    assert result.answered_by == ("a", "b")
    assert [
        (c.member, c.stage, c.content) for c in sorted(result.calls, key=lambda c: c.index)
    ] == [
        ("a", "answer", ANSWERS["a"]),
        ("b", "answer", ANSWERS["b"]),
        ("c", "answer", ANSWERS["c"]),
    ]
    assert all(c.latency_s > 0 and c.output_tokens > 0 for c in result.calls)
    assert all("Reasoning so far" in prompt for _, prompt in chats(server))


async def test_a_failed_member_keeps_its_real_error_and_the_vote_goes_on(
    system: System, server: FakeServer
) -> None:
    """Member c answers 500: its error is recorded; a and b still decide, and the reasons say so."""
    server.inject(Fault(status=500, model="c"))
    result = await run(system, server, "consensus", ["a", "b", "c"])
    assert result.errors() == {"c [answer]": pytest.approx(result.errors()["c [answer]"])}
    assert result.errors()["c [answer]"].startswith("server_error")
    assert result.agreement == 1.0
    assert "1 of 3 members failed" in " ".join(result.reasons)


async def test_low_consensus_is_flagged(system: System, server: FakeServer) -> None:
    """Three different answers at a 0.6 threshold: agreed is False, and the reasons say why."""
    result = await run(system, server, "consensus", ["a", "c", "d"])
    assert result.agreed is False
    assert result.agreement == pytest.approx(1 / 3)
    assert "low consensus" in " ".join(result.reasons)


async def test_an_injected_aggregator_decides(system: System, server: FakeServer) -> None:
    """The seam the consensus package plugs into: an async aggregator gets the answers."""
    seen: list[tuple[list[str], list[str]]] = []

    async def last_wins(answers: Sequence[str], members: Sequence[Member]) -> Agreement:
        seen.append((list(answers), [m.model for m in members]))
        return Agreement(answer=answers[-1], agreement=0.9, supporters=(1,), method="last-wins")

    server.inject(Fault(status=500, model="b"))  # left out: answers and members stay paired
    result = await run(system, server, "consensus", ["a", "b", "c"], aggregator=last_wins)
    assert seen == [([ANSWERS["a"], ANSWERS["c"]], ["a", "c"])]
    assert (result.answer, result.method, result.answered_by) == ("41", "last-wins", ("c",))


async def test_concurrent_takes_the_first_good_answer_and_cancels_the_rest(
    system: System, server: FakeServer
) -> None:
    """Member a hangs, b fails, c answers: c wins; a is recorded as cancelled, b with its error."""
    server.inject(Fault(hang=True, model="a"))
    server.inject(Fault(status=500, model="b"))
    result = await run(system, server, "concurrent", ["a", "b", "c"])
    assert (result.answer, result.method, result.answered_by) == ("41", "race", ("c",))
    kinds = {c.member: c.error_kind for c in result.calls}
    assert kinds == {"a": "cancelled", "b": "server_error", "c": None}


async def test_a_chain_refines_and_passes_over_a_failed_link(
    system: System, server: FakeServer
) -> None:
    """Member a fails, b answers, c refines b's answer (its prompt carries it)."""
    server.inject(Fault(status=500, model="a"))
    result = await run(system, server, "chain", ["a", "b", "c"])
    assert result.answer == "c improved"
    assert [(c.member, c.stage, c.ok) for c in result.calls] == [
        ("a", "answer", False),
        ("b", "answer", True),
        ("c", "refine", True),
    ]
    assert "Answer: 42" in chats(server)[-1][1]


async def test_specialized_asks_the_specialist_then_the_next(
    system: System, server: FakeServer
) -> None:
    """The code specialist fails; the next code specialist answers; the generalist is not asked."""
    server.inject(Fault(status=503, model="b"))
    members = [member("a"), member("b", role="code"), member("c", role="code")]
    result = await run(system, server, "specialized", members, task_type="code")
    assert result.answered_by == ("c (code)",)
    assert [m for m, _ in chats(server)] == ["b", "c"]


async def test_hybrid_drafts_then_the_specialist_synthesises(
    system: System, server: FakeServer
) -> None:
    """Every member drafts; the analysis specialist reads every draft and answers."""
    members = [member("a"), member("b", role="analysis"), member("c")]
    result = await run(system, server, "hybrid", members, task_type="analysis")
    assert (result.answer, result.method) == ("synthesis by b", "synthesis")
    assert [c.stage for c in result.calls][-1] == "synthesis"
    synthesis_prompt = chats(server)[-1][1]
    assert all(ANSWERS[x] in synthesis_prompt for x in "abc")
    assert SYNTHESIS_PROMPT.splitlines()[0] in synthesis_prompt  # the consensus package's MoA


async def test_hierarchical_falls_back_to_a_worker_when_the_coordinator_fails(
    system: System, server: FakeServer
) -> None:
    """The coordinator answers 500: the first worker's answer stands in, and the reason says so."""
    server.inject(Fault(status=500, model="boss"))
    members = [member("boss", role="coordinator"), member("a"), member("c")]
    result = await run(system, server, "hierarchical", members)
    assert (result.answer, result.method) == (ANSWERS["a"], "fallback:coordinator")
    assert "the coordinate by boss (coordinator) failed (server_error" in " ".join(result.reasons)
    assert [m for m, _ in chats(server)][-1] == "boss"


async def test_hierarchical_coordinator_decides(system: System, server: FakeServer) -> None:
    """Workers first, the coordinator last, reading their answers."""
    members = [member("boss", role="coordinator"), member("a"), member("c")]
    result = await run(system, server, "hierarchical", members)
    assert (result.answer, result.answered_by) == ("synthesis by boss", ("boss (coordinator)",))


async def test_parallel_returns_every_perspective(system: System, server: FakeServer) -> None:
    """Each answer, labelled by its member."""
    result = await run(system, server, "parallel", ["a", "d"], task_type="creative")
    assert result.answer == f"## a\n{ANSWERS['a']}\n\n## d\nParis"
    assert result.answered_by == ("a", "d")


async def test_semantic_resonance_uses_the_embedding_model(
    system: System, server: FakeServer
) -> None:
    """Members d and e say the same (identical vectors): Paris, 2 of 3 resonate; emb was asked."""
    result = await run(
        system, server, "semantic", ["d", "a", "e"], task_type="general", embedding_model="emb"
    )
    assert (result.answer, result.method, result.agreed) == ("Paris", "cluster", True)
    assert result.answered_by == ("d", "e")
    assert result.agreement == pytest.approx(2 / 3)
    assert any(c.path.endswith("/embeddings") for c in server.calls)


async def test_semantic_falls_back_to_lexical_clustering_when_embedding_fails(
    system: System, server: FakeServer
) -> None:
    """The embedding endpoint answers 500: text clustering stands in; the reasons say why."""
    server.inject(Fault(status=500, path="/embeddings"))
    result = await run(
        system, server, "semantic", ["d", "a", "e"], task_type="general", embedding_model="emb"
    )
    assert (result.answer, result.method) == ("Paris", "fallback:lexical")
    assert "embedding with emb failed" in " ".join(result.reasons)


async def test_combinatorial_judges_every_pair(system: System, server: FakeServer) -> None:
    """Three answers, three pairwise judgements by the judge; the answer with 42 wins both."""
    members = [member("c"), member("a"), member("d"), member("boss", role="judge")]
    result = await run(system, server, "combinatorial", members, task_type="code")
    assert (result.answer, result.method) == (ANSWERS["a"], "pairwise")
    judged = [c for c in result.calls if c.stage == "judge"]
    assert len(judged) == 3
    assert {c.member for c in judged} == {"boss (judge)"}
    assert all(c.temperature == 0.0 for c in judged)
    assert result.agreement == 1.0


async def test_no_answer_at_all_raises_with_every_members_error(
    system: System, server: FakeServer
) -> None:
    """Every member fails: StrategyFailed names the strategy and each member's real error."""
    server.inject(Fault(status=500, times=None))
    with pytest.raises(StrategyFailed) as caught:
        await run(system, server, "consensus", ["a", "b", "c"])
    assert caught.value.kind == "server_error"
    assert "strategy 'consensus': no member answered (a: server_error" in str(caught.value)
    assert len(caught.value.calls) == 3


async def test_members_that_do_not_fit_together_run_grouped_by_model(system: System) -> None:
    """An LM Studio host keeps one model: a b a b runs as a a, then b b (one load each)."""
    models = [FakeModel("a"), FakeModel("b", loaded=False)]
    with FakeServer("lmstudio", models=models, responder=respond) as fake:
        catalog = Catalog()
        catalog.add_host(
            "local",
            HostInventory(
                url=fake.url,
                provider="lmstudio",
                reachable=True,
                models=(
                    ModelInfo(id="a", loaded=True, size_bytes=4_000_000_000),
                    ModelInfo(id="b", loaded=False, size_bytes=4_000_000_000),
                ),
            ),
        )
        await start_host_async(system, HostConfig(url=fake.url, protocol="lmstudio", timeout_s=5.0))
        choice = choose_strategy(task(), [Member(x) for x in "abab"], catalog, kind="consensus")
        assert choice.waves == ((0, 2), (1, 3))
        result = await run_strategy(
            choice,
            "What is six times seven?",
            call=host_caller(local_resolver(system), timeout=5.0),
        )
        assert [m for m, _ in chats(fake)] == ["a", "a", "b", "b"]
        assert sorted({c.wave for c in result.calls}) == [0, 1]


async def test_orchestrate_analyses_chooses_and_runs_in_one_call(
    system: System, server: FakeServer
) -> None:
    """A reasoning session's entry: prompt, task type and reasoning so far in, the result out."""
    await start_host_async(system, HostConfig(url=server.url, protocol="openai", timeout_s=5.0))
    result = await orchestrate(
        "Which is larger, 41 or 42?",
        members=["a", "b", "c"],
        resolve=local_resolver(system),
        task_type="reasoning",
        context="Step 1: compare the tens.",
        max_tokens=64,
        timeout=5.0,
    )
    assert (result.strategy, result.auto, result.answer) == ("consensus", True, ANSWERS["a"])
    bodies = [c.body for c in server.calls if c.path.endswith("/chat/completions")]
    assert all(b["max_tokens"] == 64 and "compare the tens" in str(b) for b in bodies)


async def test_a_member_whose_temperature_the_model_refused_says_so(system: System) -> None:
    """A reasoning model refuses temperature 0.7: it answers at its default, and says so."""
    models = [FakeModel("a"), FakeModel("b"), FakeModel("thinker", refuses=("temperature",))]
    with FakeServer("openai", models=models, responder=respond) as fake:
        members = [Member(m, temperature=0.7) for m in ("a", "b", "thinker")]
        result = await run(system, fake, "consensus", members)
    by_member = {c.member: c for c in result.calls}
    assert by_member["thinker"].ok
    assert by_member["thinker"].not_applied == ("temperature",)
    assert by_member["a"].not_applied == ()
    # A session's decision keeps it on the member's answer.
    answers = {a.model: a for a in outcome_of(result).answers}
    assert answers["thinker"].not_applied == ("temperature",)
    assert answers["a"].not_applied == ()
