"""The ModelHost actor: one per LLM server endpoint.

A ModelHost owns everything about talking to one server that must be decided in one
place: how many requests are in flight (``max_parallel``), who waits (a queue that
honours every request's deadline), which models are failing (a circuit breaker per
model), what each model costs and how fast it is (statistics), what the server has
(inventory), and whether a model may be loaded (asking the ResourceMonitor first). The
HTTP itself runs on the I/O loop through a provider; the actor never blocks.

How a :class:`~actors.ChatRequest` goes through:

1. A full queue answers ``overloaded`` at once; an open breaker answers
   ``circuit_open`` at once (with ``retry_after`` = time until the next probe). Otherwise
   the breaker gives its permission now (a half-open breaker admits only its probes). A
   model known to be unloaded is first admitted by the ResourceMonitor, which may unload
   idle models to make room, or refuse with ``insufficient_memory``.
2. The request goes to the I/O loop at once, where it waits for one of the host's
   ``max_parallel`` slots, in arrival order. A request whose deadline passed while it
   waited is answered ``timeout`` and never sent; so is one whose model's breaker opened
   meanwhile (``circuit_open``), unless it is a probe.
3. The provider call runs on the loop, bounded by the request's deadline, inside a span
   that follows the OpenTelemetry GenAI conventions. When it ends, its slot passes
   straight to the next request waiting on the loop: the slots are handed out where the
   calls run, so a finished call does not wait for the host's next turn before the next
   one starts.
4. The outcome answers the caller from the loop, and, in the host's next turn, updates the
   breaker (a connection failure counts for every model of the host), the statistics and
   the cost. Breaker transitions are published on the event bus and recorded as events
   on the chat span of the call that caused them (see ``actors.llm._telemetry``: the
   span opens when the host takes the request and closes once the breaker knows the
   outcome; a refusal is a span too, with its ``error.type``).

:class:`~actors.CancelChat` cancels a queued or in-flight request by its id: the caller
is answered ``cancelled`` and the HTTP call is aborted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import msgspec
from opentelemetry import trace

import otel
from actors import Actor, ChildSpec, Deferred, Failure, FailureKind, Ref, Restart
from actors.llm._breaker import Breaker, Transition
from actors.llm._config import BreakerConfig, HostConfig, mask_url
from actors.llm._messages import (
    Admission,
    AdmitModel,
    BreakerState,
    BreakerTransition,
    CancelChat,
    ChatRequest,
    Completion,
    CountTokens,
    Embeddings,
    EmbedRequest,
    HostInventory,
    HostStats,
    HostStatsQuery,
    InventoryQuery,
    LoadedModel,
    LoadModel,
    ModelInfo,
    ModelLoadChanged,
    ModelStats,
    TokenCount,
    UnloadModel,
    Usage,
)
from actors.llm._telemetry import (
    ServerInfo,
    end_chat_span,
    end_embed_span,
    record_chat_metrics,
    record_embed_metrics,
    start_chat_span,
    start_embed_span,
)
from actors.llm.providers import Provider, ProviderError, Timeouts, make_client, provider_class
from actors.lowlevel import IoHandle

__all__ = ["HostMessage", "ModelHost"]

HostMessage = (
    ChatRequest
    | CancelChat
    | CountTokens
    | EmbedRequest
    | InventoryQuery
    | LoadModel
    | UnloadModel
    | HostStatsQuery
)

_DEFAULT_BREAKER = BreakerConfig()
_BREAKER_LEVEL = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
"""``reactor.breaker.state`` gauge values."""


def _current(span: trace.Span) -> contextlib.AbstractContextManager[trace.Span]:
    """Make ``span`` current; its outcome (not a raised ProviderError) decides its status."""
    return trace.use_span(
        span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    )


class _Stats:
    """Running statistics for one model (touched only by the host's handlers)."""

    __slots__ = (
        "failures",
        "failures_by_kind",
        "input_tokens",
        "latencies",
        "latency_ewma",
        "output_tokens",
        "priced",
        "requests",
        "successes",
        "tokens_per_s",
        "total_cost",
    )

    ALPHA = 0.2
    WINDOW = 200

    def __init__(self) -> None:
        self.requests = 0
        self.successes = 0
        self.failures = 0
        self.failures_by_kind: dict[str, int] = {}
        self.latency_ewma: float | None = None
        self.latencies: collections.deque[float] = collections.deque(maxlen=self.WINDOW)
        self.tokens_per_s: float | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.total_cost = 0.0
        self.priced = False

    def success(self, completion: Completion) -> None:
        self.requests += 1
        self.successes += 1
        latency = completion.latency_s
        self.latencies.append(latency)
        self.latency_ewma = _ewma(self.latency_ewma, latency)
        speed = completion.tokens_per_s
        if speed is None and completion.usage.output_tokens and latency > 0:
            speed = completion.usage.output_tokens / latency
        if speed is not None:
            self.tokens_per_s = _ewma(self.tokens_per_s, speed)
        self.input_tokens += completion.usage.input_tokens
        self.output_tokens += completion.usage.output_tokens
        if completion.cost_usd is not None:
            self.priced = True
            self.total_cost += completion.cost_usd

    def failure(self, kind: FailureKind) -> None:
        self.requests += 1
        self.failures += 1
        self.failures_by_kind[kind.value] = self.failures_by_kind.get(kind.value, 0) + 1

    def snapshot(self, model: str, breaker: BreakerState, priced: bool) -> ModelStats:
        p95 = None
        if self.latencies:
            ordered = sorted(self.latencies)
            p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        return ModelStats(
            model=model,
            requests=self.requests,
            successes=self.successes,
            failures=self.failures,
            success_rate=self.successes / self.requests if self.requests else 1.0,
            latency_ewma_s=self.latency_ewma,
            latency_p95_s=p95,
            tokens_per_s=self.tokens_per_s,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=self.total_cost if (self.priced or priced) else None,
            breaker=breaker,
            failures_by_kind=dict(self.failures_by_kind),
        )


def _bare(model: str) -> str:
    """A model name without Ollama's default ``:latest`` tag or Gemini's ``models/``."""
    return model.removeprefix("models/").removesuffix(":latest")


def _ewma(previous: float | None, value: float, alpha: float = _Stats.ALPHA) -> float:
    return value if previous is None else previous + alpha * (value - previous)


@dataclass(slots=True)
class _Pending:
    """A chat request admitted by the host: waiting for a slot, then in flight."""

    request: ChatRequest
    reply: Deferred[Completion]
    enqueued: float
    handle: IoHandle | None = None
    requested: str | None = None
    """The name the caller asked for, when an alias mapped it to ``request.model``."""
    probe: bool = False
    answered: bool = False
    sent: bool = False
    """Set on the loop just before the call is made (read by the host after its outcome)."""
    span: trace.Span | None = None
    """The request's ``chat {model}`` span while tracing is on; ended in ``_finished``."""
    started: float = 0.0
    """``time.perf_counter()`` when the host took the request (for the duration metric)."""


class _Slots:
    """The host's ``max_parallel`` slots, handed out in arrival order on the I/O loop.

    Only the loop changes it; the host's handlers read its counters for statistics.
    """

    __slots__ = ("_waiters", "active", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> None:
        """Wait for a slot (a cancelled waiter gives up its place, or its slot)."""
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Pass the slot to the next waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1


def _protocol(name: str, settings: HostConfig) -> str:
    if settings.protocol is None:
        msg = f"host {name!r}: no protocol (discovery finds it: see Config.host)"
        raise ValueError(msg)
    return settings.protocol


class ModelHost(Actor[HostMessage]):
    """One LLM server endpoint; see the module docstring for how requests go through.

    A host runs on the I/O loop (``on_loop``), where its HTTP calls run: its handlers
    never block, so a request asked from asyncio code on the loop, the call, and the
    bookkeeping of its outcome take no thread hop. A spec may still say
    ``on_loop=False`` to give it a thread of its own.

    The host's name is its actor's name (``system.spawn(ModelHost, name="local",
    args=(settings,))``, or :meth:`spec` under a supervisor).

    Args:
        settings: The endpoint, its limits, breaker settings and prices (its
            ``protocol`` must be set: :meth:`~actors.llm.Config.host` completes a
            configured section).
        monitor: The ResourceMonitor to ask before a model that is not loaded is used
            (no admission check without one).
        client: An httpx client to share (one is made, and closed at stop, otherwise).
        inventory: What discovery found on the server, so that the host knows its models
            from the start (it asks the server itself on an :class:`InventoryQuery`).
    """

    on_loop: ClassVar[bool] = True

    def __init__(
        self,
        settings: HostConfig,
        *,
        monitor: Ref[Any] | None = None,
        client: httpx.AsyncClient | None = None,
        inventory: HostInventory | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.protocol: str = _protocol(self.name, settings)
        self.monitor = monitor
        self._own_client = client is None
        timeouts = Timeouts(
            connect=settings.connect_timeout_s,
            read=settings.timeout_s,
            stream_idle=settings.stream_idle_timeout_s,
        )
        if client is None and not settings.verify_tls:
            self.log.warning(
                "TLS certificates are not checked on this host (verify_tls = false)",
                url=mask_url(settings.url),
            )
        self.client = client or make_client(
            max_connections=max(16, settings.max_parallel * 2),
            timeouts=timeouts,
            aiohttp=settings.transport == "aiohttp",
            tls=settings.tls_context(),
            proxy=settings.proxy_url(),
        )
        extra: dict[str, Any] = {}
        if self.protocol == "ollama" and settings.num_ctx is not None:
            extra["num_ctx"] = settings.num_ctx
        self.provider: Provider = provider_class(self.protocol)(
            settings.url,
            client=self.client,
            api_key=settings.resolved_api_key(),
            headers=settings.header_values(),
            timeouts=timeouts,
            name=self.name,
            **extra,
        )
        self.provider.server = settings.server
        self.provider.context_windows.update(settings.context_windows)
        self._pending: dict[str, _Pending] = {}  # admitted, not finished, by request id
        self._slots = _Slots(settings.max_parallel)
        # Models whose breaker is not closed, with the end of their open time: replaced
        # (never changed) by the handlers, read by the call before it is sent.
        self._tripped: dict[str, float] = {}
        self._expiring: set[str] = set()  # models whose breaker has a half-open timer set
        self._breakers: dict[str, Breaker] = {}
        self._stats: dict[str, _Stats] = {}
        self._last_used: dict[str, float] = {}
        self._inventory: HostInventory | None = None
        self._inventory_waiters: list[Deferred[HostInventory]] = []
        if inventory is not None and inventory.error is None and inventory.reachable:
            self._adopt(inventory)
        parts = urlsplit(settings.url)
        self._server_address = parts.hostname or ""
        self._server_port = parts.port or (443 if parts.scheme == "https" else 80)
        self._server = ServerInfo(
            host=self.name,
            protocol=self.protocol,
            address=self._server_address,
            port=self._server_port,
        )

    @classmethod
    def spec(
        cls,
        name: str,
        settings: HostConfig,
        *,
        monitor: Ref[Any] | None = None,
        restart: Restart = Restart.PERMANENT,
    ) -> ChildSpec:
        """A child spec that starts this host under a supervisor, named ``name``.

        Raises:
            ValueError: ``settings`` has no protocol (checked here, before a supervisor
                would restart a host that cannot start).
        """
        _protocol(name, settings)
        return ChildSpec(
            name=name,
            actor=cls,
            args=(settings,),
            kwargs={"monitor": monitor},
            restart=restart,
        )

    # -- lifecycle ----------------------------------------------------------------------

    def stopped(self) -> None:
        for pending in self._pending.values():
            stopped = Failure(
                kind=FailureKind.ACTOR_STOPPED, message=f"{self.name} stopped", source=self.name
            )
            self._answer(pending, stopped)
            self._close(pending, stopped)
        self._pending.clear()
        # A restarted host starts with closed breakers: say so, or whoever follows the
        # transitions (the catalog, and the Selector that skips open breakers) would
        # keep a model out for good on the word of an incarnation that is gone.
        for model, breaker in self._breakers.items():
            if breaker.state is not BreakerState.CLOSED:
                self.runtime.bus.publish(
                    BreakerTransition(
                        host=self.name,
                        model=model,
                        from_state=breaker.state,
                        to_state=BreakerState.CLOSED,
                        reason="the host stopped; it starts again with closed breakers",
                    )
                )
        if self._own_client:
            self.runtime.bridge.cleanup(self.client.aclose(), f"{self.name} close client")

    # -- dispatch -----------------------------------------------------------------------

    def receive(self, message: HostMessage) -> object:
        match message:
            case ChatRequest():
                return self._chat(message)
            case CancelChat():
                return self._cancel(message.request_id)
            case EmbedRequest():
                self._embed(message)
            case CountTokens():
                self._count(message)
            case InventoryQuery():
                return self._inventory_query(message)
            case LoadModel() | UnloadModel():
                self._load(message)
            case HostStatsQuery():
                return self.stats()
        return None

    # -- chat ---------------------------------------------------------------------------

    def _chat(self, request: ChatRequest) -> object:
        started = time.perf_counter()
        requested = request.model
        target = self.settings.aliases.get(requested)
        if target is not None and target != requested:
            request = msgspec.structs.replace(request, model=target)
        span = start_chat_span(request, self._server) if otel.enabled() else None
        if span is not None and requested != request.model:
            span.set_attribute("reactor.requested_model", requested)
        outcome = self._admit(request, requested, span, started)
        if outcome is not None:  # refused at once: the span and metric say why
            if span is not None:
                end_chat_span(span, outcome, self._server)
            record_chat_metrics(request, outcome, time.perf_counter() - started, self._server)
        return outcome

    def _admit(
        self, request: ChatRequest, requested: str, span: trace.Span | None, started: float
    ) -> Failure | None:
        """Take the request (``None``: it is on its way) or refuse it with a failure."""
        allowed = self.settings.models
        if allowed and requested not in allowed and request.model not in allowed:
            return Failure(
                kind=FailureKind.NOT_FOUND,
                message=f"{self.name}: model {request.model!r} is not one of this host's "
                f"configured models ({', '.join(allowed)})",
                source=self.name,
                details={"model": request.model},
            )
        unlisted = self._unlisted(request.model)
        if unlisted is not None:
            return unlisted
        breaker = self._breaker(request.model)
        if breaker.rejects():
            return self._circuit_open(request.model, breaker)
        if len(self._pending) >= self.settings.max_parallel + self.settings.queue_limit:
            in_flight, queued = self._occupancy()
            return Failure(
                kind=FailureKind.OVERLOADED,
                message=f"{self.name}: queue full ({queued} waiting, "
                f"{in_flight} in flight); request for {request.model!r} refused",
                source=self.name,
                details={"model": request.model, "queued": str(queued)},
            )
        allowed_now, transition = breaker.acquire()
        self._publish(request.model, transition, span)
        if not allowed_now:
            return self._circuit_open(request.model, breaker)
        pending = _Pending(request, self.defer_reply(), time.time(), span=span, started=started)
        pending.requested = requested if requested != request.model else None
        pending.probe = breaker.state is BreakerState.HALF_OPEN
        self._pending[request.request_id] = pending
        self._last_used[request.model] = time.time()
        self._measure_queue()
        if self.monitor is not None and self._known_unloaded(request.model):
            self.ask(
                self.monitor,
                AdmitModel(host=self.name, model=request.model),
                lambda outcome: self._admitted(pending, outcome),
            )
        else:
            self._send(pending)
        return None

    def _unlisted(self, model: str) -> Failure | None:
        """``not_found`` for a model the server does not list, once its inventory is known.

        Some servers answer any model name with the one model they serve (and echo the
        name back, as llama-cpp-python does), so a typo or a missing model would pass
        for an answer. Cloud APIs whose lists leave out aliases they accept (Anthropic,
        Gemini) are not checked; nor is a server that listed no models at all.
        """
        inventory = self._inventory
        if inventory is None or not inventory.models or not self.provider.lists_every_model:
            return None
        served = {info.id for info in inventory.models}
        if model in served or _bare(model) in {_bare(m) for m in served}:
            return None
        listed = sorted(served)
        shown = ", ".join(listed[:10]) + (
            f", ... ({len(listed)} in all)" if len(listed) > 10 else ""
        )
        return Failure(
            kind=FailureKind.NOT_FOUND,
            message=f"{self.name}: model {model!r} is not among the models this server lists "
            f"({shown}); ask for one of those, map the name to one in the host's `aliases`, "
            "or refresh the inventory (InventoryQuery(refresh=True)) if it was added since",
            source=self.name,
            details={"model": model, "listed": ", ".join(listed[:50])},
        )

    def _circuit_open(self, model: str, breaker: Breaker) -> Failure:
        wait = breaker.retry_in()
        return Failure(
            kind=FailureKind.CIRCUIT_OPEN,
            message=f"{self.name}: circuit for model {model!r} is {breaker.state}; "
            f"next probe in {wait:.2f}s",
            source=self.name,
            retry_after=wait,
            details={"model": model, "state": breaker.state.value},
        )

    def _known_unloaded(self, model: str) -> bool:
        if self._inventory is None:
            return False
        for info in self._inventory.models:
            if info.id == model:
                return info.loaded is False
        return False

    def _admitted(self, pending: _Pending, outcome: Admission | Failure) -> None:
        if pending.answered:  # cancelled while waiting for admission
            self._forget(pending)
            self._close(
                pending, Failure(kind=FailureKind.CANCELLED, message="cancelled before admission")
            )
            return
        if isinstance(outcome, Failure):
            self._finished(pending, outcome)
            return
        self._send(pending)

    def _send(self, pending: _Pending) -> None:
        # The outcome answers the caller straight from the I/O loop; the breaker, the
        # statistics and the cost are updated by this actor, in _finished.
        pending.handle = self.pipe_to_self(
            self._in_slot(pending),
            functools.partial(self._finished, pending),
            name=f"chat {pending.request.model}",
            answer=pending.reply,
        )

    async def _in_slot(self, pending: _Pending) -> Completion | Failure:
        """On the loop: wait for a slot, check the request may still go, and call."""
        slots = self._slots
        await slots.acquire()
        try:
            request = pending.request
            if pending.answered or pending.reply.answered:  # cancelled, or its caller left
                return Failure(kind=FailureKind.CANCELLED, message="answered while waiting")
            deadline = request.deadline
            if deadline is not None and deadline <= time.time():
                return Failure(
                    kind=FailureKind.TIMEOUT,
                    message=f"{self.name}: request for {request.model!r} waited "
                    f"{time.time() - pending.enqueued:.2f}s in the queue; its deadline passed",
                    source=self.name,
                    details={"model": request.model, "where": "queue"},
                )
            open_until = self._tripped.get(request.model)
            if open_until is not None and not pending.probe:
                wait = max(0.0, open_until - time.monotonic())
                return Failure(
                    kind=FailureKind.CIRCUIT_OPEN,
                    message=f"{self.name}: circuit for model {request.model!r} opened while "
                    f"the request waited; next probe in {wait:.2f}s",
                    source=self.name,
                    retry_after=wait,
                    details={"model": request.model},
                )
            pending.sent = True
            return await self._call(request, pending.span, pending.requested)
        finally:
            slots.release()

    async def _call(
        self, request: ChatRequest, span: trace.Span | None, requested: str | None = None
    ) -> Completion | Failure:
        # The chat span is current during the call: the HTTP request carries it as its
        # traceparent, so the server's own spans join the run's trace.
        started = time.perf_counter()
        try:
            with _current(span) if span is not None else contextlib.nullcontext():
                remaining = None if request.deadline is None else request.deadline - time.time()
                async with asyncio.timeout(remaining):
                    outcome: Completion | Failure = await self.provider.complete(request)
        except ProviderError as exc:
            outcome = exc.failure
        except TimeoutError:
            outcome = Failure(
                kind=FailureKind.TIMEOUT,
                message=f"{self.name}: model {request.model!r} did not answer within the request's "
                f"deadline ({time.perf_counter() - started:.2f}s)",
                source=self.name,
                details={"model": request.model, "where": "in flight"},
            )
        if isinstance(outcome, Completion):
            if requested is not None:
                extras = {**outcome.extras, "requested_model": requested}
                outcome = msgspec.structs.replace(outcome, extras=extras)
            outcome = self._priced(outcome, time.perf_counter() - started)
        return outcome

    def _priced(self, completion: Completion, latency: float) -> Completion:
        seconds = completion.latency_s or latency
        price = self.settings.prices.get(completion.model) or self.settings.prices.get(
            completion.extras.get("requested_model", "")
        )
        usage = completion.usage
        extras = completion.extras
        if price is not None and usage.total_tokens == 0 and not usage.estimated:
            # Never a silent $0: a priced model whose server reports no usage is costed
            # on an estimate, and says so.
            usage = Usage(
                input_tokens=0,
                output_tokens=max(1, len(completion.content) // 4) if completion.content else 0,
                estimated=True,
            )
        if usage.estimated:
            extras = {**extras, "usage_estimated": True}
        return msgspec.structs.replace(
            completion,
            host=self.name,
            latency_s=seconds,
            cost_usd=None if price is None else price.cost(usage, seconds),
            extras=extras,
        )

    def _finished(self, pending: _Pending, outcome: Completion | Failure) -> None:
        if not pending.sent or (
            isinstance(outcome, Failure) and outcome.kind is FailureKind.CANCELLED
        ):
            # Never sent (waited past its deadline, cancelled, circuit opened meanwhile)
            # or cancelled in flight: nothing to learn about the model.
            self._forget(pending)
            self._answer(pending, outcome)
            self._close(pending, outcome)
            return
        self._pending.pop(pending.request.request_id, None)
        model = pending.request.model
        breaker = self._breaker(model)
        span = pending.span
        if isinstance(outcome, Completion):
            self._stats_for(model).success(outcome)
            self._publish(model, breaker.success(probe=pending.probe), span)
        else:
            self._stats_for(model).failure(outcome.kind)
            self._publish(
                model,
                breaker.failure(outcome.kind, retry_after=outcome.retry_after, probe=pending.probe),
                span,
            )
            if outcome.kind is FailureKind.CONNECTION:
                # The server is unreachable: every model on it is.
                for other, other_breaker in self._breakers.items():
                    if other != model:
                        self._publish(other, other_breaker.failure(outcome.kind, probe=False), span)
        self._answer(pending, outcome)
        self._close(pending, outcome)

    def _close(self, pending: _Pending, outcome: Completion | Failure) -> None:
        """End the request's span and record its metrics (once)."""
        span, pending.span = pending.span, None
        if span is not None:
            end_chat_span(span, outcome, self._server)
        if pending.started:
            duration = time.perf_counter() - pending.started
            pending.started = 0.0
            record_chat_metrics(pending.request, outcome, duration, self._server)
            self._measure_queue()

    def _measure_queue(self) -> None:
        meters = otel.instruments()
        if meters is not None:
            meters.queue_depth.set(self._occupancy()[1], {"reactor.host": self.name})

    def _forget(self, pending: _Pending) -> None:
        """Drop a request that ends without an outcome to count; free its probe slot."""
        self._pending.pop(pending.request.request_id, None)
        if pending.probe:
            self._breaker(pending.request.model).release()

    def _answer(self, pending: _Pending, outcome: Completion | Failure) -> None:
        if not pending.answered:
            pending.answered = True
            pending.reply.send(outcome)

    def _cancel(self, request_id: str) -> bool:
        pending = self._pending.get(request_id)
        if pending is None:
            return False
        self._answer(
            pending,
            Failure(
                kind=FailureKind.CANCELLED,
                message=f"{self.name}: request {request_id} cancelled",
                source=self.name,
            ),
        )
        if pending.handle is not None:
            pending.handle.cancel()  # its outcome (cancelled) frees the slot
        return True

    def _occupancy(self) -> tuple[int, int]:
        """(in flight, waiting) among the admitted requests."""
        in_flight = min(self._slots.active, len(self._pending))
        return in_flight, len(self._pending) - in_flight

    # -- breakers and statistics --------------------------------------------------------

    def _breaker(self, model: str) -> Breaker:
        breaker = self._breakers.get(model)
        if breaker is None:
            breaker = self._breakers[model] = Breaker(self.settings.breaker or _DEFAULT_BREAKER)
        return breaker

    def _stats_for(self, model: str) -> _Stats:
        stats = self._stats.get(model)
        if stats is None:
            stats = self._stats[model] = _Stats()
        return stats

    def _publish(
        self, model: str, transition: Transition | None, span: trace.Span | None = None
    ) -> None:
        """Tell the bus, the log, the metrics and ``span`` (the call's) about a transition."""
        if transition is None:
            return
        tripped = dict(self._tripped)
        if transition.to_state is BreakerState.CLOSED:
            tripped.pop(model, None)
        else:
            tripped[model] = self._breaker(model).open_until
        self._tripped = tripped
        if transition.to_state is BreakerState.OPEN and transition.open_for_s is not None:
            self._half_open_later(model, transition.open_for_s)
        event = BreakerTransition(
            host=self.name,
            model=model,
            from_state=transition.from_state,
            to_state=transition.to_state,
            reason=transition.reason,
            open_for_s=transition.open_for_s,
        )
        self.log.info(
            "breaker transition",
            host=self.name,
            model=model,
            to=transition.to_state.value,
            reason=transition.reason,
        )
        meters = otel.instruments()
        if meters is not None:
            meters.breaker_state.set(
                _BREAKER_LEVEL[transition.to_state],
                {"reactor.host": self.name, otel.GEN_AI_REQUEST_MODEL: model},
            )
        if span is None:
            span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "breaker.transition",
                {
                    otel.GEN_AI_REQUEST_MODEL: model,
                    "breaker.from": transition.from_state.value,
                    "breaker.to": transition.to_state.value,
                    "breaker.reason": transition.reason,
                },
            )
        self.runtime.bus.publish(event)

    def _half_open_later(self, model: str, delay: float) -> None:
        """Half-open ``model``'s breaker when its open time is over, and publish it.

        One timer per model: a breaker that opens again while one is set (for longer)
        is found still open when it fires, and the timer is set again for the rest.
        """
        if model in self._expiring:
            return
        self._expiring.add(model)

        def expire() -> None:
            self._expiring.discard(model)
            breaker = self._breaker(model)
            if breaker.state is not BreakerState.OPEN:
                return  # a call half-opened it first
            wait = breaker.retry_in()
            if wait > 0:  # opened again since (for longer), or the timer fired early
                self._half_open_later(model, wait)
                return
            self._publish(model, breaker.expire())

        self.call_later(delay, expire, name="breaker open time over")

    def stats(self) -> HostStats:
        """The host's statistics now."""
        models = sorted(set(self._stats) | set(self._breakers))
        in_flight, queued = self._occupancy()
        return HostStats(
            host=self.name,
            in_flight=in_flight,
            queued=queued,
            max_parallel=self.settings.max_parallel,
            models=tuple(
                self._stats.get(m, _Stats()).snapshot(
                    m, self._breaker(m).state, priced=m in self.settings.prices
                )
                for m in models
            ),
        )

    # -- embeddings, inventory, load/unload ---------------------------------------------

    def _embed(self, request: EmbedRequest) -> None:
        reply: Deferred[Embeddings] = self.defer_reply()

        server = self._server
        span = start_embed_span(request, server) if otel.enabled() else None

        async def call() -> Embeddings | Failure:
            started = time.perf_counter()
            try:
                with _current(span) if span is not None else contextlib.nullcontext():
                    outcome: Embeddings | Failure = await self.provider.embed(request)
            except ProviderError as exc:
                outcome = exc.failure
            except asyncio.CancelledError:  # the host is stopping: the span still ends
                if span is not None:
                    cut = Failure(
                        kind=FailureKind.CANCELLED,
                        message=f"{self.name}: embedding cancelled before its answer",
                        source=self.name,
                    )
                    end_embed_span(span, cut)
                raise
            if span is not None:
                end_embed_span(span, outcome)
            record_embed_metrics(request, outcome, time.perf_counter() - started, server)
            return outcome

        self.pipe_to_self(call(), reply.send, name=f"embed {request.model}")

    def _count(self, message: CountTokens) -> None:
        """The prompt's tokens by the server's own count (a route some servers have)."""
        reply: Deferred[TokenCount] = self.defer_reply()
        request = message.request
        target = self.settings.aliases.get(request.model)
        if target is not None and target != request.model:
            request = msgspec.structs.replace(request, model=target)

        async def call() -> TokenCount | Failure:
            try:
                remaining = None if message.deadline is None else message.deadline - time.time()
                async with asyncio.timeout(remaining):
                    tokens, endpoint = await self.provider.count_tokens(request)
            except ProviderError as exc:
                return exc.failure
            except TimeoutError:
                return Failure(
                    kind=FailureKind.TIMEOUT,
                    message=f"{self.name}: counting tokens for {request.model!r} timed out",
                    source=self.name,
                )
            return TokenCount(
                model=request.model, input_tokens=tokens, host=self.name, endpoint=endpoint
            )

        self.pipe_to_self(call(), reply.send, name=f"count tokens {request.model}")

    def _inventory_query(self, query: InventoryQuery) -> HostInventory | None:
        if self._inventory is not None and not query.refresh:
            return self._annotated(self._inventory)
        self._inventory_waiters.append(self.defer_reply())
        if len(self._inventory_waiters) == 1:
            self.pipe_to_self(self._list_models(), self._inventory_arrived, name="list models")
        return None

    async def _list_models(self) -> HostInventory:
        try:
            models = await self.provider.list_models()
        except ProviderError as exc:
            return HostInventory(
                url=self.settings.url,
                provider=self.protocol,
                host=self.name,
                reachable=exc.failure.kind is not FailureKind.CONNECTION,
                error=exc.failure.message,
            )
        return HostInventory(
            url=self.settings.url,
            server=self.protocol,
            provider=self.protocol,
            reachable=True,
            host=self.name,
            models=tuple(models),
        )

    def _inventory_arrived(self, outcome: HostInventory | Failure) -> None:
        if isinstance(outcome, Failure):
            outcome = HostInventory(
                url=self.settings.url,
                provider=self.protocol,
                host=self.name,
                error=outcome.message,
            )
        if outcome.error is None:
            self._adopt(outcome)
        waiters, self._inventory_waiters = self._inventory_waiters, []
        answer = self._annotated(outcome)
        for waiter in waiters:
            waiter.send(answer)

    def _adopt(self, inventory: HostInventory) -> None:
        """Take an inventory as the host's: its models and their context windows."""
        self._inventory = inventory
        windows = {m.id: m.context_length for m in inventory.models if m.context_length}
        windows.update(self.settings.context_windows)  # the configuration wins
        self.provider.context_windows.update(windows)
        if self.provider.server is None and inventory.server not in ("", self.protocol):
            self.provider.server = inventory.server

    def _annotated(self, inventory: HostInventory) -> HostInventory:
        busy = collections.Counter(p.request.model for p in self._pending.values() if p.sent)
        models = tuple(
            msgspec.structs.replace(
                m, last_used=self._last_used.get(m.id), in_flight=busy.get(m.id, 0)
            )
            for m in inventory.models
        )
        return msgspec.structs.replace(inventory, models=models)

    def _load(self, message: LoadModel | UnloadModel) -> None:
        reply: Deferred[LoadedModel] = self.defer_reply()
        loading = isinstance(message, LoadModel)
        model = message.model

        async def call() -> LoadedModel | Failure:
            try:
                if loading:
                    await self.provider.load(model)
                else:
                    await self.provider.unload(model)
            except ProviderError as exc:
                return exc.failure
            return LoadedModel(host=self.name, model=model, loaded=loading)

        def done(outcome: LoadedModel | Failure) -> None:
            if isinstance(outcome, LoadedModel):
                self._set_loaded(model, loading)
                self.runtime.bus.publish(
                    ModelLoadChanged(
                        host=self.name, model=model, loaded=loading, reason="requested"
                    )
                )
            reply.send(outcome)

        self.pipe_to_self(call(), done, name=f"{'load' if loading else 'unload'} {model}")

    def _set_loaded(self, model: str, loaded: bool) -> None:
        if self._inventory is None:
            return
        models = []
        found = False
        for info in self._inventory.models:
            if info.id == model:
                found = True
                vram = info.vram_bytes if loaded else None
                models.append(msgspec.structs.replace(info, loaded=loaded, vram_bytes=vram))
            else:
                models.append(info)
        if not found:
            models.append(ModelInfo(id=model, loaded=loaded))
        self._inventory = msgspec.structs.replace(self._inventory, models=tuple(models))
