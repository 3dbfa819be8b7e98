"""Acceptance against Ash Reactor's semantics: rescued steps, hook signatures, added steps.

* A step rescued by ``compensate`` returning ``Continue(value)`` counts as completed:
  a later failure undoes it like any other completed step, also after a resume.
* ``undo`` and ``compensate`` take their arguments positionally or by keyword.
* Steps added while running (``WithSteps``) may be listed in any order and refer to each
  other; added steps that cannot be planned fail the adding step, and the run stays in
  the journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import structlog

from actors import System
from dsl import Continue, Halt, Input, Reactor, WithSteps, collect, ref, step, value
from reactor.app import Engine
from reactor.cli import main
from reactor.run import (
    RunCompleted,
    RunEvent,
    RunFailed,
    RunFailedError,
    RunHaltedError,
    StepCompensated,
    StepCompleted,
    StepsAdded,
    StepStarted,
    StepUndoFailed,
    StepUndone,
)
from tests.support.acceptance import LOG, GrowsBackwards, Rescued
from tests.support.flows import add, double

T = TypeVar("T")

WAIT = 10.0
"""Seconds a test waits for a run's result before calling it hung."""


@pytest.fixture(autouse=True)
def _reset_log() -> Iterator[None]:
    LOG.reset()
    yield
    LOG.reset()


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine journaling into a fresh database, without log lines."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def of_type(events: list[RunEvent], kind: type[T]) -> list[T]:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


# -- a rescued step is a completed step ---------------------------------------------------------


def test_a_step_rescued_by_continue_is_undone_when_the_run_fails_later(
    engine: Engine, tmp_path: Path
) -> None:
    """Continue(v) completes the step: a later failure runs its undo with v."""
    flag = tmp_path / "flag"
    flag.touch()
    handle = engine.start(Rescued, {"flag": str(flag)})
    with pytest.raises(RunFailedError, match="late failure after substitute"):
        handle.result(WAIT)
    assert LOG.log == ["fetch", "gate", "undo substitute"]
    events = engine.history(handle.run_id)
    assert [c.decision for c in of_type(events, StepCompensated)] == ["continue"]
    assert [u.step for u in of_type(events, StepUndone)] == ["fetch"]
    assert isinstance(events[-1], RunFailed)


def test_a_rescued_step_replayed_on_resume_is_still_undone(engine: Engine, tmp_path: Path) -> None:
    """After a halt and a resume, the rescued step's result comes from the journal and is undone."""
    flag = tmp_path / "flag"
    handle = engine.start(Rescued, {"flag": str(flag)})
    with pytest.raises(RunHaltedError):
        handle.result(WAIT)
    flag.touch()
    with pytest.raises(RunFailedError, match="late failure after substitute"):
        engine.resume(handle.run_id).result(WAIT)
    assert LOG.log == ["fetch", "gate", "gate", "undo substitute"]  # fetch ran once
    assert [u.step for u in of_type(engine.history(handle.run_id), StepUndone)] == ["fetch"]


# -- hooks take their arguments positionally or by keyword ---------------------------------------


def test_undo_and_compensate_may_take_their_arguments_positionally(engine: Engine) -> None:
    """``lambda v, args`` works for undo and ``lambda e, args`` for compensate."""
    seen: list[Any] = []

    class Positional(Reactor):
        x = Input(int)

        @step(undo=lambda v, args: seen.append(("undo", v, args["x"])))
        def first(x: int) -> int:
            return x * 10

        @step(compensate=lambda e, args: Continue(f"rescued {type(e).__name__} {args}"))
        def second(first: int) -> str:
            raise ValueError(first)

        @step(max_retries=0)
        def third(second: str) -> str:
            seen.append(second)
            raise RuntimeError("late")

    with pytest.raises(RunFailedError) as caught:
        engine.run(Positional, {"x": 4})
    assert seen == ["rescued ValueError {'first': 40}", ("undo", 40, 4)]
    events = engine.history(caught.value.run_id)
    assert of_type(events, StepUndoFailed) == []
    assert [u.step for u in of_type(events, StepUndone)] == ["first"]


def test_undo_and_compensate_may_take_their_arguments_by_keyword(engine: Engine) -> None:
    """Keyword-only parameters named value/error and arguments, in any order, work."""
    seen: list[Any] = []

    def undo(*, arguments: dict[str, Any], value: Any) -> None:
        seen.append(("undo", value, arguments))

    def compensate(*, arguments: dict[str, Any], error: BaseException) -> Continue:
        return Continue(f"rescued {error}")

    class ByKeyword(Reactor):
        @step(undo=undo)
        def first() -> int:
            return 1

        @step(compensate=compensate)
        def second(first: int) -> str:
            raise ValueError("down")

        @step(max_retries=0)
        def third(second: str) -> str:
            seen.append(second)
            raise RuntimeError("late")

    with pytest.raises(RunFailedError):
        engine.run(ByKeyword)
    assert seen == ["rescued down", ("undo", 1, {})]


# -- steps added while running -----------------------------------------------------------------


def test_added_steps_may_come_in_any_order_and_refer_to_each_other(engine: Engine) -> None:
    """An added step listed before the added step it needs runs after it."""

    class Backwards(Reactor):
        n = Input(int)

        @step
        def seed(n: int) -> Any:
            return WithSteps(
                n,
                [
                    step(double, name="later", args={"x": ref("sooner")}),
                    step(add, name="sooner", args={"x": ref("seed"), "y": value(10)}),
                ],
            )

    handle = engine.start(Backwards, {"n": 5})
    handle.result(WAIT)
    assert LOG.log == ["add 5 10", "double 15"]
    events = engine.history(handle.run_id)
    values = {c.step: bytes(c.value) for c in of_type(events, StepCompleted)}
    assert values == {"seed": b"5", "sooner": b"15", "later": b"30"}
    assert isinstance(events[-1], RunCompleted)


def test_added_steps_in_any_order_are_rebuilt_on_resume(engine: Engine, tmp_path: Path) -> None:
    """A halted run whose added steps were listed backwards resumes and completes them."""
    flag = tmp_path / "flag"
    handle = engine.start(GrowsBackwards, {"n": 7, "flag": str(flag)})
    with pytest.raises(RunHaltedError) as caught:
        handle.result(WAIT)
    assert caught.value.step == "first"
    flag.touch()
    engine.resume(handle.run_id).result(WAIT)
    assert LOG.log == ["gated 7", "gated 7", "double 4"]  # second gets halve(first) = 4
    events = engine.history(handle.run_id)
    added = of_type(events, StepsAdded)
    assert [d["name"] for d in added[0].steps] == ["second", "first"]
    assert added[0].steps[0]["args"]["x"]["transform"] == "tests.support.acceptance:halve"
    values = {c.step: bytes(c.value) for c in of_type(events, StepCompleted)}
    assert values["second"] == b"8"
    assert isinstance(events[-1], RunCompleted)


@pytest.mark.parametrize(
    ("added", "words"),
    [
        (lambda: [add], "item 0 is <function add"),
        (lambda: [collect(x=value(1))], "needs a name"),
        (
            lambda: [
                step(double, name="twin", args={"x": value(1)}),
                step(double, name="twin", args={"x": value(2)}),
            ],
            "two added steps are named 'twin'",
        ),
        (
            lambda: [
                step(double, name="a", args={"x": ref("b")}),
                step(double, name="b", args={"x": ref("a")}),
            ],
            "a cycle",
        ),
        (lambda: step(double, name="alone", args={"x": value(1)}), "must be a list of steps"),
    ],
    ids=["not-a-step", "no-name", "duplicate", "cycle", "not-a-list"],
)
def test_added_steps_that_cannot_be_planned_fail_the_step_and_the_run_stays_in_the_journal(
    engine: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    added: Any,
    words: str,
) -> None:
    """Bad added steps fail the adding step (bad_step); the failed run is journaled and shown."""

    class Bad(Reactor):
        @step
        def seed() -> Any:
            return WithSteps(1, added())

    handle = engine.start(Bad)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    first = caught.value.errors[0]
    assert (first.step, first.kind) == ("seed", "bad_step")
    assert words in first.message
    assert "can be resumed" not in str(caught.value)
    events = engine.history(handle.run_id)
    assert isinstance(events[-1], RunFailed)
    assert of_type(events, StepsAdded) == []
    assert {r.run_id: r.status for r in engine.runs()}[handle.run_id] == "failed"
    capsys.readouterr()
    logging = structlog.get_config()
    try:
        code = main(["runs", "show", handle.run_id, "--db", str(tmp_path / "runs.db")])
    finally:
        structlog.configure(**logging)  # the command pointed logs at this test's stderr
    out = capsys.readouterr().out
    assert code != 2
    assert "seed" in out
    assert words.split(" ", maxsplit=1)[0] in out


def test_a_run_whose_actor_crashes_is_still_in_the_journal(engine: Engine) -> None:
    """What the Run had not yet sent to the journal is sent when its actor stops."""

    class Unjournalable(Reactor):
        @step
        def halt() -> Any:
            return Halt(reason=object())  # type: ignore[arg-type]  # RunHalted cannot encode it

    handle = engine.start(Unjournalable)
    with pytest.raises(RunFailedError, match="can be resumed"):
        handle.result(WAIT)
    # The Store commits in order: once a later append is durable, the run's last batch is.
    engine.journal.append("test:barrier", "Barrier", b"{}")
    events = engine.history(handle.run_id)
    assert [type(e).__name__ for e in events][:2] == ["RunStarted", "StepStarted"]
    assert [s.step for s in of_type(events, StepStarted)] == ["halt"]
