"""The executor's control flow: what runs, in what order, and what the journal records.

Each test runs reactors through a real :class:`reactor.Engine` (Run actors, the worker
pool, the event loop, a SQLite journal in ``tmp_path``) and asserts on results, on
what the step functions saw (call logs, thread names) and on ``engine.history``.
Nothing here asserts on timing: where concurrency matters, the steps wait for each
other instead of sleeping a fixed time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from structlog.testing import capture_logs

from actors import System
from dsl import (
    DEFAULT_MAX_RETRIES,
    Continue,
    Fail,
    Halt,
    Input,
    Reactor,
    Retry,
    Shortcut,
    WithSteps,
    ref,
    step,
    value,
)
from reactor.app import Engine
from reactor.run import (
    InputError,
    Middleware,
    ResumeError,
    RunCancelled,
    RunCancelledError,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunFailedError,
    RunHalted,
    RunHaltedError,
    RunInfo,
    RunOutcome,
    RunResumed,
    StepCompensated,
    StepCompleted,
    StepEvent,
    StepEventKind,
    StepFailed,
    StepsAdded,
    StepSkipped,
    StepStarted,
    StepUndoFailed,
    StepUndone,
)
from reactor.run._middleware import step_event
from tests.support.flows import TALLY, Approval, Grows, double

T = TypeVar("T")

WAIT = 10.0
"""Seconds a test waits for a run's result before calling it hung."""


@pytest.fixture(autouse=True)
def _reset_tally() -> Iterator[None]:
    TALLY.reset()
    yield
    TALLY.reset()


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine journaling into a fresh database, without log lines."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def kinds(events: list[RunEvent]) -> list[str]:
    """The journal's event type names, in order."""
    return [type(e).__name__ for e in events]


def of_type(events: list[RunEvent], kind: type[T]) -> list[T]:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


def attempts_begun(events: list[RunEvent]) -> list[tuple[str, int]]:
    """The (step, attempt) pairs that began, in order.

    An attempt shows as its StepStarted, or as its StepCompleted alone when both went to
    the journal in one batch (the StepStarted is then left out).
    """
    began: list[tuple[str, int]] = []
    for e in events:
        if isinstance(e, StepStarted | StepCompleted) and (e.step, e.attempt) not in began:
            began.append((e.step, e.attempt))
    return began


def failure(engine: Engine, reactor: type[Reactor], inputs: dict[str, Any] | None = None) -> Any:
    """Run ``reactor``, expecting it to fail; returns the RunFailedError."""
    handle = engine.start(reactor, inputs)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    assert caught.value.run_id == handle.run_id
    return caught.value


# -- 1. data flow and where steps run ----------------------------------------------------


def test_chain_fan_out_fan_in(engine: Engine, system: System) -> None:
    """A chain fans out to two steps and back in; sync steps use the pool, async the loop."""
    threads: dict[str, threading.Thread] = {}

    class Diamond(Reactor):
        x = Input(int)

        @step
        def source(x: int) -> dict[str, Any]:
            threads["source"] = threading.current_thread()
            return {"k": [x, x * 10], "label": "n"}

        @step
        async def left(first: int = ref("source", "k", 0), bump: int = value(100)) -> int:
            threads["left"] = threading.current_thread()
            return first + bump

        @step
        def right(second: int = ref("source", "k", 1), label: str = ref("source", "label")) -> str:
            threads["right"] = threading.current_thread()
            return f"{label}={second}"

        @step
        async def join(left: int, right: str) -> str:
            threads["join"] = threading.current_thread()
            return f"{left}|{right}"

    handle = engine.start(Diamond, {"x": 3})
    assert handle.result(WAIT) == "103|n=30"

    assert threads["source"].name.startswith("reactor-step")
    assert threads["right"].name.startswith("reactor-step")
    assert threads["left"] is system.bridge.thread
    assert threads["join"] is system.bridge.thread

    events = engine.history(handle.run_id)
    completed = [e.step for e in of_type(events, StepCompleted)]
    assert sorted(completed) == ["join", "left", "right", "source"]
    assert completed[0] == "source"
    assert completed[-1] == "join"
    began: dict[str, int] = {}
    done: dict[str, int] = {}
    for i, e in enumerate(events):
        if isinstance(e, StepStarted | StepCompleted):
            began.setdefault(e.step, i)  # its StepCompleted when its StepStarted was left out
        if isinstance(e, StepCompleted):
            done[e.step] = i
    assert began["join"] > done["left"]
    assert began["join"] > done["right"]
    assert began["left"] > done["source"]
    assert kinds(events)[0] == "RunStarted"
    assert isinstance(events[-1], RunCompleted)


# -- 2. undo and rollback ------------------------------------------------------------------


def test_undo_runs_newest_first(engine: Engine) -> None:
    """A late failure undoes every completed step with an undo, newest first."""
    undone: list[tuple[str, Any]] = []

    def undoer(name: str) -> Any:
        def undo(value: Any, arguments: dict[str, Any]) -> None:
            undone.append((name, value))

        return undo

    def one() -> int:
        return 1

    def two(one: int) -> int:
        return one + 1

    def plain(two: int) -> int:
        return two + 1

    def three(plain: int) -> int:
        return plain + 1

    def boom(three: int) -> int:
        raise ValueError(f"no room for {three}")

    class Booking(Reactor):
        s1 = step(one, name="s1", undo=undoer("s1"))
        s2 = step(two, name="s2", args={"one": ref("s1")}, undo=undoer("s2"))
        s_plain = step(plain, name="s_plain", args={"two": ref("s2")})
        s3 = step(three, name="s3", args={"plain": ref("s_plain")}, undo=undoer("s3"))
        s4 = step(boom, name="s4", args={"three": ref("s3")}, max_retries=0)

    error = failure(engine, Booking)
    assert undone == [("s3", 4), ("s2", 2), ("s1", 1)]
    assert error.errors[0].step == "s4"
    assert error.errors[0].error == "ValueError"
    assert "no room for 4" in error.errors[0].message
    assert "no room for 4" in str(error)

    events = engine.history(error.run_id)
    assert [e.step for e in of_type(events, StepUndone)] == ["s3", "s2", "s1"]
    failed = of_type(events, StepFailed)
    assert [(f.step, f.will_retry) for f in failed] == [("s4", False)]
    assert isinstance(events[-1], RunFailed)
    assert events[-1].errors[0].step == "s4"
    tail = kinds(events)
    assert tail.index("StepFailed") < tail.index("StepUndone")


def test_undo_that_keeps_failing_is_recorded(engine: Engine) -> None:
    """An undo that keeps raising is journaled as StepUndoFailed and rollback goes on."""
    calls: list[str] = []

    def undo_first(value: Any, arguments: dict[str, Any]) -> None:
        calls.append("first")

    def undo_second(value: Any, arguments: dict[str, Any]) -> None:
        calls.append("second")
        raise RuntimeError("cannot release")

    def first() -> str:
        return "a"

    def second(first: str) -> str:
        return first + "b"

    def third(second: str) -> str:
        raise ValueError("late failure")

    class Fragile(Reactor):
        s1 = step(first, name="first", undo=undo_first)
        s2 = step(second, name="second", undo=undo_second, max_retries=2, backoff=0)
        s3 = step(third, name="third", max_retries=0)

    error = failure(engine, Fragile)
    # The failing undo is tried 1 + max_retries times, then the earlier step is undone.
    assert calls == ["second", "second", "second", "first"]
    assert [e.step for e in error.errors] == ["third", "second"]
    assert error.errors[1].kind == "undo_failed"
    assert "cannot release" in error.errors[1].message

    events = engine.history(error.run_id)
    undo_failed = of_type(events, StepUndoFailed)
    assert [u.step for u in undo_failed] == ["second"]
    assert undo_failed[0].error.error == "RuntimeError"
    assert [e.step for e in of_type(events, StepUndone)] == ["first"]
    names = kinds(events)
    assert names.index("StepUndoFailed") < names.index("StepUndone")
    assert isinstance(events[-1], RunFailed)


# -- 3. compensate -------------------------------------------------------------------------


def test_compensate_continue_substitutes_the_result(engine: Engine) -> None:
    """A compensate returning Continue(v) completes the step with v; the run goes on."""
    seen: list[BaseException] = []

    def fallback(error: BaseException, arguments: dict[str, Any]) -> Continue:
        seen.append(error)
        return Continue(f"cached {arguments['city']}")

    class Weather(Reactor):
        city = Input(str)

        @step(compensate=fallback)
        def forecast(city: str) -> str:
            raise ValueError("service down")

        @step
        def report(forecast: str) -> str:
            return f"report: {forecast}"

    handle = engine.start(Weather, {"city": "Oslo"})
    assert handle.result(WAIT) == "report: cached Oslo"
    assert len(seen) == 1
    assert isinstance(seen[0], ValueError)

    events = engine.history(handle.run_id)
    compensated = of_type(events, StepCompensated)
    assert [(c.step, c.decision) for c in compensated] == [("forecast", "continue")]
    assert [(f.step, f.will_retry) for f in of_type(events, StepFailed)] == [("forecast", False)]
    assert [c.step for c in of_type(events, StepCompleted)] == ["report"]
    assert isinstance(events[-1], RunCompleted)


def test_compensate_retry_attempts_again(engine: Engine) -> None:
    """A compensate returning Retry() runs the step again, which then succeeds."""
    attempts: list[int] = []

    def again(error: BaseException, arguments: dict[str, Any]) -> Retry:
        return Retry("try once more")

    class Flaky(Reactor):
        @step(compensate=again, backoff=0)
        def fetch() -> str:
            attempts.append(len(attempts) + 1)
            if len(attempts) == 1:
                raise ValueError("first attempt fails")
            return "fetched"

    handle = engine.start(Flaky)
    assert handle.result(WAIT) == "fetched"
    assert attempts == [1, 2]

    events = engine.history(handle.run_id)
    assert [c.decision for c in of_type(events, StepCompensated)] == ["retry"]
    assert attempts_begun(events) == [("fetch", 1), ("fetch", 2)]
    assert [f.will_retry for f in of_type(events, StepFailed)] == [True]
    assert of_type(events, StepCompleted)[0].attempt == 2


@pytest.mark.parametrize("decision", [Fail("not worth it"), None], ids=["Fail", "None"])
def test_compensate_fail_rolls_back(engine: Engine, decision: Fail | None) -> None:
    """A compensate returning Fail() or None fails the run, and completed steps are undone."""
    undone: list[str] = []

    def give_up(error: BaseException, arguments: dict[str, Any]) -> Fail | None:
        return decision

    def release(value: Any, arguments: dict[str, Any]) -> None:
        undone.append(value)

    class Order(Reactor):
        @step(undo=release)
        def reserve() -> str:
            return "seat 12"

        @step(compensate=give_up)
        def pay(reserve: str) -> str:
            raise ValueError("card declined")

    error = failure(engine, Order)
    assert undone == ["seat 12"]
    assert error.errors[0].step == "pay"
    assert "card declined" in error.errors[0].message
    if decision is not None:
        assert "not worth it" in error.errors[0].message

    events = engine.history(error.run_id)
    assert [c.decision for c in of_type(events, StepCompensated)] == ["fail"]
    assert [u.step for u in of_type(events, StepUndone)] == ["reserve"]
    assert isinstance(events[-1], RunFailed)


def test_compensate_that_raises_fails_the_step(engine: Engine) -> None:
    """A compensate that raises leaves the failure standing, and says so."""

    def broken(error: BaseException, arguments: dict[str, Any]) -> Continue:
        raise RuntimeError("compensation crashed")

    class Broken(Reactor):
        @step(compensate=broken)
        def work() -> str:
            raise ValueError("original problem")

    error = failure(engine, Broken)
    message = error.errors[0].message
    assert error.errors[0].step == "work"
    assert "original problem" in message
    assert "compensate raised RuntimeError" in message
    assert "compensation crashed" in message
    events = engine.history(error.run_id)
    assert [c.decision for c in of_type(events, StepCompensated)] == ["fail"]


# -- 4. retries and timeouts ---------------------------------------------------------------


def test_retry_outcome_with_backoff(engine: Engine) -> None:
    """Returning Retry() retries the step; the backoff gets each retry's number and error."""
    backoff_calls: list[tuple[int, str]] = []
    attempts: list[int] = []

    def record(n: int, error: BaseException | None) -> float:
        backoff_calls.append((n, str(error)))
        return 0.0

    class Polling(Reactor):
        @step(backoff=record, max_retries=5)
        def poll() -> Any:
            attempts.append(1)
            if len(attempts) < 3:
                return Retry(f"not ready {len(attempts)}")
            return "ready"

    handle = engine.start(Polling)
    assert handle.result(WAIT) == "ready"
    assert len(attempts) == 3
    assert backoff_calls == [(1, "not ready 1"), (2, "not ready 2")]

    events = engine.history(handle.run_id)
    failed = of_type(events, StepFailed)
    assert [(f.attempt, f.will_retry) for f in failed] == [(1, True), (2, True)]
    assert [attempt for _, attempt in attempts_begun(events)] == [1, 2, 3]
    assert of_type(events, StepCompleted)[0].attempt == 3


@pytest.mark.parametrize("error", [TimeoutError, ConnectionError], ids=lambda e: e.__name__)
def test_transient_errors_are_retried(engine: Engine, error: type[Exception]) -> None:
    """A timeout or connection error is retried without any compensate."""
    attempts: list[int] = []

    class Remote(Reactor):
        @step(backoff=0)
        def call() -> str:
            attempts.append(1)
            if len(attempts) == 1:
                raise error("transient")
            return "answered"

    handle = engine.start(Remote)
    assert handle.result(WAIT) == "answered"
    assert len(attempts) == 2
    failed = of_type(engine.history(handle.run_id), StepFailed)
    assert len(failed) == 1
    assert failed[0].will_retry
    assert failed[0].error.retryable
    assert failed[0].error.error == error.__name__


def test_other_errors_are_not_retried(engine: Engine) -> None:
    """A ValueError (not transient, no compensate) fails the step on its first attempt."""
    attempts: list[int] = []

    class Strict(Reactor):
        @step(backoff=0, max_retries=5)
        def parse() -> int:
            attempts.append(1)
            raise ValueError("not a number")

    error = failure(engine, Strict)
    assert len(attempts) == 1
    assert error.errors[0].error == "ValueError"
    assert not error.errors[0].retryable
    failed = of_type(engine.history(error.run_id), StepFailed)
    assert [(f.attempt, f.will_retry) for f in failed] == [(1, False)]


def test_retries_exhausted_gives_up(engine: Engine) -> None:
    """A step that keeps failing transiently gives up after max_retries, saying so."""
    attempts: list[int] = []

    class Down(Reactor):
        @step(backoff=0, max_retries=2)
        def call() -> str:
            attempts.append(1)
            raise ConnectionError("refused")

    error = failure(engine, Down)
    assert len(attempts) == 3
    assert "gave up after 3 attempts" in error.errors[0].message
    assert "gave up" in str(error)
    failed = of_type(engine.history(error.run_id), StepFailed)
    assert [f.will_retry for f in failed] == [True, True, False]


def test_default_max_retries(engine: Engine) -> None:
    """A step that sets no max_retries gets DEFAULT_MAX_RETRIES retries."""
    attempts: list[int] = []

    class Stubborn(Reactor):
        @step(backoff=0)
        def again() -> Retry:
            attempts.append(1)
            return Retry()

    error = failure(engine, Stubborn)
    assert DEFAULT_MAX_RETRIES >= 1
    assert len(attempts) == DEFAULT_MAX_RETRIES + 1
    assert f"gave up after {DEFAULT_MAX_RETRIES + 1} attempts" in error.errors[0].message
    started = of_type(engine.history(error.run_id), StepStarted)
    assert len(started) == DEFAULT_MAX_RETRIES + 1


def test_step_timeout(engine: Engine) -> None:
    """An async step slower than its timeout fails as a timeout (and is retried as one)."""
    attempts: list[int] = []

    class Slow(Reactor):
        @step(timeout=0.05, max_retries=1, backoff=0)
        async def crawl() -> str:
            attempts.append(1)
            await asyncio.sleep(30)
            return "never"

    error = failure(engine, Slow)
    assert len(attempts) == 2
    assert error.errors[0].kind == "timeout"
    assert error.errors[0].step == "crawl"
    failed = of_type(engine.history(error.run_id), StepFailed)
    assert [(f.error.kind, f.will_retry) for f in failed] == [("timeout", True), ("timeout", False)]


# -- 5. concurrency limits -------------------------------------------------------------------


class Gauge:
    """Counts steps running at once on the event loop, and the peak.

    A step that enters waits until as many steps run as the limit allows (or until
    all that are left run), so the peak reaches the limit without relying on timing;
    a limit that is not enforced shows as a higher peak.
    """

    def __init__(self, limit: int, total: int) -> None:
        self.limit = limit
        self.total = total
        self.active = 0
        self.peak = 0
        self.finished = 0

    async def work(self) -> int:
        self.active += 1
        self.peak = max(self.peak, self.active)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + 5.0
        while self.active < min(self.limit, self.total - self.finished):
            if loop.time() > give_up:
                break
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.002)
        self.active -= 1
        self.finished += 1
        return self.finished


def parallel_reactor(name: str, gauge: Gauge, count: int) -> type[Reactor]:
    """A reactor of ``count`` independent async steps that all run ``gauge.work``."""

    async def work() -> int:
        return await gauge.work()

    body: dict[str, Any] = {f"w{i}": step(work, name=f"w{i}") for i in range(count)}
    return type(name, (Reactor,), body)


def test_max_concurrency_is_respected(engine: Engine) -> None:
    """Ten parallel steps with max_concurrency=3 never run more than three at once."""
    gauge = Gauge(limit=3, total=10)
    ten = parallel_reactor("Ten", gauge, 10)
    handle = engine.start(ten, max_concurrency=3)
    handle.result(WAIT)
    assert gauge.peak == 3
    assert gauge.finished == 10
    completed = of_type(engine.history(handle.run_id), StepCompleted)
    assert sorted(c.step for c in completed) == sorted(f"w{i}" for i in range(10))


def test_concurrency_key_is_shared_between_runs(engine: Engine) -> None:
    """Two runs sharing a concurrency key of two never run more than two steps at once."""
    gauge = Gauge(limit=2, total=10)
    five = parallel_reactor("Five", gauge, 5)
    first = engine.start(five, max_concurrency=2, concurrency_key="gpu")
    second = engine.start(five, max_concurrency=2, concurrency_key="gpu")
    first.result(WAIT)
    second.result(WAIT)
    assert gauge.peak == 2
    assert gauge.finished == 10
    assert engine.limits.in_use("gpu") == 0
    for handle in (first, second):
        assert len(of_type(engine.history(handle.run_id), StepCompleted)) == 5


# -- 6. where and guard ----------------------------------------------------------------------


def test_where_false_skips_the_step_and_its_dependents(engine: Engine) -> None:
    """A false where skips the step and steps using its result; wait_for steps still run."""
    ran: list[str] = []

    def only_big(arguments: dict[str, Any]) -> bool:
        return bool(arguments["n"] > 100)

    class Maybe(Reactor):
        n = Input(int)

        @step(where=only_big)
        def big(n: int) -> str:
            ran.append("big")
            return "big"

        @step
        def uses_big(big: str) -> str:
            ran.append("uses_big")
            return big + "!"

        @step(wait_for=["big"])
        def after_big(n: int) -> int:
            ran.append("after_big")
            return n * 2

    handle = engine.start(Maybe, {"n": 5})
    assert handle.result(WAIT) == 10
    assert ran == ["after_big"]
    events = engine.history(handle.run_id)
    assert sorted(s.step for s in of_type(events, StepSkipped)) == ["big", "uses_big"]
    assert [c.step for c in of_type(events, StepCompleted)] == ["after_big"]
    assert "big" not in [s.step for s in of_type(events, StepStarted)]

    ran.clear()
    handle = engine.start(Maybe, {"n": 500})
    assert handle.result(WAIT) == 1000
    assert sorted(ran) == ["after_big", "big", "uses_big"]
    assert of_type(engine.history(handle.run_id), StepSkipped) == []


def test_guard_shortcut_and_pass(engine: Engine) -> None:
    """A guard's Shortcut is the result without calling the step; None lets it run."""
    calls: list[str] = []
    cache = {"known": "cached answer"}

    def from_cache(arguments: dict[str, Any]) -> Shortcut | None:
        hit = cache.get(arguments["key"])
        return Shortcut(hit) if hit is not None else None

    class Cached(Reactor):
        key = Input(str)

        @step(guard=from_cache)
        def compute(key: str) -> str:
            calls.append(key)
            return f"computed {key}"

    hit = engine.start(Cached, {"key": "known"})
    assert hit.result(WAIT) == "cached answer"
    assert calls == []
    events = engine.history(hit.run_id)
    completed = of_type(events, StepCompleted)
    assert [(c.step, c.guarded) for c in completed] == [("compute", True)]
    assert of_type(events, StepStarted) == []

    miss = engine.start(Cached, {"key": "new"})
    assert miss.result(WAIT) == "computed new"
    assert calls == ["new"]
    completed = of_type(engine.history(miss.run_id), StepCompleted)
    assert [(c.step, c.guarded) for c in completed] == [("compute", False)]


# -- 7. steps added while running ------------------------------------------------------------


def test_with_steps_adds_steps(engine: Engine) -> None:
    """WithSteps adds steps that run (one after the other) and are journaled."""
    handle = engine.start(Grows, {"n": 5})
    assert handle.result(WAIT) == 6
    assert TALLY.log == ["add 5 10", "double 15"]

    events = engine.history(handle.run_id)
    added = of_type(events, StepsAdded)
    assert len(added) == 1
    assert added[0].by == "seed"
    assert [d["name"] for d in added[0].steps] == ["extra_1", "extra_2"]
    assert added[0].steps[0]["fn"] == "tests.support.flows:add"
    values = {c.step: bytes(c.value) for c in of_type(events, StepCompleted)}
    assert values["extra_1"] == b"15"
    assert values["extra_2"] == b"30"
    names = kinds(events)
    assert names.index("StepsAdded") < names.index("RunCompleted")


def test_with_steps_refuses_a_lambda(engine: Engine) -> None:
    """A step made of a lambda cannot be journaled: the adding step fails, naming it."""

    class Bad(Reactor):
        @step
        def seed() -> Any:
            return WithSteps(1, [step(lambda x: x + 1, name="plus", args={"x": ref("seed")})])

    error = failure(engine, Bad)
    first = error.errors[0]
    assert first.step == "seed"
    assert first.kind == "bad_step"
    assert "<lambda>" in first.message
    assert "module level" in first.message
    events = engine.history(error.run_id)
    assert of_type(events, StepsAdded) == []
    assert "plus" not in [s.step for s in of_type(events, StepStarted)]


def test_with_steps_unknown_reference(engine: Engine) -> None:
    """An added step that refers to an unknown step fails the step that added it."""

    class Dangling(Reactor):
        @step
        def seed() -> Any:
            return WithSteps(1, [step(double, name="twice", args={"x": ref("nowhere")})])

    error = failure(engine, Dangling)
    first = error.errors[0]
    assert first.step == "seed"
    assert first.kind == "bad_step"
    assert "nowhere" in first.message
    assert TALLY.log == []
    assert of_type(engine.history(error.run_id), StepsAdded) == []


# -- 8. halt and resume ----------------------------------------------------------------------


def test_halt_and_resume(engine: Engine, tmp_path: Path) -> None:
    """A halted run is listed as halted; once resumed it completes without re-running steps."""
    flag = tmp_path / "approved"
    handle = engine.start(Approval, {"flag": str(flag), "title": "memo"})
    with pytest.raises(RunHaltedError) as caught:
        handle.result(WAIT)
    assert caught.value.step == "approve"
    assert caught.value.reason == "need approval"
    assert TALLY.counts == {"prepare": 1, "approve": 1}

    statuses = {r.run_id: r.status for r in engine.runs()}
    assert statuses[handle.run_id] == "halted"
    halted = of_type(engine.history(handle.run_id), RunHalted)
    assert [(h.step, h.reason) for h in halted] == [("approve", "need approval")]

    flag.touch()
    resumed = engine.resume(handle.run_id)
    assert resumed.result(WAIT) == "published: approved MEMO"
    assert TALLY.counts == {"prepare": 1, "approve": 2, "publish": 1}

    events = engine.history(handle.run_id)
    assert len(of_type(events, RunResumed)) == 1
    assert [c.step for c in of_type(events, StepCompleted)] == ["prepare", "approve", "publish"]
    assert isinstance(events[-1], RunCompleted)
    assert {r.run_id: r.status for r in engine.runs()}[handle.run_id] == "completed"


def test_every_step_that_halted_the_run_is_named(engine: Engine) -> None:
    """Two approvals running side by side both halt: the error names both, first first."""
    both_running = threading.Barrier(2, timeout=WAIT)

    class TwoApprovals(Reactor):
        @step
        def legal() -> Halt:
            both_running.wait()
            return Halt("legal must approve")

        @step
        def finance() -> Halt:
            both_running.wait()
            return Halt("finance must approve")

    handle = engine.start(TwoApprovals, max_concurrency=2)
    with pytest.raises(RunHaltedError) as caught:
        handle.result(WAIT)
    halted = caught.value.halted
    assert sorted(halted) == [("finance", "finance must approve"), ("legal", "legal must approve")]
    assert (caught.value.step, caught.value.reason) == halted[0]
    (other, why) = halted[1]
    assert f"also halted: {other!r} ({why})" in str(caught.value)


def test_resume_refuses_finished_and_unknown_runs(engine: Engine) -> None:
    """Resuming a run that ended, or one that never existed, raises ResumeError."""
    handle = engine.start(Grows, {"n": 1})
    handle.result(WAIT)
    with pytest.raises(ResumeError, match="already ended"):
        engine.resume(handle.run_id)
    with pytest.raises(ResumeError, match="no run"):
        engine.resume("no-such-run")


# -- 9. cancel and run timeout ----------------------------------------------------------------


def test_cancel_rolls_back(engine: Engine) -> None:
    """Cancelling a run stops its running step and undoes the completed ones."""
    sleeping = threading.Event()
    undone: list[str] = []

    def unbook(value: Any, arguments: dict[str, Any]) -> None:
        undone.append(value)

    class Long(Reactor):
        @step(undo=unbook)
        def book() -> str:
            return "room"

        @step
        async def wait(book: str) -> str:
            sleeping.set()
            await asyncio.sleep(30)
            return "woke"

    handle = engine.start(Long)
    assert sleeping.wait(WAIT)
    handle.cancel("user changed their mind")
    with pytest.raises(RunCancelledError) as caught:
        handle.result(WAIT)
    assert caught.value.reason == "user changed their mind"
    assert undone == ["room"]

    events = engine.history(handle.run_id)
    assert [u.step for u in of_type(events, StepUndone)] == ["book"]
    assert "wait" not in [c.step for c in of_type(events, StepCompleted)]
    assert isinstance(events[-1], RunCancelled)
    assert events[-1].reason == "user changed their mind"
    assert {r.run_id: r.status for r in engine.runs()}[handle.run_id] == "cancelled"


def test_run_timeout(engine: Engine) -> None:
    """A run that outlives its timeout is rolled back and fails with a timeout."""
    undone: list[str] = []

    def unbook(value: Any, arguments: dict[str, Any]) -> None:
        undone.append(value)

    class Late(Reactor):
        @step(undo=unbook)
        def book() -> str:
            return "table"

        @step
        async def dawdle(book: str) -> str:
            await asyncio.sleep(30)
            return "done"

    handle = engine.start(Late, timeout=0.2)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    assert caught.value.errors[0].kind == "timeout"
    assert "timeout" in str(caught.value)
    events = engine.history(handle.run_id)
    assert isinstance(events[-1], RunFailed)
    assert events[-1].errors[0].kind == "timeout"
    assert "dawdle" not in [c.step for c in of_type(events, StepCompleted)]
    # Whatever completed before the deadline (normally "book") was rolled back.
    completed = [c.step for c in of_type(events, StepCompleted)]
    assert [u.step for u in of_type(events, StepUndone)] == completed
    assert undone == ["table"] * len(completed)


# -- 10. results that cannot be journaled ------------------------------------------------------


def test_unencodable_result_fails_the_step(engine: Engine) -> None:
    """A result the journal cannot encode fails that step, not a later one."""
    later: list[str] = []

    class Opaque(Reactor):
        @step
        def handle() -> Any:
            return object()

        @step
        def use(handle: Any) -> str:
            later.append("use")
            return "used"

    error = failure(engine, Opaque)
    assert error.errors[0].step == "handle"
    assert error.errors[0].kind == "unencodable_result"
    assert "cannot be journaled" in error.errors[0].message
    assert later == []
    events = engine.history(error.run_id)
    assert [(f.step, f.error.kind) for f in of_type(events, StepFailed)] == [
        ("handle", "unencodable_result")
    ]
    assert of_type(events, StepCompleted) == []


def test_a_generator_result_fails_saying_to_return_a_list(engine: Engine) -> None:
    """A generator is read once and cannot be journaled: the error says what to return."""

    class Lazy(Reactor):
        @step
        def items() -> Any:
            return (n for n in range(3))

    error = failure(engine, Lazy)
    assert (error.errors[0].step, error.errors[0].kind) == ("items", "unencodable_result")
    assert "return a list (list(...)) instead" in error.errors[0].message


# -- 11. input errors --------------------------------------------------------------------------


class Counted(Reactor):
    """Takes a count and a label."""

    count = Input(int)
    label = Input(str, default="items")

    @step
    def show(count: int, label: str) -> str:
        return f"{count} {label}"


@pytest.mark.parametrize(
    ("inputs", "input_name", "words"),
    [
        ({"count": 1, "lable": "x"}, "lable", "did you mean 'label'?"),
        ({"label": "x"}, "count", "is required"),
        ({"count": "abc"}, "count", "is not a valid int"),
    ],
    ids=["unknown", "missing", "wrong-type"],
)
def test_input_errors(engine: Engine, inputs: dict[str, Any], input_name: str, words: str) -> None:
    """A bad input raises InputError naming reactor and input, and starts no run."""
    before = [r.run_id for r in engine.runs()]
    with pytest.raises(InputError) as caught:
        engine.start(Counted, inputs)
    assert caught.value.reactor == "Counted"
    assert caught.value.input == input_name
    assert words in str(caught.value)
    assert "'Counted'" in str(caught.value)
    assert [r.run_id for r in engine.runs()] == before


def test_inputs_convert_and_default(engine: Engine) -> None:
    """A string "42" becomes the int 42; a missing input with a default takes it."""
    assert engine.run(Counted, {"count": "42"}) == "42 items"


# -- 12. middleware ----------------------------------------------------------------------------


class Recorder(Middleware):
    """Records (hook, kind, step) for every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.outcomes: list[RunOutcome] = []

    def run_started(self, run: RunInfo) -> None:
        self.calls.append(("run_started", "", run.reactor))

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        self.calls.append(("step_event", str(event.kind), event.step))

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        self.calls.append(("run_finished", outcome.status, run.reactor))
        self.outcomes.append(outcome)


class Exploding(Middleware):
    """Raises from every hook."""

    def run_started(self, run: RunInfo) -> None:
        raise RuntimeError("run_started exploded")

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        raise RuntimeError("step_event exploded")

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        raise RuntimeError("run_finished exploded")

    def step_context(self, run: RunInfo, step: str, attempt: int) -> Any:
        raise RuntimeError("step_context exploded")


def test_middleware_sees_every_event(system: System, tmp_path: Path) -> None:
    """A middleware sees the run start, each step's events, the undo and how it ended."""
    recorder = Recorder()
    attempts: list[int] = []

    def release(value: Any, arguments: dict[str, Any]) -> None:
        return None

    class Observed(Reactor):
        @step(undo=release)
        def first() -> int:
            return 1

        @step(backoff=0)
        def second(first: int) -> Any:
            attempts.append(1)
            return Retry() if len(attempts) == 1 else first + 1

        @step(max_retries=0)
        def third(second: int) -> int:
            raise ValueError("third fails")

    with Engine(
        system, db_path=tmp_path / "runs.db", logging=False, middleware=[recorder]
    ) as engine:
        failure(engine, Observed)

    calls = recorder.calls
    assert calls[0] == ("run_started", "", "Observed")
    assert calls[-1] == ("run_finished", "failed", "Observed")
    steps = [(kind, name) for hook, kind, name in calls if hook == "step_event"]
    assert steps == [
        ("start", "first"),
        ("complete", "first"),
        ("start", "second"),
        ("error", "second"),
        ("retry", "second"),
        ("start", "second"),
        ("complete", "second"),
        ("start", "third"),
        ("error", "third"),
        ("undo_start", "first"),
        ("undo_complete", "first"),
    ]
    outcome = recorder.outcomes[0]
    assert outcome.errors[0].step == "third"


def test_middleware_per_run_and_completed_status(engine: Engine) -> None:
    """Middleware given to one run sees that run's completion with its value."""
    recorder = Recorder()
    handle = engine.start(Grows, {"n": 2}, middleware=[recorder])
    assert handle.result(WAIT) == 3
    assert recorder.calls[-1] == ("run_finished", "completed", "Grows")
    assert recorder.outcomes[0].value == 3
    added = [name for hook, kind, name in recorder.calls if kind == "added"]
    assert added == ["extra_1", "extra_2"]


def test_raising_middleware_does_not_break_runs(system: System, tmp_path: Path) -> None:
    """A middleware that raises from every hook changes nothing about the run."""
    recorder = Recorder()

    class Small(Reactor):
        n = Input(int)

        @step
        def inc(n: int) -> int:
            return n + 1

    with Engine(
        system,
        db_path=tmp_path / "runs.db",
        logging=False,
        tracing=False,
        middleware=[Exploding(), recorder],
    ) as engine:
        handle = engine.start(Small, {"n": 4})
        assert handle.result(WAIT) == 5
        written = kinds(engine.history(handle.run_id))
        assert [k for k in written if k != "StepStarted"] == [
            "RunStarted",
            "StepCompleted",
            "RunCompleted",
        ]
    assert recorder.calls == [
        ("run_started", "", "Small"),
        ("step_event", "start", "inc"),
        ("step_event", "complete", "inc"),
        ("run_finished", "completed", "Small"),
    ]


class Exiting(Middleware):
    """Raises a BaseException (not an Exception) from every hook, as given."""

    def __init__(self, error: type[BaseException]) -> None:
        self.error = error

    def run_started(self, run: RunInfo) -> None:
        raise self.error

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        raise self.error

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        raise self.error

    def step_context(self, run: RunInfo, step: str, attempt: int) -> Any:
        raise self.error


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_a_middleware_raising_a_base_exception_is_logged_and_ignored_too(
    system: System, tmp_path: Path, error: type[BaseException]
) -> None:
    """``sys.exit()`` or ``KeyboardInterrupt`` in a user's middleware is caught like in a step.

    It neither stops the Run actor nor the run: the run completes, journaled, and the
    other middleware sees every event.
    """
    recorder = Recorder()

    class Tiny(Reactor):
        n = Input(int)

        @step
        async def inc(n: int) -> int:
            return n + 1

    with (
        capture_logs() as logs,
        Engine(
            system,
            db_path=tmp_path / "runs.db",
            logging=False,
            tracing=False,
            middleware=[Exiting(error), recorder],
        ) as engine,
    ):
        handle = engine.start(Tiny, {"n": 1})
        assert handle.result(WAIT) == 2
        assert "RunCompleted" in kinds(engine.history(handle.run_id))
    assert [hook for hook, _, _ in recorder.calls] == [
        "run_started",
        "step_event",
        "step_event",
        "run_finished",
    ]
    failed = [
        entry for entry in logs if "failed" in entry["event"] and "middleware" in entry["event"]
    ]
    assert len(failed) == 5  # run_started, step_context, two step events, run_finished


def test_the_runs_fast_step_event_is_an_ordinary_step_event() -> None:
    """What the Run builds through the slots equals the dataclass built field by field."""
    fast = step_event(StepEventKind.RETRY, "a", 2, 1.5, 0.25, "v", "e", 0.5, "why")
    assert fast == StepEvent(
        kind=StepEventKind.RETRY,
        step="a",
        attempt=2,
        at=1.5,
        duration=0.25,
        value="v",
        error="e",
        delay=0.5,
        detail="why",
    )
    assert fast.replayed is False
    with pytest.raises(AttributeError):
        fast.step = "b"  # type: ignore[misc]  # still frozen
