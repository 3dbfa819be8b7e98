"""How the command shows runs: JSON on standard output, rich tables, coloured statuses.

A table is in colour on a terminal and plain text elsewhere (a pipe, a file), wide
enough not to fold, so scripts and tests read the same words a person sees.
"""

from __future__ import annotations

import datetime
import io
import time
from collections.abc import Sequence
from typing import Any, TextIO

import msgspec
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from reactor.observe import format_seconds
from reactor.run import RunSummary, RunView, StepError

__all__ = ["error_line", "format_json", "write_run", "write_runs"]


def format_json(value: Any) -> str:
    """``value`` as indented JSON; what msgspec cannot encode is written as ``str()``."""
    return msgspec.json.format(msgspec.json.encode(value, enc_hook=str), indent=2).decode()


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _emit(out: TextIO, *renderables: RenderableType) -> None:
    """Print rich renderables on ``out``, in colour on a terminal.

    Elsewhere (a pipe, a file) it is plain text, wide enough not to fold tables, without
    the padding rich adds at the end of lines.
    """
    if out.isatty():
        console = Console(file=out, soft_wrap=False, markup=False)
        for each in renderables:
            console.print(each)
        return
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, soft_wrap=False, color_system=None, markup=False)
    for each in renderables:
        console.print(each)
    out.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))


_STATUS_STYLE = {
    "completed": "green",
    "done": "green",
    "failed": "bold red",
    "undo failed": "bold red",
    "halted": "yellow",
    "cancelled": "magenta",
    "undone": "magenta",
    "interrupted": "bold yellow",
    "running": "cyan",
    "retrying": "yellow",
    "skipped": "dim",
    "pending": "dim",
}


def _status(text: str) -> Text:
    return Text(text, style=_STATUS_STYLE.get(text, ""))


def error_line(error: StepError) -> str:
    """``kind (error): message``: one line for a step's or a run's error."""
    what = error.kind
    if error.error and error.error != error.kind:
        what = f"{error.kind} ({error.error})"
    return f"{what}: {error.message}"


def _clip(text: str, lines: int = 30) -> str:
    parts = text.splitlines()
    if len(parts) <= lines:
        return text
    return "\n".join([*parts[:lines], f"... ({len(parts) - lines} more lines; see --json)"])


def _steps_table(view: RunView) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("STEP", "STATUS", "ATTEMPTS", "STARTED", "DURATION", "ERROR"):
        table.add_column(column, no_wrap=column != "ERROR")
    origin = view.started_at
    for step in view.steps:
        started = (
            f"+{format_seconds(step.started_at - origin)}"
            if step.started_at is not None and origin is not None
            else "-"
        )
        error = ""
        if step.error is not None:
            error = error_line(step.error)
            if step.status not in ("failed", "undo failed"):
                error = f"(earlier) {error}"
        elif step.detail:
            error = f"[{step.detail}]"
        table.add_row(
            step.name,
            _status(step.status),
            str(step.attempts),
            started,
            format_seconds(step.duration),
            Text(error),
        )
    return table


def write_runs(out: TextIO, rows: Sequence[RunSummary], *, as_json: bool) -> None:
    """``reactor runs list``'s output: the runs as JSON, or a table (newest first, as given)."""
    if as_json:
        out.write(format_json(rows) + "\n")
        return
    if not rows:
        out.write("no runs yet\n")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("RUN ID", "REACTOR", "STATUS", "STARTED", "DURATION", "LAST EVENT"):
        table.add_column(column, no_wrap=True)
    now = time.time()
    for row in rows:
        finished = row.status not in ("running",)
        duration = (row.updated_at if finished else now) - row.created_at
        table.add_row(
            row.run_id,
            row.reactor,
            _status(row.status),
            _when(row.created_at),
            format_seconds(duration) + ("" if finished else " so far"),
            row.last_event,
        )
    _emit(out, table)


def write_run(
    out: TextIO, view: RunView, run_id: str, *, as_json: bool, traceback: bool = False
) -> None:
    """``reactor runs show``'s output: the folded run as JSON, or its header and steps.

    With ``traceback``, each failure's traceback (journaled when user code raised)
    follows the steps; without it, a line says there is one to see.
    """
    if as_json:
        data = msgspec.to_builtins(view, enc_hook=str)
        for step, built in zip(view.steps, data["steps"], strict=True):
            built["duration"] = step.duration
        out.write(format_json(data) + "\n")
        return
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold", no_wrap=True)
    header.add_column()
    rows: list[tuple[str, Text]] = [
        ("run", Text(view.run_id or run_id)),
        ("reactor", Text.assemble(view.reactor, "  ", (f"({view.locator})", "dim"))),
        ("status", _status(view.status)),
    ]
    if view.parent:
        rows.append(("parent run", Text(view.parent)))
    ended = view.ended_at if view.ended_at is not None else view.updated_at
    took = (
        format_seconds(ended - view.started_at)
        if ended is not None and view.started_at is not None
        else "-"
    )
    rows.append(("started", Text(f"{_when(view.started_at)}  (took {took})")))
    if view.resumed:
        rows.append(("resumed", Text(f"{view.resumed} time(s)")))
    rows.append(("inputs", Text(format_json(view.inputs))))
    limits = _limits(view.options)
    if limits:
        rows.append(("limits", Text(limits)))
    if view.status == "completed":
        rows.append(("result", Text(_clip(format_json(view.result)))))
    if view.errors:
        lines = [f"{f'step {e.step}' if e.step else 'run'}: {error_line(e)}" for e in view.errors]
        rows.append(("errors", Text("\n".join(lines))))
    if view.status == "halted":
        where = f"at step {view.halted_step}: " if view.halted_step else ""
        rows.append(("halted", Text(f"{where}{view.reason}")))
        rows.append(("resume", Text(f"reactor runs resume {view.run_id}")))
    if view.status == "interrupted":
        rows.append(("resume", Text(f"reactor runs resume {view.run_id}")))
    if view.status == "cancelled":
        rows.append(("cancelled", Text(view.reason or "")))
    for label, value in rows:
        header.add_row(label, value)
    _emit(out, header, "", _steps_table(view))
    _write_tracebacks(out, view, run_id, show=traceback)


_LIMITS = (
    "timeout",
    "on_timeout",
    "max_iterations",
    "halt_timeout",
    "idle_timeout",
    "concurrency_key",
)


def _limits(options: dict[str, Any]) -> str:
    """The run's limits in force (as started, or as a resume gave them), those set only."""
    shown = [f"{name}={options[name]}" for name in _LIMITS if options.get(name) is not None]
    if options.get("timeout") is None and options.get("idle_timeout") is None:
        shown = [each for each in shown if not each.startswith("on_timeout=")]
    return "  ".join(shown)


def _write_tracebacks(out: TextIO, view: RunView, run_id: str, *, show: bool) -> None:
    """The failures' tracebacks, each once (a step's latest and the run's errors)."""
    failures = [s.error for s in view.steps if s.error is not None] + list(view.errors)
    seen: set[tuple[str, str]] = set()
    kept = []
    for failure in failures:
        if failure.traceback and (failure.step, failure.traceback) not in seen:
            seen.add((failure.step, failure.traceback))
            kept.append(failure)
    if not kept:
        return
    if not show:
        out.write(f"\n(tracebacks kept: reactor runs show {view.run_id or run_id} --traceback)\n")
        return
    for failure in kept:
        where = f"step {failure.step}" if failure.step else "run"
        out.write(f"\ntraceback of {where} ({failure.error}):\n{failure.traceback.rstrip()}\n")
