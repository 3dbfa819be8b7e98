"""Ollama's served context: what the catalog says, what requests carry, what is refused.

Ollama serves a model with the request's ``num_ctx``, else its default (4096 here), never
the context the model was trained for, and cuts a longer prompt silently. The fake does
the same (over loopback HTTP), so these tests see what a real server would do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from actors import AskError, FailureKind, System
from actors.llm import ChatRequest, EmbedRequest, HostConfig, InventoryQuery
from actors.llm.providers._base import ProviderError
from actors.llm.providers._ollama import OllamaProvider
from actors.testing import FakeModel, FakeServer
from actors.testing._ollama import OllamaProtocol
from tests.support.hosts import chat_async, start_host_async
from tests.support.providers import QUICK, failure_of

LONG = "word " * 6000
"""30,000 characters: at least 5,000 tokens by any tokenizer (7,500 as the fake counts)."""


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fake Ollama: two chat models not loaded (trained for 131072 and 2048 tokens)."""
    models = [
        FakeModel("llama3.1", loaded=False, context_length=131072),
        FakeModel("tiny", loaded=False, context_length=2048),
        FakeModel("nomic-embed-text", embeddings=True, loaded=False),
    ]
    with FakeServer("ollama", models=models) as running:
        yield running


def protocol(server: FakeServer) -> OllamaProtocol:
    assert isinstance(server.protocol, OllamaProtocol)
    return server.protocol


def chats(server: FakeServer) -> list[dict[str, Any]]:
    """The bodies of the chat requests the fake received."""
    return [c.body for c in server.calls if c.path == "/api/chat"]


async def test_a_model_not_loaded_is_listed_with_the_context_it_will_be_served_with(
    server: FakeServer, client: httpx.AsyncClient
) -> None:
    """Not the trained 131072: the default, or the host's num_ctx; the trained one in details."""
    plain = OllamaProvider(server.url, client=client, timeouts=QUICK, show_details=True)
    models = {m.id: m for m in await plain.list_models()}
    assert models["llama3.1"].context_length == 4096
    assert models["llama3.1"].details["trained_context_length"] == 131072
    assert models["llama3.1"].details["context_source"] == "default"
    assert models["tiny"].context_length == 2048  # never more than it was trained for

    sized = OllamaProvider(
        server.url, client=client, timeouts=QUICK, show_details=True, num_ctx=16384
    )
    models = {m.id: m for m in await sized.list_models()}
    assert models["llama3.1"].context_length == 16384
    assert models["llama3.1"].details["context_source"] == "configured"
    assert models["tiny"].context_length == 2048

    await sized.complete(ChatRequest.prompt("llama3.1", "hello"))  # loads it with 16384
    models = {m.id: m for m in await plain.list_models()}
    assert models["llama3.1"].loaded is True
    assert models["llama3.1"].context_length == 16384  # /api/ps says so
    assert models["llama3.1"].details["context_source"] == "loaded"


async def test_num_ctx_goes_with_every_request_when_the_host_sets_it(
    server: FakeServer, client: httpx.AsyncClient
) -> None:
    """Chat, stream, embed and load carry options.num_ctx; a request's own one wins."""
    sized = OllamaProvider(server.url, client=client, timeouts=QUICK, num_ctx=8192)
    await sized.complete(ChatRequest.prompt("llama3.1", "hello"))
    await sized.complete(ChatRequest.prompt("llama3.1", "hello", stream=True))
    await sized.embed(EmbedRequest(model="nomic-embed-text", inputs=("a",)))
    await sized.load("tiny")
    await sized.complete(ChatRequest.prompt("llama3.1", "hello", options={"num_ctx": 2048}))
    nested = {"options": {"num_ctx": 1024, "top_k": 5}}
    await sized.complete(ChatRequest.prompt("llama3.1", "hello", options=nested))
    sent = [c.body["options"]["num_ctx"] for c in server.calls if c.path != "/api/tags"]
    assert sent == [8192, 8192, 8192, 8192, 2048, 1024]

    server.clear()
    plain = OllamaProvider(server.url, client=client, timeouts=QUICK)
    await plain.complete(ChatRequest.prompt("llama3.1", "hello"))
    await plain.embed(EmbedRequest(model="nomic-embed-text", inputs=("a",)))
    await plain.load("tiny")
    assert all("num_ctx" not in c.body.get("options", {}) for c in server.calls)


async def test_a_prompt_over_the_served_context_is_refused_before_it_is_sent(
    server: FakeServer, client: httpx.AsyncClient
) -> None:
    """The failure names the model, the estimate and the window; nothing reaches the fake."""
    sized = OllamaProvider(server.url, client=client, timeouts=QUICK, num_ctx=4096)
    for stream in (False, True):
        failure = await failure_of(sized, ChatRequest.prompt("llama3.1", LONG, stream=stream))
        assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
        assert "'llama3.1'" in failure.message
        assert "5000 prompt tokens" in failure.message
        assert "4096-token context" in failure.message
        assert failure.details["estimated_prompt_tokens"] == "5000"
        assert failure.details["context_length"] == "4096"
    assert chats(server) == []
    # The output does not count (Ollama cuts prompts, not answers: a Budget's reserved
    # max_tokens can be as large as the window); nor is the long prompt refused where
    # the request asks for more context.
    shorter = "word " * 4000
    await sized.complete(ChatRequest.prompt("llama3.1", shorter, max_tokens=4096))
    await sized.complete(ChatRequest.prompt("llama3.1", LONG, options={"num_ctx": 16384}))
    assert len(chats(server)) == 2


def test_the_estimate_is_a_floor_for_ordinary_text() -> None:
    """Six ASCII characters (four others) a token: below what tokenizers produce."""
    from actors.llm.providers._ollama import fewest_prompt_tokens

    assert fewest_prompt_tokens(ChatRequest.prompt("m", "a" * 600)) == 100
    assert fewest_prompt_tokens(ChatRequest.prompt("m", "漢" * 400)) == 100
    assert fewest_prompt_tokens(ChatRequest.prompt("m", "hello", system="x" * 60)) == 10


async def test_the_fake_truncates_a_long_prompt_silently_as_ollama_does(
    server: FakeServer, client: httpx.AsyncClient
) -> None:
    """Sent without a known context, the long prompt is cut to 4096 and answered as usual."""
    plain = OllamaProvider(server.url, client=client, timeouts=QUICK)
    completion = await plain.complete(ChatRequest.prompt("llama3.1", LONG))
    assert completion.usage.input_tokens == 4096  # prompt_eval_count: what was kept
    assert protocol(server).truncated == [("llama3.1", 7500, 4096)]
    ps = (await client.get(f"{server.url}/api/ps")).json()["models"]
    assert [(m["name"], m["context_length"]) for m in ps] == [("llama3.1", 4096)]
    refused = ChatRequest.prompt("llama3.1", LONG, options={"truncate": False})
    failure = await failure_of(plain, refused)  # unless told not to truncate
    assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert "request (7500 tokens) exceeds the available context size (4096" in failure.message
    assert failure.details["prompt_tokens"] == "7500"
    assert failure.details["context_length"] == "4096"
    assert failure.details["error_type"] == "exceed_context_size_error"


async def test_ollama_s_relayed_runner_refusal_is_a_context_window_failure(
    client: httpx.AsyncClient,
) -> None:
    """Ollama's 400 for ``truncate: false`` holds its llama.cpp runner's body as a string."""
    body = {
        "error": '{"error":{"code":400,"message":"request (8889 tokens) exceeds the available '
        'context size (4096 tokens), try increasing it","type":"exceed_context_size_error",'
        '"n_prompt_tokens":8889,"n_ctx":4096}}'
    }
    provider = OllamaProvider("http://127.0.0.1:9", client=client)
    failure = provider.error_from_response(400, {}, json.dumps(body).encode(), "gemma")
    assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert failure.message.endswith(
        "request (8889 tokens) exceeds the available context size (4096 tokens), try increasing it"
    )
    assert failure.details["prompt_tokens"] == "8889"
    assert failure.details["context_length"] == "4096"
    plain = provider.error_from_response(400, {}, b'{"error":"{not json"}', "gemma")
    assert plain.kind is FailureKind.BAD_REQUEST
    assert plain.message.endswith("{not json")


async def test_a_host_refuses_what_it_knows_cannot_fit_not_what_it_assumes(
    system: System, server: FakeServer
) -> None:
    """No num_ctx: 4096 is assumed for a model not loaded, known once /api/ps says so.

    Only the known window refuses a prompt: a server with more GPU memory (or started
    with OLLAMA_CONTEXT_LENGTH) serves more than the assumed 4096.
    """
    host = await start_host_async(system, HostConfig(url=server.url, protocol="ollama"))
    inventory = await host.ask_async(InventoryQuery())
    assert {m.id: m.context_length for m in inventory.models}["llama3.1"] == 4096
    await chat_async(system, "local", LONG, model="llama3.1")  # assumed: sent
    assert len(chats(server)) == 1
    inventory = await host.ask_async(InventoryQuery(refresh=True))  # loaded now: 4096 known
    served = {m.id: m for m in inventory.models}["llama3.1"]
    assert (served.loaded, served.context_length) == (True, 4096)
    with pytest.raises(AskError) as caught:
        await chat_async(system, "local", LONG, model="llama3.1")
    failure = caught.value.failure
    assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert failure.details["context_length"] == "4096"
    assert len(chats(server)) == 1
    answer = await chat_async(system, "local", "hello", model="llama3.1")
    assert answer.model == "llama3.1"


# -- embeddings: Ollama truncates each input unless told not to ---------------------------


def embeds(server: FakeServer) -> list[dict[str, Any]]:
    """The bodies of the /api/embed requests the fake received."""
    return [c.body for c in server.calls if c.path == "/api/embed"]


async def embed_failure(provider: OllamaProvider, request: EmbedRequest) -> Any:
    with pytest.raises(ProviderError) as caught:
        await provider.embed(request)
    return caught.value.failure


async def test_the_fake_embeds_as_ollama_does_truncating_unless_told_not_to(
    server: FakeServer, client: httpx.AsyncClient
) -> None:
    """No truncate (or true): cut silently; false: Ollama's exact 400, nothing cut."""
    url = f"{server.url}/api/embed"
    body: dict[str, Any] = {"model": "nomic-embed-text", "input": ["short", LONG]}
    answer = await client.post(url, json=body)
    assert answer.status_code == 200
    assert answer.json()["prompt_eval_count"] == 2 + 4096  # the long one cut to the context
    assert protocol(server).truncated == [("nomic-embed-text", 7500, 4096)]
    answer = await client.post(url, json={**body, "truncate": True})
    assert answer.status_code == 200
    assert len(protocol(server).truncated) == 2
    answer = await client.post(url, json={**body, "truncate": False})
    assert answer.status_code == 400
    assert answer.json() == {"error": "the input length exceeds the context length"}
    assert len(protocol(server).truncated) == 2
    fits = await client.post(
        url, json={"model": "nomic-embed-text", "input": "a", "truncate": False}
    )
    assert fits.status_code == 200


async def test_an_embed_input_ollama_would_cut_fails_naming_the_model_input_and_window(
    server: FakeServer, client: httpx.AsyncClient
) -> None:
    """truncate: false goes with every embed; Ollama's refusal is context_window_exceeded."""
    plain = OllamaProvider(server.url, client=client, timeouts=QUICK)  # no window known
    request = EmbedRequest(model="nomic-embed-text", inputs=("short", LONG, "also short"))
    failure = await embed_failure(plain, request)
    assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert "'nomic-embed-text'" in failure.message
    assert "input 1 of 3" in failure.message
    assert "4096-token context" in failure.message  # as /api/ps says, once Ollama loaded it
    assert "the input length exceeds the context length" in failure.message
    assert failure.details["input_index"] == "1"
    assert failure.details["context_length"] == "4096"
    assert failure.details["status"] == "400"
    assert [b["truncate"] for b in embeds(server)] == [False]
    assert protocol(server).truncated == []  # nothing embedded from a cut input

    # Asked for, the server truncates: the vectors come back, and the fake cut the input.
    result = await plain.embed(
        EmbedRequest(model="nomic-embed-text", inputs=(LONG,), truncate=True)
    )
    assert len(result.vectors) == 1
    assert embeds(server)[-1]["truncate"] is True
    assert protocol(server).truncated == [("nomic-embed-text", 7500, 4096)]


async def test_an_embed_input_over_a_known_context_is_refused_before_it_is_sent(
    server: FakeServer, client: httpx.AsyncClient
) -> None:
    """With the host's num_ctx, the first input that cannot fit is named and nothing is sent."""
    sized = OllamaProvider(server.url, client=client, timeouts=QUICK, num_ctx=2048)
    request = EmbedRequest(model="nomic-embed-text", inputs=("a", "b", LONG, LONG))
    failure = await embed_failure(sized, request)
    assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert "'nomic-embed-text'" in failure.message
    assert "input 2 of 4 takes 5000 tokens at least" in failure.message
    assert "2048-token context" in failure.message
    assert failure.details["input_index"] == "2"
    assert failure.details["estimated_input_tokens"] == "5000"
    assert failure.details["context_length"] == "2048"
    assert embeds(server) == []
    # truncate=True lets it go: the server cuts it, as asked.
    await sized.embed(EmbedRequest(model="nomic-embed-text", inputs=(LONG,), truncate=True))
    assert [b["truncate"] for b in embeds(server)] == [True]


async def test_a_host_answers_an_embed_too_long_with_context_window_exceeded(
    system: System, server: FakeServer
) -> None:
    """Through the host actor: the caller gets the failure, and the breaker stays closed."""
    host = await start_host_async(system, HostConfig(url=server.url, protocol="ollama"))
    with pytest.raises(AskError) as caught:
        await host.ask_async(EmbedRequest(model="nomic-embed-text", inputs=(LONG,)))
    failure = caught.value.failure
    assert failure.kind is FailureKind.CONTEXT_WINDOW_EXCEEDED
    assert failure.details["input_index"] == "0"
    vectors = await host.ask_async(EmbedRequest(model="nomic-embed-text", inputs=("fits",)))
    assert len(vectors.vectors) == 1
