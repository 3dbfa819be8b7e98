"""A step that re-emits itself loops, as in Ash Reactor.

``WithSteps(value, [step(..., name=<its own name>)])``: the value is that iteration's
result, the new definition runs next in the step's place and may read it under the
step's name, and the step's dependents wait for the iteration that returns a plain
value. Each iteration is journaled, so a halted or crashed loop resumes at the
iteration it had reached; when the run rolls back (or is undone later) every iteration
is undone, newest first, by its own definition's ``undo``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from actors import System
from dsl import DefinitionError, Input, Reactor, WithSteps, compose, ref, step, value
from reactor.app import Engine
from reactor.cli import main
from reactor.run import (
    RunCompleted,
    RunFailedError,
    RunHaltedError,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepsAdded,
    StepUndone,
    UndoError,
    fold,
)
from tests.support.acceptance import LOG, Counter, CounterThenFails, LoneCounter, Tenant

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


def test_a_step_that_re_emits_itself_loops_and_its_dependents_see_the_last_iteration(
    engine: Engine,
) -> None:
    handle = engine.start(Counter, {"start": 1, "limit": 4})
    assert handle.result(WAIT) == "reached 4"
    # Each iteration read the previous one's result (through the argument's transform);
    # the steps added beside each iteration depend on the step, so they read its last.
    assert [e for e in LOG.log if e.startswith(("count", "done"))] == [
        "count 1",
        "count 2",
        "count 3",
        "count 4",
        "done 4",
    ]
    events = engine.history(handle.run_id)
    counted = [(e.again, bytes(e.value)) for e in events if isinstance(e, StepCompleted)]
    assert [c for c in counted if c[0]] == [(True, b"1"), (True, b"2"), (True, b"3")]
    sides = {e.step: bytes(e.value) for e in events if isinstance(e, StepCompleted)}
    assert (sides["side_1"], sides["side_2"], sides["side_3"]) == (b"8", b"8", b"8")
    assert [e.by for e in events if isinstance(e, StepsAdded)] == ["count"] * 3
    assert isinstance(events[-1], RunCompleted)
    view = fold(events)
    looped = view.step("count")
    assert (looped.status, looped.iterations, looped.value) == ("done", 3, 4)
    assert "re-emitted itself 3x" in looped.detail


def test_a_halted_loop_resumes_at_the_iteration_it_reached(engine: Engine, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    handle = engine.start(Counter, {"start": 1, "limit": 5, "flag": str(flag)})
    with pytest.raises(RunHaltedError):
        handle.result(WAIT)
    assert LOG.counts["count 1"] == LOG.counts["count 2"] == LOG.counts["count 3"] == 1
    flag.touch()
    assert engine.resume(handle.run_id).result(WAIT) == "reached 5"
    # The iterations that completed before the halt did not run again.
    assert LOG.counts["count 1"] == LOG.counts["count 2"] == 1
    assert LOG.counts["count 3"] == 2  # the halted iteration, run again
    assert LOG.counts["count 4"] == LOG.counts["count 5"] == LOG.counts["done 5"] == 1


def test_a_rolled_back_loop_undoes_every_iteration_newest_first(engine: Engine) -> None:
    handle = engine.start(CounterThenFails, {"start": 1, "limit": 3})
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    assert caught.value.errors[0].step == "tail"
    assert [e for e in LOG.log if e.startswith("undo")] == ["undo 3", "undo 2", "undo 1"]
    undone = [(e.step, e.again) for e in engine.history(handle.run_id) if isinstance(e, StepUndone)]
    assert undone == [("count", False), ("count", True), ("count", True)]


def test_undoing_a_completed_loop_undoes_each_iteration_with_its_arguments(
    engine: Engine,
) -> None:
    """``Engine.undo`` replays the journal: each iteration's arguments are resolved again."""
    handle = engine.start(LoneCounter, {"start": 1, "limit": 3})
    assert handle.result(WAIT) == 3
    engine.undo(handle.run_id)
    assert [e for e in LOG.log if e.startswith("undo")] == [
        "undo 3 (n=3)",
        "undo 2 (n=2)",
        "undo 1 (n=1)",
    ]


def test_a_loop_with_an_iteration_nothing_undoes_cannot_be_undone_later(
    engine: Engine,
) -> None:
    handle = engine.start(Counter, {"start": 1, "limit": 2})
    assert handle.result(WAIT) == "reached 2"
    with pytest.raises(UndoError) as caught:
        engine.undo(handle.run_id)
    assert "done" in caught.value.steps


def _looks_back(n: int) -> Any:
    return WithSteps(n, [step(_looks_back, name="first", args={"n": ref("second")})])


def _as_compose(n: int) -> Any:
    return WithSteps(n, [step(compose(Tenant, word=value("x")), name="first")])


@pytest.mark.parametrize(
    ("again", "words"),
    [
        (_looks_back, "a cycle"),
        (_as_compose, "only a plain step may loop by re-emitting itself (use recurse)"),
    ],
    ids=["cycle-through-a-dependent", "as-a-composite"],
)
def test_a_re_emission_that_cannot_loop_fails_the_step_with_bad_step(
    engine: Engine, again: Any, words: str
) -> None:
    class Looping(Reactor):
        n = Input(int)

        @step
        def first(n: int) -> Any:
            return again(n)

        @step
        def second(first: int) -> int:
            return first

    with pytest.raises(RunFailedError) as caught:
        engine.start(Looping, {"n": 1}).result(WAIT)
    first = caught.value.errors[0]
    assert (first.step, first.kind) == ("first", "bad_step")
    assert words in first.message


def test_runs_show_tells_a_looping_step(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handle = engine.start(Counter, {"start": 1, "limit": 3})
    handle.result(WAIT)
    capsys.readouterr()
    logging = structlog.get_config()
    try:
        code = main(["runs", "show", handle.run_id, "--db", str(tmp_path / "runs.db")])
    finally:
        structlog.configure(**logging)
    out = capsys.readouterr().out
    assert code == 0
    assert "re-emitted itself 2x" in out


def test_max_iterations_halts_a_loop_and_resume_counts_afresh(engine: Engine) -> None:
    """Ash's run-level max_iterations: one re-emission more halts the run before it runs."""
    handle = engine.start(Counter, {"start": 1, "limit": 5}, max_iterations=2)
    with pytest.raises(RunHaltedError) as caught:
        handle.result(WAIT)
    assert (caught.value.step, caught.value.reason) == (
        "count",
        "the run reached max_iterations=2",
    )
    assert [e for e in LOG.log if e.startswith("count")] == ["count 1", "count 2", "count 3"]
    started = engine.history(handle.run_id)[0]
    assert isinstance(started, RunStarted)
    assert started.options["max_iterations"] == 2
    # Resumed, it counts afresh: two more re-emissions are allowed, one is needed.
    assert engine.resume(handle.run_id).result(WAIT) == "reached 5"
    assert [e for e in LOG.log if e.startswith("count")] == [f"count {n}" for n in range(1, 6)]


def _counts() -> list[str]:
    return [e for e in LOG.log if e.startswith("count")]


def test_resume_takes_run_options_anew_and_later_resumes_keep_them(engine: Engine) -> None:
    """As Ash's ``run`` with a halted reactor: options given on resume replace the journaled."""
    handle = engine.start(Counter, {"start": 1, "limit": 9}, max_iterations=1)
    with pytest.raises(RunHaltedError, match="max_iterations=1"):
        handle.result(WAIT)
    assert _counts() == ["count 1", "count 2"]
    # A larger limit for this resume: two more re-emissions, then it halts again.
    with pytest.raises(RunHaltedError, match="max_iterations=2"):
        engine.resume(handle.run_id, max_iterations=2, timeout=30.0).result(WAIT)
    assert _counts() == [f"count {n}" for n in range(1, 6)]
    resumed = [e for e in engine.history(handle.run_id) if isinstance(e, RunResumed)]
    assert resumed[-1].options == {"max_iterations": 2, "timeout": 30.0}
    # Resumed with nothing given, it keeps what the last resume gave (not the start's 1).
    with pytest.raises(RunHaltedError, match="max_iterations=2"):
        engine.resume(handle.run_id).result(WAIT)
    assert _counts() == [f"count {n}" for n in range(1, 9)]
    view = fold(engine.history(handle.run_id))
    assert (view.options["max_iterations"], view.options["timeout"]) == (2, 30.0)
    assert engine.resume(handle.run_id, max_iterations=5).result(WAIT) == "reached 9"


@pytest.mark.parametrize(
    ("option", "bad", "says"),
    [
        ("max_iterations", -1, "max_iterations must be an int >= 0, got -1"),
        ("timeout", 0, "timeout must be seconds > 0, got 0"),
        ("on_timeout", "retry", "on_timeout must be 'fail' or 'halt', got 'retry'"),
        ("halt_timeout", "5", "halt_timeout must be seconds > 0, got '5'"),
        ("max_concurrency", 0, "max_concurrency must be an int >= 1, got 0"),
    ],
)
def test_a_bad_option_on_resume_is_refused_and_nothing_is_journaled(
    engine: Engine, option: str, bad: Any, says: str
) -> None:
    handle = engine.start(Counter, {"start": 1, "limit": 3}, max_iterations=0)
    with pytest.raises(RunHaltedError):
        handle.result(WAIT)
    before = engine.history(handle.run_id)
    with pytest.raises(ValueError, match=f"run of 'Counter': {says}"):
        engine.resume(handle.run_id, **{option: bad})
    assert engine.history(handle.run_id) == before
    assert engine.resume(handle.run_id, max_iterations=5).result(WAIT) == "reached 3"


def test_max_iterations_as_a_class_keyword_and_bad_values() -> None:
    class Capped(Reactor, max_iterations=3):
        @step
        def one() -> int:
            return 1

    assert Capped.__plan__.max_iterations == 3
    with pytest.raises(DefinitionError, match=r"max_iterations must be an int >= 0, got -1"):

        class Bad(Reactor, max_iterations=-1):
            @step
            def one() -> int:
                return 1


@pytest.mark.parametrize("limit", [-1, 1.5, True, "3"])
def test_a_bad_max_iterations_is_refused_before_anything_is_journaled(
    engine: Engine, limit: Any
) -> None:
    with pytest.raises(ValueError, match="max_iterations must be an int >= 0, got"):
        engine.start(Counter, {"start": 1, "limit": 2}, run_id="refused", max_iterations=limit)
    assert engine.history("refused") == []
