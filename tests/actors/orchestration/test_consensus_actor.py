"""The Consensus coordinator against fake servers over loopback HTTP, each member a real call.

One fake OpenAI server holds five chat models (each scripted to answer its own way) and
an embedding model; a real ModelHost serves them; the coordinator resolves members to it.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from opentelemetry.trace import StatusCode

from actors import AskError, FailureKind, LoopActor, System
from actors.llm import (
    BudgetLimitConfig,
    BudgetsConfig,
    CancelChat,
    Catalog,
    ChatRequest,
    Completion,
    HostConfig,
    InventoryQuery,
    PriceConfig,
)
from actors.orchestration import Budget, SpendQuery, SpendReport
from actors.orchestration.consensus import (
    Consensus,
    ConsensusRequest,
    ConsensusResult,
    ConsensusSpec,
    LowConsensus,
    Member,
    Quorum,
)
from actors.testing import FakeModel, FakeServer, Fault, Reply
from actors.testing._server import Exchange
from otel.testing import InMemorySpanExporter, wait_for_spans
from tests.support.hosts import start_host_async
from tests.support.local import local_resolver

ANSWERS: dict[str, str] = {
    "m1": "The answer is Paris.",
    "m2": "Answer: paris",
    "m3": "**Paris**",
    "m4": "Lyon, I think.",
    "m5": "Answer: Paris",
}


def answering(answers: dict[str, str]) -> Callable[[Exchange], Reply]:
    """A responder: each model answers its scripted text (others: a default)."""

    def reply(exchange: Exchange) -> Reply:
        return Reply(text=answers.get(exchange.model or "", "no idea"))

    return reply


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """Five chat models and an embedding model on one fake OpenAI server."""
    models = [*(FakeModel(m) for m in ANSWERS), FakeModel("embed", embeddings=True)]
    with FakeServer("openai", models=models, responder=answering(ANSWERS)) as fake:
        yield fake


async def coordinator(system: System, server: FakeServer, **kwargs: Any) -> Any:
    """A host ``local`` for ``server`` and a Consensus actor resolving every model to it."""
    await start_host_async(system, HostConfig(url=server.url, protocol="openai", timeout_s=10.0))
    resolve = local_resolver(system)
    return await system.spawn_async(Consensus, name="consensus", args=(resolve,), kwargs=kwargs)


def members(*names: str, **fields: Any) -> tuple[Member, ...]:
    """Members for the named models."""
    return tuple(Member(model=n, **fields) for n in names)


def ask(spec: ConsensusSpec, text: str = "What is the capital of France?") -> ConsensusRequest:
    """A consensus request."""
    return ConsensusRequest(request=ChatRequest.prompt("", text), spec=spec, step="capital")


@pytest.mark.asyncio
async def test_a_vote_of_five_with_provenance(system: System, server: FakeServer) -> None:
    """Four say Paris in different words, one Lyon: Paris, 4/5, every member's part kept."""
    ref = await coordinator(system, server)
    spec = ConsensusSpec(members=members(*ANSWERS), aggregator="plurality", threshold=0.3)
    result: ConsensusResult = await ref.ask_async(ask(spec))
    assert result.answer == "paris"
    assert result.agreement == pytest.approx(0.8)
    assert result.confidence == pytest.approx(0.376, abs=0.001)
    assert not result.low_consensus
    assert [m.member for m in result.members] == list(ANSWERS)
    assert [m.agrees for m in result.members] == [True, True, True, False, True]
    assert result.members[3].value == "lyon, i think"
    assert result.clusters == (("m1", "m2", "m3", "m5"), ("m4",))
    assert result.answered == 5
    assert result.asked == 5
    assert result.entropy > 0
    assert all(m.latency_s > 0 for m in result.members)
    assert sorted(c.model or "" for c in server.calls) == sorted(ANSWERS)


@pytest.mark.asyncio
async def test_low_consensus_is_flagged_and_published(system: System, server: FakeServer) -> None:
    """Three of five below a 0.5 threshold: the flag in the result and an event on the bus."""
    events: queue.Queue[Any] = queue.Queue()
    system.bus.subscribe(LowConsensus, events)
    ref = await coordinator(system, server)
    spec = ConsensusSpec(members=members("m1", "m2", "m4"), threshold=0.5)
    result: ConsensusResult = await ref.ask_async(ask(spec))
    assert result.answer == "paris"
    assert result.low_consensus
    event = await asyncio.to_thread(events.get, timeout=5)
    assert event.step == "capital"
    assert event.confidence == result.confidence < 0.5


@pytest.mark.asyncio
async def test_a_hanging_member_is_cut_off_at_the_quorum_deadline(
    system: System, server: FakeServer
) -> None:
    """m5 never answers: the result comes at the quorum deadline with m5 cancelled."""
    server.inject(Fault(hang=True, model="m5", times=None))
    ref = await coordinator(system, server)
    spec = ConsensusSpec(
        members=members(*ANSWERS), quorum=Quorum(wait_s=0.5), member_timeout_s=30.0
    )
    result: ConsensusResult = await ref.ask_async(ask(spec), timeout=10)
    assert result.answer == "paris"
    assert result.answered == 4
    hung = result.members[4]
    assert hung.error_kind == "cancelled"
    assert "quorum deadline" in hung.error
    assert result.latency_s < 10  # the member's own 30 s deadline was not waited for


class _Recording(LoopActor[Any]):
    """A host that answers every model but ``m5`` at once, and records what it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, str] = {}
        self.cancelled: list[str] = []
        self.held: list[Any] = []

    def receive(self, message: Any) -> object:
        if isinstance(message, ChatRequest):
            self.ids[message.model] = message.request_id
            if message.model == "m5":
                self.held.append(self.defer_reply())  # never answered
                return None
            return Completion(model=message.model, provider="openai", content="Answer: paris")
        if isinstance(message, CancelChat):
            self.cancelled.append(message.request_id)
            return None
        return (dict(self.ids), list(self.cancelled))  # the test's query


@pytest.mark.asyncio
async def test_each_member_call_has_its_own_request_id_and_its_own_cancel(
    system: System,
) -> None:
    """Five members on one host: five request ids; the cut-off one alone is cancelled."""
    host = await system.spawn_async(_Recording, name="recording")
    ref = await system.spawn_async(
        Consensus, name="consensus", args=(lambda model, _host: (host, model),)
    )
    spec = ConsensusSpec(members=members(*ANSWERS), quorum=Quorum(wait_s=0.2))
    result: ConsensusResult = await ref.ask_async(ask(spec), timeout=10)
    assert [m.error_kind for m in result.members] == [None, None, None, None, "cancelled"]
    ids, cancelled = await host.ask_async("what were you sent?")  # after the CancelChat
    assert sorted(ids) == sorted(ANSWERS)
    assert len(set(ids.values())) == len(ANSWERS)
    assert cancelled == [ids["m5"]]


@pytest.mark.asyncio
async def test_with_a_budget_each_member_call_is_reserved_and_settled(
    system: System, server: FakeServer
) -> None:
    """The budgeted path (reserve, call, settle, piped back): answers, and every call paid."""
    price = PriceConfig(input_per_mtok=0.0, output_per_mtok=1000.0)
    prices = {f"local/{m}": price for m in ANSWERS}
    budget: Any = await system.spawn_async(
        Budget.spec(BudgetsConfig(limits=[BudgetLimitConfig(scope="run", usd=100.0)]), prices)
    )
    ref = await coordinator(system, server, budget=budget)
    message = msgspec.structs.replace(
        ask(ConsensusSpec(members=members("m1", "m2", "m3"), max_tokens=8)), run_id="r1"
    )
    result: ConsensusResult = await ref.ask_async(message)
    assert result.answer == "paris"
    assert [m.ok for m in result.members] == [True, True, True]
    assert all(m.latency_s > 0 for m in result.members)
    report: SpendReport = await budget.ask_async(SpendQuery())
    while report.calls < 3:  # each settle is one-way: it follows the answer
        await asyncio.sleep(0)
        report = await budget.ask_async(SpendQuery())
    assert sorted(report.by_model) == ["local/m1", "local/m2", "local/m3"]


@pytest.mark.asyncio
async def test_failed_members_keep_their_real_errors_and_the_quorum_degrades(
    system: System, server: FakeServer
) -> None:
    """Two 500s and a 401: the two answers are aggregated, flagged degraded; errors kept."""
    server.inject(Fault(status=500, model="m1", times=None))
    server.inject(Fault(status=500, model="m2", times=None))
    server.inject(Fault(status=401, model="m3", times=None))
    ref = await coordinator(system, server)
    spec = ConsensusSpec(members=members(*ANSWERS), quorum=Quorum(min_answers=3))
    result: ConsensusResult = await ref.ask_async(ask(spec))
    assert result.degraded
    assert result.answered == 2
    kinds = {m.member: m.error_kind for m in result.members}
    assert kinds["m1"] == "server_error"
    assert kinds["m3"] == "auth"
    assert kinds["m5"] is None


@pytest.mark.asyncio
async def test_plain_unknown_and_own_timeout_members_in_one_round(
    system: System, server: FakeServer
) -> None:
    """A round mixing plain members, one with its own timeout and one no host serves.

    The unknown member answers ``not_found`` without a call; every call made has its own
    request id and the cluster and cost bookkeeping covers exactly the members asked.
    """
    await start_host_async(system, HostConfig(url=server.url, protocol="openai", timeout_s=10.0))
    local = local_resolver(system)

    def resolve(model: str, host: str | None) -> Any:
        if model == "nowhere":
            raise LookupError("no host serves nowhere")
        return local(model, host)

    ref = await system.spawn_async(Consensus, name="consensus", args=(resolve,))
    spec = ConsensusSpec(
        members=(
            Member(model="m1"),
            Member(model="nowhere"),
            Member(model="m2", timeout_s=20.0),
            Member(model="m5"),
        ),
    )
    result: ConsensusResult = await ref.ask_async(ask(spec))
    assert [m.member for m in result.members] == ["m1", "nowhere", "m2", "m5"]
    assert result.members[1].error_kind == "not_found"
    assert result.members[1].error == "no host serves nowhere"
    assert not result.members[1].ok
    assert result.answer == "paris"
    assert result.answered == 3
    assert result.asked == 4
    assert result.clusters == (("m1", "m2", "m5"),)
    assert [m.agrees for m in result.members] == [True, False, True, True]
    assert sorted(c.model or "" for c in server.calls) == ["m1", "m2", "m5"]


@pytest.mark.asyncio
async def test_a_short_quorum_fails_or_falls_back(system: System, server: FakeServer) -> None:
    """on_short=fail names every member's error; fallback asks the one model instead."""
    for model in ("m1", "m2", "m3"):
        server.inject(Fault(status=503, model=model, times=None))
    ref = await coordinator(system, server)
    quorum = Quorum(min_answers=2, on_short="fail")
    spec = ConsensusSpec(members=members("m1", "m2", "m3"), quorum=quorum)
    with pytest.raises(AskError) as caught:
        await ref.ask_async(ask(spec))
    failure = caught.value.failure
    assert failure.kind is FailureKind.OVERLOADED or failure.kind is FailureKind.SERVER_ERROR
    assert set(failure.details) == {"m1", "m2", "m3"}
    assert "quorum needs 2" in failure.message

    fallback = Quorum(min_answers=2, on_short="fallback", fallback="m5")
    result: ConsensusResult = await ref.ask_async(
        ask(ConsensusSpec(members=members("m1", "m2", "m3"), quorum=fallback))
    )
    assert result.fallback == "m5"
    assert result.answer == "paris"
    assert result.degraded
    assert len(result.members) == 4


@pytest.mark.asyncio
async def test_no_answer_at_all_fails_even_when_degrading(
    system: System, server: FakeServer
) -> None:
    """Zero answers never aggregate (an explicit failure, not an empty result)."""
    server.inject(Fault(status=500, times=None))
    ref = await coordinator(system, server)
    with pytest.raises(AskError) as caught:
        await ref.ask_async(ask(ConsensusSpec(members=members("m1", "m2"))))
    assert caught.value.failure.kind is FailureKind.SERVER_ERROR


@pytest.mark.asyncio
async def test_adaptive_stopping_ends_the_vote_once_it_is_decided(
    system: System, server: FakeServer
) -> None:
    """m4 and m5 are slow; the three fast Paris answers decide a vote of five."""
    server.inject(Fault(latency=5.0, model="m4", times=None))
    server.inject(Fault(latency=5.0, model="m5", times=None))
    ref = await coordinator(system, server)
    spec = ConsensusSpec(members=members(*ANSWERS), adaptive=True)
    result: ConsensusResult = await ref.ask_async(ask(spec), timeout=10)
    assert result.stopped_early
    assert result.answer == "paris"
    assert result.answered == 3
    assert {m.member for m in result.members if m.error_kind == "cancelled"} == {"m4", "m5"}


@pytest.mark.asyncio
async def test_adaptive_growth_adds_members_when_not_decisive(
    system: System, server: FakeServer
) -> None:
    """m1 against m4 is a tie: two more members are asked, within max_members."""
    ref = await coordinator(system, server)
    spec = ConsensusSpec(members=members("m1", "m4"), adaptive=True, max_members=4, threshold=0.3)
    result: ConsensusResult = await ref.ask_async(ask(spec))
    assert result.added == 2
    assert result.asked == 4
    assert result.answer == "paris"


@pytest.mark.asyncio
async def test_numeric_outliers_are_rejected_and_named(system: System) -> None:
    """One member answers a wild number: the median of the rest, the outlier named."""
    numbers = {"m1": "x = 42", "m2": "\\boxed{42}", "m3": "it is 41.9", "m4": "4200", "m5": "42"}
    models = [FakeModel(m) for m in numbers]
    with FakeServer("openai", models=models, responder=answering(numbers)) as fake:
        ref = await coordinator(system, fake)
        spec = ConsensusSpec(members=members(*numbers), output="numeric")
        result: ConsensusResult = await ref.ask_async(ask(spec, "6 times 7?"))
    assert result.answer == 42.0
    assert result.outliers == ("m4",)
    assert result.members[3].outlier
    assert result.spread is not None


@pytest.mark.asyncio
async def test_free_text_clusters_by_embeddings_with_a_lexical_fallback(
    system: System, server: FakeServer
) -> None:
    """The embedding model clusters equal answers; without one, the texts lexically."""
    ref = await coordinator(system, server)
    spec = ConsensusSpec(members=members(*ANSWERS), output="text", embedding_model="embed")
    result: ConsensusResult = await ref.ask_async(ask(spec))
    assert result.clustering == "embeddings:embed"
    assert any(c.path.endswith("/embeddings") for c in server.calls)
    assert result.text in ANSWERS.values()

    lexical = ConsensusSpec(members=members(*ANSWERS), output="text", embedding_model="")
    result = await ref.ask_async(ask(lexical))
    assert result.clustering == "lexical"
    assert result.text in ("Answer: paris", "Answer: Paris")


@pytest.mark.asyncio
async def test_long_answers_are_clustered_by_their_opening_on_a_small_embedding_window(
    system: System,
) -> None:
    """Answers longer than the embedding model's 64-token window are still embedded.

    ``truncate`` is asked for, since the answers are only compared: not refused.
    """
    essay = " Paris has been the capital since the tenth century." * 12
    answers = {"m1": f"Paris.{essay}", "m2": f"Paris.{essay}", "m3": f"Lyon.{essay}"}
    models = [*(FakeModel(m) for m in answers), FakeModel("embed", embeddings=True)]
    with FakeServer("ollama", models=models, responder=answering(answers)) as fake:
        config = HostConfig(url=fake.url, protocol="ollama", timeout_s=10.0, num_ctx=64)
        await start_host_async(system, config)
        ref = await system.spawn_async(Consensus, name="consensus", args=(local_resolver(system),))
        spec = ConsensusSpec(members=members(*answers), output="text", embedding_model="embed")
        result: ConsensusResult = await ref.ask_async(ask(spec))
        embeds = [c.body for c in fake.calls if c.path == "/api/embed"]
    assert result.clustering == "embeddings:embed", result.note
    assert [body["truncate"] for body in embeds] == [True]


@pytest.mark.asyncio
async def test_synthesis_reads_the_proposals_and_falls_back_when_its_aggregator_fails(
    system: System, server: FakeServer
) -> None:
    """The aggregator sees every proposal; when it fails, the fallback aggregator writes."""
    server.inject(Fault(status=500, model="m4", times=None))
    ref = await coordinator(system, server)
    spec = ConsensusSpec(
        members=members("m1", "m2", "m3"),
        output="text",
        aggregator="synthesis",
        aggregator_model="m4",
        fallback_aggregator="m5",
        layers=1,
        embedding_model="",
    )
    result: ConsensusResult = await ref.ask_async(ask(spec))
    assert result.aggregated_by == "m5"
    assert result.text == ANSWERS["m5"]
    assert "aggregator m4 failed" in result.note
    last = server.calls[-1]
    system_prompt = last.body["messages"][0]["content"]
    assert "1. The answer is Paris." in system_prompt
    assert "3. **Paris**" in system_prompt


@pytest.mark.asyncio
async def test_debate_rounds_show_each_member_the_others(
    system: System, server: FakeServer
) -> None:
    """Two rounds: the second round's prompts hold the other members' first answers."""
    ref = await coordinator(system, server)
    spec = ConsensusSpec(members=members("m1", "m4", "m5"), aggregator="debate", rounds=2)
    result: ConsensusResult = await ref.ask_async(ask(spec))
    assert result.asked == 6
    assert result.answer == "paris"
    assert [m.round for m in result.members] == [1, 1, 1, 2, 2, 2]
    second = [c for c in server.calls if c.model == "m4"][-1]
    last_turn = second.body["messages"][-1]["content"]
    assert "The answer is Paris." in last_turn
    assert "Lyon, I think." not in last_turn  # its own answer is not among the others'


@pytest.mark.asyncio
async def test_members_chosen_from_the_catalog_for_diversity(system: System) -> None:
    """No members given: the catalog's chat models, other families first."""
    models = ["llama3.2", "llama3.1", "qwen2.5", "gemma2"]
    with FakeServer("ollama", models=models) as fake:
        host = await start_host_async(
            system, HostConfig(url=fake.url, protocol="ollama", timeout_s=10.0)
        )
        catalog = Catalog()
        catalog.add_host("local", await host.ask_async(InventoryQuery()))

        def resolve(model: str, name: str | None) -> tuple[Any, str]:
            return system.lookup(name or "local"), model

        ref = await system.spawn_async(
            Consensus, name="consensus", args=(resolve,), kwargs={"catalog": catalog}
        )
        spec = ConsensusSpec(count=3, output="text", embedding_model="")
        result: ConsensusResult = await ref.ask_async(ask(spec))
    chosen = [m.member for m in result.members]
    assert len(chosen) == 3
    families = {c.split("/")[-1][:4] for c in chosen}
    assert families == {"llam", "qwen", "gemm"}


@pytest.mark.asyncio
async def test_a_bad_spec_is_refused_with_every_problem(system: System, server: FakeServer) -> None:
    """An invalid spec fails bad_request naming the fields, before any call."""
    ref = await coordinator(system, server)
    spec = ConsensusSpec(members=members("m1"), output="numeric", aggregator="plurality")
    with pytest.raises(AskError) as caught:
        await ref.ask_async(ask(spec))
    assert caught.value.failure.kind is FailureKind.BAD_REQUEST
    assert "does not serve numeric" in caught.value.failure.message
    assert server.calls == []


@pytest.mark.asyncio
async def test_the_span_carries_the_members_and_the_confidence(
    system: System, server: FakeServer, spans: InMemorySpanExporter
) -> None:
    """One ``consensus`` span with the confidence, and an event per member."""
    ref = await coordinator(system, server)
    await ref.ask_async(ask(ConsensusSpec(members=members("m1", "m2", "m4"))))
    found = [s for s in spans.get_finished_spans() if s.name == "consensus capital"]
    assert len(found) == 1
    attributes = dict(found[0].attributes or {})
    assert attributes["reactor.consensus.answered"] == 3
    assert len([e for e in found[0].events if e.name == "consensus.member"]) == 3
    chats = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert sorted(s.name for s in chats) == ["chat m1", "chat m2", "chat m4"]
    consensus = found[0].context
    assert consensus is not None
    for chat in chats:  # each member's call is a child of the consensus span
        assert chat.parent is not None
        assert chat.parent.span_id == consensus.span_id


@pytest.mark.asyncio
async def test_copies_of_one_model_differ_by_seed_and_temperature(
    system: System, server: FakeServer
) -> None:
    """Self-consistency: one model three times, each with its own seed and temperature."""
    ref = await coordinator(system, server)
    copies = (
        Member(model="m1", seed=1, temperature=0.7),
        Member(model="m1", seed=2, temperature=0.7),
        Member(model="m1", seed=3, temperature=1.0),
    )
    result: ConsensusResult = await ref.ask_async(ask(ConsensusSpec(members=copies)))
    assert [m.member for m in result.members] == ["m1@t0.7#1", "m1@t0.7#2", "m1@t1#3"]
    sent = sorted((c.body["seed"], c.body["temperature"]) for c in server.calls)
    assert sent == [(1, 0.7), (2, 0.7), (3, 1.0)]


@pytest.mark.asyncio
async def test_a_member_whose_temperature_the_model_refused_says_so(system: System) -> None:
    """A reasoning model refuses temperature 0.7: it answers at its default, and says so."""
    models = [FakeModel("m1"), FakeModel("thinker", refuses=("temperature",))]
    answers = {"m1": "Answer: Paris", "thinker": "Answer: Paris"}
    with FakeServer("openai", models=models, responder=answering(answers)) as fake:
        ref = await coordinator(system, fake)
        spec = ConsensusSpec(members=members("m1", "thinker", temperature=0.7))
        result: ConsensusResult = await ref.ask_async(ask(spec))
    assert result.answered == 2
    by_model = {m.member: m for m in result.members}
    assert by_model["thinker@t0.7"].not_applied == ("temperature",)
    assert by_model["m1@t0.7"].not_applied == ()


@pytest.mark.asyncio
async def test_agreement_reaches_the_selectors_performance_history(
    system: System, server: FakeServer
) -> None:
    """Each member's outcome is observed by the Selector, agreement as its quality."""
    from actors.orchestration import HistoryQuery, HistoryReport, Selector

    await start_host_async(system, HostConfig(url=server.url, protocol="openai", timeout_s=10.0))
    catalog = Catalog()
    selector = await system.spawn_async(Selector, name="selector", args=(catalog,))
    ref = await system.spawn_async(
        Consensus, name="consensus", args=(local_resolver(system),), kwargs={"selector": selector}
    )
    spec = ConsensusSpec(members=members("m1", "m2", "m4"), aggregator="plurality")
    await ref.ask_async(ask(spec))
    report: HistoryReport = HistoryReport()
    for _ in range(100):  # the observations are one-way messages: wait until they are in
        report = await selector.ask_async(HistoryQuery())
        if {"local/m1", "local/m4"} <= set(report.models):
            break
        await asyncio.sleep(0.02)
    assert report.models["local/m1"].quality == pytest.approx(1.0)
    assert report.models["local/m4"].quality == pytest.approx(0.0)


@pytest.mark.asyncio
async def test_weights_come_from_accuracy_learnt_as_agreement(
    system: System, server: FakeServer
) -> None:
    """After six polls where m4 always dissents, m1 outweighs it in a one-against-one vote."""
    ref = await coordinator(system, server)
    duel = ConsensusSpec(members=members("m4", "m1"), aggregator="weighted", task_type="factual")
    before: ConsensusResult = await ref.ask_async(ask(duel))
    assert before.answer == "lyon, i think"  # nothing learnt: a tie, the first vote wins
    spec = ConsensusSpec(members=members(*ANSWERS), aggregator="weighted", task_type="factual")
    for _ in range(6):
        await ref.ask_async(ask(spec))
    after: ConsensusResult = await ref.ask_async(ask(duel))
    assert after.answer == "paris"


@pytest.mark.asyncio
async def test_a_poll_cut_short_by_stopping_still_ends_its_span(
    system: System, server: FakeServer, spans: InMemorySpanExporter
) -> None:
    """The system stops while members' calls hang: the ``consensus`` span ends, an error."""
    server.inject(Fault(hang=True))
    ref = await coordinator(system, server)
    pending = asyncio.ensure_future(
        ref.ask_async(ask(ConsensusSpec(members=members("m1", "m2", "m4"))), timeout=10)
    )
    assert await asyncio.to_thread(server.wait_in_flight)
    await asyncio.to_thread(system.stop, 10.0)
    with pytest.raises(AskError):
        await pending
    finished = await asyncio.to_thread(wait_for_spans, spans, ["consensus capital"])
    (poll,) = [s for s in finished if s.name == "consensus capital"]
    assert poll.status.status_code is StatusCode.ERROR
    assert dict(poll.attributes or {})["error.type"] == "actor_stopped"
