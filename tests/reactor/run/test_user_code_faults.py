"""User code that raises anything fails its own step, and its traceback is kept.

A step (sync in the worker pool or async on the loop), a ``where``, a ``guard``, a
``compensate`` or an ``undo`` may raise ``SystemExit``, ``KeyboardInterrupt`` or
``GeneratorExit``: the step fails with kind ``internal``, the failure is journaled,
and the Store, the supervisor and the other runs in the process go on. A failing
step's traceback is journaled with the failure (bounded), recorded as the span's
exception event and logged at error level.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from actors import System
from dsl import Input, Reactor, ref, step
from otel.testing import InMemorySpanExporter
from reactor.app import Engine
from reactor.run import TRACEBACK_LIMIT, RunFailed, RunFailedError, StepFailed
from reactor.run._classify import format_traceback

WAIT = 10.0
"""Seconds a test waits for a run's result before calling it hung."""

RELEASE = threading.Event()
"""Lets the patient run's step finish (set once the faulty run has failed)."""


class Patient(Reactor):
    """A run that is in the middle of a step while another run's step misbehaves."""

    @step
    def wait() -> str:
        if not RELEASE.wait(WAIT):
            raise TimeoutError("never released")
        return "still here"


def _exit_in_pool() -> None:
    sys.exit(3)


async def _interrupt_on_loop() -> None:
    await asyncio.sleep(0)
    raise KeyboardInterrupt


def _generator_exit() -> None:
    raise GeneratorExit


class ExitsSync(Reactor):
    exits = step(_exit_in_pool)


class InterruptsAsync(Reactor):
    interrupts = step(_interrupt_on_loop)


class ExitsInGuard(Reactor):
    @step(guard=lambda _arguments, _context: sys.exit("guard"))
    def guarded() -> int:
        return 1


class ExitsInWhere(Reactor):
    @step(where=lambda _arguments, _context: (_ for _ in ()).throw(KeyboardInterrupt))
    def maybe() -> int:
        return 1


def _exit_in_transform(value: int) -> int:
    sys.exit(f"transform of {value}")


class ExitsInTransform(Reactor):
    @step
    def source() -> int:
        return 1

    @step
    def uses(value: int = ref("source", transform=_exit_in_transform)) -> int:
        return value


class ExitsInCompensate(Reactor):
    @step(compensate=lambda error, arguments: sys.exit("compensate"))
    def broken() -> int:
        raise ValueError("first")


def _undo_exits(value: int, arguments: dict[str, Any]) -> None:
    raise SystemExit("undo")


class ExitsInUndo(Reactor):
    @step(undo=_undo_exits)
    def done() -> int:
        return 1

    @step
    def fails(done: int) -> int:
        raise ValueError("roll back")


class Raises(Reactor):
    """A step whose failure has a traceback worth reading."""

    n = Input(int, default=1)

    @step
    def deep(n: int) -> int:
        return _inner(n)


def _inner(n: int) -> int:
    raise ValueError(f"bad value {n}")


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine journaling into a fresh database, without log lines."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


@pytest.fixture(autouse=True)
def _release() -> Iterator[None]:
    RELEASE.clear()
    yield
    RELEASE.set()


def _failed_step(engine: Engine, run_id: str) -> StepFailed:
    return next(e for e in engine.history(run_id) if isinstance(e, StepFailed))


@pytest.mark.parametrize(
    ("reactor", "error"),
    [
        (ExitsSync, "SystemExit"),
        (InterruptsAsync, "KeyboardInterrupt"),
        (ExitsInGuard, "SystemExit"),
        (ExitsInWhere, "KeyboardInterrupt"),
        (ExitsInTransform, "bad_argument"),
    ],
)
def test_a_base_exception_fails_its_step_and_another_run_goes_on(
    engine: Engine, reactor: type[Reactor], error: str
) -> None:
    """sys.exit/KeyboardInterrupt in a step, guard or where: kind internal, the rest untouched."""
    patient = engine.start(Patient)
    faulty = engine.start(reactor)
    with pytest.raises(RunFailedError) as caught:
        faulty.result(WAIT)
    first = caught.value.errors[0]
    if error == "bad_argument":  # an argument's transform: the argument is named
        assert first.kind == "bad_argument"
        assert "SystemExit" in first.message
    else:
        assert (first.kind, first.error) == ("internal", error)
        assert "fails only this step" in first.message
    assert isinstance(engine.history(faulty.run_id)[-1], RunFailed), "journaled"
    RELEASE.set()
    assert patient.result(WAIT) == "still here"
    # The store and the supervisor still serve new runs.
    assert engine.run(Patient) == "still here"


def test_two_embedded_runs_survive_exits_in_pool_and_on_loop(engine: Engine) -> None:
    """Sync SystemExit and async KeyboardInterrupt together: both fail, a third run completes."""
    patient = engine.start(Patient)
    exits, interrupts = engine.start(ExitsSync), engine.start(InterruptsAsync)
    for handle, error in ((exits, "SystemExit"), (interrupts, "KeyboardInterrupt")):
        with pytest.raises(RunFailedError) as caught:
            handle.result(WAIT)
        assert caught.value.errors[0].error == error
        assert _failed_step(engine, handle.run_id).error.kind == "internal"
    RELEASE.set()
    assert patient.result(WAIT) == "still here"


def test_generator_exit_from_a_step_is_its_failure(engine: Engine) -> None:
    """GeneratorExit raised by a plain step fails it (kind internal)."""

    class Gen(Reactor):
        gen = step(_generator_exit)

    with pytest.raises(RunFailedError) as caught:
        engine.run(Gen)
    assert (caught.value.errors[0].kind, caught.value.errors[0].error) == (
        "internal",
        "GeneratorExit",
    )


def test_base_exceptions_in_compensate_and_undo_are_recorded(engine: Engine) -> None:
    """A compensate that exits fails its step; an undo that exits is an undo failure."""
    with pytest.raises(RunFailedError) as caught:
        engine.run(ExitsInCompensate)
    assert "compensate raised SystemExit" in caught.value.errors[0].message
    with pytest.raises(RunFailedError) as caught:
        engine.run(ExitsInUndo)
    kinds = [(e.step, e.kind) for e in caught.value.errors]
    assert ("done", "undo_failed") in kinds
    RELEASE.set()
    assert engine.run(Patient) == "still here"


# ---- the traceback ------------------------------------------------------------------------


def test_a_failing_steps_traceback_is_journaled(engine: Engine) -> None:
    """StepFailed (and RunFailed) carry the traceback, ending where the error was raised."""
    with pytest.raises(RunFailedError) as caught:
        engine.run(Raises)
    failed = _failed_step(engine, caught.value.run_id)
    text = failed.error.traceback
    assert text.startswith("Traceback (most recent call last):")
    assert "in _inner" in text
    assert text.rstrip().endswith("ValueError: bad value 1")
    assert caught.value.errors[0].traceback == text


def test_a_traceback_is_bounded_keeping_its_end() -> None:
    """Past TRACEBACK_LIMIT characters the start is cut (and says so); the raise stays."""
    error: BaseException | None = None
    for level in range(200):  # a long chain of causes, each printed in full
        try:
            raise ValueError(f"cause {level}") from error
        except ValueError as exc:
            error = exc
    try:
        raise ValueError("at the bottom") from error
    except ValueError as exc:
        text = format_traceback(exc)
    assert len(text) <= TRACEBACK_LIMIT + 100
    assert text.startswith("... (")
    assert "characters left out" in text.splitlines()[0]
    assert text.rstrip().endswith("ValueError: at the bottom")


def test_the_traceback_is_the_spans_exception_event_and_an_error_log(
    system: System, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    """The step's span gets an `exception` event with the stacktrace; an error line is logged."""
    with (
        Engine(system, db_path=tmp_path / "traced.db") as engine,
        capture_logs() as logs,
        pytest.raises(RunFailedError),
    ):
        engine.run(Raises)
    step_spans = [s for s in spans.get_finished_spans() if "deep" in s.name]
    events = [e for s in step_spans for e in s.events if e.name == "exception"]
    assert events, [s.name for s in spans.get_finished_spans()]
    attributes = events[0].attributes or {}
    assert attributes["exception.type"] == "ValueError"
    assert "in _inner" in str(attributes["exception.stacktrace"])
    errors = [e for e in logs if e["log_level"] == "error" and e.get("step") == "deep"]
    assert errors, logs
    assert "in _inner" in errors[0]["exception"]
