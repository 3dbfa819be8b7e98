"""Attribute names of the OpenTelemetry semantic conventions for generative AI, and helpers.

One place for the ``gen_ai.*`` names every span and metric of an LLM call uses, so that
a rename in the conventions is one edit. They follow the conventions as published in
the ``semantic-conventions-genai`` repository (``gen_ai.provider.name`` replaced
``gen_ai.system``; inference spans and metrics live under ``gen_ai.client.inference``);
the conventions are still in development, so check them here when upgrading.

The helpers make the spans later layers need: :func:`execute_tool_span` (a tool call,
``execute_tool {tool}``), :func:`invoke_agent_span` (an agent, ``invoke_agent {agent}``),
:func:`error_type` (the ``error.type`` of a failure or exception), and
:func:`capture_content` (whether message content may be recorded: off unless
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says yes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace

from otel._resource import env_flag
from otel._tracing import enabled, tracer

__all__ = [
    "CAPTURE_CONTENT_VARIABLE",
    "ERROR_TYPE",
    "GEN_AI_AGENT_DESCRIPTION",
    "GEN_AI_AGENT_ID",
    "GEN_AI_AGENT_NAME",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_INPUT_MESSAGES",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_OUTPUT_MESSAGES",
    "GEN_AI_OUTPUT_TYPE",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MAX_TOKENS",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_REQUEST_STOP_SEQUENCES",
    "GEN_AI_REQUEST_STREAM",
    "GEN_AI_REQUEST_TEMPERATURE",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK",
    "GEN_AI_TOOL_CALL_ARGUMENTS",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_CALL_RESULT",
    "GEN_AI_TOOL_DESCRIPTION",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_TOOL_TYPE",
    "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
    "GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS",
    "GEN_AI_WORKFLOW_NAME",
    "OPENAI_REQUEST_SERVICE_TIER",
    "OPENAI_RESPONSE_SERVICE_TIER",
    "OPENAI_RESPONSE_SYSTEM_FINGERPRINT",
    "capture_content",
    "error_type",
    "execute_tool_span",
    "invoke_agent_span",
    "qualified_name",
]

# -- operation and provider ----------------------------------------------------------------

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
"""What the call does: ``chat``, ``embeddings``, ``execute_tool``, ``invoke_agent``,
``invoke_workflow``, ..."""

GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
"""Whose API it is: ``openai``, ``anthropic``, ``gcp.gemini``, ... (or the server's name)."""

# -- request -------------------------------------------------------------------------------

GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
"""The model the request asked for."""

GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
"""The sampling temperature asked for."""

GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
"""The most tokens the answer may have."""

GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
"""Sequences that end the answer."""

GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
"""Set (``true``) if and only if the request streams."""

GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
"""The kind of output asked for (``text``, ``json``, ...), when the request names one."""

GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
"""A conversation's id, when one is readily available (never made up)."""

OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
"""The service tier an OpenAI request asked for."""

# -- response ------------------------------------------------------------------------------

GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
"""The model that answered (it may differ from the one asked for)."""

GEN_AI_RESPONSE_ID = "gen_ai.response.id"
"""The server's id for the completion (``chatcmpl-...``, ``msg_...``)."""

GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
"""Why the answer ended, one reason per choice."""

GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
"""Seconds from sending a streaming request to its first chunk."""

OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
"""The service tier that served an OpenAI request."""

OPENAI_RESPONSE_SYSTEM_FINGERPRINT = "openai.response.system_fingerprint"
"""OpenAI's fingerprint of the backend configuration that answered."""

# -- usage ---------------------------------------------------------------------------------

GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
"""Tokens in the prompt (cached ones included)."""

GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
"""Tokens in the answer (reasoning ones included)."""

GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
"""Input tokens served from the provider's cache (a part of the input tokens)."""

GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
"""Input tokens written to the provider's cache (a part of the input tokens)."""

GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
"""Output tokens spent on reasoning (a part of the output tokens)."""

# -- content (opt-in) ----------------------------------------------------------------------

GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
"""The messages sent, as JSON (``[{"role": ..., "parts": [...]}]``); opt-in."""

GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
"""The messages the model returned, one per choice, as JSON; opt-in."""

CAPTURE_CONTENT_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""The standard variable that turns content capture on (``true``)."""

# -- tools, agents, workflows --------------------------------------------------------------

GEN_AI_TOOL_NAME = "gen_ai.tool.name"
"""The tool's name."""

GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
"""The id of the tool call the model made."""

GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
"""``function`` (run by the client), ``extension`` (by an agent) or ``datastore``."""

GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
"""What the tool does."""

GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
"""The arguments the tool was called with, as JSON; opt-in (content)."""

GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
"""What the tool returned, as JSON; opt-in (content)."""

GEN_AI_AGENT_NAME = "gen_ai.agent.name"
"""The agent's name."""

GEN_AI_AGENT_ID = "gen_ai.agent.id"
"""The agent's id."""

GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"
"""What the agent is for."""

GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
"""The workflow's name (for a run: its reactor's name, low-cardinality)."""

ERROR_TYPE = "error.type"
"""The class of error an operation ended with (a failure kind or an exception's name)."""


def capture_content() -> bool:
    """Whether message content (prompts, answers, tool arguments) may go on spans.

    Off unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is ``true``: content
    is likely to hold personal data, so it is recorded only when asked for.
    """
    return env_flag(CAPTURE_CONTENT_VARIABLE)


def qualified_name(kind: type[BaseException]) -> str:
    """An exception type's name for ``error.type``.

    ``ValueError`` for built-ins, else ``module.QualName`` (``myapp.errors.CardDeclined``),
    with private module segments left out (``dsl._errors.X`` is ``dsl.X``).
    """
    module = kind.__module__
    if module == "builtins":
        return kind.__qualname__
    public = ".".join(part for part in module.split(".") if not part.startswith("_"))
    return f"{public}.{kind.__qualname__}" if public else kind.__qualname__


def error_type(error: object) -> str:
    """The ``error.type`` of a failure value or an exception.

    A failure from the taxonomy (anything with a ``kind``, a
    :class:`~actors.FailureKind` or its string) gives its kind; a step's recorded error
    whose kind is the catch-all ``error`` gives its exception name; an exception gives
    its qualified name; anything else gives ``_OTHER``.
    """
    if isinstance(error, BaseException):
        failure = getattr(error, "failure", None)  # an AskError carries its Failure
        return error_type(failure) if failure is not None else qualified_name(type(error))
    kind = getattr(error, "kind", None)
    if kind is not None:
        text = str(getattr(kind, "value", kind))
        if text != "error":
            return text
    name = getattr(error, "error", None)
    return str(name) if name else "_OTHER"


def _json(value: object) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _end_with_error(span: trace.Span, exc: BaseException) -> None:
    span.set_attribute(ERROR_TYPE, error_type(exc))
    span.set_status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")


@contextmanager
def execute_tool_span(
    tool: str,
    *,
    call_id: str | None = None,
    tool_type: str = "function",
    description: str | None = None,
    arguments: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[trace.Span]:
    """A span ``execute_tool {tool}`` (INTERNAL) around one tool call, current in the block.

    Arguments are recorded only when content capture is on; set the result with
    ``span.set_attribute(GEN_AI_TOOL_CALL_RESULT, ...)`` under the same condition (see
    :func:`capture_content`). An exception leaving the block sets ``error.type`` and
    an error status, and propagates. With tracing off this costs one check.
    """
    if not enabled():
        yield trace.INVALID_SPAN
        return
    attrs: dict[str, Any] = {
        GEN_AI_OPERATION_NAME: "execute_tool",
        GEN_AI_TOOL_NAME: tool,
        GEN_AI_TOOL_TYPE: tool_type,
    }
    if call_id:
        attrs[GEN_AI_TOOL_CALL_ID] = call_id
    if description:
        attrs[GEN_AI_TOOL_DESCRIPTION] = description
    if arguments is not None and capture_content():
        attrs[GEN_AI_TOOL_CALL_ARGUMENTS] = _json(dict(arguments))
    if attributes:
        attrs.update(attributes)
    with tracer().start_as_current_span(
        f"execute_tool {tool}",
        kind=trace.SpanKind.INTERNAL,
        attributes=attrs,
        record_exception=True,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            _end_with_error(span, exc)
            raise


@contextmanager
def invoke_agent_span(
    agent: str,
    *,
    agent_id: str | None = None,
    description: str | None = None,
    provider: str | None = None,
    model: str | None = None,
    conversation_id: str | None = None,
    remote: bool = False,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[trace.Span]:
    """A span ``invoke_agent {agent}`` around one agent invocation, current in the block.

    CLIENT when the agent runs elsewhere (``remote=True``), INTERNAL when in this
    process. The LLM and tool spans of the agent's work nest under it. An exception
    leaving the block sets ``error.type`` and an error status, and propagates.
    """
    if not enabled():
        yield trace.INVALID_SPAN
        return
    attrs: dict[str, Any] = {GEN_AI_OPERATION_NAME: "invoke_agent", GEN_AI_AGENT_NAME: agent}
    optional = {
        GEN_AI_AGENT_ID: agent_id,
        GEN_AI_AGENT_DESCRIPTION: description,
        GEN_AI_PROVIDER_NAME: provider,
        GEN_AI_REQUEST_MODEL: model,
        GEN_AI_CONVERSATION_ID: conversation_id,
    }
    attrs.update({key: value for key, value in optional.items() if value})
    if attributes:
        attrs.update(attributes)
    with tracer().start_as_current_span(
        f"invoke_agent {agent}",
        kind=trace.SpanKind.CLIENT if remote else trace.SpanKind.INTERNAL,
        attributes=attrs,
        record_exception=True,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            _end_with_error(span, exc)
            raise
