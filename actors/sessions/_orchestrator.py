"""Choosing and running a decision's strategy: the :class:`Orchestrator` seam and its default.

A session's ``execute_orchestrated_decision`` asks its orchestrator two things: which
strategy and models (:meth:`Orchestrator.choose`, at once, on the session's turn) and to
run them (:meth:`Orchestrator.run`, a coroutine on the I/O loop, reporting progress as
it goes). Anything with these three methods can be plugged in (``Sessions(...,
orchestrator=...)``).

:class:`CatalogOrchestrator` is the default, over the strategies of
:mod:`actors.orchestration.strategies`. The session decides which models may take part
(:func:`~actors.sessions.usable_models`: healthy chat models, loaded or fitting the free
GPU memory, best first, at most ``max_members``); the strategies' chooser
(:func:`~actors.orchestration.strategies.choose_strategy`) picks one of the nine
strategies from the task type and the features of the accumulated reasoning, and
schedules the members in waves that fit memory; where the reasoning disagrees with
itself (a critique, hypotheses from two or more agents) and three or more models can
take part, ``hybrid`` is asked for (every model answers, the best synthesises).
:func:`~actors.orchestration.strategies.run_strategy` runs it: each model call is a
:class:`~actors.llm.ChatRequest` to the model's ModelHost (breakers, concurrency limits,
pricing and tracing apply as for any other call), and each call that ends is reported
as progress.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec

from actors import System
from actors.llm import Catalog, ChatRequest, Completion, ModelEntry
from actors.orchestration.selection import analyse
from actors.orchestration.strategies import (
    AUTO,
    Member,
    MemberOutcome,
    StrategyError,
    StrategyFailed,
    StrategyKind,
    StrategyResult,
    host_caller,
    lexical,
    run_strategy,
)
from actors.orchestration.strategies import StrategyChoice as Plan
from actors.orchestration.strategies import choose_strategy as choose_plan
from actors.sessions._messages import (
    MemberAnswer,
    ModelCapability,
    OrchestrationCapabilities,
    ReasoningStep,
    Strategy,
    TaskType,
)
from actors.sessions._policy import (
    Candidate,
    NoModelError,
    StrategyChoice,
    decision_prompt,
    disagreement,
    usable_models,
)

__all__ = [
    "CatalogOrchestrator",
    "DecisionContext",
    "DecisionFailed",
    "DecisionOutcome",
    "Orchestrator",
    "Progress",
]

Progress = Callable[[str], None]
"""Reports what a running decision has done so far (a line ``get_reasoning_session`` shows)."""


class DecisionContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a decision is about: the session's task and reasoning, and the question.

    Attributes:
        session_id: The session.
        agent: Who asked for the decision.
        prompt: The question to decide.
        task_type: Its task type.
        task_description: The session's task.
        steps: The session's reasoning so far.
    """

    session_id: str
    agent: str
    prompt: str
    task_type: TaskType
    task_description: str
    steps: tuple[ReasoningStep, ...] = ()

    def render(self, max_tokens: int | None = None) -> str:
        """The prompt the models get (task, reasoning, question).

        With ``max_tokens``, the oldest steps are left out until it fits.
        """
        return decision_prompt(
            self.task_description, self.steps, self.prompt, self.task_type, max_tokens=max_tokens
        )


class DecisionOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a finished decision came to.

    Attributes:
        result: The decision's text.
        answers: Each model's part, in the order the calls ended.
        confidence: How sure the agreement is (the Wilson 95% lower bound of the share
            of answers that agree with the decision), where that means something.
    """

    result: str
    answers: tuple[MemberAnswer, ...] = ()
    confidence: float | None = None

    @property
    def cost_usd(self) -> float:
        """What the priced calls cost together."""
        return sum(a.cost_usd or 0.0 for a in self.answers)


class DecisionFailed(Exception):  # noqa: N818 - it is what happened, as the other errors here
    """No model produced an answer; ``answers`` says what each one did."""

    def __init__(self, message: str, answers: Sequence[MemberAnswer] = ()) -> None:
        super().__init__(message)
        self.answers = tuple(answers)


class Orchestrator(Protocol):
    """Chooses a decision's strategy and models, and runs them (the seam to plug into).

    ``choose`` runs on the session's turn and must not block; ``run`` runs on the I/O
    loop, may take minutes, reports progress through ``progress``, and raises
    :class:`DecisionFailed` (or anything else: the execution fails with its text).
    """

    def capabilities(self) -> OrchestrationCapabilities:
        """The models, strategies and resources (``get_orchestration_capabilities``)."""
        ...

    def choose(self, context: DecisionContext) -> StrategyChoice:
        """The strategy and models for ``context``; raises ``LookupError`` when none can run."""
        ...

    async def run(
        self, choice: StrategyChoice, context: DecisionContext, progress: Progress
    ) -> DecisionOutcome:
        """Run the chosen strategy; the outcome is stored as the execution's result."""
        ...


_CONTEXT_SHARE = 0.8
"""The share of a model's window a decision prompt may fill (its size is estimated)."""
_ANSWER_RESERVE = 512
"""Tokens kept for the answer when no ``max_tokens`` is set."""
_FRAME_RESERVE = 64
"""Tokens kept for what a strategy adds around the prompt (its framing, a role line)."""
_ROLES = {"refine": "refine", "synthesis": "synthesis", "coordinate": "coordinator"}
"""A strategy call's stage as the session's answer role (first answers: by strategy)."""


def _role(strategy: str, outcome: MemberOutcome) -> str:
    if outcome.stage in _ROLES:
        return _ROLES[outcome.stage]
    if outcome.stage == "judge":
        return "judge"
    if strategy == "chain":
        return "draft"
    if strategy == "specialized":
        return "specialist"
    return "member"


def _answer(strategy: str, outcome: MemberOutcome) -> MemberAnswer:
    return MemberAnswer(
        model=outcome.member,
        role=_role(strategy, outcome),
        text=outcome.content,
        error=f"{outcome.error_kind}: {outcome.error}" if not outcome.ok else "",
        latency_s=outcome.latency_s,
        cost_usd=outcome.cost_usd,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        not_applied=outcome.not_applied,
    )


def outcome_of(result: StrategyResult) -> DecisionOutcome:
    """A strategy's result as a decision's outcome.

    The confidence is the aggregator's (``consensus``, ``semantic``); for the other
    strategies, that of the first answers' clustering by text similarity (how much the
    models agreed before one answer was chosen or written), when two or more answered.
    """
    answers = tuple(_answer(result.strategy, c) for c in result.calls)
    confidence = result.confidence
    if confidence is None:
        first = [c.content for c in result.calls if c.ok and c.stage == "answer"]
        if len(first) >= 2:
            confidence = lexical(first).confidence
    return DecisionOutcome(result=result.answer, answers=answers, confidence=confidence)


class CatalogOrchestrator:
    """The default :class:`Orchestrator`: the strategies over the catalog's models and hosts.

    Args:
        system: The system whose ModelHost actors (named as the catalog's hosts) answer.
        catalog: Which chat models exist, loaded or not, and what memory is free.
        max_members: The most models one decision uses.
        timeout_s: Deadline of each model call.
        max_tokens: Output limit of each call (``None``: the task type's profile).
        temperature: Sampling temperature (``None``: the task type's profile).
        embedding_model: An embedding model, which lets the chooser pick ``semantic``
            for free-text tasks (``None``: none).
    """

    def __init__(
        self,
        system: System,
        catalog: Catalog,
        *,
        max_members: int = 3,
        timeout_s: float = 120.0,
        max_tokens: int | None = None,
        temperature: float | None = None,
        embedding_model: str | None = None,
    ) -> None:
        if max_members < 1:
            msg = f"CatalogOrchestrator(max_members={max_members!r}): must be at least 1"
            raise ValueError(msg)
        self.system = system
        self.catalog = catalog
        self.max_members = max_members
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.embedding_model = embedding_model

    # ---- choosing ---------------------------------------------------------------------

    def _chat_entries(self) -> list[ModelEntry]:
        return [e for e in self.catalog.entries() if "chat" in e.capabilities]

    def capabilities(self) -> OrchestrationCapabilities:
        """The catalog's chat models (best first), the strategies, and GPU memory."""
        entries = sorted(
            self._chat_entries(),
            key=lambda e: (-(e.tier or 0), e.loaded is False, e.qualified),
        )
        models = tuple(
            ModelCapability(
                model=e.qualified,
                loaded=e.loaded,
                fits_memory=self.catalog.fits_memory(e),
                context_length=e.context_length,
                tier=e.tier,
                strengths=e.strengths,
                healthy=e.healthy,
            )
            for e in entries
        )
        return OrchestrationCapabilities(
            models=models,
            strategies=tuple(Strategy),
            task_types=tuple(TaskType),
            free_bytes=self.catalog.free_bytes,
            budget_bytes=self.catalog.budget_bytes,
            max_members=self.max_members,
        )

    def choose(self, context: DecisionContext) -> StrategyChoice:
        """The models that can run now, then the strategies' chooser over them.

        Raises:
            NoModelError: No model can run (none known, all unhealthy, none fits memory),
                or the strategy chosen cannot run on them.
        """
        entries = {e.qualified: e for e in self._chat_entries()}
        candidates = [
            Candidate(
                name=name,
                loaded=e.loaded,
                size_bytes=e.size_bytes,
                tier=e.tier,
                strengths=e.strengths,
                healthy=e.healthy,
            )
            for name, e in entries.items()
        ]
        usable, left_out = usable_models(candidates, context.task_type, self.catalog.free_bytes)
        memory = f"; left out: {', '.join(left_out)}" if left_out else ""
        if not usable:
            known = ", ".join(c.name for c in candidates) or "none"
            msg = f"no model can run this decision (known chat models: {known}){memory}"
            raise NoModelError(msg, memory=any("GiB free" in why for why in left_out))
        members = [
            Member(
                model=entries[c.name].model, host=entries[c.name].host, temperature=self.temperature
            )
            for c in usable[: self.max_members]
        ]
        kind: StrategyKind | str = AUTO
        why = disagreement(context.steps)
        if why and len(members) >= 3:
            kind = "hybrid"
        features = analyse(context.render(), task_type=context.task_type.value)
        try:
            plan = choose_plan(
                features,
                members,
                self.catalog,
                kind=kind,  # type: ignore[arg-type]
                embedding_model=self.embedding_model,
            )
        except StrategyError as exc:
            raise NoModelError(str(exc), memory="memory" in exc.constraint) from exc
        if self.max_tokens is not None:
            profile = dataclasses.replace(plan.profile, max_tokens=self.max_tokens)
            plan = dataclasses.replace(plan, profile=profile)
        reasons = list(plan.reasons)
        if kind == "hybrid":
            reasons[0] = (
                f"the reasoning disagrees ({why}): {len(members)} models answer, "
                f"{members[plan.preferred[0]].label} synthesises"
            )
        return StrategyChoice(
            Strategy(plan.kind),
            tuple(m.label for m in plan.strategy.members),
            "; ".join(reasons) + memory,
            plan=plan,
        )

    # ---- running ----------------------------------------------------------------------

    def _resolve(self, model: str, host: str | None) -> tuple[Any, str]:
        entry = self.catalog.resolve(f"{host}/{model}" if host else model)
        return self.system.lookup(entry.host), entry.model

    def _prompt_budget(self, plan: Plan) -> int | None:
        """The decision prompt's tokens at most (``None``: no member's window is known).

        80% of the members' smallest known window, less the answer's tokens and what the
        strategies frame the prompt with.
        """
        windows = []
        for member in plan.strategy.members:
            name = f"{member.host}/{member.model}" if member.host else member.model
            with contextlib.suppress(LookupError):
                window = self.catalog.resolve(name).context_length
                if window:
                    windows.append(window)
        if not windows:
            return None
        answer = self.max_tokens or _ANSWER_RESERVE
        return int(min(windows) * _CONTEXT_SHARE) - answer - _FRAME_RESERVE

    async def run(
        self, choice: StrategyChoice, context: DecisionContext, progress: Progress
    ) -> DecisionOutcome:
        """Run ``choice`` with :func:`~actors.orchestration.strategies.run_strategy`."""
        plan = choice.plan
        if not isinstance(plan, Plan):
            msg = f"CatalogOrchestrator.run: {choice.strategy.value!r} was not chosen by it"
            raise TypeError(msg)
        asked = sum(len(wave) for wave in plan.waves)
        done = 0
        call = host_caller(self._resolve, timeout=self.timeout_s)
        progress(f"0/{asked} members answered")

        async def reported(m: Member, request: ChatRequest) -> Completion | Any:
            nonlocal done
            answer = await call(m, request)
            if done < asked:
                done += 1
                progress(f"{done}/{asked} members answered")
            else:
                progress(f"{m.label} answered ({plan.kind})")
            return answer

        try:
            result = await run_strategy(
                plan, context.render(self._prompt_budget(plan)), call=reported
            )
        except StrategyFailed as exc:
            answers = [_answer(plan.kind, c) for c in exc.calls]
            raise DecisionFailed(str(exc), answers) from exc
        return outcome_of(result)
