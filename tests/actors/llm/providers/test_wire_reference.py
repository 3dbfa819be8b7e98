"""Wire facts of real servers (``shared/reference/llm-server-apis.md``) over loopback.

Each test pins one thing a real server does that the providers once mishandled; the
fakes reproduce it, and the provider is driven against them over real HTTP.
"""

from __future__ import annotations

import httpx
import pytest

from actors._messages import FailureKind
from actors.llm._messages import (
    ChatMessage,
    ChatRequest,
    Completion,
    FinishReason,
    ToolCall,
    ToolSpec,
)
from actors.llm.providers._base import ProviderError
from actors.llm.providers._gemini import GeminiProvider
from actors.llm.providers._openai import LMStudioProvider, OpenAIProvider
from actors.testing import FakeModel, FakeServer, FakeToolCall, Reply
from actors.testing._gemini import GeminiProtocol
from actors.testing._openai import LlamaCppProtocol
from tests.support.providers import QUICK, WEATHER

# -- Gemini: thoughts are output tokens, counted apart (section 5.3) ----------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_thinking_tokens_count_as_output(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """``thoughtsTokenCount`` is not part of ``candidatesTokenCount``: both are output."""
    with FakeServer("gemini", models=["gemini-think"]) as server:
        reasoning = "The user greets me; a short greeting back will do nicely here."
        server.script(Reply(text="Hello!", reasoning=reasoning, output_tokens=2))
        provider = GeminiProvider(server.url, client=client, timeouts=QUICK)
        answer = await provider.complete(ChatRequest.prompt("gemini-think", "Hi", stream=stream))
    assert isinstance(answer, Completion)
    assert answer.content == "Hello!"
    assert answer.extras["thinking"] == reasoning
    thoughts = answer.extras["thoughts_tokens"]
    assert thoughts > 0
    assert answer.usage.output_tokens == 2 + thoughts


# -- llama.cpp router mode: status.value, /models/load and /models/unload (section 6.1) ----


def router_server() -> FakeServer:
    models = [FakeModel("qwen3-8b", context_length=4096), FakeModel("gemma-3-4b", loaded=False)]
    return FakeServer(LlamaCppProtocol(router=True), models=models)


async def test_llamacpp_router_lists_what_is_loaded(client: httpx.AsyncClient) -> None:
    """A router lists every model it can serve; only ``status.value: loaded`` is resident."""
    with router_server() as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        models = {m.id: m for m in await provider.list_models()}
    assert provider.server == "llamacpp"
    assert provider.can_load
    assert models["qwen3-8b"].loaded is True
    assert models["qwen3-8b"].context_length == 4096
    assert models["gemma-3-4b"].loaded is False
    assert models["gemma-3-4b"].details["status"] == "unloaded"


async def test_llamacpp_router_loads_and_unloads(client: httpx.AsyncClient) -> None:
    with router_server() as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        await provider.list_models()
        await provider.load("gemma-3-4b")
        assert server.calls[-1].path == "/models/load"
        assert server.calls[-1].body == {"model": "gemma-3-4b"}
        assert server.models["gemma-3-4b"].loaded
        await provider.unload("qwen3-8b")
        assert server.calls[-1].path == "/models/unload"
        assert server.calls[-1].body == {"model": "qwen3-8b"}
        assert not server.models["qwen3-8b"].loaded
        listed = {m.id: m.loaded for m in await provider.list_models()}
    assert listed == {"qwen3-8b": False, "gemma-3-4b": True}


async def test_llamacpp_router_unknown_model_is_not_found(client: httpx.AsyncClient) -> None:
    with router_server() as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK, server="llamacpp")
        with pytest.raises(ProviderError) as caught:
            await provider.load("nope")
    assert caught.value.failure.kind is FailureKind.NOT_FOUND


async def test_llamacpp_single_model_cannot_load(client: httpx.AsyncClient) -> None:
    """A llama-server with one model has no /models/load: a bad_request saying why."""
    with FakeServer("llamacpp", models=["m.gguf"]) as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        models = await provider.list_models()
        assert models[0].loaded is True
        assert not provider.can_load
        with pytest.raises(ProviderError) as caught:
            await provider.load("m.gguf")
    assert caught.value.failure.kind is FailureKind.BAD_REQUEST
    assert "router mode" in caught.value.failure.message


# -- Gemini 3: a functionCall's thoughtSignature goes back with it (section 5.3) ----------


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_thought_signature_goes_back_with_its_call(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """Gemini 3 refuses a tool loop's follow-up whose function-call turn lost its signature."""
    protocol = GeminiProtocol(thought_signatures=True)
    with FakeServer(protocol, models=["gemini-3-flash"]) as server:
        provider = GeminiProvider(server.url, client=client, timeouts=QUICK)
        calls = (
            FakeToolCall("get_weather", {"city": "Paris"}),
            FakeToolCall("get_weather", {"city": "Rome"}),
        )
        server.script(Reply(tool_calls=calls), Reply(text="Sunny in both."))
        question = ChatMessage.user("Weather in Paris and Rome?")
        first = await provider.complete(
            ChatRequest(
                model="gemini-3-flash", messages=(question,), tools=(WEATHER,), stream=stream
            )
        )
        assert [c.arguments["city"] for c in first.tool_calls] == ["Paris", "Rome"]
        signature = first.tool_calls[0].signature
        assert signature  # on the first call of a parallel set only, as Gemini 3 does
        assert first.tool_calls[1].signature is None
        follow_up = ChatRequest(
            model="gemini-3-flash",
            messages=(
                question,
                ChatMessage.assistant(tool_calls=first.tool_calls),
                *(ChatMessage.tool(call, '{"sky": "clear"}') for call in first.tool_calls),
            ),
            tools=(WEATHER,),
            stream=stream,
        )
        second = await provider.complete(follow_up)
        sent = server.calls[-1].body["contents"][1]["parts"]
    assert second.content == "Sunny in both."
    assert sent[0]["thoughtSignature"] == signature
    assert "thoughtSignature" not in sent[1]


async def test_gemini_3_refuses_a_call_turn_without_its_signature(
    client: httpx.AsyncClient,
) -> None:
    """The fake reproduces the refusal (so the test above would catch a dropped one)."""
    with FakeServer(GeminiProtocol(thought_signatures=True), models=["gemini-3-flash"]) as server:
        provider = GeminiProvider(server.url, client=client, timeouts=QUICK)
        call = ToolCall(id="gemini_x_0", name="get_weather", arguments={"city": "Oslo"})
        request = ChatRequest(
            model="gemini-3-flash",
            messages=(
                ChatMessage.user("Weather in Oslo?"),
                ChatMessage.assistant(tool_calls=(call,)),
                ChatMessage.tool(call, "rain"),
            ),
            tools=(WEATHER,),
        )
        with pytest.raises(ProviderError) as caught:
            await provider.complete(request)
    assert caught.value.failure.kind is FailureKind.BAD_REQUEST
    assert "thought_signature" in caught.value.failure.message


# -- OpenAI: reasoning models take max_completion_tokens only (section 1.1) ---------------


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_output_limit_is_max_completion_tokens(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """OpenAI refuses ``max_tokens`` on its reasoning models; ``max_completion_tokens`` works."""
    with FakeServer("openai", models=["gpt-5-mini"]) as server:
        server.script(Reply(text="one two three four five six"))
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK, server="openai")
        answer = await provider.complete(
            ChatRequest.prompt("gpt-5-mini", "Count", max_tokens=3, stream=stream)
        )
        body = server.calls[-1].body
    assert body["max_completion_tokens"] == 3
    assert "max_tokens" not in body
    assert answer.content == "one two three "
    assert answer.finish_reason is FinishReason.LENGTH


async def test_other_openai_compatible_servers_get_max_tokens(client: httpx.AsyncClient) -> None:
    with FakeServer("vllm", models=["qwen"]) as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        await provider.complete(ChatRequest.prompt("qwen", "Hi", max_tokens=3))
        body = server.calls[-1].body
    assert body["max_tokens"] == 3
    assert "max_completion_tokens" not in body


# -- Ollama /v1 ignores tool_choice (section 3.8) -----------------------------------------


async def test_ollama_v1_ignores_tool_choice(client: httpx.AsyncClient) -> None:
    """The answer comes back as the model gave it, with a warning that the choice went unheard."""
    with FakeServer("ollama", models=["llama3.2"]) as server:
        server.script(Reply(text="It is sunny."))
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        answer = await provider.complete(
            ChatRequest.prompt("llama3.2", "Weather?", tools=(WEATHER,), tool_choice="required")
        )
        assert server.calls[-1].path == "/v1/chat/completions"
    assert answer.content == "It is sunny."
    assert not answer.tool_calls
    assert any("tool_choice" in warning for warning in answer.warnings)


# -- LM Studio: a load of a loaded model loads a second instance (section 2.3) -------------


async def test_lmstudio_load_of_a_loaded_model_adds_no_instance(
    client: httpx.AsyncClient,
) -> None:
    models = [FakeModel("qwen-7b"), FakeModel("llama-8b", loaded=False)]
    with FakeServer("lmstudio", models=models) as server:
        provider = LMStudioProvider(server.url, client=client, timeouts=QUICK)
        await provider.load("qwen-7b")
        await provider.load("llama-8b")
        loads = [c.body for c in server.calls if c.path == "/api/v1/models/load"]
        listed = {m.id: m.details["instances"] for m in await provider.list_models()}
    assert loads == [{"model": "llama-8b"}]
    assert listed == {"qwen-7b": ["qwen-7b"], "llama-8b": ["llama-8b"]}


async def test_lmstudio_fake_loads_a_second_instance(client: httpx.AsyncClient) -> None:
    """What the guard above avoids, as the fake reproduces it; unload frees every instance."""
    with FakeServer("lmstudio", models=["qwen-7b"]) as server:
        answer = await client.post(f"{server.url}/api/v1/models/load", json={"model": "qwen-7b"})
        assert answer.json()["instance_id"] == "qwen-7b:2"
        provider = LMStudioProvider(server.url, client=client, timeouts=QUICK)
        listed = {m.id: m.details["instances"] for m in await provider.list_models()}
        assert listed == {"qwen-7b": ["qwen-7b", "qwen-7b:2"]}
        await provider.unload("qwen-7b")
        assert not server.models["qwen-7b"].loaded


# -- llama.cpp: the served context is /props n_ctx, not meta.n_ctx_train (section 6.1) ----


async def test_llamacpp_context_is_the_served_one(client: httpx.AsyncClient) -> None:
    """``--ctx-size 4096`` on a model trained for 131072: requests get 4096."""
    model = FakeModel("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", context_length=4096)
    with FakeServer(LlamaCppProtocol(trained_context=131072), models=[model]) as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        (info,) = await provider.list_models()
    assert info.details["meta"]["n_ctx_train"] == 131072
    assert info.context_length == 4096
    assert provider.context_windows[model.id] == 4096


# -- Gemini: tool schemas go in parametersJsonSchema --------------------------------------


async def test_gemini_tool_schema_with_json_schema_keywords(client: httpx.AsyncClient) -> None:
    """A tool's JSON Schema is sent as ``parametersJsonSchema``.

    ``parameters`` takes only Gemini's OpenAPI subset and refuses ``additionalProperties``
    (which pydantic ``extra="forbid"`` models and MCP tools carry).
    """
    strict = ToolSpec(
        name="get_weather",
        description="The weather in a city",
        parameters={
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    )
    with FakeServer("gemini", models=["gemini-fake"]) as server:
        server.script(Reply(tool_calls=(FakeToolCall("get_weather", {"city": "Oslo"}),)))
        provider = GeminiProvider(server.url, client=client, timeouts=QUICK)
        answer = await provider.complete(
            ChatRequest.prompt("gemini-fake", "Weather in Oslo?", tools=(strict,))
        )
        (declaration,) = server.calls[-1].body["tools"][0]["functionDeclarations"]
    assert declaration["parametersJsonSchema"] == strict.parameters
    assert "parameters" not in declaration
    assert answer.tool_calls[0].arguments == {"city": "Oslo"}


async def test_gemini_fake_refuses_json_schema_in_parameters(client: httpx.AsyncClient) -> None:
    with FakeServer("gemini", models=["gemini-fake"]) as server:
        declaration = {
            "name": "f",
            "parameters": {"type": "object", "additionalProperties": False},
        }
        answer = await client.post(
            f"{server.url}/v1beta/models/gemini-fake:generateContent",
            json={
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "tools": [{"functionDeclarations": [declaration]}],
            },
        )
    assert answer.status_code == 400
    assert 'Unknown name "additionalProperties"' in answer.json()["error"]["message"]
