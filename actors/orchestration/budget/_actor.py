"""The Budget actor: admits model calls against spending limits, and records what they cost.

One Budget serves the whole engine (runs, fallback chains, agents). Because an actor
handles one message at a time, a reservation is checked and taken in one step: no two
concurrent calls can both see the same headroom (see :mod:`._ledger`). It runs on the
I/O loop (a :class:`~actors.LoopActor`), where the calls it admits are made, so
admission costs no thread hop.

Spend is persisted: each settled call is a row of the Store's ``spend`` table (written
in the Store's next group commit), and at start the rows of the current windows are
read back, so a restart does not reset a daily limit. A run's spend is read whole (all
its rows, however old) the first time a call of that run is admitted, so a per-run
limit is exact for a run resumed weeks later. Until they are, reservations wait.

Reservations are persisted too, in the ``budget_holds`` table (a row when one is held,
another when it is settled or released). A restarted Budget first waits for the Store
to commit what its predecessor had sent, then holds again every reservation still open
whose call may still be running (its deadline, plus a grace, not yet passed), so that
calls admitted before a crash and calls admitted after it cannot overspend together.
A settle that arrives for a reservation the Budget no longer holds is still charged
(the :class:`Settle` names the model and scope). Without a Store, a restart forgets
the reservations (and all spend).

**The prompt's size.** The caller's :func:`estimate_prompt_tokens` is an upper
estimate (ASCII at 3 bytes a token, other text at 2 bytes a token: tokenizers average
about 4 and 3). Each answer's usage is the server's own tokenizer's count: the Budget
keeps, per model, the highest ratio of counted to estimated prompt tokens seen in its
last calls, and reserves the estimate times that ratio, plus a 10% margin
(:data:`CALIBRATION_MARGIN`). Usage that is itself an estimate (a server that reports
none) teaches nothing.

**What a failed call costs.** A call that fails before the server did any work (refused,
rate limited, a server error, a connection that failed, a timeout before any output)
is released: it costs nothing. A call that fails after the server produced output (a
stream cut after tokens, a timeout after part of the answer) is charged what the
server reported (``input_tokens`` and ``output_tokens`` in the failure's details,
when the protocol sent them before the cut: Anthropic's ``message_start`` does), the
output it did not report estimated from the text received, the prompt it did not
report estimated as at admission; and, for a model priced per GPU-second, the call's
wall time.

Prices come from the configuration (``[prices]`` and each host's ``prices``: per
million tokens, or per GPU-second for a local model). A model without a price under a
limit is refused (``budgets.unpriced = "refuse"``, the default) or counted at $0 and
flagged (``"free"``): never a silent $0.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, assert_never

import msgspec

from actors import ActorNotFound, AskError, ChildSpec, Failure, LoopActor, Ref, Restart
from actors.llm import BudgetsConfig, Config, CountTokens, PriceConfig, TokenCount
from actors.orchestration.budget._gate import budget_failure
from actors.orchestration.budget._ledger import Ledger, SpendScope
from actors.orchestration.budget._messages import (
    BudgetStatus,
    Quote,
    QuoteRequest,
    Release,
    Reservation,
    Reserve,
    Settle,
    SpendQuery,
    SpendReport,
)
from actors.store import SqlValue, StoreInsert, StoreQuery, StoreRows

__all__ = [
    "CALIBRATION_MARGIN",
    "SPEND_ROWS_SQL",
    "Budget",
    "BudgetMessage",
    "prices_from",
    "spend_report",
    "status",
]

BudgetMessage = Reserve | Settle | Release | SpendQuery | QuoteRequest
"""Every message the Budget understands."""

_COLUMNS = (
    "at",
    "run_id",
    "reactor",
    "agent",
    "host",
    "model",
    "cost_usd",
    "reserved_usd",
    "input_tokens",
    "output_tokens",
    "priced",
)
_HOLD_COLUMNS = (
    "id",
    "at",
    "event",
    "run_id",
    "reactor",
    "agent",
    "host",
    "model",
    "amount_usd",
    "expires",
)
_HOLD_GRACE_S = 30.0
"""How long past its call's deadline a reservation is held before it expires unsettled."""
_OPEN_HOLDS_SQL = (
    "SELECT o.id, o.run_id, o.reactor, o.agent, o.host, o.model, o.amount_usd, o.expires "
    "FROM budget_holds o WHERE o.event = 'open' AND o.expires > ? AND NOT EXISTS "
    "(SELECT 1 FROM budget_holds c WHERE c.id = o.id AND c.event = 'close')"
)
_RUN_SPEND_SQL = "SELECT sum(cost_usd), count(*), min(at) FROM spend WHERE run_id = ?"
_DAY = 86400.0
CALIBRATION_MARGIN = 0.1
"""Added to the highest counted/estimated prompt ratio a model showed, when reserving."""
_CALIBRATION_CALLS = 32
"""How many recent calls per model the prompt ratio is taken over."""


class _Hold:
    """What a reservation is for (to price and record its settlement)."""

    __slots__ = ("host", "model", "priced", "prompt_estimate", "scope")

    def __init__(
        self, scope: SpendScope, host: str, model: str, priced: bool, prompt_estimate: int
    ) -> None:
        self.scope = scope
        self.host = host
        self.model = model
        self.priced = priced
        self.prompt_estimate = prompt_estimate


def prices_from(config: Config) -> dict[str, PriceConfig]:
    """Every configured price, keyed ``host/model`` (a host's own) or ``model`` (global)."""
    prices: dict[str, PriceConfig] = dict(config.prices)
    for name in config.hosts:
        for model, price in config.host(name).prices.items():
            prices[f"{name}/{model}"] = price
    return prices


class Budget(LoopActor[BudgetMessage]):
    """Admits calls against the configured limits; settles, releases and reports spend.

    Args:
        settings: The ``[budgets]`` section (limits, reserve sizes, unpriced models).
        prices: Prices keyed ``host/model`` or ``model`` (:func:`prices_from`).
        store: The Store whose ``spend`` table persists spend (``None``: memory only).
        clock: Wall-clock time (tests pass their own).
    """

    def __init__(
        self,
        settings: BudgetsConfig,
        prices: Mapping[str, PriceConfig],
        store: Ref[Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.prices = dict(prices)
        self.store = store
        self.clock = clock
        self.ledger = Ledger(limits=tuple(settings.limits))
        self._ids = itertools.count(1)
        self._token = secrets.token_hex(4)  # reservation ids stay unique across restarts
        self._loaded = store is None
        self._early: list[tuple[Reserve | QuoteRequest, Any]] = []
        self._closing: list[Settle | Release] = []  # told before the read-back finished
        self._started_at = clock()
        self._total = 0.0
        self._calls = 0
        self._unpriced = 0
        self._by_model: dict[str, float] = {}
        self._meta: dict[str, _Hold] = {}
        self._runs_loaded: set[str] = set()
        self._run_waiting: dict[str, list[tuple[Reserve | QuoteRequest, Any]]] = {}
        self._ratios: dict[str, deque[float]] = {}
        self._expiry: list[tuple[float, str]] = []  # (expires, id): a heap

    @classmethod
    def spec(
        cls,
        settings: BudgetsConfig,
        prices: Mapping[str, PriceConfig],
        *,
        store: Ref[Any] | None = None,
        name: str = "budget",
    ) -> ChildSpec:
        """A :class:`~actors.ChildSpec` for a Budget (a permanent child, on the loop)."""
        return ChildSpec(
            name=name,
            actor=cls,
            args=(settings, dict(prices)),
            kwargs={"store": store},
            restart=Restart.PERMANENT,
        )

    @classmethod
    def from_config(
        cls, config: Config, *, store: Ref[Any] | None = None, name: str = "budget"
    ) -> ChildSpec:
        """:meth:`spec` from a whole :class:`~actors.llm.Config`."""
        return cls.spec(config.budgets, prices_from(config), store=store, name=name)

    # ---- start: read back the current windows' spend -----------------------------------

    def started(self) -> None:
        """Read back persisted spend and open reservations (reservations wait meanwhile).

        First an empty insert, as a barrier: it is answered once the Store has committed
        everything sent before it (a predecessor's last reservations and settlements).
        """
        if self.store is None or not self.ledger.active:
            self._loaded = True
            return
        barrier = StoreInsert(table="budget_holds", columns=_HOLD_COLUMNS, rows=())
        self.ask(self.store, barrier, self._read_spend, timeout=30.0)

    def _read_spend(self, answer: object) -> None:
        if isinstance(answer, Failure):
            self.log.warning(
                "budget: the store did not commit before reading", error=answer.message
            )
        assert self.store is not None
        now = self.clock()
        if any(limit.scope != "run" for limit in self.ledger.limits):
            query = StoreQuery(
                sql="SELECT at, run_id, reactor, agent, cost_usd FROM spend WHERE at >= ?",
                params=(self.ledger.earliest_start(now),),
            )
            self.ask(self.store, query, self._loaded_rows, timeout=30.0)
        else:
            self._loaded_rows(StoreRows())

    def _loaded_rows(self, answer: StoreRows | Failure) -> None:
        if isinstance(answer, Failure):
            self.log.warning("budget: reading back spend failed", error=answer.message)
        else:
            now = self.clock()
            for at, run_id, reactor, agent, cost in answer.rows:
                scope = SpendScope(run_id=str(run_id), reactor=str(reactor), agent=str(agent))
                self.ledger.load(scope, float(at or 0), float(cost or 0), now, runs=False)
        assert self.store is not None
        holds = StoreQuery(sql=_OPEN_HOLDS_SQL, params=(self.clock(),))
        self.ask(self.store, holds, self._loaded_holds, timeout=30.0)

    def _loaded_holds(self, answer: StoreRows | Failure) -> None:
        if isinstance(answer, Failure):
            self.log.warning("budget: reading back reservations failed", error=answer.message)
            rows: tuple[tuple[SqlValue, ...], ...] = ()
        else:
            rows = answer.rows
        runs = sorted({str(row[1]) for row in rows if row[1]}) if self.ledger.has_run_limit else []
        self._restore_runs(runs, rows)

    def _restore_runs(self, runs: list[str], holds: tuple[tuple[SqlValue, ...], ...]) -> None:
        """Read the runs of the open reservations whole, one by one, then hold them again."""
        if runs and self.store is not None:
            first = runs.pop()

            def counted(answer: StoreRows | Failure) -> None:
                self._count_run(first, answer)
                self._restore_runs(runs, holds)

            query = StoreQuery(sql=_RUN_SPEND_SQL, params=(first,))
            self.ask(self.store, query, counted, timeout=30.0)
            return
        now = self.clock()
        for hold_id, run, reactor, agent, host, model, amount, expires in holds:
            rid = str(hold_id)
            heapq.heappush(self._expiry, (float(expires or 0), rid))
            scope = SpendScope(run_id=str(run), reactor=str(reactor), agent=str(agent))
            price = self._price(str(host), str(model))
            self.ledger.hold(rid, scope, float(amount or 0), now)
            self._meta[rid] = _Hold(scope, str(host), str(model), price is not None, 0)
        if holds:
            self.log.info("budget: reservations of calls in flight held again", count=len(holds))
        self._loaded = True
        closing, self._closing = self._closing, []
        for done in closing:
            if isinstance(done, Settle):
                self._settle(done)
            else:
                self._release(done)
        early, self._early = self._early, []
        for message, reply in early:
            self._admit(message, reply)

    def _count_run(self, run_id: str, answer: StoreRows | Failure) -> None:
        self._runs_loaded.add(run_id)
        if isinstance(answer, Failure):
            self.log.warning(
                "budget: reading a run's spend failed", run=run_id, error=answer.message
            )
            return
        for cost, calls, first in answer.rows:
            if calls:
                self.ledger.load_run(
                    run_id, float(cost or 0), int(calls or 0), float(first or 0), self.clock()
                )

    def _admit(self, message: Reserve | QuoteRequest, reply: Any) -> None:
        """Answer a reservation or a quote once the run's whole spend is counted."""
        run_id = message.run_id
        if (
            self.store is not None
            and run_id
            and run_id not in self._runs_loaded
            and self.ledger.has_run_limit
        ):
            waiting = self._run_waiting.setdefault(run_id, [])
            waiting.append((message, reply))
            if len(waiting) == 1:
                query = StoreQuery(sql=_RUN_SPEND_SQL, params=(run_id,))
                self.ask(self.store, query, lambda a: self._run_read(run_id, a), timeout=30.0)
            return
        match message:
            case Reserve():
                if self._counts_exactly(message):
                    self._count_then_reserve(message, reply)
                else:
                    reply.send(self._reserve(message))
            case QuoteRequest():
                reply.send(self._quote(message))

    def _counts_exactly(self, message: Reserve) -> bool:
        exact = message.exact
        if exact is None:
            exact = self.settings.prompt_tokens == "exact"
        return exact and message.request is not None and bool(message.host)

    def _count_then_reserve(self, message: Reserve, reply: Any) -> None:
        """Have the host's server count the prompt, then reserve on that count.

        Where the host is not running, has no count route, or does not answer within
        ``count_timeout_s``, the caller's estimate is reserved (calibrated) as usual.
        """
        assert message.request is not None
        try:
            host = self.runtime.lookup(message.host)
        except ActorNotFound:
            reply.send(self._reserve(message))
            return
        request = msgspec.structs.replace(
            message.request, model=message.model, deadline=None, trace=None
        )

        def counted(answer: TokenCount | Failure) -> None:
            if isinstance(answer, TokenCount):
                exact = msgspec.structs.replace(message, prompt_tokens=answer.input_tokens)
                reply.send(self._reserve(exact, counted=answer.endpoint or "count"))
                return
            self.log.debug(
                "no exact prompt count; reserving the estimate",
                host=message.host,
                model=message.model,
                kind=str(answer.kind),
            )
            reply.send(self._reserve(message))

        self.ask(host, CountTokens(request=request), counted, timeout=self.settings.count_timeout_s)

    def _run_read(self, run_id: str, answer: StoreRows | Failure) -> None:
        self._count_run(run_id, answer)
        for message, reply in self._run_waiting.pop(run_id, []):
            self._admit(message, reply)

    # ---- messages --------------------------------------------------------------------

    def receive(self, message: BudgetMessage) -> object:
        """Reserve (answered at once), settle and release (one-way), report."""
        match message:
            case Reserve() | QuoteRequest():
                reply = self.defer_reply()
                if not self._loaded:
                    self._early.append((message, reply))
                else:
                    self._admit(message, reply)
                return None
            case Settle() | Release() if not self._loaded:
                # A reservation restored at start may be the one this closes: wait for it.
                self._closing.append(message)
                return None
            case Settle():
                self._settle(message)
                return None
            case Release():
                self._release(message)
                return None
            case SpendQuery():
                return self._report(message)
            case _:
                assert_never(message)

    def _release(self, message: Release) -> None:
        if self.ledger.release(message.id):
            self._close(message.id)
        self._meta.pop(message.id, None)

    def _price(self, host: str, model: str) -> PriceConfig | None:
        return self.prices.get(f"{host}/{model}") or self.prices.get(model)

    def _prompt_tokens(self, host: str, model: str, estimate: int) -> int:
        """The prompt tokens to reserve: the estimate, calibrated by the server's counts."""
        seen = self._ratios.get(f"{host}/{model}")
        if not seen or estimate <= 0:
            return estimate
        return math.ceil(estimate * max(seen) * (1.0 + CALIBRATION_MARGIN))

    def _calibrate(self, hold: _Hold, message: Settle) -> None:
        usage = message.usage
        if usage.estimated or usage.input_tokens <= 0 or hold.prompt_estimate <= 0:
            return
        key = f"{hold.host}/{hold.model}"
        seen = self._ratios.get(key)
        if seen is None:
            seen = self._ratios[key] = deque(maxlen=_CALIBRATION_CALLS)
        seen.append(usage.input_tokens / hold.prompt_estimate)

    def _seconds(self, given: float | None) -> float:
        """The wall time a call may take: ``given``, else ``reserve_seconds``.

        Never more than the system's default ask timeout: a call with no deadline of its
        own gets that one when it is asked, so it cannot last longer.
        """
        if given:
            return given
        return min(self.settings.reserve_seconds, self.runtime.default_timeout)

    def _worst(
        self, host: str, model: str, prompt_tokens: int, max_tokens: int, seconds: float | None
    ) -> tuple[PriceConfig | None, float]:
        price = self._price(host, model)
        if price is None:
            return None, 0.0
        seconds = self._seconds(seconds)
        return price, price.worst_case(prompt_tokens, max_tokens, seconds)

    def _expire(self, now: float) -> None:
        """Release the reservations whose call cannot still be running (deadline + grace).

        Their call's settle was lost (sent while this Budget restarted) or never came (its
        caller died); a settle that still arrives is charged all the same.
        """
        while self._expiry and self._expiry[0][0] <= now:
            _, rid = heapq.heappop(self._expiry)
            if self.ledger.release(rid):
                self._meta.pop(rid, None)
                self._close(rid)
                self.log.warning("budget: a reservation expired unsettled", id=rid)

    def _quote(self, message: QuoteRequest) -> Quote:
        now = self.clock()
        self._expire(now)
        scope = SpendScope(run_id=message.run_id, reactor=message.reactor, agent=message.agent)
        tightest = self.ledger.headroom(scope, now)
        max_tokens = message.max_tokens or self.settings.reserve_max_tokens
        worst: dict[str, float | None] = {}
        unpriced: list[str] = []
        for name in message.models:
            host, _, model = name.rpartition("/")
            prompt = self._prompt_tokens(host, model, message.prompt_tokens)
            price, amount = self._worst(host, model, prompt, max_tokens, message.seconds)
            if price is None:
                unpriced.append(name)
                worst[name] = None if self.settings.unpriced == "refuse" else 0.0
            else:
                worst[name] = amount
        return Quote(
            limited=tightest is not None,
            left_usd=None if tightest is None else max(tightest.left_usd, 0.0),
            account="" if tightest is None else tightest.key,
            worst_usd=worst,
            unpriced=tuple(unpriced),
            max_tokens=max_tokens,
        )

    def _reserve(self, message: Reserve, counted: str = "") -> Reservation | Failure:
        """Hold the worst case; ``counted``: the prompt tokens are the server's own count."""
        now = self.clock()
        self._expire(now)
        scope = SpendScope(run_id=message.run_id, reactor=message.reactor, agent=message.agent)
        max_tokens = message.max_tokens or self.settings.reserve_max_tokens
        prompt = (
            message.prompt_tokens
            if counted
            else self._prompt_tokens(message.host, message.model, message.prompt_tokens)
        )
        price, amount = self._worst(
            message.host, message.model, prompt, max_tokens, message.seconds
        )
        where = f"{message.host}/{message.model}" if message.host else message.model
        priced = price is not None
        if (
            price is None
            and self.settings.unpriced == "refuse"
            and self.ledger.accounts_for(scope, now)
        ):
            return budget_failure(
                f"model {where!r} has no price, and a budget applies to this call: give it "
                "one in [prices] (per token, or per_gpu_second for a local model; 0 is a "
                "price) or set budgets.unpriced = 'free'",
                self.name,
                reason="unpriced",
                model=where,
            )
        rid = f"{self._token}-{next(self._ids)}"
        refusal = self.ledger.admit(rid, scope, amount, now)
        if refusal is not None:
            return budget_failure(
                f"{where}: {refusal.message()}",
                self.name,
                reason="limit",
                account=refusal.account.key,
                model=where,
            )
        # An exact count is not an estimate to calibrate (0: nothing to learn from it).
        estimate = 0 if counted else message.prompt_tokens
        self._meta[rid] = _Hold(scope, message.host, message.model, priced, estimate)
        held = self.ledger.held[rid]
        expires = now + self._seconds(message.seconds) + _HOLD_GRACE_S
        if held.keys:
            heapq.heappush(self._expiry, (expires, rid))
        if self.store is not None and held.keys:
            row: tuple[SqlValue, ...] = (
                rid,
                now,
                "open",
                scope.run_id,
                scope.reactor,
                scope.agent,
                message.host,
                message.model,
                amount,
                expires,
            )
            insert = StoreInsert(table="budget_holds", columns=_HOLD_COLUMNS, rows=(row,))
            self._write(insert)
        timed = price is not None and price.per_gpu_second > 0
        return Reservation(
            id=rid,
            amount_usd=amount,
            max_tokens=max_tokens,
            priced=priced,
            accounts=held.keys,
            prompt_tokens=prompt,
            prompt_counted=counted,
            seconds=self._seconds(message.seconds) if timed else None,
        )

    def _close(self, rid: str) -> None:
        """Record that a reservation is no longer held (settled or released)."""
        if self.store is None:
            return
        row: tuple[SqlValue, ...] = (rid, self.clock(), "close", "", "", "", "", "", 0.0, 0.0)
        insert = StoreInsert(table="budget_holds", columns=_HOLD_COLUMNS, rows=(row,))
        self._write(insert)

    def _settle(self, message: Settle) -> None:
        hold = self._meta.pop(message.id, None)
        now = self.clock()
        if hold is None:
            # Not held here (a predecessor's reservation that had expired, or one made
            # before a restart without a store): still charged, to what the Settle names.
            if not message.model:
                return
            scope = SpendScope(run_id=message.run_id, reactor=message.reactor, agent=message.agent)
            price = self._price(message.host, message.model)
            hold = _Hold(scope, message.host, message.model, price is not None, 0)
            held = False
        else:
            held = message.id in self.ledger.held
        scope, host, model, priced = hold.scope, hold.host, hold.model, hold.priced
        cost = message.cost_usd
        if cost is None:
            price = self._price(host, model)
            cost = 0.0 if price is None else price.cost(message.usage, message.seconds)
        if held:
            reserved = self.ledger.settle(message.id, cost, now)
            self._close(message.id)
        else:
            reserved = 0.0
            if not scope.run_id or scope.run_id in self._runs_loaded or self.store is None:
                self.ledger.charge(scope, cost, now)
            else:  # the run's rows are read whole when it is next admitted: this one with them
                self.ledger.charge(_without_run(scope), cost, now)
        self._calibrate(hold, message)
        self._total += cost
        self._calls += 1
        self._unpriced += not priced
        key = f"{host}/{model}" if host else model
        self._by_model[key] = self._by_model.get(key, 0.0) + cost
        if self.store is not None:
            row: tuple[SqlValue, ...] = (
                now,
                scope.run_id,
                scope.reactor,
                scope.agent,
                host,
                model,
                cost,
                reserved,
                message.usage.input_tokens,
                message.usage.output_tokens,
                int(priced),
            )
            insert = StoreInsert(table="spend", columns=_COLUMNS, rows=(row,))
            self._write(insert)

    def _write(self, insert: StoreInsert) -> None:
        """Send a row to the Store from a task of the loop's, not an ask of this actor's.

        An actor's asks are answered ``actor_crashed`` when it crashes, and the Store
        drops a write whose asker is gone: the reservation rows a crashing Budget had
        just sent would be lost, and its successor would not hold them again.
        """
        store = self.store
        assert store is not None
        task = asyncio.get_running_loop().create_task(_insert(store, insert, self.log))
        _WRITES.add(task)
        task.add_done_callback(_WRITES.discard)

    def _report(self, message: SpendQuery) -> SpendReport:
        now = self.clock()
        self.ledger.open_standing(now)  # a budget with nothing spent yet is listed at $0
        budgets = tuple(status(a, now) for a in self.ledger.current(now))
        return SpendReport(
            budgets=budgets,
            since=self._started_at if message.since is None else message.since,
            total_usd=self._total,
            calls=self._calls,
            by_model=dict(self._by_model),
            unpriced_calls=self._unpriced,
        )


def _without_run(scope: SpendScope) -> SpendScope:
    """``scope`` without its run (whose accounts are not read yet)."""
    return SpendScope(reactor=scope.reactor, agent=scope.agent)


def status(account: Any, now: float) -> BudgetStatus:
    """An account as a :class:`BudgetStatus` (with its forecast)."""
    return BudgetStatus(
        scope=account.scope,
        name=account.name,
        limit_usd=account.limit_usd,
        spent_usd=account.spent_usd,
        reserved_usd=account.reserved_usd,
        calls=account.calls,
        period=account.period,
        window_start=account.start,
        window_end=None if account.end == float("inf") else account.end,
        rate_usd_per_hour=account.rate_per_hour(now),
        runs_out_at=account.runs_out_at(now),
    )


def spend_report(
    rows: list[tuple[SqlValue, ...]],
    settings: BudgetsConfig,
    *,
    now: float | None = None,
    since: float | None = None,
) -> SpendReport:
    """A :class:`SpendReport` from ``spend`` rows (what ``reactor spend`` shows, offline).

    ``rows`` are ``(at, run_id, reactor, agent, host, model, cost_usd, priced)``.
    """
    now = time.time() if now is None else now
    since = now - _DAY if since is None else since
    ledger = Ledger(limits=tuple(settings.limits))
    total = 0.0
    calls = 0
    unpriced = 0
    by_model: dict[str, float] = {}
    for at, run_id, reactor, agent, host, model, cost, priced in rows:
        when, spent = float(at or 0), float(cost or 0)
        scope = SpendScope(run_id=str(run_id), reactor=str(reactor), agent=str(agent))
        ledger.load(scope, when, spent, now)
        if when >= since:
            total += spent
            calls += 1
            unpriced += not priced
            key = f"{host}/{model}" if host else str(model)
            by_model[key] = by_model.get(key, 0.0) + spent
    ledger.open_standing(now)  # a budget with nothing spent yet is listed at $0
    budgets = tuple(
        status(a, now) for a in ledger.current(now) if a.scope != "run" or a.spent_usd > 0
    )
    return SpendReport(
        budgets=budgets,
        since=since,
        total_usd=total,
        calls=calls,
        by_model=by_model,
        unpriced_calls=unpriced,
    )


SPEND_ROWS_SQL = (
    "SELECT at, run_id, reactor, agent, host, model, cost_usd, priced FROM spend WHERE at >= ?"
)
"""The query whose rows :func:`spend_report` reads."""


_WRITES: set[asyncio.Task[None]] = set()
"""Rows on their way to the Store (kept referenced until written)."""


async def _insert(store: Ref[Any], insert: StoreInsert, log: Any) -> None:
    try:
        answer = await store.ask_async(insert, timeout=30.0)
    except AskError as exc:
        log.warning("budget: recording failed", table=insert.table, error=exc.failure.message)
        return
    if isinstance(answer, Failure):
        log.warning("budget: recording failed", table=insert.table, error=answer.message)
