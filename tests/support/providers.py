"""What the provider tests share: timeouts, a tool, the last request, a call's failure."""

from __future__ import annotations

from typing import Any

import pytest

from actors._messages import Failure
from actors.llm._messages import ChatRequest, ToolSpec
from actors.llm.providers._base import Provider, ProviderError, Timeouts
from actors.testing import FakeServer

QUICK = Timeouts(connect=2.0, read=5.0, stream_idle=2.0)
"""Timeouts for talking to a fake server on loopback: a hang fails in seconds."""

WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
"""A tool with one string argument."""


def last_body(server: FakeServer) -> dict[str, Any]:
    """The JSON body of the last request the fake received."""
    body = server.calls[-1].body
    assert isinstance(body, dict)
    return body


async def failure_of(provider: Provider, request: ChatRequest) -> Failure:
    """The failure a chat (or a stream, per ``request.stream``) ends with."""
    with pytest.raises(ProviderError) as caught:
        await provider.complete(request)
    return caught.value.failure
