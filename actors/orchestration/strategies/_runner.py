"""Running a :class:`~._chooser.StrategyChoice`: member calls in waves, then the strategy's step.

:func:`run_strategy` is a coroutine (the step executor awaits it on the I/O loop; an
actor can ``pipe_to_self`` it). Every model call goes through a :data:`MemberCall`, which
:func:`host_caller` builds over the engine's paths: the host a model name resolves to,
asked under the Budget when there is one. In outline:

1. the first calls (every worker's answer; the first link of a chain; the best
   specialist) go out wave by wave, a wave's calls at once (``concurrent`` races them:
   the first good answer cancels the rest);
2. a member that fails is recorded with its real error and left out; the strategy goes
   on with the answers there are;
3. the strategy's own step runs: a chain's next link refines, a specialist's failure
   passes to the next specialist, a synthesiser (``hybrid``) or coordinator
   (``hierarchical``) reads the answers (the best answer stands in when it fails), an
   aggregator decides (``consensus``, ``semantic``; clustering by text similarity
   stands in when embedding fails), a judge compares every pair (``combinatorial``);
4. the result: the answer, the agreement where there is one, and every call with its
   member, stage, answer or error, latency, tokens and cost.

No answer at all raises :class:`StrategyFailed`, which lists every member's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from actors import AskError, Failure, FailureKind, Ref
from actors.llm import ChatRequest, Completion, Embeddings, EmbedRequest
from actors.orchestration.budget import SpendScope, budgeted_chat
from actors.orchestration.consensus import synthesis_request
from actors.orchestration.selection import Observed
from actors.orchestration.strategies._aggregate import (
    Aggregator,
    Agreement,
    Embed,
    Resonance,
    lexical,
    plurality,
)
from actors.orchestration.strategies._chooser import StrategyChoice, specialists
from actors.orchestration.strategies._spec import COORDINATOR, JUDGE, Member

__all__ = [
    "MemberCall",
    "MemberOutcome",
    "Resolve",
    "StrategyFailed",
    "StrategyResult",
    "embedder",
    "host_caller",
    "observations",
    "run_strategy",
]

Resolve = Callable[[str, str | None], tuple[Ref[Any], str]]
"""``(model, host) -> (host ref, model)``; raises ``LookupError`` naming what exists."""

MemberCall = Callable[[Member, ChatRequest], Awaitable[Completion | Failure]]
"""Ask a member's model ``request`` (whose ``model`` it fills in): the answer or the failure."""


class MemberOutcome(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One model call a strategy made, and what came of it.

    Attributes:
        member: The member's label (``host/model (role)``).
        index: Its position among the strategy's members.
        stage: ``answer``, ``refine`` (a chain's later link), ``synthesis``,
            ``coordinate`` or ``judge``.
        wave: The wave its call went out in (first calls; later stages: the last wave + 1).
        model: The model that answered (as the server named it; "" on failure).
        host: The host that served it.
        content: Its answer ("" on failure).
        error_kind: The failure's kind (``None``: it answered); ``cancelled`` when a
            ``concurrent`` race was already won.
        error: The failure's message.
        temperature: The temperature it was asked at.
        latency_s: Wall time of the call.
        input_tokens: Prompt tokens, as reported.
        output_tokens: Answer tokens, as reported.
        cost_usd: Its cost (``None``: no price known).
        not_applied: Request fields its model refused, so it answered without them
            (``temperature`` on a reasoning model, say): see
            ``Completion.extras["dropped_params"]``.
    """

    member: str
    index: int
    stage: str
    wave: int = 0
    model: str = ""
    host: str = ""
    content: str = ""
    error_kind: str | None = None
    error: str = ""
    temperature: float | None = None
    latency_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    not_applied: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether it answered."""
        return self.error_kind is None


class StrategyResult(msgspec.Struct, frozen=True, kw_only=True):
    """A strategy's answer with its provenance.

    Attributes:
        strategy: The strategy that ran.
        answer: The answer.
        answered_by: The member labels the answer is from (the winner, the
            synthesiser, or the supporters of a vote).
        agreement: ``consensus``/``semantic``: the share of answers that agree with it;
            ``combinatorial``: the winner's share of the pairwise wins; else ``None``.
        agreed: ``consensus``: agreement reached the threshold; ``semantic``: the winner
            resonated with another answer; else ``None``.
        confidence: ``consensus``/``semantic``: the Wilson 95% lower bound of the
            supporters' share (the consensus package's confidence), when the
            aggregator gives one; else ``None``.
        method: What decided: ``first``, ``race``, ``last``, ``specialist``,
            ``synthesis``, ``coordinator``, ``perspectives``, ``plurality``,
            ``weighted``, ``cluster``, ``pairwise``, or an injected aggregator's name;
            with ``fallback:`` in front when a stand-in decided (``fallback:lexical``).
        task_type: The task type (it set temperatures and token allowances).
        auto: Whether the chooser chose the strategy.
        reasons: Why this strategy and schedule, and anything that went wrong on the way.
        waves: The first calls' waves, as member indexes.
        calls: Every model call, in the order they ended.
        latency_s: Wall time of the whole strategy.
        cost_usd: The total cost of the calls with a known price (``None``: none had one).
    """

    strategy: str
    answer: str
    answered_by: tuple[str, ...] = ()
    agreement: float | None = None
    agreed: bool | None = None
    confidence: float | None = None
    method: str = ""
    task_type: str = "general"
    auto: bool = False
    reasons: tuple[str, ...] = ()
    waves: tuple[tuple[int, ...], ...] = ()
    calls: tuple[MemberOutcome, ...] = ()
    latency_s: float = 0.0
    cost_usd: float | None = None

    @property
    def content(self) -> str:
        """The answer (as a ``Completion``'s ``content``, for steps that read either)."""
        return self.answer

    def errors(self) -> dict[str, str]:
        """Each failed call's member and stage, with its error."""
        return {
            f"{c.member} [{c.stage}]": f"{c.error_kind}: {c.error}" for c in self.calls if not c.ok
        }


class StrategyFailed(Exception):  # noqa: N818 - the strategy's outcome, not a programming error
    """No member answered; every member's real error is in the message and ``calls``.

    Attributes:
        strategy: The strategy's kind.
        calls: Every call made, with its error.
        kind: The failure kind the calls shared (else the first's).
    """

    def __init__(self, strategy: str, calls: Sequence[MemberOutcome]) -> None:
        self.strategy = strategy
        self.calls = tuple(calls)
        kinds = [c.error_kind or "internal" for c in calls]
        self.kind = kinds[0] if kinds else "internal"
        detail = "; ".join(f"{c.member}: {c.error_kind}: {c.error}" for c in calls) or "no calls"
        super().__init__(f"strategy {strategy!r}: no member answered ({detail})")


_VOTES = ("consensus", "semantic")
_MEANINGFUL = 3
"""Answers a vote needs before agreeing with it says anything about a member."""


def observations(result: StrategyResult) -> list[Observed]:
    """What the result says about each model, for the Selector's performance history.

    One :class:`~actors.orchestration.selection.Observed` per call that ended (calls
    cancelled by a won race are left out): whether it answered, its latency and cost;
    for ``consensus`` and ``semantic`` with three or more answers, each answer's quality
    is 1 when it sided with the decision and 0 when it did not (as the Consensus actor
    reports its members).
    """
    answered = sum(1 for c in result.calls if c.ok and c.stage == "answer")
    vote = result.strategy in _VOTES and answered >= _MEANINGFUL
    found: list[Observed] = []
    for c in result.calls:
        if c.error_kind == FailureKind.CANCELLED.value:
            continue
        quality = None
        if vote and c.ok and c.stage == "answer":
            quality = 1.0 if c.member in result.answered_by else 0.0
        found.append(
            Observed(
                model=f"{c.host}/{c.model}" if c.host else c.member.split(" (")[0],
                task_type=result.task_type,
                ok=c.ok,
                kind=c.error_kind,
                latency_s=c.latency_s or None,
                cost_usd=c.cost_usd,
                quality=quality,
            )
        )
    return found


# ---- the engine's paths ---------------------------------------------------------------


def _where(resolve: Resolve, model: str, host: str | None) -> tuple[Ref[Any], str]:
    try:
        return resolve(model, host)
    except LookupError:
        head, sep, rest = model.partition("/")
        if host is None and sep and rest:
            return resolve(rest, head)  # "host/model"
        raise


def host_caller(
    resolve: Resolve,
    *,
    budget: Ref[Any] | None = None,
    scope: SpendScope | None = None,
    timeout: float | None = None,
) -> MemberCall:
    """A :data:`MemberCall` over model hosts: resolve the member, ask under the budget.

    Args:
        resolve: Finds a model's host (the engine's, or one over the catalog).
        budget: The Budget actor that admits each call (``None``: no limits).
        scope: Whom calls are charged to.
        timeout: Seconds each call may take.
    """
    charged = scope or SpendScope()

    async def call(m: Member, request: ChatRequest) -> Completion | Failure:
        try:
            host, model = _where(resolve, m.model, m.host)
        except LookupError as exc:
            return Failure(kind=FailureKind.NOT_FOUND, message=str(exc), source="strategy")
        request = msgspec.structs.replace(request, model=model)
        return await budgeted_chat(host, request, budget=budget, scope=charged, timeout=timeout)

    return call


def embedder(resolve: Resolve, model: str, *, timeout: float | None = 30.0) -> Embed:
    """An :data:`~._aggregate.Embed` that asks the host serving ``model`` for vectors.

    Raises (when called):
        LookupError: No host serves ``model``.
        actors.AskError: The host failed.
    """

    async def embed(texts: Sequence[str]) -> Sequence[Sequence[float]]:
        host, name = _where(resolve, model, None)
        answer: Embeddings = await host.ask_async(
            # Only for similarity: a long answer is compared by its opening.
            EmbedRequest(model=name, inputs=tuple(texts), truncate=True),
            timeout=timeout,
        )
        return answer.vectors

    return embed


# ---- prompts ----------------------------------------------------------------------------


def _framed(prompt: str, context: str) -> str:
    if not context.strip():
        return prompt
    return f"Reasoning so far:\n{context.strip()}\n\nTask:\n{prompt}"


def _refine_prompt(prompt: str, previous: str) -> str:
    return (
        f"{prompt}\n\nA previous answer to this:\n{previous}\n\n"
        "Check it: correct any mistake, keep what is right, and give the complete "
        "improved answer."
    )


_COORDINATE = (
    "You coordinate the workers whose responses you were given: decide the final answer "
    "and give only that."
)
"""Added to a ``hierarchical`` coordinator's task (the references come from the
consensus package's Mixture-of-Agents synthesis prompt, as for ``hybrid``)."""


def _judge_prompt(prompt: str, a: str, b: str) -> str:
    return (
        f"Question:\n{prompt}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\n"
        "Which answer is better (correct, complete, clear)? Reply with exactly one letter: "
        "A or B."
    )


def _verdict(text: str) -> str | None:
    for char in text.strip().upper():
        if char in "AB":
            return char
        if char.isalpha():
            break
    return None


# ---- running ------------------------------------------------------------------------------


class _Run:
    """One strategy's run-time state: the calls made so far."""

    def __init__(
        self,
        choice: StrategyChoice,
        prompt: str,
        call: MemberCall,
        system: str | None,
        context: str,
    ) -> None:
        self.choice = choice
        self.members = choice.strategy.members
        self.prompt = _framed(prompt, context)
        self.question = prompt
        self.call = call
        self.system = system
        self.calls: list[MemberOutcome] = []
        self.reasons: list[str] = list(choice.reasons)

    async def ask(
        self,
        index: int,
        text: str,
        stage: str,
        wave: int,
        max_tokens: int,
        *,
        references: Sequence[str] = (),
    ) -> MemberOutcome:
        m = self.members[index]
        temperature = self.choice.temperatures[index]
        if stage == "judge":
            temperature = 0.0
        request = ChatRequest.prompt(
            "", text, system=self.system, temperature=temperature, max_tokens=max_tokens
        )
        if references:
            request = synthesis_request(request, references)
        started = time.perf_counter()
        try:
            answer = await self.call(m, request)
        except asyncio.CancelledError:
            outcome = MemberOutcome(
                member=m.label,
                index=index,
                stage=stage,
                wave=wave,
                error_kind="cancelled",
                error="the race was already won",
                temperature=temperature,
                latency_s=time.perf_counter() - started,
            )
            self.calls.append(outcome)
            raise
        except AskError as exc:
            answer = exc.failure
        latency = time.perf_counter() - started
        if isinstance(answer, Completion):
            outcome = MemberOutcome(
                member=m.label,
                index=index,
                stage=stage,
                wave=wave,
                model=answer.model,
                host=answer.host,
                content=answer.content,
                temperature=temperature,
                latency_s=latency,
                input_tokens=answer.usage.input_tokens,
                output_tokens=answer.usage.output_tokens,
                cost_usd=answer.cost_usd,
                not_applied=tuple(answer.extras.get("dropped_params", ())),
            )
        else:
            outcome = MemberOutcome(
                member=m.label,
                index=index,
                stage=stage,
                wave=wave,
                error_kind=answer.kind.value,
                error=answer.message,
                temperature=temperature,
                latency_s=latency,
            )
        self.calls.append(outcome)
        return outcome

    async def first_calls(self, max_tokens: int) -> list[MemberOutcome]:
        """Every wave's members answer the prompt (a wave's calls at once)."""
        answered: list[MemberOutcome] = []
        for wave, indexes in enumerate(self.choice.waves):
            outcomes = await asyncio.gather(
                *(self.ask(i, self.prompt, "answer", wave, max_tokens) for i in indexes)
            )
            answered += [o for o in outcomes if o.ok]
        answered.sort(key=lambda o: o.index)
        return answered

    @property
    def later_wave(self) -> int:
        return len(self.choice.waves)

    def fail(self) -> StrategyFailed:
        return StrategyFailed(self.choice.kind, self.calls)


async def run_strategy(
    choice: StrategyChoice,
    prompt: str,
    *,
    call: MemberCall,
    system: str | None = None,
    context: str = "",
    aggregator: Aggregator | None = None,
    embed: Embed | None = None,
) -> StrategyResult:
    """Run ``choice`` for ``prompt``; the answer with every call's provenance.

    Args:
        choice: The strategy and its schedule (:func:`~._chooser.choose_strategy`).
        prompt: The task.
        call: How a member's model is asked (:func:`host_caller`).
        system: A system prompt for every call.
        context: Reasoning accumulated so far (a reasoning session's), put before the
            task in the members' prompts.
        aggregator: ``consensus``/``semantic``: the aggregator (default: plurality for
            ``consensus``; :class:`~._aggregate.Resonance` over ``embed`` for ``semantic``).
        embed: ``semantic``: fetches embeddings (:func:`embedder`).

    Raises:
        StrategyFailed: No member answered.
    """
    started = time.perf_counter()
    run = _Run(choice, prompt, call, system, context)
    runner = _RUNNERS[choice.kind]
    verdict = await runner(run, aggregator, embed)
    costs = [c.cost_usd for c in run.calls if c.cost_usd is not None]
    return StrategyResult(
        strategy=choice.kind,
        answer=verdict.answer,
        answered_by=verdict.answered_by,
        agreement=verdict.agreement,
        agreed=verdict.agreed,
        confidence=verdict.confidence,
        method=verdict.method,
        task_type=choice.task_type,
        auto=choice.auto,
        reasons=tuple(run.reasons),
        waves=choice.waves,
        calls=tuple(run.calls),
        latency_s=time.perf_counter() - started,
        cost_usd=sum(costs) if costs else None,
    )


class _Verdict(msgspec.Struct, frozen=True, kw_only=True):
    answer: str
    answered_by: tuple[str, ...]
    method: str
    agreement: float | None = None
    agreed: bool | None = None
    confidence: float | None = None


_Runner = Callable[[_Run, Aggregator | None, Embed | None], Awaitable[_Verdict]]


async def _concurrent(run: _Run, _agg: Aggregator | None, _embed: Embed | None) -> _Verdict:
    """A race: every member at once; the first good answer wins, the rest are cancelled."""
    tokens = run.choice.profile.max_tokens
    tasks = [
        asyncio.ensure_future(run.ask(i, run.prompt, "answer", 0, tokens))
        for i in range(len(run.members))
    ]
    winner: MemberOutcome | None = None
    try:
        for next_done in asyncio.as_completed(tasks):
            outcome = await next_done
            if outcome.ok:
                winner = outcome
                break
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if winner is None:
        raise run.fail()
    return _Verdict(answer=winner.content, answered_by=(winner.member,), method="race")


async def _chain(run: _Run, _agg: Aggregator | None, _embed: Embed | None) -> _Verdict:
    """Each member refines the last good answer; a failed link is passed over."""
    tokens = run.choice.profile.max_tokens
    best: MemberOutcome | None = None
    for index in range(len(run.members)):  # one wave each: wave number = index
        if best is None:
            outcome = await run.ask(index, run.prompt, "answer", index, tokens)
        else:
            text = _refine_prompt(run.prompt, best.content)
            outcome = await run.ask(index, text, "refine", index, tokens)
        if outcome.ok:
            best = outcome
    if best is None:
        raise run.fail()
    method = "first" if len(run.members) == 1 else "last"
    return _Verdict(answer=best.content, answered_by=(best.member,), method=method)


async def _specialized(run: _Run, _agg: Aggregator | None, _embed: Embed | None) -> _Verdict:
    """The best specialist for the task's type answers; on failure, the next one."""
    order = _preferred(run)
    tokens = run.choice.profile.max_tokens
    for wave, index in enumerate(order):
        outcome = await run.ask(index, run.prompt, "answer", wave, tokens)
        if outcome.ok:
            if wave:
                run.reasons.append(f"{wave} specialist(s) before {outcome.member} failed")
            return _Verdict(
                answer=outcome.content, answered_by=(outcome.member,), method="specialist"
            )
    raise run.fail()


async def _parallel(run: _Run, _agg: Aggregator | None, _embed: Embed | None) -> _Verdict:
    """Every member answers; the answer is every perspective, labelled."""
    answered = await run.first_calls(run.choice.profile.max_tokens)
    if not answered:
        raise run.fail()
    if len(answered) == 1:
        only = answered[0]
        return _Verdict(answer=only.content, answered_by=(only.member,), method="perspectives")
    text = "\n\n".join(f"## {o.member}\n{o.content.strip()}" for o in answered)
    return _Verdict(
        answer=text, answered_by=tuple(o.member for o in answered), method="perspectives"
    )


async def _synthesised(run: _Run, synthesiser: int, *, coordinator: bool) -> _Verdict:
    """First calls, then ``synthesiser`` reads them; the best answer stands in if it fails."""
    profile = run.choice.profile
    answered = await run.first_calls(profile.synthesis_tokens)
    if not answered:
        raise run.fail()
    stage = "coordinate" if coordinator else "synthesis"
    method = "coordinator" if coordinator else "synthesis"
    text = f"{run.prompt}\n\n{_COORDINATE}" if coordinator else run.prompt
    final = await run.ask(
        synthesiser,
        text,
        stage,
        run.later_wave,
        profile.synthesis_tokens,
        references=[o.content for o in answered],
    )
    if final.ok:
        return _Verdict(answer=final.content, answered_by=(final.member,), method=method)
    stand_in = _first_preferred(run, answered)
    run.reasons.append(
        f"the {stage} by {final.member} failed ({final.error_kind}: {final.error}); "
        f"{stand_in.member}'s answer stands in"
    )
    return _Verdict(
        answer=stand_in.content, answered_by=(stand_in.member,), method=f"fallback:{method}"
    )


def _preferred(run: _Run) -> tuple[int, ...]:
    return run.choice.preferred or specialists(run.members, run.choice.task_type, None)


def _first_preferred(run: _Run, answered: Sequence[MemberOutcome]) -> MemberOutcome:
    order = _preferred(run)
    rank = {index: position for position, index in enumerate(order)}
    return min(answered, key=lambda o: (rank.get(o.index, len(order)), o.index))


async def _hybrid(run: _Run, _agg: Aggregator | None, _embed: Embed | None) -> _Verdict:
    """Every member drafts; the specialist for the task's type synthesises."""
    synthesiser = _preferred(run)[0]
    return await _synthesised(run, synthesiser, coordinator=False)


async def _hierarchical(run: _Run, _agg: Aggregator | None, _embed: Embed | None) -> _Verdict:
    """Workers answer; the coordinator decides."""
    coordinator = next(i for i, m in enumerate(run.members) if m.role == COORDINATOR)
    return await _synthesised(run, coordinator, coordinator=True)


async def _decide(
    run: _Run, aggregator: Aggregator, answered: Sequence[MemberOutcome]
) -> Agreement:
    verdict = aggregator([o.content for o in answered], [run.members[o.index] for o in answered])
    if inspect.isawaitable(verdict):
        return await verdict
    return verdict


def _voted(answered: Sequence[MemberOutcome], agreement: Agreement) -> tuple[str, ...]:
    return tuple(answered[i].member for i in agreement.supporters if i < len(answered))


async def _consensus(run: _Run, aggregator: Aggregator | None, _embed: Embed | None) -> _Verdict:
    """Every member answers; the aggregator decides; below the threshold it is flagged."""
    answered = await run.first_calls(run.choice.profile.max_tokens)
    if not answered:
        raise run.fail()
    asked = len(run.members)
    if len(answered) < asked:
        run.reasons.append(f"{asked - len(answered)} of {asked} members failed: voting on the rest")
    agreement = await _decide(run, aggregator or plurality, answered)
    threshold = run.choice.strategy.threshold
    agreed = agreement.agreement >= threshold and len(answered) >= 2
    if not agreed:
        run.reasons.append(
            f"low consensus: agreement {agreement.agreement:.2f} over {len(answered)} answer(s) "
            f"(threshold {threshold})"
        )
    return _Verdict(
        answer=agreement.answer,
        answered_by=_voted(answered, agreement),
        method=agreement.method or getattr(aggregator, "__name__", "aggregator"),
        agreement=agreement.agreement,
        agreed=agreed,
        confidence=agreement.confidence,
    )


async def _semantic(run: _Run, aggregator: Aggregator | None, embed: Embed | None) -> _Verdict:
    """Every member answers; the answer that resonates with most others wins."""
    answered = await run.first_calls(run.choice.profile.max_tokens)
    if not answered:
        raise run.fail()
    strategy = run.choice.strategy
    chosen = aggregator
    if chosen is None:
        if embed is None:
            msg = "semantic strategy: an embedding function (embed=) is needed to compare answers"
            raise ValueError(msg)
        chosen = Resonance(embed, strategy.resonance)
    method_prefix = ""
    try:
        agreement = await _decide(run, chosen, answered)
    except (AskError, LookupError, ValueError, TimeoutError) as exc:
        why = exc.failure.message if isinstance(exc, AskError) else str(exc)
        run.reasons.append(
            f"embedding with {strategy.embedding_model} failed ({why}): "
            "clustering by text similarity stands in"
        )
        agreement = lexical([o.content for o in answered])
        method_prefix = "fallback:"
    agreed = len(agreement.supporters) >= 2
    return _Verdict(
        answer=agreement.answer,
        answered_by=_voted(answered, agreement),
        method=method_prefix + (agreement.method or "aggregator"),
        agreement=agreement.agreement,
        agreed=agreed,
        confidence=agreement.confidence,
    )


async def _combinatorial(run: _Run, _agg: Aggregator | None, _embed: Embed | None) -> _Verdict:
    """Every worker answers; a judge compares every pair; the most wins is the answer."""
    profile = run.choice.profile
    answered = await run.first_calls(profile.max_tokens)
    if not answered:
        raise run.fail()
    if len(answered) == 1:
        only = answered[0]
        run.reasons.append("only one member answered: nothing to compare")
        return _Verdict(answer=only.content, answered_by=(only.member,), method="pairwise")
    judges = [i for i, m in enumerate(run.members) if m.role == JUDGE]
    judge = judges[0] if judges else 0
    wins = dict.fromkeys(range(len(answered)), 0.0)
    pairs = list(itertools.combinations(range(len(answered)), 2))
    wave = run.later_wave
    judged = 0
    for a, b in pairs:
        text = _judge_prompt(run.prompt, answered[a].content, answered[b].content)
        outcome = await run.ask(judge, text, "judge", wave, profile.judge_tokens)
        letter = _verdict(outcome.content) if outcome.ok else None
        if letter is None:
            wins[a] += 0.5
            wins[b] += 0.5
            continue
        judged += 1
        wins[a if letter == "A" else b] += 1.0
    if judged < len(pairs):
        missing = len(pairs) - judged
        run.reasons.append(f"{missing} of {len(pairs)} pairs had no verdict: a tie each")
    best = max(wins, key=lambda i: (wins[i], -i))
    winner = answered[best]
    return _Verdict(
        answer=winner.content,
        answered_by=(winner.member,),
        method="pairwise",
        agreement=wins[best] / (len(answered) - 1),
    )


_RUNNERS: dict[str, _Runner] = {
    "concurrent": _concurrent,
    "chain": _chain,
    "specialized": _specialized,
    "hybrid": _hybrid,
    "parallel": _parallel,
    "consensus": _consensus,
    "hierarchical": _hierarchical,
    "semantic": _semantic,
    "combinatorial": _combinatorial,
}
