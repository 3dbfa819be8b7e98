"""Which fake protocol serves which name (``reactor fake-server --protocol NAME``)."""

from __future__ import annotations

import importlib

from actors.testing._server import FakeProtocol

__all__ = ["PROTOCOLS", "protocol_for"]

PROTOCOLS: dict[str, tuple[str, str]] = {
    "openai": ("actors.testing._openai", "OpenAIProtocol"),
    "lmstudio": ("actors.testing._openai", "LMStudioProtocol"),
    "llamacpp": ("actors.testing._openai", "LlamaCppProtocol"),
    "llama-cpp-python": ("actors.testing._openai", "LlamaCppPythonProtocol"),
    "vllm": ("actors.testing._openai", "VLLMProtocol"),
    "ollama": ("actors.testing._ollama", "OllamaProtocol"),
    "anthropic": ("actors.testing._anthropic", "AnthropicProtocol"),
    "gemini": ("actors.testing._gemini", "GeminiProtocol"),
}
"""Protocol name -> (module, class) of its fake."""


def protocol_for(name: str) -> FakeProtocol:
    """A fresh protocol instance by name; an unknown name lists the known ones."""
    try:
        module_name, class_name = PROTOCOLS[name]
    except KeyError:
        known = ", ".join(sorted(PROTOCOLS))
        raise ValueError(
            f"unknown fake-server protocol {name!r}; expected one of: {known}"
        ) from None
    cls = getattr(importlib.import_module(module_name), class_name)
    instance = cls()
    assert isinstance(instance, FakeProtocol)
    return instance
