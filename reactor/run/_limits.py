"""Concurrency keys: one limit on running steps, shared by every run that names the key.

A run started with ``concurrency_key="gpu"`` takes a slot from the pool ``"gpu"``
before it dispatches a step and gives it back when the step finishes; runs composed by
it share its key. The pool's size is set by the first run that uses the key (its
``max_concurrency``) unless :meth:`Limits.configure` set it. Nothing blocks: when the
pool is empty, the run is told (a message) once a slot is free.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable

__all__ = ["Limits"]


class _Pool:
    __slots__ = ("limit", "used", "waiters")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.waiters: collections.deque[Callable[[], None]] = collections.deque()


class Limits:
    """Every concurrency-key pool of one engine (thread-safe)."""

    def __init__(self) -> None:
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()

    def configure(self, key: str, limit: int) -> None:
        """Set the size of the pool ``key`` (before or while it is used)."""
        if limit < 1:
            msg = f"concurrency key {key!r}: limit {limit} must be at least 1"
            raise ValueError(msg)
        with self._lock:
            pool = self._pools.setdefault(key, _Pool(limit))
            pool.limit = limit

    def try_acquire(self, key: str, default_limit: int, wake: Callable[[], None]) -> bool:
        """Take a slot, or register ``wake`` (called once, later, when one frees up)."""
        with self._lock:
            pool = self._pools.setdefault(key, _Pool(default_limit))
            if pool.used < pool.limit:
                pool.used += 1
                return True
            if wake not in pool.waiters:
                pool.waiters.append(wake)
            return False

    def release(self, key: str) -> None:
        """Give a slot back and wake every waiter.

        Each woken run tries again, and the ones that find no slot wait again: a run
        woken while it no longer wants a slot (it is rolling back, say) cannot leave
        the others asleep.
        """
        with self._lock:
            pool = self._pools[key]
            pool.used -= 1
            waiters = list(pool.waiters)
            pool.waiters.clear()
        for wake in waiters:
            wake()

    def in_use(self, key: str) -> int:
        """Slots of ``key`` taken now."""
        with self._lock:
            pool = self._pools.get(key)
            return pool.used if pool else 0
