"""Fidelity of the fake Ollama: the official ``ollama`` package must read it as a server.

And whatever the SDK reads, our provider reads the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import ollama
import openai
import pytest

from actors.llm._messages import ChatRequest, EmbedRequest, ToolSpec
from actors.llm.providers._base import Timeouts, make_client
from actors.llm.providers._ollama import OllamaProvider
from actors.testing import FakeModel, FakeServer, FakeToolCall, Fault, Reply

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

USER_HI = {"role": "user", "content": "hi"}


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fake Ollama with a loaded chat model, an unloaded one and an embedding model."""
    models = [
        FakeModel("llama3.2:latest", context_length=4096),
        FakeModel("qwen3:8b", loaded=False, size_bytes=5_000_000_000, vram_bytes=4_500_000_000),
        FakeModel("nomic-embed-text:latest", embeddings=True, size_bytes=270_000_000),
    ]
    with FakeServer("ollama", models=models) as running:
        yield running


@pytest.fixture
def client(server: FakeServer) -> Iterator[ollama.Client]:
    """The SDK's sync client, closed afterwards."""
    with ollama.Client(host=server.url) as sdk:
        yield sdk


@pytest.fixture
async def aclient(server: FakeServer) -> AsyncIterator[ollama.AsyncClient]:
    """The SDK's async client, closed afterwards."""
    async with ollama.AsyncClient(host=server.url) as sdk:
        yield sdk


def test_chat(server: FakeServer, client: ollama.Client) -> None:
    server.script(Reply(text="Paris.", input_tokens=9, output_tokens=2))
    response = client.chat(
        model="llama3.2", messages=[{"role": "user", "content": "Capital of France?"}]
    )
    assert server.calls[-1].body["stream"] is False
    assert response.message.role == "assistant"
    assert response.message.content == "Paris."
    assert response.done is True
    assert response.done_reason == "stop"
    assert response.model == "llama3.2"  # echoed as asked; the :latest tag is implicit
    assert response.prompt_eval_count == 9
    assert response.eval_count == 2
    assert response.eval_duration == 40_000_000
    assert response.total_duration is not None
    assert response.load_duration is not None
    assert response.total_duration > response.eval_duration + response.load_duration
    assert response.created_at is not None
    datetime.fromisoformat(response.created_at)


def test_chat_stream(server: FakeServer, client: ollama.Client) -> None:
    server.script("one two three")
    chunks = list(
        client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert "stream" not in server.calls[-1].body or server.calls[-1].body["stream"] is True
    assert "".join(c.message.content or "" for c in chunks) == "one two three"
    assert [c.done for c in chunks] == [False, False, False, True]
    final = chunks[-1]
    assert final.done_reason == "stop"
    assert final.eval_count == 3
    assert final.eval_duration == 60_000_000


async def test_async_chat_stream(server: FakeServer, aclient: ollama.AsyncClient) -> None:
    server.script("alpha beta")
    stream = await aclient.chat(
        model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    pieces = [chunk.message.content async for chunk in stream]
    assert "".join(p or "" for p in pieces) == "alpha beta"


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls(server: FakeServer, client: ollama.Client, stream: bool) -> None:
    server.script(Reply(tool_calls=(FakeToolCall("get_weather", {"city": "Tokyo"}),)))
    messages = [{"role": "user", "content": "Weather in Tokyo?"}]
    if stream:
        chunks = list(
            client.chat(model="llama3.2", messages=messages, tools=[WEATHER], stream=True)
        )
        with_calls = [c for c in chunks if c.message.tool_calls]
        assert len(with_calls) == 1
        assert with_calls[0].done is False  # the call comes before the final line
        assert chunks[-1].done is True
        calls = with_calls[0].message.tool_calls
    else:
        response = client.chat(model="llama3.2", messages=messages, tools=[WEATHER])
        calls = response.message.tool_calls
    assert server.calls[-1].body["tools"][0]["function"]["name"] == "get_weather"
    assert calls is not None
    assert calls[0].function.name == "get_weather"
    assert dict(calls[0].function.arguments) == {"city": "Tokyo"}


def test_tool_result_turn_is_accepted(server: FakeServer, client: ollama.Client) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Tokyo?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}],
        },
        {"role": "tool", "content": "11 degrees celsius", "tool_name": "get_weather"},
    ]
    response = client.chat(model="llama3.2", messages=messages, tools=[WEATHER])
    assert "11 degrees celsius" in (response.message.content or "")
    assert server.calls[-1].body["messages"][2]["tool_name"] == "get_weather"


def test_generate(server: FakeServer, client: ollama.Client) -> None:
    server.script("Hello there", "Hi again")
    response = client.generate(model="llama3.2", prompt="Say hello")
    assert response.response == "Hello there"
    assert response.done is True
    chunks = list(client.generate(model="llama3.2", prompt="Again", stream=True))
    assert "".join(c.response or "" for c in chunks) == "Hi again"
    assert chunks[-1].done is True


def test_list(client: ollama.Client) -> None:
    listed = {m.model: m for m in client.list().models}
    assert set(listed) == {"llama3.2:latest", "qwen3:8b", "nomic-embed-text:latest"}
    qwen = listed["qwen3:8b"]
    assert qwen.size == 5_000_000_000
    assert qwen.details is not None
    assert qwen.details.family == "llama"
    assert qwen.details.quantization_level == "Q4_K_M"
    assert qwen.modified_at is not None
    embed_details = listed["nomic-embed-text:latest"].details
    assert embed_details is not None
    assert embed_details.family == "nomic-bert"


def test_ps_lists_only_loaded_models(client: ollama.Client) -> None:
    running = {m.model: m for m in client.ps().models}
    assert set(running) == {"llama3.2:latest", "nomic-embed-text:latest"}
    llama = running["llama3.2:latest"]
    assert llama.size == 4_000_000_000
    assert llama.size_vram == 4_000_000_000
    assert llama.context_length == 4096
    assert isinstance(llama.expires_at, datetime)
    assert llama.expires_at.tzinfo is not None


def test_load_and_unload_through_empty_chat(server: FakeServer, client: ollama.Client) -> None:
    loaded = client.chat(model="qwen3:8b", messages=[])
    assert loaded.done_reason == "load"
    assert loaded.done is True
    assert server.models["qwen3:8b"].loaded
    running = {m.model: m for m in client.ps().models}
    assert running["qwen3:8b"].size_vram == 4_500_000_000

    unloaded = client.chat(model="qwen3:8b", messages=[], keep_alive=0)
    assert unloaded.done_reason == "unload"
    assert "qwen3:8b" not in {m.model for m in client.ps().models}
    assert client.generate(model="qwen3:8b").done is True  # an empty prompt loads too
    assert "qwen3:8b" in {m.model for m in client.ps().models}


def test_keep_alive_expiry_unloads(server: FakeServer, client: ollama.Client) -> None:
    client.chat(model="qwen3:8b", messages=[{"role": "user", "content": "hi"}], keep_alive=0.0)
    assert "qwen3:8b" not in {m.model for m in client.ps().models}  # keep_alive 0: answer, unload
    client.chat(model="qwen3:8b", messages=[], keep_alive="-1m")
    assert "qwen3:8b" in {m.model for m in client.ps().models}
    client.chat(model="qwen3:8b", messages=[], keep_alive="0.000001s")
    assert "qwen3:8b" not in {m.model for m in client.ps().models}


def test_show(client: ollama.Client) -> None:
    shown = client.show("llama3.2")
    assert shown.capabilities == ["completion", "tools"]
    assert shown.modelinfo is not None
    assert shown.modelinfo["llama.context_length"] == 4096
    assert shown.details is not None
    assert shown.details.format == "gguf"
    embedder = client.show("nomic-embed-text")
    assert embedder.capabilities == ["embedding"]


def test_embed(client: ollama.Client) -> None:
    result = client.embed(model="nomic-embed-text", input=["alpha", "beta"])
    assert len(result.embeddings) == 2
    assert all(len(v) == 16 for v in result.embeddings)
    assert result.prompt_eval_count is not None
    again = client.embed(model="nomic-embed-text", input="alpha")
    assert list(again.embeddings[0]) == list(result.embeddings[0])
    assert len(client.embed(model="nomic-embed-text", input="x", dimensions=8).embeddings[0]) == 8
    legacy = client.embeddings(model="nomic-embed-text", prompt="alpha")
    assert list(legacy.embedding) == list(result.embeddings[0])


@pytest.mark.parametrize(
    ("fault", "status", "text"),
    [
        (Fault(status=400), 400, "invalid request"),
        (Fault(status=429, retry_after=3), 429, "too many requests"),
        (Fault(status=500), 500, "the model failed to generate a response"),
        (Fault(status=502), 502, "remote model"),
        (Fault(status=503), 503, "maximum pending requests exceeded"),
    ],
    ids=["400", "429", "500", "502", "503"],
)
def test_error_status_raises_response_error(
    server: FakeServer, client: ollama.Client, fault: Fault, status: int, text: str
) -> None:
    server.inject(Fault(status=fault.status, retry_after=fault.retry_after))
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == status
    assert text in caught.value.error


def test_unknown_model_is_a_404(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="mistral", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 404
    assert caught.value.error == "model 'mistral' not found"
    with pytest.raises(ollama.ResponseError) as shown:
        client.show("mistral")
    assert shown.value.status_code == 404


def test_streamed_status_error(server: FakeServer, client: ollama.Client) -> None:
    server.inject(status=503)
    with pytest.raises(ollama.ResponseError) as caught:
        list(
            client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True)
        )
    assert caught.value.status_code == 503


def test_error_line_mid_stream(server: FakeServer, client: ollama.Client) -> None:
    server.script("one two three")
    server.inject(error_after=1)
    received: list[str] = []

    def consume() -> None:
        stream = client.chat(model="llama3.2", messages=[USER_HI], stream=True)
        received.extend(chunk.message.content or "" for chunk in stream)

    with pytest.raises(ollama.ResponseError) as caught:
        consume()
    assert received == ["one "]
    assert caught.value.error == "an error was encountered while running the model"


def test_chat_to_an_embedding_model_is_refused(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="nomic-embed-text", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 400
    assert "does not support chat" in caught.value.error


def test_root_and_version(server: FakeServer, client: ollama.Client) -> None:
    import httpx

    with httpx.Client(base_url=server.url, trust_env=False) as raw:
        assert raw.get("/").text == "Ollama is running"
        assert raw.get("/api/version").json() == {"version": "0.13.3"}


# -- the SDK and our provider read the same answer ------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_provider_reads_what_the_sdk_reads(
    server: FakeServer, aclient: ollama.AsyncClient, stream: bool
) -> None:
    reply = Reply(
        text="Checking the weather.",
        tool_calls=(FakeToolCall("get_weather", {"city": "Oslo", "days": 2}),),
        input_tokens=31,
        output_tokens=12,
    )
    server.script(reply, reply)
    messages = [{"role": "user", "content": "Weather in Oslo?"}]
    if stream:
        chunks = [
            c
            async for c in await aclient.chat(
                model="llama3.2", messages=messages, tools=[WEATHER], stream=True
            )
        ]
        sdk_text = "".join(c.message.content or "" for c in chunks)
        sdk_calls = [tc for c in chunks for tc in (c.message.tool_calls or [])]
        final = chunks[-1]
    else:
        final = await aclient.chat(model="llama3.2", messages=messages, tools=[WEATHER])
        sdk_text = final.message.content or ""
        sdk_calls = list(final.message.tool_calls or [])

    http = make_client(timeouts=Timeouts(read=5.0, stream_idle=5.0))
    try:
        provider = OllamaProvider(server.url, client=http)
        tool = ToolSpec(name="get_weather", parameters=WEATHER["function"]["parameters"])  # type: ignore[index]
        ours = await provider.complete(
            ChatRequest.prompt("llama3.2", "Weather in Oslo?", tools=(tool,), stream=stream)
        )
    finally:
        await http.aclose()

    assert ours.content == sdk_text
    assert [(c.name, c.arguments) for c in ours.tool_calls] == [
        (c.function.name, dict(c.function.arguments)) for c in sdk_calls
    ]
    assert ours.usage.input_tokens == final.prompt_eval_count
    assert ours.usage.output_tokens == final.eval_count
    assert ours.extras["raw_finish_reason"] == final.done_reason
    assert final.eval_count is not None
    assert final.eval_duration is not None
    assert ours.tokens_per_s == pytest.approx(final.eval_count / final.eval_duration * 1e9)


async def test_provider_embeddings_match_the_sdk(
    server: FakeServer, aclient: ollama.AsyncClient
) -> None:
    sdk = await aclient.embed(model="nomic-embed-text", input=["a", "b"])
    http = make_client()
    try:
        provider = OllamaProvider(server.url, client=http)
        ours = await provider.embed(EmbedRequest(model="nomic-embed-text", inputs=("a", "b")))
        models = {m.id: m for m in await provider.list_models()}
    finally:
        await http.aclose()
    assert [list(v) for v in ours.vectors] == [list(v) for v in sdk.embeddings]
    running = {m.model: m for m in (await aclient.ps()).models}
    for name, entry in running.items():
        assert name is not None
        assert models[name].loaded is True
        assert models[name].vram_bytes == entry.size_vram
        assert models[name].context_length == entry.context_length


# -- the OpenAI-compatible /v1 routes -------------------------------------------------------


def test_openai_compatible_routes(server: FakeServer) -> None:
    with httpx.Client(base_url=server.url, trust_env=False) as raw:
        if raw.get("/v1/models").status_code == 404:
            pytest.skip("the OpenAI-compatible fake is not available")
    server.script("Hello from v1", "streamed words here")
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="ollama", max_retries=0) as client:
        chat = client.chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": "hi"}]
        )
        assert chat.choices[0].message.content == "Hello from v1"
        pieces = [
            chunk.choices[0].delta.content or ""
            for chunk in client.chat.completions.create(
                model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            if chunk.choices
        ]
        assert "".join(pieces) == "streamed words here"
        listed = {m.id: m for m in client.models.list()}
        assert set(listed) == {"llama3.2:latest", "qwen3:8b", "nomic-embed-text:latest"}
        assert listed["qwen3:8b"].owned_by == "library"
        vectors = client.embeddings.create(model="nomic-embed-text", input=["a", "b"])
        assert len(vectors.data) == 2
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(
                model="mistral", messages=[{"role": "user", "content": "hi"}]
            )
        server.inject(status=503)
        with pytest.raises(openai.InternalServerError) as busy:
            client.chat.completions.create(
                model="llama3.2", messages=[{"role": "user", "content": "hi"}]
            )
    assert missing.value.body == {
        "message": "model 'mistral' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }
    assert isinstance(busy.value.body, dict)
    assert busy.value.body["type"] == "api_error"
    assert "maximum pending requests exceeded" in busy.value.body["message"]
    with httpx.Client(base_url=server.url, trust_env=False) as raw:
        native = raw.post("/api/chat", json={"model": "mistral", "messages": []})
    assert native.json() == {"error": "model 'mistral' not found"}  # /api keeps its shape
