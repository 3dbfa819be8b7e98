"""A run's journal outbox: its events, batched into few appends, in order.

Events wait in the outbox for at most ``linger`` seconds and go to the Store together
(one request, one transaction), so a busy run writes a few batches instead of an append
per transition. The events that end a run go at once, with whatever waits before them:
the caller is answered only once they are durable. Order is kept (one writer, one
mailbox), so what a crash leaves durable is always a prefix of the run's events; what
lingered is lost, and the steps it recorded run again on resume (at least once, as
ever). Each append says which sequence number it expects, so a second writer of the
same stream (a run started twice) is refused instead of interleaved.

A ``StepStarted`` whose ``StepCompleted`` goes in the same append is left out: it tells
nothing the ``StepCompleted`` does not (its attempt, its ``started_at``), so a step that
ends within the linger costs one row, not two. Replay and the CLI's fold read a
``StepCompleted`` without its ``StepStarted`` as they always did for guarded steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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

Ask = Callable[..., None]
"""The actor's ``ask(ref, request, then, timeout=...)``."""

CallLater = Callable[..., Any]
"""The actor's ``call_later(delay, fn, name=...)``."""


class JournalOutbox:
    """The events of one run's stream waiting to be appended.

    Args:
        stream: The run's stream id.
        store: The Store actor.
        ask: The owning actor's ``ask``: the Store's answer comes back as its message.
        call_later: The owning actor's ``call_later``, for the linger.
        timeout: Seconds an append may wait for the Store.
        linger: Seconds an event may wait for others (``0``: append at once).

    Attributes:
        seq: Events sent so far: the sequence number the next append expects.
    """

    __slots__ = (
        "_armed",
        "_ask",
        "_call_later",
        "_events",
        "_linger",
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
        ask: Ask,
        call_later: CallLater,
        timeout: float,
        linger: float,
    ) -> None:
        self._stream = stream
        self._store = store
        self._ask = ask
        self._call_later = call_later
        self._timeout = timeout
        self._linger = linger
        self._events: list[tuple[Any, bytes, Then]] = []
        self._armed = False
        self.seq = 0

    def append(self, event: Any, then: Then) -> None:
        """Journal ``event``; ``then(outcome)`` once it is durable (or failed)."""
        # Encoded now, so an event that cannot be encoded fails here, in its caller,
        # and leaves what is already queued intact (it is still sent when the run stops).
        self._events.append((event, msgspec.json.encode(event), then))
        if isinstance(event, ENDING):
            self.flush()
        elif not self._armed:
            self._armed = True
            if self._linger <= 0:
                self.flush()
            else:
                self._call_later(self._linger, self.flush, name="journal flush")

    def flush(self) -> None:
        """Send what waits now, as one append."""
        self._armed = False
        batch, self._events = self._events, []
        if not batch:
            return
        completed = {(e.step, e.attempt) for e, _, _ in batch if type(e) is StepCompleted}
        events = [
            (event, data)
            for event, data, _ in batch
            if not (type(event) is StepStarted and (event.step, event.attempt) in completed)
        ]
        first, first_data = events[0]
        expected = self.seq
        self.seq += len(events)
        request = JournalAppend(
            stream_id=self._stream,
            event_type=type(first).__name__,
            data=first_data,
            expected_seq=expected,
            more=tuple(
                JournalEvent(event_type=type(e).__name__, data=data) for e, data in events[1:]
            ),
        )

        def appended(outcome: JournalAppended | Failure) -> None:
            for _, _, then in batch:
                then(outcome)

        self._ask(self._store, request, appended, timeout=self._timeout)
