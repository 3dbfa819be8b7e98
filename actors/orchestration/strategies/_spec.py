"""What a strategy is: its kind, its members, its settings, and the constraints on them.

Nine kinds, in two families. The first says how members' calls are arranged; the second
how several answers become one:

==================  =================================================================
``concurrent``      every member at once; the first good answer wins (the rest are
                    cancelled). All members must fit in memory together.
``chain``           members one after another, each refining the previous answer.
``specialized``     the member whose role is the task's type answers alone (the next
                    best when it fails).
``hybrid``          every member drafts, then the specialist for the task's type (else
                    the first member) synthesises the drafts.
``parallel``        every member answers independently; the answer is every
                    perspective, labelled.
``consensus``       every member answers; an aggregator picks the answer and says how
                    much they agree; below ``threshold`` the result is flagged. At
                    least 3 members.
``hierarchical``    workers answer; the ``coordinator`` member reads them and decides
                    (the best worker answer when the coordinator fails).
``semantic``        every member answers; answers are embedded by ``embedding_model``
                    and clustered (cosine >= ``resonance``); the largest cluster's
                    most central answer wins.
``combinatorial``   every member answers; each pair is judged (which is better?) and
                    the answer with the most wins is chosen. 2 to 16 members.
==================  =================================================================

:func:`check` validates a :class:`Strategy` before anything runs and raises
:class:`StrategyError` naming the strategy and the constraint broken.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from actors.llm import TaskType

__all__ = [
    "COORDINATOR",
    "JUDGE",
    "KINDS",
    "MAX_COMBINATORIAL",
    "PROFILES",
    "Member",
    "Profile",
    "Strategy",
    "StrategyError",
    "StrategyKind",
    "check",
    "member",
    "member_temperatures",
    "profile_for",
]

StrategyKind = Literal[
    "concurrent",
    "chain",
    "specialized",
    "hybrid",
    "parallel",
    "consensus",
    "hierarchical",
    "semantic",
    "combinatorial",
]
"""The strategies a reasoning task can run under."""

KINDS: tuple[StrategyKind, ...] = typing.get_args(StrategyKind)
"""Every strategy kind (``auto`` is not one: it asks the chooser for one of these)."""

COORDINATOR = "coordinator"
"""The role of a ``hierarchical`` strategy's coordinator."""

JUDGE = "judge"
"""The role of the member that judges a ``combinatorial`` strategy's pairs (optional)."""

MAX_COMBINATORIAL = 16
"""The most members a ``combinatorial`` strategy may have (16 members: 120 pairs)."""


class StrategyError(ValueError):
    """A strategy's constraint is broken; raised before any member is asked.

    Attributes:
        strategy: The strategy's kind.
        constraint: The constraint, in a few words (``at least 3 members``).
    """

    def __init__(self, strategy: str, constraint: str, detail: str) -> None:
        self.strategy = strategy
        self.constraint = constraint
        super().__init__(f"strategy {strategy!r}: {constraint}: {detail}")


@dataclass(frozen=True, slots=True)
class Member:
    """One participant of a strategy: a model, and what it does.

    Attributes:
        model: The model (``model``, ``host/model`` or an alias).
        host: The host, when ``model`` does not name it.
        role: ``coordinator``, ``judge``, a task type it specialises in (``code``,
            ``reasoning``, ...), or ``""`` (a plain member).
        temperature: Its own sampling temperature (``None``: the task type's).
        weight: Its vote's weight (the default plurality counts it; an injected
            aggregator gets the members beside their answers).
    """

    model: str
    host: str | None = None
    role: str = ""
    temperature: float | None = None
    weight: float = 1.0

    @property
    def label(self) -> str:
        """How results and errors name it: ``host/model`` (or the model), with its role."""
        name = f"{self.host}/{self.model}" if self.host else self.model
        return f"{name} ({self.role})" if self.role else name


def member(
    model: str,
    *,
    host: str | None = None,
    role: str = "",
    temperature: float | None = None,
    weight: float = 1.0,
) -> Member:
    """A :class:`Member` (for ``strategy(..., members=[member("m", role="coordinator")])``)."""
    return Member(model=model, host=host, role=role, temperature=temperature, weight=weight)


@dataclass(frozen=True, slots=True)
class Strategy:
    """A strategy to run: its kind, members and settings (validated by :func:`check`).

    Attributes:
        kind: The strategy.
        members: Its members, in order (order breaks ties and picks the primary).
        threshold: ``consensus``: the agreement below which the result is flagged.
        resonance: ``semantic``: the cosine similarity at which two answers resonate.
        embedding_model: ``semantic``: the embedding model (``model`` or ``host/model``).
    """

    kind: StrategyKind
    members: tuple[Member, ...]
    threshold: float = 0.6
    resonance: float = 0.8
    embedding_model: str | None = None

    def with_role(self, role: str) -> tuple[Member, ...]:
        """The members whose role is ``role``."""
        return tuple(m for m in self.members if m.role == role)


def check(strategy: Strategy) -> None:
    """Validate ``strategy``'s constraints (those that need no catalog).

    Raises:
        StrategyError: A constraint is broken; its message names the strategy, the
            constraint and what was given.
    """
    kind = strategy.kind
    if kind not in KINDS:
        raise StrategyError(str(kind), "a known strategy", f"known: {', '.join(KINDS)}")
    members = strategy.members
    if not members:
        raise StrategyError(kind, "at least 1 member", "no members were given")
    for m in members:
        if not isinstance(m.model, str) or not m.model:
            raise StrategyError(kind, "members name models", f"got {m.model!r}")
    rule = _RULES.get(kind)
    if rule is not None:
        rule(strategy, len(members))


def _consensus(strategy: Strategy, count: int) -> None:
    if count < 3:
        raise StrategyError(
            "consensus", "at least 3 members", f"got {count}: a vote of fewer decides nothing"
        )
    if not 0.0 < strategy.threshold <= 1.0:
        raise StrategyError(
            "consensus",
            "threshold in (0, 1]",
            f"got {strategy.threshold!r} (a share of agreement)",
        )


def _hierarchical(strategy: Strategy, count: int) -> None:
    coordinators = strategy.with_role(COORDINATOR)
    if len(coordinators) != 1:
        raise StrategyError(
            "hierarchical",
            "exactly one member with role 'coordinator'",
            f"got {len(coordinators)} among {[m.label for m in strategy.members]}",
        )
    if count < 2:
        raise StrategyError("hierarchical", "at least 1 worker besides the coordinator", "none")


def _semantic(strategy: Strategy, count: int) -> None:
    if not strategy.embedding_model:
        raise StrategyError(
            "semantic", "an embedding model", "give embedding_model= (a model with embeddings)"
        )
    if count < 2:
        raise StrategyError("semantic", "at least 2 members", f"got {count}")
    if not 0.0 < strategy.resonance <= 1.0:
        raise StrategyError(
            "semantic",
            "resonance in (0, 1]",
            f"got {strategy.resonance!r} (a cosine similarity)",
        )


def _combinatorial(strategy: Strategy, _count: int) -> None:
    workers = [m for m in strategy.members if m.role != JUDGE]
    if not 2 <= len(workers) <= MAX_COMBINATORIAL:
        raise StrategyError(
            "combinatorial",
            f"2 to {MAX_COMBINATORIAL} agents",
            f"got {len(workers)} ({len(workers) * (len(workers) - 1) // 2} pairs)",
        )
    if len(strategy.with_role(JUDGE)) > 1:
        raise StrategyError("combinatorial", "at most one member with role 'judge'", "several")


def _several(strategy: Strategy, count: int) -> None:
    if count < 2:
        raise StrategyError(strategy.kind, "at least 2 members", f"got {count}")


_RULES: dict[str, Callable[[Strategy, int], None]] = {
    "consensus": _consensus,
    "hierarchical": _hierarchical,
    "semantic": _semantic,
    "combinatorial": _combinatorial,
    "hybrid": _several,
    "parallel": _several,
}
"""The constraints of each kind that has any beyond one member."""


@dataclass(frozen=True, slots=True)
class Profile:
    """How a task type is asked: sampling temperature and output tokens per member call.

    Attributes:
        temperature: The members' temperature (a repeated model spreads around it).
        max_tokens: Output tokens for each member's answer.
        synthesis_tokens: Output tokens for a coordinator's or synthesiser's answer.
        judge_tokens: Output tokens for one pairwise judgement.
    """

    temperature: float
    max_tokens: int
    synthesis_tokens: int
    judge_tokens: int = 16


PROFILES: Mapping[TaskType, Profile] = {
    "code": Profile(temperature=0.2, max_tokens=2048, synthesis_tokens=3072),
    "reasoning": Profile(temperature=0.3, max_tokens=1536, synthesis_tokens=2048),
    "analysis": Profile(temperature=0.4, max_tokens=1536, synthesis_tokens=2048),
    "factual": Profile(temperature=0.1, max_tokens=512, synthesis_tokens=768),
    "general": Profile(temperature=0.6, max_tokens=1024, synthesis_tokens=1536),
    "creative": Profile(temperature=0.9, max_tokens=1024, synthesis_tokens=1536),
}
"""Token allocation and temperature per task type.

Code and facts want one right answer (low temperature); creative work wants variety.
Answers that are synthesised or judged later get the larger allowance, since the
synthesiser reads and rewrites them; a pairwise judgement is a letter.
"""

_SPREAD = (0.0, 0.2, -0.1, 0.35, -0.2, 0.5)
"""Offsets that repeated copies of one model take, so their samples differ."""


def profile_for(task_type: TaskType, overrides: Mapping[str, Profile] | None = None) -> Profile:
    """The profile of ``task_type`` (``overrides`` win over :data:`PROFILES`)."""
    if overrides and task_type in overrides:
        return overrides[task_type]
    return PROFILES.get(task_type, PROFILES["general"])


def member_temperatures(members: tuple[Member, ...], base: float) -> tuple[float, ...]:
    """Each member's temperature: its own, else ``base``, spread over copies of one model.

    Three copies of one model at the same temperature would give three samples of one
    distribution; spreading them keeps consensus honest (still within 0 to 1.5).
    """
    seen: dict[str, int] = {}
    out: list[float] = []
    for m in members:
        if m.temperature is not None:
            out.append(m.temperature)
            continue
        copy = seen.get(m.label, 0)
        seen[m.label] = copy + 1
        offset = _SPREAD[copy % len(_SPREAD)]
        out.append(round(min(1.5, max(0.0, base + offset)), 3))
    return tuple(out)
