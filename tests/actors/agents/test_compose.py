"""compose_swarm: roles from the query, models from the catalog, a strategy, a runnable reactor."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.agents import STRATEGIES, SwarmConstraints, TemplateError, plan_swarm
from actors.llm import Catalog, HostInventory, ModelInfo
from actors.orchestration.strategies import KINDS, StrategyResult
from reactor.app import compose_swarm, load_swarm, save_swarm, swarm_plan
from tests.actors.agents.conftest import World


def test_roles_models_and_strategy_follow_the_query(world: World) -> None:
    """A research-and-write query gets a researcher, a writer and a synthesizer, in parallel."""
    swarm = compose_swarm(
        "Research the evidence on remote work and write a short report", agents=world.agents
    )
    plan = swarm_plan(swarm)
    assert [r.template for r in plan.roles] == ["researcher", "writer"]
    assert plan.synthesizer is not None
    assert plan.strategy == "parallel"
    assert all(str(r.agent.model).startswith("local/") for r in plan.roles)
    assert all("score" in r.reason for r in plan.roles)
    mermaid = swarm.to_mermaid()
    assert "researcher" in mermaid
    assert "synthesis" in mermaid
    reply = world.engine.run(swarm, {"query": plan.query})
    assert reply.agent == plan.synthesizer.agent.name


def test_a_code_query_is_a_chain_and_each_step_gets_the_previous_answer(world: World) -> None:
    """Code is a chain: the second agent is given the first one's answer."""
    swarm = compose_swarm("Write a python function to parse dates", agents=world.agents)
    assert swarm_plan(swarm).strategy == "chain"
    assert swarm_plan(swarm).roles[0].template == "coder"
    world.server.script("def parse(): ...", "final")
    reply = world.engine.run(swarm, {"query": "Write a python function to parse dates"})
    assert reply.content == "final"
    assert "def parse(): ..." in world.sent()[-1]["content"]


@pytest.mark.parametrize("strategy", ["hierarchical", "hybrid", "consensus", "semantic"])
def test_every_strategy_builds_a_reactor_that_runs(world: World, strategy: str) -> None:
    """Strategies other than an agent pipeline are one strategy step of that kind; each runs."""
    query = "Research, analyse and write about the risks of AI in medicine"
    swarm = compose_swarm(query, {"strategy": strategy, "max_agents": 4}, agents=world.agents)
    plan = swarm_plan(swarm)
    assert plan.strategy == strategy
    assert strategy in swarm.to_mermaid()
    result = world.engine.run(swarm, {"query": query})
    assert isinstance(result, StrategyResult)
    assert result.strategy == strategy
    assert result.content
    models = {c.model for c in world.server.calls if c.path.endswith("/chat/completions")}
    assert models <= {"llama3.2", "qwen2.5"}  # the roles' models answered
    if strategy == "semantic":
        assert plan.embedding_model == "local/nomic-embed"
        assert any(c.path.endswith("/embeddings") for c in world.server.calls)


def test_a_strategy_whose_constraints_the_roles_break_is_refused_before_it_runs(
    world: World,
) -> None:
    """Consensus needs 3 members; two roles (and a synthesizer) are refused at compose time."""
    query = "Research, analyse and write about the risks of AI in medicine"
    with pytest.raises(TemplateError, match="at least 3 members") as caught:
        compose_swarm(query, {"strategy": "consensus", "max_agents": 3}, agents=world.agents)
    assert caught.value.field == "strategy 'consensus'"
    assert not [c for c in world.server.calls if c.method == "POST"]  # no model was asked


def test_models_are_assigned_within_the_constraints(world: World) -> None:
    """Only the given models are candidates; the weights steer quality against cost."""
    plan = plan_swarm(
        "Research tea",
        SwarmConstraints(models=("qwen2.5",)),
        catalog=world.engine.catalog,
    )
    assert {a.model for a in plan.agents} == {"local/qwen2.5"}
    tiered = plan_swarm("Research tea", {"quality": 1.0, "cost": 0.0}, catalog=world.engine.catalog)
    assert tiered.roles[0].agent.model == "local/llama3.2"  # the declared tier 2 wins


@pytest.mark.parametrize(
    ("constraints", "field"),
    [
        ({"strategy": "magic"}, "constraints.strategy"),
        ({"max_agents": 0}, "constraints.max_agents"),
        ({"quality": 2}, "constraints.quality"),
        ({"roles": ["astronaut"]}, "constraints.roles[0]"),
        ({"models": ["gpt-9"]}, "models"),
        ({"parameters": {"researcher": {"temperature": 2.0}}}, "parameters.temperature"),
    ],
)
def test_an_invalid_swarm_is_rejected_naming_the_field(
    world: World, constraints: dict[str, object], field: str
) -> None:
    """Every constraint is validated before anything runs."""
    with pytest.raises(TemplateError) as caught:
        compose_swarm("Research tea", constraints, agents=world.agents)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_models_too_large_for_the_memory_limit_are_not_candidates() -> None:
    """With sizes known, a model over ``max_memory_bytes`` is skipped; none left is an error."""
    catalog = Catalog()
    models = (
        ModelInfo(id="big", loaded=True, size_bytes=40 * 2**30),
        ModelInfo(id="small", loaded=True, size_bytes=2 * 2**30),
    )
    catalog.add_host("gpu", HostInventory(url="http://127.0.0.1:1", reachable=True, models=models))
    plan = plan_swarm("Research tea", {"max_memory_bytes": 8 * 2**30}, catalog=catalog)
    assert {a.model for a in plan.agents} == {"gpu/small"}
    with pytest.raises(TemplateError) as caught:
        plan_swarm("Research tea", {"max_memory_bytes": 2**30}, catalog=catalog)
    assert caught.value.field == "roles.researcher.model"


def test_a_swarm_is_saved_and_loaded(world: World, tmp_path: Path) -> None:
    """The plan round-trips through JSON and builds the same reactor."""
    swarm = compose_swarm("Compare two databases and analyse the trade-offs", agents=world.agents)
    path = save_swarm(swarm, tmp_path / "swarm.json")
    again = load_swarm(path, agents=world.agents)
    assert swarm_plan(again) == swarm_plan(swarm)
    assert again.to_mermaid() == swarm.to_mermaid()
    assert set(STRATEGIES) >= {swarm_plan(swarm).strategy}
    assert STRATEGIES == KINDS  # one list of names: the strategies package's
