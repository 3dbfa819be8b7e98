"""``reactor run`` and ``reactor runs list|show|resume``: run reactors, look at runs.

``reactor run path/to/file.py:Name --input key=value`` loads the reactor, checks the
inputs against its plan, starts the system (and the model hosts, only when a step asks
a model), runs it with live progress on standard error and prints the result as JSON
on standard output. The exit status says how it ended: 0 completed, 1 failed (or
cancelled), 3 halted (``reactor runs resume ID`` continues it), 130 interrupted
(Ctrl-C cancels the run), 2 for a mistake on the command line.

``reactor runs list`` and ``reactor runs show`` only read the journal: a run is the
stream ``run:<id>``, and :func:`reactor.run.fold` rebuilds its state from its events.
Parsing the command line is in ``_parse``, showing runs in ``_render``; this module
drives the commands.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console

from reactor.cli._parse import (
    EXIT_FAILED,
    EXIT_HALTED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    has_ask_steps,
    load_reactor,
    parse_context,
    parse_inputs,
    require_inputs,
)
from reactor.cli._render import error_line, format_json, write_run, write_runs
from reactor.observe import (
    ProgressModel,
    QueueMiddleware,
    RunFinishedItem,
    ViewMode,
    make_view,
)
from reactor.run import (
    RunStarted,
    StepError,
    fold,
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
    from reactor.run import Middleware, OnTimeout

__all__ = [
    "leave_now_if_steps_linger",
    "run_list",
    "run_reactor",
    "run_resume",
    "run_show",
]


# ---- the journal, read-only -----------------------------------------------------------------


def usable_store(db: Path | None, *, create: bool) -> Path:
    """Open and check the database before anything starts; its path.

    Raises:
        CliError: It does not exist (unless ``create``), or it cannot be used: one
            line naming the file and the cause (a directory, read-only, not a
            database, a newer schema), instead of a crashing Store actor.
    """
    from actors.store import Store, StoreError  # noqa: PLC0415

    path = Store.path_of(db)
    if not create and not path.exists():
        raise CliError(f"no database at {path} (no run has been recorded there)")
    try:
        return Store.check(path, create=create)
    except StoreError as exc:
        raise CliError(str(exc)) from None


@contextlib.contextmanager
def _journal(db: Path | None) -> Iterator[Journal]:
    """A Journal on the database at ``db`` (the default path when ``None``).

    Raises:
        CliError: The file does not exist (it is not created by reading), or it
            cannot be used (see :func:`usable_store`).
    """
    from actors import System  # noqa: PLC0415
    from actors.store import Journal, Store  # noqa: PLC0415

    path = usable_store(db, create=False)
    with System(Store.spec(path), name="reactor-cli", default_timeout=30.0) as system:
        yield Journal(system.lookup("store"))


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
    if not Store.path_of(db).exists():
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
        err.write(f"reactor runs list: error: cannot read the runs: {exc}\n")
        return EXIT_USAGE
    write_runs(out, rows, as_json=as_json)
    return EXIT_OK


def run_show(
    run_id: str,
    *,
    db: Path | None,
    as_json: bool,
    traceback: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``reactor runs show ID``: the run's header and a table of its steps.

    A journal row that cannot be decoded is named (the run, its seq, what is wrong) on
    standard error and left out; the rest is shown, and the exit status is 1.
    """
    out, err = out or sys.stdout, err or sys.stderr
    from actors import ActorError  # noqa: PLC0415

    damaged: list[tuple[int, str]] = []
    try:
        _configure_logging("error")
        with _journal(db) as journal:
            events = read_history(journal, run_id, damaged=damaged)
    except (CliError, ActorError) as exc:
        err.write(f"reactor runs show: error: {exc}\n")
        return EXIT_USAGE
    for seq, problem in damaged:
        err.write(f"reactor runs show: run {run_id}: journal row seq {seq} is damaged, ")
        err.write(f"left out: {problem}\n")
    if not events:
        if not damaged:
            err.write(f"reactor runs show: error: no run {run_id!r} in the journal\n")
        return EXIT_FAILED if damaged else EXIT_USAGE
    view = fold(events)
    view.status = run_status(view.last_event, view.owner)
    write_run(out, view, run_id, as_json=as_json, traceback=traceback)
    return EXIT_FAILED if damaged else EXIT_OK


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
    """Traces, metrics and log export as the ``OTEL_*`` variables say (off without them).

    The service is ``reactor-swarm`` unless ``OTEL_SERVICE_NAME`` says otherwise, as for
    code that embeds the engine.
    """
    import otel  # noqa: PLC0415

    try:
        otel.configure_telemetry()
    except otel.TracingConfigError as exc:
        raise CliError(str(exc)) from None


def _start_fleet(system: System, err: TextIO) -> Fleet:
    """Model hosts for the ``ask`` steps; say which servers they are."""
    from actors.llm import mask_url, start_fleet  # noqa: PLC0415
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
            where = mask_url(inventory.url)
            if not inventory.reachable:
                err.write(f"LLM server {name}: unreachable at {where} ({inventory.error})\n")
                continue
            models = ", ".join(m.id for m in inventory.models) or "no models"
            err.write(f"LLM server {name}: {inventory.server} at {where} ({models})\n")
    for warning in fleet.warnings:
        err.write(f"warning: {warning}\n")
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
    as_json: bool = False,
) -> int:
    """Run on ``system`` with progress; print the outcome; the exit status."""
    from reactor.app import Engine  # noqa: PLC0415

    fleet = _start_fleet(system, err) if has_ask_steps(reactor) else None
    try:
        with Engine(system, fleet=fleet) as engine:
            return _drive(
                engine, reactor, start, mode=mode, db=db, out=out, err=err, as_json=as_json
            )
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
    as_json: bool = False,
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
            for warning in handle.warnings:
                err.write(f"warning: run {handle.run_id}: {warning}\n")
            done = _wait(handle, events, model, view.feed, view.tick)
        except KeyboardInterrupt:
            interrupted = True
            done = _cancel(handle, events, model, view.feed, view.tick)
    return _report(handle, done, interrupted=interrupted, db=db, out=out, err=err, as_json=as_json)


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


def _report(  # noqa: PLR0911, PLR0912 - one exit per way a run ends
    handle: RunHandle | None,
    done: _Done,
    *,
    interrupted: bool,
    db: Path | None,
    out: TextIO,
    err: TextIO,
    as_json: bool = False,
) -> int:
    """Print the result (stdout) or what went wrong (stderr); the exit status.

    With ``as_json``, standard output gets one JSON object however the run ended
    (:func:`_outcome`), and standard error the same lines as without.
    """
    from reactor.run import (  # noqa: PLC0415
        ResumeError,
        RunCancelledError,
        RunExistsError,
        RunFailedError,
        RunHaltedError,
    )

    if handle is None:
        err.write("interrupted before the run started\n")
        if as_json:
            _write_outcome(out, {"status": "interrupted", "run_id": None})
        return EXIT_INTERRUPTED
    run_id, error = handle.run_id, done.error
    resume = f"reactor runs resume {run_id}" + (f" --db {db}" if db is not None else "")
    if as_json:
        _write_outcome(out, _outcome(run_id, done, interrupted=interrupted, resume=resume))
    result_out = None if as_json else out
    if interrupted:
        if error is None:
            if result_out is not None:
                result_out.write(format_json(done.value) + "\n")
            err.write(f"run {run_id} completed before it could be cancelled\n")
        elif isinstance(error, RunCancelledError):
            err.write(f"run {run_id} cancelled (Ctrl-C)\n")
        else:
            err.write(f"run {run_id} interrupted (Ctrl-C); it may be resumed with: {resume}\n")
        return EXIT_INTERRUPTED
    match error:
        case RunExistsError() | ResumeError():  # refused before any step ran
            err.write(f"reactor: error: {error}\n")
            return EXIT_USAGE
        case None:
            if result_out is not None:
                result_out.write(format_json(done.value) + "\n")
                result_out.flush()
            err.write(f"run {run_id} completed\n")
            return EXIT_OK
        case RunHaltedError():
            where = f" at step {error.step}" if error.step else ""
            err.write(f"run {run_id} halted{where}: {error.reason}\n")
            for other, why in error.halted[1:]:  # steps that halted it side by side
                err.write(f"  also at step {other}: {why}\n")
            err.write(f"resume it with: {resume}\n")
            return EXIT_HALTED
        case RunFailedError():
            err.write(f"run {run_id} failed:\n")
            for each in error.errors:
                where = f"step {each.step}" if each.step else "run"
                err.write(f"  {where}: {error_line(each)}\n")
            if any(each.traceback for each in error.errors):
                err.write(f"(tracebacks: reactor runs show {run_id} --traceback)\n")
            return EXIT_FAILED
        case RunCancelledError():
            err.write(f"run {run_id} cancelled: {error.reason}\n")
            return EXIT_FAILED
        case _:
            err.write(f"run {run_id} failed: {type(error).__name__}: {error}\n")
            return EXIT_FAILED


def _outcome(  # noqa: PLR0911 - one object per way a run ends
    run_id: str, done: _Done, *, interrupted: bool, resume: str
) -> dict[str, Any]:
    """How a run ended, as the JSON object ``--json`` prints.

    ``status`` is ``completed`` (with ``result``), ``failed`` (with ``errors``: step,
    kind, error, message, retryable), ``halted`` (with ``step``, ``null`` when the
    run's timeout halted it, ``reason`` and the ``resume`` command), ``cancelled``
    (with ``reason``) or ``interrupted``.
    """
    from reactor.run import (  # noqa: PLC0415
        ResumeError,
        RunCancelledError,
        RunExistsError,
        RunFailedError,
        RunHaltedError,
    )

    error = done.error
    base: dict[str, Any] = {"run_id": run_id}
    match error:
        case None:
            return {**base, "status": "completed", "result": done.value}
        case RunExistsError() | ResumeError():  # refused before any step ran
            return {**base, "status": "error", "error": str(error), "exit_status": EXIT_USAGE}
        case _ if interrupted:
            return {**base, "status": "interrupted", "resume": resume}
        case RunHaltedError():
            return {
                **base,
                "status": "halted",
                "step": error.step or None,
                "reason": error.reason,
                "halted": [{"step": name, "reason": why} for name, why in error.halted if name],
                "resume": resume,
            }
        case RunFailedError():
            return {**base, "status": "failed", "errors": [_error_json(e) for e in error.errors]}
        case RunCancelledError():
            return {**base, "status": "cancelled", "reason": error.reason}
        case _:
            problem = {
                "step": "",
                "kind": "internal",
                "error": type(error).__name__,
                "message": str(error),
                "retryable": False,
            }
            return {**base, "status": "failed", "errors": [problem]}


def _error_json(error: StepError) -> dict[str, Any]:
    """One failure as ``--json`` prints it: each documented key, and its traceback if any."""
    shown: dict[str, Any] = {
        "step": error.step,
        "kind": error.kind,
        "error": error.error,
        "message": error.message,
        "retryable": error.retryable,
    }
    if error.traceback:
        shown["traceback"] = error.traceback
    return shown


def _write_outcome(out: TextIO, outcome: dict[str, Any]) -> None:
    out.write(format_json(outcome) + "\n")
    out.flush()


def _on_timeout(value: str) -> OnTimeout:
    """``--on-timeout``'s value (checked already) as the engine's type."""
    return "halt" if value == "halt" else "fail"


def _usage_error(command: str, exc: CliError, out: TextIO, err: TextIO, *, as_json: bool) -> int:
    """One line on standard error (and, with ``--json``, an object on standard output)."""
    err.write(f"reactor {command}: error: {exc}\n")
    if as_json:
        _write_outcome(out, {"status": "error", "error": str(exc), "exit_status": exc.code})
    return exc.code


def run_reactor(
    locator: str,
    *,
    inputs: Sequence[str] = (),
    json_inputs: Sequence[str] = (),
    db: Path | None = None,
    max_concurrency: int | None = None,
    timeout: float | None = None,
    on_timeout: str | None = None,
    max_iterations: int | None = None,
    halt_timeout: float | None = None,
    idle_timeout: float | None = None,
    run_id: str | None = None,
    context: Sequence[str] = (),
    progress: bool = True,
    mermaid: bool = False,
    log_level: str = "error",
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``reactor run LOCATOR``: run a reactor with live progress; the exit status.

    With ``as_json`` standard output gets one JSON object however it ends (a usage
    error included): ``{"status": ..., "run_id": ..., "result" | "errors" | ...}``.
    """
    out, err = out or sys.stdout, err or sys.stderr
    try:
        reactor = load_reactor(locator)
        if mermaid:
            out.write(reactor.to_mermaid().rstrip("\n") + "\n")
            return EXIT_OK
        given = parse_inputs(inputs, json_inputs)
        run_context = parse_context(context)
        require_inputs(reactor, given)
        if max_concurrency is not None and max_concurrency < 1:
            raise CliError("--max-concurrency must be at least 1")
        if timeout is not None and not timeout > 0:
            raise CliError("--timeout must be a number of seconds > 0")
        if on_timeout not in {None, "fail", "halt"}:
            raise CliError(f"--on-timeout must be fail or halt, got {on_timeout!r}")
        when_late: OnTimeout | None = None if on_timeout is None else _on_timeout(on_timeout)
        if max_iterations is not None and max_iterations < 0:
            raise CliError("--max-iterations must be at least 0")
        if halt_timeout is not None and not halt_timeout > 0:
            raise CliError("--halt-timeout must be a number of seconds > 0")
        if idle_timeout is not None and not idle_timeout > 0:
            raise CliError("--idle-timeout must be a number of seconds > 0")
        _configure_logging(log_level)
        _configure_tracing()
    except CliError as exc:
        return _usage_error("run", exc, out, err, as_json=as_json)
    from actors import System  # noqa: PLC0415
    from actors.store import Store  # noqa: PLC0415

    def start(engine: Engine, middleware: Sequence[Middleware]) -> RunHandle:
        return engine.start(
            reactor,
            given,
            run_id=run_id,
            max_concurrency=max_concurrency,
            timeout=timeout,
            on_timeout=when_late,
            max_iterations=max_iterations,
            halt_timeout=halt_timeout,
            idle_timeout=idle_timeout,
            middleware=middleware,
            context=run_context,
        )

    try:
        path = usable_store(db, create=True)  # before anything runs: one line if unusable
        with System(Store.spec(path), name="reactor") as system:
            if run_id is not None:
                _refuse_existing(system, run_id)
            return _execute(
                system,
                reactor,
                start,
                mode=_mode(progress, err),
                db=db,
                out=out,
                err=err,
                as_json=as_json,
            )
    except CliError as exc:
        return _usage_error("run", exc, out, err, as_json=as_json)
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED
    finally:
        _shutdown_tracing()


def _refuse_existing(system: System, run_id: str) -> None:
    """``--run-id`` of a run in the journal: refuse before the fleet starts (1).

    Two processes that check at once both pass here; the journal then accepts only
    the first ``RunStarted`` and the other run fails with ``RunExistsError`` before
    its first step (reported by :func:`_report`).
    """
    from actors.store import Journal  # noqa: PLC0415
    from reactor.run import RunExistsError, stream_of  # noqa: PLC0415

    journal = Journal(system.lookup("store"))
    entries = journal.read(stream_of(run_id), limit=1)
    if not entries:
        return
    detail = ""
    history = read_history(journal, run_id, damaged=[])
    if history and isinstance(history[0], RunStarted):
        view = fold(history)
        status = run_status(view.last_event, view.owner)
        detail = f"reactor {history[0].reactor!r}, {status}"
    raise CliError(str(RunExistsError(run_id=run_id, reactor="", detail=detail)))


def leave_now_if_steps_linger(code: int) -> int:
    """Once the run has ended, exit at once if a step's thread still runs.

    A plain ``def`` step that timed out, or was cancelled by Ctrl-C, keeps running in
    its worker thread (a thread cannot be stopped), and Python waits for worker
    threads at exit, so a ``time.sleep(600)`` step would keep the command alive long
    after its run was reported. The run is over and journaled by now; this is for the
    ``reactor`` command only, never for code that embeds the engine. Returns ``code``
    when nothing lingers.
    """
    lingering = [
        t for t in threading.enumerate() if t.name.startswith("reactor-step") and t.is_alive()
    ]
    if lingering:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _shutdown_tracing() -> None:
    """Send what is buffered, waiting at most a second for the collector."""
    import otel  # noqa: PLC0415

    otel.shutdown_telemetry(timeout=1.0)


def run_resume(
    run_id: str,
    *,
    db: Path | None = None,
    progress: bool = True,
    log_level: str = "error",
    as_json: bool = False,
    force: bool = False,
    locator: str | None = None,
    options: Mapping[str, Any] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``reactor runs resume ID [FILE.py[:NAME]]``: continue a halted or interrupted run.

    ``locator`` loads the reactor from a new place (its file moved; ``NAME`` defaults
    to the one the run started with). A run whose reactor's steps changed is refused
    (exit 2, naming the changes) unless ``force``; a changed source only warns.
    ``as_json``: one JSON object on standard output, as for ``reactor run --json``.
    ``options``: run options given anew (``timeout``, ``max_iterations``, ...; see
    :meth:`~reactor.app.Engine.resume`); a bad one is exit 2, naming it.
    """
    out, err = out or sys.stdout, err or sys.stderr
    from actors import System  # noqa: PLC0415
    from actors.store import Journal, Store  # noqa: PLC0415
    from reactor.run import RunError  # noqa: PLC0415

    try:
        _configure_logging(log_level)
        path = usable_store(db, create=False)
        with System(Store.spec(path), name="reactor") as system:
            try:
                history = read_history(Journal(system.lookup("store")), run_id)
            except RunError as exc:
                raise CliError(str(exc)) from None
            if not history or not isinstance(history[0], RunStarted):
                raise CliError(f"no run {run_id!r} in the journal at {path}")
            view = fold(history)
            if view.status in ("completed", "failed", "cancelled"):
                raise CliError(f"run {run_id} is {view.status}: there is nothing to resume")
            if view.status == "running" and owner_alive(view.owner):
                owner = view.owner
                where = f" ({owner.describe()})" if owner else ""
                raise CliError(f"run {run_id} is still running{where}")
            given = _moved_locator(locator, history[0]) if locator else None
            try:
                reactor = load_reactor(given or _last_locator(history))
            except CliError as exc:
                if given:
                    raise
                hint = f"if its file moved, pass its new path: reactor runs resume {run_id} NEW.py"
                raise CliError(f"{exc} ({hint})") from None
            _configure_tracing()

            def start(engine: Engine, middleware: Sequence[Middleware]) -> RunHandle:
                return engine.resume(
                    run_id,
                    middleware=middleware,
                    force=force,
                    reactor=reactor if given else None,
                    **(options or {}),
                )

            return _execute(
                system,
                reactor,
                start,
                mode=_mode(progress, err),
                db=db,
                out=out,
                err=err,
                as_json=as_json,
            )
    except CliError as exc:
        return _usage_error("runs resume", exc, out, err, as_json=as_json)
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED
    finally:
        _shutdown_tracing()


def _moved_locator(locator: str, started: RunStarted) -> str:
    """``FILE.py`` alone names the reactor the run started with, in that file."""
    if locator.endswith(".py"):
        name = started.locator.rpartition(":")[2] or started.reactor
        return f"{locator}:{name}"
    return locator


def _last_locator(history: Sequence[Any]) -> str:
    """Where the reactor was loaded from last (a resume from a new path moves it)."""
    from reactor.run import RunResumed  # noqa: PLC0415

    for event in reversed(history):
        if isinstance(event, RunResumed) and event.locator:
            return event.locator
    started = history[0]
    return str(started.locator)
