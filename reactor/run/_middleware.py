"""Middleware: code that observes every event of every run (tracing and logging are two).

A middleware subclasses :class:`Middleware` and overrides what it needs. The Run actor
calls the hooks on its own thread, in the order events happen, so a hook must be quick
and must not block (hand slow work to a queue). An exception in a hook is logged and
otherwise ignored: observing a run never changes it.

Run hooks: :meth:`~Middleware.run_started`, :meth:`~Middleware.run_finished` (completed,
failed, halted or cancelled: :attr:`RunInfo` and the :class:`RunOutcome`).

Step events, all through :meth:`~Middleware.step_event` (the :class:`StepEventKind`):

=====================  ==========================================================
``start``              an attempt was dispatched (``attempt`` from 1)
``complete``           it produced its result
``error``              it failed (``error``); ``retry`` or ``compensate`` may follow
``retry``              another attempt follows after ``delay`` seconds
``halt``               it halted the run
``skip``               its ``where`` was false (or a step it needs was skipped)
``guard``              its guard supplied the result (``complete`` follows)
``compensate``         its ``compensate`` decided (``detail``: continue/retry/fail)
``undo_start``         rolling it back began
``undo_complete``      its undo succeeded
``undo_error``         its undo failed for good (rollback went on)
``added``              it was added while the run ran (``detail``: by which step)
=====================  ==========================================================

A resumed run (or one being undone) is told with ``run_started`` first, then the step
events its journal replays (``replayed=True``), then what happens now.

:meth:`~Middleware.step_context` lets a middleware supply the OpenTelemetry context a
step attempt runs in (the tracing middleware returns the attempt's span), so that spans
the step makes itself, an LLM call for one, nest under it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import structlog

__all__ = [
    "Middleware",
    "RunInfo",
    "RunOutcome",
    "StepEvent",
    "StepEventKind",
]

_log = structlog.get_logger("reactor.middleware")


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Which run an event belongs to.

    Attributes:
        run_id: The run.
        reactor: The reactor's name.
        parent: The run that composed it, if any.
        stack: The reactors from the outermost run down to this one.
        resumed: Whether this run was picked up from the journal.
        steps: The step names known when it started, in definition order.
        carrier: The trace context the run was started in (a composing step's span).
        previous: A resumed run's last trace context journaled before (a step
            attempt's span of the run it continues), for a link from its new span.
        context: The run's context (``Engine.start(context=...)``), read-only: a
            tenant, a user, a request id that every step and middleware may read.
    """

    run_id: str
    reactor: str
    parent: str | None = None
    stack: tuple[str, ...] = ()
    resumed: bool = False
    steps: tuple[str, ...] = ()
    carrier: Mapping[str, str] | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    previous: Mapping[str, str] | None = None


class StepEventKind(enum.StrEnum):
    """What happened to a step (see the module docstring)."""

    START = "start"
    COMPLETE = "complete"
    ERROR = "error"
    RETRY = "retry"
    HALT = "halt"
    SKIP = "skip"
    GUARD = "guard"
    COMPENSATE = "compensate"
    UNDO_START = "undo_start"
    UNDO_COMPLETE = "undo_complete"
    UNDO_ERROR = "undo_error"
    ADDED = "added"


@dataclass(frozen=True, slots=True)
class StepEvent:
    """One step event.

    Attributes:
        kind: What happened.
        step: The step.
        attempt: The attempt it concerns (from 1; 0 when none ran).
        at: When (``time.time()``).
        duration: Seconds the attempt took (``complete`` and ``error``).
        value: The result (``complete``).
        error: What went wrong (``error``, ``undo_error``): a ``StepError``.
        delay: Seconds before the next attempt (``retry``).
        detail: More, in words (the compensation's decision, a halt reason, ...).
        replayed: The event comes from the journal of a resumed run, not from now.
    """

    kind: StepEventKind
    step: str
    attempt: int = 0
    at: float = 0.0
    duration: float | None = None
    value: Any = None
    error: Any = None
    delay: float | None = None
    detail: str = ""
    replayed: bool = False


_STEP_EVENT_FIELDS = (
    "kind",
    "step",
    "attempt",
    "at",
    "duration",
    "value",
    "error",
    "delay",
    "detail",
    "replayed",
)
if {f.name for f in fields(StepEvent)} != set(_STEP_EVENT_FIELDS):  # pragma: no cover
    msg = "StepEvent's fields changed: update _STEP_EVENT_FIELDS and step_event()"
    raise ImportError(msg)
(
    _set_kind,
    _set_step,
    _set_attempt,
    _set_at,
    _set_duration,
    _set_value,
    _set_error,
    _set_delay,
    _set_detail,
    _set_replayed,
) = (vars(StepEvent)[name].__set__ for name in _STEP_EVENT_FIELDS)
_new = object.__new__


def step_event(  # noqa: PLR0917 - one argument per field, in StepEvent's order
    kind: StepEventKind,
    step: str,
    attempt: int,
    at: float,
    duration: float | None = None,
    value: Any = None,
    error: Any = None,
    delay: float | None = None,
    detail: str = "",
) -> StepEvent:
    """``StepEvent(...)`` made faster, for the Run actor's hot path (two per attempt).

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``;
    the slots' own descriptors do the same in under half the time. The result is an
    ordinary (frozen, equal-comparing) :class:`StepEvent`.
    """
    event: StepEvent = _new(StepEvent)
    _set_kind(event, kind)
    _set_step(event, step)
    _set_attempt(event, attempt)
    _set_at(event, at)
    _set_duration(event, duration)
    _set_value(event, value)
    _set_error(event, error)
    _set_delay(event, delay)
    _set_detail(event, detail)
    _set_replayed(event, False)
    return event


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended.

    Attributes:
        status: ``completed``, ``failed``, ``halted`` or ``cancelled``.
        value: The result (``completed``).
        errors: The ``StepError`` s (``failed``).
        reason: Why it halted or was cancelled.
        duration: Seconds since it started (or resumed).
        stats: Counters: steps run, retries, undone, ...
    """

    status: str
    value: Any = None
    errors: tuple[Any, ...] = ()
    reason: str = ""
    duration: float = 0.0
    stats: Mapping[str, int] = field(default_factory=dict)


class Middleware:
    """Observe runs: override any of the hooks (each does nothing by default)."""

    def run_started(self, run: RunInfo) -> None:
        """A run started, or resumed (``run.resumed``)."""

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        """Something happened to a step."""

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        """A run completed, failed, halted or was cancelled."""

    def step_context(self, run: RunInfo, step: str, attempt: int) -> Any:
        """The OpenTelemetry ``Context`` the attempt runs in, or ``None`` to leave it."""
        return None


def notify(middleware: tuple[Middleware, ...], hook: str, *args: Any) -> None:
    """Call ``hook`` on each middleware; an exception is logged, never raised."""
    for each in middleware:
        try:
            getattr(each, hook)(*args)
        except BaseException:  # noqa: BLE001 - observing a run must not break it
            # BaseException too: ``sys.exit()`` or ``KeyboardInterrupt`` in a user's
            # middleware is user code failing, as in a step, and must not stop the
            # Run actor (the hooks never run in a task that could be cancelled).
            _log.exception("middleware hook failed", middleware=type(each).__name__, hook=hook)
