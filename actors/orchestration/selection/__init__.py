"""Adaptive model selection: task features, performance history, policies, the Selector.

* :func:`analyse` describes a request in microseconds (:class:`TaskFeatures`);
  :func:`task_type_of` gives only its category;
* :class:`History` keeps each model's record per task type, discounted and faded;
* :func:`decide` applies a :class:`Policy` (constraints, then discounted Thompson
  sampling over quality with cost and latency weights) and explains itself
  (:class:`Decision`);
* the :class:`Selector` actor routes :class:`SelectChat` requests and learns from
  their outcomes, :class:`Feedback` and :class:`Observed` calls.
"""

from actors.orchestration.selection._classifier import CLASSIFIER_PROMPT, ModelClassifier
from actors.orchestration.selection._features import (
    LONG_CONTEXT_TOKENS,
    TASK_TYPES,
    TaskFeatures,
    analyse,
    estimate_tokens,
    task_type_of,
)
from actors.orchestration.selection._history import Cell, History, HistorySnapshot, ModelSummary
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
    Considered,
    Decision,
    Policy,
    PolicyKind,
    UserChoice,
    decide,
    prior,
    worst_cost,
)
from actors.orchestration.selection._selector import (
    BLAMED,
    BUILT_IN_POLICIES,
    HISTORY_SLOTS,
    HISTORY_STREAM,
    Classifier,
    Scorer,
    Selector,
    SelectorMessage,
    policies_from_config,
    read_history,
)

__all__ = [
    "BLAMED",
    "BUILT_IN_POLICIES",
    "CLASSIFIER_PROMPT",
    "HISTORY_SLOTS",
    "HISTORY_STREAM",
    "LONG_CONTEXT_TOKENS",
    "TASK_TYPES",
    "BudgetCeiling",
    "Cell",
    "Choice",
    "Classifier",
    "Considered",
    "Decision",
    "Feedback",
    "History",
    "HistoryLoaded",
    "HistoryQuery",
    "HistoryReport",
    "HistorySaved",
    "HistorySnapshot",
    "ModelClassifier",
    "ModelSummary",
    "Observed",
    "Policy",
    "PolicyKind",
    "SaveHistory",
    "Scorer",
    "SelectChat",
    "SelectModel",
    "Selector",
    "SelectorMessage",
    "TaskFeatures",
    "UserChoice",
    "analyse",
    "decide",
    "estimate_tokens",
    "policies_from_config",
    "prior",
    "read_history",
    "task_type_of",
    "worst_cost",
]
