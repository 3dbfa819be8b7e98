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
Asking ``/api/show`` for each model gives the exact ``capabilities``, the context length
the model was trained for and a Modelfile's ``num_ctx``, but it is one request per model
on every inventory refresh, so it is opt-in (``show_details=True``).

The context a model is *served* with is not the one it was trained for: Ollama loads a
model with the request's ``options.num_ctx``, else the Modelfile's ``num_ctx``, else the
server's default (``OLLAMA_CONTEXT_LENGTH``; without it 2048 tokens in old versions, 4096
later, and since 0.15.5 4096, 32768 or 262144 by the GPU's memory), at most the trained
length. A prompt longer than that is cut from its beginning with only a warning in the
server's log ("truncating input prompt"), and the answer comes back as if nothing
happened. So a model's ``context_length`` here is the served one (see
:func:`served_context`), the trained one stays in ``details["trained_context_length"]``,
and a request that cannot fit is refused before it is sent (see
:meth:`OllamaProvider.check_context`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

import httpx

from actors import Failure, FailureKind
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

__all__ = [
    "OLLAMA_DEFAULT_CONTEXT",
    "OllamaProvider",
    "fewest_prompt_tokens",
    "fewest_tokens",
    "served_context",
]

OLLAMA_DEFAULT_CONTEXT = 4096
"""The context assumed for a model not loaded when nothing says otherwise: Ollama's
default on a machine with less than 24 GiB of GPU memory (and its only default from
2025 to 0.15.5). A server started with ``OLLAMA_CONTEXT_LENGTH``, or one with more GPU
memory, serves more: say so with the host's ``num_ctx``."""

_MAX_ASCII_CHARS_PER_TOKEN = 6
"""The most ASCII characters one token is assumed to hold when deciding that a prompt
cannot fit (tokenizers average about 4 on English and 3 to 4 on code)."""
_MAX_OTHER_CHARS_PER_TOKEN = 4
"""The same for other characters (CJK runs about 1 to 1.5 a token, Cyrillic 2 to 3)."""

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
        num_ctx: The context every model is served with (the host's ``num_ctx``):
            sent as ``options.num_ctx`` with every chat, embed and load request whose
            own options do not set it. ``None``: none is sent, and the server decides.
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
        num_ctx: int | None = None,
    ) -> None:
        super().__init__(
            base_url, client=client, api_key=api_key, headers=headers, timeouts=timeouts, name=name
        )
        self.show_details = show_details
        self.num_ctx = num_ctx
        self._assumed: dict[str, int] = {}  # model -> the default context assumed for it

    # -- chat ---------------------------------------------------------------------------

    async def chat(self, request: ChatRequest) -> Completion:
        """One chat completion, ``"stream": false`` on the wire."""
        self.check_context(request)
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
        self.check_context(request)
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
        if self.num_ctx is not None:
            options.setdefault("num_ctx", self.num_ctx)
        if options:
            body["options"] = options
        body["stream"] = stream  # always explicit: Ollama streams unless told not to
        return body

    # -- context ------------------------------------------------------------------------

    def context_for(self, request: ChatRequest) -> int | None:
        """The context ``request`` will be served with, where known.

        The request's own ``num_ctx`` (top level or in a nested ``options``), else the
        model's served context as the inventory found it (or the host's
        ``context_windows`` say), else the host's ``num_ctx``; ``None``: unknown.
        """
        own = _own_num_ctx(request)
        if own:
            return own
        known = self.context_windows.get(request.model)
        return known if known is not None else self.num_ctx

    def check_context(self, request: ChatRequest) -> None:
        """Refuse, before sending it, a request whose prompt cannot fit the served context.

        Ollama would cut the prompt's beginning off without an error. The rule: the
        prompt's *fewest* plausible tokens (:func:`fewest_prompt_tokens`) must not
        exceed the context the model is served with (:meth:`context_for`). Counting
        the fewest tokens means a prompt of ordinary text that fits is not refused for
        an estimate's sake; one a little over may still go out (Ollama then truncates
        it). The output is not counted: Ollama cuts prompts, not answers (an answer
        that reaches the end of the context stops or shifts it), and a Budget's
        reservation sends a ``max_tokens`` as large as a small window. Checked only
        where the served context is known (the request's or the host's ``num_ctx``, a
        loaded model's, a Modelfile's, the configuration's), not where Ollama's
        smallest default is only assumed (a server with more GPU memory serves more).

        Raises:
            ProviderError: ``context_window_exceeded``, naming the model, the estimate
                and the window (also in the details: ``estimated_prompt_tokens``,
                ``context_length``); it counts against no breaker.
        """
        window = self.context_for(request)
        if window is None:
            return
        if (
            self.num_ctx is None
            and not _own_num_ctx(request)
            and self._assumed.get(request.model) == window
        ):
            return  # the inventory's window, and only assumed
        tokens = fewest_prompt_tokens(request)
        if tokens <= window:
            return
        wanted = f"{tokens} prompt tokens at least (estimated)"
        raise ProviderError(
            self.failure(
                FailureKind.CONTEXT_WINDOW_EXCEEDED,
                f"{wanted} exceed the {window}-token context Ollama serves it with; not "
                "sent, as Ollama would silently drop the prompt's beginning (a host's "
                "num_ctx sets a larger context)",
                request.model,
                details={
                    "estimated_prompt_tokens": str(tokens),
                    "context_length": str(window),
                },
            )
        )

    def check_embed_context(self, request: EmbedRequest) -> None:
        """Refuse, before sending it, an embed request with an input that cannot fit.

        The rule of :meth:`check_context`, for each input alone (Ollama fits each input
        to the context on its own): its fewest plausible tokens must not exceed the
        context the model is served with, where that is known (the host's ``num_ctx``,
        a loaded model's, a Modelfile's, the configuration's; not the default only
        assumed for a model not loaded). Not checked when the request asks the server
        to truncate.

        Raises:
            ProviderError: ``context_window_exceeded`` naming the model, the first
                input that cannot fit (its index), the estimate and the window (also
                in the details: ``input_index``, ``estimated_input_tokens``,
                ``context_length``).
        """
        if request.truncate:
            return
        window = (
            self.num_ctx if self.num_ctx is not None else self.context_windows.get(request.model)
        )
        if window is None:
            return
        if self.num_ctx is None and self._assumed.get(request.model) == window:
            return  # the inventory's window, and only assumed
        for index, text in enumerate(request.inputs):
            tokens = fewest_tokens(text)
            if tokens > window:
                raise ProviderError(
                    self.failure(
                        FailureKind.CONTEXT_WINDOW_EXCEEDED,
                        f"input {index} of {len(request.inputs)} takes {tokens} tokens at "
                        f"least (estimated), over the {window}-token context Ollama serves "
                        "it with; not sent, as Ollama would embed only the input's "
                        "beginning (EmbedRequest(truncate=True) asks for that; a host's "
                        "num_ctx sets a larger context)",
                        request.model,
                        details={
                            "input_index": str(index),
                            "inputs": str(len(request.inputs)),
                            "estimated_input_tokens": str(tokens),
                            "context_length": str(window),
                        },
                    )
                )

    async def _loaded_context(self, model: str) -> int | None:
        """The context ``model`` is loaded with, as ``/api/ps`` says (``None``: unknown).

        Asked only after Ollama refused an input as too long: it loads the model before
        it looks, so the figure is the window the input was measured against.
        """
        try:
            running = await self._running()
        except ProviderError:
            return None
        for name in (model, f"{model}:latest", model.removesuffix(":latest")):
            entry = (running or {}).get(name)
            if entry is not None:
                return _int(entry.get("context_length")) or None
        return None

    def _embed_too_long(
        self, request: EmbedRequest, refused: Failure, loaded: int | None
    ) -> ProviderError:
        """Ollama's refusal of an input over the context, naming what it leaves out.

        Ollama says neither which input nor the window. The window is the one the
        model is loaded with (``loaded``, from ``/api/ps``), else the host's
        ``num_ctx``, else the inventory's; the input named is the longest by estimate
        (the only one when there is one).
        """
        estimates = [fewest_tokens(text) for text in request.inputs]
        index = max(range(len(estimates)), key=estimates.__getitem__) if estimates else 0
        window = loaded
        if window is None:
            window = (
                self.num_ctx
                if self.num_ctx is not None
                else self.context_windows.get(request.model)
            )
        details = dict(refused.details)
        details.update({"input_index": str(index), "inputs": str(len(request.inputs))})
        if estimates:
            details["estimated_input_tokens"] = str(estimates[index])
        served = "the context Ollama serves it with"
        if window is not None:
            details["context_length"] = str(window)
            served = f"the {window}-token context Ollama serves it with"
        which = (
            f"input {index} of {len(request.inputs)}"
            if len(request.inputs) == 1
            else f"input {index} of {len(request.inputs)} (the longest; Ollama names none)"
        )
        server_said = refused.message.removeprefix(f"{self.name} model {request.model!r}: ")
        why = (
            "Ollama could not cut it to fit"
            if request.truncate
            else "not truncated, as the request does not ask for it (EmbedRequest(truncate=True))"
        )
        return ProviderError(
            self.failure(
                FailureKind.CONTEXT_WINDOW_EXCEEDED,
                f"{which} does not fit {served} ({server_said}); {why}",
                request.model,
                details=details,
            )
        )

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
                _model_info(
                    name,
                    entry,
                    running,
                    shown.get(name),
                    loaded_known=running is not None,
                    num_ctx=self.num_ctx,
                )
            )
        for name, entry in (running or {}).items():
            if name not in seen:
                seen.add(name)
                models.append(
                    _model_info(name, entry, running, None, loaded_known=True, num_ctx=self.num_ctx)
                )
        # The windows only assumed (Ollama's smallest default): no reason to refuse.
        self._assumed = {
            m.id: m.context_length
            for m in models
            if m.details.get("context_source") == "default" and m.context_length
        }
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
        """Embed texts with ``/api/embed`` (one vector per input, in order).

        ``truncate`` goes explicitly, ``false`` unless the request asks for it: Ollama's
        default cuts an input longer than the served context to what fits and says
        nothing, so the vector would stand for text it never saw. An input that cannot
        fit a known context is refused before it is sent (:meth:`check_embed_context`);
        Ollama's own refusal (HTTP 400, ``the input length exceeds the context length``)
        becomes the same ``context_window_exceeded`` failure.
        """
        self.check_embed_context(request)
        body: dict[str, Any] = {
            "model": request.model,
            "input": list(request.inputs),
            "truncate": request.truncate,
        }
        if self.num_ctx is not None:
            body["options"] = {"num_ctx": self.num_ctx}
        try:
            payload = await self.request_json("POST", "/api/embed", body, model=request.model)
        except ProviderError as exc:
            if exc.failure.kind is not FailureKind.CONTEXT_WINDOW_EXCEEDED:
                raise
            window = await self._loaded_context(request.model)
            raise self._embed_too_long(request, exc.failure, window) from exc
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
        body: dict[str, Any] = {"model": model, "messages": [], "stream": False}
        if self.num_ctx is not None:  # loaded with the context requests will ask for
            body["options"] = {"num_ctx": self.num_ctx}
        await self._load_state(model, body)

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


def fewest_prompt_tokens(request: ChatRequest) -> int:
    """The fewest tokens a chat request's prompt can plausibly take (a lower estimate).

    Its text (turns, tool calls' names and arguments, the tools' schemas) at 6 ASCII
    characters or 4 other characters a token, and nothing for the chat template's
    framing. Tokenizers average 3 to 4.5 ASCII characters a token, so the real count is
    above this for any ordinary text: a request refused for it surely does not fit.
    """
    texts: list[str] = []
    for message in request.messages:
        texts.append(message.content)
        for call in message.tool_calls:
            texts.append(call.name)
            texts.append(json.dumps(call.arguments, ensure_ascii=False))
    for tool in request.tools:
        texts.extend((tool.name, tool.description))
        texts.append(json.dumps(tool.parameters, ensure_ascii=False))
    return fewest_tokens(*texts)


def fewest_tokens(*texts: str) -> int:
    """The fewest tokens ``texts`` take together, at the rates of :func:`fewest_prompt_tokens`."""
    ascii_chars = 0
    other_chars = 0
    for text in texts:
        if text.isascii():
            ascii_chars += len(text)
        else:
            wide = sum(1 for ch in text if ord(ch) >= 128)
            other_chars += wide
            ascii_chars += len(text) - wide
    return ascii_chars // _MAX_ASCII_CHARS_PER_TOKEN + other_chars // _MAX_OTHER_CHARS_PER_TOKEN


def _own_num_ctx(request: ChatRequest) -> int | None:
    """The ``num_ctx`` a request sets itself (top level or in a nested ``options``)."""
    own = request.options.get("num_ctx")
    nested = request.options.get("options")
    if isinstance(nested, Mapping) and "num_ctx" in nested:
        own = nested["num_ctx"]
    return _int(own) or None


def served_context(
    *,
    num_ctx: int | None,
    loaded: int | None,
    modelfile: int | None,
    trained: int | None,
    cloud: bool = False,
) -> tuple[int | None, str]:
    """The context a model is served with, and where that figure came from.

    ``configured`` (the host's ``num_ctx``: every request carries it, so Ollama loads
    the model with it), else ``loaded`` (``/api/ps`` says), else ``modelfile`` (its
    ``PARAMETER num_ctx``), else ``default`` (:data:`OLLAMA_DEFAULT_CONTEXT`); never
    more than ``trained`` (Ollama clamps to it). A cloud model is served with its full
    length (``trained``, ``None`` when unknown).
    """
    served: int | None
    if num_ctx is not None:
        served, source = num_ctx, "configured"
    elif loaded is not None:
        served, source = loaded, "loaded"
    elif cloud:
        served, source = trained, "cloud"
    elif modelfile is not None:
        served, source = modelfile, "modelfile"
    else:
        served, source = OLLAMA_DEFAULT_CONTEXT, "default"
    if served is not None and trained is not None and served > trained:
        served = trained
    return served, source


def _parameter(parameters: Any, name: str) -> int | None:
    """An integer ``PARAMETER`` from ``/api/show``'s ``parameters`` text (one a line)."""
    if not isinstance(parameters, str):
        return None
    for line in parameters.splitlines():
        key, _, value = line.strip().partition(" ")
        if key == name:
            try:
                number = int(value.strip())
            except ValueError:
                return None
            return number if number > 0 else None
    return None


def _model_info(
    name: str,
    entry: Mapping[str, Any],
    running: Mapping[str, Mapping[str, Any]] | None,
    shown: Mapping[str, Any] | None,
    *,
    loaded_known: bool,
    num_ctx: int | None = None,
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
    loaded_context = None
    vram_bytes = None
    if ps is not None:
        loaded_context = _int(ps.get("context_length")) or None
        vram_bytes = _int(ps.get("size_vram"))
        resident = _int(ps.get("size"))
        if resident is not None:
            details["resident_bytes"] = resident
        if isinstance(ps.get("expires_at"), str):
            details["expires_at"] = ps["expires_at"]
    capabilities = _guess_capabilities(name, details_in)
    trained = None
    modelfile = None
    if shown is not None:
        listed = shown.get("capabilities")
        if isinstance(listed, list) and listed:
            mapped = [_SHOW_CAPABILITIES[c] for c in listed if c in _SHOW_CAPABILITIES]
            capabilities = tuple(dict.fromkeys(mapped)) or capabilities
        info = shown.get("model_info")
        if isinstance(info, Mapping):
            for key, value in info.items():
                if key.endswith(".context_length") and _int(value):
                    trained = _int(value)
                    break
        modelfile = _parameter(shown.get("parameters"), "num_ctx")
    cloud = isinstance(entry.get("remote_host"), str) or name.endswith(("-cloud", ":cloud"))
    context_length, source = served_context(
        num_ctx=num_ctx, loaded=loaded_context, modelfile=modelfile, trained=trained, cloud=cloud
    )
    if context_length is not None:
        details["context_source"] = source
    if trained is not None:
        details["trained_context_length"] = trained
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
