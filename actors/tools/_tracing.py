"""The ``execute_tool {name}`` span of one tool call (OpenTelemetry GenAI conventions).

An INTERNAL span, a child of the step's span (the trace context travels in the
:class:`~actors.tools.ExecuteTools` request), with ``gen_ai.operation.name`` =
``execute_tool``, ``gen_ai.tool.name``, ``gen_ai.tool.call.id``, ``gen_ai.tool.type``
(``function`` for Python tools, ``extension`` for MCP tools),
``gen_ai.tool.description``, and on failure ``error.type`` (the outcome's status), an
error status and, when the tool raised, an ``exception`` event; a cancelled call's span
ends too (``error.type=cancelled``). The call's arguments
(``gen_ai.tool.call.arguments``, as the model sent them) and its result
(``gen_ai.tool.call.result``, the text the model reads, error or not) are recorded
only when message content may be (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
true, :func:`otel.capture_content`): they may hold personal data, and the conventions
make them opt-in. Each is cut to :data:`CONTENT_LIMIT` characters. Nothing is built
when tracing is off.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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

CONTENT_LIMIT = 8192
"""Characters of a call's arguments or result kept on its span (a backend's limit is near)."""


def start_tool_span(
    name: str,
    call_id: str,
    *,
    kind: str,
    description: str,
    parent: dict[str, str] | None,
    arguments: Mapping[str, Any] | None = None,
) -> trace.Span | None:
    """Start the span of one call (``None`` when tracing is off).

    ``arguments`` are recorded only when content capture is on (see the module).
    """
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
    if arguments is not None and otel.capture_content():
        text = json.dumps(dict(arguments), default=str, ensure_ascii=False)
        attributes[otel.GEN_AI_TOOL_CALL_ARGUMENTS] = text[:CONTENT_LIMIT]
    return otel.tracer().start_span(
        f"execute_tool {name}", context=context, kind=SpanKind.INTERNAL, attributes=attributes
    )


def end_tool_span(
    span: trace.Span | None,
    status: str,
    message: str = "",
    exc: BaseException | None = None,
    *,
    result: str | None = None,
) -> None:
    """End the span, marking it failed unless ``status`` is ``ok``.

    ``exc``, what the tool raised, becomes the conventions' ``exception`` event (its
    type, message and stack trace). ``result``, the text the model reads, is recorded
    only when content capture is on (see the module).
    """
    if span is None:
        return
    if result is not None and otel.capture_content():
        span.set_attribute(otel.GEN_AI_TOOL_CALL_RESULT, result[:CONTENT_LIMIT])
    if status != "ok":
        span.set_attribute(ERROR_TYPE, status)
        span.set_status(Status(StatusCode.ERROR, message[:500]))
        if exc is not None:
            span.record_exception(exc)
    span.end()
