"""A fake of the Google Gemini API (Generative Language API), on the fake-server engine.

Routes (under ``/v1beta``, and the same under ``/v1``): ``POST models/{m}:generateContent``,
``POST models/{m}:streamGenerateContent?alt=sse``, ``POST models/{m}:countTokens``,
``POST models/{m}:embedContent``, ``POST models/{m}:batchEmbedContents``,
``GET models`` (paged with ``pageSize`` and ``pageToken``) and ``GET models/{m}``.

What it checks, as the real API does: a function declaration's ``parameters`` holds only
fields of Gemini's ``Schema`` (``additionalProperties``, ``$schema`` and the like are
refused by name; full JSON Schema goes in ``parametersJsonSchema``), the key (when the
server has an ``api_key``) in ``x-goog-api-key`` or ``?key=`` (none is a 403
``PERMISSION_DENIED``; a wrong one a 400 ``INVALID_ARGUMENT`` whose ``ErrorInfo`` says
``API_KEY_INVALID``), non-empty
``contents`` with roles ``user`` and ``model`` (``function`` and ``tool`` are accepted for
results, as sources disagree), that a turn of ``functionResponse`` parts follows a
``model`` turn that called those functions, that the model exists and does what is asked
(chat models chat, embedding models embed; anything else is the API's 404), and the
context window: a prompt longer than the model's ``context_length`` (estimated at four
characters a token) gets the API's "input token count exceeds the maximum" error.

How it renders a :class:`~actors.testing.Reply`: its ``reasoning`` as a ``thought: true``
text part before the answer (counted as ``thoughtsTokenCount``, apart from
``candidatesTokenCount``), text as a text part, tool calls as
``functionCall`` parts (``args`` an object; an ``id`` only when the scripted call has
one), ``finish`` ``stop`` / ``tool_calls`` as ``STOP``, ``length`` as ``MAX_TOKENS``,
``content_filter`` as ``SAFETY`` (with a high safety rating), ``blocked`` as an answer
with no candidates and ``promptFeedback.blockReason: SAFETY``; any other value is sent
upper-cased. A stop sequence in the text cuts it there; more text pieces than
``maxOutputTokens`` are cut to it (``MAX_TOKENS``). A stream is ``data:`` lines only,
each a whole response chunk; the last one carries the ``finishReason`` and the whole
``usageMetadata``. Embeddings are deterministic unit vectors derived from the text (768
dimensions unless ``outputDimensionality`` says otherwise).

With ``thought_signatures`` (Gemini 3's behaviour) the first ``functionCall`` part of an
answer carries a ``thoughtSignature``, and a follow-up whose current turn drops it is
refused with a 400, as Gemini 3 refuses it.

Errors are google.rpc bodies ``{"error": {"code", "message", "status"}}`` with the
status for the HTTP code (400 ``INVALID_ARGUMENT``, 401 ``UNAUTHENTICATED``, 403
``PERMISSION_DENIED``, 404 ``NOT_FOUND``, 429 ``RESOURCE_EXHAUSTED``, 499 ``CANCELLED``,
500 ``INTERNAL``, 503 ``UNAVAILABLE``, 504 ``DEADLINE_EXCEEDED``). A fault's ``code``
picks a specific one: a status name, ``API_KEY_INVALID``, ``context_length_exceeded``
or ``model_not_found``. A fault's ``retry_after`` is sent the way Gemini sends it: as a
``google.rpc.RetryInfo`` detail (``"retryDelay": "7s"``), not as a header.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import uuid
from collections.abc import Iterator
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

__all__ = ["GeminiProtocol"]

EMBEDDING_DIMENSIONS = 768
"""Vector length when a request does not ask for another."""

_STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_CODE_BY_STATUS = {
    **{status: code for code, status in _STATUS_BY_CODE.items()},
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
}
_MESSAGES = {
    "INVALID_ARGUMENT": "Request contains an invalid argument.",
    "FAILED_PRECONDITION": "User location is not supported for the API use.",
    "UNAUTHENTICATED": "Request had invalid authentication credentials.",
    "PERMISSION_DENIED": "The caller does not have permission",
    "NOT_FOUND": "Requested entity was not found.",
    "RESOURCE_EXHAUSTED": "Resource has been exhausted (e.g. check quota).",
    "CANCELLED": "The operation was cancelled.",
    "INTERNAL": "An internal error has occurred. Please retry or report the problem.",
    "UNAVAILABLE": "The model is overloaded. Please try again later.",
    "DEADLINE_EXCEEDED": "Deadline expired before operation could complete.",
}
_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
_CHAT_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
_EMBED_METHODS = ["embedContent", "batchEmbedContents"]
_ROLES = ("user", "model", "function", "tool")
_SCHEMA_FIELDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
"""The fields of Gemini's ``Schema`` (the OpenAPI subset ``parameters`` takes)."""
_TYPE = "type.googleapis.com/google.rpc."


def _frame(data: Any) -> bytes:
    return f"data: {json.dumps(data)}\r\n\r\n".encode()


def _vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for a text."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(v / 2**31 for v in struct.unpack("<8i", digest))
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 8) for v in values]


def _part_text(parts: Any) -> Iterator[str]:
    """The text of a list of parts (function calls and responses as JSON)."""
    if not isinstance(parts, list):
        return
    for part in parts:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            yield part["text"]
        elif isinstance(part.get("functionCall"), dict):
            yield json.dumps(part["functionCall"].get("args", {}))
        elif isinstance(part.get("functionResponse"), dict):
            yield json.dumps(part["functionResponse"].get("response", {}))


def _not_found(model: str, method: str) -> str:
    return (
        f"models/{model} is not found for API version v1beta, or is not supported for "
        f"{method}. Call ListModels to see the list of available models and their "
        "supported methods."
    )


class GeminiProtocol(FakeProtocol):
    """The Gemini API, as a fake (see the module's docs).

    Args:
        thought_signatures: Behave as Gemini 3 does with function calls: the first
            ``functionCall`` part of each answer carries a ``thoughtSignature``, and a
            request whose current turn (the model turns since the last user text) has a
            function-call turn without a signature this server issued is refused with
            400 ``INVALID_ARGUMENT``.
    """

    name: ClassVar[str] = "gemini"

    def __init__(self, *, thought_signatures: bool = False) -> None:
        self.thought_signatures = thought_signatures
        self._issued: set[str] = set()

    # -- rendering of errors ------------------------------------------------------------

    def error_body(self, status: int, message: str | None, code: str | None) -> Any:
        """A google.rpc error body for ``status`` (``code`` picks a specific one)."""
        rpc = _STATUS_BY_CODE.get(status) or ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
        details: list[dict[str, Any]] = []
        if code in _CODE_BY_STATUS:
            rpc = code
        elif code == "API_KEY_INVALID":
            rpc = "INVALID_ARGUMENT"
            message = message or "API key not valid. Please pass a valid API key."
            details.append(
                {
                    "@type": f"{_TYPE}ErrorInfo",
                    "reason": code,
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            )
        elif code == "context_length_exceeded":
            rpc = "INVALID_ARGUMENT"
            message = message or (
                "The input token count (1048577) exceeds the maximum number of tokens "
                "allowed (1048576)."
            )
        elif code == "model_not_found":
            rpc = "NOT_FOUND"
        error: dict[str, Any] = {
            "code": status,
            "message": message or _MESSAGES.get(rpc, _MESSAGES["INTERNAL"]),
            "status": rpc,
        }
        if details:
            error["details"] = details
        return {"error": error}

    def stream_error_frame(self, message: str | None, code: str | None) -> bytes:
        """An ``error`` object in a data line (``UNAVAILABLE`` unless ``code`` names one)."""
        rpc = code if code in _CODE_BY_STATUS else "UNAVAILABLE"
        error = {
            "code": _CODE_BY_STATUS[rpc],
            "message": message or _MESSAGES.get(rpc, _MESSAGES["INTERNAL"]),
            "status": rpc,
        }
        return _frame({"error": error})

    def garbage_frame(self) -> bytes:
        """A chunk whose JSON is cut off."""
        return b'data: {"candidates": [{"content": {"parts": [{"text": "unterminated\r\n\r\n'

    def tool_choice(self, body: Any) -> ToolChoice | None:
        """``toolConfig.functionCallingConfig``'s ``mode`` and ``allowedFunctionNames``.

        ``AUTO`` / ``ANY`` / ``NONE``; ``ANY`` with one allowed name forces that function.
        """
        config = body.get("toolConfig") if isinstance(body, dict) else None
        calling = config.get("functionCallingConfig") if isinstance(config, dict) else None
        mode = calling.get("mode") if isinstance(calling, dict) else None
        if not isinstance(mode, str):
            return None
        mode = mode.upper()
        if mode == "ANY":
            names = calling.get("allowedFunctionNames") if isinstance(calling, dict) else None
            if isinstance(names, list) and len(names) == 1 and isinstance(names[0], str):
                return ToolChoice("tool", names[0])
            return ToolChoice("required")
        return {"NONE": ToolChoice("none"), "AUTO": ToolChoice("auto")}.get(mode)

    def declared_tools(self, body: Any) -> dict[str, dict[str, Any]]:
        """``tools[].functionDeclarations[]``: name -> ``parameters`` (or its JSON Schema)."""
        tools: dict[str, dict[str, Any]] = {}
        for tool in (body.get("tools") if isinstance(body, dict) else None) or []:
            declarations = tool.get("functionDeclarations") if isinstance(tool, dict) else None
            for declaration in declarations if isinstance(declarations, list) else []:
                if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                    schema = declaration.get("parameters") or declaration.get(
                        "parametersJsonSchema"
                    )
                    tools[declaration["name"]] = schema if isinstance(schema, dict) else {}
        return tools

    def prompt_text(self, body: Any) -> str:
        """The system instruction and every turn's text (tool calls and results included)."""
        if not isinstance(body, dict):
            return ""
        texts: list[str] = []
        system = body.get("systemInstruction") or body.get("system_instruction")
        if isinstance(system, dict):
            texts.extend(_part_text(system.get("parts")))
        for content in body.get("contents") or ():
            if isinstance(content, dict):
                texts.extend(_part_text(content.get("parts")))
        if isinstance(body.get("content"), dict):  # embedContent
            texts.extend(_part_text(body["content"].get("parts")))
        return "\n".join(t for t in texts if t)

    def model_of(self, request: web.Request, body: Any) -> str | None:
        """The model named in the path (``models/{model}:method``)."""
        target = request.match_info.get("target")
        return target.partition(":")[0] if target else None

    # -- routes -------------------------------------------------------------------------

    def routes(self, server: FakeServer) -> list[web.RouteDef]:
        """The ``models`` collection and its methods, under ``/v1beta`` and ``/v1``."""

        async def call(request: web.Request) -> web.StreamResponse:
            model, _, method = request.match_info["target"].partition(":")
            ex = await server.exchange(request)
            refused = self._check_key(ex)
            if refused is not None:
                return refused
            if method in ("generateContent", "streamGenerateContent", "countTokens"):
                return await self._generate(ex, model, method)
            if method in _EMBED_METHODS:
                return await self._embed(ex, model, method)
            return ex.error(404, f"Method {method!r} is not found.", code="NOT_FOUND")

        async def list_models(request: web.Request) -> web.StreamResponse:
            ex = await server.exchange(request)
            refused = self._check_key(ex)
            if refused is not None:
                return refused
            early = await self._prelude(ex)
            if early is not None:
                return early
            return await ex.json(self._model_page(server, request))

        async def get_model(request: web.Request) -> web.StreamResponse:
            ex = await server.exchange(request)
            refused = self._check_key(ex)
            if refused is not None:
                return refused
            model = server.models.get(request.match_info["target"])
            if model is None:
                return ex.error(404, f"Model is not found: models/{ex.model}.", code="NOT_FOUND")
            early = await self._prelude(ex)
            if early is not None:
                return early
            return await ex.json(self._model_entry(model))

        routes: list[web.RouteDef] = []
        for prefix in ("/v1beta", "/v1"):
            routes += [
                web.get(f"{prefix}/models", list_models),
                web.get(f"{prefix}/models/{{target}}", get_model),
                web.post(f"{prefix}/models/{{target}}", call),
            ]
        return routes

    # -- checks -------------------------------------------------------------------------

    @staticmethod
    def _check_key(ex: Exchange) -> web.Response | None:
        server = ex.server
        if server.api_key is None:
            return None
        key = ex.request.headers.get("x-goog-api-key") or ex.request.query.get("key")
        if key is None:
            return ex.error(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to "
                "call this API.",
            )
        if not server.check_key(key):
            return ex.error(400, code="API_KEY_INVALID")
        return None

    @staticmethod
    def _check_contents(contents: Any) -> str | None:
        if not isinstance(contents, list) or not contents:
            return "* GenerateContentRequest.contents: contents is not specified"
        called: set[str] = set()
        previous_role = ""
        for index, content in enumerate(contents):
            if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
                return f"* GenerateContentRequest.contents[{index}].parts: must be a list"
            role = content.get("role", "user")
            if role not in _ROLES:
                return f"Please use a valid role: user, model. (contents[{index}] is {role!r})"
            parts = [p for p in content["parts"] if isinstance(p, dict)]
            if not parts:
                return f"* GenerateContentRequest.contents[{index}].parts: must not be empty"
            answered = {
                str(p["functionResponse"].get("name"))
                for p in parts
                if isinstance(p.get("functionResponse"), dict)
            }
            if answered and (previous_role != "model" or not answered <= called):
                return (
                    "Please ensure that function response turn comes immediately after a "
                    "function call turn, and that it answers the functions called."
                )
            called = {
                str(p["functionCall"].get("name"))
                for p in parts
                if isinstance(p.get("functionCall"), dict)
            }
            previous_role = role
        return None

    def _check_signatures(self, contents: list[Any]) -> str | None:
        """Gemini 3's rule: each function-call turn of the current turn keeps its signature.

        The current turn is what follows the last user turn with text (function
        responses do not start one). In each of its model turns the first
        ``functionCall`` part must carry a ``thoughtSignature`` that this server issued.
        """
        start = 0
        for index, content in enumerate(contents):
            parts = content.get("parts") or []
            if content.get("role", "user") == "user" and any(
                isinstance(p, dict) and "text" in p for p in parts
            ):
                start = index + 1
        for index, content in enumerate(contents[start:], start):
            if content.get("role") != "model":
                continue
            calls = [p for p in content["parts"] if isinstance(p, dict) and "functionCall" in p]
            if calls and calls[0].get("thoughtSignature") not in self._issued:
                name = calls[0]["functionCall"].get("name")
                return (
                    f"Function call `{name}` in content {index} is missing a thought_signature "
                    "(or has one this model did not issue); send the functionCall parts back "
                    "as they came, with their thoughtSignature."
                )
        return None

    def _call_parts(self, calls: list[FakeToolCall]) -> list[dict[str, Any]]:
        """The ``functionCall`` parts of an answer (a signature on the first, Gemini 3)."""
        parts = [self._call_part(c) for c in calls]
        if parts and self.thought_signatures:
            signature = base64.b64encode(uuid.uuid4().bytes * 2).decode()
            self._issued.add(signature)
            parts[0]["thoughtSignature"] = signature
        return parts

    @staticmethod
    def _check_tools(tools: Any) -> str | None:
        """A declaration's ``parameters`` uses only ``Schema`` fields, as the API demands.

        JSON Schema goes in ``parametersJsonSchema``; any other field in ``parameters``
        is refused by name.
        """

        def unknown(schema: Any, where: str) -> str | None:
            if not isinstance(schema, dict):
                return None
            for key, value in schema.items():
                if key not in _SCHEMA_FIELDS:
                    return (
                        f"Invalid JSON payload received. Unknown name {json.dumps(key)} at "
                        f"'{where}': Cannot find field."
                    )
                children: list[tuple[Any, str]] = []
                if key == "properties" and isinstance(value, dict):
                    children = [(v, f"{where}.properties[{k}].value") for k, v in value.items()]
                elif key == "items":
                    children = [(value, f"{where}.items")]
                elif key == "anyOf" and isinstance(value, list):
                    children = [(v, f"{where}.any_of[{i}]") for i, v in enumerate(value)]
                for child, path in children:
                    problem = unknown(child, path)
                    if problem is not None:
                        return problem
            return None

        for t, tool in enumerate(tools if isinstance(tools, list) else []):
            declarations = tool.get("functionDeclarations") if isinstance(tool, dict) else None
            for d, declaration in enumerate(declarations if isinstance(declarations, list) else []):
                if not isinstance(declaration, dict):
                    continue
                where = f"tools[{t}].function_declarations[{d}]"
                if "parameters" in declaration and "parametersJsonSchema" in declaration:
                    return f"{where}: parameters and parametersJsonSchema are mutually exclusive"
                problem = unknown(declaration.get("parameters"), f"{where}.parameters")
                if problem is not None:
                    return problem
        return None

    async def _prelude(self, ex: Exchange) -> web.StreamResponse | None:
        """The engine's prelude, with a retry delay moved into a ``RetryInfo`` detail."""
        early = await ex.prelude()
        fault = ex.fault
        if early is None or fault is None or fault.retry_after is None:
            return early
        assert isinstance(early, web.Response)
        assert isinstance(early.body, bytes)
        body = json.loads(early.body)
        body["error"].setdefault("details", []).append(
            {"@type": f"{_TYPE}RetryInfo", "retryDelay": f"{fault.retry_after:g}s"}
        )
        headers = {
            k: v
            for k, v in early.headers.items()
            if k.lower() not in ("retry-after", "retry-after-ms", "content-type", "content-length")
        }
        return web.json_response(body, status=early.status, headers=headers)

    # -- generation ---------------------------------------------------------------------

    async def _generate(  # noqa: PLR0911 - one return per rule
        self, ex: Exchange, model_id: str, method: str
    ) -> web.StreamResponse:
        model = ex.server.models.get(model_id)
        if model is None or model.embeddings:
            return ex.error(404, _not_found(model_id, method), code="NOT_FOUND")
        body = ex.body
        if not isinstance(body, dict):
            return ex.error(400, "Request body must be a JSON object.")
        if method == "countTokens" and isinstance(body.get("generateContentRequest"), dict):
            # countTokens takes the contents alone, or a whole generateContent request
            # (so that its system instruction and tools are counted too).
            body = body["generateContentRequest"]
            problem = self._check_contents(body.get("contents"))
            if problem is not None:
                return ex.error(400, problem)
            return await ex.json({"totalTokens": estimate_tokens(self.prompt_text(body))})
        problem = self._check_contents(body.get("contents"))
        problem = problem or self._check_tools(body.get("tools"))
        if problem is None and self.thought_signatures and method != "countTokens":
            problem = self._check_signatures(body["contents"])
        if problem is not None:
            return ex.error(400, problem)
        prompt_tokens = estimate_tokens(ex.prompt_text())
        if method == "countTokens":
            return await ex.json({"totalTokens": prompt_tokens})
        if prompt_tokens > model.context_length:
            return ex.error(
                400,
                f"The input token count ({prompt_tokens}) exceeds the maximum number of "
                f"tokens allowed ({model.context_length}).",
            )
        early = await self._prelude(ex)
        if early is not None:
            return early
        await ex.server.ensure_loaded(model_id)
        if method == "streamGenerateContent":
            return await self._stream(ex)
        return await ex.json(self._response(ex))

    def _shape(self, ex: Exchange) -> tuple[list[str], list[FakeToolCall], str]:
        """The reply's text pieces, function calls and finish reason, as Gemini says it."""
        reply = ex.reply
        pieces = reply.tokens()
        calls = list(reply.tool_calls)
        finish = _FINISH.get(reply.finish_reason, reply.finish_reason.upper())
        config = ex.body.get("generationConfig") or {}
        text = "".join(pieces)
        for sequence in config.get("stopSequences") or ():
            if isinstance(sequence, str) and sequence and sequence in text:
                text = text[: text.index(sequence)]
                pieces, calls, finish = ([text] if text else []), [], "STOP"
                break
        limit = config.get("maxOutputTokens")
        if reply.finish is None and isinstance(limit, int) and len(pieces) > limit:
            pieces, calls, finish = pieces[:limit], [], "MAX_TOKENS"
        return pieces, calls, finish

    @staticmethod
    def _call_part(call: FakeToolCall) -> dict[str, Any]:
        function_call: dict[str, Any] = {"name": call.name, "args": call.arguments}
        if call.id:
            function_call["id"] = call.id
        return {"functionCall": function_call}

    def _usage(self, ex: Exchange, pieces: list[str], calls: list[FakeToolCall]) -> dict[str, int]:
        """``usageMetadata``: thoughts are counted apart from the candidates, as Gemini does.

        ``candidatesTokenCount`` counts the answer only; ``thoughtsTokenCount`` the
        reasoning; ``totalTokenCount`` is the sum of prompt, candidates and thoughts.
        """
        prompt = ex.input_tokens()
        output = ex.reply.output_tokens
        if output is None:
            output = len(pieces) + 8 * len(calls)
        usage = {"promptTokenCount": prompt, "candidatesTokenCount": output}
        thoughts = estimate_tokens(ex.reply.reasoning) if ex.reply.reasoning else 0
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        usage["totalTokenCount"] = prompt + output + thoughts
        return usage

    @staticmethod
    def _thought_parts(reply: Reply) -> list[dict[str, Any]]:
        """The reasoning as a ``thought`` part (none without reasoning)."""
        return [{"text": reply.reasoning, "thought": True}] if reply.reasoning else []

    @staticmethod
    def _candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish is not None:
            candidate["finishReason"] = finish
            if finish == "SAFETY":
                candidate["safetyRatings"] = [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
                ]
        return candidate

    def _blocked(self, ex: Exchange, response_id: str) -> dict[str, Any]:
        prompt = ex.input_tokens()
        return {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt},
            "modelVersion": ex.model,
            "responseId": response_id,
        }

    def _response(self, ex: Exchange) -> dict[str, Any]:
        response_id = uuid.uuid4().hex[:22]
        if ex.reply.finish == "blocked":
            return self._blocked(ex, response_id)
        pieces, calls, finish = self._shape(ex)
        parts = self._thought_parts(ex.reply)
        parts += [{"text": "".join(pieces)}] if pieces else []
        parts += self._call_parts(calls)
        return {
            "candidates": [self._candidate(parts or [{"text": ""}], finish)],
            "usageMetadata": self._usage(ex, pieces, calls),
            "modelVersion": ex.model,
            "responseId": response_id,
        }

    async def _stream(self, ex: Exchange) -> web.StreamResponse:
        response_id = uuid.uuid4().hex[:22]
        if ex.reply.finish == "blocked":
            return await ex.stream(
                [_frame(self._blocked(ex, response_id))], content_type="text/event-stream"
            )
        pieces, calls, finish = self._shape(ex)
        usage = self._usage(ex, pieces, calls)
        early_usage = {
            "promptTokenCount": usage["promptTokenCount"],
            "totalTokenCount": usage["promptTokenCount"],
        }
        thought = self._thought_parts(ex.reply)
        chunks: list[list[dict[str, Any]]] = [thought] if thought else []
        chunks += [[{"text": p}] for p in pieces]
        if calls:
            chunks.append(self._call_parts(calls))
        if not chunks:
            chunks.append([{"text": ""}])
        frames = []
        for index, parts in enumerate(chunks):
            last = index == len(chunks) - 1
            frames.append(
                _frame(
                    {
                        "candidates": [self._candidate(parts, finish if last else None)],
                        "usageMetadata": usage if last else early_usage,
                        "modelVersion": ex.model,
                        "responseId": response_id,
                    }
                )
            )
        return await ex.stream(frames, content_type="text/event-stream")

    # -- embeddings ---------------------------------------------------------------------

    async def _embed(  # noqa: PLR0911 - one return per rule
        self, ex: Exchange, model_id: str, method: str
    ) -> web.StreamResponse:
        model = ex.server.models.get(model_id)
        if model is None or not model.embeddings:
            return ex.error(404, _not_found(model_id, method), code="NOT_FOUND")
        body = ex.body
        if not isinstance(body, dict):
            return ex.error(400, "Request body must be a JSON object.")
        requests = body.get("requests") if method == "batchEmbedContents" else [body]
        if not isinstance(requests, list) or not requests:
            return ex.error(400, "* BatchEmbedContentsRequest.requests: requests is not specified")
        texts: list[tuple[str, int]] = []
        for index, entry in enumerate(requests):
            content = entry.get("content") if isinstance(entry, dict) else None
            if not isinstance(content, dict):
                return ex.error(400, f"* requests[{index}].content: content is not specified")
            named = entry.get("model")
            if method == "batchEmbedContents" and named not in (None, f"models/{model_id}"):
                return ex.error(
                    400,
                    f"Model names should match: requests[{index}].model is {named!r}, the "
                    f"call is for models/{model_id}.",
                )
            dims = entry.get("outputDimensionality") or EMBEDDING_DIMENSIONS
            text = "\n".join(_part_text(content.get("parts")))
            if estimate_tokens(text) > model.context_length:
                return ex.error(
                    400,
                    f"The input token count ({estimate_tokens(text)}) exceeds the maximum "
                    f"number of tokens allowed ({model.context_length}).",
                )
            texts.append((text, int(dims)))
        early = await self._prelude(ex)
        if early is not None:
            return early
        vectors = [{"values": _vector(text, dims)} for text, dims in texts]
        if method == "embedContent":
            return await ex.json({"embedding": vectors[0]})
        return await ex.json({"embeddings": vectors})

    # -- models -------------------------------------------------------------------------

    @staticmethod
    def _model_entry(model: FakeModel) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": f"models/{model.id}",
            "version": "001",
            "displayName": model.id.replace("-", " ").title(),
            "description": f"Fake model {model.id}",
            "inputTokenLimit": model.context_length,
            "outputTokenLimit": 1 if model.embeddings else 8192,
            "supportedGenerationMethods": _EMBED_METHODS if model.embeddings else _CHAT_METHODS,
        }
        if not model.embeddings:
            entry.update(temperature=1.0, maxTemperature=2.0, topP=0.95, topK=64)
        return entry

    def _model_page(self, server: FakeServer, request: web.Request) -> dict[str, Any]:
        models = list(server.models.values())
        try:
            size = max(1, min(1000, int(request.query.get("pageSize", "50"))))
            start = int(request.query.get("pageToken") or 0)
        except ValueError:
            size, start = 50, 0
        page = models[start : start + size]
        answer: dict[str, Any] = {"models": [self._model_entry(m) for m in page]}
        if start + size < len(models):
            answer["nextPageToken"] = str(start + size)
        return answer
