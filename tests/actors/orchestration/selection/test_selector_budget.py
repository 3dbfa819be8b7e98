"""The Selector under a budget: it chooses within the headroom, and its calls are admitted.

Two fake OpenAI servers over loopback HTTP behind real ModelHosts, the real catalog and a
real Budget actor: what the budget has left bounds the choice (a cheaper model, or a
``budget_exceeded`` refusal for a policy that does not downgrade), and the Selector's
own calls reserve, settle and release like every other model call.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import AskError, Failure, FailureKind, Ref, System
from actors.llm import (
    BudgetLimitConfig,
    BudgetsConfig,
    ChatRequest,
    Completion,
    Config,
    Fleet,
    PriceConfig,
    start_fleet,
    start_fleet_async,
)
from actors.orchestration import (
    Budget,
    Choice,
    Policy,
    SelectChat,
    SelectModel,
    Selector,
    SpendQuery,
    SpendReport,
)
from actors.testing import FakeServer, Reply
from dsl import Input, Reactor, ask, select
from reactor.app import Engine
from reactor.run import RunFailedError

SMALL = PriceConfig(input_per_mtok=0.0, output_per_mtok=10_000.0)
"""$0.01 per output token: a call of 3 output tokens costs $0.03, its worst case too."""
LARGE = PriceConfig(input_per_mtok=0.0, output_per_mtok=1_000_000.0)
"""$1 per output token: a worst case of $3 at ``max_tokens=3``."""
PRICES = {"local/small": SMALL, "cloud/large": LARGE}


def usage_reply(_: Any) -> Reply:
    """Every answer uses 2 prompt and 3 output tokens (the worst case at max_tokens=3)."""
    return Reply(text="ok", input_tokens=2, output_tokens=3)


@pytest.fixture
def servers() -> Iterator[tuple[FakeServer, FakeServer]]:
    """'local' serves 'small' (tier 1), 'cloud' serves 'large' (tier 3)."""
    with (
        FakeServer("openai", models=["small"], responder=usage_reply) as local,
        FakeServer("openai", models=["large"], responder=usage_reply) as cloud,
    ):
        yield local, cloud


def config_of(local: FakeServer, cloud: FakeServer, **more: Any) -> Config:
    """Both hosts, priced; 'large' is the better model by its declared tier."""
    return Config.model_validate(
        {
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
            "hosts": {
                "local": {"url": local.url, "protocol": "openai"},
                "cloud": {"url": cloud.url, "protocol": "openai"},
            },
            "prices": {
                "local/small": {"output_per_mtok": 10_000.0},
                "cloud/large": {"output_per_mtok": 1_000_000.0},
            },
            "models": {
                "large": {"tier": 3, "context_length": 4096},
                "small": {"tier": 1, "context_length": 4096},
            },
            **more,
        }
    )


def chats(server: FakeServer) -> int:
    """Chat requests the server received."""
    return sum(1 for call in server.calls if call.path.endswith("/chat/completions"))


BEST = Policy(name="steady", kind="best", explore=False)
STRICT = Policy(name="strict", kind="best", explore=False, downgrade=False)


async def selector_with_budget(
    system: System, fleet: Fleet, limit: BudgetLimitConfig
) -> tuple[Ref[Any], Ref[Any]]:
    """A Budget with ``limit`` and a Selector that it admits."""
    budget: Any = await system.spawn_async(Budget.spec(BudgetsConfig(limits=[limit]), PRICES))
    selector = await system.spawn_async(
        Selector,
        name="selector",
        args=(fleet.catalog,),
        kwargs={"budget": budget, "policies": {"steady": BEST, "strict": STRICT}},
    )
    return budget, selector


def chat(prompt: str = "hello", **fields: Any) -> SelectChat:
    """A request for 3 output tokens, charged to run 'r1' of reactor 'R'."""
    return SelectChat(
        request=ChatRequest.prompt("", prompt, max_tokens=3),
        run_id="r1",
        reactor="R",
        **fields,
    )


@pytest.mark.asyncio
async def test_the_budget_headroom_makes_the_selector_choose_a_cheaper_model(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """$1 left in the run: 'large' ($3 worst case) is ruled out, 'small' answers and is charged."""
    local, cloud = servers
    fleet = await start_fleet_async(system, config_of(local, cloud))
    budget, selector = await selector_with_budget(
        system, fleet, BudgetLimitConfig(scope="run", usd=1.0)
    )
    answer: Completion = await selector.ask_async(chat(policy="steady"))
    decision = answer.extras["selection"]
    assert decision["chosen"] == "local/small"
    assert decision["budget_constrained"] is True
    assert decision["budget_left_usd"] == pytest.approx(1.0)
    assert decision["budget_account"].startswith("run:r1")
    assert "the budget" in decision["reason"]
    (large,) = [c for c in decision["considered"] if c["model"] == "cloud/large"]
    assert "more than the $1.000000 the budget" in large["rejected"]
    assert (chats(local), chats(cloud)) == (1, 0)
    report: SpendReport = await budget.ask_async(SpendQuery())
    while report.calls < 1:  # the settle is one-way: it follows the answer
        await asyncio.sleep(0)
        report = await budget.ask_async(SpendQuery())
    assert report.by_model == {"local/small": pytest.approx(0.03)}
    (account,) = report.budgets
    assert account.spent_usd == pytest.approx(0.03)
    assert account.reserved_usd == 0.0
    await fleet.close_async()


@pytest.mark.asyncio
async def test_a_policy_that_does_not_downgrade_fails_budget_exceeded_unsent(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """downgrade=False: 'large' is chosen regardless, the reservation is refused, nothing sent."""
    local, cloud = servers
    fleet = await start_fleet_async(system, config_of(local, cloud))
    _, selector = await selector_with_budget(system, fleet, BudgetLimitConfig(scope="run", usd=1.0))
    with pytest.raises(AskError) as caught:
        await selector.ask_async(chat(policy="strict"))
    failure = caught.value.failure
    assert failure.kind is FailureKind.BUDGET_EXCEEDED
    assert failure.details["sent"] == "false"
    assert "does not downgrade" in failure.message
    decision = json.loads(failure.details["selection"])
    assert decision["chosen"] == "cloud/large"
    assert decision["budget_constrained"] is True
    assert (chats(local), chats(cloud)) == (0, 0)
    await fleet.close_async()


@pytest.mark.asyncio
async def test_concurrent_selections_never_overspend(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """Room for exactly 3 calls of 'small'; 24 selections at once: 3 sent, 21 refused unsent."""
    local, cloud = servers
    fleet = await start_fleet_async(system, config_of(local, cloud))
    budget, selector = await selector_with_budget(
        system, fleet, BudgetLimitConfig(scope="global", usd=3 * 0.03)
    )
    answers = await asyncio.gather(
        *(selector.ask_async(chat(candidates=("local/small",))) for _ in range(24)),
        return_exceptions=True,
    )
    refused = [a.failure for a in answers if isinstance(a, AskError)]
    assert len(answers) - len(refused) == 3
    assert {f.kind for f in refused} == {FailureKind.BUDGET_EXCEEDED}
    assert chats(local) == 3
    report: SpendReport = await budget.ask_async(SpendQuery())
    while report.calls < 3:
        await asyncio.sleep(0)
        report = await budget.ask_async(SpendQuery())
    (account,) = report.budgets
    assert account.spent_usd == pytest.approx(0.09)
    assert account.spent_usd <= account.limit_usd + 1e-12
    assert account.reserved_usd == 0.0
    await fleet.close_async()


@pytest.mark.asyncio
async def test_a_failed_selected_call_releases_its_reservation(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """A 500 from the chosen model gives the room back: nothing is left reserved or spent."""
    from actors.testing import Fault

    local, cloud = servers
    fleet = await start_fleet_async(system, config_of(local, cloud))
    budget, selector = await selector_with_budget(
        system, fleet, BudgetLimitConfig(scope="global", usd=1.0)
    )
    local.inject(Fault(status=400))
    with pytest.raises(AskError):
        await selector.ask_async(chat(candidates=("local/small",)))
    report: SpendReport = await budget.ask_async(SpendQuery())
    while report.budgets and report.budgets[0].reserved_usd > 0:
        await asyncio.sleep(0)
        report = await budget.ask_async(SpendQuery())
    (account,) = report.budgets
    assert (account.spent_usd, account.reserved_usd, report.calls) == (0.0, 0.0, 0)
    await fleet.close_async()


# ---- in runs: select steps and ask(model="auto") -------------------------------------------


class Pick(Reactor):
    topic = Input(str)
    answer = select("Tell me about {topic}", policy="steady", max_tokens=3)


class Strict(Reactor):
    topic = Input(str)
    answer = select("Tell me about {topic}", policy="strict", max_tokens=3)


class Auto(Reactor):
    topic = Input(str)
    answer = ask("Tell me about {topic}", model="auto", max_tokens=3)


def test_select_steps_and_auto_asks_choose_within_the_run_budget(
    system: System, tmp_path: Path, servers: tuple[FakeServer, FakeServer]
) -> None:
    """A $1 run budget: both pick 'small', charged to their run; a strict policy is refused."""
    local, cloud = servers
    config = config_of(
        local,
        cloud,
        selection={
            "default_policy": "steady",
            "policies": {
                "steady": {"kind": "best", "explore": False},
                "strict": {"kind": "best", "explore": False, "downgrade": False},
            },
        },
        budgets={"limits": [{"scope": "run", "usd": 1.0}]},
    )
    fleet = start_fleet(system, config)
    with Engine(system, db_path=tmp_path / "runs.db", logging=False, fleet=fleet) as engine:
        picked = engine.start(Pick, {"topic": "tea"})
        auto = engine.start(Auto, {"topic": "tea"})
        chosen = [picked.result(10), auto.result(10)]
        with pytest.raises(RunFailedError) as caught:
            engine.run(Strict, {"topic": "tea"})
        rows: list[Any] = []
        while len(rows) < 2:  # settles are one-way; their rows follow in the next commits
            rows = engine.journal.query("SELECT run_id, host, model FROM spend ORDER BY run_id")
    assert [(c.host, c.model) for c in chosen] == [("local", "small"), ("local", "small")]
    assert all(c.extras["selection"]["budget_constrained"] for c in chosen)
    assert sorted(r[0] for r in rows) == sorted([picked.run_id, auto.run_id])
    (error,) = caught.value.errors
    assert error.kind == "budget_exceeded"
    assert (chats(local), chats(cloud)) == (2, 0)
    fleet.close()


def test_no_budget_leaves_the_choice_alone(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """Without a Budget the best model is chosen (the test above is about the budget)."""
    local, cloud = servers
    fleet = start_fleet(system, config_of(local, cloud))
    selector = system.spawn(
        Selector, name="selector", args=(fleet.catalog,), kwargs={"policies": {"steady": BEST}}
    )
    answer = selector.ask(chat(policy="steady"))
    assert not isinstance(answer, Failure)
    assert answer.extras["selection"]["chosen"] == "cloud/large"
    assert "budget_left_usd" not in answer.extras["selection"]
    fleet.close()


def choose(**fields: Any) -> SelectModel:
    """Only choose, for 3 output tokens, in run 'r1' of reactor 'R'."""
    return SelectModel(
        request=ChatRequest.prompt("", "hello", max_tokens=3), run_id="r1", reactor="R", **fields
    )


@pytest.mark.asyncio
async def test_select_model_chooses_within_the_budget_headroom(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """SelectModel is quoted too: $1 left rules 'large' out with its reason; nothing is held."""
    local, cloud = servers
    fleet = await start_fleet_async(system, config_of(local, cloud))
    budget, selector = await selector_with_budget(
        system, fleet, BudgetLimitConfig(scope="run", usd=1.0)
    )
    choice: Choice = await selector.ask_async(choose(policy="steady"))
    decision = choice.decision
    assert decision.qualified == "local/small"
    assert decision.budget_constrained is True
    assert decision.budget_account.startswith("run:r1")
    (large,) = [c for c in decision.considered if c.model == "cloud/large"]
    assert large.rejected is not None
    assert "more than the $1.000000 the budget" in large.rejected
    report: SpendReport = await budget.ask_async(SpendQuery())
    (account,) = report.budgets
    assert (account.spent_usd, account.reserved_usd) == (0.0, 0.0)  # a choice holds nothing
    assert (chats(local), chats(cloud)) == (0, 0)
    roomy: Choice = await selector.ask_async(
        SelectModel(request=ChatRequest.prompt("", "hello", max_tokens=3), policy="steady")
    )
    assert roomy.decision.qualified == "cloud/large"  # another run: no limit applies
    assert roomy.decision.budget_constrained is False
    await fleet.close_async()


@pytest.mark.asyncio
async def test_select_model_with_a_strict_policy_fails_budget_exceeded(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """downgrade=False: the choice that does not fit is refused, naming the cost and account."""
    local, cloud = servers
    fleet = await start_fleet_async(system, config_of(local, cloud))
    _, selector = await selector_with_budget(system, fleet, BudgetLimitConfig(scope="run", usd=1.0))
    with pytest.raises(AskError) as caught:
        await selector.ask_async(choose(policy="strict"))
    failure = caught.value.failure
    assert failure.kind is FailureKind.BUDGET_EXCEEDED
    assert "costs up to $3.000000, more than the $1.000000" in failure.message
    assert "does not downgrade" in failure.message
    decision = json.loads(failure.details["selection"])
    assert decision["host"] == "cloud"
    assert decision["budget_constrained"] is True
    fits: Choice = await selector.ask_async(choose(policy="strict", candidates=("local/small",)))
    assert fits.decision.qualified == "local/small"
    await fleet.close_async()
