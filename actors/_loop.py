"""Actors on the I/O loop: many actors, no thread each.

A :class:`~actors.LoopActor` (or any actor whose spec says ``on_loop=True``) has no
thread of its own. Its mailbox is a :class:`Mailbox`; when mail arrives in an empty
mailbox, the mailbox joins the loop's run queue (:class:`LoopScheduler`), and one loop
callback gives each queued mailbox a turn: up to :data:`TURN` messages, one at a time,
in the actor's own ``contextvars`` context (its log binding and trace context stay its
own, as they would on a thread of its own). So:

* mail sent on the loop thread (the outcome of a coroutine the actor piped to itself,
  a tell from another loop actor, an answer from one) is handled without a thread
  hop: at most one ``call_soon`` per turn of the run queue;
* mail sent from another thread wakes the loop with one ``call_soon_threadsafe`` for
  everything that arrives before the loop runs the queue;
* a pass of the run queue gives at most :data:`PASS` turns, then the loop's other
  callbacks (I/O, tasks) run before the next pass; a mailbox that one of the pass's
  turns queues (an ask from one loop actor to another, the answer) gets its turn in
  the same pass while the count lasts, so a hop costs no extra iteration of the loop;
* an actor is in the run queue at most once, and only the loop thread runs turns, so
  one actor never handles two messages at once (the serial guarantee), and a turn
  never runs inside another actor's handler.

The price is the rule every actor already follows: a handler never blocks (the loop
thread is marked as one that must not, so a blocking ``Ref.ask`` raises), and a long
computation holds up every loop actor and all I/O; give it to a worker pool or a thread
actor. Timers (``call_later``, ``schedule``) of loop actors are loop timers.
"""

from __future__ import annotations

import collections
import contextvars
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from actors._tb import plain_traceback
from actors._timers import TimerHandle

if TYPE_CHECKING:
    import asyncio

    from pykka._envelope import Envelope

    from actors._bridge import IoBridge

__all__ = ["PASS", "TURN", "LoopScheduler", "LoopTimers", "Mailbox"]

PASS = 64
"""Turns one pass of the run queue gives before the loop runs its other callbacks.

With thousands of loop actors ready at once (a burst of runs), a pass over all of them
would leave what their turns started (tasks, I/O outcomes, answers) waiting until every
one had its turn: each run's work would come back a whole burst later, and everything
it made meanwhile would live long enough for the garbage collector's oldest
generation, which then collects (and walks every live object) again and again. Short
passes let that work finish, and its objects die, while they are young."""

TURN = 64
"""Messages one actor handles per turn before the others (and the loop's I/O) get theirs."""

_COMPACT_MIN = 32
"""A bucket drops its cancelled timers once it holds this many and half are cancelled."""

_log = structlog.get_logger("actors.loop")
_events_lock = threading.Lock()


class _Turns(Protocol):
    """What a mailbox needs from its actor (implemented by :class:`~actors.Actor`)."""

    def _loop_turn(self, items: Mailbox) -> None: ...


class LoopScheduler:
    """The run queue of one event loop: mailboxes with mail, served by one callback.

    Thread-safe: any thread may call :meth:`ready`. The ``armed`` flag is cleared by
    the loop *before* it looks at the queue a last time, so a mailbox queued by another
    thread is either seen by that look or arms a new pass; at worst two passes run,
    never none.
    """

    __slots__ = ("_armed", "_bridge", "_loop", "_ready")

    def __init__(self, bridge: IoBridge) -> None:
        self._bridge = bridge
        self._loop: asyncio.AbstractEventLoop = bridge.loop
        self._ready: collections.deque[Mailbox] = collections.deque()
        self._armed = False

    def ready(self, mailbox: Mailbox) -> None:
        """Queue ``mailbox`` for a turn and make sure a pass of the queue is coming."""
        self._ready.append(mailbox)
        if self._armed:
            return
        self._armed = True
        if self._bridge.on_loop_thread():
            self._loop.call_soon(self._run)
            return
        try:
            self._loop.call_soon_threadsafe(self._run)
        except RuntimeError:  # the loop is closed: the system is stopping, nobody is left
            self._armed = False

    def _run(self) -> None:
        ready = self._ready
        # At most PASS turns, then I/O callbacks and tasks get the loop before the next
        # pass. A mailbox queued by one of these turns (an actor's ask of another, its
        # answer) is served in this pass while the count lasts: a hop between actors
        # costs no extra iteration of the loop (and its poll for I/O).
        served = 0
        while ready and served < PASS:
            served += 1
            mailbox = ready.popleft()
            try:
                mailbox.turn()
            except BaseException as exc:  # noqa: BLE001 - one actor must not stop the others
                self._loop.call_exception_handler(
                    {"message": "a loop actor's turn raised", "exception": exc}
                )
        self._armed = False
        if ready:
            self._armed = True
            self._loop.call_soon(self._run)


class Mailbox(collections.deque["Envelope[Any]"]):
    """A loop actor's inbox (the queue itself), its turns, and its "stopped" flag.

    pykka's ``put``/``get``/``empty``; mail put before :meth:`open` waits: the actor is
    not started yet (its supervisor learns about it first). ``queued`` is set while the
    mailbox is in the run queue or having its turn; cleared before the last look at the
    items, for the same reason as the scheduler's flag.

    It is also the actor's ``actor_stopped`` (``threading.Event``'s ``is_set``, ``set``
    and ``wait``): every ref checks it on every tell; only a thread that waits for the
    actor to stop needs an event, so the event is made then. ``set`` writes the flag
    before it reads the event, and ``wait`` makes the event before it reads the flag
    again, so a waiter never misses the stop. The queue, the flag and the turns are one
    object: there may be thousands of loop actors, each walked by the garbage collector.
    """

    __slots__ = ("_actor", "_context", "_event", "_open", "_queued", "_scheduler", "_stopped")

    def __init__(self, scheduler: LoopScheduler, actor: _Turns) -> None:
        super().__init__()
        self._scheduler = scheduler
        self._actor = actor
        # A context of its own, empty as a new thread's: what the actor binds (its log
        # name, the current span) stays its own.
        self._context = contextvars.Context()
        self._queued = False
        self._open = False
        self._stopped = False
        self._event: threading.Event | None = None

    def put(self, envelope: Envelope[Any]) -> None:
        """Add mail (any thread); queue the mailbox for a turn if it was idle."""
        self.append(envelope)
        if not self._queued and self._open:
            self._queued = True
            self._scheduler.ready(self)

    def get(self) -> Envelope[Any]:
        """The oldest mail (only the loop thread takes mail)."""
        return self.popleft()

    def empty(self) -> bool:
        """Whether no mail waits."""
        return not self

    def open(self) -> None:
        """Start the actor: its first turn runs ``started()``, then the mail that waits."""
        self._queued = True
        self._open = True
        self._scheduler.ready(self)

    def turn(self) -> None:
        """On the loop: let the actor handle some mail, then queue again if more waits."""
        self._context.run(self._actor._loop_turn, self)
        self._queued = False
        if self:
            self._queued = True
            self._scheduler.ready(self)

    # ---- the actor's "stopped" flag -------------------------------------------------

    def is_set(self) -> bool:
        """Whether the actor has stopped."""
        return self._stopped

    def set(self) -> None:
        """Mark the actor stopped and wake whoever waits."""
        self._stopped = True
        event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the actor has stopped; False if ``timeout`` passed first."""
        if self._stopped:
            return True
        with _events_lock:  # two waiters must share one event
            event = self._event
            if event is None:
                event = self._event = threading.Event()
        if self.is_set():
            return True
        return event.wait(timeout)


class LoopTimers:
    """Timers on the loop, kept in first-in-first-out buckets by delay.

    Loop actors set a timer for many steps of work (a journal batch's linger, a retry's
    backoff, a run's timeout) and cancel most of them: on the loop's own heap each costs
    a push and a pop through Python-level comparisons. Timers with the same delay (to
    the millisecond) expire in the order they were set, so each bucket is a queue with
    one loop timer for its head: setting one is an append, and firing pops what is due.
    A timer may fire up to a millisecond late, never early.

    Cancelling works from any thread (the loop's own timers are not thread-safe): it
    sets the handle's flag. On the loop thread it also counts, and a bucket of many
    timers, mostly cancelled, drops them (and its loop timer once none is left). A
    bucket of a few cancelled timers keeps them and its loop timer: when that fires
    and finds nothing due, the bucket retires, so an idle loop wakes at most once per
    bucket for nothing. Setting a timer: loop thread only.
    """

    __slots__ = ("_bridge", "_buckets", "_loop")

    def __init__(self, bridge: IoBridge) -> None:
        self._bridge = bridge
        self._loop: asyncio.AbstractEventLoop = bridge.loop
        self._buckets: dict[int, _Bucket] = {}

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback()`` on the loop after ``delay`` seconds."""
        key = round(delay * 1000)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self, key)
        handle = TimerHandle(self._loop.time() + max(delay, 0.0), 0, callback, bucket)
        bucket._handles.append(handle)  # the bucket's loop timer is set for its first
        if bucket._armed is None:
            bucket._armed = self._loop.call_at(handle.when, bucket._fire)
        return handle

    def _drop(self, key: int, bucket: _Bucket) -> None:
        if self._buckets.get(key) is bucket:  # not a newer bucket of the same delay
            del self._buckets[key]


class _Bucket:
    """The timers of one delay, oldest first, and the loop timer for the oldest."""

    __slots__ = ("_armed", "_cancelled", "_handles", "_key", "_owner")

    def __init__(self, owner: LoopTimers, key: int) -> None:
        self._owner = owner
        self._key = key
        self._handles: collections.deque[TimerHandle] = collections.deque()
        self._armed: asyncio.TimerHandle | None = None
        self._cancelled = 0

    def _note_cancel(self) -> None:
        if not self._owner._bridge.on_loop_thread():
            return  # the flag is enough: the timer is skipped when it comes due
        self._cancelled += 1
        handles = self._handles
        if len(handles) < _COMPACT_MIN or self._cancelled * 2 < len(handles):
            # A few cancelled timers cost nothing to keep until they come due: asks
            # answered one after another reuse the bucket and its armed loop timer
            # instead of arming and cancelling one each.
            return
        self._cancelled = 0
        self._handles = collections.deque(h for h in handles if not h.cancelled)
        if not self._handles:
            self._retire()

    def _retire(self) -> None:
        if self._armed is not None:
            self._armed.cancel()
            self._armed = None
        self._owner._drop(self._key, self)

    def _fire(self) -> None:
        self._armed = None
        handles = self._handles
        now = self._owner._loop.time()
        while handles and (handles[0].cancelled or handles[0].when <= now):
            handle = handles.popleft()
            if handle.cancelled:
                continue
            callback = handle.callback
            handle._owner = None  # fired, not cancelled: nothing to count
            handle.cancel()  # drop the references, as a cancelled one does
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 - one bad callback must not disturb the others
                _log.error("timer callback failed", exception=plain_traceback(exc))
        self._cancelled = 0
        if handles:
            self._armed = self._owner._loop.call_at(handles[0].when, self._fire)
        else:
            self._retire()
