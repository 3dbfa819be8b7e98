"""Fidelity of the Anthropic fake: the official ``anthropic`` SDK must understand it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import pytest

from actors.testing import FakeModel, FakeServer, FakeToolCall, Fault, Reply

KEY = "sk-ant-sdk"
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
HELLO: list[Any] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    models: list[str | FakeModel] = [
        "claude-fake",
        "claude-other",
        FakeModel("claude-tiny", context_length=20),
    ]
    with FakeServer("anthropic", models=models, api_key=KEY) as running:
        yield running


@pytest.fixture
async def sdk(server: FakeServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key=KEY, max_retries=0)
    yield client
    await client.close()


async def test_messages_create(server: FakeServer, sdk: anthropic.AsyncAnthropic) -> None:
    server.script(Reply(text="Bonjour.", input_tokens=7, output_tokens=2))
    message = await sdk.messages.create(
        model="claude-fake", max_tokens=64, system="Be French.", messages=HELLO
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "claude-fake"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 7
    assert message.usage.output_tokens == 2
    (block,) = message.content
    assert isinstance(block, anthropic.types.TextBlock)
    assert block.text == "Bonjour."
    assert message._request_id is not None
    assert message._request_id.startswith("req_")
    assert server.calls[-1].body["system"] == "Be French."


async def test_messages_create_with_tool_use(
    server: FakeServer, sdk: anthropic.AsyncAnthropic
) -> None:
    server.script(Reply(tool_calls=(FakeToolCall("get_weather", {"city": "Oslo"}),)))
    message = await sdk.messages.create(
        model="claude-fake", max_tokens=64, messages=HELLO, tools=TOOLS
    )
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert isinstance(block, anthropic.types.ToolUseBlock)
    assert block.name == "get_weather"
    assert block.input == {"city": "Oslo"}

    server.script("It is cold.")
    round_trip: list[Any] = [
        *HELLO,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "-5C"}],
        },
    ]
    answer = await sdk.messages.create(
        model="claude-fake", max_tokens=64, tools=TOOLS, messages=round_trip
    )
    assert answer.content[0].type == "text"

    with pytest.raises(anthropic.BadRequestError) as caught:
        await sdk.messages.create(
            model="claude-fake",
            max_tokens=64,
            messages=[
                *HELLO,
                {"role": "assistant", "content": "no tool here"},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}],
                },
            ],
        )
    assert "tool_use_id" in str(caught.value)


async def test_messages_stream_helper_with_tool_use(
    server: FakeServer, sdk: anthropic.AsyncAnthropic
) -> None:
    arguments = {"city": "Lima", "days": [1, 2, 3]}
    server.script(
        Reply(text="Looking it up.", tool_calls=(FakeToolCall("get_weather", arguments),))
    )
    async with sdk.messages.stream(
        model="claude-fake", max_tokens=64, messages=HELLO, tools=TOOLS
    ) as stream:
        text = [piece async for piece in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(text) == "Looking it up."
    assert len(text) == 3
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "text"
    tool = final.content[1]
    assert isinstance(tool, anthropic.types.ToolUseBlock)
    assert tool.input == arguments
    assert tool.id.startswith("toolu_")
    assert final.usage.output_tokens == 3 + 8


async def test_raw_stream_events(server: FakeServer, sdk: anthropic.AsyncAnthropic) -> None:
    server.script(Reply(text="a b", tool_calls=(FakeToolCall("get_weather", {"city": "X"}),)))
    stream = await sdk.messages.create(
        model="claude-fake", max_tokens=64, messages=HELLO, tools=TOOLS, stream=True
    )
    types = []
    partial = []
    async for event in stream:
        types.append(event.type)
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            partial.append(event.delta.partial_json)
    assert types[0] == "message_start"
    assert "ping" not in types  # the SDK skips pings; the fake sends one
    assert types[-2:] == ["message_delta", "message_stop"]
    assert types.count("content_block_start") == 2
    assert "".join(partial) == '{"city": "X"}'


async def test_models_list_pages(sdk: anthropic.AsyncAnthropic) -> None:
    models = [model async for model in sdk.models.list(limit=2)]
    assert [m.id for m in models] == ["claude-fake", "claude-other", "claude-tiny"]
    assert models[2].max_input_tokens == 20
    one = await sdk.models.retrieve("claude-other")
    assert one.display_name == "Claude Other"
    with pytest.raises(anthropic.NotFoundError):
        await sdk.models.retrieve("claude-missing")


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
async def test_error_statuses_raise_the_sdk_classes(
    server: FakeServer,
    sdk: anthropic.AsyncAnthropic,
    status: int,
    error_class: type[anthropic.APIStatusError],
) -> None:
    server.inject(Fault(status=status, retry_after=1 if status == 429 else None))
    with pytest.raises(error_class) as caught:
        await sdk.messages.create(model="claude-fake", max_tokens=64, messages=HELLO)
    error = caught.value
    assert error.status_code == status
    assert isinstance(error.body, dict)
    assert error.body["type"] == "error"
    assert error.request_id is not None
    if status == 429:
        assert error.response.headers["retry-after"] == "1"
    if status == 529:
        assert isinstance(error, anthropic.APIStatusError)
        assert error.body["error"]["type"] == "overloaded_error"


async def test_real_failures_raise_the_sdk_classes(
    server: FakeServer, sdk: anthropic.AsyncAnthropic
) -> None:
    wrong = anthropic.AsyncAnthropic(base_url=server.url, api_key="wrong", max_retries=0)
    try:
        with pytest.raises(anthropic.AuthenticationError):
            await wrong.messages.create(model="claude-fake", max_tokens=8, messages=HELLO)
    finally:
        await wrong.close()
    with pytest.raises(anthropic.NotFoundError):
        await sdk.messages.create(model="claude-nope", max_tokens=8, messages=HELLO)
    with pytest.raises(anthropic.BadRequestError) as caught:
        await sdk.messages.create(
            model="claude-tiny",
            max_tokens=8,
            messages=[{"role": "user", "content": "long " * 40}],
        )
    assert "prompt is too long" in str(caught.value)
    server.inject(Fault(status=429, code="enforced_spend_limit_reached"))
    with pytest.raises(anthropic.RateLimitError) as limited:
        await sdk.messages.create(model="claude-fake", max_tokens=8, messages=HELLO)
    assert isinstance(limited.value.body, dict)
    assert limited.value.body["error"]["details"]["error_code"] == "enforced_spend_limit_reached"


async def test_mid_stream_error_event_raises(
    server: FakeServer, sdk: anthropic.AsyncAnthropic
) -> None:
    server.script("one two three")
    server.inject(Fault(error_after=3))
    stream = await sdk.messages.create(
        model="claude-fake", max_tokens=64, messages=HELLO, stream=True
    )
    seen: list[str] = []

    async def read_all() -> None:
        async for event in stream:
            seen.append(event.type)  # noqa: PERF401 - what arrived must survive the error

    with pytest.raises(anthropic.APIStatusError) as caught:
        await read_all()
    assert seen == ["message_start", "content_block_start"]  # the ping is skipped
    assert "overloaded_error" in str(caught.value)
