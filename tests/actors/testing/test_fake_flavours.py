"""Every fake honours max_tokens and tool_choice; llama-cpp-python's fake looks like it.

The llama-cpp-python flavour is checked from the outside, as a client sees it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from actors.llm._messages import ChatRequest, FinishReason, ToolSpec
from actors.llm.providers import provider_class
from actors.llm.providers._base import Provider, Timeouts, make_client
from actors.testing import PROTOCOLS, FakeServer, FakeToolCall, Reply

QUICK = Timeouts(connect=2.0, read=5.0, stream_idle=5.0)
WEATHER = ToolSpec(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    },
)
CLOCK = ToolSpec(name="get_time")
DRIVEN_BY = {
    "lmstudio": "lmstudio",
    "ollama": "ollama",
    "anthropic": "anthropic",
    "gemini": "gemini",
}
"""Fake protocol -> the provider that drives it (every other fake speaks OpenAI's)."""
LONG = "one two three four five six seven eight nine ten"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    http = make_client(timeouts=QUICK)
    yield http
    await http.aclose()


async def provider_for(server: FakeServer, name: str, client: httpx.AsyncClient) -> Provider:
    provider = provider_class(DRIVEN_BY.get(name, "openai"))(
        server.url, client=client, timeouts=QUICK
    )
    await provider.list_models()  # learns which server it is, as a host does
    return provider


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("name", sorted(PROTOCOLS))
async def test_max_tokens_cuts_the_answer_with_length(
    name: str, stream: bool, client: httpx.AsyncClient
) -> None:
    """An answer longer than max_tokens is cut to it, with finish reason length."""
    with FakeServer(name, models=["m"]) as fake:
        provider = await provider_for(fake, name, client)
        fake.script(Reply(text=LONG))
        answer = await provider.complete(
            ChatRequest.prompt("m", "count", max_tokens=3, stream=stream)
        )
    assert answer.content == "one two three "
    assert answer.finish_reason is FinishReason.LENGTH


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
async def test_a_forced_tool_is_called(name: str, client: httpx.AsyncClient) -> None:
    """A tool forced by name is what comes back (Ollama has no tool_choice: a warning)."""
    with FakeServer(name, models=["m"]) as fake:
        provider = await provider_for(fake, name, client)
        fake.script(Reply(text="I would rather chat."))
        answer = await provider.complete(
            ChatRequest.prompt("m", "Weather?", tools=(CLOCK, WEATHER), tool_choice="get_weather")
        )
    if name == "ollama":
        assert answer.tool_calls == ()
        assert answer.warnings
        return
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [
        ("get_weather", {"city": "example", "days": 1})
    ]
    assert answer.warnings == ()


@pytest.mark.parametrize("name", sorted(set(PROTOCOLS) - {"ollama"}))
async def test_tool_choice_none_drops_tool_calls(name: str, client: httpx.AsyncClient) -> None:
    """With tool_choice none the model answers with text, whatever was scripted."""
    with FakeServer(name, models=["m"]) as fake:
        provider = await provider_for(fake, name, client)
        fake.script(Reply(text="No tools.", tool_calls=(FakeToolCall(name="get_time"),)))
        answer = await provider.complete(
            ChatRequest.prompt("m", "Time?", tools=(CLOCK,), tool_choice="none")
        )
    assert answer.tool_calls == ()
    assert answer.content == "No tools."


def test_llama_server_ignores_the_object_form_of_tool_choice() -> None:
    """llama-server's fake answers text when a tool is forced in the object form."""
    body = {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    with FakeServer("llamacpp", models=["m"]) as fake:
        assert fake.protocol.tool_choice(body) is None
        assert fake.protocol.tool_choice({"tool_choice": "required"}) is not None


def test_llama_cpp_python_surface() -> None:
    """owned_by "me", no /props, no context length, and an unknown name echoed back."""
    with (
        FakeServer("llama-cpp-python", models=["tiny.gguf"]) as fake,
        httpx.Client(base_url=fake.url, timeout=5) as http,
    ):
        models = http.get("/v1/models").json()
        props = http.get("/props")
        answer = http.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        ).json()
    assert models["data"] == [
        {"id": "tiny.gguf", "object": "model", "owned_by": "me", "permissions": []}
    ]
    assert props.status_code == 404
    assert answer["model"] == "gpt-4o"
    assert "timings" not in answer
