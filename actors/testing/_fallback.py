"""Fake servers as a fleet's fallback: the demo and ``reactor run`` work offline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from actors.testing._server import FakeServer

if TYPE_CHECKING:
    from actors.llm import HostProtocol

__all__ = ["fake_servers"]


def fake_servers(
    models: Sequence[str] = ("fake-small", "fake-large"),
) -> dict[HostProtocol, FakeServer]:
    """Start an OpenAI-compatible and an Ollama fake serving ``models``, by protocol.

    Pass it as :func:`~actors.llm.start_fleet`'s ``fallback``; the fleet stops them when
    it is closed.
    """
    return {kind: FakeServer(kind, models=list(models)).start() for kind in ("openai", "ollama")}
