"""Wire adapters, one per protocol; see :mod:`actors.llm.providers._base`.

:func:`provider_class` finds a protocol's adapter by name (imported on first use, so a
process that talks only to Ollama never imports the Anthropic adapter).
"""

import importlib

from actors.llm.providers._base import (
    Provider,
    ProviderError,
    Timeouts,
    make_client,
    tls_context,
)

__all__ = [
    "Provider",
    "ProviderError",
    "Timeouts",
    "make_client",
    "provider_class",
    "tls_context",
]

_PROVIDERS: dict[str, tuple[str, str]] = {
    "openai": ("actors.llm.providers._openai", "OpenAIProvider"),
    "lmstudio": ("actors.llm.providers._openai", "LMStudioProvider"),
    "ollama": ("actors.llm.providers._ollama", "OllamaProvider"),
    "anthropic": ("actors.llm.providers._anthropic", "AnthropicProvider"),
    "gemini": ("actors.llm.providers._gemini", "GeminiProvider"),
}
"""Protocol name -> (module, class) of its provider."""


def provider_class(protocol: str) -> type[Provider]:
    """The provider class for a protocol; an unknown name lists the known ones."""
    try:
        module_name, class_name = _PROVIDERS[protocol]
    except KeyError:
        known = ", ".join(sorted(_PROVIDERS))
        raise ValueError(
            f"unknown provider protocol {protocol!r}; expected one of: {known}"
        ) from None
    cls = getattr(importlib.import_module(module_name), class_name)
    assert isinstance(cls, type)
    assert issubclass(cls, Provider)
    return cls
