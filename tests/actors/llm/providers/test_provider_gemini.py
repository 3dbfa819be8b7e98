"""GeminiProvider against the Gemini fake: real HTTP over loopback, no mocks.

No Gemini SDK is installed, so the fake is checked against the reference shapes
(``shared/reference/llm-server-apis.md`` section 5) by reading the raw wire here.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

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
from actors.llm.providers._gemini import GeminiProvider, model_path
from actors.testing import FakeModel, FakeServer, FakeToolCall, Fault, Reply
from tests.support.providers import failure_of, last_body

KEY = "AIza-test"
MODEL = "gemini-fake"
WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    models: list[str | FakeModel] = [
        MODEL,
        FakeModel("gemini-tiny", context_length=50),
        FakeModel("text-embedding-fake", embeddings=True),
    ]
    with FakeServer("gemini", models=models, api_key=KEY) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    http = make_client(timeouts=Timeouts(connect=2.0, read=5.0))
    yield http
    await http.aclose()


@pytest.fixture
def provider(server: FakeServer, client: httpx.AsyncClient) -> GeminiProvider:
    return GeminiProvider(
        server.url, client=client, api_key=KEY, timeouts=Timeouts(stream_idle=0.3)
    )


def prompt(text: str = "Hello there", **kw: Any) -> ChatRequest:
    return ChatRequest.prompt(MODEL, text, **kw)


# -- success --------------------------------------------------------------------------


async def test_registry_names_the_class() -> None:
    assert provider_class("gemini") is GeminiProvider


def test_model_paths() -> None:
    assert model_path("gemini-2.5-flash") == "models/gemini-2.5-flash"
    assert model_path("models/gemini-2.5-flash") == "models/gemini-2.5-flash"
    assert model_path("tunedModels/mine") == "tunedModels/mine"


async def test_chat_answers_with_a_completion(server: FakeServer, provider: GeminiProvider) -> None:
    server.script(Reply(text="Paris.", input_tokens=11, output_tokens=2))
    request = prompt("Capital of France?", system="Be terse.")
    answer = await provider.chat(request)
    assert answer.content == "Paris."
    assert answer.model == MODEL
    assert answer.provider == "gemini"
    assert answer.finish_reason is FinishReason.STOP
    assert answer.usage.input_tokens == 11
    assert answer.usage.output_tokens == 2
    assert answer.request_id == request.request_id
    assert answer.latency_s > 0
    assert answer.extras["raw_finish_reason"] == "STOP"
    assert answer.extras["response_id"]
    call = server.calls[-1]
    assert call.path == f"/v1beta/models/{MODEL}:generateContent"
    assert call.headers["x-goog-api-key"] == KEY
    assert "Authorization" not in call.headers
    assert last_body(server) == {
        "contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}],
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
    }


async def test_request_body_maps_every_field(server: FakeServer, provider: GeminiProvider) -> None:
    request = ChatRequest(
        model=MODEL,
        messages=(
            ChatMessage.system("One."),
            ChatMessage.user("Hi"),
            ChatMessage.assistant("Hello"),
            ChatMessage.system("Two."),
            ChatMessage.user("Weather?"),
        ),
        tools=(WEATHER,),
        tool_choice="auto",
        temperature=0.3,
        max_tokens=99,
        stop=("END",),
        options={"generationConfig": {"topK": 4}, "safetySettings": []},
    )
    await provider.chat(request)
    body = last_body(server)
    assert body["systemInstruction"] == {"parts": [{"text": "One.\n\nTwo."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello"}]},
        {"role": "user", "parts": [{"text": "Weather?"}]},
    ]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parametersJsonSchema": WEATHER.parameters,
                }
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert body["generationConfig"] == {
        "temperature": 0.3,
        "maxOutputTokens": 99,
        "stopSequences": ["END"],
        "topK": 4,
    }
    assert body["safetySettings"] == []


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
async def test_tool_choice_mapping(
    server: FakeServer, provider: GeminiProvider, choice: str, config: dict[str, Any]
) -> None:
    await provider.chat(prompt(tools=(WEATHER,), tool_choice=choice))
    assert last_body(server)["toolConfig"] == {"functionCallingConfig": config}


@pytest.mark.parametrize(
    ("raw", "finish", "wire"),
    [
        ("length", FinishReason.LENGTH, "MAX_TOKENS"),
        ("content_filter", FinishReason.CONTENT_FILTER, "SAFETY"),
        ("recitation", FinishReason.CONTENT_FILTER, "RECITATION"),
        ("prohibited_content", FinishReason.CONTENT_FILTER, "PROHIBITED_CONTENT"),
        ("malformed_function_call", FinishReason.OTHER, "MALFORMED_FUNCTION_CALL"),
        ("other", FinishReason.OTHER, "OTHER"),
    ],
)
async def test_finish_reasons_are_normalised(
    server: FakeServer, provider: GeminiProvider, raw: str, finish: FinishReason, wire: str
) -> None:
    server.script(Reply(text="x", finish=raw), Reply(text="y", finish=raw))
    answer = await provider.chat(prompt())
    assert answer.finish_reason is finish
    assert answer.extras["raw_finish_reason"] == wire
    if wire == "SAFETY":
        assert answer.extras["safety_ratings"][0]["probability"] == "HIGH"
    assert (await provider.complete(prompt(stream=True))).finish_reason is finish


async def test_stop_sequences_and_max_output_tokens(
    server: FakeServer, provider: GeminiProvider
) -> None:
    server.script("one two END three", "a b c d e")
    stopped = await provider.chat(prompt(stop=("END",)))
    assert stopped.content == "one two "
    assert stopped.finish_reason is FinishReason.STOP
    cut = await provider.chat(prompt(max_tokens=2))
    assert cut.content == "a b "
    assert cut.finish_reason is FinishReason.LENGTH


async def test_function_calls_and_the_function_response_round_trip(
    server: FakeServer, provider: GeminiProvider
) -> None:
    server.script(
        Reply(
            text="Checking.",
            tool_calls=(
                FakeToolCall("get_weather", {"city": "Paris"}),
                FakeToolCall("get_time", {"zone": "CET"}, id="fc-7"),
            ),
        ),
        "Mild, and it is noon.",
    )
    first = prompt("Weather and time in Paris?", tools=(WEATHER,))
    answer = await provider.chat(first)
    assert answer.finish_reason is FinishReason.TOOL_CALLS
    assert answer.extras["raw_finish_reason"] == "STOP"
    assert answer.content == "Checking."
    weather, clock = answer.tool_calls
    assert weather == ToolCall(
        id=f"gemini_{first.request_id[:12]}_0", name="get_weather", arguments={"city": "Paris"}
    )
    assert clock == ToolCall(id="fc-7", name="get_time", arguments={"zone": "CET"})

    follow = ChatRequest(
        model=MODEL,
        messages=(
            *first.messages,
            ChatMessage.assistant(answer.content, answer.tool_calls),
            ChatMessage.tool(weather, '{"temp_c": 18}'),
            ChatMessage(role="tool", content="12:00", tool_call_id="fc-7"),  # no name given
        ),
        tools=(WEATHER,),
    )
    final = await provider.chat(follow)  # the fake checks the function-response turn
    assert final.content == "Mild, and it is noon."
    contents = last_body(server)["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_time", "args": {"zone": "CET"}, "id": "fc-7"}},
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
            {
                "functionResponse": {
                    "name": "get_time",
                    "response": {"result": "12:00"},
                    "id": "fc-7",
                }
            },
        ],
    }
    assert len(contents) == 3


async def test_a_function_response_without_a_call_is_refused(provider: GeminiProvider) -> None:
    stray = ChatRequest(
        model=MODEL,
        messages=(
            ChatMessage.user("Hi"),
            ChatMessage(role="tool", content="x", tool_call_id="c1", name="f"),
        ),
    )
    failure = await failure_of(provider, stray)
    assert failure.kind is FailureKind.BAD_REQUEST
    assert "function response turn" in failure.message


async def test_blocked_prompt_is_a_content_policy_failure(
    server: FakeServer, provider: GeminiProvider
) -> None:
    server.script(Reply(finish="blocked"), Reply(finish="blocked"))
    for stream in (False, True):
        failure = await failure_of(provider, prompt(stream=stream))
        assert failure.kind is FailureKind.CONTENT_POLICY
        assert failure.details["block_reason"] == "SAFETY"


# -- streaming ------------------------------------------------------------------------


async def test_stream_yields_text_then_the_completion(
    server: FakeServer, provider: GeminiProvider
) -> None:
    server.script(Reply(text="The quick brown fox", input_tokens=9))
    request = prompt(stream=True, system="Be brief.")
    events = [event async for event in provider.stream(request)]
    *deltas, final = events
    assert [d.text for d in deltas if isinstance(d, TextDelta)] == [
        "The ",
        "quick ",
        "brown ",
        "fox",
    ]
    assert isinstance(final, Completion)
    assert final.content == "The quick brown fox"
    assert final.finish_reason is FinishReason.STOP
    assert final.usage.input_tokens == 9  # usageMetadata of the last chunk
    assert final.usage.output_tokens == 4
    assert final.request_id == request.request_id
    assert final.ttft_s is not None
    assert final.ttft_s <= final.latency_s
    assert final.tokens_per_s is not None
    call = server.calls[-1]
    assert call.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert "stream" not in last_body(server)


async def test_stream_wire_is_data_only_sse(server: FakeServer, client: httpx.AsyncClient) -> None:
    server.script("Hi there")
    response = await client.post(
        f"{server.url}/v1beta/models/{MODEL}:streamGenerateContent",
        params={"alt": "sse"},
        headers={"x-goog-api-key": KEY},
        json={"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.splitlines() if line]
    assert all(line.startswith("data: ") for line in lines)
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines]
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks] == ["Hi ", "there"]
    assert "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 2


async def test_stream_function_calls(server: FakeServer, provider: GeminiProvider) -> None:
    arguments = {"city": "Oslo", "days": [1, 2]}
    server.script(Reply(text="Looking.", tool_calls=(FakeToolCall("get_weather", arguments),)))
    answer = await provider.complete(prompt(stream=True, tools=(WEATHER,)))
    assert answer.content == "Looking."
    assert answer.finish_reason is FinishReason.TOOL_CALLS
    (call,) = answer.tool_calls
    assert call.name == "get_weather"
    assert call.arguments == arguments
    assert call.id.startswith("gemini_")


# -- embeddings and models ------------------------------------------------------------


async def test_embeddings_are_deterministic_unit_vectors(
    server: FakeServer, provider: GeminiProvider
) -> None:
    request = EmbedRequest(model="text-embedding-fake", inputs=("alpha", "beta", "alpha"))
    embeddings = await provider.embed(request)
    assert embeddings.provider == "gemini"
    assert embeddings.model == "text-embedding-fake"
    first, second, again = embeddings.vectors
    assert len(first) == 768
    assert first == again
    assert first != second
    assert math.isclose(math.fsum(v * v for v in first), 1.0, rel_tol=1e-6)
    call = server.calls[-1]
    assert call.path == "/v1beta/models/text-embedding-fake:batchEmbedContents"
    assert last_body(server)["requests"][1] == {
        "model": "models/text-embedding-fake",
        "content": {"parts": [{"text": "beta"}]},
    }


async def test_single_embed_content_route(server: FakeServer, client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{server.url}/v1beta/models/text-embedding-fake:embedContent",
        headers={"x-goog-api-key": KEY},
        json={"content": {"parts": [{"text": "alpha"}]}, "outputDimensionality": 8},
    )
    assert len(response.json()["embedding"]["values"]) == 8


async def test_embedding_with_a_chat_model_is_not_found(provider: GeminiProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.embed(EmbedRequest(model=MODEL, inputs=("x",)))
    assert caught.value.failure.kind is FailureKind.NOT_FOUND
    assert "not supported for batchEmbedContents" in caught.value.failure.message


async def test_chat_with_an_embedding_model_is_not_found(provider: GeminiProvider) -> None:
    failure = await failure_of(provider, ChatRequest.prompt("text-embedding-fake", "x"))
    assert failure.kind is FailureKind.NOT_FOUND


async def test_list_models_follows_pages(server: FakeServer, provider: GeminiProvider) -> None:
    provider.models_page_size = 2
    models = await provider.list_models()
    assert [m.id for m in models] == [MODEL, "gemini-tiny", "text-embedding-fake"]
    assert models[1].context_length == 50
    assert models[0].loaded is None
    assert models[0].capabilities == ("chat", "tools")
    assert models[2].capabilities == ("embeddings",)
    assert models[0].details["displayName"] == "Gemini Fake"
    assert [c.path for c in server.calls] == ["/v1beta/models"] * 2


# -- failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": 400}, (FailureKind.BAD_REQUEST, "INVALID_ARGUMENT")),
        ({"status": 400, "code": "FAILED_PRECONDITION"}, (FailureKind.BAD_REQUEST, None)),
        (
            {"status": 400, "code": "context_length_exceeded"},
            (FailureKind.CONTEXT_WINDOW_EXCEEDED, None),
        ),
        ({"status": 400, "code": "API_KEY_INVALID"}, (FailureKind.AUTH, "INVALID_ARGUMENT")),
        ({"status": 401}, (FailureKind.AUTH, "UNAUTHENTICATED")),
        ({"status": 403}, (FailureKind.AUTH, "PERMISSION_DENIED")),
        ({"status": 404}, (FailureKind.NOT_FOUND, "NOT_FOUND")),
        ({"status": 429}, (FailureKind.RATE_LIMITED, "RESOURCE_EXHAUSTED")),
        ({"status": 499}, (FailureKind.CANCELLED, "CANCELLED")),
        ({"status": 500}, (FailureKind.SERVER_ERROR, "INTERNAL")),
        ({"status": 503}, (FailureKind.OVERLOADED, "UNAVAILABLE")),
        ({"status": 504}, (FailureKind.TIMEOUT, "DEADLINE_EXCEEDED")),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_status_codes_map_to_failure_kinds(
    server: FakeServer,
    provider: GeminiProvider,
    fields: dict[str, Any],
    expected: tuple[FailureKind, str | None],
    stream: bool,
) -> None:
    kind, rpc = expected
    fault = server.inject(**fields)
    failure = await failure_of(provider, prompt(stream=stream))
    assert failure.kind is kind
    assert failure.details["status"] == str(fault.status)
    if rpc is not None:
        assert failure.details["error_type"] == rpc
    assert failure.details["model"] == MODEL


async def test_rate_limit_retry_delay_from_retry_info(
    server: FakeServer, provider: GeminiProvider, client: httpx.AsyncClient
) -> None:
    server.inject(Fault(status=429, retry_after=7))
    failure = await failure_of(provider, prompt())
    assert failure.kind is FailureKind.RATE_LIMITED
    assert failure.retry_after == 7.0
    # the fake says it as Gemini does: a RetryInfo detail, no header
    server.inject(Fault(status=429, retry_after=1.5))
    response = await client.get(f"{server.url}/v1beta/models", headers={"x-goog-api-key": KEY})
    assert response.status_code == 429
    assert "retry-after" not in response.headers
    (detail,) = response.json()["error"]["details"]
    assert detail == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}


async def test_prompt_longer_than_the_context_window(provider: GeminiProvider) -> None:
    failure = await failure_of(provider, ChatRequest.prompt("gemini-tiny", "word " * 100))
    assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert "exceeds the maximum number of tokens allowed (50)" in failure.message


async def test_missing_and_wrong_keys_are_auth_failures(
    server: FakeServer, client: httpx.AsyncClient
) -> None:
    keyless = GeminiProvider(server.url, client=client)
    failure = await failure_of(keyless, prompt())
    assert failure.kind is FailureKind.AUTH
    assert failure.details["error_type"] == "PERMISSION_DENIED"
    wrong = GeminiProvider(server.url, client=client, api_key="nope")
    failure = await failure_of(wrong, prompt())
    assert failure.kind is FailureKind.AUTH
    assert failure.details["status"] == "400"
    assert failure.details["error_code"] == "API_KEY_INVALID"
    with pytest.raises(ProviderError) as caught:
        await wrong.list_models()
    assert caught.value.failure.kind is FailureKind.AUTH


async def test_unknown_model_is_not_found(provider: GeminiProvider) -> None:
    failure = await failure_of(provider, ChatRequest.prompt("gemini-nope", "hi"))
    assert failure.kind is FailureKind.NOT_FOUND
    assert "is not found for API version v1beta" in failure.message


async def test_malformed_json_is_an_invalid_response(
    server: FakeServer, provider: GeminiProvider
) -> None:
    server.inject(Fault(malformed=True))
    failure = await failure_of(provider, prompt())
    assert failure.kind is FailureKind.INVALID_RESPONSE


async def test_body_cut_off_is_a_connection_failure(
    server: FakeServer, provider: GeminiProvider
) -> None:
    server.inject(Fault(close_after=0))
    failure = await failure_of(provider, prompt())
    assert failure.kind is FailureKind.CONNECTION


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    with FakeServer("gemini") as gone:
        url = gone.url
    provider = GeminiProvider(url, client=client)
    failure = await failure_of(provider, prompt())
    assert failure.kind is FailureKind.CONNECTION
    with pytest.raises(ProviderError) as caught:
        await provider.embed(EmbedRequest(model="e", inputs=("x",)))
    assert caught.value.failure.kind is FailureKind.CONNECTION


@pytest.mark.parametrize("stream", [False, True])
async def test_hanging_server_times_out(server: FakeServer, stream: bool) -> None:
    http = make_client(timeouts=Timeouts(read=0.2))
    try:
        provider = GeminiProvider(server.url, client=http, api_key=KEY)
        server.inject(Fault(hang=True))
        failure = await failure_of(provider, prompt(stream=stream))
        assert failure.kind is FailureKind.TIMEOUT
    finally:
        await http.aclose()


async def test_stream_closed_midway_says_how_much_arrived(
    server: FakeServer, provider: GeminiProvider
) -> None:
    server.script("one two three four five")
    server.inject(Fault(close_after=2))
    failure = await failure_of(provider, prompt(stream=True))
    assert failure.kind is FailureKind.CONNECTION
    assert failure.details["received_events"] == "2"
    assert failure.details["received_chars"] == str(len("one two "))
    assert "mid-stream after 2 events" in failure.message


async def test_stream_stalled_past_idle_timeout(
    server: FakeServer, provider: GeminiProvider
) -> None:
    server.script("one two three")
    server.inject(Fault(token_delay=2.0))
    failure = await failure_of(provider, prompt(stream=True))
    assert failure.kind is FailureKind.TIMEOUT
    assert "stalled for 0.3s" in failure.message
    assert failure.details["received_events"] == "1"
    assert failure.details["received_chars"] == "4"


async def test_mid_stream_error(server: FakeServer, provider: GeminiProvider) -> None:
    server.script("one two three")
    server.inject(Fault(error_after=2))
    failure = await failure_of(provider, prompt(stream=True))
    assert failure.kind is FailureKind.OVERLOADED
    assert failure.details["error_type"] == "UNAVAILABLE"
    assert failure.details["received_chars"] == str(len("one two "))
    server.inject(Fault(error_after=1, code="INTERNAL", message="boom"))
    failure = await failure_of(provider, prompt(stream=True))
    assert failure.kind is FailureKind.SERVER_ERROR
    assert "boom" in failure.message


async def test_garbage_chunk_is_an_invalid_response(
    server: FakeServer, provider: GeminiProvider
) -> None:
    server.script("one two three")
    server.inject(Fault(malformed=True, malformed_after=1))
    failure = await failure_of(provider, prompt(stream=True))
    assert failure.kind is FailureKind.INVALID_RESPONSE
    assert failure.details["received_events"] == "2"  # one good chunk and the garbage


async def test_error_mapping_without_http(provider: GeminiProvider) -> None:
    def body(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
        error: dict[str, Any] = {"code": code, "message": message, "status": status}
        if details:
            error["details"] = list(details)
        return json.dumps({"error": error}).encode()

    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "38s"}
    quota = "You exceeded your current quota, please check your plan and billing details."
    limited = provider.error_from_response(
        429, {}, body(429, "RESOURCE_EXHAUSTED", quota, retry), "m"
    )
    assert limited.kind is FailureKind.RATE_LIMITED
    assert limited.retry_after == 38.0
    header = provider.error_from_response(
        429, {"retry-after": "4"}, body(429, "RESOURCE_EXHAUSTED", "slow", retry), "m"
    )
    assert header.retry_after == 4.0  # the header wins over the detail
    too_long = body(500, "INTERNAL", "Input context too long")
    assert provider.error_from_response(500, {}, too_long, "m").kind is (
        FailureKind.CONTEXT_WINDOW_EXCEEDED
    )
    unknown = body(
        400,
        "INVALID_ARGUMENT",
        "API key expired. Please renew the API key.",
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_EXPIRED"},
    )
    assert provider.error_from_response(400, {}, unknown, "m").kind is FailureKind.AUTH
    html = provider.error_from_response(502, {}, b"<html>bad gateway</html>", "m")
    assert html.kind is FailureKind.SERVER_ERROR
