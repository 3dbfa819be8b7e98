"""The run context (``Engine.start(context=...)``) and per-argument transforms at run time.

The context is read by steps (``StepContext.context``), ``where`` and ``guard`` (their
``context`` parameter) and middleware (``RunInfo.context``); it is journaled with
``RunStarted``, so a resumed run has it again, and composed runs share it. A
``ref(..., transform=fn)`` gives the step ``fn(value)``; a transform that raises fails
the step, naming the argument. A step's ``transform=fn`` option replaces its whole
argument map (``where``, ``guard`` and ``undo`` see the result too), and
``collect(transform=fn)`` makes its result ``fn(the dict)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from actors import System
from dsl import DefinitionError, Input, Reactor, Shortcut, StepContext, collect, ref, step, value
from reactor.app import Engine
from reactor.run import (
    EncodeError,
    Middleware,
    RunFailedError,
    RunHaltedError,
    RunInfo,
    RunStarted,
    StepStarted,
)
from tests.support.acceptance import WithContext

WAIT = 10.0


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine journaling into a fresh database, without log lines."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


class Seen(Middleware):
    """Records the context each run started with."""

    def __init__(self) -> None:
        self.contexts: list[tuple[str, Mapping[str, Any]]] = []

    def run_started(self, run: RunInfo) -> None:
        self.contexts.append((run.reactor, dict(run.context)))


# -- the run context -----------------------------------------------------------------------------


def test_steps_predicates_and_middleware_read_the_context(engine: Engine) -> None:
    """A step, a where, a guard and a middleware all see the context given to start()."""
    seen = Seen()

    class Tenanted(Reactor):
        x = Input(int)

        @step
        def who(x: int, ctx: StepContext) -> str:
            return f"{ctx.context['tenant']} {x}"

        @step(where=lambda arguments, context: context["tenant"] == "other")
        def skipped(who: str) -> str:
            return "never"

        @step(guard=lambda arguments, *, context: Shortcut(f"cached for {context['tenant']}"))
        def cached(who: str) -> str:
            return "never"

        @step
        def report(who: str, cached: str) -> str:
            return f"{who} / {cached}"

    handle = engine.start(Tenanted, {"x": 1}, context={"tenant": "acme"}, middleware=[seen])
    assert handle.result(WAIT) == "acme 1 / cached for acme"
    assert seen.contexts == [("Tenanted", {"tenant": "acme"})]
    events = engine.history(handle.run_id)
    started = events[0]
    assert isinstance(started, RunStarted)
    assert started.context == {"tenant": "acme"}
    assert "skipped" not in [e.step for e in events if isinstance(e, StepStarted)]


def test_a_run_without_a_context_has_an_empty_one(engine: Engine) -> None:
    """No context given: steps see an empty mapping."""

    class Plain(Reactor):
        @step
        def look(ctx: StepContext) -> dict[str, Any]:
            return dict(ctx.context)

    assert engine.run(Plain) == {}


def test_the_context_is_read_only_and_json_like_from_the_first_run_on(engine: Engine) -> None:
    """Steps get the context as JSON values (as a resumed run would) and cannot change it."""
    problems: list[str] = []

    class Mutating(Reactor):
        @step
        def look(ctx: StepContext) -> Any:
            try:
                ctx.context["ids"] = []  # type: ignore[index]
            except TypeError as exc:
                problems.append(type(exc).__name__)
            return ctx.context["ids"]

    assert engine.run(Mutating, context={"ids": (1, 2)}) == [1, 2]
    assert problems == ["TypeError"]


def test_a_context_that_cannot_be_journaled_is_refused_before_the_run_starts(
    engine: Engine,
) -> None:
    """A context value JSON cannot carry raises EncodeError from start(); no run exists."""

    class Any1(Reactor):
        @step
        def one() -> int:
            return 1

    with pytest.raises(EncodeError, match="context cannot be journaled"):
        engine.start(Any1, context={"lock": object()})
    with pytest.raises(EncodeError, match="must be a mapping"):
        engine.start(Any1, context=["not", "a", "mapping"])  # type: ignore[arg-type]
    assert engine.runs() == []


def test_composed_runs_share_the_context_and_a_resumed_run_has_it_again(
    engine: Engine, tmp_path: Path
) -> None:
    """The child run reads the parent's context; after a halt, resume restores it."""
    flag = tmp_path / "flag"
    seen = Seen()
    handle = engine.start(
        WithContext,
        {"flag": str(flag)},
        context={"tenant": "acme", "ids": [1, 2]},
        middleware=[seen],
    )
    with pytest.raises(RunHaltedError):
        handle.result(WAIT)
    [child] = [r for r in engine.runs(include_children=True) if r.parent == handle.run_id]
    child_started = engine.history(child.run_id)[0]
    assert isinstance(child_started, RunStarted)
    assert child_started.context == {"tenant": "acme", "ids": [1, 2]}
    flag.touch()
    assert engine.resume(handle.run_id, middleware=[seen]).result(WAIT) == "acme:acme [1, 2]"
    assert seen.contexts[-1] == ("WithContext", {"tenant": "acme", "ids": [1, 2]})


async def test_run_async_takes_a_context(engine: Engine) -> None:
    """The asyncio entry points pass the context on too."""

    class Async(Reactor):
        @step
        async def look(ctx: StepContext) -> str:
            return str(ctx.context["who"])

    assert await engine.run_async(Async, context={"who": "ada"}) == "ada"


# -- per-argument transforms -------------------------------------------------------------------


def test_transforms_apply_to_step_results_and_inputs(engine: Engine) -> None:
    """ref(..., transform=fn) gives the step fn(value), after the sub-path."""

    def ordered(tags: list[str]) -> list[str]:
        return sorted(tags)

    class Shaped(Reactor):
        name = Input(str)

        @step
        def source(name: str) -> dict[str, Any]:
            return {"tags": ["b", "a"], "name": name}

        @step
        def render(
            tags: Sequence[str] = ref("source", "tags", transform=ordered),
            who: str = ref("name", transform=str.title),
            bump: int = value(1),
        ) -> str:
            return f"{who}: {','.join(tags)} {bump}"

    assert engine.run(Shaped, {"name": "ada lovelace"}) == "Ada Lovelace: a,b 1"


def test_a_transform_that_raises_fails_the_step_naming_the_argument(engine: Engine) -> None:
    """The step fails for good (no attempt runs), and the error names argument and transform."""
    ran: list[str] = []

    def as_int(text: str) -> int:
        return int(text)

    class Broken(Reactor):
        raw = Input(str)

        @step
        def parse(number: int = ref("raw", transform=as_int)) -> int:
            ran.append("parse")
            return number

    with pytest.raises(RunFailedError) as caught:
        engine.run(Broken, {"raw": "twelve"})
    error = caught.value.errors[0]
    assert (error.step, error.kind) == ("parse", "bad_argument")
    assert "argument 'number'" in error.message
    assert "as_int" in error.message
    assert "ValueError" in error.message
    assert ran == []
    events = engine.history(caught.value.run_id)
    assert [e for e in events if isinstance(e, StepStarted)] == []


# -- transforms of the whole argument map ---------------------------------------------------


def _scaled(arguments: dict[str, Any]) -> dict[str, Any]:
    return {**arguments, "a": arguments["a"] * 10}


def test_a_step_transform_replaces_its_arguments_for_where_guard_undo_and_the_step(
    engine: Engine,
) -> None:
    """The step, its where, its guard and its undo all get the transformed map."""
    seen: list[Any] = []

    class Scaled(Reactor, returns="total"):
        a = Input(int)
        b = Input(int)

        @step(
            transform=_scaled,
            where=lambda args: not seen.append(("where", args["a"])),  # type: ignore[func-returns-value]
            guard=lambda args: seen.append(("guard", args["a"])),
            undo=lambda v, args: seen.append(("undo", args["a"])),
        )
        def total(a: int, b: int) -> int:
            seen.append(("step", a))
            return a + b

        @step(max_retries=0)
        def later(total: int, b: int) -> int:
            if b < 0:
                msg = "negative"
                raise ValueError(msg)
            return total

    assert engine.run(Scaled, {"a": 2, "b": 3}) == 23
    assert seen == [("where", 20), ("guard", 20), ("step", 20)]
    seen.clear()
    with pytest.raises(RunFailedError, match="negative"):
        engine.run(Scaled, {"a": 2, "b": -1})
    assert seen == [("where", 20), ("guard", 20), ("step", 20), ("undo", 20)]


def test_a_step_transform_that_raises_or_renames_fails_the_step(engine: Engine) -> None:
    """Kind bad_argument, naming the transform; the step never starts."""

    def boom(arguments: dict[str, Any]) -> dict[str, Any]:
        msg = "no"
        raise RuntimeError(msg)

    class Raises(Reactor):
        a = Input(int)

        @step(transform=boom)
        def one(a: int) -> int:
            return a

    class Renames(Reactor):
        a = Input(int)

        @step(transform=lambda args: {"b": args["a"]})
        def one(a: int) -> int:
            return a

    with pytest.raises(RunFailedError) as caught:
        engine.run(Raises, {"a": 1})
    [error] = caught.value.errors
    assert (error.kind, error.message) == (
        "bad_argument",
        "its transform test_a_step_transform_that_raises_or_renames_fails_the_step.<locals>"
        ".boom() raised RuntimeError: no",
    )
    with pytest.raises(RunFailedError) as caught:
        engine.run(Renames, {"a": 1})
    [error] = caught.value.errors
    assert error.kind == "bad_argument"
    assert "returned the arguments without 'a' and with 'b', which it does not take" in (
        error.message
    )
    assert [e for e in engine.history(caught.value.run_id) if isinstance(e, StepStarted)] == []


def test_collect_transform_makes_its_result(engine: Engine) -> None:
    """collect(transform=fn): the result is fn(the arguments as a dict)."""

    class Summed(Reactor):
        a = Input(int)
        b = Input(int)
        both = collect(a=ref("a"), b=ref("b"), transform=lambda d: sorted(d.items()))

    assert engine.run(Summed, {"a": 2, "b": 1}) == [("a", 2), ("b", 1)]

    class Fails(Reactor):
        a = Input(int)
        both = collect(a=ref("a"), transform=lambda d: d["missing"])

    with pytest.raises(RunFailedError) as caught:
        engine.run(Fails, {"a": 2})
    [error] = caught.value.errors
    assert (error.step, error.error, error.message) == ("both", "KeyError", "'missing'")


def test_transforms_must_be_plain_functions() -> None:
    """Checked when the reactor is defined: async def or not a function is refused."""

    async def later(arguments: dict[str, Any]) -> dict[str, Any]:
        return arguments

    with pytest.raises(DefinitionError, match="option 'transform' must be a plain function"):

        class AsyncStep(Reactor):
            a = Input(int)

            @step(transform=later)  # type: ignore[arg-type]
            def one(a: int) -> int:
                return a

    with pytest.raises(DefinitionError, match="argument 'transform': transform must be a plain"):

        class AsyncCollect(Reactor):
            a = Input(int)
            both = collect(a=ref("a"), transform=later)

    with pytest.raises(DefinitionError, match="option 'transform' must be a function"):

        class NotAFunction(Reactor):
            a = Input(int)

            @step(transform=3)  # type: ignore[call-overload,untyped-decorator]
            def one(a: int) -> int:
                return a
