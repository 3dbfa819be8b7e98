"""Request/reply, the I/O bridge, deadlines, crashes and dead letters."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from actors import (
    Actor,
    ActorNotFound,
    AskError,
    BlockingCallError,
    ChildSpec,
    DuplicateActorName,
    FailureKind,
    Ref,
    Restart,
    System,
    SystemNotRunning,
)
from actors._reply import SyncReply
from tests.support.actors import Block, Crash, Echo, Gated, Hang, Note, Ping, Pong, Sleep


def test_ask_from_sync_code_returns_the_typed_reply(system: System) -> None:
    """A blocking ask returns the handler's return value."""
    ref = system.spawn(Echo, name="echo")
    assert ref.ask(Ping(n=41)) == Pong(n=42, by="echo")


async def test_ask_from_async_code_returns_the_typed_reply() -> None:
    """ask_async resolves on the caller's loop with the handler's return value."""
    async with System(name="async") as system:
        ref = await system.spawn_async(Echo, name="echo")
        assert await ref.ask_async(Ping(n=1)) == Pong(n=2, by="echo")


def test_actor_answers_others_while_one_request_waits_on_io(system: System) -> None:
    """While one ask waits 1 s on I/O, the same actor answers another at once."""
    ref = system.spawn(Echo, name="echo")
    slow = SyncReply()
    # Sent without waiting, from this thread, so it is first in the mailbox.
    ref.send_request(Sleep(seconds=1.0, n=7, deadline=time.time() + 10), slow)
    assert ref.ask(Ping(n=1)).n == 2
    assert not slow.resolved, "the Ping was answered while the Sleep still waited on I/O"
    assert slow.wait(10, lambda: pytest.fail("the Sleep was never answered")) == Pong(n=7)


async def test_heartbeat_keeps_ticking_with_100_asks_outstanding() -> None:
    """ask_async never blocks the loop: a heartbeat ticks while 100 asks wait."""
    async with System(name="hb") as system:
        ref = await system.spawn_async(Echo, name="echo")
        ticks: list[float] = []

        async def heartbeat() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(heartbeat())
        sent_at = time.monotonic()
        asks = [asyncio.create_task(ref.ask_async(Sleep(seconds=0.5, n=i))) for i in range(100)]
        await asyncio.wait(asks, return_when=asyncio.FIRST_COMPLETED)
        first_answer_at = time.monotonic()
        answers = await asyncio.gather(*asks)
        beat.cancel()
        assert [a.n for a in answers] == list(range(100))
        # A blocked loop could not tick at all while the asks were outstanding.
        while_waiting = [t for t in ticks if sent_at < t < first_answer_at]
        assert len(while_waiting) >= 5, f"only {len(while_waiting)} ticks in 0.5 s"


def test_ask_past_its_deadline_gets_a_timeout_failure(system: System) -> None:
    """An unanswered ask fails with kind timeout at its deadline, naming the actor."""
    ref = system.spawn(Echo, name="echo")
    started = time.monotonic()
    with pytest.raises(AskError) as caught:
        ref.ask(Hang(), timeout=0.2)
    assert caught.value.kind is FailureKind.TIMEOUT
    assert "'echo'" in caught.value.failure.message
    assert 0.2 <= time.monotonic() - started < 2.0


async def test_async_ask_past_its_deadline_gets_a_timeout_failure() -> None:
    """ask_async fails with kind timeout at its deadline."""
    async with System(name="t") as system:
        ref = await system.spawn_async(Echo, name="echo")
        with pytest.raises(AskError) as caught:
            await ref.ask_async(Hang(), timeout=0.2)
        assert caught.value.kind is FailureKind.TIMEOUT


def test_message_deadline_wins_over_the_default(system: System) -> None:
    """A deadline carried by the message bounds the ask."""
    ref = system.spawn(Echo, name="echo")
    with pytest.raises(AskError) as caught:
        ref.ask(Hang(deadline=time.time() + 0.1))
    assert caught.value.kind is FailureKind.TIMEOUT


def test_actor_to_actor_ask_times_out_into_the_asker(system: System) -> None:
    """An actor asking a silent actor gets a timeout failure as its answer."""

    class Asker(Actor[Ping]):
        def receive(self, message: Ping) -> object:
            reply = self.defer_reply()
            silent = self.runtime.lookup("silent")
            self.ask(silent, Hang(), reply.send, timeout=0.2)
            return None

    system.spawn(Echo, name="silent")
    asker = system.spawn(Asker, name="asker")
    with pytest.raises(AskError) as caught:
        asker.ask(Ping(), timeout=3)
    assert caught.value.kind is FailureKind.TIMEOUT
    assert "'silent'" in caught.value.failure.message


def test_crash_answers_every_pending_ask_with_actor_crashed(system: System) -> None:
    """A crash fails the current ask, deferred asks and asks still in the mailbox."""
    ref = system.spawn(Echo, name="echo")
    outcomes: dict[str, FailureKind] = {}

    def ask(label: str, message: Hang | Crash | Sleep) -> None:
        try:
            ref.ask(message, timeout=3.0)
        except AskError as exc:
            outcomes[label] = exc.kind

    deferred = threading.Thread(target=ask, args=("deferred", Hang()))
    deferred.start()
    io = threading.Thread(target=ask, args=("io", Sleep(seconds=2.0)))
    io.start()
    time.sleep(0.1)
    with pytest.raises(AskError) as caught:
        ref.ask(Crash(why="kaput"))
    deferred.join()
    io.join()
    assert caught.value.kind is FailureKind.ACTOR_CRASHED
    assert "kaput" in caught.value.failure.message
    assert outcomes == {"deferred": FailureKind.ACTOR_CRASHED, "io": FailureKind.ACTOR_CRASHED}


async def test_asks_queued_behind_a_crash_get_actor_crashed() -> None:
    """Asks waiting in the mailbox of a crashing actor get actor_crashed at once."""
    gate = threading.Event()
    handled: list[int] = []
    async with System(name="q") as system:
        ref = await system.spawn_async(Gated, name="gated", args=(gate, handled))
        ref.tell(Block())
        crash = asyncio.ensure_future(ref.ask_async(Crash(why="first"), timeout=5))
        queued = [asyncio.ensure_future(ref.ask_async(Ping(n=i), timeout=5)) for i in range(20)]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        gate.set()
        results = await asyncio.gather(crash, *queued, return_exceptions=True)
        assert time.monotonic() - started < 2.0, "nobody waited for the 5 s deadline"
    kinds = [r.kind if isinstance(r, AskError) else r for r in results]
    assert kinds == [FailureKind.ACTOR_CRASHED] * 21
    assert handled == []


def test_tell_to_a_stopped_actor_is_a_counted_dead_letter(system: System) -> None:
    """Messages to a stopped actor are counted and logged, never raised."""
    ref = system.spawn(Echo, name="once", restart=Restart.TEMPORARY)
    ref.ask(Ping())
    before = system.dead_letters.count
    _stop(ref)
    ref.tell(Note(text="lost"))
    ref.tell(Note(text="lost again"))
    assert system.dead_letters.count == before + 2
    assert system.dead_letters.recent()[-1].target == "once"
    assert system.dead_letters.recent()[-1].message_type == "Note"


def test_ask_to_a_stopped_actor_fails_fast_with_actor_stopped(system: System) -> None:
    """An ask to an actor that is not running fails at once with actor_stopped."""
    ref = system.spawn(Echo, name="once", restart=Restart.TEMPORARY)
    _stop(ref)
    started = time.monotonic()
    with pytest.raises(AskError) as caught:
        ref.ask(Ping(), timeout=5)
    assert caught.value.kind is FailureKind.ACTOR_STOPPED
    assert time.monotonic() - started < 1.0


def test_blocking_ask_inside_a_handler_is_refused(system: System) -> None:
    """A handler that calls the blocking ask crashes with a clear BlockingCallError."""

    class Blocker(Actor[Ping]):
        def receive(self, message: Ping) -> object:
            return self.runtime.lookup("echo").ask(message)

    system.spawn(Echo, name="echo")
    blocker = system.spawn(Blocker, name="blocker")
    with pytest.raises(AskError) as caught:
        blocker.ask(Ping())
    assert caught.value.kind is FailureKind.ACTOR_CRASHED
    assert BlockingCallError.__name__ in caught.value.failure.message


def test_lookup_by_name_and_unknown_names(system: System) -> None:
    """Lookup finds an actor by name; an unknown name names what is running."""
    ref = system.spawn(Echo, name="echo")
    assert system.lookup("echo") is ref
    with pytest.raises(ActorNotFound, match="'nope'.*echo"):
        system.lookup("nope")
    with pytest.raises(DuplicateActorName, match="'echo'"):
        system.spawn(Echo, name="echo")


def test_expired_request_is_skipped_not_handled(system: System) -> None:
    """A request whose deadline passed while it was queued is never handled."""
    gate = threading.Event()
    handled: list[int] = []
    ref = system.spawn(Gated, name="gated", args=(gate, handled))
    ref.tell(Block())
    with pytest.raises(AskError) as caught:
        ref.ask(Ping(n=1), timeout=0.05)
    assert caught.value.kind is FailureKind.TIMEOUT
    gate.set()
    assert ref.ask(Ping(n=2)) == Pong(n=3)
    assert handled == [2]


def test_system_refuses_use_after_stop() -> None:
    """A stopped system says so instead of hanging."""
    system = System(name="gone").start()
    system.stop()
    with pytest.raises(SystemNotRunning, match="'gone'"):
        system.spawn(Echo, name="late")


def test_children_given_to_the_system_start_in_order() -> None:
    """System(*children) starts them in order; each is found by name."""
    with System(
        ChildSpec(name="a", actor=Echo), ChildSpec(name="b", actor=Echo), name="ordered"
    ) as system:
        assert [c.name for c in system.children()] == ["a", "b"]
        assert system.lookup("b").ask(Ping(n=1)).by == "b"


def _stop(ref: Ref[Any]) -> None:
    target = ref._target
    assert target is not None
    target.stop()
    deadline = time.monotonic() + 5
    while ref.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not ref.is_alive()


async def test_blocking_ask_inside_a_running_loop_is_refused() -> None:
    """The blocking ask refuses to freeze a running event loop and says what to use."""
    async with System(name="loop") as system:
        ref = await system.spawn_async(Echo, name="echo")
        with pytest.raises(BlockingCallError, match="ask_async"):
            ref.ask(Ping())
        assert (await ref.ask_async(Ping(n=1))).n == 2
