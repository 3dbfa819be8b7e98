"""``Engine.undo``: roll back a completed run whose completed steps can all be undone.

The run is checked before anything is undone: it must have completed, and every step
that completed (its composed runs' included) must have an ``undo`` (guarded steps,
templates and the like have nothing to roll back). The rollback is journaled like a
failed run's, ending with ``RunUndone``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import System
from reactor.app import Engine
from reactor.run import (
    RunCompleted,
    RunFailedError,
    RunHaltedError,
    RunUndone,
    StepUndoFailed,
    StepUndone,
    UndoError,
)
from tests.support.acceptance import (
    LOG,
    Forgetful,
    ForgetfulParent,
    Rescued,
    StuckUndo,
    Trip,
)

WAIT = 10.0


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


def children(engine: Engine, run_id: str) -> list[str]:
    """The runs ``run_id`` composed."""
    return [r.run_id for r in engine.runs(include_children=True) if r.parent == run_id]


def test_undo_rolls_back_every_completed_step_newest_first(engine: Engine) -> None:
    """pay, then the composed booking, then reserve; the guard and the template need none."""
    handle = engine.start(Trip, {"who": "ada"})
    assert handle.result(WAIT) == "paid booked seat for ada (cached)"
    engine.undo(handle.run_id)
    assert LOG.log == [
        "undo paid booked seat for ada (cached)",
        "undo booked seat for ada",
        "undo seat for ada",
    ]
    events = engine.history(handle.run_id)
    assert [e.step for e in events if isinstance(e, StepUndone)] == ["pay", "booking", "reserve"]
    assert isinstance(events[-1], RunUndone)
    assert events[-1].errors == ()
    [child] = children(engine, handle.run_id)
    assert isinstance(engine.history(child)[-1], RunUndone)
    statuses = {r.run_id: r.status for r in engine.runs(include_children=True)}
    assert statuses[handle.run_id] == "undone"
    assert statuses[child] == "undone"


def test_a_run_undone_already_is_refused(engine: Engine) -> None:
    """A second undo is refused: the run is not completed any more."""
    handle = engine.start(Trip, {"who": "ada"})
    handle.result(WAIT)
    engine.undo(handle.run_id)
    LOG.reset()
    with pytest.raises(UndoError, match="was undone already"):
        engine.undo(handle.run_id)
    assert LOG.log == []


def test_a_completed_step_without_undo_refuses_the_undo_before_anything_is_undone(
    engine: Engine,
) -> None:
    """``plain`` has no undo: UndoError names it, and ``first`` is not undone either."""
    handle = engine.start(Forgetful)
    handle.result(WAIT)
    with pytest.raises(UndoError) as caught:
        engine.undo(handle.run_id)
    assert caught.value.steps == ("plain",)
    assert "plain" in str(caught.value)
    assert "nothing was undone" in str(caught.value)
    assert LOG.log == []
    assert isinstance(engine.history(handle.run_id)[-1], RunCompleted)


def test_a_composed_runs_step_without_undo_is_named_with_its_run(engine: Engine) -> None:
    """The check reaches into composed runs and names the child run and its step."""
    handle = engine.start(ForgetfulParent)
    handle.result(WAIT)
    [child] = children(engine, handle.run_id)
    with pytest.raises(UndoError) as caught:
        engine.undo(handle.run_id)
    assert caught.value.steps == (f"{child}: bump",)
    assert LOG.log == []


def test_runs_that_did_not_complete_and_unknown_runs_are_refused(
    engine: Engine, tmp_path: Path
) -> None:
    """A failed run, a halted run, a composed run and an unknown run cannot be undone."""
    flag = tmp_path / "flag"
    halted = engine.start(Rescued, {"flag": str(flag)})
    with pytest.raises(RunHaltedError):
        halted.result(WAIT)
    with pytest.raises(UndoError, match=r"has not completed \(halted\)"):
        engine.undo(halted.run_id)
    flag.touch()
    failed = engine.resume(halted.run_id)
    with pytest.raises(RunFailedError):
        failed.result(WAIT)
    with pytest.raises(UndoError, match=r"has not completed \(failed\)"):
        engine.undo(halted.run_id)
    with pytest.raises(UndoError, match="no run 'nope'"):
        engine.undo("nope")
    parent = engine.start(Trip, {"who": "ada"})
    parent.result(WAIT)
    [child] = children(engine, parent.run_id)
    with pytest.raises(UndoError, match="undo that run instead"):
        engine.undo(child)


def test_an_undo_that_fails_is_reported_and_the_others_still_run(engine: Engine) -> None:
    """A failing undo is journaled and raised as RunFailedError; the earlier step is undone."""
    handle = engine.start(StuckUndo)
    handle.result(WAIT)
    with pytest.raises(RunFailedError) as caught:
        engine.undo(handle.run_id)
    assert [e.kind for e in caught.value.errors] == ["undo_failed"]
    assert "cannot release" in caught.value.errors[0].message
    assert LOG.log == ["undo fails one two", "undo one"]
    events = engine.history(handle.run_id)
    assert [e.step for e in events if isinstance(e, StepUndoFailed)] == ["two"]
    assert isinstance(events[-1], RunUndone)
    assert [e.step for e in events[-1].errors] == ["two"]


async def test_undo_async(engine: Engine) -> None:
    """The asyncio twin undoes the same way."""
    handle = await engine.start_async(Trip, {"who": "bo"})
    await handle.result_async()
    await engine.undo_async(handle.run_id)
    assert LOG.log[-1] == "undo seat for bo"
    last = (await engine.journal.read_async(f"run:{handle.run_id}"))[-1]
    assert last.event_type == "RunUndone"
