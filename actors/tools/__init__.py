"""Tools a model may call: the registry, permissions, approvals, the audit log, MCP sources.

* :func:`tool` makes a :class:`Tool` of a function (sync or ``async``) or a pydantic
  model: the JSON schema from its signature and docstring, arguments validated before
  the call and results against the return type, with :class:`ToolMeta` (read-only,
  destructive, idempotent, open-world, timeout, concurrency, tags, approval, retries).
  A :class:`ToolRegistry` holds them and trims them to what a step allows.
* A :class:`Policy` of :class:`Rule` s says who may call what: allow/deny by name and tag
  per reactor, step and identity, argument constraints, rate limits, approvals.
* The :class:`ToolRunner` actor runs a turn's calls concurrently, each under its
  timeout, with an ``execute_tool`` span and an :class:`AuditRecord` per call
  (:func:`query_audit`, ``reactor tools audit``).
* :func:`run_tool_loop` is the model ↔ tools loop the ``tools`` step runs, journaled
  turn by turn; calls that need approval halt the run until :func:`decide` records a
  human's decision (``reactor runs approve|reject``).
* :class:`McpSource` brings an MCP server's tools in (stdio or Streamable HTTP,
  configured like LM Studio's ``mcp.json``: :class:`~actors.llm.McpServerConfig`).
"""

from actors.llm import McpServerConfig
from actors.tools._approvals import (
    approval_stream,
    decide,
    decide_async,
    history,
    history_async,
    loop_stream,
    pending_calls,
    pending_calls_async,
)
from actors.tools._audit import (
    AUDIT_STREAM,
    AuditRecord,
    AuditSink,
    prune_audit,
    query_audit,
    redact,
)
from actors.tools._errors import (
    ApprovalError,
    ToolArgumentError,
    ToolDefinitionError,
    ToolError,
    ToolLoopError,
    ToolOutputError,
    ToolPermissionError,
    ToolRateLimitedError,
    ToolRetry,
    ToolTimeoutError,
    UnknownToolError,
)
from actors.tools._execute import ToolCaller
from actors.tools._loop import (
    AwaitingApproval,
    LoopPorts,
    LoopSettings,
    parse_json_calls,
    run_tool_loop,
    window,
)
from actors.tools._mcp import McpSource, mcp_tool_name
from actors.tools._messages import (
    LOOP_RECORD_DECODER,
    Approval,
    ApprovalDecided,
    ApprovalsPending,
    ExecuteTools,
    FallbackChosen,
    ListTools,
    LoopFinished,
    LoopRecord,
    LoopReset,
    OutcomesRecorded,
    PendingCall,
    ToolList,
    ToolLoopResult,
    ToolOutcome,
    ToolResults,
    ToolStatus,
    TurnRecorded,
    payload_hash,
)
from actors.tools._policy import Decision, Policy, RateLimit, Rule, Scope, Verdict
from actors.tools._registry import Tool, ToolContext, ToolMeta, ToolRegistry, matches, tool
from actors.tools._runner import AuditFlushed, FlushAudit, ToolRunner

__all__ = [
    "AUDIT_STREAM",
    "LOOP_RECORD_DECODER",
    "Approval",
    "ApprovalDecided",
    "ApprovalError",
    "ApprovalsPending",
    "AuditFlushed",
    "AuditRecord",
    "AuditSink",
    "AwaitingApproval",
    "Decision",
    "ExecuteTools",
    "FallbackChosen",
    "FlushAudit",
    "ListTools",
    "LoopFinished",
    "LoopPorts",
    "LoopRecord",
    "LoopReset",
    "LoopSettings",
    "McpServerConfig",
    "McpSource",
    "OutcomesRecorded",
    "PendingCall",
    "Policy",
    "RateLimit",
    "Rule",
    "Scope",
    "Tool",
    "ToolArgumentError",
    "ToolCaller",
    "ToolContext",
    "ToolDefinitionError",
    "ToolError",
    "ToolList",
    "ToolLoopError",
    "ToolLoopResult",
    "ToolMeta",
    "ToolOutcome",
    "ToolOutputError",
    "ToolPermissionError",
    "ToolRateLimitedError",
    "ToolRegistry",
    "ToolResults",
    "ToolRetry",
    "ToolRunner",
    "ToolStatus",
    "ToolTimeoutError",
    "TurnRecorded",
    "UnknownToolError",
    "Verdict",
    "approval_stream",
    "decide",
    "decide_async",
    "history",
    "history_async",
    "loop_stream",
    "matches",
    "mcp_tool_name",
    "parse_json_calls",
    "payload_hash",
    "pending_calls",
    "pending_calls_async",
    "prune_audit",
    "query_audit",
    "redact",
    "run_tool_loop",
    "tool",
    "window",
]
