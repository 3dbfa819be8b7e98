"""The Ollama native provider against the loopback fake: answers, streams, failures."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from actors._messages import FailureKind
from actors.llm._messages import (
    ChatMessage,
    ChatRequest,
    Completion,
    EmbedRequest,
    FinishReason,
    TextDelta,
    ToolCall,
    ToolSpec,
)
from actors.llm.providers import provider_class
from actors.llm.providers._base import ProviderError, Timeouts, make_client
from actors.llm.providers._ollama import OllamaProvider
from actors.testing import FakeModel, FakeServer, FakeToolCall, Reply
from actors.testing._ollama import OllamaProtocol

TIMEOUTS = Timeouts(connect=1.0, read=0.5, stream_idle=0.2)
WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fake Ollama with a loaded chat model, an unloaded one and an embedding model."""
    models = [
        FakeModel("llama3.2", context_length=256),
        FakeModel("qwen3:8b", loaded=False, size_bytes=5_000_000_000, vram_bytes=4_500_000_000),
        FakeModel("nomic-embed-text", embeddings=True, loaded=False, size_bytes=270_000_000),
    ]
    with FakeServer("ollama", models=models) as running:
        yield running


@pytest.fixture
async def provider(server: FakeServer) -> AsyncIterator[OllamaProvider]:
    """The provider on this test's loop, its client closed afterwards."""
    client = make_client(timeouts=TIMEOUTS)
    try:
        yield OllamaProvider(server.url, client=client, timeouts=TIMEOUTS)
    finally:
        await client.aclose()


async def collect(provider: OllamaProvider, request: ChatRequest) -> tuple[list[str], Completion]:
    """The text pieces and the final completion of a stream."""
    pieces: list[str] = []
    final: list[Completion] = []
    async for event in provider.stream(request):
        if isinstance(event, TextDelta):
            assert not final, "text after the final completion"
            pieces.append(event.text)
        else:
            final.append(event)
    assert len(final) == 1
    return pieces, final[0]


async def failure_of(provider: OllamaProvider, request: ChatRequest) -> ProviderError:
    """The error a chat (or stream, per ``request.stream``) raises."""
    with pytest.raises(ProviderError) as caught:
        await provider.complete(request)
    return caught.value


def is_loaded(server: FakeServer, model: str) -> bool:
    """Whether the fake has the model loaded now."""
    return server.models[model].loaded


def last_body(server: FakeServer) -> Any:
    """The body of the last request the fake received."""
    return server.calls[-1].body


# -- answers ------------------------------------------------------------------------------


def test_registry_names_the_class() -> None:
    assert provider_class("ollama") is OllamaProvider
    assert OllamaProvider.protocol == "ollama"


async def test_chat_sends_stream_false_and_reads_durations(
    server: FakeServer, provider: OllamaProvider
) -> None:
    server.script(Reply(text="Paris is the capital.", input_tokens=12, output_tokens=5))
    request = ChatRequest.prompt("llama3.2", "Capital of France?")
    answer = await provider.chat(request)
    assert last_body(server)["stream"] is False
    assert answer.content == "Paris is the capital."
    assert answer.provider == "ollama"
    assert answer.model == "llama3.2"
    assert answer.request_id == request.request_id
    assert answer.finish_reason is FinishReason.STOP
    assert answer.usage.input_tokens == 12
    assert answer.usage.output_tokens == 5
    assert answer.tokens_per_s == pytest.approx(50.0)  # 5 tokens in 100 ms of eval time
    assert answer.latency_s > 0
    assert answer.ttft_s == pytest.approx(0.0015 + 0.006)  # load + prompt evaluation
    assert answer.extras["raw_finish_reason"] == "stop"
    assert answer.extras["eval_duration_s"] == pytest.approx(0.1)
    assert answer.extras["load_duration_s"] == pytest.approx(0.0015)
    assert answer.extras["prompt_eval_duration_s"] == pytest.approx(0.006)
    assert answer.extras["total_duration_s"] > answer.extras["eval_duration_s"]
    assert answer.extras["prompt_tokens_per_s"] == pytest.approx(2000.0)


async def test_request_body_maps_every_field(server: FakeServer, provider: OllamaProvider) -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"})
    request = ChatRequest(
        model="llama3.2",
        messages=(
            ChatMessage.system("Be brief."),
            ChatMessage.user("Weather in Oslo?"),
            ChatMessage.assistant("", tool_calls=(call,)),
            ChatMessage.tool(call, "4 degrees"),
        ),
        tools=(WEATHER,),
        temperature=0.2,
        max_tokens=64,
        stop=("END",),
        options={"num_ctx": 4096, "keep_alive": "10m", "options": {"top_k": 20}, "think": False},
    )
    await provider.chat(request)
    body = last_body(server)
    assert body["model"] == "llama3.2"
    assert body["stream"] is False
    assert body["keep_alive"] == "10m"
    assert body["think"] is False
    assert body["options"] == {
        "temperature": 0.2,
        "num_predict": 64,
        "stop": ["END"],
        "num_ctx": 4096,
        "top_k": 20,
    }
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER.parameters,
            },
        }
    ]
    system, user, assistant, tool = body["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    assert user == {"role": "user", "content": "Weather in Oslo?"}
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"
    assert assistant["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}  # an object
    assert tool == {
        "role": "tool",
        "content": "4 degrees",
        "tool_name": "get_weather",
        "tool_call_id": "call_1",
    }


async def test_tool_choice_none_leaves_the_tools_out(
    server: FakeServer, provider: OllamaProvider
) -> None:
    await provider.chat(ChatRequest.prompt("llama3.2", "hi", tools=(WEATHER,), tool_choice="none"))
    assert "tools" not in last_body(server)
    assert "options" not in last_body(server)


async def test_stream_yields_pieces_then_one_completion(
    server: FakeServer, provider: OllamaProvider
) -> None:
    server.script(Reply(text="one two three four"))
    request = ChatRequest.prompt("llama3.2", "count", stream=True)
    pieces, answer = await collect(provider, request)
    assert last_body(server)["stream"] is True
    assert pieces == ["one ", "two ", "three ", "four"]
    assert answer.content == "one two three four"
    assert answer.usage.output_tokens == 4
    assert answer.tokens_per_s == pytest.approx(50.0)
    assert answer.ttft_s is not None
    assert 0 < answer.ttft_s <= answer.latency_s
    assert answer.request_id == request.request_id
    assert answer.extras["eval_duration_s"] == pytest.approx(0.08)


async def test_complete_streams_on_the_wire_when_asked(
    server: FakeServer, provider: OllamaProvider
) -> None:
    answer = await provider.complete(ChatRequest.prompt("llama3.2", "hello", stream=True))
    assert last_body(server)["stream"] is True
    assert answer.content == "[llama3.2] simulated answer to: hello"


async def test_tool_calls_have_object_arguments_and_synthesised_ids(
    server: FakeServer, provider: OllamaProvider
) -> None:
    calls = (
        FakeToolCall("get_weather", {"city": "Tokyo"}),
        FakeToolCall("get_weather", {"city": "Lima", "unit": "C"}),
    )
    server.script(Reply(tool_calls=calls), Reply(tool_calls=calls))
    request = ChatRequest.prompt("llama3.2", "weather?", tools=(WEATHER,))
    for answer in (
        await provider.chat(request),
        (await collect(provider, ChatRequest.prompt("llama3.2", "w?", tools=(WEATHER,))))[1],
    ):
        assert answer.finish_reason is FinishReason.TOOL_CALLS
        assert answer.extras["raw_finish_reason"] == "stop"
        assert answer.content == ""
        assert [c.arguments for c in answer.tool_calls] == [
            {"city": "Tokyo"},
            {"city": "Lima", "unit": "C"},
        ]
        first, second = answer.tool_calls
        assert first.id != second.id
        assert first.id.endswith("_0")
        assert second.id.endswith("_1")
        assert answer.request_id[:12] in first.id


async def test_tool_call_ids_from_newer_servers_are_kept(
    server: FakeServer, provider: OllamaProvider
) -> None:
    server.script(Reply(tool_calls=(FakeToolCall("get_weather", {"city": "Rome"}, id="call_x1"),)))
    _, answer = await collect(provider, ChatRequest.prompt("llama3.2", "w?", tools=(WEATHER,)))
    assert answer.tool_calls == (
        ToolCall(id="call_x1", name="get_weather", arguments={"city": "Rome"}),
    )


async def test_length_finish(server: FakeServer, provider: OllamaProvider) -> None:
    server.script(Reply(text="cut", finish="length"))
    answer = await provider.chat(ChatRequest.prompt("llama3.2", "long story", max_tokens=1))
    assert answer.finish_reason is FinishReason.LENGTH
    assert answer.extras["raw_finish_reason"] == "length"


async def test_chat_loads_an_unloaded_model_on_first_use(
    server: FakeServer, provider: OllamaProvider
) -> None:
    assert not is_loaded(server, "qwen3:8b")
    answer = await provider.chat(ChatRequest.prompt("qwen3:8b", "hi"))
    assert is_loaded(server, "qwen3:8b")
    assert answer.extras["load_duration_s"] > 0.1  # a real load, not the resident 1.5 ms


async def test_embed(server: FakeServer, provider: OllamaProvider) -> None:
    request = EmbedRequest(model="nomic-embed-text", inputs=("alpha", "beta", "alpha"))
    result = await provider.embed(request)
    assert result.provider == "ollama"
    assert result.model == "nomic-embed-text"
    assert len(result.vectors) == 3
    assert all(len(v) == 16 for v in result.vectors)
    assert result.vectors[0] == result.vectors[2] != result.vectors[1]
    assert sum(x * x for x in result.vectors[0]) == pytest.approx(1.0, abs=1e-6)
    assert result.usage.input_tokens > 0
    sent = last_body(server)
    assert sent == {
        "model": "nomic-embed-text",
        "input": ["alpha", "beta", "alpha"],
        "truncate": False,
    }
    assert is_loaded(server, "nomic-embed-text")


# -- models -------------------------------------------------------------------------------


async def test_list_models_merges_tags_and_ps(provider: OllamaProvider) -> None:
    models = {m.id: m for m in await provider.list_models()}
    assert set(models) == {"llama3.2", "qwen3:8b", "nomic-embed-text"}
    llama = models["llama3.2"]
    assert llama.loaded is True
    assert llama.context_length == 256
    assert llama.size_bytes == 4_000_000_000
    assert llama.vram_bytes == 4_000_000_000
    assert llama.capabilities == ("chat",)
    assert llama.details["family"] == "llama"
    assert "expires_at" in llama.details
    qwen = models["qwen3:8b"]
    assert qwen.loaded is False
    assert qwen.vram_bytes is None
    assert qwen.size_bytes == 5_000_000_000
    assert models["nomic-embed-text"].capabilities == ("embeddings",)


async def test_list_models_with_show_details(server: FakeServer) -> None:
    client = make_client(timeouts=TIMEOUTS)
    try:
        provider = OllamaProvider(server.url, client=client, show_details=True)
        models = {m.id: m for m in await provider.list_models()}
    finally:
        await client.aclose()
    assert models["qwen3:8b"].capabilities == ("chat", "tools")
    # Not loaded: it will be served with Ollama's default, not the 8192 it was trained for.
    assert models["qwen3:8b"].context_length == 4096
    assert models["qwen3:8b"].details["trained_context_length"] == 8192
    assert models["qwen3:8b"].details["context_source"] == "default"
    assert models["nomic-embed-text"].capabilities == ("embeddings",)
    assert sum(1 for c in server.calls if c.path == "/api/show") == 3


async def test_load_unload_round_trip(server: FakeServer, provider: OllamaProvider) -> None:
    assert provider.can_load
    await provider.load("qwen3:8b")
    assert last_body(server) == {"model": "qwen3:8b", "messages": [], "stream": False}
    assert is_loaded(server, "qwen3:8b")
    qwen = {m.id: m for m in await provider.list_models()}["qwen3:8b"]
    assert qwen.loaded is True
    assert qwen.vram_bytes == 4_500_000_000

    await provider.unload("qwen3:8b")
    assert last_body(server)["keep_alive"] == 0
    assert not is_loaded(server, "qwen3:8b")
    qwen = {m.id: m for m in await provider.list_models()}["qwen3:8b"]
    assert qwen.loaded is False
    assert qwen.vram_bytes is None


async def test_version(provider: OllamaProvider) -> None:
    assert await provider.version() == "0.13.3"


async def test_load_of_an_unknown_model_is_not_found(provider: OllamaProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.load("nope")
    assert caught.value.failure.kind is FailureKind.NOT_FOUND


# -- failures -----------------------------------------------------------------------------

STATUS_CASES: list[tuple[dict[str, Any], FailureKind]] = [
    ({"status": 400}, FailureKind.BAD_REQUEST),
    ({"status": 400, "code": "context_length_exceeded"}, FailureKind.CONTEXT_WINDOW_EXCEEDED),
    ({"status": 401}, FailureKind.AUTH),
    ({"status": 404, "message": "model 'llama3.2' not found"}, FailureKind.NOT_FOUND),
    ({"status": 500}, FailureKind.SERVER_ERROR),
    ({"status": 502}, FailureKind.SERVER_ERROR),
    ({"status": 503}, FailureKind.OVERLOADED),
    (
        {"status": 500, "message": "model requires more system memory (12 GiB) than is available"},
        FailureKind.INSUFFICIENT_MEMORY,
    ),
]


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize(
    ("fault", "kind"), STATUS_CASES, ids=[f"{f['status']}-{k}" for f, k in STATUS_CASES]
)
async def test_status_codes_map_to_kinds(
    server: FakeServer,
    provider: OllamaProvider,
    fault: dict[str, Any],
    kind: FailureKind,
    stream: bool,
) -> None:
    server.inject(**fault)
    error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi", stream=stream))
    failure = error.failure
    assert failure.kind is kind
    assert failure.details["status"] == str(fault["status"])
    assert failure.source == provider.name
    assert "llama3.2" in failure.message


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_rate_limited_carries_retry_after(
    server: FakeServer, provider: OllamaProvider, stream: bool
) -> None:
    server.inject(status=429, retry_after=7)
    error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi", stream=stream))
    assert error.failure.kind is FailureKind.RATE_LIMITED
    assert error.failure.retry_after == pytest.approx(7.0)


async def test_unknown_model_is_not_found_with_ollamas_text(provider: OllamaProvider) -> None:
    error = await failure_of(provider, ChatRequest.prompt("mistral", "hi"))
    assert error.failure.kind is FailureKind.NOT_FOUND
    assert "model 'mistral' not found" in error.failure.message


async def test_prompt_longer_than_the_context_window(provider: OllamaProvider) -> None:
    """With ``truncate: false`` Ollama refuses what it would otherwise cut silently."""
    request = ChatRequest.prompt("llama3.2", "word " * 400, options={"truncate": False})
    error = await failure_of(provider, request)
    assert error.failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert error.failure.details["status"] == "400"


async def test_malformed_json(server: FakeServer, provider: OllamaProvider) -> None:
    server.inject(malformed=True)
    error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi"))
    assert error.failure.kind is FailureKind.INVALID_RESPONSE


async def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(timeouts=TIMEOUTS)
    try:
        provider = OllamaProvider(f"http://127.0.0.1:{port}", client=client, timeouts=TIMEOUTS)
        error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi"))
    finally:
        await client.aclose()
    assert error.failure.kind is FailureKind.CONNECTION


async def test_hang_is_a_timeout(server: FakeServer, provider: OllamaProvider) -> None:
    server.inject(hang=True)
    error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi"))
    assert error.failure.kind is FailureKind.TIMEOUT


async def test_cut_off_body_is_a_connection_failure(
    server: FakeServer, provider: OllamaProvider
) -> None:
    server.inject(close_after=0)
    error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi"))
    assert error.failure.kind is FailureKind.CONNECTION


async def test_stream_closed_midway_says_how_much_arrived(
    server: FakeServer, provider: OllamaProvider
) -> None:
    server.script("one two three four five")
    server.inject(close_after=2)
    error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi", stream=True))
    failure = error.failure
    assert failure.kind is FailureKind.CONNECTION
    assert failure.details["received_events"] == "2"
    assert failure.details["received_chars"] == str(len("one two "))
    assert "after 2 events" in failure.message


async def test_stream_stalled_past_idle_timeout(
    server: FakeServer, provider: OllamaProvider
) -> None:
    server.script("one two three")
    server.inject(token_delay=0.5)
    error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi", stream=True))
    failure = error.failure
    assert failure.kind is FailureKind.TIMEOUT
    assert failure.details["received_events"] == "1"
    assert "stalled" in failure.message


class _NoFinalLine(OllamaProtocol):
    """An Ollama whose streams end cleanly but without the final ``done:true`` line."""

    def routes(self, server: FakeServer) -> list[web.RouteDef]:
        async def chat(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
            line = {"model": "llama3.2", "message": {"role": "assistant", "content": "half"}}
            await response.write(json.dumps(line).encode() + b"\n")
            await response.write_eof()
            return response

        return [web.post("/api/chat", chat)]


async def test_stream_without_its_final_line() -> None:
    with FakeServer(_NoFinalLine(), models=["llama3.2"]) as server:
        client = make_client(timeouts=TIMEOUTS)
        try:
            provider = OllamaProvider(server.url, client=client, timeouts=TIMEOUTS)
            error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi", stream=True))
        finally:
            await client.aclose()
    assert error.failure.kind is FailureKind.CONNECTION
    assert error.failure.details["received_chars"] == "4"
    assert "done:true" in error.failure.message


async def test_error_line_mid_stream(server: FakeServer, provider: OllamaProvider) -> None:
    server.script("one two three four")
    server.inject(error_after=2)
    error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi", stream=True))
    failure = error.failure
    assert failure.kind is FailureKind.SERVER_ERROR
    assert failure.details["received_events"] == "3"  # two pieces, then the error line
    assert failure.details["received_chars"] == str(len("one two "))
    assert "an error was encountered while running the model" in failure.message


async def test_context_error_line_mid_stream(server: FakeServer, provider: OllamaProvider) -> None:
    server.inject(error_after=1, message="the input length exceeds the context length")
    error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi", stream=True))
    assert error.failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED


async def test_garbage_line_mid_stream(server: FakeServer, provider: OllamaProvider) -> None:
    server.script("one two three")
    server.inject(malformed=True, malformed_after=1)
    error = await failure_of(provider, ChatRequest.prompt("llama3.2", "hi", stream=True))
    failure = error.failure
    assert failure.kind is FailureKind.INVALID_RESPONSE
    assert failure.details["received_chars"] == str(len("one "))
    assert "malformed JSON" in failure.message


async def test_embed_of_an_unknown_model(provider: OllamaProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.embed(EmbedRequest(model="nope", inputs=("x",)))
    assert caught.value.failure.kind is FailureKind.NOT_FOUND


async def test_api_key_is_sent_as_bearer(server: FakeServer) -> None:
    server.api_key = "secret"
    client = make_client(timeouts=TIMEOUTS)
    try:
        good = OllamaProvider(server.url, client=client, api_key="secret")
        bad = OllamaProvider(server.url, client=client, api_key="wrong")
        assert (await good.chat(ChatRequest.prompt("llama3.2", "hi"))).content
        error = await failure_of(bad, ChatRequest.prompt("llama3.2", "hi"))
    finally:
        await client.aclose()
    assert error.failure.kind is FailureKind.AUTH
