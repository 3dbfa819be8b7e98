"""Acceptance tests: the DSL's semantics against Ash Reactor's, one fact at a time.

The facts come from ``reactor-semantics.md`` (Ash Reactor v1.0.6: its DSL reference,
``Reactor.Step`` and ``Reactor.run/4``). Each test states one of them and checks it through
the public surface only: a reactor class, an :class:`~reactor.Engine`, the run's result or
error. Facts the other test files already check closely are not repeated here; the list
at the end of this docstring says where they are.

Nothing here sleeps for a time or asserts on one: steps that must overlap wait for each other on
events, each wait bounded so that a broken engine fails the test instead of hanging it.

Checked elsewhere: fan-out/fan-in and where sync and async steps run, ``max_concurrency``,
``concurrency_key`` between top-level runs, a false ``where`` skipping the steps that take
its result (the README says so: Ash gives them ``nil``), halt and resume
(``tests/reactor/run/test_executor.py``); the soft timeout (``test_soft_timeout.py``);
dynamic growth and self re-emission (``test_rollback_and_growth.py``, ``test_loops.py``);
composites (``tests/reactor/kinds/test_composites.py``); recurse, flunk and debug
(``test_recurse_flunk_debug.py``); definition errors (``tests/dsl/test_dsl.py``); an undo
returning Fail (``test_run_semantics.py``); undoing a completed run
(``tests/reactor/app/test_undo.py``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import System
from dsl import (
    Continue,
    DefinitionError,
    Fail,
    Halt,
    Input,
    Reactor,
    Retry,
    Shortcut,
    StepContext,
    collect,
    compose,
    group,
    ref,
    step,
    template,
    value,
)
from reactor.app import Engine
from reactor.run import (
    Middleware,
    RunFailedError,
    RunHaltedError,
    RunInfo,
    StepEvent,
    StepEventKind,
)

WAIT = 10.0
"""Seconds a test waits for a run's result (or a step for another) before calling it hung."""

LOG: list[str] = []
"""What the steps and hooks of the module-level reactors did, in order."""

_LOCK = threading.Lock()


def log(entry: str) -> None:
    """Record ``entry`` (steps run on worker threads and on the loop)."""
    with _LOCK:
        LOG.append(entry)


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine journaling into a fresh database, without log lines."""
    LOG.clear()
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def failed(engine: Engine, reactor: type[Reactor], inputs: dict[str, Any] | None = None) -> Any:
    """Run ``reactor`` expecting it to fail; the RunFailedError."""
    handle = engine.start(reactor, inputs)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    return caught.value


def _undo(value: Any, _arguments: dict[str, Any]) -> None:
    log(f"undo {value}")


# -- dependency ordering and concurrency ----------------------------------------------------


def test_steps_that_do_not_depend_on_each_other_run_at_the_same_time(engine: Engine) -> None:
    """Each iteration runs every ready step concurrently (up to the limit).

    ``left`` and ``right`` each wait until the other has started: they can only both
    finish if they ran at once.
    """
    started = {"left": threading.Event(), "right": threading.Event()}

    def meet(me: str, other: str) -> str:
        started[me].set()
        return me if started[other].wait(WAIT) else f"{me} alone"

    class Rendezvous(Reactor, returns="both"):
        @step
        def left() -> str:
            return meet("left", "right")

        @step
        def right() -> str:
            return meet("right", "left")

        @step
        def both(left: str, right: str) -> str:
            return f"{left}+{right}"

    assert engine.run(Rendezvous, max_concurrency=2, timeout=WAIT) == "left+right"


def test_a_sync_step_and_an_async_step_run_at_the_same_time(engine: Engine) -> None:
    """A plain ``def`` step (worker thread) does not hold up an ``async def`` one (the loop)."""
    started = {"sync": threading.Event(), "async": threading.Event()}

    class Mixed(Reactor, returns="both"):
        @step
        def blocking() -> str:
            started["sync"].set()
            return "sync" if started["async"].wait(WAIT) else "sync alone"

        @step
        async def awaiting() -> str:
            started["async"].set()
            met = await asyncio.to_thread(started["sync"].wait, WAIT)
            return "async" if met else "async alone"

        @step
        def both(blocking: str, awaiting: str) -> str:
            return f"{blocking}+{awaiting}"

    assert engine.run(Mixed, max_concurrency=2, timeout=WAIT) == "sync+async"


def test_wait_for_orders_a_step_without_giving_it_the_result(engine: Engine) -> None:
    """``wait_for`` is ``argument :_, result(step)``: order only, no data."""

    class Ordered(Reactor, returns="second"):
        @step
        async def first() -> str:
            log("first")
            return "first's result"

        @step(wait_for=["first"])
        def second() -> str:
            log("second")
            return "done"

    assert engine.run(Ordered, timeout=WAIT) == "done"
    assert LOG == ["first", "second"]


# -- concurrency_key: one pool for a reactor and the reactors it composes -----------------------


class _Peak:
    """Steps running at once on the event loop, and the most seen."""

    active = 0
    peak = 0

    @classmethod
    async def work(cls) -> int:
        cls.active += 1
        cls.peak = max(cls.peak, cls.active)
        for _ in range(20):  # let every other dispatched step start meanwhile
            await asyncio.sleep(0)
        cls.active -= 1
        return 1


async def _peak_work() -> int:
    return await _Peak.work()


class _FourWide(Reactor, returns="total"):
    c1 = step(_peak_work, name="c1")
    c2 = step(_peak_work, name="c2")
    c3 = step(_peak_work, name="c3")
    c4 = step(_peak_work, name="c4")

    @step
    def total(c1: int, c2: int, c3: int, c4: int) -> int:
        return c1 + c2 + c3 + c4


class _Composing(Reactor, returns="both"):
    inner = compose(_FourWide)
    p1 = step(_peak_work, name="p1")
    p2 = step(_peak_work, name="p2")

    @step
    def both(inner: int, p1: int, p2: int) -> int:
        return inner + p1 + p2


def test_a_concurrency_key_is_shared_with_composed_reactors(engine: Engine) -> None:
    """``concurrency_key`` shares one pool across a reactor and its child reactors."""
    _Peak.active = _Peak.peak = 0
    assert engine.run(_Composing, concurrency_key="pool", max_concurrency=2, timeout=WAIT) == 6
    assert 1 <= _Peak.peak <= 2
    assert engine.limits.in_use("pool") == 0


# -- arguments, inputs and the run's result --------------------------------------------------


def test_arguments_come_from_inputs_results_sub_paths_and_values(engine: Engine) -> None:
    """``input(:x)``, ``result(:step, sub_path)`` and ``value(x)`` each give an argument."""

    class Sources(Reactor, returns="combine"):
        user = Input(dict[str, Any])
        greeting = Input(str, transform=str.strip)

        @step
        def create(user: dict[str, Any]) -> dict[str, Any]:
            return {"id": 7, "tags": ["new", user["name"]]}

        @step
        def combine(
            greeting: str,
            user_id: int = ref("create", "id"),
            tag: str = ref("create", "tags", 1),
            name: str = ref("user", "name", transform=str.title),
            three: int = value(3),
        ) -> str:
            return f"{greeting} {name} #{user_id} {tag} {three}"

    result = engine.run(Sources, {"user": {"name": "ada"}, "greeting": "  hello "})
    assert result == "hello Ada #7 ada 3"


def test_the_run_returns_the_result_of_the_step_named_by_return(engine: Engine) -> None:
    """The reactor's ``return`` names the step whose result the run returns (not the last).

    The run still runs every step before it returns.
    """

    class Named(Reactor, returns="early"):
        @step
        def early() -> str:
            return "early"

        @step
        def late(early: str) -> str:
            log("late")
            return early + " and late"

    assert engine.run(Named, timeout=WAIT) == "early"
    assert LOG == ["late"], "every step runs, not only those the result needs"


def test_a_missing_required_input_fails_before_any_step_runs(engine: Engine) -> None:
    """Inputs are the reactor's function arguments: a required one must be given."""
    from reactor.run import InputError

    class Needs(Reactor):
        x = Input(int)

        @step
        def use(x: int) -> int:
            log("use")
            return x

    with pytest.raises(InputError, match="'x'"):
        engine.run(Needs, {})
    assert LOG == []


# -- retries and their limits -----------------------------------------------------------------


class _Retrying(Reactor):
    """Asks for a retry on every attempt, with ``max_retries=2``: three attempts."""

    @step(max_retries=2, backoff=0)
    def flaky(ctx: StepContext) -> Retry:
        log(f"attempt {ctx.attempt}")
        return Retry("not yet")


def test_a_step_asking_for_retries_beyond_its_max_retries_fails_the_run(engine: Engine) -> None:
    """``max_retries`` bounds retries; once spent, the step fails (RetriesExceededError)."""
    error = failed(engine, _Retrying)
    assert LOG == ["attempt 1", "attempt 2", "attempt 3"]
    [only] = error.errors
    assert only.step == "flaky"
    assert "not yet" in only.message


def test_max_retries_zero_is_a_single_attempt(engine: Engine) -> None:
    """``max_retries`` counts retries, not attempts: 0 means the step runs once."""

    class Once(Reactor):
        @step(max_retries=0, backoff=0)
        def flaky() -> Retry:
            log("attempt")
            return Retry("again")

    failed(engine, Once)
    assert LOG == ["attempt"]


def test_backoff_is_asked_before_each_retry_with_the_retry_number_and_error(
    engine: Engine,
) -> None:
    """``backoff(reason, ...)`` returns the delay (0: ``:now``) before the next attempt."""
    asked: list[tuple[int, str]] = []

    def backoff(retry: int, error: BaseException | None) -> float:
        asked.append((retry, type(error).__name__ if error is not None else "none"))
        return 0

    class Backs(Reactor):
        @step(max_retries=2, backoff=backoff)
        def flaky(ctx: StepContext) -> Any:
            return "ok" if ctx.attempt == 3 else Retry("later")

    assert engine.run(Backs, timeout=WAIT) == "ok"
    assert [n for n, _ in asked] == [1, 2]


def test_the_step_context_names_the_step_and_counts_the_tries(engine: Engine) -> None:
    """The context holds ``current_try``, ``retries_remaining``, ``current_step``, ...

    ... and ``concurrency_key``, under Ash's names.
    """
    seen: list[tuple[str, int, int, str | None]] = []

    class Counts(Reactor):
        @step(max_retries=1, backoff=0)
        def counted(ctx: StepContext) -> Any:
            seen.append(
                (ctx.current_step, ctx.current_try, ctx.retries_remaining, ctx.concurrency_key)
            )
            return "done" if ctx.retries_remaining == 0 else Retry()

    assert engine.run(Counts, timeout=WAIT) == "done"
    assert seen == [("counted", 0, 1, None), ("counted", 1, 0, None)]
    seen.clear()
    assert engine.run(Counts, timeout=WAIT, concurrency_key="pool") == "done"
    assert [key for *_, key in seen] == ["pool", "pool"]


# -- compensation: what its return value means --------------------------------------------------


class _CompensateAccepts(Reactor):
    """``charge`` fails; its compensate accepts the failure (Ash's ``:ok``)."""

    @step(undo=_undo)
    def reserve() -> str:
        return "reserve"

    @step(compensate=lambda error, arguments: log(f"compensate {error}"), max_retries=0)
    def charge(reserve: str) -> str:
        msg = "card declined"
        raise ValueError(msg)

    @step
    def ship(charge: str) -> str:
        log("ship")
        return "shipped"


def test_compensate_accepting_the_failure_rolls_back_upstream(engine: Engine) -> None:
    """``:ok`` (here ``None`` or ``Fail()``): the failure stands, upstream is undone."""
    error = failed(engine, _CompensateAccepts)
    assert LOG == ["compensate card declined", "undo reserve"]
    assert [(e.step, e.message) for e in error.errors] == [("charge", "card declined")]


def test_compensate_continue_substitutes_the_value_for_dependents(engine: Engine) -> None:
    """``{:continue, value}``: the step's result is ``value`` and the run carries on."""
    got: list[tuple[str, dict[str, Any]]] = []

    def rescue(error: BaseException, arguments: dict[str, Any]) -> Continue:
        got.append((str(error), dict(arguments)))
        return Continue("cached price")

    class Rescued(Reactor, returns="quote"):
        item = Input(str)

        @step(compensate=rescue, max_retries=0)
        def price(item: str) -> str:
            msg = f"no price for {item}"
            raise LookupError(msg)

        @step
        def quote(item: str, price: str) -> str:
            return f"{item}: {price}"

    assert engine.run(Rescued, {"item": "tea"}, timeout=WAIT) == "tea: cached price"
    assert got == [("no price for tea", {"item": "tea"})]


def test_compensate_retry_runs_the_step_again_within_its_max_retries(engine: Engine) -> None:
    """``:retry``: the step runs again, counted against ``max_retries``."""

    def again(_error: BaseException, _arguments: dict[str, Any]) -> Retry:
        log("compensate")
        return Retry("try again")

    class Again(Reactor):
        @step(compensate=again, max_retries=1, backoff=0)
        def wobbly(ctx: StepContext) -> str:
            log(f"attempt {ctx.attempt}")
            if ctx.attempt == 1:
                msg = "wobble"
                raise RuntimeError(msg)
            return "steady"

    assert engine.run(Again, timeout=WAIT) == "steady"
    assert LOG == ["attempt 1", "compensate", "attempt 2"]


def test_compensate_fail_with_a_reason_fails_the_step(engine: Engine) -> None:
    """``{:error, reason}``: the step fails; the run fails and is rolled back."""

    class Refused(Reactor):
        @step(undo=_undo)
        def first() -> str:
            return "first"

        @step(compensate=lambda e, a: Fail("gave up on it"), max_retries=0)
        def second(first: str) -> str:
            msg = "broken"
            raise RuntimeError(msg)

    error = failed(engine, Refused)
    assert LOG == ["undo first"]
    assert error.errors[0].step == "second"
    assert "gave up on it" in error.errors[0].message


def test_compensate_is_not_called_for_another_steps_failure(engine: Engine) -> None:
    """``compensate`` handles the step's own failure only, never a later step's."""

    class Later(Reactor):
        @step(compensate=lambda e, a: log("compensate early"), undo=_undo)
        def early() -> str:
            return "early"

        @step(max_retries=0)
        def boom(early: str) -> str:
            msg = "boom"
            raise RuntimeError(msg)

    failed(engine, Later)
    assert LOG == ["undo early"]


def test_a_step_returning_fail_fails_like_an_error_and_goes_to_compensate(
    engine: Engine,
) -> None:
    """``{:error, reason}`` from ``run``: the step fails (no retry), ``compensate`` decides."""
    seen: list[str] = []

    class Refuses(Reactor):
        @step(undo=_undo)
        def first() -> str:
            return "first"

        @step(max_retries=2, backoff=0)
        def second(first: str) -> Any:
            log("second")
            return Fail("out of stock")

    error = failed(engine, Refuses)
    assert LOG == ["second", "undo first"]
    assert [(e.step, e.kind, e.message) for e in error.errors] == [
        ("second", "error", "out of stock")
    ]

    def rescue(error: BaseException, _arguments: dict[str, Any]) -> Continue:
        seen.append(str(error))
        return Continue("back-ordered")

    class Rescued(Reactor):
        @step(compensate=rescue, max_retries=0)
        def second() -> Any:
            return Fail("out of stock")

    assert engine.run(Rescued, timeout=WAIT) == "back-ordered"
    assert seen == ["out of stock"]


# -- undo: reverse order of completion, completed undoable steps only ------------------------


class _CompletionOrder(Reactor):
    """``a`` and ``b`` are independent; ``b`` finishes first although ``a`` is defined first.

    ``a`` waits for ``b`` to have completed (``B_DONE``, set by ``c``, which needs only
    ``b``), so the order of completion is b, c, a; then ``d`` fails.
    """

    @step(undo=_undo)
    def a() -> str:
        assert B_DONE.wait(WAIT)
        return "a"

    @step(undo=_undo)
    def b() -> str:
        return "b"

    @step(undo=_undo)
    def c(b: str) -> str:
        B_DONE.set()
        return "c"

    @step(max_retries=0)
    def d(a: str, c: str) -> str:
        msg = "late failure"
        raise RuntimeError(msg)


B_DONE = threading.Event()


def test_undo_runs_in_reverse_order_of_completion_not_definition(engine: Engine) -> None:
    """Undo is LIFO over the steps as they completed."""
    B_DONE.clear()
    failed(engine, _CompletionOrder)
    assert LOG == ["undo a", "undo c", "undo b"]


class _OnlyCompleted(Reactor):
    """``kept`` can undo, ``plain`` cannot; ``broken`` fails; ``never`` needs ``broken``.

    ``broken``'s own undo is not called, and ``never`` never runs.
    """

    @step(undo=_undo)
    def kept() -> str:
        return "kept"

    @step
    def plain(kept: str) -> str:
        return "plain"

    @step(undo=_undo, max_retries=0)
    def broken(plain: str) -> str:
        msg = "broken"
        raise RuntimeError(msg)

    @step(undo=_undo)
    def never(broken: str) -> str:
        log("never ran")
        return "never"


def test_only_completed_steps_that_can_undo_are_undone(engine: Engine) -> None:
    """Only steps that completed and can undo are tracked; the failing step is not undone."""
    failed(engine, _OnlyCompleted)
    assert LOG == ["undo kept"]


def test_no_step_starts_once_a_step_has_failed(engine: Engine) -> None:
    """A failure stops the reactor: steps not yet started never run."""

    class Serial(Reactor):
        @step(max_retries=0)
        def first() -> str:
            log("first")
            msg = "first fails"
            raise RuntimeError(msg)

        @step
        def second() -> str:
            log("second")
            return "second"

        @step
        def third() -> str:
            log("third")
            return "third"

    handle = engine.start(Serial, max_concurrency=1)
    with pytest.raises(RunFailedError):
        handle.result(WAIT)
    assert LOG == ["first"]


class _SeesFailure(Middleware):
    """Sets ``FAILED`` once ``slow_fail`` reported its error."""

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        if event.kind is StepEventKind.ERROR and event.step == "fails":
            FAILED.set()


FAILED = threading.Event()


class _RunningAtFailure(Reactor):
    """``running`` is still running when ``fails`` fails; it completes afterwards."""

    @step(undo=_undo)
    def running() -> str:
        assert FAILED.wait(WAIT)
        log("running completed")
        return "running"

    @step(max_retries=0)
    def fails() -> str:
        msg = "fails"
        raise RuntimeError(msg)


def test_a_step_running_at_the_failure_finishes_and_is_undone(engine: Engine) -> None:
    """Running steps finish; having completed, they are rolled back with the others."""
    FAILED.clear()
    handle = engine.start(_RunningAtFailure, middleware=[_SeesFailure()], max_concurrency=2)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    assert LOG == ["running completed", "undo running"]
    assert [e.step for e in caught.value.errors] == ["fails"]


def test_an_undo_asking_for_a_retry_is_tried_again(engine: Engine) -> None:
    """``undo`` may return ``:retry``: it is called again, and rollback goes on."""
    tries: list[int] = []

    def shy_undo(value: Any, _arguments: dict[str, Any]) -> Retry | None:
        tries.append(1)
        log(f"undo {value} try {len(tries)}")
        return Retry("locked") if len(tries) == 1 else None

    class Shy(Reactor):
        @step(undo=shy_undo, backoff=0)
        def booked() -> str:
            return "booked"

        @step(max_retries=0)
        def boom(booked: str) -> str:
            msg = "boom"
            raise RuntimeError(msg)

    error = failed(engine, Shy)
    assert LOG == ["undo booked try 1", "undo booked try 2"]
    assert [e.step for e in error.errors] == ["boom"], "an undo that succeeded is no error"


def test_an_undo_that_raises_is_collected_and_rollback_goes_on(engine: Engine) -> None:
    """Undo errors are collected; the steps completed before are still undone."""

    def bad_undo(value: Any, _arguments: dict[str, Any]) -> None:
        log(f"bad undo {value}")
        msg = "cannot undo"
        raise RuntimeError(msg)

    class Messy(Reactor):
        @step(undo=_undo)
        def one() -> str:
            return "one"

        @step(undo=bad_undo, max_retries=0)
        def two(one: str) -> str:
            return "two"

        @step(max_retries=0)
        def three(two: str) -> str:
            msg = "three fails"
            raise RuntimeError(msg)

    error = failed(engine, Messy)
    assert LOG[0] == "bad undo two"
    assert LOG[-1] == "undo one"
    steps = [e.step for e in error.errors]
    assert steps[0] == "three"
    assert "two" in steps[1:]


class _SeesRetry(Middleware):
    """Sets ``RETRY_WAITING`` once ``patient`` is waiting for its retry."""

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        if event.kind is StepEventKind.RETRY and event.step == "patient":
            RETRY_WAITING.set()


RETRY_WAITING = threading.Event()


def test_a_step_waiting_for_its_retry_is_not_retried_once_the_run_fails(engine: Engine) -> None:
    """A failure stops the reactor: a pending retry is dropped, and nothing waits for it."""
    RETRY_WAITING.clear()

    class Pending(Reactor):
        @step(max_retries=5, backoff=3600, undo=_undo)
        def patient(ctx: StepContext) -> Any:
            log(f"patient {ctx.attempt}")
            return Retry("later")

        @step(max_retries=0)
        def fails() -> str:
            assert RETRY_WAITING.wait(WAIT)
            msg = "fails"
            raise RuntimeError(msg)

    handle = engine.start(Pending, middleware=[_SeesRetry()], max_concurrency=2)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    assert LOG == ["patient 1"]
    assert [e.step for e in caught.value.errors] == ["fails"]


def test_steps_that_did_not_run_their_work_are_not_undone(engine: Engine) -> None:
    """A step whose guard gave its result, or whose where skipped it, has nothing to undo."""

    class Partly(Reactor):
        @step(undo=_undo, guard=lambda args: Shortcut("cached"))
        def guarded() -> str:
            return "guarded"

        @step(undo=_undo, where=lambda args: False)
        def skipped() -> str:
            return "skipped"

        @step(undo=_undo)
        def ran(guarded: str) -> str:
            return "ran"

        @step(max_retries=0)
        def fails(ran: str) -> str:
            msg = "fails"
            raise RuntimeError(msg)

    failed(engine, Partly)
    assert LOG == ["undo ran"]


# -- halting and resuming -----------------------------------------------------------------------


GATE_OPEN = threading.Event()


class _Gated(Reactor):
    """``gate`` halts until ``GATE_OPEN``; ``prepare`` is run once however often it resumes."""

    @step(undo=_undo)
    def prepare() -> str:
        log("prepare")
        return "prepared"

    @step
    def gate(prepare: str) -> str | Halt:
        log("gate")
        return f"{prepare} and passed" if GATE_OPEN.is_set() else Halt("gate closed")


def test_a_halted_run_resumes_more_than_once_without_rerunning_completed_steps(
    engine: Engine,
) -> None:
    """``{:halt, reason}`` pauses; the halted run may be resumed (and halt again).

    A halt is no failure: nothing is undone.
    """
    GATE_OPEN.clear()
    handle = engine.start(_Gated)
    with pytest.raises(RunHaltedError) as caught:
        handle.result(WAIT)
    assert (caught.value.step, caught.value.reason) == ("gate", "gate closed")
    with pytest.raises(RunHaltedError):
        engine.resume(handle.run_id).result(WAIT)
    GATE_OPEN.set()
    assert engine.resume(handle.run_id).result(WAIT) == "prepared and passed"
    assert LOG == ["prepare", "gate", "gate", "gate"]


class _SeesHalt(Middleware):
    """Sets ``HALTED`` once ``gate`` halted the run."""

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        if event.kind is StepEventKind.HALT and event.step == "gate":
            HALTED.set()


HALTED = threading.Event()


class _HaltWhileRunning(Reactor, returns="done"):
    """``gate`` halts while ``busy`` runs; ``waiting`` has no slot until then (limit 2)."""

    @step
    def busy() -> str:
        log("busy started")
        assert HALTED.wait(WAIT) or GATE_OPEN.is_set()
        log("busy completed")
        return "busy"

    @step
    def gate() -> str | Halt:
        log("gate")
        return "open" if GATE_OPEN.is_set() else Halt("not yet")

    @step
    def waiting() -> str:
        log("waiting")
        return "waiting"

    @step
    def done(busy: str, gate: str, waiting: str) -> str:
        return f"{busy} {gate} {waiting}"


def test_a_halt_lets_running_steps_finish_and_keep_their_results(engine: Engine) -> None:
    """On halt nothing new starts; running steps finish and are not run again on resume."""
    GATE_OPEN.clear()
    HALTED.clear()
    handle = engine.start(_HaltWhileRunning, max_concurrency=2, middleware=[_SeesHalt()])
    with pytest.raises(RunHaltedError):
        handle.result(WAIT)
    assert sorted(LOG) == ["busy completed", "busy started", "gate"]
    LOG.clear()
    GATE_OPEN.set()
    assert engine.resume(handle.run_id).result(WAIT) == "busy open waiting"
    assert sorted(LOG) == ["gate", "waiting"]


class _ChildGate(Reactor):
    """A composed reactor: ``inner_prepare`` once, then ``inner_gate`` halts until opened."""

    @step
    def inner_prepare() -> str:
        log("inner_prepare")
        return "inner"

    @step
    def inner_gate(inner_prepare: str) -> str | Halt:
        log("inner_gate")
        return f"{inner_prepare} open" if GATE_OPEN.is_set() else Halt("inner gate closed")


class _ParentOfGate(Reactor, returns="after"):
    @step
    def before() -> str:
        log("before")
        return "before"

    child = compose(_ChildGate)

    @step
    def after(before: str, child: str) -> str:
        return f"{before}, {child}"


def test_a_halt_in_a_composed_reactor_halts_the_parent_and_resumes_inside_it(
    engine: Engine,
) -> None:
    """A composed reactor is one step: its halt halts the parent, whose resume goes on in it."""
    GATE_OPEN.clear()
    handle = engine.start(_ParentOfGate)
    with pytest.raises(RunHaltedError) as caught:
        handle.result(WAIT)
    assert caught.value.step == "child"
    assert "inner gate closed" in caught.value.reason
    GATE_OPEN.set()
    assert engine.resume(handle.run_id).result(WAIT) == "before, inner open"
    assert LOG == ["before", "inner_prepare", "inner_gate", "inner_gate"]


# -- where, guard -------------------------------------------------------------------------------


def test_where_runs_the_step_only_if_the_predicate_is_truthy(engine: Engine) -> None:
    """``where`` takes any truthy value (a non-empty list, say), not only True."""

    class Truthy(Reactor, returns="maybe"):
        items = Input(list[int])

        @step(where=lambda args: args["items"])
        def maybe(items: list[int]) -> int:
            log("maybe")
            return sum(items)

    assert engine.run(Truthy, {"items": [1, 2]}, timeout=WAIT) == 3
    assert engine.run(Truthy, {"items": []}, timeout=WAIT) is None
    assert LOG == ["maybe"]


def test_a_guard_halt_result_replaces_the_steps_result_for_its_dependents(
    engine: Engine,
) -> None:
    """``{:halt, result}`` from a guard replaces the step's result (the cache example)."""
    cache = {"a.txt": "cached contents"}

    class Cached(Reactor, returns="shout"):
        path = Input(str)

        @step(
            guard=lambda args, ctx: Shortcut(cache[args["path"]]) if args["path"] in cache else None
        )
        def read(path: str) -> str:
            log(f"read {path}")
            return f"contents of {path}"

        @step
        def shout(read: str) -> str:
            return read.upper()

    assert engine.run(Cached, {"path": "a.txt"}, timeout=WAIT) == "CACHED CONTENTS"
    assert engine.run(Cached, {"path": "b.txt"}, timeout=WAIT) == "CONTENTS OF B.TXT"
    assert LOG == ["read b.txt"]


# -- collect, template --------------------------------------------------------------------------


def test_collect_returns_its_arguments_as_a_map_and_template_renders_them(
    engine: Engine,
) -> None:
    """``collect`` is its arguments as a map; ``template`` renders a string from them."""

    class Report(Reactor, returns="both"):
        name = Input(str)

        @step
        def count() -> int:
            return 3

        gathered = collect(who=ref("name"), n=ref("count"), fixed=value("x"))
        line = template("{name} has {count} items")

        @step
        def both(gathered: dict[str, Any], line: str) -> tuple[dict[str, Any], str]:
            return gathered, line

    gathered, line = engine.run(Report, {"name": "ada"}, timeout=WAIT)
    assert gathered == {"who": "ada", "n": 3, "fixed": "x"}
    assert line == "ada has 3 items"


# -- group: setup and teardown around a set of steps --------------------------------------------


class _Inner(Reactor):
    word = Input(str)

    @step
    def shout(word: str) -> str:
        log("steps")
        return word.upper()


def test_group_runs_before_then_the_steps_then_after_and_their_returns_are_ignored(
    engine: Engine,
) -> None:
    """``before_all``/``after_all`` wrap the steps; their return values change nothing.

    Unlike Ash's (the README says so: ``around`` rewrites arguments and results here).
    """

    def before(args: dict[str, Any]) -> dict[str, Any]:
        log(f"before {args['word']}")
        return {"word": "replaced"}

    def after(args: dict[str, Any], result: Any) -> str:
        log(f"after {result}")
        return "replaced result"

    class Grouped(Reactor):
        word = Input(str)
        wrapped = group(_Inner, before=before, after=after)

    assert engine.run(Grouped, {"word": "hi"}, timeout=WAIT) == "HI"
    assert LOG == ["before hi", "steps", "after HI"]


# -- errors for invalid reactors, at definition time --------------------------------------------


def test_a_reactor_with_a_cycle_is_refused_when_defined() -> None:
    """Cycles are rejected at plan time, before anything runs."""
    with pytest.raises(DefinitionError, match="cycle"):

        class Loop(Reactor):
            @step
            def a(b: int) -> int:
                return b

            @step
            def b(a: int) -> int:
                return a


def test_a_return_naming_no_step_is_refused_when_defined() -> None:
    """``return`` must name a step of the reactor."""
    with pytest.raises(DefinitionError, match="nowhere"):

        class Lost(Reactor, returns="nowhere"):
            @step
            def here() -> int:
                return 1


# -- async steps: a crash fails only the step ---------------------------------------------------


def test_an_async_step_that_crashes_fails_its_step_and_rolls_back(engine: Engine) -> None:
    """Async steps are supervised: a crash is the step's error, the engine goes on."""

    class Crashy(Reactor):
        @step(undo=_undo)
        async def before() -> str:
            return "before"

        @step(max_retries=0)
        async def crash(before: str) -> str:
            await asyncio.sleep(0)
            msg = "crashed"
            raise RuntimeError(msg)

    error = failed(engine, Crashy)
    assert LOG == ["undo before"]
    assert error.errors[0].step == "crash"
    assert error.errors[0].message == "crashed"

    class Fine(Reactor):
        @step
        async def ok() -> str:
            return "ok"

    assert engine.run(Fine, timeout=WAIT) == "ok"
