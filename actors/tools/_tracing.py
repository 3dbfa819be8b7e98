"""The ``execute_tool {name}`` span of one tool call (OpenTelemetry GenAI conventions).

An INTERNAL span, a child of the step's span (the trace context travels in the
:class:`~actors.tools.ExecuteTools` request), with ``gen_ai.operation.name`` =
``execute_tool``, ``gen_ai.tool.name``, ``gen_ai.tool.call.id``, ``gen_ai.tool.type``
(``function`` for Python tools, ``extension`` for MCP tools),
``gen_ai.tool.description``, and on failure ``error.type`` (the outcome's status), an
error status and, when the tool raised, an ``exception`` event; a cancelled call's span
ends too (``error.type=cancelled``). Arguments and results are not recorded (they may
hold personal data; the conventions make them opt-in). Nothing is built when tracing
is off.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel

__all__ = [
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_DESCRIPTION",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_TOOL_TYPE",
    "end_tool_span",
    "start_tool_span",
]

GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
ERROR_TYPE = "error.type"


def start_tool_span(
    name: str, call_id: str, *, kind: str, description: str, parent: dict[str, str] | None
) -> trace.Span | None:
    """Start the span of one call (``None`` when tracing is off)."""
    if not otel.enabled():
        return None
    context = otel.extract(parent) if parent else otel_context.get_current()
    attributes: dict[str, Any] = {
        otel.GEN_AI_OPERATION_NAME: "execute_tool",
        GEN_AI_TOOL_NAME: name,
        GEN_AI_TOOL_CALL_ID: call_id,
        GEN_AI_TOOL_TYPE: kind,
    }
    if description:
        attributes[GEN_AI_TOOL_DESCRIPTION] = description[:500]
    return otel.tracer().start_span(
        f"execute_tool {name}", context=context, kind=SpanKind.INTERNAL, attributes=attributes
    )


def end_tool_span(
    span: trace.Span | None, status: str, message: str = "", exc: BaseException | None = None
) -> None:
    """End the span, marking it failed unless ``status`` is ``ok``.

    ``exc``, what the tool raised, becomes the conventions' ``exception`` event (its
    type, message and stack trace).
    """
    if span is None:
        return
    if status != "ok":
        span.set_attribute(ERROR_TYPE, status)
        span.set_status(Status(StatusCode.ERROR, message[:500]))
        if exc is not None:
            span.record_exception(exc)
    span.end()
