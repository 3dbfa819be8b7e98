"""Aggregators: many members' answers to one, chosen by the output type. Pure functions.

Every aggregator takes the extracted answers (``values``, in member order) and returns a
:class:`Verdict`: the answer, which answers support it, the groups they form, which were
rejected as outliers, and the winning share. Indices refer to positions in ``values``.

* categorical: :func:`plurality`, :func:`weighted_vote` (log-odds weights
  ``ln((K-1)p/(1-p))`` from each member's measured accuracy, optimal for independent
  voters); ties go to the answer whose first vote came first (deterministic);
* numeric: :func:`aggregate_numeric` with ``median``, ``trimmed_mean`` or ``mad``
  (Iglewicz-Hoaglin ``M = 0.6745(x - median)/MAD``, reject ``|M| > 3.5``; when MAD is 0,
  ``(x - median)/(1.2533 MeanAD)``);
* structured: :func:`fieldwise` (a vote per field, the median for numbers, recursively),
  after :func:`schema_errors` rejected answers that do not fit the schema;
* free text: :func:`cluster` over a similarity matrix (agglomerative, average linkage,
  a threshold), from embeddings (:func:`cosine_matrix`) or, without an embedding model,
  from :func:`lexical_matrix`; the answer is the largest cluster's representative;
* a user's own: :func:`custom`.
"""

from __future__ import annotations

import difflib
import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from actors.orchestration.consensus._extract import normalise

__all__ = [
    "MAD_CUTOFF",
    "MEANAD_SCALE",
    "Verdict",
    "aggregate_numeric",
    "cluster",
    "cosine_matrix",
    "custom",
    "fieldwise",
    "lexical_matrix",
    "lexical_similarity",
    "log_odds_weight",
    "mad_scores",
    "plurality",
    "schema_errors",
    "trimmed_mean",
    "vote",
    "weighted_vote",
]

MAD_CUTOFF = 3.5
"""Iglewicz and Hoaglin's cut-off for the modified z-score."""
MEANAD_SCALE = 1.2533
"""sqrt(pi/2): scales the mean absolute deviation when MAD is 0."""


class Verdict(msgspec.Struct, frozen=True):
    """What an aggregator concluded (a frozen struct: cheap to make, once per consensus).

    Attributes:
        answer: The aggregated answer (``None``: there was nothing to aggregate).
        support: Indices of the answers that agree with it.
        groups: The answers grouped (equal answers, clusters, kept/rejected), largest
            first; each a tuple of indices.
        outliers: Indices rejected as outliers (numeric) or not fitting (structured).
        share: The winning weight over all weight (the raw agreement, weighted).
        representative: The index whose answer is the verdict (``None``: a computed one,
            such as a median or a mean).
        fields: Per field of a structured answer, the share agreeing with it.
        method: Which aggregator decided.
    """

    answer: Any
    support: tuple[int, ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()
    outliers: tuple[int, ...] = ()
    share: float = 0.0
    representative: int | None = None
    fields: Mapping[str, float] = msgspec.field(default_factory=dict)
    method: str = ""


def _key(value: Any) -> Any:
    """A hashable key under which equal answers meet (objects by their sorted JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) or value is None:
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _groups(values: Sequence[Any]) -> dict[Any, list[int]]:
    groups: dict[Any, list[int]] = {}
    for index, value in enumerate(values):
        key = value if type(value) is str else _key(value)
        members = groups.get(key)
        if members is None:
            groups[key] = [index]
        else:
            members.append(index)
    return groups


def vote(values: Sequence[Any], weights: Sequence[float], method: str = "vote") -> Verdict:
    """A vote in which each answer counts its own ``weight``.

    The highest total wins, then the most votes, then the answer voted first
    (:func:`plurality` and :func:`weighted_vote` are this vote).
    """
    if len(weights) != len(values):
        msg = f"vote: {len(weights)} weights for {len(values)} answers"
        raise ValueError(msg)
    if not values:
        return Verdict(answer=None, method=method)
    groups = _groups(values)
    totals: dict[Any, float] = {}
    for key, members in groups.items():
        total = 0.0
        for index in members:
            total += weights[index]
        totals[key] = total
    # Highest weight, then most votes, then the answer voted first: deterministic.
    ranked = (
        sorted(groups, key=lambda k: (-totals[k], -len(groups[k]), groups[k][0]))
        if len(groups) > 1
        else list(groups)
    )
    winner = groups[ranked[0]]
    total = sum(weights)
    share = totals[ranked[0]] / total if total > 0 else len(winner) / len(values)
    return Verdict(
        answer=values[winner[0]],
        support=tuple(winner),
        groups=tuple([tuple(groups[k]) for k in ranked]),
        share=share,
        representative=winner[0],
        method=method,
    )


def plurality(values: Sequence[Any]) -> Verdict:
    """The most frequent answer; a tie goes to the answer whose first vote came first.

    :func:`vote` with every weight 1, counted without the weights.
    """
    if not values:
        return Verdict(answer=None, method="plurality")
    groups = _groups(values)
    # Groups are in the order of their first votes and the sort is stable: the most
    # votes first, then the answer voted first.
    ranked = list(groups.values())
    if len(ranked) > 1:
        ranked.sort(key=len, reverse=True)
    winner = ranked[0]
    return Verdict(
        answer=values[winner[0]],
        support=tuple(winner),
        groups=tuple([tuple(g) for g in ranked]),
        share=len(winner) / len(values),
        representative=winner[0],
        method="plurality",
    )


def log_odds_weight(accuracy: float, classes: int = 2) -> float:
    """``ln((K-1)p/(1-p))``: the optimal weight of an independent voter of accuracy ``p``.

    ``p`` is clipped to [0.01, 0.99]; a voter no better than chance (``p <= 1/K``) gets
    weight 0, not a negative one (it is not trusted to be wrong either).
    """
    k = max(2, classes)
    p = min(0.99, max(0.01, accuracy))
    return max(0.0, math.log((k - 1) * p / (1 - p)))


def weighted_vote(
    values: Sequence[Any], accuracies: Sequence[float | None], classes: int = 2
) -> Verdict:
    """A vote weighted by each member's log-odds (:func:`log_odds_weight`).

    A member of unknown accuracy (``None``) weighs as the mean of the known ones (or
    1 when none is known, which makes this a plurality vote).
    """
    known = [a for a in accuracies if a is not None]
    weights = [log_odds_weight(a, classes) for a in known]
    fill = statistics.fmean(weights) if weights else 1.0
    each = [fill if a is None else log_odds_weight(a, classes) for a in accuracies]
    if not any(w > 0 for w in each):
        each = [1.0] * len(values)
    return vote(values, each, "weighted")


# ---- numbers -----------------------------------------------------------------------------


def mad_scores(values: Sequence[float]) -> list[float]:
    """Each value's modified z-score; with MAD 0, the MeanAD fallback (0s when all equal)."""
    if not values:
        return []
    middle = statistics.median(values)
    deviations = [abs(v - middle) for v in values]
    mad = statistics.median(deviations)
    if mad > 0:
        return [0.6745 * (v - middle) / mad for v in values]
    mean_ad = statistics.fmean(deviations)
    if mean_ad == 0:
        return [0.0] * len(values)
    return [(v - middle) / (MEANAD_SCALE * mean_ad) for v in values]


def trimmed_mean(values: Sequence[float], proportion: float = 0.2) -> float:
    """The mean of the values left after cutting ``proportion`` off each end."""
    ordered = sorted(values)
    cut = int(len(ordered) * proportion)
    kept = ordered[cut : len(ordered) - cut] or ordered
    return statistics.fmean(kept)


def aggregate_numeric(
    values: Sequence[float],
    method: str = "mad",
    *,
    cutoff: float = MAD_CUTOFF,
    trim: float = 0.2,
) -> Verdict:
    """Numbers to one: ``median``, ``trimmed_mean``, or ``mad`` (outliers out, then the median).

    ``support`` is the answers kept (all of them for ``median`` and ``trimmed_mean``,
    except those the MAD rule would reject, which are reported as ``outliers`` in every
    method so that the result shows them).
    """
    numbers = [float(v) for v in values]
    if not numbers:
        return Verdict(answer=None, method=method)
    scores = mad_scores(numbers)
    rejected = tuple(i for i, s in enumerate(scores) if abs(s) > cutoff)
    kept = tuple(i for i in range(len(numbers)) if i not in rejected)
    if method == "median":
        answer = statistics.median(numbers)
    elif method == "trimmed_mean":
        answer = trimmed_mean(numbers, trim)
    elif method == "mad":
        answer = statistics.median(numbers[i] for i in kept)
    else:
        msg = f"unknown numeric aggregator {method!r} (known: median, trimmed_mean, mad)"
        raise ValueError(msg)
    representative = next((i for i in kept if numbers[i] == answer), None)
    groups = (kept, rejected) if rejected else (kept,)
    return Verdict(
        answer=answer,
        support=kept,
        groups=groups,
        outliers=rejected,
        share=len(kept) / len(numbers),
        representative=representative,
        method=method,
    )


# ---- structured --------------------------------------------------------------------------

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def schema_errors(value: Any, schema: Mapping[str, Any], path: str = "$") -> list[str]:
    """What in ``value`` does not fit ``schema`` (a JSON Schema subset), each with its path.

    Checked: ``type`` (one or a list), ``enum``, ``required``, ``properties`` (recursively)
    and ``items``. An empty list: it fits.
    """
    errors: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        allowed = tuple(t for k in kinds for t in _JSON_TYPES.get(k, ()))
        is_bool = isinstance(value, bool)
        fits = isinstance(value, allowed) and not (is_bool and bool not in allowed)
        if not fits:
            return [f"{path}: expected {' or '.join(kinds)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        errors += [f"{path}.{k}: required" for k in schema.get("required", ()) if k not in value]
        for key, sub in (schema.get("properties") or {}).items():
            if key in value and isinstance(sub, Mapping):
                errors += schema_errors(value[key], sub, f"{path}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{index}]")
    return errors


def _field_value(values: list[Any]) -> tuple[Any, float]:
    """One field's answer and its agreement share (numbers: median; objects: recursive)."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if numbers and len(numbers) == len(values):
        middle = statistics.median(numbers)
        if all(isinstance(v, int) for v in numbers) and middle == int(middle):
            middle = int(middle)
        agree = sum(1 for v in numbers if v == middle)
        return middle, agree / len(values)
    if values and all(isinstance(v, dict) for v in values):
        merged = fieldwise(values)
        agree = sum(1 for v in values if _key(v) == _key(merged.answer))
        return merged.answer, agree / len(values)
    verdict = plurality(values)
    return verdict.answer, verdict.share


def fieldwise(objects: Sequence[Any], schema: Mapping[str, Any] | None = None) -> Verdict:
    """JSON objects to one, field by field: a vote (the median for numbers) per field.

    Answers that are not objects, or that do not fit ``schema``, are ``outliers`` and take
    no part. A field present in fewer than half the objects is left out. ``support`` is
    the objects equal to the result on every field it has.
    """
    outliers = tuple(
        i
        for i, o in enumerate(objects)
        if not isinstance(o, dict) or (schema is not None and schema_errors(o, schema))
    )
    kept = [i for i in range(len(objects)) if i not in outliers]
    if not kept:
        return Verdict(answer=None, outliers=outliers, method="fieldwise")
    keys: list[str] = []
    for i in kept:
        keys += [k for k in objects[i] if k not in keys]
    answer: dict[str, Any] = {}
    shares: dict[str, float] = {}
    for key in keys:
        present = [objects[i][key] for i in kept if key in objects[i]]
        if len(present) * 2 < len(kept):
            continue
        answer[key], shares[key] = _field_value(present)
    support = tuple(
        i for i in kept if all(_key(objects[i].get(k)) == _key(v) for k, v in answer.items())
    )
    rest = tuple(i for i in kept if i not in support)
    groups = tuple(g for g in (support, rest) if g)
    representative = support[0] if support else None
    return Verdict(
        answer=answer,
        support=support,
        groups=groups,
        outliers=outliers,
        share=len(support) / len(objects),
        representative=representative,
        fields=shares,
        method="fieldwise",
    )


# ---- free text ---------------------------------------------------------------------------


def cosine_matrix(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """Pairwise cosine similarities (a zero vector is similar to nothing)."""
    norms = [math.sqrt(sum(x * x for x in v)) for v in vectors]
    size = len(vectors)
    matrix = [[1.0] * size for _ in range(size)]
    for i in range(size):
        for j in range(i + 1, size):
            denominator = norms[i] * norms[j]
            dot = sum(a * b for a, b in zip(vectors[i], vectors[j], strict=False))
            value = dot / denominator if denominator else 0.0
            matrix[i][j] = matrix[j][i] = value
    return matrix


def lexical_similarity(a: str, b: str) -> float:
    """The difflib ratio over the first 2000 normalised characters (1.0: the same text)."""
    left, right = normalise(a)[:2000], normalise(b)[:2000]
    if left == right:
        return 1.0
    return difflib.SequenceMatcher(None, left, right, autojunk=False).ratio()


def lexical_matrix(texts: Sequence[str]) -> list[list[float]]:
    """Pairwise :func:`lexical_similarity`: the fallback when no embedding model is there."""
    size = len(texts)
    matrix = [[1.0] * size for _ in range(size)]
    for i in range(size):
        for j in range(i + 1, size):
            matrix[i][j] = matrix[j][i] = lexical_similarity(texts[i], texts[j])
    return matrix


def cluster(
    values: Sequence[Any], similarity: Sequence[Sequence[float]], threshold: float
) -> Verdict:
    """Agglomerative clustering (average linkage): merge while clusters are ``threshold`` alike.

    The answer is the largest cluster's representative: its member most similar, on
    average, to the others in it. Ties (of size, of similarity) go to the earlier member.
    """
    size = len(values)
    if size == 0:
        return Verdict(answer=None, method="cluster")
    clusters: list[list[int]] = [[i] for i in range(size)]
    while len(clusters) > 1:
        best: tuple[float, int, int] | None = None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                pairs = [similarity[i][j] for i in clusters[a] for j in clusters[b]]
                link = sum(pairs) / len(pairs)
                if link >= threshold and (best is None or link > best[0]):
                    best = (link, a, b)
        if best is None:
            break
        _, a, b = best
        clusters[a] = sorted(clusters[a] + clusters[b])
        del clusters[b]
    clusters.sort(key=lambda c: (-len(c), c[0]))
    largest = clusters[0]

    def centrality(i: int) -> float:
        others = [similarity[i][j] for j in largest if j != i]
        return sum(others) / len(others) if others else 1.0

    representative = min(largest, key=lambda i: (-centrality(i), i))
    return Verdict(
        answer=values[representative],
        support=tuple(largest),
        groups=tuple(tuple(c) for c in clusters),
        share=len(largest) / size,
        representative=representative,
        method="cluster",
    )


def custom(function: Callable[[Sequence[Any]], Any], values: Sequence[Any]) -> Verdict:
    """A user's aggregator: it returns a :class:`Verdict`, or just the answer.

    For a bare answer, ``support`` is the answers equal to it.
    """
    result = function(values)
    if isinstance(result, Verdict):
        return result
    key = _key(result)
    support = tuple(i for i, v in enumerate(values) if _key(v) == key)
    rest = tuple(i for i in range(len(values)) if i not in support)
    return Verdict(
        answer=result,
        support=support,
        groups=tuple(g for g in (support, rest) if g),
        share=len(support) / len(values) if values else 0.0,
        representative=support[0] if support else None,
        method="custom",
    )
