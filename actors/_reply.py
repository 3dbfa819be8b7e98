"""Reply slots: where the answer to an ask goes, resolved exactly once.

A request carries one slot. Whoever resolves it first wins (the handler's reply, the
deadline, a crash of the actor, the actor being gone); later attempts are ignored. The
claim is a flag set under one lock shared by every slot (held for a test and a store):
a lock of each slot's own would be one more object per ask in flight, and with
thousands of asks in flight those are objects the garbage collector walks.

* :class:`SyncReply` wakes a thread blocked in ``Ref.ask``;
* :class:`AsyncReply` resolves an ``asyncio.Future`` on the caller's loop: at once when
  answered on that loop's thread, else handed over with one wake-up per batch (a pykka
  future's ``__await__`` would block the loop);
* :class:`ActorReply` puts a callback message in the asking actor's mailbox, so the
  asking actor handles the answer on its own thread, one message at a time.
"""

from __future__ import annotations

import _thread
import asyncio
from asyncio import events as asyncio_events
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import pykka

import otel
from actors._handoff import Handoff, handoff_for
from actors._loop import LoopTimers, Mailbox
from actors._messages import Failure
from otel import tracing_state as _tracing

if TYPE_CHECKING:
    from actors._timers import TimerHandle

__all__ = ["ActorReply", "AsyncReply", "Callback", "Reply", "SyncReply", "post"]


_claims = _thread.allocate_lock()
"""Makes a slot's claim atomic (see the module docstring)."""


class Reply:
    """Base of the reply slots: ``resolve`` returns whether this call won."""

    __slots__ = ("_claimed",)

    def __init__(self) -> None:
        self._claimed = False

    def _claim(self) -> bool:
        """Claim the slot; ``True`` if this call did (nobody had)."""
        with _claims:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def resolve(self, value: object) -> bool:
        """Deliver ``value`` (a result or a Failure) unless the slot is already resolved."""
        if not self._claim():
            return False
        self._deliver(value)
        return True

    @property
    def resolved(self) -> bool:
        """Whether an answer has been claimed."""
        return self._claimed

    def _deliver(self, value: object) -> None:
        raise NotImplementedError


class SyncReply(Reply):
    """A slot a blocked thread waits on."""

    __slots__ = ("_ready", "value")

    def __init__(self) -> None:
        super().__init__()
        self._ready = _thread.allocate_lock()
        self._ready.acquire()
        self.value: object = None

    def _deliver(self, value: object) -> None:
        self.value = value
        self._ready.release()

    def wait(self, timeout: float, on_timeout: Callable[[], Failure]) -> object:
        """Wait up to ``timeout`` seconds; past it, the answer is ``on_timeout()``."""
        if self._ready.acquire(True, max(timeout, 0.0)):
            return self.value
        if self._claim():
            return on_timeout()
        # A resolver claimed the slot just now and is about to store its value.
        self._ready.acquire()
        return self.value


class AsyncReply(Reply):
    """A slot that resolves an asyncio future on the caller's loop.

    Its deadline is a timer of that loop; when the loop is the system's own I/O loop
    the caller can pass the system's :class:`~actors._loop.LoopTimers` to :meth:`arm`
    instead (an append to a bucket, not a push onto the loop's heap).
    """

    __slots__ = (
        "_asked",
        "_future",
        "_handoff",
        "_loop",
        "_request",
        "_timer",
        "_waited",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._claimed = False  # Reply.__init__, without the call (one per ask)
        self._loop = loop
        self._handoff: Handoff | None = None  # found when first needed: off the loop only
        self._future: asyncio.Future[object] = loop.create_future()
        self._timer: asyncio.TimerHandle | TimerHandle | None = None
        self._asked: _Asked | None = None
        self._request: object = None
        self._waited = 0.0

    def _deliver(self, value: object) -> None:
        if asyncio_events._get_running_loop() is self._loop:
            # Answered on the caller's own loop (a loop actor, an I/O outcome): set the
            # future now. Its awaiter still resumes in a callback of its own, so this
            # saves a pass of the loop, never runs the caller inside the answerer.
            self._set(value)
            return
        handoff = self._handoff
        if handoff is None:
            handoff = self._handoff = handoff_for(self._loop)
        try:
            handoff.call(self._set, value)
        except RuntimeError:  # the caller's loop is closed: nobody is waiting
            return

    def _set(self, value: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self._future.done():
            self._future.set_result(value)

    def arm(self, timeout: float, timers: LoopTimers | None) -> asyncio.Future[object]:
        """Set the deadline; the future to await, then :meth:`disarm`.

        ``timers``: the loop timers of the caller's loop, which is then the system's I/O
        loop (``None``: the deadline is a timer of the caller's loop). What the deadline
        answers is the asked ref's timeout failure (:meth:`expires`).
        """
        if timers is None:
            self._timer = self._loop.call_later(max(timeout, 0.0), self)
        else:
            self._timer = timers.call_later(timeout, self)
        return self._future

    def expires(self, asked: _Asked, request: object, waited: float) -> None:
        """What the deadline answers: ``asked._timeout(request, waited)``."""
        self._asked = asked
        self._request = request
        self._waited = waited

    def disarm(self) -> None:
        """After the await (answered, timed out or cancelled): a late answer is dropped."""
        self._claim()
        timer = self._timer
        if timer is not None:
            timer.cancel()

    def __call__(self) -> None:
        """The deadline passed: answer with the timeout failure (if still open)."""
        if not self._claim() or self._future.done():
            return
        asked = self._asked
        if asked is not None:
            self._future.set_result(asked._timeout(self._request, self._waited))


class Callback:
    """Mailbox item: run ``fn(value)`` on the actor's thread (an answer, an I/O outcome)."""

    __slots__ = ("fn", "label", "trace", "value")

    def __init__(
        self,
        fn: Callable[[Any], object],
        value: object,
        trace: dict[str, str] | None,
        label: str,
    ) -> None:
        self.fn = fn
        self.value = value
        self.trace = trace
        self.label = label


class _Asked(Protocol):
    """The ref an actor asked (``Ref``): what its timeout failure says."""

    def _timeout(self, message: object, waited: float) -> Failure: ...


def post(target: pykka.ActorRef[Any], item: Any) -> bool | None:
    """Put ``item`` in ``target``'s mailbox as it is, if ``target`` runs on the loop.

    ``item`` is then its own envelope and :class:`Callback`: it has ``message`` (itself),
    ``reply_to`` (``None``), ``fn``, ``value``, ``trace`` and ``label``. One object per
    answer or outcome waiting for its actor's turn, instead of three. Returns ``None``
    when ``target`` has a thread (the caller tells it a :class:`Callback` instead),
    ``False`` when it has stopped.
    """
    inbox = target.actor_inbox
    if type(inbox) is not Mailbox:
        return None
    if inbox._stopped:  # a loop actor's mailbox is its "stopped" flag
        return False
    inbox.put(item)
    return True


class ActorReply(Reply):
    """A slot that sends the answer to the asking actor as a :class:`Callback`.

    To an actor on the loop it is its own mailbox item (see :func:`post`).

    It is also its own deadline: called (by the timer set for the ask), it answers with
    the timeout failure of the asked ref, ``asked._timeout(request, waited)`` (one object
    per ask in flight instead of a slot and a closure).
    """

    __slots__ = (
        "_asked",
        "_kind",
        "_owner",
        "_request",
        "_waited",
        "fn",
        "timer",
        "trace",
        "value",
    )

    reply_to = None
    """As a mailbox item: no pykka future waits for it."""

    def __init__(
        self,
        owner: pykka.ActorRef[Any],
        fn: Callable[[Any], object],
        asked: _Asked,
        request: object,
        waited: float,
    ) -> None:
        self._claimed = False  # Reply.__init__, without the call (one per ask)
        self._owner = owner
        self.fn = fn
        """As a mailbox item: what the answer is handed to."""
        self.timer: TimerHandle | None = None
        self._asked = asked
        self._request = request
        self._kind = type(request)
        self._waited = waited
        self.value: object = None
        self.trace: dict[str, str] | None = None

    @property
    def message(self) -> ActorReply:
        """As a mailbox item: itself."""
        return self

    @property
    def label(self) -> str:
        """As a mailbox item: its name in spans and logs (made when one is needed)."""
        return f"reply {self._kind.__name__}"

    def __call__(self) -> None:
        """The ask's deadline passed: answer with its timeout failure (if still open)."""
        if not self._claimed:
            # Built only if the deadline fires: nearly every ask is answered first.
            self.resolve(self._asked._timeout(self._request, self._waited))

    def _deliver(self, value: object) -> None:
        timer, self.timer = self.timer, None  # the timer's callback refers back to us
        if timer is not None:
            timer.cancel()
        self._request = None
        carrier = otel.inject() if _tracing.tracer is not None else None
        self.value, self.trace = value, carrier
        if post(self._owner, self) is not None:
            return  # posted, or the asker stopped meanwhile: nobody is owed it any more
        try:
            self._owner.tell(Callback(self.fn, value, carrier, self.label))
        except pykka.ActorDeadError:
            # The asker stopped meanwhile: nobody is owed this answer any more.
            return
