"""``compose_swarm``: a query and constraints in, a runnable reactor of agent steps out.

The plan (roles, models, strategy) comes from :func:`actors.agents.plan_swarm`; here it
becomes a reactor whose only input is ``query``:

==================  ============================================================
strategy            steps
==================  ============================================================
``chain``           ``agent`` steps: each role answers in turn, given the previous
                    answer
``parallel``        ``agent`` steps: every role answers; the synthesizer combines
                    them under the consensus package's synthesis prompt
one role            one ``agent`` step
everything else     one ``strategy`` step (:func:`dsl.strategy`) of that kind over
                    the roles' models (:meth:`~actors.agents.SwarmPlan.strategy_spec`:
                    the synthesizer's model coordinates or judges; ``semantic`` with
                    the catalog's embedding model), its constraints checked
                    (:func:`actors.orchestration.strategies.check`) before it runs
==================  ============================================================

The result is the final step's :class:`~actors.agents.AgentReply`, or the strategy
step's :class:`~actors.orchestration.strategies.StrategyResult` (both have ``content``).
The reactor class carries its plan (:func:`swarm_plan`); :func:`save_swarm` writes the
plan as JSON and :func:`load_swarm` builds the same reactor again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from actors.agents import (
    Agents,
    SwarmConstraints,
    SwarmPlan,
    Template,
    plan_swarm,
)
from actors.orchestration.consensus import SYNTHESIS_PROMPT
from dsl import Input, Reactor, agent, ref, strategy

__all__ = ["compose_swarm", "load_swarm", "save_swarm", "swarm_plan", "swarm_reactor"]


def _step(role: str) -> str:
    return role.replace("-", "_")


def swarm_reactor(plan: SwarmPlan, *, name: str = "Swarm") -> type[Reactor]:
    """The reactor for ``plan`` (see the module docstring)."""
    ns: dict[str, Any] = {"query": Input(str, description="the question or task")}
    roles = [(_step(r.template), r.agent.name) for r in plan.roles]
    last: str
    if not plan.runs_agents:
        spec = plan.strategy_spec()  # raises TemplateError naming a broken constraint
        ns[plan.strategy] = strategy(
            "{query}",
            kind=spec.kind,
            members=spec.members,
            task_type=plan.task_type,  # type: ignore[arg-type]  # the analyser's
            embedding_model=spec.embedding_model,
        )
        last = plan.strategy
    elif plan.strategy == "chain" or len(roles) == 1:
        previous = ""
        for step_name, agent_name in roles:
            if previous:
                ns[step_name] = agent(
                    "{query}\n\nThe previous agent answered:\n{previous}\n\nImprove on it.",
                    agent=agent_name,
                    args={"previous": ref(previous, "content")},
                )
            else:
                ns[step_name] = agent("{query}", agent=agent_name)
            previous = step_name
        last = previous
    else:
        for step_name, agent_name in roles:
            ns[step_name] = agent("{query}", agent=agent_name)
        last = _combine(ns, plan, [s for s, _ in roles]) if len(roles) > 1 else roles[0][0]
    reactor = type(name, (Reactor,), ns, returns=last)
    reactor.plan = plan  # type: ignore[attr-defined]
    return reactor


def _combine(ns: dict[str, Any], plan: SwarmPlan, steps: list[str]) -> str:
    if plan.synthesizer is None:
        return steps[-1]
    answers = "\n".join(f"{n}. {{{s}_answer}}" for n, s in enumerate(steps, 1))
    ns["synthesis"] = agent(
        f"{SYNTHESIS_PROMPT}\n{answers}\n\nQuestion: {{query}}",
        agent=plan.synthesizer.agent.name,
        args={f"{s}_answer": ref(s, "content") for s in steps},
    )
    return "synthesis"


def compose_swarm(
    query: str,
    constraints: SwarmConstraints | Mapping[str, Any] | None = None,
    *,
    agents: Agents | None = None,
    templates: Mapping[str, Template] | None = None,
    name: str = "Swarm",
) -> type[Reactor]:
    """A reactor that answers ``query`` with a swarm of agents chosen for it.

    Analyses the query, chooses roles from the templates, assigns the catalog's models
    to them (quality, cost, memory), chooses a strategy, validates everything, and, with
    ``agents``, defines the swarm's agents there so the reactor runs as it is
    (``engine.run(swarm, {"query": ...})``).

    Args:
        query: The question or task.
        constraints: A :class:`~actors.agents.SwarmConstraints` or a dict of its fields.
        agents: Where the agents are defined (and whose catalog supplies the models).
        templates: Templates by name (default: the built-in ones).
        name: The reactor's name.

    Raises:
        actors.agents.TemplateError: A constraint is violated (naming the field).
    """
    backend = agents.backend if agents is not None else None
    plan = plan_swarm(
        query,
        constraints,
        catalog=backend.catalog if backend is not None else None,
        known_models=backend.known_models if backend is not None else (),
        templates=templates,
    )
    if agents is not None:
        for spec in plan.agents:
            agents.define(spec, replace=True)
    return swarm_reactor(plan, name=name)


def swarm_plan(reactor: type[Reactor]) -> SwarmPlan:
    """The plan a composed reactor was built from.

    Raises:
        TypeError: The reactor was not made by :func:`compose_swarm` or :func:`swarm_reactor`.
    """
    plan = getattr(reactor, "plan", None)
    if not isinstance(plan, SwarmPlan):
        msg = f"reactor {reactor.__name__!r} was not composed from a swarm plan"
        raise TypeError(msg)
    return plan


def save_swarm(reactor: type[Reactor], path: str | Path) -> Path:
    """Write a composed reactor's plan as JSON."""
    plan = swarm_plan(reactor)
    file = Path(path)
    file.write_bytes(plan.to_json())
    return file


def load_swarm(
    path: str | Path, *, agents: Agents | None = None, name: str = "Swarm"
) -> type[Reactor]:
    """The reactor of a saved plan (its agents defined on ``agents`` when given)."""
    plan = msgspec.json.decode(Path(path).read_bytes(), type=SwarmPlan)
    if agents is not None:
        for spec in plan.agents:
            agents.define(spec, replace=True)
    return swarm_reactor(plan, name=name)
