"""Fields a model refuses: OpenAI's reasoning models over loopback.

OpenAI's reasoning models (o1, o3, o4-mini, the GPT-5 family) answer a request that
carries a sampling field they do not take with HTTP 400, ``invalid_request_error``,
naming the field in ``param``: ``unsupported_value`` for a ``temperature`` other than 1,
``unsupported_parameter`` for ``stop``, the penalties, ``logprobs``, ``max_tokens``.
The fake plays such a model (:attr:`FakeModel.refuses`); the provider sends the request
again without the field, remembers the refusal for the model, and says on the answer
what was not applied.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from actors._messages import FailureKind
from actors.llm._messages import ChatMessage, ChatRequest, FinishReason
from actors.llm.providers._openai import (
    MAX_REFUSAL_RETRIES,
    LMStudioProvider,
    OpenAIProvider,
    reasoning_refusals,
)
from actors.testing import FakeModel, FakeServer, Reply
from tests.support.providers import QUICK, failure_of

REASONING = ("temperature", "top_p", "stop", "presence_penalty", "frequency_penalty", "logprobs")
"""What the fake reasoning model refuses (as OpenAI's do)."""


def reasoning_server(model: str = "gpt-5-mini", **fields: Any) -> FakeServer:
    return FakeServer("openai", models=[FakeModel(model, refuses=REASONING, **fields)])


def chat_bodies(server: FakeServer) -> list[dict[str, Any]]:
    """The bodies of the chat requests the fake received, in order."""
    return [call.body for call in server.calls if call.path.endswith("/chat/completions")]


def refusal_logs(logs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    return [
        (line["model"], line["param"])
        for line in logs
        if line.get("event", "").startswith("the model refuses a request field")
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_refused_temperature_is_dropped_and_the_request_sent_again(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """A 400 ``unsupported_value`` naming ``temperature``: sent once more without it."""
    with reasoning_server() as server:
        server.script(Reply(text="Paris"))
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        answer = await provider.complete(
            ChatRequest.prompt("gpt-5-mini", "Capital of France?", temperature=0.7, stream=stream)
        )
        bodies = chat_bodies(server)
    assert answer.content == "Paris"
    assert len(bodies) == 2
    assert bodies[0]["temperature"] == 0.7
    assert "temperature" not in bodies[1]
    assert bodies[1]["messages"] == bodies[0]["messages"]
    assert answer.extras["dropped_params"] == {"temperature": 0.7}
    assert any("temperature=0.7 was not applied" in w for w in answer.warnings)


@pytest.mark.parametrize("stream", [False, True])
async def test_the_refusal_is_remembered_for_the_model(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """The next request to that model goes without the field at once; one warning."""
    with reasoning_server() as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        with capture_logs() as logs:
            for _ in range(2):
                await provider.complete(
                    ChatRequest.prompt(
                        "gpt-5-mini", "Hi", temperature=0.7, stop=("END",), stream=stream
                    )
                )
            server.calls.clear()
            again = await provider.complete(
                ChatRequest.prompt("gpt-5-mini", "Hi", temperature=0.2, stop=("X",), stream=stream)
            )
            bodies = chat_bodies(server)
    assert len(bodies) == 1, "a remembered refusal costs no failed round trip"
    assert "temperature" not in bodies[0]
    assert "stop" not in bodies[0]
    assert again.extras["dropped_params"] == {"temperature": 0.2, "stop": ["X"]}
    assert sorted(refusal_logs(logs)) == [("gpt-5-mini", "stop"), ("gpt-5-mini", "temperature")]


async def test_a_field_the_request_did_not_set_is_never_dropped(
    client: httpx.AsyncClient,
) -> None:
    """Only what was asked for and refused is recorded; a temperature of 1 is sent."""
    with reasoning_server() as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        answer = await provider.complete(
            ChatRequest.prompt("gpt-5-mini", "Hi", temperature=0.3, options={"top_p": 0.5})
        )
        assert answer.extras["dropped_params"] == {"temperature": 0.3, "top_p": 0.5}
        server.calls.clear()
        plain = await provider.complete(ChatRequest.prompt("gpt-5-mini", "Hi", temperature=1.0))
        bodies = chat_bodies(server)
    assert bodies[0]["temperature"] == 1.0, "the one value the model takes is sent as it is"
    assert "top_p" not in bodies[0]
    assert "dropped_params" not in plain.extras
    assert plain.warnings == ()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_refusal_about_the_messages_is_not_retried(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """o1-mini refuses a system turn (``messages[0].role``): that is the caller's to fix."""
    with reasoning_server("o1-mini", system_role=False) as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        failure = await failure_of(
            provider,
            ChatRequest.prompt("o1-mini", "Hi", system="Be brief.", temperature=0.7, stream=stream),
        )
        bodies = chat_bodies(server)
    assert failure.kind is FailureKind.BAD_REQUEST
    assert failure.details["error_code"] == "unsupported_value"
    assert failure.details["error_param"] == "messages[0].role"
    # temperature was refused first and dropped; the system turn is never touched
    assert len(bodies) == 2
    assert bodies[1]["messages"][0]["role"] == "system"


async def test_a_field_that_changes_the_request_is_never_dropped(
    client: httpx.AsyncClient,
) -> None:
    """``response_format`` is refused, but without it the answer would be another answer."""
    model = FakeModel("strict", refuses=("response_format",))
    with FakeServer("openai", models=[model]) as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        failure = await failure_of(
            provider,
            ChatRequest.prompt(
                "strict", "Hi", options={"response_format": {"type": "json_object"}}
            ),
        )
        bodies = chat_bodies(server)
    assert failure.details["error_param"] == "response_format"
    assert failure.details["error_code"] == "unsupported_parameter"
    assert len(bodies) == 1


async def test_an_option_and_what_needs_it_go_together(client: httpx.AsyncClient) -> None:
    """A refused ``logprobs`` (from ``options``) takes ``top_logprobs`` with it."""
    with reasoning_server() as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        answer = await provider.complete(
            ChatRequest.prompt("gpt-5-mini", "Hi", options={"logprobs": True, "top_logprobs": 3})
        )
        bodies = chat_bodies(server)
    assert len(bodies) == 2
    assert "logprobs" not in bodies[1]
    assert "top_logprobs" not in bodies[1]
    assert answer.extras["dropped_params"] == {"logprobs": True, "top_logprobs": 3}


async def test_a_request_is_sent_again_only_a_few_times(client: httpx.AsyncClient) -> None:
    """One field per retry, and at most a few retries: then the refusal is the answer."""
    with reasoning_server() as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        options = {"top_p": 0.5, "presence_penalty": 0.1, "frequency_penalty": 0.1}
        failure = await failure_of(
            provider,
            ChatRequest.prompt("gpt-5-mini", "Hi", temperature=0.5, stop=("X",), options=options),
        )
        bodies = chat_bodies(server)
    assert len(bodies) == MAX_REFUSAL_RETRIES + 1
    assert failure.details["error_code"] in ("unsupported_parameter", "unsupported_value")
    for before, after in itertools.pairwise(bodies):
        assert len(before) - len(after) == 1, "one field fewer each time"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_refused_max_tokens_goes_as_max_completion_tokens(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """A refused ``max_tokens`` is renamed ``max_completion_tokens``, not dropped.

    A server not known as OpenAI gets ``max_tokens``; the limit still applies.
    """
    with FakeServer("openai", models=["o3-mini"]) as server:
        server.script(Reply(text="one two three four five six"))
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        answer = await provider.complete(
            ChatRequest.prompt("o3-mini", "Count", max_tokens=3, stream=stream)
        )
        bodies = chat_bodies(server)
    assert [("max_tokens" in b, b.get("max_completion_tokens")) for b in bodies] == [
        (True, None),
        (False, 3),
    ]
    assert answer.finish_reason is FinishReason.LENGTH
    assert "dropped_params" not in answer.extras


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_reasoning_models_get_no_sampling_fields_at_all(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """On OpenAI's own API a known reasoning family's first request already goes without."""
    with reasoning_server() as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK, server="openai")
        answer = await provider.complete(
            ChatRequest.prompt(
                "gpt-5-mini", "Hi", temperature=0.2, stop=("END",), max_tokens=50, stream=stream
            )
        )
        bodies = chat_bodies(server)
    assert len(bodies) == 1
    assert "temperature" not in bodies[0]
    assert "stop" not in bodies[0]
    assert bodies[0]["max_completion_tokens"] == 50
    assert answer.extras["dropped_params"] == {"temperature": 0.2, "stop": ["END"]}


async def test_openai_chat_models_and_effort_none_keep_their_temperature(
    client: httpx.AsyncClient,
) -> None:
    """``gpt-5-chat`` samples as asked; so does GPT-5.1 with ``reasoning_effort: none``."""
    models = ["gpt-5-chat-latest", "gpt-5.1"]
    with FakeServer("openai", models=models) as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK, server="openai")
        await provider.complete(ChatRequest.prompt("gpt-5-chat-latest", "Hi", temperature=0.2))
        await provider.complete(
            ChatRequest.prompt(
                "gpt-5.1", "Hi", temperature=0.2, options={"reasoning_effort": "none"}
            )
        )
        answer = await provider.complete(ChatRequest.prompt("gpt-5.1", "Hi", temperature=0.2))
        bodies = chat_bodies(server)
    assert [b.get("temperature") for b in bodies] == [0.2, 0.2, None]
    assert answer.extras["dropped_params"] == {"temperature": 0.2}


def test_the_reasoning_families() -> None:
    """Name prefixes, matched at a separator; the chat model and other families are not."""
    assert set(reasoning_refusals("gpt-5")) == {"temperature", "top_p", "stop"}
    assert set(reasoning_refusals("gpt-5.2-pro")) == {"temperature", "top_p", "stop"}
    assert set(reasoning_refusals("o4-mini-2025-04-16")) == {"temperature", "top_p", "stop"}
    assert set(reasoning_refusals("o3-mini")) == {"temperature", "top_p"}
    assert set(reasoning_refusals("openai/o1")) == {"temperature", "top_p"}
    assert reasoning_refusals("gpt-5-chat-latest") == {}
    assert reasoning_refusals("gpt-4o") == {}
    assert reasoning_refusals("gpt-50") == {}
    assert reasoning_refusals("o1x") == {}


async def test_other_models_on_the_server_are_untouched(client: httpx.AsyncClient) -> None:
    """What one model refused is not held against another on the same server."""
    models = [FakeModel("gpt-5-mini", refuses=REASONING), FakeModel("gpt-4.1")]
    with FakeServer("openai", models=models) as server:
        provider = OpenAIProvider(server.url, client=client, timeouts=QUICK)
        await provider.complete(ChatRequest.prompt("gpt-5-mini", "Hi", temperature=0.7))
        server.calls.clear()
        answer = await provider.complete(
            ChatRequest(
                model="gpt-4.1", messages=(ChatMessage.user("Hi"),), temperature=0.7, stop=("X",)
            )
        )
        bodies = chat_bodies(server)
    assert len(bodies) == 1
    assert bodies[0]["temperature"] == 0.7
    assert bodies[0]["stop"] == ["X"]
    assert "dropped_params" not in answer.extras


async def test_lm_studio_s_native_route_drops_refused_fields_too(
    client: httpx.AsyncClient,
) -> None:
    """``/api/v0/chat/completions`` refuses as ``/v1`` does: dropped, sent again, remembered."""
    with FakeServer("lmstudio", models=[FakeModel("gpt-oss-20b", refuses=REASONING)]) as server:
        server.script(Reply(text="Paris"))
        provider = LMStudioProvider(server.url, client=client, timeouts=QUICK)
        request = ChatRequest.prompt("gpt-oss-20b", "Capital?", temperature=0.7, stop=("END",))
        answer = await provider.complete(request)
        bodies = chat_bodies(server)
        paths = {call.path for call in server.calls if call.path.endswith("/chat/completions")}
        server.calls.clear()
        again = await provider.complete(request)
        later = chat_bodies(server)
    assert paths == {"/api/v0/chat/completions"}
    assert answer.content == "Paris"
    assert len(bodies) == 3  # temperature refused, then stop, then answered
    assert "temperature" not in bodies[2]
    assert "stop" not in bodies[2]
    assert answer.extras["dropped_params"] == {"temperature": 0.7, "stop": ["END"]}
    assert "stats" in answer.extras  # still the native route's answer
    assert len(later) == 1, "a remembered refusal costs no failed round trip"
    assert again.extras["dropped_params"] == {"temperature": 0.7, "stop": ["END"]}
