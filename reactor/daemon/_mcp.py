"""The MCP server: the daemon's tools for LM Studio agents (official ``mcp`` SDK).

Served over Streamable HTTP at ``/mcp`` in the daemon's app (same token, Origin and
Host checked) and over stdio by ``reactor mcp`` (for hosts that start a command).

Adding a tool is one line: :func:`mcp_tool` on an ``async`` function at module level
(its type hints give the input schema, its docstring the description); it reaches the
daemon with :func:`current_daemon`. A tool's failure is raised as ``ToolError`` with the
real message, which the client gets as an ``isError`` result the model can read; a call
naming no tool is a JSON-RPC error ``-32602``, as the protocol says. A tool that answers a
list returns it as ``{"result": [...]}``, structured and as one JSON text block.

Calls that may take long answer within :data:`WAIT_LIMIT_S` (LM Studio's client gives
up after about 60 s): a run still going then is returned as a handle (``run_id``) to
poll with ``get_run``, a decision still going as its ``execution_id`` (poll
``get_reasoning_session``).

The six reasoning-session tools (``initiate_reasoning_session``, ``add_reasoning_step``,
``execute_orchestrated_decision``, ``get_reasoning_session``,
``search_reasoning_sessions``, ``get_orchestration_capabilities``) call the daemon's
:class:`actors.sessions.Sessions`; access is checked there, and a refusal (an agent not
allowed in a session, a session that does not exist) comes back as an ``isError``
result with its message.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp import MCPError
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import (
    INVALID_PARAMS,
    CallToolResult,
    InputRequiredResult,
    TextContent,
    ToolAnnotations,
)

from reactor.daemon._errors import ApiError
from reactor.daemon._messages import StartRun

if TYPE_CHECKING:
    from reactor.daemon._daemon import Daemon

__all__ = ["WAIT_LIMIT_S", "build_mcp", "current_daemon", "mcp_tool"]

WAIT_LIMIT_S = 45.0
"""The longest a tool waits for a run before answering with a handle to poll."""

ToolFn = Callable[..., Awaitable[Any]]
_TOOLS: list[tuple[ToolFn, ToolAnnotations]] = []
_CURRENT: list[Daemon] = []


def mcp_tool(*, read_only: bool = False, destructive: bool = False) -> Callable[[ToolFn], ToolFn]:
    """Register an ``async`` function as an MCP tool of every daemon built afterwards."""

    def register(fn: ToolFn) -> ToolFn:
        annotations = ToolAnnotations(
            read_only_hint=read_only,
            destructive_hint=destructive,
            idempotent_hint=read_only,
            open_world_hint=False,
        )
        _TOOLS.append((fn, annotations))
        return fn

    return register


_SERVING: contextvars.ContextVar[Daemon | None] = contextvars.ContextVar(
    "reactor_mcp_daemon", default=None
)


def current_daemon() -> Daemon:
    """The daemon whose MCP server is calling the tool (outside a call: the last built).

    Raises:
        ToolError: No daemon runs (a tool called outside one).
    """
    serving = _SERVING.get()
    if serving is not None:
        return serving
    if not _CURRENT:
        msg = "no daemon is running"
        raise ToolError(msg)
    return _CURRENT[-1]


class _Server(MCPServer):
    """The SDK's server, but a call naming no tool is a protocol error, as the spec says.

    MCP (2025-11-25, tools) makes an unknown tool a JSON-RPC error ``-32602`` (invalid
    params); the SDK's server answers it as an ``isError`` result instead.
    """

    def __init__(self, daemon: Daemon, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.daemon = daemon
        self.known: set[str] = set()

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """Call ``name`` for this server's daemon; an unknown one is JSON-RPC ``-32602``."""
        if name not in self.known:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {name}")
        serving = _SERVING.set(self.daemon)  # two daemons in one process: each its own
        try:
            return await super().call_tool(name, arguments, context)
        finally:
            _SERVING.reset(serving)


def build_mcp(daemon: Daemon) -> MCPServer:
    """The MCP server with every registered tool, serving ``daemon``."""
    from reactor.daemon._daemon import version  # noqa: PLC0415

    _CURRENT[:] = [daemon]
    server = _Server(
        daemon,
        name="reactor-swarm",
        version=version(),
        instructions=(
            "Reactor Swarm runs reactors (graphs of LLM and Python steps). List them with "
            "list_reactors, start one with run_reactor, and poll a long one with get_run. "
            "Agents reason together in sessions: initiate_reasoning_session, "
            "add_reasoning_step, execute_orchestrated_decision (poll a long one with "
            "get_reasoning_session), search_reasoning_sessions, "
            "get_orchestration_capabilities; every call names the calling agent_name."
        ),
        log_level="WARNING",
    )
    for fn, hints in _TOOLS:
        server.add_tool(fn, annotations=hints)
        server.known.add(fn.__name__)
    return server


Listing = Annotated[CallToolResult, list[dict[str, Any]]]
"""What a tool returning a list answers: ``structuredContent`` ``{"result": [...]}``."""


def _listing(items: list[dict[str, Any]]) -> CallToolResult:
    """``items`` as structured content and, in one text block, that content's JSON.

    The SDK would make each item a text block of its own, and an empty list no block at
    all: a host that shows the model the text (as LM Studio does) would pass it several
    JSON documents, or nothing. The spec wants the structured content as JSON text.
    """
    structured = {"result": items}
    text = json.dumps(structured, indent=2, ensure_ascii=False, default=str)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=structured
    )


def _tool_error(exc: ApiError) -> ToolError:
    where = f" ({exc.field})" if exc.field else ""
    return ToolError(f"{exc.message}{where}")


@mcp_tool(read_only=True)
async def list_reactors() -> Listing:
    """The reactors this daemon can run: name, description, inputs and steps."""
    from reactor.daemon._app import reactor_info  # noqa: PLC0415

    daemon = current_daemon()
    return _listing(
        [
            {
                "name": info.name,
                "description": info.description,
                "inputs": info.inputs,
                "steps": info.steps,
            }
            for info in (reactor_info(r) for _, r in sorted(daemon.reactors.items()))
        ]
    )


@mcp_tool()
async def run_reactor(reactor: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a reactor with these inputs; its result, or a run_id to poll with get_run.

    Waits up to 45 seconds for the result; a run still going then goes on, and the
    answer has its run_id and status "running".
    """
    from reactor.daemon._app import start_run  # noqa: PLC0415
    from reactor.run import RunError  # noqa: PLC0415

    daemon = current_daemon()
    try:
        created = await start_run(daemon, StartRun(reactor=reactor, inputs=inputs or {}))
    except ApiError as exc:
        raise _tool_error(exc) from None
    handle = daemon.handles[created.run_id]
    try:
        result = await asyncio.wait_for(asyncio.shield(handle.result_async()), WAIT_LIMIT_S)
    except TimeoutError:
        return {"run_id": created.run_id, "status": "running", "poll": "get_run"}
    except RunError as exc:
        raise ToolError(f"run {created.run_id} of {reactor!r}: {exc}") from None
    return {"run_id": created.run_id, "status": "completed", "result": _plain(result)}


@mcp_tool(read_only=True)
async def get_run(run_id: str) -> dict[str, Any]:
    """A run's status, result or errors, and each step's status."""
    from reactor.daemon._app import _view  # noqa: PLC0415

    daemon = current_daemon()
    try:
        view = await _view(daemon, run_id)
    except ApiError as exc:
        raise _tool_error(exc) from None
    return {
        "run_id": run_id,
        "reactor": view.reactor,
        "status": view.status,
        "result": _plain(view.result),
        "errors": [f"{e.step or 'run'}: {e.message}" for e in view.errors],
        "steps": {s.name: s.status for s in view.steps},
    }


def _plain(value: Any) -> Any:
    import msgspec  # noqa: PLC0415

    with contextlib.suppress(TypeError):
        return msgspec.to_builtins(value, enc_hook=str)
    return str(value)


# ---- reasoning sessions ---------------------------------------------------------------------

StepTypeName = Literal["analysis", "hypothesis", "conclusion", "critique", "synthesis"]
TaskTypeName = Literal["code", "reasoning", "analysis", "general", "creative"]
StatusName = Literal["active", "executing", "decided"]


def _sessions() -> Any:
    sessions = current_daemon().sessions
    if sessions is None:
        msg = "reasoning sessions are not running in this daemon"
        raise ToolError(msg)
    return sessions


def _announce(session_id: str, agent: str, operation: str) -> None:
    from reactor.daemon._sessions import announce_session  # noqa: PLC0415

    announce_session(current_daemon(), session_id, agent, operation)


async def _session_call(call: Awaitable[Any]) -> Any:
    """Await a Sessions operation; a refusal becomes a ToolError with its message."""
    from actors import ActorError  # noqa: PLC0415

    try:
        return await call
    except ActorError as exc:
        raise ToolError(str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise ToolError(str(exc)) from None


@mcp_tool()
async def initiate_reasoning_session(
    task_description: str, agent_name: str, tags: list[str] | None = None
) -> dict[str, Any]:
    """Start a collaborative reasoning session owned by agent_name; returns its session_id.

    Other agents join when the owner adds them as participants or opens the session.
    """
    session_id = await _session_call(
        _sessions().initiate_reasoning_session_async(task_description, agent_name, tags or ())
    )
    _announce(session_id, agent_name, "initiate_reasoning_session")
    return {"session_id": session_id, "owner": agent_name}


@mcp_tool()
async def add_reasoning_step(
    session_id: str,
    agent_name: str,
    reasoning_text: str,
    step_type: StepTypeName = "analysis",
) -> dict[str, Any]:
    """Add a reasoning step (analysis, hypothesis, conclusion, critique or synthesis)."""
    step = await _session_call(
        _sessions().add_reasoning_step_async(session_id, agent_name, reasoning_text, step_type)
    )
    _announce(session_id, agent_name, "add_reasoning_step")
    return {"session_id": session_id, **_plain(step)}


@mcp_tool()
async def execute_orchestrated_decision(
    session_id: str, agent_name: str, prompt: str, task_type: TaskTypeName = "general"
) -> dict[str, Any]:
    """Choose a strategy from the session's reasoning, run it on the models, store the result.

    Answers within 45 seconds: with the result when the decision finished, else with its
    execution_id and status "running"; poll get_reasoning_session for its progress.
    """
    execution = await _session_call(
        _sessions().execute_orchestrated_decision_async(
            session_id, agent_name, prompt, task_type, wait_s=WAIT_LIMIT_S
        )
    )
    from reactor.daemon._sessions import announce_decision  # noqa: PLC0415

    announce_decision(current_daemon(), session_id, agent_name, execution)
    answer: dict[str, Any] = {"session_id": session_id, **_plain(execution)}
    if execution.status.value == "running":
        answer["poll"] = "get_reasoning_session"
    return answer


@mcp_tool(read_only=True)
async def get_reasoning_session(session_id: str, agent_name: str) -> dict[str, Any]:
    """The session: task, owner, participants, steps, and decisions with progress or result."""
    session = await _session_call(_sessions().get_reasoning_session_async(session_id, agent_name))
    plain: dict[str, Any] = _plain(session)
    return plain


@mcp_tool(read_only=True)
async def search_reasoning_sessions(
    agent_name: str,
    query: str = "",
    tags: list[str] | None = None,
    status: StatusName | None = None,
    limit: int = 10,
) -> Listing:
    """Full-text search over the sessions agent_name may read, best match first."""
    hits = await _session_call(
        _sessions().search_reasoning_sessions_async(agent_name, query, tags or (), status, limit)
    )
    return _listing([_plain(hit) for hit in hits])


@mcp_tool(read_only=True)
async def get_orchestration_capabilities(agent_name: str) -> dict[str, Any]:
    """The models, strategies, task types and free GPU memory decisions can use."""
    answer = await _session_call(_sessions().get_orchestration_capabilities_async(agent_name))
    plain: dict[str, Any] = _plain(answer)
    return plain
