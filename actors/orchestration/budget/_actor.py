"""The Budget actor: admits model calls against spending limits, and records what they cost.

One Budget serves the whole engine (runs, fallback chains, agents). Because an actor
handles one message at a time, a reservation is checked and taken in one step: no two
concurrent calls can both see the same headroom (see :mod:`._ledger`). It runs on the
I/O loop (a :class:`~actors.LoopActor`), where the calls it admits are made, so
admission costs no thread hop.

Spend is persisted: each settled call is a row of the Store's ``spend`` table (written
in the Store's next group commit), and at start the rows of the current windows are
read back, so a restart does not reset a daily limit. Until they are, reservations
wait.

Prices come from the configuration (``[prices]`` and each host's ``prices``: per
million tokens, or per GPU-second for a local model). A model without a price under a
limit is refused (``budgets.unpriced = "refuse"``, the default) or counted at $0 and
flagged (``"free"``): never a silent $0.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any, assert_never

from actors import ChildSpec, Failure, LoopActor, Ref, Restart
from actors.llm import BudgetsConfig, Config, PriceConfig
from actors.orchestration.budget._gate import budget_failure
from actors.orchestration.budget._ledger import Ledger, SpendScope
from actors.orchestration.budget._messages import (
    BudgetStatus,
    Release,
    Reservation,
    Reserve,
    Settle,
    SpendQuery,
    SpendReport,
)
from actors.store import SqlValue, StoreInsert, StoreInserted, StoreQuery, StoreRows

__all__ = ["SPEND_ROWS_SQL", "Budget", "BudgetMessage", "prices_from", "spend_report", "status"]

BudgetMessage = Reserve | Settle | Release | SpendQuery
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
_RUN_LOOKBACK_S = 7 * 86400.0
"""How far back per-run spend is read at start (a run resumed later than that starts at 0)."""
_DAY = 86400.0


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
        self._loaded = store is None
        self._early: list[tuple[Reserve, Any]] = []
        self._started_at = clock()
        self._total = 0.0
        self._calls = 0
        self._unpriced = 0
        self._by_model: dict[str, float] = {}
        self._meta: dict[str, tuple[SpendScope, str, str, bool]] = {}

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
        """Read back persisted spend (reservations wait until it is counted)."""
        if self.store is None or not self.ledger.active:
            self._loaded = True
            return
        now = self.clock()
        since = min(self.ledger.earliest_start(now), now - _RUN_LOOKBACK_S)
        query = StoreQuery(
            sql="SELECT at, run_id, reactor, agent, cost_usd FROM spend WHERE at >= ?",
            params=(since,),
        )
        self.ask(self.store, query, self._loaded_rows, timeout=30.0)

    def _loaded_rows(self, answer: StoreRows | Failure) -> None:
        if isinstance(answer, Failure):
            self.log.warning("budget: reading back spend failed", error=answer.message)
        else:
            now = self.clock()
            for at, run_id, reactor, agent, cost in answer.rows:
                scope = SpendScope(run_id=str(run_id), reactor=str(reactor), agent=str(agent))
                self.ledger.load(scope, float(at or 0), float(cost or 0), now)
        self._loaded = True
        early, self._early = self._early, []
        for message, reply in early:
            reply.send(self._reserve(message))

    # ---- messages --------------------------------------------------------------------

    def receive(self, message: BudgetMessage) -> object:
        """Reserve (answered at once), settle and release (one-way), report."""
        match message:
            case Reserve():
                if not self._loaded:
                    self._early.append((message, self.defer_reply()))
                    return None
                return self._reserve(message)
            case Settle():
                self._settle(message)
                return None
            case Release():
                self.ledger.release(message.id)
                self._meta.pop(message.id, None)
                return None
            case SpendQuery():
                return self._report(message)
            case _:
                assert_never(message)

    def _price(self, host: str, model: str) -> PriceConfig | None:
        return self.prices.get(f"{host}/{model}") or self.prices.get(model)

    def _reserve(self, message: Reserve) -> Reservation | Failure:
        now = self.clock()
        scope = SpendScope(run_id=message.run_id, reactor=message.reactor, agent=message.agent)
        max_tokens = message.max_tokens or self.settings.reserve_max_tokens
        price = self._price(message.host, message.model)
        where = f"{message.host}/{message.model}" if message.host else message.model
        priced = price is not None
        amount = 0.0
        if price is not None:
            seconds = message.seconds or self.settings.reserve_seconds
            amount = price.worst_case(message.prompt_tokens, max_tokens, seconds)
        elif self.settings.unpriced == "refuse" and self.ledger.accounts_for(scope, now):
            return budget_failure(
                f"model {where!r} has no price, and a budget applies to this call: give it "
                "one in [prices] (per token, or per_gpu_second for a local model; 0 is a "
                "price) or set budgets.unpriced = 'free'",
                self.name,
                reason="unpriced",
                model=where,
            )
        rid = f"r{next(self._ids)}"
        refusal = self.ledger.admit(rid, scope, amount, now)
        if refusal is not None:
            return budget_failure(
                f"{where}: {refusal.message()}",
                self.name,
                reason="limit",
                account=refusal.account.key,
                model=where,
            )
        self._meta[rid] = (scope, message.host, message.model, priced)
        held = self.ledger.held[rid]
        return Reservation(
            id=rid, amount_usd=amount, max_tokens=max_tokens, priced=priced, accounts=held.keys
        )

    def _settle(self, message: Settle) -> None:
        meta = self._meta.pop(message.id, None)
        if meta is None:
            return
        scope, host, model, priced = meta
        cost = message.cost_usd
        if cost is None:
            price = self._price(host, model)
            cost = 0.0 if price is None else price.cost(message.usage, message.seconds)
        now = self.clock()
        reserved = self.ledger.settle(message.id, cost, now)
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
            self.ask(self.store, insert, self._recorded, timeout=30.0)

    def _recorded(self, answer: StoreInserted | Failure) -> None:
        if isinstance(answer, Failure):
            self.log.warning("budget: recording spend failed", error=answer.message)

    def _report(self, message: SpendQuery) -> SpendReport:
        now = self.clock()
        budgets = tuple(status(a, now) for a in self.ledger.current(now))
        return SpendReport(
            budgets=budgets,
            since=self._started_at if message.since is None else message.since,
            total_usd=self._total,
            calls=self._calls,
            by_model=dict(self._by_model),
            unpriced_calls=self._unpriced,
        )


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
