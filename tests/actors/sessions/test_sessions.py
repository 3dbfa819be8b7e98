"""Reasoning sessions end to end: the six operations, access control, audit, search, passivation.

Real parts throughout: a fake OpenAI server over loopback HTTP behind a real ModelHost,
and a real SQLite file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import AskError, FailureKind, System
from actors.llm import Catalog, HostConfig, HostInventory, ModelConfig, ModelInfo
from actors.orchestration.consensus import SYNTHESIS_PROMPT, wilson_lower
from actors.sessions import (
    STREAM_PREFIX,
    DecisionContext,
    DecisionOutcome,
    DecisionStarted,
    Execution,
    ExecutionStatus,
    OrchestrationCapabilities,
    Progress,
    Sessions,
    SessionStatus,
    Strategy,
    StrategyChoice,
    TaskType,
)
from actors.store import JournalAppend
from actors.testing import FakeServer, Fault, Reply
from tests.support.hosts import start_host
from tests.support.local import local_catalog

MODELS = ("alpha", "beta", "gamma")


def answers(exchange: Any) -> Reply:
    """Alpha and beta agree, gamma does not; a synthesis or refinement says so."""
    prompt = exchange.prompt_text()
    if SYNTHESIS_PROMPT.splitlines()[0] in prompt:  # the strategies synthesise with it
        return Reply(text=f"[{exchange.model}] synthesis: adopt LRU with a scan filter")
    if "A previous answer" in prompt:
        return Reply(text=f"[{exchange.model}] refined: LRU with a scan filter, tuned")
    if exchange.model == "gamma":
        return Reply(text="random replacement is fine")
    return Reply(text="adopt LRU with a scan filter")


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    """A fake OpenAI server with three chat models."""
    with FakeServer("openai", models=list(MODELS), responder=answers) as server:
        yield server


@pytest.fixture
def sessions(system: System, fake: FakeServer, tmp_path: Path) -> Sessions:
    """Sessions over a Store in ``tmp_path`` and the fake's models (alpha declared tier 3)."""
    start_host(system, HostConfig(url=fake.url, protocol="openai", timeout_s=5.0), name="local")
    catalog = local_catalog(
        fake, MODELS, declared={"alpha": ModelConfig(tier=3), "beta": ModelConfig(tier=2)}
    )
    return Sessions(system, db_path=tmp_path / "s.db", catalog=catalog).open()


def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds (fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def kind_of(call: Callable[[], object]) -> FailureKind:
    with pytest.raises(AskError) as caught:
        call()
    return caught.value.failure.kind


def test_the_six_operations(sessions: Sessions, fake: FakeServer) -> None:
    """Initiate, add steps, execute (hybrid after a critique), get, search, capabilities."""
    sid = sessions.initiate_reasoning_session(
        "Choose a cache eviction policy for the CDN", "alice", ["cache"], participants=["bob"]
    )
    first = sessions.add_reasoning_step(sid, "alice", "LRU is simple and good enough", "hypothesis")
    second = sessions.add_reasoning_step(sid, "bob", "LRU thrashes on scans", "critique")
    assert (first.seq, second.seq, second.builds_on, second.builds_on_agent) == (1, 2, 1, "alice")

    done = sessions.execute_orchestrated_decision(
        sid, "bob", "Which policy?", "reasoning", wait_s=10
    )
    assert done.status is ExecutionStatus.COMPLETED, done.error
    assert done.strategy is Strategy.HYBRID
    assert done.models[0] == "local/alpha"  # the declared best synthesises
    assert [a.role for a in done.answers] == ["member", "member", "member", "synthesis"]
    assert done.result == "[alpha] synthesis: adopt LRU with a scan filter"
    assert done.confidence is not None
    assert 0 < done.confidence < 1
    synthesis_prompt = fake.calls[-1].body["messages"][-1]["content"]
    assert "LRU thrashes on scans" in synthesis_prompt  # the reasoning reached the models

    session = sessions.get_reasoning_session(sid, "bob")
    assert session.owner == "alice"
    assert session.participants == ("bob",)
    assert session.status is SessionStatus.DECIDED
    assert [s.text for s in session.steps] == [first.text, second.text]
    assert session.executions == (done,)

    by_step = sessions.search_reasoning_sessions("bob", "thrashes")
    assert [h.session_id for h in by_step] == [sid]
    assert "[thrashes]" in by_step[0].snippet
    assert [h.session_id for h in sessions.search_reasoning_sessions("alice", "synthesis")] == [sid]
    assert [h.session_id for h in sessions.search_reasoning_sessions("alice", "CDN")] == [sid]

    capabilities = sessions.get_orchestration_capabilities("carol")
    assert [m.model for m in capabilities.models] == ["local/alpha", "local/beta", "local/gamma"]
    assert set(capabilities.strategies) == set(Strategy)
    assert set(capabilities.task_types) == set(TaskType)


def test_strategies_follow_the_task_and_the_reasoning(sessions: Sessions) -> None:
    """The strategies' chooser decides: a trivial creative task races, reasoning votes.

    The vote is the consensus package's: alpha and beta agree, gamma does not, and the
    confidence is the Wilson lower bound of 2 of 3.
    """
    sid = sessions.initiate_reasoning_session("Name the product", "alice")
    race = sessions.execute_orchestrated_decision(sid, "alice", "A name?", "creative", wait_s=10)
    assert race.status is ExecutionStatus.COMPLETED, race.error
    assert race.strategy is Strategy.CONCURRENT
    assert "trivial task" in race.reason
    assert race.result in ("adopt LRU with a scan filter", "random replacement is fine")

    vote = sessions.execute_orchestrated_decision(sid, "alice", "Which?", "reasoning", wait_s=10)
    assert vote.strategy is Strategy.CONSENSUS
    assert vote.result == "adopt LRU with a scan filter"
    assert vote.confidence == pytest.approx(wilson_lower(2, 3))
    assert [a.role for a in vote.answers] == ["member"] * 3
    assert [e.execution_id for e in sessions.get_reasoning_session(sid, "alice").executions] == [
        "d1",
        "d2",
    ]


def test_a_long_execution_answers_with_a_handle_and_shows_progress(
    sessions: Sessions, fake: FakeServer
) -> None:
    """The handle comes back at once (running); progress shows 2/3 while gamma is slow."""
    fake.inject(Fault(latency=1.5, model="gamma"))
    sid = sessions.initiate_reasoning_session("Slow one", "alice")
    handle = sessions.execute_orchestrated_decision(sid, "alice", "Decide", "reasoning")
    assert handle.status is ExecutionStatus.RUNNING
    assert handle.strategy is Strategy.CONSENSUS

    def progress() -> str:
        return sessions.get_reasoning_session(sid, "alice").executions[0].progress

    until(lambda: progress() == "2/3 members answered")
    assert sessions.get_reasoning_session(sid, "alice").status is SessionStatus.EXECUTING
    done = sessions.wait_for_decision(sid, "alice", handle.execution_id, timeout=10)
    assert done.status is ExecutionStatus.COMPLETED
    assert done.duration_s is not None
    assert done.duration_s >= 1.5


def test_access_is_checked_for_read_add_and_execute(sessions: Sessions) -> None:
    """An outsider may not read, add or execute; the owner lets them in or opens the session."""
    sid = sessions.initiate_reasoning_session("Private", "alice")
    assert (
        kind_of(lambda: sessions.get_reasoning_session(sid, "eve")) is FailureKind.PERMISSION_DENIED
    )
    assert (
        kind_of(lambda: sessions.add_reasoning_step(sid, "eve", "mine now"))
        is FailureKind.PERMISSION_DENIED
    )
    assert (
        kind_of(lambda: sessions.execute_orchestrated_decision(sid, "eve", "x"))
        is FailureKind.PERMISSION_DENIED
    )
    assert sessions.search_reasoning_sessions("eve", "Private") == []
    assert (
        kind_of(lambda: sessions.add_participants(sid, "eve", ["eve"]))
        is FailureKind.PERMISSION_DENIED
    )

    sessions.add_participants(sid, "alice", ["eve"])
    assert sessions.add_reasoning_step(sid, "eve", "now I may").agent == "eve"
    sessions.initiate_reasoning_session("Public", "alice", open=True)
    assert [
        h.task_description for h in sessions.search_reasoning_sessions("mallory", "Public")
    ] == ["Public"]


def test_bad_input_is_refused_naming_what_is_wrong(sessions: Sessions) -> None:
    """No agent name, an unknown step or task type, a missing session, a step that is not there."""
    with pytest.raises(AskError, match="agent_name is required") as caught:
        sessions.initiate_reasoning_session("x", "")
    assert caught.value.failure.kind is FailureKind.BAD_REQUEST
    with pytest.raises(ValueError, match="step_type 'guess' is not one of analysis, hypothesis"):
        sessions.add_reasoning_step("s1", "alice", "text", "guess")
    with pytest.raises(ValueError, match="task_type 'poetry'"):
        sessions.execute_orchestrated_decision("s1", "alice", "x", "poetry")
    assert kind_of(lambda: sessions.get_reasoning_session("nope", "alice")) is FailureKind.NOT_FOUND
    sid = sessions.initiate_reasoning_session("Real", "alice")
    with pytest.raises(AskError, match="builds_on=5 names no step"):
        sessions.add_reasoning_step(sid, "alice", "text", builds_on=5)
    with pytest.raises(AskError, match="exists already"):
        sessions.initiate_reasoning_session("Again", "alice", session_id=sid)
    with pytest.raises(AskError, match="is not a session id"):
        sessions.get_reasoning_session("../etc", "alice")


def test_every_operation_is_audited_allowed_or_not(sessions: Sessions) -> None:
    """The audit trail has each operation with its agent, session and outcome, newest first."""
    sid = sessions.initiate_reasoning_session("Audit me", "alice")
    sessions.add_reasoning_step(sid, "alice", "a step", "analysis")
    with pytest.raises(AskError):
        sessions.get_reasoning_session(sid, "eve")
    sessions.search_reasoning_sessions("eve", "audit")
    sessions.get_orchestration_capabilities("eve")
    records = sessions.audit()
    assert [(r.agent, r.operation, r.outcome) for r in reversed(records)] == [
        ("alice", "initiate_reasoning_session", "ok"),
        ("alice", "add_reasoning_step", "ok"),
        ("eve", "get_reasoning_session", "permission_denied"),
        ("eve", "search_reasoning_sessions", "ok"),
        ("eve", "get_orchestration_capabilities", "ok"),
    ]
    assert records[3].detail == "step 1 (analysis)"
    assert [r.operation for r in sessions.audit(agent="alice", session_id=sid)] == [
        "add_reasoning_step",
        "initiate_reasoning_session",
    ]


def test_stats_count_interactions_collaboration_and_performance(sessions: Sessions) -> None:
    """Who did what, who built on whose steps, and how each agent's decisions went."""
    sid = sessions.initiate_reasoning_session("Team work", "alice", participants=["bob", "carol"])
    sessions.add_reasoning_step(sid, "alice", "first idea", "hypothesis")
    sessions.add_reasoning_step(sid, "bob", "builds on alice", "analysis")
    sessions.add_reasoning_step(sid, "carol", "also builds on alice", "critique", builds_on=1)
    sessions.add_reasoning_step(sid, "bob", "on carol's", "synthesis")
    sessions.execute_orchestrated_decision(sid, "bob", "Decide", "reasoning", wait_s=10)
    with pytest.raises(AskError):
        sessions.add_reasoning_step(sid, "eve", "let me in")
    stats = sessions.stats()
    assert stats.sessions == 1
    assert stats.interactions["bob"] == {
        "add_reasoning_step": 2,
        "execute_orchestrated_decision": 1,
    }
    assert stats.denied == {"eve": 1}
    edges = {(e.agent, e.builds_on): e.steps for e in stats.collaboration}
    assert edges == {("bob", "alice"): 1, ("carol", "alice"): 1, ("bob", "carol"): 1}
    bob = stats.performance["bob"]
    assert (bob["executions"], bob["completed"], bob["success_rate"], bob["steps"]) == (
        1,
        1,
        1.0,
        2,
    )
    assert bob["strategies"] == {"hybrid": 1}
    assert stats.performance["alice"]["sessions_owned"] == 1


def test_search_filters_by_tags_status_and_takes_plain_words(sessions: Sessions) -> None:
    """Tags and status narrow the hits; a query that is not FTS5 syntax is searched as words."""
    a = sessions.initiate_reasoning_session("Shard the orders table", "alice", ["db", "orders"])
    b = sessions.initiate_reasoning_session("Shard the users table", "alice", ["db"])
    sessions.execute_orchestrated_decision(b, "alice", "How?", "analysis", wait_s=10)
    assert {h.session_id for h in sessions.search_reasoning_sessions("alice", "shard")} == {a, b}
    assert [
        h.session_id for h in sessions.search_reasoning_sessions("alice", "shard", ["orders"])
    ] == [a]
    decided = sessions.search_reasoning_sessions("alice", "shard", status="decided")
    assert [h.session_id for h in decided] == [b]
    odd = sessions.search_reasoning_sessions("alice", 'orders table?"(')
    assert [h.session_id for h in odd] == [a]
    newest = sessions.search_reasoning_sessions("alice", limit=1)
    assert [h.session_id for h in newest] == [b]


def test_passivated_sessions_come_back_from_the_store(
    sessions: Sessions, system: System, fake: FakeServer, tmp_path: Path
) -> None:
    """Passivated sessions come back whole, in this process or another on the same file."""
    sid = sessions.initiate_reasoning_session("Persist me", "alice", ["keep"], participants=["bob"])
    sessions.add_reasoning_step(sid, "bob", "a thought", "analysis")
    sessions.execute_orchestrated_decision(sid, "alice", "Decide", "general", wait_s=10)
    before = sessions.get_reasoning_session(sid, "alice")
    assert sessions.passivate_idle().active == 0
    assert not any(c.name.startswith("reasoning-session:") for c in system.children())
    again = sessions.get_reasoning_session(sid, "bob")
    assert again == before
    activity = sessions.activity()
    assert (activity.active, activity.activations, activity.passivations) == (1, 2, 1)

    with System(name="other", default_timeout=5.0) as other:
        elsewhere = Sessions(other, db_path=tmp_path / "s.db", catalog=local_catalog(fake, MODELS))
        assert elsewhere.get_reasoning_session(sid, "bob") == before


def test_idle_sessions_passivate_themselves(
    system: System, fake: FakeServer, tmp_path: Path
) -> None:
    """With a short idle time an unused session leaves memory by itself; a call brings it back."""
    sessions = Sessions(
        system, db_path=tmp_path / "i.db", catalog=local_catalog(fake, MODELS), idle_s=0.05
    )
    sid = sessions.initiate_reasoning_session("Short-lived", "alice")
    until(lambda: sessions.activity().passivations == 1)
    assert sessions.activity().active == 0
    assert sessions.get_reasoning_session(sid, "alice").task_description == "Short-lived"


def test_a_decision_interrupted_by_a_dead_process_is_finished_as_failed(
    sessions: Sessions, system: System, tmp_path: Path
) -> None:
    """A started decision with no end in the journal is failed at activation, in the journal too."""
    sid = sessions.initiate_reasoning_session("Crashy", "alice")
    sessions.passivate_idle()
    orphan = Execution(
        execution_id="d1",
        agent="alice",
        prompt="?",
        task_type=TaskType.GENERAL,
        strategy=Strategy.SPECIALIZED,
        reason="r",
        models=("local/alpha",),
        status=ExecutionStatus.RUNNING,
        started_at=time.time(),
    )
    event = DecisionStarted(execution=orphan)
    system.lookup("store").ask(
        JournalAppend(
            stream_id=STREAM_PREFIX + sid,
            event_type="DecisionStarted",
            data=msgspec.json.encode(event),
            expected_seq=1,
        )
    )
    execution = sessions.get_reasoning_session(sid, "alice").executions[0]
    assert execution.status is ExecutionStatus.FAILED
    assert execution.error.startswith("interrupted")
    types = sqlite3.connect(tmp_path / "s.db").execute(
        "SELECT type FROM events WHERE stream_id = ? ORDER BY seq", (STREAM_PREFIX + sid,)
    )
    assert [t for (t,) in types] == [
        "ReasoningSessionOpened",
        "DecisionStarted",
        "DecisionFinished",
    ]


def test_no_model_that_fits_memory_fails_the_execution_at_once(
    system: System, fake: FakeServer, tmp_path: Path
) -> None:
    """Only an unloaded model too big for the free GPU memory: insufficient_memory, nothing runs."""
    catalog = Catalog()
    catalog.add_host(
        "local",
        HostInventory(
            url=fake.url,
            provider="openai",
            reachable=True,
            models=(ModelInfo(id="alpha", loaded=False, size_bytes=8 * 2**30),),
        ),
    )
    catalog.set_free_bytes(2 * 2**30, budget=24 * 2**30)
    sessions = Sessions(system, db_path=tmp_path / "m.db", catalog=catalog)
    sid = sessions.initiate_reasoning_session("Big", "alice")
    with pytest.raises(AskError, match=r"alpha \(needs 8.0 GiB, 2.0 GiB free\)") as caught:
        sessions.execute_orchestrated_decision(sid, "alice", "x")
    assert caught.value.failure.kind is FailureKind.INSUFFICIENT_MEMORY
    assert fake.calls == []


def test_failed_models_fail_the_execution_with_each_reason(
    sessions: Sessions, fake: FakeServer
) -> None:
    """Every member failing: the execution fails and says what each model got."""
    fake.inject(Fault(status=500, times=3))
    sid = sessions.initiate_reasoning_session("Doomed", "alice")
    failed = sessions.execute_orchestrated_decision(sid, "alice", "x", "analysis", wait_s=10)
    assert failed.status is ExecutionStatus.FAILED
    assert "no member answered" in failed.error
    assert all(a.error.startswith("server_error") for a in failed.answers)
    assert sessions.stats().performance["alice"]["failed"] == 1


def test_the_async_api(system: System, fake: FakeServer, tmp_path: Path) -> None:
    """Each operation's _async twin works from asyncio code."""
    start_host(system, HostConfig(url=fake.url, protocol="openai", timeout_s=5.0), name="local")

    async def scenario() -> tuple[str, int, Execution, int]:
        async with Sessions(
            system, db_path=tmp_path / "a.db", catalog=local_catalog(fake, MODELS)
        ) as api:
            sid = await api.initiate_reasoning_session_async("Async", "alice", ["x"])
            step = await api.add_reasoning_step_async(sid, "alice", "async step", "conclusion")
            handle = await api.execute_orchestrated_decision_async(sid, "alice", "Go", "general")
            done = await api.wait_for_decision_async(sid, "alice", handle.execution_id, timeout=10)
            hits = await api.search_reasoning_sessions_async("alice", "async")
            session = await api.get_reasoning_session_async(sid, "alice")
            capabilities = await api.get_orchestration_capabilities_async("alice")
            assert len(capabilities.models) == 3
            assert (await api.stats_async()).sessions == 1
            assert len(await api.audit_async(agent="alice")) == 7
            return session.session_id, step.seq, done, len(hits)

    sid, seq, done, hits = asyncio.run(scenario())
    assert sid
    assert (seq, hits) == (1, 1)
    assert done.status is ExecutionStatus.COMPLETED


class _Scripted:
    """An orchestrator of the test's own, plugged in through the Orchestrator protocol."""

    def __init__(self) -> None:
        self.contexts: list[DecisionContext] = []

    def capabilities(self) -> OrchestrationCapabilities:
        return OrchestrationCapabilities(strategies=(Strategy.CHAIN,), max_members=1)

    def choose(self, context: DecisionContext) -> StrategyChoice:
        self.contexts.append(context)
        if context.task_type is TaskType.CODE:
            raise LookupError("no code model here")
        return StrategyChoice(Strategy.CHAIN, ("mine/one",), "always a chain")

    async def run(
        self, choice: StrategyChoice, context: DecisionContext, progress: Progress
    ) -> DecisionOutcome:
        progress("thinking")
        if context.prompt == "fail":
            raise RuntimeError("the strategy broke")
        return DecisionOutcome(result=f"{choice.strategy.value}: {context.render()[:20]}")


def test_an_orchestrator_of_ones_own_plugs_in(system: System, tmp_path: Path) -> None:
    """A plugged-in chooser sees the reasoning; LookupError is not_found; run's errors fail it."""
    mine = _Scripted()
    sessions = Sessions(system, db_path=tmp_path / "o.db", orchestrator=mine)
    sid = sessions.initiate_reasoning_session("Plug in", "alice")
    sessions.add_reasoning_step(sid, "alice", "a premise", "analysis")
    done = sessions.execute_orchestrated_decision(sid, "alice", "ok", wait_s=10)
    assert (done.status, done.reason, done.result) == (
        ExecutionStatus.COMPLETED,
        "always a chain",
        "chain: Task (general): Plug",
    )
    assert [s.text for s in mine.contexts[0].steps] == ["a premise"]
    failed = sessions.execute_orchestrated_decision(sid, "alice", "fail", wait_s=10)
    assert failed.error == "RuntimeError: the strategy broke"
    assert kind_of(lambda: sessions.execute_orchestrated_decision(sid, "alice", "x", "code")) is (
        FailureKind.NOT_FOUND
    )
    assert sessions.get_orchestration_capabilities("alice").strategies == (Strategy.CHAIN,)


def test_a_second_writer_of_the_same_session_is_refused_then_caught_up(
    sessions: Sessions, fake: FakeServer, tmp_path: Path
) -> None:
    """Another process appends first: this one's write is refused, not forked; a retry works."""
    sid = sessions.initiate_reasoning_session("Shared file", "alice", open=True)
    assert sessions.get_reasoning_session(sid, "alice").steps == ()  # active here
    with System(name="other", default_timeout=5.0) as other:
        elsewhere = Sessions(other, db_path=tmp_path / "s.db", catalog=local_catalog(fake, MODELS))
        elsewhere.add_reasoning_step(sid, "bob", "written elsewhere")
    # A clean conflict: the Store checks the seq against the file another writer changed.
    with pytest.raises(AskError, match="expected it at seq 1 but it is at seq 2"):
        sessions.add_reasoning_step(sid, "alice", "written here")
    sessions.add_reasoning_step(sid, "alice", "written here")
    steps = sessions.get_reasoning_session(sid, "alice").steps
    assert [(s.seq, s.text) for s in steps] == [(1, "written elsewhere"), (2, "written here")]


def test_search_finds_a_readable_session_ranked_below_many_unreadable_ones(
    sessions: Sessions,
) -> None:
    """Matches past the first ranked batch are reached when the readable ones are fewer."""
    sids = [
        sessions.initiate_reasoning_session(f"widget {i}", "alice", open=False) for i in range(80)
    ]
    low = " ".join(f"padding{i}" for i in range(60))  # a long text ranks below short ones
    mine = sessions.initiate_reasoning_session(f"widget {low}", "bob")
    hits = sessions.search_reasoning_sessions("bob", "widget")
    assert [h.session_id for h in hits] == [mine]
    assert len(sessions.search_reasoning_sessions("alice", "widget", limit=100)) == len(sids)


def test_a_long_session_is_cut_to_fit_the_smallest_window_of_its_models(
    system: System, fake: FakeServer, tmp_path: Path
) -> None:
    """Models with a 2048-token window get the latest steps that fit, never the whole session.

    The budget is 80% of the window less the answer's 512 tokens; the task and the
    question always stay, and the prompt says how many earlier steps were left out.
    """
    start_host(system, HostConfig(url=fake.url, protocol="openai", timeout_s=5.0), name="local")
    catalog = Catalog(declared={"alpha": ModelConfig(tier=3)})
    infos = tuple(ModelInfo(id=m, loaded=True, context_length=2048) for m in MODELS)
    inventory = HostInventory(url=fake.url, provider="openai", reachable=True, models=infos)
    catalog.add_host("local", inventory)
    sessions = Sessions(system, db_path=tmp_path / "s.db", catalog=catalog).open()
    sid = sessions.initiate_reasoning_session("Pick a cache", "alice")
    for i in range(12):
        sessions.add_reasoning_step(sid, "alice", f"note {i}: " + "x" * 1500, "analysis")
    done = sessions.execute_orchestrated_decision(
        sid, "alice", "Which cache?", "analysis", wait_s=10
    )
    assert done.status is ExecutionStatus.COMPLETED, done.error
    first = [
        c.body["messages"]
        for c in fake.calls
        if c.path.endswith("/chat/completions")
        and "Decide: Which cache?" in c.body["messages"][-1]["content"]
    ]
    assert first
    for messages in first:
        assert sum(len(m["content"]) // 4 + 1 for m in messages) <= int(2048 * 0.8) - 512
        prompt = messages[-1]["content"]
        assert "Pick a cache" in prompt
        assert "note 11:" in prompt
        assert "earlier steps left out" in prompt
