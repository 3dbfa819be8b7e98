"""``reactor run`` and ``reactor runs list|show|resume``: run reactors, look at runs.

``reactor run path/to/file.py:Name --input key=value`` loads the reactor, checks the
inputs against its plan, starts the system (and the model hosts, only when a step asks
a model), runs it with live progress on standard error and prints the result as JSON
on standard output. The exit status says how it ended: 0 completed, 1 failed (or
cancelled), 3 halted (``reactor runs resume ID`` continues it), 130 interrupted
(Ctrl-C cancels the run), 2 for a mistake on the command line.

``reactor runs list`` and ``reactor runs show`` only read the journal: a run is the
stream ``run:<id>``, and :func:`fold` rebuilds a :class:`RunView` from its events.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from reactor.observe import (
    ProgressModel,
    QueueMiddleware,
    RunFinishedItem,
    ViewMode,
    format_seconds,
    make_view,
)
from reactor.run import (
    InputError,
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
    check_inputs,
    list_runs,
    owner_alive,
    read_history,
    run_status,
)

if TYPE_CHECKING:
    from actors import System
    from actors.llm import Fleet
    from actors.store import Journal
    from dsl import Reactor
    from reactor.app import Engine, RunHandle
    from reactor.run import Middleware

__all__ = [
    "CliError",
    "RunView",
    "StepView",
    "fold",
    "format_json",
    "has_ask_steps",
    "leave_now_if_steps_linger",
    "load_reactor",
    "parse_inputs",
    "require_inputs",
    "run_list",
    "run_reactor",
    "run_resume",
    "run_show",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_HALTED = 3
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A mistake the user can fix (a bad locator, an unknown input, an unknown run).

    The command prints the message on one line and exits with ``code`` (2).
    """

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# ---- loading a reactor and its inputs ----------------------------------------------------


def load_reactor(locator: str) -> type[Reactor]:
    """The reactor class ``locator`` names (``path/file.py:Name`` or ``module:Name``).

    Raises:
        CliError: The file, module or name does not exist, loading it failed (a
            definition error included), or it is not a Reactor subclass.
    """
    import dsl  # noqa: PLC0415 - only commands that load reactors need it

    try:
        found = dsl.find(locator)
    except LookupError as exc:
        raise CliError(str(exc)) from None
    except dsl.DefinitionError as exc:
        raise CliError(f"{locator}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's file raised: say what and where
        raise CliError(f"{locator}: loading it raised {type(exc).__name__}: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, dsl.Reactor)) or found is dsl.Reactor:
        what = found.__name__ if isinstance(found, type) else type(found).__name__
        raise CliError(f"{locator} is not a Reactor subclass (it is {what!r})")
    return found


def _split(raw: str, option: str, hint: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    key = key.strip()
    if not sep or not key:
        raise CliError(f"{option} {raw!r}: expected {hint}")
    if not key.isidentifier():
        raise CliError(f"{option} {raw!r}: {key!r} is not an input name")
    return key, value


def parse_inputs(pairs: Sequence[str] = (), json_pairs: Sequence[str] = ()) -> dict[str, Any]:
    """The inputs given on the command line.

    ``key=value`` gives a string (the engine converts it to the input's type),
    ``key=@path`` the text of a file, and ``--json-input key=JSON`` a decoded JSON value.

    Raises:
        CliError: A pair without ``=``, a file that cannot be read, invalid JSON, or an
            input given twice.
    """
    given: dict[str, Any] = {}

    def put(option: str, key: str, value: Any) -> None:
        if key in given:
            raise CliError(f"{option} {key}: the input {key!r} is given twice")
        given[key] = value

    for raw in pairs:
        key, value = _split(raw, "--input", "KEY=VALUE or KEY=@FILE")
        if value.startswith("@"):
            path = Path(value[1:]).expanduser()
            try:
                value = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise CliError(f"--input {key}=@{path}: cannot read the file ({reason})") from None
        put("--input", key, value)
    for raw in json_pairs:
        key, text = _split(raw, "--json-input", "KEY=JSON")
        try:
            value = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            raise CliError(f"--json-input {key}: not valid JSON ({exc})") from None
        put("--json-input", key, value)
    return given


def require_inputs(reactor: type[Reactor], given: Mapping[str, Any]) -> None:
    """Check the command line's inputs with the engine's own checker, before starting.

    Raises:
        CliError: An input the reactor does not have, a required one not given (with
            the options that would give it), or one that does not convert.
    """
    try:
        check_inputs(reactor.__plan__, given)
    except InputError as exc:
        hint = " ".join(f"--input {name}=..." for name in exc.missing)
        raise CliError(f"{exc}; pass {hint}" if hint else str(exc)) from None


def has_ask_steps(reactor: type[Reactor], _seen: set[type[Reactor]] | None = None) -> bool:
    """Whether the reactor, or one it composes (at any depth), has an ``ask`` step."""
    seen = _seen if _seen is not None else {reactor}
    for spec in reactor.__plan__.steps.values():
        if spec.kind == "ask":
            return True
        for sub in spec.sub_reactors:
            if sub not in seen:
                seen.add(sub)
                if has_ask_steps(sub, seen):
                    return True
    return False


def format_json(value: Any) -> str:
    """``value`` as indented JSON; what msgspec cannot encode is written as ``str()``."""
    return msgspec.json.format(msgspec.json.encode(value, enc_hook=str), indent=2).decode()


# ---- folding a run's journal -----------------------------------------------------------------


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
        value: Its result (``done``), decoded from JSON.
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
        halted_step: The step that halted it (``halted``).
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
                    if isinstance(name, str):
                        view.step(name).added_by = event.by
                        view.step(name).detail = f"added by {event.by}"
            case StepUndone():
                view.step(event.step).status = "undone"
            case StepUndoFailed():
                step = view.step(event.step)
                step.status, step.error = "undo failed", event.error
            case RunHalted():
                view.status, view.ended_at = "halted", event.at
                view.halted_step, view.reason = event.step, event.reason
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


# ---- the journal, read-only -----------------------------------------------------------------


@contextlib.contextmanager
def _journal(db: Path | None) -> Iterator[Journal]:
    """A Journal on the database at ``db`` (the default path when ``None``).

    Raises:
        CliError: The file does not exist (it is not created by reading).
    """
    from actors import System  # noqa: PLC0415
    from actors.store import Journal, Store  # noqa: PLC0415

    path = Store.path_of(db)
    if not path.is_file():
        raise CliError(f"no database at {path} (no run has been recorded there)")
    with System(Store.spec(path), name="reactor-cli", default_timeout=30.0) as system:
        yield Journal(system.lookup("store"))


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
        console = Console(file=out, soft_wrap=False)
        for each in renderables:
            console.print(each)
        return
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, soft_wrap=False, color_system=None)
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


def run_list(
    *,
    db: Path | None,
    limit: int | None,
    as_json: bool,
    include_children: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``reactor runs list``: newest runs first, as a table or JSON."""
    out, err = out or sys.stdout, err or sys.stderr
    from actors import ActorError  # noqa: PLC0415
    from actors.store import Store  # noqa: PLC0415

    if limit is not None and limit < 1:
        err.write("reactor runs list: error: --limit must be at least 1\n")
        return EXIT_USAGE
    if not Store.path_of(db).is_file():
        if as_json:
            out.write("[]\n")
        else:
            out.write(f"no runs yet (no database at {Store.path_of(db)})\n")
        return EXIT_OK
    try:
        _configure_logging("error")
        with _journal(db) as journal:
            rows = list_runs(journal, limit=limit, include_children=include_children)
    except (CliError, ActorError) as exc:
        err.write(f"reactor runs list: error: {exc}\n")
        return EXIT_USAGE
    if as_json:
        out.write(format_json(rows) + "\n")
        return EXIT_OK
    if not rows:
        out.write("no runs yet\n")
        return EXIT_OK
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
    return EXIT_OK


def _error_line(error: StepError) -> str:
    what = error.kind
    if error.error and error.error != error.kind:
        what = f"{error.kind} ({error.error})"
    return f"{what}: {error.message}"


def run_show(
    run_id: str,
    *,
    db: Path | None,
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``reactor runs show ID``: the run's header and a table of its steps."""
    out, err = out or sys.stdout, err or sys.stderr
    from actors import ActorError  # noqa: PLC0415

    try:
        _configure_logging("error")
        with _journal(db) as journal:
            events = read_history(journal, run_id)
    except (CliError, ActorError) as exc:
        err.write(f"reactor runs show: error: {exc}\n")
        return EXIT_USAGE
    if not events:
        err.write(f"reactor runs show: error: no run {run_id!r} in the journal\n")
        return EXIT_USAGE
    view = fold(events)
    view.status = run_status(view.last_event, view.owner)
    if as_json:
        data = msgspec.to_builtins(view, enc_hook=str)
        for step, built in zip(view.steps, data["steps"], strict=True):
            built["duration"] = step.duration
        out.write(format_json(data) + "\n")
        return EXIT_OK
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
    if view.status == "completed":
        rows.append(("result", Text(_clip(format_json(view.result)))))
    if view.errors:
        lines = [f"{f'step {e.step}' if e.step else 'run'}: {_error_line(e)}" for e in view.errors]
        rows.append(("errors", Text("\n".join(lines))))
    if view.status == "halted":
        rows.append(("halted", Text(f"at step {view.halted_step}: {view.reason}")))
        rows.append(("resume", Text(f"reactor runs resume {view.run_id}")))
    if view.status == "interrupted":
        rows.append(("resume", Text(f"reactor runs resume {view.run_id}")))
    if view.status == "cancelled":
        rows.append(("cancelled", Text(view.reason or "")))
    for label, value in rows:
        header.add_row(label, value)
    _emit(out, header, "", _steps_table(view))
    return EXIT_OK


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
            error = _error_line(step.error)
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


# ---- running -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Done:
    """Put on the events queue by the thread that waits for the run's result."""

    value: Any = None
    error: BaseException | None = None


def _mode(progress: bool, err: TextIO) -> ViewMode:
    if not progress:
        return "none"
    console = Console(file=err)
    return "live" if console.is_terminal and not console.is_dumb_terminal else "plain"


def _configure_logging(log_level: str) -> None:
    """Logs go to standard error, at ``log_level`` (standard output carries results)."""
    import otel  # noqa: PLC0415

    try:
        otel.configure_logging(format="console", level=log_level, stream=sys.stderr)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _configure_tracing() -> None:
    """Tracing as the ``OTEL_*`` variables say (off without them)."""
    import otel  # noqa: PLC0415

    try:
        otel.configure_tracing(service_name=os.environ.get("OTEL_SERVICE_NAME") or "reactor")
    except otel.TracingConfigError as exc:
        raise CliError(str(exc)) from None


def _start_fleet(system: System, err: TextIO) -> Fleet:
    """Model hosts for the ``ask`` steps; say which servers they are."""
    from actors.llm import start_fleet  # noqa: PLC0415
    from actors.testing import fake_servers  # noqa: PLC0415

    try:
        fleet = start_fleet(system, fallback=fake_servers)
    except ValueError as exc:
        raise CliError(f"model hosts: {exc}") from None
    if fleet.is_simulated:
        models = ", ".join(sorted({model for _, model in fleet.models()}))
        err.write(f"no LLM server found: using the built-in fake servers (models: {models})\n")
    else:
        for name, inventory in fleet.inventories.items():
            models = ", ".join(m.id for m in inventory.models) or "no models"
            err.write(f"LLM server {name}: {inventory.server} at {inventory.url} ({models})\n")
    err.flush()
    return fleet


Starter = Callable[["Engine", Sequence["Middleware"]], "RunHandle"]
"""Starts the run on an Engine with the given middleware; returns its RunHandle."""


def _execute(
    system: System,
    reactor: type[Reactor],
    start: Starter,
    *,
    mode: ViewMode,
    db: Path | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """Run on ``system`` with progress; print the outcome; the exit status."""
    from reactor.app import Engine  # noqa: PLC0415

    fleet = _start_fleet(system, err) if has_ask_steps(reactor) else None
    try:
        with Engine(system, fleet=fleet) as engine:
            return _drive(engine, reactor, start, mode=mode, db=db, out=out, err=err)
    finally:
        if fleet is not None:
            fleet.close()


def _drive(
    engine: Engine,
    reactor: type[Reactor],
    start: Starter,
    *,
    mode: ViewMode,
    db: Path | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """Start the run, show its progress until it ends, report; the exit status."""
    from reactor.run import RunError  # noqa: PLC0415

    events: queue.Queue[Any] = queue.Queue()
    model = ProgressModel(reactor=reactor.__plan__.reactor)
    model.add_steps(reactor.__plan__.steps)
    handle: RunHandle | None = None
    interrupted = False
    with make_view(mode, model, err) as view:
        try:
            try:
                handle = start(engine, [QueueMiddleware(events)])
            except (RunError, ValueError, TypeError, LookupError) as exc:
                raise CliError(str(exc)) from None
            done = _wait(handle, events, model, view.feed, view.tick)
        except KeyboardInterrupt:
            interrupted = True
            done = _cancel(handle, events, model, view.feed, view.tick)
    return _report(handle, done, interrupted=interrupted, db=db, out=out, err=err)


def _wait(
    handle: RunHandle,
    events: queue.Queue[Any],
    model: ProgressModel,
    feed: Callable[[Any], None],
    tick: Callable[[], None],
    *,
    give_up: float | None = None,
) -> _Done:
    """Show events until the run's result is in (and its last events are shown)."""

    def wait() -> None:
        try:
            events.put(_Done(value=handle.result()))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            events.put(_Done(error=exc))

    threading.Thread(target=wait, name="reactor-run-result", daemon=True).start()
    done: _Done | None = None
    grace = 0.0
    while True:
        if give_up is not None and time.monotonic() > give_up:
            return done or _Done(error=TimeoutError("the run did not stop in time"))
        try:
            item = events.get(timeout=0.1)
        except queue.Empty:
            if done is not None and (model.outcome is not None or time.monotonic() > grace):
                return done
            tick()
            continue
        if isinstance(item, _Done):
            done, grace = item, time.monotonic() + 0.5
            if model.outcome is not None and events.empty():
                return done
            continue
        feed(item)
        if done is not None and isinstance(item, RunFinishedItem) and events.empty():
            return done


def _cancel(
    handle: RunHandle | None,
    events: queue.Queue[Any],
    model: ProgressModel,
    feed: Callable[[Any], None],
    tick: Callable[[], None],
) -> _Done:
    """Ctrl-C: cancel the run and wait (10 s at most, or until a second Ctrl-C)."""
    if handle is None:
        return _Done(error=KeyboardInterrupt())
    handle.cancel("interrupted (Ctrl-C)")
    try:
        return _wait(handle, events, model, feed, tick, give_up=time.monotonic() + 10.0)
    except KeyboardInterrupt:
        return _Done(error=KeyboardInterrupt())


def _report(  # noqa: PLR0911 - one exit per way a run ends
    handle: RunHandle | None,
    done: _Done,
    *,
    interrupted: bool,
    db: Path | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """Print the result (stdout) or what went wrong (stderr); the exit status."""
    from reactor.run import RunCancelledError, RunFailedError, RunHaltedError  # noqa: PLC0415

    if handle is None:
        err.write("interrupted before the run started\n")
        return EXIT_INTERRUPTED
    run_id, error = handle.run_id, done.error
    resume = f"reactor runs resume {run_id}" + (f" --db {db}" if db is not None else "")
    if interrupted:
        if error is None:
            out.write(format_json(done.value) + "\n")
            err.write(f"run {run_id} completed before it could be cancelled\n")
        elif isinstance(error, RunCancelledError):
            err.write(f"run {run_id} cancelled (Ctrl-C)\n")
        else:
            err.write(f"run {run_id} interrupted (Ctrl-C); it may be resumed with: {resume}\n")
        return EXIT_INTERRUPTED
    match error:
        case None:
            out.write(format_json(done.value) + "\n")
            out.flush()
            err.write(f"run {run_id} completed\n")
            return EXIT_OK
        case RunHaltedError():
            err.write(f"run {run_id} halted at step {error.step}: {error.reason}\n")
            err.write(f"resume it with: {resume}\n")
            return EXIT_HALTED
        case RunFailedError():
            err.write(f"run {run_id} failed:\n")
            for each in error.errors:
                where = f"step {each.step}" if each.step else "run"
                err.write(f"  {where}: {_error_line(each)}\n")
            return EXIT_FAILED
        case RunCancelledError():
            err.write(f"run {run_id} cancelled: {error.reason}\n")
            return EXIT_FAILED
        case _:
            err.write(f"run {run_id} failed: {type(error).__name__}: {error}\n")
            return EXIT_FAILED


def run_reactor(
    locator: str,
    *,
    inputs: Sequence[str] = (),
    json_inputs: Sequence[str] = (),
    db: Path | None = None,
    max_concurrency: int | None = None,
    timeout: float | None = None,
    run_id: str | None = None,
    progress: bool = True,
    mermaid: bool = False,
    log_level: str = "error",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``reactor run LOCATOR``: run a reactor with live progress; the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        reactor = load_reactor(locator)
        if mermaid:
            out.write(reactor.to_mermaid().rstrip("\n") + "\n")
            return EXIT_OK
        given = parse_inputs(inputs, json_inputs)
        require_inputs(reactor, given)
        if max_concurrency is not None and max_concurrency < 1:
            raise CliError("--max-concurrency must be at least 1")
        if timeout is not None and not timeout > 0:
            raise CliError("--timeout must be a number of seconds > 0")
        _configure_logging(log_level)
        _configure_tracing()
    except CliError as exc:
        err.write(f"reactor run: error: {exc}\n")
        return exc.code
    from actors import System  # noqa: PLC0415
    from actors.store import Store  # noqa: PLC0415

    def start(engine: Engine, middleware: Sequence[Middleware]) -> RunHandle:
        return engine.start(
            reactor,
            given,
            run_id=run_id,
            max_concurrency=max_concurrency,
            timeout=timeout,
            middleware=middleware,
        )

    try:
        with System(Store.spec(db), name="reactor") as system:
            return _execute(
                system, reactor, start, mode=_mode(progress, err), db=db, out=out, err=err
            )
    except CliError as exc:
        err.write(f"reactor run: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED
    finally:
        _shutdown_tracing()


def leave_now_if_steps_linger(code: int) -> int:
    """After Ctrl-C, exit at once if a step's thread still runs (it cannot be stopped).

    Python waits for worker threads at exit, so a cancelled ``time.sleep(600)`` step
    would keep the command alive; this is for the ``reactor`` command only, never for
    code that embeds the engine. Returns ``code`` when nothing lingers.
    """
    lingering = [
        t for t in threading.enumerate() if t.name.startswith("reactor-step") and t.is_alive()
    ]
    if code == EXIT_INTERRUPTED and lingering:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _shutdown_tracing() -> None:
    import otel  # noqa: PLC0415

    otel.shutdown_tracing()


def run_resume(
    run_id: str,
    *,
    db: Path | None = None,
    progress: bool = True,
    log_level: str = "error",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``reactor runs resume ID``: continue a halted or interrupted run, with progress."""
    out, err = out or sys.stdout, err or sys.stderr
    from actors import System  # noqa: PLC0415
    from actors.store import Journal, Store  # noqa: PLC0415

    path = Store.path_of(db)
    try:
        if not path.is_file():
            raise CliError(f"no database at {path} (no run has been recorded there)")
        _configure_logging(log_level)
        with System(Store.spec(db), name="reactor") as system:
            history = read_history(Journal(system.lookup("store")), run_id)
            if not history or not isinstance(history[0], RunStarted):
                raise CliError(f"no run {run_id!r} in the journal at {path}")
            view = fold(history)
            if view.status in ("completed", "failed", "cancelled"):
                raise CliError(f"run {run_id} is {view.status}: there is nothing to resume")
            if view.status == "running" and owner_alive(view.owner):
                owner = view.owner
                where = f" (process {owner.pid} on {owner.host})" if owner else ""
                raise CliError(f"run {run_id} is still running{where}")
            reactor = load_reactor(history[0].locator)
            _configure_tracing()

            def start(engine: Engine, middleware: Sequence[Middleware]) -> RunHandle:
                return engine.resume(run_id, middleware=middleware)

            return _execute(
                system, reactor, start, mode=_mode(progress, err), db=db, out=out, err=err
            )
    except CliError as exc:
        err.write(f"reactor runs resume: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED
    finally:
        _shutdown_tracing()
