"""The Google Gemini (Generative Language API) protocol, streamed and not.

What is particular to it:

- the key travels in ``x-goog-api-key``; the model is part of the path
  (``/v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``);
- the system prompt is ``systemInstruction``; turns are ``contents`` with roles ``user``
  and ``model``; sampling settings live in ``generationConfig``;
- tools are ``functionDeclarations`` whose arguments' JSON Schema goes in
  ``parametersJsonSchema`` (``parameters`` takes only Gemini's OpenAPI subset and
  refuses, with a 400, keywords such as ``additionalProperties`` or ``$schema`` that
  tool schemas often carry); a forced tool is ``mode: ANY`` with
  ``allowedFunctionNames``; calls come back as ``functionCall`` parts whose ``args`` is
  an object and which usually carry no id (one is synthesised); results go back as
  ``functionResponse`` parts keyed by the function's name;
- Gemini 3 puts a ``thoughtSignature`` beside a ``functionCall`` (in the same part) and
  refuses (400) a follow-up whose function-call turn lacks it: it is kept on the
  :class:`~actors.llm.ToolCall` and sent back in the same place;
- a stream is server-sent ``data:`` lines only, each a whole response chunk: text parts
  add up across chunks and the last ``usageMetadata`` counts;
- a blocked prompt is an answer with no candidates and a ``promptFeedback.blockReason``;
- errors are google.rpc bodies ``{"error": {"code", "message", "status", "details"}}``;
  a bad key is a 400 whose details say ``API_KEY_INVALID``, and a 429 may say how long
  to wait in a ``RetryInfo`` detail (``"retryDelay": "7s"``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

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
    classify_status,
    parse_arguments,
    parse_retry_after,
    synth_call_id,
)

__all__ = ["GeminiProvider"]

API_PATH = "/v1beta"
"""The API version prefix of every path."""

_CALL_ID_PREFIX = "gemini"
"""Prefix of the tool-call ids this provider synthesises (never sent back to the server)."""

_FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)

_STATUS_KINDS: dict[str, FailureKind] = {
    "INVALID_ARGUMENT": FailureKind.BAD_REQUEST,
    "FAILED_PRECONDITION": FailureKind.BAD_REQUEST,
    "OUT_OF_RANGE": FailureKind.BAD_REQUEST,
    "UNIMPLEMENTED": FailureKind.BAD_REQUEST,
    "UNAUTHENTICATED": FailureKind.AUTH,
    "PERMISSION_DENIED": FailureKind.AUTH,
    "NOT_FOUND": FailureKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": FailureKind.RATE_LIMITED,
    "CANCELLED": FailureKind.CANCELLED,
    "INTERNAL": FailureKind.SERVER_ERROR,
    "UNKNOWN": FailureKind.SERVER_ERROR,
    "ABORTED": FailureKind.SERVER_ERROR,
    "DATA_LOSS": FailureKind.SERVER_ERROR,
    "UNAVAILABLE": FailureKind.OVERLOADED,
    "DEADLINE_EXCEEDED": FailureKind.TIMEOUT,
}

_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})

_CONTEXT_HINTS = (
    "input token count",
    "exceeds the maximum number of tokens",
)


def finish_reason(raw: str | None, *, has_calls: bool) -> FinishReason:
    """The normalised finish reason for a Gemini ``finishReason``."""
    if has_calls and raw in (None, "STOP"):
        return FinishReason.TOOL_CALLS
    if raw is None or raw == "STOP":
        return FinishReason.STOP
    if raw == "MAX_TOKENS":
        return FinishReason.LENGTH
    if raw in _FILTERED:
        return FinishReason.CONTENT_FILTER
    return FinishReason.OTHER


def model_path(model: str) -> str:
    """The resource path of a model: ``models/x`` for ``x``; full names are kept."""
    return model if "/" in model else f"models/{model}"


def _merge_options(body: dict[str, Any], options: Mapping[str, Any]) -> None:
    """Merge vendor options into the body (one level deep for objects on both sides)."""
    for key, value in options.items():
        current = body.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            body[key] = {**current, **value}
        else:
            body[key] = value


def _tool_config(choice: str) -> dict[str, Any]:
    match choice:
        case "auto":
            config: dict[str, Any] = {"mode": "AUTO"}
        case "required" | "any":
            config = {"mode": "ANY"}
        case "none":
            config = {"mode": "NONE"}
        case name:
            config = {"mode": "ANY", "allowedFunctionNames": [name]}
    return {"functionCallingConfig": config}


def _result_object(content: str) -> dict[str, Any]:
    """A tool result as the object ``functionResponse.response`` must be."""
    try:
        value = json.loads(content)
    except ValueError:
        return {"result": content}
    return value if isinstance(value, dict) else {"result": value}


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    """Add a turn, merging it into the previous one when the role repeats."""
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _contents(
    messages: tuple[ChatMessage, ...],
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """``systemInstruction`` and ``contents`` for a conversation."""
    system = [m.content for m in messages if m.role == "system" and m.content]
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for message in messages:
        match message.role:
            case "system":
                continue
            case "user":
                _append(contents, "user", [{"text": message.content}])
            case "assistant":
                parts: list[dict[str, Any]] = []
                if message.content:
                    parts.append({"text": message.content})
                for call in message.tool_calls:
                    names[call.id] = call.name
                    function_call: dict[str, Any] = {"name": call.name, "args": call.arguments}
                    if not call.id.startswith(f"{_CALL_ID_PREFIX}_"):
                        function_call["id"] = call.id
                    part: dict[str, Any] = {"functionCall": function_call}
                    if call.signature is not None:
                        part["thoughtSignature"] = call.signature  # back as it came
                    parts.append(part)
                _append(contents, "model", parts)  # an empty turn is left out
            case "tool":
                call_id = message.tool_call_id or ""
                response: dict[str, Any] = {
                    "name": message.name or names.get(call_id, ""),
                    "response": _result_object(message.content),
                }
                if call_id and not call_id.startswith(f"{_CALL_ID_PREFIX}_"):
                    response["id"] = call_id
                _append(contents, "user", [{"functionResponse": response}])
    instruction = {"parts": [{"text": "\n\n".join(system)}]} if system else None
    return instruction, contents


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def output_tokens(usage: Mapping[str, Any]) -> int:
    """The output tokens of a ``usageMetadata``: the answer's and the thoughts'.

    Gemini counts a thinking model's thoughts apart (``thoughtsTokenCount``, not in
    ``candidatesTokenCount``; ``totalTokenCount`` adds both), and bills them as output.
    Other protocols' output counts already include reasoning (OpenAI's
    ``completion_tokens``, Anthropic's ``output_tokens``), so this one does too.
    """
    return _int(usage.get("candidatesTokenCount")) + _int(usage.get("thoughtsTokenCount"))


@dataclass
class _Answer:
    """What the chunks of an answer (one, or a stream's) have said so far."""

    model: str
    text: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: list[tuple[str | None, str, Any, str | None]] = field(default_factory=list)
    """(id, name, args, thoughtSignature) of each function call."""
    finish: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    response_id: str = ""
    safety: Any = None
    chunks: int = 0


class GeminiProvider(Provider):
    """The Gemini API (``generativelanguage.googleapis.com`` or anything that mimics it).

    ``models_page_size`` is the ``pageSize`` of each ``GET /v1beta/models`` page.
    """

    protocol: ClassVar[str] = "gemini"
    lists_every_model: ClassVar[bool] = False
    models_page_size: int = 1000

    def auth_headers(self) -> dict[str, str]:
        """``x-goog-api-key``, when a key is set."""
        return {"x-goog-api-key": self.api_key} if self.api_key else {}

    # -- requests -----------------------------------------------------------------------

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The wire body for a chat request."""
        instruction, contents = _contents(request.messages)
        body: dict[str, Any] = {"contents": contents}
        if instruction is not None:
            body["systemInstruction"] = instruction
        if request.tools:
            body["tools"] = [
                {
                    "functionDeclarations": [
                        {
                            "name": tool.name,
                            **({"description": tool.description} if tool.description else {}),
                            "parametersJsonSchema": tool.parameters,
                        }
                        for tool in request.tools
                    ]
                }
            ]
        if request.tool_choice is not None:
            body["toolConfig"] = _tool_config(request.tool_choice)
        config: dict[str, Any] = {}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        if request.stop:
            config["stopSequences"] = list(request.stop)
        if config:
            body["generationConfig"] = config
        _merge_options(body, request.options)
        return body

    async def count_tokens(self, request: ChatRequest) -> tuple[int, str]:
        """``POST models/{m}:countTokens``: the prompt's ``totalTokens``.

        The contents alone when that is all the request has; with a system instruction
        or tools, the whole ``generateContentRequest`` (so that they are counted too).
        """
        full = self.body(request)
        full.pop("generationConfig", None)
        target = model_path(request.model)
        body: dict[str, Any] = (
            {"contents": full["contents"]}
            if full.keys() == {"contents"}
            else {"generateContentRequest": {"model": target, **full}}
        )
        path = f"{API_PATH}/{target}:countTokens"
        payload = await self.request_json("POST", path, body, model=request.model)
        return self.count_from(payload, "totalTokens", ":countTokens", request.model), path

    async def chat(self, request: ChatRequest) -> Completion:
        """One answer from ``:generateContent``."""
        started = time.perf_counter()
        payload = await self.request_json(
            "POST",
            f"{API_PATH}/{model_path(request.model)}:generateContent",
            self.body(request),
            model=request.model,
        )
        latency = time.perf_counter() - started
        answer = _Answer(model=request.model)
        self._fold(payload, answer, request.model, None)
        return self._completion(answer, request, latency=latency)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream ``:streamGenerateContent?alt=sse``: text deltas, then the whole answer."""
        model = request.model
        progress = StreamProgress()
        answer = _Answer(model=model)
        async with self.open_stream(
            f"{API_PATH}/{model_path(model)}:streamGenerateContent",
            self.body(request),
            model=model,
            params={"alt": "sse"},
        ) as response:
            async for sse in self.iter_sse(response, progress, model):
                data = self.parse_stream_json(sse.data, progress, model)
                if isinstance(data, dict) and "error" in data:
                    raise self.stream_error(data, progress, model)
                before = len(answer.text)
                self._fold(data, answer, model, progress)
                piece = "".join(answer.text[before:])
                if piece:
                    progress.text(piece)
                    yield TextDelta(text=piece)
        if answer.finish is None:
            raise ProviderError(
                self.failure(
                    FailureKind.CONNECTION,
                    f"stream ended without a finish reason {progress.describe()}",
                    model,
                    details=progress.details(),
                )
            )
        finished = time.perf_counter()
        output = output_tokens(answer.usage)
        tokens_per_s = None
        if progress.first_token_at is not None and output:
            elapsed = finished - progress.first_token_at
            if elapsed > 0:
                tokens_per_s = output / elapsed
        yield self._completion(
            answer,
            request,
            latency=finished - progress.started,
            ttft_s=progress.ttft_s,
            tokens_per_s=tokens_per_s,
        )

    def _fold(
        self, payload: Any, answer: _Answer, model: str, progress: StreamProgress | None
    ) -> None:
        """Add one response (or stream chunk) to the answer."""
        if not isinstance(payload, dict):
            raise self._invalid(f"answer is not an object: {str(payload)[:200]!r}", model, progress)
        answer.chunks += 1
        if isinstance(payload.get("usageMetadata"), dict):
            answer.usage = payload["usageMetadata"]
        if isinstance(payload.get("modelVersion"), str):
            answer.model = payload["modelVersion"]
        if isinstance(payload.get("responseId"), str):
            answer.response_id = payload["responseId"]
        candidates = payload.get("candidates")
        if not candidates:
            feedback = payload.get("promptFeedback")
            reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
            if reason:
                details = {"block_reason": str(reason)}
                if progress is not None:
                    details.update(progress.details())
                raise ProviderError(
                    self.failure(
                        FailureKind.CONTENT_POLICY,
                        f"the prompt was blocked ({reason})",
                        model,
                        details=details,
                    )
                )
            if progress is None:
                raise self._invalid("answer has no candidates", model, progress)
            return  # a stream chunk with only usage
        candidate = candidates[0] if isinstance(candidates, list) else None
        if not isinstance(candidate, dict):
            raise self._invalid(f"candidate is not an object: {candidate!r}", model, progress)
        if candidate.get("finishReason"):
            answer.finish = str(candidate["finishReason"])
        if candidate.get("safetyRatings"):
            answer.safety = candidate["safetyRatings"]
        self._fold_parts(candidate.get("content"), answer, progress)

    @staticmethod
    def _fold_parts(content: Any, answer: _Answer, progress: StreamProgress | None) -> None:
        """Add a candidate's text, thought and function-call parts to the answer."""
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                (answer.thoughts if part.get("thought") else answer.text).append(part["text"])
            call = part.get("functionCall")
            if isinstance(call, dict):
                call_id = call.get("id")
                signature = part.get("thoughtSignature")
                answer.calls.append(
                    (
                        call_id if isinstance(call_id, str) and call_id else None,
                        str(call.get("name") or ""),
                        call.get("args"),
                        signature if isinstance(signature, str) and signature else None,
                    )
                )
                if progress is not None:
                    progress.tool_calls += 1

    def _completion(
        self,
        answer: _Answer,
        request: ChatRequest,
        *,
        latency: float,
        ttft_s: float | None = None,
        tokens_per_s: float | None = None,
    ) -> Completion:
        calls = tuple(
            ToolCall(
                id=call_id or synth_call_id(_CALL_ID_PREFIX, index, request.request_id),
                name=name,
                arguments=parse_arguments(args, provider=self, model=request.model, tool=name),
                signature=signature,
            )
            for index, (call_id, name, args, signature) in enumerate(answer.calls)
        )
        usage = answer.usage
        extras: dict[str, Any] = {"raw_finish_reason": answer.finish}
        for key, extra in (
            ("thoughtsTokenCount", "thoughts_tokens"),
            ("cachedContentTokenCount", "cached_tokens"),
            ("toolUsePromptTokenCount", "tool_use_prompt_tokens"),
        ):
            if isinstance(usage.get(key), int):
                extras[extra] = usage[key]
        if answer.response_id:
            extras["response_id"] = answer.response_id
        if answer.thoughts:
            extras["thinking"] = "".join(answer.thoughts)
        if answer.safety and answer.finish in _FILTERED:
            extras["safety_ratings"] = answer.safety
        return Completion(
            model=answer.model,
            provider=self.protocol,
            content="".join(answer.text),
            tool_calls=calls,
            finish_reason=finish_reason(answer.finish, has_calls=bool(calls)),
            usage=Usage(
                input_tokens=_int(usage.get("promptTokenCount")),
                output_tokens=output_tokens(usage),
            ),
            request_id=request.request_id,
            latency_s=latency,
            ttft_s=ttft_s,
            tokens_per_s=tokens_per_s,
            extras=extras,
        )

    def _invalid(self, what: str, model: str, progress: StreamProgress | None) -> ProviderError:
        where = "" if progress is None else f" {progress.describe()}"
        return ProviderError(
            self.failure(
                FailureKind.INVALID_RESPONSE,
                f"{what}{where}",
                model,
                details=None if progress is None else progress.details(),
            )
        )

    # -- embeddings and models ----------------------------------------------------------

    async def embed(self, request: EmbedRequest) -> Embeddings:
        """Vectors from ``:batchEmbedContents``, one request for every input."""
        if not request.inputs:
            return Embeddings(model=request.model, provider=self.protocol, vectors=())
        path = model_path(request.model)
        body = {
            "requests": [
                {"model": path, "content": {"parts": [{"text": text}]}} for text in request.inputs
            ]
        }
        payload = await self.request_json(
            "POST", f"{API_PATH}/{path}:batchEmbedContents", body, model=request.model
        )
        embeddings = payload.get("embeddings") if isinstance(payload, dict) else None
        vectors: list[tuple[float, ...]] = []
        for entry in embeddings if isinstance(embeddings, list) else ():
            values = entry.get("values") if isinstance(entry, dict) else None
            if not isinstance(values, list):
                break
            vectors.append(tuple(float(v) for v in values))
        if embeddings is None or len(vectors) != len(request.inputs):
            raise ProviderError(
                self.failure(
                    FailureKind.INVALID_RESPONSE,
                    f"asked for {len(request.inputs)} embeddings, got an answer with "
                    f"{len(vectors)} usable: {str(payload)[:200]!r}",
                    request.model,
                )
            )
        return Embeddings(model=request.model, provider=self.protocol, vectors=tuple(vectors))

    async def list_models(self) -> list[ModelInfo]:
        """Every model ``GET /v1beta/models`` lists, following ``nextPageToken``."""
        models: list[ModelInfo] = []
        params = {"pageSize": str(self.models_page_size)}
        for _ in range(100):  # a bound against a server that always has a next page
            payload = await self.request_json("GET", f"{API_PATH}/models", params=params)
            entries = payload.get("models", []) if isinstance(payload, dict) else None
            if not isinstance(entries, list):
                raise ProviderError(
                    self.failure(
                        FailureKind.INVALID_RESPONSE,
                        f"GET {API_PATH}/models answered without a models list: "
                        f"{str(payload)[:200]!r}",
                    )
                )
            models.extend(_model_info(entry) for entry in entries if isinstance(entry, dict))
            token = payload.get("nextPageToken")
            if not isinstance(token, str) or not token:
                break
            params = {"pageSize": str(self.models_page_size), "pageToken": token}
        return models

    # -- errors -------------------------------------------------------------------------

    def classify(self, status: int, etype: str, code: str, message: str) -> FailureKind:
        """The failure kind from the google.rpc ``status`` and wording Gemini sends."""
        low = message.lower()
        if code in _AUTH_REASONS or ("api key" in low and "not valid" in low):
            return FailureKind.AUTH
        if any(hint in low for hint in _CONTEXT_HINTS):
            return FailureKind.CONTEXT_WINDOW_EXCEEDED
        kind = _STATUS_KINDS.get(etype)
        shared = classify_status(status, etype, code, message)
        if kind is None or shared is FailureKind.CONTEXT_WINDOW_EXCEEDED:
            return shared
        if kind is FailureKind.BAD_REQUEST and shared is FailureKind.CONTENT_POLICY:
            return shared
        # RESOURCE_EXHAUSTED stays a rate limit even when it mentions "billing details".
        return kind

    def error_from_response(
        self, status: int, headers: Mapping[str, str], body: bytes, model: str | None
    ) -> Failure:
        """Map a google.rpc error body: status, ``ErrorInfo`` reason, ``RetryInfo`` delay."""
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(payload, list) and payload and isinstance(payload[0], dict):
            error = payload[0].get("error")  # some proxies wrap the body in a list
        if not isinstance(error, dict):
            return super().error_from_response(status, headers, body, model)
        message = str(error.get("message") or f"HTTP {status}")
        rpc_status = str(error.get("status") or "")
        reason = ""
        retry_after = parse_retry_after(headers)
        for detail in error.get("details") or ():
            if not isinstance(detail, dict):
                continue
            kind = str(detail.get("@type") or "")
            if kind.endswith("google.rpc.ErrorInfo") and isinstance(detail.get("reason"), str):
                reason = detail["reason"]
            elif kind.endswith("google.rpc.RetryInfo") and retry_after is None:
                retry_after = _duration(detail.get("retryDelay"))
        details = {"status": str(status)}
        if rpc_status:
            details["error_type"] = rpc_status
        if reason:
            details["error_code"] = reason
        return self.failure(
            self.classify(status, rpc_status, reason, message),
            f"HTTP {status}: {message}",
            model,
            retry_after=retry_after,
            details=details,
        )


def _duration(raw: Any) -> float | None:
    """Seconds from a protobuf duration (``"7s"``, ``"1.5s"``) or ``{"seconds", "nanos"}``."""
    if isinstance(raw, str) and raw.endswith("s"):
        try:
            return max(0.0, float(raw[:-1]))
        except ValueError:
            return None
    if isinstance(raw, dict):
        seconds = raw.get("seconds", 0)
        nanos = raw.get("nanos", 0)
        try:
            return max(0.0, float(seconds) + float(nanos) / 1e9)
        except (TypeError, ValueError):
            return None
    return None


def _model_info(entry: Mapping[str, Any]) -> ModelInfo:
    name = str(entry.get("name") or "")
    methods = entry.get("supportedGenerationMethods")
    methods = [str(m) for m in methods] if isinstance(methods, list) else []
    capabilities: list[str] = []
    if "generateContent" in methods or "streamGenerateContent" in methods:
        capabilities += ["chat", "tools"]
    if "embedContent" in methods or "batchEmbedContents" in methods:
        capabilities.append("embeddings")
    details = {
        key: entry[key]
        for key in (
            "displayName",
            "description",
            "version",
            "outputTokenLimit",
            "supportedGenerationMethods",
            "thinking",
        )
        if entry.get(key) is not None
    }
    limit = entry.get("inputTokenLimit")
    return ModelInfo(
        id=name.removeprefix("models/"),
        loaded=None,
        context_length=limit if isinstance(limit, int) else None,
        capabilities=tuple(capabilities),
        details=details,
    )
