"""Fidelity: the official ``openai`` SDK drives the OpenAI-compatible fakes.

If the SDK parses what a fake sends, the fake speaks the protocol; and whatever the SDK
parses, our provider must parse to the same values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from actors.llm._messages import ChatRequest, EmbedRequest, ToolSpec
from actors.llm.providers._base import make_client
from actors.llm.providers._openai import LMStudioProvider, OpenAIProvider
from actors.testing import FakeModel, FakeServer, FakeToolCall, Fault, Reply
from actors.testing._openai import fake_embedding

PROTOCOLS = ["openai", "lmstudio", "llamacpp", "vllm"]
TOOLS: list[ChatCompletionFunctionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
ARGUMENTS = {"city": "San Francisco", "unit": "celsius", "days": [1, 2, 3]}


@pytest.fixture(params=PROTOCOLS)
def server(request: pytest.FixtureRequest) -> Iterator[FakeServer]:
    models: list[str | FakeModel] = [
        "chat-model",
        FakeModel("embed-model", embeddings=True, tools=False),
    ]
    with FakeServer(request.param, models=models) as fake:
        yield fake


@pytest.fixture
def sdk(server: FakeServer) -> Iterator[OpenAI]:
    with OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0, timeout=5) as c:
        yield c


def test_chat(server: FakeServer, sdk: OpenAI) -> None:
    server.script(Reply(text="Hello there.", input_tokens=7, output_tokens=3))
    answer = sdk.chat.completions.create(
        model="chat-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content == "Hello there."
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (7, 3)
    assert answer.usage.total_tokens == 10


def test_tool_calls(server: FakeServer, sdk: OpenAI) -> None:
    server.script(Reply(tool_calls=(FakeToolCall("get_weather", ARGUMENTS, id="call_1"),)))
    answer = sdk.chat.completions.create(
        model="chat-model",
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.id == "call_1"
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == ARGUMENTS


def test_stream_with_usage(server: FakeServer, sdk: OpenAI) -> None:
    server.script(Reply(text="one two three", input_tokens=5, output_tokens=3))
    stream = sdk.chat.completions.create(
        model="chat-model",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
            assert chunk.choices == []
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "one two three"
    assert finish == "stop"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (5, 3)


def test_streamed_tool_calls(server: FakeServer, sdk: OpenAI) -> None:
    server.script(
        Reply(
            tool_calls=(
                FakeToolCall("get_weather", ARGUMENTS, id="call_1"),
                FakeToolCall("get_time", {"tz": "UTC"}, id="call_2"),
            )
        )
    )
    stream = sdk.chat.completions.create(
        model="chat-model",
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    fragments = 0
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for piece in choice.delta.tool_calls or []:
                fragments += 1
                slot = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = piece.id or slot["id"]
                if piece.function is not None:
                    slot["name"] = piece.function.name or slot["name"]
                    slot["arguments"] += piece.function.arguments or ""
    assert finish == "tool_calls"
    assert fragments > 3
    assert calls[0]["id"] == "call_1"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == ARGUMENTS
    assert calls[1]["name"] == "get_time"
    assert json.loads(calls[1]["arguments"]) == {"tz": "UTC"}


def test_embeddings(server: FakeServer, sdk: OpenAI) -> None:
    # The SDK asks for base64 unless told otherwise; both encodings decode the same.
    default = sdk.embeddings.create(model="embed-model", input=["alpha", "beta"])
    floats = sdk.embeddings.create(model="embed-model", input="alpha", encoding_format="float")
    assert [d.index for d in default.data] == [0, 1]
    assert default.data[0].embedding == pytest.approx(fake_embedding("alpha"))
    assert default.data[1].embedding == pytest.approx(fake_embedding("beta"))
    assert floats.data[0].embedding == default.data[0].embedding
    assert default.usage.prompt_tokens > 0


def test_models(server: FakeServer, sdk: OpenAI) -> None:
    ids = [model.id for model in sdk.models.list()]
    assert ids == ["chat-model", "embed-model"]
    if server.protocol.name != "llamacpp":
        assert sdk.models.retrieve("chat-model").id == "chat-model"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_error_statuses(
    server: FakeServer, sdk: OpenAI, status: int, error: type[openai.APIStatusError]
) -> None:
    server.inject(Fault(status=status, retry_after=1 if status == 429 else None))
    with pytest.raises(error) as info:
        sdk.chat.completions.create(
            model="chat-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == status
    if status == 429:
        assert info.value.response.headers["retry-after-ms"] == "1000"


def test_real_errors(sdk: OpenAI, server: FakeServer) -> None:
    hello: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    if server.protocol.name == "llamacpp":
        # llama.cpp serves its one model whatever a request names.
        answer = sdk.chat.completions.create(model="nope", messages=hello)
        assert answer.model == "chat-model"
    else:
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.create(model="nope", messages=hello)
    server.add_model(FakeModel("tiny", context_length=8))
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "word " * 100}]
        )
    assert "context" in str(info.value)


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_model_refusals(sdk: OpenAI, server: FakeServer, stream: bool) -> None:
    """A model that refuses fields answers as OpenAI's do: the SDK reads param and code."""
    server.add_model(FakeModel("gpt-5-mini", refuses=("temperature", "stop")))
    hello: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model="gpt-5-mini", messages=hello, temperature=0.7, stream=stream
        )
    assert (info.value.param, info.value.code) == ("temperature", "unsupported_value")
    assert "does not support 0.7 with this model" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model="gpt-5-mini", messages=hello, stop=["END"])
    assert (info.value.param, info.value.code) == ("stop", "unsupported_parameter")
    answer = sdk.chat.completions.create(model="gpt-5-mini", messages=hello, temperature=1)
    assert answer.choices[0].message.content is not None


def test_api_key_checked() -> None:
    with FakeServer("openai", models=["m"], api_key="sk-right") as fake:
        with (
            OpenAI(base_url=fake.url + "/v1", api_key="sk-wrong", max_retries=0) as wrong,
            pytest.raises(openai.AuthenticationError) as info,
        ):
            wrong.models.list()
        assert info.value.code == "invalid_api_key"
        with OpenAI(base_url=fake.url + "/v1", api_key="sk-right", max_retries=0) as right:
            assert [m.id for m in right.models.list()] == ["m"]


def test_mid_stream_error(server: FakeServer, sdk: OpenAI) -> None:
    server.script("one two three four")
    server.inject(Fault(error_after=2, message="The model crashed."))
    stream = sdk.chat.completions.create(
        model="chat-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="The model crashed"):
        for _ in stream:
            pass


# -- the provider parses what the SDK parses ----------------------------------------------


async def test_provider_matches_sdk(server: FakeServer, sdk: OpenAI) -> None:
    reply = Reply(
        text="Let me check.",
        tool_calls=(FakeToolCall("get_weather", ARGUMENTS, id="call_9"),),
        input_tokens=11,
        output_tokens=6,
    )
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "weather?"}]
    server.script(reply, reply, reply)
    plain = sdk.chat.completions.create(
        model="chat-model",
        messages=messages,
        tools=TOOLS,
    )
    message = plain.choices[0].message
    assert message.tool_calls is not None
    sdk_call = message.tool_calls[0]
    assert sdk_call.type == "function"
    sdk_view = (
        message.content,
        sdk_call.id,
        sdk_call.function.name,
        json.loads(sdk_call.function.arguments),
        plain.choices[0].finish_reason,
        plain.usage.prompt_tokens if plain.usage else None,
        plain.usage.completion_tokens if plain.usage else None,
    )
    spec = ToolSpec(name="get_weather", parameters=dict(TOOLS[0]["function"]["parameters"]))
    cls = LMStudioProvider if server.protocol.name == "lmstudio" else OpenAIProvider
    client: httpx.AsyncClient = make_client()
    try:
        provider = cls(server.url, client=client)
        request = ChatRequest.prompt("chat-model", "weather?", tools=(spec,))
        for completion in (
            await provider.chat(request),
            await provider.complete(
                ChatRequest.prompt("chat-model", "weather?", tools=(spec,), stream=True)
            ),
        ):
            call = completion.tool_calls[0]
            ours = (
                completion.content,
                call.id,
                call.name,
                call.arguments,
                completion.finish_reason.value,
                completion.usage.input_tokens,
                completion.usage.output_tokens,
            )
            assert ours == sdk_view
        embedded = await provider.embed(EmbedRequest(model="embed-model", inputs=("a", "b")))
        sdk_embedded = sdk.embeddings.create(model="embed-model", input=["a", "b"])
        assert [list(v) for v in embedded.vectors] == [d.embedding for d in sdk_embedded.data]
        listed = await provider.list_models()
        assert [m.id for m in listed] == [m.id for m in sdk.models.list()]
    finally:
        await client.aclose()
