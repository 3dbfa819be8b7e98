"""The optional model-based classifier: a (small, fast) model names the task type.

The keyword analyser (:func:`~._features.analyse`) costs microseconds and is right
often enough for routing; a user who wants a second opinion configures a
:class:`ModelClassifier` on the Selector (``Selector(classifier=ModelClassifier(...))``).
It costs one model call per request whose task type the caller did not give, so point it
at a small local model. When the model fails, times out or answers with no known task
type, the keywords decide as before.
"""

from __future__ import annotations

from typing import Any

from actors import AskError, Ref
from actors.llm import ChatRequest, TaskType
from actors.orchestration.selection._features import TASK_TYPES

__all__ = ["CLASSIFIER_PROMPT", "ModelClassifier"]

CLASSIFIER_PROMPT = (
    "Classify the request below into exactly one of these task types: "
    + ", ".join(TASK_TYPES)
    + ". Answer with the task type only, one word.\n\nRequest:\n"
)
"""What the classifying model is asked (the request's text follows)."""


class ModelClassifier:
    """Asks ``model`` on ``host`` for the task type of a prompt (an async classifier).

    Args:
        host: The ModelHost to ask.
        model: A small, fast model.
        timeout: Seconds the classification may take before the keywords decide.
        max_chars: How much of the prompt is sent.
    """

    __slots__ = ("host", "max_chars", "model", "timeout")

    def __init__(
        self, host: Ref[Any], model: str, *, timeout: float = 5.0, max_chars: int = 2000
    ) -> None:
        self.host = host
        self.model = model
        self.timeout = timeout
        self.max_chars = max_chars

    async def __call__(self, text: str) -> TaskType | None:
        """The task type the model names, or ``None`` (then the keywords decide)."""
        request = ChatRequest.prompt(
            self.model, CLASSIFIER_PROMPT + text[: self.max_chars], max_tokens=8, temperature=0
        )
        try:
            answer = await self.host.ask_async(request, timeout=self.timeout)
        except AskError:
            return None
        words = answer.content.strip().lower().split()
        word = words[0].strip(".,:;!\"'`*") if words else ""
        return next((t for t in TASK_TYPES if t == word), None)
