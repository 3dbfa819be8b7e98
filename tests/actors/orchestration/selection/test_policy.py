"""Choosing a model: constraints with reasons, policies, priors and discounted Thompson sampling.

Pure: a catalog filled by hand and a seeded random source, no actors. The bandit figures
are the reference's (consensus-selection-fallback.md, acceptance figures 9 and 10).
"""

from __future__ import annotations

import random
import statistics

import pytest

from actors.llm import BreakerState, Catalog, Config, HostInventory, ModelInfo, PriceConfig
from actors.orchestration.selection import (
    Considered,
    History,
    Policy,
    TaskFeatures,
    analyse,
    decide,
    prior,
)

GB = 1_000_000_000


def make_catalog(*models: ModelInfo, config: Config | None = None) -> Catalog:
    catalog = Catalog(config)
    catalog.add_host("h", HostInventory(url="http://127.0.0.1:1", provider="openai", models=models))
    return catalog


def code(**kw: object) -> TaskFeatures:
    return analyse("x", task_type="code", **kw)  # type: ignore[arg-type]


def test_constraints_reject_with_reasons_and_the_rest_are_scored() -> None:
    """Open breaker, missing tools, small context and no memory: each named in the decision."""
    catalog = make_catalog(
        ModelInfo(id="ok", capabilities=("chat", "tools"), context_length=8000),
        ModelInfo(id="broken", capabilities=("chat", "tools")),
        ModelInfo(id="no-tools", capabilities=("chat",)),
        ModelInfo(id="small", capabilities=("chat", "tools"), context_length=100),
        ModelInfo(id="big", capabilities=("chat", "tools"), loaded=False, size_bytes=40 * GB),
        ModelInfo(id="embedder", capabilities=("embeddings",)),
    )
    catalog.set_breaker("h", "broken", BreakerState.OPEN)
    catalog.set_free_bytes(8 * GB, budget=24 * GB)
    decision = decide(Policy(), code(tools=True), catalog, History(), max_tokens=500)
    reasons = {c.model: c.rejected for c in decision.considered}
    assert decision.qualified == "h/ok"
    assert reasons["h/broken"] == "circuit breaker open"
    assert reasons["h/no-tools"] == "lacks tools"
    assert reasons["h/small"] == "context 100 < 501 tokens needed"
    assert reasons["h/big"] is not None
    assert reasons["h/big"].startswith("not loaded")
    assert "h/embedder" not in reasons  # not a chat model: never a candidate
    assert reasons["h/ok"] is None


def test_with_nothing_eligible_the_decision_names_no_host() -> None:
    """Every candidate rejected: host is empty and every reason is kept."""
    catalog = make_catalog(ModelInfo(id="a"))
    catalog.set_breaker("h", "a", BreakerState.OPEN)
    decision = decide(Policy(), code(), catalog, History())
    assert decision.host == ""
    assert decision.considered == (
        Considered(model="h/a", rejected="circuit breaker open", loaded=None),
    )


def test_a_model_that_must_evict_another_is_penalised_but_possible() -> None:
    """Fits the budget, not the free memory: a candidate marked 'evicts', behind a loaded one."""
    catalog = make_catalog(
        ModelInfo(id="resident", loaded=True),
        ModelInfo(id="needs-room", loaded=False, size_bytes=12 * GB),
    )
    catalog.set_free_bytes(8 * GB, budget=24 * GB)
    decision = decide(Policy(explore=False), code(), catalog, History())
    evicting = next(c for c in decision.considered if c.model == "h/needs-room")
    assert (evicting.rejected, evicting.evicts) == (None, True)
    assert decision.model == "resident"
    only = decide(Policy(explore=False), code(), catalog, History(), candidates=["needs-room"])
    assert only.model == "needs-room"


def test_a_loaded_model_is_preferred_over_an_equal_one_that_must_load() -> None:
    """Equal in everything else, the loaded one wins (no draws: explore off)."""
    catalog = make_catalog(ModelInfo(id="cold", loaded=False), ModelInfo(id="warm", loaded=True))
    decision = decide(Policy(explore=False), code(), catalog, History())
    assert decision.model == "warm"


def test_cheapest_and_fastest_order_by_price_and_history() -> None:
    """The cheapest policy takes the lowest expected cost; fastest the lowest latency seen."""
    config = Config.model_validate(
        {
            "prices": {
                "a": {"input_per_mtok": 5, "output_per_mtok": 15},
                "b": {"input_per_mtok": 0.1, "output_per_mtok": 0.3},
            }
        }
    )
    catalog = make_catalog(ModelInfo(id="a"), ModelInfo(id="b"), config=config)
    history = History()
    history.record("h/a", "code", ok=True, latency_s=0.2)
    history.record("h/b", "code", ok=True, latency_s=2.0)
    assert decide(Policy(name="c", kind="cheapest"), code(), catalog, history).model == "b"
    assert decide(Policy(name="f", kind="fastest"), code(), catalog, history).model == "a"
    cheap = decide(Policy(name="c", kind="cheapest"), code(), catalog, history)
    costs = {c.model: c.cost_usd for c in cheap.considered}
    assert costs["h/b"] == pytest.approx((0 * 0.1 + 256 * 0.3) / 1e6, rel=0.1)


def test_a_model_priced_per_gpu_second_costs_its_expected_time() -> None:
    """$0.01 a GPU-second at 2 s a call is $0.02, dearer than b; no latency yet: unknown, not $0."""
    config = Config.model_validate(
        {
            "prices": {
                "gpu": {"per_gpu_second": 0.01},
                "b": {"input_per_mtok": 0.1, "output_per_mtok": 0.3},
            }
        }
    )
    catalog = make_catalog(ModelInfo(id="gpu"), ModelInfo(id="b"), config=config)
    cheapest = Policy(name="c", kind="cheapest", explore=False)
    unknown = decide(cheapest, code(), catalog, History())
    assert {c.model: c.cost_usd for c in unknown.considered}["h/gpu"] is None
    history = History()
    history.record("h/gpu", "code", ok=True, latency_s=2.0)
    history.record("h/b", "code", ok=True, latency_s=2.0)
    known = decide(cheapest, code(), catalog, history)
    assert known.model == "b"
    costs = {c.model: c.cost_usd for c in known.considered}
    assert costs["h/gpu"] == pytest.approx(0.02)


def test_a_pin_wins_for_its_task_type_and_yields_when_its_model_is_unavailable() -> None:
    """pin={'code': m} picks m for code only; an open breaker on m falls back, saying so."""
    catalog = make_catalog(ModelInfo(id="a"), ModelInfo(id="b"))
    policy = Policy(pin={"code": "b"}, explore=False)
    history = History()
    for _ in range(20):
        history.reward("h/a", "code", 1.0)
        history.reward("h/b", "code", 0.0)
    pinned = decide(policy, code(), catalog, history)
    assert (pinned.model, pinned.reason) == ("b", "pinned for code")
    assert decide(policy, analyse("x", task_type="creative"), catalog, history).model == "a"
    catalog.set_breaker("h", "b", BreakerState.OPEN)
    fallback = decide(policy, code(), catalog, history)
    assert fallback.model == "a"
    assert fallback.reason.startswith("pinned b unavailable (circuit breaker open)")


def test_a_user_function_sees_the_scored_candidates_and_may_choose() -> None:
    """choose() gets every candidate with its score; its answer wins; None defers."""
    catalog = make_catalog(ModelInfo(id="a"), ModelInfo(id="b"))
    seen: list[list[str]] = []

    def prefer_b(candidates: object, features: TaskFeatures) -> str | None:
        seen.append([c.model for c in candidates])  # type: ignore[attr-defined]
        return "b" if features.task_type == "code" else None

    policy = Policy(name="mine", choose=prefer_b)
    decision = decide(policy, code(), catalog, History())
    assert (decision.model, decision.reason) == ("b", "chosen by mine's function")
    assert seen == [["h/a", "h/b"]]
    assert decide(policy, analyse("x", task_type="factual"), catalog, History()).model in {"a", "b"}


def test_declared_tiers_and_strengths_set_the_prior() -> None:
    """Tier 1/2/3 -> 0.3/0.5/0.7; a declared strength adds 0.2 for that task type only."""
    config = Config.model_validate(
        {"models": {"t1": {"tier": 1}, "t3": {"tier": 3, "strengths": ["code"]}}}
    )
    catalog = make_catalog(ModelInfo(id="t1"), ModelInfo(id="t3"), ModelInfo(id="x"), config=config)
    assert prior(catalog.resolve("t1"), "code") == pytest.approx(0.3)
    assert prior(catalog.resolve("t3"), "code") == pytest.approx(0.9)
    assert prior(catalog.resolve("t3"), "creative") == pytest.approx(0.7)
    assert prior(catalog.resolve("x"), "code") == pytest.approx(0.5)
    first = decide(Policy(explore=False), code(), catalog, History())
    assert first.model == "t3"


def test_a_new_model_is_tried_but_not_trusted_blindly() -> None:
    """A tier-3 newcomer gets early pulls, and loses them once it proves poor."""
    config = Config.model_validate({"models": {"new": {"tier": 3}}})
    catalog = make_catalog(ModelInfo(id="known"), ModelInfo(id="new"), config=config)
    history = History()
    for _ in range(50):
        history.reward("h/known", "code", 0.8)
    rng = random.Random(7)
    picks = []
    truth = {"h/known": 0.8, "h/new": 0.2}
    for _ in range(300):
        decision = decide(Policy(name="best", kind="best"), code(), catalog, history, rng=rng)
        picks.append(decision.model)
        history.reward(decision.qualified, "code", float(rng.random() < truth[decision.qualified]))
    assert "new" in picks[:30]
    assert picks[-100:].count("new") <= 10


def _simulate(
    arms: list[float], steps: int, discount: float, seed: int, swap: int | None = None
) -> list[int]:
    catalog = make_catalog(*(ModelInfo(id=f"m{i}") for i in range(len(arms))))
    history = History(discount=discount)
    rng = random.Random(seed)
    policy = Policy(name="best", kind="best")
    features = code()
    truth = list(arms)
    picks = []
    for t in range(steps):
        if swap is not None and t == swap:
            truth.reverse()
        decision = decide(policy, features, catalog, history, rng=rng)
        arm = int(decision.model[1:])
        picks.append(arm)
        history.reward(decision.qualified, "code", float(rng.random() < truth[arm]))
    return picks


def test_thompson_sampling_puts_most_pulls_on_a_well_separated_best_arm() -> None:
    """Arms .3/.5/.8 over 1000 pulls: mean best-arm share >= 0.9 (reference: 0.975 undiscounted)."""
    shares = [_simulate([0.3, 0.5, 0.8], 1000, 0.995, seed).count(2) / 1000 for seed in range(8)]
    assert statistics.mean(shares) >= 0.9


def test_discounting_recovers_from_drift_where_plain_counts_do_not() -> None:
    """The best arm swaps mid-run: gamma=0.995 moves to the new best, far more than gamma=1."""

    def recovered(discount: float) -> float:
        runs = [_simulate([0.3, 0.5, 0.8], 1000, discount, s, swap=500)[-250:] for s in range(6)]
        return statistics.mean(run.count(0) / 250 for run in runs)

    discounted, plain = recovered(0.995), recovered(1.0)
    assert discounted >= 0.75
    assert discounted - plain >= 0.15


def test_an_unknown_candidate_name_is_an_error_listing_what_is_known() -> None:
    """A typo in models= fails with the catalog's list."""
    catalog = make_catalog(ModelInfo(id="a"))
    with pytest.raises(LookupError, match=r"no model host serves 'b'.*h/a"):
        decide(Policy(), code(), catalog, History(), candidates=["b"])


def test_bad_policies_are_refused_naming_the_field() -> None:
    """Negative weights and unknown kinds fail when the policy is made."""
    with pytest.raises(ValueError, match=r"cost must not be negative"):
        Policy(cost=-1)
    with pytest.raises(ValueError, match=r"kind"):
        Policy(kind="random")  # type: ignore[arg-type]
    assert PriceConfig(input_per_mtok=0, output_per_mtok=0).cost is not None
