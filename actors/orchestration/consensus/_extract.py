r"""Answer extraction: from a model's prose to the category, number or object it answered.

Models wrap answers in prose ("The answer is **B**, because..."), so voting on raw text
counts two equal answers as different. These pure functions pull the answer out; each
returns ``None`` when the text holds none (that member then counts as unparsable, not as
a vote for ``None``). The documented defaults, by output type:

==============  ==================================================================
output          default extraction
==============  ==================================================================
categorical     with ``choices``: the last choice named (:func:`extract_choice`);
                otherwise ``\boxed{}``, then an ``Answer:`` line, then the first line,
                normalised (:func:`normalise`)
numeric         ``\\boxed{}`` if present, else the last number (:func:`extract_number`)
structured      the first JSON object (:func:`extract_json`), fenced or bare
text            the whole text, stripped
==============  ==================================================================
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

__all__ = [
    "EXTRACTORS",
    "Extractor",
    "OutputType",
    "default_extractor",
    "extract",
    "extract_answer_line",
    "extract_boxed",
    "extract_choice",
    "extract_json",
    "extract_number",
    "first_line",
    "normalise",
    "stated_confidence",
]

OutputType = Literal["categorical", "numeric", "structured", "text"]
"""What kind of answer the members give, which decides the aggregator."""

Extractor = Callable[[str], Any]
"""``extract(text) -> value`` (``None``: no answer in the text)."""

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")
_ANSWER_LINE = re.compile(
    r"(?:final answer|answer)\s*(?:is)?\s*[:=]?\s*\**\s*(.+?)\s*\**\s*(?:$|\n)", re.IGNORECASE
)
_ANSWER_LINE_LOWER = re.compile(
    r"(?:final answer|answer)\s*(?:is)?\s*[:=]?\s*\**\s*(.+?)\s*\**\s*(?:$|\n)"
)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_CONFIDENCE = re.compile(r"confidence\s*[:=]?\s*(\d+(?:\.\d+)?)\s*(%?)", re.IGNORECASE)


def normalise(text: str) -> str:
    """Lower case, markdown emphasis and surrounding punctuation dropped, spaces collapsed."""
    if "*" in text or "_" in text or "`" in text:
        text = text.replace("**", "").replace("__", "").replace("`", "")
    text = " ".join(text.split()).lower()
    return text.strip(" .,:;!?\"'()[]")


def extract_boxed(text: str) -> str | None:
    r"""The content of the last ``\boxed{...}`` (nested braces allowed), or ``None``."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth = 0
    begin = start + len("\\boxed{")
    for index in range(begin, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return text[begin:index].strip()
            depth -= 1
    return None


def extract_number(text: str) -> float | None:
    r"""The answer as a number: ``\boxed{}`` first, else the last number in the text.

    Thousands separators are dropped (``1,234`` is 1234); a trailing ``%`` is kept as
    the number before it.
    """
    boxed = extract_boxed(text)
    if boxed is not None:
        found = _NUMBER.findall(boxed)
        if found:
            return _to_float(found[-1])
    found = _NUMBER.findall(text)
    if not found:
        return None
    return _to_float(found[-1])


def _to_float(raw: str) -> float | None:
    try:
        return float(raw.replace(",", ""))
    except ValueError:
        return None


def first_line(text: str) -> str | None:
    """The first non-empty line, normalised (``None`` for an empty text)."""
    for line in text.splitlines():
        value = normalise(line)
        if value:
            return value
    return None


def extract_answer_line(text: str) -> str | None:
    """What follows the last ``Answer:`` / ``The answer is`` / ``Final answer:``, normalised."""
    # Every match holds "answer" in some case (or with the long s, which the pattern's
    # case folding matches too): a text without it is passed over without the scan.
    # ASCII text is scanned lower-cased without case folding (the same matches, faster:
    # what is found is normalised, lower-cased, either way), from 6 characters ("final ")
    # before the first "answer": no match starts earlier.
    low = text.lower()
    first = low.find("answer")
    if first < 0:
        if text.isascii() or "\u017f" not in text:
            return None
        found = _ANSWER_LINE.findall(text)
    elif text.isascii():
        found = _ANSWER_LINE_LOWER.findall(low, max(0, first - 6))
    else:
        found = _ANSWER_LINE.findall(text)
    if not found:
        return None
    value = normalise(found[-1])
    return value or None


def extract_choice(text: str, choices: Sequence[str]) -> str | None:
    r"""The choice the text settles on: the one named last, as a whole word.

    Matching ignores case; a choice named inside ``\boxed{}`` or an ``Answer:`` line
    wins over one merely mentioned. Returns the choice as given in ``choices``.
    """
    for focus in (extract_boxed(text), extract_answer_line(text)):
        if focus:
            hit = _last_choice(focus, choices)
            if hit is not None:
                return hit
    return _last_choice(text, choices)


@functools.lru_cache(maxsize=256)
def _choice_pattern(choices: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    """A pattern for any choice as a whole word (longest first), and the choices by lower case.

    Compiled once per set of choices; of two choices equal but for case, the first wins.
    """
    alternatives = sorted({c.lower() for c in choices}, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![\w])(" + "|".join(re.escape(c) for c in alternatives) + r")(?![\w])"
    )
    named: dict[str, str] = {}
    for choice in choices:
        named.setdefault(choice.lower(), choice)
    return pattern, named


def _last_choice(text: str, choices: Sequence[str]) -> str | None:
    pattern, named = _choice_pattern(choices if type(choices) is tuple else tuple(choices))
    found = pattern.findall(text.lower())
    if not found:
        return None
    return named[found[-1]]


def extract_json(text: str) -> Any:
    """The first JSON object in the text (a fenced block first, then a bare ``{...}``)."""
    candidates = [m.strip() for m in _FENCE.findall(text)]
    candidates.append(text.strip())
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            pass
        start = candidate.find("{")
        while start >= 0:
            try:
                value, _ = json.JSONDecoder().raw_decode(candidate[start:])
            except ValueError:
                start = candidate.find("{", start + 1)
                continue
            return value
    return None


def _categorical(text: str) -> str | None:
    boxed = extract_boxed(text)
    if boxed:
        return normalise(boxed) or None
    return extract_answer_line(text) or first_line(text)


def _text(text: str) -> str | None:
    stripped = text.strip()
    return stripped or None


EXTRACTORS: dict[str, Extractor] = {
    "boxed": extract_boxed,
    "last_number": extract_number,
    "first_line": first_line,
    "answer_line": extract_answer_line,
    "json": extract_json,
    "text": _text,
    "categorical": _categorical,
}
"""The named extractions a step may ask for (``extract="boxed"``)."""


def _choice_reader(choices: tuple[str, ...]) -> Extractor:
    """:func:`extract_choice` over fixed ``choices``, the same answers, read faster.

    The pattern is found once, the text lower-cased once, and the box and the answer
    line are looked for only when the text has them.
    """
    pattern, named = _choice_pattern(choices)
    findall = pattern.findall

    def read(text: str) -> str | None:
        if "\\boxed{" in text:
            boxed = extract_boxed(text)
            if boxed:
                found = findall(boxed.lower())
                if found:
                    return named[found[-1]]
        low = text.lower()
        first = low.find("answer")
        if first >= 0 and text.isascii():  # extract_answer_line's fast case, inline
            lines = _ANSWER_LINE_LOWER.findall(low, max(0, first - 6))
            line = normalise(lines[-1]) if lines else None
        elif first < 0 and (text.isascii() or "\u017f" not in text):
            line = None
        else:
            line = extract_answer_line(text)
        if line:
            found = findall(line.lower())
            if found:
                return named[found[-1]]
        found = findall(low)
        return named[found[-1]] if found else None

    return read


def default_extractor(output: OutputType, choices: Sequence[str] = ()) -> Extractor:
    """The documented default extraction for an output type (see the module docstring)."""
    if output == "categorical":
        if choices:
            return _choice_reader(tuple(choices))
        return _categorical
    if output == "numeric":
        return extract_number
    if output == "structured":
        return extract_json
    return _text


def extract(
    text: str,
    output: OutputType,
    *,
    how: str | Extractor | None = None,
    choices: Sequence[str] = (),
) -> Any:
    """The answer in ``text``: by ``how`` (an :data:`EXTRACTORS` name, a function), or the default.

    Raises:
        ValueError: ``how`` names no known extraction.
    """
    if how is None:
        return default_extractor(output, choices)(text)
    if isinstance(how, str):
        function = EXTRACTORS.get(how)
        if function is None:
            msg = f"unknown extraction {how!r} (known: {', '.join(sorted(EXTRACTORS))})"
            raise ValueError(msg)
        value = function(text)
        if output == "numeric" and isinstance(value, str):
            return extract_number(value)
        return value
    return how(text)


def stated_confidence(text: str) -> float | None:
    """A verbalised ``confidence: 0.9`` (or ``90%``) in the answer, 0 to 1: telemetry only.

    Values above 1 are read as percentages (as llm-consortium does); none found is
    ``None``, never a made-up 0.5. (``Confidence`` or ``confidence``: matched either way.)
    """
    if "onfidence" not in text:
        return None
    found = _CONFIDENCE.findall(text)
    if not found:
        return None
    raw, percent = found[-1]
    value = float(raw)
    if percent or value > 1.0:
        value /= 100.0
    return max(0.0, min(1.0, value))
