"""The Anthropic Messages protocol (``POST /v1/messages``), streamed and not.

What is particular to it:

- the key travels in ``x-api-key`` with a pinned ``anthropic-version`` header;
- system prompts are a top-level ``system`` field, not a turn, and ``max_tokens`` is
  required (a default fills it in when the request has none);
- tool calls are ``tool_use`` content blocks whose ``input`` is already an object, and
  tool results go back as ``tool_result`` blocks inside a user turn;
- with extended thinking, an answer carries ``thinking`` blocks (text plus a
  ``signature``) and ``redacted_thinking`` blocks (encrypted ``data``); the assistant turn
  echoed back after a tool call must carry them unchanged, ahead of its ``tool_use``
  blocks, or the API refuses the request (400). They are kept as
  :class:`~actors.llm.ThinkingBlock` s on the :class:`~actors.llm.Completion` and sent
  back from the assistant :class:`~actors.llm.ChatMessage`; streamed, a thinking block
  arrives as ``thinking_delta`` pieces and one ``signature_delta``, a redacted one whole
  in its ``content_block_start``;
- streams are *named* server-sent events (``message_start``, ``content_block_delta``,
  ...), tool arguments arrive as ``input_json_delta`` pieces keyed by block index, usage
  in ``message_delta`` is cumulative, and an ``error`` event reports a failure mid-way;
- errors carry ``{"type": "error", "error": {"type": ..., "message": ...}}`` and the
  overloaded status is the non-standard 529.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec

from actors import Failure, FailureKind
from actors.llm._messages import (
    ChatMessage,
    ChatRequest,
    Completion,
    FinishReason,
    ModelInfo,
    TextDelta,
    ThinkingBlock,
    ToolCall,
    Usage,
)
from actors.llm.providers._base import (
    Provider,
    ProviderError,
    StreamEvent,
    StreamProgress,
    classify_status,
    parse_arguments,
    synth_call_id,
)

__all__ = ["AnthropicProvider"]

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` header every request carries."""

DEFAULT_MAX_TOKENS = 1024
"""``max_tokens`` when the request sets none (the API requires one)."""

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
    "pause_turn": FinishReason.OTHER,
}

_ERROR_TYPES: dict[str, FailureKind] = {
    "authentication_error": FailureKind.AUTH,
    "permission_error": FailureKind.AUTH,
    "not_found_error": FailureKind.NOT_FOUND,
    "rate_limit_error": FailureKind.RATE_LIMITED,
    "billing_error": FailureKind.BUDGET_EXCEEDED,
    "api_error": FailureKind.SERVER_ERROR,
    "overloaded_error": FailureKind.OVERLOADED,
    "timeout_error": FailureKind.TIMEOUT,
    "request_too_large": FailureKind.BAD_REQUEST,
}

_USAGE_EXTRAS = ("cache_creation_input_tokens", "cache_read_input_tokens", "service_tier")


def finish_reason(raw: str | None) -> FinishReason:
    """The normalised finish reason for an Anthropic ``stop_reason``."""
    if raw is None:
        return FinishReason.STOP
    return _STOP_REASONS.get(raw, FinishReason.OTHER)


def _merge_options(body: dict[str, Any], options: Mapping[str, Any]) -> None:
    """Merge vendor options into the body (one level deep for objects on both sides)."""
    for key, value in options.items():
        current = body.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            body[key] = {**current, **value}
        else:
            body[key] = value


def _tool_choice(choice: str) -> dict[str, Any]:
    match choice:
        case "auto":
            return {"type": "auto"}
        case "required" | "any":
            return {"type": "any"}
        case "none":
            return {"type": "none"}
        case name:
            return {"type": "tool", "name": name}


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _append_turn(
    turns: list[dict[str, Any]], role: str, content: str | list[dict[str, Any]]
) -> None:
    """Add a turn, merging it into the previous one when the role repeats."""
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"] = _blocks(turns[-1]["content"]) + _blocks(content)
    else:
        turns.append({"role": role, "content": content})


def _thinking_block(block: ThinkingBlock) -> dict[str, Any]:
    """The wire form of a reasoning block, exactly as the server sent it."""
    if block.kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    return {"type": "thinking", "thinking": block.text, "signature": block.signature}


def _turns(messages: tuple[ChatMessage, ...]) -> tuple[str | None, list[dict[str, Any]]]:
    """The ``system`` text and the ``messages`` list for a conversation."""
    system = [m.content for m in messages if m.role == "system" and m.content]
    turns: list[dict[str, Any]] = []
    for message in messages:
        match message.role:
            case "system":
                continue
            case "user":
                _append_turn(turns, "user", message.content)
            case "assistant":
                if not message.tool_calls and not message.content:
                    # The API refuses empty text, and a turn that ends with a thinking block.
                    continue
                if not message.tool_calls and not message.thinking_blocks:
                    _append_turn(turns, "assistant", message.content)
                    continue
                # Reasoning blocks go first, unchanged: the API checks their signatures and
                # refuses a tool-use turn that does not start with them (thinking on).
                blocks = [_thinking_block(b) for b in message.thinking_blocks]
                if message.content:
                    blocks.append({"type": "text", "text": message.content})
                blocks.extend(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                    for call in message.tool_calls
                )
                _append_turn(turns, "assistant", blocks)
            case "tool":
                result = {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or "",
                    "content": message.content,
                }
                _append_turn(turns, "user", [result])
    return ("\n\n".join(system) if system else None), turns


def _usage(raw: Any, extras: dict[str, Any]) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    for key in _USAGE_EXTRAS:
        if raw.get(key) is not None:
            extras[key] = raw[key]
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
    )


@dataclass
class _Block:
    """A content block being streamed, keyed by its index."""

    type: str
    text: list[str] = field(default_factory=list)
    id: str = ""
    name: str = ""
    start_input: Any = None
    json_parts: list[str] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)
    """A thinking block's ``signature`` (from ``signature_delta``)."""
    data: str = ""
    """A redacted_thinking block's ``data`` (whole in ``content_block_start``)."""
    done: bool = False


@dataclass
class _StreamState:
    """Everything a stream has said so far."""

    model: str
    message_id: str = ""
    blocks: dict[int, _Block] = field(default_factory=dict)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False


class AnthropicProvider(Provider):
    """The Anthropic Messages API (and servers that mimic it, e.g. LM Studio, llama.cpp).

    ``default_max_tokens`` fills in ``max_tokens`` when a request has none;
    ``models_page_size`` is the ``limit`` of each ``GET /v1/models`` page.
    """

    protocol: ClassVar[str] = "anthropic"
    lists_every_model: ClassVar[bool] = False
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    models_page_size: int = 1000

    def auth_headers(self) -> dict[str, str]:
        """``x-api-key`` (when a key is set) and the pinned ``anthropic-version``."""
        headers = {"anthropic-version": API_VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    # -- requests -----------------------------------------------------------------------

    def body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The wire body for a chat request."""
        system, messages = _turns(request.messages)
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens or self.default_max_tokens,
            "messages": messages,
        }
        if system is not None:
            body["system"] = system
        if request.tools:
            body["tools"] = [
                {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description else {}),
                    "input_schema": tool.parameters,
                }
                for tool in request.tools
            ]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if stream:
            body["stream"] = True
        _merge_options(body, request.options)
        return body

    async def count_tokens(self, request: ChatRequest) -> tuple[int, str]:
        """``POST /v1/messages/count_tokens``: the prompt's ``input_tokens``."""
        full = self.body(request, stream=False)
        keep = ("model", "messages", "system", "tools", "tool_choice", "thinking")
        body = {key: full[key] for key in keep if key in full}
        path = "/v1/messages/count_tokens"
        payload = await self.request_json("POST", path, body, model=request.model)
        return self.count_from(payload, "input_tokens", path, request.model), path

    async def chat(self, request: ChatRequest) -> Completion:
        """One answer from ``POST /v1/messages``."""
        started = time.perf_counter()
        payload = await self.request_json(
            "POST", "/v1/messages", self.body(request, stream=False), model=request.model
        )
        latency = time.perf_counter() - started
        if not isinstance(payload, dict) or not isinstance(payload.get("content"), list):
            raise ProviderError(
                self.failure(
                    FailureKind.INVALID_RESPONSE,
                    f"answer is not a message: {str(payload)[:200]!r}",
                    request.model,
                )
            )
        return self._completion(payload, request, latency)

    def _completion(
        self, payload: dict[str, Any], request: ChatRequest, latency: float
    ) -> Completion:
        text: list[str] = []
        thinking: list[str] = []
        reasoning: list[ThinkingBlock] = []
        calls: list[ToolCall] = []
        for block in payload["content"]:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                text.append(str(block.get("text") or ""))
            elif kind == "thinking":
                thought = str(block.get("thinking") or "")
                thinking.append(thought)
                reasoning.append(
                    ThinkingBlock(text=thought, signature=str(block.get("signature") or ""))
                )
            elif kind == "redacted_thinking":
                reasoning.append(
                    ThinkingBlock(kind="redacted_thinking", data=str(block.get("data") or ""))
                )
            elif kind == "tool_use":
                calls.append(self._tool_call(block, len(calls), request))
        raw = payload.get("stop_reason")
        extras: dict[str, Any] = {"raw_finish_reason": raw}
        if payload.get("id"):
            extras["message_id"] = payload["id"]
        if payload.get("stop_sequence"):
            extras["stop_sequence"] = payload["stop_sequence"]
        if thinking:
            extras["thinking"] = "".join(thinking)
        usage = _usage(payload.get("usage"), extras)
        return Completion(
            model=str(payload.get("model") or request.model),
            provider=self.protocol,
            content="".join(text),
            tool_calls=tuple(calls),
            thinking_blocks=tuple(reasoning),
            finish_reason=finish_reason(raw if isinstance(raw, str) else None),
            usage=usage,
            request_id=request.request_id,
            latency_s=latency,
            extras=extras,
        )

    def _tool_call(self, block: Mapping[str, Any], index: int, request: ChatRequest) -> ToolCall:
        name = str(block.get("name") or "")
        call_id = block.get("id")
        return ToolCall(
            id=call_id
            if isinstance(call_id, str) and call_id
            else synth_call_id("toolu", index, request.request_id),
            name=name,
            arguments=parse_arguments(
                block.get("input"), provider=self, model=request.model, tool=name
            ),
        )

    # -- streaming ----------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream ``POST /v1/messages``: text deltas, then the whole answer."""
        model = request.model
        progress = StreamProgress()
        state = _StreamState(model=model)
        async with self.open_stream(
            "/v1/messages", self.body(request, stream=True), model=model
        ) as response:
            async for sse in self.iter_sse(response, progress, model):
                if sse.event == "ping":
                    continue
                data = self.parse_stream_json(sse.data, progress, model)
                if not isinstance(data, dict):
                    raise self._garbage(
                        f"event data is not an object: {sse.data[:120]!r}", progress, model
                    )
                name = sse.event or str(data.get("type") or "")
                if name == "error":
                    raise self.stream_error(data, progress, model)
                piece = self._apply(name, data, state, progress, request)
                if piece:
                    yield TextDelta(text=piece)
                if state.stopped:
                    break
        if not state.stopped:
            raise ProviderError(
                self.failure(
                    FailureKind.CONNECTION,
                    f"stream ended before message_stop {progress.describe()}",
                    model,
                    details=progress.details(),
                )
            )
        yield self._stream_completion(state, progress, request)

    def _apply(  # noqa: PLR0912, PLR0915 - one branch per event and delta type
        self,
        name: str,
        data: dict[str, Any],
        state: _StreamState,
        progress: StreamProgress,
        request: ChatRequest,
    ) -> str:
        """Fold one event into the state; returns the text it carried ("" for none)."""
        model = request.model
        if name == "message_start":
            message = data.get("message")
            if isinstance(message, dict):
                state.model = str(message.get("model") or state.model)
                state.message_id = str(message.get("id") or "")
                if isinstance(message.get("usage"), dict):
                    state.usage.update(message["usage"])
                    progress.usage(message["usage"].get("input_tokens"), None)
        elif name == "content_block_start":
            block = data.get("content_block")
            if not isinstance(block, dict):
                raise self._garbage("content_block_start without a block", progress, model)
            opened = _Block(
                type=str(block.get("type") or ""),
                id=str(block.get("id") or ""),
                name=str(block.get("name") or ""),
                start_input=block.get("input"),
            )
            if opened.type == "text" and block.get("text"):
                opened.text.append(str(block["text"]))
            elif opened.type == "thinking":
                if block.get("thinking"):
                    opened.text.append(str(block["thinking"]))
                if block.get("signature"):
                    opened.signature.append(str(block["signature"]))
            elif opened.type == "redacted_thinking":
                opened.data = str(block.get("data") or "")
            state.blocks[self._index(data, progress, model)] = opened
        elif name == "content_block_delta":
            entry = state.blocks.get(self._index(data, progress, model))
            delta = data.get("delta")
            if entry is None or not isinstance(delta, dict):
                raise self._garbage("content_block_delta for no open block", progress, model)
            match delta.get("type"):
                case "text_delta":
                    piece = str(delta.get("text") or "")
                    entry.text.append(piece)
                    progress.text(piece)
                    return piece
                case "input_json_delta":
                    entry.json_parts.append(str(delta.get("partial_json") or ""))
                case "thinking_delta":
                    entry.text.append(str(delta.get("thinking") or ""))
                case "signature_delta":
                    entry.signature.append(str(delta.get("signature") or ""))
                case _:
                    pass
        elif name == "content_block_stop":
            entry = state.blocks.get(self._index(data, progress, model))
            if entry is not None:
                entry.done = True
                if entry.type == "tool_use":
                    progress.tool_calls += 1
        elif name == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict):
                if delta.get("stop_reason") is not None:
                    state.stop_reason = str(delta["stop_reason"])
                if delta.get("stop_sequence") is not None:
                    state.stop_sequence = str(delta["stop_sequence"])
            if isinstance(data.get("usage"), dict):
                # Usage here is cumulative: later figures replace earlier ones.
                state.usage.update({k: v for k, v in data["usage"].items() if v is not None})
                progress.usage(state.usage.get("input_tokens"), state.usage.get("output_tokens"))
        elif name == "message_stop":
            state.stopped = True
        return ""

    def _index(self, data: Mapping[str, Any], progress: StreamProgress, model: str) -> int:
        index = data.get("index")
        if not isinstance(index, int):
            raise self._garbage("content block event without an index", progress, model)
        return index

    def _garbage(self, what: str, progress: StreamProgress, model: str) -> ProviderError:
        return ProviderError(
            self.failure(
                FailureKind.INVALID_RESPONSE,
                f"stream sent {what} {progress.describe()}",
                model,
                details=progress.details(),
            )
        )

    def _stream_completion(
        self, state: _StreamState, progress: StreamProgress, request: ChatRequest
    ) -> Completion:
        text: list[str] = []
        thinking: list[str] = []
        reasoning: list[ThinkingBlock] = []
        calls: list[ToolCall] = []
        for index in sorted(state.blocks):
            block = state.blocks[index]
            if block.type == "text":
                text.extend(block.text)
            elif block.type == "thinking":
                thinking.extend(block.text)
                reasoning.append(
                    ThinkingBlock(text="".join(block.text), signature="".join(block.signature))
                )
            elif block.type == "redacted_thinking":
                reasoning.append(ThinkingBlock(kind="redacted_thinking", data=block.data))
            elif block.type == "tool_use":
                raw_input: Any = "".join(block.json_parts)
                if not raw_input.strip():
                    raw_input = block.start_input or {}
                calls.append(
                    self._tool_call(
                        {"id": block.id, "name": block.name, "input": raw_input},
                        len(calls),
                        request,
                    )
                )
        finished = time.perf_counter()
        extras: dict[str, Any] = {"raw_finish_reason": state.stop_reason}
        if state.message_id:
            extras["message_id"] = state.message_id
        if state.stop_sequence:
            extras["stop_sequence"] = state.stop_sequence
        if thinking:
            extras["thinking"] = "".join(thinking)
        usage = _usage(state.usage, extras)
        tokens_per_s = None
        if progress.first_token_at is not None and usage.output_tokens:
            elapsed = finished - progress.first_token_at
            if elapsed > 0:
                tokens_per_s = usage.output_tokens / elapsed
        return Completion(
            model=state.model,
            provider=self.protocol,
            content="".join(text),
            tool_calls=tuple(calls),
            thinking_blocks=tuple(reasoning),
            finish_reason=finish_reason(state.stop_reason),
            usage=usage,
            request_id=request.request_id,
            latency_s=finished - progress.started,
            ttft_s=progress.ttft_s,
            tokens_per_s=tokens_per_s,
            extras=extras,
        )

    # -- models -------------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        """Every model ``GET /v1/models`` lists, following ``has_more`` pages."""
        models: list[ModelInfo] = []
        params = {"limit": str(self.models_page_size)}
        for _ in range(100):  # a bound against a server that always says has_more
            payload = await self.request_json("GET", "/v1/models", params=params)
            data = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(data, list):
                raise ProviderError(
                    self.failure(
                        FailureKind.INVALID_RESPONSE,
                        f"GET /v1/models answered without a data list: {str(payload)[:200]!r}",
                    )
                )
            models.extend(_model_info(entry) for entry in data if isinstance(entry, dict))
            last = payload.get("last_id")
            if not payload.get("has_more") or not isinstance(last, str) or not data:
                break
            params = {"limit": str(self.models_page_size), "after_id": last}
        return models

    # -- errors -------------------------------------------------------------------------

    def classify(self, status: int, etype: str, code: str, message: str) -> FailureKind:
        """The failure kind from the ``error.type`` (and spend-limit code) Anthropic sends."""
        if "spend_limit" in code or etype == "billing_error":
            return FailureKind.BUDGET_EXCEEDED
        kind = _ERROR_TYPES.get(etype)
        if kind is not None:
            return kind
        # invalid_request_error (and anything unknown): the status and wording decide,
        # e.g. "prompt is too long: ... tokens > ... maximum" is a context-window failure.
        return classify_status(status, etype, code, message)

    def error_from_response(
        self, status: int, headers: Mapping[str, str], body: bytes, model: str | None
    ) -> Failure:
        """The shared mapping, plus Anthropic's ``request-id`` in the details."""
        failure = super().error_from_response(status, headers, body, model)
        request_id = headers.get("request-id")
        if not request_id:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            if isinstance(payload, dict) and isinstance(payload.get("request_id"), str):
                request_id = payload["request_id"]
        if not request_id:
            return failure
        return msgspec.structs.replace(
            failure, details={**failure.details, "request_id": request_id}
        )


def _model_info(entry: Mapping[str, Any]) -> ModelInfo:
    capabilities = ["chat", "tools"]
    caps = entry.get("capabilities")
    image = caps.get("image_input") if isinstance(caps, dict) else None
    # Every Claude model reads images; trust the capability table where one is given.
    if not isinstance(image, dict) or image.get("supported", True):
        capabilities.append("vision")
    details = {
        key: entry[key]
        for key in ("display_name", "created_at", "max_tokens", "lifecycle")
        if entry.get(key) is not None
    }
    context = entry.get("max_input_tokens")
    return ModelInfo(
        id=str(entry.get("id") or ""),
        loaded=None,
        context_length=context if isinstance(context, int) else None,
        capabilities=tuple(capabilities),
        details=details,
    )
