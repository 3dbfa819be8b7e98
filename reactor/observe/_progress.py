"""Live progress of a run for the command line: one line per step, fed by middleware.

The Run actor calls middleware hooks on its own thread, where nothing may block, so
:class:`QueueMiddleware` only puts each event on a :class:`queue.Queue`. The command's
main thread takes them off, folds them into a :class:`ProgressModel` (one
:class:`StepRow` per step of the outermost run, counters for the runs it composes) and
shows them with one of three views (:func:`make_view`):

* ``live``: a rich table on standard error, redrawn in place (a terminal);
* ``plain``: one line per event on standard error (a pipe, a CI log);
* ``none``: nothing.

Standard output is never written here: it carries the run's result.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from reactor.run import (
    Middleware,
    RunInfo,
    RunOutcome,
    StepEvent,
    StepEventKind,
    format_seconds,
)

__all__ = [
    "LiveView",
    "NullView",
    "PlainView",
    "ProgressItem",
    "ProgressModel",
    "ProgressView",
    "QueueMiddleware",
    "RunFinishedItem",
    "RunStartedItem",
    "StepItem",
    "StepRow",
    "ViewMode",
    "format_seconds",
    "make_view",
]

ViewMode = Literal["live", "plain", "none"]
"""How progress is shown: a live table, plain lines, or not at all."""


@dataclass(frozen=True, slots=True)
class RunStartedItem:
    """A run (the outermost or a composed one) started or resumed."""

    run: RunInfo


@dataclass(frozen=True, slots=True)
class StepItem:
    """A step event of some run."""

    run: RunInfo
    event: StepEvent


@dataclass(frozen=True, slots=True)
class RunFinishedItem:
    """A run ended (completed, failed, halted or cancelled)."""

    run: RunInfo
    outcome: RunOutcome


ProgressItem = RunStartedItem | StepItem | RunFinishedItem
"""What :class:`QueueMiddleware` puts on its queue."""


class QueueMiddleware(Middleware):
    """Puts every run and step event on ``events``, and does nothing else (never blocks).

    Args:
        events: The queue the command's main thread reads.
    """

    def __init__(self, events: queue.Queue[Any]) -> None:
        self.events = events

    def run_started(self, run: RunInfo) -> None:
        """Queue the start."""
        self.events.put_nowait(RunStartedItem(run))

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        """Queue the step event."""
        self.events.put_nowait(StepItem(run, event))

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        """Queue the end."""
        self.events.put_nowait(RunFinishedItem(run, outcome))


# ---- the model --------------------------------------------------------------------------


@dataclass(slots=True)
class StepRow:
    """What is known about one step of the outermost run.

    Attributes:
        name: The step.
        status: ``pending``, ``running``, ``retrying``, ``done``, ``failed``,
            ``skipped``, ``halted``, ``undoing``, ``undone`` or ``undo failed``.
        attempt: The latest attempt (0: none yet).
        started_at: When the latest attempt started (``time.time()``).
        duration: Seconds the latest attempt took, once it ended.
        detail: A few words: the error, the retry delay, a guard or compensation.
        replayed: Its result came from the journal (a resumed run).
    """

    name: str
    status: str = "pending"
    attempt: int = 0
    started_at: float | None = None
    duration: float | None = None
    detail: str = ""
    replayed: bool = False

    def elapsed(self, now: float) -> float | None:
        """Seconds of the latest attempt: its duration, or so far when it is running."""
        if self.duration is not None:
            return self.duration
        if self.status == "running" and self.started_at is not None:
            return max(0.0, now - self.started_at)
        return None


def _error_text(error: Any) -> str:
    """``kind: message`` for a ``StepError`` (or whatever the event carries)."""
    if error is None:
        return ""
    kind = getattr(error, "kind", None)
    message = getattr(error, "message", None)
    if kind is not None and message is not None:
        name = getattr(error, "error", "")
        what = f"{kind} ({name})" if name and name != kind else str(kind)
        return f"{what}: {message}"
    return str(error)


def _added(detail: str) -> str:
    """``added by STEP`` whether the event's detail is ``STEP`` or ``by STEP``."""
    if not detail:
        return "added"
    return f"added {detail}" if detail.startswith("by ") else f"added by {detail}"


def _is_root(run: RunInfo) -> bool:
    return run.parent is None


@dataclass(slots=True)
class ProgressModel:
    """The state the views show, folded from :data:`ProgressItem` s.

    Attributes:
        reactor: The outermost run's reactor.
        run_id: The outermost run (once it started).
        started_at: When the outermost run started (or resumed), ``time.time()``.
        rows: One row per step of the outermost run, in definition order (added steps
            at the end).
        outcome: How the outermost run ended, once it did.
        sub_runs: Composed runs, by run id: ``running`` or how they ended.
        resumed: The outermost run was resumed from the journal.
    """

    reactor: str = ""
    run_id: str = ""
    started_at: float | None = None
    rows: dict[str, StepRow] = field(default_factory=dict)
    outcome: RunOutcome | None = None
    sub_runs: dict[str, str] = field(default_factory=dict)
    resumed: bool = False

    def add_steps(self, names: Any) -> None:
        """Make sure there is a row for each step name (pending when new)."""
        for name in names:
            self.rows.setdefault(name, StepRow(name))

    def apply(self, item: ProgressItem) -> None:
        """Fold one item in."""
        match item:
            case RunStartedItem(run=run):
                if _is_root(run):
                    self.reactor, self.run_id, self.resumed = run.reactor, run.run_id, run.resumed
                    self.started_at = time.time()
                    self.add_steps(run.steps)
                else:
                    self.sub_runs[run.run_id] = "running"
            case RunFinishedItem(run=run, outcome=outcome):
                if _is_root(run):
                    self.outcome = outcome
                else:
                    self.sub_runs[run.run_id] = outcome.status
            case StepItem(run=run, event=event):
                if _is_root(run):
                    self._step(event)

    def _step(self, event: StepEvent) -> None:  # noqa: PLR0912 - one branch per event kind
        row = self.rows.setdefault(event.step, StepRow(event.step))
        if event.attempt:
            row.attempt = max(row.attempt, event.attempt)
        row.replayed = row.replayed or event.replayed
        match event.kind:
            case StepEventKind.START:
                row.status, row.started_at, row.duration = "running", event.at, None
                row.detail = ""
            case StepEventKind.COMPLETE:
                row.status = "done"
                row.duration = self._duration(row, event)
                if event.replayed:
                    row.detail = "from the journal"
            case StepEventKind.ERROR:
                row.status = "failed"
                row.duration = self._duration(row, event)
                row.detail = _error_text(event.error)
            case StepEventKind.RETRY:
                row.status = "retrying"
                delay = f" in {format_seconds(event.delay)}" if event.delay else ""
                reason = f" ({row.detail})" if row.detail else ""
                row.detail = f"retry{delay}{reason}"
            case StepEventKind.HALT:
                row.status = "halted"
                row.detail = event.detail or "halted"
            case StepEventKind.SKIP:
                row.status = "skipped"
                row.detail = event.detail
            case StepEventKind.GUARD:
                row.status = "done"
                row.detail = "result from its guard"
            case StepEventKind.COMPENSATE:
                row.detail = f"compensated: {event.detail}" if event.detail else "compensated"
                if event.detail == "continue":
                    row.status = "done"
            case StepEventKind.UNDO_START:
                row.status = "undoing"
            case StepEventKind.UNDO_COMPLETE:
                row.status = "undone"
            case StepEventKind.UNDO_ERROR:
                row.status = "undo failed"
                row.detail = _error_text(event.error)
            case StepEventKind.ADDED:
                row.detail = _added(event.detail)

    @staticmethod
    def _duration(row: StepRow, event: StepEvent) -> float | None:
        if event.duration is not None:
            return event.duration
        if row.started_at is not None and event.at:
            return max(0.0, event.at - row.started_at)
        return None

    def counts(self) -> dict[str, int]:
        """How many steps are in each status."""
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts


# ---- plain lines -------------------------------------------------------------------------


def describe(item: ProgressItem, since: float | None) -> str | None:
    """One line for an item (``None``: not worth a line).

    The line starts with the seconds since ``since`` (the run's start) when known.
    """
    stamp = f"{max(0.0, time.time() - since):7.2f}s  " if since is not None else ""
    match item:
        case RunStartedItem(run=run):
            how = "resumed" if run.resumed else "started"
            return f"{stamp}{_where(run)}run {run.run_id} {how}"
        case RunFinishedItem(run=run, outcome=outcome):
            why = f" ({outcome.reason})" if outcome.reason else ""
            took = format_seconds(outcome.duration) if outcome.duration else ""
            return f"{stamp}{_where(run)}run {outcome.status}{why}" + (
                f" in {took}" if took else ""
            )
        case StepItem(run=run, event=event):
            text = _step_line(event)
            return f"{stamp}{_where(run)}{event.step}: {text}" if text else None


def _where(run: RunInfo) -> str:
    """``Outer > Inner: `` for a composed run; nothing for the outermost one."""
    return "" if _is_root(run) else " > ".join(run.stack or (run.reactor,)) + ": "


def _step_line(event: StepEvent) -> str:  # noqa: PLR0911 - one line per event kind
    attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
    took = f" in {format_seconds(event.duration)}" if event.duration is not None else ""
    replayed = " (from the journal)" if event.replayed else ""
    match event.kind:
        case StepEventKind.START:
            return f"running{attempt}{replayed}"
        case StepEventKind.COMPLETE:
            return f"done{took}{attempt}{replayed}"
        case StepEventKind.ERROR:
            return f"error{attempt}{took}: {_error_text(event.error)}"
        case StepEventKind.RETRY:
            delay = f" in {format_seconds(event.delay)}" if event.delay else ""
            return f"retrying{delay}"
        case StepEventKind.HALT:
            return f"halted the run: {event.detail or 'halted'}"
        case StepEventKind.SKIP:
            return "skipped" + (f" ({event.detail})" if event.detail else "")
        case StepEventKind.GUARD:
            return "result from its guard"
        case StepEventKind.COMPENSATE:
            return f"compensate: {event.detail}" if event.detail else "compensated"
        case StepEventKind.UNDO_START:
            return "undoing"
        case StepEventKind.UNDO_COMPLETE:
            return "undone"
        case StepEventKind.UNDO_ERROR:
            return f"undo failed: {_error_text(event.error)}"
        case StepEventKind.ADDED:
            return _added(event.detail)


# ---- views -------------------------------------------------------------------------------


class ProgressView:
    """Shows a :class:`ProgressModel`: fed items, ticked while waiting, closed at the end.

    Use as a context manager; the base class shows nothing.
    """

    def __init__(self, model: ProgressModel) -> None:
        self.model = model

    def feed(self, item: ProgressItem) -> None:
        """Fold in an item and show it."""
        self.model.apply(item)

    def tick(self) -> None:
        """Called a few times a second while nothing happens (running times move)."""

    def close(self) -> None:
        """The run is over: leave the last state on screen."""

    def __enter__(self) -> ProgressView:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class NullView(ProgressView):
    """Shows nothing (``--no-progress``)."""


class PlainView(ProgressView):
    """One line per event on ``stream`` (standard error when it is not a terminal)."""

    def __init__(self, model: ProgressModel, stream: TextIO) -> None:
        super().__init__(model)
        self.stream = stream
        self._opened = time.time()

    def feed(self, item: ProgressItem) -> None:
        """Fold in the item and write its line."""
        super().feed(item)
        since = self.model.started_at if self.model.started_at is not None else self._opened
        line = describe(item, since)
        if line is not None:
            self.stream.write(line + "\n")
            self.stream.flush()


_STYLES = {
    "pending": "dim",
    "running": "bold cyan",
    "retrying": "yellow",
    "done": "green",
    "failed": "bold red",
    "skipped": "dim",
    "halted": "bold yellow",
    "undoing": "magenta",
    "undone": "magenta",
    "undo failed": "bold red",
}
_MARKS = {
    "pending": "·",
    "running": "▶",
    "retrying": "↻",
    "done": "✔",
    "failed": "✘",
    "skipped": "-",
    "halted": "‖",
    "undoing": "↶",
    "undone": "↶",
    "undo failed": "✘",
}


def render(model: ProgressModel, now: float | None = None) -> RenderableType:
    """The model as a rich table with a summary line under it."""
    now = time.time() if now is None else now
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("", no_wrap=True)
    table.add_column("STEP", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("ATTEMPT", justify="right", no_wrap=True)
    table.add_column("TIME", justify="right", no_wrap=True)
    table.add_column("DETAIL", overflow="ellipsis", no_wrap=True, max_width=80)
    for row in model.rows.values():
        style = _STYLES.get(row.status, "")
        table.add_row(
            Text(_MARKS.get(row.status, "?"), style=style),
            Text(row.name),  # data, never markup: an error may hold "[/INST]"
            Text(row.status, style=style),
            str(row.attempt) if row.attempt else "-",
            format_seconds(row.elapsed(now)),
            Text(row.detail),
        )
    elapsed = (
        model.outcome.duration
        if model.outcome is not None and model.outcome.duration
        else (now - model.started_at if model.started_at is not None else None)
    )
    counts = model.counts()
    parts = [f"{model.reactor or 'run'}", f"{format_seconds(elapsed)}"]
    parts += [f"{n} {status}" for status, n in counts.items() if n]
    if model.sub_runs:
        running = sum(1 for s in model.sub_runs.values() if s == "running")
        parts.append(f"sub-runs: {running} running, {len(model.sub_runs) - running} ended")
    if model.outcome is not None:
        parts.append(model.outcome.status)
    return Group(table, Text(" · ".join(parts), style="dim"))


class LiveView(ProgressView):
    """A rich table on a terminal, redrawn in place from the main thread only."""

    def __init__(self, model: ProgressModel, console: Console) -> None:
        super().__init__(model)
        self.live = Live(
            render(model),
            console=console,
            auto_refresh=False,  # redrawn by feed/tick on the main thread: no races
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._started = False
        self._last = 0.0

    def __enter__(self) -> LiveView:
        self.live.start()
        self._started = True
        return self

    def feed(self, item: ProgressItem) -> None:
        """Fold in the item and redraw (at most 20 times a second)."""
        super().feed(item)
        self._redraw(force=False)

    def tick(self) -> None:
        """Redraw, so running times move."""
        self._redraw(force=True)

    def _redraw(self, *, force: bool) -> None:
        now = time.monotonic()
        if self._started and (force or now - self._last >= 0.05):
            self._last = now
            self.live.update(render(self.model), refresh=True)

    def close(self) -> None:
        """Draw the final state and stop."""
        if self._started:
            self.live.update(render(self.model), refresh=True)
            self.live.stop()
            self._started = False


def make_view(
    mode: ViewMode, model: ProgressModel, stream: TextIO, *, console: Console | None = None
) -> ProgressView:
    """The view for ``mode``.

    ``live``: a rich console over ``stream``; ``plain``: lines on ``stream``; ``none``.
    """
    match mode:
        case "live":
            return LiveView(model, console or Console(file=stream, stderr=True, markup=False))
        case "plain":
            return PlainView(model, stream)
        case "none":
            return NullView(model)
