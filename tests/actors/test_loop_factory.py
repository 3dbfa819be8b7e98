"""``System(loop_factory=...)``: the I/O loop is the one the factory makes (uvloop's here)."""

from __future__ import annotations

import asyncio

import pytest

from actors import ChildSpec, System
from tests.support.actors import Echo, Ping


def test_the_io_loop_comes_from_the_factory() -> None:
    """Actors' asks and I/O run on the factory's loop; the default is asyncio's."""
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed")
    with System(ChildSpec(name="echo", actor=Echo), loop_factory=uvloop.new_event_loop) as system:
        assert isinstance(system.bridge.loop, uvloop.Loop)
        assert system.lookup("echo").ask(Ping(n=1)).n == 2

        async def on_the_loop() -> int:
            answer = await system.lookup("echo").ask_async(Ping(n=4))
            return int(answer.n)

        assert system.bridge.run(on_the_loop()) == 5
    with System(name="plain") as system:
        assert type(system.bridge.loop).__module__.startswith("asyncio.")
        assert not isinstance(system.bridge.loop, uvloop.Loop)
        assert isinstance(system.bridge.loop, asyncio.AbstractEventLoop)
