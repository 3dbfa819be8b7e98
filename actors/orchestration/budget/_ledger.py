"""The budget ledger: pure accounting of limits, reservations and spend (no I/O, no actor).

Why a reservation at admission: a check of "spent so far" followed later by an
increment lets every request that arrives before the first one settles see the same
headroom, so eight concurrent calls against room for five are all admitted (LiteLLM's
proxy race). Here admission *reserves* the call's worst case in every account that
applies to it, atomically (the :class:`~actors.orchestration.Budget` actor handles one
message at a time), and later calls see the reservation. Settling replaces the
reservation by the real cost; a failed call releases it. So the sum of what is spent
and reserved never passes a limit, whatever the concurrency.

An account is one limit applied to one scope in one window: ``global@<start>``,
``run:<id>``, ``reactor:<name>@<start>``, ``agent:<name>@<start>``. Windows are aligned
to UTC (days at midnight, weeks on Monday, ``mo`` on the first of the month); a limit
without a period has one window, for ever.

The forecast is deliberately simple: the spend rate over the window so far (or since
the first spend, for an account without a period), and the time at which what is left
would be used up at that rate.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from actors.llm import BudgetLimitConfig, parse_period

__all__ = ["Account", "Ledger", "Refusal", "SpendScope", "window_of"]

_EPSILON = 1e-12
_MONDAY_OFFSET = 4 * 86400.0  # 1970-01-01 was a Thursday; the first Monday is the 5th


@dataclass(frozen=True, slots=True)
class SpendScope:
    """Who a model call is for: the run (top-level), its reactor, and the agent if any."""

    run_id: str = ""
    reactor: str = ""
    agent: str = ""


def window_of(period: str | None, now: float) -> tuple[float, float]:
    """The UTC-aligned window ``[start, end)`` of ``period`` that holds ``now``."""
    if period is None:
        return 0.0, math.inf
    length, unit = parse_period(period)
    if unit == "mo":
        moment = time.gmtime(now)
        months = moment.tm_year * 12 + moment.tm_mon - 1
        first = months - months % int(length)
        last = first + int(length)
        begin = calendar.timegm((first // 12, first % 12 + 1, 1, 0, 0, 0))
        return float(begin), float(calendar.timegm((last // 12, last % 12 + 1, 1, 0, 0, 0)))
    offset = _MONDAY_OFFSET if unit == "w" else 0.0
    start = float(math.floor((now - offset) / length)) * length + offset
    return start, start + length


@dataclass(slots=True)
class Account:
    """One limit in one scope and window: what it allows, has spent and holds reserved."""

    key: str
    scope: str
    name: str
    limit_usd: float
    period: str | None
    start: float
    end: float
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    calls: int = 0
    first_spend_at: float | None = None

    @property
    def left_usd(self) -> float:
        """What may still be reserved."""
        return self.limit_usd - self.spent_usd - self.reserved_usd

    def rate_per_hour(self, now: float) -> float | None:
        """Dollars per hour spent so far in this window (``None`` before any spend)."""
        since = self.start if self.period is not None else self.first_spend_at
        if since is None or self.spent_usd <= 0:
            return None
        elapsed = max(now - since, 1.0)
        return self.spent_usd / elapsed * 3600.0

    def runs_out_at(self, now: float) -> float | None:
        """When the rest would be spent at the current rate.

        ``None`` before any spend, or when it would not run out before the window ends.
        """
        rate = self.rate_per_hour(now)
        if rate is None or rate <= 0:
            return None
        at = now + max(self.limit_usd - self.spent_usd, 0.0) / rate * 3600.0
        return at if at < self.end else None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call was not admitted: the first account it would overdraw."""

    account: Account
    amount_usd: float

    def message(self) -> str:
        """A sentence naming the limit, what is spent and reserved, and the call's worst case."""
        a = self.account
        window = f" per {a.period}" if a.period else ""
        return (
            f"{a.scope} budget {a.name or ''}{' ' if a.name else ''}of ${a.limit_usd:.6g}{window} "
            f"would be exceeded: ${a.spent_usd:.6g} spent, ${a.reserved_usd:.6g} reserved by calls "
            f"in flight, this call may cost up to ${self.amount_usd:.6g}"
        )


@dataclass(slots=True)
class _Held:
    amount: float
    keys: tuple[str, ...]


@dataclass(slots=True)
class Ledger:
    """Limits, accounts and reservations; every method is a pure state change."""

    limits: tuple[BudgetLimitConfig, ...] = ()
    accounts: dict[str, Account] = field(default_factory=dict)
    held: dict[str, _Held] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Whether any limit applies at all (without one, nothing is refused)."""
        return bool(self.limits)

    def accounts_for(self, scope: SpendScope, now: float) -> list[Account]:
        """The accounts a call in ``scope`` at ``now`` counts against (created as needed)."""
        found: list[Account] = []
        for limit in self.limits:
            name = self._name(limit, scope)
            if name is not None:
                found.append(self._account(limit, name, now))
        return found

    def open_standing(self, now: float) -> None:
        """Open the accounts that exist before anything is spent, so reports list them at $0.

        Those are every global limit's and each limit on a named reactor or agent; a
        per-run limit, or one on every reactor or agent, has an account per caller only.
        """
        for limit in self.limits:
            if limit.scope == "global":
                self._account(limit, "", now)
            elif limit.scope in ("reactor", "agent") and limit.name:
                self._account(limit, limit.name, now)

    def _account(self, limit: BudgetLimitConfig, name: str, now: float) -> Account:
        """The account of ``limit`` for ``name`` in the window holding ``now`` (made if new)."""
        start, end = window_of(limit.period, now)
        key = f"{limit.scope}:{name}@{start:.0f}" if limit.period else f"{limit.scope}:{name}"
        key = f"{key}/{limit.usd:g}"  # two limits on one scope are two accounts
        account = self.accounts.get(key)
        if account is None:
            account = Account(key, limit.scope, name, limit.usd, limit.period, start, end)
            self.accounts[key] = account
        return account

    @staticmethod
    def _name(limit: BudgetLimitConfig, scope: SpendScope) -> str | None:
        """The account's name for this scope, or ``None`` when the limit does not apply."""
        match limit.scope:
            case "global":
                return ""
            case "run":
                return scope.run_id or None
            case "reactor":
                value = scope.reactor
            case "agent":
                value = scope.agent
        if not value or (limit.name is not None and limit.name != value):
            return None
        return value

    def admit(self, rid: str, scope: SpendScope, amount: float, now: float) -> Refusal | None:
        """Reserve ``amount`` in every account of ``scope``, or in none (a refusal)."""
        accounts = self.accounts_for(scope, now)
        for account in accounts:
            if account.left_usd + _EPSILON < amount:
                return Refusal(account, amount)
        for account in accounts:
            account.reserved_usd += amount
        self.held[rid] = _Held(amount, tuple(a.key for a in accounts))
        return None

    def hold(self, rid: str, scope: SpendScope, amount: float, now: float) -> None:
        """Hold ``amount`` without checking the limits (a reservation restored at start)."""
        accounts = self.accounts_for(scope, now)
        for account in accounts:
            account.reserved_usd += amount
        self.held[rid] = _Held(amount, tuple(a.key for a in accounts))

    def headroom(self, scope: SpendScope, now: float) -> Account | None:
        """The account of ``scope`` with the least left (``None`` when no limit applies)."""
        return min(self.accounts_for(scope, now), key=lambda a: a.left_usd, default=None)

    def charge(self, scope: SpendScope, cost: float, now: float) -> None:
        """Count ``cost`` spent in ``scope`` with nothing reserved for it (a lost reservation)."""
        for account in self.accounts_for(scope, now):
            account.spent_usd += cost
            account.calls += 1
            if account.first_spend_at is None:
                account.first_spend_at = now

    def settle(self, rid: str, cost: float, now: float) -> float:
        """Replace the reservation by the real ``cost``; returns what had been reserved."""
        held = self.held.pop(rid, None)
        if held is None:
            return 0.0
        for key in held.keys:
            account = self.accounts.get(key)
            if account is None:
                continue
            account.reserved_usd = max(0.0, account.reserved_usd - held.amount)
            account.spent_usd += cost
            account.calls += 1
            if account.first_spend_at is None:
                account.first_spend_at = now
        return held.amount

    def release(self, rid: str) -> bool:
        """Give the reservation back (the call failed or was not sent)."""
        held = self.held.pop(rid, None)
        if held is None:
            return False
        for key in held.keys:
            account = self.accounts.get(key)
            if account is not None:
                account.reserved_usd = max(0.0, account.reserved_usd - held.amount)
        return True

    def load(
        self, scope: SpendScope, at: float, cost: float, now: float, *, runs: bool = True
    ) -> None:
        """Count a persisted spend record (read back at start) in the accounts it belongs to.

        ``runs=False`` leaves the per-run accounts out (they are read whole, per run:
        :meth:`load_run`).
        """
        for account in self.accounts_for(scope, now):
            if not runs and account.scope == "run":
                continue
            if account.start <= at < account.end:
                account.spent_usd += cost
                account.calls += 1
                if account.first_spend_at is None or at < account.first_spend_at:
                    account.first_spend_at = at

    def load_run(self, run_id: str, cost: float, calls: int, first_at: float, now: float) -> None:
        """Count a run's whole persisted spend (however old) in its per-run accounts."""
        for account in self.accounts_for(SpendScope(run_id=run_id), now):
            if account.scope != "run":
                continue
            account.spent_usd += cost
            account.calls += calls
            if account.first_spend_at is None or first_at < account.first_spend_at:
                account.first_spend_at = first_at

    @property
    def has_run_limit(self) -> bool:
        """Whether any limit is per run."""
        return any(limit.scope == "run" for limit in self.limits)

    def current(self, now: float) -> Iterable[Account]:
        """The accounts whose window holds ``now``."""
        return (a for a in self.accounts.values() if a.start <= now < a.end)

    def earliest_start(self, now: float) -> float:
        """The oldest window start a limit other than per-run reads back at start.

        0 when such a limit has no period (its one window holds all spend ever).
        """
        starts = [window_of(limit.period, now)[0] for limit in self.limits if limit.scope != "run"]
        return min(starts, default=now)
