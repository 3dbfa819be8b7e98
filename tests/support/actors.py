"""Actors and messages that many runtime tests share."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from actors import Actor, Failure, Message, Ref, Request


class Pong(Message, frozen=True, kw_only=True):
    """Answer to :class:`Ping`."""

    n: int
    by: str = ""


class Ping(Request[Pong], frozen=True, kw_only=True):
    """Answered at once with ``n + 1``."""

    n: int = 0


class Sleep(Request[Pong], frozen=True, kw_only=True):
    """Answered after ``seconds`` of (non-blocking) I/O."""

    seconds: float
    n: int = 0


class Hang(Request[Pong], frozen=True, kw_only=True):
    """Deferred and never answered."""


class Crash(Request[Pong], frozen=True, kw_only=True):
    """Makes the handler raise."""

    why: str = "boom"


class Forward(Request[Pong], frozen=True, kw_only=True):
    """Ask the next actor in ``path`` (by name), then answer with its answer."""

    path: list[str]
    n: int = 0
    io_seconds: float = 0.0


class Note(Message, frozen=True, kw_only=True):
    """A one-way message that is recorded."""

    text: str


class Echo(Actor[Ping | Sleep | Hang | Crash | Note]):
    """Answers Ping at once, Sleep after I/O, never answers Hang, raises on Crash."""

    def __init__(self, record: list[str] | None = None) -> None:
        super().__init__()
        self.record = record if record is not None else []

    def receive(self, message: Ping | Sleep | Hang | Crash | Note) -> object:
        """Handle one test message."""
        match message:
            case Ping(n=n):
                return Pong(n=n + 1, by=self.name)
            case Sleep(seconds=seconds, n=n):
                reply = self.defer_reply()
                self.pipe_to_self(
                    asyncio.sleep(seconds, result=n),
                    lambda out: reply.send(out if isinstance(out, Failure) else Pong(n=out)),
                )
                return None
            case Hang():
                self.defer_reply()
                return None
            case Crash(why=why):
                raise RuntimeError(why)
            case Note(text=text):
                self.record.append(text)
                return None


class Hop(Actor[Forward]):
    """Forwards along a path of actor names; the last one answers (after optional I/O)."""

    def receive(self, message: Forward) -> object:
        """Forward or answer."""
        reply = self.defer_reply()
        if message.path:
            nxt: Ref[Any] = self.runtime.lookup(message.path[0])
            onward = Forward(path=message.path[1:], n=message.n + 1, io_seconds=message.io_seconds)
            self.ask(nxt, onward, reply.send)
        elif message.io_seconds:
            self.pipe_to_self(
                asyncio.sleep(message.io_seconds, result=message.n),
                lambda out: reply.send(out if isinstance(out, Failure) else Pong(n=out)),
                name="sleep",
            )
        else:
            reply.send(Pong(n=message.n, by=self.name))
        return None


class Block(Message, frozen=True, kw_only=True):
    """Keeps the actor's thread busy until the test opens the gate (tests only)."""


class Gated(Actor[Block | Ping | Crash]):
    """Records the Pings it handles; Block waits on a gate so the mailbox fills up."""

    def __init__(
        self, gate: threading.Event, handled: list[int], blocked: threading.Event | None = None
    ) -> None:
        super().__init__()
        self.gate = gate
        self.handled = handled
        self.blocked = blocked

    def receive(self, message: Block | Ping | Crash) -> object:
        """Handle one test message."""
        match message:
            case Block():
                # Deliberately blocking, so that later messages queue behind it.
                if self.blocked is not None:
                    self.blocked.set()  # the Block left the mailbox
                self.gate.wait(10)
                return None
            case Ping(n=n):
                self.handled.append(n)
                return Pong(n=n + 1)
            case Crash(why=why):
                raise RuntimeError(why)
