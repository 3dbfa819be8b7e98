"""When one element of a ``for_each`` fails: what is undone, in what order, and the error.

Ash Reactor's semantics: the elements that completed are undone, newest first, then the
steps that completed before the ``for_each``; the run's error names the element (its
index), its kind and its own message.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import System
from reactor.app import Engine
from reactor.run import RunCancelled, RunFailed, RunFailedError, RunUndone, StepUndone
from tests.support.acceptance import ELEMENT_0_STARTED, LOG, Fan, FanParallel


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    LOG.reset()
    ELEMENT_0_STARTED.clear()
    yield
    LOG.reset()
    ELEMENT_0_STARTED.clear()


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine with its journal in a temporary file."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def element_runs(engine: Engine, run_id: str) -> dict[str, str]:
    """The for_each's element runs (by index) and their statuses."""
    return {
        r.run_id.rsplit("/", 1)[1]: r.status
        for r in engine.runs(include_children=True)
        if r.parent == run_id
    }


def test_a_failing_element_undoes_the_completed_elements_newest_first_then_earlier_steps(
    engine: Engine,
) -> None:
    """Elements 0-2 complete, 3 fails: 2, 1, 0 are undone, then ``prep``; 4 never runs."""
    handle = engine.start(Fan, {"items": [0, 1, 2, 3, 4]})
    with pytest.raises(RunFailedError, match="element 3"):
        handle.result(10)
    assert LOG.log == [
        "check 0",
        "check 1",
        "check 2",
        "check 3",
        "undo element 2",
        "undo element 1",
        "undo element 0",
        "undo [0, 1, 2, 3, 4]",
    ]
    history = engine.history(handle.run_id)
    assert [e.step for e in history if isinstance(e, StepUndone)] == ["fan", "prep"]
    assert isinstance(history[-1], RunFailed)
    assert element_runs(engine, handle.run_id) == {
        "0": "undone",
        "1": "undone",
        "2": "undone",
        "3": "failed",
    }
    child = engine.history(f"{handle.run_id}/fan.1/2")
    assert isinstance(child[-1], RunUndone)
    assert [e.step for e in child if isinstance(e, StepUndone)] == ["check"]


def test_the_error_names_the_element_its_kind_and_its_own_message(engine: Engine) -> None:
    """The step's error is the element's: index, kind, error type and message, no group."""
    with pytest.raises(RunFailedError) as caught:
        engine.run(Fan, {"items": [0, 3]})
    error = caught.value.errors[0]
    assert error.step == "fan"
    assert error.kind == "error"
    assert error.error == "ValueError"
    assert error.message == "element 1 failed at step 'check' (ValueError: bad 3)"
    assert "element 1" in str(caught.value)
    assert "bad 3" in str(caught.value)
    assert "ExceptionGroup" not in str(caught.value)
    assert "sub-exception" not in str(caught.value)
    assert len(caught.value.errors) == 1


def test_elements_still_running_roll_back_before_the_earlier_steps_are_undone(
    engine: Engine,
) -> None:
    """Element 1 fails while 0 runs: 0 is cancelled and rolls back before ``prep`` is undone."""
    handle = engine.start(FanParallel, {"items": [0, 1]})
    with pytest.raises(RunFailedError) as caught:
        handle.result(10)
    assert caught.value.errors[0].message.startswith("element 1 failed at step 'second'")
    assert LOG.log == ["fail 1", "undo first 1", "undo first 0", "undo [0, 1]"]
    cancelled = engine.history(f"{handle.run_id}/fan.1/0")
    assert isinstance(cancelled[-1], RunCancelled)
    assert element_runs(engine, handle.run_id) == {"0": "cancelled", "1": "failed"}
