"""Confidence from statistics over the members' answers, never from a model's self-report.

* :func:`wilson_lower`: the Wilson score lower bound of the winning answer's share
  (7 of 10 agreeing is 0.397 at 95%, not 0.7: ten answers are few);
* :func:`semantic_entropy`: ``-sum p_c ln p_c`` over the clusters' sizes (0 when all
  agree, ln n when all differ); it needs no log-probabilities;
* :func:`numeric_spread`: for numbers, the scaled MAD and the relative spread;
* :func:`adaptive_stop` and :func:`member_count`: when enough members have answered,
  and how many to ask for a task of a given complexity.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

__all__ = [
    "Z_95",
    "adaptive_stop",
    "member_count",
    "numeric_spread",
    "semantic_entropy",
    "wilson_lower",
]

Z_95 = 1.959963984540054
"""The normal quantile of a two-sided 95% interval."""


def wilson_lower(successes: float, total: float, z: float = Z_95) -> float:
    """The Wilson score interval's lower bound for ``successes`` out of ``total``.

    Returns 0 for no observations. ``successes`` may be fractional (a weighted share).
    """
    if total <= 0:
        return 0.0
    p = min(1.0, max(0.0, successes / total))
    z2 = z * z
    centre = p + z2 / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return max(0.0, (centre - margin) / (1 + z2 / total))


def semantic_entropy(sizes: Iterable[int]) -> float:
    """Discrete semantic entropy of cluster sizes: ``[5, 5]`` is ln 2 = 0.693, ``[10]`` is 0."""
    counts = [s for s in sizes if s > 0]
    total = sum(counts)
    if total == 0:
        return 0.0
    entropy = 0.0
    for count in counts:
        p = count / total
        entropy -= p * math.log(p)
    return max(0.0, entropy)


def numeric_spread(values: Sequence[float]) -> tuple[float, float]:
    """``(scaled MAD, relative spread)``: 1.4826·MAD, and that over ``|median|`` (0 when 0)."""
    if not values:
        return 0.0, 0.0
    middle = statistics.median(values)
    mad = statistics.median(abs(v - middle) for v in values) * 1.4826
    return mad, (mad / abs(middle) if middle else 0.0)


def adaptive_stop(counts: Sequence[float], planned: int) -> bool:
    """Whether the leading answer can no longer be overtaken by the members still to answer.

    ``counts`` are the answers' votes so far; ``planned`` the members that will answer in
    all. Once the leader's lead exceeds what the missing members could give the runner
    up, the full vote's winner is already known (3 of 5 agreeing stops a vote of five).
    """
    if not counts:
        return False
    ordered = sorted(counts, reverse=True)
    leader = ordered[0]
    runner_up = ordered[1] if len(ordered) > 1 else 0.0
    missing = max(0, planned - sum(counts))
    return leader > runner_up + missing


def member_count(complexity: float, minimum: int = 3, maximum: int = 7) -> int:
    """How many members to ask: from ``minimum`` (trivial) to ``maximum`` (complexity 1), odd.

    An odd count avoids two-way ties in a vote.
    """
    maximum = max(maximum, minimum)
    share = min(1.0, max(0.0, complexity))
    count = minimum + round(share * (maximum - minimum))
    if count % 2 == 0:
        count = count + 1 if count < maximum else count - 1
    return max(1, min(maximum, max(minimum, count)) if count >= 1 else minimum)
