"""Helpers the provider tests share: the last request a fake saw, a call's failure."""

from __future__ import annotations

from typing import Any

import pytest

from actors._messages import Failure
from actors.llm._messages import ChatRequest
from actors.llm.providers._base import Provider, ProviderError
from actors.testing import FakeServer


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
