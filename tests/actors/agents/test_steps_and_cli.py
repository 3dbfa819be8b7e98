"""The ``agent`` and ``conversation`` steps, and ``reactor agents`` / ``reactor conversations``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors import AskError
from actors.agents import AgentReply, ConversationState, Termination
from actors.testing import Fault
from dsl import DefinitionError, Input, Reactor, agent, conversation
from reactor.cli import main
from reactor.run import RunFailedError
from tests.actors.agents.conftest import World, peer


class Debate(Reactor, returns="talk"):
    question = Input(str)
    opening = agent("Open the debate on: {question}", agent="ann")
    talk = conversation(
        participants=["ann", "ben"],
        topic="{question}",
        initial="{question}",
        max_rounds=2,
        keyword="TERMINATE",
        wait_for=["opening"],
    )


def test_agent_and_conversation_steps_run_on_the_engine(world: World) -> None:
    """The agent step answers; the conversation step runs to its termination, stored by run."""
    world.agents.define(peer("ann"))
    world.agents.define(peer("ben"))
    handle = world.engine.start(Debate, {"question": "Tabs or spaces?"})
    state = handle.result(timeout=30)
    assert isinstance(state, ConversationState)
    assert state.ended == "max_rounds"
    assert [m.sender for m in state.messages] == ["user", "ann", "ben", "ann", "ben"]
    assert state.id == f"{handle.run_id}.talk"
    assert world.orchestrator.get(state.id).ended == "max_rounds"
    opening = world.engine.journal.read(f"run:{handle.run_id}")
    assert opening  # the run was journaled with its steps


def test_a_continued_conversation_step_keeps_to_its_rounds_in_all(world: World) -> None:
    """A run that continues its step's interrupted conversation runs only the rounds left.

    ``max_rounds=2`` is the conversation's limit: one round begun before the interruption
    leaves one to run (it was two more, three in all).
    """
    world.agents.define(peer("ann"))
    world.agents.define(peer("ben", model="qwen2.5"))
    conversations = world.orchestrator
    key = "r-continued.talk"
    conversations.start(["ann", "ben"], topic="Tabs?", initial="Tabs?", conversation=key)
    world.server.inject(Fault(status=400, model="qwen2.5", times=1))
    with pytest.raises(AskError):
        conversations.run_team(key, termination=Termination(max_rounds=2))
    assert [m.sender for m in conversations.get(key).messages] == ["user", "ann"]
    handle = world.engine.start(Debate, {"question": "Tabs?"}, run_id="r-continued")
    state = handle.result(timeout=30)
    assert state.id == key
    assert state.ended == "max_rounds"
    assert state.rounds == 2
    assert [m.sender for m in state.messages] == ["user", "ann", "ann", "ben"]


def test_an_agent_step_without_agents_fails_with_advice(world: World) -> None:
    """No router by that name: the step fails ``not_found`` saying what to call."""

    class Lonely(Reactor):
        reply = agent("hi", agent="ann", router="nobody")

    with pytest.raises(RunFailedError, match="start_agents"):
        world.engine.run(Lonely, {})


def test_step_options_are_checked_when_the_reactor_is_defined() -> None:
    """A bad pattern or no participants is a DefinitionError naming the option."""
    with pytest.raises(DefinitionError, match="pattern"):

        class Bad(Reactor):
            talk = conversation(participants=["a"], pattern="chaos")

    with pytest.raises(DefinitionError, match="participants"):

        class Empty(Reactor):
            talk = conversation(participants=[])


def test_the_agent_step_result_is_the_agents_reply(world: World) -> None:
    """An ``agent`` step's result is an AgentReply whose agent name may be a template."""
    world.agents.define(peer("ann"))

    class Ask(Reactor):
        who = Input(str)
        reply = agent("Say hello", agent="{who}")

    world.server.script("hello!")
    reply = world.engine.run(Ask, {"who": "ann"})
    assert isinstance(reply, AgentReply)
    assert (reply.agent, reply.content) == ("ann", "hello!")


def test_the_agents_and_conversations_commands(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """List, show, templates, create (with constraint errors), ask; conversations list/show."""
    db, config = str(world.db), str(world.config)
    world.agents.define(peer("ann"))
    world.agents.define(peer("ben"))
    cid = world.orchestrator.start(["ann", "ben"], initial="hi", conversation="c1")
    world.orchestrator.send(cid, "ann", "ben", "hello ben")
    assert main(["agents", "list", "--db", db, "--json"]) == 0
    assert {a["name"] for a in json.loads(capsys.readouterr().out)} >= {"ann", "ben"}
    assert main(["agents", "show", "ben", "--db", db]) == 0
    assert "  ann: hello ben" in capsys.readouterr().out
    assert main(["agents", "show", "nobody", "--db", db]) == 1
    assert main(["agents", "templates"]) == 0
    assert "temperature a float in [0.7, 0.9]" in capsys.readouterr().out
    create = ["agents", "create", "r1", "--template", "researcher", "--config", config, "--db", db]
    assert main([*create, "--param", "temperature=0.95"]) == 2
    assert "parameters.temperature must be a float in [0.7, 0.9]" in capsys.readouterr().err
    assert main([*create, "--model", "gpt-9"]) == 2
    assert main([*create, "--param", "temperature=0.8"]) == 0
    assert "defined r1 (researcher, model qwen2.5)" in capsys.readouterr().out
    world.server.script("I research.")
    assert main(["agents", "ask", "r1", "Who are you?", "--config", config, "--db", db]) == 0
    assert capsys.readouterr().out.strip() == "I research."
    assert main(["conversations", "list", "--db", db, "--json"]) == 0
    assert [c["id"] for c in json.loads(capsys.readouterr().out)] == ["c1"]
    assert main(["conversations", "show", "c1", "--db", db]) == 0
    assert "ann -> ben: hello ben" in capsys.readouterr().out
    assert main(["conversations", "show", "nope", "--db", db]) == 1
    resume = ["conversations", "resume", "c1", "--rounds", "1", "--config", config, "--db", db]
    assert main([*resume, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ended"] == "max_rounds"
