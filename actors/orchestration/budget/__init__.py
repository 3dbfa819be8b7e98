"""Budgets: spending limits checked before each model call, and spend that is kept.

The :class:`Budget` actor reserves a call's worst case at admission (prompt tokens *
input price + ``max_tokens`` * output price, or the deadline * the GPU-second price),
settles it to the real cost afterwards and releases it on failure, so concurrent calls
never overspend. A call that does not fit fails ``budget_exceeded`` before any request
is sent. :func:`budgeted_chat` is one call made that way. Spend is kept in the Store's
``spend`` table (``reactor spend``), with a forecast of when each budget runs out.
"""

from actors.orchestration.budget._actor import (
    SPEND_ROWS_SQL,
    Budget,
    BudgetMessage,
    prices_from,
    spend_report,
)
from actors.orchestration.budget._gate import budgeted_chat, estimate_prompt_tokens
from actors.orchestration.budget._ledger import Ledger, SpendScope, window_of
from actors.orchestration.budget._messages import (
    BudgetStatus,
    Release,
    Reservation,
    Reserve,
    Settle,
    SpendQuery,
    SpendReport,
)

__all__ = [
    "SPEND_ROWS_SQL",
    "Budget",
    "BudgetMessage",
    "BudgetStatus",
    "Ledger",
    "Release",
    "Reservation",
    "Reserve",
    "Settle",
    "SpendQuery",
    "SpendReport",
    "SpendScope",
    "budgeted_chat",
    "estimate_prompt_tokens",
    "prices_from",
    "spend_report",
    "window_of",
]
