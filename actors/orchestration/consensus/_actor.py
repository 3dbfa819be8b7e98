"""The Consensus coordinator: one question to several members, one answer and how sure it is.

One actor serves every consensus of an engine; it runs on the I/O loop and keeps no
thread. Each :class:`~._messages.ConsensusRequest` is a poll, advanced by messages to
the actor itself:

1. choose the members: the spec's, or (none given) a diverse set from the catalog,
   ranked by the Selector, as many as the task's complexity asks for;
2. send every member the request at once, each under its own deadline and admitted
   by the Budget (when the engine has one); start the quorum timer (``quorum.wait_s``);
3. as answers come in, extract each one's value; with ``adaptive``, end the round as
   soon as the leading answer cannot be overtaken;
4. the round ends when every member is done, adaptive stopping says so, or the quorum
   deadline (or the request's own) passes: members still running are cancelled (their
   HTTP calls aborted) and recorded as such;
5. debate runs more rounds (each member reads the others' answers), synthesis more
   layers and then the aggregator model (with its fallback); with ``adaptive``, answers
   that are not decisive bring more members, up to ``max_members``;
6. fewer answers than the quorum: degrade, fail (every member's real error in the
   failure's details) or ask the fallback model; none at all always fails;
7. aggregate (free text: clustered by an embedding model's vectors, lexically without
   one), assess the confidence, publish :class:`~._messages.LowConsensus` when it is
   under the threshold, tell the Selector each member's outcome with its agreement as
   a quality signal, and answer the :class:`~._messages.ConsensusResult`.

Every poll is a ``consensus {step}`` span; the members' chat spans are its children.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, assert_never

import msgspec
from opentelemetry import trace

import otel
from actors import AskError, Deferred, Failure, FailureKind, LoopActor, Ref
from actors.llm import CancelChat, Catalog, ChatRequest, Completion, Embeddings, EmbedRequest
from actors.orchestration.budget import SpendScope, budgeted_chat
from actors.orchestration.consensus._aggregate import Verdict, cosine_matrix
from actors.orchestration.consensus._conclude import aggregate, assess, choose_diverse
from actors.orchestration.consensus._confidence import adaptive_stop, member_count
from actors.orchestration.consensus._extract import extract, normalise, stated_confidence
from actors.orchestration.consensus._messages import (
    ConsensusRequest,
    ConsensusResult,
    ConsensusSpec,
    LowConsensus,
    Member,
    MemberAnswer,
    spec_problems,
)
from actors.orchestration.consensus._prompts import debate_request, synthesis_request
from actors.orchestration.selection import Choice, Observed, SelectModel, TaskFeatures, analyse

__all__ = ["Consensus", "Resolver"]

Resolver = Callable[[str, str | None], tuple[Ref[Any], str]]
"""``(model, host) -> (host ref, model)``; raises ``LookupError`` naming what exists."""

_VOTES = frozenset({"plurality", "weighted", "cluster", "custom"})
"""Methods whose first round may stop early (a vote)."""
_ROUNDS = frozenset({"debate", "synthesis"})
"""Methods of more than one round of calls."""
_MARGIN_S = 0.02
"""How long before the request's deadline every call must end, to answer in time."""
_GROW_BY = 2
"""Members added at a time when the answers are not decisive (keeps the count odd)."""


@dataclass(slots=True)
class _Slot:
    """One member call of the current round."""

    member: Member
    request: ChatRequest
    host: Ref[Any] | None = None
    handle: Any = None
    answer: MemberAnswer | None = None


@dataclass(slots=True)
class _Poll:
    """One consensus under way."""

    message: ConsensusRequest
    spec: ConsensusSpec
    reply: Deferred[Any]
    started: float
    deadline: float
    span: trace.Span | None
    members: list[Member] = field(default_factory=list)
    spare: list[Member] = field(default_factory=list)
    slots: list[_Slot] = field(default_factory=list)
    history: list[MemberAnswer] = field(default_factory=list)
    round: int = 1
    timer: Any = None
    end_timer: Any = None
    done: bool = False
    stopped_early: bool = False
    added: int = 0
    asked: int = 0
    fallback: str = ""
    note: str = ""

    _features: TaskFeatures | None = None

    @property
    def features(self) -> TaskFeatures:
        """The request's task features (computed when first needed: off the fast path)."""
        if self._features is None:
            request = self.message.request
            self._features = analyse(request.messages, task_type=self.spec.task_type)
        return self._features

    @property
    def task_type(self) -> str:
        """The request's task type."""
        return self.features.task_type

    _scope: SpendScope | None = None

    @property
    def scope(self) -> SpendScope:
        """Whom the members' calls are charged to."""
        if self._scope is None:
            m = self.message
            run_id = m.run_id.split("/", 1)[0]
            self._scope = SpendScope(run_id=run_id, reactor=m.reactor, agent=m.agent)
        return self._scope


class Consensus(LoopActor[ConsensusRequest]):
    """Answers :class:`ConsensusRequest` s (see the module docstring).

    Args:
        resolve: Finds a member's host (the engine's model map, or the catalog).
        catalog: Where members are chosen from when a spec names none, and where the
            embedding model for free text is found.
        selector: Ranks the members chosen for diversity, and hears each member's
            outcome (its agreement with the consensus as a quality signal).
        budget: The Budget actor that admits every member call (``None``: none).
    """

    def __init__(
        self,
        resolve: Resolver,
        *,
        catalog: Catalog | None = None,
        selector: Ref[Any] | None = None,
        budget: Ref[Any] | None = None,
    ) -> None:
        super().__init__()
        self.resolve = resolve
        self.catalog = catalog
        self.selector = selector
        self.budget = budget
        self._checked: dict[int, tuple[ConsensusSpec, list[str]]] = {}
        self._record: dict[tuple[str, str], list[int]] = {}
        """Per (model, task type): [agreed, answered]: accuracy measured as agreement."""

    def accuracy(self, model: str, task_type: str) -> float | None:
        """A model's measured agreement with past consensus on a task type (``None``: < 5 seen).

        The estimate is ``(agreed + 1) / (answered + 2)``: agreement with the majority
        learns each member's skill without ground truth, as weighted votes need.
        """
        agreed, answered = self._record.get((model, task_type), (0, 0))
        if answered < 5:
            return None
        return (agreed + 1) / (answered + 2)

    def _problems(self, spec: ConsensusSpec) -> list[str]:
        """:func:`spec_problems`, once per spec object (a step sends the same one each time)."""
        known = self._checked.get(id(spec))
        if known is not None and known[0] is spec:
            return known[1]
        problems = spec_problems(spec)
        if len(self._checked) > 256:
            self._checked.clear()
        self._checked[id(spec)] = (spec, problems)
        return problems

    def receive(self, message: ConsensusRequest) -> object:
        """Start a poll; the answer comes when the aggregation is done."""
        match message:
            case ConsensusRequest():
                self._start(message, self.defer_reply())
                return None
            case _:
                assert_never(message)

    # ---- 1. members ----------------------------------------------------------------------

    def _start(self, message: ConsensusRequest, reply: Deferred[Any]) -> None:
        spec = message.spec if isinstance(message.spec, ConsensusSpec) else ConsensusSpec()
        problems = self._problems(spec)
        if problems:
            reply.fail(FailureKind.BAD_REQUEST, f"consensus: {'; '.join(problems)}")
            return
        now = time.time()
        deadline = message.deadline if message.deadline is not None else now + 300.0
        span = None
        if otel.enabled():
            parent = otel.extract(message.trace)
            span = otel.tracer().start_span(
                f"consensus {message.step or spec.method}", context=parent
            )
            span.set_attribute("reactor.consensus.method", spec.method)
        poll = _Poll(
            message=message,
            spec=spec,
            reply=reply,
            started=time.perf_counter(),
            deadline=deadline,
            span=span,
        )
        if spec.method in _ROUNDS or spec.adaptive:
            # Later rounds and added members could outlast the deadline: end it all there.
            # (A single round needs no timer: each call's own deadline ends before it.)
            poll.end_timer = self.call_later(
                max(0.0, deadline - now - _MARGIN_S), lambda: self._round_over(poll, "deadline")
            )
        if spec.members:
            poll.members = list(spec.members)
            self._first_round(poll)
            return
        complexity = poll.features.complexity
        count = spec.count or member_count(complexity, spec.min_members, spec.max_members)
        self._choose(poll, count)

    def _chat_models(self) -> list[tuple[str, str]]:
        if self.catalog is None:
            return []
        return [
            (e.host, e.model)
            for e in self.catalog.entries()
            if "chat" in e.capabilities and e.healthy
        ]

    def _choose(self, poll: _Poll, count: int) -> None:
        candidates = self._chat_models()
        if not candidates:
            self._fail(poll, FailureKind.NOT_FOUND, "no members given and no chat model known")
            return
        if self.selector is None:
            self._chosen(poll, candidates, count)
            return
        ask = SelectModel(
            request=poll.message.request,
            policy=poll.spec.policy,
            task_type=poll.spec.task_type,
            candidates=tuple(f"{h}/{m}" for h, m in candidates),
        )

        def ranked(choice: Choice | Failure) -> None:
            order = list(candidates)
            if isinstance(choice, Choice):
                score = {c.model: c.score for c in choice.decision.considered}
                eligible = [c for c in order if score.get(f"{c[0]}/{c[1]}") is not None]
                order = sorted(
                    eligible or order, key=lambda c: -(score.get(f"{c[0]}/{c[1]}") or 0.0)
                )
            self._chosen(poll, order, count)

        self.ask(self.selector, ask, ranked, timeout=5.0)

    def _chosen(self, poll: _Poll, ranked: list[tuple[str, str]], count: int) -> None:
        if poll.done:
            return
        picks = choose_diverse(ranked, count + poll.spec.max_members)
        seen: dict[tuple[str, str], int] = {}
        members = []
        for host, model in picks:
            copies = seen.get((host, model), 0)
            seen[(host, model)] = copies + 1
            members.append(Member(model=model, host=host, seed=copies if copies else None))
        poll.members, poll.spare = members[:count], members[count:]
        if poll.span is not None:
            poll.span.set_attribute("reactor.consensus.chosen", [m.label for m in poll.members])
        self._first_round(poll)

    # ---- 2. rounds -----------------------------------------------------------------------

    def _member_request(self, poll: _Poll, member: Member, base: ChatRequest) -> ChatRequest:
        spec = poll.spec
        options = base.options if member.seed is None else {**base.options, "seed": member.seed}
        temperature = member.temperature
        if temperature is None:
            temperature = spec.temperature if spec.temperature is not None else base.temperature
        return msgspec.structs.replace(
            base,
            temperature=temperature,
            max_tokens=spec.max_tokens if spec.max_tokens is not None else base.max_tokens,
            options=options,
            trace=None,
            deadline=None,
        )

    def _first_round(self, poll: _Poll) -> None:
        base = poll.message.request
        self._round(poll, [(m, self._member_request(poll, m, base)) for m in poll.members])

    def _round(self, poll: _Poll, calls: list[tuple[Member, ChatRequest]]) -> None:
        poll.slots = []
        if poll.timer is not None:
            poll.timer.cancel()
            poll.timer = None
        wait = poll.spec.quorum.wait_s
        if wait is not None:
            number = poll.round
            poll.timer = self.call_later(
                wait, lambda: self._round_over(poll, "quorum deadline", number)
            )
        for member, request in calls:
            self._send(poll, member, request)
        self._check(poll)

    def _send(self, poll: _Poll, member: Member, request: ChatRequest) -> None:
        slot = _Slot(member=member, request=request)
        poll.slots.append(slot)
        poll.asked += 1
        try:
            host, model = self._where(member.model, member.host)
        except LookupError as exc:
            slot.answer = MemberAnswer(
                member=member.label, error_kind="not_found", error=str(exc), round=poll.round
            )
            return
        timeout = member.timeout_s or poll.spec.member_timeout_s
        timeout = max(0.001, min(timeout, poll.deadline - time.time() - _MARGIN_S))
        slot.host = host
        slot.request = msgspec.structs.replace(request, model=model, deadline=time.time() + timeout)
        number = poll.round
        sent = time.perf_counter()
        slot.handle = self.pipe_to_self(
            self._timed(poll, host, slot.request, timeout),
            lambda outcome: self._answered(poll, number, slot, outcome, sent),
            name="consensus member",
        )

    def _where(self, model: str, host: str | None) -> tuple[Ref[Any], str]:
        try:
            return self.resolve(model, host)
        except LookupError:
            name, sep, bare = model.partition("/")
            if host is None and sep and bare:
                return self.resolve(bare, name)
            raise

    async def _call(
        self, poll: _Poll, host: Ref[Any], request: ChatRequest, timeout: float
    ) -> Completion | Failure:
        if poll.span is None:
            return await budgeted_chat(
                host, request, budget=self.budget, scope=poll.scope, timeout=timeout
            )
        with trace.use_span(poll.span, end_on_exit=False):
            return await budgeted_chat(
                host, request, budget=self.budget, scope=poll.scope, timeout=timeout
            )

    async def _timed(
        self, poll: _Poll, host: Ref[Any], request: ChatRequest, timeout: float
    ) -> tuple[Completion | Failure, float]:
        """A member's call and when it ended (its latency is the call's, not the mailbox's)."""
        outcome = await self._call(poll, host, request, timeout)
        return outcome, time.perf_counter()

    def _answered(
        self, poll: _Poll, number: int, slot: _Slot, outcome: object, sent: float
    ) -> None:
        if poll.done or number != poll.round or slot.answer is not None:
            return
        slot.handle = None
        ended = time.perf_counter()
        if isinstance(outcome, tuple):
            outcome, ended = outcome
        latency = ended - sent
        label = slot.member.label
        if isinstance(outcome, Completion):
            slot.answer = self._read(poll, slot, outcome, latency)
        else:
            failure = outcome if isinstance(outcome, Failure) else _internal(outcome)
            slot.answer = MemberAnswer(
                member=label,
                model=_qualified(slot),
                error_kind=failure.kind.value,
                error=failure.message,
                latency_s=latency,
                round=number,
            )
        self._check(poll)

    def _read(
        self, poll: _Poll, slot: _Slot, completion: Completion, latency: float
    ) -> MemberAnswer:
        spec = poll.spec
        text = completion.content
        error = ""
        try:
            value = extract(text, spec.output, how=spec.extract, choices=spec.choices)
        except Exception as exc:  # noqa: BLE001 - a user's extraction failing spoils one answer
            value, error = None, f"extraction raised {type(exc).__name__}: {exc}"
        if value is None and not error:
            error = f"no {spec.output} answer found in the text"
        return MemberAnswer(
            member=slot.member.label,
            model=f"{completion.host}/{completion.model}" if completion.host else completion.model,
            ok=True,
            text=text,
            value=value,
            error=error,
            latency_s=latency,
            cost_usd=completion.cost_usd,
            input_tokens=completion.usage.input_tokens,
            output_tokens=completion.usage.output_tokens,
            stated_confidence=stated_confidence(text),
            round=poll.round,
        )

    def _check(self, poll: _Poll) -> None:
        if poll.done:
            return
        answers = [s.answer for s in poll.slots]
        if all(a is not None for a in answers):
            self._round_over(poll, "all answered", poll.round)
            return
        spec = poll.spec
        if spec.adaptive and poll.round == 1 and spec.method in _VOTES:
            counts: dict[Any, int] = {}
            for answer in answers:
                if answer is not None and answer.value is not None:
                    key = msgspec.json.encode(answer.value)
                    counts[key] = counts.get(key, 0) + 1
            finished = sum(1 for a in answers if a is not None and a.value is None)
            if adaptive_stop(list(counts.values()), len(poll.slots) - finished):
                poll.stopped_early = True
                self._round_over(poll, "decided early (adaptive stopping)", poll.round)

    def _round_over(self, poll: _Poll, why: str, number: int | None = None) -> None:
        if poll.done or (number is not None and number != poll.round):
            return
        if why == "deadline" and not poll.slots:
            self._fail(poll, FailureKind.TIMEOUT, "the deadline passed before any member was asked")
            return
        if poll.timer is not None:
            poll.timer.cancel()
            poll.timer = None
        for slot in poll.slots:
            if slot.answer is None:
                self._cancel(slot)
                slot.answer = MemberAnswer(
                    member=slot.member.label,
                    model=_qualified(slot),
                    error_kind=FailureKind.CANCELLED.value,
                    error=f"still running when the round ended ({why})",
                    round=poll.round,
                )
        final = why == "deadline"
        self._next(poll, final)

    def _cancel(self, slot: _Slot) -> None:
        if slot.handle is not None:
            slot.handle.cancel()
            slot.handle = None
        if slot.host is not None:
            slot.host.tell_if_alive(CancelChat(request_id=slot.request.request_id))

    # ---- 5. more rounds, more members ------------------------------------------------------

    def _ok(self, poll: _Poll) -> list[tuple[_Slot, MemberAnswer]]:
        return [
            (s, s.answer)
            for s in poll.slots
            if s.answer is not None and s.answer.ok and s.answer.value is not None
        ]

    def _next(self, poll: _Poll, final: bool) -> None:
        spec = poll.spec
        method = spec.method
        ok = self._ok(poll)
        more_rounds = spec.rounds if method == "debate" else spec.layers
        rounds_left = method in ("debate", "synthesis") and poll.round < more_rounds
        if not final and rounds_left and len(ok) >= 2:
            poll.history += [s.answer for s in poll.slots if s.answer is not None]
            poll.round += 1
            self._round(poll, self._follow_up(poll, ok))
            return
        if not final and method == "synthesis":
            self._synthesise(poll, ok, spec.aggregator_model or "", first=True)
            return
        if not final and self._grow(poll, ok):
            return
        self._final(poll)

    def _follow_up(
        self, poll: _Poll, ok: list[tuple[_Slot, MemberAnswer]]
    ) -> list[tuple[Member, ChatRequest]]:
        base = poll.message.request
        calls = []
        texts = [a.text for _, a in ok]
        for index, (slot, answer) in enumerate(ok):
            request = self._member_request(poll, slot.member, base)
            if poll.spec.method == "debate":
                others = [t for i, t in enumerate(texts) if i != index]
                request = debate_request(request, answer.text, others)
            else:
                request = synthesis_request(request, texts)
            calls.append((slot.member, request))
        return calls

    def _grow(self, poll: _Poll, ok: list[tuple[_Slot, MemberAnswer]]) -> bool:
        spec = poll.spec
        if not spec.adaptive or poll.stopped_early or spec.method not in _VOTES or not ok:
            return False
        if len(poll.slots) >= spec.max_members:
            return False
        if any(s.answer and s.answer.error_kind == "budget_exceeded" for s in poll.slots):
            return False
        verdict, _ = self._verdict(poll, [a for _, a in ok], None)
        assessment = assess(verdict, len(poll.slots), spec.threshold)
        if not assessment.low:
            return False
        count = min(_GROW_BY, spec.max_members - len(poll.slots))
        extra = self._extra_members(poll, count)
        poll.added += len(extra)
        base = poll.message.request
        for member in extra:
            self._send(poll, member, self._member_request(poll, member, base))
        self._check(poll)
        return True

    def _extra_members(self, poll: _Poll, count: int) -> list[Member]:
        extra = poll.spare[:count]
        poll.spare = poll.spare[count:]
        used = {s.member.label for s in poll.slots}
        seed = 1
        while len(extra) < count:
            source = poll.members[len(extra) % len(poll.members)]
            candidate = msgspec.structs.replace(source, seed=(source.seed or 0) + seed)
            seed += 1
            if candidate.label not in used:
                extra.append(candidate)
                used.add(candidate.label)
        return extra

    def _synthesise(
        self, poll: _Poll, ok: list[tuple[_Slot, MemberAnswer]], model: str, *, first: bool
    ) -> None:
        spec = poll.spec
        if not ok or not model:
            self._final(poll, note="no aggregator could synthesise; the largest cluster answers")
            return
        base = self._member_request(poll, Member(model=model), poll.message.request)
        request = synthesis_request(base, [a.text for _, a in ok])
        try:
            host, name = self._where(model, None)
        except LookupError as exc:
            self._aggregator_failed(poll, ok, model, first, str(exc))
            return
        timeout = max(0.001, min(spec.member_timeout_s, poll.deadline - time.time() - _MARGIN_S))
        request = msgspec.structs.replace(request, model=name, deadline=time.time() + timeout)
        poll.asked += 1

        def done(outcome: Completion | Failure) -> None:
            if poll.done:
                return
            if isinstance(outcome, Completion) and outcome.content.strip():
                self._final(poll, synthesis=(model, outcome))
                return
            why = outcome.message if isinstance(outcome, Failure) else "an empty answer"
            self._aggregator_failed(poll, ok, model, first, why)

        self.pipe_to_self(
            self._call(poll, host, request, timeout), done, name="consensus synthesis"
        )

    def _aggregator_failed(
        self, poll: _Poll, ok: list[tuple[_Slot, MemberAnswer]], model: str, first: bool, why: str
    ) -> None:
        poll.note = f"aggregator {model} failed: {why}"
        fallback = poll.spec.fallback_aggregator
        if first and fallback:
            poll.note += f"; {fallback} synthesised instead"
            self._synthesise(poll, ok, fallback, first=False)
            return
        self._final(poll, note=f"{poll.note}; the largest cluster of proposals answers")

    # ---- 6, 7. the quorum and the answer ---------------------------------------------------

    def _final(
        self,
        poll: _Poll,
        *,
        note: str = "",
        synthesis: tuple[str, Completion] | None = None,
    ) -> None:
        if poll.done:
            return
        if note:
            poll.note = note
        spec = poll.spec
        ok = self._ok(poll)
        quorum = spec.quorum
        needed = quorum.min_answers or (len(poll.slots) // 2 + 1)
        needed = min(needed, max(1, len(poll.slots)))
        if len(ok) < needed and synthesis is None:
            if quorum.on_short == "fallback" and not poll.fallback and quorum.fallback:
                self._ask_fallback(poll, quorum.fallback)
                return
            if quorum.on_short == "fail" or not ok:
                self._fail_members(poll, needed, len(ok))
                return
        answers = [a for _, a in ok]
        if spec.output == "text" and len(answers) > 1 and spec.embedding_model != "":
            embedder = self._embedder(spec)
            if embedder is not None:
                self._embed(poll, answers, needed, embedder, synthesis)
                return
        self._conclude(
            poll, answers, needed, None, "lexical" if spec.output == "text" else "", synthesis
        )

    def _ask_fallback(self, poll: _Poll, model: str) -> None:
        poll.fallback = model
        poll.history += [s.answer for s in poll.slots if s.answer is not None]
        member = Member(model=model)
        poll.round += 1
        poll.slots = []
        self._send(poll, member, self._member_request(poll, member, poll.message.request))
        self._check(poll)

    def _embedder(self, spec: ConsensusSpec) -> str | None:
        if spec.embedding_model:
            return spec.embedding_model
        if self.catalog is None:
            return None
        for entry in self.catalog.entries():
            if "embeddings" in entry.capabilities and entry.healthy:
                return entry.qualified
        return None

    def _embed(
        self,
        poll: _Poll,
        answers: list[MemberAnswer],
        needed: int,
        model: str,
        synthesis: tuple[str, Completion] | None,
    ) -> None:
        try:
            host, name = self._where(model, None)
        except LookupError as exc:
            poll.note = f"no embeddings ({exc}); clustered lexically"
            self._conclude(poll, answers, needed, None, "lexical", synthesis)
            return
        texts = tuple(normalise(a.text) for a in answers)
        request = EmbedRequest(model=name, inputs=texts)
        timeout = max(0.001, min(10.0, poll.deadline - time.time() - _MARGIN_S))

        async def call() -> Embeddings | Failure:
            try:
                vectors: Embeddings = await host.ask_async(request, timeout=timeout)
            except AskError as exc:
                return exc.failure
            return vectors

        def done(outcome: Embeddings | Failure) -> None:
            if poll.done:
                return
            if isinstance(outcome, Embeddings) and len(outcome.vectors) == len(answers):
                matrix = cosine_matrix(outcome.vectors)
                self._conclude(poll, answers, needed, matrix, f"embeddings:{model}", synthesis)
                return
            why = outcome.message if isinstance(outcome, Failure) else "a wrong number of vectors"
            poll.note = f"embedding with {model} failed ({why}); clustered lexically"
            self._conclude(poll, answers, needed, None, "lexical", synthesis)

        self.pipe_to_self(call(), done, name="consensus embeddings")

    def _accuracies(self, poll: _Poll, answers: list[MemberAnswer]) -> list[float | None]:
        spec = poll.spec
        by_label = {m.label: m for m in (*poll.members, *[s.member for s in poll.slots])}
        found: list[float | None] = []
        for answer in answers:
            member = by_label.get(answer.member)
            value = spec.accuracy.get(answer.member, spec.accuracy.get(answer.model))
            if value is None and member is not None:
                value = member.accuracy
                if value is None:
                    value = spec.accuracy.get(member.model)
            if value is None and self._record:
                value = self.accuracy(answer.model, poll.task_type)
            found.append(value)
        return found

    def _verdict(
        self,
        poll: _Poll,
        answers: list[MemberAnswer],
        similarity: list[list[float]] | None,
    ) -> tuple[Verdict, str]:
        spec = poll.spec
        values = [a.value for a in answers]
        weighted = spec.method == "weighted" or (
            spec.method in ("debate", "synthesis") and spec.output == "categorical"
        )
        try:
            verdict = aggregate(
                spec,
                values,
                accuracies=self._accuracies(poll, answers) if weighted else (),
                similarity=similarity,
                texts=[a.text for a in answers],
            )
        except Exception as exc:  # noqa: BLE001 - a user's aggregator failing is reported
            return Verdict(answer=None), f"the aggregator raised {type(exc).__name__}: {exc}"
        return verdict, ""

    def _conclude(  # noqa: PLR0917 - the poll's parts, passed on
        self,
        poll: _Poll,
        answers: list[MemberAnswer],
        needed: int,
        similarity: list[list[float]] | None,
        clustering: str,
        synthesis: tuple[str, Completion] | None,
    ) -> None:
        if poll.done:
            return
        spec = poll.spec
        verdict, error = self._verdict(poll, answers, similarity)
        if error:
            self._fail(poll, FailureKind.INTERNAL, f"consensus: {error}")
            return
        numbers = [float(a.value) for a in answers] if spec.output == "numeric" else None
        assessment = assess(verdict, len(answers), spec.threshold, numbers=numbers)
        marks = _marks(answers, verdict)
        finished = [*poll.history, *[s.answer for s in poll.slots if s.answer is not None]]
        members = tuple(marks.get(id(a), a) for a in finished)
        labels = [a.member for a in answers]
        answer = verdict.answer
        text = answers[verdict.representative].text if verdict.representative is not None else ""
        aggregated_by = ""
        if synthesis is not None:
            aggregated_by, completion = synthesis
            text = completion.content
            try:
                extracted = extract(text, spec.output, how=spec.extract, choices=spec.choices)
            except Exception:  # noqa: BLE001 - the synthesis is then the answer as it is
                extracted = None
            answer = extracted if extracted is not None else text
        if not text and answer is not None:
            text = answer if isinstance(answer, str) else msgspec.json.encode(answer).decode()
        costs = [a.cost_usd for a in members if a.cost_usd is not None]
        if synthesis is not None and synthesis[1].cost_usd is not None:
            costs.append(synthesis[1].cost_usd)
        result = ConsensusResult(
            answer=answer,
            text=text,
            output=spec.output,
            method=verdict.method if spec.method not in ("synthesis", "debate") else spec.method,
            confidence=round(assessment.confidence, 6),
            agreement=round(assessment.agreement, 6),
            entropy=round(assessment.entropy, 6),
            spread=assessment.spread,
            relative_spread=assessment.relative_spread,
            low_consensus=assessment.low,
            threshold=spec.threshold,
            members=members,
            outliers=tuple(labels[i] for i in verdict.outliers),
            clusters=tuple(tuple(labels[i] for i in g) for g in verdict.groups),
            fields=dict(verdict.fields),
            asked=poll.asked,
            answered=len(answers),
            quorum=needed,
            degraded=len(answers) < needed or bool(poll.fallback),
            fallback=poll.fallback,
            stopped_early=poll.stopped_early,
            added=poll.added,
            clustering=clustering,
            aggregated_by=aggregated_by,
            note=poll.note,
            cost_usd=sum(costs) if costs else None,
            latency_s=time.perf_counter() - poll.started,
        )
        self._finish(poll, result)

    def _finish(self, poll: _Poll, result: ConsensusResult) -> None:
        poll.done = True
        self._stop_timers(poll)
        self._end_span(poll, result, None)
        poll.reply.send(result)
        message = poll.message
        if result.low_consensus:
            self.runtime.bus.publish(
                LowConsensus(
                    run_id=message.run_id,
                    step=message.step,
                    confidence=result.confidence,
                    threshold=result.threshold,
                    answer=result.text[:500],
                    agreement=result.agreement,
                    answered=result.answered,
                )
            )
        # After the reply, and in a turn of its own: the asker (often on this same loop)
        # goes on first.
        self.call_later(0.0, lambda: self._learn(poll, result), name="consensus learn")

    def _learn(self, poll: _Poll, result: ConsensusResult) -> None:
        """Record each member's agreement, and tell the Selector (a quality signal)."""
        meaningful = result.answered >= 3
        for answer in result.members:
            if not answer.model:
                continue
            if answer.ok and answer.value is not None and meaningful:
                record = self._record.setdefault((answer.model, poll.task_type), [0, 0])
                record[0] += int(answer.agrees)
                record[1] += 1
            if self.selector is None or answer.error_kind == FailureKind.CANCELLED.value:
                continue
            self.selector.tell_if_alive(
                Observed(
                    model=answer.model,
                    task_type=poll.task_type,
                    ok=answer.ok,
                    kind=answer.error_kind,
                    latency_s=answer.latency_s or None,
                    cost_usd=answer.cost_usd,
                    quality=(1.0 if answer.agrees else 0.0) if answer.ok and meaningful else None,
                )
            )

    def _fail_members(self, poll: _Poll, needed: int, got: int) -> None:
        finished = [*poll.history, *[s.answer for s in poll.slots if s.answer is not None]]
        kinds = [a.error_kind for a in finished if a.error_kind]
        kind = FailureKind.INVALID_RESPONSE
        if kinds:
            common = max(set(kinds), key=lambda k: (kinds.count(k), k))
            try:
                kind = FailureKind(common)
            except ValueError:
                kind = FailureKind.INTERNAL
        if kind is FailureKind.CANCELLED:
            kind = FailureKind.TIMEOUT  # members cut off by the quorum deadline
        errors = "; ".join(
            f"{a.member}: {a.error_kind or 'no answer'}: {a.error}"
            for a in finished
            if not a.ok or a.value is None
        )
        message = (
            f"consensus: {got} usable answer(s), the quorum needs {needed}"
            f" ({errors or 'no member answered'})"
        )
        details = {
            a.member: f"{a.error_kind or 'unusable'}: {a.error}"
            for a in finished
            if not a.ok or a.value is None
        }
        self._fail(poll, kind, message, details)

    def _fail(
        self, poll: _Poll, kind: FailureKind, message: str, details: dict[str, str] | None = None
    ) -> None:
        if poll.done:
            return
        poll.done = True
        self._stop_timers(poll)
        for slot in poll.slots:
            if slot.answer is None:
                self._cancel(slot)
        failure = Failure(kind=kind, message=message, source=self.name, details=details or {})
        self._end_span(poll, None, failure)
        poll.reply.send(failure)

    def _stop_timers(self, poll: _Poll) -> None:
        for timer in (poll.timer, poll.end_timer):
            if timer is not None:
                timer.cancel()
        poll.timer = poll.end_timer = None

    def _end_span(
        self, poll: _Poll, result: ConsensusResult | None, failure: Failure | None
    ) -> None:
        span = poll.span
        if span is None:
            return
        if result is not None:
            span.set_attribute("reactor.consensus.confidence", result.confidence)
            span.set_attribute("reactor.consensus.agreement", result.agreement)
            span.set_attribute("reactor.consensus.entropy", result.entropy)
            span.set_attribute("reactor.consensus.low", result.low_consensus)
            span.set_attribute("reactor.consensus.answered", result.answered)
            span.set_attribute("reactor.consensus.asked", result.asked)
            span.set_attribute("reactor.consensus.answer", result.text[:200])
            span.set_attribute("reactor.consensus.outliers", list(result.outliers))
            for answer in result.members:
                span.add_event(
                    "consensus.member",
                    {
                        "member": answer.member,
                        "ok": answer.ok,
                        "agrees": answer.agrees,
                        "outlier": answer.outlier,
                        "error": answer.error_kind or "",
                        "latency_s": answer.latency_s,
                    },
                )
        if failure is not None:
            span.set_attribute("error.type", failure.kind.value)
            span.set_status(trace.StatusCode.ERROR, failure.message)
        span.end()


def _marks(answers: list[MemberAnswer], verdict: Verdict) -> dict[int, MemberAnswer]:
    """Each aggregated answer marked: agrees, outlier, its cluster (keyed by ``id``)."""
    support = set(verdict.support)
    outliers = set(verdict.outliers)
    cluster_of = {i: n for n, group in enumerate(verdict.groups) for i in group}
    return {
        id(a): msgspec.structs.replace(
            a, agrees=i in support, outlier=i in outliers, cluster=cluster_of.get(i)
        )
        for i, a in enumerate(answers)
    }


def _qualified(slot: _Slot) -> str:
    if slot.host is None:
        return slot.member.label
    return f"{slot.host.name}/{slot.request.model}"


def _internal(outcome: object) -> Failure:
    return Failure(kind=FailureKind.INTERNAL, message=f"unexpected answer {outcome!r}")
