"""Tool calls: the runner's per-call overhead, 100 calls in one turn, audit records per second.

What is measured (``python -m benchmarks tools``, one JSON object on stdout):

* ``tool_call_overhead_us``: median over rounds of the per-call time of one-call turns
  through the :class:`~actors.tools.ToolRunner` actor (``ExecuteTools`` asked from a
  coroutine on the I/O loop: look-up, validation, a policy with a rule to check,
  the call, output check, audit record, reply), minus the per-call time of awaiting the
  same ``async def`` directly, measured alternately in the same rounds;
  ``caller_overhead_us`` is the same without the actor hop (``ToolCaller.execute``),
  and ``bare_loop_ask_us`` the time of a bare ask of a loop actor that answers at once
  (the part of the runner's figure that is the runtime's hop, not tool work);
  ``tool_call_overhead_traced_us`` with tracing on, the ``execute_tool`` spans exported
  into memory;
* ``parallel_100_ratio``: the wall time of one turn of 100 calls of a tool that sleeps
  ``--sleep-ms`` divided by that sleep (the slowest call): 1.0 would be perfect overlap;
  ``parallel_100_sync_ratio`` the same with a plain ``def`` that blocks its thread, on a
  runner with 100 worker threads (plain ``def`` tools run at most ``workers`` at once);
* ``audit_records_per_s``: audit records through an :class:`~actors.tools.AuditSink`
  into the Store (a real SQLite file, ``synchronous=FULL``), from the first record to
  the last commit acknowledged.

Targets (issue 15): overhead at most 150 µs, ratio at most 1.2, at least 10,000 records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import otel
from actors import LoopActor, Message, Ref, Request, System
from actors.llm import ToolCall
from actors.store import Store
from actors.tools import (
    AuditRecord,
    AuditSink,
    ExecuteTools,
    FlushAudit,
    Policy,
    Rule,
    ToolCaller,
    ToolRegistry,
    ToolRunner,
    tool,
)
from otel.testing import capture_spans


async def echo(x: int) -> int:
    """Return x (the tool under test)."""
    return x


async def nap(ms: int) -> int:
    """Sleep ms milliseconds."""
    await asyncio.sleep(ms / 1000)
    return ms


def nap_sync(ms: int) -> int:
    """Sleep ms milliseconds in a worker thread (a blocking tool)."""
    time.sleep(ms / 1000)
    return ms


class ToolsBenchPong(Message, frozen=True, kw_only=True):
    """The no-op actor's answer."""


class ToolsBenchPing(Request[ToolsBenchPong], frozen=True, kw_only=True):
    """Ask the no-op actor (the cost of an ask between coroutine and loop actor)."""


class _Pong(LoopActor[ToolsBenchPing]):
    """A loop actor that answers at once: the bare ask the runner's figure contains."""

    def receive(self, message: ToolsBenchPing) -> ToolsBenchPong:
        return ToolsBenchPong()


def _registry() -> ToolRegistry:
    return ToolRegistry([tool(echo), tool(timeout=60.0)(nap), tool(timeout=60.0)(nap_sync)])


_POLICY = Policy([Rule(deny=["rm_*"], name="no removal"), Rule(allow=["*"], identity="bench")])


async def _overhead_round(
    runner: Ref[Any], caller: ToolCaller, pong: Ref[Any], calls: int
) -> tuple[float, float, float, float]:
    """Per-call µs: direct, caller, runner, bare ask (alternating blocks of 100)."""
    direct = via_caller = via_runner = bare = 0.0
    request = ExecuteTools(
        calls=(ToolCall(id="c", name="echo", arguments={"x": 1}),), identity="bench"
    )
    for _ in range(calls // 100):
        start = time.perf_counter()
        for _ in range(100):
            await echo(1)
        direct += time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(100):
            await caller.execute(request)
        via_caller += time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(100):
            await runner.ask_async(request)
        via_runner += time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(100):
            await pong.ask_async(ToolsBenchPing())
        bare += time.perf_counter() - start
    scale = 1e6 / calls
    return direct * scale, via_caller * scale, via_runner * scale, bare * scale


def _overhead(
    system: System, runner: Ref[Any], pong: Ref[Any], rounds: int, calls: int
) -> dict[str, Any]:
    sink = AuditSink(None)
    caller = ToolCaller(_registry(), policy=_POLICY, audit=sink)
    system.bridge.run(_overhead_round(runner, caller, pong, 200))  # warm-up
    per_round = []
    for _ in range(rounds):
        per_round.append(system.bridge.run(_overhead_round(runner, caller, pong, calls)))
        sink.records.clear()
    direct = statistics.median(r[0] for r in per_round)
    return {
        "direct_call_us": round(direct, 2),
        "caller_overhead_us": round(statistics.median(r[1] - r[0] for r in per_round), 2),
        "tool_call_overhead_us": round(statistics.median(r[2] - r[0] for r in per_round), 2),
        "bare_loop_ask_us": round(statistics.median(r[3] for r in per_round), 2),
        "overhead_per_round_us": [round(r[2] - r[0], 2) for r in per_round],
        "bare_loop_ask_per_round_us": [round(r[3], 2) for r in per_round],
    }


def _parallel(
    system: System, runner: Ref[Any], sleep_ms: int, rounds: int, name: str = "nap"
) -> dict[str, Any]:
    request = ExecuteTools(
        calls=tuple(
            ToolCall(id=f"c{i}", name=name, arguments={"ms": sleep_ms}) for i in range(100)
        ),
        identity="bench",
    )

    async def turn() -> float:
        start = time.perf_counter()
        results = await runner.ask_async(request, timeout=60)
        assert all(o.ok for o in results.outcomes)
        return time.perf_counter() - start

    walls = [system.bridge.run(turn()) for _ in range(rounds)]
    return {
        "parallel_100_ratio": round(statistics.median(walls) / (sleep_ms / 1000), 3),
        "parallel_100_wall_s": [round(w, 4) for w in walls],
    }


def _audit(system: System, store: Ref[Any], records: int) -> dict[str, Any]:
    record = AuditRecord(
        at=time.time(),
        run_id="bench-run",
        step="s",
        identity="bench",
        tool="echo",
        call_id="c",
        arguments={"x": 1, "note": "a typical small payload"},
        outcome="ok",
        duration_s=0.00001,
    )

    async def write() -> tuple[float, int]:
        sink = AuditSink(store)
        start = time.perf_counter()
        for i in range(records):
            sink.record(record)
            if i % 500 == 499:
                await asyncio.sleep(0)  # let the loop turn, as tool calls would
        await sink.flush()
        return time.perf_counter() - start, sink.written

    elapsed, written = system.bridge.run(write(), timeout=120)
    assert written == records, f"only {written} of {records} audit records were written"
    return {"audit_records_per_s": round(records / elapsed), "audit_records": records}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three measurements and print one JSON object."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks tools", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per measurement (default 5)")
    parser.add_argument(
        "--calls", type=int, default=2000, help="calls per overhead round (default 2000)"
    )
    parser.add_argument(
        "--sleep-ms", type=int, default=200, help="each parallel call's sleep (default 200)"
    )
    parser.add_argument("--records", type=int, default=50_000, help="audit records (default 50000)")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks it runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls, args.sleep_ms, args.records = 2, 300, 50, 3000
    otel.configure_logging(level="error")
    with tempfile.TemporaryDirectory() as tmp, System(name="bench", default_timeout=60.0) as system:
        store: Ref[Any] = system.spawn(Store.spec(Path(tmp) / "bench.db"))
        runner: Ref[Any] = system.spawn(ToolRunner.spec(_registry(), store=store, policy=_POLICY))
        pong = system.spawn(_Pong, name="tools-bench-pong")
        result: dict[str, Any] = {"benchmark": "tools", "python": sys.version.split()[0]}
        result |= _overhead(system, runner, pong, args.rounds, args.calls)
        with capture_spans() as spans:
            traced = _overhead(system, runner, pong, max(1, args.rounds // 2), args.calls // 2)
            spans.clear()
        result["tool_call_overhead_traced_us"] = traced["tool_call_overhead_us"]
        result |= _parallel(system, runner, args.sleep_ms, args.rounds)
        threads: Ref[Any] = system.spawn(
            ToolRunner.spec(_registry(), name="tools-100-threads", policy=_POLICY, workers=100)
        )
        blocking = _parallel(system, threads, args.sleep_ms, args.rounds, name="nap_sync")
        result["parallel_100_sync_ratio"] = blocking["parallel_100_ratio"]
        runner.ask(FlushAudit(), timeout=60)
        result |= _audit(system, store, args.records)
        result["targets"] = {
            "tool_call_overhead_us_max": 150,
            "parallel_100_ratio_max": 1.2,
            "audit_records_per_s_min": 10_000,
        }
        result["targets_met"] = {
            "tool_call_overhead_us_max": result["tool_call_overhead_us"] <= 150,
            "parallel_100_ratio_max": result["parallel_100_ratio"] <= 1.2,
            "audit_records_per_s_min": result["audit_records_per_s"] >= 10_000,
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
