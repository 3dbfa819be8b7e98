"""Orchestration above the model hosts: budgets, fallback chains (and selection, consensus).

Each concern is a subpackage whose policy is pure (tested alone) and whose actor owns
the state and the I/O: :mod:`actors.orchestration.budget` (spending limits reserved
before each call) and :mod:`actors.orchestration.fallback` (ordered chains of models
that know which failures to fall through). The names users need are gathered here.
"""

from actors.orchestration.budget import (
    Budget,
    BudgetStatus,
    SpendQuery,
    SpendReport,
    SpendScope,
    budgeted_chat,
    estimate_prompt_tokens,
)
from actors.orchestration.fallback import (
    Chain,
    Chains,
    FallbackAttempt,
    FallbackChain,
    FallbackRequest,
    FallbackResult,
    Link,
    link,
)

__all__ = [
    "Budget",
    "BudgetStatus",
    "Chain",
    "Chains",
    "FallbackAttempt",
    "FallbackChain",
    "FallbackRequest",
    "FallbackResult",
    "Link",
    "SpendQuery",
    "SpendReport",
    "SpendScope",
    "budgeted_chat",
    "estimate_prompt_tokens",
    "link",
]
