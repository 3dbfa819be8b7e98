"""What the Selector is asked and told (tagged messages, one family).

* :class:`SelectChat`: choose a model for a chat request and ask it; answered with the
  :class:`~actors.llm.Completion`, whose ``extras["selection"]`` is the decision.
* :class:`SelectModel`: only choose (no call); answered with a :class:`Choice`.
* :class:`Feedback`: a quality score for an answer the Selector routed.
* :class:`Observed`: the outcome of a call someone else made (a fallback chain's link).
* :class:`HistoryQuery`: the performance history, per model (:class:`HistoryReport`).
* :class:`SaveHistory`: write the history to the store now (:class:`HistorySaved`).
* :class:`HistoryLoaded` (an event): the persisted history was read at start.
"""

from __future__ import annotations

import msgspec

from actors import Event, Message, Request
from actors.llm import ChatRequest, Completion, TaskType
from actors.orchestration.selection._history import ModelSummary
from actors.orchestration.selection._policy import Decision

__all__ = [
    "Choice",
    "Feedback",
    "HistoryLoaded",
    "HistoryQuery",
    "HistoryReport",
    "HistorySaved",
    "Observed",
    "SaveHistory",
    "SelectChat",
    "SelectModel",
]


class SelectChat(Request[Completion], frozen=True, kw_only=True):
    """Choose a model for ``request`` under a policy, and ask it.

    Attributes:
        request: The chat request; its ``model`` is ignored (the selector sets it).
        policy: The policy's name (default: the selector's default policy).
        task_type: The task type, when known (else the request's text decides).
        candidates: Models to choose among (names, ``host/model``, aliases); empty:
            the policy's, else every chat model in the catalog.
        needs: Capabilities the model must have beyond what the request implies
            (``json``, ``vision``, ...).
        max_cost_usd: The most the request may cost: models whose worst case is more
            are rejected (a budget's remainder: the cheaper models stay candidates).
        run_id: The run asking, so that feedback can name the answer (and the top-level
            run, the part before any ``/``, is what a per-run budget charges).
        step: The step asking.
        reactor: The reactor asking (its budget, when one applies).
        agent: The agent asking (its budget, when one applies).
        exact_tokens: Under a budget, have the chosen model's server count the prompt
            for the reservation (where its host has a count route); ``None``: as the
            Budget is configured (``[budgets] prompt_tokens``).
    """

    request: ChatRequest
    policy: str | None = None
    task_type: TaskType | None = None
    candidates: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    max_cost_usd: float | None = None
    run_id: str = ""
    step: str = ""
    reactor: str = ""
    agent: str = ""
    exact_tokens: bool | None = None


class Choice(Message, frozen=True, kw_only=True):
    """The answer to :class:`SelectModel`: the decision (``decision.host`` "" if none)."""

    decision: Decision


class SelectModel(Request[Choice], frozen=True, kw_only=True):
    """Only choose a model (for another router, or to show what would be chosen).

    Attributes are those of :class:`SelectChat`, with the request's messages as
    ``request``; ``max_tokens`` of the request counts against context windows. Under a
    budget (a Selector with a Budget), the choice is made within what the accounts of
    ``run_id``, ``reactor`` and ``agent`` (and the global ones) have left, as for
    :class:`SelectChat`, but nothing is reserved: the call the caller then makes is
    admitted on its own.
    """

    request: ChatRequest
    policy: str | None = None
    task_type: TaskType | None = None
    candidates: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    max_cost_usd: float | None = None
    run_id: str = ""
    reactor: str = ""
    agent: str = ""


class Feedback(Message, frozen=True, kw_only=True):
    """A quality score, 0 to 1, for an answer of ``model`` to a ``task_type`` request.

    Attributes:
        model: The model that answered, qualified (``host/model``).
        task_type: The request's task type, as the decision recorded it.
        score: The quality, 0 (useless) to 1 (perfect).
        counted: The reward already counted for that answer when it came back (the
            decision's ``reward``), which this score replaces.
    """

    model: str
    task_type: str
    score: float
    counted: float | None = None


class Observed(Message, frozen=True, kw_only=True):
    """The outcome of a call the Selector did not make itself, to learn from it.

    Attributes:
        model: The model, qualified.
        task_type: The request's task type.
        ok: Whether it answered.
        kind: The failure kind, when it did not.
        latency_s: Its latency.
        cost_usd: Its cost.
        quality: Its quality, when known.
    """

    model: str
    task_type: str
    ok: bool
    kind: str | None = None
    latency_s: float | None = None
    cost_usd: float | None = None
    quality: float | None = None


class HistoryReport(Message, frozen=True, kw_only=True):
    """Every model's performance history (decayed), by qualified name."""

    models: dict[str, ModelSummary] = msgspec.field(default_factory=dict)


class HistoryQuery(Request[HistoryReport], frozen=True, kw_only=True):
    """Ask the Selector for its performance history."""


class HistorySaved(Message, frozen=True, kw_only=True):
    """The history was written: ``cells`` records (0 with no store, or nothing to write)."""

    cells: int = 0


class SaveHistory(Request[HistorySaved], frozen=True, kw_only=True):
    """Write the history to the store now (it is also written periodically and at stop)."""


class HistoryLoaded(Event, frozen=True, kw_only=True):
    """Published once a Selector has read its persisted history (``cells`` 0: there was none).

    Attributes:
        selector: The Selector's actor name.
        cells: How many (model, task type) records were loaded.
        age_s: How old the snapshot was.
    """

    selector: str
    cells: int = 0
    age_s: float = 0.0
