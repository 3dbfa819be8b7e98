"""Task features: a cheap, deterministic description of a request, for routing.

:func:`analyse` reads the text of a request once and says what kind of task it is
(``code``, ``reasoning``, ``analysis``, ``creative``, ``factual`` or ``general``), about how
many tokens the prompt holds, which capabilities a model needs to answer it (tools, a
JSON mode, vision, a long context) and how complex it looks (0 to 1). It costs a few
microseconds: keyword patterns over at most the first :data:`SCAN_CHARS` characters of
the last user turn, never a model call. What the caller states (``task_type=``, the
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

SCAN_CHARS = 4000
"""How much of the last user turn the category patterns read."""

LONG_CONTEXT_TOKENS = 16_000
"""A prompt of at least this many tokens needs a ``long_context`` model."""

_PATTERNS: dict[TaskType, re.Pattern[str]] = {
    "code": re.compile(
        r"```|\bdef |\bclass |\bfunction\b|\bimport |#include|\bpython\b|\bjavascript\b|"
        r"\btypescript\b|\brust\b|\bsql\b|\bregex\b|\bcompile|\bbug\b|\bdebug|\brefactor|"
        r"\bstack ?trace|\btraceback\b|\bexception\b|\bunit tests?\b|\bcode\b|\bscript\b|"
        r"\bapi\b|\bjson schema\b|\balgorithm|\{\s*\"|;\s*$|=>|\bfn\b",
        re.IGNORECASE | re.MULTILINE,
    ),
    "reasoning": re.compile(
        r"\bprove\b|\bproof\b|\bderive\b|\bstep by step\b|\bsolve\b|\bequation|\bcalculate\b|"
        r"\bhow many\b|\bprobability\b|\blogic|\bpuzzle|\briddle|\btheorem|\binfer\b|"
        r"\bdeduce|\bif .* then\b|\d+\s*[-+*/^]\s*\d+",
        re.IGNORECASE,
    ),
    "analysis": re.compile(
        r"\banaly[sz]|\bcompare\b|\bcomparison\b|\bevaluate\b|\bassess|\btrade-?offs?\b|"
        r"\bpros and cons\b|\bsummar|\breview\b|\bcritique|\binsights?\b|\btrends?\b|"
        r"\bdata\b|\bmetrics?\b|\bexplain why\b|\bimplications?\b",
        re.IGNORECASE,
    ),
    "creative": re.compile(
        r"\bwrite an? (?:story|poem|song|haiku|limerick|novel|script)|\bstory\b|\bpoem\b|"
        r"\bhaiku\b|\blyrics\b|\bfiction|\bimagine\b|\bcreative|\bslogan|\bbrainstorm|"
        r"\bcharacter\b|\bnarrative\b|\bin the style of\b",
        re.IGNORECASE,
    ),
    "factual": re.compile(
        r"^\s*(?:who|what|when|where|which)\b|\bcapital of\b|\bdefine\b|\bdefinition\b|"
        r"\bwhat is\b|\bwho (?:is|was)\b|\bwhen did\b|\bhow old\b|\bpopulation\b|"
        r"\bfact|\bdate of\b",
        re.IGNORECASE,
    ),
}

_STEPS = re.compile(r"^\s*(?:\d+[.)]|[-*])\s", re.MULTILINE)
_HARD = re.compile(
    r"\bstep by step\b|\bprove\b|\boptimi[sz]e|\bedge cases?\b|\bconcurren|\bformal|"
    r"\brigorous|\bcomplexity\b|\bdesign\b|\barchitecture\b|\bmulti-?step\b",
    re.IGNORECASE,
)


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


def _category(text: str) -> TaskType:
    best: TaskType = "general"
    best_hits = 0
    for task_type, pattern in _PATTERNS.items():
        hits = len(pattern.findall(text))
        if hits > best_hits:
            best, best_hits = task_type, hits
    return best


def _complexity(text: str, tokens: int) -> float:
    size = min(tokens / 2000, 1.0)  # long prompts are harder
    parts = min(len(_STEPS.findall(text)) / 6, 1.0)  # numbered or bulleted sub-tasks
    questions = min(text.count("?") / 5, 1.0)
    rigour = min(len(_HARD.findall(text)) / 3, 1.0)
    return round(0.35 * size + 0.25 * parts + 0.15 * questions + 0.25 * rigour, 3)


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
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        total = sum(len(m.content) for m in messages)
    scanned = last[:SCAN_CHARS]
    tokens = (total + 3) // 4
    required = set(needs)
    if tools:
        required.add("tools")
    if json:
        required.add("json")
    if vision:
        required.add("vision")
    if tokens >= LONG_CONTEXT_TOKENS:
        required.add("long_context")
    return TaskFeatures(
        task_type=task_type if task_type is not None else _category(scanned),
        prompt_tokens=tokens,
        needs=tuple(sorted(required)),
        complexity=_complexity(scanned, tokens),
        inferred=task_type is None,
    )
