"""``reactor sessions ...``: collaborative reasoning sessions on the command line.

The session operations name the agent that makes them (``--agent``), as every caller
of :mod:`actors.sessions` must, and are checked and audited the same way. ``execute``
and ``capabilities`` start the model hosts of the configuration (``--config``; with
``--simulated``, fake servers when no LLM server is found); ``execute`` waits for the
decision (``--wait`` seconds), since the process ends with the command. ``stats`` and
``audit`` read the analytics and the audit trail. With ``--server URL`` every action
asks a running daemon instead (:class:`RemoteSessions`, over its REST API), with the
same output.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from reactor.cli._parse import EXIT_OK, EXIT_USAGE, CliError
from reactor.cli._runs import _configure_logging, usable_store

if TYPE_CHECKING:
    from actors.sessions import ReasoningSession, SessionsStats

__all__ = ["SessionsCommand", "run_sessions"]

EXIT_FAILED = 1


@dataclass
class SessionsCommand:
    """The parsed ``reactor sessions`` arguments (one action's worth)."""

    action: str
    db: Path | None = None
    agent: str = ""
    session_id: str = ""
    text: str = ""
    step_type: str = "analysis"
    builds_on: int | None = None
    task_type: str = "general"
    tags: Sequence[str] = ()
    participants: Sequence[str] = ()
    open: bool | None = None
    status: str | None = None
    limit: int = 20
    wait: float = 600.0
    config: Path | None = None
    simulated: bool = False
    as_json: bool = False
    server: str | None = None
    token_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RemoteSessions:
    """The ``Sessions`` operations the command uses, asked of a daemon over REST.

    Answers are decoded into the same Structs as the local ones, so the output is the
    same; the daemon's refusals raise :class:`~reactor.daemon.DaemonClientError`.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def _as(self, kind: Any, value: Any) -> Any:
        import msgspec  # noqa: PLC0415

        return msgspec.convert(value, type=kind)

    def initiate_reasoning_session(
        self,
        task_description: str,
        agent_name: str,
        tags: Sequence[str] = (),
        *,
        participants: Sequence[str] = (),
        open: bool = False,
    ) -> str:
        body = {
            "task_description": task_description,
            "agent_name": agent_name,
            "tags": list(tags),
            "participants": list(participants),
            "open": open,
        }
        return str(self.client.post("/api/sessions", body)["session_id"])

    def add_reasoning_step(
        self,
        session_id: str,
        agent_name: str,
        reasoning_text: str,
        step_type: str,
        *,
        builds_on: int | None = None,
    ) -> Any:
        from actors.sessions import ReasoningStep  # noqa: PLC0415

        body = {
            "agent_name": agent_name,
            "reasoning_text": reasoning_text,
            "step_type": step_type,
            "builds_on": builds_on,
        }
        return self._as(ReasoningStep, self.client.post(f"/api/sessions/{session_id}/steps", body))

    def execute_orchestrated_decision(
        self, session_id: str, agent_name: str, prompt: str, task_type: str
    ) -> Any:
        from actors.sessions import Execution  # noqa: PLC0415

        body = {"agent_name": agent_name, "prompt": prompt, "task_type": task_type}
        answer = self.client.post(f"/api/sessions/{session_id}/decisions", body)
        return self._as(Execution, answer)

    def wait_for_decision(
        self, session_id: str, agent_name: str, execution_id: str, *, timeout: float
    ) -> Any:
        from actors.sessions import Execution  # noqa: PLC0415

        # the daemon waits at most ``wait`` s per request: ask again until done or timeout
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            answer = self.client.get(
                f"/api/sessions/{session_id}/decisions/{execution_id}",
                agent=agent_name,
                wait=min(left, 30.0),
            )
            execution = self._as(Execution, answer)
            if execution.status.value != "running" or left <= 0:
                return execution

    def get_reasoning_session(self, session_id: str, agent_name: str) -> Any:
        from actors.sessions import ReasoningSession  # noqa: PLC0415

        answer = self.client.get(f"/api/sessions/{session_id}", agent=agent_name)
        return self._as(ReasoningSession, answer)

    def add_participants(
        self,
        session_id: str,
        agent_name: str,
        participants: Sequence[str] = (),
        *,
        open: bool | None = None,
    ) -> Any:
        from actors.sessions import ReasoningSession  # noqa: PLC0415

        body = {"agent_name": agent_name, "participants": list(participants), "open": open}
        answer = self.client.post(f"/api/sessions/{session_id}/participants", body)
        return self._as(ReasoningSession, answer)

    def search_reasoning_sessions(
        self,
        agent_name: str,
        query: str = "",
        tags: Sequence[str] = (),
        status: str | None = None,
        limit: int = 10,
    ) -> list[Any]:
        from actors.sessions import SearchHit  # noqa: PLC0415

        params: dict[str, Any] = {"agent": agent_name, "query": query, "limit": limit}
        if tags:
            params["tags"] = ",".join(tags)
        if status:
            params["status"] = status
        return self._as(list[SearchHit], self.client.get("/api/sessions", **params))  # type: ignore[no-any-return]

    def get_orchestration_capabilities(self, agent_name: str) -> Any:
        from actors.sessions import OrchestrationCapabilities  # noqa: PLC0415

        answer = self.client.get("/api/sessions/capabilities", agent=agent_name)
        return self._as(OrchestrationCapabilities, answer)

    def stats(self) -> Any:
        from actors.sessions import SessionsStats  # noqa: PLC0415

        return self._as(SessionsStats, self.client.get("/api/sessions/stats"))

    def audit(
        self, *, agent: str | None = None, session_id: str | None = None, limit: int = 100
    ) -> list[Any]:
        from actors.sessions import SessionAuditRecord  # noqa: PLC0415

        params: dict[str, Any] = {"limit": limit}
        if agent:
            params["agent"] = agent
        if session_id:
            params["session"] = session_id
        answer = self.client.get("/api/sessions/audit", **params)
        return self._as(list[SessionAuditRecord], answer)  # type: ignore[no-any-return]


@contextlib.contextmanager
def _remote(command: SessionsCommand) -> Iterator[Any]:
    from reactor.daemon import DaemonClient  # noqa: PLC0415

    assert command.server is not None
    with DaemonClient(command.server, token_file=command.token_file) as client:
        yield RemoteSessions(client)


@contextlib.contextmanager
def _sessions(command: SessionsCommand, *, models: bool) -> Iterator[Any]:
    """A System with the Store on the file, (with ``models``) the fleet, and ``Sessions``.

    With ``--server``, the daemon's sessions instead (over REST).
    """
    if command.server:
        with _remote(command) as remote:
            yield remote
        return
    from actors import System  # noqa: PLC0415 - keep `reactor --help` fast
    from actors.llm import Catalog, ConfigError, load_config, start_fleet  # noqa: PLC0415
    from actors.sessions import Sessions  # noqa: PLC0415
    from actors.store import Store  # noqa: PLC0415
    from actors.testing import fake_servers  # noqa: PLC0415

    creating = command.action == "start"
    path = usable_store(command.db, create=creating)
    with System(Store.spec(path), name="reactor-sessions", default_timeout=30.0) as system:
        fleet = None
        catalog = Catalog()
        if models:
            try:
                settings = load_config(command.config)
            except ConfigError as exc:
                raise CliError(str(exc)) from None
            try:
                fleet = start_fleet(
                    system, settings, fallback=fake_servers if command.simulated else None
                )
            except ValueError as exc:
                raise CliError(f"model hosts: {exc}") from None
            catalog = fleet.catalog
        try:
            yield Sessions(system, catalog=catalog, timeout=30.0).open()
        finally:
            if fleet is not None:
                fleet.close()


def _when(at: float | None) -> str:
    if not at:
        return "-"
    return datetime.datetime.fromtimestamp(at, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_session(session: ReasoningSession) -> str:
    """A session for people: header, steps, then each execution with its result."""
    lines = [
        f"session {session.session_id} ({session.status.value})",
        f"  task: {session.task_description}",
        f"  owner: {session.owner}"
        + (f"; participants: {', '.join(session.participants)}" if session.participants else "")
        + ("; open to every agent" if session.open else ""),
    ]
    if session.tags:
        lines.append(f"  tags: {', '.join(session.tags)}")
    lines.append(f"  created {_when(session.created_at)}, updated {_when(session.updated_at)}")
    for step in session.steps:
        on = f" (on {step.builds_on} by {step.builds_on_agent})" if step.builds_on else ""
        lines.append(f"  {step.seq}. [{step.step_type.value}] {step.agent}{on}: {step.text}")
    for ex in session.executions:
        lines.append(
            f"  decision {ex.execution_id} by {ex.agent}: {ex.strategy.value} "
            f"({ex.status.value}{', ' + ex.progress if ex.status.value == 'running' else ''})"
        )
        lines.append(f"    why: {ex.reason}")
        lines.extend(f"    {a.model} [{a.role}]: {a.error or a.text[:100]}" for a in ex.answers)
        if ex.result:
            lines.append(f"    result: {ex.result}")
        if ex.error:
            lines.append(f"    error: {ex.error}")
    return "\n".join(lines)


def format_stats(stats: SessionsStats) -> str:
    """Analytics for people: interactions, collaboration, performance, per agent."""
    lines = [f"sessions: {stats.sessions}", "", "interactions per agent:"]
    for agent, operations in sorted(stats.interactions.items()):
        total = sum(operations.values())
        detail = ", ".join(f"{op} {n}" for op, n in sorted(operations.items()))
        denied = stats.denied.get(agent, 0)
        lines.append(f"  {agent}: {total} ({detail})" + (f"; {denied} denied" if denied else ""))
    lines.append("")
    lines.append("collaboration (who builds on whose steps):")
    lines.extend(f"  {e.agent} -> {e.builds_on}: {e.steps}" for e in stats.collaboration)
    if not stats.collaboration:
        lines.append("  none yet")
    lines.append("")
    lines.append("performance by agent:")
    for agent, perf in sorted(stats.performance.items()):
        rate = perf["success_rate"]
        mean = perf["mean_duration_s"]
        strategies = ", ".join(f"{k} {v}" for k, v in sorted(perf["strategies"].items()))
        lines.append(
            f"  {agent}: {perf['sessions_owned']} session(s) owned, {perf['steps']} step(s), "
            f"{perf['executions']} decision(s)"
            + (f", {100 * rate:.0f}% completed" if rate is not None else "")
            + (f", mean {mean:.2f} s" if mean is not None else "")
            + (f" [{strategies}]" if strategies else "")
        )
    return "\n".join(lines)


def _require_agent(command: SessionsCommand) -> None:
    if not command.agent.strip():
        raise CliError(f"reactor sessions {command.action}: --agent is required")


def _act(command: SessionsCommand, out: TextIO) -> int:  # noqa: PLR0911, PLR0912 - one branch per action
    import msgspec  # noqa: PLC0415

    if command.action not in {"stats", "audit"}:
        _require_agent(command)
    models = command.action in {"execute", "capabilities"}
    with _sessions(command, models=models) as sessions:
        result: Any
        match command.action:
            case "start":
                result = sessions.initiate_reasoning_session(
                    command.text,
                    command.agent,
                    command.tags,
                    participants=command.participants,
                    open=bool(command.open),
                )
                out.write(f"{result}\n")
                return EXIT_OK
            case "step":
                result = sessions.add_reasoning_step(
                    command.session_id,
                    command.agent,
                    command.text,
                    command.step_type,
                    builds_on=command.builds_on,
                )
            case "execute":
                handle = sessions.execute_orchestrated_decision(
                    command.session_id, command.agent, command.text, command.task_type
                )
                result = sessions.wait_for_decision(
                    command.session_id, command.agent, handle.execution_id, timeout=command.wait
                )
                if not command.as_json:
                    session = sessions.get_reasoning_session(command.session_id, command.agent)
                    out.write(format_session(session) + "\n")
                    return EXIT_OK if result.status.value == "completed" else EXIT_FAILED
            case "show":
                result = sessions.get_reasoning_session(command.session_id, command.agent)
                if not command.as_json:
                    out.write(format_session(result) + "\n")
                    return EXIT_OK
            case "share":
                result = sessions.add_participants(
                    command.session_id, command.agent, command.participants, open=command.open
                )
            case "search":
                result = sessions.search_reasoning_sessions(
                    command.agent, command.text, command.tags, command.status, command.limit
                )
                if not command.as_json:
                    for hit in result:
                        out.write(
                            f"{hit.session_id}  {hit.status.value:9} {hit.owner:12} "
                            f"{hit.task_description[:60]}"
                            + (f"  | {hit.snippet}" if hit.snippet else "")
                            + "\n"
                        )
                    if not result:
                        out.write("no sessions found\n")
                    return EXIT_OK
            case "capabilities":
                result = sessions.get_orchestration_capabilities(command.agent)
            case "stats":
                result = sessions.stats()
                if not command.as_json:
                    out.write(format_stats(result) + "\n")
                    return EXIT_OK
            case "audit":
                result = sessions.audit(
                    agent=command.agent or None,
                    session_id=command.session_id or None,
                    limit=command.limit,
                )
                if not command.as_json:
                    for record in result:
                        out.write(
                            f"{_when(record.at)}  {record.agent:12} {record.operation:30} "
                            f"{record.session_id or '-':16} {record.outcome:18} {record.detail}\n"
                        )
                    return EXIT_OK
            case _:
                raise CliError(f"reactor sessions: unknown action {command.action!r}")
        out.write(json.dumps(msgspec.to_builtins(result), indent=2) + "\n")
        if command.action == "execute":
            return EXIT_OK if result.status.value == "completed" else EXIT_FAILED
        return EXIT_OK


def run_sessions(
    command: SessionsCommand, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run one ``reactor sessions`` action; 0 done, 1 a decision failed, 2 refused."""
    out, err = out or sys.stdout, err or sys.stderr
    from actors import ActorError  # noqa: PLC0415
    from reactor.daemon import DaemonClientError  # noqa: PLC0415

    _configure_logging("error")
    try:
        return _act(command, out)
    except DaemonClientError as exc:
        where = f" ({exc.field})" if exc.field else ""
        err.write(f"reactor sessions {command.action}: error: {exc}{where}\n")
        return EXIT_FAILED if exc.code in ("unavailable", "internal") else EXIT_USAGE
    except (CliError, ActorError, ValueError, TypeError) as exc:
        err.write(f"reactor sessions {command.action}: error: {exc}\n")
        return EXIT_USAGE
