"""The daemon over loopback HTTP: requests/s, latency, task overhead, SSE fan-out and memory.

What is measured (``python -m benchmarks daemon``, one JSON object on stdout), with a
:class:`~reactor.daemon.Daemon` served in this process (uvicorn + httptools on the
System's I/O loop, uvloop's where installed) in front of a fake OpenAI-compatible server
that answers at once, and a load generator in a child process
(``benchmarks/_loadgen.py``: raw HTTP/1.1 over keep-alive connections, bounded in
requests and seconds):

* for ``GET /health``, ``GET /api/orchestration/agents`` and ``POST
  /api/orchestration/tasks`` (one ``generate`` task) at concurrency 1, 10 and 100:
  ``<route>_c<N>_rps``, ``_p50_ms``, ``_p99_ms``; ``health_rps`` and ``health_p99_ms``
  are the best concurrency's throughput and its p99;
* ``task_overhead_ms``: the p50 of ``POST /tasks`` at concurrency 1 minus the p50 of the
  same request asked directly of the model host (``ask_async`` on the I/O loop),
  alternating in rounds (the median of the rounds' differences): what HTTP, JSON,
  validation and routing add to a model call;
* ``sse_fanout_100_ms``: 100 clients follow ``/api/events``; a bus event is published;
  the time until the last client has it (median of rounds);
* ``idle_sse_1000_rss_mb``: the daemon process's resident memory with 1,000 idle SSE
  streams open, minus before (``idle_sse_clients`` says how many opened).

Targets (issue 17): ``health_rps`` at least 3,000 on a 2-core machine, ``task_overhead_ms``
at most 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actors.llm import ChatRequest, load_config
from actors.testing import FakeServer
from reactor.daemon import Daemon, RunActivity

TOKEN = "benchmark-token"  # noqa: S105 - a benchmark's throwaway token


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class LoadGen:
    """The child process and its line protocol."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._loadgen"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _measure(
    gen: LoadGen, port: int, method: str, path: str, body: Any, *, c: int, n: int, seconds: float
) -> dict[str, float]:
    gen.ask(
        op="load",
        port=port,
        method=method,
        path=path,
        body=body,
        token=TOKEN,
        concurrency=c,
        requests=max(c, n // 10),
        seconds=seconds,
    )  # warm-up
    got = gen.ask(
        op="load",
        port=port,
        method=method,
        path=path,
        body=body,
        token=TOKEN,
        concurrency=c,
        requests=n,
        seconds=seconds,
    )
    lat = got["latencies_ms"]
    return {
        "rps": round(len(lat) / got["wall_s"], 1) if got["wall_s"] else 0.0,
        "p50_ms": round(_percentile(lat, 0.5), 3),
        "p99_ms": round(_percentile(lat, 0.99), 3),
        "errors": got["errors"],
    }


def _direct_ask_ms(daemon: Daemon, rounds: int) -> float:
    """p50 of asking the model host directly, from a coroutine on the I/O loop."""
    assert daemon.system is not None
    host = daemon.system.lookup("fake")

    async def measure() -> list[float]:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            await host.ask_async(ChatRequest.prompt("fake-small", "hello"))
            times.append((time.perf_counter() - started) * 1000)
        return times

    return statistics.median(daemon.system.bridge.run(measure()))


def _fanout(daemon: Daemon, gen: LoadGen, clients: int, rounds: int) -> float:
    assert daemon.system is not None
    gen.ask(
        op="sse",
        port=daemon.port,
        path="/api/events?types=RunActivity",
        token=TOKEN,
        clients=clients,
    )
    spans = []
    for i in range(rounds):
        gen.ask(op="arm")
        time.sleep(0.05)
        published = time.time()
        daemon.system.bus.publish(RunActivity(run_id=f"bench-{i}", reactor="bench", kind="step"))
        arrivals = gen.ask(op="collect")["arrivals"]
        if len(arrivals) == clients:
            spans.append((max(arrivals) - published) * 1000)
    gen.ask(op="close")
    return round(statistics.median(spans), 3) if spans else -1.0


def _idle(daemon: Daemon, gen: LoadGen, clients: int) -> tuple[float, int]:
    before = _rss_mb()
    opened = gen.ask(op="sse", port=daemon.port, path="/api/events", token=TOKEN, clients=clients)[
        "ready"
    ]
    time.sleep(0.5)
    after = _rss_mb()
    gen.ask(op="close")
    return round(after - before, 2), opened


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one JSON object."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks daemon")
    parser.add_argument("--quick", action="store_true", help="fewer requests (for the tests)")
    args = parser.parse_args(argv)
    n = 300 if args.quick else 4000
    seconds = 5.0 if args.quick else 15.0
    idle_clients = 200 if args.quick else 1000
    folder = Path(tempfile.mkdtemp(prefix="reactor-bench-daemon-"))
    out: dict[str, Any] = {}
    with FakeServer("openai", models=["fake-small"]) as fake:
        config_file = folder / "config.toml"
        config_file.write_text(f'[hosts.fake]\nurl = "{fake.url}"\nprotocol = "openai"\n')
        daemon = Daemon(
            load_config(config_file, env={}),
            db_path=folder / "bench.db",
            port=0,
            token=TOKEN,
            discovery=False,
        )
        daemon.start()
        daemon_loop = daemon.system.bridge.loop  # type: ignore[union-attr]
        gen = LoadGen()
        try:
            agent = daemon.system.bridge.run(  # type: ignore[union-attr]
                daemon.agents.create(__import__("reactor.daemon").daemon.AgentCreate(name="bench"))
            )
            del agent
            task = {"tasks": [{"type": "generate", "input": "hello", "model_name": "fake-small"}]}
            routes = {
                "health": ("GET", "/health", None),
                "agents": ("GET", "/api/orchestration/agents", None),
                "tasks": ("POST", "/api/orchestration/tasks", task),
            }
            errors = 0
            for name, (method, path, body) in routes.items():
                for c in (1, 10, 100):
                    count = n if name != "tasks" else n // 4
                    got = _measure(
                        gen, daemon.port, method, path, body, c=c, n=count, seconds=seconds
                    )
                    errors += int(got["errors"])
                    for key in ("rps", "p50_ms", "p99_ms"):
                        out[f"{name}_c{c}_{key}"] = got[key]
            best = max((1, 10, 100), key=lambda c: out[f"health_c{c}_rps"])
            out["health_rps"] = out[f"health_c{best}_rps"]
            out["health_p99_ms"] = out[f"health_c{best}_p99_ms"]
            # Alternating rounds, so that machine noise hits both sides alike.
            http_p50, direct_p50 = [], []
            for _ in range(3 if args.quick else 7):
                got = _measure(
                    gen, daemon.port, "POST", "/api/orchestration/tasks", task,
                    c=1, n=60 if args.quick else 200, seconds=seconds,
                )  # fmt: skip
                http_p50.append(got["p50_ms"])
                direct_p50.append(_direct_ask_ms(daemon, 60 if args.quick else 200))
            out["direct_ask_p50_ms"] = round(statistics.median(direct_p50), 3)
            out["tasks_alternating_p50_ms"] = round(statistics.median(http_p50), 3)
            out["task_overhead_ms"] = round(
                statistics.median(h - d for h, d in zip(http_p50, direct_p50, strict=True)), 3
            )
            out["sse_fanout_100_ms"] = _fanout(daemon, gen, 100, 3 if args.quick else 10)
            out["idle_sse_1000_rss_mb"], out["idle_sse_clients"] = _idle(daemon, gen, idle_clients)
            out["errors"] = errors
        finally:
            gen.close()
            daemon.stop()
    out["targets"] = {"health_rps_min": 3000, "task_overhead_ms_max": 1.0}
    out["targets_met"] = {
        "health_rps_min": out["health_rps"] >= 3000,
        "task_overhead_ms_max": out["task_overhead_ms"] <= 1.0,
    }
    out["meta"] = {"requests": n, "seconds_max": seconds, "server": "uvicorn+httptools, one loop"}
    out["meta"]["loop"] = type(daemon_loop).__module__.split(".")[0]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
