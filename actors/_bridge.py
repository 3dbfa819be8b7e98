"""The I/O bridge: one asyncio event loop, on one thread, owns all I/O.

Actors never wait on I/O. An actor hands a coroutine to :meth:`IoBridge.submit`; the
coroutine runs on the loop, in a copy of the actor's context (so its spans are children
of the handler's span and its log lines carry the actor's name), and its outcome is
handed to ``deliver``, which puts a message in the actor's mailbox. The actor's thread
is free to handle other messages meanwhile.

Outcomes are values: the coroutine's result, or a :class:`~actors.Failure` when it
raised (an :class:`~actors.AskError` keeps its failure; cancellation is ``cancelled``;
anything else is ``internal`` and is logged with its traceback).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog

import otel
from actors._errors import AskError, BlockingCallError
from actors._handoff import Handoff
from actors._local import forbid_blocking
from actors._messages import Failure, FailureKind
from actors._tb import plain_traceback

__all__ = ["IoBridge", "IoHandle"]

T = TypeVar("T")
_log = structlog.get_logger("actors.bridge")

Deliver = Callable[[object, dict[str, str] | None], None]


class IoHandle:
    """A coroutine started on the I/O loop; ``cancel()`` cancels it.

    It also hands the coroutine's outcome on (:meth:`deliver`): a subclass that
    overrides it (an actor's ``pipe_to_self``) needs no callback object of its own.
    """

    __slots__ = ("_bridge", "_cancelled", "_deliver", "_loop", "_started", "_task", "name")

    def __init__(self, name: str, bridge: IoBridge, deliver: Deliver | None = None) -> None:
        self.name = name
        self._bridge = bridge
        self._loop = bridge.loop
        self._deliver = deliver
        self._task: asyncio.Task[None] | None = None
        self._cancelled = False
        self._started = False

    def deliver(self, outcome: object, carrier: dict[str, str] | None) -> None:
        """On the loop: hand the outcome on (only enqueue, never do work here)."""
        if self._deliver is not None:
            self._deliver(outcome, carrier)

    def cancel(self) -> None:
        """Cancel the coroutine; its outcome will be a ``cancelled`` failure."""
        self._cancelled = True
        if self._bridge.on_loop_thread():
            self._cancel_on_loop()
            return
        try:
            self._loop.call_soon_threadsafe(self._cancel_on_loop)
        except RuntimeError:  # the loop is already closed: nothing left to cancel
            return

    def _cancel_on_loop(self) -> None:
        # A task cancelled before its first step would never run its coroutine (nor
        # close it, nor deliver): one not started yet sees the flag when it starts.
        if self._task is not None and self._started:
            self._task.cancel()

    @property
    def done(self) -> bool:
        """Whether the coroutine has finished (or was cancelled)."""
        return self._task is not None and self._task.done()


class IoBridge:
    """Owns the event loop thread and runs coroutines for actors."""

    def __init__(
        self,
        name: str = "reactor-io",
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        self.loop = (loop_factory or asyncio.new_event_loop)()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._cleanups: set[asyncio.Task[Any]] = set()
        self._handoff = Handoff(self.loop)
        self._ident: int | None = None

    def on_loop_thread(self) -> bool:
        """Whether the caller runs on the loop's thread (where no hand-off is needed)."""
        return threading.get_ident() == self._ident

    @property
    def thread(self) -> threading.Thread:
        """The loop's thread."""
        return self._thread

    def start(self) -> None:
        """Start the loop thread and wait until the loop runs."""
        self._thread.start()
        self._started.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what is still running, stop the loop, and join its thread."""
        if not self._thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    def submit(self, coro: Coroutine[Any, Any, Any], deliver: Deliver, name: str) -> IoHandle:
        """Run ``coro`` on the loop and hand its outcome to ``deliver``.

        ``deliver(outcome, trace_carrier)`` is called on the loop thread; it must only
        enqueue (tell a message), never do work. Called on the loop thread itself (by an
        actor that runs on the loop), the task is created at once, without a hand-off.
        """
        handle = IoHandle(name, self, deliver)
        self.run_with(handle, coro)
        return handle

    def run_with(self, handle: IoHandle, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` on the loop and hand its outcome to ``handle.deliver``.

        :meth:`submit` with a handle made by the caller (an :class:`IoHandle` subclass).
        """
        context = contextvars.copy_context()
        if threading.get_ident() == self._ident:
            handle._task = self.loop.create_task(_outcome(coro, handle), context=context)
        else:
            self._handoff.call(self._start, handle, coro, context)

    def cleanup(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a clean-up coroutine (closing a client) that the shutdown waits for.

        Actors call this from ``stopped()``: the coroutine runs now, and when the system
        stops, the loop gives clean-ups up to 2 seconds to finish before it cancels what
        is still running.
        """

        def start() -> None:
            task = self.loop.create_task(_settle(coro, name))
            self._cleanups.add(task)
            task.add_done_callback(self._cleanups.discard)

        try:
            self.loop.call_soon_threadsafe(start)
        except RuntimeError:  # the loop is closed: nothing is left to clean up
            coro.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop from another thread and wait for its result.

        For set-up and shut-down code outside actors (opening a database before the
        first message). Raises :class:`BlockingCallError` on the loop thread.
        """
        if threading.current_thread() is self._thread:
            coro.close()
            msg = "IoBridge.run() called on the I/O loop thread; await the coroutine instead"
            raise BlockingCallError(msg)
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def _start(
        self, handle: IoHandle, coro: Coroutine[Any, Any, Any], context: contextvars.Context
    ) -> None:
        if handle._cancelled:
            coro.close()
            handle.deliver(_cancelled(handle.name), None)
            return
        handle._task = self.loop.create_task(_outcome(coro, handle), context=context)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._ident = threading.get_ident()
        forbid_blocking("the I/O loop thread")
        self.loop.call_soon(self._started.set)
        try:
            self.loop.run_forever()
        finally:
            self._drain()

    def _drain(self) -> None:
        if self._cleanups:
            self.loop.run_until_complete(asyncio.wait(set(self._cleanups), timeout=2.0))
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


async def _outcome(coro: Coroutine[Any, Any, Any], handle: IoHandle) -> None:
    handle._started = True
    name = handle.name
    if handle._cancelled:  # cancelled between its creation and this first step
        coro.close()
        handle.deliver(_cancelled(name), None)
        return
    if not otel.enabled():
        handle.deliver(await _settle(coro, name), None)
        return
    carrier = otel.inject()  # the starter's trace: this task's context is its own copy
    if carrier is None or not otel.trace_actors():
        # The coroutine runs in its starter's trace (if any), with no span of its own:
        # I/O is a span only in the opt-in debugging mode, and only inside a trace.
        handle.deliver(await _settle(coro, name), carrier)
        return
    with otel.tracer().start_as_current_span(f"io {name}"):
        outcome = await _settle(coro, name)
        handle.deliver(outcome, otel.inject())


async def _settle(coro: Coroutine[Any, Any, Any], name: str) -> object:
    try:
        return await coro
    except asyncio.CancelledError:
        return _cancelled(name)
    except AskError as exc:
        return exc.failure
    except Exception as exc:  # noqa: BLE001 - becomes an internal Failure, logged here
        _log.error("coroutine raised", coroutine=name, exception=plain_traceback(exc))
        return Failure(
            kind=FailureKind.INTERNAL,
            message=f"{name} raised {type(exc).__name__}: {exc}",
            details={"exception": type(exc).__qualname__},
        )


def _cancelled(name: str) -> Failure:
    return Failure(kind=FailureKind.CANCELLED, message=f"{name} was cancelled")
