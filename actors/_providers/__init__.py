"""Wire adapters, one per protocol; see :mod:`actors._providers._base`.

:func:`provider_class` finds a protocol's adapter by name (imported on first use, so a
process that talks only to Ollama never imports the Anthropic adapter).
"""

from __future__ import annotations

import importlib

from actors._providers._base import Provider

__all__ = ["PROVIDERS", "provider_class"]

PROVIDERS: dict[str, tuple[str, str]] = {
    "openai": ("actors._providers._openai", "OpenAIProvider"),
    "lmstudio": ("actors._providers._openai", "LMStudioProvider"),
    "ollama": ("actors._providers._ollama", "OllamaProvider"),
    "anthropic": ("actors._providers._anthropic", "AnthropicProvider"),
    "gemini": ("actors._providers._gemini", "GeminiProvider"),
}
"""Protocol name -> (module, class) of its provider."""


def provider_class(protocol: str) -> type[Provider]:
    """The provider class for a protocol; an unknown name lists the known ones."""
    try:
        module_name, class_name = PROVIDERS[protocol]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ValueError(
            f"unknown provider protocol {protocol!r}; expected one of: {known}"
        ) from None
    cls = getattr(importlib.import_module(module_name), class_name)
    assert isinstance(cls, type)
    assert issubclass(cls, Provider)
    return cls
