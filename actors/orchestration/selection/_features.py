"""Task features: a cheap, deterministic description of a request, for routing.

:func:`analyse` reads the text of a request once and says what kind of task it is
(``code``, ``reasoning``, ``analysis``, ``creative``, ``factual`` or ``general``), about how
many tokens the prompt holds, which capabilities a model needs to answer it (tools, a
JSON mode, vision, a long context) and how complex it looks (0 to 1). It costs a few
microseconds: one pass over the words of at most the first :data:`SCAN_CHARS`
characters of the last user turn, looked up in keyword tables, and a few substring
checks; never a model call. What the caller states (``task_type=``, the
capabilities it asks for) is taken as given; the analyser only fills in the rest.

Why keywords rather than a learnt classifier: routing needs an answer before the call,
on every call, and a wrong category costs little (the bandit learns per category, and
a category is only a context for it). A model-based classifier can be configured on the
Selector for users who want one (``Selector(classifier=...)``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import msgspec

from actors.llm import ChatMessage, TaskType

__all__ = [
    "LONG_CONTEXT_TOKENS",
    "SCAN_CHARS",
    "TASK_TYPES",
    "TaskFeatures",
    "analyse",
    "estimate_tokens",
    "task_type_of",
]

TASK_TYPES: tuple[TaskType, ...] = (
    "code",
    "reasoning",
    "analysis",
    "creative",
    "factual",
    "general",
)
"""Every task type, in the order ties are broken."""

SCAN_CHARS = 1200
"""How much of the last user turn the category patterns read."""

LONG_CONTEXT_TOKENS = 16_000
"""A prompt of at least this many tokens needs a ``long_context`` model."""


def _words(category: TaskType, text: str) -> dict[str, TaskType]:
    return dict.fromkeys(text.split(), category)


_WORDS: dict[str, TaskType] = {
    **_words(
        "code",
        "code coding function functions class method python javascript typescript java rust "
        "golang sql regex compile compiler compiles bug bugs debug debugging refactor "
        "traceback exception stacktrace script api endpoint algorithm implement unittest "
        "pytest dockerfile kubernetes bash shell html css json yaml variable loop recursion",
    ),
    **_words(
        "reasoning",
        "prove proof derive solve solving equation equations calculate compute probability "
        "logic logical puzzle riddle theorem infer deduce deduction math maths arithmetic "
        "integral derivative percent how_many",
    ),
    **_words(
        "analysis",
        "analyse analyze analysis analysing analyzing compare comparison evaluate "
        "evaluation assess assessment tradeoff tradeoffs trade-offs summarise summarize "
        "summary review critique insight insights trend trends data metrics implications "
        "pros cons",
    ),
    **_words(
        "creative",
        "story stories poem poems poetry haiku lyrics song fiction imagine creative slogan "
        "brainstorm character characters narrative limerick novel fairy tale",
    ),
    **_words(
        "factual",
        "capital define definition population fact facts born founded invented year date "
        "who when where",
    ),
}
"""Single words that point to a category (phrases are in _PHRASES)."""

_PHRASES: tuple[tuple[str, TaskType], ...] = (
    ("```", "code"),
    ("def ", "code"),
    ("#include", "code"),
    ("=>", "code"),
    ("();", "code"),
    ("unit test", "code"),
    ("stack trace", "code"),
    ("step by step", "reasoning"),
    ("how many", "reasoning"),
    ("explain why", "analysis"),
    ("pros and cons", "analysis"),
    ("in the style of", "creative"),
    ("write a story", "creative"),
    ("what is", "factual"),
    ("who is", "factual"),
    ("who was", "factual"),
    ("when did", "factual"),
)
"""Substrings (of the lower-cased text) that point to a category."""

_HARD_WORDS = frozenset(
    [
        "prove",
        "optimise",
        "optimize",
        "edge",
        "concurrency",
        "concurrent",
        "formal",
        "formally",
        "rigorous",
        "rigorously",
        "complexity",
        "design",
        "architecture",
        "multi-step",
        "tradeoffs",
    ]
)
_HARD_ANYWHERE = re.compile("|".join(sorted(map(re.escape, _HARD_WORDS))))
"""Any hard word, even inside another: with no match in the text, no word needs counting."""
_PUNCTUATION = ".,:;!?()[]{}<>\"'`*"
_ARITHMETIC = re.compile(r"\d\s*[-+*/^=]\s*\d")
_STEPS = re.compile(r"^\s*(?:\d+[.)]|[-*])\s", re.MULTILINE)


class TaskFeatures(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a request asks for, as far as routing cares.

    Attributes:
        task_type: Its category (given, or inferred from the text).
        prompt_tokens: The prompt's size in tokens, estimated (about 4 characters each).
        needs: Capabilities a model must have: any of ``tools``, ``json``, ``vision``,
            ``long_context``.
        complexity: 0 (trivial) to 1 (long, many parts, asks for rigour).
        inferred: Whether ``task_type`` was inferred (``False``: the caller gave it).
    """

    task_type: TaskType = "general"
    prompt_tokens: int = 0
    needs: tuple[str, ...] = ()
    complexity: float = 0.0
    inferred: bool = True


def estimate_tokens(text: str) -> int:
    """About how many tokens ``text`` is (4 characters per token, at least 1 for any text)."""
    return (len(text) + 3) // 4


def _category(low: str, words: list[str]) -> TaskType:
    hits: dict[TaskType, int] = {}
    for word in words:
        category = _WORDS.get(word)
        if category is not None:
            hits[category] = hits.get(category, 0) + 1
    for phrase, category in _PHRASES:
        if phrase in low:
            hits[category] = hits.get(category, 0) + 2
    if _ARITHMETIC.search(low):
        hits["reasoning"] = hits.get("reasoning", 0) + 2
    if not hits:
        return "general"
    return max(TASK_TYPES, key=lambda t: hits.get(t, 0))  # ties: the earlier type


def _complexity(text: str, words: list[str], tokens: int) -> float:
    size = tokens / 2000 if tokens < 2000 else 1.0  # long prompts are harder
    # Numbered or bulleted sub-tasks (a step starts a line: one line has at most one).
    if "\n" in text:
        steps = len(_STEPS.findall(text))
    else:  # one line: only one that starts with a digit, "-" or "*" can be a step
        first = text.lstrip()[:1]
        steps = int((first.isdigit() or first in "-*") and _STEPS.match(text) is not None)
    parts = steps / 6 if steps < 6 else 1.0
    asked = text.count("?")
    questions = asked / 5 if asked < 5 else 1.0
    hard = 0
    for word in words:
        if word in _HARD_WORDS:
            hard += 1
    rigour = hard / 3 if hard < 3 else 1.0
    # Rounded to 3 places (half up; the value is never negative).
    return int((0.35 * size + 0.25 * parts + 0.15 * questions + 0.25 * rigour) * 1000 + 0.5) / 1000


def _last_user(messages: Sequence[ChatMessage] | str) -> str:
    """The text the category is read from: the last user turn (or the one prompt)."""
    if isinstance(messages, str):
        return messages
    for message in reversed(messages):
        if message.role == "user":
            return message.content
    return ""


def task_type_of(messages: Sequence[ChatMessage] | str) -> TaskType:
    """The category :func:`analyse` infers for ``messages``, and nothing else.

    For callers that need only the category (learning per task type after a call):
    it skips the size, needs and complexity.
    """
    low = _last_user(messages)[:SCAN_CHARS].lower()
    return _category(low, [w.strip(_PUNCTUATION) for w in low.split()])


def analyse(
    messages: Sequence[ChatMessage] | str,
    *,
    task_type: TaskType | None = None,
    tools: bool = False,
    json: bool = False,
    vision: bool = False,
    needs: Iterable[str] = (),
) -> TaskFeatures:
    """Describe a request: its category, size, needs and complexity.

    Args:
        messages: The conversation (or one prompt). The category is read from the last
            user turn; the size counts every turn.
        task_type: The category, when the caller knows it (then it is not inferred).
        tools: The request offers tools.
        json: The request wants a JSON output mode.
        vision: The request carries images.
        needs: More required capabilities, as given.
    """
    if isinstance(messages, str):
        last = messages
        total = len(messages)
    else:
        last = ""
        total = 0
        for message in messages:  # a plain loop: most requests are one or two messages
            total += len(message.content)
            if message.role == "user":
                last = message.content
    scanned = last[:SCAN_CHARS]
    low = scanned.lower()
    if task_type is None or _HARD_ANYWHERE.search(low) is not None:
        words = [w.strip(_PUNCTUATION) for w in low.split()]
    else:  # given a category and no hard word in the text: no word needs counting
        words = []
    tokens = (total + 3) // 4
    if needs or tools or json or vision or tokens >= LONG_CONTEXT_TOKENS:
        required = set(needs)
        if tools:
            required.add("tools")
        if json:
            required.add("json")
        if vision:
            required.add("vision")
        if tokens >= LONG_CONTEXT_TOKENS:
            required.add("long_context")
        wanted = tuple(sorted(required))
    else:
        wanted = ()
    return TaskFeatures(
        task_type=task_type if task_type is not None else _category(low, words),
        prompt_tokens=tokens,
        needs=wanted,
        complexity=_complexity(scanned, words, tokens),
        inferred=task_type is None,
    )
