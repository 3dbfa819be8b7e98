"""Choosing where step work runs, without Ray: the option, the order, the interface.

A step's ``placement`` option and its reactor's ``placement`` keyword are checked when
the class is defined; the engine's ``placements`` win over them; a placement of one's
own gets each call with its step, attempt and resources; Ray asked for without Ray
installed is an error naming the extra.
"""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from actors import System
from actors.llm import load_config
from dsl import DefinitionError, Input, Placement, Reactor, StepContext, ask, step
from dsl.kinds import describe_steps, rebuild_steps
from reactor.app import Engine
from reactor.placement import (
    PlacedCall,
    Placements,
    RayNotInstalledError,
    StepPlacement,
)
from reactor.run import Err, Ok, Outcome, RunFailedError

WAIT = 10.0


def test_placement_values_are_checked() -> None:
    """Names, resources and pools are checked, each error naming what is wrong."""
    assert Placement() == Placement("ray")
    assert Placement("ray", num_cpus=0.5, num_gpus=1, memory=2**30, resources={"x": 1}).needs()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"where": "local", "num_cpus": 1}, "'local' takes no resources"),
        ({"num_gpus": -1}, "num_gpus must be a number >= 0"),
        ({"memory": 1.5}, "memory must be an int >= 0"),
        ({"actors": True}, "actors must be an int >= 0"),
        ({"resources": {"": 1}}, "resource name must be a string"),
        ({"resources": {"x": "one"}}, r"resources\['x'\] must be a number"),
        ({"where": "no such"}, "placement where must be"),
    ]
    for bad, words in cases:
        with pytest.raises(ValueError, match=words):
            Placement(**bad)


def test_the_option_and_the_keyword_are_checked_at_definition() -> None:
    """A wrong placement is a DefinitionError naming the reactor (and step)."""
    with pytest.raises(DefinitionError, match=r"reactor 'Bad', step 'a'.*option 'placement'"):

        class Bad(Reactor):
            @step(placement=3)  # type: ignore[call-overload,untyped-decorator]
            def a() -> int:
                return 1

    with pytest.raises(DefinitionError, match=r"reactor 'BadKeyword'.*placement"):

        class BadKeyword(Reactor, placement=Placement):  # type: ignore[arg-type]
            @step
            def a() -> int:
                return 1

    with pytest.raises(DefinitionError, match="'placement' does not apply"):

        class OnAsk(Reactor):
            a = ask("hi", placement="ray")  # type: ignore[call-arg]


def test_the_reactor_keyword_places_the_steps_that_do_not_say() -> None:
    """The keyword is each step's default; a step's own placement wins."""

    class Keyword(Reactor, placement=Placement("ray", num_cpus=2)):
        x = Input(int)

        @step
        def a(x: int) -> int:
            return x

        @step(placement="local")
        def b(a: int) -> int:
            return a

    steps = Keyword.__plan__.steps
    assert steps["a"].placement == Placement("ray", num_cpus=2)
    assert steps["b"].placement == Placement("local")
    assert Keyword.__plan__.placement == Placement("ray", num_cpus=2)


def _placed_step() -> int:
    return 7


def test_a_placement_survives_the_journal() -> None:
    """A step added while running journals its placement and gets it back."""
    made = step(_placed_step, placement=Placement("ray", num_gpus=1, resources={"g": 1}))
    (described,) = describe_steps([made])
    rebuilt = rebuild_steps([described])
    definition = next(iter(rebuilt.values()))

    class Rebuilt(Reactor):
        placed = definition

    assert Rebuilt.__plan__.steps["placed"].placement == Placement(
        "ray", num_gpus=1, resources={"g": 1}
    )


def test_the_engine_wins_over_the_definition() -> None:
    """``Reactor.step`` beats ``Reactor``, which beats the step's own, which beats the default."""
    placements = Placements(
        "local",
        {"R.s": Placement("local"), "R": "mine", "Other.t": "local"},
        targets={"mine": _Recording()},
    )
    own = Placement("ray", num_gpus=1)
    assert placements.resolve("R", "s", own).where == "local"
    assert placements.resolve("R", "t", own).where == "mine"
    assert placements.resolve("Other", "u", own) == own
    assert placements.resolve("Other", "u", None) == Placement("local")


def test_bad_engine_placements_name_the_entry() -> None:
    """A wrong override names its key."""
    with pytest.raises(ValueError, match=r"placements\['R'\]"):
        Placements("local", {"R": 3})  # type: ignore[dict-item]


class _Recording:
    """A placement of our own: runs the call here, after noting what it got."""

    name = "mine"

    def __init__(self) -> None:
        self.calls: list[PlacedCall] = []
        self.closed = False

    def place(self, call: PlacedCall) -> Coroutine[Any, Any, Outcome]:
        self.calls.append(call)

        async def run() -> Outcome:
            try:
                if call.is_async:
                    return Ok(await call.fn(**call.kwargs))
                return Ok(call.fn(**call.kwargs))
            except Exception as exc:  # noqa: BLE001 - the step's failure
                return Err(exc)

        return run()

    def close(self) -> None:
        self.closed = True


def _doubled(x: int, ctx: StepContext) -> int:
    return x * 2 + ctx.attempt - 1


class Mine(Reactor, placement=Placement("mine", num_cpus=3)):
    """Placed on a placement of the test's own."""

    x = Input(int)
    doubled = step(_doubled, timeout=5)

    @step(placement="local")
    async def plus_one(doubled: int) -> int:
        return doubled + 1


def test_a_placement_of_ones_own_gets_each_call(system: System, tmp_path: Path) -> None:
    """The interface: the call, its step, attempt, timeout and resources; local stays local."""
    mine = _Recording()
    _: StepPlacement = mine
    with Engine(system, db_path=tmp_path / "j.db", placement_targets={"mine": mine}) as engine:
        assert engine.run(Mine, {"x": 4}, timeout=WAIT) == 9
    (call,) = mine.calls
    assert mine.closed
    assert (call.step, call.reactor, call.attempt, call.timeout) == ("doubled", "Mine", 1, 5.0)
    assert call.placement == Placement("mine", num_cpus=3)
    assert call.kwargs["x"] == 4
    assert call.result_type is int


def test_an_unknown_placement_fails_the_step(system: System, tmp_path: Path) -> None:
    """A name the engine does not have fails the step, listing the known ones."""
    with (
        Engine(system, db_path=tmp_path / "j.db") as engine,
        pytest.raises(RunFailedError, match=r"no placement named 'mine' \(known: local, ray\)"),
    ):
        engine.run(Mine, {"x": 1}, timeout=WAIT)


class OnRay(Reactor):
    """One step asks for Ray."""

    @step(placement="ray")
    def far() -> int:
        return 1


def test_ray_without_the_extra_is_a_clear_error(
    system: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without Ray: the engine's Ray placement, or a step's, names the extra to install."""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(RayNotInstalledError, match=r"engine's placement.*reactor-swarm\[ray\]"):
        Engine(system, db_path=tmp_path / "a.db", placement="ray")
    with Engine(system, db_path=tmp_path / "b.db") as engine, pytest.raises(RunFailedError) as e:
        engine.run(OnRay, {}, timeout=WAIT)
    (error,) = e.value.errors
    assert error.error == "RayNotInstalledError"
    assert "step 'far' of reactor 'OnRay'" in error.message
    assert "pip install 'reactor-swarm[ray]'" in error.message


def test_configuration_places_and_finds_the_cluster(tmp_path: Path) -> None:
    """``REACTOR_RAY__ADDRESS`` and ``REACTOR_PLACEMENT__*`` reach the engine's settings."""
    env = {
        "REACTOR_RAY__ADDRESS": "ray://10.0.0.5:10001",
        "REACTOR_PLACEMENT__DEFAULT": "local",
        "REACTOR_PLACEMENT__STEPS": '{"Mine": "local"}',
    }
    file = tmp_path / "reactor.toml"
    file.write_text('[ray]\nnamespace = "ours"\n')
    config = load_config(file, env=env)
    assert config.ray.namespace == "ours"
    assert config.ray.address == "ray://10.0.0.5:10001"
    assert config.placement.steps == {"Mine": "local"}
    assert Placements(config.placement.default, config.placement.steps).resolve(
        "Mine", "doubled", Placement("mine")
    ) == Placement("local")
