"""A run's state rebuilt from its journal: :func:`fold` reads ``run:<id>`` into a view.

The journal is the run's only record, so whoever shows or checks a run without holding
it (``reactor runs show``, ``reactor runs resume``, a daemon) folds its events, in order,
into one view: each step's status, attempts, times, latest error and result, and how the
run ended. The fold is pure: the same events give the same view.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from reactor.run._records import (
    Owner,
    RunCancelled,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunHalted,
    RunResumed,
    RunStarted,
    RunUndone,
    StepCompensated,
    StepCompleted,
    StepError,
    StepFailed,
    StepsAdded,
    StepSkipped,
    StepStarted,
    StepUndoFailed,
    StepUndone,
)

__all__ = ["RunView", "StepView", "fold", "format_seconds"]


def format_seconds(seconds: float | None) -> str:
    """``0.25s``, ``12.3s``, ``4m 05s``, ``2h 03m``; ``-`` for ``None``."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


class StepView(msgspec.Struct, kw_only=True):
    """One step of a run, as its journal tells it.

    Attributes:
        name: The step.
        status: ``pending``, ``running``, ``retrying``, ``done``, ``failed``,
            ``skipped``, ``halted``, ``undone``, ``undo failed`` or ``cancelled``.
        attempts: Attempts started (0: it never ran, e.g. a guard answered).
        started_at: When its first attempt started.
        ended_at: When it last finished (done, failed, skipped).
        error: Its latest error (also when a retry then succeeded).
        detail: A few words: a guard, a compensation, a halt reason, who added it.
        added_by: The step that added it while the run ran, if any.
        value: Its result (``done``), decoded from JSON; while it loops (re-emits
            itself), its latest iteration's.
        iterations: How many times it re-emitted itself.
    """

    name: str
    status: str = "pending"
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    error: StepError | None = None
    detail: str = ""
    added_by: str | None = None
    value: Any = None
    iterations: int = 0

    @property
    def duration(self) -> float | None:
        """Seconds from its first start to its end (retries included), when both are known."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)


class RunView(msgspec.Struct, kw_only=True):
    """A run, folded from its journal (see :func:`fold`).

    Attributes:
        run_id: The run.
        reactor: Its reactor's name.
        locator: Where the reactor is loaded from.
        status: ``running``, ``completed``, ``failed``, ``halted`` or ``cancelled``
            (the journal cannot tell ``running`` from interrupted: see
            :func:`owner_alive`).
        inputs: The inputs as given.
        options: The run options.
        parent: The run that composed it.
        owner: The process that ran it last.
        started_at: When it started.
        updated_at: When its latest event happened.
        ended_at: When it completed, failed, halted or was cancelled.
        result: Its result (``completed``).
        errors: Why it failed (``failed``).
        halted_step: The step that halted it (``halted``; ``None`` when the run's
            own timeout halted it, under ``on_timeout="halt"``).
        reason: Why it halted or was cancelled.
        resumed: How many times it was resumed.
        events: How many events its journal has.
        last_event: The type of the latest one.
        steps: Its steps, in the order they first appear in the journal.
    """

    run_id: str = ""
    reactor: str = ""
    locator: str = ""
    status: str = "running"
    inputs: Any = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    parent: str | None = None
    owner: Owner | None = None
    started_at: float | None = None
    updated_at: float | None = None
    ended_at: float | None = None
    result: Any = None
    errors: list[StepError] = msgspec.field(default_factory=list)
    halted_step: str | None = None
    reason: str | None = None
    resumed: int = 0
    events: int = 0
    last_event: str = ""
    steps: list[StepView] = msgspec.field(default_factory=list)

    def step(self, name: str) -> StepView:
        """The step called ``name`` (added, pending, when it is new)."""
        for each in self.steps:
            if each.name == name:
                return each
        made = StepView(name=name)
        self.steps.append(made)
        return made


def _decode(raw: msgspec.Raw | bytes | None) -> Any:
    """A stored JSON value; undecodable bytes come back as text."""
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return bytes(raw).decode("utf-8", "replace")


_UNFINISHED = ("running", "retrying")


def fold(events: Iterable[RunEvent]) -> RunView:  # noqa: PLR0912, PLR0915 - one case per event
    """Rebuild a run's state from its journal events, in order (a pure function)."""
    view = RunView()
    for event in events:
        view.events += 1
        view.last_event = type(event).__name__
        view.updated_at = event.at
        match event:
            case RunStarted():
                view.run_id, view.reactor, view.locator = event.run_id, event.reactor, event.locator
                view.inputs, view.options = _decode(event.inputs), dict(event.options)
                view.parent, view.owner, view.started_at = event.parent, event.owner, event.at
                view.status = "running"
            case RunResumed():
                view.run_id = view.run_id or event.run_id
                view.resumed += 1
                view.options.update(event.options)
                view.owner, view.status, view.ended_at = event.owner, "running", None
                view.halted_step = view.reason = None
                for each in view.steps:
                    if each.status in (*_UNFINISHED, "halted"):
                        each.status = "pending"  # it runs again, timed from then on
                        each.started_at = each.ended_at = None
            case StepStarted():
                step = view.step(event.step)
                step.status, step.attempts = "running", max(step.attempts, event.attempt)
                step.started_at = step.started_at if step.started_at is not None else event.at
                step.ended_at = None
            case StepCompleted():
                step = view.step(event.step)
                step.status, step.attempts = "done", max(step.attempts, event.attempt)
                if step.started_at is None:
                    step.started_at = event.started_at
                step.ended_at, step.value = event.at, _decode(event.value)
                if event.guarded:
                    step.detail = "result from its guard"
            case StepFailed():
                step = view.step(event.step)
                step.attempts = max(step.attempts, event.attempt)
                if step.started_at is None:
                    step.started_at = event.started_at
                step.error = event.error
                if event.will_retry:
                    step.status = "retrying"
                    step.detail = f"retry in {format_seconds(event.delay)}" if event.delay else ""
                else:
                    step.status, step.ended_at = "failed", event.at
            case StepCompensated():
                step = view.step(event.step)
                step.detail = f"compensated: {event.decision}"
                if event.decision == "continue":
                    step.status, step.ended_at = "done", event.at
                    step.value = _decode(event.value)
                elif event.decision == "retry":
                    step.status = "retrying"
                else:
                    step.status, step.ended_at = "failed", event.at
            case StepSkipped():
                step = view.step(event.step)
                step.status, step.ended_at = "skipped", event.at
            case StepsAdded():
                for added in event.steps:
                    name = added.get("name")
                    if name == event.by:  # it re-emitted itself: its next iteration
                        step = view.step(name)
                        step.status, step.ended_at = "pending", None
                        step.iterations += 1
                        step.detail = f"re-emitted itself {step.iterations}x"
                    elif isinstance(name, str):
                        view.step(name).added_by = event.by
                        view.step(name).detail = f"added by {event.by}"
            case StepUndone():
                view.step(event.step).status = "undone"
            case StepUndoFailed():
                step = view.step(event.step)
                step.status, step.error = "undo failed", event.error
            case RunHalted():
                view.status, view.ended_at = "halted", event.at
                view.halted_step, view.reason = event.step or None, event.reason
                if event.step:  # empty: the run's timeout halted it, not a step
                    step = view.step(event.step)
                    step.status, step.detail = "halted", event.reason
            case RunCompleted():
                view.status, view.ended_at = "completed", event.at
                view.result = _decode(event.value)
            case RunFailed():
                view.status, view.ended_at, view.errors = "failed", event.at, list(event.errors)
                _cancel_unfinished(view)
            case RunCancelled():
                view.status, view.ended_at, view.reason = "cancelled", event.at, event.reason
                _cancel_unfinished(view)
            case RunUndone():
                view.status, view.ended_at = "undone", event.at
                view.errors = list(event.errors)
    return view


def _cancel_unfinished(view: RunView) -> None:
    for each in view.steps:
        if each.status in _UNFINISHED:
            each.status, each.ended_at = "cancelled", view.ended_at
