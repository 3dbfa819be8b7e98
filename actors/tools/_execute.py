"""Running one turn's tool calls: look up, validate, decide, run, check, trace, audit.

For each call of a turn, in this order (:meth:`ToolCaller.execute`):

1. **look up** the tool among those the step offers, else ``unknown_tool`` (the model
   is told which tools it may call);
2. **validate** the arguments against the tool's schema, else ``invalid_arguments``
   naming each field;
3. **approval**: a human's decision on this call applies only to the exact payload that
   was pending (its hash); ``reject`` ends the call there, ``edit`` swaps in the edited
   arguments (validated again);
4. **policy**: deny, allow lists, argument constraints, rate limits
   (:class:`~actors.tools.Policy`); a call that needs approval and has none is
   ``pending_approval`` and does not run;
5. **run**, bounded: at most ``max_parallel`` calls of the runner at once and the tool's
   own ``max_concurrency``, each under the tool's ``timeout``; ``async def`` on the
   event loop, a plain ``def`` in the worker pool (or on the loop when ``inline``);
6. **check** the result against the tool's return type, and make it JSON;
7. an ``execute_tool {name}`` span around 5 and 6, and one audit record per call,
   whatever it came to.

Every call of the turn runs concurrently; the outcomes come back in call order. Errors
never escape: each is an outcome the model can read (:class:`~actors.tools.ToolOutcome`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import trace

from actors.llm import ToolCall
from actors.tools._audit import AuditRecord, AuditSink, redact
from actors.tools._errors import ToolArgumentError, ToolError
from actors.tools._messages import Approval, ExecuteTools, ToolOutcome, ToolStatus, payload_hash
from actors.tools._policy import Decision, Policy, Scope
from actors.tools._registry import Tool, ToolContext, ToolRegistry
from actors.tools._tracing import end_tool_span, start_tool_span

__all__ = ["ToolCaller"]

_encode = msgspec.json.Encoder().encode
_DECIDED = {"approve": "approved", "edit": "edited", "reject": "rejected"}


def _content(value: Any) -> str:
    """What the model reads of a result: text as it is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return _encode(value).decode()


_REFUSALS: dict[Decision, tuple[ToolStatus, str]] = {
    Decision.APPROVAL: (ToolStatus.PENDING_APPROVAL, "pending"),
    Decision.DENY: (ToolStatus.PERMISSION_DENIED, "denied"),
    Decision.RATE_LIMITED: (ToolStatus.RATE_LIMITED, "denied"),
}
"""A policy verdict that stops a call: the outcome's status and the audit's decision."""


def _error_content(kind: str, message: str, fields: tuple[str, ...] = ()) -> str:
    body: dict[str, Any] = {"error": kind, "message": message}
    if fields:
        body["fields"] = list(fields)
    return _encode(body).decode()


class ToolCaller:
    """Validates, decides, runs and audits tool calls (the :class:`ToolRunner`'s core).

    Usable without an actor system (``await caller.execute(request)`` on a running loop).

    Args:
        registry: The tools.
        policy: Who may call what (none: everything is allowed).
        audit: Where audit records go (none: nowhere).
        pool: Where plain ``def`` tools run (the loop's default executor when ``None``).
        max_parallel: Calls running at once, over all turns this caller serves.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        policy: Policy | None = None,
        audit: AuditSink | None = None,
        pool: Executor | None = None,
        max_parallel: int = 128,
    ) -> None:
        if max_parallel < 1:
            msg = f"ToolCaller(max_parallel={max_parallel!r}): must be at least 1"
            raise ValueError(msg)
        self.registry = registry
        self.policy = policy or Policy()
        self.audit = audit
        self.pool = pool
        self.max_parallel = max_parallel
        self._parallel: asyncio.Semaphore | None = None
        self._per_tool: dict[str, asyncio.Semaphore] = {}

    async def execute(self, request: ExecuteTools) -> list[ToolOutcome]:
        """Every call of the turn, run concurrently; outcomes in call order."""
        if self._parallel is None:
            self._parallel = asyncio.Semaphore(self.max_parallel)
        calls = request.calls
        if len(calls) == 1:
            return [await self.call(calls[0], request)]
        return list(await asyncio.gather(*(self.call(c, request) for c in calls)))

    async def call(self, call: ToolCall, request: ExecuteTools) -> ToolOutcome:
        """One call, from look-up to audit (never raises)."""
        started = time.time()
        tool: Tool | None = None
        decision, decided_by = "", ""  # "allowed" once the policy says so
        arguments: Mapping[str, Any] = call.arguments
        try:
            tool = self.registry.get(call.name, request.allowed)
            validated = tool.validate(arguments)
            approval = request.approvals.get(call.id)
            if approval is not None:
                decision, decided_by = _DECIDED[approval.decision], approval.by
                outcome = self._apply_approval(tool, call, approval)
                if outcome is not None:
                    return self._audited(outcome, tool, request, started)
                if approval.decision == "edit" and approval.arguments is not None:
                    arguments = approval.arguments
                    validated = tool.validate(arguments)
            scope = Scope(reactor=request.reactor, step=request.step, identity=request.identity)
            verdict = self.policy.check(
                tool, _plain(validated), scope, approved=approval is not None
            )
            refusal = _REFUSALS.get(verdict.decision)
            if refusal is not None:
                status, label = refusal
                return self._audited(
                    ToolOutcome(
                        call_id=call.id,
                        name=call.name,
                        status=status,
                        content=_error_content(status.value, verdict.reason),
                        decision=label,
                        decided_by="" if label == "pending" else verdict.reason,
                        arguments=dict(arguments),
                    ),
                    tool,
                    request,
                    started,
                )
            decision = decision or "allowed"
            outcome = await self._run(tool, call, validated, request)
            outcome = _with(
                outcome, decision=decision, decided_by=decided_by, arguments=dict(arguments)
            )
        except ToolError as exc:
            fields = exc.fields if isinstance(exc, ToolArgumentError) else ()
            outcome = ToolOutcome(
                call_id=call.id,
                name=call.name,
                status=_status(exc.kind),
                content=_error_content(exc.kind, str(exc), fields),
                fields=fields,
                decision=decision,
                decided_by=decided_by,
                arguments=dict(arguments) if isinstance(arguments, Mapping) else {},
            )
        return self._audited(outcome, tool, request, started)

    def _apply_approval(self, tool: Tool, call: ToolCall, approval: Approval) -> ToolOutcome | None:
        """A rejection's outcome, or ``None`` to go on; refuses a decision on another payload."""
        expected = payload_hash(call.name, dict(call.arguments))
        if approval.payload_hash != expected:
            return ToolOutcome(
                call_id=call.id,
                name=call.name,
                status=ToolStatus.PERMISSION_DENIED,
                content=_error_content(
                    "permission_denied",
                    "the approval was given for another payload; the call was not run",
                ),
                decision="denied",
                decided_by=approval.by,
                arguments=dict(call.arguments),
            )
        if approval.decision == "reject":
            reason = approval.message or "rejected"
            return ToolOutcome(
                call_id=call.id,
                name=call.name,
                status=ToolStatus.REJECTED,
                content=_error_content(
                    "rejected", f"{approval.by or 'a human'} rejected the call: {reason}"
                ),
                decision="rejected",
                decided_by=approval.by,
                arguments=dict(call.arguments),
            )
        return None

    async def _run(
        self, tool: Tool, call: ToolCall, validated: dict[str, Any], request: ExecuteTools
    ) -> ToolOutcome:
        context = ToolContext(
            call_id=call.id,
            tool=tool.name,
            run_id=request.run_id,
            reactor=request.reactor,
            step=request.step,
            identity=request.identity,
        )
        span = start_tool_span(
            tool.name,
            call.id,
            kind=tool.kind,
            description=tool.description,
            parent=request.trace,
            arguments=call.arguments,
        )
        limit = tool.meta.max_concurrency
        per_tool = None
        if limit is not None:
            per_tool = self._per_tool.get(tool.name)
            if per_tool is None:
                per_tool = self._per_tool[tool.name] = asyncio.Semaphore(limit)
        began = time.perf_counter()
        status, content, value, error_message = ToolStatus.OK, "", None, ""
        raised: BaseException | None = None  # what the tool raised, for the span's event
        assert self._parallel is not None
        # The tool runs in its span: its own spans (an HTTP client's, the MCP SDK's, whose
        # request carries the span as traceparent in _meta) are the span's children.
        token = otel_context.attach(trace.set_span_in_context(span)) if span is not None else None
        try:
            async with self._parallel:
                if per_tool is not None:
                    async with per_tool:
                        result = await self._invoke(tool, validated, context)
                else:
                    result = await self._invoke(tool, validated, context)
            value = tool.check_output(result)
            content = _content(value)
        except TimeoutError:
            status = ToolStatus.TIMEOUT
            error_message = (
                f"tool {tool.name!r} took longer than its timeout of {tool.meta.timeout:g} s"
            )
            content = _error_content("timeout", error_message)
        except ToolError as exc:
            status = _status(exc.kind)
            error_message = str(exc)
            content = _error_content(exc.kind, error_message)
            raised = exc
        except Exception as exc:  # noqa: BLE001 - a tool's failure is the model's to read
            status = ToolStatus.ERROR
            error_message = f"{type(exc).__name__}: {exc}"
            content = _error_content("error", error_message)
            raised = exc
        except BaseException as exc:
            # Cancelled (the step was, or the runner is stopping): no outcome, but the
            # span still ends, marked, so the trace has no call left open.
            kind = "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__
            end_tool_span(span, kind, f"tool {tool.name!r} did not finish: {kind}")
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        duration = time.perf_counter() - began
        end_tool_span(span, status, error_message, raised, result=content)
        return ToolOutcome(
            call_id=call.id,
            name=tool.name,
            status=status,
            content=content,
            value=value,
            duration_s=duration,
        )

    async def _invoke(self, tool: Tool, validated: dict[str, Any], context: ToolContext) -> Any:
        timeout = tool.meta.timeout
        if tool.is_async:
            async with asyncio.timeout(timeout):
                return await tool.invoke(validated, context)
        if tool.meta.inline:
            result = tool.invoke(validated, context)
            if asyncio.iscoroutine(result):
                async with asyncio.timeout(timeout):
                    return await result
            return result
        loop = asyncio.get_running_loop()
        in_context = contextvars.copy_context()  # the worker thread runs in the tool's span
        future = loop.run_in_executor(
            self.pool, functools.partial(in_context.run, tool.invoke, validated, context)
        )
        async with asyncio.timeout(timeout):
            return await future

    def _audited(
        self, outcome: ToolOutcome, tool: Tool | None, request: ExecuteTools, started: float
    ) -> ToolOutcome:
        sink = self.audit
        if sink is not None:
            secret = tool.secret if tool is not None else frozenset()
            error = "" if outcome.status is ToolStatus.OK else outcome.content
            sink.record(
                AuditRecord(
                    at=started,
                    run_id=request.run_id,
                    reactor=request.reactor,
                    step=request.step,
                    identity=request.identity,
                    tool=outcome.name,
                    call_id=outcome.call_id,
                    arguments=redact(
                        outcome.arguments or _mapping(request, outcome.call_id), secret
                    ),
                    decision=outcome.decision,
                    decided_by=outcome.decided_by,
                    outcome=str(outcome.status),
                    duration_s=outcome.duration_s,
                    error=error,
                )
            )
        return outcome


def _mapping(request: ExecuteTools, call_id: str) -> dict[str, Any]:
    for call in request.calls:
        if call.id == call_id:
            return dict(call.arguments)
    return {}


def _status(kind: str) -> ToolStatus:
    """The status of a tool error's kind (a kind of a user's own subclass is ``error``)."""
    try:
        return ToolStatus(kind)
    except ValueError:
        return ToolStatus.ERROR


def _plain(validated: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in validated.items() if k != "__instance__"}


def _with(outcome: ToolOutcome, **changes: Any) -> ToolOutcome:
    return msgspec.structs.replace(outcome, **changes)
