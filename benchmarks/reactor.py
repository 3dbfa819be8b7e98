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
  ``spans_per_chain_run`` counts the spans one such run records (by default the run's
  span and one per step: 1 + 10); ``chain_engine_traced_normal_us`` is the same on the
  ``synchronous=NORMAL`` store (below), and ``traced_overhead_ratio`` is
  ``chain_step_overhead_traced_normal_us / chain_step_overhead_normal_us`` (target at
  most 1.5): with an fsync per commit, the disk's noise swamps what tracing adds.
  Those export each span synchronously as it ends (the SDK's simple processor, the
  strictest setting); ``chain_engine_traced_batched_normal_us`` and
  ``traced_batched_overhead_ratio`` are the same with the SDK's batch processor (what
  an OTLP exporter gets by default: spans are queued as they end and exported in
  batches from the processor's own thread);
* ``chain_engine_normal_us``: the Store with ``synchronous=NORMAL`` (in a second
  system and database) instead of ``FULL``: a chain is a sequence of group commits,
  and with ``FULL`` each one waits for an fsync.

A burst, measured first (in its own system and database, so that its peak memory is
its own): ``--burst`` runs (10,000 by default) of a 3-step reactor (two parallel no-op
steps, then a step joining them) started at once from asyncio code with
``Engine.run_async`` and ``asyncio.gather``, journaling on. ``burst_wall_s`` is the time
from the first start to the last result, ``burst_peak_rss_mb`` and
``burst_peak_threads`` the process's peak resident memory and OS thread count while it
ran (sampled every few milliseconds from ``/proc``), ``burst_plain_wall_s`` the same
shape as plain asyncio tasks. Then the barrier burst: the same number of runs, each
holding its first step at a barrier until every run has reached it (or
``--barrier-wait`` seconds passed), so that all of them are alive at once;
``barrier_runs_completed`` of ``burst_runs`` must complete. Those run with the
interpreter's garbage collector as it comes; ``burst_gc_tuned_*`` repeats the burst with
the young generation collected less often (:data:`GC_TUNED`), which is what a process
that hosts thousands of runs at once should do.

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
    "fanout_step_overhead_us_max": 100.0,
    "burst_wall_s_max": 3.0,
    "burst_peak_rss_mb_max": 512.0,
    "traced_overhead_ratio_max": 1.5,
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
_DEFAULT_BURST = 10_000
_QUICK_BURST = 300
_BARRIER_WAIT = 120.0

GC_TUNED = (50_000, 10, 10)
"""``gc.set_threshold`` for the tuned burst: collect the young generation every 50,000
net allocations instead of 700. Ten thousand live runs are about half a million objects
(a million before runs were slimmed down), and with the interpreter's defaults the full
collections they trigger are a large part of the burst."""


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


async def _add(a: int, b: int) -> int:
    return a + b


class _Barrier:
    """Holds every arriving step until ``expected`` have arrived (or ``wait`` seconds pass).

    The steps run on the system's one I/O loop, so a counter and an asyncio event made
    there need no lock.
    """

    def __init__(self) -> None:
        self.expected = 0
        self.wait = _BARRIER_WAIT
        self.arrived = 0
        self._event: asyncio.Event | None = None

    def reset(self, expected: int, wait: float) -> None:
        self.expected, self.wait, self.arrived, self._event = expected, wait, 0, None

    async def pass_(self, x: int) -> int:
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        self.arrived += 1
        if self.arrived >= self.expected:
            event.set()
        try:
            await asyncio.wait_for(event.wait(), self.wait)
        except TimeoutError:
            event.set()  # release the others too: the figure says how many arrived
        return x


BARRIER = _Barrier()


async def at_barrier(x: int) -> int:
    """A step that waits until every run of the barrier burst has reached it."""
    return await BARRIER.pass_(x)


Burst = _reactor(
    "Burst",
    {
        "a": step(noop, args={"x": ref("n")}),
        "b": step(noop, args={"x": ref("n")}),
        "join": step(_add, args={"a": ref("a"), "b": ref("b")}),
    },
)
"""Two parallel no-op steps and one joining them: the burst's run."""

BarrierBurst = _reactor(
    "BarrierBurst",
    {
        "a": step(at_barrier, args={"x": ref("n")}),
        "b": step(noop, args={"x": ref("n")}),
        "join": step(_add, args={"a": ref("a"), "b": ref("b")}),
    },
)
"""The burst's shape, its first step held at :data:`BARRIER`."""


async def plain_burst_one(n: int) -> int:
    """The burst's run as plain asyncio: two tasks gathered, then the join."""
    a, b = await asyncio.gather(noop(n), noop(n))
    return await _add(a, b)


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
            system,
            db_path=db,
            tracing=True,
            logging=False,
            max_concurrency=FANOUT_CONCURRENCY,
            store_synchronous=synchronous,  # the same Store as ``engine``'s: one per system
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


def _traced_chain_us(side: _Side, runs: int, *, batch: bool = False) -> tuple[float, int]:
    """Median per-run microseconds of traced engine chain runs, and spans per run.

    ``batch``: spans go to the exporter through the SDK's batch processor (what an OTLP
    exporter gets by default) instead of one synchronous export per span.
    """
    exporter = InMemorySpanExporter()
    provider = otel.configure_tracing(
        exporter="none", span_exporter=exporter, batch=batch, sample_ratio=1.0, set_global=False
    )
    if provider is None:
        msg = "tracing could not be turned on (is OTEL_SDK_DISABLED=true set?)"
        raise RuntimeError(msg)
    try:
        call = side.engine_call(Chain, traced=True)
        call()  # warm
        provider.force_flush()
        exporter.clear()
        call()
        provider.force_flush()
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
            "chain_engine_traced_normal_us",
            "chain_engine_traced_batched_normal_us",
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
                traced, _ = _traced_chain_us(normal, runs)
                per_round["chain_engine_traced_normal_us"].append(traced)
                traced, _ = _traced_chain_us(normal, runs, batch=True)
                per_round["chain_engine_traced_batched_normal_us"].append(traced)
        finally:
            full.close()
            normal.close()
    per_round["spans_per_chain_run"] = [float(spans)]
    return per_round


class _Peak:
    """Samples the process's resident memory and OS thread count until stopped.

    Read from ``/proc/self/status`` every few milliseconds (Linux); elsewhere the
    resident peak is ``ru_maxrss`` and the thread count Python's own threads.
    """

    def __init__(self, every: float = 0.005) -> None:
        self.rss_mb = 0.0
        self.threads = 0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> _Peak:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._sample()

    def _sample(self) -> None:
        rss_mb, threads = _rss_and_threads()
        self.rss_mb = max(self.rss_mb, rss_mb)
        self.threads = max(self.threads, threads)


def _rss_and_threads() -> tuple[float, int]:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        import resource  # noqa: PLC0415 - only where /proc is missing

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024 if sys.platform == "darwin" else 1024), threading.active_count()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def _burst(count: int, barrier_wait: float, tmp: Path) -> dict[str, float]:
    """N concurrent 3-step runs, then N held alive at a barrier (see the module docstring)."""
    otel.shutdown_tracing()
    result: dict[str, float] = {"burst_runs": float(count)}
    with System(name="bench-burst", default_timeout=60.0) as system:
        engine = Engine(system, db_path=tmp / "burst.db", tracing=False, logging=False)
        try:
            _warm(engine, system)
            print(f"reactor: burst of {count} runs", file=sys.stderr, flush=True)
            gc.collect()
            started = time.perf_counter()
            plain = asyncio.run_coroutine_threadsafe(_plain_burst(count), system.bridge.loop)
            plain.result()
            result["burst_plain_wall_s"] = time.perf_counter() - started
            result.update(_measured_burst("burst", engine, Burst, count))
            print(f"reactor: burst of {count} runs, gc tuned", file=sys.stderr, flush=True)
            defaults = gc.get_threshold()
            gc.set_threshold(*GC_TUNED)
            try:
                tuned = _measured_burst("burst_gc_tuned", engine, Burst, count)
            finally:
                gc.set_threshold(*defaults)
            del tuned["burst_gc_tuned_peak_threads"]
            result.update(tuned)
            print(f"reactor: barrier burst of {count} runs", file=sys.stderr, flush=True)
            BARRIER.reset(count, barrier_wait)
            result.update(_measured_burst("barrier", engine, BarrierBurst, count))
            result["barrier_runs_arrived"] = float(BARRIER.arrived)
        finally:
            engine.close()
    return result


def _measured_burst(
    prefix: str, engine: Engine, reactor: type[Reactor], count: int
) -> dict[str, float]:
    """One burst: its wall time, peaks and completed runs, as ``{prefix}_...`` figures."""
    gc.collect()
    with _Peak() as peak:
        started = time.perf_counter()
        completed, errors = asyncio.run(_engine_burst(engine, reactor, count))
        wall = time.perf_counter() - started
    _report_errors(prefix, errors)
    return {
        f"{prefix}_wall_s": wall,
        f"{prefix}_peak_rss_mb": peak.rss_mb,
        f"{prefix}_peak_threads": float(peak.threads),
        f"{prefix}_runs_completed": float(completed),
    }


def _warm(engine: Engine, system: System) -> None:
    """A few runs first, so the burst measures runs, not imports and the first commit."""
    for n in range(3):
        engine.run(Burst, {"n": n})
    asyncio.run_coroutine_threadsafe(_plain_burst(3), system.bridge.loop).result()


async def _plain_burst(count: int) -> None:
    await asyncio.gather(*(plain_burst_one(n) for n in range(count)))


async def _engine_burst(
    engine: Engine, reactor: type[Reactor], count: int
) -> tuple[int, list[str]]:
    """Start ``count`` runs at once and wait for all; how many completed, and the errors."""
    outcomes = await asyncio.gather(
        *(engine.run_async(reactor, {"n": n}) for n in range(count)), return_exceptions=True
    )
    errors = [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]
    bad = [o for n, o in enumerate(outcomes) if not isinstance(o, BaseException) and o != 2 * n]
    if bad:
        msg = f"{len(bad)} runs gave a wrong result, e.g. {bad[0]!r}"
        raise RuntimeError(msg)
    return count - len(errors), errors


def _report_errors(what: str, errors: list[str]) -> None:
    if not errors:
        return
    first: dict[str, int] = {}
    for error in errors:
        key = error[:160]
        first[key] = first.get(key, 0) + 1
    print(f"reactor: {len(errors)} runs of the {what} failed:", file=sys.stderr)
    for text, times in sorted(first.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  {times} x {text}", file=sys.stderr)


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


def run(
    runs: int,
    rounds: int,
    *,
    burst: int = _DEFAULT_BURST,
    barrier_wait: float = _BARRIER_WAIT,
    profile: bool = False,
) -> dict[str, Any]:
    """Run the benchmark; the JSON-ready result (see the module docstring)."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reactor-bench-") as tmp:
        bursts = _burst(burst, barrier_wait, Path(tmp))
        per_round = _rounds(runs, rounds, Path(tmp))
        profiled = _profile(max(50, runs), Path(tmp)) if profile else None
    result: dict[str, Any] = {
        key: round(statistics.median(values), 2) for key, values in per_round.items()
    }
    result["spans_per_chain_run"] = int(result["spans_per_chain_run"])

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
    result["chain_step_overhead_traced_normal_us"] = overhead(
        result["chain_engine_traced_normal_us"], result["chain_plain_normal_us"], CHAIN_STEPS
    )
    result["chain_step_overhead_traced_batched_normal_us"] = overhead(
        result["chain_engine_traced_batched_normal_us"],
        result["chain_plain_normal_us"],
        CHAIN_STEPS,
    )
    # The ratio compares the NORMAL pair: without an fsync per commit, what tracing adds
    # is not lost in the disk's noise.
    untraced = result["chain_step_overhead_normal_us"]
    result["traced_overhead_ratio"] = (
        round(result["chain_step_overhead_traced_normal_us"] / untraced, 2)
        if untraced > 0
        else None
    )
    result["traced_batched_overhead_ratio"] = (
        round(result["chain_step_overhead_traced_batched_normal_us"] / untraced, 2)
        if untraced > 0
        else None
    )
    for key, value in bursts.items():
        result[key] = round(value, 3) if key.endswith("_s") else round(value, 1)
    for key in (
        "burst_runs",
        "burst_peak_threads",
        "burst_runs_completed",
        "burst_gc_tuned_runs_completed",
    ):
        result[key] = int(result[key])
    for key in ("barrier_runs_arrived", "barrier_runs_completed", "barrier_peak_threads"):
        result[key] = int(result[key])
    result["chain_ratio"] = round(result["chain_engine_us"] / chain_plain, 2)
    result["fanout_ratio"] = round(result["fanout_engine_us"] / fan_plain, 2)
    result["targets"] = dict(TARGETS)
    result["targets_met"] = {
        "chain_step_overhead_us_max": result["chain_step_overhead_us"]
        <= TARGETS["chain_step_overhead_us_max"],
        "fanout_step_overhead_us_max": result["fanout_step_overhead_us"]
        <= TARGETS["fanout_step_overhead_us_max"],
        "burst_wall_s_max": result["burst_wall_s"] <= TARGETS["burst_wall_s_max"]
        and result["burst_runs_completed"] == burst,
        "burst_peak_rss_mb_max": result["burst_peak_rss_mb"] <= TARGETS["burst_peak_rss_mb_max"],
        "traced_overhead_ratio_max": result["traced_overhead_ratio"] is not None
        and result["traced_overhead_ratio"] <= TARGETS["traced_overhead_ratio_max"],
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
        "burst_steps": 3,
        "burst_gc_tuned_threshold": list(GC_TUNED),
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
        help=f"a short run for tests (runs={_QUICK_RUNS}, rounds={_QUICK_ROUNDS}, "
        f"burst={_QUICK_BURST})",
    )
    parser.add_argument("--runs", type=_positive, help=f"chain runs per round ({_DEFAULT_RUNS})")
    parser.add_argument("--rounds", type=_positive, help=f"rounds ({_DEFAULT_ROUNDS})")
    parser.add_argument(
        "--burst",
        type=_positive,
        help=f"runs in the burst and the barrier burst ({_DEFAULT_BURST}; quick: {_QUICK_BURST})",
    )
    parser.add_argument(
        "--barrier-wait",
        type=float,
        default=_BARRIER_WAIT,
        help=f"seconds the barrier waits for every run to arrive ({_BARRIER_WAIT:g})",
    )
    parser.add_argument(
        "--profile", action="store_true", help="add the CPU time per chain run, by thread"
    )
    ns = parser.parse_args(argv)
    runs = ns.runs or (_QUICK_RUNS if ns.quick else _DEFAULT_RUNS)
    rounds = ns.rounds or (_QUICK_ROUNDS if ns.quick else _DEFAULT_ROUNDS)
    burst = ns.burst or (_QUICK_BURST if ns.quick else _DEFAULT_BURST)
    # Log lines (the system's start and stop) go to stderr: stdout is the JSON alone.
    otel.configure_logging(level="warning", stream=sys.stderr)
    result = run(runs, rounds, burst=burst, barrier_wait=ns.barrier_wait, profile=ns.profile)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
