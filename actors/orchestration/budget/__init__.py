"""Budgets: spending limits checked before each model call, and spend that is kept.

The :class:`Budget` actor reserves a call's worst case at admission (prompt tokens *
input price + ``max_tokens`` * output price, or the deadline * the GPU-second price),
settles it to the real cost afterwards and releases it on failure, so concurrent calls
never overspend. A call that does not fit fails ``budget_exceeded`` before any request
is sent. :func:`budgeted_chat` is one call made that way. Spend is kept in the Store's
``spend`` table (``reactor spend``), with a forecast of when each budget runs out.
"""

from actors.orchestration.budget._actor import (
    CALIBRATION_MARGIN,
    SPEND_ROWS_SQL,
    Budget,
    BudgetMessage,
    prices_from,
    spend_report,
)
from actors.orchestration.budget._gate import (
    budget_failure,
    budgeted_chat,
    estimate_prompt_tokens,
    failed_usage,
    settle_failure,
    tell_budget,
)
from actors.orchestration.budget._ledger import Ledger, SpendScope, window_of
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

__all__ = [
    "CALIBRATION_MARGIN",
    "SPEND_ROWS_SQL",
    "Budget",
    "BudgetMessage",
    "BudgetStatus",
    "Ledger",
    "Quote",
    "QuoteRequest",
    "Release",
    "Reservation",
    "Reserve",
    "Settle",
    "SpendQuery",
    "SpendReport",
    "SpendScope",
    "budget_failure",
    "budgeted_chat",
    "estimate_prompt_tokens",
    "failed_usage",
    "prices_from",
    "settle_failure",
    "spend_report",
    "tell_budget",
    "window_of",
]
