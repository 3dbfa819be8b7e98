"""How several answers become one, for the ``consensus`` and ``semantic`` strategies.

The seam is :class:`Aggregator`: a callable from the answers (in member order, failed
members left out) and the members who gave them to an :class:`Agreement` (the chosen
answer, how much the members agree, which answers sided with it). It may be sync or
async. The defaults here are deliberately small:

* :func:`plurality`: a vote over answers normalised (case, spacing, trailing
  punctuation, a final ``answer:`` line), each counting its member's ``weight`` (1 by
  default), ties to the earliest member;
* :class:`Resonance`: answers embedded by an embedding model; two answers *resonate*
  when their cosine similarity reaches the threshold; the answer that resonates with
  the most others (then the highest mean similarity) wins.

Richer aggregators (weighted votes, numeric medians with outlier rejection, clustering,
synthesis) plug in through the same seam: ``run_strategy(..., aggregator=...)`` and the
``strategy`` step's ``aggregator=`` option.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import msgspec

from actors.orchestration.strategies._spec import Member

__all__ = [
    "Aggregator",
    "Agreement",
    "Embed",
    "Resonance",
    "cosine",
    "normalise",
    "plurality",
]


class Agreement(msgspec.Struct, frozen=True, kw_only=True):
    """An aggregator's verdict.

    Attributes:
        answer: The chosen answer's text.
        agreement: How much the members agree with it, 0 to 1 (the share that sided
            with it, for the defaults).
        supporters: The indexes (into the answers given) that sided with it.
        method: What decided (``plurality``, ``resonance``, or the aggregator's name).
    """

    answer: str
    agreement: float
    supporters: tuple[int, ...] = ()
    method: str = ""


class Aggregator(Protocol):
    """``(answers, members) -> Agreement`` (or an awaitable of one).

    ``answers[i]`` is the answer of ``members[i]`` (member order; members that failed
    are left out), so weights, families or per-model accuracy can be looked up.
    """

    def __call__(
        self, answers: Sequence[str], members: Sequence[Member], /
    ) -> Agreement | Awaitable[Agreement]:
        """Choose an answer and say how much the others agree with it."""
        ...


Embed = Callable[[Sequence[str]], Awaitable[Sequence[Sequence[float]]]]
"""``texts -> vectors`` (one per text, in order): an embedding model's answer."""

_ANSWER_LINE = re.compile(r"(?:final answer|answer)\s*(?:[:=]|is\b)\s*(.+)$", re.IGNORECASE)


def normalise(text: str) -> str:
    """An answer, comparable: what follows its last ``answer:`` or ``answer is``, tidied."""
    stripped = text.strip()
    lines = [line for line in stripped.splitlines() if line.strip()]
    for line in reversed(lines):
        found = _ANSWER_LINE.search(line)
        if found:
            stripped = found.group(1)
            break
    words = " ".join(stripped.lower().split())
    return words.strip(" .!?;:,\"'`*")


def plurality(answers: Sequence[str], members: Sequence[Member] = (), /) -> Agreement:
    """The normalised answer with the most (weighted) votes; agreement is its share.

    Each answer counts its member's ``weight`` (all 1 when ``members`` is not given);
    ties go to the answer given first.
    """
    if not answers:
        msg = "plurality of no answers"
        raise ValueError(msg)
    weights = [m.weight for m in members] if len(members) == len(answers) else [1.0] * len(answers)
    groups: dict[str, list[int]] = {}
    for index, text in enumerate(answers):
        groups.setdefault(normalise(text), []).append(index)

    def votes(indexes: list[int]) -> float:
        return sum(weights[i] for i in indexes)

    best = max(groups.values(), key=lambda ix: (votes(ix), -ix[0]))
    total = sum(weights)
    return Agreement(
        answer=answers[best[0]].strip(),
        agreement=votes(best) / total if total > 0 else 0.0,
        supporters=tuple(best),
        method="plurality",
    )


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0 when either is all zeros)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return dot / (na * nb)


class Resonance:
    """Semantic agreement: the answer that resonates with the most others, by embeddings.

    Args:
        embed: Fetches the answers' vectors (an embedding model on a host).
        threshold: The cosine similarity at which two answers resonate.
    """

    __slots__ = ("embed", "threshold")

    def __init__(self, embed: Embed, threshold: float) -> None:
        self.embed = embed
        self.threshold = threshold

    async def __call__(
        self, answers: Sequence[str], _members: Sequence[Member] = (), /
    ) -> Agreement:
        """Embed, compare every pair, and choose (agreement: the share that resonates)."""
        if not answers:
            msg = "resonance of no answers"
            raise ValueError(msg)
        vectors = list(await self.embed(list(answers)))
        if len(vectors) != len(answers):
            msg = f"the embedding model gave {len(vectors)} vectors for {len(answers)} answers"
            raise ValueError(msg)
        return resonate(answers, vectors, self.threshold)


def resonate(
    answers: Sequence[str], vectors: Sequence[Sequence[float]], threshold: float
) -> Agreement:
    """:class:`Resonance`'s choice, given the vectors (a pure function, tested alone)."""
    n = len(answers)
    sims = [[1.0 if i == j else cosine(vectors[i], vectors[j]) for j in range(n)] for i in range(n)]

    def score(i: int) -> tuple[int, float, int]:
        near = sum(1 for j in range(n) if sims[i][j] >= threshold)
        mean = sum(sims[i]) / n
        return (near, mean, -i)

    best = max(range(n), key=score)
    supporters = tuple(j for j in range(n) if sims[best][j] >= threshold)
    return Agreement(
        answer=answers[best].strip(),
        agreement=len(supporters) / n,
        supporters=supporters,
        method="resonance",
    )
