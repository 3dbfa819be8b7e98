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
from collections.abc import Callable, Iterator, Sequence
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
    from reactor.run import Middleware

__all__ = [
    "leave_now_if_steps_linger",
    "run_list",
    "run_reactor",
    "run_resume",
    "run_show",
]


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
    write_runs(out, rows, as_json=as_json)
    return EXIT_OK


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
    write_run(out, view, run_id, as_json=as_json)
    return EXIT_OK


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
                err.write(f"  {where}: {error_line(each)}\n")
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
    context: Sequence[str] = (),
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
        run_context = parse_context(context)
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
            context=run_context,
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
    """Send what is buffered, waiting at most a second for the collector."""
    import otel  # noqa: PLC0415

    otel.shutdown_telemetry(timeout=1.0)


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
