"""One thread that fires callbacks at given times (deadlines, scheduled messages).

Callbacks run on the timer thread and must be quick: the runtime's callbacks only put
a message in a mailbox. Cancelled entries are dropped lazily, and the heap is rebuilt
when more than half of it is cancelled, so asks that are answered early (nearly all)
cost a flag, not a heap removal.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from actors._tb import plain_traceback

__all__ = ["TimerHandle", "Timers"]

_log = structlog.get_logger("actors.timers")
_COMPACT_MIN = 256


def _nothing() -> None:
    return None


class _Owner(Protocol):
    """Who keeps a timer: told when one of its timers is cancelled."""

    def _note_cancel(self) -> None: ...


class TimerHandle:
    """A scheduled callback; ``cancel()`` stops it from firing."""

    __slots__ = ("_owner", "callback", "cancelled", "seq", "when")

    def __init__(
        self, when: float, seq: int, callback: Callable[[], object], owner: _Owner | None
    ) -> None:
        self.when = when
        self.seq = seq
        self.callback = callback
        self.cancelled = False
        self._owner = owner

    def __lt__(self, other: TimerHandle) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        """Stop the callback from firing (no effect once it has fired)."""
        if not self.cancelled:
            self.cancelled = True
            self.callback = _nothing  # drop references now; the heap keeps the handle a while
            if self._owner is not None:
                self._owner._note_cancel()


class Timers:
    """A heap of callbacks served by one daemon thread, on the monotonic clock."""

    def __init__(self, name: str = "reactor-timers") -> None:
        self._heap: list[TimerHandle] = []
        self._cond = threading.Condition(threading.Lock())
        self._seq = itertools.count()
        self._cancelled = 0
        self._running = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the timer thread."""
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; callbacks not yet fired are dropped."""
        with self._cond:
            self._running = False
            self._heap.clear()
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback`` on the timer thread after ``delay`` seconds."""
        return self.call_at(time.monotonic() + delay, callback)

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback`` on the timer thread at monotonic time ``when``."""
        handle = TimerHandle(when, next(self._seq), callback, self)
        with self._cond:
            heapq.heappush(self._heap, handle)
            # Only a new earliest entry changes how long the thread should sleep.
            if self._heap[0] is handle:
                self._cond.notify()
        return handle

    def _note_cancel(self) -> None:
        with self._cond:
            self._cancelled += 1
            if self._cancelled > _COMPACT_MIN and self._cancelled * 2 > len(self._heap):
                self._heap = [h for h in self._heap if not h.cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._next_due()
                if due is None:
                    return
            try:
                due.callback()
            except Exception as exc:  # noqa: BLE001 - one bad callback must not kill the timers
                _log.error("timer callback failed", exception=plain_traceback(exc))

    def _next_due(self) -> TimerHandle | None:
        """Wait (holding the condition) until an entry is due; None when stopping."""
        while self._running:
            if not self._heap:
                self._cond.wait()
                continue
            head = self._heap[0]
            if head.cancelled:
                heapq.heappop(self._heap)
                self._cancelled = max(0, self._cancelled - 1)
                continue
            delay = head.when - time.monotonic()
            if delay > 0:
                self._cond.wait(delay)
                continue
            heapq.heappop(self._heap)
            return head
        return None
