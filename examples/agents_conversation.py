"""Two agents with roles hold a conversation, moderated, until one says TERMINATE.

Offline: a fake OpenAI-compatible server plays the model (scripted answers), and a real
ModelHost, Engine, Store and the agents' virtual actors do the rest. Agents are made
from a template (every parameter checked against its constraint) and by hand; the
conversation is stored, so it can be listed and resumed later.

Run it with ``.venv/bin/python examples/agents_conversation.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from actors import System
from actors.agents import (
    BUILT_IN_TEMPLATES,
    AgentSpec,
    ConversationOrchestrator,
    Role,
    TemplateError,
    Termination,
    Window,
)
from actors.llm import HostConfig, ModelHost
from actors.testing import FakeServer
from reactor import Engine

with tempfile.TemporaryDirectory() as tmp, FakeServer("openai", models=["llama3.2"]) as server:
    db = Path(os.environ.get("REACTOR_DB") or Path(tmp) / "agents.db")
    server.script(
        "Tabs let each reader pick the width.",  # optimist
        "Spaces look the same everywhere, which matters in reviews.",  # skeptic
        "Both agree consistency matters most. TERMINATE",  # optimist
    )
    with System(name="agents-example") as system:
        system.spawn(ModelHost, name="local", args=(HostConfig(url=server.url, protocol="openai"),))
        with Engine(system, db_path=db, hosts={"llama3.2": "local"}) as engine:
            agents = engine.start_agents()
            try:  # a template's parameters are checked before anything runs
                BUILT_IN_TEMPLATES["researcher"].create(
                    "r", parameters={"temperature": 1.5}, known_models=["llama3.2"]
                )
            except TemplateError as error:
                print("rejected:", error)
            optimist = BUILT_IN_TEMPLATES["writer"].create(
                "optimist", parameters={"temperature": 0.9}, known_models=["llama3.2"]
            )
            skeptic = AgentSpec(
                name="skeptic",
                role=Role(
                    name="skeptic",
                    system_prompt="You question every claim, politely.",
                    context={"experience": "20 years of code review"},
                    constraints=("Answer in one sentence.",),
                ),
                model="llama3.2",  # or "auto", "auto:cheapest", ("llama3.2", "gpt-4o-mini")
                window=Window.token_limit(2000),  # or Window.last(10), Window.summary(after=12)
            )
            conversations = ConversationOrchestrator(agents)
            conversations.register(optimist, skeptic, replace=True)
            cid = conversations.start(
                ["optimist", "skeptic"], topic="tabs or spaces", initial="Tabs or spaces?"
            )
            state = conversations.run_team(
                cid, termination=Termination(max_rounds=3, keyword="TERMINATE")
            )
            for said in state.messages:
                print(f"{said.sender:>9}: {said.content}")
            print("ended by:", state.ended, "| stored:", [c.id for c in conversations.list()])
