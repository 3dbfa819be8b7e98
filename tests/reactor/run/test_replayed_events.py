"""A resumed (or undone) run tells middleware ``run_started`` before its replayed steps.

A middleware that sets up per-run state in ``run_started`` (a span, a progress row)
must not see the run's step events first: the journal's replayed events follow it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import System
from dsl import Halt, Reactor, step
from reactor.app import Engine
from reactor.run import Middleware, RunHaltedError, RunInfo, RunOutcome, StepEvent

WAIT = 10.0
"""Seconds a test waits for a run's result before calling it hung."""

HALTS: list[bool] = []
"""Whether ``ask`` has halted once already."""


class Approval(Reactor):
    """Drafts, halts for approval once, then sends."""

    @step(undo=lambda _value, _arguments: None)
    def draft() -> str:
        return "draft"

    @step(undo=lambda _value, _arguments: None)
    def ask(draft: str) -> Any:
        if not HALTS:
            HALTS.append(True)
            return Halt("waiting for approval")
        return f"approved {draft}"


class Recorder(Middleware):
    """Every run and step event, in the order middleware is told them."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, ...]] = []

    def run_started(self, run: RunInfo) -> None:
        self.seen.append(("run_started", run.run_id))

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        self.seen.append(("run_finished", run.run_id))

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        replayed = "replayed" if event.replayed else "live"
        self.seen.append((str(event.kind), event.step, replayed))


@pytest.fixture
def recorder() -> Recorder:
    """A fresh recorder (and an Approval that halts again)."""
    HALTS.clear()
    return Recorder()


@pytest.fixture
def engine(system: System, tmp_path: Path, recorder: Recorder) -> Iterator[Engine]:
    """An engine with the recorder, journaling into a fresh database."""
    with Engine(
        system, db_path=tmp_path / "runs.db", logging=False, middleware=[recorder]
    ) as running:
        yield running


def test_a_resumed_run_starts_before_its_replayed_steps(engine: Engine, recorder: Recorder) -> None:
    """run_started, then the journal's events (replayed), then the live ones."""
    handle = engine.start(Approval)
    with pytest.raises(RunHaltedError):
        handle.result(WAIT)
    recorder.seen.clear()
    assert engine.resume(handle.run_id).result(WAIT) == "approved draft"
    assert recorder.seen[0] == ("run_started", handle.run_id)
    replayed = [e for e in recorder.seen if e[-1] == "replayed"]
    assert replayed, "the journal's events are told"
    assert recorder.seen[1 : 1 + len(replayed)] == replayed


def test_an_undone_run_starts_before_its_replayed_steps(engine: Engine, recorder: Recorder) -> None:
    """Undoing a completed run: run_started first, then the replay, then the undos."""
    HALTS.append(True)  # no halt this time
    handle = engine.start(Approval)
    assert handle.result(WAIT) == "approved draft"
    recorder.seen.clear()
    engine.undo(handle.run_id)
    assert recorder.seen[0] == ("run_started", handle.run_id)
    kinds = [e[0] for e in recorder.seen[1:]]
    assert kinds.index("undo_start") > kinds.index("complete")
