"""Pure policy for reasoning sessions: who may do what, which strategy, which answer wins.

No actors and no I/O here: each rule is a function of its arguments, tested alone.

**Access.** Every operation names an agent. The owner (the initiating agent) may do
anything; a participant may read, add steps and execute; when a session is open, so may
every agent. Only the owner lets agents in or opens the session.

**Which models may decide** (:func:`usable_models`): healthy chat models that are
loaded, or that fit the free GPU memory (cumulatively: two unloaded models must fit
together), best first (declared strong at the task type, then tier, then loaded).
Which strategy they run is the strategies' chooser's
(:func:`actors.orchestration.strategies.choose_strategy`), over these models and the
reasoning so far; :func:`disagreement` says whether that reasoning disagrees with itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actors.sessions._messages import ReasoningStep, StepType, Strategy, TaskType

__all__ = [
    "Candidate",
    "NoModelError",
    "StrategyChoice",
    "can_manage",
    "can_use",
    "decision_prompt",
    "disagreement",
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
    """What an orchestrator chose for a decision, and why.

    Attributes:
        strategy: The strategy.
        models: The models taking part (``host/model``), in the strategy's order.
        reason: Why.
        plan: The orchestrator's own plan (the default's: the strategies package's
            :class:`~actors.orchestration.strategies.StrategyChoice`).
    """

    strategy: Strategy
    models: tuple[str, ...]
    reason: str
    plan: Any = None


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


def disagreement(steps: Sequence[ReasoningStep]) -> str:
    """Why the reasoning so far disagrees with itself ("" when it does not)."""
    critiques = sum(1 for s in steps if s.step_type is StepType.CRITIQUE)
    if critiques:
        return f"{critiques} critique step(s)"
    hypothesising = {s.agent for s in steps if s.step_type is StepType.HYPOTHESIS}
    if len(hypothesising) >= 2:
        return f"hypotheses from {len(hypothesising)} agents"
    return ""


_MAX_STEP_CHARS = 2_000
"""Each step's text is cut to this in the prompt (a long session must still fit)."""
_MAX_STEPS = 30
"""At most this many of the latest steps go into the prompt."""


def decision_prompt(
    task_description: str,
    steps: Sequence[ReasoningStep],
    prompt: str,
    task_type: TaskType,
    *,
    max_tokens: int | None = None,
) -> str:
    """The prompt a decision's models get: the task, the reasoning so far, the question.

    With ``max_tokens``, the oldest steps are left out until it fits (about four
    characters a token); the task and the question always stay.
    """
    shown = steps[-_MAX_STEPS:]
    text = _render(task_description, steps, shown, prompt, task_type)
    while max_tokens is not None and shown and len(text) // 4 + 1 > max_tokens:
        shown = shown[1:]
        text = _render(task_description, steps, shown, prompt, task_type)
    return text


def _render(
    task_description: str,
    steps: Sequence[ReasoningStep],
    shown: Sequence[ReasoningStep],
    prompt: str,
    task_type: TaskType,
) -> str:
    lines = [f"Task ({task_type.value}): {task_description}"]
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
