"""The daemon's live feed: run activity on the bus, and one broadcaster for SSE clients.

:class:`RunActivity` events are published on the system's bus by :class:`HubMiddleware`
(a run started, a step moved, a run finished), beside the bus's own events (breaker
transitions, model loads, resource snapshots, actors started and restarted). The
:class:`Broadcaster` takes every bus event once, numbers it, keeps the last
``keep`` for clients that reconnect with ``Last-Event-ID``, and wakes every waiting SSE
client with one future: publishing costs the same for one subscriber or a thousand.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import msgspec

from actors import Event, EventBus
from reactor.run import Middleware, RunInfo, RunOutcome, StepEvent

__all__ = ["Broadcaster", "ConversationActivity", "HubMiddleware", "RunActivity", "SessionActivity"]


class RunActivity(Event, frozen=True, kw_only=True):
    """Something happened to a run: ``kind`` is ``run_started``, ``step`` or ``run_finished``.

    Attributes:
        run_id: The run.
        reactor: Its reactor.
        kind: What happened.
        step: The step (for ``step``).
        status: The step event (``start``, ``complete``, ...) or the run's outcome.
        detail: An error message, a halt reason.
        at: When.
    """

    run_id: str
    reactor: str
    kind: str
    step: str = ""
    status: str = ""
    detail: str = ""
    at: float = 0.0


class SessionActivity(Event, frozen=True, kw_only=True):
    """A reasoning session changed through the daemon (REST or MCP).

    Attributes:
        session_id: The session.
        agent: The agent that made the change.
        operation: ``initiate_reasoning_session``, ``add_reasoning_step``,
            ``execute_orchestrated_decision``, ``decision_finished``, ``add_participants``.
        status: The decision's status (for decisions), else empty.
        at: When.
    """

    session_id: str
    agent: str
    operation: str
    status: str = ""
    at: float = 0.0


class ConversationActivity(Event, frozen=True, kw_only=True):
    """A conversation changed through the daemon.

    ``started`` (before a team it starts runs), ``said`` (a message sent, or each
    message of a team as it is said), ``ended`` (the team that started it stopped) or
    ``resumed`` (a resumed team stopped).
    """

    conversation_id: str
    operation: str
    at: float = 0.0


class HubMiddleware(Middleware):
    """Publishes each run's activity on the bus (hooks must be quick: publishing is)."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def run_started(self, run: RunInfo) -> None:
        """A run started or resumed."""
        status = "resumed" if run.resumed else "started"
        self._publish(run, "run_started", status=status)

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        """A step moved."""
        detail = str(getattr(event.error, "message", "") or event.detail or "")
        self._publish(run, "step", step=event.step, status=event.kind.value, detail=detail)

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        """A run ended."""
        detail = outcome.reason or "; ".join(str(getattr(e, "message", e)) for e in outcome.errors)
        self._publish(run, "run_finished", status=outcome.status, detail=detail)

    def _publish(self, run: RunInfo, kind: str, **fields: Any) -> None:
        if run.parent is not None:
            return  # composed runs show through their parent
        self._bus.publish(
            RunActivity(run_id=run.run_id, reactor=run.reactor, kind=kind, at=time.time(), **fields)
        )


_encode = msgspec.json.Encoder(enc_hook=str).encode


class Broadcaster:
    """Numbered events for SSE clients, on the I/O loop (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, keep: int = 1000) -> None:
        self._loop = loop
        self._events: collections.deque[tuple[int, str, bytes]] = collections.deque(maxlen=keep)
        self._next = 1
        self._changed: asyncio.Future[None] = loop.create_future()
        self._runs: dict[str, asyncio.Event] = {}
        self.closed = False
        self.pump: asyncio.Task[None] | None = None

    @property
    def last_id(self) -> int:
        """The id of the newest event (0: none yet)."""
        return self._next - 1

    def publish(self, event: object) -> None:
        """Number and keep ``event``, and wake every client (on the loop)."""
        name = type(event).__name__
        self._events.append((self._next, name, _encode(event)))
        self._next += 1
        if isinstance(event, RunActivity):
            waiting = self._runs.get(event.run_id)
            if waiting is not None:
                waiting.set()
                if event.kind == "run_finished":
                    del self._runs[event.run_id]
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, self._loop.create_future()
        changed.set_result(None)

    def close(self) -> None:
        """End every stream (the daemon is stopping)."""
        self.closed = True
        if self.pump is not None:
            self.pump.cancel()
        self._wake()
        for each in self._runs.values():
            each.set()

    def since(self, after: int) -> Iterator[tuple[int, str, bytes]]:
        """The kept events numbered after ``after``."""
        for each in self._events:
            if each[0] > after:
                yield each

    async def wait(self, timeout: float | None = None) -> None:
        """Until the next event (or ``timeout`` seconds)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._changed), timeout)

    async def wait_run(self, run_id: str, timeout: float) -> None:
        """Until the run's next activity (or ``timeout`` seconds)."""
        event = self._runs.get(run_id)
        if event is None:
            event = self._runs[run_id] = asyncio.Event()
        event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
