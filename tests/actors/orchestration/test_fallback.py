"""Fallback chains: failure-kind-aware walking, health ejection, and the provenance of an answer.

The pure health record is checked alone (the reference's ejection figure); the
FallbackChain actor against fake servers over loopback HTTP, each link a real ModelHost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from actors import AskError, FailureKind, System
from actors.llm import ChatMessage, ChatRequest, HostConfig, InventoryQuery
from actors.orchestration import Chain, FallbackChain, FallbackRequest, FallbackResult, link
from actors.orchestration.fallback import Health
from actors.testing import FakeModel, FakeServer, FakeToolCall, Fault, Reply
from otel.testing import InMemorySpanExporter, wait_for_spans
from tests.support.hosts import start_host_async
from tests.support.local import asked, local_resolver

# ---- health (pure) ------------------------------------------------------------------------


def test_the_nth_ejection_lasts_n_times_the_base_up_to_the_cap() -> None:
    """Three failures in a row eject a link for 30 s, then 60 s, then 90 s; capped at 300 s."""
    health = Health(3, eject_after=3, base_s=30.0, max_s=300.0, max_percent=50.0)
    lengths = []
    now = 0.0
    for _ in range(12):
        for _ in range(3):
            health.failure(0, now)
        lengths.append(health.links[0].ejected_until - now)
        now = health.links[0].ejected_until  # it comes back, and fails again
    assert lengths[:3] == [30.0, 60.0, 90.0]
    assert max(lengths) == 300.0


def test_an_ejected_link_is_tried_last_and_promoted_back_when_it_recovers() -> None:
    """Ejection demotes the link to the end; once its time is over it is back in place."""
    health = Health(3, eject_after=1, base_s=10.0, max_percent=50.0)
    assert health.failure(0, 0.0)
    assert health.order(1.0) == [1, 2, 0]
    assert health.order(11.0) == [0, 1, 2]


def test_the_floor_never_ejects_every_link() -> None:
    """With two links and 100% allowed, the second failing link is not ejected."""
    health = Health(2, eject_after=1, max_percent=100.0)
    assert health.failure(0, 0.0)
    assert not health.failure(1, 0.0)
    assert health.order(1.0) == [1, 0]


def test_the_last_ejection_to_end_is_remembered() -> None:
    """``clear_after`` is when every ejection so far has ended; the order follows it."""
    health = Health(3, eject_after=1, base_s=10.0, max_percent=100.0)
    assert health.clear_after == 0.0
    assert health.failure(0, 0.0)  # out until 10
    assert health.failure(1, 5.0)  # out until 15
    assert health.clear_after == 15.0
    assert health.order(12.0) == [0, 2, 1]
    assert health.order(15.0) == [0, 1, 2]
    restored = Health(3, links=health.links)
    assert restored.clear_after == 15.0


# ---- the actor, over loopback HTTP ----------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fake OpenAI server with three models; ``small`` has a 64-token context."""
    models = [FakeModel("big"), FakeModel("small", context_length=64), FakeModel("other")]
    with FakeServer("openai", models=models) as fake:
        yield fake


async def chain_actor(system: System, server: FakeServer, chain: Chain, name: str = "chain") -> Any:
    """A host ``local`` for ``server`` and a FallbackChain for ``chain`` resolving to it."""
    await start_host_async(system, HostConfig(url=server.url, protocol="openai", timeout_s=5.0))
    resolve = local_resolver(system)
    return await system.spawn_async(FallbackChain, name=name, args=(chain, resolve))


def prompt(text: str = "hello", **fields: Any) -> FallbackRequest:
    """A request for the chain."""
    return FallbackRequest(request=ChatRequest.prompt("", text, **fields))


@pytest.mark.asyncio
async def test_a_failing_first_link_falls_through_and_the_result_says_why(
    system: System, server: FakeServer
) -> None:
    """A 500 on ``big`` moves on; ``other`` answers; the attempts name both, with the reason."""
    server.inject(Fault(status=500, model="big"))
    ref = await chain_actor(system, server, Chain(links=("big", "other"), name="main"))
    result: FallbackResult = await ref.ask_async(prompt())
    assert result.link == "other"
    assert result.index == 1
    assert result.completion.model == "other"
    assert [(a.link, a.outcome, a.action) for a in result.attempts] == [
        ("big", "server_error", "next"),
        ("other", "ok", "answer"),
    ]
    assert "500" in result.attempts[0].why or "error" in result.attempts[0].why
    assert asked(server) == ["big", "other"]


@pytest.mark.asyncio
async def test_auth_and_bad_request_stop(system: System, server: FakeServer) -> None:
    """A 401 fails the request at once: the next link is never asked."""
    server.inject(Fault(status=401, model="big"))
    ref = await chain_actor(system, server, Chain(links=("big", "other")))
    with pytest.raises(AskError) as caught:
        await ref.ask_async(prompt())
    assert caught.value.failure.kind is FailureKind.AUTH
    assert "big: auth" in caught.value.failure.details["path"]
    assert asked(server) == ["big"]


@pytest.mark.asyncio
async def test_a_content_policy_refusal_does_not_fall_through(
    system: System, server: FakeServer
) -> None:
    """Without a content-policy chain a refusal stops; with one, that chain answers."""
    refusal = Fault(status=400, message="flagged by the content_filter", model="big", times=2)
    server.inject(refusal)
    plain = await chain_actor(system, server, Chain(links=("big", "other")))
    with pytest.raises(AskError) as caught:
        await plain.ask_async(prompt())
    assert caught.value.failure.kind is FailureKind.CONTENT_POLICY
    assert asked(server) == ["big"]

    safe = Chain(links=("small",), name="safe")
    guarded = await system.spawn_async(
        FallbackChain,
        name="guarded",
        args=(Chain(links=("big", "other"), content_policy=safe), plain_resolver(system)),
    )
    result: FallbackResult = await guarded.ask_async(prompt())
    assert result.link == "small"
    assert asked(server) == ["big", "big", "small"]  # never "other", the general chain


def plain_resolver(system: System) -> Any:
    """Every model on ``local``."""
    return lambda model, host: (system.lookup(host or "local"), model)


@pytest.mark.asyncio
async def test_a_context_overflow_skips_links_that_are_no_larger(
    system: System, server: FakeServer
) -> None:
    """``small`` (64 tokens) overflows; ``tiny`` (32) is skipped unsent; ``big`` answers."""
    chain = Chain(
        links=(
            link("small", context_length=64),
            link("tiny", context_length=32),
            link("big", context_length=8192),
        )
    )
    ref = await chain_actor(system, server, chain)
    result: FallbackResult = await ref.ask_async(prompt("word " * 200))
    assert result.link == "big"
    outcomes = [(a.link, a.outcome) for a in result.attempts]
    assert outcomes == [
        ("small", "context_window_exceeded"),
        ("tiny", "skipped"),
        ("big", "ok"),
    ]
    assert "not larger" in result.attempts[1].why
    assert asked(server) == ["small", "big"]


@pytest.mark.asyncio
async def test_when_transform_and_quality_check(system: System, server: FakeServer) -> None:
    """A false ``when`` skips; a transform rewrites the request; a rejected answer moves on."""
    server.script(Reply(text="bad"), Reply(text="good"))

    def short_only(request: ChatRequest) -> bool:
        return len(request.messages[-1].content) < 3

    def shout(request: ChatRequest) -> ChatRequest:
        return ChatRequest(model=request.model, messages=(ChatMessage.user("HELLO"),))

    chain = Chain(
        links=(link("small", when=short_only), link("big", transform=shout), "other"),
        quality=lambda completion: completion.content != "bad",
    )
    ref = await chain_actor(system, server, chain)
    result: FallbackResult = await ref.ask_async(prompt("hello"))
    assert result.content == "good"
    assert [(a.link, a.outcome) for a in result.attempts] == [
        ("small", "skipped"),
        ("big", "rejected"),
        ("other", "ok"),
    ]
    bodies = [c.body for c in server.calls if c.path.endswith("/chat/completions")]
    assert bodies[0]["messages"][-1]["content"] == "HELLO"
    assert bodies[1]["messages"][-1]["content"] == "hello"  # the next link gets the original


@pytest.mark.asyncio
async def test_retry_honours_retry_after(system: System, server: FakeServer) -> None:
    """``on={rate_limited: retry}``: the same link again after the server's retry_after."""
    server.inject(Fault(status=429, retry_after=0.05, model="big"))
    chain = Chain(links=("big", "other"), on={FailureKind.RATE_LIMITED: "retry"}, backoff_s=0.0)
    ref = await chain_actor(system, server, chain)
    result: FallbackResult = await ref.ask_async(prompt())
    assert result.link == "big"
    assert result.attempts[0].action == "retry"
    assert result.attempts[0].waited_s == pytest.approx(0.05, abs=0.01)
    assert asked(server) == ["big", "big"]


@pytest.mark.asyncio
async def test_when_every_link_cools_down_the_chain_waits_for_the_first(
    system: System, server: FakeServer
) -> None:
    """Both links are rate limited with retry_after: the chain waits, then the first answers."""
    server.inject(Fault(status=429, retry_after=0.05, model="big"))
    server.inject(Fault(status=429, retry_after=0.2, model="other"))
    ref = await chain_actor(system, server, Chain(links=("big", "other")))
    result: FallbackResult = await ref.ask_async(prompt(), timeout=5.0)
    assert result.link == "big"
    assert [a.action for a in result.attempts] == ["next", "next", "wait", "answer"]
    assert asked(server) == ["big", "other", "big"]


@pytest.mark.asyncio
async def test_a_stream_falls_back_only_before_its_first_token(
    system: System, server: FakeServer
) -> None:
    """A stream that broke after tokens stops; with restart_streams it restarts, and says so."""
    server.script(Reply(text="one two three four"))
    server.inject(Fault(error_after=3, model="big", times=2))
    strict = await chain_actor(system, server, Chain(links=("big", "other")))
    with pytest.raises(AskError) as caught:
        await strict.ask_async(prompt(stream=True))
    assert "not restarted" in caught.value.failure.message
    assert asked(server) == ["big"]

    lenient = await system.spawn_async(
        FallbackChain,
        name="lenient",
        args=(Chain(links=("big", "other"), restart_streams=True), plain_resolver(system)),
    )
    result: FallbackResult = await lenient.ask_async(prompt(stream=True))
    assert result.link == "other"
    assert result.restarted


@pytest.mark.asyncio
async def test_a_stream_that_broke_after_a_tool_call_began_is_not_restarted(
    system: System, server: FakeServer
) -> None:
    """A streamed tool call is output too: once one began, a broken stream stops the chain.

    No text arrived (``received_chars`` is 0), but the tool call's head did.
    """
    call = FakeToolCall("lookup", {"query": "a question long enough to stream in pieces"})
    server.script(Reply(tool_calls=(call,)))
    server.inject(Fault(error_after=3, model="big"))
    ref = await chain_actor(system, server, Chain(links=("big", "other")))
    with pytest.raises(AskError) as caught:
        await ref.ask_async(prompt(stream=True))
    assert caught.value.failure.details["received_tool_calls"] == "1"
    assert caught.value.failure.details["received_chars"] == "0"
    assert "not restarted" in caught.value.failure.message
    assert asked(server) == ["big"]


@pytest.mark.asyncio
async def test_links_that_keep_failing_are_demoted(system: System, server: FakeServer) -> None:
    """After ``eject_after`` failures ``big`` is ejected: the next request asks ``other`` first."""
    server.inject(Fault(status=500, model="big", times=None))
    chain = Chain(links=("big", "other"), eject_after=2)
    ref = await chain_actor(system, server, chain)
    for _ in range(2):
        await ref.ask_async(prompt())
    assert asked(server) == ["big", "other", "big", "other"]
    result: FallbackResult = await ref.ask_async(prompt())
    assert result.index == 1
    assert [a.link for a in result.attempts] == ["other"]


@pytest.mark.asyncio
async def test_the_span_shows_the_path(
    system: System, server: FakeServer, spans: InMemorySpanExporter
) -> None:
    """One ``fallback`` span with the path and the answering link; the chat spans inside it."""
    server.inject(Fault(status=503, model="big"))
    ref = await chain_actor(system, server, Chain(links=("big", "other"), name="main"))
    await ref.ask_async(prompt())
    # The answer reaches the caller as it arrives, a moment before the host's chat span ends.
    finished = wait_for_spans(spans, ["fallback main", "chat big", "chat other"])
    (walk,) = [s for s in finished if s.name == "fallback main"]
    assert walk.attributes is not None
    assert walk.attributes["reactor.fallback.answered_by"] == "other"
    assert walk.attributes["reactor.fallback.path"] == ("big:overloaded", "other:ok")
    parents = {s.context.span_id: s.parent.span_id for s in finished if s.parent is not None}

    def ancestors(span_id: int) -> set[int]:
        found: set[int] = set()
        while span_id in parents:
            span_id = parents[span_id]
            found.add(span_id)
        return found

    chats = [s for s in finished if s.name.startswith("chat ")]
    assert [s.name for s in chats] == ["chat big", "chat other"]
    assert all(walk.context.span_id in ancestors(s.context.span_id) for s in chats)


@pytest.mark.asyncio
async def test_a_walk_cut_short_by_stopping_still_ends_its_span(
    system: System, server: FakeServer, spans: InMemorySpanExporter
) -> None:
    """The system stops while a link's call hangs: the ``fallback`` span ends, an error.

    (Its chat span is ended by the stopping host; a walk span left open would make it
    an orphan in the trace.)
    """
    server.inject(Fault(hang=True, model="big"))
    ref = await chain_actor(system, server, Chain(links=("big", "other"), name="main"))
    pending = asyncio.ensure_future(ref.ask_async(prompt(), timeout=10))
    assert await asyncio.to_thread(server.wait_in_flight)
    await asyncio.to_thread(system.stop, 10.0)
    with pytest.raises(AskError):
        await pending
    finished = await asyncio.to_thread(wait_for_spans, spans, ["fallback main", "chat big"])
    (walk,) = [s for s in finished if s.name == "fallback main"]
    assert walk.status.status_code is StatusCode.ERROR
    assert dict(walk.attributes or {})["error.type"] == "actor_stopped"


@pytest.mark.asyncio
async def test_a_demoted_link_is_promoted_back_once_its_ejection_ends(
    system: System, server: FakeServer
) -> None:
    """``big`` is ejected for 30 s: ``other`` goes first until then, ``big`` again after."""
    server.inject(Fault(status=500, model="big", times=2))
    now = [1000.0]
    await start_host_async(system, HostConfig(url=server.url, protocol="openai", timeout_s=5.0))
    ref = await system.spawn_async(
        FallbackChain,
        name="chain",
        args=(Chain(links=("big", "other"), eject_after=2), local_resolver(system)),
        kwargs={"clock": lambda: now[0]},
    )
    for _ in range(2):
        await ref.ask_async(prompt())
    demoted: FallbackResult = await ref.ask_async(prompt())
    assert [a.link for a in demoted.attempts] == ["other"]
    now[0] += 31.0
    promoted: FallbackResult = await ref.ask_async(prompt())
    assert [(a.link, a.outcome) for a in promoted.attempts] == [("big", "ok")]


@pytest.mark.asyncio
async def test_retries_are_counted_per_link(system: System, server: FakeServer) -> None:
    """``retries=2``: a link that keeps failing is tried three times, then the next one."""
    server.inject(Fault(status=500, model="big", times=None))
    chain = Chain(
        links=("big", "other"), on={FailureKind.SERVER_ERROR: "retry"}, retries=2, backoff_s=0.0
    )
    ref = await chain_actor(system, server, chain)
    result: FallbackResult = await ref.ask_async(prompt())
    assert [(a.link, a.action) for a in result.attempts] == [
        ("big", "retry"),
        ("big", "retry"),
        ("big", "next"),
        ("other", "answer"),
    ]
    assert "no retries left" in result.attempts[2].why
    assert asked(server) == ["big", "big", "big", "other"]


@pytest.mark.asyncio
async def test_retry_backoff_is_jittered_within_its_upper_half(
    system: System, server: FakeServer
) -> None:
    """Walks that fail alike do not all wait alike: each waits in [backoff/2, backoff]."""
    chain = Chain(links=("big", "other"), on={FailureKind.SERVER_ERROR: "retry"}, backoff_s=0.02)
    ref = await chain_actor(system, server, chain)
    waits = []
    for _ in range(4):  # 4 failures in 8 calls: under the breaker's 10-call minimum
        server.inject(Fault(status=500, model="big"))
        result: FallbackResult = await ref.ask_async(prompt())
        path = [(a.link, a.action) for a in result.attempts]
        assert path == [("big", "retry"), ("big", "answer")]
        waits.append(result.attempts[0].waited_s)
    assert all(0.01 <= w <= 0.02 for w in waits)
    assert len(set(waits)) > 1


@pytest.mark.asyncio
async def test_a_link_may_name_its_host_and_an_unknown_one_moves_on(
    system: System, server: FakeServer
) -> None:
    """``local/big`` is resolved as model ``big`` on ``local``; an unknown model is not_found."""
    await start_host_async(system, HostConfig(url=server.url, protocol="openai", timeout_s=5.0))

    def resolve(model: str, host: str | None) -> tuple[Any, str]:
        if "/" in model or model == "ghost":
            raise LookupError(f"no model {model!r}")
        return system.lookup(host or "local"), model

    ref = await system.spawn_async(
        FallbackChain, name="chain", args=(Chain(links=("ghost", "local/big")), resolve)
    )
    result: FallbackResult = await ref.ask_async(prompt())
    assert [(a.link, a.outcome) for a in result.attempts] == [
        ("ghost", "not_found"),
        ("local/big", "ok"),
    ]
    assert result.completion.model == "big"
    assert asked(server) == ["big"]


@pytest.mark.asyncio
async def test_an_ollama_link_too_small_for_the_prompt_is_left_unsent_for_a_bigger_one(
    system: System,
) -> None:
    """A link too small is refused unsent; the same model sized by num_ctx answers whole.

    Ollama would have cut the prompt silently on the link served (loaded) with 4096 tokens.
    """
    model = FakeModel("llama3.1", loaded=True, context_length=131072)
    with FakeServer("ollama", models=[model]) as fake:
        tight = await start_host_async(
            system, HostConfig(url=fake.url, protocol="ollama"), name="tight"
        )
        await tight.ask_async(InventoryQuery())  # as a fleet does: /api/ps says 4096
        await start_host_async(
            system, HostConfig(url=fake.url, protocol="ollama", num_ctx=32768), name="roomy"
        )
        chain = Chain(links=(link("llama3.1", host="tight"), link("llama3.1", host="roomy")))
        ref = await system.spawn_async(FallbackChain, args=(chain, local_resolver(system)))
        result: FallbackResult = await ref.ask_async(prompt("word " * 6000))
        chats = [c.body for c in fake.calls if c.path == "/api/chat"]
    assert result.link == "roomy/llama3.1"
    assert [(a.link, a.outcome) for a in result.attempts] == [
        ("tight/llama3.1", "context_window_exceeded"),
        ("roomy/llama3.1", "ok"),
    ]
    assert "4096-token context" in result.attempts[0].why
    assert [body["options"]["num_ctx"] for body in chats] == [32768]  # one request, sized
    assert result.completion.usage.input_tokens == 7500  # the whole prompt, not cut
