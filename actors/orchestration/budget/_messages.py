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
from actors.llm import ChatRequest, Usage

__all__ = [
    "BudgetStatus",
    "Quote",
    "QuoteRequest",
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
        prompt_tokens: The prompt tokens the worst case counted (the caller's estimate,
            or more when the model's tokenizer was seen to count more: see
            :class:`~actors.orchestration.Budget`; or the server's own count).
        prompt_counted: Where the server counted them (its token-count route, e.g.
            ``/v1/messages/count_tokens``); "" for an estimate.
        seconds: For a model priced per GPU-second, the wall time the worst case
            counted: the call must end within it (send it as the request's deadline),
            or it could cost more than is held. ``None`` when time costs nothing.
    """

    id: str
    amount_usd: float
    max_tokens: int
    priced: bool = True
    accounts: tuple[str, ...] = ()
    prompt_tokens: int = 0
    prompt_counted: str = ""
    seconds: float | None = None


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
        request: The request itself, so that the Budget can have the prompt counted
            exactly (``None``: the estimate is all there is).
        exact: Count the prompt with the server's own tokenizer (its host's
            :class:`~actors.llm.CountTokens`) before reserving; ``None``: as the Budget
            is configured (``[budgets] prompt_tokens``). Falls back to the estimate
            where the host has no count route or it does not answer in time.
    """

    host: str = ""
    model: str
    prompt_tokens: int
    max_tokens: int | None = None
    seconds: float | None = None
    run_id: str = ""
    reactor: str = ""
    agent: str = ""
    request: ChatRequest | None = None
    exact: bool | None = None


class Settle(Message, frozen=True, kw_only=True):
    """The call answered (or failed after the server did work): charge it (one-way).

    Attributes:
        id: The reservation.
        usage: Tokens in and out, as the server counted them.
        seconds: The call's wall time.
        cost_usd: The host's cost for it, when it priced the call; else the Budget
            prices ``usage`` itself.
        host: The host the call went to (so that a reservation the Budget no longer
            holds, after a restart, is still charged to the right model).
        model: The model.
        run_id: The run it was for.
        reactor: The reactor.
        agent: The agent.
        failed: The call failed after the server did work (a stream cut after tokens):
            what was reported is charged.

    ``usage`` that is not an estimate (``usage.estimated`` false) is the server's own
    token count: its prompt count calibrates the next reservations of the model.
    """

    id: str
    usage: Usage = Usage()
    seconds: float = 0.0
    cost_usd: float | None = None
    host: str = ""
    model: str = ""
    run_id: str = ""
    reactor: str = ""
    agent: str = ""
    failed: bool = False


class Release(Message, frozen=True, kw_only=True):
    """The call failed or was never sent: give its reservation back (one-way)."""

    id: str
    reason: str = ""


class Quote(Message, frozen=True, kw_only=True):
    """What a call may spend now, and what it would cost on each model (:class:`QuoteRequest`).

    Attributes:
        limited: Whether any limit applies to the call at all.
        left_usd: The least headroom among the accounts that apply (limit - spent -
            reserved); ``None`` when none applies.
        account: The account with that least headroom (``run:<id>``, ``global@...``).
        worst_usd: Per ``host/model`` asked about: its worst case as :class:`Reserve`
            would hold it; ``None`` for a model the Budget would refuse for having no
            price (``unpriced = "refuse"``), or that is free of charge under
            ``unpriced = "free"`` (then it is listed in ``unpriced``).
        unpriced: The models asked about that have no price.
        max_tokens: The output limit the worst cases assumed.
    """

    limited: bool = False
    left_usd: float | None = None
    account: str = ""
    worst_usd: dict[str, float | None] = msgspec.field(default_factory=dict)
    unpriced: tuple[str, ...] = ()
    max_tokens: int = 0


class QuoteRequest(Request[Quote], frozen=True, kw_only=True):
    """Ask what a call in a scope may spend, and its worst case on each of ``models``.

    A quote holds nothing: a :class:`Reserve` is still the check (another call may
    take the headroom between the two). The Selector uses it to keep only models that
    fit what the budget has left.

    Attributes:
        models: ``host/model`` names.
        prompt_tokens: The prompt's estimated size.
        max_tokens: The request's output limit (``None``: the configured reserve).
        seconds: The longest the call may take (prices per GPU-second).
        run_id: The run.
        reactor: The reactor.
        agent: The agent.
    """

    models: tuple[str, ...] = ()
    prompt_tokens: int = 0
    max_tokens: int | None = None
    seconds: float | None = None
    run_id: str = ""
    reactor: str = ""
    agent: str = ""


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
