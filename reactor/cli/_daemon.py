"""``reactor serve``, ``reactor mcp``, and the client commands that talk to a daemon.

``reactor serve`` starts a :class:`~reactor.daemon.Daemon` and serves until SIGTERM or
Ctrl-C (then drains); ``--check`` validates the configuration, the reactors and the
token file, and exits. ``reactor mcp`` serves the MCP tools over stdio.

The client commands (``reactor agents|tasks|workflows ... --server URL`` and ``reactor
runs list|show|start|cancel|resume --server URL``) call a running daemon, with the
token from ``--token-file``, ``$REACTOR_TOKEN`` or the daemon's token file; their output
is the local commands' (tables, or ``--json``). echollama's commands have equivalents:
``create-agent``, ``list-agents``, ``delete-agent``, ``run-tasks``, ``run-workflow``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_client_commands", "add_daemon_commands", "run_client", "run_mcp", "run_serve"]

DEFAULT_SERVER = "http://127.0.0.1:8765"


def add_daemon_commands(commands: Any) -> None:
    """``serve`` and ``mcp``."""
    serve = commands.add_parser("serve", help="run the daemon: REST + SSE, MCP at /mcp, web page")
    mcp = commands.add_parser("mcp", help="serve the daemon's MCP tools over stdio")
    for each in (serve, mcp):
        each.add_argument("--config", type=Path, default=None, help="the configuration file")
        each.add_argument(
            "--db",
            type=Path,
            default=None,
            help="SQLite file (default: REACTOR_DB, else the user data dir)",
        )
        each.add_argument(
            "--reactor",
            action="append",
            default=[],
            metavar="LOCATOR",
            help="a reactor to serve, module:Name or path/file.py:Name (repeatable)",
        )
        each.add_argument(
            "--tool",
            action="append",
            default=[],
            metavar="LOCATOR",
            help="a tool for tools steps, module:name or path/file.py:name (repeatable)",
        )
        each.add_argument(
            "--simulated",
            action="store_true",
            help="with no LLM server found, start the built-in fake servers",
        )
        each.add_argument(
            "--no-discovery", action="store_true", help="only the configured hosts, no probing"
        )
        each.add_argument(
            "--log-level", default="warning", help="debug, info, warning, error (default warning)"
        )
    serve.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8765; 0: any free)")
    serve.add_argument("--token-file", type=Path, default=None, help="where the token is kept")
    serve.add_argument("--grace", type=float, default=None, help="seconds to drain on stop")
    serve.add_argument("--jaeger-url", default=None, help="Jaeger UI, to link runs to traces")
    serve.add_argument("--check", action="store_true", help="validate the configuration and exit")


def _daemon(args: argparse.Namespace, err: TextIO) -> Any:
    from actors.llm import ConfigError, load_config  # noqa: PLC0415
    from reactor.daemon import Daemon  # noqa: PLC0415

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        err.write(f"reactor {args.command}: error: {exc}\n")
        return None
    return Daemon(
        config,
        db_path=args.db,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        token_file=getattr(args, "token_file", None),
        reactors=args.reactor,
        tools=args.tool,
        simulated=args.simulated,
        discovery=not args.no_discovery,
        grace_s=getattr(args, "grace", None),
        jaeger_url=getattr(args, "jaeger_url", None),
    )


def _logging(level: str) -> None:
    import otel  # noqa: PLC0415

    otel.configure_logging(format="console", level=level, stream=sys.stderr)
    otel.configure_telemetry()


def run_serve(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``reactor serve``: the exit status."""
    from reactor.daemon import DaemonError  # noqa: PLC0415

    out, err = out or sys.stdout, err or sys.stderr
    daemon = _daemon(args, err)
    if daemon is None:
        return 2
    if args.check:
        where = "the configuration" if daemon.config.daemon.token else str(daemon.token_file)
        try:
            warnings = daemon.check()
        except DaemonError as exc:
            err.write(f"reactor serve --check: error: {exc}\n")
            return 2
        for warning in warnings:
            err.write(f"warning: {warning}\n")
        out.write(
            f"configuration OK: would listen on {daemon.url}, serve "
            f"{len(daemon.reactors)} reactor(s) ({', '.join(sorted(daemon.reactors)) or 'none'}), "
            f"{len(daemon.tools)} tool(s), token from {where}\n"
        )
        return 0
    _logging(args.log_level)
    try:
        daemon.start()
    except DaemonError as exc:
        err.write(f"reactor serve: error: {exc}\n")
        return 2
    if daemon.host not in ("127.0.0.1", "::1", "localhost"):
        err.write(f"warning: listening on {daemon.host}: reachable from other machines\n")
    err.write(f"reactor daemon listening on {daemon.url}\n")
    err.write(f"token file: {daemon.token_file}\n")
    err.write(f"web page: {daemon.url}/?token=<the token>\n")
    err.write(f"MCP (Streamable HTTP): {daemon.url}/mcp\n")
    err.flush()
    daemon.serve_forever()
    err.write("reactor daemon stopped\n")
    from reactor.cli._runs import leave_now_if_steps_linger  # noqa: PLC0415

    # A plain `def` step still running keeps its thread (its run is journaled, and
    # resumes at the next start): do not wait for it.
    return leave_now_if_steps_linger(0)


def run_mcp(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """``reactor mcp``: the MCP tools over stdio (logs on standard error)."""
    from reactor.daemon import DaemonError  # noqa: PLC0415

    err = err or sys.stderr
    daemon = _daemon(args, err)
    if daemon is None:
        return 2
    _logging(args.log_level)
    try:
        daemon.start(http=False)
    except DaemonError as exc:
        err.write(f"reactor mcp: error: {exc}\n")
        return 2
    daemon.serve_stdio()
    from reactor.cli._runs import leave_now_if_steps_linger  # noqa: PLC0415

    return leave_now_if_steps_linger(0)


# ---- the client -------------------------------------------------------------------------------


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", default=DEFAULT_SERVER, help=f"the daemon's URL (default {DEFAULT_SERVER})"
    )
    parser.add_argument("--token-file", type=Path, default=None, help="the daemon's token file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def add_client_commands(commands: Any, agent_actions: Any) -> None:
    """``agents ... --server``, ``tasks``, ``workflows`` and echollama's command names.

    ``agent_actions`` are the local ``reactor agents`` actions: ``list``, ``show`` and
    ``create`` take ``--server`` (then they ask the daemon), and ``update`` and
    ``delete`` (daemon only) join them.
    """
    for name, parser in agent_actions.choices.items():
        if name in ("list", "show", "create"):
            _server_options(parser)
        if name == "create":
            _agent_fields(parser, daemon_only=True)
    for name in ("update", "delete"):
        each = agent_actions.add_parser(name, help=f"{name} an agent on a daemon")
        each.add_argument("agent_id", metavar="ID", help="the agent's id")
        if name == "update":
            _agent_fields(each, required=False)
        _client_options(each)

    tasks = commands.add_parser("tasks", help="run tasks on a running daemon")
    tasks_actions = tasks.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    run = tasks_actions.add_parser("run", help="run tasks, in parallel unless --sequential")
    _task_options(run, agent_positional=False)
    workflows = commands.add_parser("workflows", help="run workflows on a running daemon")
    wf_actions = workflows.add_subparsers(dest="workflows_command", required=True, metavar="ACTION")
    wf_run = wf_actions.add_parser("run", help="run a workflow of name:type:prompt steps")
    _workflow_options(wf_run, agent_positional=False)

    # echollama's command names
    create_agent = commands.add_parser("create-agent", help="echollama: create an agent")
    _agent_fields(create_agent, positional_name=True)
    _client_options(create_agent)
    list_agents = commands.add_parser("list-agents", help="echollama: list the agents")
    _client_options(list_agents)
    delete_agent = commands.add_parser("delete-agent", help="echollama: delete an agent")
    delete_agent.add_argument("agent_id", metavar="ID", help="the agent's id")
    _client_options(delete_agent)
    run_tasks = commands.add_parser("run-tasks", help="echollama: run tasks with an agent")
    _task_options(run_tasks, agent_positional=True)
    run_workflow = commands.add_parser(
        "run-workflow", help="echollama: run a workflow with an agent"
    )
    _workflow_options(run_workflow, agent_positional=True)


def _agent_id(args: argparse.Namespace) -> str:
    """``agents show`` names the agent positionally (``name``); update/delete by ``ID``."""
    return str(getattr(args, "agent_id", None) or args.name)


def _server_options(parser: argparse.ArgumentParser) -> None:
    """``--server`` (no default: without it the command is local) and ``--token-file``."""
    parser.add_argument(
        "--server", default=None, help="ask this daemon (URL) instead of the local store"
    )
    parser.add_argument("--token-file", type=Path, default=None, help="the daemon's token file")


def _agent_fields(
    parser: argparse.ArgumentParser,
    *,
    required: bool = True,
    positional_name: bool = False,
    daemon_only: bool = False,
) -> None:
    if positional_name:
        parser.add_argument("name", metavar="NAME", help="the agent's name")
    elif not daemon_only:  # `agents create NAME` has its name already
        parser.add_argument("--name", required=required, default=None, help="the agent's name")
    parser.add_argument("--description", default=None, help="what the agent is for")
    parser.add_argument("--models", default=None, help="comma-separated models it may use")
    parser.add_argument("--type", dest="agent_type", default=None, help="the agent's type")
    parser.add_argument(
        "--default-model", default=None, help="the model for tasks without a preference"
    )
    parser.add_argument(
        "--prefer", action="append", default=None, metavar="TYPE=MODEL",
        help="routing preference: tasks of TYPE go to MODEL (repeatable)",
    )  # fmt: skip
    parser.add_argument("--max-concurrent", type=int, default=None, help="tasks running at once")
    parser.add_argument("--timeout", type=float, default=None, help="seconds one task may take")


def _task_options(parser: argparse.ArgumentParser, *, agent_positional: bool) -> None:
    if agent_positional:
        parser.add_argument("agent", metavar="AGENT", help="the agent's id")
    else:
        parser.add_argument("--agent", default=None, help="the agent's id")
    parser.add_argument(
        "--tasks", nargs="+", required=True, metavar="TYPE:PROMPT", help="tasks as type:prompt"
    )
    parser.add_argument("--sequential", action="store_true", help="one after another")
    _client_options(parser)


def _workflow_options(parser: argparse.ArgumentParser, *, agent_positional: bool) -> None:
    if agent_positional:
        parser.add_argument("agent", metavar="AGENT", help="the agent's id")
    else:
        parser.add_argument("--agent", default=None, help="the agent's id")
    parser.add_argument(
        "--steps", nargs="+", required=True, metavar="NAME:TYPE:PROMPT",
        help="steps as name:type:prompt; prompts may say {{name}} or {{stepN}}",
    )  # fmt: skip
    _client_options(parser)


def _agent_body(args: argparse.Namespace, *, update: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.name is not None:
        body["name"] = args.name
    if args.description is not None:
        body["description"] = args.description
    if args.models is not None:
        body["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.agent_type is not None:
        body["type"] = args.agent_type
    config: dict[str, Any] = {}
    if args.default_model is not None:
        config["default_model"] = args.default_model
    if args.prefer:
        prefs = {}
        for each in args.prefer:
            kind, sep, model = each.partition("=")
            if not sep:
                msg = f"--prefer {each!r}: write TYPE=MODEL"
                raise ValueError(msg)
            prefs[kind.strip()] = model.strip()
        config["routing_preferences"] = prefs
    if args.max_concurrent is not None:
        config["max_concurrent_tasks"] = args.max_concurrent
    if args.timeout is not None:
        config["timeout_seconds"] = args.timeout
    if config:
        body["config"] = config
    return body


def _tasks_of(raw: list[str]) -> list[dict[str, Any]]:
    tasks = []
    for each in raw:
        kind, sep, prompt = each.partition(":")
        if not sep:
            msg = f"task {each!r} is not type:prompt"
            raise ValueError(msg)
        tasks.append({"type": kind.strip(), "input": prompt})
    return tasks


def run_client(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run a client command against ``--server``; the exit status."""
    from reactor.daemon import DaemonClient, DaemonClientError  # noqa: PLC0415

    out, err = out or sys.stdout, err or sys.stderr
    command = args.command
    try:
        with DaemonClient(args.server, token_file=args.token_file) as client:
            match command, getattr(args, "agents_command", None):
                case ("agents", "create") | ("create-agent", None):
                    agent = client.post(
                        "/api/orchestration/agents", _agent_body(args, update=False)
                    )
                    _write_agents(out, [agent], as_json=args.json)
                case ("agents", "list") | ("list-agents", None):
                    _write_agents(out, client.get("/api/orchestration/agents"), as_json=args.json)
                case ("agents", "show"):
                    _write_agents(
                        out,
                        [client.get(f"/api/orchestration/agents/{_agent_id(args)}")],
                        as_json=args.json,
                    )
                case ("agents", "update"):
                    body = _agent_body(args, update=True)
                    agent = client.request(
                        "PUT", f"/api/orchestration/agents/{args.agent_id}", body
                    )
                    _write_agents(out, [agent], as_json=args.json)
                case ("agents", "delete") | ("delete-agent", None):
                    agent = client.request("DELETE", f"/api/orchestration/agents/{args.agent_id}")
                    if args.json:
                        out.write(json.dumps(agent, indent=2) + "\n")
                    else:
                        out.write(f"deleted agent {agent['id']} ({agent['name']})\n")
                case ("tasks", _) | ("run-tasks", _):
                    body = {
                        "agent_id": args.agent,
                        "tasks": _tasks_of(args.tasks),
                        "sequential": args.sequential,
                    }
                    answer = client.post("/api/orchestration/tasks", body)
                    _write_tasks(out, answer, as_json=args.json)
                    return 0 if answer["status"] == "completed" else 1
                case ("workflows", _) | ("run-workflow", _):
                    body = {"agent_id": args.agent, "steps": args.steps}
                    answer = client.post("/api/orchestration/workflows", body)
                    _write_workflow(out, answer, as_json=args.json)
                    return 0 if answer["success"] else 1
                case _:
                    err.write(f"reactor {command}: unknown action\n")
                    return 2
    except DaemonClientError as exc:
        where = f" ({exc.field})" if exc.field else ""
        err.write(f"reactor {command}: error: {exc}{where}\n")
        return 1 if exc.code not in ("connection", "bad_request", "not_found") else 2
    except ValueError as exc:
        err.write(f"reactor {command}: error: {exc}\n")
        return 2
    return 0


def run_runs_remote(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``reactor runs list|show|start|cancel|resume --server URL``."""
    import msgspec  # noqa: PLC0415

    from reactor.cli._parse import given_run_options  # noqa: PLC0415
    from reactor.cli._render import write_run, write_runs  # noqa: PLC0415
    from reactor.daemon import DaemonClient, DaemonClientError  # noqa: PLC0415
    from reactor.run import RunSummary, RunView  # noqa: PLC0415

    out, err = out or sys.stdout, err or sys.stderr
    action = args.runs_command
    try:
        with DaemonClient(args.server, token_file=args.token_file) as client:
            match action:
                case "list":
                    rows = client.get(
                        "/api/runs", limit=args.limit, all="true" if args.all else None
                    )
                    write_runs(out, msgspec.convert(rows, list[RunSummary]), as_json=args.json)
                case "show":
                    data = client.get(f"/api/runs/{args.run_id}")
                    for step in data["steps"]:
                        step.pop("duration", None)
                    view = msgspec.convert(data, RunView)
                    write_run(out, view, args.run_id, as_json=args.json)
                case "resume":
                    created = client.post(
                        f"/api/runs/{args.run_id}/resume",
                        given_run_options(args),
                        force="true" if args.force else None,
                    )
                    out.write(
                        json.dumps(created, indent=2) + "\n"
                        if args.json
                        else f"resumed run {created['run_id']}\n"
                    )
                case "cancel":
                    created = client.post(f"/api/runs/{args.run_id}/cancel")
                    out.write(
                        json.dumps(created, indent=2) + "\n"
                        if args.json
                        else f"cancelling run {created['run_id']}\n"
                    )
                case "start":
                    inputs = dict(_pair(each) for each in args.input)
                    created = client.post("/api/runs", {"reactor": args.reactor, "inputs": inputs})
                    out.write(
                        json.dumps(created, indent=2) + "\n"
                        if args.json
                        else f"started run {created['run_id']}\n"
                    )
                case _:
                    err.write(f"reactor runs {action}: not available with --server\n")
                    return 2
    except DaemonClientError as exc:
        where = f" ({exc.field})" if exc.field else ""
        err.write(f"reactor runs {action}: error: {exc}{where}\n")
        return 2 if exc.code in ("connection", "bad_request", "not_found") else 1
    return 0


def _pair(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep:
        msg = f"--input {raw!r}: write key=value"
        raise ValueError(msg)
    return key, value


def _write_agents(out: TextIO, agents: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(agents if len(agents) != 1 else agents[0], indent=2) + "\n")
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table("id", "name", "models", "default model", "preferences", "max tasks", "timeout")
    for a in agents:
        config = a.get("config", {})
        prefs = ", ".join(f"{k}={v}" for k, v in config.get("routing_preferences", {}).items())
        table.add_row(
            a["id"], a["name"], ", ".join(a.get("models", [])), config.get("default_model", ""),
            prefs,
            str(config.get("max_concurrent_tasks", "")),
            f"{config.get('timeout_seconds', '')} s",
        )  # fmt: skip
    Console(file=out, width=160, markup=False).print(table)


def _write_tasks(out: TextIO, answer: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(answer, indent=2) + "\n")
        return
    for r in answer["results"]:
        metrics = r.get("metrics", {})
        head = f"{r['task_id']} [{r['type']}] {r['status']} on {r.get('model_used') or '-'}"
        took = f"{metrics.get('duration_ms', 0):.0f} ms, {metrics.get('tokens_used', 0)} tokens"
        head += f" ({took}; {r.get('routing', '')})"
        out.write(head + "\n")
        body = r["output"] if r["status"] == "completed" else f"error: {r.get('error')}"
        out.write(f"  {body if isinstance(body, str) else json.dumps(body)[:200]}\n")
    out.write(f"status: {answer['status']}\n")


def _write_workflow(out: TextIO, answer: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(answer, indent=2) + "\n")
        return
    out.write(f"workflow run {answer['run_id']}: {answer['status']}\n")
    for s in answer["steps"]:
        mark = "ok" if s["success"] else "failed"
        out.write(f"{s['name']} [{s['type']}] {mark} on {s.get('model_used') or '-'}\n")
        body = s["output"] if s["success"] else f"error: {s.get('error')}"
        out.write(f"  {body if isinstance(body, str) else json.dumps(body)[:200]}\n")
