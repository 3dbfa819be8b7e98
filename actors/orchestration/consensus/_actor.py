"""The Consensus coordinator: one question to several members, one answer and how sure it is.

One actor serves every consensus of an engine; it runs on the I/O loop and keeps no
thread. Each :class:`~._messages.ConsensusRequest` is a poll (``_poll``), advanced by
the answers that come back to the actor's own turns:

1. choose the members: the spec's, or (none given) a diverse set from the catalog,
   ranked by the Selector, as many as the task's complexity asks for;
2. send every member the request at once (``_members``), each under its own deadline
   and admitted by the Budget (when the engine has one); start the quorum timer
   (``quorum.wait_s``);
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
   one), assess the confidence, answer the :class:`~._messages.ConsensusResult`
   (``_outcome``) in the same turn as the last answer, publish
   :class:`~._messages.LowConsensus` when it is under the threshold, and afterwards
   tell the Selector each member's outcome with its agreement as a quality signal.

Every poll is a ``consensus {step}`` span; the members' chat spans are its children.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, assert_never

import msgspec

import otel
from actors import AskError, Deferred, Failure, FailureKind, LoopActor, Ref
from actors.llm import Catalog, ChatRequest, Completion, Embeddings, EmbedRequest
from actors.orchestration.consensus._aggregate import Verdict, cosine_matrix
from actors.orchestration.consensus._conclude import aggregate, assess, choose_diverse
from actors.orchestration.consensus._confidence import member_count
from actors.orchestration.consensus._extract import normalise
from actors.orchestration.consensus._members import Members, Resolver, member_request
from actors.orchestration.consensus._messages import (
    ConsensusRequest,
    ConsensusResult,
    ConsensusSpec,
    Member,
    MemberAnswer,
    spec_problems,
)
from actors.orchestration.consensus._outcome import (
    low_consensus,
    members_failure,
    result_of,
    span_ended,
)
from actors.orchestration.consensus._poll import GROW_BY, MARGIN_S, ROUNDS, VOTES, Poll, Slot
from actors.orchestration.consensus._prompts import debate_request, synthesis_request
from actors.orchestration.selection import Choice, Observed, SelectModel

__all__ = ["Consensus", "Resolver"]


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
        self.members = Members(self, resolve, budget, self._check)
        self._serial = itertools.count(1)
        self._checked: dict[int, tuple[ConsensusSpec, list[str]]] = {}
        self._record: dict[tuple[str, str], list[int]] = {}
        """Per (model, task type): [agreed, answered]: accuracy measured as agreement."""
        self._traced: dict[int, Poll] = {}
        """The polls with an open span, by id: ended by :meth:`stopped` if this stops first."""

    def stopped(self) -> None:
        """End the spans of polls cut short (their callers are answered ``actor_stopped``)."""
        for poll in list(self._traced.values()):
            if poll.span is not None:
                cut = Failure(
                    kind=FailureKind.ACTOR_STOPPED,
                    message="consensus: stopped before a verdict",
                    source=self.name,
                )
                span_ended(poll.span, None, cut)
        self._traced.clear()

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
        poll = Poll(
            message=message,
            spec=spec,
            reply=reply,
            started=time.perf_counter(),
            deadline=deadline,
            span=span,
            ids=f"{message.request.request_id}.{next(self._serial)}",
            members=list(spec.members),
        )
        if span is not None:
            self._traced[id(poll)] = poll
        if spec.adaptive or spec.method in ROUNDS:
            # Later rounds and added members could outlast the deadline: end it all there.
            # (A single round needs no timer: each call's own deadline ends before it.)
            poll.end_timer = self.call_later(
                max(0.0, deadline - now - MARGIN_S), lambda: self._round_over(poll, "deadline")
            )
        if spec.members:
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

    def _choose(self, poll: Poll, count: int) -> None:
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

    def _chosen(self, poll: Poll, ranked: list[tuple[str, str]], count: int) -> None:
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

    # ---- 2, 3, 4. rounds -----------------------------------------------------------------

    def _first_round(self, poll: Poll) -> None:
        self._round_timer(poll)
        self.members.send_all(poll, poll.members)
        self._check(poll)

    def _round(self, poll: Poll, calls: list[tuple[Member, ChatRequest | None]]) -> None:
        self._round_timer(poll)
        for member, request in calls:
            self.members.send(poll, member, request)
        self._check(poll)

    def _round_timer(self, poll: Poll) -> None:
        """Before a round's calls: its slots cleared, its quorum timer (if any) started."""
        if poll.slots:
            poll.clear_round()
        if poll.timer is not None:
            poll.timer.cancel()
            poll.timer = None
        wait = poll.spec.quorum.wait_s
        if wait is not None:
            number = poll.round
            poll.timer = self.call_later(
                wait, lambda: self._round_over(poll, "quorum deadline", number)
            )

    def _check(self, poll: Poll, slot: Slot | None = None) -> None:
        """End the round when it is over (also the Members' call once ``slot`` answered)."""
        if poll.done:
            return
        if poll.out == 0:
            self._round_over(poll, "all answered", poll.round)
        elif poll.spec.adaptive and poll.decided():
            poll.stopped_early = True
            self._round_over(poll, "decided early (adaptive stopping)", poll.round)

    def _round_over(self, poll: Poll, why: str, number: int | None = None) -> None:
        if poll.done or (number is not None and number != poll.round):
            return
        if why == "deadline" and not poll.slots:
            self._fail(poll, FailureKind.TIMEOUT, "the deadline passed before any member was asked")
            return
        if poll.timer is not None:
            poll.timer.cancel()
            poll.timer = None
        if poll.out:
            self.members.cancel_open(poll, why)
        self._next(poll, final=why == "deadline")

    # ---- 5. more rounds, more members ------------------------------------------------------

    def _next(self, poll: Poll, *, final: bool) -> None:
        spec = poll.spec
        method = spec.method
        ok = poll.usable()
        more_rounds = spec.rounds if method == "debate" else spec.layers
        rounds_left = method in ROUNDS and poll.round < more_rounds
        if not final and rounds_left and len(ok) >= 2:
            calls = self._follow_up(poll, ok)
            poll.next_round()
            self._round(poll, calls)
            return
        if not final and method == "synthesis":
            self._synthesise(poll, ok, spec.aggregator_model or "", first=True)
            return
        if not final and spec.adaptive and self._grow(poll, ok):
            return
        self._final(poll, ok=ok)

    def _follow_up(
        self, poll: Poll, ok: list[tuple[Slot, MemberAnswer]]
    ) -> list[tuple[Member, ChatRequest | None]]:
        base, spec = poll.message.request, poll.spec
        calls: list[tuple[Member, ChatRequest | None]] = []
        texts = [a.text for _, a in ok]
        for index, (slot, answer) in enumerate(ok):
            request = member_request(spec, slot.member, base)
            if spec.method == "debate":
                others = [t for i, t in enumerate(texts) if i != index]
                request = debate_request(request, answer.text, others)
            else:
                request = synthesis_request(request, texts)
            calls.append((slot.member, request))
        return calls

    def _grow(self, poll: Poll, ok: list[tuple[Slot, MemberAnswer]]) -> bool:
        spec = poll.spec
        if not spec.adaptive or poll.stopped_early or spec.method not in VOTES or not ok:
            return False
        if len(poll.slots) >= spec.max_members:
            return False
        if any(s.answer and s.answer.error_kind == "budget_exceeded" for s in poll.slots):
            return False
        verdict, _ = self._verdict(poll, [a for _, a in ok], None)
        assessment = assess(verdict, len(poll.slots), spec.threshold)
        if not assessment.low:
            return False
        count = min(GROW_BY, spec.max_members - len(poll.slots))
        extra = self._extra_members(poll, count)
        poll.added += len(extra)
        for member in extra:
            self.members.send(poll, member)
        self._check(poll)
        return True

    def _extra_members(self, poll: Poll, count: int) -> list[Member]:
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
        self, poll: Poll, ok: list[tuple[Slot, MemberAnswer]], model: str, *, first: bool
    ) -> None:
        spec = poll.spec
        if not ok or not model:
            self._final(poll, note="no aggregator could synthesise; the largest cluster answers")
            return
        base = member_request(spec, Member(model=model), poll.message.request)
        request = synthesis_request(base, [a.text for _, a in ok])
        try:
            host, name = self.members.where(model, None)
        except LookupError as exc:
            self._aggregator_failed(poll, ok, model, str(exc), first=first)
            return
        timeout = poll.time_left(spec.member_timeout_s)
        request = msgspec.structs.replace(
            request,
            model=name,
            deadline=time.time() + timeout,
            request_id=f"{poll.ids}.{poll.asked + 1}",
        )
        poll.asked += 1

        def done(outcome: Completion | Failure) -> None:
            if poll.done:
                return
            if isinstance(outcome, Completion) and outcome.content.strip():
                self._final(poll, synthesis=(model, outcome))
                return
            why = outcome.message if isinstance(outcome, Failure) else "an empty answer"
            self._aggregator_failed(poll, ok, model, why, first=first)

        self.pipe_to_self(
            self.members.call(poll, host, request, timeout), done, name="consensus synthesis"
        )

    def _aggregator_failed(
        self, poll: Poll, ok: list[tuple[Slot, MemberAnswer]], model: str, why: str, *, first: bool
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
        poll: Poll,
        *,
        note: str = "",
        synthesis: tuple[str, Completion] | None = None,
        ok: list[tuple[Slot, MemberAnswer]] | None = None,
    ) -> None:
        if poll.done:
            return
        if note:
            poll.note = note
        spec = poll.spec
        if ok is None:
            ok = poll.usable()
        quorum = spec.quorum
        needed = poll.needed()
        if len(ok) < needed and synthesis is None:
            if quorum.on_short == "fallback" and not poll.fallback and quorum.fallback:
                self._ask_fallback(poll, quorum.fallback)
                return
            if quorum.on_short == "fail" or not ok:
                kind, message, details = members_failure(poll.finished(), needed, len(ok))
                self._fail(poll, kind, message, details)
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

    def _ask_fallback(self, poll: Poll, model: str) -> None:
        poll.fallback = model
        poll.next_round()
        self.members.send(poll, Member(model=model))
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
        poll: Poll,
        answers: list[MemberAnswer],
        needed: int,
        model: str,
        synthesis: tuple[str, Completion] | None,
    ) -> None:
        try:
            host, name = self.members.where(model, None)
        except LookupError as exc:
            poll.note = f"no embeddings ({exc}); clustered lexically"
            self._conclude(poll, answers, needed, None, "lexical", synthesis)
            return
        texts = tuple(normalise(a.text) for a in answers)
        # Only for similarity: an answer longer than the embedding model's window is
        # compared by its opening, rather than the whole poll falling back to words.
        request = EmbedRequest(model=name, inputs=texts, truncate=True)
        timeout = poll.time_left(10.0)

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

    def _accuracies(self, poll: Poll, answers: list[MemberAnswer]) -> list[float | None]:
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
        poll: Poll,
        answers: list[MemberAnswer],
        similarity: list[list[float]] | None,
    ) -> tuple[Verdict, str]:
        spec = poll.spec
        method = spec.method
        values = [a.value for a in answers]
        weighted = method == "weighted" or (method in ROUNDS and spec.output == "categorical")
        clustered = spec.output == "text" or method == "cluster"
        try:
            verdict = aggregate(
                spec,
                values,
                accuracies=self._accuracies(poll, answers) if weighted else (),
                similarity=similarity,
                texts=[a.text for a in answers] if clustered else (),
            )
        except Exception as exc:  # noqa: BLE001 - a user's aggregator failing is reported
            return Verdict(answer=None), f"the aggregator raised {type(exc).__name__}: {exc}"
        return verdict, ""

    def _conclude(  # noqa: PLR0917 - the poll's parts, passed on
        self,
        poll: Poll,
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
        result = result_of(poll, answers, needed, verdict, assessment, clustering, synthesis)
        self._finish(poll, result)

    def _finish(self, poll: Poll, result: ConsensusResult) -> None:
        poll.done = True
        if poll.timer is not None or poll.end_timer is not None:
            poll.stop_timers()
        if poll.span is not None:
            self._traced.pop(id(poll), None)
            span_ended(poll.span, result, None)
        poll.reply.send(result)
        if result.low_consensus:
            self.runtime.bus.publish(low_consensus(poll, result))
        # After the reply, and in a turn of its own: the asker (often on this same loop)
        # goes on first.
        self.call_soon(lambda: self._learn(poll, result), name="consensus learn")

    def _learn(self, poll: Poll, result: ConsensusResult) -> None:
        """Record each member's agreement, and tell the Selector (a quality signal)."""
        meaningful = result.answered >= 3
        records = self._record
        task_type = poll.task_type if meaningful or self.selector is not None else ""
        for answer in result.members:
            if not answer.model:
                continue
            if answer.ok and answer.value is not None and meaningful:
                key = (answer.model, task_type)
                record = records.get(key)
                if record is None:
                    record = records[key] = [0, 0]
                if answer.agrees:
                    record[0] += 1
                record[1] += 1
            if self.selector is None or answer.error_kind == FailureKind.CANCELLED.value:
                continue
            self.selector.tell_if_alive(
                Observed(
                    model=answer.model,
                    task_type=task_type,
                    ok=answer.ok,
                    kind=answer.error_kind,
                    latency_s=answer.latency_s or None,
                    cost_usd=answer.cost_usd,
                    quality=(1.0 if answer.agrees else 0.0) if answer.ok and meaningful else None,
                )
            )

    def _fail(
        self, poll: Poll, kind: FailureKind, message: str, details: dict[str, str] | None = None
    ) -> None:
        if poll.done:
            return
        poll.done = True
        poll.stop_timers()
        for slot in poll.slots:
            if slot.answer is None:
                self.members.cancel(slot)
        failure = Failure(kind=kind, message=message, source=self.name, details=details or {})
        if poll.span is not None:
            self._traced.pop(id(poll), None)
            span_ended(poll.span, None, failure)
        poll.reply.send(failure)
