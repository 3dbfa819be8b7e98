"""AnthropicProvider against the Anthropic fake: real HTTP over loopback, no mocks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from actors._messages import FailureKind
from actors.llm._messages import (
    ChatMessage,
    ChatRequest,
    Completion,
    FinishReason,
    TextDelta,
    ToolSpec,
)
from actors.llm.providers import provider_class
from actors.llm.providers._anthropic import AnthropicProvider
from actors.llm.providers._base import ProviderError, Timeouts, make_client
from actors.testing import FakeModel, FakeServer, FakeToolCall, Fault, Reply
from tests.support.providers import failure_of, last_body

KEY = "sk-ant-test"
WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    models: list[str | FakeModel] = ["claude-fake", FakeModel("claude-tiny", context_length=50)]
    with FakeServer("anthropic", models=models, api_key=KEY) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    http = make_client(timeouts=Timeouts(connect=2.0, read=5.0))
    yield http
    await http.aclose()


@pytest.fixture
def provider(server: FakeServer, client: httpx.AsyncClient) -> AnthropicProvider:
    return AnthropicProvider(
        server.url, client=client, api_key=KEY, timeouts=Timeouts(stream_idle=0.3)
    )


def prompt(text: str = "Hello there", **kw: object) -> ChatRequest:
    return ChatRequest.prompt("claude-fake", text, **kw)  # type: ignore[arg-type]


# -- success --------------------------------------------------------------------------


async def test_registry_names_the_class() -> None:
    assert provider_class("anthropic") is AnthropicProvider


async def test_chat_answers_with_a_completion(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.script(Reply(text="Paris.", input_tokens=12, output_tokens=3))
    request = prompt("Capital of France?", system="Be terse.")
    answer = await provider.chat(request)
    assert answer.content == "Paris."
    assert answer.model == "claude-fake"
    assert answer.provider == "anthropic"
    assert answer.finish_reason is FinishReason.STOP
    assert answer.usage.input_tokens == 12
    assert answer.usage.output_tokens == 3
    assert answer.request_id == request.request_id
    assert answer.latency_s > 0
    assert answer.extras["raw_finish_reason"] == "end_turn"
    assert answer.extras["message_id"].startswith("msg_")
    assert answer.extras["cache_read_input_tokens"] == 0
    call = server.calls[-1]
    assert call.path == "/v1/messages"
    assert call.headers["x-api-key"] == KEY
    assert call.headers["anthropic-version"] == "2023-06-01"
    body = last_body(server)
    assert body["system"] == "Be terse."
    assert body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert body["max_tokens"] == 1024
    assert "stream" not in body


async def test_request_body_maps_every_field(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    request = ChatRequest(
        model="claude-fake",
        messages=(
            ChatMessage.system("One."),
            ChatMessage.user("Hi"),
            ChatMessage.system("Two."),
            ChatMessage.assistant("Hello"),
            ChatMessage.user("Weather?"),
        ),
        tools=(WEATHER,),
        tool_choice="required",
        temperature=0.2,
        max_tokens=77,
        stop=("END",),
        options={"top_k": 5, "metadata": {"user_id": "u1"}},
    )
    await provider.chat(request)
    body = last_body(server)
    assert body["system"] == "One.\n\nTwo."
    assert body["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Weather?"},
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER.parameters,
        }
    ]
    assert body["tool_choice"] == {"type": "any"}
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 77
    assert body["stop_sequences"] == ["END"]
    assert body["top_k"] == 5
    assert body["metadata"] == {"user_id": "u1"}


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", {"type": "auto"}),
        ("any", {"type": "any"}),
        ("none", {"type": "none"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
async def test_tool_choice_mapping(
    server: FakeServer, provider: AnthropicProvider, choice: str, wire: dict[str, str]
) -> None:
    await provider.chat(prompt(tools=(WEATHER,), tool_choice=choice))
    assert last_body(server)["tool_choice"] == wire


async def test_stop_sequence_ends_the_answer(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.script("one two END three")
    answer = await provider.chat(prompt(stop=("END",)))
    assert answer.content == "one two "
    assert answer.finish_reason is FinishReason.STOP
    assert answer.extras["raw_finish_reason"] == "stop_sequence"
    assert answer.extras["stop_sequence"] == "END"


async def test_max_tokens_cuts_the_answer(server: FakeServer, provider: AnthropicProvider) -> None:
    server.script("a b c d e f")
    answer = await provider.chat(prompt(max_tokens=2))
    assert answer.content == "a b "
    assert answer.finish_reason is FinishReason.LENGTH


@pytest.mark.parametrize(
    ("raw", "finish"),
    [
        ("length", FinishReason.LENGTH),
        ("model_context_window_exceeded", FinishReason.LENGTH),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("refusal", FinishReason.CONTENT_FILTER),
        ("pause_turn", FinishReason.OTHER),
        ("something_new", FinishReason.OTHER),
    ],
)
async def test_stop_reasons_are_normalised(
    server: FakeServer, provider: AnthropicProvider, raw: str, finish: FinishReason
) -> None:
    server.script(Reply(text="x", finish=raw), Reply(text="y", finish=raw))
    assert (await provider.chat(prompt())).finish_reason is finish
    assert (await provider.complete(prompt(stream=True))).finish_reason is finish


async def test_tool_calls_and_the_tool_result_round_trip(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.script(
        Reply(
            text="Checking.",
            tool_calls=(
                FakeToolCall("get_weather", {"city": "Paris"}),
                FakeToolCall("get_weather", {"city": "Rome"}, id="toolu_given"),
            ),
        ),
        "Both mild.",
    )
    first = prompt("Weather in Paris and Rome?", tools=(WEATHER,))
    answer = await provider.chat(first)
    assert answer.finish_reason is FinishReason.TOOL_CALLS
    assert answer.content == "Checking."
    paris, rome = answer.tool_calls
    assert paris.id.startswith("toolu_")
    assert paris.arguments == {"city": "Paris"}
    assert rome.id == "toolu_given"
    assert rome.arguments == {"city": "Rome"}

    follow = ChatRequest(
        model="claude-fake",
        messages=(
            *first.messages,
            ChatMessage.assistant(answer.content, answer.tool_calls),
            ChatMessage.tool(paris, "18C"),
            ChatMessage.tool(rome, "21C"),
        ),
        tools=(WEATHER,),
    )
    final = await provider.chat(follow)  # the fake checks every tool_use_id
    assert final.content == "Both mild."
    messages = last_body(server)["messages"]
    assert isinstance(messages, list)
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": paris.id, "name": "get_weather", "input": {"city": "Paris"}},
            {
                "type": "tool_use",
                "id": "toolu_given",
                "name": "get_weather",
                "input": {"city": "Rome"},
            },
        ],
    }
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": paris.id, "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_given", "content": "21C"},
        ],
    }
    assert len(messages) == 3


async def test_a_tool_result_for_an_unknown_call_is_refused(provider: AnthropicProvider) -> None:
    stray = ChatRequest(
        model="claude-fake",
        messages=(
            ChatMessage.user("Hi"),
            ChatMessage(role="tool", content="x", tool_call_id="toolu_nobody", name="f"),
        ),
    )
    failure = await failure_of(provider, stray)
    assert failure.kind is FailureKind.BAD_REQUEST
    assert "tool_use_id" in failure.message


# -- streaming ------------------------------------------------------------------------


async def test_stream_yields_text_then_the_completion(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.script(Reply(text="The quick brown fox", input_tokens=9))
    request = prompt(stream=True, system="Be brief.")
    events = [event async for event in provider.stream(request)]
    *deltas, final = events
    assert all(isinstance(d, TextDelta) for d in deltas)
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == "The quick brown fox"
    assert len(deltas) == 4
    assert isinstance(final, Completion)
    assert final.content == "The quick brown fox"
    assert final.finish_reason is FinishReason.STOP
    assert final.usage.input_tokens == 9
    assert final.usage.output_tokens == 4
    assert final.request_id == request.request_id
    assert final.ttft_s is not None
    assert final.ttft_s <= final.latency_s
    assert final.tokens_per_s is not None
    assert final.extras["raw_finish_reason"] == "end_turn"
    body = last_body(server)
    assert body["stream"] is True
    assert body["system"] == "Be brief."


async def test_stream_accumulates_tool_input_json(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    arguments = {"city": "Paris", "units": "metric", "days": [1, 2]}
    server.script(
        Reply(
            text="Let me look.",
            tool_calls=(
                FakeToolCall("get_weather", arguments),
                FakeToolCall("get_weather", {}, id="toolu_empty"),
            ),
        )
    )
    answer = await provider.complete(prompt(stream=True, tools=(WEATHER,)))
    assert answer.content == "Let me look."
    assert answer.finish_reason is FinishReason.TOOL_CALLS
    first, second = answer.tool_calls
    assert first.name == "get_weather"
    assert first.arguments == arguments
    assert first.id.startswith("toolu_")
    assert second.id == "toolu_empty"
    assert second.arguments == {}


async def test_stream_honours_the_time_to_first_token(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.inject(Fault(ttft=0.1))
    answer = await provider.complete(prompt(stream=True))
    assert answer.ttft_s is not None
    assert answer.ttft_s >= 0.09


# -- models ---------------------------------------------------------------------------


async def test_list_models_follows_pages(server: FakeServer, provider: AnthropicProvider) -> None:
    provider.models_page_size = 1
    models = await provider.list_models()
    assert [m.id for m in models] == ["claude-fake", "claude-tiny"]
    assert models[1].context_length == 50
    assert models[0].loaded is None
    assert set(models[0].capabilities) == {"chat", "tools", "vision"}
    assert models[0].details["display_name"] == "Claude Fake"
    paths = [(c.path, c.headers.get("x-api-key")) for c in server.calls]
    assert paths == [("/v1/models", KEY)] * 2


# -- failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"status": 400}, FailureKind.BAD_REQUEST),
        ({"status": 400, "code": "context_length_exceeded"}, FailureKind.CONTEXT_WINDOW_EXCEEDED),
        ({"status": 401}, FailureKind.AUTH),
        ({"status": 402}, FailureKind.BUDGET_EXCEEDED),
        ({"status": 403}, FailureKind.AUTH),
        ({"status": 404}, FailureKind.NOT_FOUND),
        ({"status": 413}, FailureKind.BAD_REQUEST),
        ({"status": 429, "code": "enforced_spend_limit_reached"}, FailureKind.BUDGET_EXCEEDED),
        ({"status": 500}, FailureKind.SERVER_ERROR),
        ({"status": 504}, FailureKind.TIMEOUT),
        ({"status": 529}, FailureKind.OVERLOADED),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_status_codes_map_to_failure_kinds(
    server: FakeServer,
    provider: AnthropicProvider,
    fields: dict[str, object],
    kind: FailureKind,
    stream: bool,
) -> None:
    fault = server.inject(**fields)
    failure = await failure_of(provider, prompt(stream=stream))
    assert failure.kind is kind
    assert failure.details["status"] == str(fault.status)
    assert failure.details["request_id"].startswith("req_")
    assert failure.details["model"] == "claude-fake"
    assert "claude-fake" in failure.message


async def test_rate_limit_carries_retry_after(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.inject(Fault(status=429, retry_after=2.5))
    failure = await failure_of(provider, prompt())
    assert failure.kind is FailureKind.RATE_LIMITED
    assert failure.retry_after == 2.5
    assert failure.details["error_type"] == "rate_limit_error"
    assert failure.kind.retryable


async def test_overloaded_529_body(server: FakeServer, provider: AnthropicProvider) -> None:
    server.inject(Fault(status=529))
    failure = await failure_of(provider, prompt())
    assert failure.kind is FailureKind.OVERLOADED
    assert failure.details["error_type"] == "overloaded_error"
    assert "Overloaded" in failure.message


async def test_prompt_longer_than_the_context_window(provider: AnthropicProvider) -> None:
    failure = await failure_of(provider, ChatRequest.prompt("claude-tiny", "word " * 100))
    assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert "prompt is too long" in failure.message


async def test_wrong_key_is_an_auth_failure(server: FakeServer, client: httpx.AsyncClient) -> None:
    wrong = AnthropicProvider(server.url, client=client, api_key="nope")
    failure = await failure_of(wrong, prompt())
    assert failure.kind is FailureKind.AUTH
    assert failure.details["error_type"] == "authentication_error"
    with pytest.raises(ProviderError) as caught:
        await wrong.list_models()
    assert caught.value.failure.kind is FailureKind.AUTH


async def test_unknown_model_is_not_found(provider: AnthropicProvider) -> None:
    failure = await failure_of(provider, ChatRequest.prompt("claude-nope", "hi"))
    assert failure.kind is FailureKind.NOT_FOUND
    assert failure.details["error_type"] == "not_found_error"


async def test_malformed_json_is_an_invalid_response(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.inject(Fault(malformed=True))
    failure = await failure_of(provider, prompt())
    assert failure.kind is FailureKind.INVALID_RESPONSE


async def test_body_cut_off_is_a_connection_failure(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.inject(Fault(close_after=0))
    failure = await failure_of(provider, prompt())
    assert failure.kind is FailureKind.CONNECTION


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    with FakeServer("anthropic") as gone:
        url = gone.url
    provider = AnthropicProvider(url, client=client)
    failure = await failure_of(provider, prompt())
    assert failure.kind is FailureKind.CONNECTION
    with pytest.raises(ProviderError) as caught:
        await provider.list_models()
    assert caught.value.failure.kind is FailureKind.CONNECTION


@pytest.mark.parametrize("stream", [False, True])
async def test_hanging_server_times_out(server: FakeServer, stream: bool) -> None:
    http = make_client(timeouts=Timeouts(read=0.2))
    try:
        provider = AnthropicProvider(server.url, client=http, api_key=KEY)
        server.inject(Fault(hang=True))
        failure = await failure_of(provider, prompt(stream=stream))
        assert failure.kind is FailureKind.TIMEOUT
    finally:
        await http.aclose()


async def test_stream_closed_midway_says_how_much_arrived(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.script("one two three four five")
    server.inject(Fault(close_after=5))
    failure = await failure_of(provider, prompt(stream=True))
    assert failure.kind is FailureKind.CONNECTION
    assert failure.details["received_events"] == "5"
    assert failure.details["received_chars"] == str(len("one two "))
    assert "mid-stream after 5 events" in failure.message


async def test_stream_stalled_past_idle_timeout(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.inject(Fault(ttft=2.0))
    failure = await failure_of(provider, prompt(stream=True))
    assert failure.kind is FailureKind.TIMEOUT
    assert "stalled for 0.3s" in failure.message
    assert failure.details["received_events"] == "3"  # message_start, ping, block start


async def test_mid_stream_error_event(server: FakeServer, provider: AnthropicProvider) -> None:
    server.script("one two three")
    server.inject(Fault(error_after=4))
    failure = await failure_of(provider, prompt(stream=True))
    assert failure.kind is FailureKind.OVERLOADED
    assert failure.details["error_type"] == "overloaded_error"
    assert failure.details["received_chars"] == str(len("one "))
    assert "mid-stream" in failure.message


async def test_mid_stream_error_event_of_another_type(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.inject(Fault(error_after=2, code="api_error", message="boom"))
    failure = await failure_of(provider, prompt(stream=True))
    assert failure.kind is FailureKind.SERVER_ERROR
    assert "boom" in failure.message


async def test_garbage_event_is_an_invalid_response(
    server: FakeServer, provider: AnthropicProvider
) -> None:
    server.inject(Fault(malformed=True, malformed_after=3))
    failure = await failure_of(provider, prompt(stream=True))
    assert failure.kind is FailureKind.INVALID_RESPONSE
    assert failure.details["received_events"] == "4"  # three good ones and the garbage


async def test_error_mapping_without_http(provider: AnthropicProvider) -> None:
    def body(etype: str, message: str, **extra: object) -> bytes:
        error = {"type": etype, "message": message, **extra}
        return json.dumps({"type": "error", "error": error, "request_id": "req_x"}).encode()

    too_long = body("invalid_request_error", "prompt is too long: 9 tokens > 5 maximum")
    cases = [
        (400, too_long, FailureKind.CONTEXT_WINDOW_EXCEEDED),
        (400, body("invalid_request_error", "bad"), FailureKind.BAD_REQUEST),
        (403, body("permission_error", "no"), FailureKind.AUTH),
        (400, body("billing_error", "pay"), FailureKind.BUDGET_EXCEEDED),
        (500, body("timeout_error", "slow"), FailureKind.TIMEOUT),
        (529, body("overloaded_error", "busy"), FailureKind.OVERLOADED),
        (502, b"<html>bad gateway</html>", FailureKind.SERVER_ERROR),
    ]
    for status, raw, kind in cases:
        failure = provider.error_from_response(status, {}, raw, "m")
        assert failure.kind is kind, (status, raw)
    rate = provider.error_from_response(
        429, {"retry-after": "3", "request-id": "req_h"}, body("rate_limit_error", "slow"), "m"
    )
    assert rate.retry_after == 3.0
    assert rate.details["request_id"] == "req_h"
    assert provider.error_from_response(400, {}, too_long, "m").details["request_id"] == "req_x"
