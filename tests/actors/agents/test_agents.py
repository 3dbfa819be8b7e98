"""Agents: answers through each kind of model, persisted history, windowing, passivation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest

from actors import AskError, System
from actors.agents import (
    AgentBackend,
    AgentError,
    AgentNotFoundError,
    Agents,
    Window,
    estimate_tokens,
    load_agent,
)
from actors.store import Journal, Store
from actors.testing import FakeToolCall, Fault, Reply
from actors.tools import ToolRegistry, tool
from tests.actors.agents.conftest import World, peer


def wait_for(condition: object, timeout: float = 5.0) -> None:
    """Poll a condition the runtime makes true (a passivation timer) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_an_agent_answers_with_its_role_and_remembers_the_exchange(world: World) -> None:
    """The system prompt is the role's; the history grows by the message and the answer."""
    world.agents.define(peer("alice"))
    world.server.script(Reply(text="Hello from Alice"))
    reply = world.agents.respond("alice", "Hi there")
    assert (reply.agent, reply.content, reply.model) == (
        "alice",
        "Hello from Alice",
        "local/llama3.2",
    )
    assert reply.input_tokens > 0
    assert world.sent()[0] == {"role": "system", "content": "You are alice."}
    world.agents.agent("alice").respond("And again?")
    assert [m["content"] for m in world.sent()[1:]] == [
        "Hi there",
        "Hello from Alice",
        "And again?",
    ]
    state = world.agents.get("alice")
    assert [t.role for t in state.turns] == ["user", "assistant", "user", "assistant"]


async def test_respond_async_from_asyncio_code(world: World) -> None:
    """The async API answers on the caller's loop; concurrent asks are answered in turn."""
    await world.agents.define_async(peer("bob"))
    replies = await asyncio.gather(
        *(world.agents.respond_async("bob", f"question {i}") for i in range(3))
    )
    assert [r.turns for r in replies] == [2, 4, 6]
    assert len((await world.agents.get_async("bob")).turns) == 6


def test_a_passivated_agent_is_activated_from_the_store_by_name(world: World) -> None:
    """After idling it stops; the next message brings it back with its history."""
    agents = world.agents
    agents.define(peer("carol"))
    agents.respond("carol", "Remember the number 42.")
    wait_for(lambda: not agents.is_active("carol"))
    assert agents.activations.passivated >= 1
    before = agents.activations.activated
    agents.respond("carol", "What was the number?")
    assert agents.activations.activated == before + 1
    assert "Remember the number 42." in [m["content"] for m in world.sent()]


def test_agents_survive_a_restart_of_the_whole_process(world: World) -> None:
    """A new System over the same database finds the agent and its history."""
    world.agents.define(peer("dave"))
    world.agents.respond("dave", "first")
    with System(name="second", default_timeout=5.0) as system:
        store: Any = system.spawn(Store.spec(world.db, name="store2"))
        again = Agents(system, AgentBackend(store=store), name="agents2")
        assert again.get("dave").turns[0].content == "first"
        assert "dave" in again.names()
        memory = system.bridge.run(load_agent(Journal(store), "dave"))
        assert memory.spec is not None
        assert memory.spec.name == "dave"


def test_unknown_and_conflicting_definitions_are_errors(world: World) -> None:
    """An undefined agent is AgentNotFoundError; redefining needs replace=True."""
    with pytest.raises(AgentNotFoundError, match="nobody"):
        world.agents.respond("nobody", "hello?")
    world.agents.define(peer("erin"))
    assert world.agents.define(peer("erin")).name == "erin"  # the same definition again
    with pytest.raises(AgentError, match="replace=True"):
        world.agents.define(peer("erin", model="qwen2.5"))
    assert world.agents.define(peer("erin", model="qwen2.5"), replace=True).model == "qwen2.5"


def test_a_summary_window_folds_older_turns_with_a_model_call(world: World) -> None:
    """Past the limit, older turns are summarised (stored) and the prompt carries the summary."""
    world.agents.define(peer("fay", window=Window.summary(after=3, keep=1)))
    world.server.script("one", "two")
    world.agents.respond("fay", "q1")
    world.agents.respond("fay", "q2")
    world.server.script("SUMMARY-TEXT", "three")
    reply = world.agents.respond("fay", "q3")
    assert reply.content == "three"
    summary_request = world.sent(-2)
    assert "Summarise the conversation" in summary_request[-1]["content"]
    last = world.sent()
    assert last[1]["content"] == "Summary of the earlier conversation: SUMMARY-TEXT"
    assert [m["content"] for m in last[2:]] == ["q3"]
    state = world.agents.get("fay")
    assert (state.summary, state.summarised) == ("SUMMARY-TEXT", 4)


def test_a_token_window_sends_only_what_fits(world: World) -> None:
    """With a small token limit the oldest turns are not sent."""
    world.agents.define(peer("gus", window=Window.token_limit(40)))
    for i in range(4):
        world.agents.respond("gus", f"message {i} " + "x" * 60)
    contents = [m["content"] for m in world.sent()[1:]]
    assert contents[-1].startswith("message 3")
    assert len(contents) < 7


def test_a_fallback_chain_model_moves_on_when_the_first_link_fails(world: World) -> None:
    """A tuple of models is an inline chain: a 500 on the first answers from the second."""
    world.agents.define(peer("hal", model=("llama3.2", "qwen2.5")))
    world.server.inject(Fault(status=500, model="llama3.2", times=1))
    reply = world.agents.respond("hal", "hello")
    assert reply.model.endswith("qwen2.5")


def test_an_auto_model_lets_the_selector_choose(world: World) -> None:
    """``auto:cheapest`` goes through the engine's Selector to a catalog model."""
    world.agents.define(peer("ida", model="auto:cheapest"))
    reply = world.agents.respond("ida", "Write a haiku")
    assert reply.model.split("/")[-1] in {"llama3.2", "qwen2.5"}


def test_an_auto_agents_history_is_fitted_to_the_largest_chat_window(world: World) -> None:
    """``auto``: fitted to llama3.2's 8192 tokens (the Selector skips qwen2.5's 2048).

    Unfitted, the history outgrew every model and the Selector found none to ask.
    """
    spec = peer("jo", model="auto")
    assert world.agents.backend.context_tokens(spec) == 8192
    world.agents.define(spec)
    for i in range(9):
        world.agents.respond("jo", f"turn {i} " + "y" * 3200)
    messages = world.sent()
    assert sum(estimate_tokens(m["content"]) for m in messages) <= int(8192 * 0.8) - 512
    assert messages[-1]["content"].startswith("turn 8")


def test_a_configured_chain_agent_is_fitted_to_its_smallest_link(world: World) -> None:
    """``chain:small_first``: qwen2.5's 2048 tokens, so that every link can take it.

    As an inline chain's; it was fitted to nothing, so the first link refused a long
    history and only the last could answer.
    """
    spec = peer("kim", model="chain:small_first")
    assert world.agents.backend.context_tokens(spec) == 2048
    world.agents.define(spec)
    for i in range(4):
        reply = world.agents.respond("kim", f"turn {i} " + "z" * 3200)
        assert reply.model.endswith("qwen2.5")
    messages = world.sent()
    assert sum(estimate_tokens(m["content"]) for m in messages) <= 2048
    assert world.agents.backend.context_tokens(peer("lee", model="chain:nowhere")) is None


def test_a_model_that_fails_leaves_the_history_as_it_was(world: World) -> None:
    """A failed call raises AskError with its kind; nothing is stored."""
    world.agents.define(peer("jon"))
    world.server.inject(Fault(status=400, times=1))
    with pytest.raises(AskError) as caught:
        world.agents.respond("jon", "hello")
    assert caught.value.failure.kind == "bad_request"
    assert world.agents.get("jon").turns == ()


def test_an_agent_with_tools_runs_the_tool_loop(world: World) -> None:
    """Its tools go through the engine's ToolRunner; the answer follows the tool's result."""
    calls: list[str] = []

    @tool(read_only=True)
    def lookup(city: str) -> str:
        """The weather in a city.

        Args:
            city: The city.
        """
        calls.append(city)
        return "sunny"

    world.engine.start_tools(ToolRegistry([lookup]), name="agent-tools")
    agents = world.engine.start_agents(tools="agent-tools", name="tool-agents")
    spec = peer("kim")
    agents.define(msgspec.structs.replace(spec, tools=("lookup",)))
    world.server.script(
        Reply(tool_calls=(FakeToolCall("lookup", {"city": "Oslo"}),)), "It is sunny."
    )
    reply = agents.respond("kim", "Weather in Oslo?")
    assert calls == ["Oslo"]
    assert reply.content == "It is sunny."


def test_a_summary_of_long_turns_is_folded_in_parts_that_fit_the_window(world: World) -> None:
    """qwen2.5 (2048 tokens): turns too long to summarise at once are folded in parts.

    Every request, the summary's included, stays within the agent's prompt budget (80%
    of the window less the answer's 512 tokens), and the summary covers every turn.
    """
    world.agents.define(peer("ivy", model="qwen2.5", window=Window.summary(after=3, keep=1)))
    world.server.script("one", "two")
    world.agents.respond("ivy", "q1 " + "a" * 3000)
    world.agents.respond("ivy", "q2 " + "b" * 3000)
    world.server.script("S1", "S2", "three")
    assert world.agents.respond("ivy", "q3").content == "three"
    calls = [c.body["messages"] for c in world.server.calls if c.path.endswith("/completions")]
    for messages in calls:
        assert sum(estimate_tokens(m["content"]) for m in messages) <= int(2048 * 0.8) - 512
    folds = [m[-1]["content"] for m in calls if "Summarise the conversation" in m[-1]["content"]]
    assert len(folds) == 2
    assert "q1" in folds[0]
    assert "q2" not in folds[0]
    assert folds[1].startswith("Summary so far: S1")
    assert "q2" in folds[1]
    state = world.agents.get("ivy")
    assert (state.summary, state.summarised) == ("S2", 4)
