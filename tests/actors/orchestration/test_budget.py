"""Budgets: the worst case is reserved before a call, settled after, and never overspent.

The pure ledger is checked alone (the reference's reservation figure); the Budget actor
against a fake OpenAI server over loopback HTTP, through :func:`budgeted_chat`, the
path every ``ask`` step and fallback link takes.
"""

from __future__ import annotations

import asyncio
import calendar
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from actors import ActorRestarted, AskError, ChildSpec, Failure, FailureKind, Message, System
from actors.llm import (
    BudgetLimitConfig,
    BudgetsConfig,
    ChatRequest,
    Config,
    ConfigError,
    HostConfig,
    PriceConfig,
    Usage,
    load_config,
)
from actors.orchestration import Budget, SpendQuery, SpendReport, SpendScope, budgeted_chat
from actors.orchestration.budget import (
    CALIBRATION_MARGIN,
    Ledger,
    Release,
    Reservation,
    Reserve,
    Settle,
    estimate_prompt_tokens,
    failed_usage,
    spend_report,
    window_of,
)
from actors.store import Journal, Store, StoreInsert
from actors.testing import FakeServer, FakeToolCall, Fault, Reply
from tests.support.hosts import start_host_async

PRICE = PriceConfig(input_per_mtok=1_000_000.0, output_per_mtok=1_000_000.0)
"""$1 per token each way: worst cases are whole dollars, easy to read."""


def limits(*items: BudgetLimitConfig, **fields: Any) -> BudgetsConfig:
    """A budgets section with these limits."""
    return BudgetsConfig(limits=list(items), **fields)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fake OpenAI server; every reply uses 2 + 3 tokens."""
    with FakeServer(
        "openai",
        models=["m", "free-model"],
        responder=lambda _: Reply(text="ok", input_tokens=2, output_tokens=3),
    ) as fake:
        yield fake


async def local(system: System, server: FakeServer) -> Any:
    """A ModelHost ``local`` for ``server``."""
    return await start_host_async(system, HostConfig(url=server.url, protocol="openai"))


def chats(server: FakeServer) -> int:
    """Chat requests the server received."""
    return sum(1 for call in server.calls if call.path.endswith("/chat/completions"))


def request(max_tokens: int | None = 3) -> ChatRequest:
    """A prompt of one short word (estimated at 5 tokens)."""
    return ChatRequest.prompt("m", "hi", max_tokens=max_tokens)


# ---- the ledger (pure) -------------------------------------------------------------------


def test_reservations_admit_only_what_fits_however_many_arrive_together() -> None:
    """$0.50 left, 8 requests of worst case $0.10 in flight at once: exactly 5 admitted."""
    ledger = Ledger(limits=(BudgetLimitConfig(scope="global", usd=0.5),))
    scope = SpendScope(run_id="r")
    admitted = [ledger.admit(f"r{i}", scope, 0.1, 0.0) is None for i in range(8)]
    assert admitted.count(True) == 5
    refusal = ledger.admit("late", scope, 0.1, 0.0)
    assert refusal is not None
    assert "would be exceeded" in refusal.message()
    ledger.release("r0")  # a failed call gives its room back
    assert ledger.admit("again", scope, 0.1, 0.0) is None


def test_settling_replaces_the_reservation_with_the_real_cost() -> None:
    """A call reserved at $0.10 that cost $0.02 leaves $0.08 more room."""
    ledger = Ledger(limits=(BudgetLimitConfig(scope="run", usd=0.2),))
    scope = SpendScope(run_id="r")
    assert ledger.admit("a", scope, 0.1, 0.0) is None
    assert ledger.settle("a", 0.02, 1.0) == 0.1
    (account,) = ledger.accounts.values()
    assert (account.spent_usd, account.reserved_usd) == (0.02, 0.0)
    assert ledger.admit("b", scope, 0.18, 2.0) is None


def test_limits_apply_by_scope_and_name() -> None:
    """A reactor limit with a name caps that reactor only; an agent limit needs an agent."""
    ledger = Ledger(
        limits=(
            BudgetLimitConfig(scope="reactor", name="Pricey", usd=1.0),
            BudgetLimitConfig(scope="agent", usd=2.0, period="1d"),
        )
    )
    assert ledger.accounts_for(SpendScope(reactor="Cheap"), 0.0) == []
    (pricey,) = ledger.accounts_for(SpendScope(reactor="Pricey"), 0.0)
    assert pricey.scope == "reactor"
    assert pricey.name == "Pricey"
    assert len(ledger.accounts_for(SpendScope(reactor="Pricey", agent="bob"), 0.0)) == 2


def test_windows_are_aligned_to_utc_days_mondays_and_months() -> None:
    """1d starts at midnight UTC, 1w on Monday, 1mo on the first of the month."""
    moment = calendar.timegm((2026, 11, 26, 15, 30, 0))  # a Thursday
    assert window_of("1d", moment) == (
        calendar.timegm((2026, 11, 26, 0, 0, 0)),
        calendar.timegm((2026, 11, 27, 0, 0, 0)),
    )
    assert window_of("1w", moment)[0] == calendar.timegm((2026, 11, 23, 0, 0, 0))
    assert window_of("1mo", moment) == (
        calendar.timegm((2026, 11, 1, 0, 0, 0)),
        calendar.timegm((2026, 12, 1, 0, 0, 0)),
    )
    assert window_of(None, moment)[1] == float("inf")


def test_the_forecast_says_when_the_budget_runs_out() -> None:
    """$1 of $3.50 spent in the first 6 h of a day: $1/6h, so it runs out 15 h later."""
    start = calendar.timegm((2026, 11, 26, 0, 0, 0))
    ledger = Ledger(limits=(BudgetLimitConfig(scope="global", usd=3.5, period="1d"),))
    now = start + 6 * 3600
    ledger.load(SpendScope(), start + 3600, 1.0, now)
    (account,) = ledger.current(now)
    assert account.rate_per_hour(now) == pytest.approx(1 / 6)
    assert account.runs_out_at(now) == pytest.approx(now + 15 * 3600)


# ---- configuration ----------------------------------------------------------------------


def test_a_bad_budget_setting_is_named_by_its_path(tmp_path: Path) -> None:
    """A negative cap and a bad period are reported with their dotted paths."""
    path = tmp_path / "config.toml"
    path.write_text(
        "[[budgets.limits]]\nscope = 'global'\nusd = -1\n\n"
        "[[budgets.limits]]\nscope = 'run'\nusd = 1\nperiod = 'fortnight'\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    where = [p for p, _ in caught.value.problems]
    assert where == ["budgets.limits[0].usd", "budgets.limits[1].period"]
    assert "is not a period" in str(caught.value)


def test_a_price_must_be_given_not_left_at_a_silent_zero() -> None:
    """An empty price table entry is an error; per_gpu_second alone is a price."""
    with pytest.raises(ValueError, match="per_gpu_second"):
        PriceConfig()
    local = PriceConfig(per_gpu_second=0.001)
    assert local.worst_case(100, 100, 10.0) == pytest.approx(0.01)


# ---- the actor, over loopback HTTP ------------------------------------------------------


async def start_budget(system: System, settings: BudgetsConfig, store: Any = None) -> Any:
    """A Budget actor with ``m`` priced at :data:`PRICE`."""
    return await system.spawn_async(Budget.spec(settings, {"m": PRICE}, store=store))


@pytest.mark.asyncio
async def test_concurrent_calls_never_overspend(system: System, server: FakeServer) -> None:
    """A budget for exactly 3 worst cases; 24 calls at once: 3 sent, 21 refused unsent."""
    worst = 5 + 3  # estimated prompt tokens + max_tokens, at $1 each
    budget = await start_budget(system, limits(BudgetLimitConfig(scope="global", usd=3 * worst)))
    host = await local(system, server)
    answers = await asyncio.gather(
        *(
            budgeted_chat(host, request(), budget=budget, scope=SpendScope(run_id="r"))
            for _ in range(24)
        )
    )
    refused = [a for a in answers if isinstance(a, Failure)]
    assert len(answers) - len(refused) == 3
    assert {f.kind for f in refused} == {FailureKind.BUDGET_EXCEEDED}
    assert all(f.details["sent"] == "false" for f in refused)
    assert chats(server) == 3
    report: SpendReport = await budget.ask_async(SpendQuery())
    (account,) = report.budgets
    assert account.spent_usd == report.total_usd == 3 * (2 + 3)  # settled to the real usage
    assert account.reserved_usd == 0.0


@pytest.mark.asyncio
async def test_the_reserved_max_tokens_is_what_the_server_is_sent(
    system: System, server: FakeServer
) -> None:
    """A request without max_tokens goes out with the reserve's, so the worst case holds."""
    budget = await start_budget(
        system, limits(BudgetLimitConfig(scope="global", usd=1e6), reserve_max_tokens=77)
    )
    answer = await budgeted_chat(
        await local(system, server), request(None), budget=budget, scope=SpendScope()
    )
    assert not isinstance(answer, Failure)
    (call,) = [c for c in server.calls if c.path.endswith("/chat/completions")]
    assert call.body["max_tokens"] == 77


@pytest.mark.asyncio
async def test_a_failed_call_releases_its_reservation(system: System, server: FakeServer) -> None:
    """Room for one call: a 500 gives it back, so the next call is admitted and sent."""
    budget = await start_budget(system, limits(BudgetLimitConfig(scope="global", usd=8)))
    server.inject(Fault(status=500))
    host = await local(system, server)
    first = await budgeted_chat(host, request(), budget=budget, scope=SpendScope())
    assert isinstance(first, Failure)
    assert first.kind is FailureKind.SERVER_ERROR
    second = await budgeted_chat(host, request(), budget=budget, scope=SpendScope())
    assert not isinstance(second, Failure)
    assert chats(server) == 2


@pytest.mark.asyncio
async def test_a_call_priced_per_gpu_second_ends_within_the_time_it_reserved(
    system: System, server: FakeServer
) -> None:
    """No deadline, $1 a second, 0.3 s reserved: a server that takes 2 s is cut off at 0.3 s.

    Left to run, the call would cost $2 against a budget that held (and allowed) $0.30.
    """
    settings = limits(BudgetLimitConfig(scope="global", usd=0.3), reserve_seconds=0.3)
    budget: Any = await system.spawn_async(
        Budget.spec(settings, {"m": PriceConfig(per_gpu_second=1.0)})
    )
    server.inject(Fault(latency=2.0))
    host = await local(system, server)
    answer = await budgeted_chat(host, request(), budget=budget, scope=SpendScope())
    assert isinstance(answer, Failure)
    assert answer.kind is FailureKind.TIMEOUT
    report: SpendReport = await budget.ask_async(SpendQuery())
    (account,) = report.budgets
    assert account.spent_usd <= 0.3
    assert account.reserved_usd == 0.0


@pytest.mark.asyncio
async def test_an_unpriced_model_is_refused_under_a_budget_unless_free(
    system: System, server: FakeServer
) -> None:
    """No silent $0: 'free-model' has no price, so it is refused before it is sent."""
    budget = await start_budget(system, limits(BudgetLimitConfig(scope="global", usd=100)))
    host = await local(system, server)
    unpriced = ChatRequest.prompt("free-model", "hi", max_tokens=3)
    refused = await budgeted_chat(host, unpriced, budget=budget, scope=SpendScope())
    assert isinstance(refused, Failure)
    assert refused.kind is FailureKind.BUDGET_EXCEEDED
    assert "has no price" in refused.message
    assert chats(server) == 0

    lenient: Any = await system.spawn_async(
        Budget.spec(
            limits(BudgetLimitConfig(scope="global", usd=100), unpriced="free"), {}, name="lenient"
        )
    )
    answer = await budgeted_chat(host, unpriced, budget=lenient, scope=SpendScope())
    assert not isinstance(answer, Failure)
    report: SpendReport = await lenient.ask_async(SpendQuery())
    assert report.unpriced_calls == 1
    assert report.total_usd == 0.0


@pytest.mark.asyncio
async def test_spend_is_persisted_and_read_back_after_a_restart(
    tmp_path: Path, server: FakeServer
) -> None:
    """Spend settled by one Budget is in the store; a new Budget on the file counts it."""
    db = tmp_path / "spend.db"
    settings = limits(BudgetLimitConfig(scope="global", usd=12, period="1d"))
    async with System(Store.spec(db), name="first", default_timeout=5.0) as first:
        await start_host_async(first, HostConfig(url=server.url, protocol="openai"))
        store = first.lookup("store")
        budget = await start_budget(first, settings, store)
        answer = await budgeted_chat(
            first.lookup("local"),
            request(),
            budget=budget,
            scope=SpendScope(run_id="r1", reactor="R"),
        )
        assert not isinstance(answer, Failure)
        journal = Journal(store)
        rows: list[Any] = []
        while not rows:  # the settle is one-way; its row follows in the next commit
            rows = await journal.query_async("SELECT run_id, reactor, model, cost_usd FROM spend")
        assert rows == [("r1", "R", "m", 5.0)]
    async with System(Store.spec(db), name="second", default_timeout=5.0) as second:
        await start_host_async(second, HostConfig(url=server.url, protocol="openai"))
        budget = await start_budget(second, settings, second.lookup("store"))
        # $5 spent of $12: a worst case of $8 no longer fits.
        refused = await budgeted_chat(
            second.lookup("local"), request(), budget=budget, scope=SpendScope()
        )
        assert isinstance(refused, Failure)
        assert refused.kind is FailureKind.BUDGET_EXCEEDED
        report = spend_report(
            await Journal(second.lookup("store")).query_async(
                "SELECT at, run_id, reactor, agent, host, model, cost_usd, priced FROM spend"
            ),
            settings,
        )
        assert report.total_usd == 5.0
        assert report.by_model == {"local/m": 5.0}
        assert report.budgets[0].spent_usd == 5.0
        assert report.budgets[0].rate_usd_per_hour


def test_prices_from_config_key_host_prices_by_host() -> None:
    """A host's own price is keyed host/model; a global one by the model."""
    from actors.orchestration.budget import prices_from

    config = Config.model_validate(
        {
            "hosts": {
                "gpu": {"url": "http://127.0.0.1:1", "prices": {"llama": {"per_gpu_second": 0.01}}}
            },
            "prices": {"gpt": {"input_per_mtok": 1, "output_per_mtok": 2}},
        }
    )
    prices = prices_from(config)
    assert prices["gpu/llama"].per_gpu_second == 0.01
    assert prices["gpt"].output_per_mtok == 2


# ---- restarts, old runs, failed calls, prompt sizes ----------------------------------------


class Boom(Message, frozen=True):
    """Makes :class:`Fragile` crash (its supervisor restarts it)."""


class Fragile(Budget):
    """A Budget that crashes on :class:`Boom`."""

    def receive(self, message: Any) -> object:
        if isinstance(message, Boom):
            msg = "boom"
            raise RuntimeError(msg)
        return super().receive(message)


def hold(run_id: str = "r") -> Reserve:
    """A reservation of $8 at :data:`PRICE` (5 prompt tokens, 3 output)."""
    return Reserve(host="local", model="m", prompt_tokens=5, max_tokens=3, run_id=run_id)


@pytest.mark.asyncio
async def test_open_reservations_survive_a_budget_crash(tmp_path: Path) -> None:
    """$10 global: $8 held when the Budget crashes; its restart holds it again and refuses $8."""
    settings = limits(BudgetLimitConfig(scope="global", usd=10))
    async with System(Store.spec(tmp_path / "b.db"), name="crash", default_timeout=5.0) as system:
        restarted: asyncio.Queue[ActorRestarted] = asyncio.Queue()
        system.bus.subscribe(ActorRestarted, restarted)
        budget: Any = await system.spawn_async(
            Fragile.spec(settings, {"m": PRICE}, store=system.lookup("store"))
        )
        held: Reservation = await budget.ask_async(hold())
        budget.tell(Boom())
        event = await asyncio.wait_for(restarted.get(), 10)
        assert event.name == "budget"
        again = system.lookup("budget")
        with pytest.raises(AskError) as caught:
            await again.ask_async(hold())  # $8 still held by the call in flight: $2 left
        assert caught.value.failure.kind is FailureKind.BUDGET_EXCEEDED
        report: SpendReport = await again.ask_async(SpendQuery())
        assert report.budgets[0].reserved_usd == 8.0
        # The call in flight settles with the new incarnation: $5 spent, nothing held.
        again.tell(
            Settle(
                id=held.id, usage=Usage(input_tokens=2, output_tokens=3), host="local", model="m"
            )
        )
        report = await again.ask_async(SpendQuery())
        assert (report.budgets[0].spent_usd, report.budgets[0].reserved_usd) == (5.0, 0.0)


@pytest.mark.asyncio
async def test_a_run_resumed_weeks_later_counts_all_its_spend(tmp_path: Path) -> None:
    """$5 spent by run 'old' 30 days ago: a $10 run limit has $5 left, not $10.

    And a global limit without a period counts every row ever, not the last week's.
    """
    db = tmp_path / "old.db"
    month_ago = time.time() - 30 * 86400
    async with System(Store.spec(db), name="old", default_timeout=5.0) as system:
        store = system.lookup("store")
        row = (month_ago, "old", "R", "", "local", "m", 5.0, 8.0, 2, 3, 1)
        await store.ask_async(
            StoreInsert(
                table="spend",
                columns=(
                    "at",
                    "run_id",
                    "reactor",
                    "agent",
                    "host",
                    "model",
                    "cost_usd",
                    "reserved_usd",
                    "input_tokens",
                    "output_tokens",
                    "priced",
                ),
                rows=(row,),
            )
        )
        per_run: Any = await system.spawn_async(
            Budget.spec(limits(BudgetLimitConfig(scope="run", usd=10)), {"m": PRICE}, store=store)
        )
        with pytest.raises(AskError) as caught:
            await per_run.ask_async(hold("old"))
        assert "run budget" in caught.value.failure.message
        fresh: Reservation = await per_run.ask_async(hold("new"))  # another run: $10 left
        assert fresh.amount_usd == 8.0
        ever: Any = await system.spawn_async(
            Budget.spec(
                limits(BudgetLimitConfig(scope="global", usd=12)),
                {"m": PRICE},
                store=store,
                name="ever",
            )
        )
        with pytest.raises(AskError):
            await ever.ask_async(hold("x"))  # $5 of $12 spent a month ago: $8 does not fit


@pytest.mark.asyncio
async def test_a_stream_cut_after_tokens_is_charged_what_the_server_reported(
    system: System,
) -> None:
    """Anthropic reports the prompt's tokens first; the stream breaks after some text.

    The call failed, but the server did the work: its reported prompt tokens and the
    output received are charged, not released. A refused call (a 400) costs nothing.
    """
    with FakeServer("anthropic", models=["m"]) as fake:
        host = await start_host_async(
            system, HostConfig(url=fake.url, protocol="anthropic", api_key=SecretStr("k"))
        )
        budget = await start_budget(system, limits(BudgetLimitConfig(scope="global", usd=1e6)))
        fake.inject(Fault(close_after=4, times=1))
        streamed = ChatRequest.prompt("m", "tell me a long story", max_tokens=50, stream=True)
        failure = await budgeted_chat(host, streamed, budget=budget, scope=SpendScope())
        assert isinstance(failure, Failure)
        assert int(failure.details["received_chars"]) > 0
        reported = int(failure.details["input_tokens"])
        usage = failed_usage(failure, streamed)
        assert usage is not None
        assert usage.input_tokens == reported
        assert usage.output_tokens > 0
        report: SpendReport = await budget.ask_async(SpendQuery())
        while report.calls < 1:
            report = await budget.ask_async(SpendQuery())
        assert report.total_usd == usage.input_tokens + usage.output_tokens  # $1 a token
        assert report.budgets[0].reserved_usd == 0.0

        fake.inject(Fault(status=400, times=1))
        refused = await budgeted_chat(host, request(), budget=budget, scope=SpendScope())
        assert isinstance(refused, Failure)
        after: SpendReport = await budget.ask_async(SpendQuery())
        assert (after.calls, after.total_usd) == (1, report.total_usd)
        assert after.budgets[0].reserved_usd == 0.0


@pytest.mark.asyncio
async def test_a_stream_cut_after_a_tool_call_began_is_charged(
    system: System, server: FakeServer
) -> None:
    """No text arrived, but a tool call had begun: the server did the work, so it is charged.

    The prompt (estimated at 5 tokens) and a token for the tool call's head, at $1 each.
    """
    budget = await start_budget(system, limits(BudgetLimitConfig(scope="global", usd=1e6)))
    host = await local(system, server)
    call = FakeToolCall("lookup", {"query": "a question long enough to stream in pieces"})
    server.script(Reply(tool_calls=(call,)))
    server.inject(Fault(error_after=3))
    streamed = ChatRequest.prompt("m", "hi", max_tokens=50, stream=True)
    failure = await budgeted_chat(host, streamed, budget=budget, scope=SpendScope())
    assert isinstance(failure, Failure)
    assert failure.details["received_chars"] == "0"
    assert failure.details["received_tool_calls"] == "1"
    report: SpendReport = await budget.ask_async(SpendQuery())  # after the settle, told first
    assert report.calls == 1
    assert report.total_usd == estimate_prompt_tokens(streamed) + 1
    assert report.budgets[0].reserved_usd == 0.0


@pytest.mark.asyncio
async def test_reservations_learn_the_servers_prompt_count(system: System) -> None:
    """The server counts 10x the estimate: the next reservation holds 10x + the margin."""
    with FakeServer(
        "openai",
        models=["m"],
        responder=lambda _: Reply(text="ok", input_tokens=50, output_tokens=3),
    ) as fake:
        host = await local(system, fake)
        budget = await start_budget(system, limits(BudgetLimitConfig(scope="global", usd=1e6)))
        estimate = estimate_prompt_tokens(request())
        first: Reservation = await budget.ask_async(
            Reserve(host="local", model="m", prompt_tokens=estimate, max_tokens=3)
        )
        assert first.prompt_tokens == estimate
        budget.tell(Release(id=first.id))
        answer = await budgeted_chat(host, request(), budget=budget, scope=SpendScope())
        assert not isinstance(answer, Failure)
        report: SpendReport = await budget.ask_async(SpendQuery())
        while report.calls < 1:
            report = await budget.ask_async(SpendQuery())
        second: Reservation = await budget.ask_async(
            Reserve(host="local", model="m", prompt_tokens=estimate, max_tokens=3)
        )
        expected = math.ceil(estimate * (50 / estimate) * (1 + CALIBRATION_MARGIN))
        assert second.prompt_tokens == expected
        assert second.amount_usd == expected + 3


def test_the_prompt_estimate_stays_above_real_counts_for_other_scripts() -> None:
    """CJK text runs about 1 to 1.5 tokens a character: the estimate allows 1.5."""
    text = "漢字のテキスト" * 50  # 350 characters, 1050 UTF-8 bytes
    tokens = estimate_prompt_tokens(ChatRequest.prompt("m", text))
    assert tokens >= 1.5 * len(text)
    english = estimate_prompt_tokens(ChatRequest.prompt("m", "a" * 300))
    assert english == 100 + 4


@pytest.mark.asyncio
async def test_an_unsettled_reservation_expires_and_a_late_settle_is_still_charged(
    system: System,
) -> None:
    """A call of 1 s whose settle never came is released 30 s past its deadline.

    Its settle, when it does come (it was sent while the Budget restarted, say), is
    charged to the model and run it names.
    """
    now = [1_000_000.0]
    budget: Any = await system.spawn_async(
        ChildSpec(
            name="budget",
            actor=Budget,
            args=(limits(BudgetLimitConfig(scope="global", usd=10)), {"m": PRICE}),
            kwargs={"clock": lambda: now[0]},
        )
    )
    lost: Reservation = await budget.ask_async(
        Reserve(host="local", model="m", prompt_tokens=5, max_tokens=3, seconds=1.0)
    )
    with pytest.raises(AskError):
        await budget.ask_async(hold())  # $8 held, $2 left
    now[0] += 1.0 + 31.0
    again: Reservation = await budget.ask_async(hold())  # the lost one expired
    budget.tell(Release(id=again.id))
    budget.tell(
        Settle(id=lost.id, usage=Usage(input_tokens=2, output_tokens=3), host="local", model="m")
    )
    report: SpendReport = await budget.ask_async(SpendQuery())
    assert (report.budgets[0].spent_usd, report.budgets[0].reserved_usd) == (5.0, 0.0)
    assert report.calls == 1
