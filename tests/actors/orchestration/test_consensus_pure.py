"""Consensus policy as pure functions: extraction, aggregators, confidence, adaptive stopping.

The expected figures are the reference's acceptance figures (consensus-selection-fallback
section 6) where it gives them.
"""

from __future__ import annotations

import math

import pytest

from actors.orchestration.consensus import (
    ConsensusSpec,
    Member,
    MemberAnswer,
    Quorum,
    Verdict,
    adaptive_stop,
    aggregate,
    aggregate_numeric,
    assess,
    choose_diverse,
    cluster,
    cosine_matrix,
    extract,
    extract_boxed,
    extract_choice,
    extract_json,
    extract_number,
    family_of,
    fieldwise,
    first_line,
    lexical_matrix,
    log_odds_weight,
    mad_scores,
    member_count,
    numeric_spread,
    plurality,
    schema_errors,
    semantic_entropy,
    spec_problems,
    stated_confidence,
    trimmed_mean,
    weighted_vote,
    wilson_lower,
)
from actors.orchestration.consensus._outcome import _marked

# ---- extraction ----------------------------------------------------------------------------


def test_numbers_come_from_boxed_first_then_the_last_number() -> None:
    r"""``\boxed{}`` wins; otherwise the last number, thousands separators dropped."""
    assert extract_number("First 3 apples, then 4: so \\boxed{12} in all, not 7") == 12.0
    assert extract_number("3 + 4 = 7, times 2 is 1,234.5") == 1234.5
    assert extract_number("no digits here") is None
    assert extract_number("it is -0.25") == -0.25


def test_boxed_handles_nested_braces_and_is_none_without_one() -> None:
    r"""The last ``\boxed{...}``'s content, nested braces kept."""
    assert extract_boxed(r"so \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert extract_boxed("plain") is None


def test_a_choice_named_in_the_answer_line_wins_over_one_merely_mentioned() -> None:
    """A choice in the answer line ("Answer: C") beats an earlier mention of B."""
    assert extract_choice("B looks tempting. Answer: C", ["A", "B", "C"]) == "C"
    assert extract_choice("I'd say yes, definitely YES.", ["yes", "no"]) == "yes"
    assert extract_choice("Not sure at all", ["yes", "no"]) is None
    assert extract_choice("Bob says A", ["A", "B"]) == "A"  # "Bob" is no whole-word B


def test_first_line_and_categorical_default_normalise() -> None:
    """Case, emphasis and trailing punctuation do not split equal answers."""
    assert first_line("\n  **Paris**.\nBecause...") == "paris"
    assert extract("The answer is: Paris.", "categorical") == "paris"
    assert extract("Paris", "categorical") == "paris"


def test_json_is_found_fenced_or_bare() -> None:
    """A fenced block first, then the first object in the prose."""
    assert extract_json('Here:\n```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('Sure! {"city": "Paris", "pop": 2} hope that helps') == {
        "city": "Paris",
        "pop": 2,
    }
    assert extract_json("nothing") is None


def test_extraction_by_name_or_function_and_unknown_names_fail() -> None:
    """A named extraction, a user's function, and a clear error for a typo."""
    assert extract("x \\boxed{42}", "numeric", how="boxed") == 42.0
    assert extract("ANSWER", "categorical", how=str.lower) == "answer"
    with pytest.raises(ValueError, match="unknown extraction 'boxd'"):
        extract("x", "categorical", how="boxd")


def test_verbalised_confidence_is_read_as_telemetry() -> None:
    """``confidence: 90%`` is 0.9; ``85`` is read as a percentage; none is None, not 0.5."""
    assert stated_confidence("Paris. Confidence: 90%") == pytest.approx(0.9)
    assert stated_confidence("confidence = 85") == pytest.approx(0.85)
    assert stated_confidence("confidence: 0.7") == pytest.approx(0.7)
    assert stated_confidence("Paris") is None


# ---- categorical -----------------------------------------------------------------------------


def test_plurality_breaks_ties_by_the_first_vote() -> None:
    """Two against two: the answer voted first wins, every time."""
    verdict = plurality(["b", "a", "a", "b", "c"])
    assert verdict.answer == "b"
    assert verdict.support == (0, 3)
    assert verdict.groups == ((0, 3), (1, 2), (4,))
    assert verdict.share == pytest.approx(0.4)


def test_log_odds_weights_match_the_reference() -> None:
    """Log-odds: ln 9 = 2.20 for p=0.9 beats 4 ln 1.5 = 1.62; K classes: ln((K-1)p/(1-p))."""
    assert log_odds_weight(0.9) == pytest.approx(math.log(9))
    assert 4 * log_odds_weight(0.6) == pytest.approx(4 * math.log(1.5))
    assert log_odds_weight(0.4, classes=4) == pytest.approx(math.log(3 * 0.4 / 0.6))
    assert log_odds_weight(0.3) == 0.0  # worse than chance: no say, not a negative one


def test_one_strong_voter_outweighs_four_weak_ones() -> None:
    """p=[.9,.6,.6,.6,.6]: the .9 member's answer beats four .6 members' (2.20 > 1.62)."""
    verdict = weighted_vote(["x", "y", "y", "y", "y"], [0.9, 0.6, 0.6, 0.6, 0.6])
    assert verdict.answer == "x"
    assert plurality(["x", "y", "y", "y", "y"]).answer == "y"


def test_unknown_accuracies_weigh_as_the_mean_and_none_known_is_plurality() -> None:
    """Weighted with nothing known is a plain vote."""
    assert weighted_vote(["a", "b", "b"], [None, None, None]).answer == "b"
    assert weighted_vote(["a", "b", "b"], [0.99, None, None]).answer == "b"


# ---- numbers -----------------------------------------------------------------------------


def test_mad_rejects_the_wild_answer_with_m_about_303() -> None:
    """[10, 10.2, 9.9, 10.1, 55]: median 10.1, MAD 0.1, M(55) = 302.8, rejected."""
    values = [10, 10.2, 9.9, 10.1, 55]
    scores = mad_scores(values)
    assert scores[4] == pytest.approx(0.6745 * 44.9 / 0.1, rel=1e-3)
    verdict = aggregate_numeric(values, "mad")
    assert verdict.answer == pytest.approx(10.05)
    assert verdict.outliers == (4,)
    assert sum(values) / 5 == pytest.approx(19.04)
    assert trimmed_mean(values, 0.2) == pytest.approx(10.1)


def test_mad_zero_falls_back_to_the_mean_absolute_deviation() -> None:
    """[10 x 7, 100]: MAD is 0, the MeanAD fallback scores 100 at 6.38 and rejects it."""
    values = [10.0] * 7 + [100.0]
    assert mad_scores(values)[-1] == pytest.approx(6.38, abs=0.01)
    verdict = aggregate_numeric(values, "mad")
    assert verdict.answer == 10.0
    assert verdict.outliers == (7,)
    assert aggregate_numeric([5.0, 5.0, 5.0], "mad").outliers == ()


def test_median_and_trimmed_mean_still_report_outliers() -> None:
    """Every numeric method names what MAD would reject; an unknown method is an error."""
    verdict = aggregate_numeric([1, 2, 3, 1000], "median")
    assert verdict.answer == 2.5
    assert verdict.outliers == (3,)
    with pytest.raises(ValueError, match="unknown numeric aggregator"):
        aggregate_numeric([1.0], "mode")


# ---- structured ----------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["city", "population"],
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
}


def test_fieldwise_votes_strings_and_takes_the_median_of_numbers() -> None:
    """Field by field; an answer that does not fit the schema is an outlier."""
    answers = [
        {"city": "Paris", "population": 2100},
        {"city": "Paris", "population": 2200},
        {"city": "Lyon", "population": 2150},
        {"city": "Paris"},  # population missing: does not fit
    ]
    verdict = fieldwise(answers, SCHEMA)
    assert verdict.answer == {"city": "Paris", "population": 2150}
    assert verdict.outliers == (3,)
    assert verdict.fields["city"] == pytest.approx(2 / 3)


def test_schema_errors_name_the_path() -> None:
    """A wrong type is reported at its JSON path."""
    assert schema_errors({"city": 3, "population": 1}, SCHEMA) == [
        "$.city: expected string, got int"
    ]
    assert schema_errors({"city": "x", "population": True}, SCHEMA) == [
        "$.population: expected integer, got bool"
    ]


# ---- free text ----------------------------------------------------------------------------


def test_clusters_from_vectors_pick_the_largest_clusters_central_member() -> None:
    """Three near vectors form the cluster; the odd one stays alone."""
    vectors = [[1.0, 0.0], [0.98, 0.2], [0.0, 1.0], [0.95, -0.1]]
    verdict = cluster(["a", "b", "c", "d"], cosine_matrix(vectors), 0.75)
    assert verdict.support == (0, 1, 3)
    assert verdict.answer == "a"  # the most similar to the other two
    assert verdict.groups[-1] == (2,)


def test_lexical_clustering_is_the_fallback_without_embeddings() -> None:
    """Near-identical texts cluster by difflib ratio; a different one does not."""
    texts = ["The capital is Paris.", "the capital is paris", "It is Berlin, surely."]
    verdict = cluster(texts, lexical_matrix(texts), 0.5)
    assert verdict.support == (0, 1)


# ---- confidence -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "expected"), [(7, 10, 0.397), (5, 5, 0.566), (4, 5, 0.376), (0, 0, 0.0)]
)
def test_wilson_lower_bounds_match_the_reference(k: int, n: int, expected: float) -> None:
    """7/10 is 0.397 (flagged below 0.5), 5/5 is 0.566, 4/5 is 0.376."""
    assert wilson_lower(k, n) == pytest.approx(expected, abs=0.001)


@pytest.mark.parametrize(
    ("sizes", "expected"), [([10], 0.0), ([5, 5], 0.693), ([4, 3, 3], 1.089), ([1] * 10, 2.303)]
)
def test_semantic_entropy_matches_the_reference(sizes: list[int], expected: float) -> None:
    """[10] is 0, [5,5] is ln 2, ten singletons ln 10."""
    assert semantic_entropy(sizes) == pytest.approx(expected, abs=0.001)


def test_numeric_spread_is_the_scaled_mad() -> None:
    """1.4826 MAD and relative to the median."""
    spread, relative = numeric_spread([10, 10.2, 9.9, 10.1])
    assert spread == pytest.approx(1.4826 * 0.1, rel=1e-6)
    assert relative == pytest.approx(spread / 10.05)


def test_assess_flags_a_low_consensus() -> None:
    """Three of five agreeing is 0.23 at 95%: below a 0.5 threshold."""
    verdict = plurality(["a", "a", "a", "b", "c"])
    low = assess(verdict, 5, 0.5)
    assert low.low
    assert low.confidence == pytest.approx(wilson_lower(3, 5))
    assert not assess(plurality(["a"] * 10), 10, 0.5).low


def test_adaptive_stop_once_the_leader_cannot_be_overtaken() -> None:
    """3 of 5 agreeing stops a vote of five; 2-0 with three to come does not."""
    assert adaptive_stop([3], 5)
    assert not adaptive_stop([2], 5)
    assert adaptive_stop([3, 1], 5)
    assert not adaptive_stop([2, 1], 5)
    assert not adaptive_stop([], 5)


def test_member_count_scales_with_complexity_and_stays_odd() -> None:
    """Trivial: the minimum; complexity 1: the maximum; odd in between."""
    assert member_count(0.0, 3, 7) == 3
    assert member_count(1.0, 3, 7) == 7
    assert member_count(0.5, 3, 7) == 5
    assert member_count(0.4, 3, 8) % 2 == 1


# ---- member choice -----------------------------------------------------------------------


def test_diverse_members_take_other_families_and_hosts_first() -> None:
    """Two llamas ranked first: the second llama waits until the other families are in."""
    ranked = [("a", "llama3.2"), ("a", "llama3.1:8b"), ("b", "qwen2.5"), ("c", "gpt-4o")]
    assert choose_diverse(ranked, 3) == [("a", "llama3.2"), ("b", "qwen2.5"), ("c", "gpt-4o")]
    assert choose_diverse([("a", "m")], 3) == [("a", "m")] * 3
    assert family_of("ollama/qwen2.5:7b") == "qwen"


# ---- the spec -------------------------------------------------------------------------------


def test_spec_problems_name_each_field() -> None:
    """A wrong aggregator for the output, a twice-listed member, a fallback without model."""
    spec = ConsensusSpec(
        members=(Member(model="m"), Member(model="m")),
        output="numeric",
        aggregator="plurality",
        quorum=Quorum(on_short="fallback"),
        threshold=2.0,
    )
    problems = "\n".join(spec_problems(spec))
    assert "aggregator 'plurality' does not serve numeric answers" in problems
    assert "members: m appear twice" in problems
    assert "quorum.fallback names no model" in problems
    assert "threshold must be 0 to 1" in problems
    assert spec_problems(ConsensusSpec()) == []
    assert "needs aggregator_model" in "".join(spec_problems(ConsensusSpec(aggregator="synthesis")))


def test_aggregate_applies_the_specs_aggregator_or_the_outputs_default() -> None:
    """A user's function, the numeric default (MAD), the categorical default (weighted)."""
    spec = ConsensusSpec(aggregator=max)
    assert aggregate(spec, ["a", "c", "b"]).answer == "c"
    numeric = aggregate(ConsensusSpec(output="numeric"), [1.0] * 5 + [50.0])
    assert numeric.method == "mad"
    assert numeric.outliers == (5,)
    weighted = aggregate(ConsensusSpec(), ["x", "y", "y"], accuracies=[0.95, 0.55, 0.55])
    assert weighted.answer == "x"
    assert isinstance(weighted, Verdict)


def test_provenance_marks_the_aggregated_answers_in_any_order() -> None:
    """Every answer is reported once; the aggregated ones marked, met in order or not."""
    old = MemberAnswer(member="a", ok=True, value="x", cost_usd=0.5, round=1)
    b = MemberAnswer(member="b", ok=True, value="y", cost_usd=0.25, round=2)
    failed = MemberAnswer(member="c", error_kind="timeout", round=2)
    d = MemberAnswer(member="d", ok=True, value="y", round=2)
    verdict = Verdict(answer="y", support=(0, 1), groups=((0, 1),))
    for answers in ([b, d], [d, b]):
        members, labels, cost = _marked([old, b, failed, d], answers, verdict)
        assert [m.member for m in members] == ["a", "b", "c", "d"]
        assert [m.agrees for m in members] == [False, True, False, True]
        assert [m.cluster for m in members] == [None, 0, None, 0]
        assert labels == [a.member for a in answers]
        assert cost == 0.75
    _, _, nothing = _marked([failed], [], Verdict(answer=None))
    assert nothing is None
