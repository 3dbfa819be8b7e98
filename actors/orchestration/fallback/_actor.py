"""The FallbackChain actor: walks a chain of models for each request, keeping each link's health.

One actor per chain, shared by every run that uses it, so that what one request learns
(a link failing, a server asking to wait) reorders the chain for the next. It runs on
the I/O loop; each request is a walk, advanced by messages to the actor itself:

1. take the links in health order (:class:`~._health.Health`: ejected links last);
2. for the next link: skip it if its ``when`` does not hold, or if an earlier link
   overflowed its context and this one is no larger; pass over it while it is cooling
   down (a ``retry_after`` it was given); else send it the request (through the
   transform, under the budget) and wait for the answer;
3. a completion the quality check accepts answers the request (with every attempt);
   one it rejects moves on;
4. a failure does what its kind's action says: ``retry`` the same link after a backoff
   (doubling, jittered) that honours ``retry_after``, ``next``, or ``stop``; a
   ``content_policy`` refusal switches to the content-policy chain when there is one,
   else stops; a streamed
   answer that broke after output arrived (text, or a tool call begun) stops unless
   ``restart_streams``;
5. when no link is left but some were cooling, wait for the earliest (within the
   deadline) and try those; otherwise fail with the last failure, the path in its
   details.

Every walk is a ``fallback {chain}`` span: the chat spans of its links are its
children, and it carries the path (``reactor.fallback.path``) and the link that
answered (``reactor.fallback.answered_by``).
"""

from __future__ import annotations

import collections
import functools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

import msgspec
from opentelemetry import trace

import otel
from actors import AskError, Deferred, Failure, FailureKind, LoopActor, Ref
from actors.llm import Catalog, ChatRequest, Completion
from actors.orchestration._early import ask_early
from actors.orchestration.budget import SpendScope, budgeted_chat, estimate_prompt_tokens
from actors.orchestration.fallback._chain import Chain, Link
from actors.orchestration.fallback._health import Health
from actors.orchestration.fallback._messages import (
    FallbackAttempt,
    FallbackRequest,
    FallbackResult,
)
from actors.orchestration.selection import SelectChat

__all__ = ["FallbackChain", "Resolver"]

Resolver = Callable[[str, str | None], tuple[Ref[Any], str]]
"""``(model, host) -> (host ref, model)``; raises ``LookupError`` naming what exists."""

_HEALTH_KINDS = frozenset(
    {
        FailureKind.RATE_LIMITED,
        FailureKind.OVERLOADED,
        FailureKind.TIMEOUT,
        FailureKind.SERVER_ERROR,
        FailureKind.CONNECTION,
        FailureKind.CIRCUIT_OPEN,
        FailureKind.INVALID_RESPONSE,
        FailureKind.ACTOR_CRASHED,
        FailureKind.ACTOR_STOPPED,
    }
)
"""Failures that say something about the link's health (not about the request)."""


@dataclass(slots=True)
class _Walk:
    """One request's way down the chain.

    Made once per request, so it is made cheaply: positionally (a keyword call matches
    every name against sixteen parameters), and its collections start as empty
    immutable values that the walk replaces as it grows them, rather than as new
    containers per request (``attempts`` then goes into the result as it is).
    """

    message: FallbackRequest
    reply: Deferred[Any]
    deadline: float
    chain: Chain
    health: Health
    order: Sequence[int]
    """The link indexes in the order they are tried (replaced, never changed in place)."""
    span: trace.Span | None
    position: int = 0
    tries: tuple[int, ...] = ()
    """The links retried, once per retry."""
    attempts: tuple[FallbackAttempt, ...] = ()
    cooling: tuple[tuple[float, int], ...] = ()
    """``(until, index)`` of the links passed over as cooling down."""
    told_to_wait: frozenset[int] = frozenset()
    """Links that failed with a ``retry_after``: worth waiting for at the end."""
    context_floor: int | None = None
    last: Failure | None = None
    restarted: bool = False
    _estimate: int | None = None

    @property
    def estimate(self) -> int:
        """The prompt's tokens, estimated (counted once, when first needed)."""
        if self._estimate is None:
            self._estimate = estimate_prompt_tokens(self.message.request)
        return self._estimate

    @property
    def scope(self) -> SpendScope:
        m = self.message
        return SpendScope(run_id=m.run_id, reactor=m.reactor, agent=m.agent)


@dataclass(frozen=True, slots=True)
class _LinkAnswered:
    """A link's answer, handed to the chain's turn (a failure, or a rejected answer)."""

    walk: _Walk
    index: int
    outcome: object
    latency: float
    checked: tuple[bool, str] | None


ChainMessage = FallbackRequest | _LinkAnswered


class FallbackChain(LoopActor[ChainMessage]):
    """Answers :class:`FallbackRequest` s by walking one chain (see the module docstring).

    Args:
        chain: The chain.
        resolve: Finds a link's host (the engine's model map, or the catalog).
        budget: The Budget actor each link's call is admitted by (``None``: none).
        catalog: Where the context windows of links that do not give theirs are found.
        selector: The Selector that ``auto`` links (``"auto"``, ``"auto:<policy>"``) ask.
        clock: Wall-clock time.
    """

    def __init__(
        self,
        chain: Chain,
        resolve: Resolver,
        *,
        budget: Ref[Any] | None = None,
        catalog: Catalog | None = None,
        selector: Ref[Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.chain = chain
        self.resolve = resolve
        self.budget = budget
        self.catalog = catalog
        self.selector = selector
        self.clock = clock
        self._health: dict[int, Health] = {}
        self._me: Ref[ChainMessage] = self.self_ref  # where early answers queue the rest
        # Links that answered a caller outside this actor's turn (see _arrived): their
        # health record and index, recorded as a success at the start of the next turn.
        self._succeeded: collections.deque[tuple[Health, int]] = collections.deque()
        # Worked out once per actor rather than on every request: the chain is immutable.
        self._title = chain.title
        self._own_health = self.health()
        self._auto = _auto_links(chain)
        self._in_order = tuple(range(len(chain.links)))
        # The walks with an open span, by id: ended by stopped() if the actor stops first.
        self._traced: dict[int, _Walk] = {}

    def stopped(self) -> None:
        """End the spans of walks cut short (their callers are answered ``actor_stopped``)."""
        for walk in list(self._traced.values()):
            if walk.span is not None:
                cut = Failure(
                    kind=FailureKind.ACTOR_STOPPED,
                    message=f"fallback chain {self._title}: stopped before an answer",
                    source=self.name,
                )
                self._end_span(walk.span, walk, None, cut)
        self._traced.clear()

    def health(self, chain: Chain | None = None) -> Health:
        """The health record of ``chain`` (this actor's own, by default)."""
        chain = chain or self.chain
        record = self._health.get(id(chain))
        if record is None:
            record = self._health[id(chain)] = Health(
                len(chain.links),
                eject_after=chain.eject_after,
                base_s=chain.eject_base_s,
                max_s=chain.eject_max_s,
                max_percent=chain.max_ejected_percent,
            )
        return record

    def receive(self, message: ChainMessage) -> object:
        """Start a walk; the answer comes when a link answers or the chain gives up."""
        succeeded = self._succeeded
        if succeeded:
            now = self.clock()
            while succeeded:
                health, index = succeeded.popleft()
                health.success(index, now)
        match message:
            case FallbackRequest():
                self._start(message, self.defer_reply())
            case _LinkAnswered():
                self._answered(
                    message.walk,
                    message.index,
                    message.outcome,
                    message.latency,
                    checked=message.checked,
                )
            case _:
                assert_never(message)
        return None

    # ---- the walk ----------------------------------------------------------------------

    def _start(self, message: FallbackRequest, reply: Deferred[Any]) -> None:
        now = self.clock()
        deadline = message.deadline if message.deadline is not None else now + 60.0
        span = None
        if otel.enabled():
            parent = otel.extract(message.trace)
            span = otel.tracer().start_span(f"fallback {self._title}", context=parent)
            span.set_attribute("reactor.fallback.chain", self._title)
        health = self._own_health
        # Nothing ejected (the usual case): the configured order, without asking Health.
        order = self._in_order if health.clear_after <= now else health.order(now)
        # message, reply, deadline, chain, health, order, span
        walk = _Walk(message, reply, deadline, self.chain, health, order, span)
        if span is not None:
            self._traced[id(walk)] = walk
        self._advance(walk, now)

    def _advance(self, walk: _Walk, now: float | None = None) -> None:
        if now is None:
            now = self.clock()
        # Nothing below changes the walk's chain or order before _send (the last step).
        order = walk.order
        links = walk.chain.links
        records = walk.health.links
        while walk.position < len(order):
            index = order[walk.position]
            item = links[index]
            if item.when is not None or walk.context_floor is not None:  # _skip's reasons
                why = self._skip(walk, item)
                if why is not None:
                    walk.attempts += (
                        FallbackAttempt(link=item.label, outcome="skipped", action="skip", why=why),
                    )
                    walk.position += 1
                    continue
            until = records[index].cool_until
            if until > now:  # cooling down (Health.cooling_until): passed over for now
                walk.cooling += ((until, index),)
                walk.position += 1
                continue
            self._send(walk, index)
            return
        for index in sorted(walk.told_to_wait):
            back = walk.health.cooling_until(index, now)
            if back is not None:
                walk.cooling += ((back, index),)
        walk.told_to_wait = frozenset()
        if walk.cooling:
            until, _ = min(walk.cooling)
            if until < walk.deadline:
                wait = max(0.0, until - now)
                labels = ", ".join(walk.chain.links[i].label for _, i in sorted(walk.cooling))
                walk.attempts += (
                    FallbackAttempt(
                        link=labels,
                        outcome="cooling",
                        action="wait",
                        why=f"every link left is cooling down; waiting {wait:.3g}s for the first",
                        waited_s=wait,
                    ),
                )
                walk.order = [i for _, i in sorted(walk.cooling)]
                walk.position = 0
                walk.cooling = ()
                self.call_later(
                    wait, functools.partial(self._advance, walk), name="fallback cooling"
                )
                return
        self._give_up(walk)

    def _skip(self, walk: _Walk, item: Link) -> str | None:
        if item.when is not None:
            try:
                holds = bool(item.when(walk.message.request))
            except Exception as exc:  # noqa: BLE001 - a user predicate's failure skips the link
                return f"its condition raised {type(exc).__name__}: {exc}"
            if not holds:
                return "its condition (when=) does not hold for this request"
        floor = walk.context_floor
        if floor is not None:
            size = self._context_of(item)
            if size is not None and size <= floor:
                return (
                    f"its context ({size} tokens) is not larger than the one that overflowed "
                    f"({floor} tokens)"
                )
        return None

    def _context_of(self, item: Link) -> int | None:
        if item.context_length is not None:
            return item.context_length
        if self.catalog is None:
            return None
        try:
            host, model = self._where(item)
        except LookupError:
            return None
        entry = self.catalog.get(host.name, model)
        return None if entry is None else entry.context_length

    def _where(self, item: Link) -> tuple[Ref[Any], str]:
        try:
            return self.resolve(item.model, item.host)
        except LookupError as unknown:
            return self._where_prefixed(item, unknown)

    def _where_prefixed(self, item: Link, unknown: LookupError) -> tuple[Ref[Any], str]:
        """The resolver did not know the link's model: try it as ``host/model``.

        Raises:
            LookupError: ``unknown`` again, when the model does not name a host.
        """
        host, sep, model = item.model.partition("/")
        if item.host is None and sep and model:
            return self.resolve(model, host)
        raise unknown

    def _send(self, walk: _Walk, index: int) -> None:
        item = walk.chain.links[index]
        policy = self._auto.get(item)
        if policy is not None:
            self._send_selector(walk, index, policy)
            return
        try:  # _where, unrolled: one frame fewer per request
            try:
                host, model = self.resolve(item.model, item.host)
            except LookupError as unknown:
                host, model = self._where_prefixed(item, unknown)
        except LookupError as exc:
            failure = Failure(kind=FailureKind.NOT_FOUND, message=str(exc), source=self.name)
            self._failed(walk, index, failure, 0.0)
            return
        request = walk.message.request
        if item.transform is not None:
            try:
                request = item.transform(request)
            except Exception as exc:  # noqa: BLE001 - a user transform's failure moves on
                failure = Failure(
                    kind=FailureKind.BAD_REQUEST,
                    message=f"the link's transform raised {type(exc).__name__}: {exc}",
                    source=self.name,
                )
                walk.attempts += (
                    FallbackAttempt(
                        link=item.label, outcome="bad_request", action="next", why=failure.message
                    ),
                )
                walk.last = failure
                walk.position += 1
                self._advance(walk)
                return
        deadline = walk.deadline
        request = msgspec.structs.replace(request, model=model, deadline=deadline, trace=None)
        if self.budget is not None:
            self._send_budgeted(walk, index, host, request)
            return
        # No budget: one ask, its answer handled where it arrives (_arrived): no task,
        # no thread hop, and a good answer reaches the caller without waiting for the
        # host's bookkeeping turn and this actor's. (A partial, not a closure: no cells.)
        arrived = functools.partial(self._arrived, walk, index, time.perf_counter())
        timeout = max(0.001, deadline - time.time())
        if walk.span is None:
            ask_early(self.runtime, host, request, arrived, timeout=timeout)
            return
        with trace.use_span(walk.span, end_on_exit=False):
            ask_early(self.runtime, host, request, arrived, timeout=timeout)

    def _send_budgeted(self, walk: _Walk, index: int, host: Ref[Any], request: ChatRequest) -> None:
        """Reserve, call, settle: a coroutine of its own, answered in this actor's turn."""
        sent = time.perf_counter()

        def answered(outcome: object) -> None:
            self._answered(walk, index, outcome, time.perf_counter() - sent)

        self.pipe_to_self(self._call(walk, host, request), answered, name="fallback link")

    def _send_selector(self, walk: _Walk, index: int, policy: str) -> None:
        """An ``auto`` link: the Selector chooses the model (and asks it)."""
        item = walk.chain.links[index]
        if self.selector is None:
            failure = Failure(
                kind=FailureKind.NOT_FOUND,
                message=f"link {item.label!r} needs a Selector, and this chain has none",
                source=self.name,
            )
            self._failed(walk, index, failure, 0.0)
            return
        request = walk.message.request
        if item.transform is not None:
            request = item.transform(request)
        choose = SelectChat(
            request=msgspec.structs.replace(request, deadline=None, trace=None),
            policy=policy or None,
            run_id=walk.message.run_id,
            reactor=walk.message.reactor,
            agent=walk.message.agent,
            deadline=walk.deadline,
        )
        sent = time.perf_counter()
        self.pipe_to_self(
            self._ask_selector(walk, choose),
            lambda outcome: self._answered(walk, index, outcome, time.perf_counter() - sent),
            name="fallback selector link",
        )

    async def _ask_selector(self, walk: _Walk, choose: SelectChat) -> Completion | Failure:
        assert self.selector is not None
        try:
            if walk.span is None:
                answer: Completion = await self.selector.ask_async(choose)
            else:
                with trace.use_span(walk.span, end_on_exit=False):
                    answer = await self.selector.ask_async(choose)
        except AskError as exc:
            return exc.failure
        return answer

    async def _call(
        self, walk: _Walk, host: Ref[Any], request: ChatRequest
    ) -> Completion | Failure:
        timeout = max(0.001, walk.deadline - time.time())
        if walk.span is None:
            return await budgeted_chat(
                host, request, budget=self.budget, scope=walk.scope, timeout=timeout
            )
        with trace.use_span(walk.span, end_on_exit=False):
            return await budgeted_chat(
                host, request, budget=self.budget, scope=walk.scope, timeout=timeout
            )

    def _check(self, walk: _Walk, completion: Completion) -> tuple[bool, str]:
        """The chain's quality check on an answer: ``(accepted, why not)``."""
        check = walk.chain.quality
        if check is None:
            return True, ""
        try:
            return bool(check(completion)), ""
        except Exception as exc:  # noqa: BLE001 - a failing check rejects the answer
            return False, f"the quality check raised {type(exc).__name__}: {exc}"

    def _arrived(self, walk: _Walk, index: int, sent: float, outcome: object) -> None:
        """Where a link's answer arrives (not this actor's turn; see ``_early``).

        An answer the quality check accepts answers the caller from here (the walk is
        this request's own), after queuing the link's success for this actor's turn;
        anything else goes to the turn, where the walk moves on. ``sent``: when the
        request went out (``perf_counter``).
        """
        latency = time.perf_counter() - sent
        if isinstance(outcome, Completion):
            checked = _ACCEPTED if walk.chain.quality is None else self._check(walk, outcome)
            if checked[0]:
                item = walk.chain.links[index]
                walk.attempts += (
                    FallbackAttempt(
                        link=item.label, outcome="ok", action="answer", latency_s=latency
                    ),
                )
                # Recorded first thing in this actor's next turn (no turn of its own):
                # every walk starts in a turn, so it sees the link's health up to date.
                self._succeeded.append((walk.health, index))
                self._answer(walk, index, outcome)
                return
            self._me.tell_if_alive(_LinkAnswered(walk, index, outcome, latency, checked))
            return
        self._me.tell_if_alive(_LinkAnswered(walk, index, outcome, latency, None))

    def _answered(
        self,
        walk: _Walk,
        index: int,
        outcome: object,
        latency: float,
        *,
        checked: tuple[bool, str] | None = None,
    ) -> None:
        item = walk.chain.links[index]
        if isinstance(outcome, Completion):
            verdict, why = checked if checked is not None else self._check(walk, outcome)
            if verdict:
                walk.health.success(index, self.clock())
                walk.attempts += (
                    FallbackAttempt(
                        link=item.label, outcome="ok", action="answer", latency_s=latency
                    ),
                )
                self._answer(walk, index, outcome)
                return
            walk.attempts += (
                FallbackAttempt(
                    link=item.label,
                    outcome="rejected",
                    action="next",
                    why=why or "the quality check rejected the answer",
                    latency_s=latency,
                ),
            )
            walk.last = Failure(
                kind=FailureKind.INVALID_RESPONSE,
                message=f"{item.label}: {why or 'the quality check rejected the answer'}",
                source=self.name,
            )
            walk.position += 1
            self._advance(walk)
            return
        failure = (
            outcome
            if isinstance(outcome, Failure)
            else Failure(
                kind=FailureKind.INTERNAL,
                message=f"unexpected answer {outcome!r}",
                source=self.name,
            )
        )
        self._failed(walk, index, failure, latency)

    def _failed(self, walk: _Walk, index: int, failure: Failure, latency: float) -> None:
        item = walk.chain.links[index]
        now = self.clock()
        walk.last = failure
        if failure.kind in _HEALTH_KINDS:
            walk.health.failure(index, now, failure.retry_after)
        action, why = self._decide(walk, item, failure)
        record = FallbackAttempt(
            link=item.label, outcome=failure.kind.value, action=action, why=why, latency_s=latency
        )
        if action == "retry":
            used = walk.tries.count(index)
            # Jittered (the upper half of the doubled backoff), so that the walks that
            # failed together do not all come back together; the server's retry_after
            # is the floor.
            backoff = walk.chain.backoff_s * 2**used * random.uniform(0.5, 1.0)
            wait = max(backoff, failure.retry_after or 0.0)
            if used < walk.chain.retries and now + wait < walk.deadline:
                walk.tries += (index,)
                walk.attempts += (msgspec.structs.replace(record, waited_s=wait),)
                retry = functools.partial(self._send, walk, index)
                self.call_later(wait, retry, name="fallback retry")
                return
            action = "next"
            record = msgspec.structs.replace(
                record, action="next", why=f"{why} (no retries left within the deadline)"
            )
        walk.attempts += (record,)
        if action == "next" and failure.retry_after:
            walk.told_to_wait |= {index}  # worth waiting for if every other link fails
        if action == "stop":
            self._give_up(walk)
            return
        if action == "switch" and walk.chain.content_policy is not None:
            policy = walk.chain.content_policy
            walk.chain = policy
            walk.health = self.health(policy)
            walk.order = walk.health.order(now)
            walk.position = 0
            walk.cooling = ()
            self._advance(walk)
            return
        walk.position += 1
        self._advance(walk)

    def _decide(  # noqa: PLR0911 - one return per rule
        self, walk: _Walk, item: Link, failure: Failure
    ) -> tuple[str, str]:
        """The action after ``failure`` on ``item``, and why (the failure's message first)."""
        kind = failure.kind
        why = failure.message
        request = walk.message.request
        if request.stream and _had_output(failure.details):
            if not walk.chain.restart_streams:
                return "stop", f"{why} (the stream had produced tokens: not restarted)"
            walk.restarted = True
            return "next", f"{why} (the stream restarts on the next link)"
        if kind is FailureKind.CONTENT_POLICY:
            if (
                walk.chain.content_policy is not None
                and walk.chain.content_policy is not walk.chain
            ):
                return "switch", f"{why} (taking the content-policy chain)"
            return "stop", f"{why} (refusals do not fall through without a content-policy chain)"
        if kind is FailureKind.CONTEXT_WINDOW_EXCEEDED:
            size = self._context_of(item)
            if size is None:  # the failure may say (a host that refused it unsent does)
                said = failure.details.get("context_length", "")
                size = int(said) if said.isdigit() else None
            floor = size if size is not None else walk.estimate
            walk.context_floor = max(walk.context_floor or 0, floor)
            return (
                "next",
                f"{why} (links with a context of {walk.context_floor} tokens or less are skipped)",
            )
        action = walk.chain.action(kind)
        if action == "retry" and failure.details.get("should_retry") == "false":
            return "next", f"{why} (the server said not to retry it)"
        return action, why

    # ---- the end -------------------------------------------------------------------------

    def _answer(self, walk: _Walk, index: int, completion: Completion) -> None:
        item = walk.chain.links[index]
        result = FallbackResult(
            completion=completion,
            chain=self._title,
            link=item.label,
            index=index,
            attempts=walk.attempts,
            restarted=walk.restarted,
        )
        if walk.span is not None:
            self._end_span(walk.span, walk, item.label, None)
        walk.reply.send(result)

    def _give_up(self, walk: _Walk) -> None:
        path = " → ".join(f"{a.link}: {a.outcome}" for a in walk.attempts) or "no link"
        last = walk.last
        if last is None:
            last = Failure(
                kind=FailureKind.TIMEOUT,
                message="no link could be tried before the deadline",
                source=self.name,
            )
        why = walk.attempts[-1].why if walk.attempts else last.message
        failure = Failure(
            kind=last.kind,
            message=f"fallback chain {self._title}: {why} (path: {path})",
            source=self.name,
            retry_after=last.retry_after,
            details={**last.details, "path": path, "attempts": str(len(walk.attempts))},
        )
        if walk.span is not None:
            self._end_span(walk.span, walk, None, failure)
        walk.reply.send(failure)

    def _end_span(
        self, span: trace.Span, walk: _Walk, answered: str | None, failure: Failure | None
    ) -> None:
        self._traced.pop(id(walk), None)
        span.set_attribute(
            "reactor.fallback.path", [f"{a.link}:{a.outcome}" for a in walk.attempts]
        )
        span.set_attribute("reactor.fallback.attempts", len(walk.attempts))
        for attempt in walk.attempts:
            span.add_event(
                "fallback.attempt",
                {
                    "link": attempt.link,
                    "outcome": attempt.outcome,
                    "action": attempt.action,
                    "why": attempt.why,
                },
            )
        if answered is not None:
            span.set_attribute("reactor.fallback.answered_by", answered)
        if failure is not None:
            span.set_attribute("error.type", failure.kind.value)
            span.set_status(trace.StatusCode.ERROR, failure.message)
        span.end()


def _had_output(details: dict[str, str]) -> bool:
    """Whether a broken stream had produced output: text, or the start of a tool call."""
    for key in ("received_chars", "received_tool_calls"):
        value = details.get(key)
        if value and value != "0" and value.isdigit():
            return True
    return False


_ACCEPTED = (True, "")
"""The verdict on every answer of a chain without a quality check."""


def _auto_links(chain: Chain) -> dict[Link, str]:
    """The ``auto`` links of ``chain`` and its content-policy chains, with their policy."""
    found: dict[Link, str] = {}
    seen: set[int] = set()
    current: Chain | None = chain
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for item in current.links:
            policy = _auto_policy(item)
            if policy is not None:
                found[item] = policy
        current = current.content_policy
    return found


def _auto_policy(item: Link) -> str | None:
    """``""`` (the default policy) or the policy of an ``auto`` link; ``None`` otherwise."""
    if item.host is not None:
        return None
    if item.model == "auto":
        return ""
    if item.model.startswith("auto:"):
        return item.model.removeprefix("auto:")
    return None
