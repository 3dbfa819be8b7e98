"""The Selector actor: chooses a model for each request, asks it, and learns from the answer.

One Selector per application (the Engine starts one, named ``selector``). It owns the
performance history; the catalog (which model is where, healthy, loaded) is read
lock-free. How a :class:`SelectChat` goes through:

1. the request is described (:func:`~._features.analyse`; a configured classifier
   may name the task type when the caller did not);
2. the policy decides (:func:`~._policy.decide`): constraints first, then scores,
   Thompson draws for quality; every model looked at is recorded with its score or the
   reason it was rejected;
3. nothing eligible: the answer is a failure whose kind says why (``circuit_open`` when
   every candidate's breaker is open, ``context_window_exceeded`` when none is big
   enough, ``insufficient_memory``, else ``not_found``), with the decision in its
   details;
   (``budget_exceeded`` when every candidate may cost more than ``max_cost_usd``);
4. otherwise the request goes to the chosen model's host, with the caller's deadline,
   inside a ``select`` span (the host's ``chat`` span is its child);
5. the outcome is recorded in the history (latency, cost, failure kind) and scored:
   the user's scoring function's value when one is configured, else 1 for an answer;
   0 for a failure the model is to blame for (server errors, timeouts, overload, rate
   limits, broken responses); nothing for the others (a cancelled or bad request says
   nothing about the model);
6. the caller gets the :class:`~actors.llm.Completion` with ``extras["selection"]``: the
   decision, with its reasons and the reward counted (what feedback later corrects).

**Under a budget.** With a Budget actor (``budget=``), the Selector's own calls are
admitted like every other model call: before deciding it asks the Budget for a
:class:`~actors.orchestration.budget.QuoteRequest` (what the tightest account that
applies to the run, reactor and agent has left, and each candidate's worst case as the
Budget would reserve it); a policy that may downgrade (the default) then chooses only
among the models that fit (the decision says the budget constrained it); the chosen
model's worst case is reserved, the request goes out with ``max_tokens`` bounded by the
reservation, and the reservation is settled to the real cost, charged what the server
reported when the call failed after doing work, or released. A policy with
``downgrade=False`` chooses as if no budget applied, and fails ``budget_exceeded``
(nothing sent) when its choice does not fit. If another call takes the headroom
between the quote and the reservation, a downgrading policy is quoted and decides once
more.

History is persisted as snapshots in the store's ``selection_history`` table (every
``persist_s`` seconds when something changed, and when the actor stops), and loaded from
the newest readable one at start, faded by its age. Each snapshot is the whole history,
so only the newest matters: they take turns in :data:`HISTORY_SLOTS` rows (a write
replaces the oldest), and the rows stay bounded however long the Selector runs. Before
each write the history is compacted: a (model, task type) record whose weight, faded by
the time since it last changed (half-life ``half_life_s``), is below
:data:`~._history.PRUNE_WEIGHT` observations is dropped (a model gone for months), so
a snapshot holds only what decay still weighs.
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, assert_never, cast

import msgspec
from opentelemetry import trace

import otel
from actors import ActorNotFound, Deferred, Failure, FailureKind, LoopActor, Ref
from actors.llm import Catalog, Completion, SelectionConfig, TaskType
from actors.lowlevel import TimerHandle
from actors.orchestration._early import ask_early
from actors.orchestration.budget import (
    Quote,
    QuoteRequest,
    Release,
    Reservation,
    Reserve,
    Settle,
    SpendScope,
    estimate_prompt_tokens,
    failed_usage,
)
from actors.orchestration.selection._features import TASK_TYPES, TaskFeatures, analyse
from actors.orchestration.selection._history import History, HistorySnapshot
from actors.orchestration.selection._messages import (
    Choice,
    Feedback,
    HistoryLoaded,
    HistoryQuery,
    HistoryReport,
    HistorySaved,
    Observed,
    SaveHistory,
    SelectChat,
    SelectModel,
)
from actors.orchestration.selection._policy import (
    BudgetCeiling,
    Decision,
    EntryCache,
    Policy,
    decide,
)
from actors.store import Journal, StoreInsert, StoreQuery, StoreRows

__all__ = [
    "BLAMED",
    "BUILT_IN_POLICIES",
    "HISTORY_SLOTS",
    "HISTORY_STREAM",
    "Classifier",
    "Scorer",
    "Selector",
    "SelectorMessage",
    "policies_from_config",
    "read_history",
]

HISTORY_STREAM = "selection:history"
"""The name the history's snapshots are kept under (table ``selection_history``)."""

HISTORY_SLOTS = 3
"""Snapshots kept per name: the newest, and two older ones should it be unreadable."""

_NEWEST = "SELECT seq, data FROM selection_history WHERE name = ? ORDER BY seq DESC"

BLAMED: frozenset[FailureKind] = frozenset(
    {
        FailureKind.SERVER_ERROR,
        FailureKind.TIMEOUT,
        FailureKind.OVERLOADED,
        FailureKind.RATE_LIMITED,
        FailureKind.CONNECTION,
        FailureKind.INVALID_RESPONSE,
    }
)
"""Failures that count as a zero reward for the model (its fault, as a user sees it)."""

BUILT_IN_POLICIES: dict[str, Policy] = {
    "balanced": Policy(name="balanced"),
    "cheapest": Policy(name="cheapest", kind="cheapest"),
    "fastest": Policy(name="fastest", kind="fastest"),
    "best": Policy(name="best", kind="best"),
}
"""Policies every Selector knows (configured ones with the same name replace them)."""

Scorer = Callable[[Completion, TaskFeatures], float | None]
"""A user's quality score for an answer, 0 to 1 (``None``: no opinion)."""

Classifier = Callable[[str], TaskType | Awaitable[TaskType | None] | None]
"""Names the task type of a prompt (the last user turn); may be ``async`` (a model call)."""


@dataclass(frozen=True, slots=True)
class _Persist:
    """Time to write the history if it changed."""


@dataclass(frozen=True, slots=True)
class _Loaded:
    """The newest persisted snapshot arrived (or there was none)."""

    snapshot: HistorySnapshot | None


@dataclass(slots=True)
class _Pending:
    """A routed request waiting for its host's answer."""

    reply: Deferred[Any]
    decision: Decision
    span: trace.Span | None
    started: float
    held: Reservation | None = None
    request: Any = None
    scope: SpendScope | None = None


@dataclass(slots=True)
class _Learn:
    """A routed request's outcome, to learn from (its caller has the answer already)."""

    pending: _Pending
    outcome: Completion | Failure
    reward: float | None
    seconds: float


SelectorMessage = (
    SelectChat
    | SelectModel
    | Feedback
    | Observed
    | HistoryQuery
    | SaveHistory
    | _Persist
    | _Loaded
    | _Learn
)


def policies_from_config(config: SelectionConfig) -> dict[str, Policy]:
    """The built-in policies with the configured ones over them."""
    policies = dict(BUILT_IN_POLICIES)
    for name, section in config.policies.items():
        policies[name] = Policy(
            name=name,
            kind=section.kind,
            quality=section.quality,
            cost=section.cost,
            latency=section.latency,
            models=tuple(section.models),
            pin={str(k): v for k, v in section.pin.items()},
            explore=section.explore,
            prior_weight=section.prior_weight,
            loaded_bonus=section.loaded_bonus,
            evict_penalty=section.evict_penalty,
            downgrade=section.downgrade,
        )
    return policies


class Selector(LoopActor[SelectorMessage]):
    """Chooses models under policies, learns per task type, and records every decision.

    Args:
        catalog: Which models exist, where, and their state.
        config: Policies, the default policy, discounting and persistence
            (``[selection]``); the defaults without one.
        policies: More policies (Python ones may have a ``choose`` function); they win.
        default_policy: The policy of requests that name none (overrides the config).
        store: The Store actor; with one, history is loaded at start and persisted.
        budget: The Budget actor that admits the Selector's own calls (and whose
            headroom bounds what it may choose); ``None``: no limits.
        scorer: A user's quality score for every answer.
        classifier: Names the task type when the caller did not (else keywords do).
        seed: Seeds the Thompson draws (reproducible benchmarks and tests).
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        config: SelectionConfig | None = None,
        policies: Mapping[str, Policy] | None = None,
        default_policy: str | None = None,
        store: Ref[Any] | None = None,
        budget: Ref[Any] | None = None,
        scorer: Scorer | None = None,
        classifier: Classifier | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        import random  # noqa: PLC0415 - one generator per selector

        self.config = config or SelectionConfig()
        self.catalog = catalog
        self.policies = {**policies_from_config(self.config), **(policies or {})}
        self.default_policy = default_policy or self.config.default_policy
        if self.default_policy not in self.policies:
            msg = (
                f"Selector(default_policy={self.default_policy!r}): no such policy "
                f"(known: {', '.join(sorted(self.policies))})"
            )
            raise ValueError(msg)
        self.history = History(discount=self.config.discount)
        self._entries = EntryCache(catalog)
        self._unlearnt: collections.deque[_Learn] = collections.deque()
        self._me: Ref[SelectorMessage] = self.self_ref  # where answers queue what to learn
        self._store = store
        self._budget = budget
        self._scorer = scorer
        self._classifier = classifier
        self._rng = random.Random(seed)
        self._hosts: dict[str, Ref[Any]] = {}
        self._timer: TimerHandle | None = None
        self._history_read = False
        self._seq = 0  # the newest snapshot's number (its slot is seq % HISTORY_SLOTS)
        self._saves: list[Deferred[Any]] = []  # SaveHistory asked before the history was read

    # ---- lifecycle ---------------------------------------------------------------------

    def started(self) -> None:
        """Load the newest persisted history, and start persisting."""
        if self._store is None:
            self._loaded(None)
            return
        self.ask(self._store, StoreQuery(sql=_NEWEST, params=(HISTORY_STREAM,)), self._read)
        self._timer = self.schedule(self.config.persist_s, _Persist())

    def stopped(self) -> None:
        """Write the history one last time (best effort: ask :class:`SaveHistory` to be sure)."""
        if self._timer is not None:
            self._timer.cancel()
        while self._unlearnt:
            self._learn(self._unlearnt.popleft())
        self._persist()

    # ---- messages ----------------------------------------------------------------------

    def receive(self, message: SelectorMessage) -> object:
        """Dispatch one message (after learning from the answers that came meanwhile)."""
        unlearnt = self._unlearnt
        while unlearnt:
            self._learn(unlearnt.popleft())
        match message:
            case SelectChat():
                self._select_chat(message, self.defer_reply())
            case SelectModel():
                if self._budget is None:
                    return self._select_model(message)
                self._quote_model(message, self.defer_reply())
            case Feedback():
                self._feedback(message)
            case Observed():
                self._observed(message)
            case HistoryQuery():
                return HistoryReport(models=self.history.summaries())
            case SaveHistory():
                self._save(self.defer_reply())
            case _Persist():
                self._persist()
                self._timer = self.schedule(self.config.persist_s, _Persist())
            case _Loaded(snapshot=snapshot):
                self._loaded(snapshot)
            case _Learn():
                self._learn(message)
            case _:
                assert_never(message)
        return None

    # ---- choosing ----------------------------------------------------------------------

    def _policy(self, name: str | None) -> Policy:
        chosen = name or self.default_policy
        policy = self.policies.get(chosen)
        if policy is None:
            msg = f"no selection policy {chosen!r} (known: {', '.join(sorted(self.policies))})"
            raise LookupError(msg)
        return policy

    def _decide(
        self,
        message: SelectChat | SelectModel,
        known: TaskType | None,
        budget: BudgetCeiling | None = None,
    ) -> Decision:
        """Describe ``message`` (``known``: the task type a classifier named) and decide.

        One frame for both, with the policy looked up in place: this runs on every
        request, before anything is sent.
        """
        chosen = message.policy or self.default_policy
        policy = self.policies.get(chosen)
        if policy is None:
            policy = self._policy(chosen)  # raises, naming the known ones
        request = message.request
        needs = message.needs
        features = analyse(
            request.messages,
            task_type=known or message.task_type,
            tools=bool(request.tools),
            json="json" in needs,
            needs=needs,
        )
        deadline = message.deadline
        return decide(
            policy,
            features,
            self.catalog,
            self.history,
            max_tokens=request.max_tokens,
            rng=self._rng,
            max_cost_usd=message.max_cost_usd,
            budget=budget,
            entries=self._entries.entries(message.candidates or policy.models),
            seconds=(  # how long the call may take (_send bounds it so)
                self.runtime.default_timeout if deadline is None else _remaining(deadline)
            ),
        )

    def _select_model(self, message: SelectModel) -> Choice | Failure:
        try:
            return Choice(decision=self._decide(message, None))
        except Exception as exc:  # noqa: BLE001 - a policy's user function may raise anything
            return self._refusal(message, exc)

    def _refusal(self, message: SelectChat | SelectModel, exc: Exception) -> Failure:
        """An unknown name (``not_found``), or a user's policy function that raised."""
        if isinstance(exc, LookupError):
            return Failure(kind=FailureKind.NOT_FOUND, message=str(exc), source=self.name)
        policy = message.policy or self.default_policy
        return Failure(
            kind=FailureKind.INTERNAL,
            message=f"selection policy {policy!r} raised {type(exc).__name__}: {exc}",
            source=self.name,
        )

    def _select_chat(self, message: SelectChat, reply: Deferred[Any]) -> None:
        classify = self._classifier
        if classify is None or message.task_type is not None:
            self._route(message, reply, None)
            return
        last = next((m.content for m in reversed(message.request.messages) if m.role == "user"), "")
        try:
            named = classify(last)
        except Exception as exc:  # noqa: BLE001 - a user's classifier must not crash the selector
            self.log.warning("the task classifier raised; keywords decide", error=repr(exc))
            named = None
        if not isinstance(named, Awaitable):
            self._route(message, reply, named)
            return
        coro = cast("Any", _await(named))
        self.pipe_to_self(
            coro,
            lambda outcome: self._route(message, reply, outcome),
            name="classify",
        )

    def _route(self, message: SelectChat, reply: Deferred[Any], task_type: object) -> None:
        known = task_type if task_type in TASK_TYPES else None
        if self._budget is not None:
            self._quote(message, reply, known, retry=True)
            return
        try:
            decision = self._decide(message, known)
        except Exception as exc:  # noqa: BLE001 - a policy's user function may raise anything
            reply.send(self._refusal(message, exc))
            return
        self._send(message, reply, decision, None)

    # ---- under a budget ----------------------------------------------------------------

    def _quote_request(self, message: SelectChat | SelectModel) -> QuoteRequest:
        """What to ask the Budget about ``message``'s candidates (unknown names raise)."""
        policy = self._policy(message.policy)
        names = self._entries.entries(tuple(message.candidates) or policy.models)
        scope = _scope(message)
        request = message.request
        return QuoteRequest(
            models=tuple(e.qualified for e in names),
            prompt_tokens=estimate_prompt_tokens(request),
            max_tokens=request.max_tokens,
            seconds=_remaining(message.deadline),
            run_id=scope.run_id,
            reactor=scope.reactor,
            agent=scope.agent,
        )

    def _quote(
        self, message: SelectChat, reply: Deferred[Any], known: TaskType | None, *, retry: bool
    ) -> None:
        """Ask the Budget what the request may spend, then decide within it."""
        assert self._budget is not None
        try:
            quote = self._quote_request(message)
        except Exception as exc:  # noqa: BLE001 - an unknown name is the caller's failure
            reply.send(self._refusal(message, exc))
            return
        self.ask(
            self._budget,
            quote,
            lambda answer: self._quoted(message, reply, known, answer, retry=retry),
        )

    def _quote_model(self, message: SelectModel, reply: Deferred[Any]) -> None:
        """``SelectModel`` under a budget: quoted, then decided within what is left."""
        assert self._budget is not None
        try:
            quote = self._quote_request(message)
        except Exception as exc:  # noqa: BLE001 - an unknown name is the caller's failure
            reply.send(self._refusal(message, exc))
            return
        self.ask(self._budget, quote, lambda answer: self._quoted_model(message, reply, answer))

    def _quoted_model(
        self, message: SelectModel, reply: Deferred[Any], quote: Quote | Failure
    ) -> None:
        if isinstance(quote, Failure):
            reply.send(quote)
            return
        try:
            policy = self._policy(message.policy)
            ceiling = _ceiling(quote, policy)
            decision = self._decide(message, None, ceiling)
        except Exception as exc:  # noqa: BLE001 - a policy's user function may raise anything
            reply.send(self._refusal(message, exc))
            return
        if not (quote.limited and ceiling is None and decision.host):
            reply.send(Choice(decision=decision))
            return
        # A policy that does not downgrade chose as if unconstrained: its choice must fit.
        decision = msgspec.structs.replace(
            decision, budget_left_usd=quote.left_usd, budget_account=quote.account
        )
        why = _over_budget(quote, decision.qualified)
        if why is None:
            reply.send(Choice(decision=decision))
            return
        refused = msgspec.structs.replace(decision, budget_constrained=True)
        reply.send(
            Failure(
                kind=FailureKind.BUDGET_EXCEEDED,
                message=f"selected {decision.qualified}, which {why}; policy "
                f"{decision.policy!r} does not downgrade",
                source=self.name,
                details={"selection": _json(refused)},
            )
        )

    def _quoted(
        self,
        message: SelectChat,
        reply: Deferred[Any],
        known: TaskType | None,
        quote: Quote | Failure,
        *,
        retry: bool,
    ) -> None:
        if isinstance(quote, Failure):
            reply.send(quote)
            return
        try:
            policy = self._policy(message.policy)
            ceiling = _ceiling(quote, policy)
            decision = self._decide(message, known, ceiling)
        except Exception as exc:  # noqa: BLE001 - a policy's user function may raise anything
            reply.send(self._refusal(message, exc))
            return
        if not decision.host:
            reply.send(_nothing_eligible(decision, self.name))
            return
        if quote.limited and ceiling is None:
            decision = msgspec.structs.replace(
                decision, budget_left_usd=quote.left_usd, budget_account=quote.account
            )
        assert self._budget is not None
        scope = _scope(message)
        request = message.request
        reserve = Reserve(
            host=decision.host,
            model=decision.model,
            prompt_tokens=estimate_prompt_tokens(request),
            max_tokens=request.max_tokens,
            seconds=_remaining(message.deadline),
            run_id=scope.run_id,
            reactor=scope.reactor,
            agent=scope.agent,
            request=request,
            exact=message.exact_tokens,
        )

        def reserved(held: Reservation | Failure) -> None:
            if isinstance(held, Reservation):
                self._send(message, reply, decision, held)
                return
            if held.kind is FailureKind.BUDGET_EXCEEDED and ceiling is not None and retry:
                self._quote(message, reply, known, retry=False)  # another call took the room
                return
            refused = msgspec.structs.replace(decision, budget_constrained=True)
            note = "" if ceiling is not None else f"; policy {decision.policy!r} does not downgrade"
            reply.send(
                msgspec.structs.replace(
                    held,
                    message=f"{held.message} (selected {decision.qualified}{note})",
                    details={**held.details, "selection": _json(refused)},
                )
            )

        self.ask(self._budget, reserve, reserved)

    def _send(
        self,
        message: SelectChat,
        reply: Deferred[Any],
        decision: Decision,
        held: Reservation | None,
    ) -> None:
        """Ask the chosen model (within the reservation ``held``, under a budget)."""
        if not decision.host:
            reply.send(_nothing_eligible(decision, self.name))
            return
        try:
            host = self._host(decision.host)
        except ActorNotFound:
            if held is not None:
                self._tell_budget(Release(id=held.id, reason="not_found"))
            reply.send(
                Failure(
                    kind=FailureKind.NOT_FOUND,
                    message=f"selected {decision.qualified}, but no model host "
                    f"{decision.host!r} is running",
                    source=self.name,
                    details={"selection": _json(decision)},
                )
            )
            return
        span = self._start_span(decision) if otel.enabled() else None
        now = time.time()
        deadline = message.deadline
        remaining = self.runtime.default_timeout if deadline is None else max(deadline - now, 0.0)
        if held is not None and held.seconds is not None:
            # Priced per GPU-second: the call must end within the time the budget held.
            remaining = min(remaining, held.seconds)
        chat = msgspec.structs.replace(
            message.request, model=decision.model, deadline=now + remaining, trace=None
        )
        if held is not None and chat.max_tokens != held.max_tokens:
            chat = msgspec.structs.replace(chat, max_tokens=held.max_tokens)
        pending = _Pending(
            reply,
            decision,
            span,
            time.perf_counter(),
            held,
            chat,
            None if held is None else _scope(message),
        )

        # The answer is handled where it arrives (see _routed): the caller hears of it
        # without waiting for the host's bookkeeping turn and then this actor's.
        def routed(outcome: object) -> None:
            self._routed(pending, outcome)

        if span is None:
            ask_early(self.runtime, host, chat, routed, timeout=remaining)
            return
        with trace.use_span(span, end_on_exit=False):
            ask_early(self.runtime, host, chat, routed, timeout=remaining)

    def _host(self, name: str) -> Ref[Any]:
        ref = self._hosts.get(name)
        if ref is None or not ref.is_alive():
            ref = self.runtime.lookup(name)
            self._hosts[name] = ref
        return ref

    # ---- learning ----------------------------------------------------------------------

    def _settle(self, pending: _Pending, outcome: Completion | Failure, seconds: float) -> None:
        """Charge the call to its reservation (or release it), under a budget."""
        held, budget, scope = pending.held, self._budget, pending.scope
        if held is None or budget is None or scope is None:
            return  # no budget, or the call was not reserved
        usage = outcome.usage if isinstance(outcome, Completion) else None
        if isinstance(outcome, Failure):
            usage = failed_usage(outcome, pending.request)
            if usage is None:
                self._tell_budget(Release(id=held.id, reason=outcome.kind.value))
                return
        assert usage is not None
        decision = pending.decision
        self._tell_budget(
            Settle(
                id=held.id,
                usage=usage,
                seconds=(outcome.latency_s or seconds)
                if isinstance(outcome, Completion)
                else seconds,
                cost_usd=outcome.cost_usd if isinstance(outcome, Completion) else None,
                host=decision.host,
                model=decision.model,
                run_id=scope.run_id,
                reactor=scope.reactor,
                agent=scope.agent,
                failed=isinstance(outcome, Failure),
            )
        )

    def _tell_budget(self, message: Settle | Release, tries: int = 1000) -> None:
        """Tell the Budget, waiting out its restart (every 10 ms, up to ``tries`` times)."""
        budget = self._budget
        if budget is None or budget.tell_if_alive(message):
            return
        if tries <= 0:
            budget.tell(message)  # recorded as a dead letter
            return
        self.call_later(0.01, lambda: self._tell_budget(message, tries - 1), name="tell budget")

    def _routed(self, pending: _Pending, outcome: object) -> None:
        """Where the host's answer arrives (not this actor's turn): answer the caller.

        Builds the answer from what the request owns (its decision, the reward the
        user's scorer gives, its span) and queues a :class:`_Learn` before answering,
        so the history (and the budget) are updated in this actor's turn, ahead of
        anything the caller sends next: as a message when a reservation must be
        settled, else on a queue that every turn empties first (no turn of its own).
        """
        seconds = time.perf_counter() - pending.started
        decision = pending.decision
        if not isinstance(outcome, Completion | Failure):
            outcome = Failure(
                kind=FailureKind.INTERNAL,
                message=f"unexpected answer {type(outcome).__name__} from {decision.host!r}",
                source=self.name,
            )
        reward: float | None
        answer: Completion | Failure
        if isinstance(outcome, Completion):
            reward = self._score(outcome, decision.features)
            answer = msgspec.structs.replace(
                outcome, extras={**outcome.extras, "selection": _record(decision, reward)}
            )
        else:
            reward = 0.0 if outcome.kind in BLAMED else None
            answer = msgspec.structs.replace(
                outcome,
                message=f"{outcome.message} (selected {decision.qualified}: {decision.reason})",
                details={**outcome.details, "selection": _json(decision, reward)},
            )
        if pending.span is not None:
            _end_span(pending.span, decision, outcome, reward)
        learn = _Learn(pending, outcome, reward, seconds)
        if pending.held is None:
            # Nothing waits on it: learnt at the start of this actor's next turn, before
            # whatever that turn handles (a deque's append and popleft are thread-safe).
            self._unlearnt.append(learn)
        else:  # the budget's reservation is settled now, not whenever mail comes
            self._me.tell_if_alive(learn)
        pending.reply.send(answer)

    def _learn(self, learn: _Learn) -> None:
        """In this actor's turn: settle the budget, and add the outcome to the history."""
        pending, outcome, reward = learn.pending, learn.outcome, learn.reward
        if pending.held is not None:
            self._settle(pending, outcome, learn.seconds)
        decision = pending.decision
        name, task = decision.qualified, decision.features.task_type
        now = time.time()
        if isinstance(outcome, Completion):
            self.history.answered(
                name,
                task,
                outcome.latency_s or learn.seconds,
                outcome.ttft_s,
                outcome.tokens_per_s,
                outcome.cost_usd,
                outcome.usage.output_tokens,
                reward if self._scorer is not None else None,
                reward,
                now,
            )
            return
        self.history.record(name, task, ok=False, kind=str(outcome.kind), now=now)
        if reward is not None:
            self.history.reward(name, task, reward)

    def _score(self, completion: Completion, features: TaskFeatures) -> float:
        if self._scorer is None:
            return 1.0
        try:
            value = self._scorer(completion, features)
        except Exception as exc:  # noqa: BLE001 - a user's scorer must not crash the selector
            self.log.warning("the selection scorer raised", error=repr(exc))
            return 1.0
        return 1.0 if value is None else min(max(float(value), 0.0), 1.0)

    def _feedback(self, message: Feedback) -> None:
        score = min(max(message.score, 0.0), 1.0)
        self.history.add_quality(message.model, message.task_type, score)
        if message.counted is None:
            self.history.reward(message.model, message.task_type, score)
        else:
            self.history.correct(message.model, message.task_type, score - message.counted)

    def _observed(self, message: Observed) -> None:
        self.history.record(
            message.model,
            message.task_type,
            ok=message.ok,
            kind=message.kind,
            latency_s=message.latency_s,
            cost_usd=message.cost_usd,
            quality=message.quality,
            now=time.time(),
        )
        if message.ok:
            reward = 1.0 if message.quality is None else message.quality
            self.history.reward(message.model, message.task_type, reward)
        elif message.kind is not None and message.kind in {str(k) for k in BLAMED}:
            self.history.reward(message.model, message.task_type, 0.0)

    # ---- persistence -------------------------------------------------------------------

    def _loaded(self, snapshot: HistorySnapshot | None) -> None:
        # Nothing is written before the persisted history is read: a snapshot written
        # first would be read back as if a previous selector had left it (counted twice).
        self._history_read = True
        now = time.time()
        if snapshot is not None:
            self.history.restore(snapshot, now=now, half_life_s=self.config.half_life_s)
        self.runtime.bus.publish(
            HistoryLoaded(
                selector=self.name,
                cells=0 if snapshot is None else len(snapshot.cells),
                age_s=0.0 if snapshot is None else max(now - snapshot.at, 0.0),
            )
        )
        saves, self._saves = self._saves, []
        for reply in saves:
            self._save(reply)

    def _read(self, answer: StoreRows | Failure) -> None:
        if isinstance(answer, Failure):
            self.log.warning("selection history not read; starting afresh", error=answer.message)
            self._loaded(None)
            return
        self._seq = max((int(cast("int", row[0])) for row in answer.rows), default=0)
        self._loaded(_newest_readable(answer.rows, self.log))

    def _snapshot(self) -> StoreInsert:
        """The history now, compacted, as the insert that replaces the oldest slot."""
        now = time.time()
        self.history.prune(now, half_life_s=self.config.half_life_s)
        snapshot = self.history.snapshot(now)
        self.history.dirty = False
        self._seq += 1
        return StoreInsert(
            table="selection_history",
            columns=("name", "slot", "seq", "at", "data"),
            rows=(
                (
                    HISTORY_STREAM,
                    self._seq % HISTORY_SLOTS,
                    self._seq,
                    snapshot.at,
                    msgspec.json.encode(snapshot).decode(),
                ),
            ),
        )

    def _save(self, reply: Deferred[Any]) -> None:
        if self._store is not None and not self._history_read:
            self._saves.append(reply)
            return
        if self._store is None or not self.history.dirty:
            reply.send(HistorySaved())
            return
        insert = self._snapshot()
        cells = len(self.history.cells)

        def written(answer: object) -> None:
            if isinstance(answer, Failure):
                self.history.dirty = True
                reply.send(answer)
            else:
                reply.send(HistorySaved(cells=cells))

        self.ask(self._store, insert, written)

    def _persist(self) -> None:
        if self._store is None or not self.history.dirty or not self._history_read:
            return
        insert = self._snapshot()
        with contextlib.suppress(Exception):  # a stopping system may refuse it
            self.ask(self._store, insert, _ignore)

    # ---- tracing -----------------------------------------------------------------------

    def _start_span(self, decision: Decision) -> trace.Span | None:
        if not otel.enabled():
            return None
        return otel.tracer().start_span(
            f"select {decision.features.task_type}",
            kind=trace.SpanKind.INTERNAL,
            attributes={
                "reactor.select.policy": decision.policy,
                "reactor.select.task_type": decision.features.task_type,
                "reactor.select.model": decision.qualified,
                "reactor.select.reason": decision.reason,
                "reactor.select.explored": decision.explored,
                "reactor.select.candidates": [
                    c.model for c in decision.considered if c.rejected is None
                ],
                "reactor.select.rejected": [
                    f"{c.model}: {c.rejected}" for c in decision.considered if c.rejected
                ],
                **(
                    {}
                    if decision.budget_left_usd is None
                    else {
                        "reactor.select.budget_left_usd": decision.budget_left_usd,
                        "reactor.select.budget_account": decision.budget_account,
                        "reactor.select.budget_constrained": decision.budget_constrained,
                    }
                ),
            },
        )


def _ceiling(quote: Quote, policy: Policy) -> BudgetCeiling | None:
    """What a quote allows a policy that downgrades (``None``: no limit, or no downgrade)."""
    if not (quote.limited and policy.downgrade and quote.left_usd is not None):
        return None
    return BudgetCeiling(
        left_usd=quote.left_usd,
        account=quote.account,
        worst_usd=quote.worst_usd,
        max_tokens=quote.max_tokens,
    )


def _over_budget(quote: Quote, model: str) -> str | None:
    """Why ``model`` does not fit what the quote has left (``None``: it fits)."""
    if model not in quote.worst_usd:
        return None
    worst = quote.worst_usd[model]
    if worst is None:  # (under unpriced = "free" an unpriced model is quoted 0)
        return f"is unpriced, and the budget ({quote.account}) refuses unpriced models"
    left = quote.left_usd if quote.left_usd is not None else float("inf")
    if worst > left + 1e-12:
        return (
            f"costs up to ${worst:.6f}, more than the ${left:.6f} the budget "
            f"({quote.account}) has left"
        )
    return None


def _scope(message: SelectChat | SelectModel) -> SpendScope:
    """Whom the request's spend is charged to (the top-level run)."""
    return SpendScope(
        run_id=message.run_id.split("/", 1)[0], reactor=message.reactor, agent=message.agent
    )


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.time())


def read_history(journal: Journal, config: SelectionConfig | None = None) -> History:
    """The persisted history, as a Selector would load it now (faded by its age).

    For tools that show it without starting a Selector (``reactor models``). Empty when
    nothing was persisted or no snapshot can be read.
    """
    settings = config or SelectionConfig()
    history = History(discount=settings.discount)
    snapshot = _newest_readable(journal.query(_NEWEST, HISTORY_STREAM), None)
    if snapshot is None:
        return history
    history.restore(snapshot, now=time.time(), half_life_s=settings.half_life_s)
    history.dirty = False
    return history


def _newest_readable(rows: Sequence[Sequence[object]], log: Any) -> HistorySnapshot | None:
    """The newest snapshot of ``rows`` (``seq, data``, newest first) that decodes."""
    for row in rows:
        data = row[1]
        try:
            return msgspec.json.decode(
                data if isinstance(data, bytes | str) else b"", type=HistorySnapshot
            )
        except msgspec.DecodeError as exc:
            if log is not None:
                log.warning(
                    "unreadable selection history snapshot; trying an older one",
                    seq=row[0],
                    error=str(exc),
                )
    return None


def _ignore(_: object) -> None:
    """Persisting is best effort: a failed write is retried with the next snapshot."""


async def _await(value: Awaitable[TaskType | None]) -> TaskType | None:
    return await value


def _record(decision: Decision, reward: float | None) -> dict[str, Any]:
    record: dict[str, Any] = msgspec.to_builtins(decision)
    record["chosen"] = decision.qualified
    if reward is not None:
        record["reward"] = reward
    return record


def _json(decision: Decision, reward: float | None = None) -> str:
    return msgspec.json.encode(_record(decision, reward)).decode()


def _nothing_eligible(decision: Decision, source: str) -> Failure:
    reasons = [c.rejected or "" for c in decision.considered]
    if not reasons:
        kind, why = FailureKind.NOT_FOUND, "no chat model in the catalog"
    elif all(r.startswith("circuit") for r in reasons):
        kind, why = FailureKind.CIRCUIT_OPEN, "every candidate's circuit breaker is open"
    elif all(r.startswith("context") for r in reasons):
        kind, why = FailureKind.CONTEXT_WINDOW_EXCEEDED, "the request fits no candidate's context"
    elif all(r.startswith(("costs up to", "unpriced")) for r in reasons):
        kind, why = FailureKind.BUDGET_EXCEEDED, "every candidate may cost more than allowed"
    elif all(r.startswith("not loaded") for r in reasons):
        kind, why = FailureKind.INSUFFICIENT_MEMORY, "no candidate is loaded or fits free memory"
    else:
        kind, why = FailureKind.NOT_FOUND, "no candidate meets the request's constraints"
    listed = "; ".join(f"{c.model}: {c.rejected}" for c in decision.considered)
    return Failure(
        kind=kind,
        message=f"policy {decision.policy!r} found no model: {why} ({listed or 'none'})",
        source=source,
        details={"selection": _json(decision)},
    )


def _end_span(
    span: trace.Span, decision: Decision, outcome: Completion | Failure, reward: float | None
) -> None:
    span.add_event(
        "selection.decision",
        {"reactor.select.decision": _json(decision, reward)},
    )
    if isinstance(outcome, Failure):
        span.set_attribute("error.type", outcome.kind.value)
        span.set_status(trace.StatusCode.ERROR, str(outcome))
    elif reward is not None:
        span.set_attribute("reactor.select.reward", reward)
    span.end()
