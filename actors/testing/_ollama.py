"""A fake Ollama server: the native ``/api`` routes (and ``/v1`` when available).

It answers the way Ollama does: NDJSON streams by default (``"stream": false`` for a
single object), durations in nanoseconds, tool calls with object arguments in a
``done:false`` line before the final ``done:true`` line, ``{"error": "text"}`` bodies,
loading on first use, and load / unload through an empty chat (``keep_alive: 0``
unloads). ``/api/ps`` lists only the loaded models, with their memory and the context
each is served with; a model whose ``keep_alive`` ran out is unloaded when ``/api/ps``
is next asked.

Context, as Ollama has it: a :class:`FakeModel`'s ``context_length`` is the length it
was *trained* for (``/api/show`` reports it). It is *served* with the request's
``options.num_ctx``, else :attr:`OllamaProtocol.default_num_ctx` (Ollama's default),
at most the trained length; a request asking for another context reloads the model. A
prompt longer than the served context is truncated silently, as Ollama does (it keeps
the prompt's end and logs "truncating input prompt"): ``prompt_eval_count`` reports
the tokens kept, and :attr:`OllamaProtocol.truncated` records it. A request with
``"truncate": false`` gets Ollama's error instead.

Figures are deterministic so tests can assert them: prompt evaluation takes 0.5 ms per
token, generation 20 ms per token (50 tokens/s), a load 1.5 ms plus the model's
``load_delay``.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import json
import math
import re
import struct
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from aiohttp import web

from actors.testing._server import (
    Exchange,
    FakeModel,
    FakeProtocol,
    FakeServer,
    Reply,
    ToolChoice,
    estimate_tokens,
)

__all__ = ["OllamaProtocol"]

PROMPT_NS_PER_TOKEN = 500_000
"""Reported prompt evaluation time per input token (0.5 ms)."""
EVAL_NS_PER_TOKEN = 20_000_000
"""Reported generation time per output token (20 ms: 50 tokens/s)."""
LOAD_NS = 1_500_000
"""Reported load time when the model was already resident (1.5 ms)."""
EMBEDDING_DIM = 16
"""Length of the fake embedding vectors (``dimensions`` in the request overrides it)."""
DEFAULT_KEEP_ALIVE_S = 300.0
"""How long a model stays loaded after a request, unless the request says otherwise."""
DEFAULT_NUM_CTX = 4096
"""The context a model is served with when the request sets no ``num_ctx`` (Ollama's
default on a machine with less than 24 GiB of GPU memory)."""

EMBED_TOO_LONG = "the input length exceeds the context length"
"""``/api/embed``'s error (HTTP 400) for an input over the served context with
``"truncate": false``, as Ollama 0.13.3 and later word it (0.12.0 to 0.13.2 said "input
exceeds maximum context length", earlier versions "input length exceeds maximum context
length")."""


def chat_too_long(tokens: int, context: int) -> str:
    """``/api/chat``'s error text for a prompt over the served context (``truncate: false``).

    Ollama relays the llama.cpp runner's whole error body as the text (HTTP 400).
    """
    runner = {
        "error": {
            "code": 400,
            "message": f"request ({tokens} tokens) exceeds the available context size "
            f"({context} tokens), try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": tokens,
            "n_ctx": context,
        }
    }
    return json.dumps(runner, separators=(",", ":"))


_DEFAULT_MESSAGES = {
    400: "invalid request",
    401: "unauthorized",
    403: "forbidden",
    404: "model not found",
    408: "request timed out",
    429: "too many requests, please retry later",
    500: "the model failed to generate a response",
    502: "an error occurred while communicating with the remote model",
    503: "server busy, please try again.  maximum pending requests exceeded",
    504: "timed out waiting for the model",
}
_CODE_MESSAGES = {
    "context_length_exceeded": EMBED_TOO_LONG,
    "model_not_found": "model not found, try pulling it first",
    "rate_limit_exceeded": "too many requests, please retry later",
    "overloaded": "server busy, please try again.  maximum pending requests exceeded",
}

_openai_dialect: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "fake_ollama_openai_dialect", default=None
)
"""While a ``/v1`` route is being served: the OpenAI protocol whose bodies it renders."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _now() -> str:
    """A timestamp in Ollama's style (RFC 3339, fractional seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rfc3339(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat()


def parse_keep_alive(value: Any) -> float | None:
    """Seconds from a ``keep_alive``: a number of seconds or a duration ("5m", "1h30m").

    Negative means "forever" (returned as ``math.inf``); ``None`` when absent or not
    understood (the default then applies).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return math.inf if value < 0 else float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return math.inf if seconds < 0 else seconds
    sign = -1.0 if text.startswith("-") else 1.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text.lstrip("+-"))
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+-"):
        return None
    scale = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total = sum(float(n) * scale[u] for n, u in parts) * sign
    return math.inf if total < 0 else total


def fake_vector(model: str, text: str, dim: int = EMBEDDING_DIM) -> list[float]:
    """A deterministic unit vector for a text (the same text always maps to the same one)."""
    raw = b""
    counter = 0
    while len(raw) < dim * 4:
        raw += hashlib.sha256(f"{model}\0{text}\0{counter}".encode()).digest()
        counter += 1
    values = [(n / 0xFFFFFFFF) * 2.0 - 1.0 for n in struct.unpack(f"<{dim}I", raw[: dim * 4])]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 8) for v in values]


def _family(model: FakeModel) -> str:
    return "nomic-bert" if model.embeddings else "llama"


def _details(model: FakeModel) -> dict[str, Any]:
    family = _family(model)
    params = model.size_bytes * 2 / 1e9
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": f"{params:.1f}B" if params >= 1 else f"{params * 1000:.0f}M",
        "quantization_level": "F16" if model.embeddings else "Q4_K_M",
    }


def _digest(model: FakeModel) -> str:
    return hashlib.sha256(model.id.encode()).hexdigest()


class OllamaProtocol(FakeProtocol):
    """Ollama's native API on the fake-server engine (default port 11434)."""

    name: ClassVar[str] = "ollama"
    version: ClassVar[str] = "0.13.3"
    """What ``/api/version`` reports (the first version whose ``/api/embed`` error the
    fake words as :data:`EMBED_TOO_LONG`)."""

    def __init__(self, *, default_num_ctx: int = DEFAULT_NUM_CTX) -> None:
        self._expires: dict[str, float] = {}
        self._modified = time.time() - 86_400
        self.default_num_ctx = default_num_ctx
        """The served context when a request sets no ``num_ctx`` (``OLLAMA_CONTEXT_LENGTH``)."""
        self.served: dict[str, int] = {}
        """The context each loaded model was loaded with, by model id."""
        self.truncated: list[tuple[str, int, int]] = []
        """Prompts cut to fit: ``(model, prompt tokens, tokens kept)``, in order."""

    # -- FakeProtocol ---------------------------------------------------------------------

    def routes(self, server: FakeServer) -> list[web.RouteDef]:
        """The native routes, plus the OpenAI-compatible ``/v1`` ones when available."""
        native = _Routes(self, server)
        table = [
            web.get("/", native.root),
            web.post("/api/chat", _quiet(native.chat)),
            web.post("/api/generate", _quiet(native.generate)),
            web.get("/api/tags", native.tags),
            web.get("/api/ps", native.ps),
            web.post("/api/show", native.show),
            web.post("/api/embed", native.embed),
            web.post("/api/embeddings", native.embeddings_legacy),
            web.get("/api/version", native.version),
        ]
        return table + self._openai_routes(server)

    def error_body(self, status: int, message: str | None, code: str | None) -> Any:
        """``{"error": "text"}`` (OpenAI's shape while serving a ``/v1`` route)."""
        dialect = _openai_dialect.get()
        if dialect is not None:
            return dialect.error_body(status, message, code)
        return self.native_error_body(status, message, code)

    def native_error_body(self, status: int, message: str | None, code: str | None) -> Any:
        """``{"error": "text"}``, with Ollama's wording when no message is given."""
        if message is None:
            message = _CODE_MESSAGES.get(code or "") or _DEFAULT_MESSAGES.get(status)
            if message is None:
                message = "internal error" if status >= 500 else "bad request"
        return {"error": message}

    def stream_error_frame(self, message: str | None, code: str | None) -> bytes:
        """An NDJSON ``{"error": ...}`` line (the HTTP status stays 200)."""
        dialect = _openai_dialect.get()
        if dialect is not None:
            frame: bytes = dialect.stream_error_frame(message, code)
            return frame
        default = "an error was encountered while running the model"
        text = message or _CODE_MESSAGES.get(code or "") or default
        return json.dumps({"error": text}).encode() + b"\n"

    def garbage_frame(self) -> bytes:
        """A line that is not JSON."""
        dialect = _openai_dialect.get()
        if dialect is not None:
            frame: bytes = dialect.garbage_frame()
            return frame
        return b'{"model": "x", "message": {"role": "assistant", "content": "unterminated\n'

    def interrupted_frame(self) -> bytes:
        """Nothing natively (OpenAI's ``data: [DONE]`` while serving a ``/v1`` route)."""
        dialect = _openai_dialect.get()
        if dialect is not None:
            frame: bytes = dialect.interrupted_frame()
            return frame
        return b""

    def max_output_tokens(self, body: Any) -> int | None:
        """``options.num_predict`` (``max_tokens`` while serving a ``/v1`` route)."""
        dialect = _openai_dialect.get()
        if dialect is not None:
            limit: int | None = dialect.max_output_tokens(body)
            return limit
        options = body.get("options") if isinstance(body, dict) else None
        value = options.get("num_predict") if isinstance(options, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        return None

    def tool_choice(self, body: Any) -> ToolChoice | None:
        """None natively: Ollama's API has no ``tool_choice`` (OpenAI's on ``/v1``)."""
        dialect = _openai_dialect.get()
        if dialect is not None:
            choice: ToolChoice | None = dialect.tool_choice(body)
            return choice
        return None

    def declared_tools(self, body: Any) -> dict[str, dict[str, Any]]:
        """``tools[].function``: name -> ``parameters``."""
        dialect = _openai_dialect.get()
        if dialect is not None:
            tools: dict[str, dict[str, Any]] = dialect.declared_tools(body)
            return tools
        found: dict[str, dict[str, Any]] = {}
        for tool in (body.get("tools") if isinstance(body, dict) else None) or []:
            function = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                parameters = function.get("parameters")
                found[function["name"]] = parameters if isinstance(parameters, dict) else {}
        return found

    def error_headers(self, status: int) -> dict[str, str]:
        """None natively (OpenAI's while serving a ``/v1`` route)."""
        dialect = _openai_dialect.get()
        if dialect is not None:
            headers: dict[str, str] = dialect.error_headers(status)
            return headers
        return {}

    def response_headers(self, exchange: Exchange) -> dict[str, str]:
        """None natively (OpenAI's while serving a ``/v1`` route)."""
        dialect = _openai_dialect.get()
        if dialect is not None and hasattr(dialect, "response_headers"):
            headers: dict[str, str] = dialect.response_headers(exchange)
            return headers
        return {}

    def prompt_text(self, body: Any) -> str:
        """The text of chat messages, a generate prompt (and system), or embed inputs."""
        dialect = _openai_dialect.get()
        if dialect is not None:
            text: str = dialect.prompt_text(body)
            return text
        if not isinstance(body, dict):
            return ""
        parts: list[str] = []
        messages = body.get("messages")
        if isinstance(messages, list):
            parts.extend(
                m["content"]
                for m in messages
                if isinstance(m, dict) and isinstance(m.get("content"), str)
            )
        parts.extend(body[k] for k in ("system", "prompt") if isinstance(body.get(k), str))
        value = body.get("input")
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.extend(v for v in value if isinstance(v, str))
        return "\n".join(parts)

    def model_of(self, request: web.Request, body: Any) -> str | None:
        """The body's ``model`` (or the older ``name``)."""
        if isinstance(body, dict):
            for key in ("model", "name"):
                value = body.get(key)
                if isinstance(value, str):
                    return value
        return None

    # -- helpers --------------------------------------------------------------------------

    def resolve(self, server: FakeServer, name: str | None) -> FakeModel | None:
        """A model by name, with Ollama's implicit ``:latest`` tag either way."""
        if not name:
            return None
        for candidate in (name, f"{name}:latest", name.removesuffix(":latest")):
            if candidate in server.models:
                return server.models[candidate]
        return None

    def touch(self, model: FakeModel, keep_alive: Any) -> None:
        """Note a request's ``keep_alive`` (when the model will be unloaded)."""
        seconds = parse_keep_alive(keep_alive)
        if seconds is None:
            seconds = DEFAULT_KEEP_ALIVE_S
        self._expires[model.id] = time.time() + seconds

    def expire(self, server: FakeServer) -> None:
        """Unload the models whose keep-alive ran out."""
        now = time.time()
        for model_id, when in list(self._expires.items()):
            model = server.models.get(model_id)
            if model is None or not model.loaded:
                self._expires.pop(model_id, None)
            elif when <= now:
                server.set_loaded(model_id, False)
                self._expires.pop(model_id, None)

    def requested_context(self, model: FakeModel, body: Any) -> int:
        """The context a request gets (its ``options.num_ctx``, else the default).

        At most the model's trained length, as Ollama clamps it.
        """
        options = body.get("options") if isinstance(body, dict) else None
        value = options.get("num_ctx") if isinstance(options, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            value = self.default_num_ctx
        return min(value, model.context_length)

    def served_context(self, model: FakeModel) -> int:
        """The context a loaded model is served with (as ``/api/ps`` reports it)."""
        return self.served.get(model.id) or min(self.default_num_ctx, model.context_length)

    def expires_at(self, model: FakeModel) -> str:
        """When a loaded model will be unloaded, as ``/api/ps`` reports it."""
        when = self._expires.get(model.id, time.time() + DEFAULT_KEEP_ALIVE_S)
        if math.isinf(when):
            return (datetime.now(UTC) + timedelta(days=365 * 290)).isoformat()
        return _rfc3339(when)

    def _openai_routes(self, server: FakeServer) -> list[web.RouteDef]:
        """``/v1`` routes of the OpenAI-compatible fake, as Ollama serves them.

        Optional: when the OpenAI fake is missing or does not fit, only ``/api`` is
        served. While a ``/v1`` route runs, error bodies and stream frames are OpenAI's
        (with Ollama's wording: ``type`` is ``invalid_request_error``,
        ``not_found_error`` or ``api_error`` and ``code`` is null). ``tool_choice`` is
        ignored there, as Ollama's ``/v1`` does not read it.
        """
        try:
            dialect = _ollama_openai_dialect(self)
            if dialect is None:
                return []
            theirs = dialect.openai_routes(server, "/v1")
        except Exception:  # noqa: BLE001 - the /v1 routes are an extra; never break /api
            return []
        return [
            web.route(route.method, route.path, _quiet(_in_dialect(dialect, route.handler)))
            for route in theirs
            if isinstance(route, web.RouteDef)
        ]


def _ollama_openai_dialect(native: OllamaProtocol) -> Any:
    """The OpenAI fake, adjusted to what Ollama's ``/v1`` says (``None`` when unusable)."""
    try:
        module = importlib.import_module("actors.testing._openai")
        base = module.OpenAIProtocol
    except Exception:  # noqa: BLE001 - optional, see OllamaProtocol._openai_routes
        return None

    class OllamaOpenAI(base):  # type: ignore[misc,valid-type]
        owned_by = "library"
        reasoning_models = ()

        def tool_choice(self, body: Any) -> ToolChoice | None:
            return None  # Ollama's /v1 has no tool_choice: the field is ignored

        def resolve_model(self, server: FakeServer, name: str | None) -> str | None:
            model = native.resolve(server, name)
            return None if model is None else model.id

        def unknown_model(self, exchange: Exchange, name: str | None) -> web.StreamResponse:
            if name is None:
                return exchange.error(400, "model is required")
            return exchange.error(404, f"model '{name}' not found")

        def error_body(self, status: int, message: str | None, code: str | None) -> Any:
            etype = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
            text = message or native.native_error_body(status, None, code)["error"]
            return {"error": {"message": text, "type": etype, "param": None, "code": None}}

    return OllamaOpenAI()


def _quiet(handler: Handler) -> Handler:
    """Serve ``handler``; a client that went away mid-stream is not a server error."""

    async def serve(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConnectionResetError:
            # The client closed the connection (it gave up on a stalled stream): there is
            # no one to answer, and aiohttp would otherwise log a handler failure.
            return web.Response(status=499)

    return serve


def _in_dialect(dialect: Any, handler: Any) -> Handler:
    """Serve ``handler`` with OpenAI's error bodies and stream frames."""

    async def serve(request: web.Request) -> web.StreamResponse:
        token = _openai_dialect.set(dialect)
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            _openai_dialect.reset(token)

    return serve


class _Routes:
    """The native handlers, bound to one server."""

    def __init__(self, protocol: OllamaProtocol, server: FakeServer) -> None:
        self.protocol = protocol
        self.server = server

    # -- shared checks --------------------------------------------------------------------

    def _unauthorized(self, ex: Exchange) -> web.Response | None:
        if self.server.api_key is None:
            return None
        header = ex.request.headers.get("Authorization", "")
        presented = header.removeprefix("Bearer ").strip() if header else None
        if self.server.check_key(presented):
            return None
        return ex.error(401, "unauthorized")

    async def _start(
        self, request: web.Request, *, needs_model: bool = True
    ) -> tuple[Exchange, FakeModel | None, web.StreamResponse | None]:
        """Record the call; the model, or the response to send instead."""
        ex = await self.server.exchange(request)
        refused = self._unauthorized(ex)
        if refused is not None:
            return ex, None, refused
        if not needs_model:
            early = await ex.prelude()
            return ex, None, early
        if not isinstance(ex.body, dict):
            return ex, None, ex.error(400, "missing request body")
        if not ex.model:
            return ex, None, ex.error(400, "model is required")
        model = self.protocol.resolve(self.server, ex.model)
        if model is None:
            return ex, None, ex.error(404, f"model '{ex.model}' not found", code="model_not_found")
        early = await ex.prelude()
        return ex, model, early

    async def _load(self, model: FakeModel, context: int | None = None) -> int:
        """Load on first use, or again for another context; the load time to report (ns).

        ``context``: what the request is served with (``None``: whatever is loaded, or
        the default).
        """
        served = self.protocol.served
        if model.loaded and (context is None or self.protocol.served_context(model) == context):
            served.setdefault(model.id, self.protocol.served_context(model))
            return LOAD_NS
        if context is None:
            context = min(self.protocol.default_num_ctx, model.context_length)
        self.server.set_loaded(model.id, False)
        await self.server.ensure_loaded(model.id)
        served[model.id] = context
        return LOAD_NS + round(model.load_delay * 1e9) + 250_000_000

    def _fit(self, ex: Exchange, model: FakeModel, context: int) -> web.Response | int | None:
        """What becomes of a prompt over ``context``; ``None`` when it fits.

        The tokens kept (it is truncated silently), or with ``"truncate": false`` the
        error to send.
        """
        tokens = estimate_tokens(ex.prompt_text())
        if tokens <= context:
            return None
        body = ex.body if isinstance(ex.body, dict) else {}
        if body.get("truncate") is False:
            return ex.error(400, chat_too_long(tokens, context))
        self.protocol.truncated.append((model.id, tokens, context))
        return context

    @staticmethod
    def _metrics(ex: Exchange, load_ns: int, kept: int | None = None) -> dict[str, Any]:
        prompt_tokens = ex.input_tokens() if kept is None else min(kept, ex.input_tokens())
        output_tokens = ex.output_tokens()
        prompt_ns = max(1, prompt_tokens) * PROMPT_NS_PER_TOKEN
        eval_ns = max(1, output_tokens) * EVAL_NS_PER_TOKEN
        return {
            "total_duration": load_ns + prompt_ns + eval_ns + 2_000_000,
            "load_duration": load_ns,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": prompt_ns,
            "eval_count": output_tokens,
            "eval_duration": eval_ns,
        }

    @staticmethod
    def _done_reason(reply: Reply) -> str:
        return "length" if reply.finish_reason == "length" else "stop"

    @staticmethod
    def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
        calls = []
        for index, call in enumerate(reply.tool_calls):
            wire: dict[str, Any] = {
                "function": {"index": index, "name": call.name, "arguments": call.arguments}
            }
            if call.id is not None:
                wire["id"] = call.id
            calls.append(wire)
        return calls

    @staticmethod
    def _ndjson(obj: Any) -> bytes:
        return json.dumps(obj).encode() + b"\n"

    def _load_answer(
        self, ex: Exchange, model: FakeModel, *, unload: bool, field: str
    ) -> web.Response:
        """The answer to an empty chat/generate: a load, or with keep_alive 0 an unload."""
        if unload:
            self.server.set_loaded(model.id, False)
            reason = "unload"
        else:
            reason = "load"
        body: dict[str, Any] = {"model": ex.model or model.id, "created_at": _now()}
        if field == "message":
            body["message"] = {"role": "assistant", "content": ""}
        else:
            body["response"] = ""
        body.update({"done_reason": reason, "done": True})
        return web.json_response(body)

    # -- handlers -------------------------------------------------------------------------

    async def root(self, request: web.Request) -> web.StreamResponse:
        """``GET /``: the liveness text Ollama answers with."""
        return web.Response(text="Ollama is running")

    async def version(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/version``."""
        return web.json_response({"version": self.protocol.version})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/chat``: NDJSON by default, one object with ``"stream": false``."""
        return await self._generate(request, field="message")

    async def generate(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/generate``: the same, with ``response`` text instead of a message."""
        return await self._generate(request, field="response")

    async def _generate(  # noqa: PLR0911 - one return per way a request can end
        self, request: web.Request, *, field: str
    ) -> web.StreamResponse:
        ex, model, early = await self._start(request)
        if early is not None:
            return early
        assert model is not None
        assert isinstance(ex.body, dict)
        body: dict[str, Any] = ex.body
        if model.embeddings:
            what = "chat" if field == "message" else "generate"
            return ex.error(400, f'"{model.id}" does not support {what}')
        keep_alive = body.get("keep_alive")
        unload = parse_keep_alive(keep_alive) == 0
        empty = not body.get("messages") if field == "message" else not body.get("prompt")
        context = self.protocol.requested_context(model, body)
        if empty:
            if not unload:
                await self._load(model, context)
                self.protocol.touch(model, keep_alive)
            return self._load_answer(ex, model, unload=unload, field=field)
        if body.get("tools") and not model.tools:
            return ex.error(400, f"registry.ollama.ai/library/{model.id} does not support tools")
        fit = self._fit(ex, model, context)
        if isinstance(fit, web.StreamResponse):
            return fit
        load_ns = await self._load(model, context)
        self.protocol.touch(model, keep_alive)
        reply = ex.reply
        name = ex.model or model.id  # Ollama echoes the name as the request gave it
        metrics = self._metrics(ex, load_ns, fit)
        done_reason = self._done_reason(reply)
        calls = self._tool_calls(reply) if field == "message" else []
        try:
            if body.get("stream", True) is False:
                answer: dict[str, Any] = {"model": name, "created_at": _now()}
                if field == "message":
                    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
                    if calls:
                        message["tool_calls"] = calls
                    answer["message"] = message
                else:
                    answer["response"] = reply.text
                answer.update({"done": True, "done_reason": done_reason, **metrics})
                return await ex.json(answer)
            frames, tokens = self._frames(
                name=name,
                reply=reply,
                field=field,
                calls=calls,
                done_reason=done_reason,
                metrics=metrics,
            )
            return await ex.stream(frames, content_type="application/x-ndjson", tokens=tokens)
        finally:
            if unload:
                self.server.set_loaded(model.id, False)

    def _frames(
        self,
        *,
        name: str,
        reply: Reply,
        field: str,
        calls: list[dict[str, Any]],
        done_reason: str,
        metrics: dict[str, Any],
    ) -> tuple[list[bytes], list[bool]]:
        """The NDJSON lines of a streamed answer, and which of them carry a token."""
        frames: list[bytes] = []
        tokens: list[bool] = []

        def line(piece: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
            chunk: dict[str, Any] = {"model": name, "created_at": _now()}
            if field == "message":
                chunk["message"] = {"role": "assistant", "content": piece, **(extra or {})}
            else:
                chunk["response"] = piece
            return chunk

        for piece in reply.tokens():
            frames.append(self._ndjson({**line(piece), "done": False}))
            tokens.append(True)
        if calls:
            frames.append(self._ndjson({**line("", {"tool_calls": calls}), "done": False}))
            tokens.append(True)
        final = {**line(""), "done": True, "done_reason": done_reason, **metrics}
        frames.append(self._ndjson(final))
        tokens.append(False)
        return frames, tokens

    async def tags(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/tags``: every downloaded model, with its size on disk."""
        ex, _, early = await self._start(request, needs_model=False)
        if early is not None:
            return early
        modified = _rfc3339(self.protocol._modified)
        models = [
            {
                "name": m.id,
                "model": m.id,
                "modified_at": modified,
                "size": m.size_bytes,
                "digest": _digest(m),
                "details": _details(m),
            }
            for m in list(self.server.models.values())
        ]
        return await ex.json({"models": models})

    async def ps(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/ps``: the loaded models, their memory and context window."""
        ex, _, early = await self._start(request, needs_model=False)
        if early is not None:
            return early
        self.protocol.expire(self.server)
        models = [
            {
                "name": m.id,
                "model": m.id,
                "size": m.resident_bytes,
                "digest": _digest(m),
                "details": _details(m),
                "expires_at": self.protocol.expires_at(m),
                "size_vram": m.resident_bytes,
                "context_length": self.protocol.served_context(m),
            }
            for m in list(self.server.models.values())
            if m.loaded
        ]
        return await ex.json({"models": models})

    async def show(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/show``: details, ``model_info`` and ``capabilities``."""
        ex, model, early = await self._start(request)
        if early is not None:
            return early
        assert model is not None
        family = _family(model)
        arch = "bert" if model.embeddings else "llama"
        capabilities = ["embedding"] if model.embeddings else ["completion"]
        if model.tools and not model.embeddings:
            capabilities.append("tools")
        info: dict[str, Any] = {
            "general.architecture": arch,
            "general.basename": model.id.split(":")[0],
            "general.parameter_count": model.size_bytes * 2,
            f"{arch}.context_length": model.context_length,
            f"{arch}.embedding_length": EMBEDDING_DIM if model.embeddings else 4096,
        }
        return await ex.json(
            {
                "license": "",
                "modelfile": f"FROM {model.id}\n",
                "parameters": 'stop "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": {**_details(model), "family": family},
                "model_info": info,
                "capabilities": capabilities,
                "modified_at": _rfc3339(self.protocol._modified),
            }
        )

    async def embed(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/embed``: one deterministic unit vector per input."""
        ex, model, early = await self._start(request)
        if early is not None:
            return early
        assert model is not None
        assert isinstance(ex.body, dict)
        raw = ex.body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            return ex.error(400, "invalid input type")
        context = self.protocol.requested_context(model, ex.body)
        dim = ex.body.get("dimensions")
        size = dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None
        load_ns = await self._load(model, context)  # Ollama loads before it looks
        self.protocol.touch(model, ex.body.get("keep_alive"))
        if ex.body.get("truncate") is False:
            # Ollama (0.13.3 and later) names neither the input nor the context.
            for text in inputs:
                if estimate_tokens(text) > context:
                    return ex.error(400, EMBED_TOO_LONG, code="context_length_exceeded")
        count = 0
        for text in inputs:  # truncate absent or true: each input is cut to fit, silently
            tokens = estimate_tokens(text)
            if tokens > context:
                self.protocol.truncated.append((model.id, tokens, context))
            count += min(tokens, context)
        return await ex.json(
            {
                "model": ex.model or model.id,
                "embeddings": [fake_vector(model.id, t, size or EMBEDDING_DIM) for t in inputs],
                "total_duration": load_ns + count * PROMPT_NS_PER_TOKEN + 1_000_000,
                "load_duration": load_ns,
                "prompt_eval_count": count,
            }
        )

    async def embeddings_legacy(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/embeddings`` (the older route): ``{"embedding": [...]}``."""
        ex, model, early = await self._start(request)
        if early is not None:
            return early
        assert model is not None
        assert isinstance(ex.body, dict)
        prompt = ex.body.get("prompt")
        await self._load(model)
        self.protocol.touch(model, ex.body.get("keep_alive"))
        text = prompt if isinstance(prompt, str) else ""
        return await ex.json({"embedding": fake_vector(model.id, text)})
