"""Strategies: model loads on a one-model server, the chooser's cost, the runner's overhead.

What is measured (``python -m benchmarks strategies``, one JSON object on stdout):

* ``loads_grouped`` vs ``loads_interleaved``: six consensus members A B C A B C over three
  models that do not fit together, on a fake LM Studio server (real ModelHost, loopback
  HTTP) that keeps one model resident (LM Studio's JIT Auto-Evict): a load is each
  request for a model other than the one the server served last (the first counts when
  the model starts unloaded). Interleaved: the six calls at once, in member order (what
  a scheduler that ignores memory does); grouped: the chooser's waves. Expected from the
  reference: up to 6 against **3**. ``loads_sequential`` is the members one by one in
  their order (also 6);
* ``choose_us``: median time of one :func:`choose_strategy` (features given, a catalog of
  12 models on 3 hosts, 5 members that do not fit: the waves planned);
  ``analyse_choose_us`` with the prompt's features read too;
* ``runner_overhead_us``: median time of one ``consensus`` of 5 members through
  :func:`run_strategy` with member calls that answer at once (no I/O), minus the time
  of awaiting the same five calls with ``asyncio.gather``: what the strategy adds.

Targets: ``loads_grouped`` equals the number of distinct models (3);
``runner_overhead_us`` at most 200 (the consensus coordinator's budget, issue 14).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import otel
from actors import System
from actors.llm import (
    Catalog,
    ChatRequest,
    Completion,
    HostConfig,
    HostInventory,
    ModelHost,
    ModelInfo,
)
from actors.orchestration import analyse
from actors.orchestration.selection import TaskFeatures
from actors.orchestration.strategies import (
    Member,
    StrategyChoice,
    choose_strategy,
    host_caller,
    run_strategy,
)
from actors.testing import FakeModel, FakeServer

GB = 1_000_000_000


def loads(sequence: Sequence[str], resident: str | None) -> int:
    """Loads a one-model server makes to serve ``sequence`` starting with ``resident``."""
    count = 0
    for model in sequence:
        if model != resident:
            count += 1
            resident = model
    return count


async def _measure_loads() -> dict[str, int]:
    models = [FakeModel(x, loaded=False, size_bytes=8 * GB) for x in "ABC"]
    members = [Member(x) for x in "ABCABC"]
    features = TaskFeatures(task_type="reasoning", complexity=0.5, inferred=False)
    out: dict[str, int] = {}
    with FakeServer("lmstudio", models=models) as fake:
        catalog = Catalog()
        infos = tuple(ModelInfo(id=x, loaded=False, size_bytes=8 * GB) for x in "ABC")
        catalog.add_host(
            "studio", HostInventory(url=fake.url, provider="lmstudio", reachable=True, models=infos)
        )
        catalog.set_free_bytes(12 * GB, budget=12 * GB)
        async with System(name="bench-strategies") as system:
            await system.spawn_async(
                ModelHost, name="studio", args=(HostConfig(url=fake.url, protocol="lmstudio"),)
            )

            def resolve(model: str, host: str | None) -> tuple[Any, str]:
                return system.lookup(host or "studio"), model

            call = host_caller(resolve, timeout=10.0)
            grouped = choose_strategy(features, members, catalog, kind="consensus")
            one_wave = StrategyChoice(
                strategy=grouped.strategy,
                task_type=grouped.task_type,
                profile=grouped.profile,
                temperatures=grouped.temperatures,
                waves=(tuple(range(6)),),
                fit=grouped.fit,
                reasons=(),
            )
            one_by_one = StrategyChoice(
                strategy=grouped.strategy,
                task_type=grouped.task_type,
                profile=grouped.profile,
                temperatures=grouped.temperatures,
                waves=tuple((i,) for i in range(6)),
                fit=grouped.fit,
                reasons=(),
            )
            for name, choice in (
                ("loads_interleaved", one_wave),
                ("loads_sequential", one_by_one),
                ("loads_grouped", grouped),
            ):
                fake.calls.clear()
                await run_strategy(choice, "What is 6 * 7?", call=call)
                asked = [c.model or "" for c in fake.calls if c.path.endswith("/chat/completions")]
                out[name] = loads(asked, None)
    return out


def _catalog() -> Catalog:
    catalog = Catalog()
    for host, protocol in (("studio", "lmstudio"), ("ollama", "ollama"), ("box", "ollama")):
        infos = tuple(
            ModelInfo(id=f"{host}-m{i}", loaded=i == 0, size_bytes=6 * GB) for i in range(4)
        )
        catalog.add_host(
            host,
            HostInventory(
                url="http://127.0.0.1:1", provider=protocol, reachable=True, models=infos
            ),
        )
    catalog.set_free_bytes(10 * GB, budget=24 * GB)
    return catalog


def _median_us(fn: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def _measure_choose(rounds: int) -> dict[str, float]:
    catalog = _catalog()
    members = [
        Member(f"{h}-m{i}")
        for h, i in (("studio", 0), ("studio", 1), ("ollama", 1), ("ollama", 2), ("box", 3))
    ]
    features = TaskFeatures(task_type="reasoning", complexity=0.5, inferred=False)
    prompt = "Solve 17 * 23 step by step, then check the result."
    choice = choose_strategy(features, members, catalog)
    assert len(choice.waves) > 1  # the case that plans waves
    return {
        "choose_us": _median_us(lambda: choose_strategy(features, members, catalog), rounds),
        "analyse_choose_us": _median_us(
            lambda: choose_strategy(analyse(prompt), members, catalog), rounds
        ),
    }


async def _instant(m: Member, request: ChatRequest) -> Completion:
    return Completion(model=m.model, provider="bench", content="42")


async def _measure_runner(rounds: int) -> float:
    members = [Member(x) for x in "abcde"]
    features = TaskFeatures(task_type="reasoning", complexity=0.5, inferred=False)
    choice = choose_strategy(features, members, None, kind="consensus")
    request = ChatRequest.prompt("", "q")
    strategy_times: list[float] = []
    bare_times: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        await run_strategy(choice, "q", call=_instant)
        strategy_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        await asyncio.gather(*(_instant(m, request) for m in members))
        bare_times.append(time.perf_counter() - started)
    return (statistics.median(strategy_times) - statistics.median(bare_times)) * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print one JSON object."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks strategies")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (for the test suite)")
    ns = parser.parse_args(argv)
    rounds = 200 if ns.quick else 5000
    otel.configure_logging(level="critical")
    figures: dict[str, Any] = {}
    figures.update(asyncio.run(_measure_loads()))
    figures.update({k: round(v, 2) for k, v in _measure_choose(rounds).items()})
    figures["runner_overhead_us"] = round(asyncio.run(_measure_runner(rounds)), 2)
    figures["targets"] = {"loads_grouped": 3, "runner_overhead_us": 200}
    figures["targets_met"] = {
        "loads_grouped": figures["loads_grouped"] == 3,
        "runner_overhead_us": figures["runner_overhead_us"] <= 200,
    }
    json.dump(figures, sys.stdout)
    sys.stdout.write("\n")
    return 0
