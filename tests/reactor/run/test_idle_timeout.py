"""A run's ``idle_timeout``: seconds it may go without progress before ``on_timeout`` applies.

Progress is a step starting, finishing, failing or retrying (anything the run journals),
a running step calling ``StepContext.heartbeat()``, or progress in a composed run. A
hung step (a plain ``def`` blocked on an event here, released when the test is done)
makes none: with ``on_timeout="fail"`` the run fails with a ``timeout`` error naming it,
with ``"halt"`` it halts (the hung step is cancelled, to run again on resume).

Nothing waits on the clock: the tests wait for the run's result, and a step that must
outlive several idle periods waits until the run's idle timer has fired that often (the
``idle`` fixture counts its firings).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from actors import System
from actors.llm import HostConfig
from actors.testing import FakeServer, Reply
from actors.testing._server import Exchange
from dsl import DefinitionError, Reactor, Retry, StepContext, ask, compose, step
from reactor.app import Engine
from reactor.run import (
    Middleware,
    Run,
    RunEvent,
    RunFailed,
    RunFailedError,
    RunHaltedError,
    RunInfo,
    RunOutcome,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepEvent,
    StepEventKind,
    StepStarted,
    StepUndone,
)
from tests.support.hosts import start_host

T = TypeVar("T")

WAIT = 10.0
"""Seconds a test waits for a run's result (or a step for its event) before calling it hung."""

IDLE = 0.2
"""The runs' idle_timeout, in seconds: short, since the tests wait for it to pass."""


class IdleTimer:
    """Counts the firings of runs' idle timers; ``fired_thrice`` is set at the third."""

    def __init__(self) -> None:
        self.fired = 0
        self.fired_thrice = threading.Event()


@pytest.fixture
def idle(monkeypatch: pytest.MonkeyPatch) -> IdleTimer:
    """Wrap the Run actor's idle-timer handler to count its firings (it still acts)."""
    timer = IdleTimer()
    handle = Run._on_idle

    def on_idle(run: Run) -> None:
        timer.fired += 1
        handle(run)
        if timer.fired >= 3:
            timer.fired_thrice.set()

    monkeypatch.setattr(Run, "_on_idle", on_idle)
    return timer


@pytest.fixture
def released() -> Iterator[threading.Event]:
    """What hung steps wait for; set at the end of the test, whatever happened."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine journaling into a fresh database, without log lines."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def of_type(events: list[RunEvent], kind: type[T]) -> list[T]:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


def test_a_hung_step_fails_the_run_and_completed_steps_are_undone(
    engine: Engine, released: threading.Event
) -> None:
    undone: list[str] = []

    def unrun(value: str, arguments: dict[str, Any]) -> None:
        undone.append(value)

    class Hangs(Reactor, idle_timeout=IDLE):
        @step(undo=unrun)
        def first() -> str:
            return "first"

        @step
        def hang(first: str) -> str:
            released.wait(WAIT)
            return "late"

    handle = engine.start(Hangs)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    [error] = caught.value.errors
    assert (error.kind, error.step) == ("timeout", "")
    assert f"no progress for {IDLE:g} s (its idle_timeout)" in error.message
    assert "still running: 'hang' (for " in error.message
    assert undone == ["first"]
    events = engine.history(handle.run_id)
    assert [u.step for u in of_type(events, StepUndone)] == ["first"]
    assert isinstance(events[-1], RunFailed)
    started = events[0]
    assert isinstance(started, RunStarted)
    assert started.options["idle_timeout"] == IDLE


class Observed(Middleware):
    """Records the step events and how each run ended, as middleware sees them."""

    def __init__(self) -> None:
        self.events: list[StepEvent] = []
        self.ended: list[RunOutcome] = []

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        self.events.append(event)

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        self.ended.append(outcome)


@pytest.mark.parametrize("on_timeout", ["fail", "halt"])
def test_middleware_sees_it_as_a_run_timeout(
    engine: Engine, released: threading.Event, on_timeout: Any
) -> None:
    """The hung attempt is cancelled (an error event); the run fails or halts as at its timeout."""

    class Hangs(Reactor):
        @step
        def hang() -> str:
            released.wait(WAIT)
            return "late"

    seen = Observed()
    handle = engine.start(Hangs, idle_timeout=IDLE, on_timeout=on_timeout, middleware=[seen])
    with pytest.raises(RunFailedError if on_timeout == "fail" else RunHaltedError):
        handle.result(WAIT)
    [cancelled] = [e for e in seen.events if e.kind is StepEventKind.ERROR]
    assert (cancelled.step, cancelled.error.kind) == ("hang", "cancelled")
    [outcome] = seen.ended
    if on_timeout == "fail":
        assert outcome.status == "failed"
        assert [e.kind for e in outcome.errors] == ["timeout"]
    else:
        assert outcome.status == "halted"
        assert "idle_timeout" in outcome.reason


def test_on_timeout_halt_halts_and_resume_completes(
    engine: Engine, released: threading.Event
) -> None:
    calls: list[str] = []

    class Stalls(Reactor, idle_timeout=IDLE, on_timeout="halt"):
        @step
        def first() -> str:
            calls.append("first")
            return "first"

        @step
        def hang(first: str) -> str:
            calls.append("hang")
            if calls.count("hang") == 1:
                released.wait(WAIT)  # hung until the run has halted
            return f"{first}, then hang"

    handle = engine.start(Stalls)
    with pytest.raises(RunHaltedError) as caught:
        handle.result(WAIT)
    assert caught.value.step == ""
    assert caught.value.reason.startswith(
        f"the run's idle_timeout of {IDLE} s passed with no progress; still running: 'hang'"
    )
    events = engine.history(handle.run_id)
    assert [c.step for c in of_type(events, StepCompleted)] == ["first"]
    assert of_type(events, StepUndone) == []

    released.set()
    assert engine.resume(handle.run_id, reactor=Stalls).result(WAIT) == "first, then hang"
    assert calls == ["first", "hang", "hang"]  # first is not run again
    resumed = engine.history(handle.run_id)
    # The cancelled attempt ran again under its number (not a retry).
    assert [(c.step, c.attempt) for c in of_type(resumed, StepCompleted)] == [
        ("first", 1),
        ("hang", 1),
    ]


def test_a_step_that_heartbeats_outlives_several_idle_periods(
    engine: Engine, idle: IdleTimer
) -> None:
    class Beats(Reactor, idle_timeout=IDLE):
        @step
        def busy(context: StepContext) -> int:
            beats = 0
            while not idle.fired_thrice.wait(IDLE / 20):
                context.heartbeat()
                beats += 1
            return beats

    assert engine.run(Beats) > 0
    assert idle.fired >= 3


def test_an_async_step_that_heartbeats_outlives_several_idle_periods(
    engine: Engine, idle: IdleTimer
) -> None:
    class Beats(Reactor, idle_timeout=IDLE):
        @step
        async def busy(context: StepContext) -> str:
            while not idle.fired_thrice.is_set():
                context.heartbeat()
                await asyncio.sleep(IDLE / 20)
            return "done"

    assert engine.run(Beats) == "done"


def test_progress_in_a_composed_run_is_its_parent_steps(engine: Engine, idle: IdleTimer) -> None:
    """The child has no idle_timeout of its own: its heartbeats keep the parent going."""

    class Child(Reactor):
        @step
        def work(context: StepContext) -> str:
            while not idle.fired_thrice.wait(IDLE / 20):
                context.heartbeat()
            return "worked"

    class Parent(Reactor, idle_timeout=IDLE):
        sub = compose(Child)

    assert engine.run(Parent) == "worked"


def test_a_model_call_in_flight_is_not_idle(
    system: System, tmp_path: Path, idle: IdleTimer
) -> None:
    """An ``ask`` ends by its call's own deadline: the run waits for it, however slow.

    The fake model answers only once the run's idle timer has fired three times.
    """

    def slow(exchange: Exchange) -> Reply:
        del exchange
        idle.fired_thrice.wait(WAIT)
        return Reply(text="late but fine")

    class Slow(Reactor, idle_timeout=IDLE):
        answer = ask("Take your time.", model="fake-small")

    with FakeServer("openai", models=["fake-small"], responder=slow) as server:
        start_host(system, HostConfig(url=server.url, protocol="openai", timeout_s=WAIT))
        hosts = {"fake-small": "local"}
        with Engine(system, db_path=tmp_path / "ask.db", logging=False, hosts=hosts) as engine:
            completion = engine.run(Slow, timeout=WAIT)
    assert completion.content == "late but fine"
    assert idle.fired >= 3


def test_a_scheduled_retry_wait_is_not_idle(engine: Engine) -> None:
    """The backoff outlasts the idle_timeout; nothing runs meanwhile, and the run goes on."""
    calls: list[int] = []

    class Retries(Reactor, idle_timeout=IDLE):
        @step(max_retries=1, backoff=3 * IDLE)
        def flaky() -> str | Retry:
            calls.append(1)
            return Retry("not yet") if len(calls) == 1 else "done"

    assert engine.run(Retries) == "done"
    assert len(calls) == 2


def test_the_option_is_journaled_and_a_resume_keeps_it_with_a_fresh_clock(
    engine: Engine, released: threading.Event
) -> None:
    """Given to start() (not the class), it halts the run again after a plain resume."""
    calls: list[str] = []

    class Stuck(Reactor):
        @step
        def stuck() -> str:
            calls.append("stuck")
            if len(calls) <= 2:
                released.wait(WAIT)  # the first two attempts hang
            return "unstuck"

    handle = engine.start(Stuck, idle_timeout=IDLE, on_timeout="halt")
    with pytest.raises(RunHaltedError):
        handle.result(WAIT)
    with pytest.raises(RunHaltedError) as again:
        engine.resume(handle.run_id, reactor=Stuck).result(WAIT)
    assert "idle_timeout" in again.value.reason
    released.set()
    assert engine.resume(handle.run_id, reactor=Stuck).result(WAIT) == "unstuck"
    assert calls == ["stuck", "stuck", "stuck"]
    events = engine.history(handle.run_id)
    started = events[0]
    assert isinstance(started, RunStarted)
    assert started.options["idle_timeout"] == IDLE
    assert [r.options for r in of_type(events, RunResumed)] == [{}, {}]
    # The cancelled attempt ran again under its number each time (not a retry).
    assert {s.attempt for s in of_type(events, StepStarted)} == {1}
    assert [(c.step, c.attempt) for c in of_type(events, StepCompleted)] == [("stuck", 1)]


def test_resume_may_give_it_anew(engine: Engine, released: threading.Event) -> None:
    calls: list[str] = []

    class Stuck(Reactor):
        @step
        def stuck() -> str:
            calls.append("stuck")
            if len(calls) == 1:
                released.wait(WAIT)
            return "unstuck"

    handle = engine.start(Stuck, idle_timeout=IDLE, on_timeout="halt")
    with pytest.raises(RunHaltedError):
        handle.result(WAIT)
    released.set()
    resumed = engine.resume(handle.run_id, reactor=Stuck, idle_timeout=2 * IDLE)
    assert resumed.result(WAIT) == "unstuck"
    [resume] = of_type(engine.history(handle.run_id), RunResumed)
    assert resume.options == {"idle_timeout": 2 * IDLE}


@pytest.mark.parametrize("value", [0, -1.0, True, "5", float("nan")])
def test_a_bad_idle_timeout_is_refused(engine: Engine, value: Any) -> None:
    class Quick(Reactor):
        @step
        def one() -> int:
            return 1

    with pytest.raises(ValueError, match="idle_timeout must be seconds > 0, got"):
        engine.start(Quick, run_id="refused", idle_timeout=value)
    assert engine.history("refused") == []


@pytest.mark.parametrize("value", [0, -1.0, True, "5"])
def test_a_bad_idle_timeout_on_a_class_is_a_definition_error(value: Any) -> None:
    with pytest.raises(DefinitionError, match="idle_timeout must be seconds > 0, got"):

        class Bad(Reactor, idle_timeout=value):
            @step
            def one() -> int:
                return 1
