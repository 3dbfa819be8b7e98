"""The ``reactor`` command line.

Subcommands:

* ``reactor demo [--topic T] [--db PATH]``: run the example reactor (parallel ``ask``
  steps, then one that combines them) on a local LLM server or the built-in fakes.
* ``reactor actors-demo [--db PATH]``: the actor runtime alone: supervised actors, a
  crash and a restart, and the trace of every request.
* ``reactor discover [URL ...] [--json]``: find LLM servers (the given URLs and the
  default local ports) and list their models.
* ``reactor models [--config F] [--db PATH] [--json]``: the model catalog: every model on
  every host, loaded or not, context, price, health, tier and its selection history.
* ``reactor fake-server --protocol P --port N [--models a,b] [faults]``: serve a fake
  LLM server that speaks a real protocol (or imitates a real server's flavour, such as
  ``llama-cpp-python``), to try reactors offline; ``--status 429 --retry-after 2``,
  ``--hang``, ``--close-after N``, ``--malformed``, ... make it misbehave.
* ``reactor run path/to/file.py:Name [--input key=value ...]``: run a reactor with live
  progress on standard error; its result is printed as JSON on standard output.
* ``reactor runs list|show|resume|undo``: the runs in the journal; one run's steps
  (``--traceback``: each failure's traceback); continue a halted or interrupted run
  (``--force`` when its steps changed, ``FILE.py`` when its file moved); roll back a
  completed one.
* ``reactor spend [--since HOURS] [--json]``: budgets (limit, spend, rate, when each
  runs out) and spend per model, from the journal's ``spend`` table.
* ``reactor version`` (or ``reactor --version``): print the installed version.

Every subcommand and argument has help (``reactor COMMAND --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reactor", description="Reactor Swarm: orchestrate many LLMs as actors."
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="run the example reactor: parallel ask steps, then one combining them"
    )
    demo.add_argument("--topic", default=None, help="what the analysts brief on")
    demo.add_argument("--no-progress", action="store_true", help="no live progress display")
    actors_demo = commands.add_parser(
        "actors-demo", help="the actor runtime alone: supervised actors and their traces"
    )
    for each in (demo, actors_demo):
        each.add_argument(
            "--db",
            type=Path,
            default=None,
            help="SQLite file for the journal (default: REACTOR_DB, else the user data dir)",
        )
        _log_level_option(each, default="critical")
    discover = commands.add_parser("discover", help="find LLM servers and list their models")
    discover.add_argument("urls", nargs="*", metavar="URL", help="endpoints to probe as well")
    discover.add_argument("--json", action="store_true", help="print JSON instead of a table")
    discover.add_argument(
        "--no-defaults",
        action="store_true",
        help="probe only the given URLs, not the default local ports",
    )
    discover.add_argument(
        "--timeout", type=float, default=1.0, help="seconds per probe (default 1.0)"
    )
    models = commands.add_parser(
        "models", help="the model catalog: hosts, state, context, price, health, history"
    )
    models.add_argument(
        "--config", type=Path, default=None, help="the TOML file (default: REACTOR_CONFIG, ...)"
    )
    _db_option(models)
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.add_argument(
        "--no-discovery", action="store_true", help="only the configured hosts, no probing"
    )
    models.add_argument(
        "--simulated",
        action="store_true",
        help="with no server found, show the built-in fake servers' models",
    )
    fake = commands.add_parser("fake-server", help="serve a fake LLM server on 127.0.0.1")
    fake.add_argument(
        "--protocol",
        required=True,
        choices=sorted(_fake_protocols()),
        help="which server to imitate",
    )
    fake.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    fake.add_argument(
        "--models",
        default="",
        help="comma-separated model ids (default: fake-small,fake-large)",
    )
    fake.add_argument("--latency", type=_SECONDS, default=0.0, help="seconds before each answer")
    fake.add_argument(
        "--token-delay", type=_SECONDS, default=0.0, help="seconds between streamed tokens"
    )
    fake.add_argument(
        "--reply-words",
        type=_COUNT,
        default=0,
        help="answer every request with this many words (default: echo the prompt)",
    )
    fake.add_argument(
        "--context-length",
        type=_TIMES,
        default=None,
        help="every model's context window in tokens (longer prompts get the server's error)",
    )
    fake.add_argument(
        "--refuses",
        action="append",
        type=_refusal,
        default=[],
        metavar="MODEL=FIELD[,FIELD...]",
        help="MODEL answers 400 to a request carrying FIELD, as OpenAI's reasoning models "
        "do (e.g. gpt-5-mini=temperature,stop; repeatable; OpenAI-protocol fakes only)",
    )
    _fault_options(fake)
    _add_run_commands(commands)
    agent_actions = _add_agent_commands(commands)
    from reactor.cli._daemon import add_client_commands, add_daemon_commands  # noqa: PLC0415

    add_daemon_commands(commands)
    add_client_commands(commands, agent_actions)
    spend = commands.add_parser(
        "spend", help="budgets (limit, spent, rate, when each runs out) and spend per model"
    )
    _db_option(spend)
    spend.add_argument(
        "--config", type=Path, default=None, help="the configuration file (its [budgets])"
    )
    spend.add_argument(
        "--since", type=float, default=24.0, help="hours of spend to total (default 24)"
    )
    spend.add_argument("--json", action="store_true", help="print JSON instead of tables")
    commands.add_parser("version", help="print the version")
    return parser


def _number(
    kind: Callable[[str], float], low: float, high: float | None = None, *, what: str
) -> Callable[[str], Any]:
    """An argparse ``type`` that reads ``kind`` and refuses values outside [low, high]."""

    def read(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            msg = f"{text!r} is not {what}"
            raise argparse.ArgumentTypeError(msg) from None
        if value < low or (high is not None and value > high):
            msg = f"{text} is not {what}"
            raise argparse.ArgumentTypeError(msg)
        return value

    return read


_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NEEDED_FIELDS = frozenset({"model", "messages"})
"""Fields no chat request goes without: a model refusing them would refuse everything."""


def _refusal(text: str) -> tuple[str, tuple[str, ...]]:
    """``--refuses MODEL=FIELD[,FIELD...]`` read: the model and the fields it refuses."""
    model, equals, listed = text.partition("=")
    model = model.strip()
    fields = tuple(f.strip() for f in listed.split(",") if f.strip())
    if not equals or not model or not fields:
        msg = f"{text!r} is not MODEL=FIELD[,FIELD...] (e.g. gpt-5-mini=temperature,stop)"
        raise argparse.ArgumentTypeError(msg)
    for field in fields:
        if not _FIELD.fullmatch(field):
            msg = f"{field!r} (in {text!r}) is not a request field's name"
            raise argparse.ArgumentTypeError(msg)
        if field in _NEEDED_FIELDS:
            msg = f"{model} cannot refuse {field!r}: every chat request carries it"
            raise argparse.ArgumentTypeError(msg)
    return model, fields


_STATUS = _number(int, 100, 599, what="an HTTP status (100 to 599)")
_SECONDS = _number(float, 0, what="a number of seconds >= 0")
_COUNT = _number(int, 0, what="a whole number >= 0")
_TIMES = _number(int, 1, what="a whole number >= 1")


def _fault_options(fake: argparse.ArgumentParser) -> None:
    """The faults ``actors.testing.Fault`` has, as options of ``reactor fake-server``."""
    faults = fake.add_argument_group(
        "faults", "what goes wrong, for every request (or the first --fault-times)"
    )
    faults.add_argument(
        "--status",
        type=_STATUS,
        default=None,
        help="answer with this HTTP status and its error body",
    )
    faults.add_argument("--message", default=None, help="the error message of --status")
    faults.add_argument(
        "--code", default=None, help="a vendor error code (e.g. context_length_exceeded)"
    )
    faults.add_argument(
        "--retry-after", type=_SECONDS, default=None, help="seconds sent as retry-after (with 429)"
    )
    faults.add_argument("--ttft", type=_SECONDS, default=0.0, help="seconds before the first token")
    faults.add_argument("--hang", action="store_true", help="never answer")
    faults.add_argument(
        "--close-after", type=_COUNT, default=None, help="drop the connection after N stream events"
    )
    faults.add_argument("--malformed", action="store_true", help="answer with malformed JSON")
    faults.add_argument(
        "--error-after", type=_COUNT, default=None, help="send an error event after N stream events"
    )
    faults.add_argument(
        "--done-after",
        type=_COUNT,
        default=None,
        help="end streams after N events with [DONE] and no finish reason",
    )
    faults.add_argument(
        "--empty-stream", action="store_true", help="answer streams with 200 and an empty body"
    )
    faults.add_argument(
        "--fault-times",
        type=_TIMES,
        default=None,
        help="apply the faults to the first N requests only (default: every request)",
    )
    faults.add_argument("--fault-model", default=None, help="only requests for this model")
    faults.add_argument("--fault-path", default=None, help="only paths containing this")


def _run_options(parser: argparse.ArgumentParser, *, resume: bool) -> None:
    """The run's limits: given to ``reactor run``, or anew to ``reactor runs resume``."""
    again = " (default: as journaled; given here, kept by every later resume)"
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=None,
        help="steps running at once at most" + (again if resume else ""),
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=("seconds the run may take from this resume" + again)
        if resume
        else "seconds the whole run may take",
    )
    parser.add_argument(
        "--on-timeout",
        choices=("fail", "halt"),
        default=None,
        help=(
            "what the run does once its timeout passes: fail (cancel running steps, "
            "roll back, fail) or halt (start no more steps, let running ones finish, "
            "halt; `reactor runs resume` continues it)"
            + (again if resume else "; default: the reactor's, else fail")
        ),
    )
    parser.add_argument(
        "--max-iterations",
        type=int,
        default=None,
        help=(
            "how many times the run's steps may re-emit themselves (loop) before it halts"
            + (
                ", counted from this resume" + again
                if resume
                else " (default: the reactor's, else no limit)"
            )
        ),
    )
    parser.add_argument(
        "--halt-timeout",
        type=float,
        default=None,
        help=(
            "seconds a halting run waits for its running steps before it cancels them "
            "(they run again on resume)" + (again if resume else "; default: as long as they take")
        ),
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        help=(
            "seconds the run may go without progress (a step starting, ending, retrying, "
            "or calling StepContext.heartbeat()); then --on-timeout applies"
            + (", counted from this resume" + again if resume else "; default: no limit")
        ),
    )


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="SQLite file of the journal (default: REACTOR_DB, else the user data dir)",
    )


def _progress_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="show no progress on standard error (the result still goes to standard output)",
    )
    _log_level_option(parser, default="error")


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
"""What ``--log-level`` accepts (any case)."""


def _log_level_option(parser: argparse.ArgumentParser, *, default: str) -> None:
    parser.add_argument(
        "--log-level",
        default=default,
        type=str.lower,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help=f"log lines on standard error from this level up: {', '.join(LOG_LEVELS)} "
        f"(default {default})",
    )


def _json_outcome_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print how the run ended as one JSON object on standard output (status, "
        "run_id, and result, errors or the halting step), failures included",
    )


def _add_run_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="run a reactor: live progress on stderr, the result as JSON on stdout",
        description=(
            "Run a reactor. Exit status: 0 completed, 1 failed or cancelled, 2 a mistake "
            "on the command line, 3 halted (resume with `reactor runs resume ID`), "
            "130 interrupted (Ctrl-C cancels the run)."
        ),
    )
    run.add_argument(
        "locator", metavar="FILE.py:NAME", help="the reactor: path/to/file.py:Name or module:Name"
    )
    run.add_argument(
        "--input",
        "-i",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an input as text (KEY=@FILE: the file's text); converted to the input's type",
    )
    run.add_argument(
        "--json-input",
        "-j",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="an input as a JSON value",
    )
    _db_option(run)
    _run_options(run, resume=False)
    run.add_argument("--run-id", default=None, help="the run's id (default: a new one)")
    run.add_argument(
        "--context",
        "-c",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a value of the run's context (a string), for steps, guards and middleware",
    )
    _progress_options(run)
    _json_outcome_option(run)
    run.add_argument(
        "--mermaid", action="store_true", help="print the reactor as a Mermaid flowchart; no run"
    )
    runs = commands.add_parser(
        "runs", help="the runs in the journal: list, show, resume, undo, approve, reject"
    )
    actions = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the newest runs first")
    _db_option(listing)
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument(
        "--all", action="store_true", help="also the runs that other runs composed"
    )
    show = actions.add_parser("show", help="one run: its inputs, outcome and steps")
    show.add_argument("run_id", metavar="RUN_ID", help="the run (as `reactor runs list` shows)")
    _db_option(show)
    show.add_argument("--json", action="store_true", help="print JSON instead of tables")
    show.add_argument(
        "--traceback", action="store_true", help="print the traceback of each failure"
    )
    resume = actions.add_parser(
        "resume",
        help="continue a halted or interrupted run, with live progress",
        description=(
            "Continue a halted or interrupted run. Refused (exit 2) when the reactor's "
            "steps changed since the run started, unless --force; a changed source file "
            "only warns."
        ),
    )
    resume.add_argument("run_id", metavar="RUN_ID", help="the halted or interrupted run")
    resume.add_argument(
        "locator",
        nargs="?",
        default=None,
        metavar="FILE.py[:NAME]",
        help="where the reactor is now, if its file moved (NAME: the one it started with)",
    )
    resume.add_argument(
        "--force",
        action="store_true",
        help="resume even though the reactor's steps changed since the run started",
    )
    _run_options(resume, resume=True)
    _db_option(resume)
    _progress_options(resume)
    _json_outcome_option(resume)
    undo = actions.add_parser(
        "undo",
        help="roll back a completed run whose completed steps all have an undo",
        description="Exit status: 0 undone, 1 an undo failed, 2 refused (nothing undone).",
    )
    undo.add_argument("run_id", metavar="RUN_ID", help="the completed run to roll back")
    _db_option(undo)
    _log_level_option(undo, default="error")
    _tool_commands(commands, actions)
    _session_commands(commands)
    _remote_run_commands(actions, listing, show, resume)


def _remote_run_commands(actions: Any, *remote: argparse.ArgumentParser) -> None:
    """``--server URL`` on runs list/show/resume, and runs start/cancel (daemon only)."""
    for each in remote:
        each.add_argument(
            "--server", default=None, help="ask this daemon (URL) instead of the local journal"
        )
        each.add_argument("--token-file", type=Path, default=None, help="the daemon's token file")
    start = actions.add_parser("start", help="start a run of a reactor the daemon serves")
    start.add_argument("reactor", metavar="REACTOR", help="the reactor's name or locator")
    start.add_argument(
        "--input", action="append", default=[], metavar="KEY=VALUE", help="an input (repeatable)"
    )
    cancel = actions.add_parser("cancel", help="cancel a run on the daemon")
    cancel.add_argument("run_id", metavar="RUN_ID", help="the run")
    for each in (start, cancel):
        each.add_argument("--server", default="http://127.0.0.1:8765", help="the daemon's URL")
        each.add_argument("--token-file", type=Path, default=None, help="the daemon's token file")
        each.add_argument("--json", action="store_true", help="print JSON")


def _version() -> str:
    try:
        return metadata.version("reactor-swarm")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def _tool_commands(commands: Any, actions: Any) -> None:
    """``runs approve|reject`` and ``tools audit|pending``."""
    for action, what in (("approve", "approve"), ("reject", "reject")):
        decide = actions.add_parser(
            action,
            help=f"{what} a tool call the run halted for (then resume the run)",
        )
        decide.add_argument("run_id", metavar="RUN_ID", help="the run halted for the call")
        decide.add_argument(
            "call_id", metavar="CALL_ID", help="the call (as `reactor tools pending` shows)"
        )
        _db_option(decide)
        decide.add_argument("--by", default="", help="who decides (the audit log names them)")
        if action == "approve":
            decide.add_argument(
                "--arguments", default=None, help="run with these arguments instead (JSON object)"
            )
        else:
            decide.add_argument("--message", default="", help="what the model is told")
    tools = commands.add_parser("tools", help="tool calls: the audit log, calls awaiting approval")
    tool_actions = tools.add_subparsers(dest="tools_command", required=True, metavar="ACTION")
    audit = tool_actions.add_parser("audit", help="audit records, newest first")
    _db_option(audit)
    audit.add_argument("--run", default=None, help="only this run's calls")
    audit.add_argument("--tool", default=None, help="only this tool's calls")
    audit.add_argument("--since", default=None, help="from this time (ISO 8601 or Unix seconds)")
    audit.add_argument("--until", default=None, help="before this time (ISO 8601 or Unix seconds)")
    audit.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    audit.add_argument("--json", action="store_true", help="print JSON")
    pending = tool_actions.add_parser("pending", help="a run's tool calls awaiting approval")
    pending.add_argument("run_id", metavar="RUN_ID", help="the halted run")
    _db_option(pending)
    pending.add_argument("--json", action="store_true", help="print JSON")


def _session_commands(commands: Any) -> None:
    """``sessions start|step|execute|show|share|search|capabilities|stats|audit``."""
    sessions = commands.add_parser(
        "sessions", help="collaborative reasoning sessions: steps, decisions, search, analytics"
    )
    actions = sessions.add_subparsers(dest="sessions_command", required=True, metavar="ACTION")

    def action(name: str, help_text: str, *, agent: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
        _db_option(parser)
        if agent:
            parser.add_argument(
                "--agent", required=True, help="the agent making the request (access is checked)"
            )
        return parser

    start = action("start", "initiate a session; prints its id")
    start.add_argument("task", metavar="TASK", help="what the session reasons about")
    start.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    start.add_argument(
        "--participant", action="append", default=[], help="another agent let in (repeatable)"
    )
    start.add_argument("--open", action="store_true", help="let every agent in")
    step = action("step", "add a reasoning step")
    step.add_argument("session_id", metavar="SESSION_ID", help="the session")
    step.add_argument("text", metavar="TEXT", help="the reasoning")
    step.add_argument(
        "--type",
        default="analysis",
        choices=["analysis", "hypothesis", "conclusion", "critique", "synthesis"],
        help="the step type (default analysis)",
    )
    step.add_argument(
        "--builds-on", type=int, default=None, help="the step it builds on (default the latest)"
    )
    execute = action("execute", "run an orchestrated decision and wait for it")
    execute.add_argument("session_id", metavar="SESSION_ID", help="the session")
    execute.add_argument("prompt", metavar="PROMPT", help="the question to decide")
    execute.add_argument(
        "--task-type",
        default="general",
        choices=["code", "reasoning", "analysis", "general", "creative"],
        help="the task type (default general)",
    )
    execute.add_argument(
        "--wait", type=float, default=600.0, help="seconds to wait for the decision (default 600)"
    )
    show = action("show", "a session: steps, decisions, results")
    show.add_argument("session_id", metavar="SESSION_ID", help="the session")
    share = action("share", "the owner lets agents in, or opens or closes the session")
    share.add_argument("session_id", metavar="SESSION_ID", help="the session")
    share.add_argument(
        "--participant", action="append", default=[], help="an agent to let in (repeatable)"
    )
    share.add_argument("--open", action="store_true", default=None, help="open it to every agent")
    share.add_argument("--close", action="store_true", help="close it to all but its members")
    search = action("search", "full-text search over tasks, steps and results")
    search.add_argument("query", metavar="QUERY", nargs="?", default="", help="words to find")
    search.add_argument("--tag", action="append", default=[], help="only with this tag")
    search.add_argument(
        "--status", default=None, choices=["active", "executing", "decided"], help="only this"
    )
    search.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    capabilities = action("capabilities", "models, strategies and GPU memory for decisions")
    stats = action("stats", "interactions, collaboration and performance per agent", agent=False)
    audit = action("audit", "the audit trail, newest first", agent=False)
    audit.add_argument("--agent", default="", help="only this agent's operations")
    audit.add_argument("--session", default="", help="only this session's operations")
    audit.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    for parser in (execute, capabilities):
        parser.add_argument("--config", type=Path, default=None, help="the TOML configuration")
        parser.add_argument(
            "--simulated",
            action="store_true",
            help="use fake model servers when no LLM server is found",
        )
    for parser in (start, step, execute, show, share, search, capabilities, stats, audit):
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument(
            "--server", default=None, help="ask this daemon (URL) instead of the local store"
        )
        parser.add_argument("--token-file", type=Path, default=None, help="the daemon's token file")


def _sessions(args: argparse.Namespace) -> int:
    from reactor.cli._sessions import SessionsCommand, run_sessions  # noqa: PLC0415

    def get(name: str, default: Any) -> Any:
        return getattr(args, name, default)

    opened = get("open", None)
    if get("close", False):
        opened = False
    command = SessionsCommand(
        action=args.sessions_command,
        db=args.db,
        agent=get("agent", "") or "",
        session_id=get("session_id", "") or get("session", "") or "",
        text=get("task", None) or get("text", None) or get("prompt", None) or get("query", ""),
        step_type=get("type", "analysis"),
        builds_on=get("builds_on", None),
        task_type=get("task_type", "general"),
        tags=get("tag", []),
        participants=get("participant", []),
        open=opened,
        status=get("status", None),
        limit=get("limit", 20),
        wait=get("wait", 600.0),
        config=get("config", None),
        simulated=get("simulated", False),
        as_json=args.json,
        server=get("server", None),
        token_file=get("token_file", None),
    )
    return run_sessions(command)


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=None, help="the TOML file (default: REACTOR_CONFIG, ...)"
    )
    _db_option(parser)
    parser.add_argument(
        "--simulated",
        action="store_true",
        help="with no LLM server found, use the built-in fake servers",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _add_agent_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> Any:
    """``agents``, ``conversations`` and ``review``; returns the ``agents`` actions.

    The daemon's client adds ``update``, ``delete`` and ``--server`` to those actions.
    """
    agents = commands.add_parser("agents", help="agents: list, show, templates, create, ask")
    actions = agents.add_subparsers(dest="agents_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every stored agent")
    _db_option(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = actions.add_parser("show", help="one agent: its definition and history")
    show.add_argument("name", help="the agent's name")
    _db_option(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    templates = actions.add_parser("templates", help="agent templates and their parameters")
    templates.add_argument(
        "--file", type=Path, default=None, help="a TOML or YAML file of templates"
    )
    templates.add_argument("--json", action="store_true", help="print JSON")
    create = actions.add_parser("create", help="define an agent from a template (checked first)")
    create.add_argument("name", help="the agent's name")
    create.add_argument(
        "--template", default=None, help="the template's name (required without --server)"
    )
    create.add_argument("--file", type=Path, default=None, help="a TOML or YAML file of templates")
    create.add_argument("--model", default=None, help="its model (default: the template's)")
    create.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter (the value as JSON, else text)",
    )
    create.add_argument("--replace", action="store_true", help="redefine an existing agent")
    create.add_argument(
        "--config", type=Path, default=None, help="the TOML file (default: REACTOR_CONFIG, ...)"
    )
    _db_option(create)
    ask = actions.add_parser("ask", help="ask an agent; print its answer")
    ask.add_argument("name", help="the agent's name")
    ask.add_argument("message", help="what it is told")
    _model_options(ask)
    _add_conversation_commands(commands)
    return actions


def _add_conversation_commands(commands: Any) -> None:
    conversations = commands.add_parser("conversations", help="conversations: list, show, resume")
    conv_actions = conversations.add_subparsers(
        dest="conversations_command", required=True, metavar="ACTION"
    )
    conv_list = conv_actions.add_parser("list", help="stored conversations, newest first")
    _db_option(conv_list)
    conv_list.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    conv_list.add_argument("--json", action="store_true", help="print JSON")
    conv_show = conv_actions.add_parser("show", help="one conversation's messages")
    conv_show.add_argument("id", help="the conversation's id")
    _db_option(conv_show)
    conv_show.add_argument("--json", action="store_true", help="print JSON")
    resume = conv_actions.add_parser("resume", help="run more rounds of a conversation")
    resume.add_argument("id", help="the conversation's id")
    resume.add_argument("--rounds", type=int, default=1, help="rounds to run (default 1)")
    resume.add_argument(
        "--pattern",
        choices=["round_robin", "selector"],
        default="round_robin",
        help="who speaks next: in turn, or chosen by a model",
    )
    resume.add_argument("--keyword", default=None, help="a word that ends the conversation")
    _model_options(resume)
    review = commands.add_parser(
        "review", help="review a pull request with specialist agents, then summarise"
    )
    review.add_argument(
        "--pr-json",
        type=Path,
        required=True,
        help="`gh pr view N --json title,body,files,additions,deletions` output",
    )
    review.add_argument("--diff", type=Path, default=None, help="`gh pr diff N` output")
    review.add_argument(
        "--reviewer",
        action="append",
        default=[],
        help="a reviewing agent (repeatable; default: senior developer, security, performance, UX)",
    )
    review.add_argument(
        "--model", default=None, help="the default reviewers' model (default: the templates')"
    )
    _model_options(review)


def _fake_protocols() -> list[str]:
    from actors.testing import PROTOCOLS  # noqa: PLC0415

    return list(PROTOCOLS)


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM ends it the way Ctrl-C does.

    The run is cancelled (or left resumable) and buffered telemetry is flushed, rather
    than the process vanishing with its spans. Only on the main thread (where Python
    delivers signals); commands that serve until stopped install their own handler on
    top. The previous handler is restored afterwards.
    """
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command in ("serve", "mcp"):  # they handle SIGTERM themselves (drain)
        return _command(args)
    with _terminate_like_interrupt():
        return _command(args)


def _command(args: argparse.Namespace) -> int:  # noqa: PLR0911, PLR0912 - one branch per command
    """Run the parsed command."""
    match args.command:
        case "demo":
            from reactor.cli._demo import DEFAULT_TOPIC, run_demo  # noqa: PLC0415 - keep startup fast

            return run_demo(
                db_path=args.db,
                topic=args.topic or DEFAULT_TOPIC,
                progress=not args.no_progress,
                log_level=args.log_level,
            )
        case "actors-demo":
            from reactor.cli._actors_demo import run_demo as run_actors_demo  # noqa: PLC0415

            return run_actors_demo(db_path=args.db, log_level=args.log_level)
        case "discover":
            from reactor.cli._hosts import run_discover  # noqa: PLC0415

            return run_discover(
                args.urls,
                as_json=args.json,
                default_ports=not args.no_defaults,
                timeout=args.timeout,
            )
        case "models":
            from reactor.cli._models import run_models  # noqa: PLC0415

            return run_models(
                config=args.config,
                db=args.db,
                as_json=args.json,
                discovery=not args.no_discovery,
                simulated=args.simulated,
            )
        case "fake-server":
            from reactor.cli._hosts import run_fake_server  # noqa: PLC0415

            models = [m.strip() for m in args.models.split(",") if m.strip()]
            return run_fake_server(
                args.protocol,
                port=args.port,
                models=models,
                latency=args.latency,
                token_delay=args.token_delay,
                reply_words=args.reply_words,
                context_length=args.context_length,
                fault=_fault_of(args),
                refuses=args.refuses,
            )
        case "run":
            from reactor.cli._runs import leave_now_if_steps_linger, run_reactor  # noqa: PLC0415

            return leave_now_if_steps_linger(
                run_reactor(
                    args.locator,
                    inputs=args.input,
                    json_inputs=args.json_input,
                    db=args.db,
                    max_concurrency=args.max_concurrency,
                    timeout=args.timeout,
                    on_timeout=args.on_timeout,
                    max_iterations=args.max_iterations,
                    halt_timeout=args.halt_timeout,
                    idle_timeout=args.idle_timeout,
                    run_id=args.run_id,
                    context=args.context,
                    progress=not args.no_progress,
                    mermaid=args.mermaid,
                    log_level=args.log_level,
                    as_json=args.json,
                )
            )
        case "runs":
            return _runs(args)
        case "spend":
            from reactor.cli._spend import run_spend  # noqa: PLC0415

            return run_spend(
                db=args.db, config_path=args.config, since_hours=args.since, as_json=args.json
            )
        case "tools":
            return _tools(args)
        case "sessions":
            return _sessions(args)
        case "agents" if args.agents_command in ("update", "delete") or getattr(
            args, "server", None
        ):
            from reactor.cli._daemon import run_client  # noqa: PLC0415

            return run_client(args)
        case "agents" | "conversations" | "review":
            return _agent_command(args)
        case "serve":
            from reactor.cli._daemon import run_serve  # noqa: PLC0415

            return run_serve(args)
        case "mcp":
            from reactor.cli._daemon import run_mcp  # noqa: PLC0415

            return run_mcp(args)
        case (
            "agents" | "tasks" | "workflows" | "create-agent" | "list-agents" | "delete-agent"
            | "run-tasks" | "run-workflow"
        ):  # fmt: skip
            from reactor.cli._daemon import run_client  # noqa: PLC0415

            return run_client(args)
        case "version":
            print(_version())
            return 0
        case _:  # argparse rejects unknown commands before this
            return 2


def _agent_command(args: argparse.Namespace) -> int:  # noqa: PLR0911 - one return per command
    from reactor.cli import _agents as cmd  # noqa: PLC0415

    if args.command == "review":
        return cmd.run_review(
            pr_json=args.pr_json,
            diff=args.diff,
            reviewers=args.reviewer,
            model=args.model,
            config=args.config,
            db=args.db,
            as_json=args.json,
            simulated=args.simulated,
        )
    if args.command == "conversations":
        match args.conversations_command:
            case "list":
                return cmd.run_conversations_list(db=args.db, limit=args.limit, as_json=args.json)
            case "show":
                return cmd.run_conversations_show(args.id, db=args.db, as_json=args.json)
            case _:
                return cmd.run_conversations_resume(
                    args.id,
                    rounds=args.rounds,
                    pattern=args.pattern,
                    keyword=args.keyword,
                    config=args.config,
                    db=args.db,
                    as_json=args.json,
                    simulated=args.simulated,
                )
    match args.agents_command:
        case "list":
            return cmd.run_agents_list(db=args.db, as_json=args.json)
        case "show":
            return cmd.run_agents_show(args.name, db=args.db, as_json=args.json)
        case "templates":
            return cmd.run_agents_templates(file=args.file, as_json=args.json)
        case "create":
            if args.template is None:
                print(
                    "reactor agents create: error: --template is required "
                    "(or --server URL to create an agent on a daemon)",
                    file=sys.stderr,
                )
                return 2
            return cmd.run_agents_create(
                args.name,
                template=args.template,
                file=args.file,
                model=args.model,
                params=args.param,
                config=args.config,
                db=args.db,
                replace=args.replace,
            )
        case _:
            return cmd.run_agents_ask(
                args.name,
                args.message,
                config=args.config,
                db=args.db,
                as_json=args.json,
                simulated=args.simulated,
            )


def _tools(args: argparse.Namespace) -> int:
    from reactor.cli._tools import run_audit, run_pending  # noqa: PLC0415

    if args.tools_command == "audit":
        return run_audit(
            db=args.db,
            run_id=args.run,
            tool=args.tool,
            since=args.since,
            until=args.until,
            limit=args.limit,
            as_json=args.json,
        )
    return run_pending(args.run_id, db=args.db, as_json=args.json)


def _fault_of(args: argparse.Namespace) -> dict[str, Any] | None:
    """The fault options given, as ``Fault`` fields (``None`` when none were)."""
    fields: dict[str, Any] = {
        "status": args.status,
        "message": args.message,
        "code": args.code,
        "retry_after": args.retry_after,
        "ttft": args.ttft,
        "hang": args.hang,
        "close_after": args.close_after,
        "malformed": args.malformed,
        "error_after": args.error_after,
        "done_after": args.done_after,
        "empty_stream": args.empty_stream,
        "model": args.fault_model,
        "path": args.fault_path,
    }
    given = {k: v for k, v in fields.items() if v not in (None, False, 0.0)}
    if not given:
        return None
    return {**given, "times": args.fault_times}


def _runs(args: argparse.Namespace) -> int:  # noqa: PLR0911 - one return per action
    from reactor.cli._runs import (  # noqa: PLC0415
        leave_now_if_steps_linger,
        run_list,
        run_resume,
        run_show,
    )

    if getattr(args, "server", None) is not None:
        from reactor.cli._daemon import run_runs_remote  # noqa: PLC0415

        return run_runs_remote(args)
    match args.runs_command:
        case "list":
            return run_list(
                db=args.db, limit=args.limit, as_json=args.json, include_children=args.all
            )
        case "show":
            return run_show(args.run_id, db=args.db, as_json=args.json, traceback=args.traceback)
        case "resume":
            from reactor.cli._parse import given_run_options  # noqa: PLC0415

            code = run_resume(
                args.run_id,
                db=args.db,
                progress=not args.no_progress,
                log_level=args.log_level,
                as_json=args.json,
                force=args.force,
                locator=args.locator,
                options=given_run_options(args),
            )
            return leave_now_if_steps_linger(code)
        case "undo":
            from reactor.cli._undo import run_undo  # noqa: PLC0415

            return run_undo(args.run_id, db=args.db, log_level=args.log_level)
        case "approve" | "reject":
            from reactor.cli._tools import run_decide  # noqa: PLC0415

            edited = getattr(args, "arguments", None)
            decision: Literal["approve", "edit", "reject"] = (
                "reject" if args.runs_command == "reject" else "approve"
            )
            if edited is not None:
                decision = "edit"
            return run_decide(
                args.run_id,
                args.call_id,
                decision,
                db=args.db,
                by=args.by,
                arguments=edited,
                message=getattr(args, "message", ""),
            )
        case _:  # argparse rejects unknown actions before this
            return 2


if __name__ == "__main__":
    sys.exit(main())
