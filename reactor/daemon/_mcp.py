"""The MCP server: the daemon's tools for LM Studio agents (official ``mcp`` SDK).

Served over Streamable HTTP at ``/mcp`` in the daemon's app (same token, Origin and
Host checked) and over stdio by ``reactor mcp`` (for hosts that start a command).

Adding a tool is one line: :func:`mcp_tool` on an ``async`` function at module level
(its type hints give the input schema, its docstring the description); it reaches the
daemon with :func:`current_daemon`. A tool's failure is raised as ``ToolError`` with the
real message, which the client gets as an ``isError`` result the model can read.

Calls that may take long answer within :data:`WAIT_LIMIT_S` (LM Studio's client gives
up after about 60 s): a run still going then is returned as a handle (``run_id``) to
poll with ``get_run``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

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


def current_daemon() -> Daemon:
    """The daemon the MCP server serves.

    Raises:
        ToolError: No daemon runs (a tool called outside one).
    """
    if not _CURRENT:
        msg = "no daemon is running"
        raise ToolError(msg)
    return _CURRENT[-1]


def build_mcp(daemon: Daemon) -> MCPServer:
    """The MCP server with every registered tool, serving ``daemon``."""
    from reactor.daemon._daemon import version  # noqa: PLC0415

    _CURRENT[:] = [daemon]
    server: MCPServer = MCPServer(
        name="reactor-swarm",
        version=version(),
        instructions=(
            "Reactor Swarm runs reactors (graphs of LLM and Python steps). List them with "
            "list_reactors, start one with run_reactor, and poll a long one with get_run."
        ),
        log_level="WARNING",
    )
    for fn, hints in _TOOLS:
        server.add_tool(fn, annotations=hints)
    return server


def _tool_error(exc: ApiError) -> ToolError:
    where = f" ({exc.field})" if exc.field else ""
    return ToolError(f"{exc.message}{where}")


@mcp_tool(read_only=True)
async def list_reactors() -> list[dict[str, Any]]:
    """The reactors this daemon can run: name, description, inputs and steps."""
    from reactor.daemon._app import reactor_info  # noqa: PLC0415

    daemon = current_daemon()
    return [
        {
            "name": info.name,
            "description": info.description,
            "inputs": info.inputs,
            "steps": info.steps,
        }
        for info in (reactor_info(r) for _, r in sorted(daemon.reactors.items()))
    ]


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
