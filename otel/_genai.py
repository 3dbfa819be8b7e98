"""Attribute names of the OpenTelemetry semantic conventions for generative AI.

One place for the ``gen_ai.*`` names every span and metric of an LLM call uses, so that
a rename in the conventions is one edit. They follow the current conventions
(``gen_ai.provider.name`` replaced ``gen_ai.system``); the conventions are still in
development, so check them here when upgrading.
"""

__all__ = [
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MAX_TOKENS",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_REQUEST_STOP_SEQUENCES",
    "GEN_AI_REQUEST_TEMPERATURE",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
]

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
"""What the call does: ``chat``, ``embeddings``, ``execute_tool``, ``invoke_agent``, ..."""

GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
"""Whose API it is: ``openai``, ``anthropic``, ``gcp.gemini``, ... (or the server's name)."""

GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
"""The model the request asked for."""

GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
"""The sampling temperature asked for."""

GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
"""The most tokens the answer may have."""

GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
"""Sequences that end the answer."""

GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
"""The model that answered (it may differ from the one asked for)."""

GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
"""Why the answer ended, one reason per choice."""

GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
"""Tokens in the prompt."""

GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
"""Tokens in the answer."""
