"""The event bus: typed subscriptions for actors and asyncio queues."""

from __future__ import annotations

import asyncio
import threading

from actors import (
    Actor,
    ActorCrashed,
    ActorRestarted,
    Event,
    EventBus,
    Restart,
    System,
)
from tests.support.actors import Crash, Echo, Ping


class BreakerOpened(Event, frozen=True, kw_only=True):
    """A sample domain event."""

    model: str


class Inbox(Actor[Event]):
    """Collects the events it receives."""

    def __init__(self, got: list[Event], done: threading.Event, until: int) -> None:
        super().__init__()
        self.got = got
        self.done = done
        self.until = until

    def receive(self, message: Event) -> object:
        """Keep the event."""
        self.got.append(message)
        if len(self.got) >= self.until:
            self.done.set()
        return None


def test_actor_subscriber_receives_matching_events_only(system: System) -> None:
    """An actor subscribed to one event type gets those events as messages, nothing else."""
    got: list[Event] = []
    done = threading.Event()
    ref = system.spawn(Inbox, name="inbox", args=(got, done, 2))
    system.bus.subscribe(BreakerOpened, ref)
    assert system.bus.publish(BreakerOpened(model="a")) == 1
    system.bus.publish(ActorCrashed(name="x", incarnation=1, error="e", failed_asks=0))
    system.bus.publish(BreakerOpened(model="b"))
    assert done.wait(5)
    assert got == [BreakerOpened(model="a"), BreakerOpened(model="b")]


async def test_asyncio_queue_subscriber_receives_runtime_events() -> None:
    """A queue subscribed to the Event base class sees the runtime's own events."""
    async with System(name="bus") as system:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        system.bus.subscribe(Event, queue)
        ref = await system.spawn_async(Echo, name="echo")
        await asyncio.sleep(0)
        ref.tell(Crash(why="for the bus"))
        seen: list[Event] = []
        while not any(isinstance(e, ActorRestarted) for e in seen):
            seen.append(await asyncio.wait_for(queue.get(), 5))
        crashed = next(e for e in seen if isinstance(e, ActorCrashed))
        assert crashed.name == "echo"
        assert "for the bus" in crashed.error
        assert await ref.ask_async(Ping(n=1))


def test_a_stopped_subscriber_is_dropped(system: System) -> None:
    """A subscriber actor that stopped is removed at the next publish, without errors."""
    got: list[Event] = []
    ref = system.spawn(
        Inbox, name="gone", args=(got, threading.Event(), 1), restart=Restart.TEMPORARY
    )
    bus = system.bus
    bus.subscribe(BreakerOpened, ref)
    before = bus.subscriber_count
    target = ref._target
    assert target is not None
    target.stop()
    assert bus.publish(BreakerOpened(model="m")) == 0
    assert bus.subscriber_count == before - 1


def test_cancelled_subscription_receives_nothing() -> None:
    """cancel() unsubscribes."""
    bus = EventBus()
    loop = asyncio.new_event_loop()
    try:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        sub = bus.subscribe(BreakerOpened, queue, loop=loop)
        sub.cancel()
        assert bus.publish(BreakerOpened(model="m")) == 0
    finally:
        loop.close()


def test_subscribing_to_a_non_event_type_is_refused() -> None:
    """Only Event subclasses can be subscribed to."""
    import pytest

    bus = EventBus()
    with pytest.raises(TypeError, match="subclass of Event"):
        bus.subscribe(Ping, asyncio.Queue())  # type: ignore[type-var]
