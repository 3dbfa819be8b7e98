"""Virtual actors: activated on first message from stored state, passivated when idle."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from actors import Message, Request, SupervisorSpec, System
from actors.lowlevel import Activations, VirtualActor


class VirtualCount(Message, frozen=True, kw_only=True):
    value: int


class VirtualAdd(Request[VirtualCount], frozen=True, kw_only=True):
    amount: int = 1


STORED: dict[str, int] = {}
GATE = threading.Event()


class Counter(VirtualActor[dict[str, int]]):
    """Its state is a number in STORED, written through on every change."""

    async def activate(self) -> dict[str, int]:
        await asyncio.to_thread(GATE.wait, 5.0)
        return {"n": STORED.get(self.key, 0)}

    def handle(self, message: Any) -> object:
        assert self.state is not None
        self.state["n"] += message.amount
        STORED[self.key] = self.state["n"]
        return VirtualCount(value=self.state["n"])


def activations(system: System, idle_s: float | None) -> Activations:
    supervisor: Any = system.spawn(SupervisorSpec(name="virtual", on_loop=True, max_restarts=100))
    return Activations(supervisor, Counter, prefix="counter:", idle_s=idle_s)


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_mail_waits_for_the_state_and_is_handled_in_order(system: System) -> None:
    """Asks sent while the state loads are answered after it, in the order they came."""
    STORED.clear()
    STORED["a"] = 10
    GATE.clear()
    counters = activations(system, idle_s=None)
    ref = counters.ref("a")
    answers: list[int] = []

    def ask(amount: int) -> None:
        answers.append(ref.ask(VirtualAdd(amount=amount)).value)

    first = threading.Thread(target=ask, args=(1,))
    first.start()
    target = ref._target
    assert target is not None
    actor = target._actor_weakref()
    assert isinstance(actor, Counter)
    wait_for(lambda: len(actor._stash) == 1)  # the ask waits while the state loads
    GATE.set()
    first.join()
    ask(5)
    assert answers == [11, 16]
    assert counters.activated == 1


def test_an_idle_actor_passivates_and_its_key_reactivates_it(system: System) -> None:
    """After ``idle_s`` it stops and frees its name; the next ask starts a new activation."""
    STORED.clear()
    GATE.set()
    counters = activations(system, idle_s=0.05)
    assert counters.ask("b", VirtualAdd()).value == 1
    wait_for(lambda: not counters.is_active("b"))
    assert counters.passivated == 1
    assert counters.ask("b", VirtualAdd(amount=2)).value == 3  # loaded from STORED
    assert counters.activated == 2


def test_a_stopped_activation_still_registered_is_replaced(system: System) -> None:
    """An activation that stopped before its name was released is replaced on the next ask."""
    STORED.clear()
    GATE.set()
    counters = activations(system, idle_s=None)
    old = counters.ref("c")
    assert old.ask(VirtualAdd()).value == 1
    target = old._target
    assert target is not None
    target.stop(block=True)
    assert not old.is_alive()
    assert counters.ask("c", VirtualAdd()).value == 2
    assert counters.activated == 2
