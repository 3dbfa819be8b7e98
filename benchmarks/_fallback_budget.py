"""The fallback and budget half of ``python -m benchmarks orchestration``.

Against an in-process fake OpenAI server (loopback HTTP, real ModelHosts), with the
truth known because the server's behaviour is scripted:

* ``budget_calls``, ``budget_admitted``, ``budget_overspend_usd``,
  ``budget_requests_sent``: a global budget of exactly N worst cases, and 8N calls
  started at once through :func:`~actors.orchestration.budgeted_chat`; admitted must
  equal N (and so must the requests the server saw), overspend must be 0;
* ``fallback_overhead_us``: a chain whose first link answers, against a direct ask of
  the same host and model, in the same run (blocks of calls alternate, the side that
  leads swaps), the difference of the medians per call;
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
import time
from typing import Any

from actors import AskError, System
from actors.llm import (
    BreakerConfig,
    BudgetLimitConfig,
    BudgetsConfig,
    ChatRequest,
    Completion,
    HostConfig,
    PriceConfig,
)
from actors.orchestration import (
    Budget,
    Chain,
    FallbackChain,
    FallbackRequest,
    SpendQuery,
    SpendScope,
    budgeted_chat,
    estimate_prompt_tokens,
)
from actors.testing import FakeServer, Fault, Reply

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


def _chats(server: FakeServer) -> int:
    return sum(1 for c in server.calls if c.path.endswith("/chat/completions"))


def _host_spec(server: FakeServer, name: str, *, max_parallel: int = 8, threshold: int = 5) -> Any:
    from actors import ChildSpec  # noqa: PLC0415
    from actors.llm import ModelHost  # noqa: PLC0415

    settings = HostConfig(
        url=server.url,
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


async def _overhead(system: System, server: FakeServer, n: int) -> dict[str, Any]:
    host = await system.spawn_async(_host_spec(server, "overhead-host"))
    chain = Chain(links=("a", "b"), name="overhead")
    ref = await system.spawn_async(
        FallbackChain, name="overhead-chain", args=(chain, lambda m, h: (host, m))
    )
    direct: list[float] = []
    chained: list[float] = []
    block = 50
    for warm in range(20):  # warm both paths (connections, code)
        await host.ask_async(ChatRequest.prompt("a", f"warm {warm}"))
        await ref.ask_async(FallbackRequest(request=ChatRequest.prompt("", f"warm {warm}")))
    for number in range(0, n, block):
        sides = [("direct", direct), ("chain", chained)]
        if (number // block) % 2:
            sides.reverse()
        for side, samples in sides:
            for i in range(block):
                text = f"q {number + i}"
                if side == "direct":
                    call = host.ask_async(ChatRequest.prompt("a", text))
                else:
                    call = ref.ask_async(FallbackRequest(request=ChatRequest.prompt("", text)))
                samples.append(await _timed(call))
    return {
        "fallback_overhead_us": round(_median_us(chained) - _median_us(direct), 1),
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
    with FakeServer(
        "openai",
        models=["a", "b", "down"],
        responder=lambda _: Reply(text="fine", input_tokens=10, output_tokens=4),
    ) as server:
        async with System(name="bench-orchestration", default_timeout=30.0) as system:
            result = await _budget(system, server, calls)
            result.update(await _overhead(system, server, n))
            result.update(await _fall_through(system, server, through, latency=0.01))
    return result


def run(*, quick: bool = False) -> dict[str, Any]:
    """Every fallback and budget figure, as one dict."""
    return asyncio.run(_all(quick))
