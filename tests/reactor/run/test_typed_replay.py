"""A resumed run hands later steps the results of composite steps in their declared types.

A step's result is journaled as JSON and decoded on replay to the type its step
declares. A composite step (``compose``, ``recurse``, ``group``, ``switch``,
``for_each``) declares what its reactors' return steps declare: a dataclass a composed
reactor returns is a dataclass again after a resume, as it was in the first run, not a
dict that a later step then fails on.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from actors import System
from dsl import Input, Reactor, compose, find, for_each, ref, step, switch
from reactor.app import Engine
from reactor.run import RunHaltedError

WAIT = 10.0

FLOW = """
import os
from dataclasses import dataclass
from dsl import Halt, Input, Reactor, compose, for_each, recurse, ref, step, switch

@dataclass
class Point:
    x: int
    y: int

class Make(Reactor, returns="point"):
    x = Input(int)

    @step
    def point(x: int) -> Point:
        return Point(x, x + 1)

@dataclass
class Count:
    x: int

class Step(Reactor, returns="next"):
    x = Input(int)

    @step
    def next(x: int) -> Count:
        return Count(x + 1)

class Flow(Reactor, returns="final"):
    x = Input(int)
    xs = Input(list[int])
    made = compose(Make)
    each = for_each(ref("xs"), Make, element="x")
    chosen = switch(ref("x"), [(lambda x: x > 0, Make)], default=Make)
    counted = recurse(Step, max_iterations=3)

    @step
    def gate(made: Point) -> str | Halt:
        if not os.path.exists(os.environ["FLOW_GO"]):
            return Halt("waiting")
        return "go"

    @step
    def final(made: Point, each: list[Point], chosen: Point, counted: Count, gate: str) -> str:
        return " ".join(
            [type(made).__name__, *(type(p).__name__ for p in each), type(chosen).__name__,
             type(counted).__name__, str(made.y + sum(p.y for p in each) + chosen.y + counted.x)]
        )
"""


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def _flow(folder: Path) -> type[Reactor]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "typed_flow.py"
    path.write_text(textwrap.dedent(FLOW))
    found: type[Reactor] = find(f"{path}:Flow")
    return found


def test_composite_results_keep_their_declared_types_after_a_resume(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compose, for_each, switch and recurse results are dataclasses again when replayed."""
    marker = tmp_path / "go"
    monkeypatch.setenv("FLOW_GO", str(marker))
    flow = _flow(tmp_path / "flow")
    with pytest.raises(RunHaltedError):
        engine.run(flow, {"x": 2, "xs": [5, 7]}, run_id="typed")
    marker.write_text("go")
    result: Any = engine.resume("typed").result(WAIT)
    assert result == f"Point Point Point Point Count {3 + 6 + 8 + 3 + 5}"


@dataclass
class Out:
    """What :class:`One` returns."""

    n: int


class One(Reactor, returns="out"):
    n = Input(int)

    @step
    def out(n: int) -> Out:
        return Out(n)


class Other(Reactor, returns="out"):
    n = Input(int)

    @step
    def out(n: int) -> int:
        return n


class Uses(Reactor):
    n = Input(int)
    ns = Input(list[int])
    whole = compose(One)
    many = for_each(ref("ns"), One, element="n")
    maybe = switch(ref("n"), [(lambda n: n > 0, One)])
    mixed = switch(ref("n"), [(lambda n: n > 0, One)], default=Other)


def test_a_composite_declares_what_its_reactors_return() -> None:
    """The step specs say so (a switch without a default may give None; mixed: Any)."""
    steps = Uses.__plan__.steps
    assert steps["whole"].result_type is Out
    assert steps["many"].result_type == list[Out]
    assert steps["maybe"].result_type == Out | None
    assert steps["mixed"].result_type is Any
