"""Conversations: messages in context, team patterns, termination, persistence, spans."""

from __future__ import annotations

from typing import Any

import pytest

from actors import System
from actors.agents import (
    AgentBackend,
    Agents,
    ConversationError,
    ConversationOrchestrator,
    ConversationState,
    Termination,
)
from actors.store import Store
from actors.testing import Reply
from otel.testing import InMemorySpanExporter
from tests.actors.agents.conftest import World, peer


@pytest.fixture
def trio(world: World) -> ConversationOrchestrator:
    orchestrator = world.orchestrator
    orchestrator.register(peer("ann"), peer("ben"), peer("mod"))
    return orchestrator


def test_a_message_between_two_agents_is_answered_in_the_conversations_context(
    world: World, trio: ConversationOrchestrator
) -> None:
    """The recipient sees what it has not seen yet, with senders; both messages are stored."""
    cid = trio.start(["ann", "ben"], topic="tea", initial="Is green tea better?")
    world.server.script("Ben: maybe.")
    said = trio.send(cid, "ann", "ben", "I say yes.")
    assert (said.sender, said.recipient, said.content) == ("ben", "ann", "Ben: maybe.")
    sent = [m["content"] for m in world.sent()]
    assert sent == ["You are ben.", "Is green tea better?", "[ann] I say yes."]
    state = trio.get(cid)
    assert [(m.sender, m.recipient) for m in state.messages] == [
        ("user", ""),
        ("ann", "ben"),
        ("ben", "ann"),
    ]


def test_round_robin_with_a_moderator_runs_rounds_until_max_rounds(
    world: World, trio: ConversationOrchestrator
) -> None:
    """The moderator opens each round; then every participant speaks in order."""
    cid = trio.start(["ann", "ben"], topic="naming", initial="Pick a name.", moderator="mod")
    state = trio.run_team(cid, termination=Termination(max_rounds=2))
    assert state.ended == "max_rounds"
    assert [(m.sender, m.round) for m in state.messages[1:]] == [
        ("mod", 1),
        ("ann", 1),
        ("ben", 1),
        ("mod", 2),
        ("ann", 2),
        ("ben", 2),
    ]


@pytest.mark.parametrize(
    ("termination", "reason", "messages"),
    [
        (Termination(max_rounds=5, keyword="TERMINATE"), "keyword", 2),
        (Termination(max_rounds=5, max_messages=3), "max_messages", 3),
        (Termination(max_rounds=5, budget_tokens=1), "budget", 1),
        (
            Termination(
                max_rounds=5,
                predicate=lambda s: any("stop here" in m.content for m in s.messages),
            ),
            "predicate",
            3,
        ),
    ],
)
def test_termination_conditions_end_the_conversation_with_their_reason(
    world: World,
    trio: ConversationOrchestrator,
    termination: Termination,
    reason: str,
    messages: int,
) -> None:
    """Keyword, message count, budget and predicate each stop it, and say so."""
    world.server.script("first", "Agreed. TERMINATE", "stop here", "more", "more", "more")
    cid = trio.start(["ann", "ben"], topic="t", initial="go")
    state = trio.run_team(cid, termination=termination)
    assert state.ended == reason
    assert len(state.messages) - 1 == messages


def test_a_selector_function_or_model_picks_the_next_speaker(
    world: World, trio: ConversationOrchestrator
) -> None:
    """``selector_func`` decides in Python; without it the moderator's model names the speaker."""
    cid = trio.start(["ann", "ben"], topic="t", initial="go")
    state = trio.run_team(
        cid,
        pattern="selector",
        termination=Termination(max_rounds=3),
        selector_func=lambda s: "ben" if s.messages[-1].sender != "ben" else "ann",
    )
    assert [m.sender for m in state.messages[1:]] == ["ben", "ann", "ben"]
    cid2 = trio.start(["ann", "ben", "mod"], topic="t", initial="go", moderator="mod")
    world.server.script("Next: ben", "ben here", "I pick ann", "ann here")
    state = trio.run_team(cid2, pattern="selector", termination=Termination(max_rounds=2))
    assert [m.sender for m in state.messages[1:]] == ["ben", "ann"]
    assert "Who should speak next?" in world.sent(-2)[-1]["content"]


def test_conversations_are_listed_and_resumed_after_a_restart(world: World) -> None:
    """A stored conversation is listed and continued by a new process."""
    orchestrator = world.orchestrator
    orchestrator.register(peer("ann"), peer("ben"))
    cid = orchestrator.start(["ann", "ben"], topic="t", initial="go", conversation="resumable")
    orchestrator.run_team(cid, termination=Termination(max_rounds=1))
    with System(name="later", default_timeout=10.0) as system:
        store: Any = system.spawn(Store.spec(world.db, name="store2"))
        host = world.system.lookup("local")
        backend = AgentBackend(store=store, resolve=lambda model: (host, model))
        later = ConversationOrchestrator(Agents(system, backend, name="agents2"))
        listed = later.list()
        assert [(c.id, c.ended) for c in listed] == [("resumable", True)]
        state = later.resume("resumable", termination=Termination(max_rounds=1))
        assert [m.round for m in state.messages[1:]] == [1, 1, 2, 2]
        assert state.ended == "max_rounds"


def test_bad_conversations_are_refused(world: World, trio: ConversationOrchestrator) -> None:
    """Unknown conversations, unknown participants and a duplicate id are errors."""
    with pytest.raises(ConversationError, match="no conversation"):
        trio.get("missing")
    with pytest.raises(Exception, match="nobody"):
        trio.start(["ann", "nobody"])
    trio.start(["ann"], conversation="once")
    with pytest.raises(Exception, match="exists already"):
        trio.start(["ann"], conversation="once")
    with pytest.raises(ConversationError, match="pattern"):
        trio.run_team("once", pattern="chaos")


def test_each_answer_is_an_invoke_agent_span(
    world: World, trio: ConversationOrchestrator, spans: InMemorySpanExporter
) -> None:
    """Agents' work appears as ``invoke_agent`` spans carrying the conversation id."""
    cid = trio.start(["ann", "ben"], topic="t", initial="go")
    world.server.script(Reply(text="ok"))
    trio.send(cid, "ann", "ben", "hello")
    found = [s for s in spans.get_finished_spans() if s.name == "invoke_agent ben"]
    assert len(found) == 1
    attributes = dict(found[0].attributes or {})
    assert attributes["gen_ai.operation.name"] == "invoke_agent"
    assert attributes["gen_ai.conversation.id"] == cid
    chats = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert any(c.parent is not None and c.parent.span_id == found[0].context.span_id for c in chats)


def test_the_state_is_a_message_that_round_trips(trio: ConversationOrchestrator) -> None:
    """ConversationState encodes with msgspec (what the daemon and journal exchange)."""
    import msgspec

    cid = trio.start(["ann"], initial="hi")
    state = trio.get(cid)
    assert msgspec.json.decode(msgspec.json.encode(state), type=ConversationState) == state
