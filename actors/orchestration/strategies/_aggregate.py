r"""How several answers become one, for the ``consensus`` and ``semantic`` strategies.

The seam is :class:`Aggregator`: a callable from the answers (in member order, failed
members left out) and the members who gave them to an :class:`Agreement` (the chosen
answer, how much the members agree, which answers sided with it, how sure that is). It
may be sync or async. The defaults are adapters over the consensus package
(:mod:`actors.orchestration.consensus`), which owns extraction, the aggregators and the
confidence statistics:

* :func:`plurality`: the answers extracted as categorical answers
  (:func:`~actors.orchestration.consensus.extract`: ``\boxed{}``, an ``Answer:`` line,
  else the first line, normalised), then a vote
  (:func:`~actors.orchestration.consensus.vote`) where each counts its member's
  ``weight``; the confidence is the Wilson lower bound of the winning share;
* :class:`Resonance`: answers embedded by an embedding model, then clustered
  (:func:`~actors.orchestration.consensus.cluster`, average linkage over the cosine
  matrix, answers alike at ``threshold`` or more); the largest cluster's most central
  answer wins; :func:`lexical` is the same clustering over text similarity, the stand-in
  when no embedding can be had.

Any other aggregator (``weighted_vote`` over measured accuracies, numeric medians, a
synthesis) plugs in through the same seam: ``run_strategy(..., aggregator=...)`` and the
``strategy`` step's ``aggregator=`` option.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import msgspec

from actors.orchestration.consensus import (
    ConsensusSpec,
    Verdict,
    assess,
    cluster,
    cosine_matrix,
    extract,
    lexical_matrix,
    normalise,
    vote,
)
from actors.orchestration.strategies._spec import Member

__all__ = [
    "Aggregator",
    "Agreement",
    "Embed",
    "Resonance",
    "lexical",
    "plurality",
    "resonate",
]


class Agreement(msgspec.Struct, frozen=True, kw_only=True):
    """An aggregator's verdict.

    Attributes:
        answer: The chosen answer's text.
        agreement: How much the members agree with it, 0 to 1 (the (weighted) share
            that sided with it, for the defaults).
        supporters: The indexes (into the answers given) that sided with it.
        method: What decided (``plurality``, ``cluster``, ``lexical``, or the
            aggregator's name).
        confidence: The Wilson 95% lower bound of the supporters' share (``None``: the
            aggregator did not say).
    """

    answer: str
    agreement: float
    supporters: tuple[int, ...] = ()
    method: str = ""
    confidence: float | None = None


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

_TEXT = ConsensusSpec(output="text")
"""The consensus package's defaults for free text (its cluster thresholds)."""


def _agreement(answers: Sequence[str], verdict: Verdict) -> Agreement:
    """A consensus :class:`Verdict` over ``answers`` as an :class:`Agreement`."""
    chosen = verdict.representative
    if chosen is None:
        chosen = verdict.support[0] if verdict.support else 0
    confidence = assess(verdict, len(answers), 0.0).confidence
    return Agreement(
        answer=answers[chosen].strip(),
        agreement=verdict.share,
        supporters=verdict.support,
        method=verdict.method,
        confidence=confidence,
    )


def plurality(answers: Sequence[str], members: Sequence[Member] = (), /) -> Agreement:
    """The extracted answer with the most (weighted) votes; agreement is its share.

    Each answer counts its member's ``weight`` (all 1 when ``members`` is not given);
    ties go to the answer given first. An answer with nothing to extract (an empty
    text) votes on its own normalised text.
    """
    if not answers:
        msg = "plurality of no answers"
        raise ValueError(msg)
    weights = [m.weight for m in members] if len(members) == len(answers) else [1.0] * len(answers)
    values = [extract(text, "categorical") or normalise(text) for text in answers]
    method = "plurality" if len(set(weights)) == 1 else "weighted"
    return _agreement(answers, vote(values, weights, method))


def resonate(
    answers: Sequence[str], vectors: Sequence[Sequence[float]], threshold: float
) -> Agreement:
    """:class:`Resonance`'s choice, given the vectors: the consensus clustering over cosines."""
    return _agreement(answers, cluster(list(answers), cosine_matrix(vectors), threshold))


def lexical(answers: Sequence[str], _members: Sequence[Member] = (), /) -> Agreement:
    """The clustering over text similarity (difflib), for when embeddings cannot be had."""
    if not answers:
        msg = "clustering of no answers"
        raise ValueError(msg)
    verdict = cluster(list(answers), lexical_matrix(answers), _TEXT.lexical_similarity)
    return _agreement(answers, msgspec.structs.replace(verdict, method="lexical"))


class Resonance:
    """Semantic agreement: the answers clustered by their embeddings; the largest wins.

    Args:
        embed: Fetches the answers' vectors (an embedding model on a host).
        threshold: The cosine similarity at which two answers belong together.
    """

    __slots__ = ("embed", "threshold")

    def __init__(self, embed: Embed, threshold: float) -> None:
        self.embed = embed
        self.threshold = threshold

    async def __call__(
        self, answers: Sequence[str], _members: Sequence[Member] = (), /
    ) -> Agreement:
        """Embed, cluster, and choose (agreement: the largest cluster's share)."""
        if not answers:
            msg = "resonance of no answers"
            raise ValueError(msg)
        vectors = list(await self.embed(list(answers)))
        if len(vectors) != len(answers):
            msg = f"the embedding model gave {len(vectors)} vectors for {len(answers)} answers"
            raise ValueError(msg)
        return resonate(answers, vectors, self.threshold)
