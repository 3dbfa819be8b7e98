"""Reactor executor overhead: no-op steps through the Engine against plain asyncio.

Two reactors of no-op ``async def`` steps:

* ``chain``: 10 steps, each taking the previous one's result;
* ``fanout``: 100 independent steps, then one step taking all 100 results (101 steps),
  run with ``max_concurrency=128`` so that no step waits for a slot.

Each runs through the :class:`~reactor.Engine` (journaling on, into a real SQLite file
in a temporary directory; ``Engine(tracing=False, logging=False)``), called from the
main thread with ``Engine.run``, and as plain asyncio on the same I/O loop (the steps
awaited in sequence, or ``asyncio.gather`` then the join), submitted from the main
thread with ``asyncio.run_coroutine_threadsafe(...).result()``. Per round, each side
does ``--runs`` runs (the fan-out a fifth as many) and the figure is the median time
per run; plain and engine alternate which goes first; the reported figure is the
median over the rounds.

Derived figures: ``*_step_overhead_us = (engine - plain) / steps`` and
``*_ratio = engine / plain``. Variants:

* ``chain_engine_traced_us``: tracing on (every span really created, exported
  synchronously into memory and cleared between runs) and ``Engine(tracing=True)``;
* ``chain_engine_normal_us``: the Store with ``synchronous=NORMAL`` (in a second
  system and database) instead of ``FULL``: a chain is a sequence of group commits,
  and with ``FULL`` each one waits for an fsync.

``--profile`` adds ``cpu_us_per_chain_run_by_thread``: where the CPU time of an engine
chain run goes, thread by thread (the I/O loop, the Store actor, SQLite's worker, the
Run actor, ...; Linux only). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import inspect
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, cast

import otel
from actors import System
from dsl import Input, Reactor, ref, step
from otel.testing import InMemorySpanExporter
from reactor.app import Engine

__all__ = ["TARGETS", "main", "run"]

TARGETS: dict[str, float] = {
    "chain_step_overhead_us_max": 150.0,
    "fanout_step_overhead_us_max": 150.0,
}
"""What the executor should cost per no-op step on a quiet machine."""

CHAIN_STEPS = 10
FANOUT_WIDTH = 100
FANOUT_STEPS = FANOUT_WIDTH + 1
FANOUT_CONCURRENCY = 128

_DEFAULT_RUNS = 200
_DEFAULT_ROUNDS = 5
_QUICK_RUNS = 20
_QUICK_ROUNDS = 2


# ---- the reactors ---------------------------------------------------------------------


async def noop(x: int) -> int:
    """A step that does nothing."""
    return x


async def _join(**results: int) -> int:
    return len(results)


def _join_step() -> Callable[..., Coroutine[Any, Any, int]]:
    """An ``async def join(f0, ..., f99)``: one named parameter per fanned-out step."""

    async def join(**results: int) -> int:
        return await _join(**results)

    params = [
        inspect.Parameter(f"f{i}", inspect.Parameter.KEYWORD_ONLY, annotation=int)
        for i in range(FANOUT_WIDTH)
    ]
    join.__signature__ = inspect.Signature(params, return_annotation=int)  # type: ignore[attr-defined]
    return join


def _reactor(name: str, body: dict[str, Any], **keywords: Any) -> type[Reactor]:
    namespace = {"__module__": __name__, "__qualname__": name, "n": Input(int), **body}
    made = types.new_class(name, (Reactor,), keywords, lambda ns: ns.update(namespace))
    return cast("type[Reactor]", made)


Chain = _reactor(
    "Chain",
    {
        f"s{i}": step(noop, args={"x": ref("n" if i == 0 else f"s{i - 1}")})
        for i in range(CHAIN_STEPS)
    },
)
"""10 no-op steps in a line."""

FanOut = _reactor(
    "FanOut",
    {
        **{f"f{i}": step(noop, args={"x": ref("n")}) for i in range(FANOUT_WIDTH)},
        "join": step(_join_step()),
    },
    max_concurrency=FANOUT_CONCURRENCY,
)
"""100 independent no-op steps, then one that takes all their results."""


async def plain_chain(n: int) -> int:
    """The chain as plain asyncio: each step awaited in turn."""
    x = n
    for _ in range(CHAIN_STEPS):
        x = await noop(x)
    return x


async def plain_fanout(n: int) -> int:
    """The fan-out as plain asyncio: ``gather`` the 100, then the join."""
    values = await asyncio.gather(*(noop(n) for _ in range(FANOUT_WIDTH)))
    return await _join(**{f"f{i}": v for i, v in enumerate(values)})


# ---- measuring ------------------------------------------------------------------------


def _per_run_us(call: Callable[[], object], runs: int, between: Callable[[], object]) -> float:
    """The median microseconds of ``runs`` calls (``between`` runs untimed after each)."""
    samples: list[int] = []
    gc.collect()
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
        between()
    return statistics.median(samples) / 1000.0


def _nothing() -> None:
    return None


class _Side:
    """The plain and engine calls of one system (one Store file)."""

    def __init__(self, system: System, db: Path, synchronous: str) -> None:
        self.loop = system.bridge.loop
        self.engine = Engine(
            system,
            db_path=db,
            tracing=False,
            logging=False,
            max_concurrency=FANOUT_CONCURRENCY,
            store_synchronous=synchronous,
        )
        self.traced = Engine(
            system, db_path=db, tracing=True, logging=False, max_concurrency=FANOUT_CONCURRENCY
        )

    def close(self) -> None:
        self.engine.close()
        self.traced.close()

    def plain(self, coro: Callable[[int], Coroutine[Any, Any, int]]) -> Callable[[], int]:
        loop = self.loop

        def call() -> int:
            return asyncio.run_coroutine_threadsafe(coro(1), loop).result()

        return call

    def engine_call(self, reactor: type[Reactor], *, traced: bool = False) -> Callable[[], Any]:
        engine = self.traced if traced else self.engine

        def call() -> Any:
            return engine.run(reactor, {"n": 1})

        return call

    def check(self) -> None:
        """One run of each kind, checking the answers (fails loudly, not slowly)."""
        expected = {
            "chain": (self.plain(plain_chain)(), self.engine_call(Chain)(), 1),
            "fanout": (self.plain(plain_fanout)(), self.engine_call(FanOut)(), FANOUT_WIDTH),
        }
        for name, (plain, engine, want) in expected.items():
            if plain != want or engine != want:
                msg = f"{name}: plain gave {plain!r}, the engine {engine!r}; expected {want!r}"
                raise RuntimeError(msg)


def _paired(
    plain: Callable[[], object], engine: Callable[[], object], runs: int, plain_first: bool
) -> tuple[float, float]:
    """Median per-run microseconds of both sides, the leader as told."""
    if plain_first:
        p = _per_run_us(plain, runs, _nothing)
        e = _per_run_us(engine, runs, _nothing)
    else:
        e = _per_run_us(engine, runs, _nothing)
        p = _per_run_us(plain, runs, _nothing)
    return p, e


def _traced_chain_us(side: _Side, runs: int) -> tuple[float, int]:
    """Median per-run microseconds of traced engine chain runs, and spans per run."""
    exporter = InMemorySpanExporter()
    provider = otel.configure_tracing(
        exporter="none", span_exporter=exporter, batch=False, sample_ratio=1.0, set_global=False
    )
    if provider is None:
        msg = "tracing could not be turned on (is OTEL_SDK_DISABLED=true set?)"
        raise RuntimeError(msg)
    try:
        call = side.engine_call(Chain, traced=True)
        call()  # warm
        exporter.clear()
        call()
        spans = len(exporter.get_finished_spans())
        exporter.clear()
        us = _per_run_us(call, runs, exporter.clear)
    finally:
        otel.shutdown_tracing()
    if spans == 0:
        msg = "tracing was on but no span was recorded"
        raise RuntimeError(msg)
    return us, spans


def _rounds(runs: int, rounds: int, tmp: Path) -> dict[str, list[float]]:
    per_round: dict[str, list[float]] = {
        key: []
        for key in (
            "chain_plain_us",
            "chain_engine_us",
            "fanout_plain_us",
            "fanout_engine_us",
            "chain_engine_traced_us",
            "chain_plain_normal_us",
            "chain_engine_normal_us",
        )
    }
    fan_runs = max(2, runs // 5)
    otel.shutdown_tracing()  # the untraced measurements are untraced, whatever ran before
    spans = 0
    with (
        System(name="bench", default_timeout=30.0) as system,
        System(name="bench-normal", default_timeout=30.0) as normal_system,
    ):
        full = _Side(system, tmp / "full.db", "FULL")
        normal = _Side(normal_system, tmp / "normal.db", "NORMAL")
        try:
            for side in (full, normal):
                side.check()
                _paired(side.plain(plain_chain), side.engine_call(Chain), runs // 4 + 1, True)
            _paired(full.plain(plain_fanout), full.engine_call(FanOut), fan_runs // 4 + 1, True)
            for index in range(rounds):
                print(f"reactor: round {index + 1}/{rounds}", file=sys.stderr, flush=True)
                first = index % 2 == 0
                p, e = _paired(full.plain(plain_chain), full.engine_call(Chain), runs, first)
                per_round["chain_plain_us"].append(p)
                per_round["chain_engine_us"].append(e)
                p, e = _paired(full.plain(plain_fanout), full.engine_call(FanOut), fan_runs, first)
                per_round["fanout_plain_us"].append(p)
                per_round["fanout_engine_us"].append(e)
                traced, spans = _traced_chain_us(full, runs)
                per_round["chain_engine_traced_us"].append(traced)
                p, e = _paired(normal.plain(plain_chain), normal.engine_call(Chain), runs, first)
                per_round["chain_plain_normal_us"].append(p)
                per_round["chain_engine_normal_us"].append(e)
        finally:
            full.close()
            normal.close()
    per_round["spans_per_traced_chain"] = [float(spans)]
    return per_round


def _thread_cpu() -> dict[str, float]:
    """CPU seconds used so far by each live thread, by name (Linux ``/proc``; else empty)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    used: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # "Thread-5 (_connection_worker_thread)" -> "_connection_worker_thread"; "Store-1"
        # -> "Store" (names are numbered per start: the same thread role, whatever the run).
        name = re.sub(r"^Thread-\d+ \((.*)\)$", r"\1", thread.name)
        name = re.sub(r"-\d+$", "", name)
        used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return used


def _profile(runs: int, tmp: Path) -> dict[str, float]:
    """Microseconds of CPU per engine chain run, by thread.

    The Run actors' threads end with their runs: their share is the process's CPU time
    less what the live threads used (``run actors (ended threads)``).
    """
    otel.shutdown_tracing()
    with System(name="bench-profile", default_timeout=30.0) as system:
        side = _Side(system, tmp / "profile.db", "FULL")
        try:
            call = side.engine_call(Chain)
            for _ in range(10):
                call()
            before, cpu = _thread_cpu(), time.process_time()
            for _ in range(runs):
                call()
            after, cpu = _thread_cpu(), time.process_time() - cpu
        finally:
            side.close()
    shares = {name: after[name] - before.get(name, 0.0) for name in after}
    shares["run actors (ended threads)"] = cpu - sum(shares.values())
    shares["total"] = cpu
    return {
        name: round(seconds / runs * 1e6, 1)
        for name, seconds in sorted(shares.items(), key=lambda kv: -kv[1])
        if seconds > 0
    }


def run(runs: int, rounds: int, *, profile: bool = False) -> dict[str, Any]:
    """Run the benchmark; the JSON-ready result (see the module docstring)."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reactor-bench-") as tmp:
        per_round = _rounds(runs, rounds, Path(tmp))
        profiled = _profile(max(50, runs), Path(tmp)) if profile else None
    result: dict[str, Any] = {
        key: round(statistics.median(values), 2) for key, values in per_round.items()
    }
    result["spans_per_traced_chain"] = int(result["spans_per_traced_chain"])

    def overhead(engine: float, plain: float, steps: int) -> float:
        return round((engine - plain) / steps, 2)

    chain_plain, fan_plain = result["chain_plain_us"], result["fanout_plain_us"]
    result["chain_step_overhead_us"] = overhead(result["chain_engine_us"], chain_plain, CHAIN_STEPS)
    result["fanout_step_overhead_us"] = overhead(
        result["fanout_engine_us"], fan_plain, FANOUT_STEPS
    )
    result["chain_step_overhead_traced_us"] = overhead(
        result["chain_engine_traced_us"], chain_plain, CHAIN_STEPS
    )
    result["chain_step_overhead_normal_us"] = overhead(
        result["chain_engine_normal_us"], result["chain_plain_normal_us"], CHAIN_STEPS
    )
    result["chain_ratio"] = round(result["chain_engine_us"] / chain_plain, 2)
    result["fanout_ratio"] = round(result["fanout_engine_us"] / fan_plain, 2)
    result["targets"] = dict(TARGETS)
    result["targets_met"] = {
        "chain_step_overhead_us_max": result["chain_step_overhead_us"]
        <= TARGETS["chain_step_overhead_us_max"],
        "fanout_step_overhead_us_max": result["fanout_step_overhead_us"]
        <= TARGETS["fanout_step_overhead_us_max"],
    }
    result["per_round"] = {
        key: [round(value, 2) for value in values] for key, values in per_round.items()
    }
    if profiled is not None:
        result["cpu_us_per_chain_run_by_thread"] = profiled
    result["meta"] = {
        "python": platform.python_version(),
        "msgspec": importlib.metadata.version("msgspec"),
        "pykka": importlib.metadata.version("pykka"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "chain_steps": CHAIN_STEPS,
        "fanout_steps": FANOUT_STEPS,
        "fanout_max_concurrency": FANOUT_CONCURRENCY,
        "runs": runs,
        "fanout_runs": max(2, runs // 5),
        "rounds": rounds,
        "aggregate": "median over rounds of each round's median per run",
        "duration_s": round(time.perf_counter() - began, 2),
    }
    return result


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        msg = f"{text} is not a positive integer"
        raise argparse.ArgumentTypeError(msg)
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run the benchmark and print its JSON object on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks reactor",
        description="Per-step overhead of the reactor executor against plain asyncio.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a short run for tests (runs={_QUICK_RUNS}, rounds={_QUICK_ROUNDS})",
    )
    parser.add_argument("--runs", type=_positive, help=f"chain runs per round ({_DEFAULT_RUNS})")
    parser.add_argument("--rounds", type=_positive, help=f"rounds ({_DEFAULT_ROUNDS})")
    parser.add_argument(
        "--profile", action="store_true", help="add the CPU time per chain run, by thread"
    )
    ns = parser.parse_args(argv)
    runs = ns.runs or (_QUICK_RUNS if ns.quick else _DEFAULT_RUNS)
    rounds = ns.rounds or (_QUICK_ROUNDS if ns.quick else _DEFAULT_ROUNDS)
    # Log lines (the system's start and stop) go to stderr: stdout is the JSON alone.
    otel.configure_logging(level="warning", stream=sys.stderr)
    result = run(runs, rounds, profile=ns.profile)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
