"""Reasoning sessions at scale: threads, activation and full-text search over 10,000 sessions.

``python -m benchmarks sessions`` prints one JSON object. It stores ``--sessions``
sessions (each initiated and given a step through the real API, into a real SQLite
file), passivates them all, and measures:

* ``activation_p50_ms`` / ``activation_p99_ms``: ``get_reasoning_session`` on a passivated
  session (the directory starts its actor, which reads its journal stream), beside
  ``active_get_p50_ms``, the same call on a session that is active (routing only);
* ``sessions_peak_threads``: the process's threads (``/proc/self/task``) at their peak
  while every stored session is activated at once (all of them in memory together),
  beside ``threads_before``; ``active_peak`` says how many were active;
* ``fts_p50_ms`` / ``fts_p99_ms``: ``search_reasoning_sessions`` with a query (FTS5,
  access-filtered), beside ``list_p50_ms``, the newest sessions with no query.

Targets (issue 16): ``sessions_peak_threads`` at most 100, ``activation_p50_ms`` at
most 5, ``fts_p50_ms`` at most 20. Seeding uses the Store with ``synchronous=NORMAL``
(as a daemon may) so that it takes seconds, not minutes; the measures are reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import otel
from actors import Ref, System
from actors.sessions import Sessions
from actors.store import Store

__all__ = ["TARGETS", "main"]

TARGETS = {"sessions_peak_threads_max": 100, "activation_p50_ms_max": 5.0, "fts_p50_ms_max": 20.0}

_TOPICS = (
    "cache eviction",
    "database sharding",
    "rate limiting",
    "schema migration",
    "queue backpressure",
    "retry budget",
    "index selection",
    "consensus protocol",
    "memory allocator",
    "tokenizer choice",
)
_WORDS = (  # noqa: SIM905 - one string reads better than 50 items
    "latency throughput durability consistency partition replica quorum leader follower "
    "snapshot compaction checkpoint eviction admission sampling histogram percentile bloom "
    "filter trie btree lsm wal fsync batching pipelining prefetch locality contention mutex "
    "semaphore actor mailbox backoff jitter timeout deadline circuit breaker fallback budget "
    "gpu vram quantization context window embedding reranker prompt temperature"
).split()


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


class _Sampler(threading.Thread):
    """Samples the thread count every few milliseconds until stopped; keeps the peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="thread-sampler")
        self.peak = _threads()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.005):
            self.peak = max(self.peak, _threads())

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return max(self.peak, _threads())


async def _seed(sessions: Sessions, n: int, rng: random.Random) -> list[tuple[str, str]]:
    """``n`` sessions, each with one step; returns (session_id, owner) pairs."""
    made: list[tuple[str, str]] = []
    batch = 250

    async def one(i: int) -> tuple[str, str]:
        owner = f"agent-{i % 20}"
        topic = _TOPICS[i % len(_TOPICS)]
        words = " ".join(rng.sample(_WORDS, 6))
        session_id = await sessions.initiate_reasoning_session_async(
            f"Decide on {topic} for service {i}: weigh {words}",
            owner,
            [topic.split()[0], f"team-{i % 7}"],
            participants=[f"agent-{(i + 1) % 20}"],
            open=i % 10 == 0,
        )
        step = " ".join(rng.sample(_WORDS, 12))
        await sessions.add_reasoning_step_async(session_id, owner, f"Analysis: {step}", "analysis")
        return session_id, owner

    for start in range(0, n, batch):
        made.extend(await asyncio.gather(*(one(i) for i in range(start, min(n, start + batch)))))
    return made


async def _activate_all(sessions: Sessions, made: list[tuple[str, str]]) -> None:
    batch = 500
    for start in range(0, len(made), batch):
        await asyncio.gather(
            *(sessions.get_reasoning_session_async(s, o) for s, o in made[start : start + batch])
        )


def _timed(calls: int, fn: Any) -> list[float]:
    times = []
    for i in range(calls):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def run(n: int, samples: int, seed: int) -> dict[str, Any]:
    """Seed, passivate, measure; the figures as a dict."""
    rng = random.Random(seed)
    db = Path(tempfile.mkdtemp()) / "sessions.db"
    with System(name="bench-sessions", default_timeout=60.0) as system:
        store: Ref[Any] = system.spawn(Store.spec(db, synchronous="NORMAL"))
        sessions = Sessions(system, store=store, idle_s=3600.0, timeout=60.0)
        sessions.open()
        started = time.perf_counter()
        made = system.bridge.run(_seed(sessions, n, rng))
        seeded_s = time.perf_counter() - started
        sessions.passivate_idle()
        threads_before = _threads()

        # Activation: one passivated session at a time, then the same ones active.
        sample = rng.sample(made, min(samples, len(made)))
        activation = _timed(len(sample), lambda i: sessions.get_reasoning_session(*sample[i]))
        active = _timed(len(sample), lambda i: sessions.get_reasoning_session(*sample[i]))
        sessions.passivate_idle()

        # Every stored session active at once: threads stay flat.
        sampler = _Sampler()
        sampler.start()
        system.bridge.run(_activate_all(sessions, made))
        active_peak = sessions.activity().active
        peak_threads = sampler.stop()

        # Search: FTS5 with a query vs the newest with none, by agents that see a share.
        queries = [f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}" for _ in range(samples)]
        queries += [rng.choice(_TOPICS).split()[1] for _ in range(samples // 4)]
        fts = _timed(
            len(queries),
            lambda i: sessions.search_reasoning_sessions(f"agent-{i % 20}", queries[i], limit=10),
        )
        listing = _timed(
            samples // 2, lambda i: sessions.search_reasoning_sessions(f"agent-{i % 20}", limit=10)
        )
        hits = len(sessions.search_reasoning_sessions("agent-3", queries[0], limit=10))
    return {
        "sessions": n,
        "seed_sessions_per_s": round(n / seeded_s, 1),
        "activation_p50_ms": _pct(activation, 0.5),
        "activation_p99_ms": _pct(activation, 0.99),
        "active_get_p50_ms": _pct(active, 0.5),
        "sessions_peak_threads": peak_threads,
        "threads_before": threads_before,
        "active_peak": active_peak,
        "fts_p50_ms": _pct(fts, 0.5),
        "fts_p99_ms": _pct(fts, 0.99),
        "list_p50_ms": _pct(listing, 0.5),
        "fts_sample_hits": hits,
        "db_mb": round(db.stat().st_size / 2**20, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measures and print the JSON object."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks sessions", description=__doc__)
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions to store")
    parser.add_argument("--samples", type=int, default=400, help="timed calls per measure")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--quick", action="store_true", help="small counts, for the tests")
    args = parser.parse_args(argv)
    otel.configure_logging(level="critical")
    if args.quick:
        args.sessions, args.samples = 300, 40
    result = run(args.sessions, args.samples, args.seed)
    result["targets"] = TARGETS
    result["targets_met"] = {
        "sessions_peak_threads_max": result["sessions_peak_threads"]
        <= TARGETS["sessions_peak_threads_max"],
        "activation_p50_ms_max": result["activation_p50_ms"] <= TARGETS["activation_p50_ms_max"],
        "fts_p50_ms_max": result["fts_p50_ms"] <= TARGETS["fts_p50_ms_max"],
    }
    result["meta"] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "seed": args.seed,
        "quick": args.quick,
    }
    print(json.dumps(result, indent=2))
    return 0
