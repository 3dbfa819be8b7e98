"""Routing overhead: our request/reply and tells against bare pykka.

What is measured (all from the main thread, tracing off unless said otherwise):

* ``raw_ask``: a blocking ``pykka.ActorRef.ask`` to a ``ThreadingActor`` that returns a
  value, against ``ask_1hop``: ``Ref.ask(BenchPing())`` to an :class:`actors.Actor`
  that returns a ``BenchPong``;
* ``ask_3hop``: the main thread asks A, A asks B and B asks C with
  ``Actor.ask(..., then=...)`` and ``defer_reply()``; C answers and the answer flows
  back the same way;
* ``ask_1hop_traced``: the 1-hop ask from inside a trace with tracing on in the
  runtime's debugging mode (``trace_actors``: every handled message a span), every
  span exported synchronously into memory (the exporter is cleared every few hundred
  calls);
* ``raw_tell`` against ``tell``: one-way messages to a counting actor, timed from the
  first tell until the actor has handled the last one (it sets an event).

Latencies are per call (``time.perf_counter_ns`` around the blocking ask). These
machines are shared and noisy, so raw pykka and ours are measured side by side:
within a round they alternate every 100 asks (or every tenth of the tells), the side
that leads swapping each time, and each round starts with an untimed warm-up. Each
round yields a p50 and a p99 per measurement; the reported figure is the median over
the rounds (``per_round`` has them all).

By default every thread of the run is pinned to one CPU (``--placement one-cpu``):
on a small VM a wake-up that crosses CPUs costs tens of microseconds, and where the
scheduler puts each actor's thread changes from round to round, which made one side
three times slower than the other in the same round. ``--placement split`` (main
thread on one CPU, every actor on another: every hop crosses CPUs, on both sides) and
``--placement os`` (the scheduler decides) are there to see the other cases. Run
``python -m benchmarks routing --help`` for the options.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pykka

import otel
from actors import Actor, Deferred, Message, Ref, Request, System
from otel.testing import InMemorySpanExporter

__all__ = ["TARGETS", "main", "run"]

TARGETS: dict[str, float] = {
    "ask_1hop_ratio_max": 2.0,
    "ask_3hop_p50_us_max": 1000.0,
    "tell_ratio_min": 0.5,
}
"""What the runtime should achieve on a quiet machine (see ``targets_met``)."""

_DEFAULT_N = 10000
_DEFAULT_TELL_N = 100000
_DEFAULT_ROUNDS = 5
_QUICK_N = 200
_QUICK_TELL_N = 2000
_QUICK_ROUNDS = 2
_CLEAR_SPANS_EVERY = 256
_ASK_BLOCK = 100
_TELL_BURSTS = 10
_TELL_TIMEOUT_S = 60.0


# ---- messages (their class names are global tags: keep them distinct) ---------------


class BenchPong(Message, frozen=True, kw_only=True):
    """The answer to a benchmark ping or hop."""


class BenchPing(Request[BenchPong], frozen=True, kw_only=True):
    """A 1-hop request."""


class BenchHop(Request[BenchPong], frozen=True, kw_only=True):
    """A request forwarded along a chain of actors."""


class BenchTick(Message, frozen=True, kw_only=True):
    """A one-way message that is only counted."""


# ---- the actors, ours and raw pykka -------------------------------------------------


class _Tally:
    """How many ticks a counter has seen; ``done`` is set at the ``target``-th."""

    __slots__ = ("count", "done", "target")

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.done = threading.Event()

    def arm(self, target: int) -> threading.Event:
        """Reset for a run of ``target`` ticks (only while the counter is idle)."""
        self.done = threading.Event()
        self.count = 0
        self.target = target
        return self.done


class PingActor(Actor[BenchPing]):
    """Answers every ping with a pong."""

    def receive(self, message: BenchPing) -> BenchPong:
        return BenchPong()


class HopActor(Actor[BenchHop]):
    """Forwards a hop to the next actor and relays its answer; the last one answers."""

    def __init__(self, next_hop: Ref[BenchHop] | None) -> None:
        super().__init__()
        self._next = next_hop

    def receive(self, message: BenchHop) -> BenchPong | None:
        next_hop = self._next
        if next_hop is None:
            return BenchPong()
        deferred: Deferred[BenchPong] = self.defer_reply()
        self.ask(next_hop, BenchHop(deadline=message.deadline), then=deferred.send)
        return None


class CountActor(Actor[BenchTick]):
    """Counts ticks into a shared tally."""

    def __init__(self, tally: _Tally) -> None:
        super().__init__()
        self._tally = tally

    def receive(self, message: BenchTick) -> None:
        tally = self._tally
        tally.count += 1
        if tally.count == tally.target:
            tally.done.set()


class RawPing(pykka.ThreadingActor):
    """A bare pykka actor that answers every ask with a pong."""

    use_daemon_thread = True

    def on_receive(self, message: Any) -> Any:
        return BenchPong()


class RawCounter(pykka.ThreadingActor):
    """A bare pykka actor that counts what it is told, like :class:`CountActor`."""

    use_daemon_thread = True

    def __init__(self, tally: _Tally) -> None:
        super().__init__()
        self._tally = tally

    def on_receive(self, message: Any) -> Any:
        tally = self._tally
        tally.count += 1
        if tally.count == tally.target:
            tally.done.set()
        return None


# ---- measuring ------------------------------------------------------------------


def _time_calls(
    call: Callable[[], object],
    n: int,
    into: list[int],
    between: Callable[[], object] | None = None,
) -> None:
    """Append the nanoseconds of ``n`` calls, one by one, to ``into``.

    ``between`` (if given) runs untimed before every ``_CLEAR_SPANS_EVERY``-th call.
    """
    clock = time.perf_counter_ns
    append = into.append
    for i in range(n):
        if between is not None and i % _CLEAR_SPANS_EVERY == 0:
            between()
        start = clock()
        call()
        append(clock() - start)


def _blocks(n: int, size: int) -> list[int]:
    """``n`` split into blocks of ``size`` (the last one may be shorter)."""
    full, rest = divmod(n, size)
    return [size] * full + ([rest] if rest else [])


def _paired_latency(
    raw_call: Callable[[], object],
    our_call: Callable[[], object],
    n: int,
    raw_first: bool,
) -> tuple[list[int], list[int]]:
    """Per-call nanoseconds of ``n`` raw and ``n`` of our calls, in alternating blocks.

    Alternating every ``_ASK_BLOCK`` calls (and swapping which side leads each block)
    lets a burst of machine noise hit both sides alike.
    """
    raw: list[int] = []
    ours: list[int] = []
    gc.collect()
    for index, size in enumerate(_blocks(n, _ASK_BLOCK)):
        if (index % 2 == 0) == raw_first:
            _time_calls(raw_call, size, raw)
            _time_calls(our_call, size, ours)
        else:
            _time_calls(our_call, size, ours)
            _time_calls(raw_call, size, raw)
    return raw, ours


def _percentile_us(samples: list[int], q: float) -> float:
    """The ``q``-quantile (0..1, nearest rank) of nanosecond samples, in microseconds."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
    return ordered[index] / 1000.0


class _Teller:
    """One side of the tell measurement: a send function and the tally it feeds."""

    __slots__ = ("elapsed_ns", "send", "sent", "tally")

    def __init__(self, send: Callable[[BenchTick], object], tally: _Tally) -> None:
        self.send = send
        self.tally = tally
        self.sent = 0
        self.elapsed_ns = 0

    def burst(self, n: int) -> None:
        """Tell ``n`` ticks; time from the first tell until the counter handled the last."""
        send = self.send
        tick = BenchTick()
        done = self.tally.arm(n)
        start = time.perf_counter_ns()
        for _ in range(n):
            send(tick)
        if not done.wait(_TELL_TIMEOUT_S):
            msg = f"the counter handled {self.tally.count} of {n} tells in {_TELL_TIMEOUT_S}s"
            raise RuntimeError(msg)
        self.elapsed_ns += time.perf_counter_ns() - start
        self.sent += n

    @property
    def per_s(self) -> float:
        """Tells per second over every burst so far."""
        return self.sent / (self.elapsed_ns / 1e9)


def _paired_tells(raw: _Teller, ours: _Teller, n: int, raw_first: bool) -> None:
    """``n`` tells on each side, in ten alternating bursts (the leader swapping)."""
    gc.collect()
    for index, size in enumerate(_blocks(n, max(1, n // _TELL_BURSTS))):
        pair = (raw, ours) if (index % 2 == 0) == raw_first else (ours, raw)
        for side in pair:
            side.burst(size)


class _Bench:
    """The actors of one benchmark run, ours and raw, and one round's measurements."""

    def __init__(self, system: System, n: int, tell_n: int, warmup: int) -> None:
        self.n = n
        self.tell_n = tell_n
        self.warmup = warmup
        self.ping: Ref[BenchPing] = system.spawn(PingActor, name="bench-ping")
        hop_c: Ref[BenchHop] = system.spawn(HopActor, name="bench-hop-c", kwargs={"next_hop": None})
        hop_b: Ref[BenchHop] = system.spawn(
            HopActor, name="bench-hop-b", kwargs={"next_hop": hop_c}
        )
        self.hop_a: Ref[BenchHop] = system.spawn(
            HopActor, name="bench-hop-a", kwargs={"next_hop": hop_b}
        )
        self.tally = _Tally()
        self.counter: Ref[BenchTick] = system.spawn(
            CountActor, name="bench-counter", kwargs={"tally": self.tally}
        )
        self.raw_tally = _Tally()
        self.raw_ping = RawPing.start()
        self.raw_counter = RawCounter.start(self.raw_tally)

    def stop_raw(self) -> None:
        """Stop the bare pykka actors."""
        self.raw_ping.stop()
        self.raw_counter.stop()

    def check(self) -> None:
        """One call of each kind, checking the answers (fails loudly, not slowly)."""
        raw = self.raw_ping.ask(BenchPing())
        one = self.ping.ask(BenchPing())
        three = self.hop_a.ask(BenchHop())
        for name, answer in (("raw", raw), ("1-hop", one), ("3-hop", three)):
            if type(answer) is not BenchPong:
                msg = f"{name} ask answered {answer!r}, not a BenchPong"
                raise RuntimeError(msg)

    # Each measurement warms up (untimed) before its timed calls.

    def raw_and_1hop(self, raw_first: bool) -> tuple[list[int], list[int]]:
        """Per-call latency of a bare pykka ask and of ``Ref.ask``, interleaved."""
        raw_ask = self.raw_ping.ask
        our_ask = self.ping.ask

        def raw_call() -> object:
            return raw_ask(BenchPing())

        def our_call() -> object:
            return our_ask(BenchPing())

        _paired_latency(raw_call, our_call, self.warmup, raw_first)
        return _paired_latency(raw_call, our_call, self.n, raw_first)

    def ask_3hop(self) -> list[int]:
        """Per-call latency of an ask that travels A -> B -> C and back."""
        ask = self.hop_a.ask

        def call() -> object:
            return ask(BenchHop())

        _time_calls(call, self.warmup, [])
        samples: list[int] = []
        gc.collect()
        _time_calls(call, self.n, samples)
        return samples

    def ask_1hop_traced(self) -> list[int]:
        """Per-call latency of the 1-hop ask with every handled message a span."""
        ask = self.ping.ask

        def call() -> object:
            return ask(BenchPing())

        exporter = InMemorySpanExporter()
        seen = 0

        def clear() -> None:
            nonlocal seen
            seen += len(exporter.get_finished_spans())
            exporter.clear()

        # Only the in-memory exporter, every span sampled, whatever OTEL_* variables say.
        provider = otel.configure_tracing(
            exporter="none",
            span_exporter=exporter,
            batch=False,
            sample_ratio=1.0,
            set_global=False,
            trace_actors=True,  # the runtime's debugging mode: each message is a span
        )
        if provider is None:
            msg = "tracing could not be turned on (is OTEL_SDK_DISABLED=true set?)"
            raise RuntimeError(msg)
        samples: list[int] = []
        try:
            # Asked from inside a trace, as a traced caller would (messages outside any
            # trace are no spans, even in this mode).
            with otel.tracer().start_as_current_span("bench caller"):
                _time_calls(call, self.warmup, [], clear)
                gc.collect()
                _time_calls(call, self.n, samples, clear)
        finally:
            otel.shutdown_tracing()
        if seen == 0:
            msg = "tracing was on but no span was recorded"
            raise RuntimeError(msg)
        return samples

    def tells(self, raw_first: bool) -> tuple[float, float]:
        """Tells per second to a bare pykka actor and through ``Ref.tell``, interleaved."""
        warm = max(1, self.tell_n // _TELL_BURSTS)
        _paired_tells(
            _Teller(self.raw_counter.tell, self.raw_tally),
            _Teller(self.counter.tell, self.tally),
            warm,
            raw_first,
        )
        raw = _Teller(self.raw_counter.tell, self.raw_tally)
        ours = _Teller(self.counter.tell, self.tally)
        _paired_tells(raw, ours, self.tell_n, raw_first)
        return raw.per_s, ours.per_s


PLACEMENTS = ("one-cpu", "split", "os")
"""Where the threads run: see :func:`_pin_main` and :func:`_pin_others`."""


def _usable_cpus() -> list[int]:
    """The CPUs this process may run on, or ``[]`` where affinity is not supported."""
    if not hasattr(os, "sched_getaffinity"):
        return []
    return sorted(os.sched_getaffinity(0))


def _pin_main(placement: str, cpus: list[int]) -> dict[str, Any]:
    """Pin the calling (main) thread before any actor starts; threads it starts inherit.

    ``one-cpu`` puts every thread of the run on one CPU: no wake-up crosses CPUs, so
    neither side is lucky or unlucky in where the scheduler puts its actor (on a
    2-vCPU VM a cross-CPU wake-up costs tens of microseconds and the placement of each
    thread changes from round to round). ``split`` puts the main thread on one CPU
    and (see :func:`_pin_others`) every other thread on another: every hop crosses
    CPUs, for both sides. ``os`` leaves placement to the scheduler.

    Returns:
        What was applied, for the run's metadata.
    """
    requested = placement
    if not cpus or placement == "os":
        return {"placement": "os", "placement_requested": requested, "main_cpus": cpus}
    if placement == "split" and len(cpus) < 2:
        placement = "one-cpu"  # nowhere to split to
    os.sched_setaffinity(0, {cpus[0]})
    actor_cpus = cpus[1:2] if placement == "split" else cpus[:1]
    return {
        "placement": placement,
        "placement_requested": requested,
        "main_cpus": cpus[:1],
        "actor_cpus": actor_cpus,
    }


def _pin_others(where: dict[str, Any]) -> None:
    """Move every thread but the main one to ``where["actor_cpus"]`` (for ``split``)."""
    if where["placement"] != "split":
        return
    main_thread = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main_thread and thread.native_id is not None:
            os.sched_setaffinity(thread.native_id, set(where["actor_cpus"]))


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def run(
    n: int, tell_n: int, rounds: int, warmup: int, placement: str = "one-cpu"
) -> dict[str, Any]:
    """Run the routing benchmark and return its result as a JSON-ready dict.

    Args:
        n: Timed asks per measurement per round.
        tell_n: Timed tells per measurement per round.
        rounds: How many rounds; raw and ours alternate which goes first.
        warmup: Untimed asks before each timed ask measurement.
        placement: One of :data:`PLACEMENTS` (see :func:`_pin_main`); the main thread's
            CPU affinity is restored afterwards.
    """
    if placement not in PLACEMENTS:
        msg = f"placement={placement!r} is not one of {', '.join(PLACEMENTS)}"
        raise ValueError(msg)
    began = time.perf_counter()
    cpus = _usable_cpus()
    where = _pin_main(placement, cpus)
    try:
        per_round = _rounds(n, tell_n, rounds, warmup, where)
    finally:
        if cpus:
            os.sched_setaffinity(0, set(cpus))
    return _summary(per_round, began, cpus, where, n=n, tell_n=tell_n, rounds=rounds, warmup=warmup)


def _rounds(
    n: int, tell_n: int, rounds: int, warmup: int, where: dict[str, Any]
) -> dict[str, list[float]]:
    """Start the actors and run every round; each figure of each round, by key."""
    otel.shutdown_tracing()  # the plain measurements are untraced, whatever ran before
    per_round: dict[str, list[float]] = {
        key: []
        for key in (
            "raw_ask_p50_us",
            "raw_ask_p99_us",
            "ask_1hop_p50_us",
            "ask_1hop_p99_us",
            "ask_3hop_p50_us",
            "ask_3hop_p99_us",
            "ask_1hop_traced_p50_us",
            "ask_1hop_traced_p99_us",
            "raw_tell_per_s",
            "tell_per_s",
        )
    }

    def record(prefix: str, samples: list[int]) -> None:
        per_round[f"{prefix}_p50_us"].append(_percentile_us(samples, 0.50))
        per_round[f"{prefix}_p99_us"].append(_percentile_us(samples, 0.99))

    with System(name="bench", default_timeout=30.0) as system:
        bench = _Bench(system, n, tell_n, warmup)
        _pin_others(where)
        try:
            bench.check()
            for index in range(rounds):
                print(f"routing: round {index + 1}/{rounds}", file=sys.stderr, flush=True)
                raw_first = index % 2 == 0
                raw, ours = bench.raw_and_1hop(raw_first)
                record("raw_ask", raw)
                record("ask_1hop", ours)
                record("ask_3hop", bench.ask_3hop())
                record("ask_1hop_traced", bench.ask_1hop_traced())
                raw_rate, our_rate = bench.tells(raw_first)
                per_round["raw_tell_per_s"].append(raw_rate)
                per_round["tell_per_s"].append(our_rate)
        finally:
            bench.stop_raw()
    return per_round


def _summary(
    per_round: dict[str, list[float]],
    began: float,
    cpus: list[int],
    where: dict[str, Any],
    **sizes: int,
) -> dict[str, Any]:
    """The JSON object: medians over rounds, ratios, targets, per-round figures, metadata."""
    result: dict[str, Any] = {key: _median(values) for key, values in per_round.items()}
    result["raw_tell_per_s"] = round(result["raw_tell_per_s"])
    result["tell_per_s"] = round(result["tell_per_s"])
    result["ask_1hop_ratio"] = round(result["ask_1hop_p50_us"] / result["raw_ask_p50_us"], 3)
    result["tell_ratio"] = round(result["tell_per_s"] / result["raw_tell_per_s"], 3)
    result["targets"] = dict(TARGETS)
    result["targets_met"] = {
        "ask_1hop_ratio_max": result["ask_1hop_ratio"] <= TARGETS["ask_1hop_ratio_max"],
        "ask_3hop_p50_us_max": result["ask_3hop_p50_us"] <= TARGETS["ask_3hop_p50_us_max"],
        "tell_ratio_min": result["tell_ratio"] >= TARGETS["tell_ratio_min"],
    }
    result["per_round"] = {
        key: [round(value, 2) for value in values] for key, values in per_round.items()
    }
    result["meta"] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "pykka": importlib.metadata.version("pykka"),
        "msgspec": importlib.metadata.version("msgspec"),
        "opentelemetry_sdk": importlib.metadata.version("opentelemetry-sdk"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(cpus) or None,
        **where,
        **sizes,
        "aggregate": "median over rounds of each round's figure",
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
        prog="python -m benchmarks routing",
        description="Ask latency and tell throughput of the actor runtime against bare pykka.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a short run for tests (n={_QUICK_N}, tells={_QUICK_TELL_N}, rounds={_QUICK_ROUNDS})",
    )
    parser.add_argument("--n", type=_positive, help=f"timed asks per round ({_DEFAULT_N})")
    parser.add_argument(
        "--tell-n", type=_positive, help=f"timed tells per round ({_DEFAULT_TELL_N} or 10*n)"
    )
    parser.add_argument(
        "--rounds", type=_positive, help=f"rounds, raw and ours alternating ({_DEFAULT_ROUNDS})"
    )
    parser.add_argument(
        "--placement",
        choices=PLACEMENTS,
        default="one-cpu",
        help="one-cpu: every thread on one CPU (default, steadiest); split: the main "
        "thread on one CPU, the actors on another; os: leave it to the scheduler",
    )
    ns = parser.parse_args(argv)
    n = ns.n or (_QUICK_N if ns.quick else _DEFAULT_N)
    tell_n = ns.tell_n or (_QUICK_TELL_N if ns.quick else 10 * ns.n if ns.n else _DEFAULT_TELL_N)
    rounds = ns.rounds or (_QUICK_ROUNDS if ns.quick else _DEFAULT_ROUNDS)
    warmup = max(20, n // 10)

    # Log lines (the system's start and stop) go to stderr: stdout is the JSON alone.
    otel.configure_logging(level="warning", stream=sys.stderr)
    result = run(n=n, tell_n=tell_n, rounds=rounds, warmup=warmup, placement=ns.placement)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
