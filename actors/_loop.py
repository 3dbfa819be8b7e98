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
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from actors._timers import TimerHandle

if TYPE_CHECKING:
    import asyncio

    from pykka._envelope import Envelope

    from actors._bridge import IoBridge

__all__ = ["TURN", "LoopScheduler", "LoopTimer", "Mailbox"]

TURN = 64
"""Messages one actor handles per turn before the others (and the loop's I/O) get theirs."""

_log = structlog.get_logger("actors.loop")


class _Turns(Protocol):
    """What a mailbox needs from its actor (implemented by :class:`~actors.Actor`)."""

    def _loop_turn(self, items: collections.deque[Envelope[Any]]) -> None: ...


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
        # Only the mailboxes queued so far: those queued by these turns wait for the
        # next pass, so I/O callbacks get the loop in between.
        for _ in range(len(ready)):
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


class Mailbox:
    """A loop actor's inbox: pykka's ``put``/``get``/``empty``, and its turns.

    Mail put before :meth:`open` waits: the actor is not started yet (its supervisor
    learns about it first). ``queued`` is set while the mailbox is in the run queue or
    having its turn; cleared before the last look at the items, for the same reason as
    the scheduler's flag.
    """

    __slots__ = ("_actor", "_context", "_items", "_open", "_queued", "_scheduler")

    def __init__(self, scheduler: LoopScheduler, actor: _Turns) -> None:
        self._scheduler = scheduler
        self._actor = actor
        self._items: collections.deque[Envelope[Any]] = collections.deque()
        # A context of its own, empty as a new thread's: what the actor binds (its log
        # name, the current span) stays its own.
        self._context = contextvars.Context()
        self._queued = False
        self._open = False

    def put(self, envelope: Envelope[Any]) -> None:
        """Add mail (any thread); queue the mailbox for a turn if it was idle."""
        self._items.append(envelope)
        if not self._queued and self._open:
            self._queued = True
            self._scheduler.ready(self)

    def get(self) -> Envelope[Any]:
        """The oldest mail (only the loop thread takes mail)."""
        return self._items.popleft()

    def empty(self) -> bool:
        """Whether no mail waits."""
        return not self._items

    def open(self) -> None:
        """Start the actor: its first turn runs ``started()``, then the mail that waits."""
        self._queued = True
        self._open = True
        self._scheduler.ready(self)

    def turn(self) -> None:
        """On the loop: let the actor handle some mail, then queue again if more waits."""
        self._context.run(self._actor._loop_turn, self._items)
        self._queued = False
        if self._items:
            self._queued = True
            self._scheduler.ready(self)


class LoopTimer(TimerHandle):
    """A loop actor's timer: a loop ``call_later`` whose :meth:`cancel` works from any thread.

    Cancelling on the loop thread removes the loop's timer; from another thread it
    only sets the flag (the loop's timers are not thread-safe), and the timer does
    nothing when it fires.
    """

    __slots__ = ("_bridge", "_handle")

    def __init__(self, bridge: IoBridge, delay: float, callback: Callable[[], object]) -> None:
        super().__init__(time.monotonic() + delay, 0, callback, None)
        self._bridge = bridge
        self._handle = bridge.loop.call_later(delay, self._fire)

    def cancel(self) -> None:
        """Stop the callback from firing (no effect once it has fired)."""
        if self.cancelled:
            return
        super().cancel()
        if self._bridge.on_loop_thread():
            self._handle.cancel()

    def _fire(self) -> None:
        if self.cancelled:
            return
        callback = self.callback
        TimerHandle.cancel(self)  # fired: drop the references, as a cancelled one does
        try:
            callback()
        except Exception:  # noqa: BLE001 - one bad callback must not disturb the loop
            _log.exception("timer callback failed")
