"""Which threads must never block: actor threads, the I/O loop, any running event loop."""

from __future__ import annotations

import asyncio
import threading

from actors._errors import BlockingCallError

__all__ = ["check_may_block", "forbid_blocking"]

_local = threading.local()


def forbid_blocking(where: str) -> None:
    """Mark the current thread as one that must never wait (named for the error)."""
    _local.forbidden = where


def check_may_block(call: str, instead: str | None = None) -> None:
    """Raise :class:`BlockingCallError` if the current thread must not block.

    That is an actor's thread, the system's I/O loop, and any thread that is running
    an asyncio event loop right now (a blocking call there freezes every task on it).

    Args:
        call: What would block, for the message (``"System.start()"``).
        instead: What asyncio code should write instead (``"async with System()"``);
            by default the advice for a blocking ask.
    """
    where: str | None = getattr(_local, "forbidden", None)
    if where is None and asyncio._get_running_loop() is not None:
        where = "the running asyncio event loop"
    if where is None:
        return
    if instead is None:
        advice = (
            "from an actor use self.ask(ref, message, then=...), "
            "from asyncio code use await ref.ask_async(...)"
        )
    else:
        advice = f"from asyncio code use {instead}"
    msg = f"{call} would block {where}; {advice}"
    raise BlockingCallError(msg)
