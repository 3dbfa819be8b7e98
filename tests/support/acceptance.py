"""Module-level reactors for the acceptance tests against Ash Reactor's semantics.

Resuming a run and ``Engine.undo`` load the reactor again by its locator, and steps
added while running are journaled as ``module:function`` strings, so these live at
module level. What they do is recorded in :data:`LOG` (reset by the tests).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from dsl import (
    Continue,
    Halt,
    Input,
    Reactor,
    Shortcut,
    StepContext,
    WithSteps,
    compose,
    for_each,
    ref,
    step,
    template,
    value,
)
from tests.support.flows import TALLY, double

LOG = TALLY
"""What the steps and hooks below did, in order (the executor tests' tally)."""

ELEMENT_0_STARTED = threading.Event()
"""Set once element 0 of :class:`FanParallel` completed its first step."""


def _undo_log(value: Any, arguments: dict[str, Any]) -> None:
    LOG.hit(f"undo {value}")


# -- a step rescued by compensate is undone like any completed step ------------------------


def _rescue(error: BaseException, arguments: dict[str, Any]) -> Continue:
    return Continue("substitute")


class Rescued(Reactor):
    """``fetch`` fails and is rescued; ``gate`` halts until ``flag`` exists; then a failure."""

    flag = Input(str)

    @step(compensate=_rescue, undo=_undo_log, max_retries=0)
    def fetch() -> str:
        LOG.hit("fetch")
        msg = "service down"
        raise ValueError(msg)

    @step
    def gate(fetch: str, flag: str) -> str | Halt:
        LOG.hit("gate")
        if not Path(flag).exists():
            return Halt("waiting for the flag")
        return fetch

    @step(max_retries=0)
    def explode(gate: str) -> str:
        msg = f"late failure after {gate}"
        raise RuntimeError(msg)


# -- for_each: a failing element ---------------------------------------------------------------


class Element(Reactor):
    """One element: fails for 3, and undoes itself otherwise."""

    n = Input(int)

    @step(undo=_undo_log, max_retries=0)
    def check(n: int) -> str:
        LOG.hit(f"check {n}")
        if n == 3:
            msg = f"bad {n}"
            raise ValueError(msg)
        return f"element {n}"


class Fan(Reactor):
    """Prepares (undoably), then checks each element, one at a time."""

    items = Input(list[int])

    @step(undo=_undo_log)
    def prep(items: list[int]) -> list[int]:
        return items

    fan = for_each(ref("prep"), Element, batch_size=1)


class ParallelElement(Reactor):
    """Element 0 completes a step then blocks; element 1 fails once element 0's step did."""

    n = Input(int)

    @step(undo=_undo_log)
    def first(n: int) -> str:
        if n == 0:
            ELEMENT_0_STARTED.set()
        return f"first {n}"

    @step(max_retries=0)
    async def second(first: str, n: int) -> str:
        if n == 0:
            await asyncio.Event().wait()  # until cancelled
        await asyncio.to_thread(ELEMENT_0_STARTED.wait, 10)
        LOG.hit(f"fail {n}")
        msg = f"element {n} gives up"
        raise ValueError(msg)


class FanParallel(Reactor):
    """Both elements at once: element 1 fails while element 0 is still running."""

    items = Input(list[int])

    @step(undo=_undo_log)
    def prep(items: list[int]) -> list[int]:
        return items

    fan = for_each(ref("prep"), ParallelElement)


# -- steps added while running ------------------------------------------------------------------


def gated(x: int, flag: str) -> int | Halt:
    """An added step that halts until ``flag`` exists."""
    LOG.hit(f"gated {x}")
    if not Path(flag).exists():
        return Halt("waiting for the flag")
    return x + 1


def halve(x: int) -> int:
    """A module-level argument transform."""
    return x // 2


class GrowsBackwards(Reactor):
    """Adds two steps, listed before the step they need."""

    n = Input(int)
    flag = Input(str)

    @step
    def seed(n: int) -> Any:
        return WithSteps(
            n,
            [
                step(double, name="second", args={"x": ref("first", transform=halve)}),
                step(gated, name="first", args={"x": ref("seed"), "flag": ref("flag")}),
            ],
        )


# -- a step that re-emits itself (Ash's loop) ----------------------------------------------------


def count_on(n: int, limit: int, flag: str) -> Any:
    """One iteration of a counter that re-emits itself until ``limit``.

    Its next iteration reads this one's result; at 3 it halts until ``flag`` exists
    (a flag of ``""`` never halts).
    """
    LOG.hit(f"count {n}")
    if n == 3 and flag and not Path(flag).exists():
        return Halt("waiting for the flag")
    if n >= limit:
        return n
    again = step(
        count_on,
        name="count",
        args={"n": ref("count", transform=_next), "limit": value(limit), "flag": value(flag)},
        undo=_undo_log,
    )
    return WithSteps(n, [again, step(double, name=f"side_{n}", args={"x": ref("count")})])


def _next(n: int) -> int:
    return n + 1


def _fail_after(count: int) -> int:
    LOG.hit(f"tail {count}")
    msg = "the tail fails"
    raise ValueError(msg)


class Counter(Reactor):
    """``count`` loops from ``start`` to ``limit``; ``done`` waits for its last iteration."""

    start = Input(int)
    limit = Input(int)
    flag = Input(str, default="")

    @step(undo=_undo_log)
    def count(start: int, limit: int, flag: str) -> Any:
        return count_on(start, limit, flag)

    @step
    def done(count: int) -> str:
        LOG.hit(f"done {count}")
        return f"reached {count}"


def _undo_count(value: Any, arguments: dict[str, Any]) -> None:
    LOG.hit(f"undo {value} (n={arguments.get('n', arguments.get('start'))})")


def count_alone(n: int, limit: int) -> Any:
    """:func:`count_on` without the steps beside it (each iteration has an undo)."""
    LOG.hit(f"count {n}")
    if n >= limit:
        return n
    again = step(
        count_alone, name="count", args={"n": ref("count", transform=_next)}, undo=_undo_count
    )
    return WithSteps(n, [again])


class LoneCounter(Reactor):
    """Only a loop, every iteration undoable (it says what it ran with)."""

    start = Input(int)
    limit = Input(int)

    @step(undo=_undo_count)
    def count(start: int, limit: int) -> Any:
        return count_alone(start, limit)


class CounterThenFails(Reactor):
    """A loop as in :class:`Counter`, then a step that fails: the loop is undone once."""

    start = Input(int)
    limit = Input(int)

    @step(undo=_undo_log)
    def count(start: int, limit: int) -> Any:
        return count_on(start, limit, "")

    @step(max_retries=0)
    def tail(count: int) -> int:
        return _fail_after(count)


# -- the run context ----------------------------------------------------------------------------


class Tenant(Reactor):
    """A composed reactor that reads the run's context."""

    word = Input(str)

    @step
    def tag(word: str, ctx: StepContext) -> str:
        return f"{ctx.context['tenant']}:{word}"


class WithContext(Reactor):
    """Reads the context in a step, a where, a composed run; halts until ``flag`` exists."""

    flag = Input(str)

    @step(where=lambda arguments, context: context.get("tenant") != "nobody")
    def read(ctx: StepContext) -> str:
        return str(ctx.context["tenant"])

    tagged = compose(Tenant, word=ref("read"))

    @step
    def wait(tagged: str, flag: str, ctx: StepContext) -> str | Halt:
        if not Path(flag).exists():
            return Halt("waiting for the flag")
        return f"{tagged} {ctx.context['ids']}"


class ContextEcho(Reactor):
    """Returns the run's context."""

    @step
    def echo(ctx: StepContext) -> dict[str, Any]:
        return dict(ctx.context)


# -- Engine.undo --------------------------------------------------------------------------------


class Booking(Reactor):
    """A composed run that can be undone."""

    seat = Input(str)

    @step(undo=_undo_log)
    def book(seat: str) -> str:
        return f"booked {seat}"


class Trip(Reactor):
    """Every completed step can be rolled back: an undo, a guard, a template, a child run."""

    who = Input(str)

    @step(undo=_undo_log)
    def reserve(who: str) -> str:
        return f"seat for {who}"

    @step(guard=lambda arguments: _cached())
    def cached(reserve: str) -> str:
        msg = "the guard answers for this step"
        raise AssertionError(msg)

    booking = compose(Booking, seat=ref("reserve"))
    note = template("{booking} ({cached})")

    @step(undo=_undo_log)
    def pay(note: str) -> str:
        return f"paid {note}"


def _cached() -> Any:
    return Shortcut("cached")


class Forgetful(Reactor):
    """``plain`` has no undo: a completed run cannot be undone."""

    @step(undo=_undo_log)
    def first() -> str:
        return "first"

    @step
    def plain(first: str) -> str:
        return f"{first} then plain"


class PlainChild(Reactor):
    """A composed run whose step has no undo."""

    x = Input(int)

    @step
    def bump(x: int) -> int:
        return x + 1


class ForgetfulParent(Reactor):
    """Its own steps can be undone; its composed run's cannot."""

    @step(undo=_undo_log)
    def start() -> int:
        return 1

    child = compose(PlainChild, x=ref("start"))


def _undo_fails(value: Any, arguments: dict[str, Any]) -> None:
    LOG.hit(f"undo fails {value}")
    msg = "cannot release"
    raise RuntimeError(msg)


class StuckUndo(Reactor):
    """Its second step's undo keeps failing; the first's succeeds."""

    @step(undo=_undo_log)
    def one() -> str:
        return "one"

    @step(undo=_undo_fails, max_retries=0)
    def two(one: str) -> str:
        return f"{one} two"
