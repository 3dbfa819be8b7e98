"""The shared services every actor of one System uses."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from actors._bridge import IoBridge
from actors._bus import DeadLetters, EventBus
from actors._errors import ActorNotFound, DuplicateActorName
from actors._loop import LoopScheduler, LoopTimers
from actors._timers import Timers

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from actors._actor import Ref

__all__ = ["Runtime"]


class Runtime:
    """Timers, the I/O bridge and its run queue, the bus, dead letters and the names."""

    def __init__(
        self,
        name: str,
        default_timeout: float,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        self.name = name
        self.default_timeout = default_timeout
        self.bridge = IoBridge(f"{name}-io", loop_factory)
        self.scheduler = LoopScheduler(self.bridge)
        """The run queue of the actors that run on the I/O loop."""
        self.loop_timers = LoopTimers(self.bridge)
        """Their timers (on the loop thread; see :class:`~actors._loop.LoopTimers`)."""
        self.timers = Timers(f"{name}-timers")
        self.bus = EventBus()
        self.dead_letters = DeadLetters()
        self._names: dict[str, Ref[Any]] = {}
        self._names_lock = threading.Lock()

    def register(self, ref: Ref[Any]) -> None:
        """Claim ``ref.name`` for ``ref``."""
        with self._names_lock:
            if ref.name in self._names:
                raise self.duplicate(ref.name)
            self._names[ref.name] = ref

    def is_registered(self, name: str) -> bool:
        """Whether ``name`` is taken."""
        return name in self._names

    def duplicate(self, name: str) -> DuplicateActorName:
        """The error for a second actor asking for ``name``."""
        msg = f"an actor named {name!r} is already running in system {self.name!r}"
        return DuplicateActorName(msg)

    def unregister(self, name: str) -> None:
        """Release a name (the child will not come back)."""
        with self._names_lock:
            self._names.pop(name, None)

    def lookup(self, name: str) -> Ref[Any]:
        """The ref registered under ``name``."""
        try:
            return self._names[name]
        except KeyError:
            known = ", ".join(sorted(self._names)) or "none"
            msg = f"no actor named {name!r} in system {self.name!r} (running: {known})"
            raise ActorNotFound(msg) from None

    def names(self) -> list[str]:
        """Every registered name."""
        with self._names_lock:
            return list(self._names)
