"""Performance history: how each model has done, per task type, with old data fading.

One :class:`Cell` per (model, task type) holds what selection needs to know: how often the
model answered (and, per failure kind, how often it did not), its latency, time to first
token, tokens per second, cost per call, the quality scores it was given, and the two
counts of its quality posterior (``wins`` and ``losses``, see below).

Two kinds of forgetting, for two purposes:

* **Per observation, for learning** (the bandit's counts). Every time a request of task
  type *t* is scored, the ``wins`` and ``losses`` of *every* model in *t* are multiplied by
  ``discount`` (gamma, 0.995 by default) before the new score is added: a model's record
  then weighs its last ~1/(1-gamma) observations of that type, so a model that got worse
  (or better) is noticed within a few hundred requests. Multiplying every cell on every
  observation would cost O(models); instead each task type has a clock (observations so
  far) and each cell remembers the clock when it was last brought up to date, so the
  factor gamma^(now - then) is applied when the cell is read or written.
* **Over time, for everything** (``half_life_s``, a week by default). When history is
  loaded at start, every count is scaled by 0.5^(age / half-life): a model not used
  for a month comes back with little weight and is explored again.

The history is persisted as :class:`HistorySnapshot` s (one JSON document) in the
store's ``selection_history`` table, a few rows that take turns (see the Selector), and
loaded from the newest at start. A snapshot is about 300 bytes per (model, task type),
7 kB for four models and six task types, written at most every ``persist_s`` (five
minutes by default) and only when something changed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec

__all__ = ["PRUNE_WEIGHT", "Cell", "History", "HistorySnapshot", "ModelSummary"]

_EWMA = 0.2
"""Weight of the newest observation in the running means (latency, cost, ...)."""

PRUNE_WEIGHT = 0.01
"""A record whose observations, faded by age, weigh less is dropped (:meth:`History.prune`)."""


def _ewma(previous: float | None, value: float | None) -> float | None:
    if value is None:
        return previous
    if previous is None:
        return value
    return previous + _EWMA * (value - previous)


class Cell(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One model's record for one task type (mutable: owned by one Selector).

    Attributes:
        model: The model, qualified (``host/model``).
        task_type: The task type.
        calls: Requests that ended (decayed over time).
        successes: Of those, answered.
        failures: Of those, failed, per failure kind.
        latency_s: Running mean latency of answers.
        ttft_s: Running mean time to first token (streamed answers).
        tokens_per_s: Running mean output speed.
        cost_usd: Running mean cost per answered call (``None``: unpriced).
        output_tokens: Running mean output tokens per answer.
        quality_sum: Sum of explicit quality scores (0 to 1).
        quality_n: How many were given.
        wins: Discounted quality mass observed (the posterior's successes beyond its prior).
        losses: Discounted quality mass missing (its failures beyond its prior).
        stamp: The task type's clock when ``wins`` and ``losses`` were last discounted.
        updated_at: When it last changed (Unix time).
    """

    model: str
    task_type: str
    calls: float = 0.0
    successes: float = 0.0
    failures: dict[str, float] = msgspec.field(default_factory=dict)
    latency_s: float | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    cost_usd: float | None = None
    output_tokens: float | None = None
    quality_sum: float = 0.0
    quality_n: float = 0.0
    wins: float = 0.0
    losses: float = 0.0
    stamp: int = 0
    updated_at: float = 0.0

    @property
    def success_rate(self) -> float | None:
        """Answered / ended (``None`` before the first call)."""
        return self.successes / self.calls if self.calls > 0 else None

    @property
    def quality(self) -> float | None:
        """Mean explicit quality score (``None``: none given)."""
        return self.quality_sum / self.quality_n if self.quality_n > 0 else None


class HistorySnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The whole history at one moment: what is persisted.

    Attributes:
        at: When it was taken (Unix time).
        clocks: Each task type's observation clock.
        cells: Every cell.
    """

    at: float
    clocks: dict[str, int] = msgspec.field(default_factory=dict)
    cells: tuple[Cell, ...] = ()


class ModelSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A model's history over every task type (what ``reactor models`` shows).

    Attributes:
        model: The model, qualified.
        calls: Requests that ended (decayed).
        success_rate: Answered / ended.
        latency_s: Mean latency, weighted by calls.
        cost_usd: Mean cost per call, where priced.
        quality: Mean explicit quality, where given.
        failures: Failures per kind.
        by_task: Calls per task type.
    """

    model: str
    calls: float
    success_rate: float | None = None
    latency_s: float | None = None
    cost_usd: float | None = None
    quality: float | None = None
    failures: dict[str, float] = msgspec.field(default_factory=dict)
    by_task: dict[str, float] = msgspec.field(default_factory=dict)


class History:
    """Every cell, with the task-type clocks that discount the bandit's counts.

    Args:
        discount: gamma, the factor applied per observation of a task type (0 < gamma <= 1; 1
            never forgets).
    """

    def __init__(self, *, discount: float = 0.995) -> None:
        if not 0.0 < discount <= 1.0:
            msg = f"History(discount={discount!r}): must be in (0, 1]"
            raise ValueError(msg)
        self.discount = discount
        self.clocks: dict[str, int] = {}
        self.cells: dict[tuple[str, str], Cell] = {}
        self.dirty = False
        # The task types each model has a cell for: a model's summary (the latency a
        # decision falls back on for a task type it has not done yet) reads its own
        # cells, not every cell.
        self._types: dict[str, dict[str, None]] = {}

    def cell(self, model: str, task_type: str) -> Cell | None:
        """The record of ``model`` for ``task_type``, if there is one."""
        return self.cells.get((model, task_type))

    def counts(self, model: str, task_type: str) -> tuple[float, float]:
        """``(wins, losses)`` of the quality posterior, discounted to now (``(0, 0)``: none)."""
        cell = self.cells.get((model, task_type))
        if cell is None:
            return 0.0, 0.0
        lag = self.clocks.get(task_type, 0) - cell.stamp
        if lag <= 0 or self.discount == 1.0:
            return cell.wins, cell.losses
        factor = self.discount**lag
        return cell.wins * factor, cell.losses * factor

    def _open(self, model: str, task_type: str) -> Cell:
        cell = self.cells.get((model, task_type))
        if cell is None:
            cell = Cell(model=model, task_type=task_type, stamp=self.clocks.get(task_type, 0))
            self.cells[(model, task_type)] = cell
            self._types.setdefault(model, {})[task_type] = None
        return cell

    def reward(self, model: str, task_type: str, reward: float) -> None:
        """Score one answer (0 to 1): every model of the task type is discounted first."""
        clock = self.clocks.get(task_type, 0) + 1
        self.clocks[task_type] = clock
        cell = self._open(model, task_type)
        wins, losses = self.counts(model, task_type)
        cell.wins = wins + reward
        cell.losses = losses + (1.0 - reward)
        cell.stamp = clock
        self.dirty = True

    def correct(self, model: str, task_type: str, delta: float) -> None:
        """Move ``delta`` of quality mass from losses to wins (negative: the other way).

        Feedback that arrives after an answer was scored corrects that score without
        counting the answer twice.
        """
        cell = self._open(model, task_type)
        wins, losses = self.counts(model, task_type)
        cell.wins = max(wins + delta, 0.0)
        cell.losses = max(losses - delta, 0.0)
        cell.stamp = self.clocks.get(task_type, 0)
        self.dirty = True

    def record(
        self,
        model: str,
        task_type: str,
        *,
        ok: bool,
        kind: str | None = None,
        latency_s: float | None = None,
        ttft_s: float | None = None,
        tokens_per_s: float | None = None,
        cost_usd: float | None = None,
        output_tokens: int | None = None,
        quality: float | None = None,
        now: float = 0.0,
    ) -> None:
        """Add one call's outcome to the running statistics (not the bandit: see :meth:`reward`)."""
        cell = self._open(model, task_type)
        cell.calls += 1
        if ok:
            cell.successes += 1
            cell.latency_s = _ewma(cell.latency_s, latency_s)
            cell.ttft_s = _ewma(cell.ttft_s, ttft_s)
            cell.tokens_per_s = _ewma(cell.tokens_per_s, tokens_per_s)
            cell.cost_usd = _ewma(cell.cost_usd, cost_usd)
            cell.output_tokens = _ewma(
                cell.output_tokens, float(output_tokens) if output_tokens is not None else None
            )
        else:
            key = kind or "unknown"
            cell.failures[key] = cell.failures.get(key, 0.0) + 1
        if quality is not None:
            cell.quality_sum += quality
            cell.quality_n += 1
        cell.updated_at = now
        self.dirty = True

    def answered(  # noqa: PLR0917 - the Selector's hot path: positional on purpose
        self,
        model: str,
        task_type: str,
        latency_s: float | None,
        ttft_s: float | None,
        tokens_per_s: float | None,
        cost_usd: float | None,
        output_tokens: int | None,
        quality: float | None,
        reward: float | None,
        now: float,
    ) -> None:
        """:meth:`record` of an answer and :meth:`reward` of its score, in one step."""
        cell = self._open(model, task_type)
        cell.calls += 1
        cell.successes += 1
        cell.latency_s = _ewma(cell.latency_s, latency_s)
        if ttft_s is not None:
            cell.ttft_s = _ewma(cell.ttft_s, ttft_s)
        if tokens_per_s is not None:
            cell.tokens_per_s = _ewma(cell.tokens_per_s, tokens_per_s)
        if cost_usd is not None:
            cell.cost_usd = _ewma(cell.cost_usd, cost_usd)
        if output_tokens is not None:
            cell.output_tokens = _ewma(cell.output_tokens, float(output_tokens))
        if quality is not None:
            cell.quality_sum += quality
            cell.quality_n += 1
        cell.updated_at = now
        if reward is not None:
            clock = self.clocks.get(task_type, 0) + 1
            self.clocks[task_type] = clock
            lag = clock - cell.stamp
            if lag > 0 and self.discount != 1.0:
                factor = self.discount**lag
                cell.wins *= factor
                cell.losses *= factor
            cell.wins += reward
            cell.losses += 1.0 - reward
            cell.stamp = clock
        self.dirty = True

    def add_quality(self, model: str, task_type: str, quality: float) -> None:
        """Record an explicit quality score given later (feedback)."""
        cell = self._open(model, task_type)
        cell.quality_sum += quality
        cell.quality_n += 1
        self.dirty = True

    def prune(self, now: float, *, half_life_s: float, min_weight: float = PRUNE_WEIGHT) -> int:
        """Drop the records that decay no longer weighs; return how many were dropped.

        A record's weight is what it has observed (calls, quality scores and the
        bandit's counts), faded by 0.5 per ``half_life_s`` since it last changed (what
        :meth:`restore` would leave of it). Below ``min_weight`` it says nothing a
        fresh prior would not: a model removed months ago, a task type no longer seen.
        A record whose time is unknown (0) is kept.
        """
        if half_life_s <= 0:
            return 0
        dropped = [
            key
            for key, cell in self.cells.items()
            if cell.updated_at > 0
            and (cell.calls + cell.quality_n + sum(self.counts(cell.model, cell.task_type)))
            * 0.5 ** (max(now - cell.updated_at, 0.0) / half_life_s)
            < min_weight
        ]
        for key in dropped:
            del self.cells[key]
            types = self._types.get(key[0])
            if types is not None:
                types.pop(key[1], None)
                if not types:
                    del self._types[key[0]]
        if dropped:
            self.dirty = True
        return len(dropped)

    def latency(self, model: str, task_type: str) -> float | None:
        """The latency to expect: this task type's, else the model's over all types."""
        cell = self.cells.get((model, task_type))
        if cell is not None and cell.latency_s is not None:
            return cell.latency_s
        return self.summary(model).latency_s

    # ---- summaries and persistence ----------------------------------------------------------

    def summary(self, model: str) -> ModelSummary:
        """The model's record over every task type."""
        cells = self.cells
        return _summarise(
            model,
            [
                cell
                for task in self._types.get(model, ())
                if (cell := cells.get((model, task))) is not None
            ],
        )

    def summaries(self) -> dict[str, ModelSummary]:
        """Every model's summary, by qualified name."""
        grouped: dict[str, list[Cell]] = {}
        for (model, _), cell in self.cells.items():
            grouped.setdefault(model, []).append(cell)
        return {model: _summarise(model, cells) for model, cells in sorted(grouped.items())}

    def snapshot(self, now: float) -> HistorySnapshot:
        """Everything, as one persistable document."""
        cells = []
        for cell in self.cells.values():
            wins, losses = self.counts(cell.model, cell.task_type)
            copy = msgspec.structs.replace(
                cell, wins=wins, losses=losses, stamp=self.clocks.get(cell.task_type, 0)
            )
            copy.failures = dict(cell.failures)
            cells.append(copy)
        return HistorySnapshot(at=now, clocks=dict(self.clocks), cells=tuple(cells))

    def restore(self, snapshot: HistorySnapshot, *, now: float, half_life_s: float) -> None:
        """Add a persisted snapshot, faded by its age (0.5 per ``half_life_s``).

        Observations made since start (before the snapshot was read) are kept: the
        loaded counts are added to them.
        """
        age = max(now - snapshot.at, 0.0)
        fade = 0.5 ** (age / half_life_s) if half_life_s > 0 and math.isfinite(age) else 1.0
        for loaded in snapshot.cells:
            cell = self._open(loaded.model, loaded.task_type)
            wins, losses = self.counts(loaded.model, loaded.task_type)
            cell.wins = wins + loaded.wins * fade
            cell.losses = losses + loaded.losses * fade
            cell.stamp = self.clocks.get(loaded.task_type, 0)
            cell.calls += loaded.calls * fade
            cell.successes += loaded.successes * fade
            for kind, count in loaded.failures.items():
                cell.failures[kind] = cell.failures.get(kind, 0.0) + count * fade
            cell.quality_sum += loaded.quality_sum * fade
            cell.quality_n += loaded.quality_n * fade
            for name in ("latency_s", "ttft_s", "tokens_per_s", "cost_usd", "output_tokens"):
                if getattr(cell, name) is None:
                    setattr(cell, name, getattr(loaded, name))
            cell.updated_at = max(cell.updated_at, loaded.updated_at)


def _summarise(model: str, cells: Iterable[Cell]) -> ModelSummary:
    calls = successes = 0.0
    latency_w = latency_sum = cost_w = cost_sum = q_sum = q_n = 0.0
    failures: dict[str, float] = {}
    by_task: dict[str, float] = {}
    for cell in cells:
        calls += cell.calls
        successes += cell.successes
        by_task[cell.task_type] = round(cell.calls, 3)
        for kind, count in cell.failures.items():
            failures[kind] = failures.get(kind, 0.0) + count
        weight = max(cell.successes, 1e-9)
        if cell.latency_s is not None:
            latency_w += weight
            latency_sum += weight * cell.latency_s
        if cell.cost_usd is not None:
            cost_w += weight
            cost_sum += weight * cell.cost_usd
        q_sum += cell.quality_sum
        q_n += cell.quality_n
    return ModelSummary(
        model=model,
        calls=round(calls, 3),
        success_rate=successes / calls if calls > 0 else None,
        latency_s=latency_sum / latency_w if latency_w > 0 else None,
        cost_usd=cost_sum / cost_w if cost_w > 0 else None,
        quality=q_sum / q_n if q_n > 0 else None,
        failures=failures,
        by_task=by_task,
    )
