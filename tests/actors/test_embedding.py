"""Embedding in an asyncio program: async entry points, and blocking calls refused at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from actors import BlockingCallError, System
from actors.llm import Config, start_fleet, start_fleet_async
from actors.testing import FakeServer
from tests.support.proc import run_python


def test_with_system_in_a_coroutine_raises_and_the_process_exits(tmp_path: Path) -> None:
    """`with System()` on a running loop raises BlockingCallError; nothing keeps the process."""
    script = tmp_path / "embed.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio
            from actors import BlockingCallError, System

            async def main():
                try:
                    with System():
                        print("entered")
                except BlockingCallError as exc:
                    print("refused:", exc)

            asyncio.run(main())
            print("exited")
            """
        )
    )
    result = run_python(str(script), timeout=30)  # a hang at exit fails with TimeoutExpired
    assert result.returncode == 0, result.stderr
    assert "entered" not in result.stdout
    assert "refused: System.start() (or `with System()`) would block" in result.stdout
    assert "`async with System()`" in result.stdout
    assert result.stdout.rstrip().endswith("exited")


async def test_async_with_system_spawns_and_stops_without_blocking_the_loop() -> None:
    """`async with System()` starts and stops off the loop; a sync stop() there is refused."""
    from tests.support.actors import Echo, Ping

    async with System(name="embedded") as system:
        ref = await system.spawn_async(Echo, name="echo")
        assert (await ref.ask_async(Ping(n=1))).n == 2
        with pytest.raises(BlockingCallError, match="stop_async"):
            system.stop()
        assert system.running  # the refused stop left it running, for stop_async
    assert not system.running


async def test_start_fleet_on_the_loop_is_refused_and_the_async_one_starts_hosts() -> None:
    """start_fleet raises at once on a loop; start_fleet_async starts hosts and inventories."""
    with FakeServer("ollama", models=["llama3.2"]) as server:
        config = Config.model_validate(
            {
                "hosts": {"local": {"url": server.url, "protocol": "ollama"}},
                "discovery": {"enabled": False},
            }
        )
        async with System(name="fleet") as system:
            with pytest.raises(BlockingCallError, match="start_fleet_async"):
                start_fleet(system, config)
            fleet = await start_fleet_async(system, config)
            assert set(fleet.hosts) == {"local"}
            assert fleet.models() == [("local", "llama3.2")]
            assert system.lookup("resources") is fleet.monitor
