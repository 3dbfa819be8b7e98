"""An Engine in asyncio code: `async with Engine(...)`, run_async, and no blocking on the loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from actors import BlockingCallError, System
from actors.llm import Config, start_fleet_async
from actors.testing import fake_servers
from dsl import Input, Reactor, ask, step
from reactor import Engine


class Shout(Reactor, returns="loud"):
    """One model call with no model named (the engine's default), then a step."""

    word = Input(str)
    heard = ask("Repeat {word}")

    @step
    async def loud(heard: object) -> str:
        return str(getattr(heard, "content", "")).upper()


class Plain(Reactor, returns="twice"):
    word = Input(str)

    @step
    def twice(word: str) -> str:
        return word * 2


async def test_async_with_engine_runs_concurrent_runs(tmp_path: Path) -> None:
    """Constructed on the loop, opened by `async with`, many run_async calls at once."""
    async with System(name="svc") as system:
        fleet = await start_fleet_async(
            system, Config.model_validate({"discovery": {"enabled": False}}), fallback=fake_servers
        )
        try:
            async with Engine(system, fleet=fleet, db_path=tmp_path / "j.db") as engine:
                results = await asyncio.gather(
                    *(engine.run_async(Shout, {"word": f"w{i}"}) for i in range(8))
                )
                assert all(f"REPEAT W{i}" in r for i, r in enumerate(results))
                assert await engine.run_async(Plain, {"word": "ab"}) == "abab"
        finally:
            fleet.close()


async def test_engine_made_on_the_loop_opens_on_first_run_async(tmp_path: Path) -> None:
    """Engine(...) in a coroutine does not block; sync start() says how to open it."""
    async with System(name="svc2") as system:
        engine = Engine(system, db_path=tmp_path / "j.db")
        with pytest.raises(RuntimeError, match="async with Engine"):
            engine.start(Plain, {"word": "x"})
        with pytest.raises(BlockingCallError, match="open_async"):
            engine.open()
        assert await engine.run_async(Plain, {"word": "x"}) == "xx"
        engine.close()


def test_an_ask_without_a_model_on_an_unreachable_host_says_the_host_was_unreachable(
    system: System, tmp_path: Path
) -> None:
    """Not "no default model": the host that could not be asked, where, and why."""
    from actors.llm import start_fleet
    from reactor import RunFailedError

    config = Config.model_validate(
        {
            "hosts": {"gpu": {"url": "http://127.0.0.1:9", "protocol": "openai"}},
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
        }
    )
    fleet = start_fleet(system, config)
    with (
        Engine(system, fleet=fleet, db_path=tmp_path / "j.db") as engine,
        pytest.raises(RunFailedError) as caught,
    ):
        engine.run(Shout, {"word": "x"})
    (error,) = caught.value.errors
    assert "unreachable when the fleet started: gpu at http://127.0.0.1:9" in error.message
    assert "no default model" not in error.message


GATE: dict[str, threading.Event] = {}


class Gated(Reactor, returns="opened"):
    key = Input(str)

    @step
    def opened(key: str) -> str:  # in the worker pool, off every loop
        GATE[key].wait(30)
        return key


async def test_blocking_engine_calls_on_the_loop_raise_before_starting_anything(
    tmp_path: Path,
) -> None:
    """engine.run, handle.result and engine.undo on a loop raise at once, naming the async form."""
    async with System(name="svc3") as system, Engine(system, db_path=tmp_path / "j.db") as engine:
        with pytest.raises(BlockingCallError, match="run_async"):
            engine.run(Plain, {"word": "x"})
        GATE["g"] = threading.Event()
        handle = await engine.start_async(Gated, {"key": "g"})
        with pytest.raises(BlockingCallError, match="result_async"):
            handle.result()  # the run waits for the gate: this would freeze the loop
        GATE["g"].set()
        assert await handle.result_async() == "g"
        assert handle.result() == "g"  # ended: nothing to wait for, so allowed
        with pytest.raises(BlockingCallError, match="undo_async"):
            engine.undo(handle.run_id)
