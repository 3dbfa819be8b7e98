"""Composite steps run other reactors as child runs: compose, for_each, switch, group, around.

Each child run is a run of its own, with its own journal stream whose ``RunStarted``
names its parent. A child's failure fails the composing step, which rolls the parent
back; composition that re-enters a running reactor, or goes deeper than the engine's
``max_depth``, is refused with a :class:`~dsl.RecursionLimitError` that fails the step.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import System
from dsl import Input, Reactor, around, compose, for_each, group, ref, step, switch
from reactor.app import Engine
from reactor.run import RunFailedError
from reactor.run._records import (
    RunCompleted,
    RunFailed,
    RunStarted,
    RunUndone,
    StepCompleted,
    StepFailed,
    StepUndone,
)
from tests.support.composed import Again, DepthA, Ping

# -- shared records -------------------------------------------------------------------------

calls: list[Any] = []
"""What steps, hooks and wrappers did, in order (reset for every test)."""


class Gauge:
    """Steps running at once, and the most there ever were."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


gauge = Gauge()


@pytest.fixture(autouse=True)
def fresh_records() -> None:
    """Every test starts with empty records."""
    global gauge  # noqa: PLW0603 - the reactors below read the module's gauge
    calls.clear()
    gauge = Gauge()


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine with its journal in a temporary file."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def children_of(engine: Engine, run_id: str) -> list[str]:
    """The ids of the runs that ``run_id`` composed (directly)."""
    return sorted(r.run_id for r in engine.runs(include_children=True) if r.parent == run_id)


# -- compose --------------------------------------------------------------------------------


class Adder(Reactor):
    """Adds its two inputs."""

    x = Input(int)
    y = Input(int, default=0)

    @step
    def total(x: int, y: int) -> int:
        return x + y


class Composing(Reactor):
    """``x`` binds by name; ``y`` from a step's result at a sub-path; the sum flows on."""

    x = Input(int)

    @step
    def pair(x: int) -> dict[str, int]:
        return {"a": x, "b": x * 10}

    sub = compose(Adder, y=ref("pair", "b"))

    @step
    def final(sub: int) -> str:
        return f"sum={sub}"


def test_compose_binds_inputs_by_name_and_by_source_and_its_result_flows_on(
    engine: Engine,
) -> None:
    """A composed reactor gets inputs by name and by keyword source; later steps get its result."""
    handle = engine.start(Composing, {"x": 3})
    assert handle.result(10) == "sum=33"
    history = engine.history(handle.run_id)
    completed = [e.step for e in history if isinstance(e, StepCompleted)]
    assert completed == ["pair", "sub", "final"]


def test_a_composed_run_has_its_own_journal_stream_naming_its_parent(engine: Engine) -> None:
    """The child run is listed with include_children and its parent; its journal is complete."""
    handle = engine.start(Composing, {"x": 2})
    assert handle.result(10) == "sum=22"
    [child] = children_of(engine, handle.run_id)
    assert child.startswith(f"{handle.run_id}/sub.")
    assert handle.run_id in [r.run_id for r in engine.runs()]
    assert child not in [r.run_id for r in engine.runs()]  # top-level runs only by default
    summary = next(r for r in engine.runs(include_children=True) if r.run_id == child)
    assert (summary.reactor, summary.status, summary.parent) == (
        "Adder",
        "completed",
        handle.run_id,
    )
    events = engine.history(child)
    assert isinstance(events[0], RunStarted)
    assert events[0].parent == handle.run_id
    assert isinstance(events[-1], RunCompleted)


# -- for_each -------------------------------------------------------------------------------


class Square(Reactor):
    """Squares one item (plus an offset shared by every element)."""

    item = Input(int)
    offset = Input(int, default=0)

    @step
    async def squared(item: int, offset: int) -> int:
        gauge.enter()
        try:
            # Wait (bounded) for a partner, so that a limit of 2 is actually reached;
            # later items finish in a different order than they started.
            for _ in range(400):
                if gauge.peak >= 2:
                    break
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.001 * (item % 3))
            return item * item + offset
        finally:
            gauge.leave()


class Squares(Reactor):
    """Squares every item, two at a time, in order."""

    items = Input(list[int])
    offset = Input(int, default=0)
    each = for_each(ref("items"), Square, batch_size=2)


class SquaresAnyOrder(Reactor):
    """Squares every item, two at a time, in completion order."""

    items = Input(list[int])
    each = for_each(ref("items"), Square, batch_size=2, ordered=False)


def test_for_each_returns_results_in_order_and_runs_at_most_batch_size_at_once(
    engine: Engine,
) -> None:
    """for_each over 7 items with batch_size=2: ordered results; child steps peak at exactly 2."""
    items = [5, 1, 4, 2, 6, 3, 0]
    result = engine.run(Squares, {"items": items, "offset": 1})
    assert result == [i * i + 1 for i in items]
    assert gauge.peak == 2


def test_for_each_runs_one_child_run_per_element(engine: Engine) -> None:
    """Each element is a child run of its own, named by its index."""
    handle = engine.start(Squares, {"items": [1, 2, 3]})
    assert handle.result(10) == [1, 4, 9]
    children = children_of(engine, handle.run_id)
    assert [c.rsplit("/", 1)[1] for c in children] == ["0", "1", "2"]


def test_for_each_unordered_returns_every_result(engine: Engine) -> None:
    """ordered=False returns all the results, in any order, still two at a time."""
    items = [5, 1, 4, 2, 6, 3, 0]
    result = engine.run(SquaresAnyOrder, {"items": items})
    assert sorted(result) == sorted(i * i for i in items)
    assert len(result) == len(items)
    assert gauge.peak <= 2


def test_for_each_over_an_empty_list_is_an_empty_list(engine: Engine) -> None:
    """An empty collection gives [] and starts no child run."""
    handle = engine.start(Squares, {"items": []})
    assert handle.result(10) == []
    assert children_of(engine, handle.run_id) == []


# -- switch ---------------------------------------------------------------------------------


class Negative(Reactor):
    """The branch for n < 0."""

    n = Input(int)

    @step
    def label(n: int) -> str:
        return f"negative {n}"


class Zero(Reactor):
    """The branch for n == 0."""

    n = Input(int)

    @step
    def label(n: int) -> str:
        return "zero"


class Positive(Reactor):
    """The default branch."""

    n = Input(int)

    @step
    def label(n: int) -> str:
        return f"positive {n}"


def _is_negative(n: int) -> bool:
    return n < 0


def _is_zero(n: int) -> bool:
    return n == 0


class Sign(Reactor):
    """Picks a branch by the sign of n, with a default."""

    n = Input(int)
    pick = switch(ref("n"), [(_is_negative, Negative), (_is_zero, Zero)], default=Positive)


class SignWithoutDefault(Reactor):
    """Picks a branch by the sign of n; none for positive n."""

    n = Input(int)
    pick = switch(ref("n"), [(_is_negative, Negative), (_is_zero, Zero)])


@pytest.mark.parametrize(
    ("n", "expected", "branch"),
    [(-5, "negative -5", "Negative"), (0, "zero", "Zero"), (7, "positive 7", "Positive")],
)
def test_switch_runs_the_first_matching_branch_or_the_default(
    engine: Engine, n: int, expected: str, branch: str
) -> None:
    """The first predicate that holds picks the branch; none holding picks the default."""
    handle = engine.start(Sign, {"n": n})
    assert handle.result(10) == expected
    [child] = children_of(engine, handle.run_id)
    assert child.endswith(f"/{branch}")


def test_switch_without_default_and_no_match_is_none(engine: Engine) -> None:
    """No default and no predicate holding: the result is None and no branch runs."""
    handle = engine.start(SignWithoutDefault, {"n": 3})
    assert handle.result(10) is None
    assert children_of(engine, handle.run_id) == []
    assert engine.run(SignWithoutDefault, {"n": -1}) == "negative -1"


# -- group ----------------------------------------------------------------------------------


class Inner(Reactor):
    """Two steps in a row, each recorded."""

    x = Input(int)

    @step
    def first(x: int) -> int:
        calls.append("inner first")
        return x + 1

    @step
    def second(first: int) -> int:
        calls.append("inner second")
        return first * 2


class Broken(Reactor):
    """One step that works, then one that fails."""

    x = Input(int)

    @step
    def first(x: int) -> int:
        calls.append("inner first")
        return x

    @step
    def second(first: int) -> int:
        calls.append("inner second")
        msg = "inner step broke"
        raise ValueError(msg)


def _before(args: dict[str, Any]) -> None:
    calls.append(("before", dict(args)))


def _after(args: dict[str, Any], result: Any) -> None:
    calls.append(("after", result))


class Grouped(Reactor):
    """Inner's steps between before and after."""

    x = Input(int)
    grouped = group(Inner, before=_before, after=_after)


class GroupedBroken(Reactor):
    """Broken's steps between before and after."""

    x = Input(int)
    grouped = group(Broken, before=_before, after=_after)


def test_group_runs_before_then_the_steps_then_after(engine: Engine) -> None:
    """The before hook sees the arguments and runs first; after sees the result, last."""
    assert engine.run(Grouped, {"x": 4}) == 10
    assert calls == [("before", {"x": 4}), "inner first", "inner second", ("after", 10)]


def test_group_after_runs_with_none_when_the_steps_fail(engine: Engine) -> None:
    """The after hook runs like a finally, with None as the result; the group step fails."""
    with pytest.raises(RunFailedError) as caught:
        engine.run(GroupedBroken, {"x": 4})
    assert calls == [("before", {"x": 4}), "inner first", "inner second", ("after", None)]
    assert caught.value.errors[0].step == "grouped"
    assert "inner step broke" in caught.value.errors[0].message


# -- around ---------------------------------------------------------------------------------


async def _wrapper(args: dict[str, Any], run: Callable[[dict[str, Any]], Awaitable[Any]]) -> Any:
    calls.append(("enter", dict(args)))
    try:
        result = await run({**args, "x": args["x"] + 100})
    finally:
        calls.append("exit")
    return {"wrapped": result}


class Wrapped(Reactor):
    """Inner's steps inside the wrapper."""

    x = Input(int)
    wrapped = around(Inner, _wrapper)


def test_around_wraps_the_steps_and_its_return_is_the_result(engine: Engine) -> None:
    """The wrapper sees the arguments, wraps the steps; what it returns is the result."""
    assert engine.run(Wrapped, {"x": 1}) == {"wrapped": (1 + 100 + 1) * 2}
    assert calls == [("enter", {"x": 1}), "inner first", "inner second", "exit"]


class Flaky(Reactor):
    """Fails while ``x`` is odd: a transaction that conflicts, say."""

    x = Input(int)

    @step
    def commit(x: int) -> int:
        calls.append(("commit", x))
        if x % 2:
            msg = f"conflict at {x}"
            raise ValueError(msg)
        return x


async def _retrying(args: dict[str, Any], run: Callable[[dict[str, Any]], Awaitable[Any]]) -> Any:
    for x in range(args["x"], args["x"] + 3):
        try:
            return await run({"x": x})
        except RunFailedError:
            calls.append("retry")
    return None


class Retried(Reactor):
    """A wrapper that runs its steps again when they fail."""

    x = Input(int)
    retried = around(Flaky, _retrying)


def test_around_runs_the_steps_again_on_each_call(engine: Engine) -> None:
    """A second ``run`` is a new child run, not the first one's answer read back."""
    handle = engine.start(Retried, {"x": 1})
    assert handle.result(10) == 2
    assert calls == [("commit", 1), "retry", ("commit", 2)]
    children = [s for s in engine.runs(include_children=True) if s.parent == handle.run_id]
    assert sorted(s.status for s in children) == ["completed", "failed"]


# -- failures ---------------------------------------------------------------------------------


def _unreserve(value: Any, arguments: dict[str, Any]) -> None:
    calls.append(("undo reserve", value))


class FailingChild(Reactor):
    """Fails in its only step."""

    seat = Input(str)

    @step
    def book(seat: str) -> str:
        calls.append("book")
        msg = f"no flight for {seat}"
        raise ValueError(msg)


class Trip(Reactor):
    """Reserves a seat (undoable), then composes a reactor that fails."""

    who = Input(str)

    @step(undo=_unreserve)
    def reserve(who: str) -> str:
        calls.append("reserve")
        return f"seat for {who}"

    booked = compose(FailingChild, seat=ref("reserve"))

    @step
    def confirm(booked: str) -> str:
        calls.append("confirm")
        return booked


def test_a_failing_child_fails_the_composing_step_and_undoes_the_parent(engine: Engine) -> None:
    """The child's failure is the compose step's; the parent's earlier undoable steps are undone."""
    handle = engine.start(Trip, {"who": "ada"})
    with pytest.raises(RunFailedError) as caught:
        handle.result(10)
    error = caught.value.errors[0]
    assert error.step == "booked"
    assert "no flight for seat for ada" in error.message
    assert calls == ["reserve", "book", ("undo reserve", "seat for ada")]
    history = engine.history(handle.run_id)
    assert [e.step for e in history if isinstance(e, StepUndone)] == ["reserve"]
    assert isinstance(history[-1], RunFailed)
    [child] = children_of(engine, handle.run_id)
    child_history = engine.history(child)
    assert isinstance(child_history[-1], RunFailed)
    failed = [e for e in child_history if isinstance(e, StepFailed)]
    assert [e.step for e in failed] == ["book"]


class Booking(Reactor):
    """Books a seat, with an undo: the child a parent rolls back."""

    seat = Input(str)

    @step(undo=lambda value, arguments: calls.append(("cancel booking", value)))
    def book(seat: str) -> str:
        calls.append("book")
        return f"booked {seat}"


class TripThenPay(Reactor):
    """Composes a Booking that completes, then fails in a later step."""

    seat = Input(str)
    booking = compose(Booking)

    @step(max_retries=0)
    def pay(booking: str) -> str:
        calls.append("pay")
        msg = f"card declined for {booking}"
        raise ValueError(msg)


def test_a_completed_child_run_is_undone_when_its_parent_fails_later(engine: Engine) -> None:
    """Rollback reaches into composed runs: the child's undoable steps are undone, newest first."""
    handle = engine.start(TripThenPay, {"seat": "12A"})
    with pytest.raises(RunFailedError, match="card declined"):
        handle.result(10)
    assert calls == ["book", "pay", ("cancel booking", "booked 12A")]
    history = engine.history(handle.run_id)
    assert [e.step for e in history if isinstance(e, StepUndone)] == ["booking"]
    [child] = children_of(engine, handle.run_id)
    child_history = engine.history(child)
    assert [e.step for e in child_history if isinstance(e, StepUndone)] == ["book"]
    assert isinstance(child_history[-1], RunUndone)
    assert not child_history[-1].errors


# -- recursion guard --------------------------------------------------------------------------


def test_a_reactor_composing_itself_is_refused_as_recursion(engine: Engine) -> None:
    """A run that composes its own reactor fails at that step, saying it would recurse."""
    handle = engine.start(Again, {"n": 1})
    with pytest.raises(RunFailedError) as caught:
        handle.result(10)
    error = caught.value.errors[0]
    assert error.step == "again"
    assert error.error == "RecursionLimitError"
    assert "recurse" in error.message
    assert "already running" in error.message
    assert "Again -> Again" in error.message
    assert children_of(engine, handle.run_id) == []  # refused before a child run started


def test_mutual_recursion_through_another_reactor_is_refused(engine: Engine) -> None:
    """Ping composes Pong, which composes Ping again: refused, naming the whole stack."""
    handle = engine.start(Ping, {"n": 1})
    with pytest.raises(RunFailedError) as caught:
        handle.result(10)
    assert caught.value.errors[0].step == "pong"
    assert "already running" in str(caught.value)
    assert "Ping -> Pong -> Ping" in str(caught.value)


def test_composition_deeper_than_max_depth_fails(system: System, tmp_path: Path) -> None:
    """Engine(max_depth=2): A composes B, which may not compose C."""
    with (
        Engine(system, db_path=tmp_path / "runs.db", logging=False, max_depth=2) as shallow,
        pytest.raises(RunFailedError) as caught,
    ):
        shallow.run(DepthA, {"n": 1})
    assert caught.value.errors[0].step == "b"
    assert "deeper than max_depth=2" in str(caught.value)
    assert "DepthA -> DepthB -> DepthC" in str(caught.value)


def test_composition_within_max_depth_runs(system: System, tmp_path: Path) -> None:
    """Engine(max_depth=3): the same chain of three runs to its result."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False, max_depth=3) as deep:
        assert deep.run(DepthA, {"n": 1}) == 2
