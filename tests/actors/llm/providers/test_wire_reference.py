"""Wire facts of real servers (``shared/reference/llm-server-apis.md``) over loopback.

Each test pins one thing a real server does that the providers once mishandled; the
fakes reproduce it, and the provider is driven against them over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from actors.llm._messages import ChatRequest, Completion
from actors.llm.providers._base import Timeouts, make_client
from actors.llm.providers._gemini import GeminiProvider
from actors.testing import FakeServer, Reply

QUICK = Timeouts(connect=2.0, read=5.0, stream_idle=2.0)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    http = make_client(timeouts=QUICK)
    yield http
    await http.aclose()


# -- Gemini: thoughts are output tokens, counted apart (section 5.3) ----------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_thinking_tokens_count_as_output(
    client: httpx.AsyncClient, stream: bool
) -> None:
    """``thoughtsTokenCount`` is not part of ``candidatesTokenCount``: both are output."""
    with FakeServer("gemini", models=["gemini-think"]) as server:
        reasoning = "The user greets me; a short greeting back will do nicely here."
        server.script(Reply(text="Hello!", reasoning=reasoning, output_tokens=2))
        provider = GeminiProvider(server.url, client=client, timeouts=QUICK)
        answer = await provider.complete(
            ChatRequest.prompt("gemini-think", "Hi", stream=stream)
        )
    assert isinstance(answer, Completion)
    assert answer.content == "Hello!"
    assert answer.extras["thinking"] == reasoning
    thoughts = answer.extras["thoughts_tokens"]
    assert thoughts > 0
    assert answer.usage.output_tokens == 2 + thoughts
