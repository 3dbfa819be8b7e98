"""Agents on a real Engine over a fake OpenAI-compatible server on loopback.

A TOML configuration, the fleet's catalog, a Selector, fallback chains, a real SQLite Store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors import System
from actors.agents import Agents, AgentSpec, ConversationOrchestrator, Role, Window
from actors.llm import load_config, start_fleet
from actors.testing import FakeModel, FakeServer
from reactor.app import Engine


@dataclass
class World:
    """What a test uses: the server, the engine, its agents, and the database file."""

    server: FakeServer
    system: System
    engine: Engine
    agents: Agents
    db: Path
    config: Path

    @property
    def orchestrator(self) -> ConversationOrchestrator:
        """Conversations over the agents."""
        return ConversationOrchestrator(self.agents)

    def sent(self, index: int = -1) -> list[dict[str, str]]:
        """The chat messages of one request the server received (the last by default)."""
        calls = [c for c in self.server.calls if c.path.endswith("/chat/completions")]
        messages: list[dict[str, str]] = calls[index].body["messages"]
        return messages


def peer(
    name: str, *, model: str | tuple[str, ...] = "llama3.2", window: Window | None = None
) -> AgentSpec:
    """An agent with a one-line role."""
    return AgentSpec(
        name=name,
        role=Role(name=f"{name}-role", system_prompt=f"You are {name}."),
        model=model,
        window=window or Window(),
    )


def write_config(tmp_path: Path, server: FakeServer) -> Path:
    """A configuration with the fake server as its one host."""
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[hosts.local]
url = "{server.url}"
protocol = "openai"
context_windows = {{ "qwen2.5" = 2048, "llama3.2" = 8192 }}

[discovery]
enabled = false

[resources]
nvml = false

[models."llama3.2"]
tier = 2

[fallback.chains.small_first]
links = ["qwen2.5", "local/llama3.2"]
"""
    )
    return path


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fake OpenAI-compatible server with two models."""
    models = [
        FakeModel("llama3.2", context_length=8192),
        FakeModel("qwen2.5", context_length=2048),
        FakeModel("nomic-embed", embeddings=True),  # for the semantic strategy
    ]
    with FakeServer("openai", models=models) as running:
        yield running


@pytest.fixture
def world(tmp_path: Path, server: FakeServer) -> Iterator[World]:
    """An Engine on the fake server, with agents that passivate after 0.2 s idle."""
    config = write_config(tmp_path, server)
    settings = load_config(config)
    db = tmp_path / "agents.db"
    with System(name="agents-test", default_timeout=10.0) as system:
        fleet = start_fleet(system, settings)
        try:
            with Engine(system, fleet=fleet, db_path=db, config=settings) as engine:
                agents = engine.start_agents(idle_s=0.2, timeout=10.0)
                yield World(server, system, engine, agents, db, config)
        finally:
            fleet.close()
