"""The OpenAI-compatible and LM Studio providers against their loopback fakes."""

from __future__ import annotations

import email.utils
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from actors._messages import Failure, FailureKind
from actors.llm._messages import (
    ChatMessage,
    ChatRequest,
    Completion,
    EmbedRequest,
    FinishReason,
    TextDelta,
    ToolCall,
)
from actors.llm.providers import provider_class
from actors.llm.providers._base import ProviderError, Timeouts, make_client
from actors.llm.providers._openai import LMStudioProvider, OpenAIProvider
from actors.testing import FakeModel, FakeServer, FakeToolCall, Fault, Reply
from actors.testing._openai import (
    EMBEDDING_DIM,
    LlamaCppProtocol,
    LMStudioProtocol,
    OpenAIProtocol,
    VLLMProtocol,
    fake_embedding,
)
from actors.testing._server import Exchange
from tests.support.providers import QUICK, WEATHER


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer("openai", models=["gpt-fake", FakeModel("tiny", context_length=16)]) as fake:
        yield fake


@pytest.fixture
def lmstudio() -> Iterator[FakeServer]:
    models = [
        FakeModel("qwen-7b", context_length=32768, size_bytes=5_000_000_000),
        FakeModel("llama-8b", loaded=False, load_delay=0.02),
        FakeModel("nomic-embed", embeddings=True, tools=False, context_length=2048),
    ]
    with FakeServer("lmstudio", models=models) as fake:
        yield fake


def openai(server: FakeServer, client: httpx.AsyncClient, **kw: Any) -> OpenAIProvider:
    return OpenAIProvider(server.url, client=client, timeouts=kw.pop("timeouts", QUICK), **kw)


def lms(server: FakeServer, client: httpx.AsyncClient) -> LMStudioProvider:
    return LMStudioProvider(server.url, client=client, timeouts=QUICK)


async def failure_of(call: Any) -> Failure:
    with pytest.raises(ProviderError) as info:
        await call
    return info.value.failure


async def stream_failure(provider: OpenAIProvider, request: ChatRequest) -> tuple[Failure, str]:
    pieces: list[str] = []

    async def drain() -> None:
        async for event in provider.stream(request):
            if isinstance(event, TextDelta):
                pieces.append(event.text)  # noqa: PERF401 - keeps what came before a failure

    failure = await failure_of(drain())
    return failure, "".join(pieces)


async def collect(
    provider: OpenAIProvider, request: ChatRequest
) -> tuple[list[TextDelta], Completion]:
    deltas: list[TextDelta] = []
    final: list[Completion] = []
    async for event in provider.stream(request):
        if isinstance(event, TextDelta):
            assert not final, "text after the final completion"
            deltas.append(event)
        else:
            final.append(event)
    assert len(final) == 1
    return deltas, final[0]


def last_body(server: FakeServer) -> dict[str, Any]:
    body = server.calls[-1].body
    assert isinstance(body, dict)
    return body


# -- success ---------------------------------------------------------------------------


def test_registry_names_both_classes() -> None:
    assert provider_class("openai") is OpenAIProvider
    assert provider_class("lmstudio") is LMStudioProvider


async def test_chat_maps_the_answer(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.script(Reply(text="Paris.", input_tokens=12, output_tokens=3))
    request = ChatRequest.prompt("gpt-fake", "Capital of France?", system="Be terse.")
    completion = await openai(server, client).chat(request)
    assert completion.content == "Paris."
    assert completion.model == "gpt-fake"
    assert completion.provider == "openai"
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage.input_tokens == 12
    assert completion.usage.output_tokens == 3
    assert completion.request_id == request.request_id
    assert completion.latency_s > 0
    assert completion.extras["raw_finish_reason"] == "stop"
    assert completion.tool_calls == ()
    body = last_body(server)
    assert server.calls[-1].path == "/v1/chat/completions"
    assert body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert body["stream"] is False


async def test_request_body_maps_every_field(server: FakeServer, client: httpx.AsyncClient) -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"})
    request = ChatRequest(
        model="gpt-fake",
        messages=(
            ChatMessage.system("sys"),
            ChatMessage.user("Weather in Oslo?"),
            ChatMessage.assistant(tool_calls=(call,)),
            ChatMessage.tool(call, '{"temp_c": 11}'),
        ),
        tools=(WEATHER,),
        tool_choice="get_weather",
        temperature=0.2,
        max_tokens=64,
        stop=("END",),
        options={"seed": 7, "top_p": 0.9},
    )
    await openai(server, client).chat(request)
    body = last_body(server)
    assert body["messages"][2] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ],
    }
    assert body["messages"][3] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"temp_c": 11}',
    }
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": WEATHER.parameters,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 64
    assert body["stop"] == ["END"]
    assert body["seed"] == 7
    assert body["top_p"] == 0.9
    await openai(server, client).chat(
        ChatRequest.prompt("gpt-fake", "x", tools=(WEATHER,), tool_choice="required")
    )
    assert last_body(server)["tool_choice"] == "required"


async def test_base_url_may_end_in_v1(server: FakeServer, client: httpx.AsyncClient) -> None:
    provider = OpenAIProvider(server.url + "/v1/", client=client)
    assert provider.base_url == server.url
    assert (await provider.chat(ChatRequest.prompt("gpt-fake", "hi"))).content


async def test_tool_calls_parsed(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.script(
        Reply(
            tool_calls=(
                FakeToolCall("get_weather", {"city": "Oslo"}, id="call_a"),
                FakeToolCall("get_weather", {"city": "Bergen", "unit": "c"}),
            )
        )
    )
    request = ChatRequest.prompt("gpt-fake", "weather?", tools=(WEATHER,))
    completion = await openai(server, client).chat(request)
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert completion.content == ""
    first, second = completion.tool_calls
    assert first == ToolCall(id="call_a", name="get_weather", arguments={"city": "Oslo"})
    assert second.arguments == {"city": "Bergen", "unit": "c"}
    assert second.id.startswith("call_")


class _NoIds(OpenAIProtocol):
    def chat_answer(
        self, exchange: Exchange, model: str, reply: Reply, *, native: bool
    ) -> dict[str, Any]:
        body = super().chat_answer(exchange, model, reply, native=native)
        for call in body["choices"][0]["message"].get("tool_calls", []):
            del call["id"]
        return body


async def test_missing_tool_call_ids_are_synthesised(client: httpx.AsyncClient) -> None:
    with FakeServer(_NoIds(), models=["m"]) as fake:
        fake.script(Reply(tool_calls=(FakeToolCall("a"), FakeToolCall("b", {"n": 1}))))
        request = ChatRequest.prompt("m", "go")
        completion = await openai(fake, client).chat(request)
    ids = [call.id for call in completion.tool_calls]
    assert ids == [f"call_{request.request_id[:12]}_0", f"call_{request.request_id[:12]}_1"]
    assert completion.tool_calls[0].arguments == {}


class _Refusing(OpenAIProtocol):
    def chat_answer(
        self, exchange: Exchange, model: str, reply: Reply, *, native: bool
    ) -> dict[str, Any]:
        body = super().chat_answer(exchange, model, reply, native=native)
        body["choices"][0]["message"].update(content=None, refusal="I can't help with that.")
        return body


async def test_refusal_is_a_content_filter(client: httpx.AsyncClient) -> None:
    with FakeServer(_Refusing(), models=["m"]) as fake:
        completion = await openai(fake, client).chat(ChatRequest.prompt("m", "bad"))
    assert completion.finish_reason is FinishReason.CONTENT_FILTER
    assert completion.extras["refusal"] == "I can't help with that."
    assert completion.extras["raw_finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("length", FinishReason.LENGTH),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("stop", FinishReason.STOP),
        ("abort", FinishReason.OTHER),
    ],
)
async def test_finish_reasons(
    server: FakeServer, client: httpx.AsyncClient, finish: str, expected: FinishReason
) -> None:
    provider = openai(server, client)
    server.script(Reply(text="x", finish=finish), Reply(text="x y", finish=finish))
    assert (await provider.chat(ChatRequest.prompt("gpt-fake", "q"))).finish_reason is expected
    _, final = await collect(provider, ChatRequest.prompt("gpt-fake", "q"))
    assert final.finish_reason is expected
    assert final.extras["raw_finish_reason"] == finish


async def test_stream_text_usage_and_ttft(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.script(Reply(text="one two three four", input_tokens=9, output_tokens=4))
    server.inject(Fault(ttft=0.05, token_delay=0.005))
    request = ChatRequest.prompt("gpt-fake", "count", stream=True)
    deltas, final = await collect(openai(server, client), request)
    assert "".join(d.text for d in deltas) == "one two three four"
    assert len(deltas) == 4
    assert final.content == "one two three four"
    assert final.usage.input_tokens == 9
    assert final.usage.output_tokens == 4
    assert final.finish_reason is FinishReason.STOP
    assert final.ttft_s is not None
    assert final.ttft_s >= 0.04
    assert final.latency_s >= final.ttft_s
    assert final.tokens_per_s is not None
    assert final.tokens_per_s > 0
    assert final.request_id == request.request_id
    body = last_body(server)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_complete_streams_when_asked(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.script("streamed answer")
    completion = await openai(server, client).complete(
        ChatRequest.prompt("gpt-fake", "q", stream=True)
    )
    assert completion.content == "streamed answer"
    assert completion.ttft_s is not None
    assert last_body(server)["stream"] is True


async def test_streamed_tool_call_fragments(server: FakeServer, client: httpx.AsyncClient) -> None:
    arguments = {"city": "San Francisco", "unit": "celsius", "days": [1, 2, 3]}
    server.script(
        Reply(
            text="Checking.",
            tool_calls=(
                FakeToolCall("get_weather", arguments, id="call_x"),
                FakeToolCall("get_time", {"tz": "Europe/Oslo"}),
            ),
        )
    )
    deltas, final = await collect(
        openai(server, client), ChatRequest.prompt("gpt-fake", "q", tools=(WEATHER,))
    )
    assert "".join(d.text for d in deltas) == "Checking."
    assert final.finish_reason is FinishReason.TOOL_CALLS
    assert [c.name for c in final.tool_calls] == ["get_weather", "get_time"]
    assert final.tool_calls[0] == ToolCall(id="call_x", name="get_weather", arguments=arguments)
    assert final.tool_calls[1].arguments == {"tz": "Europe/Oslo"}
    assert final.tool_calls[1].id.startswith("call_")
    # The arguments really arrived in pieces.
    assert final.extras["stream_events"] > 8


async def test_embeddings(server: FakeServer, client: httpx.AsyncClient) -> None:
    result = await openai(server, client).embed(
        EmbedRequest(model="gpt-fake", inputs=("alpha", "beta", "alpha"))
    )
    assert result.provider == "openai"
    assert len(result.vectors) == 3
    assert all(len(v) == EMBEDDING_DIM for v in result.vectors)
    assert result.vectors[0] == result.vectors[2] != result.vectors[1]
    assert list(result.vectors[1]) == fake_embedding("beta")
    assert result.usage.input_tokens > 0
    assert last_body(server)["input"] == ["alpha", "beta", "alpha"]


async def test_list_models_plain(server: FakeServer, client: httpx.AsyncClient) -> None:
    models = await openai(server, client).list_models()
    assert [m.id for m in models] == ["gpt-fake", "tiny"]
    assert all(m.loaded is None for m in models)
    assert models[0].capabilities == ("chat",)


async def test_llamacpp_models_timings_and_reasoning(client: httpx.AsyncClient) -> None:
    class Thinking(LlamaCppProtocol):
        def reasoning_of(self, exchange: Exchange, reply: Reply) -> str:
            return "Let me think about it."

    model = FakeModel("qwen3-8b-q4.gguf", context_length=40960, size_bytes=5_000_000_000)
    with FakeServer(Thinking(), models=[model]) as fake:
        provider = openai(fake, client)
        (info,) = await provider.list_models()
        completion = await provider.chat(ChatRequest.prompt("anything", "hi"))
        _, final = await collect(provider, ChatRequest.prompt("anything", "hi"))
    assert info.id == "qwen3-8b-q4.gguf"
    assert info.loaded is True
    assert info.context_length == 40960
    assert info.size_bytes == 5_000_000_000
    assert completion.model == "qwen3-8b-q4.gguf"
    assert completion.tokens_per_s == pytest.approx(100.0)
    assert completion.ttft_s == pytest.approx(0.02)
    assert completion.extras["prompt_ms"] == pytest.approx(20.0)
    assert "predicted_ms" in completion.extras
    assert completion.extras["reasoning"] == "Let me think about it."
    assert final.extras["reasoning"] == "Let me think about it."
    assert final.tokens_per_s == pytest.approx(100.0)
    assert "Let me" not in final.content


async def test_vllm_models(client: httpx.AsyncClient) -> None:
    with FakeServer("vllm", models=[FakeModel("Qwen/Qwen3-8B", context_length=32768)]) as fake:
        (info,) = await openai(fake, client).list_models()
        metrics = await client.get(fake.url + "/metrics")
        version = await client.get(fake.url + "/version")
    assert info.id == "Qwen/Qwen3-8B"
    assert info.context_length == 32768
    assert info.loaded is True
    assert 'vllm:kv_cache_usage_perc{model_name="Qwen/Qwen3-8B"}' in metrics.text
    assert version.json()["version"]


# -- failures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, FailureKind.BAD_REQUEST),
        (401, FailureKind.AUTH),
        (403, FailureKind.AUTH),
        (404, FailureKind.NOT_FOUND),
        (429, FailureKind.RATE_LIMITED),
        (500, FailureKind.SERVER_ERROR),
        (502, FailureKind.SERVER_ERROR),
        (503, FailureKind.OVERLOADED),
    ],
)
async def test_status_faults(
    server: FakeServer, client: httpx.AsyncClient, status: int, kind: FailureKind
) -> None:
    provider = openai(server, client)
    server.inject(Fault(status=status))
    failure = await failure_of(provider.chat(ChatRequest.prompt("gpt-fake", "q")))
    assert failure.kind is kind
    assert failure.details["status"] == str(status)
    assert failure.details["model"] == "gpt-fake"
    assert f"HTTP {status}" in failure.message
    server.inject(Fault(status=status))
    failure, _ = await stream_failure(provider, ChatRequest.prompt("gpt-fake", "q"))
    assert failure.kind is kind


async def test_bad_request_details(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.inject(Fault(status=400, message="Invalid value for 'temperature'."))
    failure = await failure_of(openai(server, client).chat(ChatRequest.prompt("gpt-fake", "q")))
    assert failure.kind is FailureKind.BAD_REQUEST
    assert "Invalid value for 'temperature'." in failure.message
    assert failure.details["error_type"] == "invalid_request_error"
    assert not failure.retryable


async def test_context_window(server: FakeServer, client: httpx.AsyncClient) -> None:
    provider = openai(server, client)
    failure = await failure_of(provider.chat(ChatRequest.prompt("tiny", "word " * 40)))
    assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert "maximum context length is 16 tokens" in failure.message
    assert failure.details["error_code"] == "context_length_exceeded"
    server.inject(Fault(status=400, code="context_length_exceeded"))
    failure = await failure_of(provider.chat(ChatRequest.prompt("gpt-fake", "q")))
    assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED


async def test_auth(client: httpx.AsyncClient) -> None:
    with FakeServer("openai", models=["m"], api_key="sk-right") as fake:
        wrong = OpenAIProvider(fake.url, client=client, api_key="sk-wrong")
        failure = await failure_of(wrong.chat(ChatRequest.prompt("m", "q")))
        right = OpenAIProvider(fake.url, client=client, api_key="sk-right")
        completion = await right.chat(ChatRequest.prompt("m", "q"))
        models = await right.list_models()
    assert failure.kind is FailureKind.AUTH
    assert failure.details["error_code"] == "invalid_api_key"
    assert completion.content
    assert [m.id for m in models] == ["m"]


async def test_unknown_model(server: FakeServer, client: httpx.AsyncClient) -> None:
    failure = await failure_of(openai(server, client).chat(ChatRequest.prompt("gpt-9", "q")))
    assert failure.kind is FailureKind.NOT_FOUND
    assert "gpt-9" in failure.message
    assert failure.details["error_code"] == "model_not_found"


async def test_rate_limit_with_both_headers(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.inject(Fault(status=429, retry_after=1.5))
    failure = await failure_of(openai(server, client).chat(ChatRequest.prompt("gpt-fake", "q")))
    assert failure.kind is FailureKind.RATE_LIMITED
    assert failure.retry_after == pytest.approx(1.5)
    assert failure.retryable


class _Headers(OpenAIProtocol):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__()
        self.headers = headers

    def error_headers(self, status: int) -> dict[str, str]:
        return self.headers if status == 429 else {}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "9", "retry-after-ms": "40"}, 0.04),
        ({"retry-after": "@date"}, 30.0),
    ],
)
async def test_retry_after_headers(
    client: httpx.AsyncClient, headers: dict[str, str], expected: float
) -> None:
    if headers.get("retry-after") == "@date":
        headers = {"retry-after": email.utils.formatdate(time.time() + 30, usegmt=True)}
    with FakeServer(_Headers(headers), models=["m"]) as fake:
        fake.inject(Fault(status=429))
        failure = await failure_of(openai(fake, client).chat(ChatRequest.prompt("m", "q")))
    assert failure.kind is FailureKind.RATE_LIMITED
    assert failure.retry_after == pytest.approx(expected, abs=1.5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("@asctime", 30.0), ("@minus-zero", 30.0), ("inf", None), ("nan", None)],
)
async def test_retry_after_dates_are_gmt_and_infinities_are_ignored(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    expected: float | None,
) -> None:
    """A date without a zone is GMT, not local time (here 5 h behind); ``inf`` is no wait."""
    later = time.gmtime(time.time() + 30)
    if value == "@asctime":
        value = time.strftime("%a %b %e %H:%M:%S %Y", later)
    elif value == "@minus-zero":
        value = time.strftime("%a, %d %b %Y %H:%M:%S -0000", later)
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    try:
        with FakeServer(_Headers({"retry-after": value}), models=["m"]) as fake:
            fake.inject(Fault(status=429, message="slow down"))
            failure = await failure_of(openai(fake, client).chat(ChatRequest.prompt("m", "q")))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert failure.kind is FailureKind.RATE_LIMITED
    if expected is None:
        assert failure.retry_after is None
    else:
        assert failure.retry_after == pytest.approx(expected, abs=1.5)


async def test_retry_after_from_message(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.inject(
        Fault(status=429, message="Rate limit reached for gpt-4o. Please try again in 18.642s.")
    )
    failure = await failure_of(openai(server, client).chat(ChatRequest.prompt("gpt-fake", "q")))
    assert failure.retry_after == pytest.approx(18.642)


async def test_malformed_json(server: FakeServer, client: httpx.AsyncClient) -> None:
    provider = openai(server, client)
    server.inject(Fault(malformed=True))
    failure = await failure_of(provider.chat(ChatRequest.prompt("gpt-fake", "q")))
    assert failure.kind is FailureKind.INVALID_RESPONSE
    server.inject(Fault(malformed=True, path="/v1/models"))
    failure = await failure_of(provider.list_models())
    assert failure.kind is FailureKind.INVALID_RESPONSE


async def test_body_cut_off(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.inject(Fault(close_after=0))
    failure = await failure_of(openai(server, client).chat(ChatRequest.prompt("gpt-fake", "q")))
    assert failure.kind is FailureKind.CONNECTION


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = OpenAIProvider(f"http://127.0.0.1:{port}", client=client)
    failure = await failure_of(provider.chat(ChatRequest.prompt("m", "q")))
    assert failure.kind is FailureKind.CONNECTION
    failure, _ = await stream_failure(provider, ChatRequest.prompt("m", "q"))
    assert failure.kind is FailureKind.CONNECTION
    failure = await failure_of(provider.list_models())
    assert failure.kind is FailureKind.CONNECTION


async def test_hang_times_out(server: FakeServer) -> None:
    short = Timeouts(connect=1.0, read=0.2, stream_idle=0.2)
    http = make_client(timeouts=short)
    try:
        server.inject(Fault(hang=True))
        provider = OpenAIProvider(server.url, client=http, timeouts=short)
        failure = await failure_of(provider.chat(ChatRequest.prompt("gpt-fake", "q")))
    finally:
        await http.aclose()
    assert failure.kind is FailureKind.TIMEOUT


async def test_stream_closed_midway(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.script("one two three four five six")
    server.inject(Fault(close_after=3))
    failure, text = await stream_failure(
        openai(server, client), ChatRequest.prompt("gpt-fake", "q")
    )
    assert failure.kind is FailureKind.CONNECTION
    assert text == "one two "
    assert failure.details["received_events"] == "3"
    assert failure.details["received_chars"] == str(len("one two "))
    assert "mid-stream after 3 events" in failure.message


async def test_stream_stall(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.script("one two three")
    server.inject(Fault(token_delay=1.0))
    provider = openai(server, client, timeouts=Timeouts(stream_idle=0.1))
    failure, text = await stream_failure(provider, ChatRequest.prompt("gpt-fake", "q"))
    assert failure.kind is FailureKind.TIMEOUT
    assert text == "one "
    assert failure.details["received_events"] == "2"
    assert "stalled for 0.1s after 2 events" in failure.message


async def test_mid_stream_error_event(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.script("one two three")
    server.inject(Fault(error_after=2, message="The model crashed."))
    failure, text = await stream_failure(
        openai(server, client), ChatRequest.prompt("gpt-fake", "q")
    )
    assert failure.kind is FailureKind.SERVER_ERROR
    assert "The model crashed." in failure.message
    assert "mid-stream after 3 events" in failure.message
    assert text == "one "
    assert failure.details["received_events"] == "3"


async def test_garbage_stream_event(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.script("one two three")
    server.inject(Fault(malformed=True, malformed_after=2))
    failure, text = await stream_failure(
        openai(server, client), ChatRequest.prompt("gpt-fake", "q")
    )
    assert failure.kind is FailureKind.INVALID_RESPONSE
    assert text == "one "
    assert failure.details["received_events"] == "3"


async def test_malformed_tool_arguments(client: httpx.AsyncClient) -> None:
    class BadArgs(OpenAIProtocol):
        def chat_answer(
            self, exchange: Exchange, model: str, reply: Reply, *, native: bool
        ) -> dict[str, Any]:
            body = super().chat_answer(exchange, model, reply, native=native)
            body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "{oops"
            return body

    with FakeServer(BadArgs(), models=["m"]) as fake:
        fake.script(Reply(tool_calls=(FakeToolCall("f"),)))
        failure = await failure_of(openai(fake, client).chat(ChatRequest.prompt("m", "q")))
    assert failure.kind is FailureKind.INVALID_RESPONSE
    assert "'f'" in failure.message


async def test_llamacpp_errors(client: httpx.AsyncClient) -> None:
    with FakeServer("llamacpp", models=[FakeModel("m.gguf", context_length=8)]) as fake:
        provider = openai(fake, client)
        failure = await failure_of(provider.chat(ChatRequest.prompt("m", "long " * 30)))
        assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
        assert failure.details["error_type"] == "exceed_context_size_error"
        assert failure.details["error_code"] == "400"
        fake.inject(Fault(error_after=1, message="slot crashed"))
        failure, _ = await stream_failure(provider, ChatRequest.prompt("m", "q"))
        assert failure.kind is FailureKind.SERVER_ERROR
        fake.set_loaded("m.gguf", False)
        health = await client.get(fake.url + "/health")
        failure = await failure_of(provider.chat(ChatRequest.prompt("m", "q")))
    assert health.status_code == 503
    assert failure.kind is FailureKind.OVERLOADED
    assert "Loading model" in failure.message


async def test_vllm_error_bodies(client: httpx.AsyncClient) -> None:
    for flat in (False, True):
        protocol = VLLMProtocol(flat_errors=flat)
        with FakeServer(protocol, models=[FakeModel("m", context_length=8)]) as fake:
            provider = openai(fake, client)
            missing = await failure_of(provider.chat(ChatRequest.prompt("nope", "q")))
            too_long = await failure_of(provider.chat(ChatRequest.prompt("m", "word " * 40)))
            fake.inject(Fault(status=400, message="max_tokens must be at least 1, got -186."))
            bad = await failure_of(provider.chat(ChatRequest.prompt("m", "q")))
        assert missing.kind is FailureKind.NOT_FOUND, flat
        assert too_long.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED, flat
        assert bad.kind is FailureKind.BAD_REQUEST, flat
        assert "max_tokens must be at least 1" in bad.message
        assert bad.details["error_type"] == "BadRequestError"


async def test_error_inside_a_200_answer(client: httpx.AsyncClient) -> None:
    class ErrorIn200(OpenAIProtocol):
        def chat_answer(
            self, exchange: Exchange, model: str, reply: Reply, *, native: bool
        ) -> dict[str, Any]:
            return {"error": {"message": "backend exploded", "type": "server_error", "code": 500}}

    with FakeServer(ErrorIn200(), models=["m"]) as fake:
        failure = await failure_of(openai(fake, client).chat(ChatRequest.prompt("m", "q")))
    assert failure.kind is FailureKind.SERVER_ERROR
    assert "backend exploded" in failure.message


# -- LM Studio -------------------------------------------------------------------------


async def test_lmstudio_chat_reads_stats(lmstudio: FakeServer, client: httpx.AsyncClient) -> None:
    lmstudio.script(Reply(text="a b c d", output_tokens=4))
    completion = await lms(lmstudio, client).chat(ChatRequest.prompt("qwen-7b", "hi"))
    assert lmstudio.calls[-1].path == "/api/v0/chat/completions"
    assert completion.provider == "lmstudio"
    assert completion.content == "a b c d"
    assert completion.tokens_per_s == pytest.approx(50.0)
    assert completion.ttft_s == pytest.approx(0.05)
    assert completion.extras["generation_time_s"] == pytest.approx(0.08)
    assert completion.extras["stop_reason"] == "eosFound"
    assert completion.extras["model_info"]["context_length"] == 32768
    assert completion.extras["runtime"]["name"]


async def test_lmstudio_streams_through_v1(lmstudio: FakeServer, client: httpx.AsyncClient) -> None:
    lmstudio.script(Reply(text="x y", tool_calls=(FakeToolCall("f", {"a": [1]}),)))
    deltas, final = await collect(lms(lmstudio, client), ChatRequest.prompt("qwen-7b", "hi"))
    assert lmstudio.calls[-1].path == "/v1/chat/completions"
    assert "".join(d.text for d in deltas) == "x y"
    assert final.provider == "lmstudio"
    assert final.tool_calls[0].arguments == {"a": [1]}
    assert final.usage.output_tokens > 0


async def test_lmstudio_jit_loads_on_chat(lmstudio: FakeServer, client: httpx.AsyncClient) -> None:
    assert not lmstudio.models["llama-8b"].loaded
    completion = await lms(lmstudio, client).chat(ChatRequest.prompt("llama-8b", "hi"))
    assert completion.content
    assert lmstudio.models["llama-8b"].loaded


async def test_lmstudio_list_models(lmstudio: FakeServer, client: httpx.AsyncClient) -> None:
    provider = lms(lmstudio, client)
    known_before = provider.can_load
    models = {m.id: m for m in await provider.list_models()}
    assert not known_before
    assert provider.can_load
    assert set(models) == {"qwen-7b", "llama-8b", "nomic-embed"}
    qwen, llama, nomic = models["qwen-7b"], models["llama-8b"], models["nomic-embed"]
    assert qwen.loaded is True
    assert qwen.context_length == 32768
    assert qwen.size_bytes == 5_000_000_000
    assert qwen.capabilities == ("chat", "tools")
    assert qwen.details["instances"] == ["qwen-7b"]
    assert llama.loaded is False
    assert llama.details["state"] == "not-loaded"
    assert nomic.capabilities == ("embeddings",)
    assert nomic.context_length == 2048


async def test_lmstudio_load_and_unload(lmstudio: FakeServer, client: httpx.AsyncClient) -> None:
    provider = lms(lmstudio, client)
    await provider.load("llama-8b")
    assert provider.can_load
    assert lmstudio.models["llama-8b"].loaded
    assert last_body(lmstudio) == {"model": "llama-8b"}
    await provider.unload("qwen-7b")
    assert not lmstudio.models["qwen-7b"].loaded
    assert lmstudio.calls[-1].path == "/api/v1/models/unload"
    assert last_body(lmstudio) == {"instance_id": "qwen-7b"}
    models = {m.id: m for m in await provider.list_models()}
    assert models["qwen-7b"].loaded is False
    assert models["llama-8b"].loaded is True
    calls = len(lmstudio.calls)
    await provider.unload("qwen-7b")  # not loaded: nothing to do
    assert [c.path for c in lmstudio.calls[calls:]] == ["/api/v1/models"]
    failure = await failure_of(provider.load("no-such-model"))
    assert failure.kind is FailureKind.NOT_FOUND


async def test_lmstudio_without_v1(client: httpx.AsyncClient) -> None:
    models: list[str | FakeModel] = ["qwen-7b", FakeModel("llama-8b", loaded=False)]
    with FakeServer(LMStudioProtocol(v1_api=False), models=models) as fake:
        provider = lms(fake, client)
        listed = await provider.list_models()
        assert not provider.can_load
        failure = await failure_of(provider.load("llama-8b"))
        unload_failure = await failure_of(provider.unload("qwen-7b"))
        raw = await client.get(fake.url + "/api/v1/models")
    assert [(m.id, m.loaded) for m in listed] == [("qwen-7b", True), ("llama-8b", False)]
    assert failure.kind is FailureKind.BAD_REQUEST
    assert "no v1 REST API" in failure.message
    assert unload_failure.kind is FailureKind.BAD_REQUEST
    assert raw.status_code == 200
    assert "Unexpected endpoint" in raw.json()["error"]


async def test_lmstudio_failures(lmstudio: FakeServer, client: httpx.AsyncClient) -> None:
    provider = lms(lmstudio, client)
    failure = await failure_of(provider.chat(ChatRequest.prompt("gpt-4o", "q")))
    assert failure.kind is FailureKind.NOT_FOUND
    assert "Your models" in failure.message
    lmstudio.add_model(FakeModel("small", context_length=16))
    failure = await failure_of(provider.chat(ChatRequest.prompt("small", "x " * 50)))
    assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert "context length of only 16 tokens" in failure.message
    failure = await failure_of(provider.chat(ChatRequest.prompt("nomic-embed", "x")))
    assert failure.kind is FailureKind.BAD_REQUEST
    lmstudio.inject(Fault(status=429, retry_after=2))
    failure = await failure_of(provider.chat(ChatRequest.prompt("qwen-7b", "q")))
    assert failure.kind is FailureKind.RATE_LIMITED
    assert failure.retry_after == pytest.approx(2.0)
    lmstudio.inject(Fault(close_after=2))
    failure, _ = await stream_failure(provider, ChatRequest.prompt("qwen-7b", "q"))
    assert failure.kind is FailureKind.CONNECTION


async def test_lmstudio_embeddings(lmstudio: FakeServer, client: httpx.AsyncClient) -> None:
    result = await lms(lmstudio, client).embed(EmbedRequest(model="nomic-embed", inputs=("hi",)))
    assert result.provider == "lmstudio"
    assert list(result.vectors[0]) == fake_embedding("hi")


async def test_lmstudio_falls_back_to_v1_chat(client: httpx.AsyncClient) -> None:
    class NoV0(LMStudioProtocol):
        def extra_routes(self, server: FakeServer) -> list[web.RouteDef]:
            return [r for r in super().extra_routes(server) if "/api/v0/chat" not in r.path]

    with FakeServer(NoV0(), models=["m"]) as fake:
        completion = await lms(fake, client).chat(ChatRequest.prompt("m", "hi"))
        paths = [c.path for c in fake.calls]
    assert completion.content
    assert paths == ["/v1/chat/completions"]


def test_fake_speaks_json_error_bodies() -> None:
    body = OpenAIProtocol().error_body(429, None, None)
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "rate_limit_exceeded"
    frame = OpenAIProtocol().stream_error_frame("boom", None)
    assert frame.startswith(b"data: ")
    assert json.loads(frame[6:])["error"]["message"] == "boom"


async def test_stopping_a_stream_early(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.script("one two three four five")
    events = openai(server, client).stream(ChatRequest.prompt("gpt-fake", "q"))
    first = await anext(events)
    assert first == TextDelta(text="one ")
    await events.aclose()  # type: ignore[attr-defined]
    assert (await openai(server, client).chat(ChatRequest.prompt("gpt-fake", "q"))).content


def test_every_fake_name_resolves() -> None:
    from actors.testing import protocol_for

    for name, cls in [
        ("openai", OpenAIProtocol),
        ("lmstudio", LMStudioProtocol),
        ("llamacpp", LlamaCppProtocol),
        ("vllm", VLLMProtocol),
    ]:
        assert type(protocol_for(name)) is cls
        assert protocol_for(name).name == name
