"""``recurse``, ``flunk`` and ``debug`` steps, run by a real engine on a real journal.

``recurse`` runs a reactor as child runs one after another (``<run>/<step>.1/<i>``),
each fed the last one's result, until its ``exit_condition`` holds or it has run
``max_iterations`` times (a success with the last result). A failing iteration fails
the step naming the iteration; the iterations that completed are undone newest first
when the run rolls back, and by ``Engine.undo``. ``flunk`` fails its step with a
``ForcedFailureError`` (kind ``forced_failure``, never retried); ``debug`` logs its
arguments through structlog and returns ``None``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from actors import System
from dsl import Input, Reactor, debug, flunk, recurse, ref, step, value
from reactor.app import Engine
from reactor.run import RunFailedError
from reactor.run._records import (
    RunCompleted,
    RunFailed,
    RunStarted,
    RunUndone,
    StepFailed,
    StepSkipped,
    StepUndone,
)

WAIT = 10.0

calls: list[Any] = []
"""What steps and undos did, in order (reset for every test)."""


@pytest.fixture(autouse=True)
def fresh_calls() -> None:
    calls.clear()


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine with its journal in a temporary file, without log lines."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def children_of(engine: Engine, run_id: str) -> list[str]:
    """The ids of the runs ``run_id`` composed directly, in iteration order."""
    found = [r.run_id for r in engine.runs(include_children=True) if r.parent == run_id]
    return sorted(found, key=lambda rid: int(rid.rsplit("/", 1)[1]))


# -- reactors ---------------------------------------------------------------------------------


def _undo_halve(value: dict[str, int], arguments: dict[str, Any]) -> None:
    calls.append(("undo", arguments["n"]))


class Halve(Reactor):
    """One iteration: halves ``n`` and counts the halvings; fails on 13 (an odd test)."""

    n = Input(int)
    count = Input(int, default=0)

    @step(undo=_undo_halve, max_retries=0)
    def half(n: int, count: int) -> dict[str, int]:
        calls.append(("half", n))
        if n == 13:
            msg = f"cannot halve {n} evenly"
            raise ValueError(msg)
        return {"n": n // 2, "count": count + 1, "extra": -1}


def _small(result: dict[str, int]) -> bool:
    return result["n"] <= 1


class HalveDown(Reactor):
    """Halves ``start`` until it is 1 (at most 20 times)."""

    start = Input(int)
    down = recurse(Halve, n=ref("start"), exit_condition=_small, max_iterations=20)


class HalveThrice(Reactor):
    """Exactly three iterations: no exit condition."""

    start = Input(int)
    down = recurse(Halve, n=ref("start"), max_iterations=3)


class HalveTwiceUnlessSmall(Reactor):
    """The exit condition never holds before the limit: the limit's result is the step's."""

    start = Input(int)
    down = recurse(Halve, n=ref("start"), max_iterations=2, exit_condition=lambda r: False)


class HalveThenPay(Reactor):
    """A recurse that completes, then a step that fails: the iterations are undone."""

    start = Input(int)
    down = recurse(Halve, n=ref("start"), max_iterations=3)

    @step(max_retries=0)
    def pay(down: dict[str, int]) -> int:
        calls.append("pay")
        msg = "card declined"
        raise ValueError(msg)


def test_recurse_feeds_each_result_to_the_next_iteration_until_the_exit_condition(
    engine: Engine,
) -> None:
    """100 -> 50 -> 25 -> 12 -> 6 -> 3 -> 1: six iterations, each a child run of its own."""
    handle = engine.start(HalveDown, {"start": 100})
    assert handle.result(WAIT) == {"n": 1, "count": 6, "extra": -1}
    assert [c[1] for c in calls] == [100, 50, 25, 12, 6, 3]
    kids = children_of(engine, handle.run_id)
    assert kids == [f"{handle.run_id}/down.1/{i}" for i in range(1, 7)]
    for kid in kids:
        history = engine.history(kid)
        assert isinstance(history[0], RunStarted)
        assert history[0].parent == handle.run_id
        assert isinstance(history[-1], RunCompleted)


def test_recurse_stops_at_max_iterations_with_the_last_result(engine: Engine) -> None:
    """No exit condition: exactly max_iterations iterations; the step succeeds."""
    assert engine.run(HalveThrice, {"start": 64}) == {"n": 8, "count": 3, "extra": -1}
    assert calls == [("half", 64), ("half", 32), ("half", 16)]
    assert engine.run(HalveTwiceUnlessSmall, {"start": 64}) == {"n": 16, "count": 2, "extra": -1}


def test_an_exit_condition_true_after_the_first_iteration_runs_it_once(engine: Engine) -> None:
    """The reactor always runs once; the condition is asked after each iteration."""
    assert engine.run(HalveDown, {"start": 2}) == {"n": 1, "count": 1, "extra": -1}
    assert calls == [("half", 2)]


def test_a_failing_iteration_fails_the_step_naming_it_and_undoes_the_others_newest_first(
    engine: Engine,
) -> None:
    """52 -> 26 -> 13 fails: iteration 3 is named; iterations 2 then 1 are undone."""
    handle = engine.start(HalveDown, {"start": 52})
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    [error] = caught.value.errors
    assert error.step == "down"
    assert error.kind == "error"
    assert error.error == "ValueError"
    assert error.message == (
        "iteration 3 of Halve failed at step 'half' (ValueError: cannot halve 13 evenly)"
    )
    assert calls == [("half", 52), ("half", 26), ("half", 13), ("undo", 26), ("undo", 52)]
    history = engine.history(handle.run_id)
    assert [e.step for e in history if isinstance(e, StepUndone)] == ["down"]
    assert isinstance(history[-1], RunFailed)
    kids = children_of(engine, handle.run_id)
    assert len(kids) == 3
    assert isinstance(engine.history(kids[2])[-1], RunFailed)
    for done in kids[:2]:
        assert isinstance(engine.history(done)[-1], RunUndone)


def test_a_later_failure_undoes_the_completed_iterations_newest_first(engine: Engine) -> None:
    """The parent's rollback reaches each iteration's child run, last iteration first."""
    with pytest.raises(RunFailedError, match="card declined"):
        engine.run(HalveThenPay, {"start": 64})
    assert calls == [
        ("half", 64),
        ("half", 32),
        ("half", 16),
        "pay",
        ("undo", 16),
        ("undo", 32),
        ("undo", 64),
    ]


def test_engine_undo_rolls_back_every_iteration_newest_first(engine: Engine) -> None:
    """A completed run with a recurse step is undone through its iterations."""
    handle = engine.start(HalveThrice, {"start": 40})
    handle.result(WAIT)
    calls.clear()
    engine.undo(handle.run_id, timeout=WAIT)
    assert calls == [("undo", 10), ("undo", 20), ("undo", 40)]
    assert isinstance(engine.history(handle.run_id)[-1], RunUndone)


# -- what feeds the next iteration ------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    x: int
    y: int


class Step(Reactor):
    """One move right; the result is a dataclass whose fields are the inputs."""

    x = Input(int)
    y = Input(int)

    @step
    def move(x: int, y: int) -> Point:
        return Point(x + 1, y * 2)


class Walk(Reactor):
    """Walks until x reaches 3; the exit condition is async."""

    x = Input(int)

    async def _far(result: Point) -> bool:  # type: ignore[misc] # noqa: N805 - a plain function
        return result.x >= 3

    walk = recurse(Step, y=value(1), exit_condition=_far)


class Loose(Reactor):
    """A result of no declared type: a list on the second iteration."""

    n = Input(int)

    @step
    def shape(n: int) -> Any:
        return {"n": n + 1} if n == 0 else [n]


class LooseLoop(Reactor):
    n = Input(int)
    go = recurse(Loose, max_iterations=5)


class Forgets(Reactor):
    """Its result loses the required input on the first iteration."""

    n = Input(int)

    @step
    def shape(n: int) -> dict[str, int]:
        return {"m": n}


class ForgetsLoop(Reactor):
    n = Input(int)
    go = recurse(Forgets, max_iterations=5)


class Grumpy(Reactor):
    n = Input(int)

    @step
    def same(n: int) -> dict[str, int]:
        return {"n": n + 1}


def _grumble(result: dict[str, int]) -> bool:
    if result["n"] == 2:
        msg = "no twos"
        raise KeyError(msg)
    return False


class GrumpyLoop(Reactor):
    n = Input(int)
    go = recurse(Grumpy, exit_condition=_grumble)


def test_a_dataclass_result_feeds_the_next_iteration_and_an_async_condition_is_awaited(
    engine: Engine,
) -> None:
    """(0, 1) -> (1, 2) -> (2, 4) -> (3, 8): the walk stops when x is 3."""
    assert engine.run(Walk, {"x": 0}) == Point(3, 8)


def test_a_result_that_cannot_be_the_next_inputs_fails_the_step_naming_the_iteration(
    engine: Engine,
) -> None:
    """Not a mapping, or without a required input: kind bad_result, the iteration named."""
    with pytest.raises(RunFailedError) as caught:
        engine.run(LooseLoop, {"n": 0})
    [error] = caught.value.errors
    assert (error.step, error.kind) == ("go", "bad_result")
    assert error.message.startswith("iteration 2 of Loose failed (bad_result: its result [1]")
    assert "is not a mapping of Loose's inputs" in error.message

    with pytest.raises(RunFailedError) as caught:
        engine.run(ForgetsLoop, {"n": 0})
    [error] = caught.value.errors
    assert error.message == (
        "iteration 1 of Forgets failed (bad_result: its result has no 'n' for the next "
        "iteration's required input (its keys: m))"
    )


def test_an_exit_condition_that_raises_fails_the_step_naming_the_iteration(
    engine: Engine,
) -> None:
    """Its error is the step's, with the iteration whose result it was asked about."""
    with pytest.raises(RunFailedError) as caught:
        engine.run(GrumpyLoop, {"n": 0})
    [error] = caught.value.errors
    assert error.step == "go"
    assert error.error == "KeyError"
    assert error.message == (
        "iteration 2 of Grumpy failed (KeyError: its exit_condition raised KeyError: 'no twos')"
    )


# -- flunk ------------------------------------------------------------------------------------


def _unreserve(value: str, arguments: dict[str, Any]) -> None:
    calls.append(("unreserve", value))


class Guarded(Reactor, returns="reserve"):
    """Reserves, then flunks when the amount is over the limit."""

    amount = Input(int)
    limit = Input(int, default=100)

    @step(undo=_unreserve)
    def reserve(amount: int) -> str:
        calls.append("reserve")
        return f"held {amount}"

    too_much = flunk(
        "{amount} is over the limit of {limit}",
        args={"held": ref("reserve")},
        where=lambda a: a["amount"] > a["limit"],
    )


def test_flunk_fails_the_run_with_a_forced_failure_and_rolls_back(engine: Engine) -> None:
    """The message is rendered from its arguments; one attempt; earlier steps undone."""
    handle = engine.start(Guarded, {"amount": 250})
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    [error] = caught.value.errors
    assert (error.step, error.kind, error.error) == (
        "too_much",
        "forced_failure",
        "ForcedFailureError",
    )
    assert error.message == "250 is over the limit of 100"
    assert calls == ["reserve", ("unreserve", "held 250")]
    failed = [e for e in engine.history(handle.run_id) if isinstance(e, StepFailed)]
    assert [(e.step, e.attempt, e.will_retry) for e in failed] == [("too_much", 1, False)]


def test_flunk_whose_where_is_false_is_skipped(engine: Engine) -> None:
    """``where`` decides whether to flunk; skipped, the run completes."""
    handle = engine.start(Guarded, {"amount": 50})
    assert handle.result(WAIT) == "held 50"
    skipped = [e.step for e in engine.history(handle.run_id) if isinstance(e, StepSkipped)]
    assert skipped == ["too_much"]


class FlunkInBranch(Reactor):
    """A flunk with no condition fails every run: recursing it fails iteration 1."""

    n = Input(int)
    no = flunk("no {n}")


class FlunkLoop(Reactor):
    n = Input(int)
    go = recurse(FlunkInBranch, max_iterations=2)


def test_a_flunk_inside_an_iteration_is_named_by_the_recurse_step(engine: Engine) -> None:
    """The iteration's forced failure keeps its kind through the recurse step."""
    with pytest.raises(RunFailedError) as caught:
        engine.run(FlunkLoop, {"n": 7})
    [error] = caught.value.errors
    assert (error.step, error.kind, error.error) == ("go", "forced_failure", "ForcedFailureError")
    assert error.message == (
        "iteration 1 of FlunkInBranch failed at step 'no' (ForcedFailureError: no 7)"
    )


# -- debug ------------------------------------------------------------------------------------


class Noisy(Reactor, returns="total"):
    a = Input(int)
    b = Input(int)

    @step
    def total(a: int, b: int) -> int:
        return a + b

    look = debug("a", "total", args={"twice": ref("total", transform=lambda t: t * 2)})
    loud = debug("b", level="warning", where=lambda args: args["b"] > 10)


@pytest.fixture
def debug_level() -> Iterator[None]:
    """Debug lines get through (structlog's configuration here keeps warning and up)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        yield
    finally:
        structlog.configure(**saved)


@pytest.mark.usefixtures("debug_level")
def test_debug_logs_its_arguments_at_its_level_and_returns_none(engine: Engine) -> None:
    """One structlog line per debug step that runs; its result is None."""
    with capture_logs() as logs:
        handle = engine.start(Noisy, {"a": 2, "b": 3}, context={"tenant": "acme"})
        assert handle.result(WAIT) == 5
    lines = [line for line in logs if line["event"] == "debug step"]
    assert lines == [
        {
            "event": "debug step",
            "log_level": "debug",
            "run_id": handle.run_id,
            "reactor": "Noisy",
            "step": "look",
            "arguments": {"a": 2, "total": 5, "twice": 10},
            "context": {"tenant": "acme"},
        }
    ]
    history = engine.history(handle.run_id)
    assert [e.step for e in history if isinstance(e, StepSkipped)] == ["loud"]

    with capture_logs() as logs:
        assert engine.run(Noisy, {"a": 1, "b": 20}) == 21
    levels = {line["step"]: line["log_level"] for line in logs if line["event"] == "debug step"}
    assert levels == {"look": "debug", "loud": "warning"}
