"""Publish/subscribe for typed events, and the dead-letter office.

A subscriber names an event class and receives every published event that is an
instance of it (so subscribing to :class:`~actors.Event` receives everything). It is
either an actor (the event arrives as a message) or an ``asyncio.Queue`` (the event is
put on the queue's own loop). Publishing is safe from any thread and never blocks: the
subscriber table is copied on write and read without a lock.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from actors._messages import Event

if TYPE_CHECKING:
    from actors._actor import Ref

__all__ = ["DeadLetter", "DeadLetters", "EventBus", "Subscription"]

E = TypeVar("E", bound=Event)
_log = structlog.get_logger("actors.bus")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that reached no actor."""

    target: str
    message_type: str
    reason: str


class DeadLetters:
    """Counts and logs messages sent to actors that are not running."""

    def __init__(self, keep: int = 100) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._recent: collections.deque[DeadLetter] = collections.deque(maxlen=keep)

    def record(self, target: str, message: object, reason: str = "actor not running") -> None:
        """Note one undeliverable message (never raises)."""
        letter = DeadLetter(target, type(message).__name__, reason)
        with self._lock:
            self._count += 1
            self._recent.append(letter)
        _log.info("dead letter", target=target, message_type=letter.message_type, reason=reason)

    @property
    def count(self) -> int:
        """How many messages were undeliverable since the system started."""
        return self._count

    def recent(self) -> list[DeadLetter]:
        """The most recent dead letters, oldest first."""
        with self._lock:
            return list(self._recent)


class _QueueSink:
    __slots__ = ("dropped", "loop", "queue")

    def __init__(self, queue: asyncio.Queue[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.queue = queue
        self.loop = loop
        self.dropped = 0

    def deliver(self, event: Event) -> bool:
        try:
            self.loop.call_soon_threadsafe(self._put, event)
        except RuntimeError:  # its loop is closed: the subscriber is gone
            return False
        return True

    def _put(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            _log.warning("event dropped: subscriber queue full", event=type(event).__name__)


class _ThreadQueueSink:
    """A ``queue.Queue`` subscriber: for plain threads and sync code embedding actors."""

    __slots__ = ("dropped", "queue")

    def __init__(self, target: queue.Queue[Any]) -> None:
        self.queue = target
        self.dropped = 0

    def deliver(self, event: Event) -> bool:
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            _log.warning("event dropped: subscriber queue full", event=type(event).__name__)
        return True


class _ActorSink:
    __slots__ = ("ref",)

    def __init__(self, ref: Ref[Any]) -> None:
        self.ref = ref

    def deliver(self, event: Event) -> bool:
        return self.ref.tell_if_alive(event)


_Sink = _QueueSink | _ThreadQueueSink | _ActorSink


class Subscription:
    """A registered subscriber; ``cancel()`` unsubscribes it."""

    __slots__ = ("_bus", "event_type", "sink")

    def __init__(self, bus: EventBus, event_type: type[Event], sink: _Sink):
        self._bus = bus
        self.event_type = event_type
        self.sink = sink

    def cancel(self) -> None:
        """Stop receiving events."""
        self._bus._remove(self)


class EventBus:
    """Typed publish/subscribe shared by the whole system."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: tuple[Subscription, ...] = ()

    def subscribe(
        self,
        event_type: type[E],
        subscriber: Ref[Any] | asyncio.Queue[Any] | queue.Queue[Any],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Subscription:
        """Deliver every published instance of ``event_type`` to ``subscriber``.

        Args:
            event_type: An :class:`Event` class; its subclasses are included.
            subscriber: An actor's ref, an ``asyncio.Queue``, or a thread-safe
                ``queue.Queue`` (for sync code).
            loop: The queue's loop; by default the running loop of the caller.
        """
        candidate: object = event_type  # checked at run time: callers may be untyped
        if not (isinstance(candidate, type) and issubclass(candidate, Event)):
            msg = f"subscribe({event_type!r}): the event type must be a subclass of Event"
            raise TypeError(msg)
        sink: _Sink
        if isinstance(subscriber, asyncio.Queue):
            sink = _QueueSink(subscriber, loop or asyncio.get_running_loop())
        elif isinstance(subscriber, queue.Queue):
            sink = _ThreadQueueSink(subscriber)
        else:
            sink = _ActorSink(subscriber)
        sub = Subscription(self, event_type, sink)
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    def publish(self, event: Event) -> int:
        """Deliver ``event`` to its subscribers; returns how many received it.

        Subscribers that are gone (a stopped actor, a closed loop) are removed.
        """
        delivered = 0
        for sub in self._subs:
            if isinstance(event, sub.event_type):
                if sub.sink.deliver(event):
                    delivered += 1
                else:
                    self._remove(sub)
        return delivered

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are active."""
        return len(self._subs)
