"""The Ollama native protocol: ``/api/chat``, ``/api/tags``, ``/api/ps``, ``/api/embed``.

What sets it apart from the OpenAI-compatible wire:

- streaming is the server's default, so every chat body says ``"stream"`` explicitly;
  a stream is NDJSON (one object per line), and its last line has ``"done": true``,
  the ``done_reason`` and the timings, all in **nanoseconds**;
- tool-call arguments arrive as an object (never a JSON string), and tool calls usually
  carry no id (one is synthesised); a tool result goes back keyed by ``tool_name``;
- sampling settings go in a nested ``options`` object (``num_predict`` is the output
  token limit);
- errors are ``{"error": "text"}``, with the HTTP status (or, mid-stream, a line of
  that shape under HTTP 200);
- models are loaded with an empty chat (``done_reason: "load"``) and unloaded with an
  empty chat and ``keep_alive: 0`` (``done_reason: "unload"``).

Model capabilities: :meth:`OllamaProvider.list_models` costs two requests (``/api/tags``
and ``/api/ps``) and guesses embeddings and vision from the model's family and name.
Asking ``/api/show`` for each model gives the exact ``capabilities`` and context window,
but it is one request per model on every inventory refresh, so it is opt-in
(``show_details=True``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

import httpx

from actors import FailureKind
from actors.llm._messages import (
    ChatMessage,
    ChatRequest,
    Completion,
    Embeddings,
    EmbedRequest,
    FinishReason,
    ModelInfo,
    TextDelta,
    ToolCall,
    Usage,
)
from actors.llm.providers._base import (
    Provider,
    ProviderError,
    StreamEvent,
    StreamProgress,
    Timeouts,
    parse_arguments,
    synth_call_id,
)

__all__ = ["OllamaProvider"]

_NS_PER_S = 1_000_000_000
_DEFAULT_TIMEOUTS = Timeouts()

_RUNTIME_OPTIONS = frozenset(
    {
        "numa",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "low_vram",
        "logits_all",
        "vocab_only",
        "use_mmap",
        "use_mlock",
        "embedding_only",
        "num_thread",
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "top_p",
        "min_p",
        "tfs_z",
        "typical_p",
        "repeat_last_n",
        "temperature",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
        "penalize_newline",
        "stop",
    }
)
"""Modelfile parameters: found at the top of ``ChatRequest.options`` they go into the
body's ``options`` object, where Ollama reads them."""

_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "load": FinishReason.STOP,
    "unload": FinishReason.STOP,
}

_EMBEDDING_HINTS = ("bert", "embed", "minilm", "bge", "e5-", "gte-")
_VISION_HINTS = ("clip", "mllama", "llava", "vision", "-vl")
_MEMORY_HINTS = ("more system memory", "out of memory", "insufficient memory", "cudamalloc")

_SHOW_CAPABILITIES = {
    "completion": "chat",
    "embedding": "embeddings",
    "tools": "tools",
    "vision": "vision",
}


class OllamaProvider(Provider):
    """A wire adapter for Ollama's native API (default port 11434).

    Args:
        base_url: The server's root, e.g. ``http://127.0.0.1:11434``.
        client: The shared httpx client (see :func:`make_client`).
        api_key: Sent as a Bearer token when set (Ollama's cloud; a local server
            needs none).
        headers: Extra headers for every request.
        timeouts: Connect, read and stream-idle timeouts.
        name: How failures name the source.
        show_details: Ask ``/api/show`` about every model in :meth:`list_models`, for
            exact capabilities and context windows (one extra request per model).
    """

    protocol: ClassVar[str] = "ollama"

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts = _DEFAULT_TIMEOUTS,
        name: str | None = None,
        show_details: bool = False,
    ) -> None:
        super().__init__(
            base_url, client=client, api_key=api_key, headers=headers, timeouts=timeouts, name=name
        )
        self.show_details = show_details

    # -- chat ---------------------------------------------------------------------------

    async def chat(self, request: ChatRequest) -> Completion:
        """One chat completion, ``"stream": false`` on the wire."""
        started = time.perf_counter()
        payload = await self.request_json(
            "POST", "/api/chat", self.chat_body(request, stream=False), model=request.model
        )
        if not isinstance(payload, dict):
            raise ProviderError(
                self.failure(
                    FailureKind.INVALID_RESPONSE,
                    f"/api/chat answered with a {type(payload).__name__}, not an object",
                    request.model,
                )
            )
        if "error" in payload:
            raise self._body_error(payload, request.model)
        message = payload.get("message")
        if not isinstance(message, dict):
            raise ProviderError(
                self.failure(
                    FailureKind.INVALID_RESPONSE,
                    f"/api/chat answered without a message: {str(payload)[:200]}",
                    request.model,
                )
            )
        content = message.get("content")
        calls = self._tool_calls(message.get("tool_calls"), request, start=0)
        return self._completion(
            request,
            payload,
            content=content if isinstance(content, str) else "",
            thinking=_text(message.get("thinking")),
            tool_calls=calls,
            latency_s=time.perf_counter() - started,
            ttft_s=None,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream a chat completion (NDJSON): text pieces, then one :class:`Completion`."""
        started = time.perf_counter()
        progress = StreamProgress(started=started)
        model = request.model
        text: list[str] = []
        thinking: list[str] = []
        calls: list[ToolCall] = []
        final: dict[str, Any] | None = None
        async with self.open_stream(
            "/api/chat", self.chat_body(request, stream=True), model=model
        ) as response:
            async for line in self.iter_ndjson(response, progress, model):
                if not isinstance(line, dict):
                    raise ProviderError(
                        self.failure(
                            FailureKind.INVALID_RESPONSE,
                            f"stream sent a {type(line).__name__}, not an object "
                            f"{progress.describe()}",
                            model,
                            details=progress.details(),
                        )
                    )
                if "error" in line:
                    raise self.stream_error(line, progress, model)
                message = line.get("message")
                if isinstance(message, dict):
                    piece = _text(message.get("content"))
                    if piece:
                        progress.text(piece)
                        text.append(piece)
                        yield TextDelta(text=piece)
                    thought = _text(message.get("thinking"))
                    if thought:
                        thinking.append(thought)
                    new = self._tool_calls(message.get("tool_calls"), request, start=len(calls))
                    if new:
                        if progress.first_token_at is None:
                            progress.first_token_at = time.perf_counter()
                        progress.tool_calls += len(new)
                        calls.extend(new)
                if line.get("done") is True:
                    final = line
                    break
        if final is None:
            raise ProviderError(
                self.failure(
                    FailureKind.CONNECTION,
                    f"stream ended before its final done:true line {progress.describe()}",
                    model,
                    details=progress.details(),
                )
            )
        yield self._completion(
            request,
            final,
            content="".join(text),
            thinking="".join(thinking),
            tool_calls=calls,
            latency_s=time.perf_counter() - started,
            ttft_s=progress.ttft_s,
        )

    def chat_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The ``/api/chat`` body for a request.

        ``tool_choice`` has no Ollama equivalent: ``"none"`` leaves the tools out, and
        anything else sends them (the model decides). ``request.options`` is merged in:
        Modelfile parameters (``num_ctx``, ``top_k``, ``seed``, ...) and a nested
        ``options`` object go into the body's ``options``; other keys (``keep_alive``,
        ``format``, ``think``, ...) go at the top level.
        """
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [_wire_message(m) for m in request.messages],
        }
        if request.tools and request.tool_choice != "none":
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
                for tool in request.tools
            ]
        options: dict[str, Any] = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.stop:
            options["stop"] = list(request.stop)
        for key, value in request.options.items():
            if key == "options" and isinstance(value, Mapping):
                options.update(value)
            elif key in _RUNTIME_OPTIONS:
                options[key] = value
            else:
                body[key] = value
        if options:
            body["options"] = options
        body["stream"] = stream  # always explicit: Ollama streams unless told not to
        return body

    def _tool_calls(self, raw: Any, request: ChatRequest, *, start: int) -> list[ToolCall]:
        """Tool calls from a message's ``tool_calls`` (ids synthesised where absent)."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise ProviderError(
                self.failure(
                    FailureKind.INVALID_RESPONSE,
                    f"tool_calls is not a list: {str(raw)[:200]}",
                    request.model,
                )
            )
        calls = []
        for offset, item in enumerate(raw):
            function = item.get("function") if isinstance(item, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(function, dict) or not isinstance(name, str) or not name:
                raise ProviderError(
                    self.failure(
                        FailureKind.INVALID_RESPONSE,
                        f"tool call without a function name: {str(item)[:200]}",
                        request.model,
                    )
                )
            arguments = parse_arguments(
                function.get("arguments"), provider=self, model=request.model, tool=name
            )
            call_id = item.get("id")
            if not isinstance(call_id, str) or not call_id:
                call_id = synth_call_id("call", start + offset, request.request_id)
            calls.append(ToolCall(id=call_id, name=name, arguments=arguments))
        return calls

    def _completion(
        self,
        request: ChatRequest,
        final: Mapping[str, Any],
        *,
        content: str,
        thinking: str,
        tool_calls: Sequence[ToolCall],
        latency_s: float,
        ttft_s: float | None,
    ) -> Completion:
        """The completion from the text gathered and the final object's metrics."""
        raw_reason = final.get("done_reason")
        raw = raw_reason if isinstance(raw_reason, str) else ""
        if tool_calls and raw in ("", "stop"):
            finish = FinishReason.TOOL_CALLS
        else:
            finish = _FINISH.get(raw, FinishReason.STOP if not raw else FinishReason.OTHER)
        prompt_tokens = _int(final.get("prompt_eval_count"))
        output_tokens = _int(final.get("eval_count"))
        eval_ns = _int(final.get("eval_duration"))
        prompt_ns = _int(final.get("prompt_eval_duration"))
        load_ns = _int(final.get("load_duration"))
        total_ns = _int(final.get("total_duration"))
        extras: dict[str, Any] = {"raw_finish_reason": raw}
        for key, value in (
            ("total_duration_s", total_ns),
            ("load_duration_s", load_ns),
            ("prompt_eval_duration_s", prompt_ns),
            ("eval_duration_s", eval_ns),
        ):
            if value is not None:
                extras[key] = value / _NS_PER_S
        if prompt_tokens and prompt_ns:
            extras["prompt_tokens_per_s"] = prompt_tokens * _NS_PER_S / prompt_ns
        if thinking:
            extras["thinking"] = thinking
        created = final.get("created_at")
        if isinstance(created, str):
            extras["created_at"] = created
        tokens_per_s = None
        if output_tokens and eval_ns:
            tokens_per_s = output_tokens * _NS_PER_S / eval_ns
        if ttft_s is None and (load_ns is not None or prompt_ns is not None):
            ttft_s = ((load_ns or 0) + (prompt_ns or 0)) / _NS_PER_S
        model = final.get("model")
        return Completion(
            model=model if isinstance(model, str) and model else request.model,
            provider=self.protocol,
            content=content,
            tool_calls=tuple(tool_calls),
            finish_reason=finish,
            usage=Usage(input_tokens=prompt_tokens or 0, output_tokens=output_tokens or 0),
            request_id=request.request_id,
            latency_s=latency_s,
            ttft_s=ttft_s,
            tokens_per_s=tokens_per_s,
            extras=extras,
        )

    def _body_error(self, payload: Mapping[str, Any], model: str) -> ProviderError:
        """An ``{"error": ...}`` body that came with HTTP 200 (not streamed)."""
        error = payload.get("error")
        message = error if isinstance(error, str) else str(error)
        kind = self.classify(500, "", "", message)
        return ProviderError(
            self.failure(kind, f"server answered HTTP 200 with an error: {message}", model)
        )

    # -- errors -------------------------------------------------------------------------

    def classify(self, status: int, etype: str, code: str, message: str) -> FailureKind:
        """The shared rules, plus Ollama's "model requires more memory" load failure."""
        low = message.lower()
        if any(hint in low for hint in _MEMORY_HINTS):
            return FailureKind.INSUFFICIENT_MEMORY
        if status == 404 or ("not found" in low and "model" in low):
            return FailureKind.NOT_FOUND
        return super().classify(status, etype, code, message)

    # -- models -------------------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        """Downloaded models (``/api/tags``) merged with the loaded ones (``/api/ps``)."""
        tags, running = await asyncio.gather(self.request_json("GET", "/api/tags"), self._running())
        listed = _model_entries(tags)
        shown: dict[str, dict[str, Any]] = {}
        if self.show_details:
            names = [n for n in (_model_name(e) for e in listed) if n]
            results = await asyncio.gather(*(self.show(n) for n in names))
            shown = dict(zip(names, results, strict=True))
        models: list[ModelInfo] = []
        seen: set[str] = set()
        for entry in listed:
            name = _model_name(entry)
            if not name or name in seen:
                continue
            seen.add(name)
            models.append(
                _model_info(name, entry, running, shown.get(name), loaded_known=running is not None)
            )
        for name, entry in (running or {}).items():
            if name not in seen:
                seen.add(name)
                models.append(_model_info(name, entry, running, None, loaded_known=True))
        return models

    async def _running(self) -> dict[str, dict[str, Any]] | None:
        """Loaded models by name (``None`` when the server has no ``/api/ps``)."""
        try:
            payload = await self.request_json("GET", "/api/ps")
        except ProviderError as exc:
            if exc.failure.details.get("status") == "404":
                return None
            raise
        running: dict[str, dict[str, Any]] = {}
        for entry in _model_entries(payload):
            name = _model_name(entry)
            if name:
                running[name] = entry
        return running

    async def show(self, model: str) -> dict[str, Any]:
        """What ``/api/show`` says about a model (details, model_info, capabilities)."""
        payload = await self.request_json("POST", "/api/show", {"model": model}, model=model)
        if not isinstance(payload, dict):
            raise ProviderError(
                self.failure(
                    FailureKind.INVALID_RESPONSE, "/api/show answered with a non-object", model
                )
            )
        return payload

    async def version(self) -> str | None:
        """The server's version (``/api/version``)."""
        payload = await self.request_json("GET", "/api/version")
        value = payload.get("version") if isinstance(payload, dict) else None
        return value if isinstance(value, str) else None

    async def embed(self, request: EmbedRequest) -> Embeddings:
        """Embed texts with ``/api/embed`` (one vector per input, in order)."""
        payload = await self.request_json(
            "POST",
            "/api/embed",
            {"model": request.model, "input": list(request.inputs)},
            model=request.model,
        )
        if isinstance(payload, dict) and "error" in payload:
            raise self._body_error(payload, request.model)
        raw = payload.get("embeddings") if isinstance(payload, dict) else None
        vectors: list[tuple[float, ...]] = []
        if isinstance(raw, list):
            for row in raw:
                if not isinstance(row, list) or not all(
                    isinstance(x, int | float) and not isinstance(x, bool) for x in row
                ):
                    break
                vectors.append(tuple(float(x) for x in row))
        if (
            not isinstance(raw, list)
            or len(vectors) != len(raw)
            or len(vectors) != len(request.inputs)
        ):
            raise ProviderError(
                self.failure(
                    FailureKind.INVALID_RESPONSE,
                    f"/api/embed answered {len(vectors)} valid vectors for "
                    f"{len(request.inputs)} inputs",
                    request.model,
                )
            )
        assert isinstance(payload, dict)
        model = payload.get("model")
        return Embeddings(
            model=model if isinstance(model, str) and model else request.model,
            provider=self.protocol,
            vectors=tuple(vectors),
            usage=Usage(input_tokens=_int(payload.get("prompt_eval_count")) or 0),
        )

    async def load(self, model: str) -> None:
        """Load a model: an empty chat, answered with ``done_reason: "load"``."""
        await self._load_state(model, {"model": model, "messages": [], "stream": False})

    async def unload(self, model: str) -> None:
        """Unload a model: an empty chat with ``keep_alive: 0`` (``done_reason: "unload"``)."""
        await self._load_state(
            model, {"model": model, "messages": [], "keep_alive": 0, "stream": False}
        )

    async def _load_state(self, model: str, body: dict[str, Any]) -> None:
        payload = await self.request_json("POST", "/api/chat", body, model=model)
        if isinstance(payload, dict) and "error" in payload:
            raise self._body_error(payload, model)
        if not isinstance(payload, dict) or payload.get("done") is not True:
            raise ProviderError(
                self.failure(
                    FailureKind.INVALID_RESPONSE,
                    f"/api/chat answered a load request with {str(payload)[:200]}",
                    model,
                )
            )

    @property
    def can_load(self) -> bool:
        """Ollama loads and unloads models on request."""
        return True


# -- wire helpers ---------------------------------------------------------------------


def _wire_message(message: ChatMessage) -> dict[str, Any]:
    """One turn in Ollama's shape."""
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "function": {"index": i, "name": call.name, "arguments": call.arguments},
            }
            for i, call in enumerate(message.tool_calls)
        ]
    if message.role == "tool":
        if message.name:
            wire["tool_name"] = message.name
        if message.tool_call_id:
            wire["tool_call_id"] = message.tool_call_id
    return wire


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _model_entries(payload: Any) -> list[dict[str, Any]]:
    models = payload.get("models") if isinstance(payload, dict) else None
    if not isinstance(models, list):
        return []
    return [m for m in models if isinstance(m, dict)]


def _model_name(entry: Mapping[str, Any]) -> str:
    for key in ("model", "name"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _model_info(
    name: str,
    entry: Mapping[str, Any],
    running: Mapping[str, Mapping[str, Any]] | None,
    shown: Mapping[str, Any] | None,
    *,
    loaded_known: bool,
) -> ModelInfo:
    """One model, from its ``/api/tags`` entry, ``/api/ps`` entry and ``/api/show``."""
    ps = (running or {}).get(name)
    raw_details = entry.get("details")
    details_in = raw_details if isinstance(raw_details, Mapping) else {}
    details: dict[str, Any] = {
        k: v
        for k, v in details_in.items()
        if k in ("family", "families", "format", "parameter_size", "quantization_level")
        and v not in (None, "", [])
    }
    for key in ("digest", "modified_at"):
        if isinstance(entry.get(key), str):
            details[key] = entry[key]
    context_length = None
    vram_bytes = None
    if ps is not None:
        context_length = _int(ps.get("context_length")) or None
        vram_bytes = _int(ps.get("size_vram"))
        resident = _int(ps.get("size"))
        if resident is not None:
            details["resident_bytes"] = resident
        if isinstance(ps.get("expires_at"), str):
            details["expires_at"] = ps["expires_at"]
    capabilities = _guess_capabilities(name, details_in)
    if shown is not None:
        listed = shown.get("capabilities")
        if isinstance(listed, list) and listed:
            mapped = [_SHOW_CAPABILITIES[c] for c in listed if c in _SHOW_CAPABILITIES]
            capabilities = tuple(dict.fromkeys(mapped)) or capabilities
        info = shown.get("model_info")
        if context_length is None and isinstance(info, Mapping):
            for key, value in info.items():
                if key.endswith(".context_length") and _int(value):
                    context_length = _int(value)
                    break
    size = _int(entry.get("size")) if ps is not entry else None
    return ModelInfo(
        id=name,
        loaded=(ps is not None) if loaded_known else None,
        context_length=context_length,
        size_bytes=size,
        vram_bytes=vram_bytes,
        capabilities=capabilities,
        details=details,
    )


def _guess_capabilities(name: str, details: Mapping[str, Any]) -> tuple[str, ...]:
    """Capabilities from the family and name alone (no ``/api/show``)."""
    families = details.get("families")
    words = [name.lower(), str(details.get("family") or "").lower()]
    if isinstance(families, list):
        words.extend(str(f).lower() for f in families)
    text = " ".join(words)
    if any(hint in text for hint in _EMBEDDING_HINTS):
        return ("embeddings",)
    if any(hint in text for hint in _VISION_HINTS):
        return ("chat", "vision")
    return ("chat",)
