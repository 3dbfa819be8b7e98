"""Orchestration actors above the model hosts: selection, budgets, fallback chains.

Each concern is a subpackage whose policies are pure functions, tested alone, and whose
actor owns the state and the I/O. This facade is what the DSL's executors and users
import:

* :mod:`actors.orchestration.selection`: the :class:`Selector` (choose a model per
  request under a :class:`Policy`, learn per task type, explain each
  :class:`Decision`), :func:`analyse` (task features), :class:`History`;
* :mod:`actors.orchestration.budget`: the :class:`Budget` (spending limits reserved
  before each call, settled after, persisted), :func:`budgeted_chat`;
* :mod:`actors.orchestration.fallback`: the :class:`FallbackChain` (an ordered
  :class:`Chain` of models that knows which failures to fall through);
* :mod:`actors.orchestration.consensus`: the :class:`Consensus` coordinator (several
  members, a :class:`Quorum`, output-typed aggregation, statistical confidence).
* :mod:`actors.orchestration.strategies`: several models on one task (concurrent,
  chain, consensus, hierarchical, semantic, ...), chosen from the task's features and
  what fits in GPU memory (``choose_strategy``, ``run_strategy``, ``orchestrate``).
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
from actors.orchestration.consensus import (
    Consensus,
    ConsensusRequest,
    ConsensusResult,
    ConsensusSpec,
    LowConsensus,
    Member,
    MemberAnswer,
    Quorum,
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
from actors.orchestration.selection import (
    BUILT_IN_POLICIES,
    HISTORY_STREAM,
    Choice,
    Classifier,
    Considered,
    Decision,
    Feedback,
    History,
    HistoryLoaded,
    HistoryQuery,
    HistoryReport,
    HistorySaved,
    ModelClassifier,
    ModelSummary,
    Observed,
    Policy,
    SaveHistory,
    Scorer,
    SelectChat,
    SelectModel,
    Selector,
    TaskFeatures,
    UserChoice,
    analyse,
    decide,
    policies_from_config,
    read_history,
)

__all__ = [
    "BUILT_IN_POLICIES",
    "HISTORY_STREAM",
    "Budget",
    "BudgetStatus",
    "Chain",
    "Chains",
    "Choice",
    "Classifier",
    "Consensus",
    "ConsensusRequest",
    "ConsensusResult",
    "ConsensusSpec",
    "Considered",
    "Decision",
    "FallbackAttempt",
    "FallbackChain",
    "FallbackRequest",
    "FallbackResult",
    "Feedback",
    "History",
    "HistoryLoaded",
    "HistoryQuery",
    "HistoryReport",
    "HistorySaved",
    "Link",
    "LowConsensus",
    "Member",
    "MemberAnswer",
    "ModelClassifier",
    "ModelSummary",
    "Observed",
    "Policy",
    "Quorum",
    "SaveHistory",
    "Scorer",
    "SelectChat",
    "SelectModel",
    "Selector",
    "SpendQuery",
    "SpendReport",
    "SpendScope",
    "TaskFeatures",
    "UserChoice",
    "analyse",
    "budgeted_chat",
    "decide",
    "estimate_prompt_tokens",
    "link",
    "policies_from_config",
    "read_history",
]
