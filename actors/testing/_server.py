"""The loopback fake-server engine that every protocol's fake is built on.

A :class:`FakeServer` is a real HTTP server (aiohttp) on 127.0.0.1, on its own thread
and event loop, so that it can be driven from sync tests, async tests, actors, or a
command line (``reactor fake-server``). What it answers comes from, in order:

1. scripted replies (:meth:`FakeServer.script`), consumed first in, first out;
2. the ``responder`` callable, when one was given;
3. a deterministic default that names the model and echoes the prompt;

and then, as real servers do, the request's own limits shape it (:func:`shape_reply`): an
output token limit cuts the text with finish reason ``length``, a forced tool choice
turns a text answer into a call of that tool, and ``tool_choice`` "none" drops tool calls
(each protocol says where its wire format puts them, and whether it honours them).

Faults (:class:`Fault`) are injected per request: latency, time to first token,
per-token delay, any status code with the vendor's real error body, 429 with
Retry-After, hanging, closing the connection mid-stream, malformed JSON, an error event
mid-stream, a stream ended early without a finish reason, an empty stream. Each
protocol (``_openai``, ``_ollama``, ...) renders the same :class:`Reply` in its own wire
format, and renders errors in its own vendor's body.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import json
import re
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from aiohttp import web

__all__ = [
    "Exchange",
    "FakeCall",
    "FakeModel",
    "FakeProtocol",
    "FakeServer",
    "FakeToolCall",
    "Fault",
    "Reply",
    "ToolChoice",
    "shape_reply",
]


@dataclass
class FakeModel:
    """A model the fake server has.

    Attributes:
        id: Its id, as requests name it.
        loaded: Whether it is resident now. A chat request to an unloaded model loads it
            (as LM Studio's JIT loading and Ollama do), after ``load_delay``.
        context_length: Its context window; longer prompts get the vendor's
            context-window error.
        size_bytes: Size on disk.
        vram_bytes: GPU memory it takes when loaded (defaults to ``size_bytes``).
        embeddings: An embedding model (answers embeddings, not chat).
        tools: Whether it advertises tool use.
        load_delay: Seconds a load takes.
        refuses: Request fields it refuses, as OpenAI's reasoning models do (e.g.
            ``("temperature", "top_p", "stop", "presence_penalty")``): the OpenAI
            protocols answer a request carrying one with HTTP 400 naming it in
            ``param``, ``unsupported_value`` for a ``temperature`` or ``top_p`` other
            than 1 (the only value such a model takes), ``unsupported_parameter`` for
            any other field; the first refused field in this order is named.
        system_role: Whether it takes a ``system`` turn (o1-mini does not: a 400
            ``unsupported_value`` naming ``messages[0].role``).
    """

    id: str
    loaded: bool = True
    context_length: int = 8192
    size_bytes: int = 4_000_000_000
    vram_bytes: int | None = None
    embeddings: bool = False
    tools: bool = True
    load_delay: float = 0.0
    last_used: float = 0.0
    refuses: tuple[str, ...] = ()
    system_role: bool = True

    @property
    def resident_bytes(self) -> int:
        """GPU memory it takes now (0 when not loaded)."""
        if not self.loaded:
            return 0
        return self.size_bytes if self.vram_bytes is None else self.vram_bytes


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call in a scripted reply; ``id`` is generated when omitted."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """What the fake model answers, independent of the wire format.

    Attributes:
        text: The answer's text.
        tool_calls: Tool calls it makes.
        finish: ``stop``, ``length``, ``tool_calls`` (the default when there are tool
            calls) or ``content_filter``; each protocol maps it to its own value.
        input_tokens: Reported input tokens (estimated from the prompt when omitted).
        output_tokens: Reported output tokens (the number of streamed pieces when omitted).
        reasoning: The model's reasoning ("thinking") before its answer, sent by the
            protocols whose wire carries it (Gemini's ``thought`` parts, counted apart
            as ``thoughtsTokenCount``; Anthropic's signed ``thinking`` block, when the
            request turns thinking on).
    """

    text: str = ""
    tool_calls: tuple[FakeToolCall, ...] = ()
    finish: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning: str = ""

    @property
    def finish_reason(self) -> str:
        """The finish reason, defaulting by content."""
        if self.finish is not None:
            return self.finish
        return "tool_calls" if self.tool_calls else "stop"

    def tokens(self) -> list[str]:
        """The text split into the pieces a stream sends (words with their spacing)."""
        return re.findall(r"\S+\s*|\s+", self.text) or []


@dataclass
class Fault:
    """Something to go wrong, for the next ``times`` matching requests.

    Attributes:
        status: Answer with this HTTP status and the vendor's real error body.
        message: The error message (a vendor-typical one when omitted).
        code: A vendor error code to pick a specific body, e.g.
            ``"context_length_exceeded"``, ``"model_not_found"``.
        retry_after: Seconds to send as ``retry-after`` (and ``retry-after-ms``).
        should_retry: Send ``x-should-retry: true`` or ``false`` (OpenAI's and
            Anthropic's APIs tell their SDKs so).
        latency: Seconds before the response starts.
        ttft: Seconds before the first token of a stream.
        token_delay: Seconds between streamed tokens.
        hang: Never answer (until the server stops or the client gives up).
        close_after: Close the connection after this many stream events (0: right after
            the headers; for a non-streamed answer, half-way through the body).
        malformed: Answer with malformed JSON (non-streamed), or send a garbage event
            (streamed, after ``malformed_after`` events).
        malformed_after: Where a garbage stream event goes (default: after 1 event).
        error_after: Send the vendor's mid-stream error event after this many events.
        done_after: End the stream cleanly after this many events, with the protocol's
            end marker (``data: [DONE]``) and no finish reason: what llama-cpp-python
            does to a stream that a newer request interrupts.
        empty_stream: Answer a streamed request with 200 and an empty body: what
            llama-cpp-python does when a streamed prompt is over the context window.
        times: How many requests it applies to; ``None`` for every request.
        model: Only requests for this model.
        path: Only requests whose path contains this.
    """

    status: int | None = None
    message: str | None = None
    code: str | None = None
    retry_after: float | None = None
    should_retry: bool | None = None
    latency: float = 0.0
    ttft: float = 0.0
    token_delay: float = 0.0
    hang: bool = False
    close_after: int | None = None
    malformed: bool = False
    malformed_after: int | None = None
    error_after: int | None = None
    done_after: int | None = None
    empty_stream: bool = False
    times: int | None = 1
    model: str | None = None
    path: str | None = None

    def matches(self, path: str, model: str | None) -> bool:
        """Whether this fault applies to a request."""
        if self.times is not None and self.times <= 0:
            return False
        if self.model is not None and self.model != model:
            return False
        return self.path is None or self.path in path


@dataclass(frozen=True)
class FakeCall:
    """A request the fake server received (for assertions)."""

    method: str
    path: str
    model: str | None
    body: Any
    headers: dict[str, str]
    at: float


Responder = Callable[["Exchange"], Reply]


@dataclass(frozen=True)
class ToolChoice:
    """A request's tool choice, whatever the wire form.

    Attributes:
        mode: ``none`` (no tool call), ``auto``, ``required`` (some tool), or ``tool``
            (the one named).
        name: The tool, for ``tool``.
    """

    mode: str
    name: str | None = None


class Exchange:
    """One request being served: its body, model, the reply and the fault to apply.

    Protocol handlers get one from :meth:`FakeServer.exchange` and render with
    :meth:`json`, :meth:`stream` and :meth:`error`, which apply the faults.
    """

    def __init__(
        self,
        server: FakeServer,
        request: web.Request,
        body: Any,
        model: str | None,
        fault: Fault | None,
    ) -> None:
        self.server = server
        self.request = request
        self.body = body
        self.model = model
        self.fault = fault
        self._reply: Reply | None = None

    @property
    def protocol(self) -> FakeProtocol:
        """The server's protocol."""
        return self.server.protocol

    @property
    def reply(self) -> Reply:
        """The reply, shaped by the request's limits (decided once, on first use).

        Scripted, else the responder's, else the default; see :func:`shape_reply`.
        """
        if self._reply is None:
            self._reply = shape_reply(self, self.server._next_reply(self))
        return self._reply

    def prompt_text(self) -> str:
        """The prompt's text, as the protocol extracts it from the body."""
        return self.protocol.prompt_text(self.body)

    def input_tokens(self) -> int:
        """Reported input tokens: scripted, else estimated from the prompt."""
        reply = self.reply
        if reply.input_tokens is not None:
            return reply.input_tokens
        return estimate_tokens(self.prompt_text())

    def output_tokens(self) -> int:
        """Reported output tokens: scripted, else one per streamed piece."""
        reply = self.reply
        if reply.output_tokens is not None:
            return reply.output_tokens
        return len(reply.tokens()) + 8 * len(reply.tool_calls)

    async def prelude(self) -> web.StreamResponse | None:
        """Apply the before-the-answer faults; a response means "send this instead"."""
        fault = self.fault
        if fault is None:
            return None
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.hang:
            await self.server._hang()
            raise web.HTTPServiceUnavailable(text="fake server stopping")
        if fault.status is not None:
            return self.error(
                fault.status,
                fault.message,
                code=fault.code,
                retry_after=fault.retry_after,
                should_retry=fault.should_retry,
            )
        return None

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
    ) -> web.Response:
        """The vendor's error response for ``status``."""
        body = self.protocol.error_body(status, message, code)
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
            headers["retry-after-ms"] = str(round(retry_after * 1000))
        if should_retry is not None:
            headers["x-should-retry"] = "true" if should_retry else "false"
        headers.update(self.protocol.error_headers(status))
        headers.update(self.protocol.response_headers(self))
        return web.json_response(body, status=status, headers=headers)

    async def json(self, payload: Any, *, status: int = 200) -> web.StreamResponse:
        """A JSON answer, or its malformed/cut-off version when the fault says so."""
        fault = self.fault
        data = json.dumps(payload).encode()
        extra = self.protocol.response_headers(self)
        if fault is not None and fault.malformed:
            return web.Response(
                body=data[: max(1, len(data) // 2)] + b"}{",
                content_type="application/json",
                headers=extra,
            )
        if fault is not None and fault.close_after is not None:
            response = web.StreamResponse(
                status=status, headers={"Content-Type": "application/json", **extra}
            )
            response.content_length = len(data)
            await response.prepare(self.request)
            await response.write(data[: len(data) // 2])
            self._abort()
            return response
        return web.Response(
            body=data, status=status, content_type="application/json", headers=extra
        )

    async def stream(
        self, frames: Iterable[bytes], *, content_type: str, tokens: Sequence[bool] | None = None
    ) -> web.StreamResponse:
        """Write a streamed answer frame by frame, applying the stream faults.

        Args:
            frames: The wire frames, already framed (an SSE event with its blank line,
                or an NDJSON line).
            content_type: ``text/event-stream`` or ``application/x-ndjson``.
            tokens: For each frame, whether it carries a token (the time-to-first-token
                and per-token delays apply to those); every frame when omitted.
        """
        fault = self.fault or Fault(times=None)
        if fault.empty_stream:
            frames = ()
        response = web.StreamResponse(
            headers={
                "Content-Type": content_type,
                "Cache-Control": "no-cache",
                **self.protocol.response_headers(self),
            }
        )
        await response.prepare(self.request)
        interrupted = asyncio.Event()
        self.server._streams.add(interrupted)
        try:
            await self._write_frames(response, frames, fault, tokens, interrupted)
        except ConnectionResetError:
            # The client went away mid-stream (it gave up, or cancelled): nothing to do.
            self._abort()
        finally:
            self.server._streams.discard(interrupted)
        return response

    async def _write_frames(
        self,
        response: web.StreamResponse,
        frames: Iterable[bytes],
        fault: Fault,
        tokens: Sequence[bool] | None,
        interrupted: asyncio.Event,
    ) -> None:
        ttft = fault.ttft or self.server.ttft
        token_delay = fault.token_delay or self.server.token_delay
        first = True
        for index, frame in enumerate(frames):
            if fault.close_after is not None and index >= fault.close_after:
                self._abort()
                return
            if interrupted.is_set() or (fault.done_after is not None and index >= fault.done_after):
                await response.write(self.protocol.interrupted_frame())
                await response.write_eof()
                return
            if fault.error_after is not None and index == fault.error_after:
                await response.write(self.protocol.stream_error_frame(fault.message, fault.code))
                await response.write_eof()
                return
            if fault.malformed and index == (
                fault.malformed_after if fault.malformed_after is not None else 1
            ):
                await response.write(self.protocol.garbage_frame())
            is_token = tokens[index] if tokens is not None and index < len(tokens) else True
            if is_token:
                delay = ttft if first else token_delay
                first = False
                if delay:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(interrupted.wait(), delay)
                    if interrupted.is_set():
                        await response.write(self.protocol.interrupted_frame())
                        await response.write_eof()
                        return
            await response.write(frame)
        await response.write_eof()

    def _abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()


def estimate_tokens(text: str) -> int:
    """A deterministic token estimate: about 4 characters per token, at least 1."""
    return max(1, (len(text) + 3) // 4)


class FakeProtocol(abc.ABC):
    """One vendor's wire format, for the fake server."""

    name: ClassVar[str]
    refuses_fields: ClassVar[bool] = False
    """Whether a :attr:`FakeModel.refuses` field is answered with an error (the
    OpenAI-protocol fakes: their 400 names the field); elsewhere it is ignored."""

    @abc.abstractmethod
    def routes(self, server: FakeServer) -> list[web.RouteDef]:
        """The HTTP routes, bound to ``server``."""

    @abc.abstractmethod
    def error_body(self, status: int, message: str | None, code: str | None) -> Any:
        """The vendor's error body for ``status`` (and a specific ``code``, if given)."""

    def error_headers(self, status: int) -> dict[str, str]:
        """Extra headers on an error response."""
        return {}

    def response_headers(self, exchange: Exchange) -> dict[str, str]:
        """Extra headers on every response the engine renders (e.g. a request id)."""
        return {}

    @abc.abstractmethod
    def stream_error_frame(self, message: str | None, code: str | None) -> bytes:
        """How the vendor reports an error inside a stream."""

    def garbage_frame(self) -> bytes:
        """A malformed frame, in this protocol's framing."""
        return b'data: {"choices": [{"delta": {"content": "unterminated\n\n'

    def interrupted_frame(self) -> bytes:
        """What ends a stream cut short (nothing: the body just ends)."""
        return b""

    def max_output_tokens(self, body: Any) -> int | None:
        """The request's output token limit, where the fake applies it in the engine."""
        return None

    def tool_choice(self, body: Any) -> ToolChoice | None:
        """The request's tool choice as the server understands it (``None``: auto)."""
        return None

    def declared_tools(self, body: Any) -> dict[str, dict[str, Any]]:
        """The tools a request offers: name -> JSON Schema of its arguments."""
        return {}

    @abc.abstractmethod
    def prompt_text(self, body: Any) -> str:
        """All the text of a request's prompt (for token estimates and the default reply)."""

    def model_of(self, request: web.Request, body: Any) -> str | None:
        """The model a request names (the body's ``model`` by default)."""
        if isinstance(body, dict):
            model = body.get("model")
            if isinstance(model, str):
                return model
        return None


class FakeServer:
    """A loopback HTTP server speaking one LLM server's protocol, with fault injection.

    Use it as a context manager (or :meth:`start` / :meth:`stop`); it serves from its
    own thread, so it works the same from sync code, async code and actors.

    Args:
        protocol: ``openai``, ``lmstudio``, ``ollama``, ``anthropic``, ``gemini``, or a
            :class:`FakeProtocol` instance.
        models: Model ids (all loaded), or :class:`FakeModel` s.
        port: The port on 127.0.0.1 (0 picks a free one).
        responder: Computes the reply when nothing is scripted.
        latency: Seconds before every response.
        ttft: Seconds before the first streamed token.
        token_delay: Seconds between streamed tokens.
        api_key: When set, requests must carry it (as the vendor sends keys).
        tls: Serve HTTPS with this server-side TLS context (its certificate must name
            ``127.0.0.1``); plain HTTP without one.
    """

    def __init__(
        self,
        protocol: str | FakeProtocol,
        *,
        models: Sequence[str | FakeModel] = ("fake-small", "fake-large"),
        port: int = 0,
        responder: Responder | None = None,
        latency: float = 0.0,
        ttft: float = 0.0,
        token_delay: float = 0.0,
        api_key: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        from actors.testing._protocols import protocol_for  # noqa: PLC0415 - avoids an import cycle

        if not 0 <= port <= 65535:
            msg = f"FakeServer port must be 0 (any free one) to 65535, not {port}"
            raise ValueError(msg)
        self.protocol = protocol_for(protocol) if isinstance(protocol, str) else protocol
        self.models: dict[str, FakeModel] = {}
        for model in models:
            entry = FakeModel(model) if isinstance(model, str) else model
            self.models[entry.id] = entry
        self.port = port
        self.responder = responder
        self.latency = latency
        self.ttft = ttft
        self.token_delay = token_delay
        self.api_key = api_key
        self.tls = tls
        self.calls: list[FakeCall] = []
        self.faults: list[Fault] = []
        self._scripted: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._streams: set[asyncio.Event] = set()
        self.in_flight = 0
        self.peak_in_flight = 0
        """The most requests it has served at once (for concurrency-limit tests)."""

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's base URL, e.g. ``http://127.0.0.1:41234`` (``https://`` with ``tls``)."""
        return f"{'https' if self.tls is not None else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start serving (returns once the port is bound)."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failure.append(exc)
                loop.run_until_complete(self._cleanup())
                loop.close()
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._cleanup())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(
            target=serve, name=f"fake-{self.protocol.name}", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving; hanging requests are released first."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._stopping is not None:
            loop.call_soon_threadsafe(self._stopping.set)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    async def _start(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(self.protocol.routes(self))
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.tls)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _cleanup(self) -> None:
        runner = self._runner
        if runner is None:
            return
        # A TLS connection's close waits for the client's close_notify, which a loop
        # about to stop never reads: such connections are aborted (their sockets closed
        # now) rather than left for the garbage collector.
        open_tls = []
        if self.tls is not None and runner.server is not None:
            open_tls = [c.transport for c in runner.server.connections if c.transport]
        await runner.cleanup()
        for transport in open_tls:
            transport.abort()

    async def _hang(self) -> None:
        assert self._stopping is not None
        await self._stopping.wait()

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self._arrived.notify_all()
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return await handler(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def wait_in_flight(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``count`` requests are being served at once (``False``: timed out).

        For tests that must act while a request is at the server (a hanging one, say).
        """
        with self._arrived:
            return self._arrived.wait_for(lambda: self.in_flight >= count, timeout)

    def interrupt_streams(self) -> int:
        """End every stream being written now, early; returns how many there were.

        What a newer request does on llama-cpp-python. Call it on the server's loop.
        """
        for stream in self._streams:
            stream.set()
        return len(self._streams)

    # -- scripting ----------------------------------------------------------------------

    def script(self, *replies: Reply | str) -> None:
        """Queue replies for the next requests (strings are text replies)."""
        with self._lock:
            self._scripted.extend(Reply(text=r) if isinstance(r, str) else r for r in replies)

    def inject(self, fault: Fault | None = None, /, **fields: Any) -> Fault:
        """Add a fault (given, or built from keyword fields); returns it."""
        entry = fault if fault is not None else Fault(**fields)
        with self._lock:
            self.faults.append(entry)
        return entry

    def clear(self) -> None:
        """Drop every fault, scripted reply and recorded call."""
        with self._lock:
            self.faults.clear()
            self._scripted.clear()
            self.calls.clear()

    def set_loaded(self, model: str, loaded: bool) -> None:
        """Load or unload a model, as if done on the server itself."""
        with self._lock:
            self.models[model].loaded = loaded

    def add_model(self, model: FakeModel | str) -> FakeModel:
        """Add a model to the server."""
        entry = FakeModel(model) if isinstance(model, str) else model
        with self._lock:
            self.models[entry.id] = entry
        return entry

    # -- serving helpers for protocols --------------------------------------------------

    async def exchange(self, request: web.Request, *, model: str | None = None) -> Exchange:
        """Read a request, record it, and pick its fault (for protocol handlers)."""
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                raise web.HTTPBadRequest(
                    text=json.dumps(
                        self.protocol.error_body(400, "request body is not valid JSON", None)
                    ),
                    content_type="application/json",
                ) from None
        if model is None:
            model = self.protocol.model_of(request, body)
        fault = None
        with self._lock:
            self.calls.append(
                FakeCall(
                    request.method, request.path, model, body, dict(request.headers), time.time()
                )
            )
            for candidate in self.faults:
                if candidate.matches(request.path, model):
                    fault = candidate
                    if candidate.times is not None:
                        candidate.times -= 1
                    break
            if model in self.models:
                self.models[model].last_used = time.time()
        return Exchange(self, request, body, model, fault)

    async def ensure_loaded(self, model: str) -> None:
        """Load a model on first use (JIT), after its load delay."""
        entry = self.models[model]
        if not entry.loaded:
            if entry.load_delay:
                await asyncio.sleep(entry.load_delay)
            entry.loaded = True

    def _next_reply(self, exchange: Exchange) -> Reply:
        with self._lock:
            if self._scripted:
                return self._scripted.popleft()
        if self.responder is not None:
            return self.responder(exchange)
        return default_reply(exchange)

    def check_key(self, presented: str | None) -> bool:
        """Whether a request's API key is acceptable."""
        return self.api_key is None or presented == self.api_key


def _example_value(schema: Any) -> Any:
    """A value that fits a JSON Schema type (for a forced tool call's arguments)."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    examples: dict[str, Any] = {
        "string": "example",
        "integer": 1,
        "number": 1.0,
        "boolean": True,
        "array": [],
        "object": {},
    }
    if isinstance(schema, dict) and isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    return examples.get(kind, "example") if isinstance(kind, str) else "example"


def forced_call(name: str, schema: dict[str, Any]) -> FakeToolCall:
    """A call of ``name`` with an example value for each of its declared arguments."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    arguments = {
        key: _example_value(value)
        for key, value in (properties.items() if isinstance(properties, dict) else ())
    }
    return FakeToolCall(name=name, arguments=arguments)


def shape_reply(exchange: Exchange, reply: Reply) -> Reply:
    """A reply as the request's own limits make it, as a real server would.

    - ``tool_choice`` "none": tool calls are dropped (their text, if any, stays).
    - a forced tool choice (``required`` or one tool) on an answer without tool calls:
      the answer becomes a call of that tool (or the first tool offered).
    - an output token limit shorter than the text: the text is cut to it and the finish
      reason is ``length`` (unless the reply scripted its own finish reason).
    """
    protocol = exchange.protocol
    body = exchange.body
    choice = protocol.tool_choice(body)
    if choice is not None and choice.mode == "none" and reply.tool_calls:
        text = reply.text or default_reply(exchange).text
        reply = Reply(text=text, input_tokens=reply.input_tokens)
    elif choice is not None and choice.mode in ("required", "tool") and not reply.tool_calls:
        tools = protocol.declared_tools(body)
        name = choice.name if choice.mode == "tool" else next(iter(tools), None)
        if name is not None:
            call = forced_call(name, tools.get(name, {}))
            reply = Reply(tool_calls=(call,), input_tokens=reply.input_tokens)
    limit = protocol.max_output_tokens(body)
    pieces = reply.tokens()
    if (
        limit is not None
        and reply.finish is None
        and not reply.tool_calls
        and len(pieces) > max(limit, 0)
    ):
        kept = pieces[: max(limit, 0)]
        output = reply.output_tokens
        reply = Reply(
            text="".join(kept),
            finish="length",
            input_tokens=reply.input_tokens,
            output_tokens=None if output is None else min(output, len(kept)),
            reasoning=reply.reasoning,
        )
    return reply


def default_reply(exchange: Exchange) -> Reply:
    """The deterministic answer when nothing is scripted: names the model, echoes the prompt."""
    prompt = " ".join(exchange.prompt_text().split())
    if len(prompt) > 80:
        prompt = prompt[:77] + "..."
    return Reply(text=f"[{exchange.model}] simulated answer to: {prompt}")
