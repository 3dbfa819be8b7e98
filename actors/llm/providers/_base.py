"""What every provider shares: the interface, HTTP calls, error mapping, stream framing.

A provider is a wire adapter for one protocol. It turns a :class:`~actors.ChatRequest`
into that protocol's HTTP request and the server's answer into a
:class:`~actors.Completion`, and it turns every way a call can go wrong (a status code
with a vendor-specific body, a refused connection, a stream that breaks, stalls or sends
garbage) into a :class:`ProviderError` carrying one typed :class:`~actors.Failure`.

Providers are plain asyncio objects driven on the I/O loop; they hold no actor state.
The :class:`~actors.ModelHost` actor owns concurrency, breakers and statistics.
"""

from __future__ import annotations

import abc
import asyncio
import datetime
import email.utils
import json
import math
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx
import msgspec

import otel
from actors import Failure, FailureKind
from actors.llm._messages import (
    ChatRequest,
    Completion,
    Embeddings,
    EmbedRequest,
    ModelInfo,
    TextDelta,
    estimate_prompt_tokens,
)

__all__ = [
    "Provider",
    "ProviderError",
    "SseEvent",
    "StreamProgress",
    "Timeouts",
    "failure_from_exception",
    "make_client",
    "parse_retry_after",
]

StreamEvent = TextDelta | Completion


class ProviderError(Exception):
    """A provider call failed; ``failure`` says how, in the one taxonomy."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(f"{failure.kind}: {failure.message}")
        self.failure = failure


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long a provider waits.

    Attributes:
        connect: To open a connection.
        read: Between bytes of a non-streaming answer (the whole-request deadline is the
            request's own ``deadline``, enforced by the host).
        stream_idle: Between events of a streaming answer; a stream silent for longer is
            a ``timeout`` failure that says how much had arrived.
    """

    connect: float = 5.0
    read: float = 300.0
    stream_idle: float = 60.0


def tls_context(
    ca_file: str | None = None,
    *,
    verify: bool = True,
    client_cert: str | None = None,
    client_key: str | None = None,
) -> ssl.SSLContext:
    """The TLS context of a host's client: what its certificate is checked against.

    The usual CA certificates (certifi's, or the file or directory that
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name), and ``ca_file``'s beside them. With
    ``verify`` false nothing is checked (a development server's self-signed certificate).
    ``client_cert`` (and ``client_key`` when the key is apart) is presented to a
    server that asks for one (mutual TLS).
    """
    if not verify:
        context = httpx.create_ssl_context(verify=False)
    else:
        context = httpx.create_ssl_context(verify=True, trust_env=True)
        if ca_file is not None:
            context.load_verify_locations(cafile=ca_file)
    if client_cert is not None:
        context.load_cert_chain(client_cert, client_key)
    return context


def make_client(
    *,
    max_connections: int = 256,
    timeouts: Timeouts = Timeouts(),
    aiohttp: bool = True,
    tls: ssl.SSLContext | None = None,
    proxy: str | None = None,
) -> httpx.AsyncClient:
    """An httpx client on the aiohttp transport (or httpx's own with ``aiohttp=False``).

    httpx's default transport is slow under concurrency; the aiohttp transport (the one
    the OpenAI SDK also offers) is what every provider uses. The client is an
    :class:`~actors.llm.providers._aio.AioClient`: a provider's requests, whole or
    streamed, skip httpx's models (its ``fetch`` and ``open``). Create and use the
    client on the I/O loop: the aiohttp session binds to the loop of its first request.

    ``tls`` checks the servers' certificates (default: :func:`tls_context`'s); every
    request goes through ``proxy`` when one is given (proxy variables of the
    environment are never read).
    """
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    timeout = httpx.Timeout(timeouts.read, connect=timeouts.connect, pool=None)
    hooks = {"request": [send_trace_context]}
    context = tls or tls_context()
    if not aiohttp:
        return httpx.AsyncClient(
            limits=limits,
            timeout=timeout,
            trust_env=False,
            event_hooks=hooks,
            verify=context,
            proxy=proxy,
        )
    from actors.llm.providers import _aio  # noqa: PLC0415 - keeps aiohttp's import off the CLI

    return _aio.AioClient(
        transport=_aio.transport(limits, tls=context, proxy=proxy),
        timeout=timeout,
        trust_env=False,
        event_hooks=hooks,
    )


async def send_trace_context(request: httpx.Request) -> None:
    """Request hook: W3C ``traceparent`` (and ``tracestate``) of the current span.

    The host makes a call's ``chat {model}`` span current around it, so the server sees
    that span as its caller and its own spans join the run's trace. With tracing off
    (or no span current) nothing is added.
    """
    if not otel.enabled():
        return
    carrier = otel.inject()
    if carrier:
        request.headers.update(carrier)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, else ``retry-after`` (seconds or a date).

    An HTTP-date is GMT whatever zone it names: the obsolete forms (asctime's, or a
    ``-0000`` offset) carry none and are read as GMT, never as this machine's local
    time. A value that is no finite number (``inf``, ``nan``) is ignored: waiting for
    ever is no instruction.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        seconds = _finite(raw_ms)
        if seconds is not None:
            return max(0.0, seconds / 1000.0)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _finite(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(slots=True)
class StreamProgress:
    """How much of a streamed answer had arrived, for the failure when it breaks.

    The text itself is kept too: a failure mid-stream carries it (``received_text`` in
    its details), so a caller or a fallback chain can still use or show it.
    """

    events: int = 0
    chars: int = 0
    tool_calls: int = 0
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    pieces: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    """Prompt tokens, once the server reported them (Anthropic does in ``message_start``)."""
    output_tokens: int | None = None
    """Output tokens, once the server reported them."""

    def usage(self, input_tokens: object, output_tokens: object) -> None:
        """Keep the token counts a stream reported so far (a failure's details carry them)."""
        if isinstance(input_tokens, int) and not isinstance(input_tokens, bool):
            self.input_tokens = input_tokens
        if isinstance(output_tokens, int) and not isinstance(output_tokens, bool):
            self.output_tokens = output_tokens

    def text(self, piece: str) -> None:
        """Count (and keep) a piece of streamed text."""
        if piece and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.chars += len(piece)
        if piece:
            self.pieces.append(piece)

    @property
    def received_text(self) -> str:
        """The text that arrived so far."""
        return "".join(self.pieces)

    @property
    def ttft_s(self) -> float | None:
        """Time to the first token, once one arrived."""
        return None if self.first_token_at is None else self.first_token_at - self.started

    def details(self) -> dict[str, str]:
        """The figures (and the text received, when any), as a failure's details."""
        details = {
            "received_events": str(self.events),
            "received_chars": str(self.chars),
            "received_tool_calls": str(self.tool_calls),
        }
        if self.pieces:
            details["received_text"] = self.received_text
        if self.input_tokens is not None:
            details["input_tokens"] = str(self.input_tokens)
        if self.output_tokens is not None:
            details["output_tokens"] = str(self.output_tokens)
        return details

    def describe(self) -> str:
        """A human summary: "after 12 events (340 chars)"."""
        return f"after {self.events} events ({self.chars} chars of text)"


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One server-sent event: its ``event:`` name ("" when none) and its data."""

    event: str
    data: str


class Body(Protocol):
    """A streamed response's body: ``httpx.Response`` or the direct path's ``Answer``."""

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        ...


_ENCODER = msgspec.json.Encoder()


def _encode_json(body: Any) -> bytes:
    """A request body as compact UTF-8 JSON (what httpx's ``json=`` sends)."""
    return _ENCODER.encode(body)


def _decode_json(content: bytes) -> Any:
    """A JSON body; the standard library's reading where msgspec's is stricter (``NaN``)."""
    try:
        return msgspec.json.decode(content)
    except msgspec.DecodeError:
        return json.loads(content)


_CONNECTION_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.CloseError,
    httpx.ProxyError,
)
_TIMEOUT_ERRORS = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout, TimeoutError)


def failure_from_exception(
    exc: BaseException,
    *,
    source: str,
    model: str | None = None,
    progress: StreamProgress | None = None,
) -> Failure:
    """Map a transport-level exception to a failure (``connection`` or ``timeout``)."""
    details: dict[str, str] = {"exception": type(exc).__name__}
    if model:
        details["model"] = model
    where = ""
    if progress is not None:
        details.update(progress.details())
        where = f" mid-stream {progress.describe()}"
    if isinstance(exc, _TIMEOUT_ERRORS):
        kind = FailureKind.TIMEOUT
        what = "timed out"
    elif isinstance(exc, _CONNECTION_ERRORS):
        kind = FailureKind.CONNECTION
        what = "connection failed" if progress is None else "connection broke"
    else:
        kind = FailureKind.INTERNAL
        what = "unexpected error"
    text = str(exc) or type(exc).__name__
    return Failure(
        kind=kind, message=f"{source}: {what}{where}: {text}", source=source, details=details
    )


def _error_fields(payload: Any) -> tuple[str, str, str]:
    """(message, type, code) from any vendor's error body; "" where absent.

    Accepts ``{"error": {...}}`` (OpenAI, Anthropic, llama.cpp, new vLLM, Gemini), the
    flat ``{"object": "error", "message": ...}`` (older vLLM) and ``{"error": "text"}``
    (Ollama native).
    """
    if not isinstance(payload, dict):
        return ("", "", "")
    err = _unwrapped(payload.get("error", payload))
    if isinstance(err, str):
        return (err, "", "")
    if not isinstance(err, dict):
        return ("", "", "")
    message = err.get("message")
    etype = err.get("type") or err.get("status") or ""
    code = err.get("code")
    details = err.get("details")
    if isinstance(details, dict) and isinstance(details.get("error_code"), str):
        code = details["error_code"]
    return (
        message if isinstance(message, str) else "",
        etype if isinstance(etype, str) else "",
        "" if code is None else str(code),
    )


def _unwrapped(err: Any) -> Any:
    """An error given as the JSON text of another server's error body, parsed.

    Ollama relays a refusal of the llama.cpp runner under it as a string holding that
    runner's whole body (``{"error": "<the runner's JSON body>"}``, whose error has
    ``type: exceed_context_size_error``, ``n_prompt_tokens`` and ``n_ctx``). Parsed,
    its message, type and figures are read as any other's.
    """
    if not (isinstance(err, str) and err.startswith("{") and err.endswith("}")):
        return err
    try:
        inner = json.loads(err)
    except ValueError:
        return err
    nested = inner.get("error") if isinstance(inner, dict) else None
    return nested if isinstance(nested, dict | str) and nested else err


def _context_figures(payload: Any) -> dict[str, str]:
    """The prompt's tokens and the context a refusal names (llama.cpp's, also via Ollama)."""
    err = _unwrapped(payload.get("error")) if isinstance(payload, dict) else None
    if not isinstance(err, dict):
        return {}
    figures: dict[str, str] = {}
    for key, name in (("n_prompt_tokens", "prompt_tokens"), ("n_ctx", "context_length")):
        value = err.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            figures[name] = str(value)
    return figures


def _error_param(payload: Any) -> str:
    """The request field an error body blames (OpenAI's ``error.param``), "" where none."""
    err = payload.get("error") if isinstance(payload, dict) else None
    param = err.get("param") if isinstance(err, dict) else None
    return param if isinstance(param, str) else ""


_CONTEXT_HINTS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "exceeds the context",
    "input context too long",
    "exceed_context_size",  # llama.cpp's type, also relayed by Ollama
    "available context size",  # llama.cpp: "... exceeds the available context size ..."
)
_POLICY_HINTS = ("content_policy", "content_filter", "safety", "policy violation")
_SHAPE_HINTS = ("validation error for", "validation errors for")
"""A 5xx whose body says this is a rejection of the request's shape, not a server fault:
llama-cpp-python answers 500 with pydantic's text ("1 validation error for
ChatCompletionRequestAssistantMessage ...") for a body it cannot validate."""


def rejects_request_shape(status: int, message: str) -> bool:
    """Whether a 5xx answer is really a validation error about the request."""
    low = message.lower()
    return status >= 500 and any(hint in low for hint in _SHAPE_HINTS)


def classify_status(  # noqa: PLR0911 - one return per row of the table
    status: int, etype: str, code: str, message: str
) -> FailureKind:
    """The failure kind for an HTTP error, from its status and the vendor's error fields."""
    low = f"{etype} {code} {message}".lower()
    if any(h in low for h in _CONTEXT_HINTS):
        return FailureKind.CONTEXT_WINDOW_EXCEEDED
    if "spend_limit" in low or "billing" in low or "insufficient_quota" in low or status == 402:
        return FailureKind.BUDGET_EXCEEDED
    if status in (400, 422) and any(h in low for h in _POLICY_HINTS):
        return FailureKind.CONTENT_POLICY
    if rejects_request_shape(status, message):
        # The same request would fail again; the server is healthy. A bad_request
        # never counts against the breaker.
        return FailureKind.BAD_REQUEST
    match status:
        case 401 | 403:
            return FailureKind.AUTH
        case 404:
            return FailureKind.NOT_FOUND
        case 408 | 504:
            return FailureKind.TIMEOUT
        case 429:
            return FailureKind.RATE_LIMITED
        case 499:
            return FailureKind.CANCELLED
        case 503 | 529:
            return FailureKind.OVERLOADED
        case _ if status >= 500:
            return FailureKind.SERVER_ERROR
        case _:
            return FailureKind.BAD_REQUEST


class Provider(abc.ABC):
    """A wire adapter for one protocol, bound to one endpoint.

    Subclasses implement :meth:`chat`, :meth:`stream` and :meth:`list_models`, and where
    the protocol has them :meth:`embed`, :meth:`load` and :meth:`unload`. Every method
    raises :class:`ProviderError` (never an httpx exception) when the call fails.

    Args:
        base_url: The server's root, e.g. ``http://127.0.0.1:1234`` (paths such as
            ``/v1`` are added by the provider).
        client: The shared httpx client (see :func:`make_client`).
        api_key: Sent the way the protocol wants it, when set.
        headers: Extra headers for every request.
        timeouts: Connect, read and stream-idle timeouts.
        name: How failures name the source (defaults to the protocol name and URL).
        server: Which server speaks the protocol, where known (see :attr:`server`).
    """

    protocol: ClassVar[str]
    """The protocol's short name: ``openai``, ``lmstudio``, ``ollama``, ``anthropic`` or
    ``gemini``."""

    lists_every_model: ClassVar[bool] = True
    """Whether the model list names every model the server accepts. Cloud APIs that
    accept aliases their list leaves out (Anthropic, Gemini) say ``False``, so a host
    does not refuse a name just because its inventory lacks it."""

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeouts: Timeouts = Timeouts(),
        name: str | None = None,
        server: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.api_key = api_key
        self.timeouts = timeouts
        self.name = name or f"{self.protocol}@{self.base_url}"
        self.server = server
        """Which server speaks the protocol (``llamacpp``, ``llama-cpp-python``, ``vllm``,
        ...), where known: configured, found by discovery, or learnt from the model list.
        Some servers accept only some forms of a field (see ``wire_tool_choice``)."""
        self.context_windows: dict[str, int] = {}
        """Known context windows by model id (from the model list, the configuration or
        the host's inventory): what an empty stream is judged against."""
        self._headers = {**self.auth_headers(), **dict(headers or {})}

    # -- what subclasses implement ------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """Headers carrying the API key (Bearer by default)."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @abc.abstractmethod
    async def chat(self, request: ChatRequest) -> Completion:
        """One chat completion, not streamed on the wire."""

    @abc.abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream a chat completion: :class:`TextDelta` s, then one :class:`Completion`."""

    @abc.abstractmethod
    async def list_models(self) -> list[ModelInfo]:
        """The server's models, loaded or not, with what it reports about each."""

    async def embed(self, request: EmbedRequest) -> Embeddings:
        """Embed texts (protocols without embeddings answer ``bad_request``)."""
        raise ProviderError(
            self.failure(FailureKind.BAD_REQUEST, "this protocol has no embeddings", request.model)
        )

    async def count_tokens(self, request: ChatRequest) -> tuple[int, str]:
        """The prompt's tokens by the server's own tokenizer, and the route that counted.

        Protocols whose servers have no such route answer ``bad_request``.
        """
        raise ProviderError(
            self.failure(
                FailureKind.BAD_REQUEST,
                f"this server ({self.server or self.protocol}) has no token-count endpoint",
                request.model,
            )
        )

    def count_from(self, payload: object, key: str, path: str, model: str) -> int:
        """The count under ``key`` of a token-count answer (else ``invalid_response``)."""
        value = payload.get(key) if isinstance(payload, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise ProviderError(
            self.failure(
                FailureKind.INVALID_RESPONSE,
                f"{path} answered without a token count ({key}): {str(payload)[:200]!r}",
                model,
            )
        )

    async def load(self, model: str) -> None:
        """Load a model through the server's own API."""
        raise ProviderError(
            self.failure(
                FailureKind.BAD_REQUEST, "this server cannot load models on request", model
            )
        )

    async def unload(self, model: str) -> None:
        """Unload a model through the server's own API."""
        raise ProviderError(
            self.failure(
                FailureKind.BAD_REQUEST, "this server cannot unload models on request", model
            )
        )

    @property
    def can_load(self) -> bool:
        """Whether :meth:`load` and :meth:`unload` do anything on this server."""
        return False

    async def complete(self, request: ChatRequest) -> Completion:
        """The answer, streamed on the wire when ``request.stream`` is set.

        An answer that ignored a forced ``tool_choice`` (no tool call) comes back with a
        warning saying so, rather than passing for what was asked.
        """
        if not request.stream:
            return self.checked(request, await self.chat(request))
        final: Completion | None = None
        async for event in self.stream(request):
            if isinstance(event, Completion):
                final = event
        if final is None:  # pragma: no cover - every stream implementation ends with one
            raise ProviderError(
                self.failure(
                    FailureKind.INVALID_RESPONSE, "stream ended without an answer", request.model
                )
            )
        return self.checked(request, final)

    def checked(self, request: ChatRequest, completion: Completion) -> Completion:
        """The completion, with a warning when it ignored a forced ``tool_choice``."""
        if not request.forced_tool or completion.tool_calls:
            return completion
        what = "a tool call" if request.tool_choice == "required" else f"{request.tool_choice!r}"
        warning = (
            f"tool_choice demanded {what} but the model answered without a tool call "
            f"(finish_reason {completion.finish_reason.value}); the server may have ignored "
            "tool_choice"
        )
        return msgspec.structs.replace(completion, warnings=(*completion.warnings, warning))

    # -- helpers ------------------------------------------------------------------------

    def failure(
        self,
        kind: FailureKind,
        message: str,
        model: str | None = None,
        *,
        retry_after: float | None = None,
        details: Mapping[str, str] | None = None,
    ) -> Failure:
        """A failure from this provider, naming it (and the model) in the message."""
        where = f"{self.name}" + (f" model {model!r}" if model else "")
        details = dict(details or {})
        if model:
            details.setdefault("model", model)
        return Failure(
            kind=kind,
            message=f"{where}: {message}",
            source=self.name,
            retry_after=retry_after,
            details=details,
        )

    def empty_stream(self, request: ChatRequest, progress: StreamProgress) -> ProviderError:
        """The failure for a stream that ended cleanly before its first chunk.

        llama-cpp-python answers a streamed request whose prompt is over the context
        window with HTTP 200 and an empty body (the error only reaches its log). That is
        no connection failure and says nothing about the server's health: it is
        ``context_window_exceeded`` when the prompt's estimated size is over the model's
        known context window, else ``bad_request`` (the server most likely refused the
        request after starting its answer). Neither counts against a breaker.
        """
        tokens = estimate_prompt_tokens(request)
        window = self.context_windows.get(request.model)
        details = {
            **progress.details(),
            "empty_stream": "true",
            "estimated_prompt_tokens": str(tokens),
        }
        if window is not None and tokens >= window:
            details["context_length"] = str(window)
            return ProviderError(
                self.failure(
                    FailureKind.CONTEXT_WINDOW_EXCEEDED,
                    f"the stream ended empty and the prompt (about {tokens} tokens, estimated) "
                    f"is over the model's context window of {window} tokens",
                    request.model,
                    details=details,
                )
            )
        known = f"its context window of {window}" if window else "no known context window"
        return ProviderError(
            self.failure(
                FailureKind.BAD_REQUEST,
                "the server accepted the stream (HTTP 200) and ended it cleanly without a "
                "single chunk: it most likely refused the request after starting its answer "
                f"(the prompt is about {tokens} tokens, estimated; {known}); see the "
                "server's log",
                request.model,
                details=details,
            )
        )

    def error_from_response(
        self, status: int, headers: Mapping[str, str], body: bytes, model: str | None
    ) -> Failure:
        """Map an HTTP error response to a failure; subclasses refine :meth:`classify`."""
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = None
        message, etype, code = _error_fields(payload)
        if not message:
            message = body.decode("utf-8", "replace")[:500] or f"HTTP {status}"
        kind = self.classify(status, etype, code, message)
        details = {"status": str(status)}
        if etype:
            details["error_type"] = etype
        if code:
            details["error_code"] = code
        param = _error_param(payload)
        if param:
            details["error_param"] = param
        if kind is FailureKind.CONTEXT_WINDOW_EXCEEDED:
            details.update(_context_figures(payload))
        should_retry = (headers.get("x-should-retry") or "").strip().lower()
        if should_retry in ("true", "false"):  # the server's word over the status's
            details["should_retry"] = should_retry
        elif status == 409 and kind is FailureKind.BAD_REQUEST:
            # A conflict (OpenAI's is a lock timeout) passes: the vendors' SDKs retry it.
            details["should_retry"] = "true"
        note = ""
        if kind is FailureKind.BAD_REQUEST and status >= 500:
            note = " (the server rejected the request's shape; this is no server fault)"
            details["request_rejected"] = "true"
        return self.failure(
            kind,
            f"HTTP {status}{note}: {message}",
            model,
            retry_after=parse_retry_after(headers),
            details=details,
        )

    def classify(self, status: int, etype: str, code: str, message: str) -> FailureKind:
        """The failure kind for an HTTP error (the shared rules; vendors may refine)."""
        return classify_status(status, etype, code, message)

    def url(self, path: str) -> str:
        """An absolute URL under the base URL."""
        return f"{self.base_url}{path}"

    async def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        model: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send a request: its status, headers and whole body, whatever the status.

        On the default client (:func:`make_client`) the request goes straight to aiohttp
        (``AioClient.fetch``); any other httpx client (a test's mock transport, a
        caller's own) gets it through httpx. Both send and map the same. A transport
        failure raises ProviderError (``connection``, ``timeout``).
        """
        fetch = getattr(self.client, "fetch", None)
        try:
            if fetch is not None:
                answer: tuple[int, Mapping[str, str], bytes] = await fetch(
                    method,
                    self.url(path),
                    content=None if body is None else _encode_json(body),
                    headers=self._headers,
                    params=params,
                )
                return answer
            response = await self.client.request(
                method, self.url(path), json=body, headers=self._headers, params=params
            )
            return response.status_code, response.headers, await response.aread()
        except (httpx.HTTPError, TimeoutError) as exc:
            raise ProviderError(failure_from_exception(exc, source=self.name, model=model)) from exc

    async def request_json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        model: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Send a request and return its parsed JSON body; failures raise ProviderError."""
        status, headers, content = await self.send(method, path, body, model=model, params=params)
        if status >= 400:
            raise ProviderError(self.error_from_response(status, headers, content, model))
        try:
            return _decode_json(content)
        except ValueError as exc:
            raise ProviderError(
                self.failure(
                    FailureKind.INVALID_RESPONSE,
                    f"{method} {path} answered with malformed JSON: {content[:200]!r}",
                    model,
                )
            ) from exc

    @asynccontextmanager
    async def open_stream(
        self, path: str, body: Any, *, model: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[Body]:
        """POST and yield the response once its status is known to be a success.

        Straight on aiohttp on the default client, through httpx on any other (as
        :meth:`send`).
        """
        opener = getattr(self.client, "open", None)
        try:
            if opener is not None:
                async with opener(
                    "POST",
                    self.url(path),
                    content=_encode_json(body),
                    headers=self._headers,
                    params=params,
                ) as answer:
                    if answer.status >= 400:
                        content = await answer.read()
                        raise ProviderError(
                            self.error_from_response(answer.status, answer.headers, content, model)
                        )
                    yield answer
                return
            async with self.client.stream(
                "POST", self.url(path), json=body, headers=self._headers, params=params
            ) as response:
                if response.status_code >= 400:
                    content = await response.aread()
                    raise ProviderError(
                        self.error_from_response(
                            response.status_code, response.headers, content, model
                        )
                    )
                yield response
        except (httpx.HTTPError, TimeoutError) as exc:
            raise ProviderError(failure_from_exception(exc, source=self.name, model=model)) from exc

    async def _chunks(
        self, response: Body, progress: StreamProgress, model: str
    ) -> AsyncIterator[bytes]:
        """The raw body, each wait bounded by the stream-idle timeout."""
        iterator = response.aiter_bytes().__aiter__()
        while True:
            try:
                async with asyncio.timeout(self.timeouts.stream_idle):
                    chunk = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise ProviderError(
                    self.failure(
                        FailureKind.TIMEOUT,
                        f"stream stalled for {self.timeouts.stream_idle:g}s {progress.describe()}",
                        model,
                        details=progress.details(),
                    )
                ) from exc
            except httpx.HTTPError as exc:
                raise ProviderError(
                    failure_from_exception(exc, source=self.name, model=model, progress=progress)
                ) from exc
            yield chunk

    async def iter_lines(
        self, response: Body, progress: StreamProgress, model: str
    ) -> AsyncIterator[str]:
        """Decoded lines of the body (without line endings)."""
        buffer = b""
        async for chunk in self._chunks(response, progress, model):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield line.rstrip(b"\r").decode("utf-8", "replace")
        if buffer:
            yield buffer.rstrip(b"\r").decode("utf-8", "replace")

    async def iter_sse(
        self, response: Body, progress: StreamProgress, model: str
    ) -> AsyncIterator[SseEvent]:
        """Server-sent events: ``event:`` name and joined ``data:`` lines, per blank line."""
        event = ""
        data: list[str] = []
        async for line in self.iter_lines(response, progress, model):
            if not line:
                if data:
                    progress.events += 1
                    yield SseEvent(event, "\n".join(data))
                event, data = "", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        if data:
            progress.events += 1
            yield SseEvent(event, "\n".join(data))

    async def iter_ndjson(
        self, response: Body, progress: StreamProgress, model: str
    ) -> AsyncIterator[Any]:
        """Objects of an NDJSON body, one per non-empty line."""
        async for line in self.iter_lines(response, progress, model):
            if not line.strip():
                continue
            progress.events += 1
            yield self.parse_stream_json(line, progress, model)

    def parse_stream_json(self, text: str, progress: StreamProgress, model: str) -> Any:
        """Parse one streamed JSON document; garbage is ``invalid_response`` saying where."""
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ProviderError(
                self.failure(
                    FailureKind.INVALID_RESPONSE,
                    f"stream sent malformed JSON {progress.describe()}: {text[:120]!r}",
                    model,
                    details=progress.details(),
                )
            ) from exc

    def stream_error(
        self, payload: Any, progress: StreamProgress, model: str, status: int = 500
    ) -> ProviderError:
        """An error the server reported inside a stream (HTTP status already 200)."""
        message, etype, code = _error_fields(payload)
        kind = self.classify(status, etype, code, message)
        if kind is FailureKind.BAD_REQUEST:
            kind = FailureKind.SERVER_ERROR
        return ProviderError(
            self.failure(
                kind,
                f"error mid-stream {progress.describe()}: {message or payload!r}",
                model,
                details={**progress.details(), **({"error_type": etype} if etype else {})},
            )
        )


def parse_arguments(raw: Any, *, provider: Provider, model: str, tool: str) -> dict[str, Any]:
    """Tool-call arguments as an object, whether the wire gave a JSON string or an object."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ProviderError(
                provider.failure(
                    FailureKind.INVALID_RESPONSE,
                    f"tool call {tool!r} has arguments that are not valid JSON: {raw[:200]!r}",
                    model,
                )
            ) from exc
        if isinstance(value, dict):
            return value
    raise ProviderError(
        provider.failure(
            FailureKind.INVALID_RESPONSE,
            f"tool call {tool!r} has arguments that are not an object: {raw!r}",
            model,
        )
    )


def synth_call_id(prefix: str, index: int, request_id: str) -> str:
    """A stable id for a tool call the server gave none (``call_<request>_<n>``)."""
    return f"{prefix}_{request_id[:12]}_{index}"
