"""Choosing and running a decision's strategy: the :class:`Orchestrator` seam and its default.

A session's ``execute_orchestrated_decision`` asks its orchestrator two things: which
strategy and models (:meth:`Orchestrator.choose`, at once, on the session's turn) and to
run them (:meth:`Orchestrator.run`, a coroutine on the I/O loop, reporting progress as
it goes). Anything with these three methods can be plugged in (``Sessions(...,
orchestrator=...)``): e.g. the strategy chooser of :mod:`actors.orchestration`.

:class:`CatalogOrchestrator` is the default: the catalog says which chat models exist,
which are loaded, their tiers and strengths, and what GPU memory is free; the policy
(:func:`~actors.sessions.choose_strategy`) picks the strategy; each model call is a
:class:`~actors.llm.ChatRequest` to the model's ModelHost, so breakers, concurrency
limits, pricing and tracing apply as for any other call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import msgspec

from actors import AskError, System
from actors.llm import Catalog, ChatRequest, Completion, ModelEntry
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
    StrategyChoice,
    agreement,
    choose_strategy,
    decision_prompt,
)

if TYPE_CHECKING:
    from actors import Ref

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

    def render(self) -> str:
        """The prompt the models get (task, reasoning, question)."""
        return decision_prompt(self.task_description, self.steps, self.prompt, self.task_type)


class DecisionOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a finished decision came to.

    Attributes:
        result: The decision's text.
        answers: Each model's part, in the order they were asked.
        confidence: How much the members agreed (0 to 1), where that means something.
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


_REFINE = (
    "{prompt}\n\nA previous answer, by another model:\n{draft}\n\n"
    "Improve it: correct mistakes, fill gaps, keep what is right. "
    "Answer with the improved answer only."
)
_SYNTHESISE = (
    "{prompt}\n\n{count} models answered:\n{answers}\n\n"
    "Weigh these answers against the reasoning above and write one decision: "
    "what to do and why, noting any disagreement that remains."
)


class CatalogOrchestrator:
    """The default :class:`Orchestrator`: the catalog's models, called through their hosts.

    Args:
        system: The system whose ModelHost actors (named as the catalog's hosts) answer.
        catalog: Which chat models exist, loaded or not, and what memory is free.
        max_members: The most models one decision uses.
        timeout_s: Deadline of each model call.
        max_tokens: Output limit of each call (``None``: the server's default).
        temperature: Sampling temperature (``None``: the server's default).
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
        """Pick with :func:`~actors.sessions.choose_strategy` over the catalog's chat models."""
        candidates = [
            Candidate(
                name=e.qualified,
                loaded=e.loaded,
                size_bytes=e.size_bytes,
                tier=e.tier,
                strengths=e.strengths,
                healthy=e.healthy,
            )
            for e in self._chat_entries()
        ]
        return choose_strategy(
            context.task_type,
            context.steps,
            candidates,
            self.catalog.free_bytes,
            max_members=self.max_members,
        )

    # ---- running ----------------------------------------------------------------------

    async def run(
        self, choice: StrategyChoice, context: DecisionContext, progress: Progress
    ) -> DecisionOutcome:
        """Run ``choice.strategy`` over ``choice.models``."""
        prompt = context.render()
        match choice.strategy:
            case Strategy.SPECIALIZED:
                progress(f"asking {choice.models[0]}")
                answer = await self._call(choice.models[0], prompt, "specialist")
                if answer.error:
                    raise DecisionFailed(f"{answer.model}: {answer.error}", (answer,))
                return DecisionOutcome(result=answer.text, answers=(answer,))
            case Strategy.CONCURRENT:
                answers = await self._parallel(choice.models, prompt, progress)
                return self._agreed(answers)
            case Strategy.CHAIN:
                return await self._chain(choice.models, prompt, progress)
            case Strategy.HYBRID:
                answers = await self._parallel(choice.models, prompt, progress)
                return await self._synthesise(choice.models[0], prompt, answers, progress)

    async def _call(self, name: str, prompt: str, role: str) -> MemberAnswer:
        """One model call; a failure becomes the answer's ``error``."""
        started = time.monotonic()
        try:
            entry = self.catalog.resolve(name)
            host: Ref[object] = self.system.lookup(entry.host)
            request = ChatRequest.prompt(
                entry.model, prompt, max_tokens=self.max_tokens, temperature=self.temperature
            )
            completion: Completion = await host.ask_async(request, timeout=self.timeout_s)
        except AskError as exc:
            return MemberAnswer(
                model=name,
                role=role,
                error=f"{exc.failure.kind.value}: {exc.failure.message}",
                latency_s=time.monotonic() - started,
            )
        except LookupError as exc:
            return MemberAnswer(model=name, role=role, error=f"not_found: {exc}")
        return MemberAnswer(
            model=name,
            role=role,
            text=completion.content,
            latency_s=time.monotonic() - started,
            cost_usd=completion.cost_usd,
            input_tokens=completion.usage.input_tokens,
            output_tokens=completion.usage.output_tokens,
        )

    async def _parallel(
        self, models: Sequence[str], prompt: str, progress: Progress
    ) -> list[MemberAnswer]:
        """Every member at once; progress as each one answers."""
        done = 0
        progress(f"0/{len(models)} members answered")

        async def one(name: str) -> MemberAnswer:
            nonlocal done
            answer = await self._call(name, prompt, "member")
            done += 1
            progress(f"{done}/{len(models)} members answered")
            return answer

        return list(await asyncio.gather(*(one(m) for m in models)))

    @staticmethod
    def _agreed(answers: Sequence[MemberAnswer]) -> DecisionOutcome:
        answered = [a for a in answers if not a.error]
        if not answered:
            why = "; ".join(f"{a.model}: {a.error}" for a in answers)
            raise DecisionFailed(f"no member answered ({why})", answers)
        best, confidence = agreement([a.text for a in answered])
        return DecisionOutcome(
            result=answered[best].text, answers=tuple(answers), confidence=confidence
        )

    async def _chain(
        self, models: Sequence[str], prompt: str, progress: Progress
    ) -> DecisionOutcome:
        """The first drafts, each next refines; a failed link leaves the answer as it was."""
        answers: list[MemberAnswer] = []
        current = ""
        for index, name in enumerate(models):
            role = "draft" if not current else "refine"
            progress(f"{role} {index + 1}/{len(models)}: {name}")
            text = prompt if not current else _REFINE.format(prompt=prompt, draft=current)
            answer = await self._call(name, text, role)
            answers.append(answer)
            if not answer.error:
                current = answer.text
        if not current:
            why = "; ".join(f"{a.model}: {a.error}" for a in answers)
            raise DecisionFailed(f"no model in the chain answered ({why})", answers)
        return DecisionOutcome(result=current, answers=tuple(answers))

    async def _synthesise(
        self,
        synthesiser: str,
        prompt: str,
        answers: list[MemberAnswer],
        progress: Progress,
    ) -> DecisionOutcome:
        """The best model writes one decision from the members' answers."""
        answered = [a for a in answers if not a.error]
        if not answered:
            return self._agreed(answers)  # raises, naming each failure
        _, confidence = agreement([a.text for a in answered])
        listing = "\n".join(f"- {a.model}: {a.text}" for a in answered)
        progress(f"synthesising with {synthesiser}")
        text = _SYNTHESISE.format(prompt=prompt, count=len(answered), answers=listing)
        synthesis = await self._call(synthesiser, text, "synthesis")
        if synthesis.error:  # the members' agreement still decides
            agreed = self._agreed(answers)
            return DecisionOutcome(
                result=agreed.result, answers=(*answers, synthesis), confidence=confidence
            )
        return DecisionOutcome(
            result=synthesis.text, answers=(*answers, synthesis), confidence=confidence
        )
