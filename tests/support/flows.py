"""Module-level reactors and step functions for the executor tests.

They live at module level so that the engine can find them again by locator: a halted
run is resumed by loading its reactor (``tests.support.flows:Approval``), and steps added
while a run runs (``WithSteps``) are journaled as ``module:function`` strings. The
tests reset :data:`TALLY` before each test and read the calls back from it.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any

from dsl import Halt, Input, Reactor, WithSteps, ref, step, value


class Tally:
    """Call counts and an ordered log of calls, safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.log: list[str] = []

    def hit(self, name: str) -> int:
        """Count one call of ``name``; returns how many there have been."""
        with self._lock:
            self.counts[name] += 1
            self.log.append(name)
            return self.counts[name]

    def reset(self) -> None:
        """Forget every call."""
        with self._lock:
            self.counts.clear()
            self.log.clear()


TALLY = Tally()
"""What the module-level steps below record."""


# -- halt and resume ----------------------------------------------------------------------


class Approval(Reactor):
    """Prepares a draft, waits for approval (a file), then publishes it."""

    flag = Input(str)
    title = Input(str, default="draft")

    @step
    def prepare(title: str) -> str:
        TALLY.hit("prepare")
        return title.upper()

    @step
    def approve(prepare: str, flag: str) -> str | Halt:
        TALLY.hit("approve")
        if not Path(flag).exists():
            return Halt("need approval")
        return f"approved {prepare}"

    @step
    def publish(approve: str) -> str:
        TALLY.hit("publish")
        return f"published: {approve}"


# -- dynamic steps ------------------------------------------------------------------------


def add(x: int, y: int) -> int:
    """An added step: ``x + y``."""
    TALLY.hit(f"add {x} {y}")
    return x + y


def double(x: int) -> int:
    """An added step: ``2 * x``."""
    TALLY.hit(f"double {x}")
    return 2 * x


class Grows(Reactor):
    """Its ``seed`` step adds two steps; the second takes the first's result."""

    n = Input(int)

    @step
    def seed(n: int) -> Any:
        return WithSteps(
            n,
            [
                step(add, name="extra_1", args={"x": ref("seed"), "y": value(10)}),
                step(double, name="extra_2", args={"x": ref("extra_1")}),
            ],
        )

    @step
    def tail(seed: int) -> int:
        return seed + 1
