"""A run's timeout as Ash Reactor's soft limit (``on_timeout="halt"``) beside the hard one.

At its timeout a run whose ``on_timeout`` is ``"halt"`` starts no more steps, lets the
running ones finish (their results are journaled and kept), and halts as a step's
``Halt`` halts it, with no step named and a reason that names the timeout; ``resume``
continues it under a fresh timeout. ``"fail"`` (the default) stays the hard limit.

Nothing here waits on the clock: the run's timer is real, but the steps that must still
be running when it fires wait for an event set just after the run has handled it (the
``deadline`` fixture wraps the handler), and a phase that must not time out has its
timer's effect switched off rather than a long timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

import reactor.run._run as run_module
from actors import System
from dsl import Halt, Reactor, compose, step
from reactor.app import Engine
from reactor.run import (
    Middleware,
    Run,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunFailedError,
    RunHalted,
    RunHaltedError,
    RunInfo,
    RunOutcome,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepStarted,
    StepUndone,
    fold,
)

T = TypeVar("T")

WAIT = 10.0
"""Seconds a test waits for a run's result (or a step for its event) before calling it hung."""

LIMIT = 0.05
"""The runs' timeout, in seconds: short, since the steps that outlive it wait for it."""


class Deadline:
    """Controls what a run's timeout does in a test (see the ``deadline`` fixture).

    Attributes:
        armed: Whether the run handles its timeout (``False``: the timer fires unseen).
        passed: Set once a run has handled its timeout (a step waits on it to be still
            running then); replace it with a fresh event for the next phase.
        fired: How many times a run's timer fired.
    """

    def __init__(self) -> None:
        self.armed = True
        self.passed = threading.Event()
        self.fired = 0

    def next_phase(self, *, armed: bool = True) -> None:
        self.armed = armed
        self.passed = threading.Event()


@pytest.fixture
def deadline(monkeypatch: pytest.MonkeyPatch) -> Deadline:
    """Wrap the Run actor's timeout handler: it runs only when armed, then says so."""
    gate = Deadline()
    handle_timeout = Run._on_timeout

    def on_timeout(run: Run) -> None:
        gate.fired += 1
        if gate.armed:
            handle_timeout(run)
        gate.passed.set()

    monkeypatch.setattr(Run, "_on_timeout", on_timeout)
    return gate


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine journaling into a fresh database, without log lines."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def of_type(events: list[RunEvent], kind: type[T]) -> list[T]:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


class Outcomes(Middleware):
    """Records how each run ended, as middleware sees it."""

    def __init__(self) -> None:
        self.ended: list[RunOutcome] = []

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        self.ended.append(outcome)


def soft_reactor(deadline: Deadline, calls: list[str], undone: list[str]) -> type[Reactor]:
    """``slow`` outlives the timeout; ``other`` waits for the one slot; ``last`` needs ``slow``.

    ``other`` also waits for the timeout to pass, so that a resumed run outlives its own.
    """

    def unrun(value: Any, arguments: dict[str, Any]) -> None:
        undone.append(value)

    class Soft(Reactor, timeout=LIMIT, on_timeout="halt", max_concurrency=1):
        @step(undo=unrun)
        def slow() -> str:
            calls.append("slow")
            deadline.passed.wait(WAIT)
            return "slow"

        @step(undo=unrun)
        def other() -> str:
            calls.append("other")
            deadline.passed.wait(WAIT)
            return "other"

        @step
        def last(slow: str, other: str) -> str:
            calls.append("last")
            return f"{slow} and {other}"

    return Soft


def test_halt_on_timeout_keeps_running_steps_and_resumes(
    engine: Engine, deadline: Deadline
) -> None:
    """At the timeout no step starts; the running one completes; the run halts; resume ends it."""
    calls: list[str] = []
    undone: list[str] = []
    soft = soft_reactor(deadline, calls, undone)
    seen = Outcomes()
    reason = f"the run's timeout of {LIMIT} s passed"

    handle = engine.start(soft, middleware=[seen])
    with pytest.raises(RunHaltedError) as caught:
        handle.result(WAIT)
    assert caught.value.step == ""
    assert caught.value.reason == reason
    assert "timeout" in str(caught.value)
    assert "at step" not in str(caught.value)
    assert calls == ["slow"]  # "other" never started: it waited for the slot

    events = engine.history(handle.run_id)
    started = events[0]
    assert isinstance(started, RunStarted)
    assert started.options["on_timeout"] == "halt"
    assert [s.step for s in of_type(events, StepStarted)] == ["slow"]
    assert [c.step for c in of_type(events, StepCompleted)] == ["slow"]
    assert of_type(events, StepUndone) == []
    assert isinstance(events[-1], RunHalted)
    assert (events[-1].step, events[-1].reason) == ("", reason)
    assert [(o.status, o.reason) for o in seen.ended] == [("halted", reason)]
    assert {r.run_id: r.status for r in engine.runs()}[handle.run_id] == "halted"
    view = fold(events)
    assert (view.status, view.halted_step, view.reason) == ("halted", None, reason)
    assert [(s.name, s.status) for s in view.steps] == [("slow", "done")]

    # Resumed, the run has a timeout of its own again: "other" outlives it, so the run
    # halts again, "other" done and "last" not started.
    deadline.next_phase()
    with pytest.raises(RunHaltedError) as again:
        engine.resume(handle.run_id, reactor=soft).result(WAIT)
    assert again.value.reason == reason
    assert calls == ["slow", "other"]

    # Resumed once more, with nothing left to outlive the timeout: it completes, and
    # neither "slow" nor "other" runs again.
    deadline.next_phase(armed=False)
    assert engine.resume(handle.run_id, reactor=soft).result(WAIT) == "slow and other"
    assert calls == ["slow", "other", "last"]
    assert undone == []

    events = engine.history(handle.run_id)
    assert len(of_type(events, RunHalted)) == 2
    assert len(of_type(events, RunResumed)) == 2
    assert [c.step for c in of_type(events, StepCompleted)] == ["slow", "other", "last"]
    assert of_type(events, StepUndone) == []
    assert isinstance(events[-1], RunCompleted)
    assert fold(events).status == "completed"


def test_fail_on_timeout_still_rolls_back(engine: Engine, deadline: Deadline) -> None:
    """``on_timeout="fail"`` (here over the reactor's "halt") cancels, undoes and fails."""
    calls: list[str] = []
    undone: list[str] = []
    soft = soft_reactor(deadline, calls, undone)

    handle = engine.start(soft, on_timeout="fail", max_concurrency=2)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    assert caught.value.errors[0].kind == "timeout"
    events = engine.history(handle.run_id)
    started = events[0]
    assert isinstance(started, RunStarted)
    assert started.options["on_timeout"] == "fail"
    assert isinstance(events[-1], RunFailed)
    assert of_type(events, RunHalted) == []
    # Both steps were running at the deadline: cancelled (a plain def finishes on its
    # thread, but its late result is dropped), so nothing completed and nothing is undone.
    assert of_type(events, StepCompleted) == []
    assert undone == []


def test_default_is_fail(engine: Engine, deadline: Deadline) -> None:
    """Without on_timeout (run or reactor), a run's timeout is the hard limit."""
    calls: list[str] = []

    class Hard(Reactor, timeout=LIMIT):
        @step
        def slow() -> str:
            calls.append("slow")
            deadline.passed.wait(WAIT)
            return "slow"

    handle = engine.start(Hard)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    assert caught.value.errors[0].kind == "timeout"
    started = engine.history(handle.run_id)[0]
    assert isinstance(started, RunStarted)
    assert started.options["on_timeout"] == "fail"


@pytest.mark.parametrize("value", ["soft", "HALT", "", 1, True])
def test_bad_on_timeout_is_refused_before_anything_is_journaled(engine: Engine, value: Any) -> None:
    """A value other than "fail" or "halt" is a ValueError naming the option and the values."""

    class Quick(Reactor):
        @step
        def one() -> int:
            return 1

    with pytest.raises(ValueError, match="on_timeout must be 'fail' or 'halt', got") as caught:
        engine.start(Quick, run_id="refused", on_timeout=value)
    assert repr(value) in str(caught.value)
    assert engine.history("refused") == []


class _OptionsBefore(msgspec.Struct, frozen=True, kw_only=True):
    """``RunStarted.options`` as written before ``on_timeout`` existed."""

    max_concurrency: int
    timeout: float | None = None
    concurrency_key: str | None = None


def test_journal_without_on_timeout_replays_as_fail(
    engine: Engine, deadline: Deadline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run journaled without ``on_timeout`` resumes with the hard timeout."""

    def options_before(options: Any) -> _OptionsBefore:
        return _OptionsBefore(
            max_concurrency=options.max_concurrency,
            timeout=options.timeout,
            concurrency_key=options.concurrency_key,
        )

    halting = threading.Event()
    halting.set()

    class Old(Reactor, timeout=LIMIT):
        @step
        def ask() -> str | Halt:
            if halting.is_set():
                return Halt("wait for a person")
            return "yes"

        @step
        def act(ask: str) -> str:
            deadline.passed.wait(WAIT)
            return f"acted on {ask}"

    deadline.next_phase(armed=False)  # the first phase must halt at its step, not time out
    with monkeypatch.context() as patch:
        patch.setattr(run_module, "_options_record", options_before)
        handle = engine.start(Old)
        with pytest.raises(RunHaltedError) as caught:
            handle.result(WAIT)
    assert caught.value.step == "ask"
    started = engine.history(handle.run_id)[0]
    assert isinstance(started, RunStarted)
    assert "on_timeout" not in started.options

    halting.clear()
    deadline.next_phase()
    with pytest.raises(RunFailedError) as failed:
        engine.resume(handle.run_id, reactor=Old).result(WAIT)
    assert failed.value.errors[0].kind == "timeout"
    assert isinstance(engine.history(handle.run_id)[-1], RunFailed)


def test_parent_halt_waits_for_a_running_composite(engine: Engine, deadline: Deadline) -> None:
    """At the parent's timeout, its running composite finishes, then the parent halts.

    The child run goes on to its end; the parent's next step does not start; resume
    finishes the parent from there.
    """
    calls: list[str] = []

    class Child(Reactor):
        @step
        def work() -> str:
            calls.append("work")
            deadline.passed.wait(WAIT)
            return "worked"

    class Parent(Reactor, timeout=LIMIT, on_timeout="halt"):
        sub = compose(Child)

        @step
        def after(sub: str) -> str:
            calls.append("after")
            return f"after {sub}"

    handle = engine.start(Parent)
    with pytest.raises(RunHaltedError) as caught:
        handle.result(WAIT)
    assert (caught.value.step, caught.value.reason) == (
        "",
        f"the run's timeout of {LIMIT} s passed",
    )
    assert calls == ["work"]
    events = engine.history(handle.run_id)
    assert [c.step for c in of_type(events, StepCompleted)] == ["sub"]
    assert of_type(events, StepUndone) == []

    deadline.next_phase(armed=False)
    assert engine.resume(handle.run_id, reactor=Parent).result(WAIT) == "after worked"
    assert calls == ["work", "after"]


def test_a_child_halted_by_its_timeout_halts_its_parent(engine: Engine, deadline: Deadline) -> None:
    """A composed run whose own timeout halts it halts the composite step, with its reason."""
    calls: list[str] = []

    class Slow(Reactor, timeout=LIMIT, on_timeout="halt"):
        @step
        def first() -> str:
            calls.append("first")
            deadline.passed.wait(WAIT)
            return "first"

        @step
        def second(first: str) -> str:
            calls.append("second")
            return f"{first}, second"

    class Outer(Reactor):
        inner = compose(Slow)

    handle = engine.start(Outer)
    with pytest.raises(RunHaltedError) as caught:
        handle.result(WAIT)
    assert (caught.value.step, caught.value.reason) == (
        "inner",
        f"the run's timeout of {LIMIT} s passed",
    )
    assert calls == ["first"]

    deadline.next_phase(armed=False)
    assert engine.resume(handle.run_id, reactor=Outer).result(WAIT) == "first, second"
    assert calls == ["first", "second"]


def test_halt_timeout_cancels_steps_that_outlive_it_and_resume_runs_them_again(
    engine: Engine, deadline: Deadline
) -> None:
    """A halting run waits halt_timeout for its running steps, then cancels the plain ones.

    ``stuck`` never ends by itself (until the test releases it, after the halt): without
    a halt_timeout the run would go on halting for as long. Its attempt is cancelled,
    nothing is journaled for it, and resume runs it again.
    """
    released = threading.Event()
    calls: list[str] = []

    class Stuck(Reactor, timeout=LIMIT, on_timeout="halt", halt_timeout=LIMIT):
        @step
        def stuck() -> str:
            calls.append("stuck")
            if len(calls) == 1:
                released.wait(WAIT)  # outlives the timeout and the halt_timeout
            return "unstuck"

    handle = engine.start(Stuck)
    with pytest.raises(RunHaltedError) as caught:
        handle.result(WAIT)
    released.set()
    assert caught.value.reason == f"the run's timeout of {LIMIT} s passed"
    events = engine.history(handle.run_id)
    assert of_type(events, StepCompleted) == []
    assert [s.attempt for s in of_type(events, StepStarted)] == [1]
    started = events[0]
    assert isinstance(started, RunStarted)
    assert started.options["halt_timeout"] == LIMIT

    deadline.next_phase(armed=False)
    assert engine.resume(handle.run_id, reactor=Stuck).result(WAIT) == "unstuck"
    assert calls == ["stuck", "stuck"]
    resumed = engine.history(handle.run_id)
    # The same attempt ran again (not a retry).
    assert [(c.step, c.attempt) for c in of_type(resumed, StepCompleted)] == [("stuck", 1)]


@pytest.mark.parametrize("value", [0, -1.0, True, "5"])
def test_a_bad_halt_timeout_is_refused(engine: Engine, value: Any) -> None:
    class Quick(Reactor):
        @step
        def one() -> int:
            return 1

    with pytest.raises(ValueError, match="halt_timeout must be seconds > 0, got"):
        engine.start(Quick, run_id="refused", halt_timeout=value)
    assert engine.history("refused") == []
