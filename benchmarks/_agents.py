"""The agents' figures of ``python -m benchmarks agents`` (one function per figure group).

:func:`agent_figures` measures, with a zero-latency in-process model (an actor that
answers every ``ChatRequest`` at once, so that only routing, actors and persistence
are timed) and a real SQLite Store (WAL, ``synchronous=NORMAL``):

* ``route_p50_ms``: one message from an agent to another through a conversation
  (``ConversationOrchestrator.send``): the conversation actor, the recipient agent
  actor, its model call and three journal appends; ``direct_ask_p50_ms`` beside it is
  one plain ask of the model actor from the same thread (the floor);
* ``exchange3_p50_ms``: a 3-message exchange (alice → bob → alice → bob);
* ``register10_ms``: registering (defining and storing) 10 new agents.

Another group (reasoning sessions) adds its figures to the same JSON object.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from actors import LoopActor, System
from actors.agents import AgentBackend, Agents, AgentSpec, ConversationOrchestrator, Role
from actors.llm import ChatRequest, Completion, Usage
from actors.store import Store

__all__ = ["InstantModel", "agent_figures"]


class InstantModel(LoopActor[ChatRequest]):
    """A model that answers every request at once (no I/O): the routing benchmark's model."""

    def receive(self, message: ChatRequest) -> object:
        """Answer with a fixed sentence."""
        return Completion(
            model=message.model or "instant",
            provider="instant",
            host="instant",
            content="Noted; here is my view.",
            usage=Usage(input_tokens=10, output_tokens=6),
        )


def _ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 4)


def agent_figures(*, quick: bool) -> dict[str, Any]:
    """Measure routing, a 3-message exchange and registration (see the module docstring)."""
    rounds = 30 if quick else 300
    with tempfile.TemporaryDirectory() as tmp, System(name="bench-agents") as system:
        store: Any = system.spawn(Store.spec(Path(tmp) / "agents.db", synchronous="NORMAL"))
        model = system.spawn(InstantModel, name="instant")
        backend = AgentBackend(store=store, resolve=lambda name: (model, name))
        agents = Agents(system, backend, idle_s=None)
        orchestrator = ConversationOrchestrator(agents)
        role = Role(name="peer", system_prompt="You discuss briefly.")
        orchestrator.register(
            AgentSpec(name="alice", role=role, model="instant"),
            AgentSpec(name="bob", role=role, model="instant"),
        )
        conversation = orchestrator.start(["alice", "bob"], topic="benchmarks")
        for _ in range(5):  # warm up: activations, connections, code paths
            orchestrator.send(conversation, "alice", "bob", "warm up")
        direct, route, exchange = [], [], []
        request = ChatRequest.prompt("instant", "hello")
        for _ in range(rounds):
            start = time.perf_counter()
            model.ask(request)
            direct.append(time.perf_counter() - start)
        for _ in range(rounds):
            start = time.perf_counter()
            orchestrator.send(conversation, "alice", "bob", "What do you think?")
            route.append(time.perf_counter() - start)
        for _ in range(max(rounds // 3, 10)):
            start = time.perf_counter()
            orchestrator.send(conversation, "alice", "bob", "First point.")
            orchestrator.send(conversation, "bob", "alice", "Second point.")
            orchestrator.send(conversation, "alice", "bob", "Third point.")
            exchange.append(time.perf_counter() - start)
        registers = []
        for batch in range(3 if quick else 10):
            specs = [
                AgentSpec(name=f"agent-{batch}-{i}", role=role, model="instant") for i in range(10)
            ]
            start = time.perf_counter()
            orchestrator.register(*specs)
            registers.append(time.perf_counter() - start)
    return {
        "route_p50_ms": _ms(route),
        "direct_ask_p50_ms": _ms(direct),
        "route_over_direct": round(statistics.median(route) / statistics.median(direct), 1),
        "exchange3_p50_ms": _ms(exchange),
        "register10_ms": _ms(registers),
        "route_samples": len(route),
    }
