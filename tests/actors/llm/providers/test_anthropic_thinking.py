"""Anthropic extended thinking with tools, over loopback HTTP against the Anthropic fake.

With thinking on, the assistant turn echoed back after a tool call must carry the
answer's ``thinking`` blocks (with their ``signature``) and ``redacted_thinking`` blocks
(with their ``data``), unchanged and ahead of the ``tool_use`` blocks; the API (and the
fake) refuse the follow-up otherwise. Other providers ignore the blocks.
"""

from __future__ import annotations

import httpx
import msgspec
import pytest

from actors._messages import FailureKind
from actors.llm._messages import (
    ChatMessage,
    ChatRequest,
    Completion,
    ThinkingBlock,
    ToolCall,
)
from actors.llm.providers import provider_class
from actors.llm.providers._anthropic import AnthropicProvider
from actors.testing import FakeServer, FakeToolCall, Reply
from actors.testing._anthropic import AnthropicProtocol
from tests.support.providers import QUICK, WEATHER, failure_of, last_body

MODEL = "claude-think"
THINKING = {"thinking": {"type": "enabled", "budget_tokens": 2048}}
REASONING = "The user wants the weather in Paris; the weather tool answers that."
QUESTION = ChatMessage.user("Weather in Paris?")


def ask(*messages: ChatMessage, stream: bool, thinking: bool = True) -> ChatRequest:
    return ChatRequest(
        model=MODEL,
        messages=(QUESTION, *messages),
        tools=(WEATHER,),
        max_tokens=4096,
        stream=stream,
        options=dict(THINKING) if thinking else {},
    )


def results(first: Completion) -> tuple[ChatMessage, ...]:
    return tuple(ChatMessage.tool(call, '{"sky": "clear"}') for call in first.tool_calls)


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking_blocks_are_kept_and_sent_back_ahead_of_the_calls(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """Thinking (text + signature) and redacted blocks survive the round trip unchanged."""
    with FakeServer(AnthropicProtocol(redacted_thinking=1), models=[MODEL]) as server:
        provider = AnthropicProvider(server.url, client=client, timeouts=QUICK)
        server.script(
            Reply(
                reasoning=REASONING, tool_calls=(FakeToolCall("get_weather", {"city": "Paris"}),)
            ),
            Reply(reasoning="The tool said clear skies.", text="Sunny in Paris."),
        )
        first = await provider.complete(ask(stream=stream))
        assert [b.kind for b in first.thinking_blocks] == ["thinking", "redacted_thinking"]
        thought, redacted = first.thinking_blocks
        assert thought.text == REASONING
        assert thought.signature
        assert redacted.data
        assert (thought.data, redacted.text, redacted.signature) == ("", "", "")
        assert first.extras["thinking"] == REASONING  # the readable text, as before
        assert first.tool_calls[0].arguments == {"city": "Paris"}

        second = await provider.complete(
            ask(ChatMessage.from_completion(first), *results(first), stream=stream)
        )
        echoed = last_body(server)["messages"][1]["content"]
    assert second.content == "Sunny in Paris."
    # The fake accepted the follow-up: the signature matched the text it was issued for.
    assert [b["type"] for b in echoed] == ["thinking", "redacted_thinking", "tool_use"]
    assert echoed[0] == {"type": "thinking", "thinking": REASONING, "signature": thought.signature}
    assert echoed[1] == {"type": "redacted_thinking", "data": redacted.data}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_follow_up_without_the_thinking_blocks_is_refused(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """The fake answers 400 as the API does when the tool-use turn lost its reasoning."""
    with FakeServer(AnthropicProtocol(), models=[MODEL]) as server:
        provider = AnthropicProvider(server.url, client=client, timeouts=QUICK)
        server.script(
            Reply(reasoning=REASONING, tool_calls=(FakeToolCall("get_weather", {"city": "Oslo"}),))
        )
        first = await provider.complete(ask(stream=stream))
        bare = ChatMessage.assistant(first.content, first.tool_calls)
        failure = await failure_of(provider, ask(bare, *results(first), stream=stream))
    assert failure.kind is FailureKind.BAD_REQUEST
    assert "Expected `thinking` or `redacted_thinking`, but found `tool_use`" in failure.message


async def test_dropping_a_redacted_block_or_editing_the_text_is_refused(
    client: httpx.AsyncClient,
) -> None:
    """Every block must come back, and a thinking block's text must match its signature."""
    with FakeServer(AnthropicProtocol(redacted_thinking=2), models=[MODEL]) as server:
        provider = AnthropicProvider(server.url, client=client, timeouts=QUICK)
        server.script(
            Reply(reasoning=REASONING, tool_calls=(FakeToolCall("get_weather", {"city": "Rome"}),))
        )
        first = await provider.complete(ask(stream=False))
        assert len(first.thinking_blocks) == 3
        thought, *redacted = first.thinking_blocks
        dropped = ChatMessage.assistant("", first.tool_calls, (thought, redacted[1]))
        missing = await failure_of(provider, ask(dropped, *results(first), stream=False))
        edited = msgspec.structs.replace(thought, text=REASONING + " (edited)")
        tampered = ChatMessage.assistant("", first.tool_calls, (edited, *redacted))
        forged = await failure_of(provider, ask(tampered, *results(first), stream=False))
    assert missing.kind is FailureKind.BAD_REQUEST
    assert "complete, unchanged and in order" in missing.message
    assert forged.kind is FailureKind.BAD_REQUEST
    assert "Invalid `signature` in `thinking` block" in forged.message


async def test_without_thinking_nothing_changes(client: httpx.AsyncClient) -> None:
    """Thinking off: no reasoning blocks come, none go back, the follow-up is accepted."""
    with FakeServer(AnthropicProtocol(redacted_thinking=1), models=[MODEL]) as server:
        provider = AnthropicProvider(server.url, client=client, timeouts=QUICK)
        server.script(
            Reply(reasoning=REASONING, tool_calls=(FakeToolCall("get_weather", {"city": "Oslo"}),)),
            Reply(text="Rain."),
        )
        first = await provider.complete(ask(stream=True, thinking=False))
        assert first.thinking_blocks == ()
        assert "thinking" not in first.extras
        follow_up = ask(ChatMessage.from_completion(first), *results(first), stream=False)
        second = await provider.complete(msgspec.structs.replace(follow_up, options={}))
        echoed = last_body(server)["messages"][1]["content"]
    assert second.content == "Rain."
    assert [b["type"] for b in echoed] == ["tool_use"]


async def test_a_text_turn_keeps_its_reasoning_and_an_empty_one_is_left_out(
    client: httpx.AsyncClient,
) -> None:
    """Text after the reasoning; a turn of reasoning alone is not sent (the API refuses it)."""
    provider = AnthropicProvider("http://127.0.0.1:9", client=client)
    block = ThinkingBlock(text="hmm", signature="sig")
    request = ChatRequest(
        model=MODEL,
        messages=(
            QUESTION,
            ChatMessage.assistant("Paris is sunny.", thinking_blocks=(block,)),
            ChatMessage.user("And Rome?"),
            ChatMessage.assistant("", thinking_blocks=(block,)),
            ChatMessage.user("Thanks"),
        ),
    )
    turns = provider.body(request, stream=False)["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "Paris is sunny."},
    ]
    assert turns[2]["content"] == [
        {"type": "text", "text": "And Rome?"},
        {"type": "text", "text": "Thanks"},
    ]


def test_the_field_is_left_off_the_wire_when_empty() -> None:
    """Stored messages without reasoning encode as before, and old records still decode."""
    plain = ChatMessage.assistant("hi", (ToolCall(id="t1", name="f"),))
    assert b"thinking_blocks" not in msgspec.json.encode(plain)
    old = b'{"role":"assistant","content":"hi","tool_calls":[{"id":"t1","name":"f"}]}'
    assert msgspec.json.decode(old, type=ChatMessage) == plain
    block = ThinkingBlock(kind="redacted_thinking", data="opaque")
    kept = ChatMessage.assistant("", plain.tool_calls, (block,))
    wire = msgspec.json.encode(kept)
    assert b'"thinking_blocks":[{"kind":"redacted_thinking","data":"opaque"}]' in wire
    assert msgspec.json.decode(wire, type=ChatMessage) == kept
    answer = Completion(model="m", provider="anthropic", thinking_blocks=(block,))
    assert msgspec.json.decode(msgspec.json.encode(answer), type=Completion) == answer
    assert b"thinking_blocks" not in msgspec.json.encode(Completion(model="m", provider="x"))


@pytest.mark.parametrize("protocol", ["openai", "ollama", "gemini"])
async def test_other_providers_ignore_the_blocks(client: httpx.AsyncClient, protocol: str) -> None:
    """The same conversation with and without reasoning blocks: the same body elsewhere."""
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"})
    blocks = (
        ThinkingBlock(text="t", signature="s"),
        ThinkingBlock(kind="redacted_thinking", data="d"),
    )
    bodies = []
    with FakeServer(protocol, models=[MODEL]) as server:
        provider = provider_class(protocol)(server.url, client=client, timeouts=QUICK)
        for reasoning in ((), blocks):
            server.script(Reply(text="ok"))
            await provider.complete(
                ChatRequest(
                    model=MODEL,
                    messages=(
                        QUESTION,
                        ChatMessage.assistant("", (call,), reasoning),
                        ChatMessage.tool(call, "rain"),
                    ),
                    tools=(WEATHER,),
                    request_id="same",
                )
            )
            bodies.append(last_body(server))
    assert bodies[0] == bodies[1]
