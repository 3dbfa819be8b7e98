"""Reactors that a test kills mid-run (SIGKILL) and resumes in another process.

Every step writes its name to ``$CRASHY_DIR/effects.log`` (one line per execution that
returns, fsynced) just before it returns, so the log says exactly which executions
happened. A *gated* step first writes its name to ``starts.log`` and then waits until the
file ``$CRASHY_DIR/go`` exists: a test lets a first process reach it, kills that
process, creates ``go`` and resumes the run in a second process.

Run as a program (``python -m tests.support.crashy COMMAND ...``, with ``REACTOR_DB``
and ``CRASHY_DIR`` set):

* ``start RUN_ID REACTOR N``: start a run of ``REACTOR`` (a name in this module) with
  input ``n=N`` and wait for it (for ever, when a step is gated);
* ``resume RUN_ID``: ``Engine.resume(RUN_ID)`` and print the result as JSON;
* ``auto RUN_ID``: ``Engine(resume_interrupted=True)``, then wait for ``RUN_ID`` to end
  and print its result as JSON (with the runs the engine found interrupted).

The reactors are imported from ``tests.support.crashy`` (not ``__main__``) so that a run
started here names a locator the resuming process finds.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

import otel
from actors import System
from dsl import Input, Reactor, WithSteps, compose, for_each, recurse, ref, step, value
from reactor.app import Engine
from reactor.run._records import TERMINAL_EVENTS, RunCompleted

DIR_ENV = "CRASHY_DIR"
"""The environment variable naming the directory of the logs and the ``go`` file."""

EFFECTS = "effects.log"
STARTS = "starts.log"
GO = "go"


def _dir() -> Path:
    return Path(os.environ[DIR_ENV])


def record(name: str, log: str = EFFECTS) -> None:
    """Append ``name`` as one line to ``log`` in the marker directory, fsynced."""
    fd = os.open(_dir() / log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def lines(directory: Path, log: str = EFFECTS) -> list[str]:
    """The names written to ``log`` so far, in order (none if it does not exist)."""
    path = directory / log
    return path.read_text().splitlines() if path.exists() else []


async def gated(name: str) -> None:
    """Say that ``name`` started, then wait until the ``go`` file exists."""
    record(name, STARTS)
    gate = _dir() / GO
    while not gate.exists():  # noqa: ASYNC110 - another process creates it
        await asyncio.sleep(0.01)


# -- the reactors ----------------------------------------------------------------------


class Pipeline(Reactor):
    """A chain with a fan-out: fetch -> (left, right, upper) -> gate (gated) -> final."""

    n = Input(int)

    @step
    async def fetch(n: int) -> int:
        record("fetch")
        return n + 1

    @step
    async def left(fetch: int) -> int:
        record("left")
        return fetch * 2

    @step
    async def right(fetch: int) -> int:
        record("right")
        return fetch * 3

    @step
    async def upper(fetch: int) -> int:
        record("upper")
        return fetch * 4

    @step
    async def gate(left: int, right: int, upper: int) -> int:
        await gated("gate")
        record("gate")
        return left + right + upper

    @step
    async def final(gate: int, fetch: int) -> int:
        record("final")
        return gate * 10 + fetch


def pipeline_result(n: int) -> int:
    """What :class:`Pipeline` returns for ``n``."""
    fetch = n + 1
    return (fetch * 2 + fetch * 3 + fetch * 4) * 10 + fetch


class Inner(Reactor):
    """A composed chain: one -> two (gated) -> three."""

    x = Input(int)

    @step
    async def one(x: int) -> int:
        record("inner.one")
        return x + 1

    @step
    async def two(one: int) -> int:
        await gated("inner.two")
        record("inner.two")
        return one * 2

    @step
    async def three(two: int) -> int:
        record("inner.three")
        return two + 1


class Outer(Reactor):
    """before -> sub (composes :class:`Inner`) -> after."""

    n = Input(int)

    @step
    async def before(n: int) -> int:
        record("outer.before")
        return n + 1

    sub = compose(Inner, x=ref("before"))

    @step
    async def after(sub: int) -> int:
        record("outer.after")
        return sub * 10


def outer_result(n: int) -> int:
    """What :class:`Outer` returns for ``n``."""
    return (((n + 1) + 1) * 2 + 1) * 10


class Item(Reactor):
    """One element of :class:`Fan`: element 1 is gated, the others return at once."""

    i = Input(int)

    @step
    async def square(i: int) -> int:
        if i == 1:
            await gated("item.1")
        record(f"item.{i}")
        return i * i


class Fan(Reactor):
    """for_each over ``range(n)`` of :class:`Item`, then a sum."""

    n = Input(int)

    @step
    async def items(n: int) -> list[int]:
        record("items")
        return list(range(n))

    squares = for_each(ref("items"), Item, element="i")

    @step
    async def total(squares: list[int]) -> int:
        record("total")
        return sum(squares)


class Turn(Reactor):
    """One iteration of :class:`Spiral`: iteration 2 is gated."""

    i = Input(int)
    total = Input(int)

    @step
    async def turn(i: int, total: int) -> dict[str, int]:
        if i == 2:
            await gated("turn.2")
        record(f"turn.{i}")
        return {"i": i + 1, "total": total + i}


class Spiral(Reactor):
    """recurse of :class:`Turn` three times, then a step."""

    n = Input(int)
    loop = recurse(Turn, i=value(1), total=ref("n"), max_iterations=3)

    @step
    async def after(loop: dict[str, int]) -> int:
        record("spiral.after")
        return loop["total"]


def spiral_result(n: int) -> int:
    """What :class:`Spiral` returns for ``n``."""
    return n + 1 + 2 + 3


async def spin_once(i: int, total: int) -> Any:
    """One iteration of :class:`Loop`'s step (iteration 2 is gated): loops to 3."""
    if i == 2:
        await gated("spin.2")
    record(f"spin.{i}")
    state = {"i": i + 1, "total": total + i}
    if i >= 3:
        return state
    return WithSteps(state, [step(spin_again, name="spin", args={"last": ref("spin")})])


async def spin_again(last: dict[str, int]) -> Any:
    """The next iteration: it reads the previous one under the step's own name."""
    return await spin_once(last["i"], last["total"])


class Loop(Reactor):
    """A step that re-emits itself three times, then a step."""

    n = Input(int)

    @step
    async def spin(n: int) -> Any:
        return await spin_once(1, n)

    @step
    async def after(spin: dict[str, int]) -> int:
        record("loop.after")
        return spin["total"]


class Quick(Reactor):
    """One step, never gated (for runs resumed by a test in its own process)."""

    n = Input(int)

    @step
    async def double(n: int) -> int:
        return n * 2


# -- the program ---------------------------------------------------------------------


def _print(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def _wait_ended(engine: Engine, run_id: str, timeout: float) -> Any:
    """The last event of ``run_id``'s journal once it is terminal."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = engine.history(run_id)
        if events and type(events[-1]).__name__ in TERMINAL_EVENTS:
            return events[-1]
        time.sleep(0.02)
    msg = f"run {run_id} did not end within {timeout} s"
    raise TimeoutError(msg)


def main(argv: Sequence[str]) -> int:
    """Run one command (see the module docstring)."""
    otel.configure_logging(level="warning", stream=sys.stderr)
    command, run_id, *rest = argv
    db = os.environ["REACTOR_DB"]
    with System(name="crashy", default_timeout=10.0) as system:
        match command:
            case "start":
                reactor = globals()[rest[0]]
                engine = Engine(system, db_path=db, tracing=False, logging=False)
                handle = engine.start(reactor, {"n": int(rest[1])}, run_id=run_id)
                _print({"started": handle.run_id, "pid": os.getpid()})
                _print({"result": handle.result(timeout=60)})
            case "resume":
                engine = Engine(system, db_path=db, tracing=False, logging=False)
                handle = engine.resume(run_id)
                _print({"result": handle.result(timeout=30)})
            case "auto":
                engine = Engine(
                    system, db_path=db, tracing=False, logging=False, resume_interrupted=True
                )
                last = _wait_ended(engine, run_id, timeout=30)
                value = (
                    msgspec.json.decode(last.value)
                    if isinstance(last, RunCompleted)
                    else type(last).__name__
                )
                _print({"result": value})
            case _:
                sys.stderr.write(f"unknown command {command!r}\n")
                return 2
        engine.close()
    return 0


if __name__ == "__main__":
    # The reactors under their importable name, not as ``__main__``'s.
    module = importlib.import_module("tests.support.crashy")
    sys.exit(module.main(sys.argv[1:]))
