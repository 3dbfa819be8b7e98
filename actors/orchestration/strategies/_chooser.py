"""The automatic chooser: a strategy from the task's features and what fits in memory now.

:func:`choose_strategy` is pure (a catalog snapshot in, a :class:`StrategyChoice` out,
with the reasons). For ``kind="auto"`` its rules, first match wins:

1. one member: ``chain`` (a single call);
2. a member whose role is the task's type, and a simple task (complexity < 0.4):
   ``specialized`` (one call, to the specialist);
3. a ``coordinator`` member: ``hierarchical``;
4. ``reasoning`` or ``factual`` (one right answer) with 3 or more members: ``consensus``;
5. ``creative``, ``general`` or ``analysis`` with 3 or more members and an embedding
   model the catalog knows: ``semantic``;
6. ``code`` with 2 to 16 members and a complex task (>= 0.4): ``combinatorial``
   (pairwise judging picks the best solution);
7. ``analysis``: ``hybrid`` (drafts, then a synthesis);
8. a trivial task (< 0.15) whose members all fit at once: ``concurrent`` (fastest wins);
9. ``creative``: ``parallel`` (every perspective);
10. otherwise ``chain`` (each model reviews the previous answer), one link per model.

Then the schedule: members run at once only when all their models fit together
(:func:`~._plan.fit`), else in waves that load each model once (:func:`~._plan.plan_waves`),
with the coordinator's (or synthesiser's, or judge's) model last. Explicit kinds are
validated the same way, plus what needs the catalog: a ``semantic`` embedding model
must have the ``embeddings`` capability, a ``concurrent`` strategy must fit at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from actors.llm import Catalog, TaskType
from actors.orchestration.selection import TaskFeatures
from actors.orchestration.strategies._plan import Fit, entry_for, fit, plan_waves
from actors.orchestration.strategies._spec import (
    COORDINATOR,
    JUDGE,
    MAX_COMBINATORIAL,
    Member,
    Profile,
    Strategy,
    StrategyError,
    StrategyKind,
    check,
    member_temperatures,
    profile_for,
)

__all__ = ["AUTO", "StrategyChoice", "check_catalog", "choose_strategy", "specialists"]

AUTO: Literal["auto"] = "auto"
"""The kind that asks the chooser to choose."""

_SIMPLE = 0.4
_TRIVIAL = 0.15


@dataclass(frozen=True, slots=True)
class StrategyChoice:
    """A strategy ready to run: what, with whom, in which waves, and why.

    Attributes:
        strategy: The strategy (kind, members in the order they run, settings).
        task_type: The task's type (it sets the profile and who the specialist is).
        profile: Temperature and token allowances for the task type.
        temperatures: Each member's temperature, in member order.
        waves: Member indexes per wave: one wave means all at once.
        fit: Whether all members' models fit at once, and why.
        reasons: Why this strategy and this schedule, one sentence each.
        auto: Whether the chooser chose the kind (``False``: it was given).
        preferred: Member indexes best first for the task's type (its role, then the
            catalog's declared strengths): who specialises, synthesises, stands in.
    """

    strategy: Strategy
    task_type: TaskType
    profile: Profile
    temperatures: tuple[float, ...]
    waves: tuple[tuple[int, ...], ...]
    fit: Fit
    reasons: tuple[str, ...]
    auto: bool = True
    preferred: tuple[int, ...] = ()

    @property
    def kind(self) -> StrategyKind:
        """The strategy's kind."""
        return self.strategy.kind

    @property
    def concurrent(self) -> bool:
        """Whether the members' first calls all go out at once."""
        return len(self.waves) <= 1


def specialists(
    members: Sequence[Member], task_type: str, catalog: Catalog | None
) -> tuple[int, ...]:
    """Member indexes best first for ``task_type``: its role, declared strengths, order."""

    def rank(index: int) -> tuple[int, int]:
        m = members[index]
        if m.role == task_type:
            return (0, index)
        entry = entry_for(catalog, m)
        if entry is not None and task_type in entry.strengths:
            return (1, index)
        return (2, index)

    eligible = [i for i, m in enumerate(members) if m.role not in (COORDINATOR, JUDGE)]
    return tuple(sorted(eligible, key=rank))


def _has_specialist(members: Sequence[Member], task_type: str, catalog: Catalog | None) -> bool:
    for m in members:
        if m.role == task_type:
            return True
        entry = entry_for(catalog, m)
        if entry is not None and task_type in entry.strengths:
            return True
    return False


def _embedding_ok(name: str | None, catalog: Catalog | None) -> bool:
    if not name:
        return False
    if catalog is None:
        return True
    found = catalog.lookup(name)
    return bool(found) and "embeddings" in found[0].capabilities


def check_catalog(
    strategy: Strategy, catalog: Catalog | None, limits: Mapping[str, int] | None = None
) -> Fit:
    """Validate what needs the catalog, and say whether the members fit at once.

    Raises:
        StrategyError: The ``semantic`` embedding model is unknown or cannot embed, or
            a ``concurrent`` strategy's members do not fit at once.
    """
    check(strategy)
    together = fit(strategy.members, catalog, limits)
    if strategy.kind == "semantic" and catalog is not None:
        name = strategy.embedding_model or ""
        found = catalog.lookup(name)
        if not found:
            raise StrategyError("semantic", "an embedding model", catalog.unknown(name))
        if "embeddings" not in found[0].capabilities:
            raise StrategyError(
                "semantic",
                "an embedding model",
                f"{found[0].qualified} has no embeddings capability "
                f"(it has {', '.join(sorted(found[0].capabilities))})",
            )
    if strategy.kind == "specialized" and not any(
        m.role or ((e := entry_for(catalog, m)) is not None and e.strengths)
        for m in strategy.members
    ):
        raise StrategyError(
            "specialized",
            "a member with a role or declared strengths",
            "give specialists a role (the task type each is good at, e.g. role='code'), "
            "or declare strengths in [models]",
        )
    if strategy.kind == "concurrent" and not together.ok:
        raise StrategyError("concurrent", "all members fit in memory at once", together.reason)
    return together


def _auto(  # noqa: PLR0911 - one return per rule
    features: TaskFeatures,
    members: tuple[Member, ...],
    catalog: Catalog | None,
    together: Fit,
    embedding_model: str | None,
) -> tuple[StrategyKind, str]:
    task = features.task_type
    workers = [m for m in members if m.role not in (COORDINATOR, JUDGE)]
    n = len(workers)
    if len(members) == 1:
        return "chain", "one member: a single call"
    if _has_specialist(members, task, catalog) and features.complexity < _SIMPLE:
        return "specialized", (
            f"a member specialises in {task} and the task is simple "
            f"(complexity {features.complexity:.2f} < {_SIMPLE}): one call to it"
        )
    if any(m.role == COORDINATOR for m in members) and n >= 1:
        return "hierarchical", "a member has the coordinator role: workers answer, it decides"
    if task in ("reasoning", "factual") and n >= 3:
        return "consensus", f"a {task} task has one right answer: {n} members vote"
    free_text = task in ("creative", "general", "analysis")
    if free_text and n >= 3 and _embedding_ok(embedding_model, catalog):
        return "semantic", (
            f"a free-text {task} task with {n} members and an embedding model: "
            "the answer most others resonate with"
        )
    if task == "code" and 2 <= n <= MAX_COMBINATORIAL and features.complexity >= _SIMPLE:
        return "combinatorial", (
            f"complex code (complexity {features.complexity:.2f}): "
            f"every pair of the {n} solutions is judged"
        )
    if task == "analysis":
        return "hybrid", "analysis: every member drafts, the specialist synthesises"
    if features.complexity < _TRIVIAL and together.ok:
        return "concurrent", (
            f"a trivial task (complexity {features.complexity:.2f}) and all members fit "
            "at once: the fastest good answer"
        )
    if task == "creative":
        return "parallel", "creative work: every member's perspective"
    return "chain", f"a {task} task: each model reviews and improves the previous answer"


def _one_per_model(members: tuple[Member, ...]) -> tuple[Member, ...]:
    seen: set[tuple[str | None, str]] = set()
    out: list[Member] = []
    for m in members:
        if (m.host, m.model) not in seen:
            seen.add((m.host, m.model))
            out.append(m)
    return tuple(out)


def choose_strategy(
    features: TaskFeatures,
    members: Sequence[Member],
    catalog: Catalog | None = None,
    *,
    kind: StrategyKind | Literal["auto"] = AUTO,
    threshold: float = 0.6,
    resonance: float = 0.8,
    embedding_model: str | None = None,
    resident_limits: Mapping[str, int] | None = None,
    profiles: Mapping[str, Profile] | None = None,
) -> StrategyChoice:
    """Choose (or validate) a strategy and its schedule for a task.

    Args:
        features: The task's features (:func:`~actors.orchestration.analyse`).
        members: The members (models, roles, temperatures), in order of preference.
        catalog: What is loaded, model sizes and free GPU memory (``None``: unknown,
            everything is taken to fit).
        kind: A strategy, or ``auto`` to choose one by the rules in the module docstring.
        threshold: ``consensus``: agreement below which the result is flagged.
        resonance: ``semantic``: the cosine similarity at which answers resonate.
        embedding_model: The embedding model for ``semantic``.
        resident_limits: Models each host keeps resident, by host name, over the
            defaults (:data:`~._plan.DEFAULT_RESIDENT`).
        profiles: Temperature and tokens per task type, over :data:`~._spec.PROFILES`.

    Raises:
        StrategyError: The strategy's constraints are broken (named with the strategy).
    """
    given = tuple(members)
    if not given:
        raise StrategyError(str(kind), "at least 1 member", "no members were given")
    together = fit(given, catalog, resident_limits)
    reasons: list[str] = []
    auto = kind == AUTO
    chosen: StrategyKind
    if kind == AUTO:
        chosen, why = _auto(features, given, catalog, together, embedding_model)
        reasons.append(why)
    else:
        chosen = kind
        reasons.append(f"{kind} was asked for")
    ordered = given
    if chosen == "chain" and auto:
        ordered = _one_per_model(given)
        if len(ordered) < len(given):
            reasons.append("each model appears once in the chain, so none loads twice")
    strategy = Strategy(
        kind=chosen,
        members=ordered,
        threshold=threshold,
        resonance=resonance,
        embedding_model=embedding_model,
    )
    together = check_catalog(strategy, catalog, resident_limits)
    waves = _schedule(strategy, features.task_type, catalog, resident_limits, together)
    if chosen in ("chain", "specialized"):
        reasons.append("members are asked one after another")
    elif len(waves) <= 1:
        reasons.append(f"members run at once: {together.reason}")
    else:
        reasons.append(
            f"members run in {len(waves)} waves, each model loaded once: {together.reason}"
        )
    profile = profile_for(features.task_type, profiles)
    return StrategyChoice(
        strategy=strategy,
        task_type=features.task_type,
        profile=profile,
        temperatures=member_temperatures(strategy.members, profile.temperature),
        waves=waves,
        fit=together,
        reasons=tuple(reasons),
        auto=auto,
        preferred=specialists(strategy.members, features.task_type, catalog),
    )


def _schedule(
    strategy: Strategy,
    task_type: str,
    catalog: Catalog | None,
    limits: Mapping[str, int] | None,
    together: Fit,
) -> tuple[tuple[int, ...], ...]:
    members = strategy.members
    kind = strategy.kind
    if kind in ("chain", "specialized"):
        return tuple((i,) for i in range(len(members)))
    if kind == "concurrent":
        return (tuple(range(len(members))),)
    last: Member | None = None
    workers = list(range(len(members)))
    if kind == "hierarchical":
        (coordinator,) = strategy.with_role(COORDINATOR)
        last = coordinator
        workers = [i for i, m in enumerate(members) if m.role != COORDINATOR]
    elif kind == "combinatorial":
        judges = strategy.with_role(JUDGE)
        last = judges[0] if judges else members[0]
        workers = [i for i, m in enumerate(members) if m.role != JUDGE]
    elif kind == "hybrid":
        last = members[specialists(members, task_type, catalog)[0]]
    if together.ok:
        return (tuple(workers),)
    sub = [members[i] for i in workers]
    planned = plan_waves(sub, catalog, limits, last=last)
    return tuple(tuple(workers[i] for i in wave) for wave in planned)
