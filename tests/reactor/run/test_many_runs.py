"""Many runs at once: runs take turns on the I/O loop, with no thread each.

A thousand runs held alive together (each waits at a barrier in its first step until
all have reached it) all complete, and the process has no more threads than before.
Also: a Run actor that crashes or is stopped answers its caller instead of leaving it
waiting, and runs can be started from sync code, asyncio code and other threads at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import System
from dsl import Input, Reactor, ref, step
from reactor.app import Engine, new_run_id
from reactor.run import Run, RunCompleted, RunFailedError

WAIT = 60.0
"""Seconds a test waits before calling a run hung (a bound, not a timing assertion)."""


class Barrier:
    """Holds each arriving step until ``expected`` steps have arrived.

    The steps run on the system's one I/O loop, so the count and the event need no lock.
    """

    def __init__(self) -> None:
        self.expected = 0
        self.arrived = 0
        self.threads_when_full = 0
        self._event: asyncio.Event | None = None

    def reset(self, expected: int) -> None:
        self.expected, self.arrived, self._event = expected, 0, None

    async def pass_(self, x: int) -> int:
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        self.arrived += 1
        if self.arrived == self.expected:
            self.threads_when_full = threading.active_count()
            event.set()
        await asyncio.wait_for(event.wait(), WAIT)
        return x


BARRIER = Barrier()


async def at_barrier(x: int) -> int:
    return await BARRIER.pass_(x)


async def noop(x: int) -> int:
    return x


async def add(a: int, b: int) -> int:
    return a + b


class Held(Reactor):
    """Two parallel steps (one held at the barrier) and a step joining them."""

    n = Input(int)
    a = step(at_barrier, args={"x": ref("n")})
    b = step(noop, args={"x": ref("n")})
    join = step(add, args={"a": ref("a"), "b": ref("b")})


class Quick(Reactor):
    """The same shape, nothing held."""

    n = Input(int)
    a = step(noop, args={"x": ref("n")})
    b = step(noop, args={"x": ref("n")})
    join = step(add, args={"a": ref("a"), "b": ref("b")})


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine journaling into a fresh database, without log lines or spans."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False, tracing=False) as running:
        yield running


def test_a_thousand_runs_held_alive_at_once_all_complete_without_a_thread_each(
    engine: Engine,
) -> None:
    """1,000 runs alive together complete, and the thread count does not grow with them."""
    count = 1_000
    engine.run(Quick, {"n": 1})  # the store and the loop are warm: their threads exist
    threads_before = threading.active_count()
    BARRIER.reset(count)

    async def burst() -> list[Any]:
        return await asyncio.gather(
            *(engine.run_async(Held, {"n": n}) for n in range(count)), return_exceptions=True
        )

    results = asyncio.run(burst())
    assert BARRIER.arrived == count
    assert results == [2 * n for n in range(count)]
    assert BARRIER.threads_when_full <= threads_before + 1  # + asyncio.run's own loop
    completed = [r for r in engine.runs(limit=None) if r.status == "completed"]
    assert len(completed) == count + 1


def test_runs_started_from_many_threads_and_asyncio_at_once_all_complete(
    engine: Engine,
) -> None:
    """Starting is safe from any thread: sync starts and async starts interleave."""
    results: dict[str, list[Any]] = {}

    def sync_starts(label: str) -> None:
        handles = [engine.start(Quick, {"n": n}) for n in range(100)]
        results[label] = [h.result(WAIT) for h in handles]

    threads = [threading.Thread(target=sync_starts, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()

    async def async_starts() -> list[Any]:
        return await asyncio.gather(*(engine.run_async(Quick, {"n": n}) for n in range(100)))

    results["async"] = asyncio.run(async_starts())
    for thread in threads:
        thread.join(WAIT)
    assert results == {
        label: [2 * n for n in range(100)] for label in ("t0", "t1", "t2", "t3", "async")
    }


def test_a_run_actor_that_crashes_answers_its_caller(
    engine: Engine, system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Run whose handler raises (a runtime bug) fails its run instead of hanging it."""

    def broken(self: Run, *_: object) -> None:
        raise RuntimeError("bug in dispatch")

    monkeypatch.setattr(Run, "_prepare", broken)
    handle = engine.start(Quick, {"n": 1}, run_id="crashes-1")
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    assert "stopped before the run ended" in str(caught.value)
    _wait_until_gone(system, f"run:{handle.run_id}")  # its supervisor hears of the exit next


def test_a_stopped_run_actor_answers_its_caller_and_frees_its_name(
    engine: Engine, system: System
) -> None:
    """Stopping a Run actor from outside ends the run for its caller; it can be resumed."""
    BARRIER.reset(2)  # never reached by one run: the step waits
    handle = engine.start(Held, {"n": 3}, run_id="stopped-1")
    deadline = time.monotonic() + WAIT
    while BARRIER.arrived == 0 or not engine.history(handle.run_id):  # running, journaled
        assert time.monotonic() < deadline, "the run never reached its held step"
        time.sleep(0.01)
    name = f"run:{handle.run_id}"
    run_ref = system.lookup(name)
    target = run_ref._target
    assert target is not None
    target.stop(block=False)
    with pytest.raises(RunFailedError):
        handle.result(WAIT)
    _wait_until_gone(system, name)
    BARRIER.reset(1)
    assert engine.resume(handle.run_id).result(WAIT) == 6
    assert isinstance(engine.history(handle.run_id)[-1], RunCompleted)


def _wait_until_gone(system: System, name: str) -> None:
    deadline = time.monotonic() + WAIT
    while name in system.runtime.names():
        if time.monotonic() > deadline:
            pytest.fail(f"{name} is still registered")
        time.sleep(0.01)


def test_run_ids_made_in_a_burst_never_collide() -> None:
    """100,000 ids made as fast as possible are all different (many share a millisecond)."""
    ids = [new_run_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert len({i.split("-")[0] for i in ids}) < len(ids)  # so the random part decides
