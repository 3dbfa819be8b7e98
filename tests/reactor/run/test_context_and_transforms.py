"""The run context (``Engine.start(context=...)``) and per-argument transforms at run time.

The context is read by steps (``StepContext.context``), ``where`` and ``guard`` (their
``context`` parameter) and middleware (``RunInfo.context``); it is journaled with
``RunStarted``, so a resumed run has it again, and composed runs share it. A
``ref(..., transform=fn)`` gives the step ``fn(value)``; a transform that raises fails
the step, naming the argument.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from actors import System
from dsl import Input, Reactor, Shortcut, StepContext, ref, step, value
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
