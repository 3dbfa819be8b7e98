"""The daemon: REST + SSE, the MCP server and a web page over a running actor system.

``reactor serve`` runs a :class:`Daemon`; code can embed one the same way. What it
serves is described in :mod:`reactor.daemon._app` (the routes and ``/openapi.json``),
:mod:`reactor.daemon._mcp` (the MCP tools; :func:`mcp_tool` adds one) and
:mod:`reactor.daemon._web` (the page). Custom task types are added with
:func:`register_task_handler`; the HTTP client the CLI uses is :class:`DaemonClient`.
"""

from reactor.daemon._client import DaemonClient, DaemonClientError
from reactor.daemon._daemon import Daemon, DaemonError, default_token_file, read_token
from reactor.daemon._errors import ApiError
from reactor.daemon._hub import ConversationActivity, RunActivity, SessionActivity
from reactor.daemon._mcp import build_mcp, current_daemon, mcp_tool
from reactor.daemon._messages import (
    Agent,
    AgentConfig,
    AgentCreate,
    AgentUpdate,
    Task,
    TaskResult,
    TasksRequest,
    TasksResponse,
    WorkflowRequest,
    WorkflowResponse,
    WorkflowStep,
)
from reactor.daemon._tasks import TaskHandler, TaskRunner, register_task_handler

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentCreate",
    "AgentUpdate",
    "ApiError",
    "ConversationActivity",
    "Daemon",
    "DaemonClient",
    "DaemonClientError",
    "DaemonError",
    "RunActivity",
    "SessionActivity",
    "Task",
    "TaskHandler",
    "TaskResult",
    "TaskRunner",
    "TasksRequest",
    "TasksResponse",
    "WorkflowRequest",
    "WorkflowResponse",
    "WorkflowStep",
    "build_mcp",
    "current_daemon",
    "default_token_file",
    "mcp_tool",
    "read_token",
    "register_task_handler",
]
