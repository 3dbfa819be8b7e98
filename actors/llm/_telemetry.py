"""A model host's telemetry: its GenAI spans and metrics, in one place.

A chat request is one CLIENT span ``chat {model}``, opened when the host takes the
request and closed when the host has its outcome (after the breaker has been told),
so that the span covers what the caller waited for: queueing, admission and the call.
The attributes the conventions want for sampling (operation, provider, model, server
address and port) are set when the span starts; the response's (model, id, finish
reasons, usage with its cached and reasoning parts, time to first chunk, OpenAI's
service tier and system fingerprint) when it ends. A refusal (``circuit_open``,
``overloaded``, ``not_found``) is a span too, ended at once with its ``error.type``;
breaker transitions are events on the span of the call that caused them. Message
content goes on the span only when content capture is on
(``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``), as the conventions'
``gen_ai.input.messages`` / ``gen_ai.output.messages`` JSON.

Metrics (when on): ``gen_ai.client.inference.duration`` (the span's duration), the
token usage counters and per-operation histograms, the time to first chunk, and for
embeddings ``gen_ai.client.operation.duration``.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry import trace

import otel
from actors import Failure
from actors.llm._messages import ChatMessage, ChatRequest, Completion, Embeddings, EmbedRequest

__all__ = [
    "GENAI_PROVIDER",
    "ServerInfo",
    "end_chat_span",
    "end_embed_span",
    "input_messages",
    "output_messages",
    "record_chat_metrics",
    "record_embed_metrics",
    "start_chat_span",
    "start_embed_span",
]

GENAI_PROVIDER = {
    "openai": "openai",
    "lmstudio": "lmstudio",
    "ollama": "ollama",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
}
"""``gen_ai.provider.name`` per protocol (the well-known values where the convention has one)."""

_CACHE_READ = ("cached_tokens", "cache_read_input_tokens")
_CACHE_WRITE = ("cache_creation_input_tokens",)
_REASONING = ("reasoning_tokens", "thoughts_tokens")
_RESPONSE_ID = ("response_id", "message_id")


class ServerInfo:
    """Who a host talks to, as the attributes of its spans and metrics say it."""

    __slots__ = ("address", "base", "host", "port", "provider")

    def __init__(self, *, host: str, protocol: str, address: str, port: int) -> None:
        self.host = host
        self.provider = GENAI_PROVIDER.get(protocol, protocol)
        self.address = address
        self.port = port
        # The low-cardinality attributes every metric point carries.
        self.base: dict[str, Any] = {
            otel.GEN_AI_PROVIDER_NAME: self.provider,
            "server.address": address,
            "server.port": port,
        }


def _first_int(extras: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = extras.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


# -- chat ------------------------------------------------------------------------------------


def start_chat_span(request: ChatRequest, server: ServerInfo) -> trace.Span:
    """Open ``chat {model}`` (CLIENT) with the request's attributes, in the current context."""
    attributes: dict[str, Any] = {
        otel.GEN_AI_OPERATION_NAME: "chat",
        otel.GEN_AI_PROVIDER_NAME: server.provider,
        otel.GEN_AI_REQUEST_MODEL: request.model,
        "server.address": server.address,
        "server.port": server.port,
        "reactor.host": server.host,
        "reactor.request_id": request.request_id,
    }
    if request.stream:
        attributes[otel.GEN_AI_REQUEST_STREAM] = True
    if request.temperature is not None:
        attributes[otel.GEN_AI_REQUEST_TEMPERATURE] = request.temperature
    if request.max_tokens is not None:
        attributes[otel.GEN_AI_REQUEST_MAX_TOKENS] = request.max_tokens
    if request.stop:
        attributes[otel.GEN_AI_REQUEST_STOP_SEQUENCES] = list(request.stop)
    tier = request.options.get("service_tier")
    if server.provider == "openai" and isinstance(tier, str):
        attributes[otel.OPENAI_REQUEST_SERVICE_TIER] = tier
    if request.tools:
        attributes["reactor.tools"] = len(request.tools)
    if otel.capture_content():
        attributes[otel.GEN_AI_INPUT_MESSAGES] = input_messages(request.messages)
    return otel.tracer().start_span(
        f"chat {request.model}", kind=trace.SpanKind.CLIENT, attributes=attributes
    )


def end_chat_span(span: trace.Span, outcome: Completion | Failure, server: ServerInfo) -> None:
    """Set the response's attributes (or the failure's ``error.type``) and end the span."""
    if isinstance(outcome, Completion):
        span.set_attributes(_response_attributes(outcome, server))
        for warning in outcome.warnings:
            span.add_event("reactor.warning", {"message": warning})
        if otel.capture_content():
            span.set_attribute(otel.GEN_AI_OUTPUT_MESSAGES, output_messages(outcome))
    else:
        _fail(span, outcome)
    span.end()


def _response_attributes(outcome: Completion, server: ServerInfo) -> dict[str, Any]:
    extras = outcome.extras
    attributes: dict[str, Any] = {
        otel.GEN_AI_RESPONSE_MODEL: outcome.model,
        otel.GEN_AI_RESPONSE_FINISH_REASONS: [outcome.finish_reason.value],
        otel.GEN_AI_USAGE_INPUT_TOKENS: outcome.usage.input_tokens,
        otel.GEN_AI_USAGE_OUTPUT_TOKENS: outcome.usage.output_tokens,
    }
    for key in _RESPONSE_ID:
        if isinstance(extras.get(key), str) and extras[key]:
            attributes[otel.GEN_AI_RESPONSE_ID] = extras[key]
            break
    for name, keys in (
        (otel.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, _CACHE_READ),
        (otel.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, _CACHE_WRITE),
        (otel.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, _REASONING),
    ):
        count = _first_int(extras, keys)
        if count is not None:
            attributes[name] = count
    if outcome.ttft_s is not None:
        attributes[otel.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = outcome.ttft_s
    if server.provider == "openai":
        if isinstance(extras.get("service_tier"), str):
            attributes[otel.OPENAI_RESPONSE_SERVICE_TIER] = extras["service_tier"]
        if isinstance(extras.get("system_fingerprint"), str):
            attributes[otel.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = extras["system_fingerprint"]
    if outcome.cost_usd is not None:
        attributes["reactor.cost_usd"] = outcome.cost_usd
    if outcome.tool_calls:
        attributes["reactor.tool_calls"] = len(outcome.tool_calls)
    if outcome.usage.estimated:
        attributes["reactor.usage_estimated"] = True
    if outcome.warnings:
        attributes["reactor.warnings"] = list(outcome.warnings)
    return attributes


def _fail(span: trace.Span, failure: Failure) -> None:
    span.set_attribute(otel.ERROR_TYPE, failure.kind.value)
    if failure.retry_after is not None:
        span.set_attribute("reactor.retry_after_s", failure.retry_after)
    state = failure.details.get("state")
    if state:
        span.set_attribute("reactor.breaker.state", state)
    span.set_status(trace.StatusCode.ERROR, failure.message)


def record_chat_metrics(
    request: ChatRequest, outcome: Completion | Failure, duration: float, server: ServerInfo
) -> None:
    """Record one chat's duration and tokens (does nothing when metrics are off)."""
    meters = otel.instruments()
    if meters is None:
        return
    attributes = {
        **server.base,
        otel.GEN_AI_OPERATION_NAME: "chat",
        otel.GEN_AI_REQUEST_MODEL: request.model,
    }
    if isinstance(outcome, Failure):
        failed = {**attributes, otel.ERROR_TYPE: outcome.kind.value}
        meters.inference_duration.record(duration, failed)
        meters.operation_duration.record(duration, failed)
        return
    attributes[otel.GEN_AI_RESPONSE_MODEL] = outcome.model
    meters.inference_duration.record(duration, attributes)
    meters.operation_duration.record(duration, attributes)
    if request.stream and outcome.ttft_s is not None:
        meters.time_to_first_chunk.record(outcome.ttft_s, attributes)
    usage = outcome.usage
    # The older family: one histogram, input and output told apart by gen_ai.token.type.
    meters.token_usage.record(usage.input_tokens, {**attributes, "gen_ai.token.type": "input"})
    meters.token_usage.record(usage.output_tokens, {**attributes, "gen_ai.token.type": "output"})
    meters.operation_input_tokens.record(usage.input_tokens, attributes)
    meters.operation_output_tokens.record(usage.output_tokens, attributes)
    # Usage counters are broken down by modality; chat here is text.
    tokens = {**attributes, "gen_ai.token.modality": "text"}
    meters.usage_input.add(usage.input_tokens, tokens)
    meters.usage_output.add(usage.output_tokens, tokens)
    extras = outcome.extras
    for counter, keys in (
        (meters.usage_cache_read, _CACHE_READ),
        (meters.usage_cache_write, _CACHE_WRITE),
        (meters.usage_reasoning, _REASONING),
    ):
        count = _first_int(extras, keys)
        if count:
            counter.add(count, tokens)


# -- content ---------------------------------------------------------------------------------


def _parts(message: ChatMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if message.role == "tool":
        parts.append(
            {"type": "tool_call_response", "id": message.tool_call_id, "response": message.content}
        )
        return parts
    if message.content:
        parts.append({"type": "text", "content": message.content})
    parts.extend(
        {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
        for call in message.tool_calls
    )
    return parts


def input_messages(messages: tuple[ChatMessage, ...]) -> str:
    """``gen_ai.input.messages``: the conversation as the conventions' JSON, in order."""
    return json.dumps(
        [{"role": m.role, "parts": _parts(m)} for m in messages], ensure_ascii=False, default=str
    )


def output_messages(completion: Completion) -> str:
    """``gen_ai.output.messages``: the answer as one assistant message with its finish reason."""
    message = ChatMessage.assistant(completion.content, completion.tool_calls)
    return json.dumps(
        [
            {
                "role": "assistant",
                "parts": _parts(message),
                "finish_reason": completion.finish_reason.value,
            }
        ],
        ensure_ascii=False,
        default=str,
    )


# -- embeddings ------------------------------------------------------------------------------


def start_embed_span(request: EmbedRequest, server: ServerInfo) -> trace.Span:
    """Open ``embeddings {model}`` (CLIENT) in the current context."""
    return otel.tracer().start_span(
        f"embeddings {request.model}",
        kind=trace.SpanKind.CLIENT,
        attributes={
            otel.GEN_AI_OPERATION_NAME: "embeddings",
            otel.GEN_AI_PROVIDER_NAME: server.provider,
            otel.GEN_AI_REQUEST_MODEL: request.model,
            "server.address": server.address,
            "server.port": server.port,
            "reactor.host": server.host,
            "reactor.inputs": len(request.inputs),
        },
    )


def end_embed_span(span: trace.Span, outcome: Embeddings | Failure) -> None:
    """Set the usage (or ``error.type``) and end the span."""
    if isinstance(outcome, Embeddings):
        span.set_attribute(otel.GEN_AI_USAGE_INPUT_TOKENS, outcome.usage.input_tokens)
        span.set_attribute(otel.GEN_AI_RESPONSE_MODEL, outcome.model)
        if outcome.vectors:
            span.set_attribute("gen_ai.embeddings.dimension.count", len(outcome.vectors[0]))
    else:
        _fail(span, outcome)
    span.end()


def record_embed_metrics(
    request: EmbedRequest, outcome: Embeddings | Failure, duration: float, server: ServerInfo
) -> None:
    """Record one embedding call's duration (does nothing when metrics are off)."""
    meters = otel.instruments()
    if meters is None:
        return
    attributes = {
        **server.base,
        otel.GEN_AI_OPERATION_NAME: "embeddings",
        otel.GEN_AI_REQUEST_MODEL: request.model,
    }
    if isinstance(outcome, Failure):
        attributes[otel.ERROR_TYPE] = outcome.kind.value
    meters.operation_duration.record(duration, attributes)
