"""Member dispatch: what each member is asked, its call to its host, and its answer.

Without a Budget, a member's call is a plain ask of its host from the coordinator's
own turn: the host's answer comes back as one item in the coordinator's mailbox (no
task, no future, no second message), and the answer's latency runs from the ask to
that item's turn. With a Budget, the call is :func:`budgeted_chat` (reserve, call,
settle) in a coroutine piped back to the coordinator, its latency measured where the
call ends. Either way every member's call has its own request id (so cancelling one
aborts that call only) and its own deadline, and the answer is read (the value
extracted) as soon as it arrives, while the other members are still working.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import msgspec
from opentelemetry import trace

from actors import Actor, Failure, FailureKind, Ref
from actors.llm import CancelChat, ChatRequest, Completion
from actors.orchestration.budget import budgeted_chat
from actors.orchestration.consensus._extract import (
    default_extractor,
    extract,
    stated_confidence,
)
from actors.orchestration.consensus._messages import ConsensusSpec, Member, MemberAnswer
from actors.orchestration.consensus._poll import MARGIN_S, Poll, Slot

__all__ = ["Members", "Resolver", "extractor_for", "member_request", "read"]

Resolver = Callable[[str, str | None], tuple[Ref[Any], str]]
"""``(model, host) -> (host ref, model)``; raises ``LookupError`` naming what exists."""

Arrived = Callable[[Poll, Slot], None]
"""What the coordinator does once a slot's answer is in (on its own turn)."""


def member_request(
    spec: ConsensusSpec,
    member: Member,
    base: ChatRequest,
    *,
    model: str | None = None,
    deadline: float | None = None,
    request_id: str | None = None,
) -> ChatRequest:
    """``base`` as ``member`` is asked it: its temperature and seed, the spec's token limit.

    ``model``, ``deadline`` and ``request_id`` address the call in the same copy, once it
    is made (no deadline, no trace context: the call stamps its own).
    """
    options = base.options if member.seed is None else {**base.options, "seed": member.seed}
    temperature = member.temperature
    if temperature is None:
        temperature = spec.temperature if spec.temperature is not None else base.temperature
    return msgspec.structs.replace(
        base,
        model=base.model if model is None else model,
        temperature=temperature,
        max_tokens=spec.max_tokens if spec.max_tokens is not None else base.max_tokens,
        options=options,
        trace=None,
        deadline=deadline,
        request_id=base.request_id if request_id is None else request_id,
    )


def extractor_for(spec: ConsensusSpec) -> Callable[[str], Any]:
    """``text -> value`` as :func:`extract` reads answers under ``spec``, chosen once.

    The built-in extractions are pure: one whose values are immutable (a category, a
    number, a text) remembers the last text it read, so members answering the same text
    (a short answer, self-consistency samples) are read once. A user's function, and
    JSON (its values are mutable objects), are called for every answer.
    """
    how = spec.extract
    output, choices = spec.output, spec.choices
    if how is None:
        function = default_extractor(output, choices)
    elif isinstance(how, str):
        function = lambda text: extract(text, output, how=how, choices=choices)  # noqa: E731
    else:
        return lambda text: extract(text, output, how=how, choices=choices)
    if output == "structured" or how == "json":
        return function
    return _last(function)


def _last(function: Callable[[str], Any]) -> Callable[[str], Any]:
    """``function`` (pure) remembering its last text and value (immutable values only)."""
    last: list[Any] = [None, None]

    def read(text: str) -> Any:
        if text == last[0]:
            return last[1]
        value = function(text)
        if value is None or type(value) in _IMMUTABLE:
            last[0], last[1] = text, value
        return value

    return read


_IMMUTABLE = frozenset({str, int, float, bool})


class Members:
    """Sends members their calls for one coordinator, and reads what comes back.

    Args:
        actor: The coordinator: the calls are its asks, the answers come to its turns.
        resolve: Finds a member's host.
        budget: The Budget actor that admits every call (``None``: none).
        arrived: Called on the coordinator's turn once a slot's answer is in.
    """

    def __init__(
        self,
        actor: Actor[Any],
        resolve: Resolver,
        budget: Ref[Any] | None,
        arrived: Arrived,
    ) -> None:
        self.actor = actor
        self.resolve = resolve
        self.budget = budget
        self.arrived = arrived
        self._extractors: dict[int, tuple[ConsensusSpec, Callable[[str], Any]]] = {}

    def extractor(self, spec: ConsensusSpec) -> Callable[[str], Any]:
        """:func:`extractor_for`, once per spec object (a step sends the same one each time)."""
        known = self._extractors.get(id(spec))
        if known is not None and known[0] is spec:
            return known[1]
        if len(self._extractors) > 256:
            self._extractors.clear()
        function = extractor_for(spec)
        self._extractors[id(spec)] = (spec, function)
        return function

    def where(self, model: str, host: str | None) -> tuple[Ref[Any], str]:
        """A model's host and its name there (``host/model`` split when not found whole)."""
        try:
            return self.resolve(model, host)
        except LookupError:
            name, sep, bare = model.partition("/")
            if host is None and sep and bare:
                return self.resolve(bare, name)
            raise

    def send(self, poll: Poll, member: Member, request: ChatRequest | None = None) -> Slot:
        """Ask ``member`` in the poll's current round; ``request``: what (default: the poll's).

        ``request`` is one :func:`member_request` made (a debate's or a synthesis layer's
        follow-up); without it the poll's request is made the member's in the same copy
        that addresses the call.
        """
        label = member.label
        try:
            host, model = self.where(member.model, member.host)
        except LookupError as exc:
            return _unknown(poll, member, request, exc)
        now = time.time()
        wanted = member.timeout_s or poll.spec.member_timeout_s
        timeout = max(0.001, min(wanted, poll.deadline - now - MARGIN_S))
        request_id = f"{poll.ids}.{poll.asked + 1}"
        if request is None:
            if member.seed is None and member.temperature is None:
                # The common member: the poll's request as every such member is asked it,
                # made once per poll; only the address differs from member to member.
                request = msgspec.structs.replace(
                    poll.plain_request(),
                    model=model,
                    deadline=now + timeout,
                    request_id=request_id,
                )
            else:
                request = member_request(
                    poll.spec,
                    member,
                    poll.message.request,
                    model=model,
                    deadline=now + timeout,
                    request_id=request_id,
                )
        else:
            request = msgspec.structs.replace(
                request, model=model, deadline=now + timeout, request_id=request_id
            )
        slot = Slot(member=member, request=request, round=poll.round, host=host, label=label)
        poll.add(slot)
        if self.budget is not None:
            self._budgeted(poll, slot, host, timeout)
            return slot

        answered = partial(self.answered, poll, slot)  # timed in the answer's turn
        slot.sent = time.perf_counter()
        if poll.span is None:
            self.actor.ask(host, request, answered, timeout=timeout)
        else:  # the host's chat span is a child of the consensus span
            with trace.use_span(poll.span, end_on_exit=False):
                self.actor.ask(host, request, answered, timeout=timeout)
        return slot

    def send_all(self, poll: Poll, members: Sequence[Member]) -> None:
        """:meth:`send` each of ``members`` the poll's request (a round's first calls).

        What the calls of plain members share (the time, the time left, the request as
        such a member is asked it) is found once for all of them. A member with a seed,
        a temperature or a timeout of its own, and every call that is budgeted or traced,
        goes through :meth:`send` instead.
        """
        if self.budget is not None or poll.span is not None:
            for member in members:
                self.send(poll, member)
            return
        now = time.time()
        timeout = max(0.001, min(poll.spec.member_timeout_s, poll.deadline - now - MARGIN_S))
        deadline = now + timeout
        plain = poll.plain_request()
        replace = msgspec.structs.replace
        ask = self.actor.ask
        answered = self.answered
        number = poll.round
        for member in members:
            if (
                member.seed is not None
                or member.temperature is not None
                or member.timeout_s is not None
            ):
                self.send(poll, member)
                continue
            try:
                host, model = self.where(member.model, member.host)
            except LookupError as exc:
                _unknown(poll, member, None, exc)
                continue
            request = replace(
                plain, model=model, deadline=deadline, request_id=f"{poll.ids}.{poll.asked + 1}"
            )
            slot = Slot(member=member, request=request, round=number, host=host, label=member.label)
            poll.add(slot)
            slot.sent = time.perf_counter()
            ask(host, request, partial(answered, poll, slot), timeout=timeout)

    def _budgeted(self, poll: Poll, slot: Slot, host: Ref[Any], timeout: float) -> None:
        def piped(outcome: tuple[Completion | Failure, float] | Failure) -> None:
            slot.handle = None
            if isinstance(outcome, tuple):
                self.answered(poll, slot, outcome[0], outcome[1])
            else:
                self.answered(poll, slot, outcome, time.perf_counter())

        slot.sent = time.perf_counter()
        slot.handle = self.actor.pipe_to_self(
            self._timed(poll, host, slot.request, timeout), piped, name="consensus member"
        )

    async def call(
        self, poll: Poll, host: Ref[Any], request: ChatRequest, timeout: float
    ) -> Completion | Failure:
        """One budgeted call (the synthesis aggregator's too), in the consensus span."""
        if poll.span is None:
            return await budgeted_chat(
                host, request, budget=self.budget, scope=poll.scope, timeout=timeout
            )
        with trace.use_span(poll.span, end_on_exit=False):
            return await budgeted_chat(
                host, request, budget=self.budget, scope=poll.scope, timeout=timeout
            )

    async def _timed(
        self, poll: Poll, host: Ref[Any], request: ChatRequest, timeout: float
    ) -> tuple[Completion | Failure, float]:
        """A member's call and when it ended (its latency is the call's, not the mailbox's)."""
        outcome = await self.call(poll, host, request, timeout)
        return outcome, time.perf_counter()

    def answered(self, poll: Poll, slot: Slot, outcome: object, ended: float | None = None) -> None:
        """On the coordinator's turn: record ``slot``'s answer unless it is stale.

        ``ended``: when the call ended (``None``: now, the answer's turn).
        """
        if ended is None:
            ended = time.perf_counter()
        if poll.done or slot.round != poll.round or slot.answer is not None:
            return
        latency = ended - slot.sent
        if isinstance(outcome, Completion):
            extractor = poll.extractor
            if extractor is None:
                extractor = poll.extractor = self.extractor(poll.spec)
            answer = read(extractor, poll.spec, slot, outcome, latency)
        else:
            failure = outcome if isinstance(outcome, Failure) else _internal(outcome)
            answer = MemberAnswer(
                member=slot.label,
                model=slot.qualified,
                error_kind=failure.kind.value,
                error=failure.message,
                latency_s=latency,
                round=slot.round,
            )
        poll.settle(slot, answer)
        self.arrived(poll, slot)

    def cancel_open(self, poll: Poll, why: str) -> None:
        """End the round's calls still out: aborted, and recorded as cancelled."""
        for slot in poll.slots:
            if slot.answer is None:
                self.cancel(slot)
                poll.settle(
                    slot,
                    MemberAnswer(
                        member=slot.label,
                        model=slot.qualified,
                        error_kind=FailureKind.CANCELLED.value,
                        error=f"still running when the round ended ({why})",
                        round=slot.round,
                    ),
                )

    @staticmethod
    def cancel(slot: Slot) -> None:
        """Abort ``slot``'s call: its coroutine, and the HTTP call at its host."""
        if slot.handle is not None:
            slot.handle.cancel()
            slot.handle = None
        if slot.host is not None:
            slot.host.tell_if_alive(CancelChat(request_id=slot.request.request_id))


def read(
    extractor: Callable[[str], Any],
    spec: ConsensusSpec,
    slot: Slot,
    completion: Completion,
    latency: float,
) -> MemberAnswer:
    """A member's completion as its answer: the value extracted (or why none could be)."""
    text = completion.content
    error = ""
    try:
        value = extractor(text)
    except Exception as exc:  # noqa: BLE001 - a user's extraction failing spoils one answer
        value, error = None, f"extraction raised {type(exc).__name__}: {exc}"
    if value is None and not error:
        error = f"no {spec.output} answer found in the text"
    return MemberAnswer(
        member=slot.label,
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
        round=slot.round,
        not_applied=tuple(completion.extras.get("dropped_params", ())),
    )


def _unknown(poll: Poll, member: Member, request: ChatRequest | None, error: LookupError) -> Slot:
    """The slot of a member whose host could not be found: answered with why, never sent."""
    label = member.label
    slot = Slot(
        member=member,
        request=request or poll.message.request,
        round=poll.round,
        label=label,
        answer=MemberAnswer(
            member=label, error_kind="not_found", error=str(error), round=poll.round
        ),
    )
    poll.add(slot)
    return slot


def _internal(outcome: object) -> Failure:
    return Failure(kind=FailureKind.INTERNAL, message=f"unexpected answer {outcome!r}")
