"""From extracted answers to a verdict and its confidence, under a spec. Pure functions.

The Consensus actor calls these once the answers are in; benchmarks and tests call
them directly. :func:`aggregate` picks the aggregator by the spec (its ``aggregator``,
else the output type's default); :func:`assess` turns a verdict into the statistics
the result reports; :func:`choose_diverse` picks members from a ranked list so that
different model families and hosts come first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from actors.orchestration.consensus._aggregate import (
    Verdict,
    aggregate_numeric,
    cluster,
    custom,
    fieldwise,
    lexical_matrix,
    plurality,
    weighted_vote,
)
from actors.orchestration.consensus._confidence import (
    numeric_spread,
    semantic_entropy,
    wilson_lower,
)
from actors.orchestration.consensus._messages import DEFAULT_AGGREGATOR, ConsensusSpec

__all__ = ["Assessment", "aggregate", "assess", "choose_diverse", "family_of"]

_NUMERIC = ("median", "trimmed_mean", "mad")


def aggregate(  # noqa: PLR0911 - one return per aggregator
    spec: ConsensusSpec,
    values: Sequence[Any],
    *,
    accuracies: Sequence[float | None] = (),
    similarity: Sequence[Sequence[float]] | None = None,
    texts: Sequence[str] = (),
) -> Verdict:
    """The verdict over ``values`` (extracted answers, in member order) under ``spec``.

    Args:
        spec: The consensus spec (its aggregator and output type).
        values: The extracted answers.
        accuracies: Per value, the member's accuracy (weighted votes); ``None`` unknown.
        similarity: Free text: the pairwise similarity matrix (embeddings); without it,
            the lexical one over ``texts`` (or the values) is used.
        texts: Free text: the answers' texts, for lexical similarity.
    """
    aggregator = spec.aggregator
    if aggregator is not None and not isinstance(aggregator, str):
        return custom(aggregator, values)
    method = spec.method
    if method in ("synthesis", "debate"):
        method = DEFAULT_AGGREGATOR[spec.output]
    if spec.output == "numeric":
        return aggregate_numeric(values, method if method in _NUMERIC else "mad")
    if spec.output == "structured":
        return fieldwise(values, spec.schema)
    if spec.output == "text" or method == "cluster":
        if similarity is not None:
            return cluster(values, similarity, spec.similarity)
        words = [str(v) for v in (texts or values)]
        return cluster(values, lexical_matrix(words), spec.lexical_similarity)
    if method == "weighted":
        classes = spec.classes or (len(spec.choices) if spec.choices else 2)
        known = list(accuracies) or [None] * len(values)
        return weighted_vote(values, known, classes)
    return plurality(values)


class Assessment(msgspec.Struct, frozen=True):
    """The statistics of a verdict: how sure the consensus is.

    Attributes:
        confidence: Wilson 95% lower bound of the supporting share.
        agreement: The winning (weighted) share.
        entropy: Discrete semantic entropy over the groups' sizes.
        spread: Numbers: the scaled MAD (``None`` for other outputs).
        relative_spread: Numbers: the spread over ``|answer|``.
        low: ``confidence < threshold``.
    """

    confidence: float
    agreement: float
    entropy: float
    spread: float | None
    relative_spread: float | None
    low: bool


def assess(
    verdict: Verdict, count: int, threshold: float, *, numbers: Sequence[float] | None = None
) -> Assessment:
    """How sure ``verdict`` is, over ``count`` answers (members that answered nothing usable count).

    For numbers the spread is over the answers the verdict kept.
    """
    sizes = tuple([len(g) for g in verdict.groups])
    missing = count - sum(sizes) - len(verdict.outliers)
    if missing > 0:
        sizes += (1,) * missing
    confidence, entropy = _statistics(len(verdict.support), count, sizes)
    spread = relative = None
    if numbers is not None:
        kept = [numbers[i] for i in verdict.support] or list(numbers)
        spread, relative = numeric_spread(kept)
    return Assessment(
        confidence=confidence,
        agreement=verdict.share,
        entropy=entropy,
        spread=spread,
        relative_spread=relative,
        low=confidence < threshold,
    )


@functools.lru_cache(maxsize=1024)
def _statistics(support: int, count: int, sizes: tuple[int, ...]) -> tuple[float, float]:
    """The Wilson lower bound and the semantic entropy: a few shapes recur, computed once."""
    return wilson_lower(support, count), semantic_entropy(sizes)


_FAMILY = re.compile(r"[a-z]+")


def family_of(model: str) -> str:
    """A model's family from its name: ``llama3.2:8b`` is ``llama``, ``gpt-4o`` is ``gpt``."""
    name = model.rsplit("/", 1)[-1].lower()
    found = _FAMILY.match(name)
    return found.group(0) if found else name


def choose_diverse(ranked: Sequence[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    """``count`` ``(host, model)`` pairs from ``ranked`` (best first), other families first.

    Correlated models agree on wrong answers, so each pick is the best-ranked model whose
    family is least represented so far, then whose host is; repeats come only when
    there are fewer distinct models than ``count`` (the same model, sampled again).
    """
    chosen: list[tuple[str, str]] = []
    if not ranked or count < 1:
        return chosen
    families: dict[str, int] = {}
    hosts: dict[str, int] = {}
    left = list(ranked)
    while len(chosen) < count and left:
        best = min(
            range(len(left)),
            key=lambda i: (families.get(family_of(left[i][1]), 0), hosts.get(left[i][0], 0), i),
        )
        host, model = left.pop(best)
        chosen.append((host, model))
        families[family_of(model)] = families.get(family_of(model), 0) + 1
        hosts[host] = hosts.get(host, 0) + 1
    index = 0
    while len(chosen) < count:
        chosen.append(chosen[index % len(ranked)])
        index += 1
    return chosen
