"""Loopback fake LLM servers that speak each real protocol, with fault injection.

Part of the product, not only of its tests: the demo falls back to them when no LLM
server is found (:func:`fake_servers` is :func:`~actors.llm.start_fleet`'s fallback),
and users test their reactors offline against them::

    from actors.testing import FakeServer, Fault, Reply

    with FakeServer("ollama", models=["llama3.2"]) as server:
        server.script(Reply(text="Paris"))
        server.inject(Fault(status=429, retry_after=2))   # the next request is rate limited
        ...  # point a ModelHost (or any client) at server.url

``reactor fake-server --protocol openai|lmstudio|llamacpp|llama-cpp-python|vllm|ollama|
anthropic|gemini --port N`` starts one from the command line, with the same faults as
options (``--status 429 --retry-after 2``, ``--hang``, ``--close-after N``, ...). The
``llamacpp`` and ``llama-cpp-python`` fakes imitate those servers' quirks as well.
"""

from actors.testing._fallback import fake_servers
from actors.testing._protocols import PROTOCOLS, protocol_for
from actors.testing._server import (
    Exchange,
    FakeCall,
    FakeModel,
    FakeProtocol,
    FakeServer,
    FakeToolCall,
    Fault,
    Reply,
)

__all__ = [
    "PROTOCOLS",
    "Exchange",
    "FakeCall",
    "FakeModel",
    "FakeProtocol",
    "FakeServer",
    "FakeToolCall",
    "Fault",
    "Reply",
    "fake_servers",
    "protocol_for",
]
