"""The one internal form every LLM provider translates to and from.

Providers (OpenAI-compatible, LM Studio, Ollama, Anthropic, Gemini) speak different wire
protocols; everything above them (model hosts, reactor steps, consensus, tools) sees only
these types:

- :class:`ChatMessage` and :class:`ToolSpec` go in, inside a :class:`ChatRequest`;
- a :class:`Completion` comes out: text, :class:`ToolCall` s whose ``arguments`` are
  always a parsed object and whose ``id`` is always set (synthesised when the server
  gives none), :class:`Usage`, a normalised :class:`FinishReason`, and per-provider
  extras (tokens/s, time to first token) where the server reports them;
- a failure is a :class:`~actors.Failure` of the one taxonomy (:class:`~actors.FailureKind`).

Requests and replies are tagged :class:`~actors.Message` s, so they cross actors, the
journal and the HTTP API unchanged. Values nested inside them are plain frozen structs.
"""

from __future__ import annotations

import enum
import uuid
from typing import Any, Literal

import msgspec

from actors import Event, Message, Request

__all__ = [
    "Admission",
    "AdmitModel",
    "BreakerState",
    "BreakerTransition",
    "CancelChat",
    "ChatMessage",
    "ChatRequest",
    "Completion",
    "CountTokens",
    "EmbedRequest",
    "Embeddings",
    "FinishReason",
    "GpuInfo",
    "GpuProcess",
    "HostAdded",
    "HostInventory",
    "HostStats",
    "HostStatsQuery",
    "InventoryQuery",
    "LoadModel",
    "LoadedModel",
    "ModelInfo",
    "ModelLoadChanged",
    "ModelStats",
    "ResourceQuery",
    "ResourceSnapshot",
    "Role",
    "TextDelta",
    "ThinkingBlock",
    "TokenCount",
    "ToolCall",
    "ToolSpec",
    "UnloadModel",
    "Usage",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "new_request_id",
]

Role = Literal["system", "user", "assistant", "tool"]


def new_request_id() -> str:
    """A fresh id for a chat request (what :class:`CancelChat` names)."""
    return uuid.uuid4().hex


class _Value(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Values nested inside messages: frozen, keyword-only, compact on the wire."""


class ToolSpec(_Value, frozen=True, kw_only=True):
    """A tool the model may call.

    Attributes:
        name: The tool's name, as the model will call it.
        description: What it does, for the model.
        parameters: A JSON Schema object for its arguments.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


class ToolCall(_Value, frozen=True, kw_only=True):
    """One call of a tool that the model asked for.

    Attributes:
        id: The call's id. Servers that give none (Ollama native, Gemini) get one
            synthesised, so a tool result can always name the call it answers.
        name: The tool's name.
        arguments: The arguments, always parsed into an object (never a JSON string).
        signature: An opaque token the server attached to the call and wants back with
            it when the conversation continues (Gemini's ``thoughtSignature``: Gemini 3
            refuses a follow-up whose function-call turn lacks it); ``None`` when the
            server attached none.
    """

    id: str
    name: str
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    signature: str | None = None


class ThinkingBlock(_Value, frozen=True, kw_only=True):
    """One block of a model's reasoning that the server wants back, unchanged, later.

    Anthropic's extended thinking answers with ``thinking`` blocks (the text and a
    ``signature`` that authenticates it) and ``redacted_thinking`` blocks (encrypted
    ``data`` only). With tools, the assistant turn echoed back after a tool call must
    carry them, as they came and ahead of its ``tool_use`` blocks, or the API refuses
    the request (400). Providers whose wire has no such blocks ignore them.

    Attributes:
        kind: ``thinking`` or ``redacted_thinking``.
        text: The reasoning text (``thinking`` blocks).
        signature: The token that authenticates the text (``thinking`` blocks).
        data: The encrypted reasoning (``redacted_thinking`` blocks).
    """

    kind: Literal["thinking", "redacted_thinking"] = "thinking"
    text: str = ""
    signature: str = ""
    data: str = ""


class ChatMessage(_Value, frozen=True, kw_only=True):
    """One turn of a conversation.

    Attributes:
        role: ``system``, ``user``, ``assistant`` or ``tool``.
        content: The text.
        tool_calls: On an assistant turn, the tool calls it made.
        tool_call_id: On a tool turn, the call this result answers.
        name: On a tool turn, the tool's name (Ollama and Gemini key results by name).
        thinking_blocks: On an assistant turn, the reasoning blocks the answer came with
            (:class:`ThinkingBlock`), in order, to be sent back with it (Anthropic).
            Empty (and left off the wire) otherwise.
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    thinking_blocks: tuple[ThinkingBlock, ...] = ()

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        """A system turn."""
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> ChatMessage:
        """A user turn."""
        return cls(role="user", content=content)

    @classmethod
    def assistant(
        cls,
        content: str = "",
        tool_calls: tuple[ToolCall, ...] = (),
        thinking_blocks: tuple[ThinkingBlock, ...] = (),
    ) -> ChatMessage:
        """An assistant turn (echoed back when continuing after tool calls)."""
        return cls(
            role="assistant",
            content=content,
            tool_calls=tool_calls,
            thinking_blocks=thinking_blocks,
        )

    @classmethod
    def from_completion(cls, completion: Completion) -> ChatMessage:
        """The assistant turn that echoes ``completion`` back.

        It keeps the answer's text, tool calls and reasoning blocks: what a tool loop
        sends ahead of the tool results.
        """
        return cls.assistant(completion.content, completion.tool_calls, completion.thinking_blocks)

    @classmethod
    def tool(cls, call: ToolCall, content: str) -> ChatMessage:
        """The result of a tool call, answering ``call``."""
        return cls(role="tool", content=content, tool_call_id=call.id, name=call.name)


def estimate_tokens(text: str) -> int:
    """A rough token count for text: about four characters per token (0 for "").

    Used only where a server gives no figure (a stream without usage, a stream that
    ended empty); whatever carries an estimate says so.
    """
    return (len(text) + 3) // 4


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """A rough token count of a chat request's prompt: its turns, tool calls and tools.

    Each turn costs a few tokens of framing besides its text, as chat templates add.
    """
    total = 0
    for message in request.messages:
        total += 4 + estimate_tokens(message.content)
        for call in message.tool_calls:
            total += estimate_tokens(call.name) + estimate_tokens(str(call.arguments))
    for tool in request.tools:
        total += estimate_tokens(f"{tool.name} {tool.description} {tool.parameters}")
    return total


class Usage(_Value, frozen=True, kw_only=True):
    """Tokens in and out, as the server counted them.

    Attributes:
        input_tokens: Prompt tokens.
        output_tokens: Generated tokens.
        estimated: The server reported no usage (llama-cpp-python's streams send none),
            so both figures are estimates from the text (:func:`estimate_tokens`), not
            counts; spend and tokens per second computed from them are estimates too.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        """Input plus output."""
        return self.input_tokens + self.output_tokens


class FinishReason(enum.StrEnum):
    """Why the model stopped, normalised across vendors."""

    STOP = "stop"
    """A natural end, or a stop sequence."""
    LENGTH = "length"
    """The output token limit (or the context window) was reached."""
    TOOL_CALLS = "tool_calls"
    """The model asked for tool calls."""
    CONTENT_FILTER = "content_filter"
    """A safety or policy filter cut the answer (or the model refused)."""
    TRUNCATED = "truncated"
    """The stream ended (cleanly, even with ``data: [DONE]``) before the server said why
    it stopped: the answer was cut short, e.g. llama-cpp-python interrupting a stream
    when another request arrives. Never reported as ``stop``."""
    OTHER = "other"
    """Anything else the vendor reported (the raw value is in ``Completion.extras``)."""


class TextDelta(_Value, frozen=True, kw_only=True):
    """A piece of streamed text (what a provider's ``stream`` yields before the end)."""

    text: str


class Completion(Message, frozen=True, kw_only=True):
    """A model's answer, in the one internal form.

    Attributes:
        model: The model that answered (as the server named it).
        provider: The wire protocol: ``openai``, ``lmstudio``, ``ollama``, ``anthropic``
            or ``gemini``.
        host: The name of the model host that served it (empty when a provider was used
            directly).
        content: The text of the answer ("" when it is only tool calls).
        tool_calls: Tool calls, arguments parsed, ids always set.
        thinking_blocks: The reasoning blocks the server wants echoed back with this
            answer when the conversation continues (Anthropic's ``thinking`` with its
            ``signature``, ``redacted_thinking`` with its ``data``), in order; empty for
            other servers. Their text, for reading, is also in ``extras["thinking"]``.
        finish_reason: Why it stopped.
        usage: Tokens in and out.
        request_id: The request this answers.
        latency_s: Wall time from sending the request to the last byte.
        ttft_s: Time to first token, where measured (streaming) or reported by the server.
        tokens_per_s: Output tokens per second, as reported by the server or measured.
        cost_usd: What it cost by the configured price table; ``None`` when no price is
            configured for this model (never a silent 0).
        warnings: What looks wrong with an answer that is still an answer, one sentence
            each: e.g. a forced ``tool_choice`` answered without a tool call (the server
            ignored it). The host also records them on the chat span.
        extras: Per-provider extras (``raw_finish_reason``, server-reported timings, ...).
    """

    model: str
    provider: str
    host: str = ""
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    thinking_blocks: tuple[ThinkingBlock, ...] = ()
    finish_reason: FinishReason = FinishReason.STOP
    usage: Usage = Usage()
    request_id: str = ""
    latency_s: float = 0.0
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    cost_usd: float | None = None
    warnings: tuple[str, ...] = ()
    extras: dict[str, Any] = msgspec.field(default_factory=dict)


class ChatRequest(Request[Completion], frozen=True, kw_only=True):
    """Ask a model for a chat completion.

    Attributes:
        model: The model, as the host knows it.
        messages: The conversation so far.
        tools: Tools the model may call.
        tool_choice: ``"auto"``, ``"none"``, ``"required"``, or a tool's name to force it.
        temperature: Sampling temperature (the server's default when ``None``).
        max_tokens: Output token limit (the server's default when ``None``; Anthropic
            requires one, so its provider fills in a default).
        stop: Stop sequences.
        stream: Stream on the wire. The answer is still one :class:`Completion`, but
            the time to first token is measured and a stalled stream is caught by the
            idle timeout rather than the whole-request deadline.
        request_id: Names the request for :class:`CancelChat`; generated when omitted.
        options: Vendor-specific request fields, merged into the wire body as they are.
    """

    model: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    request_id: str = msgspec.field(default_factory=new_request_id)
    options: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def forced_tool(self) -> bool:
        """Whether ``tool_choice`` demands a tool call (``"required"`` or a tool's name)."""
        return self.tool_choice is not None and self.tool_choice not in ("auto", "none")

    @classmethod
    def prompt(cls, model: str, text: str, *, system: str | None = None, **kw: Any) -> ChatRequest:
        """The common case: one user prompt (and an optional system prompt)."""
        turns = (ChatMessage.system(system),) if system else ()
        return cls(model=model, messages=(*turns, ChatMessage.user(text)), **kw)


class CancelChat(Message, frozen=True, kw_only=True):
    """Cancel an in-flight or queued chat request by its ``request_id``.

    The request is answered with a ``cancelled`` failure; the HTTP call is aborted.
    """

    request_id: str


class Embeddings(Message, frozen=True, kw_only=True):
    """Embedding vectors, one per input, in input order."""

    model: str
    provider: str
    vectors: tuple[tuple[float, ...], ...]
    usage: Usage = Usage()


class EmbedRequest(Request[Embeddings], frozen=True, kw_only=True):
    """Embed one or more texts with an embedding model.

    Attributes:
        model: The embedding model.
        inputs: The texts, one vector each, in order.
        truncate: Let the server cut an input too long for the model's context to what
            fits, and embed that. ``False`` (the default): such an input fails the
            request ``context_window_exceeded``. Ollama cuts silently unless told not
            to, so its host sends ``truncate`` explicitly; other protocols have no such
            switch and ignore it.
    """

    model: str
    inputs: tuple[str, ...]
    truncate: bool = False


class TokenCount(Message, frozen=True, kw_only=True):
    """The answer to :class:`CountTokens`: the prompt's tokens, as the server counts them.

    Attributes:
        model: The model counted for.
        input_tokens: The prompt's tokens (messages, system prompt, tools).
        host: The model host that asked its server.
        endpoint: The server's route that counted (``/v1/messages/count_tokens``,
            ``:countTokens``, ``/tokenize``).
    """

    model: str
    input_tokens: int
    host: str = ""
    endpoint: str = ""


class CountTokens(Request[TokenCount], frozen=True, kw_only=True):
    """Count a chat request's prompt tokens with the server's own tokenizer, sending nothing.

    For the servers that have a route for it: Anthropic's ``count_tokens``, Gemini's
    ``countTokens``, llama.cpp's ``/apply-template`` + ``/tokenize`` and vLLM's
    ``/tokenize``. Others answer ``bad_request`` (no such route): callers fall back to
    an estimate.
    """

    request: ChatRequest


# -- inventory --------------------------------------------------------------------------


class ModelInfo(_Value, frozen=True, kw_only=True):
    """What a server says about one of its models.

    Attributes:
        id: The model's id, as requests name it.
        loaded: Whether it is resident now (``None`` when the server cannot say, e.g.
            cloud APIs, or servers whose only model is always loaded report ``True``).
        context_length: The context window (loaded config, else the maximum).
        size_bytes: Size on disk, where reported.
        vram_bytes: GPU memory it takes now, where reported (Ollama ``size_vram``).
        capabilities: Any of ``chat``, ``embeddings``, ``tools``, ``vision``.
        details: Everything else the server reported that may help a human.
        last_used: When a ModelHost last sent it a request (Unix time; filled in by the
            host, ``None`` from a provider).
        in_flight: Requests to it in flight on the host now (filled in by the host).
    """

    id: str
    loaded: bool | None = None
    context_length: int | None = None
    size_bytes: int | None = None
    vram_bytes: int | None = None
    capabilities: tuple[str, ...] = ("chat",)
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    last_used: float | None = None
    in_flight: int = 0


class HostInventory(Message, frozen=True, kw_only=True):
    """One endpoint, as discovery found it.

    Attributes:
        url: The base URL probed.
        server: What answered: ``lmstudio``, ``ollama``, ``llamacpp``,
            ``llama-cpp-python``, ``vllm``, ``openai``, ``anthropic``, ``gemini`` or
            ``openai-compatible``; ``""`` when nothing answered.
        provider: The wire protocol the host will be driven with.
        reachable: Whether anything answered.
        models: Its models, loaded or not.
        version: The server's version, where it reports one.
        host: The model host's name, when the inventory came from a ModelHost.
        error: Why it is unreachable, or what went wrong while probing.
    """

    url: str
    server: str = ""
    provider: str = ""
    reachable: bool = False
    models: tuple[ModelInfo, ...] = ()
    version: str | None = None
    host: str = ""
    error: str | None = None


class HostAdded(Event, frozen=True, kw_only=True):
    """Published when a model host joins (or, with ``removed``, leaves) a running system.

    The model catalog follows it: the host's models become candidates at once.

    Attributes:
        host: The model host's name.
        inventory: What it has (its models, loaded or not).
        prices: Prices of its models, per million tokens: ``model -> (input, output)``.
        removed: The host left; its models are forgotten.
    """

    host: str
    inventory: HostInventory | None = None
    prices: dict[str, tuple[float, float]] = msgspec.field(default_factory=dict)
    removed: bool = False


class InventoryQuery(Request[HostInventory], frozen=True, kw_only=True):
    """Ask a ModelHost for its inventory; ``refresh`` asks the server again."""

    refresh: bool = False


class LoadedModel(Message, frozen=True, kw_only=True):
    """The answer to :class:`LoadModel` and :class:`UnloadModel`: the model's new state."""

    host: str
    model: str
    loaded: bool


class LoadModel(Request[LoadedModel], frozen=True, kw_only=True):
    """Load a model through the server's own API (LM Studio v1, Ollama)."""

    model: str


class UnloadModel(Request[LoadedModel], frozen=True, kw_only=True):
    """Unload a model through the server's own API (LM Studio v1, Ollama)."""

    model: str


class ModelLoadChanged(Event, frozen=True, kw_only=True):
    """Published when a host loads or unloads a model."""

    host: str
    model: str
    loaded: bool
    reason: str = ""


# -- breakers and statistics ------------------------------------------------------------


class BreakerState(enum.StrEnum):
    """A circuit breaker's state."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerTransition(Event, frozen=True, kw_only=True):
    """Published on the event bus whenever a model's breaker changes state.

    Attributes:
        host: The model host.
        model: The model whose breaker moved.
        from_state: The state it left.
        to_state: The state it entered.
        reason: Why (e.g. ``"5 consecutive failures"``, ``"probe succeeded"``).
        open_for_s: When it opened, how long it stays open before probing.
    """

    host: str
    model: str
    from_state: BreakerState
    to_state: BreakerState
    reason: str
    open_for_s: float | None = None


class ModelStats(_Value, frozen=True, kw_only=True):
    """Running statistics for one model on one host.

    Attributes:
        model: The model.
        requests: Requests finished (either way).
        successes: Requests answered with a completion.
        failures: Requests answered with a failure (cancellations excluded).
        success_rate: ``successes / requests`` (1.0 before the first request).
        latency_ewma_s: Exponentially weighted mean latency of successes.
        latency_p95_s: 95th percentile latency over the recent window.
        tokens_per_s: Exponentially weighted mean output tokens per second.
        input_tokens: Input tokens, summed.
        output_tokens: Output tokens, summed.
        cost_usd: Cost summed from the price table; ``None`` when the model has no
            configured price.
        breaker: The breaker's state now.
        failures_by_kind: Failures counted per failure kind.
    """

    model: str
    requests: int = 0
    successes: int = 0
    failures: int = 0
    success_rate: float = 1.0
    latency_ewma_s: float | None = None
    latency_p95_s: float | None = None
    tokens_per_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    breaker: BreakerState = BreakerState.CLOSED
    failures_by_kind: dict[str, int] = msgspec.field(default_factory=dict)


class HostStats(Message, frozen=True, kw_only=True):
    """A model host's statistics: in flight, queued, and per model."""

    host: str
    in_flight: int
    queued: int
    max_parallel: int
    models: tuple[ModelStats, ...] = ()


class HostStatsQuery(Request[HostStats], frozen=True, kw_only=True):
    """Ask a ModelHost for its statistics."""


# -- GPU resources ----------------------------------------------------------------------


class GpuProcess(_Value, frozen=True, kw_only=True):
    """A process using a GPU (``used_bytes`` is ``None`` where NVML cannot say)."""

    pid: int
    name: str = ""
    used_bytes: int | None = None


class GpuInfo(_Value, frozen=True, kw_only=True):
    """One GPU, as NVML reports it."""

    index: int
    name: str
    uuid: str = ""
    total_bytes: int
    used_bytes: int
    free_bytes: int
    utilization_gpu: int | None = None
    utilization_memory: int | None = None
    processes: tuple[GpuProcess, ...] = ()


class ResourceSnapshot(Event, frozen=True, kw_only=True):
    """What the ResourceMonitor knows now; published on the event bus on every poll.

    Attributes:
        gpus: Every GPU NVML sees (empty with no GPU, no driver or no library).
        nvml: Whether NVML is available; ``nvml_error`` says why not.
        nvml_error: Why NVML is unavailable.
        budget_bytes: The memory budget for models: the configured figure, else the
            free VRAM plus what the hosts' loaded models already take.
        models_bytes: GPU memory the hosts' loaded models take, by ``host/model``.
        free_bytes: What is left of the budget.
        at: When the snapshot was taken (Unix time).
    """

    gpus: tuple[GpuInfo, ...] = ()
    nvml: bool = False
    nvml_error: str | None = None
    budget_bytes: int | None = None
    models_bytes: dict[str, int] = msgspec.field(default_factory=dict)
    free_bytes: int | None = None
    at: float = 0.0


class ResourceQuery(Request[ResourceSnapshot], frozen=True, kw_only=True):
    """Ask the ResourceMonitor for a fresh snapshot."""


class Admission(Message, frozen=True, kw_only=True):
    """The answer to :class:`AdmitModel` when the model fits (or is already loaded).

    Attributes:
        host: The host.
        model: The model.
        required_bytes: What the model needs (``None`` when unknown: admitted on trust).
        free_bytes: What was free after any unloading.
        unloaded: The models unloaded to make room, as ``host/model``, in order.
    """

    host: str
    model: str
    required_bytes: int | None = None
    free_bytes: int | None = None
    unloaded: tuple[str, ...] = ()


class AdmitModel(Request[Admission], frozen=True, kw_only=True):
    """Ask the ResourceMonitor whether a model that is not loaded may be loaded.

    Answered with :class:`Admission`, or an ``insufficient_memory`` failure that says
    what would be needed and what is free even after unloading idle models.
    """

    host: str
    model: str
    required_bytes: int | None = None
