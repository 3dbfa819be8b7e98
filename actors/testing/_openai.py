"""Fake OpenAI-compatible servers: OpenAI itself, LM Studio, llama.cpp's server and vLLM.

All four serve the Chat Completions dialect under ``/v1`` (plain and streamed answers,
tool calls streamed as index-keyed fragments, a usage-only chunk before ``data: [DONE]``
when ``stream_options.include_usage`` is set), ``/v1/models`` and ``/v1/embeddings``;
they differ in what each real server adds and in their error bodies:

- :class:`OpenAIProtocol` (``openai``): OpenAI's error bodies and codes
  (``context_length_exceeded``, ``invalid_api_key``, ``model_not_found``,
  ``rate_limit_exceeded``, ...).
- :class:`LMStudioProtocol` (``lmstudio``, port 1234): LM Studio's REST API besides
  ``/v1``: ``/api/v0/models`` (load state), ``/api/v0/chat/completions`` (``stats``,
  ``model_info``, ``runtime``), ``/api/v1/models`` with load and unload; models load
  just in time on first use; unknown routes answer 200 with an error, as LM Studio does.
- :class:`LlamaCppProtocol` (``llamacpp``, port 8080): ``/health``, ``/props``,
  ``/apply-template`` and ``/tokenize`` (one token per 4 characters),
  ``meta`` in ``/v1/models``, ``timings`` in answers, integer error codes; the object
  form of ``tool_choice`` is ignored, as ``llama-server`` does.
- :class:`LlamaCppPythonProtocol` (``llama-cpp-python``): what llama-cpp-python's
  server really does (see the class), defects of real servers included.
- :class:`VLLMProtocol` (``vllm``, port 8000): ``/health``, ``/version``, Prometheus
  ``/metrics`` with ``vllm:kv_cache_usage_perc``, ``max_model_len`` in ``/v1/models``,
  ``/tokenize`` (of a prompt, or of messages through the chat template).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from aiohttp import web

from actors.testing._server import (
    Exchange,
    FakeModel,
    FakeProtocol,
    FakeServer,
    FakeToolCall,
    Reply,
    ToolChoice,
    estimate_tokens,
)

__all__ = [
    "LMStudioProtocol",
    "LlamaCppProtocol",
    "LlamaCppPythonProtocol",
    "OpenAIProtocol",
    "VLLMProtocol",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

EMBEDDING_DIM = 8
"""The length of the fake's embedding vectors."""

_CREATED = 1_700_000_000


def fake_embedding(text: str, dim: int = EMBEDDING_DIM) -> list[float]:
    """A deterministic unit vector for a text (from its SHA-256), float32-exact."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] / 127.5) - 1.0 for i in range(dim)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    packed = struct.pack(f"<{dim}f", *(x / norm for x in raw))
    return list(struct.unpack(f"<{dim}f", packed))


def chat_template(messages: list[Any]) -> str:
    """The fake's chat template: ``<|role|>content`` per message, then the assistant's turn."""
    parts = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        parts.append(f"<|{message.get('role', 'user')}|>{text}<|end|>")
    return "".join(parts) + "<|assistant|>"


def fake_token_ids(text: str, *, bos: bool = False) -> list[int]:
    """Deterministic token ids: one per 4 characters (as the fake counts usage), ``bos`` first."""
    ids = [1] if bos else []
    ids.extend(
        int.from_bytes(hashlib.sha256(text[i : i + 4].encode()).digest()[:2], "big") + 2
        for i in range(0, len(text), 4)
    )
    return ids


def _fragments(text: str, size: int = 8) -> list[str]:
    """A string cut into pieces of at most ``size`` characters."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _sse(payload: Any) -> bytes:
    """One ``data:`` event."""
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _bearer(exchange: Exchange) -> str | None:
    """The API key of an ``Authorization: Bearer`` header."""
    header = exchange.request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


class OpenAIProtocol(FakeProtocol):
    """OpenAI's Chat Completions API, as the fake serves it."""

    name: ClassVar[str] = "openai"
    refuses_fields: ClassVar[bool] = True
    owned_by: ClassVar[str] = "system"
    """``owned_by`` in the model list."""
    reasoning_models: ClassVar[tuple[str, ...]] = ("o1", "o3", "o4", "gpt-5")
    """Name prefixes of the models that refuse ``max_tokens`` (OpenAI's reasoning models
    take only ``max_completion_tokens``); none on the other servers."""

    def __init__(self) -> None:
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0

    # -- routes -------------------------------------------------------------------------

    def routes(self, server: FakeServer) -> list[web.RouteDef]:
        """The ``/v1`` routes, then the server's own."""
        return [*self.openai_routes(server, "/v1"), *self.extra_routes(server)]

    def openai_routes(self, server: FakeServer, prefix: str) -> list[web.RouteDef]:
        """Chat completions, models and embeddings under ``prefix``."""

        async def chat(request: web.Request) -> web.StreamResponse:
            return await self.handle_chat(server, request, native=False)

        async def models(request: web.Request) -> web.StreamResponse:
            return await self.handle_models(server, request)

        async def model(request: web.Request) -> web.StreamResponse:
            return await self.handle_model(server, request)

        async def embeddings(request: web.Request) -> web.StreamResponse:
            return await self.handle_embeddings(server, request)

        return [
            web.post(f"{prefix}/chat/completions", chat),
            web.get(f"{prefix}/models", models),
            web.get(f"{prefix}/models/{{model:.+}}", model),
            web.post(f"{prefix}/embeddings", embeddings),
        ]

    def extra_routes(self, server: FakeServer) -> list[web.RouteDef]:
        """Routes particular to one server (none for OpenAI)."""
        return []

    # -- hooks for the other servers ----------------------------------------------------

    def resolve_model(self, server: FakeServer, name: str | None) -> str | None:
        """The served model a request names, or ``None`` when there is none such."""
        return name if name is not None and name in server.models else None

    def unknown_model(self, exchange: Exchange, name: str | None) -> web.StreamResponse:
        """The answer to a request for a model the server does not have."""
        if name is None:
            return exchange.error(400, "you must provide a model parameter")
        return exchange.error(
            404,
            f"The model `{name}` does not exist or you do not have access to it.",
            code="model_not_found",
        )

    def context_error(self, exchange: Exchange, entry: FakeModel, tokens: int) -> web.Response:
        """The answer to a prompt longer than the model's context window."""
        return exchange.error(
            400, _context_message(entry.context_length, tokens), code="context_length_exceeded"
        )

    def not_loaded(self, exchange: Exchange, entry: FakeModel) -> web.StreamResponse | None:
        """What to answer for a model not loaded now; ``None`` loads it just in time."""
        return None

    def reasoning_of(self, exchange: Exchange, reply: Reply) -> str:
        """Reasoning text to send as ``reasoning_content`` (none by default)."""
        return ""

    interrupts_streams: bool = False
    """Whether a chat request ends the streams in progress (llama-cpp-python's default)."""

    stream_usage: ClassVar[bool] = True
    """Whether a stream ends with a usage chunk when ``stream_options.include_usage``."""

    def answer_model(self, exchange: Exchange, model: str) -> str:
        """The model an answer names (the model that served it)."""
        return model

    async def refuse_overflow(
        self, exchange: Exchange, entry: FakeModel, tokens: int
    ) -> web.StreamResponse:
        """The answer to a prompt over the context window (the error, by default)."""
        return self.context_error(exchange, entry, tokens)

    def check_messages(self, exchange: Exchange, messages: list[Any]) -> web.StreamResponse | None:
        """An error for turns the server will not take (none by default)."""
        return None

    def check_parameters(self, exchange: Exchange) -> web.StreamResponse | None:
        """OpenAI's 400s for fields a model refuses.

        ``unsupported_parameter`` for ``max_tokens`` to a reasoning model (by name), and
        for what the model's :attr:`~actors.testing.FakeModel.refuses` names;
        ``unsupported_value`` for a ``temperature`` or ``top_p`` other than 1 there,
        and for a ``system`` turn to a model without ``system_role``.
        """
        body = exchange.body if isinstance(exchange.body, dict) else {}
        model = exchange.model or ""
        if "max_tokens" in body and model.startswith(self.reasoning_models):
            return _refusal(
                "max_tokens",
                "unsupported_parameter",
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
            )
        entry = exchange.server.models.get(model)
        if entry is None:
            return None
        for name in entry.refuses:
            if name not in body:
                continue
            value = body[name]
            if name in ("temperature", "top_p"):
                if isinstance(value, int | float) and not isinstance(value, bool) and value == 1:
                    continue
                return _refusal(
                    name,
                    "unsupported_value",
                    f"Unsupported value: '{name}' does not support {json.dumps(value)} with "
                    "this model. Only the default (1) value is supported.",
                )
            return _refusal(
                name,
                "unsupported_parameter",
                f"Unsupported parameter: '{name}' is not supported with this model.",
            )
        if not entry.system_role:
            for index, turn in enumerate(body.get("messages") or []):
                if isinstance(turn, dict) and turn.get("role") == "system":
                    where = f"messages[{index}].role"
                    return _refusal(
                        where,
                        "unsupported_value",
                        f"Unsupported value: '{where}' does not support 'system' with this model.",
                    )
        return None

    def tool_call_deltas(self, index: int, call_id: str, call: FakeToolCall) -> list[Any]:
        """The stream deltas of one tool call: a head naming it, then argument pieces."""
        head = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        pieces = _fragments(json.dumps(call.arguments))
        return [
            {"tool_calls": [head]},
            *({"tool_calls": [{"index": index, "function": {"arguments": p}}]} for p in pieces),
        ]

    # -- what a request asks for (see shape_reply) ---------------------------------------

    def max_output_tokens(self, body: Any) -> int | None:
        """``max_completion_tokens``, else ``max_tokens``."""
        if not isinstance(body, dict):
            return None
        for key in ("max_completion_tokens", "max_tokens"):
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    def tool_choice(self, body: Any) -> ToolChoice | None:
        """The string forms, or the object form that forces one tool.

        ``"none"`` / ``"auto"`` / ``"required"``, or ``{"type": "function",
        "function": {"name": ...}}``.
        """
        raw = body.get("tool_choice") if isinstance(body, dict) else None
        if isinstance(raw, str) and raw in ("none", "auto", "required"):
            return ToolChoice(raw)
        if isinstance(raw, dict):
            function = raw.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if isinstance(name, str) and name:
                return self.object_tool_choice(name)
        return None

    def object_tool_choice(self, name: str) -> ToolChoice | None:
        """What the object form naming a tool means to this server (it forces the tool)."""
        return ToolChoice("tool", name)

    def declared_tools(self, body: Any) -> dict[str, dict[str, Any]]:
        """``tools[].function``: name -> ``parameters``."""
        tools: dict[str, dict[str, Any]] = {}
        for tool in (body.get("tools") if isinstance(body, dict) else None) or []:
            function = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                parameters = function.get("parameters")
                tools[function["name"]] = parameters if isinstance(parameters, dict) else {}
        return tools

    def interrupted_frame(self) -> bytes:
        """``data: [DONE]``, with no chunk having given a finish reason."""
        return b"data: [DONE]\n\n"

    def response_extras(
        self, exchange: Exchange, model: str, reply: Reply, *, native: bool
    ) -> dict[str, Any]:
        """Top-level fields a server adds to an answer (and to a stream's last chunk)."""
        return {}

    def model_object(self, server: FakeServer, entry: FakeModel) -> dict[str, Any]:
        """One entry of ``/v1/models``."""
        return {"id": entry.id, "object": "model", "created": _CREATED, "owned_by": self.owned_by}

    def check_auth(self, exchange: Exchange) -> web.StreamResponse | None:
        """A 401 when the server wants an API key and the request lacks the right one."""
        if exchange.server.check_key(_bearer(exchange)):
            return None
        return exchange.error(401, None, code="invalid_api_key")

    # -- errors -------------------------------------------------------------------------

    def error_body(self, status: int, message: str | None, code: str | None) -> Any:
        """OpenAI's ``{"error": {"message", "type", "param", "code"}}``."""
        etype, default_code, default_message, param = _openai_error(status, code)
        return {
            "error": {
                "message": message or default_message,
                "type": etype,
                "param": param,
                "code": default_code,
            }
        }

    def stream_error_frame(self, message: str | None, code: str | None) -> bytes:
        """An error object as a ``data:`` event, as OpenAI sends one mid-stream."""
        return _sse(
            self.error_body(500, message or "The server had an error while streaming.", code)
        )

    def prompt_text(self, body: Any) -> str:
        """The text of every message (or of an embeddings request's input)."""
        if not isinstance(body, dict):
            return ""
        texts: list[str] = []
        for message in body.get("messages") or []:
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts.extend(
                    part["text"]
                    for part in content
                    if isinstance(part, dict) and isinstance(part.get("text"), str)
                )
        raw = body.get("input")
        if isinstance(raw, str):
            texts.append(raw)
        elif isinstance(raw, list):
            texts.extend(item for item in raw if isinstance(item, str))
        return "\n".join(texts)

    # -- handlers -----------------------------------------------------------------------

    async def handle_chat(
        self, server: FakeServer, request: web.Request, *, native: bool
    ) -> web.StreamResponse:
        """``POST /v1/chat/completions`` (and LM Studio's ``/api/v0`` one when native)."""
        if self.interrupts_streams:
            server.interrupt_streams()
        exchange = await server.exchange(request)
        model, refusal = await self._admit_chat(server, exchange)
        if refusal is not None:
            return refusal
        assert model is not None
        await server.ensure_loaded(model)
        reply = exchange.reply
        self.prompt_tokens_total += exchange.input_tokens()
        self.generation_tokens_total += exchange.output_tokens()
        if isinstance(exchange.body, dict) and exchange.body.get("stream"):
            return await self._stream_chat(exchange, model, reply, native=native)
        return await exchange.json(self.chat_answer(exchange, model, reply, native=native))

    async def _admit_chat(  # noqa: PLR0911 - one return per check
        self, server: FakeServer, exchange: Exchange
    ) -> tuple[str | None, web.StreamResponse | None]:
        """The model a chat request may go to, or the error to answer instead."""
        denied = self.check_auth(exchange)
        if denied is not None:
            return None, denied
        body = exchange.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return None, exchange.error(400, "'messages' is a required property")
        rejected = self.check_messages(exchange, body["messages"]) or self.check_parameters(
            exchange
        )
        if rejected is not None:
            return None, rejected
        model = self.resolve_model(server, exchange.model)
        if model is None:
            return None, self.unknown_model(exchange, exchange.model)
        early = await exchange.prelude()
        if early is not None:
            return None, early
        entry = server.models[model]
        if entry.embeddings:
            message = f"Model '{model}' is an embedding model and cannot be used for chat."
            return None, exchange.error(400, message)
        tokens = estimate_tokens(exchange.prompt_text())
        if tokens > entry.context_length:
            return None, await self.refuse_overflow(exchange, entry, tokens)
        if not entry.loaded:
            return model, self.not_loaded(exchange, entry)
        return model, None

    def _usage(self, exchange: Exchange) -> dict[str, Any]:
        prompt, output = exchange.input_tokens(), exchange.output_tokens()
        return {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def _call_ids(reply: Reply) -> list[str]:
        return [call.id or f"call_{uuid.uuid4().hex[:24]}" for call in reply.tool_calls]

    def chat_answer(
        self, exchange: Exchange, model: str, reply: Reply, *, native: bool
    ) -> dict[str, Any]:
        """The body of a non-streamed answer."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if reply.text or not reply.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        reasoning = self.reasoning_of(exchange, reply)
        if reasoning:
            message["reasoning_content"] = reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call, call_id in zip(reply.tool_calls, self._call_ids(reply), strict=True)
            ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.answer_model(exchange, model),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": self._usage(exchange),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
            **self.response_extras(exchange, model, reply, native=native),
        }

    async def _stream_chat(
        self, exchange: Exchange, model: str, reply: Reply, *, native: bool
    ) -> web.StreamResponse:
        body = exchange.body
        options = body.get("stream_options") if isinstance(body, dict) else None
        include_usage = (
            self.stream_usage and isinstance(options, dict) and bool(options.get("include_usage"))
        )
        named = self.answer_model(exchange, model)
        chunk_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())

        def chunk(choices: list[Any], **extra: Any) -> bytes:
            payload: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": named,
                "system_fingerprint": "fp_fake",
                "choices": choices,
            }
            if include_usage:
                payload["usage"] = None
            payload.update(extra)
            return _sse(payload)

        def delta(content: dict[str, Any], finish: str | None = None) -> list[Any]:
            return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

        frames = [chunk(delta({"role": "assistant", "content": ""}))]
        tokens = [False]
        for piece in _fragments(self.reasoning_of(exchange, reply), 12):
            if piece:
                frames.append(chunk(delta({"reasoning_content": piece})))
                tokens.append(True)
        for piece in reply.tokens():
            frames.append(chunk(delta({"content": piece})))
            tokens.append(True)
        for index, (call, call_id) in enumerate(
            zip(reply.tool_calls, self._call_ids(reply), strict=True)
        ):
            for part in self.tool_call_deltas(index, call_id, call):
                frames.append(chunk(delta(part)))
                tokens.append(True)
        extras = self.response_extras(exchange, model, reply, native=native)
        frames.append(chunk(delta({}, reply.finish_reason), **extras))
        tokens.append(False)
        if include_usage:
            frames.append(chunk([], usage=self._usage(exchange)))
            tokens.append(False)
        frames.append(b"data: [DONE]\n\n")
        tokens.append(False)
        return await exchange.stream(frames, content_type="text/event-stream", tokens=tokens)

    async def handle_models(self, server: FakeServer, request: web.Request) -> web.StreamResponse:
        """``GET /v1/models``."""
        exchange = await server.exchange(request)
        denied = self.check_auth(exchange)
        if denied is not None:
            return denied
        early = await exchange.prelude()
        if early is not None:
            return early
        data = [self.model_object(server, entry) for entry in list(server.models.values())]
        return await exchange.json({"object": "list", "data": data})

    async def handle_model(self, server: FakeServer, request: web.Request) -> web.StreamResponse:
        """``GET /v1/models/{model}``."""
        name = request.match_info["model"]
        exchange = await server.exchange(request, model=name)
        denied = self.check_auth(exchange)
        if denied is not None:
            return denied
        if name not in server.models:
            return self.unknown_model(exchange, name)
        early = await exchange.prelude()
        if early is not None:
            return early
        return await exchange.json(self.model_object(server, server.models[name]))

    async def handle_embeddings(
        self, server: FakeServer, request: web.Request
    ) -> web.StreamResponse:
        """``POST /v1/embeddings``: deterministic vectors, as floats or base64."""
        exchange = await server.exchange(request)
        denied = self.check_auth(exchange)
        if denied is not None:
            return denied
        body = exchange.body
        raw = body.get("input") if isinstance(body, dict) else None
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return exchange.error(400, "'input' must be a string or a list of strings")
        model = self.resolve_model(server, exchange.model)
        if model is None:
            return self.unknown_model(exchange, exchange.model)
        early = await exchange.prelude()
        if early is not None:
            return early
        await server.ensure_loaded(model)
        as_base64 = isinstance(body, dict) and body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(text)
            encoded: Any = vector
            if as_base64:
                packed = struct.pack(f"<{len(vector)}f", *vector)
                encoded = base64.b64encode(packed).decode()
            data.append({"object": "embedding", "embedding": encoded, "index": index})
        tokens = sum(estimate_tokens(text) for text in texts)
        return await exchange.json(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def _refusal(param: str, code: str, message: str) -> web.Response:
    """OpenAI's 400 for a request field a model refuses, naming it in ``param``."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return web.json_response({"error": error}, status=400)


def _context_message(limit: int, tokens: int) -> str:
    """OpenAI's wording for a prompt over the context window."""
    return (
        f"This model's maximum context length is {limit} tokens. However, your messages "
        f"resulted in {tokens} tokens. Please reduce the length of the messages."
    )


_OPENAI_ERRORS: dict[str, tuple[str, str, str | None]] = {
    # code -> (type, message, param)
    "context_length_exceeded": (
        "invalid_request_error",
        _context_message(8192, 9000),
        "messages",
    ),
    "model_not_found": (
        "invalid_request_error",
        "The model does not exist or you do not have access to it.",
        None,
    ),
    "invalid_api_key": ("invalid_request_error", "Incorrect API key provided.", None),
    "rate_limit_exceeded": (
        "requests",
        "Rate limit reached for requests per min (RPM). Please slow down.",
        None,
    ),
    "insufficient_quota": (
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
        None,
    ),
}

_OPENAI_STATUS: dict[int, tuple[str, str | None, str]] = {
    # status -> (type, code, message)
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", None, "Gateway timeout."),
}


def _openai_error(status: int, code: str | None) -> tuple[str, str | None, str, str | None]:
    """(type, code, message, param) of OpenAI's error body for a status and code."""
    if code is not None and code in _OPENAI_ERRORS:
        etype, message, param = _OPENAI_ERRORS[code]
        return etype, code, message, param
    default = (
        "server_error" if status >= 500 else "invalid_request_error",
        None,
        f"HTTP {status}.",
    )
    etype, default_code, message = _OPENAI_STATUS.get(status, default)
    return etype, code or default_code, message, None


# -- LM Studio --------------------------------------------------------------------------


class LMStudioProtocol(OpenAIProtocol):
    """LM Studio: ``/v1`` plus its ``/api/v0`` and (from 0.4.0) ``/api/v1`` REST APIs.

    A load (``POST /api/v1/models/load``) of a model that is loaded already loads another
    instance of it (``key:2``, ``key:3``, ...), as LM Studio does; each is listed in
    ``loaded_instances`` and unloaded by its own ``instance_id``.

    Args:
        v1_api: Serve ``/api/v1`` (model management); ``False`` is an LM Studio older
            than 0.4.0, which answers those routes with its "unexpected endpoint" error.
    """

    name: ClassVar[str] = "lmstudio"
    owned_by: ClassVar[str] = "organization_owner"
    reasoning_models: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, v1_api: bool = True) -> None:
        super().__init__()
        self.v1_api = v1_api
        self.instances: dict[str, list[str]] = {}
        """Ids of a loaded model's instances, by model key, once they are not just the
        key itself (another instance was loaded, or the first one unloaded)."""

    def instance_ids(self, entry: FakeModel) -> list[str]:
        """The ids of a model's loaded instances (none when it is not loaded)."""
        if not entry.loaded:
            self.instances.pop(entry.id, None)
            return []
        return list(self.instances.get(entry.id, [entry.id]))

    def extra_routes(self, server: FakeServer) -> list[web.RouteDef]:
        """``/api/v0``, ``/api/v1`` (optional), and LM Studio's answer to anything else."""

        async def v0_models(request: web.Request) -> web.StreamResponse:
            return await self.handle_v0_models(server, request)

        async def v0_model(request: web.Request) -> web.StreamResponse:
            return await self.handle_v0_model(server, request)

        async def v0_chat(request: web.Request) -> web.StreamResponse:
            return await self.handle_chat(server, request, native=True)

        async def v0_embeddings(request: web.Request) -> web.StreamResponse:
            return await self.handle_embeddings(server, request)

        async def v1_models(request: web.Request) -> web.StreamResponse:
            return await self.handle_v1_models(server, request)

        async def v1_load(request: web.Request) -> web.StreamResponse:
            return await self.handle_load(server, request)

        async def v1_unload(request: web.Request) -> web.StreamResponse:
            return await self.handle_unload(server, request)

        async def unexpected(request: web.Request) -> web.StreamResponse:
            await request.read()
            return web.json_response(
                {"error": f"Unexpected endpoint or method. ({request.method} {request.path})"}
            )

        routes = [
            web.get("/api/v0/models", v0_models),
            web.get("/api/v0/models/{model:.+}", v0_model),
            web.post("/api/v0/chat/completions", v0_chat),
            web.post("/api/v0/embeddings", v0_embeddings),
        ]
        if self.v1_api:
            routes += [
                web.get("/api/v1/models", v1_models),
                web.post("/api/v1/models/load", v1_load),
                web.post("/api/v1/models/unload", v1_unload),
            ]
        routes.append(web.route("*", "/{tail:.*}", unexpected))
        return routes

    def unknown_model(self, exchange: Exchange, name: str | None) -> web.StreamResponse:
        """LM Studio's 404 that lists the models it has."""
        if name is None:
            return exchange.error(400, "'model' is required")
        listing = "\n".join(exchange.server.models)
        return exchange.error(
            404,
            f'Model "{name}" not found. Please specify a valid model.\n\nYour models:\n\n{listing}',
            code="model_not_found",
        )

    def context_error(self, exchange: Exchange, entry: FakeModel, tokens: int) -> web.Response:
        """LM Studio's wording for a prompt longer than the loaded context."""
        return exchange.error(
            400,
            f"Trying to keep the first {tokens} tokens when context the overflows. However, "
            f"the model is loaded with context length of only {entry.context_length} tokens, "
            "which is not enough. Try to load the model with a larger context length, or "
            "provide a shorter input",
        )

    def error_body(self, status: int, message: str | None, code: str | None) -> Any:
        """OpenAI's shape, with ``param: "model"`` on model errors as LM Studio sends."""
        body = super().error_body(status, message, code)
        if body["error"]["code"] == "model_not_found":
            body["error"]["param"] = "model"
        return body

    def response_extras(
        self, exchange: Exchange, model: str, reply: Reply, *, native: bool
    ) -> dict[str, Any]:
        """``stats``, ``model_info`` and ``runtime`` on ``/api/v0`` answers."""
        if not native:
            return {}
        server = exchange.server
        fault = exchange.fault
        ttft = (fault.ttft if fault is not None and fault.ttft else server.ttft) or 0.05
        per_token = (
            fault.token_delay if fault is not None and fault.token_delay else server.token_delay
        ) or 0.02
        output = exchange.output_tokens()
        generation = max(output, 1) * per_token
        stop = {"length": "maxPredictedTokensReached", "tool_calls": "toolCalls"}.get(
            reply.finish_reason, "eosFound"
        )
        return {
            "stats": {
                "tokens_per_second": output / generation,
                "time_to_first_token": ttft,
                "generation_time": generation,
                "stop_reason": stop,
            },
            "model_info": {
                "arch": "llama",
                "quant": "Q4_K_M",
                "format": "gguf",
                "context_length": server.models[model].context_length,
            },
            "runtime": {
                "name": "llama.cpp-fake",
                "version": "1.0.0",
                "supported_formats": ["gguf"],
            },
        }

    @staticmethod
    def v0_model(entry: FakeModel) -> dict[str, Any]:
        """One entry of ``/api/v0/models``."""
        return {
            "id": entry.id,
            "object": "model",
            "type": "embeddings" if entry.embeddings else "llm",
            "publisher": "fake",
            "arch": "nomic-bert" if entry.embeddings else "llama",
            "compatibility_type": "gguf",
            "quantization": "Q4_K_M",
            "state": "loaded" if entry.loaded else "not-loaded",
            "max_context_length": entry.context_length,
        }

    def v1_model(self, entry: FakeModel) -> dict[str, Any]:
        """One entry of ``/api/v1/models``."""
        config = {
            "context_length": entry.context_length,
            "eval_batch_size": 512,
            "parallel": 4,
            "flash_attention": True,
            "offload_kv_cache_to_gpu": True,
        }
        instances = [{"id": i, "config": config} for i in self.instance_ids(entry)]
        model: dict[str, Any] = {
            "type": "embedding" if entry.embeddings else "llm",
            "publisher": "fake",
            "key": entry.id,
            "display_name": entry.id,
            "architecture": "nomic-bert" if entry.embeddings else "llama",
            "quantization": {"name": "Q4_K_M", "bits_per_weight": 4},
            "size_bytes": entry.size_bytes,
            "params_string": None,
            "loaded_instances": instances,
            "max_context_length": entry.context_length,
            "format": "gguf",
        }
        if not entry.embeddings:
            model["capabilities"] = {"vision": False, "trained_for_tool_use": entry.tools}
            model["description"] = None
        return model

    async def _listing(
        self, server: FakeServer, request: web.Request, render: Callable[[FakeModel], Any]
    ) -> tuple[Exchange, web.StreamResponse | None, list[Any]]:
        exchange = await server.exchange(request)
        early = self.check_auth(exchange) or await exchange.prelude()
        return exchange, early, [render(entry) for entry in list(server.models.values())]

    async def handle_v0_models(
        self, server: FakeServer, request: web.Request
    ) -> web.StreamResponse:
        """``GET /api/v0/models``: every downloaded model and its load state."""
        exchange, early, data = await self._listing(server, request, self.v0_model)
        if early is not None:
            return early
        return await exchange.json({"object": "list", "data": data})

    async def handle_v0_model(self, server: FakeServer, request: web.Request) -> web.StreamResponse:
        """``GET /api/v0/models/{model}``."""
        name = request.match_info["model"]
        exchange = await server.exchange(request, model=name)
        denied = self.check_auth(exchange)
        if denied is not None:
            return denied
        if name not in server.models:
            return self.unknown_model(exchange, name)
        early = await exchange.prelude()
        if early is not None:
            return early
        return await exchange.json(self.v0_model(server.models[name]))

    async def handle_v1_models(
        self, server: FakeServer, request: web.Request
    ) -> web.StreamResponse:
        """``GET /api/v1/models``: models with loaded instances, size and capabilities."""
        exchange, early, data = await self._listing(server, request, self.v1_model)
        if early is not None:
            return early
        return await exchange.json({"models": data})

    async def handle_load(self, server: FakeServer, request: web.Request) -> web.StreamResponse:
        """``POST /api/v1/models/load``: load a model (after its load delay)."""
        exchange = await server.exchange(request)
        denied = self.check_auth(exchange)
        if denied is not None:
            return denied
        name = exchange.model
        if name is None:
            return web.json_response(
                {
                    "error": {
                        "type": "invalid_request",
                        "message": '"model" is required',
                        "code": "missing_required_parameter",
                        "param": "model",
                    }
                },
                status=400,
            )
        if name not in server.models:
            return self.unknown_model(exchange, name)
        early = await exchange.prelude()
        if early is not None:
            return early
        entry = server.models[name]
        started = time.perf_counter()
        instance = name
        ids = self.instance_ids(entry)
        if ids:  # loaded already: another instance beside those
            number = 2
            while f"{name}:{number}" in ids:
                number += 1
            instance = f"{name}:{number}"
            self.instances[name] = [*ids, instance]
        await server.ensure_loaded(name)
        body = exchange.body if isinstance(exchange.body, dict) else {}
        context = body.get("context_length")
        return await exchange.json(
            {
                "type": "embedding" if entry.embeddings else "llm",
                "instance_id": instance,
                "load_time_seconds": round(time.perf_counter() - started, 3),
                "status": "loaded",
                "load_config": {
                    "context_length": context if isinstance(context, int) else entry.context_length,
                    "eval_batch_size": 512,
                    "flash_attention": True,
                    "offload_kv_cache_to_gpu": True,
                },
            }
        )

    async def handle_unload(self, server: FakeServer, request: web.Request) -> web.StreamResponse:
        """``POST /api/v1/models/unload``: unload an instance (a model key, or ``key:N``)."""
        exchange = await server.exchange(request)
        denied = self.check_auth(exchange)
        if denied is not None:
            return denied
        body = exchange.body if isinstance(exchange.body, dict) else {}
        instance = body.get("instance_id")
        if not isinstance(instance, str):
            return exchange.error(400, '"instance_id" is required')
        early = await exchange.prelude()
        if early is not None:
            return early
        for entry in list(server.models.values()):
            ids = self.instance_ids(entry)
            if instance in ids:
                ids.remove(instance)
                if ids:
                    self.instances[entry.id] = ids
                else:
                    self.instances.pop(entry.id, None)
                    server.set_loaded(entry.id, False)
                return await exchange.json({"instance_id": instance})
        return exchange.error(404, f"No loaded model instance with id '{instance}'.")


# -- llama.cpp --------------------------------------------------------------------------

_LLAMACPP_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    500: "server_error",
    501: "not_supported_error",
    503: "unavailable_error",
}


class LlamaCppProtocol(OpenAIProtocol):
    """llama.cpp's ``llama-server``: one model, ``/health``, ``/props``, ``timings``.

    The server serves whatever model it was started with, whatever a request names (the
    first of the fake's models when the name is unknown). A model not loaded yet makes
    ``/health`` and chat answer 503 "Loading model", as while ``llama-server`` starts.

    ``/props`` reports the model's ``context_length`` as the slot's ``n_ctx`` (what
    ``--ctx-size`` gave it); ``meta.n_ctx_train`` in ``/v1/models`` is what the model
    was trained for, ``trained_context`` (or the served context when that is larger).

    Args:
        trained_context: ``meta.n_ctx_train``, the model's training context.
        router: Router mode (``llama-server`` started without a model): every model is
            listed, in ``/models`` and ``/v1/models``, with its ``status``
            (``{"value": "loaded"}`` or ``{"value": "unloaded"}``; a loaded one also
            carries its ``meta``); requests are routed by the model they name (an
            unknown one is a 404), an unloaded model is loaded on first use, and
            ``POST /models/load`` / ``/models/unload`` with ``{"model": ...}`` answer
            ``{"success": true}``.
    """

    name: ClassVar[str] = "llamacpp"
    owned_by: ClassVar[str] = "llamacpp"
    reasoning_models: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, trained_context: int = 131072, router: bool = False) -> None:
        super().__init__()
        self.trained_context = trained_context
        self.router = router

    def routes(self, server: FakeServer) -> list[web.RouteDef]:
        """The ``/v1`` routes, the server's own, and in router mode model management."""
        routes = super().routes(server)
        if not self.router:
            return routes

        async def models(request: web.Request) -> web.StreamResponse:
            return await self.handle_models(server, request)

        async def load(request: web.Request) -> web.StreamResponse:
            return await self.handle_router_load(server, request, load=True)

        async def unload(request: web.Request) -> web.StreamResponse:
            return await self.handle_router_load(server, request, load=False)

        return [
            *routes,
            web.get("/models", models),
            web.post("/models/load", load),
            web.post("/models/unload", unload),
        ]

    async def handle_router_load(
        self, server: FakeServer, request: web.Request, *, load: bool
    ) -> web.StreamResponse:
        """``POST /models/load`` or ``/models/unload`` (router mode)."""
        exchange = await server.exchange(request)
        early = self.check_auth(exchange) or await exchange.prelude()
        if early is not None:
            return early
        name = exchange.model
        if name is None:
            return exchange.error(400, "'model' is required")
        if name not in server.models:
            return self.unknown_model(exchange, name)
        if load:
            await server.ensure_loaded(name)
        else:
            server.set_loaded(name, False)
        return await exchange.json({"success": True})

    def extra_routes(self, server: FakeServer) -> list[web.RouteDef]:
        """``/health`` (and ``/v1/health``) and ``/props``."""

        async def health(request: web.Request) -> web.StreamResponse:
            if self.router or all(entry.loaded for entry in server.models.values()):
                return web.json_response({"status": "ok"})
            return web.json_response(self.error_body(503, "Loading model", None), status=503)

        async def props(request: web.Request) -> web.StreamResponse:
            exchange = await server.exchange(request)
            early = self.check_auth(exchange) or await exchange.prelude()
            if early is not None:
                return early
            entry = next(iter(server.models.values()), FakeModel("none"))
            if self.router:  # routed by ?model=, and only a loaded model answers
                entry = server.models.get(request.query.get("model", ""), FakeModel("none"))
                if not entry.loaded or entry.id not in server.models:
                    return exchange.error(400, "model is not loaded")
            return await exchange.json(
                {
                    "default_generation_settings": {
                        "n_ctx": entry.context_length,
                        "params": {"temperature": 0.8, "top_k": 40, "top_p": 0.95},
                    },
                    "total_slots": 1,
                    "model_path": f"/models/{entry.id}.gguf",
                    "chat_template": "{{ messages }}",
                    "modalities": {"vision": False, "audio": False},
                    "build_info": "b0000-fake",
                    "is_sleeping": False,
                }
            )

        async def apply_template(request: web.Request) -> web.StreamResponse:
            exchange = await server.exchange(request)
            early = self.check_auth(exchange) or await exchange.prelude()
            if early is not None:
                return early
            body = exchange.body
            messages = body.get("messages") if isinstance(body, dict) else None
            if not isinstance(messages, list):
                return exchange.error(400, "'messages' is required")
            return await exchange.json({"prompt": chat_template(messages)})

        async def tokenize(request: web.Request) -> web.StreamResponse:
            exchange = await server.exchange(request)
            early = self.check_auth(exchange) or await exchange.prelude()
            if early is not None:
                return early
            body = exchange.body
            content = body.get("content") if isinstance(body, dict) else None
            if not isinstance(content, str):
                return exchange.error(400, "'content' is required")
            special = bool(body.get("add_special", False)) if isinstance(body, dict) else False
            return await exchange.json({"tokens": fake_token_ids(content, bos=special)})

        return [
            web.get("/health", health),
            web.get("/v1/health", health),
            web.get("/props", props),
            web.post("/apply-template", apply_template),
            web.post("/tokenize", tokenize),
        ]

    def resolve_model(self, server: FakeServer, name: str | None) -> str | None:
        """The named model when served, else the server's one model (none for a router)."""
        if name is not None and name in server.models:
            return name
        return None if self.router else next(iter(server.models), None)

    def unknown_model(self, exchange: Exchange, name: str | None) -> web.StreamResponse:
        """A router's 404 for a model it does not have."""
        if name is None:
            return exchange.error(400, "'model' is required")
        return exchange.error(404, f"model '{name}' not found")

    def object_tool_choice(self, name: str) -> ToolChoice | None:
        """Ignored: ``llama-server`` takes ``tool_choice`` only as a string.

        It logs a warning and lets the model answer as it likes.
        """
        return None

    def not_loaded(self, exchange: Exchange, entry: FakeModel) -> web.StreamResponse | None:
        """503 "Loading model" until the model is loaded (a router loads it on first use)."""
        return None if self.router else exchange.error(503, "Loading model")

    def context_error(self, exchange: Exchange, entry: FakeModel, tokens: int) -> web.Response:
        """llama.cpp's ``exceed_context_size_error`` with the token figures."""
        body = {
            "error": {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": tokens,
                "n_ctx": entry.context_length,
            }
        }
        return web.json_response(body, status=400)

    def error_body(self, status: int, message: str | None, code: str | None) -> Any:
        """``{"error": {"code": <int>, "message", "type"}}``."""
        etype = _LLAMACPP_TYPES.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        if code == "context_length_exceeded":
            etype = "exceed_context_size_error"
            message = message or "the request exceeds the available context size, try increasing it"
        defaults = {401: "Invalid API Key", 404: "File Not Found", 503: "Loading model"}
        return {
            "error": {
                "code": status,
                "message": message or defaults.get(status, f"HTTP {status}"),
                "type": etype,
            }
        }

    def model_object(self, server: FakeServer, entry: FakeModel) -> dict[str, Any]:
        """A model with llama.cpp's ``meta`` (context trained, size, parameters).

        In router mode: with its ``path`` and ``status``, and ``meta`` only when loaded.
        """
        architecture = {"input_modalities": ["text"], "output_modalities": ["text"]}
        if self.router:
            listed: dict[str, Any] = {
                **super().model_object(server, entry),
                "path": f"/models/{entry.id}.gguf",
                "status": (
                    {"value": "loaded", "args": ["llama-server", "-m", entry.id]}
                    if entry.loaded
                    else {"value": "unloaded"}
                ),
                "architecture": architecture,
            }
            if entry.loaded:
                listed["meta"] = self._meta(entry)
            return listed
        return {
            **super().model_object(server, entry),
            "architecture": architecture,
            "meta": self._meta(entry),
        }

    def _meta(self, entry: FakeModel) -> dict[str, Any]:
        """llama.cpp's ``meta`` of a loaded model."""
        return {
            "vocab_type": 2,
            "n_vocab": 128256,
            "n_ctx_train": max(self.trained_context, entry.context_length),
            "n_embd": 4096,
            "n_params": entry.size_bytes * 2,
            "size": entry.size_bytes,
        }

    def response_extras(
        self, exchange: Exchange, model: str, reply: Reply, *, native: bool
    ) -> dict[str, Any]:
        """llama.cpp's ``timings``."""
        server, fault = exchange.server, exchange.fault
        ttft = (fault.ttft if fault is not None and fault.ttft else server.ttft) or 0.02
        per_token = (
            fault.token_delay if fault is not None and fault.token_delay else server.token_delay
        ) or 0.01
        prompt_n, predicted_n = exchange.input_tokens(), exchange.output_tokens()
        prompt_ms, predicted_ms = ttft * 1000, max(predicted_n, 1) * per_token * 1000
        return {
            "timings": {
                "cache_n": 0,
                "prompt_n": prompt_n,
                "prompt_ms": prompt_ms,
                "prompt_per_token_ms": prompt_ms / max(prompt_n, 1),
                "prompt_per_second": prompt_n / (prompt_ms / 1000),
                "predicted_n": predicted_n,
                "predicted_ms": predicted_ms,
                "predicted_per_token_ms": predicted_ms / max(predicted_n, 1),
                "predicted_per_second": predicted_n / (predicted_ms / 1000),
            }
        }


# -- vLLM -------------------------------------------------------------------------------

_PYDANTIC_NULL_CONTENT = (
    "1 validation error for ChatCompletionRequestAssistantMessage\n"
    "content\n"
    "  Input should be a valid string [type=string_type, input_value=None, "
    "input_type=NoneType]"
)


class LlamaCppPythonProtocol(OpenAIProtocol):
    """llama-cpp-python's server (``python -m llama_cpp.server``), as it really behaves.

    - ``/v1/models`` entries are ``owned_by: "me"``, with no context length; there is no
      ``/props`` and no ``/health``.
    - One model is served whatever a request names, and the answer echoes the name the
      request gave (so an unknown model looks served).
    - An assistant turn with ``"content": null`` is refused with HTTP 500 and pydantic's
      validation error as the message (``"type": "internal_server_error"``).
    - A prompt over the context window: a non-streamed request gets OpenAI's 400
      ``context_length_exceeded`` body; a streamed one gets 200 and an empty stream.
    - Streams carry no ``usage`` (whatever ``stream_options`` say) and no ``timings``;
      every tool-call chunk repeats the call's ``id`` and ``function.name``, and carries
      the deprecated ``function_call`` too.
    - With ``interrupt_requests`` (its default), a chat request ends the streams in
      progress with ``data: [DONE]`` and no finish reason.
    """

    name: ClassVar[str] = "llama-cpp-python"
    owned_by: ClassVar[str] = "me"
    reasoning_models: ClassVar[tuple[str, ...]] = ()
    stream_usage: ClassVar[bool] = False

    def __init__(self, *, interrupt_requests: bool = True) -> None:
        super().__init__()
        self.interrupts_streams = interrupt_requests

    def resolve_model(self, server: FakeServer, name: str | None) -> str | None:
        """The server's one model, whatever the request names."""
        return next(iter(server.models), None)

    def answer_model(self, exchange: Exchange, model: str) -> str:
        """The name the request gave, echoed back."""
        return exchange.model or model

    def model_object(self, server: FakeServer, entry: FakeModel) -> dict[str, Any]:
        """``{"id", "object", "owned_by": "me", "permissions": []}``."""
        return {"id": entry.id, "object": "model", "owned_by": self.owned_by, "permissions": []}

    def check_messages(self, exchange: Exchange, messages: list[Any]) -> web.StreamResponse | None:
        """A 500 with pydantic's validation error for an assistant turn with null content."""
        for message in messages:
            if (
                isinstance(message, dict)
                and message.get("role") == "assistant"
                and "content" in message
                and message["content"] is None
            ):
                body = {
                    "error": {
                        "message": _PYDANTIC_NULL_CONTENT,
                        "type": "internal_server_error",
                        "param": None,
                        "code": None,
                    }
                }
                return web.json_response(body, status=500)
        return None

    def context_error(self, exchange: Exchange, entry: FakeModel, tokens: int) -> web.Response:
        """OpenAI's 400 ``context_length_exceeded`` body, in llama-cpp-python's words."""
        body = exchange.body if isinstance(exchange.body, dict) else {}
        completion = body.get("max_tokens")
        completion = completion if isinstance(completion, int) else None
        message = (
            f"This model's maximum context length is {entry.context_length} tokens. However, "
            f"you requested {tokens + (completion or 0)} tokens ({tokens} in the messages, "
            f"{completion} in the completion). Please reduce the length of the messages or "
            "completion."
        )
        error = {
            "message": message,
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
        return web.json_response({"error": error}, status=400)

    async def refuse_overflow(
        self, exchange: Exchange, entry: FakeModel, tokens: int
    ) -> web.StreamResponse:
        """Streamed: 200 and an empty event stream (the error reaches only the log)."""
        body = exchange.body
        if isinstance(body, dict) and body.get("stream"):
            return await exchange.stream((), content_type="text/event-stream")
        return self.context_error(exchange, entry, tokens)

    def tool_call_deltas(self, index: int, call_id: str, call: FakeToolCall) -> list[Any]:
        """Every chunk names the call and repeats it as the deprecated ``function_call``.

        Each carries the call's ``id`` and ``function.name``, not only the first.
        """
        return [
            {
                "role": None,
                "content": None,
                "function_call": {"name": call.name, "arguments": piece},
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": piece},
                    }
                ],
            }
            for piece in ["", *_fragments(json.dumps(call.arguments))]
        ]


_VLLM_TYPES = {
    400: "BadRequestError",
    401: "Unauthorized",
    404: "NotFoundError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


class VLLMProtocol(OpenAIProtocol):
    """vLLM's OpenAI-compatible server: ``/health``, ``/version``, ``/metrics``.

    Args:
        flat_errors: Send the older flat error body (``{"object": "error", "message":
            ..., "code": 400}``) instead of ``{"error": {...}}``.
        kv_cache_usage: What ``vllm:kv_cache_usage_perc`` reports (0 to 1).
        version: What ``/version`` reports.
    """

    name: ClassVar[str] = "vllm"
    owned_by: ClassVar[str] = "vllm"
    reasoning_models: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, *, flat_errors: bool = False, kv_cache_usage: float = 0.0, version: str = "0.11.0"
    ) -> None:
        super().__init__()
        self.flat_errors = flat_errors
        self.kv_cache_usage = kv_cache_usage
        self.version = version

    def extra_routes(self, server: FakeServer) -> list[web.RouteDef]:
        """``/health`` (empty 200), ``/version`` and Prometheus ``/metrics``."""

        async def health(request: web.Request) -> web.StreamResponse:
            return web.Response(status=200)

        async def version(request: web.Request) -> web.StreamResponse:
            return web.json_response({"version": self.version})

        async def metrics(request: web.Request) -> web.StreamResponse:
            return web.Response(text=self.metrics_text(server), content_type="text/plain")

        async def tokenize(request: web.Request) -> web.StreamResponse:
            exchange = await server.exchange(request)
            early = await exchange.prelude()
            if early is not None:
                return early
            body = exchange.body if isinstance(exchange.body, dict) else {}
            messages, prompt = body.get("messages"), body.get("prompt")
            if isinstance(messages, list):
                text = chat_template(messages)
            elif isinstance(prompt, str):
                text = prompt
            else:
                return exchange.error(400, "either 'messages' or 'prompt' is required")
            entry = server.models.get(str(body.get("model")))
            tokens = fake_token_ids(text, bos=True)
            return await exchange.json(
                {
                    "count": len(tokens),
                    "max_model_len": entry.context_length if entry else 4096,
                    "tokens": tokens,
                }
            )

        return [
            web.get("/health", health),
            web.get("/version", version),
            web.get("/metrics", metrics),
            web.post("/tokenize", tokenize),
        ]

    def metrics_text(self, server: FakeServer) -> str:
        """The Prometheus exposition of the figures vLLM's V1 engine reports."""
        running = max(0, server.in_flight - 1)  # this request is in flight too
        series = [
            ("vllm:num_requests_running", "gauge", float(running)),
            ("vllm:num_requests_waiting", "gauge", 0.0),
            ("vllm:kv_cache_usage_perc", "gauge", self.kv_cache_usage),
            ("vllm:prompt_tokens_total", "counter", float(self.prompt_tokens_total)),
            ("vllm:generation_tokens_total", "counter", float(self.generation_tokens_total)),
        ]
        lines: list[str] = []
        for metric, kind, value in series:
            lines += [f"# HELP {metric} {metric} (fake)", f"# TYPE {metric} {kind}"]
            lines += [f'{metric}{{model_name="{model}"}} {value}' for model in server.models]
        return "\n".join(lines) + "\n"

    def context_error(self, exchange: Exchange, entry: FakeModel, tokens: int) -> web.Response:
        """The 400 vLLM sends for a prompt over ``max_model_len``."""
        return exchange.error(
            400,
            f"This model's maximum context length is {entry.context_length} tokens. However, "
            f"your request has {tokens} input tokens. Please reduce the length of the input "
            "messages.",
        )

    def unknown_model(self, exchange: Exchange, name: str | None) -> web.StreamResponse:
        """The 404 vLLM sends for a model it does not serve."""
        return exchange.error(404, f"The model `{name}` does not exist.")

    def error_body(self, status: int, message: str | None, code: str | None) -> Any:
        """``{"error": {"message", "type", "param", "code": <int>}}``, or the flat one."""
        if status == 401 and not self.flat_errors:
            return {"error": "Unauthorized"}
        error = {
            "message": message or f"HTTP {status}",
            "type": _VLLM_TYPES.get(
                status, "InternalServerError" if status >= 500 else "BadRequestError"
            ),
            "param": None,
            "code": status,
        }
        if self.flat_errors:
            return {"object": "error", **error}
        return {"error": error}

    def model_object(self, server: FakeServer, entry: FakeModel) -> dict[str, Any]:
        """A model with vLLM's ``root`` and ``max_model_len``."""
        return {
            **super().model_object(server, entry),
            "root": entry.id,
            "parent": None,
            "max_model_len": entry.context_length,
            "permission": [],
        }
