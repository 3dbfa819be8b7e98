"""Asks whose answer is handled where it arrives, not in the asking actor's next turn.

A Selector or a FallbackChain stands between a caller and a model host. With a plain
``Actor.ask`` the host's answer waits in the router's mailbox for its next turn, and
that turn comes after the host's own bookkeeping turn: two turns of the loop between
the answer arriving and the caller hearing of it, on every call. :func:`ask_early`
hands the answer to a function at once, where the host resolves it (on the I/O loop
as the HTTP response is read; on the timer thread when the deadline passes). The
function may build the caller's answer from objects the request owns and answer it,
but it must leave the router's state alone: it queues what the router must learn as
a message to it, *before* answering the caller, so that whatever the caller sends
next is handled after that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
import structlog

import otel
from actors import Failure, FailureKind, Message, Ref
from actors.lowlevel import Reply, TimerHandle

__all__ = ["EarlyReply", "ask_early"]

_log = structlog.get_logger("actors.orchestration")


class _Timers(Protocol):
    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle: ...


class _Bridge(Protocol):
    def on_loop_thread(self) -> bool: ...


class Runtime(Protocol):
    """What :func:`ask_early` needs of an actor's ``runtime``."""

    @property
    def timers(self) -> _Timers: ...
    @property
    def loop_timers(self) -> _Timers: ...
    @property
    def bridge(self) -> _Bridge: ...


class EarlyReply(Reply):
    """A reply slot that calls ``handle(answer)`` wherever it is resolved (see the module)."""

    __slots__ = ("_asked", "_handle", "_message", "timer", "waited")

    def __init__(self, handle: Callable[[object], object], asked: str, message: str) -> None:
        super().__init__()
        self._handle = handle
        self._asked = asked
        self._message = message
        self.timer: TimerHandle | None = None
        self.waited = 0.0

    def __call__(self) -> None:
        """The deadline passed with no answer: answer ``timeout`` (the timer calls this)."""
        if not self._claimed:
            self.resolve(
                Failure(
                    kind=FailureKind.TIMEOUT,
                    message=f"no answer from {self._asked!r} to {self._message} "
                    f"within {self.waited:.3g}s",
                    source=self._asked,
                )
            )

    def _deliver(self, value: object) -> None:
        timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()
        try:
            self._handle(value)
        except Exception:  # noqa: BLE001 - a bug of ours: logged, never raised into the host
            _log.exception("handling an answer where it arrived failed", asked=self._asked)


def ask_early(
    runtime: Runtime,
    ref: Ref[Any],
    message: Message,
    handle: Callable[[object], object],
    *,
    timeout: float,
) -> None:
    """Send ``message`` to ``ref``; ``handle(answer)`` runs where the answer is resolved.

    The answer is the result, or a :class:`~actors.Failure` (``timeout`` after
    ``timeout`` seconds, or at the message's own deadline if that comes first;
    ``actor_stopped`` when ``ref`` is not running, handled before this returns).
    The message carries the current trace context, as an ask's does. The deadline's
    timer is a loop timer when called on the I/O loop (a loop actor's turn: no lock, no
    timer thread), else the runtime's timer thread.
    """
    now = time.time()
    deadline = message.deadline
    carrier = message.trace
    if deadline is None or deadline > now + timeout:
        deadline = now + timeout
        message = msgspec.structs.replace(message, deadline=deadline)
    if carrier is None and otel.enabled():
        message = msgspec.structs.replace(message, trace=otel.inject())
    reply = EarlyReply(handle, ref.name, type(message).__name__)
    reply.waited = waited = max(deadline - now, 0.0)
    timers = runtime.loop_timers if runtime.bridge.on_loop_thread() else runtime.timers
    reply.timer = timers.call_later(waited, reply)
    ref.send_request(message, reply)
