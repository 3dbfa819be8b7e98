"""The prompts of the multi-round methods: Mixture-of-Agents synthesis and debate. Pure.

* Synthesis (Mixture-of-Agents): each layer after the first, and the aggregator, read
  the previous layer's answers through one "synthesise, evaluate critically, do not
  copy" system prompt (:func:`synthesis_request`).
* Debate: from the second round on, each member sees the others' latest answers and
  revises its own (:func:`debate_request`).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from actors.llm import ChatMessage, ChatRequest

__all__ = ["DEBATE_PROMPT", "SYNTHESIS_PROMPT", "debate_request", "synthesis_request"]

SYNTHESIS_PROMPT = (
    "You have been given responses from several models to the user's latest question. "
    "Synthesise them into one answer of the highest quality. Evaluate them critically: "
    "some may be biased or wrong. Do not copy any of them; give a refined, accurate and "
    "complete reply.\n\nResponses from the models:"
)
"""The aggregator's system prompt (the references follow, numbered)."""

DEBATE_PROMPT = (
    "These are the latest answers of other agents to the same question:\n\n{others}\n\n"
    "Using their reasoning as additional advice, check your own answer and give an updated "
    "answer to the question. Keep the same answer format as before."
)
"""What a debater reads in every round after the first (``{others}``: their answers)."""


def _references(answers: Sequence[str]) -> str:
    return "\n".join(f"{n}. {text.strip()}" for n, text in enumerate(answers, 1))


def synthesis_request(request: ChatRequest, answers: Sequence[str]) -> ChatRequest:
    """``request`` with the previous layer's answers as references in its system prompt.

    An existing system prompt is kept, with the references after it.
    """
    references = f"{SYNTHESIS_PROMPT}\n{_references(answers)}"
    messages = list(request.messages)
    if messages and messages[0].role == "system":
        messages[0] = ChatMessage.system(f"{messages[0].content}\n\n{references}")
    else:
        messages.insert(0, ChatMessage.system(references))
    return msgspec.structs.replace(request, messages=tuple(messages))


def debate_request(request: ChatRequest, own: str, others: Sequence[str]) -> ChatRequest:
    """The next debate round for one member: its own answer, then the others' to weigh."""
    turn = DEBATE_PROMPT.format(others=_references(others) or "(none)")
    messages = (*request.messages, ChatMessage.assistant(own), ChatMessage.user(turn))
    return msgspec.structs.replace(request, messages=messages)
