"""Where a run's outcome goes: a one-shot slot that threads and event loops can wait on.

A run ends once, on the I/O loop, and someone waits for it: a thread (``Engine.run``),
an asyncio task on any loop (``Engine.run_async``), or a parent run's step (a composed
run). ``concurrent.futures.Future`` does all of that, but it builds a condition, a
re-entrant lock and three lists for every run, whether anyone ever blocks on it or not;
with thousands of runs alive at once those are thousands of objects the cyclic garbage
collector walks again and again. :class:`RunDone` is one object until someone waits:
a thread that blocks gets an event then, an asyncio waiter gets a future of its own
loop, resolved on that loop (at once when the run ends on the same loop, else through
the loop's hand-off queue, one wake-up for many runs).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from actors.lowlevel import handoff_for

__all__ = ["RunDone"]

_lock = threading.Lock()
"""Guards registering a waiter against the run ending (held for a few operations)."""

_PENDING, _RESULT, _ERROR = 0, 1, 2


class RunDone:
    """A run's outcome, once: its result or its error (a :class:`~reactor.RunError`).

    The run sets it (``set_result`` / ``set_exception``, once); anyone reads it with
    :meth:`result` (blocking, from a thread), :meth:`future` (an asyncio future of the
    caller's loop) or :meth:`add_done_callback`.
    """

    __slots__ = ("_state", "_value", "_waiters")

    def __init__(self) -> None:
        self._state = _PENDING
        self._value: Any = None
        # None, or what to wake when the run ends: threading.Event, asyncio.Future
        # (of another loop), or a callable ``fn(self)``; one object, or a list of them.
        self._waiters: Any = None

    def __repr__(self) -> str:
        state = ("pending", "result", "error")[self._state]
        return f"<RunDone {state}>"

    def done(self) -> bool:
        """Whether the run has ended."""
        return self._state != _PENDING

    def set_result(self, value: Any) -> None:
        """The run completed with ``value``."""
        self._settle(_RESULT, value)

    def set_exception(self, error: BaseException) -> None:
        """The run ended with ``error``."""
        self._settle(_ERROR, error)

    def _settle(self, state: int, value: Any) -> None:
        with _lock:
            if self._state != _PENDING:
                msg = "the run's outcome was set already"
                raise RuntimeError(msg)
            self._value = value
            self._state = state
            waiters, self._waiters = self._waiters, None
        if waiters is None:
            return
        if type(waiters) is list:
            for waiter in waiters:
                self._wake(waiter)
        else:
            self._wake(waiters)

    def result(self, timeout: float | None = None) -> Any:
        """The result (blocking); raises the run's error.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
        """
        if self._state == _PENDING:
            event = threading.Event()
            if self._add(event) and not event.wait(timeout):
                msg = f"the run did not end within {timeout} s"
                raise TimeoutError(msg)
        return self._outcome()

    def future(self) -> asyncio.Future[Any]:
        """An asyncio future of the running loop, resolved with the run's outcome."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        if self._add(waiter):
            return waiter
        self._resolve(waiter)
        return waiter

    def add_done_callback(self, fn: Callable[[RunDone], object]) -> None:
        """Call ``fn(self)`` once the run has ended (at once if it has), on the ending thread."""
        if self._add(fn):
            return
        fn(self)

    def _outcome(self) -> Any:
        if self._state == _ERROR:
            raise self._value
        return self._value

    def _add(self, waiter: object) -> bool:
        """Register ``waiter``; ``False`` if the run has ended already (not registered)."""
        with _lock:
            if self._state != _PENDING:
                return False
            waiters = self._waiters
            if waiters is None:
                self._waiters = waiter
            elif type(waiters) is list:
                waiters.append(waiter)
            else:
                self._waiters = [waiters, waiter]
            return True

    def _wake(self, waiter: Any) -> None:
        if isinstance(waiter, threading.Event):
            waiter.set()
        elif isinstance(waiter, asyncio.Future):
            loop = waiter.get_loop()
            if asyncio._get_running_loop() is loop:
                self._resolve(waiter)
                return
            try:
                handoff_for(loop).call(self._resolve, waiter)
            except RuntimeError:  # the waiter's loop is closed: nobody is left to wake
                return
        else:
            waiter(self)

    def _resolve(self, waiter: asyncio.Future[Any]) -> None:
        """On the waiter's loop: hand it the outcome (unless it was cancelled meanwhile)."""
        if waiter.done():
            return
        if self._state == _ERROR:
            waiter.set_exception(self._value)
        else:
            waiter.set_result(self._value)
