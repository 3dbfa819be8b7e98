"""A run's journal outbox: its events, batched into few appends, in order.

Events wait in the outbox for at most ``linger`` seconds and go to the Store together
(one request, one transaction), so a busy run writes a few batches instead of an append
per transition. The events that end a run go at once, with whatever waits before them:
the caller is answered only once they are durable. Order is kept (one writer, one
mailbox), so what a crash leaves durable is always a prefix of the run's events; what
lingered is lost, and the steps it recorded run again on resume (at least once, as
ever). Each append says which sequence number it expects, so a second writer of the
same stream (a run started twice) is refused instead of interleaved.

While an append is in flight, new events wait for its answer and then go together (the
ones that end the run too): a run has one append in flight at a time, so when the
Store is busy (thousands of runs at once) a run sends fewer, larger appends instead of
one per linger, each an ask, a deadline and a request the Store handles. Events stay
in order and the caller is still answered once the run's end is durable.

A ``StepStarted`` whose ``StepCompleted`` goes in the same append is left out: it tells
nothing the ``StepCompleted`` does not (its attempt, its ``started_at``), so a step that
ends within the linger costs one row, not two. Replay and the CLI's fold read a
``StepCompleted`` without its ``StepStarted`` as they always did for guarded steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import msgspec

from actors import Failure, Ref
from actors.store import JournalAppend, JournalAppended, JournalEvent
from reactor.run._records import (
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunHalted,
    RunUndone,
    StepCompleted,
    StepStarted,
)

__all__ = ["ENDING", "JournalOutbox"]

ENDING = (RunCompleted, RunFailed, RunHalted, RunCancelled, RunUndone)
"""Events sent to the journal at once: the ones that end a run."""

Then = Callable[[JournalAppended | Failure], object]
"""Called once an event is durable, or with why it is not."""


class OutboxOwner(Protocol):
    """What the outbox needs from the actor that owns it (a Run)."""

    def ask(self, ref: Ref[Any], message: Any, then: Then, *, timeout: float | None = None) -> None:
        """The actor's ``ask``: the Store's answer comes back as its message."""

    def call_later(self, delay: float, fn: Callable[[], object], *, name: str | None = None) -> Any:
        """The actor's ``call_later``, for the linger."""

    def journal_checked(self, outcome: JournalAppended | Failure) -> None:
        """What an event appended without a ``then`` of its own is answered with."""


class JournalOutbox:
    """The events of one run's stream waiting to be appended.

    Args:
        stream: The run's stream id.
        store: The Store actor.
        owner: The owning actor (its ``ask``, ``call_later`` and ``journal_checked``).
        timeout: Seconds an append may wait for the Store.
        linger: Seconds an event may wait for others (``0``: append at once).

    Attributes:
        seq: Events sent so far: the sequence number the next append expects.
    """

    __slots__ = (
        "_armed",
        "_events",
        "_held",
        "_in_flight",
        "_linger",
        "_owner",
        "_started",
        "_store",
        "_stream",
        "_timeout",
        "seq",
    )

    def __init__(
        self,
        stream: str,
        store: Ref[Any],
        *,
        owner: OutboxOwner,
        timeout: float,
        linger: float,
    ) -> None:
        self._stream = stream
        self._store = store
        self._owner = owner
        self._timeout = timeout
        self._linger = linger
        # (event type, encoded event, then or None, (step, attempt) of a StepStarted):
        # the event itself is not kept, and without a ``then`` of its own an entry
        # holds no object the garbage collector has to walk.
        # (None while nothing waits: a run mostly waits with nothing to send.)
        self._events: list[tuple[str, bytes, Then | None, tuple[str, int] | None]] | None = None
        # Step name to the index of its waiting StepStarted (str to int: a dict the
        # garbage collector does not track).
        self._started: dict[str, int] = {}
        self._armed = False
        self._in_flight = False
        self._held = 0  # 1: events wait for the append in flight; 2: one of them ends the run
        self.seq = 0

    def append(self, event: Any, then: Then | None = None) -> None:
        """Journal ``event``; ``then(outcome)`` once it is durable (or failed).

        Without ``then``, the owner's ``journal_checked(outcome)`` is called.
        """
        # Encoded now, so an event that cannot be encoded fails here, in its caller,
        # and leaves what is already queued intact (it is still sent when the run stops).
        data = msgspec.json.encode(event)
        kind = type(event)
        events = self._events
        if events is None:
            events = self._events = []
        started = None
        if kind is StepStarted:
            started = (event.step, event.attempt)
            self._started[event.step] = len(events)
        events.append((kind.__name__, data, then, started))
        if kind is StepCompleted:
            self._elide_started(event.step, event.attempt)
        if self._in_flight:  # sent once the append in flight is answered
            self._held = 2 if isinstance(event, ENDING) else max(self._held, 1)
            return
        if isinstance(event, ENDING):
            self.flush()
        elif not self._armed:
            self._armed = True
            if self._linger <= 0:
                self.flush()
            else:
                # The outbox is its own timer callback (``__call__`` is ``flush``): no
                # bound method lives with every run's lingering events.
                self._owner.call_later(self._linger, self, name="journal flush")

    def _elide_started(self, step: str, attempt: int) -> None:
        """Drop the waiting ``StepStarted`` of the attempt whose ``StepCompleted`` joins it."""
        index = self._started.pop(step, None)
        if index is None:
            return
        events = self._events
        assert events is not None  # the StepCompleted was just appended
        _, _, then, started = events[index]
        if started == (step, attempt):
            events[index] = ("", b"", then, None)  # its ``then`` is still answered

    def __call__(self) -> None:
        """The linger is over: :meth:`flush` (unless an append is in flight: its answer will)."""
        if self._in_flight:
            self._armed = False
            return
        self.flush()

    def _answered(self) -> int:
        """The append in flight was answered; whether events waited for it (``_held``)."""
        self._in_flight = False
        held, self._held = self._held, 0
        return held

    def _after_answer(self, held: int) -> None:
        """Send what waited for the answer: at once if it ends the run, else as new events."""
        if not held or self._events is None or self._in_flight:
            return
        if held == 2 or self._linger <= 0:
            self.flush()
        elif not self._armed:
            self._armed = True
            self._owner.call_later(self._linger, self, name="journal flush")

    def flush(self) -> None:
        """Send what waits now, as one append (even if another is in flight: a stopping run)."""
        self._armed = False
        batch, self._events = self._events, None
        self._started.clear()
        if batch is None:
            return
        kept = [(kind, data) for kind, data, _, _ in batch if kind]
        if not kept:  # nothing waits (a StepStarted is only left out for its StepCompleted)
            return
        (first_kind, first_data), rest = kept[0], kept[1:]
        expected = self.seq
        self.seq += len(kept)
        request = JournalAppend(
            stream_id=self._stream,
            event_type=first_kind,
            data=first_data,
            expected_seq=expected,
            more=tuple(JournalEvent(event_type=kind, data=data) for kind, data in rest),
        )
        self._in_flight = True
        self._owner.ask(self._store, request, _answer(self, batch), timeout=self._timeout)


def _answer(outbox: JournalOutbox, batch: list[tuple[str, bytes, Then | None, Any]]) -> _Answer:
    checked = False
    then: Then | list[Then] | None = None
    for _, _, each, _ in batch:
        if each is None:
            checked = True
        elif then is None:
            then = each
        elif type(then) is list:
            then.append(each)
        else:
            then = [cast("Then", then), each]
    return _Answer(outbox, checked, then)


class _Answer:
    """The Store's answer to one append, handed on to what waits for its events.

    The events appended without a ``then`` of their own need one call of the owner's
    ``journal_checked`` (which only acts on a failure, and fails the run once); the
    others' ``then`` are called in order after it. Nearly every batch has one ``then``
    at most (a run's first or ending event), so no list is kept for it.
    """

    __slots__ = ("_checked", "_outbox", "_then")

    def __init__(
        self, outbox: JournalOutbox, checked: bool, then: Then | list[Then] | None
    ) -> None:
        self._outbox = outbox
        self._checked = checked
        self._then = then

    def __call__(self, outcome: JournalAppended | Failure) -> None:
        outbox = self._outbox
        held = outbox._answered()
        if self._checked:
            outbox._owner.journal_checked(outcome)
        then = self._then
        if type(then) is list:
            for each in then:
                each(outcome)
        elif then is not None:
            cast("Then", then)(outcome)
        outbox._after_answer(held)
