"""What the run does with odd answers from user hooks: a backoff, a guard, a compensate.

Each is user code, so whatever it does fails only its own step, with a message that
says which hook answered what (never a crashed Run actor, never a silent misreading).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import System
from dsl import Continue, Reactor, Retry, step
from reactor.app import Engine
from reactor.run import RunFailed, RunFailedError, StepError

WAIT = 10.0
"""Seconds a test waits for a run's result before calling it hung."""

CALLS: list[str] = []
"""Steps whose body ran."""


def _backoff_raises(_retry: int, _error: BaseException | None) -> float:
    return 1 / 0


def _backoff_returns_none(_retry: int, _error: BaseException | None) -> Any:
    return None


class BackoffRaises(Reactor):
    @step(backoff=_backoff_raises, max_retries=2)
    def flaky() -> Any:
        return Retry("not yet")


class BackoffReturnsNone(Reactor):
    @step(backoff=_backoff_returns_none, max_retries=2)
    def flaky() -> Any:
        return Retry("not yet")


class GuardReturnsValue(Reactor):
    @step(guard=lambda _arguments: "cached")  # meant Shortcut("cached")
    def lookup() -> str:
        CALLS.append("lookup")
        return "computed"


class CompensateReturnsValue(Reactor):
    @step(compensate=lambda _error, _arguments: 42)  # meant Continue(42)
    def price() -> int:
        msg = "no price"
        raise ValueError(msg)


class NoRetries(Reactor):
    @step(max_retries=0)
    def once() -> Any:
        return Retry("busy")


class Fine(Reactor):
    @step
    def ok() -> str:
        return "ok"


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine journaling into a fresh database, without log lines."""
    CALLS.clear()
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def _first_error(engine: Engine, reactor: type[Reactor]) -> StepError:
    handle = engine.start(reactor)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    assert isinstance(engine.history(handle.run_id)[-1], RunFailed), "failed and journaled"
    return caught.value.errors[0]


@pytest.mark.parametrize(
    ("reactor", "said"),
    [
        (BackoffRaises, "backoff raised ZeroDivisionError: division by zero"),
        (BackoffReturnsNone, "backoff returned None, not a finite number of seconds"),
    ],
)
def test_a_backoff_that_fails_fails_its_step_not_the_run_actor(
    engine: Engine, reactor: type[Reactor], said: str
) -> None:
    """The step fails (the run is rolled back and journaled as failed); the engine goes on."""
    error = _first_error(engine, reactor)
    assert error.step == "flaky"
    assert said in error.message
    assert engine.run(Fine) == "ok"


def test_a_guard_that_returns_a_value_fails_its_step(engine: Engine) -> None:
    """Only None (run it) or Shortcut (its result) is an answer; a bare value is a mistake."""
    error = _first_error(engine, GuardReturnsValue)
    assert (error.step, error.error) == ("lookup", "TypeError")
    assert "guard returned 'cached'" in error.message
    assert CALLS == [], "the step did not run as if the guard had said 'run it'"


def test_a_compensate_that_returns_a_value_says_so(engine: Engine) -> None:
    """Its failure stands, with what compensate returned instead of Continue/Retry/Fail."""
    error = _first_error(engine, CompensateReturnsValue)
    assert error.step == "price"
    assert error.message == "no price (compensate returned 42, not Continue, Retry or Fail)"


def test_giving_up_after_one_attempt_is_singular(engine: Engine) -> None:
    """max_retries=0: one attempt, said as such."""
    error = _first_error(engine, NoRetries)
    assert error.message == "busy (gave up after 1 attempt)"


def test_a_run_level_failure_does_not_name_an_empty_step() -> None:
    """A run's own failure (its timeout) has no step: the message does not show ``step ''``."""
    timeout = StepError(step="", kind="timeout", error="TimeoutError", message="too long")
    error = RunFailedError(run_id="r1", reactor="Slow", errors=[timeout])
    assert str(error) == "run r1 of reactor 'Slow': failed (timeout: too long)"


class TimesOut(Reactor):
    @step(
        timeout=0.01,
        max_retries=1,
        backoff=0,
        compensate=lambda error, _arguments: Continue(f"fallback after {type(error).__name__}"),
    )
    async def fetch() -> str:
        CALLS.append("fetch")
        await asyncio.Event().wait()  # never set: every attempt times out
        return "fetched"


class RetriesFromCompensate(Reactor):
    @step(max_retries=1, backoff=0, compensate=lambda _error, _arguments: Retry())
    def connect() -> str:
        CALLS.append("connect")
        msg = "refused"
        raise ConnectionError(msg)


def test_a_transient_failure_out_of_retries_goes_to_compensate(engine: Engine) -> None:
    """Retries first; then compensate decides, like for any other failure of the step."""
    assert engine.run(TimesOut) == "fallback after TimeoutError"
    assert CALLS == ["fetch", "fetch"]


def test_compensate_asking_for_a_retry_when_none_are_left_gives_up(engine: Engine) -> None:
    """Its Retry finds no retries left: the step fails (no endless loop)."""
    error = _first_error(engine, RetriesFromCompensate)
    assert CALLS == ["connect", "connect"]
    assert "gave up after 2 attempts" in error.message


class WhereRaises(Reactor):
    @step(where=lambda _arguments: 1 / 0)
    def maybe() -> int:
        return 1


EMPTY: dict[str, int] = {}


class GuardRaises(Reactor):
    @step(guard=lambda _arguments: EMPTY["missing"])
    def cached() -> int:
        return 1


@pytest.mark.parametrize(
    ("reactor", "step_name", "said"),
    [
        (WhereRaises, "maybe", "division by zero (in its where)"),
        (GuardRaises, "cached", "'missing' (in its guard)"),
    ],
)
def test_a_where_or_guard_that_raises_is_named_in_the_error(
    engine: Engine, reactor: type[Reactor], step_name: str, said: str
) -> None:
    """The step fails with the hook's error, and the message says which hook raised it."""
    error = _first_error(engine, reactor)
    assert (error.step, error.message) == (step_name, said)
