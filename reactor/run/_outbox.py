"""A run's journal outbox: its events, batched into few appends, in order.

Events wait in the outbox for at most ``linger`` seconds and go to the Store together
(one request, one transaction), so a busy run writes a few batches instead of an append
per transition. The events that end a run go at once, with whatever waits before them:
the caller is answered only once they are durable. Order is kept (one writer, one
mailbox), so what a crash leaves durable is always a prefix of the run's events; what
lingered is lost, and the steps it recorded run again on resume (at least once, as
ever). Each append says which sequence number it expects, so a second writer of the
same stream (a run started twice) is refused instead of interleaved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from actors import Failure, Ref
from actors.store import JournalAppend, JournalAppended, JournalEvent
from reactor.run._records import RunCancelled, RunCompleted, RunFailed, RunHalted, RunUndone

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
        self._events: list[tuple[str, bytes, Then]] = []
        self._armed = False
        self.seq = 0

    def append(self, event: Any, then: Then) -> None:
        """Journal ``event``; ``then(outcome)`` once it is durable (or failed)."""
        self._events.append((type(event).__name__, msgspec.json.encode(event), then))
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
        first_type, first_data, _ = batch[0]
        expected = self.seq
        self.seq += len(batch)
        request = JournalAppend(
            stream_id=self._stream,
            event_type=first_type,
            data=first_data,
            expected_seq=expected,
            more=tuple(JournalEvent(event_type=t, data=d) for t, d, _ in batch[1:]),
        )

        def appended(outcome: JournalAppended | Failure) -> None:
            for _, _, then in batch:
                then(outcome)

        self._ask(self._store, request, appended, timeout=self._timeout)
