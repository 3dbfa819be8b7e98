"""Run semantics checked against Ash Reactor's: what a probe of the DSL found wanting.

Each test defines a small reactor with the DSL and runs it on an engine journaling into a
fresh database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import System
from dsl import Fail, Reactor, Retry, StepContext, step
from reactor.app import Engine
from reactor.run import RunFailedError

WAIT = 10.0
"""Seconds a test waits for a run's result before calling it hung."""

UNDONE: list[str] = []
"""What the undo functions below were called with, in order."""


def _undo(value: Any, _arguments: dict[str, Any]) -> None:
    UNDONE.append(f"undo {value}")


def _undo_refuses(value: Any, _arguments: dict[str, Any]) -> Fail:
    UNDONE.append(f"refuse {value}")
    return Fail("the booking is already paid out")


class RefusingUndo(Reactor):
    """``second``'s undo answers Fail; ``first``'s succeeds; ``third`` fails the run."""

    @step(undo=_undo)
    def first() -> str:
        return "first"

    @step(undo=_undo_refuses, max_retries=3, backoff=0)
    def second(first: str) -> str:
        return "second"

    @step(max_retries=0)
    def third(second: str) -> str:
        msg = "card declined"
        raise ValueError(msg)


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine journaling into a fresh database, without log lines."""
    UNDONE.clear()
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def test_an_undo_returning_fail_is_an_undo_error_and_rollback_goes_on(engine: Engine) -> None:
    """Like Ash's ``{:error, reason}`` from undo: collected at once, not retried.

    The steps completed before it are still undone.
    """
    handle = engine.start(RefusingUndo)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    assert UNDONE == ["refuse second", "undo first"]
    errors = [(e.step, e.kind, e.message) for e in caught.value.errors]
    assert errors == [
        ("third", "error", "card declined"),
        ("second", "undo_failed", "undo failed: the booking is already paid out"),
    ]


class Echo(Reactor):
    @step
    def echo() -> str:
        return "echo"


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"max_concurrency": -1}, "max_concurrency must be an int >= 1, got -1"),
        ({"max_concurrency": 0}, "max_concurrency must be an int >= 1, got 0"),
        ({"max_concurrency": 1.5}, "max_concurrency must be an int >= 1, got 1.5"),
        ({"timeout": 0}, "timeout must be seconds > 0, got 0"),
        ({"timeout": -1.0}, "timeout must be seconds > 0, got -1.0"),
    ],
)
def test_a_run_limit_that_cannot_work_is_refused_before_it_starts(
    engine: Engine, options: dict[str, Any], said: str
) -> None:
    """As a class's own limits are: a negative max_concurrency used to hang the run."""
    with pytest.raises(ValueError, match=said) as caught:
        engine.start(Echo, **options)
    assert "'Echo'" in str(caught.value)
    assert engine.runs() == [], "nothing was started or journaled"
    assert engine.run(Echo, max_concurrency=1, timeout=WAIT) == "echo"


TRIES: list[tuple[int, int, int, int]] = []
"""(attempt, current_try, retries_left, retries_remaining) per attempt of Counted."""


class Counted(Reactor):
    """Asks for a retry until its last allowed attempt."""

    @step(max_retries=2, backoff=0)
    def flaky(ctx: StepContext) -> Any:
        TRIES.append((ctx.attempt, ctx.current_try, ctx.retries_left, ctx.retries_remaining))
        return "done" if ctx.retries_left == 0 else Retry("not yet")


def test_the_step_context_counts_tries_under_both_names(engine: Engine) -> None:
    """max_retries=2 is three attempts; Ash's current_try counts from 0."""
    TRIES.clear()
    assert engine.run(Counted, timeout=WAIT) == "done"
    assert TRIES == [(1, 0, 2, 2), (2, 1, 1, 1), (3, 2, 0, 0)]
