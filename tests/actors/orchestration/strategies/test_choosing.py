"""Strategy constraints, the memory-aware schedule and the chooser: pure functions over a catalog.

The catalog is a real :class:`~actors.llm.Catalog` filled from host inventories, as the
fleet fills it; free GPU memory is set as a ResourceSnapshot would set it.
"""

from __future__ import annotations

import pytest

from actors.llm import Catalog, HostInventory, ModelInfo
from actors.orchestration import analyse
from actors.orchestration.selection import TaskFeatures
from actors.orchestration.strategies import (
    PROFILES,
    Member,
    Strategy,
    StrategyError,
    check,
    choose_strategy,
    fit,
    member,
    member_temperatures,
    plan_waves,
    profile_for,
)

GB = 1_000_000_000


def catalog_with(
    *hosts: tuple[str, str, list[ModelInfo]], free: int | None = None, budget: int | None = None
) -> Catalog:
    """A catalog of ``(host, protocol, models)`` with ``free`` bytes of GPU memory free."""
    catalog = Catalog()
    for name, protocol, models in hosts:
        catalog.add_host(
            name,
            HostInventory(
                url="http://127.0.0.1:1",
                server=protocol,
                provider=protocol,
                reachable=True,
                models=tuple(models),
            ),
        )
    if free is not None:
        catalog.set_free_bytes(free, budget=budget if budget is not None else free)
    return catalog


def model(
    name: str, *, loaded: bool | None = False, gb: float = 4, caps: tuple[str, ...] = ("chat",)
) -> ModelInfo:
    """A model of ``gb`` gigabytes."""
    return ModelInfo(id=name, loaded=loaded, size_bytes=int(gb * GB), capabilities=caps)


def features(task_type: str, complexity: float = 0.5) -> TaskFeatures:
    """Features of a task of that type and complexity."""
    return TaskFeatures(task_type=task_type, complexity=complexity, inferred=False)  # type: ignore[arg-type]


# ---- constraints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "constraint"),
    [
        (Strategy(kind="consensus", members=(Member("a"), Member("b"))), "at least 3 members"),
        (
            Strategy(kind="consensus", members=(Member("a"),) * 3, threshold=1.5),
            "threshold in (0, 1]",
        ),
        (
            Strategy(kind="hierarchical", members=(Member("a"), Member("b"))),
            "exactly one member with role 'coordinator'",
        ),
        (
            Strategy(kind="hierarchical", members=(Member("a", role="coordinator"),)),
            "at least 1 worker besides the coordinator",
        ),
        (Strategy(kind="semantic", members=(Member("a"), Member("b"))), "an embedding model"),
        (Strategy(kind="combinatorial", members=(Member("a"),)), "2 to 16 agents"),
        (Strategy(kind="combinatorial", members=(Member("a"),) * 17), "2 to 16 agents"),
        (Strategy(kind="parallel", members=(Member("a"),)), "at least 2 members"),
        (Strategy(kind="chain", members=()), "at least 1 member"),
    ],
)
def test_a_broken_constraint_names_the_strategy_and_the_constraint(
    strategy: Strategy, constraint: str
) -> None:
    """Each strategy's constraint is checked before it runs, and the error says which."""
    with pytest.raises(StrategyError) as caught:
        check(strategy)
    assert caught.value.strategy == strategy.kind
    assert caught.value.constraint == constraint
    assert f"strategy {strategy.kind!r}: {constraint}" in str(caught.value)


def test_valid_strategies_pass() -> None:
    """The smallest valid form of each constrained strategy is accepted."""
    check(Strategy(kind="consensus", members=(Member("a"), Member("b"), Member("c"))))
    check(Strategy(kind="hierarchical", members=(Member("a", role="coordinator"), Member("b"))))
    check(Strategy(kind="semantic", members=(Member("a"), Member("b")), embedding_model="e"))
    check(
        Strategy(kind="combinatorial", members=(Member("a"),) * 16 + (Member("j", role="judge"),))
    )


def test_semantic_needs_a_model_that_embeds_and_concurrent_needs_everything_to_fit() -> None:
    """Constraints that need the catalog: an embedding model that embeds; fitting at once."""
    catalog = catalog_with(
        ("ollama", "ollama", [model("a"), model("b"), model("nomic", caps=("embeddings",))]),
        free=6 * GB,
    )
    members = [Member("a"), Member("b")]
    with pytest.raises(
        StrategyError, match="'semantic': an embedding model: .*no model host serves 'nope'"
    ):
        choose_strategy(
            features("general"), members, catalog, kind="semantic", embedding_model="nope"
        )
    with pytest.raises(StrategyError, match="ollama/a has no embeddings capability"):
        choose_strategy(features("general"), members, catalog, kind="semantic", embedding_model="a")
    ok = choose_strategy(
        features("general"), members, catalog, kind="semantic", embedding_model="nomic"
    )
    assert ok.kind == "semantic"
    with pytest.raises(
        StrategyError, match="'concurrent': all members fit in memory at once: .*8.0 GB"
    ):
        choose_strategy(features("general"), members, catalog, kind="concurrent")


def test_specialized_needs_a_role_or_declared_strengths() -> None:
    """Without roles or strengths there is no specialist to choose."""
    with pytest.raises(StrategyError, match="a member with a role or declared strengths"):
        choose_strategy(features("code"), [Member("a"), Member("b")], None, kind="specialized")


# ---- profiles -----------------------------------------------------------------------------


def test_temperature_and_tokens_follow_the_task_type() -> None:
    """Code is asked cold with a large allowance; creative work hot; copies of one model spread."""
    assert (
        profile_for("code").temperature
        < profile_for("general").temperature
        < profile_for("creative").temperature
    )
    assert profile_for("code").max_tokens > profile_for("factual").max_tokens
    assert all(p.synthesis_tokens > p.max_tokens for p in PROFILES.values())
    temps = member_temperatures(
        (Member("m"), Member("m"), Member("m"), Member("n", temperature=0.05)), 0.3
    )
    assert temps == (0.3, 0.5, 0.2, 0.05)


# ---- memory --------------------------------------------------------------------------------


def test_models_that_fit_together_run_in_one_wave() -> None:
    """Two 4 GB models with 10 GB free: one wave, all at once."""
    catalog = catalog_with(("ollama", "ollama", [model("a"), model("b")]), free=10 * GB)
    members = [Member("a"), Member("b"), Member("a")]
    assert fit(members, catalog).ok
    assert plan_waves(members, catalog) == ((0, 1, 2),)


def test_three_models_that_do_not_fit_load_once_each_in_grouped_waves() -> None:
    """A B C A B C with room for one at a time: 3 waves (3 loads), not 6 interleaved loads."""
    catalog = catalog_with(
        ("ollama", "ollama", [model("a"), model("b"), model("c")]), free=5 * GB, budget=5 * GB
    )
    members = [Member(x) for x in "abcabc"]
    verdict = fit(members, catalog)
    assert not verdict.ok
    assert "need 12.0 GB" in verdict.reason
    assert plan_waves(members, catalog) == ((0, 3), (1, 4), (2, 5))


def test_loaded_models_go_first_and_the_coordinator_last() -> None:
    """Resident b shares a wave with a (room for one load); c, which speaks last, loads last."""
    catalog = catalog_with(
        ("ollama", "ollama", [model("a"), model("b", loaded=True), model("c")]), free=5 * GB
    )
    members = [Member("c"), Member("a"), Member("b")]
    assert plan_waves(members, catalog, last=Member("c")) == ((1, 2), (0,))


def test_a_server_that_keeps_one_model_is_never_asked_for_two_at_once() -> None:
    """LM Studio (JIT, one resident): two models there run one after the other, even with room."""
    catalog = catalog_with(
        ("studio", "lmstudio", [model("a", loaded=True), model("b")]), free=100 * GB
    )
    members = [Member("a"), Member("b"), Member("a"), Member("b")]
    verdict = fit(members, catalog)
    assert not verdict.ok
    assert "keeps 1 model(s) resident" in verdict.reason
    assert plan_waves(members, catalog) == ((0, 2), (1, 3))
    limited = fit(members, catalog, {"studio": 2})
    assert limited.ok
    catalog.set_loaded("studio", "b", True)  # both resident (loaded explicitly): nothing loads
    assert fit(members, catalog).ok


def test_cloud_models_always_fan_out() -> None:
    """Models whose load state the server cannot report (cloud APIs) fit with anything."""
    catalog = catalog_with(
        ("cloud", "openai", [model("gpt", loaded=None), model("mini", loaded=None)]), free=0
    )
    assert fit([Member("gpt"), Member("mini")], catalog).ok


# ---- the chooser ---------------------------------------------------------------------------


def test_auto_chooses_by_task_features() -> None:
    """The rules: consensus for reasoning, semantic for free text with embeddings, and so on."""
    three = [Member("a"), Member("b"), Member("c")]
    catalog = catalog_with(
        (
            "cloud",
            "openai",
            [model(x, loaded=None) for x in "abc"]
            + [model("emb", loaded=None, caps=("embeddings",))],
        )
    )
    assert choose_strategy(features("reasoning"), three, catalog).kind == "consensus"
    assert choose_strategy(features("factual"), three, catalog).kind == "consensus"
    assert (
        choose_strategy(features("creative"), three, catalog, embedding_model="emb").kind
        == "semantic"
    )
    assert choose_strategy(features("creative"), three, catalog).kind == "parallel"
    assert choose_strategy(features("code", 0.6), three, catalog).kind == "combinatorial"
    assert choose_strategy(features("code", 0.3), three, catalog).kind == "chain"
    assert choose_strategy(features("analysis"), three, catalog).kind == "hybrid"
    assert choose_strategy(features("general", 0.05), three, catalog).kind == "concurrent"
    assert choose_strategy(features("reasoning"), three[:1], catalog).kind == "chain"
    coder = [Member("a"), member("b", role="code")]
    assert choose_strategy(features("code", 0.2), coder, catalog).kind == "specialized"
    boss = [*three, member("a", role="coordinator")]
    assert choose_strategy(features("general"), boss, catalog).kind == "hierarchical"


def test_a_choice_explains_itself_and_plans_for_memory() -> None:
    """Consensus over three models that cannot all load: three waves, and the reasons say so."""
    catalog = catalog_with(("ollama", "ollama", [model("a"), model("b"), model("c")]), free=9 * GB)
    choice = choose_strategy(
        analyse("Solve 12 * 7 + 3, step by step."), [Member(x) for x in "abc"], catalog
    )
    assert choice.kind == "consensus"
    assert choice.task_type == "reasoning"
    assert choice.waves == ((0, 1), (2,))
    assert not choice.concurrent
    assert "one right answer" in choice.reasons[0]
    assert "2 waves, each model loaded once" in choice.reasons[1]
    assert choice.temperatures == (0.3, 0.3, 0.3)


def test_an_auto_chain_has_each_model_once() -> None:
    """Asked for a chain of A B A on a one-model server, the chooser drops the repeat."""
    catalog = catalog_with(("studio", "lmstudio", [model("a"), model("b")]))
    choice = choose_strategy(
        features("general", 0.5), [Member("a"), Member("b"), Member("a")], catalog
    )
    assert choice.kind == "chain"
    assert [m.model for m in choice.strategy.members] == ["a", "b"]
    assert any("none loads twice" in r for r in choice.reasons)
