"""A step kind registered from outside the packages runs like a built-in one.

The kind here (``test_fetch``) reads a value from a table; it is registered at import,
definition and executor together, as a user's module would. The tests run it through a
real Engine: retries apply to it, a step of it added while running is journaled in its
own form and replayed on resume, and a kind without an executor, or an executor that
raises, fails its step instead of the run's actor.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import reactor.kinds
from actors import System
from dsl import Halt, Input, Reactor, Source, StepDef, WithSteps, ref, step
from dsl.kinds import Binder, CommonOptions, KindError, StepKind, kind_named, template_arguments
from dsl.kinds import register as register_definition
from dsl.kinds import unregister as unregister_definition
from reactor.app import Engine
from reactor.run import (
    Attempt,
    Cancellable,
    RunFailedError,
    RunHaltedError,
    StepCompleted,
    StepExecutor,
    StepsAdded,
    executor_for,
    register_executor,
)

WAIT = 10.0
TABLE = {"a": 20, "b": 1}
CALLS: list[str] = []
LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class FetchImpl:
    """Read ``key`` (a template) from ``TABLE``; ``flaky`` fails the first read."""

    key: str
    flaky: bool = False


class FetchKind(StepKind[FetchImpl]):
    name = "test_fetch"
    impl = FetchImpl
    options = CommonOptions

    def bind(
        self, impl: FetchImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[FetchImpl, dict[str, Source]]:
        return impl, template_arguments(binder, [impl.key], sources)

    def result_type(self, impl: FetchImpl) -> Any:
        return int

    def describe(self, impl: FetchImpl) -> dict[str, Any]:
        return {"fetch": {"key": impl.key, "flaky": impl.flaky}}

    def rebuild(self, data: Mapping[str, Any]) -> FetchImpl:
        return FetchImpl(**data["fetch"])


class FetchExecutor(StepExecutor):
    async def _read(self, key: str, fail: bool) -> int:
        if fail:
            msg = "the table is warming up"
            raise ConnectionError(msg)
        return TABLE[key]

    def start(self, attempt: Attempt[FetchImpl]) -> Cancellable:
        key = attempt.impl.key.format_map(attempt.arguments)
        with LOCK:
            CALLS.append(key)
        return attempt.run(self._read(key, attempt.impl.flaky and attempt.number == 1))


reactor.kinds.register(FetchKind(), FetchExecutor())


def fetch(key: str, /, *, flaky: bool = False, **options: Any) -> Any:
    return StepDef(impl=FetchImpl(key, flaky), options=options)


class Fetching(Reactor):
    k = Input(str)
    got = fetch("{k}", flaky=True, max_retries=1, backoff=0)

    @step
    def doubled(got: int) -> int:
        return got * 2


def gate(looked: int, flag: str) -> int | Halt:
    """Halts until ``flag`` exists; then doubles what the added fetch step read."""
    if not Path(flag).exists():
        return Halt("waiting for the flag")
    return looked * 2


class GrowsFetch(Reactor):
    flag = Input(str)

    @step
    def seed() -> WithSteps:
        looked = StepDef(FetchImpl("a"), name="looked")
        gated = step(gate, name="gate", args={"looked": ref("looked"), "flag": ref("flag")})
        return WithSteps("seeded", [looked, gated])


@pytest.fixture(autouse=True)
def _reset_calls() -> Iterator[None]:
    CALLS.clear()
    yield
    CALLS.clear()


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


def test_a_custom_kind_runs_with_the_common_options(engine: Engine) -> None:
    """The kind's executor runs its steps; a transient failure is retried per max_retries."""
    handle = engine.start(Fetching, {"k": "a"})
    assert handle.result(WAIT) == 40
    assert CALLS == ["a", "a"]
    completed = {e.step: bytes(e.value) for e in engine.history(handle.run_id)
                 if isinstance(e, StepCompleted)}  # fmt: skip
    assert completed == {"got": b"20", "doubled": b"40"}


def test_a_dynamic_step_of_a_custom_kind_journals_and_replays(
    engine: Engine, tmp_path: Path
) -> None:
    """A step of the kind added while running is journaled in its form and replayed on resume."""
    flag = tmp_path / "flag"
    handle = engine.start(GrowsFetch, {"flag": str(flag)})
    with pytest.raises(RunHaltedError):
        handle.result(WAIT)
    assert CALLS == ["a"]
    added = [e for e in engine.history(handle.run_id) if isinstance(e, StepsAdded)]
    assert len(added) == 1
    looked = added[0].steps[0]
    assert (looked["name"], looked["kind"]) == ("looked", "test_fetch")
    assert looked["fetch"] == {"key": "a", "flaky": False}

    flag.touch()
    assert engine.resume(handle.run_id).result(WAIT) == "seeded"
    assert CALLS == ["a"]  # replayed from the journal, not read again
    completed = {e.step: bytes(e.value) for e in engine.history(handle.run_id)
                 if isinstance(e, StepCompleted)}  # fmt: skip
    assert completed["gate"] == b"40"


def test_a_second_executor_for_a_kind_is_a_clear_error() -> None:
    """Another executor class for a kind that has one is refused, naming the first."""

    class Other(StepExecutor):
        def start(self, attempt: Attempt[Any]) -> None:
            attempt.succeed(None)

    with pytest.raises(KindError, match="'test_fetch' already has an executor"):
        register_executor("test_fetch", Other())
    assert isinstance(executor_for("test_fetch"), FetchExecutor)


def test_registering_a_taken_name_registers_neither_half() -> None:
    """reactor.kinds.register with a taken name fails and leaves the registries as they were."""

    class Clash(FetchKind):
        name = "function"

    with pytest.raises(KindError, match="a step kind named 'function' is already registered"):
        reactor.kinds.register(Clash(), FetchExecutor())
    assert kind_named("function").name == "function"
    assert type(executor_for("function")).__name__ == "FunctionExecutor"


@dataclass(frozen=True, slots=True)
class SilentImpl:
    """A kind registered without an executor, or with a faulty one."""


class SilentKind(StepKind[SilentImpl]):
    name = "test_silent"
    impl = SilentImpl

    def bind(
        self, impl: SilentImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[SilentImpl, dict[str, Source]]:
        return impl, {}


@pytest.fixture
def silent() -> Iterator[None]:
    register_definition(SilentKind())
    yield
    reactor.kinds.unregister("test_silent")
    unregister_definition("test_silent")


def test_a_kind_without_an_executor_fails_its_step(engine: Engine, silent: None) -> None:
    """A registered definition with no executor fails the step, saying what to import."""

    class Quiet(Reactor):
        hush = StepDef(SilentImpl())

    with pytest.raises(RunFailedError) as caught:
        engine.run(Quiet, timeout=WAIT)
    error = caught.value.errors[0]
    assert (error.step, error.kind, error.error) == ("hush", "internal", "KindError")
    assert "no executor for the step kind 'test_silent'" in error.message


def test_an_executor_that_raises_fails_its_step_not_the_run(engine: Engine, silent: None) -> None:
    """An exception from an executor's start is the attempt's error; the run ends normally."""

    class Broken(StepExecutor):
        def start(self, attempt: Attempt[Any]) -> None:
            msg = "the executor is broken"
            raise RuntimeError(msg)

    register_executor("test_silent", Broken())

    class Quiet(Reactor):
        hush = StepDef(SilentImpl(), options={})

    with pytest.raises(RunFailedError) as caught:
        engine.run(Quiet, timeout=WAIT)
    error = caught.value.errors[0]
    assert (error.step, error.error, error.message) == (
        "hush",
        "RuntimeError",
        "the executor is broken",
    )
