"""The Budget actor's protocol: reserve before a call, settle or release after, ask for spend.

A caller reserves with :class:`Reserve` (answered :class:`Reservation`, or a
``budget_exceeded`` :class:`~actors.Failure` before any request is sent), sends the
model request with ``max_tokens`` set to :attr:`Reservation.max_tokens`, then tells
:class:`Settle` with the completion's usage or :class:`Release` when it failed.
:class:`SpendQuery` answers a :class:`SpendReport`: every current account with its
forecast, and totals by model.
"""

from __future__ import annotations

import msgspec

from actors import Message, Request
from actors.llm import Usage

__all__ = [
    "BudgetStatus",
    "Release",
    "Reservation",
    "Reserve",
    "Settle",
    "SpendQuery",
    "SpendReport",
]


class Reservation(Message, frozen=True, kw_only=True):
    """The answer to :class:`Reserve`: the worst case is held in every account that applies.

    Attributes:
        id: Names the reservation for :class:`Settle` and :class:`Release`.
        amount_usd: What is held: the call's worst-case cost.
        max_tokens: The output limit the worst case assumed: send it as the request's
            ``max_tokens`` so that the call cannot cost more.
        priced: ``False`` when the model has no price and ``unpriced = "free"`` let it in.
        accounts: The accounts it is held in.
    """

    id: str
    amount_usd: float
    max_tokens: int
    priced: bool = True
    accounts: tuple[str, ...] = ()


class Reserve(Request[Reservation], frozen=True, kw_only=True):
    """Hold a call's worst case: ``prompt_tokens`` * input price + ``max_tokens`` * output price.

    Attributes:
        host: The model host the call goes to (prices may be per host).
        model: The model.
        prompt_tokens: The prompt's size, estimated generously.
        max_tokens: The request's output limit (``None``: the configured reserve).
        seconds: The longest the call may take (for prices per GPU-second).
        run_id: The top-level run it is for.
        reactor: The reactor.
        agent: The agent, when one makes the call.
    """

    host: str = ""
    model: str
    prompt_tokens: int
    max_tokens: int | None = None
    seconds: float | None = None
    run_id: str = ""
    reactor: str = ""
    agent: str = ""


class Settle(Message, frozen=True, kw_only=True):
    """The call answered: replace its reservation by the real cost (one-way).

    Attributes:
        id: The reservation.
        usage: Tokens in and out, as the server counted them.
        seconds: The call's wall time.
        cost_usd: The host's cost for it, when it priced the call; else the Budget
            prices ``usage`` itself.
    """

    id: str
    usage: Usage = Usage()
    seconds: float = 0.0
    cost_usd: float | None = None


class Release(Message, frozen=True, kw_only=True):
    """The call failed or was never sent: give its reservation back (one-way)."""

    id: str
    reason: str = ""


class BudgetStatus(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One account now: its limit, spend, reservations and forecast.

    Attributes:
        scope: ``global``, ``run``, ``reactor`` or ``agent``.
        name: The run id, reactor or agent ("" for global).
        limit_usd: The cap.
        spent_usd: Settled spend in the window.
        reserved_usd: Held by calls in flight.
        calls: Settled calls in the window.
        period: The window's length (``None``: for ever).
        window_start: When the window began (Unix time; 0 for ever).
        window_end: When it ends (``None``: never).
        rate_usd_per_hour: The spend rate so far.
        runs_out_at: When the rest is spent at that rate (``None``: not in this window).
    """

    scope: str
    name: str = ""
    limit_usd: float
    spent_usd: float
    reserved_usd: float = 0.0
    calls: int = 0
    period: str | None = None
    window_start: float = 0.0
    window_end: float | None = None
    rate_usd_per_hour: float | None = None
    runs_out_at: float | None = None


class SpendReport(Message, frozen=True, kw_only=True):
    """What has been spent: every current account, and totals since ``since``.

    Attributes:
        budgets: The accounts whose window holds now.
        since: Where the totals start (Unix time).
        total_usd: Everything spent since then.
        calls: Settled calls since then.
        by_model: Spend per ``host/model``.
        unpriced_calls: Calls counted at $0 because their model has no price.
    """

    budgets: tuple[BudgetStatus, ...] = ()
    since: float = 0.0
    total_usd: float = 0.0
    calls: int = 0
    by_model: dict[str, float] = msgspec.field(default_factory=dict)
    unpriced_calls: int = 0


class SpendQuery(Request[SpendReport], frozen=True, kw_only=True):
    """Ask for the :class:`SpendReport` (totals since ``since``; default: the last day)."""

    since: float | None = None
