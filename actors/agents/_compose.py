"""Declarative composition: a query and constraints in, a validated swarm plan out.

:func:`plan_swarm`, as pseudocode::

    features = analyse(query)                     task type, complexity, needs
    roles    = templates whose capabilities the query's words ask for (plus the task
               type's default role), at most constraints.max_agents, and a synthesizer
               when more than one role answers in parallel
    for each role: model = the best candidate by quality (declared tier, strengths for
               the task type, the template's preference), cost (price) and memory (size),
               weighted by the constraints; only models that chat, are healthy, fit the
               memory limit and the price limit are candidates
    strategy = constraints.strategy, else chosen from the task and the roles
    validate: every agent through its template (parameters, capabilities, model), the
              strategy's name, the number of agents, the memory of the distinct models
    return SwarmPlan(roles, agents, strategy)

The reactor is built from the plan in :func:`reactor.app.compose_swarm`: ``chain``,
``parallel`` and a single specialist are pipelines of ``agent`` steps; every other
strategy is one ``strategy`` step over the roles' models (:meth:`SwarmPlan.strategy_spec`,
checked by :func:`actors.orchestration.strategies.check` when the plan is made). The
strategy is a name from :data:`STRATEGIES`, the strategies package's kinds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from actors.agents._errors import TemplateError
from actors.agents._roles import AgentSpec
from actors.agents._templates import BUILT_IN_TEMPLATES, Template
from actors.llm import Catalog, ModelEntry
from actors.orchestration import analyse
from actors.orchestration.strategies import (
    COORDINATOR,
    JUDGE,
    KINDS,
    Member,
    Strategy,
    StrategyError,
    check,
)

__all__ = ["STRATEGIES", "SwarmConstraints", "SwarmPlan", "SwarmRole", "plan_swarm"]

STRATEGIES: tuple[str, ...] = KINDS
"""The strategies a swarm may use: :data:`actors.orchestration.strategies.KINDS`."""

_AGENT_PIPELINES: frozenset[str] = frozenset({"chain", "parallel"})
"""Strategies a swarm runs as ``agent`` steps (each role's persona answers); a single role
is one ``agent`` step too. Every other strategy is a ``strategy`` step over the models."""

_KEYWORDS: dict[str, tuple[str, ...]] = {
    "researcher": ("research", "find", "source", "evidence", "investigate", "literature", "search"),
    "analyst": ("analy", "compare", "data", "quantif", "estimate", "evaluate", "trade-off"),
    "writer": ("write", "essay", "blog", "article", "draft", "explain", "report", "story"),
    "coder": ("code", "function", "bug", "implement", "program", "python", "refactor", "test"),
    "critic": ("review", "critique", "check", "verify", "flaw", "risk"),
}
_BY_TASK: dict[str, str] = {
    "code": "coder",
    "reasoning": "analyst",
    "analysis": "analyst",
    "creative": "writer",
    "factual": "researcher",
    "general": "researcher",
}
_TIER_QUALITY = {1: 0.3, 2: 0.5, 3: 0.7}


class SwarmConstraints(msgspec.Struct, frozen=True, kw_only=True):
    """What a composed swarm must respect.

    Attributes:
        max_agents: Agents at most (the synthesizer included), 1 to 12.
        strategy: A strategy from :data:`STRATEGIES` (``None``: chosen from the query).
        models: Models to choose among (default: every chat model the catalog knows).
        max_memory_bytes: The memory all the swarm's distinct models may need together.
        max_price_per_mtok: The most a model may cost per million output tokens.
        quality: Weight of quality when assigning models (0 to 1).
        cost: Weight of cost.
        memory: Weight of memory.
        roles: Templates to use, by name (default: chosen from the query).
        parameters: Parameters per template name (checked against its constraints).
    """

    max_agents: int = 4
    strategy: str | None = None
    models: tuple[str, ...] = ()
    max_memory_bytes: int | None = None
    max_price_per_mtok: float | None = None
    quality: float = 0.6
    cost: float = 0.2
    memory: float = 0.2
    roles: tuple[str, ...] = ()
    parameters: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)


class SwarmRole(msgspec.Struct, frozen=True, kw_only=True):
    """One role of a swarm: its template, its agent, and why its model was chosen."""

    template: str
    agent: AgentSpec
    reason: str = ""


class SwarmPlan(msgspec.Struct, frozen=True, kw_only=True):
    """A validated swarm: what the query needs, the roles, and the strategy.

    Attributes:
        query: The query.
        task_type: The query's task type.
        complexity: The query's complexity, 0 to 1.
        roles: The roles that answer (in order).
        synthesizer: The role that combines the answers, if any.
        strategy: The strategy's name.
        name: The swarm's name (its agents' names start with it).
        embedding_model: ``semantic``: the embedding model that compares the answers.
    """

    query: str
    task_type: str
    complexity: float
    roles: tuple[SwarmRole, ...]
    strategy: str
    name: str
    synthesizer: SwarmRole | None = None
    embedding_model: str | None = None

    @property
    def runs_agents(self) -> bool:
        """Whether the swarm is ``agent`` steps (else one ``strategy`` step)."""
        return self.strategy in _AGENT_PIPELINES or len(self.roles) == 1

    def strategy_spec(self) -> Strategy:
        """The strategy over the roles' models, checked (:func:`~actors.orchestration.check`).

        The roles answer; the synthesizer's model coordinates (``hierarchical``) or
        judges (``combinatorial``), else the first role's does; for ``specialized`` the
        first role (the one chosen for the task type) is the specialist.

        Raises:
            TemplateError: The strategy's constraints are broken (naming the constraint).
        """
        models = [_model_of(r.agent.model) for r in self.roles]
        members = [Member(model=m) for m in models]
        lead = _model_of(self.synthesizer.agent.model) if self.synthesizer else models[0]
        if self.strategy == "hierarchical":
            members.append(Member(model=lead, role=COORDINATOR))
        elif self.strategy == "combinatorial" and self.synthesizer is not None:
            members.append(Member(model=lead, role=JUDGE))
        elif self.strategy == "specialized":
            members[0] = Member(model=models[0], role=self.task_type)
        spec = Strategy(
            kind=self.strategy,  # type: ignore[arg-type]  # checked against STRATEGIES
            members=tuple(members),
            embedding_model=self.embedding_model,
        )
        try:
            check(spec)
        except StrategyError as exc:
            raise TemplateError(
                self.name, f"strategy {self.strategy!r}", f"given {exc.constraint}", str(exc)
            ) from None
        return spec

    @property
    def agents(self) -> list[AgentSpec]:
        """Every agent of the swarm."""
        found = [r.agent for r in self.roles]
        if self.synthesizer is not None:
            found.append(self.synthesizer.agent)
        return found

    def to_json(self) -> bytes:
        """The plan as JSON (:func:`msgspec.json.decode` with ``type=SwarmPlan`` reads it back)."""
        return msgspec.json.encode(self)


def _model_of(model: str | tuple[str, ...]) -> str:
    """An agent's model as a strategy member's (an inline fallback chain: its first)."""
    return model if isinstance(model, str) else model[0]


def _embedding_model(catalog: Catalog | None) -> str | None:
    if catalog is None:
        return None
    found = [e for e in catalog.entries() if "embeddings" in e.capabilities and e.healthy]
    return found[0].qualified if found else None


def _check(constraints: SwarmConstraints) -> None:
    if not 1 <= constraints.max_agents <= 12:
        raise TemplateError(
            "swarm", "constraints.max_agents", "in [1, 12]", f"got {constraints.max_agents}"
        )
    if constraints.strategy is not None and constraints.strategy not in STRATEGIES:
        raise TemplateError(
            "swarm",
            "constraints.strategy",
            f"one of {list(STRATEGIES)}",
            f"got {constraints.strategy!r}",
        )
    for field in ("quality", "cost", "memory"):
        weight = getattr(constraints, field)
        if not 0.0 <= weight <= 1.0:
            raise TemplateError("swarm", f"constraints.{field}", "in [0, 1]", f"got {weight}")


def _roles(
    query: str, task_type: str, constraints: SwarmConstraints, templates: Mapping[str, Template]
) -> list[str]:
    if constraints.roles:
        for index, name in enumerate(constraints.roles):
            if name not in templates:
                raise TemplateError(
                    "swarm",
                    f"constraints.roles[{index}]",
                    f"a template ({', '.join(sorted(templates))})",
                    f"got {name!r}",
                )
        return list(constraints.roles)
    words = query.lower()
    scored = [
        (sum(words.count(k) for k in keys), name)
        for name, keys in _KEYWORDS.items()
        if name in templates
    ]
    chosen = [name for hits, name in sorted(scored, key=lambda x: -x[0]) if hits > 0]
    default = _BY_TASK.get(task_type, "researcher")
    if default in templates and default not in chosen:
        chosen.insert(0, default)
    return chosen or [next(iter(templates))]


def _entries(
    catalog: Catalog | None, known: Sequence[str], constraints: SwarmConstraints
) -> list[tuple[str, ModelEntry | None]]:
    found: list[tuple[str, ModelEntry | None]] = []
    if catalog is not None:
        for entry in catalog.entries():
            if "chat" not in entry.capabilities or not entry.healthy:
                continue
            if (
                constraints.models
                and entry.model not in constraints.models
                and entry.qualified not in constraints.models
            ):
                continue
            found.append((entry.qualified, entry))
    for name in known:
        if constraints.models and name not in constraints.models:
            continue
        if all(name != n and not n.endswith(f"/{name}") for n, _ in found):
            found.append((name, None))
    return found


def _score(
    name: str,
    entry: ModelEntry | None,
    template: Template,
    task_type: str,
    constraints: SwarmConstraints,
) -> tuple[float, str]:
    bare = name.rsplit("/", 1)[-1]
    quality = _TIER_QUALITY.get(entry.tier or 0, 0.4) if entry is not None else 0.4
    if entry is not None and task_type in entry.strengths:
        quality += 0.15
    if bare in template.preferred_models:
        quality += (
            0.1
            * (len(template.preferred_models) - template.preferred_models.index(bare))
            / len(template.preferred_models)
        )
    price = entry.price.output_per_mtok if entry is not None and entry.price is not None else 0.0
    size = (entry.size_bytes or 0) / 2**30 if entry is not None else 0.0
    score = (
        constraints.quality * quality
        - constraints.cost * min(price / 10.0, 1.0)
        - constraints.memory * min(size / 48.0, 1.0)
    )
    return score, f"quality {quality:.2f}, ${price:g}/Mtok out, {size:.1f} GiB"


def _eligible(entry: ModelEntry | None, constraints: SwarmConstraints) -> bool:
    if entry is None:
        return True
    if (
        constraints.max_price_per_mtok is not None
        and entry.price is not None
        and entry.price.output_per_mtok > constraints.max_price_per_mtok
    ):
        return False
    return not (
        constraints.max_memory_bytes is not None
        and entry.size_bytes is not None
        and entry.size_bytes > constraints.max_memory_bytes
    )


def _strategy(task_type: str, complexity: float, roles: int, query: str) -> str:
    words = query.lower()
    if roles == 1:
        return "specialized"
    if re.search(r"\b(agree|consensus|vote|majority)\b", words):
        return "consensus"
    if task_type in {"code", "reasoning"}:
        return "chain"
    if complexity >= 0.6 and roles >= 3:
        return "hierarchical"
    if task_type == "analysis":
        return "concurrent"
    return "hybrid" if roles >= 3 else "parallel"


def plan_swarm(
    query: str,
    constraints: SwarmConstraints | Mapping[str, Any] | None = None,
    *,
    catalog: Catalog | None = None,
    known_models: Sequence[str] = (),
    templates: Mapping[str, Template] | None = None,
) -> SwarmPlan:
    """A validated :class:`SwarmPlan` for ``query`` (see the module docstring).

    Raises:
        TemplateError: A constraint or an agent's configuration is violated (naming the
            field and the constraint); nothing runs.
    """
    if not query.strip():
        raise TemplateError("swarm", "query", "a non-empty question or task")
    if not isinstance(constraints, SwarmConstraints):
        try:
            constraints = msgspec.convert(dict(constraints or {}), SwarmConstraints)
        except msgspec.ValidationError as exc:
            raise TemplateError("swarm", "constraints", "valid constraints", str(exc)) from None
    _check(constraints)
    found = dict(templates or BUILT_IN_TEMPLATES)
    features = analyse(query)
    task_type = str(features.task_type)
    names = _roles(query, task_type, constraints, found)
    strategy = constraints.strategy or _strategy(task_type, features.complexity, len(names), query)
    wants_synth = strategy != "chain" and len(names) > 1 and "summarizer" in found
    limit = constraints.max_agents - (1 if wants_synth else 0)
    if limit < 1:
        raise TemplateError(
            "swarm", "constraints.max_agents", ">= 2 for a strategy with a synthesizer"
        )
    names = names[:limit]
    if len(names) == 1 and constraints.strategy is None:
        strategy, wants_synth = "specialized", False
    entries = _entries(catalog, known_models, constraints)
    if not entries:
        raise TemplateError(
            "swarm", "models", "at least one chat model the catalog knows", "none is available"
        )
    digest = hashlib.sha1(f"{query}|{strategy}|{names}".encode()).hexdigest()[:6]  # noqa: S324 - a name, not security
    swarm = f"swarm-{digest}"

    def assign(template_name: str, agent_name: str) -> SwarmRole:
        template = found[template_name]
        scored = [
            (*_score(name, entry, template, task_type, constraints), name)
            for name, entry in entries
            if _eligible(entry, constraints)
        ]
        if not scored:
            raise TemplateError(
                swarm,
                f"roles.{template_name}.model",
                "a model within the memory and price limits",
                "none fits",
            )
        score, reason, model = max(scored, key=lambda s: s[0])
        known = [name for name, _ in entries]
        spec = template.create(
            agent_name,
            model=model,
            parameters=constraints.parameters.get(template_name, {}),
            catalog=catalog,
            known_models=known,
        )
        return SwarmRole(
            template=template_name, agent=spec, reason=f"{model}: {reason}, score {score:.2f}"
        )

    roles = tuple(assign(name, f"{swarm}-{name}") for name in names)
    synthesizer = assign("summarizer", f"{swarm}-synthesizer") if wants_synth else None
    plan = SwarmPlan(
        query=query,
        task_type=task_type,
        complexity=features.complexity,
        roles=roles,
        strategy=strategy,
        name=swarm,
        synthesizer=synthesizer,
        embedding_model=_embedding_model(catalog) if strategy == "semantic" else None,
    )
    _check_memory(plan, catalog, constraints)
    if not plan.runs_agents:
        plan.strategy_spec()  # its constraints, before anything runs
    return plan


def _check_memory(plan: SwarmPlan, catalog: Catalog | None, constraints: SwarmConstraints) -> None:
    if constraints.max_memory_bytes is None or catalog is None:
        return
    total = 0
    for model in {a.model for a in plan.agents if isinstance(a.model, str)}:
        found = catalog.lookup(model)
        total += max((e.size_bytes or 0 for e in found), default=0)
    if total > constraints.max_memory_bytes:
        raise TemplateError(
            plan.name,
            "constraints.max_memory_bytes",
            f">= the swarm's models' memory ({total} bytes)",
            f"got {constraints.max_memory_bytes}",
        )
