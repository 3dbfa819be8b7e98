"""Start a ModelHost and ask it for a completion in one line, for host tests."""

from __future__ import annotations

from typing import Any

from actors import Ref, System
from actors.llm import ChatRequest, Completion, HostConfig, HostMessage, ModelHost


def start_host(
    system: System, settings: HostConfig, *, name: str = "local", monitor: Ref[Any] | None = None
) -> Ref[HostMessage]:
    """A ModelHost called ``name`` under the system's root supervisor."""
    return system.spawn(ModelHost, name=name, args=(settings,), kwargs={"monitor": monitor})


async def start_host_async(
    system: System, settings: HostConfig, *, name: str = "local"
) -> Ref[HostMessage]:
    """:func:`start_host` for asyncio code."""
    return await system.spawn_async(ModelHost, name=name, args=(settings,))


def _request(request: ChatRequest | str, model: str | None) -> ChatRequest:
    if isinstance(request, ChatRequest):
        return request
    assert model is not None, "a prompt string needs model=..."
    return ChatRequest.prompt(model, request)


def chat(
    system: System,
    host: str,
    request: ChatRequest | str,
    *,
    model: str | None = None,
    timeout: float | None = None,
) -> Completion:
    """Ask the host called ``host`` (raises AskError on a failure)."""
    answer: Completion = system.lookup(host).ask(_request(request, model), timeout=timeout)
    return answer


async def chat_async(
    system: System,
    host: str,
    request: ChatRequest | str,
    *,
    model: str | None = None,
    timeout: float | None = None,
) -> Completion:
    """:func:`chat` for asyncio code."""
    ref = system.lookup(host)
    answer: Completion = await ref.ask_async(_request(request, model), timeout=timeout)
    return answer
