"""Hand calls to an event loop from other threads, one wake-up per batch.

``loop.call_soon_threadsafe`` writes to the loop's self-pipe on every call: a system
call for the sender, a wake-up and a read for the loop, and, on a busy process, a
hand-over of the GIL each time. Actors answer many asks and start many I/O calls in
bursts, so :class:`Handoff` queues the calls and wakes the loop only when nothing is
queued yet; the loop then runs everything that arrived, in order.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["Handoff", "handoff_for"]


class Handoff:
    """Calls queued for one loop by any thread; the loop runs them in arrival order."""

    __slots__ = ("_calls", "_loop", "_waking")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # A weak reference: the registry below forgets a handoff once its loop is gone.
        self._loop = weakref.ref(loop)
        self._calls: collections.deque[tuple[Callable[..., object], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._waking = False

    def call(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon; raises RuntimeError if the loop is closed.

        Thread-safe: deque appends are atomic, and the flag can only make two senders
        both wake the loop (a harmless extra wake-up), never leave a call unrun, because
        the loop clears the flag before it takes the queued calls.
        """
        loop = self._loop()
        if loop is None or loop.is_closed():
            msg = "the event loop is closed"
            raise RuntimeError(msg)
        self._calls.append((fn, args))
        if not self._waking:
            self._waking = True
            try:
                loop.call_soon_threadsafe(self._run, loop)
            except RuntimeError:
                self._waking = False
                raise

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        self._waking = False
        calls = self._calls
        while calls:
            fn, args = calls.popleft()
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - reported as the loop reports a callback's
                loop.call_exception_handler(
                    {"message": f"exception in handed-off call {fn!r}", "exception": exc}
                )


_registry_lock = threading.Lock()
_handoffs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Handoff] = (
    weakref.WeakKeyDictionary()
)


def handoff_for(loop: asyncio.AbstractEventLoop) -> Handoff:
    """The loop's :class:`Handoff` (made on first use, gone with the loop)."""
    handoff = _handoffs.get(loop)
    if handoff is None:
        # Two threads making the first handoff at once must share one queue, or calls
        # from them could run out of order.
        with _registry_lock:
            handoff = _handoffs.get(loop)
            if handoff is None:
                handoff = _handoffs[loop] = Handoff(loop)
    return handoff
