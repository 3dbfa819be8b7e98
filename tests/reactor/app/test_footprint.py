"""A live run's footprint: the objects the garbage collector walks for each run.

Ten thousand runs alive at once are a heap the interpreter's cyclic collector walks
again and again while they run (``python -m benchmarks reactor``, ``burst_wall_s``);
each object a run keeps alive costs every full collection. This pins the count, so a
change that makes every run keep a few more closures, futures or contexts shows here,
not only as a slower burst. No timing: objects are counted with ``gc.get_objects()``.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import System
from dsl import Input, Reactor, ref, step
from reactor.app import Engine

RUNS = 300
MAX_OBJECTS_PER_RUN = 55
"""Measured at about 43 (a run held in its first step, its second step done, and the
caller's handle); it was about 100 before runs were slimmed down."""


class _Gate:
    """Holds every arriving step until released; tells the test when all have arrived."""

    def __init__(self) -> None:
        self.expected = 0
        self.arrived = 0
        self.all_in = threading.Event()
        self.event: asyncio.Event | None = None

    async def wait(self, x: int) -> int:
        if self.event is None:  # made on the I/O loop, where every step runs
            self.event = asyncio.Event()
        event = self.event
        self.arrived += 1
        if self.arrived >= self.expected:
            self.all_in.set()
        await event.wait()
        return x


GATE = _Gate()


async def held(x: int) -> int:
    """Waits at the gate."""
    return await GATE.wait(x)


async def noop(x: int) -> int:
    """Returns its input."""
    return x


async def add(a: int, b: int) -> int:
    """Joins the two."""
    return a + b


class Held(Reactor):
    """The burst's shape (two parallel steps, then a join), its first step held."""

    n = Input(int)
    a = step(held, args={"x": ref("n")})
    b = step(noop, args={"x": ref("n")})
    join = step(add, args={"a": ref("a"), "b": ref("b")})


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    running = Engine(system, db_path=tmp_path / "runs.db", tracing=False, logging=False)
    try:
        yield running
    finally:
        running.close()


def _release(system: System) -> None:
    event = GATE.event
    assert event is not None
    system.bridge.loop.call_soon_threadsafe(event.set)


def _tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_a_live_run_keeps_few_objects_for_the_garbage_collector(
    system: System, engine: Engine
) -> None:
    GATE.expected = 1
    GATE.all_in.clear()
    GATE.arrived = 0
    warm = engine.start(Held, {"n": 0})  # imports, the first commit, the gate's event
    assert GATE.all_in.wait(10)
    _release(system)
    assert warm.result(10) == 0
    GATE.event = None
    GATE.expected, GATE.arrived = RUNS, 0
    GATE.all_in.clear()

    before = _tracked()
    handles: list[Any] = [engine.start(Held, {"n": n}) for n in range(RUNS)]
    assert GATE.all_in.wait(30), f"only {GATE.arrived} of {RUNS} runs reached the gate"
    per_run = (_tracked() - before) / RUNS
    _release(system)
    assert [h.result(30) for h in handles] == [2 * n for n in range(RUNS)]
    assert per_run <= MAX_OBJECTS_PER_RUN, f"{per_run:.1f} tracked objects per live run"
