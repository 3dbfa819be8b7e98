"""The fallback and budget half of ``python -m benchmarks orchestration``.

Against an in-process fake OpenAI server (loopback HTTP, real ModelHosts), with the
truth known because the server's behaviour is scripted:

* ``budget_calls``, ``budget_admitted``, ``budget_overspend_usd``,
  ``budget_requests_sent``: a global budget of exactly N worst cases, and 8N calls
  started at once through :func:`~actors.orchestration.budgeted_chat`; admitted must
  equal N (and so must the requests the server saw), overspend must be 0;
* ``budget_select_calls``, ``budget_select_admitted``, ``budget_select_overspend_usd``:
  the same through the Selector (8N ``SelectChat`` s at once, under a Budget that
  quotes and reserves each choice); admitted must equal N;
* ``budget_restart_calls``, ``budget_restart_admitted``,
  ``budget_restart_overspend_usd``: a Budget on a real SQLite store, N worst cases of
  room; 4N calls at once (N admitted, in flight for 3 s on a slow server), then the
  Budget crashes and restarts, then 4N more while the first N are still in flight: the
  restarted Budget holds the first N again, so none of the second wave is admitted
  unless first-wave calls settled first (their real cost is below the worst case, so
  settling frees room: ``budget_restart_first_wave_answered_before_second`` says how
  many had); overspend must be 0;
* ``fallback_overhead_us``: a chain whose first link answers, against a direct ask of
  the same host and model, in the same run (one call of each side in turn on the
  system's I/O loop, the side that leads swapping every pair; the fake server in a
  child process), the difference of the medians per call;
  ``fallback_overhead_loop_cpu_us`` the same in CPU time of the I/O loop thread per
  call (the chain, the host and its HTTP client run there; the fake server does not);
* ``fallback_p50_ms``: a chain whose first link answers 500 to every request (after
  the server's latency), the second answering; the health record and the host's breaker
  are set so that every request really goes through the failing link first;
* ``fallback_direct_p50_ms``: the same request sent straight to the second link;
* ``fallback_with_health_p50_ms``: the chain again with the default ejection and
  breaker, once they have learnt that the first link fails (it is demoted).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from actors import ActorRestarted, AskError, Message, System
from actors.llm import (
    BreakerConfig,
    BudgetLimitConfig,
    BudgetsConfig,
    ChatRequest,
    Completion,
    Config,
    HostConfig,
    PriceConfig,
    start_fleet_async,
)
from actors.orchestration import (
    Budget,
    Chain,
    FallbackChain,
    FallbackRequest,
    SelectChat,
    Selector,
    SpendQuery,
    SpendScope,
    budgeted_chat,
    estimate_prompt_tokens,
)
from actors.store import Store
from actors.testing import FakeServer, Fault, Reply
from benchmarks._server import separate_server

__all__ = ["run"]

_PRICE = PriceConfig(input_per_mtok=1.0, output_per_mtok=2.0)


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def _budget(system: System, server: FakeServer, calls: int) -> dict[str, Any]:
    host = await system.spawn_async(_host_spec(server, "budget-host", max_parallel=64))
    request = ChatRequest.prompt("a", "How much is enough?", max_tokens=16)
    worst = _PRICE.worst_case(estimate_prompt_tokens(request), 16, 0.0)
    limit = calls * worst
    settings = BudgetsConfig(limits=[BudgetLimitConfig(scope="global", usd=limit)])
    budget: Any = await system.spawn_async(
        Budget.spec(settings, {"a": _PRICE}, name="bench-budget")
    )
    sent_before = _chats(server)
    answers = await asyncio.gather(
        *(
            budgeted_chat(host, request, budget=budget, scope=SpendScope(run_id="bench"))
            for _ in range(8 * calls)
        )
    )
    admitted = sum(1 for a in answers if isinstance(a, Completion))
    report = await budget.ask_async(SpendQuery())
    spent_and_held = report.total_usd + sum(b.reserved_usd for b in report.budgets)
    return {
        "budget_calls": calls,
        "budget_requests": 8 * calls,
        "budget_admitted": admitted,
        "budget_requests_sent": _chats(server) - sent_before,
        "budget_limit_usd": limit,
        "budget_spent_usd": report.total_usd,
        "budget_overspend_usd": max(0.0, spent_and_held - limit),
    }


async def _budget_select(system: System, server: FakeServer, calls: int) -> dict[str, Any]:
    config = Config.model_validate(
        {
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
            "hosts": {"sel-host": {"url": server.url, "protocol": "openai", "max_parallel": 64}},
            "models": {"a": {"context_length": 8192}},
        }
    )
    fleet = await start_fleet_async(system, config)
    request = ChatRequest.prompt("", "How much is enough?", max_tokens=16)
    worst = _PRICE.worst_case(estimate_prompt_tokens(request), 16, 0.0)
    limit = calls * worst
    settings = BudgetsConfig(limits=[BudgetLimitConfig(scope="global", usd=limit)])
    budget: Any = await system.spawn_async(
        Budget.spec(settings, {"sel-host/a": _PRICE}, name="select-budget")
    )
    selector: Any = await system.spawn_async(
        Selector, name="bench-selector", args=(fleet.catalog,), kwargs={"budget": budget}
    )
    sent_before = _chats(server)
    answers = await asyncio.gather(
        *(
            selector.ask_async(SelectChat(request=request, candidates=("sel-host/a",)))
            for _ in range(8 * calls)
        ),
        return_exceptions=True,
    )
    admitted = sum(1 for a in answers if isinstance(a, Completion))
    report = await budget.ask_async(SpendQuery())
    while report.calls < admitted:  # settles are one-way: they follow the answers
        await asyncio.sleep(0.001)
        report = await budget.ask_async(SpendQuery())
    spent_and_held = report.total_usd + sum(b.reserved_usd for b in report.budgets)
    await fleet.close_async()
    return {
        "budget_select_calls": calls,
        "budget_select_requests": 8 * calls,
        "budget_select_admitted": admitted,
        "budget_select_requests_sent": _chats(server) - sent_before,
        "budget_select_overspend_usd": max(0.0, spent_and_held - limit),
    }


class _Crash(Message, frozen=True):
    """Makes :class:`_Crashable` raise (its supervisor restarts it)."""


class _Crashable(Budget):
    """A Budget that crashes on :class:`_Crash`."""

    def receive(self, message: Any) -> object:
        if isinstance(message, _Crash):
            msg = "crashed on purpose"
            raise RuntimeError(msg)
        return super().receive(message)


async def _budget_restart(server: FakeServer, calls: int) -> dict[str, Any]:
    request = ChatRequest.prompt("a", "How much is enough?", max_tokens=16)
    worst = _PRICE.worst_case(estimate_prompt_tokens(request), 16, 0.0)
    limit = calls * worst
    settings = BudgetsConfig(limits=[BudgetLimitConfig(scope="global", usd=limit)])
    with tempfile.TemporaryDirectory() as folder:
        async with System(
            Store.spec(Path(folder) / "budget.db"), name="bench-restart", default_timeout=30.0
        ) as system:
            host = await system.spawn_async(_host_spec(server, "restart-host", max_parallel=64))
            budget: Any = await system.spawn_async(
                _Crashable.spec(settings, {"a": _PRICE}, store=system.lookup("store"))
            )
            restarted: asyncio.Queue[ActorRestarted] = asyncio.Queue()
            system.bus.subscribe(ActorRestarted, restarted)
            server.inject(Fault(latency=3.0, model="a", times=None))  # the first wave waits
            scope = SpendScope(run_id="restart")
            first = [
                asyncio.ensure_future(budgeted_chat(host, request, budget=budget, scope=scope))
                for _ in range(4 * calls)
            ]
            for _ in range(100_000):  # until the first wave holds all the room
                held = await budget.ask_async(SpendQuery())
                if held.budgets and held.budgets[0].reserved_usd >= limit * 0.999:
                    break
                await asyncio.sleep(0.001)
            budget.tell(_Crash())
            await asyncio.wait_for(restarted.get(), 30)
            server.clear()
            answered_before = sum(
                1 for f in first if f.done() and isinstance(f.result(), Completion)
            )
            second = await asyncio.gather(
                *(
                    budgeted_chat(host, request, budget=budget, scope=scope)
                    for _ in range(4 * calls)
                )
            )
            answers = [*(await asyncio.gather(*first)), *second]
            admitted = sum(1 for a in answers if isinstance(a, Completion))
            report = await budget.ask_async(SpendQuery())
            while report.budgets[0].reserved_usd > 0:  # the first wave's settles follow
                await asyncio.sleep(0.001)
                report = await budget.ask_async(SpendQuery())
            (account,) = report.budgets
            overspend = account.spent_usd + account.reserved_usd - limit
    return {
        "budget_restart_calls": calls,
        "budget_restart_requests": 8 * calls,
        "budget_restart_admitted": admitted,
        "budget_restart_admitted_after_restart": sum(
            1 for a in second if isinstance(a, Completion)
        ),
        "budget_restart_first_wave_answered_before_second": answered_before,
        "budget_restart_overspend_usd": max(0.0, overspend),
    }


def _chats(server: FakeServer) -> int:
    return sum(1 for c in server.calls if c.path.endswith("/chat/completions"))


def _host_spec(
    server: FakeServer | str, name: str, *, max_parallel: int = 8, threshold: int = 5
) -> Any:
    from actors import ChildSpec  # noqa: PLC0415
    from actors.llm import ModelHost  # noqa: PLC0415

    settings = HostConfig(
        url=server if isinstance(server, str) else server.url,
        protocol="openai",
        max_parallel=max_parallel,
        timeout_s=10.0,
        breaker=BreakerConfig(failure_threshold=threshold, min_calls=threshold, window=threshold),
    )
    return ChildSpec(name=name, actor=ModelHost, args=(settings,))


async def _timed(coro: Any) -> float:
    started = time.perf_counter()
    with contextlib.suppress(AskError):
        await coro
    return time.perf_counter() - started


async def _alternate(
    host: Any, ref: Any, n: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Wall and loop-thread CPU time (s) per call, direct and chained, one of each in turn.

    Run on the system's I/O loop, where the host and the chain run (as the selection
    overhead is): an answer reaches the caller on the thread that made it, so whatever
    the chain does after answering is in its own call, never in the next one's, and the
    thread's CPU time over a call is what the loop spent on it. The order of each pair
    is swapped every other pair, so a slow stretch of the machine falls on both sides.
    """
    direct: list[float] = []
    chained: list[float] = []
    direct_cpu: list[float] = []
    chained_cpu: list[float] = []
    for number in range(n):
        text = f"q {number}"
        for side in ("direct", "chain") if number % 2 == 0 else ("chain", "direct"):
            cpu = time.thread_time()
            if side == "direct":
                wall = await _timed(host.ask_async(ChatRequest.prompt("a", text)))
                direct.append(wall)
                direct_cpu.append(time.thread_time() - cpu)
            else:
                request = FallbackRequest(request=ChatRequest.prompt("", text))
                wall = await _timed(ref.ask_async(request))
                chained.append(wall)
                chained_cpu.append(time.thread_time() - cpu)
    return direct, chained, direct_cpu, chained_cpu


async def _overhead(system: System, url: str, n: int) -> dict[str, Any]:
    """A chain whose first link answers against a direct ask of that link (alternating calls).

    Both call a fake server in a child process (:mod:`benchmarks._server`).
    """
    host = await system.spawn_async(_host_spec(url, "overhead-host"))
    chain = Chain(links=("a", "b"), name="overhead")
    ref = await system.spawn_async(
        FallbackChain, name="overhead-chain", args=(chain, lambda m, h: (host, m))
    )
    for warm in range(20):  # warm both paths (connections, code)
        await host.ask_async(ChatRequest.prompt("a", f"warm {warm}"))
        await ref.ask_async(FallbackRequest(request=ChatRequest.prompt("", f"warm {warm}")))
    on_loop = asyncio.run_coroutine_threadsafe(_alternate(host, ref, n), system.bridge.loop)
    direct, chained, direct_cpu, chained_cpu = await asyncio.wrap_future(on_loop)
    return {
        "fallback_overhead_us": round(_median_us(chained) - _median_us(direct), 1),
        "fallback_overhead_loop_cpu_us": round(_median_us(chained_cpu) - _median_us(direct_cpu), 1),
        "fallback_first_link_p50_us": round(_median_us(chained), 1),
        "fallback_baseline_ask_p50_us": round(_median_us(direct), 1),
        "fallback_overhead_calls": len(chained),
    }


async def _fall_through(
    system: System, server: FakeServer, n: int, latency: float
) -> dict[str, Any]:
    server.inject(Fault(status=500, latency=latency, model="down", times=None))
    server.inject(Fault(latency=latency, model="b", times=None))
    strict = await system.spawn_async(_host_spec(server, "fall-host", threshold=1_000_000))
    learning = await system.spawn_async(_host_spec(server, "health-host"))
    never_eject = Chain(links=("down", "b"), name="down-first", eject_after=1_000_000)
    ref = await system.spawn_async(
        FallbackChain, name="fall-chain", args=(never_eject, lambda m, h: (strict, m))
    )
    healthy = await system.spawn_async(
        FallbackChain,
        name="health-chain",
        args=(Chain(links=("down", "b"), name="learns"), lambda m, h: (learning, m)),
    )
    chain_s: list[float] = []
    direct_s: list[float] = []
    health_s: list[float] = []
    for i in range(10):  # the learning chain finds out that "down" fails
        await _timed(healthy.ask_async(FallbackRequest(request=ChatRequest.prompt("", f"w{i}"))))
    for i in range(n):
        request = ChatRequest.prompt("", f"q {i}")
        chain_s.append(await _timed(ref.ask_async(FallbackRequest(request=request), timeout=10)))
        direct_s.append(await _timed(strict.ask_async(ChatRequest.prompt("b", f"q {i}"))))
        health_s.append(
            await _timed(healthy.ask_async(FallbackRequest(request=request), timeout=10))
        )
    return {
        "fallback_p50_ms": round(statistics.median(chain_s) * 1e3, 2),
        "fallback_direct_p50_ms": round(statistics.median(direct_s) * 1e3, 2),
        "fallback_with_health_p50_ms": round(statistics.median(health_s) * 1e3, 2),
        "fallback_server_latency_ms": latency * 1e3,
    }


async def _all(quick: bool) -> dict[str, Any]:
    calls = 10 if quick else 50
    n = 100 if quick else 1000
    through = 10 if quick else 100
    with (
        FakeServer(
            "openai",
            models=["a", "b", "down"],
            responder=lambda _: Reply(text="fine", input_tokens=10, output_tokens=4),
        ) as server,
        separate_server(["a", "b"]) as url,
    ):
        async with System(name="bench-orchestration", default_timeout=30.0) as system:
            result = await _budget(system, server, calls)
            result.update(await _budget_select(system, server, calls))
            result.update(await _overhead(system, url, n))
            result.update(await _fall_through(system, server, through, latency=0.01))
        result.update(await _budget_restart(server, calls))  # a System of its own, with a Store
    return result


def run(*, quick: bool = False) -> dict[str, Any]:
    """Every fallback and budget figure, as one dict."""
    return asyncio.run(_all(quick))
