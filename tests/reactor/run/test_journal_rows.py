"""What a run writes to its journal: no StepStarted row next to its own StepCompleted."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import System
from reactor.app import Engine
from reactor.run import RunHaltedError, RunResumed, StepCompleted, StepStarted, fold
from tests.support.flows import TALLY, Approval

WAIT = 10.0


@pytest.fixture(autouse=True)
def _reset_tally() -> Iterator[None]:
    TALLY.reset()
    yield
    TALLY.reset()


@pytest.fixture
def lingering(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine whose runs send their journal only with the event that ends a run.

    So every transition of a run goes to the Store in one batch, whatever the machine's
    speed: which rows are left out does not depend on timing.
    """
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as engine:
        engine._services = dataclasses.replace(engine._services, journal_linger=3600.0)
        yield engine


def test_a_step_completed_in_the_same_batch_has_no_started_row_and_replays(
    lingering: Engine, tmp_path: Path
) -> None:
    """A completed step is one row; replay does not run it again; the fold shows its times."""
    flag = tmp_path / "approved"
    handle = lingering.start(Approval, {"flag": str(flag), "title": "memo"})
    with pytest.raises(RunHaltedError):
        handle.result(WAIT)

    halted = lingering.history(handle.run_id)
    assert [type(e).__name__ for e in halted] == [
        "RunStarted",
        "StepCompleted",  # prepare: its StepStarted went in the same batch, left out
        "StepStarted",  # approve: halted, so no StepCompleted stands for it
        "RunHalted",
    ]

    flag.touch()
    assert lingering.resume(handle.run_id).result(WAIT) == "published: approved MEMO"
    assert TALLY.counts == {"prepare": 1, "approve": 2, "publish": 1}, "prepare was replayed"

    events = lingering.history(handle.run_id)
    after = events[events.index(next(e for e in events if isinstance(e, RunResumed))) :]
    assert [e.step for e in after if isinstance(e, StepStarted)] == []
    assert [(e.step, e.attempt) for e in after if isinstance(e, StepCompleted)] == [
        ("approve", 1),
        ("publish", 1),
    ]

    view = fold(events)
    assert view.status == "completed"
    steps = {s.name: s for s in view.steps}
    prepare = next(e for e in events if isinstance(e, StepCompleted) and e.step == "prepare")
    assert steps["prepare"].status == "done"
    assert steps["prepare"].attempts == 1
    assert steps["prepare"].started_at == prepare.started_at
    assert steps["prepare"].ended_at == prepare.at
    assert steps["publish"].started_at is not None
