"""What real llama.cpp servers do, against the fakes that now do it too (issue 10).

Each test drives a ModelHost or a provider over real loopback HTTP against the fake
flavour that reproduces one behaviour found on llama-cpp-python's server or llama.cpp's
``llama-server``, and checks the project reports it for what it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from actors import AskError, FailureKind, System
from actors.llm import HostConfig, ModelHost, probe
from actors.llm._messages import (
    BreakerState,
    ChatMessage,
    ChatRequest,
    Completion,
    FinishReason,
    HostStatsQuery,
    InventoryQuery,
    TextDelta,
    ToolCall,
    ToolSpec,
)
from actors.llm.providers._base import ProviderError, Timeouts, make_client
from actors.llm.providers._openai import OpenAIProvider
from actors.testing import FakeModel, FakeServer, FakeToolCall, Fault, Reply
from otel.testing import InMemorySpanExporter
from tests.support.hosts import chat, start_host

QUICK = Timeouts(connect=2.0, read=5.0, stream_idle=5.0)
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
CLOCK = ToolSpec(name="get_time", parameters={"type": "object", "properties": {}})
MODEL = "qwen-tiny.gguf"


@pytest.fixture
def pyserver() -> Iterator[FakeServer]:
    """A fake of llama-cpp-python's server with one small model."""
    with FakeServer("llama-cpp-python", models=[FakeModel(MODEL, context_length=64)]) as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    http = make_client(timeouts=QUICK)
    yield http
    await http.aclose()


def host_settings(fake: FakeServer, **overrides: Any) -> HostConfig:
    base: dict[str, Any] = {
        "url": fake.url,
        "protocol": "openai",
        "connect_timeout_s": 1.0,
        "timeout_s": 5.0,
        "stream_idle_timeout_s": 5.0,
    }
    base.update(overrides)
    return HostConfig.model_validate(base)


def failure_of(system: System, request: ChatRequest) -> Any:
    with pytest.raises(AskError) as caught:
        chat(system, "local", request, timeout=10)
    return caught.value.failure


def breaker_of(system: System, model: str) -> BreakerState:
    stats = system.lookup("local").ask(HostStatsQuery(), timeout=5)
    return next(m.breaker for m in stats.models if m.model == model)


def round_trip(model: str) -> ChatRequest:
    """A conversation continued after a tool call: the assistant turn has no text."""
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"})
    return ChatRequest(
        model=model,
        messages=(
            ChatMessage.user("Weather in Oslo?"),
            ChatMessage.assistant(tool_calls=(call,)),
            ChatMessage.tool(call, '{"temp_c": 11}'),
        ),
        tools=(WEATHER,),
    )


# -- defect 1: the tool-result round trip ----------------------------------------------


def test_tool_result_round_trip_is_accepted_by_llama_cpp_python(
    system: System, pyserver: FakeServer
) -> None:
    """An assistant tool-call turn goes out with "content": "", which the server takes."""
    start_host(system, host_settings(pyserver))
    pyserver.script(Reply(text="It is 11 degrees in Oslo."))
    answer = chat(system, "local", round_trip(MODEL), timeout=10)
    assert answer.content == "It is 11 degrees in Oslo."
    sent = pyserver.calls[-1].body["messages"][1]
    assert sent["content"] == ""
    assert sent["tool_calls"][0]["function"]["name"] == "get_weather"


def test_request_shape_rejection_is_bad_request_and_spares_the_breaker(
    system: System, pyserver: FakeServer
) -> None:
    """A 500 whose body is a validation error of the request is bad_request, not counted."""
    start_host(system, host_settings(pyserver))
    null_turn = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": []},
    ]
    request = ChatRequest.prompt(MODEL, "x", options={"messages": null_turn})
    for _ in range(7):  # more than the breaker's failure threshold (5)
        failure = failure_of(system, request)
        assert failure.kind is FailureKind.BAD_REQUEST
        assert not failure.retryable
        assert failure.details["status"] == "500"
        assert failure.details["request_rejected"] == "true"
    assert breaker_of(system, MODEL) is BreakerState.CLOSED
    assert chat(system, "local", "Hello", model=MODEL, timeout=10).content


# -- defect 2: a streamed context overflow ---------------------------------------------


def long_prompt() -> str:
    return "word " * 200  # about 250 tokens, over the 64-token window


def test_empty_stream_over_a_known_context_is_context_window_exceeded(
    system: System, pyserver: FakeServer
) -> None:
    """200 + an empty stream for a prompt over the context: context_window_exceeded."""
    start_host(system, host_settings(pyserver, context_windows={MODEL: 64}))
    request = ChatRequest.prompt(MODEL, long_prompt(), stream=True)
    for _ in range(7):
        failure = failure_of(system, request)
        assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
        assert failure.details["empty_stream"] == "true"
        assert failure.details["context_length"] == "64"
    assert breaker_of(system, MODEL) is BreakerState.CLOSED
    assert chat(system, "local", ChatRequest.prompt(MODEL, "Hi", stream=True), timeout=10)


def test_empty_stream_without_a_known_context_never_trips_the_host(
    system: System, pyserver: FakeServer
) -> None:
    """Without a known window it is bad_request: not connection, not retryable, no trip."""
    start_host(system, host_settings(pyserver))
    request = ChatRequest.prompt(MODEL, long_prompt(), stream=True)
    for _ in range(7):
        failure = failure_of(system, request)
        assert failure.kind is FailureKind.BAD_REQUEST
        assert "without a single chunk" in failure.message
    assert breaker_of(system, MODEL) is BreakerState.CLOSED
    assert chat(system, "local", "Hi", model=MODEL, timeout=10).content


async def test_non_streamed_overflow_is_openai_shaped(
    pyserver: FakeServer, client: httpx.AsyncClient
) -> None:
    """Not streamed, the same prompt gets OpenAI's 400 context_length_exceeded body."""
    provider = OpenAIProvider(pyserver.url, client=client, timeouts=QUICK)
    with pytest.raises(ProviderError) as caught:
        await provider.chat(ChatRequest.prompt(MODEL, long_prompt()))
    assert caught.value.failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert caught.value.failure.details["error_code"] == "context_length_exceeded"


# -- defect 3: a stream cut short ------------------------------------------------------


async def test_interrupted_stream_is_truncated_not_stop(
    pyserver: FakeServer, client: httpx.AsyncClient
) -> None:
    """A newer request ends a stream with [DONE] and no finish reason: truncated."""
    provider = OpenAIProvider(pyserver.url, client=client, timeouts=Timeouts(stream_idle=60))
    pyserver.script(Reply(text="one two three four five six"), Reply(text="other"))
    pyserver.inject(Fault(token_delay=30.0))  # the stream pauses after its first word
    final: Completion | None = None
    async for event in provider.stream(ChatRequest.prompt(MODEL, "count", stream=True)):
        if isinstance(event, TextDelta) and final is None and event.text == "one ":
            # The first word arrived; a second request interrupts the stream.
            await provider.chat(ChatRequest.prompt(MODEL, "something else"))
        if isinstance(event, Completion):
            final = event
    assert final is not None
    assert final.finish_reason is FinishReason.TRUNCATED
    assert final.content == "one "
    assert final.extras["raw_finish_reason"] is None


async def test_done_without_finish_reason_on_any_openai_server(
    client: httpx.AsyncClient,
) -> None:
    """The fault that ends a stream early gives the same: never a finish reason of stop."""
    with FakeServer("openai", models=["m"]) as fake:
        fake.script(Reply(text="a b c d e"))
        fake.inject(Fault(done_after=3))
        provider = OpenAIProvider(fake.url, client=client, timeouts=QUICK)
        answer = await provider.complete(ChatRequest.prompt("m", "x", stream=True))
    assert answer.finish_reason is FinishReason.TRUNCATED
    assert answer.content == "a b "


# -- defect 4: an unknown model --------------------------------------------------------


def test_unknown_model_is_not_found_once_the_inventory_is_known(
    system: System, pyserver: FakeServer
) -> None:
    """The server would echo any name; the host refuses names its inventory lacks."""
    host = start_host(system, host_settings(pyserver))
    inventory = host.ask(InventoryQuery(), timeout=10)
    assert [m.id for m in inventory.models] == [MODEL]
    failure = failure_of(system, ChatRequest.prompt("gpt-4o-does-not-exist", "Hi"))
    assert failure.kind is FailureKind.NOT_FOUND
    assert MODEL in failure.message
    assert all(call.path == "/v1/models" for call in pyserver.calls)  # never sent


def test_an_alias_maps_a_name_to_a_listed_model(system: System, pyserver: FakeServer) -> None:
    """A configured alias is served by the model it names, and says what was asked."""
    host = start_host(system, host_settings(pyserver, aliases={"gpt-4o": MODEL}))
    host.ask(InventoryQuery(), timeout=10)
    answer = chat(system, "local", "Hi", model="gpt-4o", timeout=10)
    assert answer.model == MODEL
    assert answer.extras["requested_model"] == "gpt-4o"
    assert pyserver.calls[-1].body["model"] == MODEL


def test_discovered_inventory_is_known_from_the_start(system: System, pyserver: FakeServer) -> None:
    """A host given discovery's inventory refuses unknown names at once."""
    inventory = asyncio.run(probe(pyserver.url))
    assert inventory.server == "llama-cpp-python"
    system.spawn(
        ModelHost, name="local", args=(host_settings(pyserver),), kwargs={"inventory": inventory}
    )
    failure = failure_of(system, ChatRequest.prompt("typo-model", "Hi"))
    assert failure.kind is FailureKind.NOT_FOUND


# -- defect 5: a forced tool choice ----------------------------------------------------


def forced(model: str) -> ChatRequest:
    return ChatRequest.prompt(
        model, "Weather in Oslo?", tools=(CLOCK, WEATHER), tool_choice=WEATHER.name
    )


async def test_llama_server_gets_the_string_form_and_calls_the_tool(
    client: httpx.AsyncClient,
) -> None:
    """Once the provider knows it is llama-server, a named tool is forced as "required"."""
    with FakeServer("llamacpp", models=["llama-3.gguf"]) as fake:
        provider = OpenAIProvider(fake.url, client=client, timeouts=QUICK)
        await provider.list_models()
        assert provider.server == "llamacpp"
        answer = await provider.complete(forced("llama-3.gguf"))
        body = fake.calls[-1].body
    assert body["tool_choice"] == "required"
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    assert [call.name for call in answer.tool_calls] == ["get_weather"]
    assert answer.finish_reason is FinishReason.TOOL_CALLS
    assert answer.warnings == ()


def test_an_ignored_forced_tool_choice_is_a_warning_on_result_and_span(
    system: System, spans: InMemorySpanExporter
) -> None:
    """llama-server ignores the object form: the answer says so, and so does its span."""
    with FakeServer("llamacpp", models=["llama-3.gguf"]) as fake:
        start_host(system, host_settings(fake, server="openai-compatible"))
        answer = chat(system, "local", forced("llama-3.gguf"), timeout=10)
        assert isinstance(fake.calls[-1].body["tool_choice"], dict)
    assert answer.tool_calls == ()
    assert answer.finish_reason is FinishReason.STOP
    assert len(answer.warnings) == 1
    assert "'get_weather'" in answer.warnings[0]
    (span,) = [s for s in spans.get_finished_spans() if s.name == "chat llama-3.gguf"]
    assert span.attributes is not None
    assert span.attributes["reactor.warnings"] == answer.warnings
    assert [e.name for e in span.events] == ["reactor.warning"]


# -- also: usage of streams and partial text -------------------------------------------


async def test_stream_without_usage_has_estimated_usage(
    pyserver: FakeServer, client: httpx.AsyncClient
) -> None:
    """llama-cpp-python streams no usage: the completion's usage is estimated, not 0/0."""
    provider = OpenAIProvider(pyserver.url, client=client, timeouts=QUICK)
    pyserver.script(Reply(text="the answer is forty two"))
    answer = await provider.complete(ChatRequest.prompt(MODEL, "What is it?", stream=True))
    assert answer.usage.estimated
    assert answer.usage.input_tokens > 0
    assert answer.usage.output_tokens > 0
    assert "timings" not in pyserver.calls[-1].body
    plain = await provider.complete(ChatRequest.prompt(MODEL, "What is it?"))
    assert not plain.usage.estimated


async def test_connection_killed_mid_stream_keeps_the_text(
    pyserver: FakeServer, client: httpx.AsyncClient
) -> None:
    """A stream cut off mid-way fails, and its failure carries the text that arrived."""
    provider = OpenAIProvider(pyserver.url, client=client, timeouts=QUICK)
    pyserver.script(Reply(text="alpha beta gamma delta"))
    pyserver.inject(Fault(close_after=3))  # the role chunk, then two words
    with pytest.raises(ProviderError) as caught:
        await provider.complete(ChatRequest.prompt(MODEL, "x", stream=True))
    failure = caught.value.failure
    assert failure.kind is FailureKind.CONNECTION
    assert failure.details["received_text"] == "alpha beta "


async def test_streamed_tool_calls_repeating_id_and_name_assemble_once(
    pyserver: FakeServer, client: httpx.AsyncClient
) -> None:
    """Chunks that each repeat the call's id and name (and function_call) make one call."""
    provider = OpenAIProvider(pyserver.url, client=client, timeouts=QUICK)
    pyserver.script(
        Reply(tool_calls=(FakeToolCall(name="get_weather", arguments={"city": "Oslo Norway"}),))
    )
    answer = await provider.complete(
        ChatRequest.prompt(MODEL, "Weather?", tools=(WEATHER,), stream=True)
    )
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [
        ("get_weather", {"city": "Oslo Norway"})
    ]
    assert answer.finish_reason is FinishReason.TOOL_CALLS
