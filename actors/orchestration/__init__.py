"""Orchestration actors above the model hosts: selection (and fallback, consensus, ...).

Each concern is a subpackage (``selection/``, ``fallback/``, ...) whose policies are pure
functions, tested alone, and whose actor owns the state and the I/O. This facade is what
the DSL's executors and users import:

* :mod:`actors.orchestration.selection`: the :class:`Selector` (choose a model per
  request under a :class:`Policy`, learn per task type, explain each
  :class:`Decision`), :func:`analyse` (task features), :class:`History`.
"""

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
    "ModelClassifier",
    "ModelSummary",
    "Observed",
    "Policy",
    "SaveHistory",
    "Scorer",
    "SelectChat",
    "SelectModel",
    "Selector",
    "TaskFeatures",
    "UserChoice",
    "analyse",
    "decide",
    "policies_from_config",
    "read_history",
]
