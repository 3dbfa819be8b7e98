"""A fake of the Anthropic Messages API, on the fake-server engine.

Routes: ``POST /v1/messages`` (streamed and not), ``POST /v1/messages/count_tokens``,
``GET /v1/models`` (paged with ``limit``, ``after_id`` and ``before_id``) and
``GET /v1/models/{id}``.

What it checks, as the real API does: the key (when the server has an ``api_key``), in
``x-api-key`` or as an ``Authorization: Bearer`` token (newer SDKs send that); an
``anthropic-version`` header (any value); a ``max_tokens``; ``user`` and ``assistant``
roles only (``system`` is a top-level field); and that every ``tool_result`` answers a
``tool_use`` of the assistant turn just before it. A prompt
longer than the model's ``context_length`` (estimated at four characters a token) gets
the API's "prompt is too long" error.

How it renders a :class:`~actors.testing.Reply`: text as a ``text`` block, tool calls as
``tool_use`` blocks (``input`` an object), ``finish`` ``stop`` / ``length`` /
``tool_calls`` / ``content_filter`` as ``end_turn`` / ``max_tokens`` / ``tool_use`` /
``refusal`` (any other value is sent as it is, e.g. ``pause_turn``). A stop sequence
found in the text cuts it there (``stop_reason: "stop_sequence"``), and text longer than
``max_tokens`` pieces is cut to it (``max_tokens``). Streams are named events with a
``ping`` after ``message_start``; tool input arrives as ``input_json_delta`` pieces.
Every response carries a ``request-id`` header.

Extended thinking: when the request turns it on (``thinking.type`` ``enabled`` or
``adaptive``), a reply's ``reasoning`` comes first as a ``thinking`` block with a
``signature`` this server issued (streamed: ``thinking_delta`` pieces, then one
``signature_delta``), followed by ``redacted_thinking`` blocks (whole, with opaque
``data``) when the protocol is made with ``redacted_thinking``. The reasoning counts as
output tokens. As the API does, it refuses (400) a ``thinking`` block whose signature it
did not issue for that text, a ``redacted_thinking`` block whose data it did not issue,
and, with thinking on, a request ending in tool results whose assistant turn before them
does not start with its reasoning blocks: present, complete, unchanged and in order.

Error bodies are ``{"type": "error", "error": {"type", "message"}, "request_id"}`` with
the type for the status (400 ``invalid_request_error``, 401 ``authentication_error``,
402 ``billing_error``, 403 ``permission_error``, 404 ``not_found_error``, 413
``request_too_large``, 429 ``rate_limit_error``, 500 ``api_error``, 504
``timeout_error``, 529 ``overloaded_error``). A fault's ``code`` picks a specific one:
an error type by name, ``context_length_exceeded``, ``model_not_found``, or
``enforced_spend_limit_reached`` (a 429 with ``error.details.error_code``).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

from aiohttp import web

from actors.testing._server import (
    Exchange,
    FakeProtocol,
    FakeServer,
    FakeToolCall,
    Reply,
    ToolChoice,
    estimate_tokens,
)

__all__ = ["AnthropicProtocol"]

_TYPES_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_MESSAGES_BY_TYPE = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "The requested resource could not be found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit.",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out.",
    "overloaded_error": "Overloaded",
}
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _opaque() -> str:
    """A fresh opaque token (a signature, or redacted reasoning's data)."""
    return base64.b64encode(uuid.uuid4().bytes * 3).decode()


def _thinking_on(body: Any) -> bool:
    """Whether the request turns extended thinking on."""
    raw = body.get("thinking") if isinstance(body, dict) else None
    return isinstance(raw, dict) and raw.get("type") in ("enabled", "adaptive")


def _is_reasoning(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") in ("thinking", "redacted_thinking")


def _block_text(content: Any) -> Iterator[str]:
    """The text of a message's ``content`` (a string or a list of blocks)."""
    if isinstance(content, str):
        yield content
        return
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            yield block["text"]
        elif block.get("type") == "tool_use":
            yield json.dumps(block.get("input", {}))
        elif block.get("type") == "tool_result":
            yield from _block_text(block.get("content"))


class AnthropicProtocol(FakeProtocol):
    """The Anthropic Messages API, as a fake (see the module's docs).

    Args:
        redacted_thinking: With thinking on, each answer also carries this many
            ``redacted_thinking`` blocks after its ``thinking`` block (what the API sends
            when its safety systems encrypt part of the reasoning).
    """

    name: ClassVar[str] = "anthropic"

    def __init__(self, *, redacted_thinking: int = 0) -> None:
        self.redacted_thinking = redacted_thinking
        self._signed: dict[str, str] = {}
        """Each signature this server issued -> the thinking text it authenticates."""
        self._redacted: set[str] = set()
        """The ``data`` of each redacted_thinking block this server issued."""
        self._reasoning_of: dict[str, list[dict[str, Any]]] = {}
        """A ``tool_use`` id -> the reasoning blocks of the answer that made the call."""

    # -- rendering of errors ------------------------------------------------------------

    def error_body(self, status: int, message: str | None, code: str | None) -> Any:
        """Anthropic's error body for ``status`` (``code`` picks a specific one)."""
        etype = _TYPES_BY_STATUS.get(status) or (
            "api_error" if status >= 500 else "invalid_request_error"
        )
        error: dict[str, Any] = {}
        if code in _MESSAGES_BY_TYPE:
            etype = code
        elif code == "context_length_exceeded":
            etype = "invalid_request_error"
            message = message or "prompt is too long: 210000 tokens > 200000 maximum"
        elif code == "model_not_found":
            etype = "not_found_error"
            message = message or "model: not found"
        elif code == "enforced_spend_limit_reached":
            etype = "rate_limit_error"
            message = message or "You have reached your specified API usage limits."
            error["details"] = {"error_code": code}
        error = {"type": etype, "message": message or _MESSAGES_BY_TYPE[etype], **error}
        return {"type": "error", "error": error, "request_id": _request_id()}

    def response_headers(self, exchange: Exchange) -> dict[str, str]:
        """A ``request-id`` on every response, as the API sends."""
        return {"request-id": _request_id()}

    def stream_error_frame(self, message: str | None, code: str | None) -> bytes:
        """An ``event: error`` (``overloaded_error`` unless ``code`` names a type)."""
        etype = code if code in _MESSAGES_BY_TYPE else "overloaded_error"
        error = {"type": etype, "message": message or _MESSAGES_BY_TYPE[etype]}
        return _event("error", {"type": "error", "error": error})

    def garbage_frame(self) -> bytes:
        """A ``content_block_delta`` event whose JSON is cut off."""
        return (
            b"event: content_block_delta\n"
            b'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_de\n\n'
        )

    def tool_choice(self, body: Any) -> ToolChoice | None:
        """``{"type": "auto" | "any" | "tool" | "none", "name": ...}``."""
        raw = body.get("tool_choice") if isinstance(body, dict) else None
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind == "tool" and isinstance(raw, dict) and isinstance(raw.get("name"), str):
            return ToolChoice("tool", raw["name"])
        modes = {"any": "required", "none": "none", "auto": "auto"}
        return ToolChoice(modes[kind]) if isinstance(kind, str) and kind in modes else None

    def declared_tools(self, body: Any) -> dict[str, dict[str, Any]]:
        """``tools[]``: name -> ``input_schema``."""
        tools: dict[str, dict[str, Any]] = {}
        for tool in (body.get("tools") if isinstance(body, dict) else None) or []:
            if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                schema = tool.get("input_schema")
                tools[tool["name"]] = schema if isinstance(schema, dict) else {}
        return tools

    def prompt_text(self, body: Any) -> str:
        """The system prompt and every turn's text (tool inputs and results included)."""
        if not isinstance(body, dict):
            return ""
        parts = list(_block_text(body.get("system")))
        for message in body.get("messages") or ():
            if isinstance(message, dict):
                parts.extend(_block_text(message.get("content")))
        return "\n".join(p for p in parts if p)

    # -- routes -------------------------------------------------------------------------

    def routes(self, server: FakeServer) -> list[web.RouteDef]:
        """``/v1/messages``, ``/v1/messages/count_tokens`` and ``/v1/models``."""

        async def messages(request: web.Request) -> web.StreamResponse:
            ex = await server.exchange(request)
            refused = self._check(ex)
            if refused is not None:
                return refused
            body = ex.body
            early = await ex.prelude()
            if early is not None:
                return early
            assert ex.model is not None
            await server.ensure_loaded(ex.model)
            if body.get("stream"):
                return await self._stream(ex)
            return await ex.json(self._message(ex))

        async def count_tokens(request: web.Request) -> web.StreamResponse:
            ex = await server.exchange(request)
            refused = self._check(ex, count_only=True)
            if refused is not None:
                return refused
            return await ex.json({"input_tokens": estimate_tokens(ex.prompt_text())})

        async def list_models(request: web.Request) -> web.StreamResponse:
            ex = await server.exchange(request)
            refused = self._check_headers(ex)
            if refused is not None:
                return refused
            early = await ex.prelude()
            if early is not None:
                return early
            return await ex.json(self._model_page(server, request))

        async def get_model(request: web.Request) -> web.StreamResponse:
            model_id = request.match_info["model_id"]
            ex = await server.exchange(request, model=model_id)
            refused = self._check_headers(ex)
            if refused is not None:
                return refused
            if model_id not in server.models:
                return ex.error(404, f"model: {model_id}", code="not_found_error")
            early = await ex.prelude()
            if early is not None:
                return early
            return await ex.json(self._model_entry(server, model_id))

        return [
            web.post("/v1/messages", messages),
            web.post("/v1/messages/count_tokens", count_tokens),
            web.get("/v1/models", list_models),
            web.get("/v1/models/{model_id}", get_model),
        ]

    # -- checks -------------------------------------------------------------------------

    def _check_headers(self, ex: Exchange) -> web.Response | None:
        headers = ex.request.headers
        key = headers.get("x-api-key")
        if key is None and headers.get("authorization", "").startswith("Bearer "):
            key = headers["authorization"].removeprefix("Bearer ")
        if not ex.server.check_key(key):
            return ex.error(401, "invalid x-api-key")
        if not headers.get("anthropic-version"):
            return ex.error(400, "anthropic-version: header is required")
        return None

    def _check(  # noqa: PLR0911 - one return per rule
        self, ex: Exchange, *, count_only: bool = False
    ) -> web.Response | None:
        """The header, body and model checks the API makes before answering."""
        refused = self._check_headers(ex)
        if refused is not None:
            return refused
        body = ex.body
        if not isinstance(body, dict):
            return ex.error(400, "Request body must be a JSON object")
        if not isinstance(body.get("model"), str):
            return ex.error(400, "model: Field required")
        if not count_only and not isinstance(body.get("max_tokens"), int):
            return ex.error(400, "max_tokens: Field required")
        problem = self._check_messages(body.get("messages"))
        if problem is None and not count_only:
            problem = self._check_reasoning(body["messages"], thinking=_thinking_on(body))
        if problem is not None:
            return ex.error(400, problem)
        model = ex.server.models.get(body["model"])
        if model is None or model.embeddings:
            return ex.error(404, f"model: {body['model']}", code="not_found_error")
        prompt_tokens = estimate_tokens(ex.prompt_text())
        if prompt_tokens > model.context_length:
            return ex.error(
                400,
                f"prompt is too long: {prompt_tokens} tokens > {model.context_length} maximum",
            )
        return None

    @staticmethod
    def _check_messages(messages: Any) -> str | None:  # noqa: PLR0911 - one return per rule
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        previous_uses: set[str] = set()
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                return f"messages.{index}: Input should be an object"
            role = message.get("role")
            if role not in ("user", "assistant"):
                return (
                    f'messages.{index}.role: Input should be "user" or "assistant" '
                    "(system prompts go in the top-level system field)"
                )
            content = message.get("content")
            if not isinstance(content, (str, list)):
                return f"messages.{index}.content: Input should be a string or a list of blocks"
            blocks = content if isinstance(content, list) else []
            for block in blocks:
                if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                    return f"messages.{index}.content: each block needs a type"
                if block["type"] == "tool_result" and (
                    role != "user" or block.get("tool_use_id") not in previous_uses
                ):
                    return (
                        f"messages.{index}: unexpected `tool_use_id` found in `tool_result` "
                        "blocks: each tool_result block must have a corresponding tool_use "
                        "block in the previous message"
                    )
            previous_uses = {
                str(block.get("id"))
                for block in blocks
                if isinstance(block, dict) and block.get("type") == "tool_use"
            }
        return None

    def _check_reasoning(self, messages: list[Any], *, thinking: bool) -> str | None:
        """The API's rules for reasoning blocks sent back in assistant turns.

        Every ``thinking`` block must carry a signature this server issued for exactly
        its text, every ``redacted_thinking`` block data it issued. With thinking on, a
        request that ends in tool results needs the assistant turn just before them to
        start with reasoning blocks; when this server made that turn's calls, with the
        very blocks it sent alongside, complete and in order.
        """
        for index, message in enumerate(messages):
            content = message.get("content")
            if message.get("role") != "assistant" or not isinstance(content, list):
                continue
            for number, block in enumerate(content):
                where = f"messages.{index}.content.{number}"
                if block["type"] == "thinking" and (
                    self._signed.get(str(block.get("signature"))) != block.get("thinking")
                ):
                    return f"{where}: Invalid `signature` in `thinking` block"
                if block["type"] == "redacted_thinking" and block.get("data") not in self._redacted:
                    return f"{where}: Invalid `data` in `redacted_thinking` block"
        last = messages[-1].get("content")
        ends_in_results = isinstance(last, list) and any(
            block["type"] == "tool_result" for block in last
        )
        if not thinking or not ends_in_results or len(messages) < 2:
            return None
        return self._check_tool_turn(len(messages) - 2, messages[-2].get("content"))

    def _check_tool_turn(self, index: int, content: Any) -> str | None:
        """With thinking on: the assistant turn before the last tool results."""
        blocks: list[dict[str, Any]] = content if isinstance(content, list) else []
        lead = 0
        while lead < len(blocks) and _is_reasoning(blocks[lead]):
            lead += 1
        known = [
            self._reasoning_of[str(block.get("id"))]
            for block in blocks
            if block["type"] == "tool_use" and str(block.get("id")) in self._reasoning_of
        ]
        if not lead and (not known or any(known)):  # known and empty: it did not think
            found = blocks[0]["type"] if blocks else "text"
            return (
                f"messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, "
                f"but found `{found}`. With thinking on, the assistant turn before the last "
                "tool results must start with the reasoning blocks it came with; send them "
                "back unchanged, or turn thinking off."
            )
        if any(blocks[:lead] != issued for issued in known):
            return (
                f"messages.{index}: the reasoning blocks ahead of its tool_use blocks are "
                "not those the model answered with; send every thinking and "
                "redacted_thinking block back, complete, unchanged and in order."
            )
        return None

    # -- answers ------------------------------------------------------------------------

    def _shape(self, ex: Exchange) -> tuple[list[str], list[FakeToolCall], str, str | None]:
        """The reply's text pieces, tool calls, stop reason and matched stop sequence."""
        reply: Reply = ex.reply
        pieces = reply.tokens()
        calls = list(reply.tool_calls)
        stop_reason = _STOP_REASONS.get(reply.finish_reason, reply.finish_reason)
        matched: str | None = None
        body = ex.body
        text = "".join(pieces)
        for sequence in body.get("stop_sequences") or ():
            if isinstance(sequence, str) and sequence and sequence in text:
                text = text[: text.index(sequence)]
                pieces = [text] if text else []
                calls, stop_reason, matched = [], "stop_sequence", sequence
                break
        limit = body.get("max_tokens")
        if reply.finish is None and isinstance(limit, int) and len(pieces) > limit:
            pieces, calls, stop_reason = pieces[:limit], [], "max_tokens"
        return pieces, calls, stop_reason, matched

    def _usage(
        self,
        ex: Exchange,
        pieces: list[str],
        calls: list[FakeToolCall],
        reasoning: list[dict[str, Any]],
    ) -> dict[str, Any]:
        reply = ex.reply
        output = reply.output_tokens
        if output is None:
            output = len(pieces) + 8 * len(calls)
        # Reasoning is billed as output (there is no separate count on this wire).
        output += sum(estimate_tokens(str(b.get("thinking") or "")) for b in reasoning)
        return {
            "input_tokens": ex.input_tokens(),
            "output_tokens": output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        }

    @staticmethod
    def _call_id(call: FakeToolCall) -> str:
        return call.id or f"toolu_{uuid.uuid4().hex[:24]}"

    def _reasoning(self, ex: Exchange, call_ids: list[str]) -> list[dict[str, Any]]:
        """The answer's reasoning blocks (none unless thinking is on), signed and recorded."""
        if not _thinking_on(ex.body):
            return []
        blocks: list[dict[str, Any]] = []
        if ex.reply.reasoning:
            signature = _opaque()
            self._signed[signature] = ex.reply.reasoning
            blocks.append(
                {"type": "thinking", "thinking": ex.reply.reasoning, "signature": signature}
            )
        for _ in range(self.redacted_thinking):
            data = _opaque()
            self._redacted.add(data)
            blocks.append({"type": "redacted_thinking", "data": data})
        for call_id in call_ids:
            self._reasoning_of[call_id] = blocks
        return blocks

    def _message(self, ex: Exchange) -> dict[str, Any]:
        pieces, calls, stop_reason, matched = self._shape(ex)
        ids = [self._call_id(c) for c in calls]
        reasoning = self._reasoning(ex, ids)
        content: list[dict[str, Any]] = list(reasoning)
        if pieces:
            content.append({"type": "text", "text": "".join(pieces)})
        content.extend(
            {"type": "tool_use", "id": i, "name": c.name, "input": c.arguments}
            for i, c in zip(ids, calls, strict=True)
        )
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": ex.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": matched,
            "usage": self._usage(ex, pieces, calls, reasoning),
        }

    async def _stream(self, ex: Exchange) -> web.StreamResponse:
        pieces, calls, stop_reason, matched = self._shape(ex)
        ids = [self._call_id(c) for c in calls]
        reasoning = self._reasoning(ex, ids)
        usage = self._usage(ex, pieces, calls, reasoning)
        frames: list[bytes] = []
        tokens: list[bool] = []

        def add(name: str, data: dict[str, Any], *, token: bool = False) -> None:
            frames.append(_event(name, {"type": name, **data}))
            tokens.append(token)

        start_usage = {**usage, "output_tokens": 1}
        add(
            "message_start",
            {
                "message": {
                    "id": f"msg_{uuid.uuid4().hex[:24]}",
                    "type": "message",
                    "role": "assistant",
                    "model": ex.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                }
            },
        )
        add("ping", {})
        index = 0
        for reasoning_block in reasoning:
            if reasoning_block["type"] == "redacted_thinking":  # arrives whole
                add("content_block_start", {"index": index, "content_block": reasoning_block})
            else:
                opened = {"type": "thinking", "thinking": "", "signature": ""}
                add("content_block_start", {"index": index, "content_block": opened})
                for piece in re.findall(r"\S+\s*|\s+", reasoning_block["thinking"]):
                    delta = {"type": "thinking_delta", "thinking": piece}
                    add("content_block_delta", {"index": index, "delta": delta}, token=True)
                delta = {"type": "signature_delta", "signature": reasoning_block["signature"]}
                add("content_block_delta", {"index": index, "delta": delta})
            add("content_block_stop", {"index": index})
            index += 1
        if pieces:
            opened = {"type": "text", "text": ""}
            add("content_block_start", {"index": index, "content_block": opened})
            for piece in pieces:
                delta = {"type": "text_delta", "text": piece}
                add("content_block_delta", {"index": index, "delta": delta}, token=True)
            add("content_block_stop", {"index": index})
            index += 1
        for call_id, call in zip(ids, calls, strict=True):
            block = {"type": "tool_use", "id": call_id, "name": call.name, "input": {}}
            add("content_block_start", {"index": index, "content_block": block})
            raw = json.dumps(call.arguments)
            cut = len(raw) // 2
            for part in ("", raw[:cut], raw[cut:]):
                delta = {"type": "input_json_delta", "partial_json": part}
                add("content_block_delta", {"index": index, "delta": delta}, token=bool(part))
            add("content_block_stop", {"index": index})
            index += 1
        add(
            "message_delta",
            {
                "delta": {"stop_reason": stop_reason, "stop_sequence": matched},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        add("message_stop", {})
        return await ex.stream(frames, content_type="text/event-stream", tokens=tokens)

    # -- models -------------------------------------------------------------------------

    @staticmethod
    def _model_entry(server: FakeServer, model_id: str) -> dict[str, Any]:
        model = server.models[model_id]
        return {
            "type": "model",
            "id": model.id,
            "display_name": model.id.replace("-", " ").title(),
            "created_at": "2025-01-01T00:00:00Z",
            "lifecycle": "active",
            "max_input_tokens": model.context_length,
            "max_tokens": min(model.context_length, 64000),
        }

    def _model_page(self, server: FakeServer, request: web.Request) -> dict[str, Any]:
        ids = [m.id for m in server.models.values() if not m.embeddings]
        try:
            limit = max(1, min(1000, int(request.query.get("limit", "20"))))
        except ValueError:
            limit = 20
        after, before = request.query.get("after_id"), request.query.get("before_id")
        if after in ids:
            page = ids[ids.index(after) + 1 :][:limit]
            more = ids.index(after) + 1 + limit < len(ids)
        elif before in ids:
            head = ids[: ids.index(before)]
            page = head[-limit:]
            more = len(head) > limit
        else:
            page = ids[:limit]
            more = len(ids) > limit
        return {
            "data": [self._model_entry(server, i) for i in page],
            "has_more": more,
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }
