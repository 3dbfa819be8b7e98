"""OpenAI-compatible chat completions, and LM Studio's own REST API on top of them.

:class:`OpenAIProvider` speaks the Chat Completions dialect that OpenAI, LM Studio,
llama.cpp's server, vLLM and Ollama's ``/v1`` share: ``POST /v1/chat/completions``
(plain, or streamed as ``data:`` lines ending with ``data: [DONE]``), ``/v1/embeddings``
and ``/v1/models``. It reads the vendor extras those servers add (llama.cpp's
``timings``, ``reasoning_content``) and every error body they send (OpenAI's
``{"error": {...}}``, llama.cpp's integer codes, older vLLM's flat ``{"object": "error"}``,
an error object in the middle of a stream). A llama.cpp server in router mode lists every
model with its ``status`` and loads and unloads them on request (``/models/load``,
``/models/unload``).

:class:`LMStudioProvider` streams through the same ``/v1`` routes but asks for plain
answers through LM Studio's ``/api/v0`` REST API, which adds ``stats`` (tokens per second,
time to first token); it lists models from ``/api/v0/models`` (load state, context
length) enriched by ``/api/v1/models`` where the server has it (loaded instances, size,
tool use, vision), and loads and unloads models through ``/api/v1``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import re
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

import httpx
import msgspec
import structlog

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
    ToolSpec,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
)
from actors.llm.providers._base import (
    Provider,
    ProviderError,
    StreamEvent,
    StreamProgress,
    Timeouts,
    _error_fields,
    parse_arguments,
    synth_call_id,
)

__all__ = ["LMStudioProvider", "OpenAIProvider"]

_FINISH: dict[str, FinishReason] = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}

_TIMING_KEYS = (
    "cache_n",
    "prompt_n",
    "prompt_ms",
    "prompt_per_token_ms",
    "prompt_per_second",
    "predicted_n",
    "predicted_ms",
    "predicted_per_token_ms",
    "predicted_per_second",
)

_DEFAULT_TIMEOUTS = Timeouts()

_STRING_TOOL_CHOICE = frozenset({"llamacpp"})
"""Servers that accept ``tool_choice`` only as a string (``auto``/``none``/``required``)."""

_RETRY_IN_MESSAGE = re.compile(r"try again in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)

_log = structlog.get_logger("actors.llm.providers")

# -- parameters a model refuses ------------------------------------------------------------
#
# OpenAI's reasoning models (o1, o3, o4-mini, the GPT-5 family) answer a Chat Completions
# request that carries a sampling parameter they do not take with HTTP 400, an
# ``invalid_request_error`` whose ``param`` names the field and whose ``code`` says why:
# ``unsupported_value`` for a value other than the default (``temperature`` of 0.2 where
# only 1 is allowed), ``unsupported_parameter`` for a field they take in no form
# (``stop``, the penalties, ``logprobs``, ``max_tokens``). Azure's deployments of them
# answer the same. Such a field is dropped and the request sent again; the provider
# remembers the refusal per model, so later requests leave the field out at once.

_REFUSAL_CODES = frozenset({"unsupported_parameter", "unsupported_value"})
"""The error codes that say "this model takes no such field (or no such value)"."""

_SAMPLING_FIELDS = frozenset(
    {
        "temperature",
        "top_p",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "parallel_tool_calls",
    }
)
"""Optional fields that tune how a model samples: a request without one still asks the
same question. A field that ``request.options`` added may be dropped as well."""

_KEPT_FIELDS = frozenset(
    {"model", "messages", "tools", "tool_choice", "response_format", "stream", "stream_options"}
)
"""Fields never dropped, whatever the server says: without them it is another request."""

_COUPLED_FIELDS: dict[str, tuple[str, ...]] = {"logprobs": ("top_logprobs",)}
"""Fields that mean nothing without another: ``top_logprobs`` needs ``logprobs``."""

_DEFAULT_VALUES: dict[str, float] = {"temperature": 1.0, "top_p": 1.0}
"""The only value a model that refuses others (``unsupported_value``) accepts; a request
that asks for it anyway loses nothing when it is left out, so it is sent as it is."""

MAX_REFUSAL_RETRIES = 3
"""How many times one request is sent again, one refused field fewer each time."""

T = TypeVar("T")

_NO_ROUTE = object()
"""LM Studio's answer had no ``/api/v0`` route: the request goes to ``/v1`` instead."""

_NOTHING: Mapping[str, str] = MappingProxyType({})
_TEMPERATURE_AND_TOP_P: Mapping[str, str] = MappingProxyType(
    {"temperature": "unsupported_value", "top_p": "unsupported_value"}
)
_AND_STOP: Mapping[str, str] = MappingProxyType(
    {**_TEMPERATURE_AND_TOP_P, "stop": "unsupported_parameter"}
)

REASONING_FAMILIES: tuple[tuple[str, Mapping[str, str]], ...] = (
    ("gpt-5-chat", _NOTHING),
    ("gpt-5", _AND_STOP),
    ("o4-mini", _AND_STOP),
    ("o3-mini", _TEMPERATURE_AND_TOP_P),
    ("o3", _AND_STOP),
    ("o1-mini", _TEMPERATURE_AND_TOP_P),
    ("o1-preview", _AND_STOP),
    ("o1", _TEMPERATURE_AND_TOP_P),
)
"""What OpenAI's own API (``api.openai.com``) refuses of its reasoning models, by model
name prefix (the first that matches, at a ``-`` or ``.`` or the name's end), as field ->
the error code it would answer: ``temperature`` and ``top_p`` other than 1, and ``stop``
where the family is known to refuse it. These are left out of the first request rather
than learnt from a failed one. ``gpt-5-chat`` is a chat model that samples as asked. A
request that sets ``reasoning_effort`` to ``"none"`` (GPT-5.1 and later take sampling
parameters then) gets no such treatment; anything the table misses is learnt from the
server's answer."""


@functools.lru_cache(maxsize=256)
def reasoning_refusals(model: str) -> Mapping[str, str]:
    """What OpenAI refuses of ``model`` by :data:`REASONING_FAMILIES` (empty: nothing known)."""
    name = model.rsplit("/", 1)[-1].lower()
    for prefix, refused in REASONING_FAMILIES:
        if name.startswith(prefix) and (len(name) == len(prefix) or name[len(prefix)] in "-."):
            return refused
    return _NOTHING


def finish_reason(raw: Any, *, has_tool_calls: bool, refused: bool = False) -> FinishReason:
    """Normalise an OpenAI-style ``finish_reason``.

    A refusal is a content filter whatever the raw value says; tool calls that some
    servers (older Ollama ``/v1``, vLLM) close with ``stop`` count as ``tool_calls``.
    """
    if refused:
        return FinishReason.CONTENT_FILTER
    if raw is None or raw == "":
        return FinishReason.TOOL_CALLS if has_tool_calls else FinishReason.STOP
    reason = _FINISH.get(str(raw), FinishReason.OTHER)
    if reason is FinishReason.STOP and has_tool_calls:
        return FinishReason.TOOL_CALLS
    return reason


def _text_of(content: Any) -> str:
    """Message content as text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _int(value: Any) -> int:
    """An integer count from the wire (0 for anything else)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


def _float(value: Any) -> float | None:
    """A number from the wire, or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(slots=True)
class _ToolSlot:
    """A streamed tool call being put together from its fragments."""

    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _StreamState:
    """Everything a stream has said so far, for the final completion."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tools: dict[int, _ToolSlot] = field(default_factory=dict)
    finish: Any = None
    finished: bool = False
    done: bool = False
    chunks: int = 0
    usage: Any = None
    timings: Any = None
    model: str | None = None
    response_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class OpenAIProvider(Provider):
    """OpenAI-compatible Chat Completions (OpenAI, LM Studio, llama.cpp, vLLM, Ollama /v1).

    ``base_url`` is the server's root (``http://127.0.0.1:8080``); a trailing ``/v1`` is
    accepted and dropped, since the provider adds it to each path.
    """

    protocol = "openai"
    api_prefix = "/v1"
    """Where the OpenAI-compatible routes live."""

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts = _DEFAULT_TIMEOUTS,
        name: str | None = None,
        server: str | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        root = root.removesuffix(self.api_prefix)
        super().__init__(
            root,
            client=client,
            api_key=api_key,
            headers=headers,
            timeouts=timeouts,
            name=name,
            server=server,
        )
        self._at_openai = "api.openai.com" in self.base_url
        self._refused: dict[str, dict[str, str]] = {}
        """Fields each model refused here (field -> the server's error code): learnt from
        its answers, left out of every later request to it."""
        self._warned: set[tuple[str, str]] = set()  # (model, field) pairs logged

    # -- request bodies -----------------------------------------------------------------

    def wire_message(self, message: ChatMessage) -> dict[str, Any]:
        """One turn in the Chat Completions shape."""
        if message.role == "tool":
            turn: dict[str, Any] = {"role": "tool", "content": message.content}
            if message.tool_call_id is not None:
                turn["tool_call_id"] = message.tool_call_id
            return turn
        if message.role == "assistant" and message.tool_calls:
            # "content" is a string even when empty: OpenAI accepts "" or null, but
            # llama-cpp-python rejects null (HTTP 500, a pydantic validation error).
            return {
                "role": "assistant",
                "content": message.content,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                    for call in message.tool_calls
                ],
            }
        return {"role": message.role, "content": message.content}

    @staticmethod
    def wire_tool(tool: ToolSpec) -> dict[str, Any]:
        """A tool definition in the ``{"type": "function", ...}`` shape."""
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
        if tool.description:
            function["description"] = tool.description
        return {"type": "function", "function": function}

    @staticmethod
    def wire_tool_choice(choice: str) -> Any:
        """``auto`` / ``none`` / ``required`` as they are; a tool's name forces that tool."""
        if choice in ("auto", "none", "required"):
            return choice
        return {"type": "function", "function": {"name": choice}}

    def tool_fields(self, request: ChatRequest) -> dict[str, Any]:
        """``tools`` and ``tool_choice`` in the form this server accepts.

        llama.cpp's ``llama-server`` takes only the string forms of ``tool_choice``: it
        ignores the object form that names a tool (it logs a warning and answers with
        text). So for it a named tool is forced as ``"required"`` with only that tool
        offered, which leaves the model no other choice.
        """
        fields: dict[str, Any] = {}
        tools = request.tools
        choice = request.tool_choice
        if choice is not None and request.forced_tool and choice != "required":
            named = tuple(t for t in tools if t.name == choice)
            if self.server in _STRING_TOOL_CHOICE and named:
                tools, choice = named, "required"
        if tools:
            fields["tools"] = [self.wire_tool(t) for t in tools]
        if choice is not None:
            fields["tool_choice"] = self.wire_tool_choice(choice)
        return fields

    @property
    def openai_itself(self) -> bool:
        """Whether the server is OpenAI's own API (configured so, or ``api.openai.com``)."""
        return self._at_openai or self.server == "openai"

    @property
    def output_limit_field(self) -> str:
        """The field that carries the output token limit to this server.

        OpenAI itself takes ``max_completion_tokens`` on every chat model and refuses
        the deprecated ``max_tokens`` on its reasoning models (o-series, GPT-5: HTTP 400
        ``unsupported_parameter``); the other servers of the protocol read ``max_tokens``
        (one that refuses it for a model gets ``max_completion_tokens`` from then on).
        """
        if self._at_openai or self.server == "openai":
            return "max_completion_tokens"
        return "max_tokens"

    def refusals(self, request: ChatRequest) -> Mapping[str, str] | None:
        """The fields ``request.model`` is known to refuse here, as field -> error code.

        Those the server refused before, and on OpenAI's own API those
        :data:`REASONING_FAMILIES` lists for the model (unless the request sets
        ``reasoning_effort`` to ``"none"``); ``None`` when there are none.
        """
        learnt = self._refused.get(request.model)
        if not self.openai_itself or request.options.get("reasoning_effort") == "none":
            return learnt
        known = reasoning_refusals(request.model)
        if not learnt:
            return known
        return {**known, **learnt}

    def prepared(
        self, request: ChatRequest, *, stream: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The body to send, and the fields left out of it as the model refuses them.

        :meth:`chat_body` less what :meth:`refusals` names (a refused ``max_tokens``
        goes as ``max_completion_tokens`` instead); the second value maps each field
        left out to the value the request asked for (see :meth:`noted`).
        """
        body = self.chat_body(request, stream=stream)
        dropped: dict[str, Any] = {}
        if not self._refused and not self._at_openai and self.server != "openai":
            return body, dropped  # nothing known to be refused: the usual case
        refused = self.refusals(request)
        if refused:
            for name, code in refused.items():
                if name in body:
                    self._leave_out(body, name, code, request.model, dropped)
        return body, dropped

    def _leave_out(
        self,
        body: dict[str, Any],
        name: str,
        code: str,
        model: str,
        dropped: dict[str, Any],
        *,
        keep_default: bool = True,
    ) -> None:
        """Take a refused field out of ``body``, recording it in ``dropped``.

        A refused ``max_tokens`` is renamed ``max_completion_tokens`` (the limit still
        applies); a field whose only accepted value is the one asked for stays (unless
        ``keep_default`` is off: the server refused even that); a field that means
        nothing without this one goes with it.
        """
        if name == "max_tokens":
            body["max_completion_tokens"] = body.pop(name)
            return
        value = body[name]
        default = _DEFAULT_VALUES.get(name)
        if (
            keep_default
            and code == "unsupported_value"
            and default is not None
            and not isinstance(value, bool)
            and value == default
        ):
            return
        dropped[name] = body.pop(name)
        for other in _COUPLED_FIELDS.get(name, ()):
            if other in body:
                dropped[other] = body.pop(other)
        self._warn_once(model, name, code, "")

    def _warn_once(self, model: str, name: str, code: str, said: str) -> None:
        """One warning per model and field: its requests go without that field."""
        if (model, name) in self._warned:
            return
        self._warned.add((model, name))
        _log.warning(
            "the model refuses a request field; its requests go without it",
            host=self.name,
            model=model,
            param=name,
            code=code,
            server_said=said or "(not asked: known for this model)",
        )

    def _without_refused(
        self,
        failure: Failure,
        body: dict[str, Any],
        request: ChatRequest,
        dropped: dict[str, Any],
    ) -> bool:
        """Whether ``failure`` refuses a field the request can go without.

        It must be an HTTP 400 ``unsupported_parameter`` or ``unsupported_value`` whose
        ``param`` is in ``body``: a sampling field, a field ``request.options`` added,
        or ``max_tokens`` (never ``model``, ``messages``, ``tools``, ``response_format``
        and the like). Then the field is out of ``body`` (recorded in ``dropped``) and
        remembered for the model, and the caller sends ``body`` again.
        """
        if failure.kind is not FailureKind.BAD_REQUEST:
            return False
        code = failure.details.get("error_code", "")
        name = failure.details.get("error_param", "")
        if code not in _REFUSAL_CODES or name not in body or name in _KEPT_FIELDS:
            return False
        if name != "max_tokens" and name not in _SAMPLING_FIELDS and name not in request.options:
            return False
        known = self._refused.get(request.model, {})
        self._refused[request.model] = {**known, name: code}
        self._warn_once(request.model, name, code, failure.message)
        self._leave_out(body, name, code, request.model, dropped, keep_default=False)
        return True

    @staticmethod
    def noted(completion: Completion, dropped: dict[str, Any]) -> Completion:
        """The completion, saying which requested fields were not applied.

        ``extras["dropped_params"]`` maps each to the value asked for, and a warning
        per field says the model refused it, so a caller that asked for a temperature
        knows its answer was sampled at the model's default.
        """
        if not dropped:
            return completion
        warnings = tuple(
            f"{name}={value!r} was not applied: the model refuses it, so the request "
            "was sent without it"
            for name, value in dropped.items()
        )
        return msgspec.structs.replace(
            completion,
            extras={**completion.extras, "dropped_params": dict(dropped)},
            warnings=(*completion.warnings, *warnings),
        )

    def chat_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The wire body for a chat request (``request.options`` merged in last)."""
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [self.wire_message(m) for m in request.messages],
        }
        body.update(self.tool_fields(request))
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body[self.output_limit_field] = request.max_tokens
        if request.stop:
            body["stop"] = list(request.stop)
        body["stream"] = stream
        if stream:
            body["stream_options"] = {"include_usage": True}
        body.update(request.options)
        return body

    # -- answers ------------------------------------------------------------------------

    def invalid(self, message: str, model: str | None, **details: str) -> ProviderError:
        """An ``invalid_response`` error: the server answered something we cannot read."""
        return ProviderError(
            self.failure(FailureKind.INVALID_RESPONSE, message, model, details=details)
        )

    def error_in_body(self, payload: Any, model: str | None) -> ProviderError:
        """An error object in a successful (HTTP 200) answer."""
        error = payload.get("error") if isinstance(payload, dict) else None
        message, etype, code = _error_fields(payload)
        status = self._status_of(error)
        kind = self.classify(status, etype, code, message)
        if "unexpected endpoint" in message.lower():
            kind = FailureKind.BAD_REQUEST  # LM Studio's 200 answer to a route it lacks
        details = {"error_type": etype} if etype else {}
        if code:
            details["error_code"] = code
        return ProviderError(
            self.failure(
                kind, f"answered with an error: {message or payload!r:.200}", model, details=details
            )
        )

    def parse_tool_calls(self, raw: Any, legacy: Any, request: ChatRequest) -> tuple[ToolCall, ...]:
        """The ``tool_calls`` of a message (or its legacy ``function_call``), parsed."""
        items: list[Any]
        if raw is None or raw == []:
            if not isinstance(legacy, dict):
                return ()
            items = [{"function": legacy}]
        elif isinstance(raw, list):
            items = raw
        else:
            raise self.invalid(f"tool_calls is not a list: {raw!r:.200}", request.model)
        calls: list[ToolCall] = []
        for index, item in enumerate(items):
            function = item.get("function") if isinstance(item, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(function, dict) or not isinstance(name, str) or not name:
                raise self.invalid(f"malformed tool call: {item!r:.200}", request.model)
            arguments = parse_arguments(
                function.get("arguments"), provider=self, model=request.model, tool=name
            )
            call_id = item.get("id")
            if not isinstance(call_id, str) or not call_id:
                call_id = synth_call_id("call", index, request.request_id)
            calls.append(ToolCall(id=call_id, name=name, arguments=arguments))
        return tuple(calls)

    @staticmethod
    def parse_usage(raw: Any, extras: dict[str, Any]) -> Usage:
        """``usage`` as :class:`Usage`; cached and reasoning token counts go to extras."""
        if not isinstance(raw, dict):
            return Usage()
        prompt_details = raw.get("prompt_tokens_details")
        if isinstance(prompt_details, dict) and prompt_details.get("cached_tokens") is not None:
            extras["cached_tokens"] = _int(prompt_details["cached_tokens"])
        output_details = raw.get("completion_tokens_details")
        if isinstance(output_details, dict) and output_details.get("reasoning_tokens"):
            extras["reasoning_tokens"] = _int(output_details["reasoning_tokens"])
        return Usage(
            input_tokens=_int(raw.get("prompt_tokens")),
            output_tokens=_int(raw.get("completion_tokens")),
        )

    def read_stats(self, payload: dict[str, Any], fields: dict[str, Any]) -> None:
        """Fill ``ttft_s``, ``tokens_per_s`` and extras from server-reported timings.

        llama.cpp's ``timings``: ``predicted_per_second`` is the output rate and
        ``prompt_ms`` the prompt processing time (the server-side time to first token);
        every figure is also copied into the extras under its own name.
        """
        timings = payload.get("timings")
        if not isinstance(timings, dict):
            return
        extras: dict[str, Any] = fields["extras"]
        for key in _TIMING_KEYS:
            if key in timings and _float(timings[key]) is not None:
                extras[key] = timings[key]
        rate = _float(timings.get("predicted_per_second"))
        if rate is not None and rate > 0:
            fields["tokens_per_s"] = rate
        prompt_ms = _float(timings.get("prompt_ms"))
        if prompt_ms is not None and fields.get("ttft_s") is None:
            fields["ttft_s"] = prompt_ms / 1000.0

    def completion_from(
        self, payload: Any, request: ChatRequest, *, latency_s: float
    ) -> Completion:
        """A non-streamed answer as a :class:`Completion`."""
        if not isinstance(payload, dict):
            raise self.invalid(f"answer is not a JSON object: {payload!r:.200}", request.model)
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices:
            if "error" in payload:
                raise self.error_in_body(payload, request.model)
            raise self.invalid(f"answer has no choices: {payload!r:.200}", request.model)
        choice = choices[0]
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise self.invalid(f"answer has no message: {choice!r:.200}", request.model)
        tool_calls = self.parse_tool_calls(
            message.get("tool_calls"), message.get("function_call"), request
        )
        raw_finish = choice.get("finish_reason")
        refusal = message.get("refusal")
        extras: dict[str, Any] = {"raw_finish_reason": raw_finish}
        if isinstance(refusal, str) and refusal:
            extras["refusal"] = refusal
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            extras["reasoning"] = reasoning
        if isinstance(payload.get("id"), str):
            extras["response_id"] = payload["id"]
        _backend_extras(payload, extras)
        model = payload.get("model")
        fields: dict[str, Any] = {
            "model": model if isinstance(model, str) and model else request.model,
            "provider": self.protocol,
            "content": _text_of(message.get("content")),
            "tool_calls": tool_calls,
            "finish_reason": finish_reason(
                raw_finish, has_tool_calls=bool(tool_calls), refused="refusal" in extras
            ),
            "usage": self.parse_usage(payload.get("usage"), extras),
            "request_id": request.request_id,
            "latency_s": latency_s,
            "extras": extras,
        }
        self.read_stats(payload, fields)
        return Completion(**fields)

    async def count_tokens(self, request: ChatRequest) -> tuple[int, str]:
        """The prompt's tokens where the server has a route for it.

        llama.cpp's ``llama-server``: the chat template applied (``POST /apply-template``),
        then ``POST /tokenize`` of that prompt (so the template's own tokens count).
        vLLM: ``POST /tokenize`` with the messages (its ``count``). Other servers of the
        protocol have none (``bad_request``).
        """
        messages = [self.wire_message(m) for m in request.messages]
        if self.server == "llamacpp":
            templated = await self.request_json(
                "POST", "/apply-template", {"messages": messages}, model=request.model
            )
            prompt = templated.get("prompt") if isinstance(templated, dict) else None
            if not isinstance(prompt, str):
                raise ProviderError(
                    self.failure(
                        FailureKind.INVALID_RESPONSE,
                        f"/apply-template answered without a prompt: {str(templated)[:200]!r}",
                        request.model,
                    )
                )
            tokens = await self.request_json(
                "POST",
                "/tokenize",
                {"content": prompt, "add_special": True},
                model=request.model,
            )
            listed = tokens.get("tokens") if isinstance(tokens, dict) else None
            count = len(listed) if isinstance(listed, list) else None
            return self.count_from({"tokens": count}, "tokens", "/tokenize", request.model), (
                "/tokenize"
            )
        if self.server == "vllm":
            payload = await self.request_json(
                "POST", "/tokenize", {"model": request.model, "messages": messages}
            )
            return self.count_from(payload, "count", "/tokenize", request.model), "/tokenize"
        return await super().count_tokens(request)

    async def chat(self, request: ChatRequest) -> Completion:
        """One chat completion, not streamed on the wire.

        A field the model refuses (see :meth:`_without_refused`) is dropped and the
        request sent again, up to :data:`MAX_REFUSAL_RETRIES` times.
        """
        started = time.perf_counter()
        body, dropped = self.prepared(request, stream=False)
        path = f"{self.api_prefix}/chat/completions"

        def send() -> Awaitable[Any]:
            return self.request_json("POST", path, body, model=request.model)

        payload = await self.without_refusals(send, body, request, dropped)
        completion = self.completion_from(payload, request, latency_s=time.perf_counter() - started)
        return self.noted(completion, dropped)

    async def without_refusals(
        self,
        send: Callable[[], Awaitable[T]],
        body: dict[str, Any],
        request: ChatRequest,
        dropped: dict[str, Any],
    ) -> T:
        """``send()``'s answer; a field the model refuses is taken out of ``body`` first.

        On a refusal :meth:`_without_refused` accepts, ``body`` loses the field and
        ``send()`` runs again, up to :data:`MAX_REFUSAL_RETRIES` times.
        """
        retries = 0
        while True:
            try:
                return await send()
            except ProviderError as exc:
                if retries >= MAX_REFUSAL_RETRIES or not self._without_refused(
                    exc.failure, body, request, dropped
                ):
                    raise
                retries += 1

    # -- streaming ----------------------------------------------------------------------

    def _feed(
        self,
        chunk: Any,
        state: _StreamState,
        progress: StreamProgress,
        model: str,
    ) -> str:
        """Take in one stream chunk; returns its text (possibly empty)."""
        if not isinstance(chunk, dict):
            raise self.invalid(
                f"stream sent a non-object {progress.describe()}: {chunk!r:.120}",
                model,
                **progress.details(),
            )
        if "error" in chunk:
            raise self.stream_error(
                chunk, progress, model, status=self._status_of(chunk.get("error"))
            )
        state.chunks += 1
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            state.model = chunk["model"]
        if isinstance(chunk.get("id"), str):
            state.response_id = chunk["id"]
        _backend_extras(chunk, state.extra)
        if isinstance(chunk.get("usage"), dict):
            state.usage = chunk["usage"]
            progress.usage(
                chunk["usage"].get("prompt_tokens"), chunk["usage"].get("completion_tokens")
            )
        if isinstance(chunk.get("timings"), dict):
            state.timings = chunk["timings"]
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise self.invalid(f"stream chunk has bad choices: {chunk!r:.200}", model)
        return "".join(self._feed_choice(choice, state, progress, model) for choice in choices)

    def _feed_choice(
        self, choice: Any, state: _StreamState, progress: StreamProgress, model: str
    ) -> str:
        """Take in one streamed choice (only the first choice is read); returns its text."""
        if not isinstance(choice, dict):
            raise self.invalid(f"stream chunk has a bad choice: {choice!r:.200}", model)
        if choice.get("index", 0) not in (0, None):
            return ""
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise self.invalid(f"stream chunk has a bad delta: {delta!r:.200}", model)
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            state.reasoning.append(reasoning)
        if isinstance(delta.get("refusal"), str) and delta["refusal"]:
            state.refusal.append(delta["refusal"])
        if delta.get("tool_calls"):
            self._feed_tools(delta["tool_calls"], state, progress, model)
        if choice.get("finish_reason") is not None:
            state.finish = choice["finish_reason"]
            state.finished = True
        return _text_of(delta.get("content"))

    def _feed_tools(
        self, fragments: Any, state: _StreamState, progress: StreamProgress, model: str
    ) -> None:
        """Accumulate streamed tool-call fragments, keyed by their ``index``."""
        if not isinstance(fragments, list):
            raise self.invalid(f"stream tool_calls is not a list: {fragments!r:.200}", model)
        for position, fragment in enumerate(fragments):
            if not isinstance(fragment, dict):
                raise self.invalid(f"malformed tool-call fragment: {fragment!r:.200}", model)
            call_id = fragment.get("id") if isinstance(fragment.get("id"), str) else None
            index = _slot_index(fragment.get("index"), call_id, position, state.tools)
            slot = state.tools.get(index)
            if slot is None:
                slot = state.tools[index] = _ToolSlot()
                progress.tool_calls += 1
                if progress.first_token_at is None:
                    progress.first_token_at = time.perf_counter()
            if call_id:
                slot.id = call_id
            function = fragment.get("function") or {}
            if not isinstance(function, dict):
                raise self.invalid(f"malformed tool-call fragment: {fragment!r:.200}", model)
            if isinstance(function.get("name"), str) and function["name"]:
                slot.name = function["name"]
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                slot.arguments.append(arguments)
            elif isinstance(arguments, dict):
                slot.arguments.append(json.dumps(arguments))

    def _stream_completion(
        self,
        state: _StreamState,
        request: ChatRequest,
        progress: StreamProgress,
        started: float,
    ) -> Completion:
        """The final completion of a stream."""
        ended = time.perf_counter()
        calls: list[ToolCall] = []
        for number, index in enumerate(sorted(state.tools)):
            slot = state.tools[index]
            if not slot.name:
                raise self.invalid(
                    f"streamed tool call {index} never named its tool",
                    request.model,
                    **progress.details(),
                )
            arguments = parse_arguments(
                "".join(slot.arguments), provider=self, model=request.model, tool=slot.name
            )
            calls.append(
                ToolCall(
                    id=slot.id or synth_call_id("call", number, request.request_id),
                    name=slot.name,
                    arguments=arguments,
                )
            )
        extras: dict[str, Any] = {"raw_finish_reason": state.finish, **state.extra}
        refusal = "".join(state.refusal)
        if refusal:
            extras["refusal"] = refusal
        if state.reasoning:
            extras["reasoning"] = "".join(state.reasoning)
        if state.response_id:
            extras["response_id"] = state.response_id
        extras["stream_events"] = progress.events
        content = "".join(state.text)
        if state.finished:
            reason = finish_reason(state.finish, has_tool_calls=bool(calls), refused=bool(refusal))
        else:
            # [DONE] (or the end of the body) without any chunk saying why it stopped:
            # llama-cpp-python ends an interrupted stream so. The answer is cut short.
            reason = FinishReason.TRUNCATED
        if isinstance(state.usage, dict):
            usage = self.parse_usage(state.usage, extras)
        else:
            # No usage at all (llama-cpp-python streams none, whatever stream_options
            # say): an estimate, marked as one, rather than a silent 0/0.
            usage = Usage(
                input_tokens=estimate_prompt_tokens(request),
                output_tokens=estimate_tokens(content)
                + sum(estimate_tokens("".join(slot.arguments)) for slot in state.tools.values()),
                estimated=True,
            )
        fields: dict[str, Any] = {
            "model": state.model or request.model,
            "provider": self.protocol,
            "content": content,
            "tool_calls": tuple(calls),
            "finish_reason": reason,
            "usage": usage,
            "request_id": request.request_id,
            "latency_s": ended - started,
            "ttft_s": progress.ttft_s,
            "extras": extras,
        }
        stats_payload: dict[str, Any] = {}
        if state.timings is not None:
            stats_payload["timings"] = state.timings
        self.read_stats(stats_payload, fields)
        if fields.get("tokens_per_s") is None:
            fields["tokens_per_s"] = _measured_rate(fields["usage"], progress, ended)
        return Completion(**fields)

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream a chat completion: text pieces, then the full :class:`Completion`."""
        body, dropped = self.prepared(request, stream=True)
        return self._stream_from(f"{self.api_prefix}/chat/completions", body, request, dropped)

    async def _stream_from(
        self,
        path: str,
        body: dict[str, Any],
        request: ChatRequest,
        dropped: dict[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream an OpenAI-style SSE answer from ``path``.

        A refusal of a field (an error status, before the stream opened) sends the
        request again without it, as :meth:`chat` does.
        """
        model = request.model
        started = time.perf_counter()
        progress = StreamProgress(started=started)
        state = _StreamState()
        dropped = {} if dropped is None else dropped
        retries = 0
        while True:
            opened = False
            try:
                async with self.open_stream(path, body, model=model) as response:
                    opened = True
                    events = self.iter_sse(response, progress, model)
                    try:
                        async for event in events:
                            data = event.data.strip()
                            if data == "[DONE]":
                                state.done = True
                                break
                            if not data:
                                continue
                            chunk = self.parse_stream_json(data, progress, model)
                            piece = self._feed(chunk, state, progress, model)
                            if piece:
                                progress.text(piece)
                                state.text.append(piece)
                                yield TextDelta(text=piece)
                    finally:
                        await _aclose(events)
            except ProviderError as exc:
                if (
                    opened
                    or retries >= MAX_REFUSAL_RETRIES
                    or not self._without_refused(exc.failure, body, request, dropped)
                ):
                    raise
                retries += 1
                continue
            break
        if state.chunks == 0:
            raise self.empty_stream(request, progress)
        if not state.done and not state.finished:
            raise ProviderError(
                self.failure(
                    FailureKind.CONNECTION,
                    f"stream ended before its end {progress.describe()}",
                    model,
                    details=progress.details(),
                )
            )
        yield self.noted(self._stream_completion(state, request, progress, started), dropped)

    # -- embeddings and models ----------------------------------------------------------

    async def embed(self, request: EmbedRequest) -> Embeddings:
        """Embed texts through ``/v1/embeddings``."""
        payload = await self.request_json(
            "POST",
            f"{self.api_prefix}/embeddings",
            {"model": request.model, "input": list(request.inputs), "encoding_format": "float"},
            model=request.model,
        )
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or len(data) != len(request.inputs):
            raise self.invalid(
                f"expected {len(request.inputs)} embeddings, got {payload!r:.200}", request.model
            )
        rows: list[tuple[int, tuple[float, ...]]] = []
        for position, item in enumerate(data):
            vector = item.get("embedding") if isinstance(item, dict) else None
            index = item.get("index", position) if isinstance(item, dict) else position
            rows.append((_int(index), self._vector(vector, request.model)))
        rows.sort(key=lambda row: row[0])
        extras: dict[str, Any] = {}
        usage = self.parse_usage(payload.get("usage"), extras)
        model = payload.get("model")
        return Embeddings(
            model=model if isinstance(model, str) and model else request.model,
            provider=self.protocol,
            vectors=tuple(vector for _, vector in rows),
            usage=usage,
        )

    def _vector(self, raw: Any, model: str) -> tuple[float, ...]:
        """An embedding: a list of numbers, or base64 little-endian float32s."""
        if isinstance(raw, str):
            try:
                packed = base64.b64decode(raw, validate=True)
            except ValueError as exc:
                raise self.invalid(f"embedding is not base64: {raw[:60]!r}", model) from exc
            if len(packed) % 4:
                raise self.invalid("base64 embedding is not a whole number of floats", model)
            return struct.unpack(f"<{len(packed) // 4}f", packed)
        if isinstance(raw, list) and all(_float(x) is not None for x in raw):
            return tuple(float(x) for x in raw)
        raise self.invalid(f"embedding is not a list of numbers: {raw!r:.120}", model)

    async def list_models(self) -> list[ModelInfo]:
        """The models from ``GET /v1/models`` (with llama.cpp's and vLLM's extras).

        A llama-server with one model is also asked ``GET /props`` for the context it
        serves (see :meth:`_serving_context`).
        """
        payload = await self.request_json("GET", f"{self.api_prefix}/models")
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise self.invalid(f"model list has no data: {payload!r:.200}", None)
        entries = [item for item in data if isinstance(item, dict) and item.get("id")]
        if self.server is None:
            self.server = server_of(entries)
        if any(_router_status(item) is not None for item in entries):
            self.router = True
        models = [self.model_info(item) for item in entries]
        if self.server == "llamacpp" and (self.router or len(models) == 1):
            models = list(await asyncio.gather(*(self._serving_context(m) for m in models)))
        for info in models:
            if info.context_length:
                self.context_windows.setdefault(info.id, info.context_length)
        return models

    async def _serving_context(self, info: ModelInfo) -> ModelInfo:
        """A llama-server's model with the context it serves, from ``GET /props``.

        ``meta.n_ctx_train`` in ``/v1/models`` is what the model was trained for; a
        request gets the slot's context (``default_generation_settings.n_ctx``), set by
        ``--ctx-size`` (and shared out by ``--parallel``), often far smaller. Without an
        answer from ``/props`` the trained context stays. A router is asked about each
        loaded model (``?model=``, with ``autoload=false`` so that nothing loads).
        """
        params = None
        if self.router:
            if not info.loaded:
                return info
            params = {"model": info.id, "autoload": "false"}
        status, _, content = await self.send("GET", "/props", params=params)
        try:
            props = json.loads(content) if status == 200 else None
        except ValueError:
            props = None
        settings = props.get("default_generation_settings") if isinstance(props, dict) else None
        n_ctx = _int(settings.get("n_ctx")) if isinstance(settings, dict) else 0
        if n_ctx <= 0:
            return info
        return msgspec.structs.replace(
            info, context_length=n_ctx, details={**info.details, "n_ctx": n_ctx}
        )

    @staticmethod
    def model_info(item: dict[str, Any]) -> ModelInfo:
        """One ``/v1/models`` entry as :class:`ModelInfo`.

        llama.cpp adds ``meta`` (``size``, ``n_ctx_train``) and serves one model that is
        always loaded, unless it runs in router mode: then every model it can serve is
        listed with its ``status.value`` (``loaded``, ``unloaded``, ``loading``,
        ``sleeping``, ...), and only ``loaded`` is resident. vLLM adds ``max_model_len``
        and also serves only loaded models. Plain OpenAI-compatible servers cannot say
        whether a model is loaded.
        """
        model_id = str(item["id"])
        owner = item.get("owned_by")
        meta = item.get("meta") if isinstance(item.get("meta"), dict) else None
        details: dict[str, Any] = {
            key: item[key]
            for key in ("owned_by", "created", "architecture", "root")
            if item.get(key) is not None
        }
        context = None
        size = None
        if meta is not None:
            details["meta"] = meta
            context = _int(meta.get("n_ctx_train")) or None
            size = _int(meta.get("size")) or None
        for key in ("max_model_len", "context_length", "context_window"):
            if context is None and _int(item.get(key)):
                context = _int(item[key])
        always_loaded = meta is not None or owner in ("llamacpp", "vllm")
        loaded: bool | None = True if always_loaded else None
        status = _router_status(item)
        if status is not None:
            details["status"] = status
            loaded = status == "loaded"
        embeddings = "embed" in model_id.lower()
        return ModelInfo(
            id=model_id,
            loaded=loaded,
            context_length=context,
            size_bytes=size,
            capabilities=("embeddings",) if embeddings else ("chat",),
            details=details,
        )

    # -- llama.cpp router mode ----------------------------------------------------------

    router: bool = False
    """Whether the server is a ``llama-server`` in router mode (found by
    :meth:`list_models`: its entries carry a ``status``). Such a server loads and unloads
    models on request (``POST /models/load`` and ``/models/unload``)."""

    @property
    def can_load(self) -> bool:
        """Whether :meth:`load` and :meth:`unload` work: a llama.cpp router does."""
        return self.router

    async def load(self, model: str) -> None:
        """Load a model on a llama.cpp router: ``POST /models/load``."""
        await self._router_call("/models/load", model)

    async def unload(self, model: str) -> None:
        """Unload a model on a llama.cpp router: ``POST /models/unload``."""
        await self._router_call("/models/unload", model)

    async def _router_call(self, path: str, model: str) -> None:
        """A router's load or unload, answered ``{"success": true}``.

        Whether the llama.cpp server is a router is learnt from its model list (asked
        now when not known yet). Other servers of the protocol, and a llama-server
        started with one model, cannot load on request (``bad_request``).
        """
        verb = "load" if path.endswith("/load") else "unload"
        if not self.router and self.server in (None, "llamacpp"):
            await self.list_models()
        if not self.router:
            what = (
                "this llama-server is not in router mode (it was started with one model)"
                if self.server == "llamacpp"
                else f"this server ({self.server or self.protocol}) has no such API"
            )
            raise ProviderError(
                self.failure(
                    FailureKind.BAD_REQUEST, f"{what}, so it cannot {verb} models on request", model
                )
            )
        payload = await self.request_json("POST", path, {"model": model}, model=model)
        if isinstance(payload, dict) and payload.get("success") is False:
            raise self.error_in_body(payload, model)

    # -- errors -------------------------------------------------------------------------

    @staticmethod
    def _status_of(error: Any) -> int:
        """The HTTP status an in-stream error names (llama.cpp, vLLM), else 500."""
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
            return code
        if isinstance(code, str) and code.isdigit() and 400 <= int(code) <= 599:
            return int(code)
        return 500

    def classify(self, status: int, etype: str, code: str, message: str) -> FailureKind:
        """The shared rules, plus OpenAI's, llama.cpp's and LM Studio's own codes."""
        low = f"{etype} {code} {message}".lower()
        if "exceed_context_size" in low or "context size" in low:
            return FailureKind.CONTEXT_WINDOW_EXCEEDED
        kind = super().classify(status, etype, code, message)
        if kind is FailureKind.CONTEXT_WINDOW_EXCEEDED:
            return kind
        if code == "model_not_found" or "no models loaded" in low:
            return FailureKind.NOT_FOUND
        if code == "invalid_api_key" or etype == "authentication_error":
            return FailureKind.AUTH
        if etype == "unavailable_error" and status < 500:
            return FailureKind.OVERLOADED
        return kind

    def error_from_response(
        self, status: int, headers: Mapping[str, str], body: bytes, model: str | None
    ) -> Failure:
        """The shared mapping; a 429 without headers may say "try again in 1.5s"."""
        failure = super().error_from_response(status, headers, body, model)
        if failure.kind is FailureKind.RATE_LIMITED and failure.retry_after is None:
            match = _RETRY_IN_MESSAGE.search(failure.message)
            if match is not None:
                seconds = float(match.group(1)) / (1000.0 if match.group(2) == "ms" else 1.0)
                failure = msgspec.structs.replace(failure, retry_after=seconds)
        return failure


_OWNERS = {"llamacpp": "llamacpp", "vllm": "vllm", "me": "llama-cpp-python"}
"""``owned_by`` in ``/v1/models`` -> the server that says so."""


def server_of(entries: list[dict[str, Any]]) -> str | None:
    """Which server a ``/v1/models`` list comes from, where its entries tell.

    llama.cpp's ``llama-server`` says ``owned_by: llamacpp`` (and adds ``meta``, or in
    router mode a ``status``), vLLM ``owned_by: vllm``, llama-cpp-python ``owned_by: me``.
    """
    for item in entries:
        if isinstance(item.get("meta"), dict) or _router_status(item) is not None:
            return "llamacpp"
        owner = item.get("owned_by")
        if isinstance(owner, str) and owner in _OWNERS:
            return _OWNERS[owner]
    return None


def _router_status(item: dict[str, Any]) -> str | None:
    """A llama.cpp router's ``status.value`` of a listed model (``None`` elsewhere)."""
    status = item.get("status")
    value = status.get("value") if isinstance(status, dict) else None
    return value if isinstance(value, str) else None


def _slot_index(index: Any, call_id: str | None, position: int, slots: dict[int, _ToolSlot]) -> int:
    """Which tool call a streamed fragment belongs to.

    By its ``index`` when it has one. Without one (some servers send whole calls), a
    fragment matches the call with its id, else starts a new call when it has an id,
    else continues the last call.
    """
    if isinstance(index, int) and not isinstance(index, bool):
        return index
    known = [i for i, slot in slots.items() if call_id and slot.id == call_id]
    if known:
        return known[0]
    if call_id or not slots:
        return len(slots) + position
    return max(slots)


async def _aclose(events: AsyncIterator[Any]) -> None:
    """Close an async generator we stopped reading early (at once, not when collected)."""
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


def _measured_rate(usage: Usage, progress: StreamProgress, ended: float) -> float | None:
    """Output tokens per second after the first token, as the client saw the stream."""
    first = progress.first_token_at
    if first is None or usage.output_tokens < 2 or ended <= first:
        return None
    return (usage.output_tokens - 1) / (ended - first)


# -- LM Studio -------------------------------------------------------------------------

_LMS_CAPABILITIES: dict[str, tuple[str, ...]] = {
    "llm": ("chat",),
    "vlm": ("chat", "vision"),
    "embeddings": ("embeddings",),
    "embedding": ("embeddings",),
}


def _missing_route(status: int, content: bytes) -> bool:
    """Whether an answer means "no such endpoint" rather than an error about the request.

    LM Studio answers unknown routes with 200 and ``{"error": "Unexpected endpoint or
    method. (GET /api/v1/models)"}``; other servers with a bare 404 or 405.
    """
    try:
        payload = json.loads(content) if content else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, str) and "unexpected endpoint" in error.lower():
            return True
        if isinstance(error, dict):
            return False
    return status in (404, 405, 501)


class LMStudioProvider(OpenAIProvider):
    """LM Studio: OpenAI-compatible ``/v1`` plus its own ``/api/v0`` and ``/api/v1`` REST.

    Plain answers come from ``/api/v0/chat/completions`` for its ``stats`` (tokens per
    second, time to first token, generation time, stop reason) and ``model_info``;
    streams use ``/v1``. :meth:`load` and :meth:`unload` need the v1 REST API (LM Studio
    0.4.0 or later); :attr:`can_load` is known once :meth:`list_models` or a load has
    found out whether the server has it.
    """

    protocol = "lmstudio"
    _has_v1: bool | None = None

    @property
    def can_load(self) -> bool:
        """Whether this LM Studio has the v1 REST API (so load and unload work)."""
        return self._has_v1 is True

    def _decode(
        self,
        answer: tuple[int, Mapping[str, str], bytes],
        what: str,
        model: str | None,
    ) -> Any:
        """The JSON of a successful answer; an error status or bad JSON raises."""
        status, headers, content = answer
        if status >= 400:
            raise ProviderError(self.error_from_response(status, headers, content, model))
        try:
            payload = json.loads(content)
        except ValueError as exc:
            raise self.invalid(
                f"{what} answered with malformed JSON: {content[:200]!r}", model
            ) from exc
        if isinstance(payload, dict) and "error" in payload and len(payload) == 1:
            # LM Studio reports some failures with status 200 and only an error.
            raise self.error_in_body(payload, model)
        return payload

    async def chat(self, request: ChatRequest) -> Completion:
        """One chat completion through ``/api/v0`` (with ``stats``), else ``/v1``.

        A field the model refuses is dropped and the request sent again, as on ``/v1``
        (see :meth:`OpenAIProvider.chat`).
        """
        started = time.perf_counter()
        body, dropped = self.prepared(request, stream=False)
        path = "/api/v0/chat/completions"

        async def send() -> Any:
            answer = await self.send("POST", path, body, model=request.model)
            if _missing_route(answer[0], answer[2]):
                return _NO_ROUTE
            return self._decode(answer, f"POST {path}", request.model)

        payload = await self.without_refusals(send, body, request, dropped)
        if payload is _NO_ROUTE:
            return await super().chat(request)
        completion = self.completion_from(payload, request, latency_s=time.perf_counter() - started)
        return self.noted(completion, dropped)

    def read_stats(self, payload: dict[str, Any], fields: dict[str, Any]) -> None:
        """LM Studio's ``stats``, ``model_info`` and ``runtime`` (and any ``timings``)."""
        super().read_stats(payload, fields)
        extras: dict[str, Any] = fields["extras"]
        stats = payload.get("stats")
        if isinstance(stats, dict):
            extras["stats"] = stats
            rate = _float(stats.get("tokens_per_second"))
            if rate is not None and rate > 0:
                fields["tokens_per_s"] = rate
            ttft = _float(stats.get("time_to_first_token"))
            if ttft is not None:
                fields["ttft_s"] = ttft
            generation = _float(stats.get("generation_time"))
            if generation is not None:
                extras["generation_time_s"] = generation
            if isinstance(stats.get("stop_reason"), str):
                extras["stop_reason"] = stats["stop_reason"]
        for key in ("model_info", "runtime"):
            if isinstance(payload.get(key), dict):
                extras[key] = payload[key]

    async def _get_optional(self, path: str) -> Any:
        """GET a REST route the server may not have: its JSON, or ``None`` when absent."""
        answer = await self.send("GET", path)
        if _missing_route(answer[0], answer[2]):
            return None
        return self._decode(answer, f"GET {path}", None)

    async def list_models(self) -> list[ModelInfo]:
        """Models from ``/api/v0/models``, enriched by ``/api/v1/models`` where present."""
        v0 = await self._get_optional("/api/v0/models")
        v1 = await self._get_optional("/api/v1/models")
        self._has_v1 = v1 is not None
        if v0 is None and v1 is None:
            return await super().list_models()
        models: dict[str, ModelInfo] = {}
        if v0 is not None:
            data = v0.get("data") if isinstance(v0, dict) else None
            if not isinstance(data, list):
                raise self.invalid(f"/api/v0/models has no data: {v0!r:.200}", None)
            for item in data:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    models[item["id"]] = self._v0_model(item)
        if v1 is not None:
            entries = v1.get("models") if isinstance(v1, dict) else None
            if not isinstance(entries, list):
                raise self.invalid(f"/api/v1/models has no models: {v1!r:.200}", None)
            for item in entries:
                if isinstance(item, dict) and isinstance(item.get("key"), str):
                    models[item["key"]] = self._v1_model(item, models.get(item["key"]))
        return list(models.values())

    @staticmethod
    def _v0_model(item: dict[str, Any]) -> ModelInfo:
        """One ``/api/v0/models`` entry."""
        kind = str(item.get("type", "llm"))
        context = _int(item.get("loaded_context_length")) or _int(item.get("max_context_length"))
        details = {
            key: item[key]
            for key in (
                "type",
                "publisher",
                "arch",
                "compatibility_type",
                "quantization",
                "state",
                "max_context_length",
            )
            if item.get(key) is not None
        }
        return ModelInfo(
            id=item["id"],
            loaded=item.get("state") == "loaded",
            context_length=context or None,
            capabilities=_LMS_CAPABILITIES.get(kind, ("chat",)),
            details=details,
        )

    @staticmethod
    def _v1_model(item: dict[str, Any], known: ModelInfo | None) -> ModelInfo:
        """One ``/api/v1/models`` entry, merged over what v0 said about it."""
        instances = [
            inst
            for inst in item.get("loaded_instances") or []
            if isinstance(inst, dict) and isinstance(inst.get("id"), str)
        ]
        context = None
        for inst in instances:
            config = inst.get("config")
            if isinstance(config, dict) and _int(config.get("context_length")):
                context = _int(config["context_length"])
                break
        if context is None:
            context = _int(item.get("max_context_length")) or (
                known.context_length if known else None
            )
        kind = str(item.get("type", "llm"))
        capabilities = list(_LMS_CAPABILITIES.get(kind, ("chat",)))
        if known is not None:
            capabilities += [c for c in known.capabilities if c not in capabilities]
        flags = item.get("capabilities")
        if isinstance(flags, dict):
            if flags.get("trained_for_tool_use") and "tools" not in capabilities:
                capabilities.append("tools")
            if flags.get("vision") and "vision" not in capabilities:
                capabilities.append("vision")
        details = dict(known.details) if known is not None else {}
        details.update(
            {
                key: item[key]
                for key in (
                    "type",
                    "publisher",
                    "display_name",
                    "architecture",
                    "quantization",
                    "params_string",
                    "format",
                    "max_context_length",
                )
                if item.get(key) is not None
            }
        )
        details["instances"] = [inst["id"] for inst in instances]
        return ModelInfo(
            id=item["key"],
            loaded=bool(instances),
            context_length=context,
            size_bytes=_int(item.get("size_bytes")) or (known.size_bytes if known else None),
            capabilities=tuple(capabilities),
            details=details,
        )

    def _no_v1(self, model: str) -> ProviderError:
        """The failure for a load or unload on an LM Studio without the v1 REST API."""
        self._has_v1 = False
        return ProviderError(
            self.failure(
                FailureKind.BAD_REQUEST,
                "this LM Studio has no v1 REST API (/api/v1, LM Studio 0.4.0 or later), so it "
                "cannot load or unload models on request; it loads them just in time instead",
                model,
            )
        )

    async def load(self, model: str) -> None:
        """Load a model: ``POST /api/v1/models/load``, unless it is loaded already.

        LM Studio answers a load of a model that has a loaded instance by loading
        another instance of it (twice the memory), so the models are listed first and a
        model with a loaded instance is left as it is.
        """
        listing = await self._get_optional("/api/v1/models")
        if listing is None:
            raise self._no_v1(model)
        self._has_v1 = True
        for item in listing.get("models", []) if isinstance(listing, dict) else []:
            if isinstance(item, dict) and item.get("key") == model and item.get("loaded_instances"):
                return
        answer = await self.send("POST", "/api/v1/models/load", {"model": model}, model=model)
        if _missing_route(answer[0], answer[2]):
            raise self._no_v1(model)
        self._decode(answer, "POST /api/v1/models/load", model)

    async def unload(self, model: str) -> None:
        """Unload every loaded instance of a model: ``POST /api/v1/models/unload``.

        ``model`` is a model key (all its instances are unloaded) or an instance id.
        A model that is not loaded is left as it is.
        """
        listing = await self._get_optional("/api/v1/models")
        if listing is None:
            raise self._no_v1(model)
        self._has_v1 = True
        instances: list[str] | None = None
        for item in listing.get("models", []) if isinstance(listing, dict) else []:
            if isinstance(item, dict) and item.get("key") == model:
                instances = [
                    inst["id"]
                    for inst in item.get("loaded_instances") or []
                    if isinstance(inst, dict) and isinstance(inst.get("id"), str)
                ]
                break
        for instance_id in [model] if instances is None else instances:
            answer = await self.send(
                "POST", "/api/v1/models/unload", {"instance_id": instance_id}, model=model
            )
            self._decode(answer, "POST /api/v1/models/unload", model)


def _backend_extras(payload: dict[str, Any], extras: dict[str, Any]) -> None:
    """OpenAI's ``system_fingerprint`` and ``service_tier``, where the server sent them."""
    for key in ("system_fingerprint", "service_tier"):
        if isinstance(payload.get(key), str) and payload[key]:
            extras[key] = payload[key]
