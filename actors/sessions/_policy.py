"""Pure policy for reasoning sessions: who may do what, which strategy, which answer wins.

No actors and no I/O here: each rule is a function of its arguments, tested alone.

**Access.** Every operation names an agent. The owner (the initiating agent) may do
anything; a participant may read, add steps and execute; when a session is open, so may
every agent. Only the owner lets agents in or opens the session.

**Choosing a strategy** (:func:`choose_strategy`), from the task type, the accumulated
reasoning and the models that fit in memory now:

1. the usable models: healthy chat models that are loaded, or that fit the free GPU
   memory (cumulatively: two unloaded models must fit together), best first;
2. one usable model: ``specialized``;
3. ``code`` with a model declared strong at code: ``specialized`` on it;
4. ``creative``: ``chain`` (a draft, then refinements);
5. reasoning with disagreement in it (a critique step, or hypotheses from two or more
   agents) and at least three models: ``hybrid`` (parallel answers, then a synthesis);
6. otherwise: ``concurrent`` (parallel answers; the one the others agree with most wins).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from actors.sessions._messages import ReasoningStep, StepType, Strategy, TaskType

__all__ = [
    "Candidate",
    "NoModelError",
    "StrategyChoice",
    "agreement",
    "can_manage",
    "can_use",
    "choose_strategy",
    "decision_prompt",
    "usable_models",
]


def can_use(agent: str, owner: str, participants: Sequence[str], *, is_open: bool) -> bool:
    """Whether ``agent`` may read, add steps to, and execute in a session."""
    return is_open or agent == owner or agent in participants


def can_manage(agent: str, owner: str) -> bool:
    """Whether ``agent`` may let others in or open the session (the owner only)."""
    return agent == owner


class NoModelError(LookupError):
    """No model can run a decision; ``memory`` says whether want of GPU memory is why."""

    def __init__(self, message: str, *, memory: bool) -> None:
        super().__init__(message)
        self.memory = memory


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model a decision could use, as the catalog describes it.

    Attributes:
        name: ``host/model``.
        loaded: Resident now (``None``: the server cannot say, e.g. a cloud API).
        size_bytes: Memory it needs to load (``None``: unknown).
        tier: Declared quality tier, 1 to 3 (``None``: undeclared).
        strengths: Task types it is declared good at.
        healthy: Its breaker lets requests through.
    """

    name: str
    loaded: bool | None = None
    size_bytes: int | None = None
    tier: int | None = None
    strengths: tuple[str, ...] = ()
    healthy: bool = True


@dataclass(frozen=True, slots=True)
class StrategyChoice:
    """What :func:`choose_strategy` decided, and why."""

    strategy: Strategy
    models: tuple[str, ...]
    reason: str


def _quality(candidate: Candidate, task_type: TaskType) -> tuple[int, int, int]:
    strong = task_type.value in candidate.strengths
    return (-int(strong), -(candidate.tier or 0), -int(candidate.loaded is not False))


def usable_models(
    candidates: Sequence[Candidate], task_type: TaskType, free_bytes: int | None
) -> tuple[list[Candidate], list[str]]:
    """The healthy models that can run now, best first, and why the others cannot.

    A model that is not loaded needs its size free (those admitted earlier in the
    order use up what is free); unknown sizes and unknown free memory are taken on trust.
    """
    usable: list[Candidate] = []
    left_out: list[str] = []
    free = free_bytes
    for candidate in sorted(candidates, key=lambda c: (*_quality(c, task_type), c.name)):
        if not candidate.healthy:
            left_out.append(f"{candidate.name} (breaker open)")
            continue
        if candidate.loaded is False and candidate.size_bytes is not None and free is not None:
            if candidate.size_bytes > free:
                left_out.append(
                    f"{candidate.name} (needs {candidate.size_bytes / 2**30:.1f} GiB, "
                    f"{free / 2**30:.1f} GiB free)"
                )
                continue
            free -= candidate.size_bytes
        usable.append(candidate)
    return usable, left_out


def _disagreement(steps: Sequence[ReasoningStep]) -> str:
    """Why the reasoning so far disagrees with itself ("" when it does not)."""
    critiques = sum(1 for s in steps if s.step_type is StepType.CRITIQUE)
    if critiques:
        return f"{critiques} critique step(s)"
    hypothesising = {s.agent for s in steps if s.step_type is StepType.HYPOTHESIS}
    if len(hypothesising) >= 2:
        return f"hypotheses from {len(hypothesising)} agents"
    return ""


def choose_strategy(
    task_type: TaskType,
    steps: Sequence[ReasoningStep],
    candidates: Sequence[Candidate],
    free_bytes: int | None,
    *,
    max_members: int = 3,
) -> StrategyChoice:
    """The strategy and models for a decision (see the module docstring for the rules).

    Raises:
        NoModelError: No model can run (none known, all unhealthy, none fits memory).
    """
    usable, left_out = usable_models(candidates, task_type, free_bytes)
    memory = f"; left out: {', '.join(left_out)}" if left_out else ""
    if not usable:
        known = ", ".join(c.name for c in candidates) or "none"
        msg = f"no model can run this decision (known chat models: {known}){memory}"
        short = any("GiB free" in why for why in left_out)
        raise NoModelError(msg, memory=short)
    best = usable[0]
    if len(usable) == 1:
        return StrategyChoice(
            Strategy.SPECIALIZED, (best.name,), f"one usable model, {best.name}{memory}"
        )
    if task_type is TaskType.CODE and TaskType.CODE.value in best.strengths:
        return StrategyChoice(
            Strategy.SPECIALIZED, (best.name,), f"code task; {best.name} is strong at code{memory}"
        )
    members = tuple(c.name for c in usable[:max_members])
    if task_type is TaskType.CREATIVE:
        return StrategyChoice(
            Strategy.CHAIN,
            members,
            f"creative task: {members[0]} drafts, {len(members) - 1} refine in turn{memory}",
        )
    disagreement = _disagreement(steps)
    if disagreement and len(members) >= 3:
        return StrategyChoice(
            Strategy.HYBRID,
            members,
            f"the reasoning disagrees ({disagreement}): {len(members)} models answer in "
            f"parallel, {members[0]} synthesises{memory}",
        )
    return StrategyChoice(
        Strategy.CONCURRENT,
        members,
        f"{task_type.value} task: {len(members)} models answer in parallel, "
        f"the most agreed-with answer wins{memory}",
    )


_MAX_STEP_CHARS = 2_000
"""Each step's text is cut to this in the prompt (a long session must still fit)."""
_MAX_STEPS = 30
"""At most this many of the latest steps go into the prompt."""


def decision_prompt(
    task_description: str, steps: Sequence[ReasoningStep], prompt: str, task_type: TaskType
) -> str:
    """The prompt a decision's models get: the task, the reasoning so far, the question."""
    lines = [f"Task ({task_type.value}): {task_description}"]
    shown = steps[-_MAX_STEPS:]
    if shown:
        lines.append("")
        lines.append("Reasoning so far:")
        if len(steps) > len(shown):
            lines.append(f"({len(steps) - len(shown)} earlier steps left out)")
        for step in shown:
            text = (
                step.text
                if len(step.text) <= _MAX_STEP_CHARS
                else step.text[:_MAX_STEP_CHARS] + "..."
            )
            lines.append(f"{step.seq}. [{step.step_type.value}] {step.agent}: {text}")
    lines.append("")
    lines.append(f"Decide: {prompt}")
    return "\n".join(lines)


_WORD = re.compile(r"\w+")


def _words(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(text))


def agreement(answers: Sequence[str]) -> tuple[int, float]:
    """The answer the others agree with most, and how much they agree overall (0 to 1).

    Agreement between two answers is the Jaccard similarity of their word sets; each
    answer scores the mean of its agreement with the others; the first best wins ties.
    The confidence is the winner's score. One answer: itself, confidence 1.
    """
    if not answers:
        msg = "agreement() needs at least one answer"
        raise ValueError(msg)
    if len(answers) == 1:
        return 0, 1.0
    sets = [_words(a) for a in answers]
    scores = []
    for i, mine in enumerate(sets):
        total = 0.0
        for j, theirs in enumerate(sets):
            if i != j:
                union = mine | theirs
                total += len(mine & theirs) / len(union) if union else 1.0
        scores.append(total / (len(sets) - 1))
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return best, round(scores[best], 3)
