"""A circuit breaker per model: closed, open, half-open.

The breaker is plain state (no threads, no I/O): the ModelHost actor owns one per model,
touches it only from its own thread, and publishes the transitions it returns.

Rules:

1. **Closed.** Every call is let through. The outcome of each call goes into a sliding
   window of the last ``window`` calls. The breaker opens after ``failure_threshold``
   consecutive counted failures, or when at least ``min_calls`` calls are in the window
   and the share of counted failures among them reaches ``failure_rate``.
2. **Open.** Every call fails fast (``circuit_open``) for the open time. The first open
   lasts ``open_s``; each time a probe fails the open time is multiplied by ``backoff``,
   up to ``max_open_s``. A rate-limit failure's ``retry_after`` stretches it when longer.
3. **Half-open.** Once the open time is over (the owner calls :meth:`Breaker.expire`
   then, so that the state is published without waiting for a call), up to
   ``half_open_probes`` calls are let through at once. When that many have succeeded
   the breaker closes (and forgets its history); any counted failure opens it again,
   for longer.

Only failure kinds in ``counted`` move the breaker: a ``bad_request`` says nothing about
the server's health, so by default it does not count (nor do context-window, content
policy, not-found, budget or cancellation failures). An uncounted outcome of a probe just
frees its slot.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from actors import FailureKind
from actors.llm._config import BreakerConfig
from actors.llm._messages import BreakerState

__all__ = ["Breaker", "Transition"]


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state, for the event bus and the span."""

    from_state: BreakerState
    to_state: BreakerState
    reason: str
    open_for_s: float | None = None


@dataclass(slots=True)
class Breaker:
    """One model's breaker, set by a :class:`~actors.llm.BreakerConfig` (rules above)."""

    settings: BreakerConfig = field(default_factory=BreakerConfig)
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    consecutive: int = 0
    opened: int = 0
    """How many times it opened in a row without closing (drives the backoff)."""
    open_until: float = 0.0
    probes_in_flight: int = 0
    probe_successes: int = 0
    _window: collections.deque[bool] = field(default_factory=collections.deque)

    # -- asking -------------------------------------------------------------------------

    def rejects(self) -> bool:
        """Whether a call now would be refused (without taking a probe slot)."""
        if self.state is BreakerState.CLOSED:
            return False
        if self.state is BreakerState.OPEN:
            return self.clock() < self.open_until
        return self.probes_in_flight >= self.settings.half_open_probes

    def retry_in(self) -> float:
        """Seconds until the breaker lets a probe through (0 when it would now)."""
        if self.state is BreakerState.OPEN:
            return max(0.0, self.open_until - self.clock())
        return 0.0

    def expire(self) -> Transition | None:
        """Half-open an open breaker whose open time is over (no call needed to notice).

        Without it the breaker would half-open only when a call asks, and a router that
        skips open breakers (the Selector reads the state the host publishes) would
        never send the probe that closes it. ``None`` while the open time runs.
        """
        if self.state is not BreakerState.OPEN or self.clock() < self.open_until:
            return None
        self.probes_in_flight = 0
        self.probe_successes = 0
        return self._move(BreakerState.HALF_OPEN, "open time over; probing")

    def acquire(self) -> tuple[bool, Transition | None]:
        """Take permission for one call: (allowed, the transition it caused, if any)."""
        transition = None
        if self.state is BreakerState.OPEN:
            if self.clock() < self.open_until:
                return False, None
            transition = self._move(BreakerState.HALF_OPEN, "open time over; probing")
            self.probes_in_flight = 0
            self.probe_successes = 0
        if self.state is BreakerState.HALF_OPEN:
            if self.probes_in_flight >= self.settings.half_open_probes:
                return False, transition
            self.probes_in_flight += 1
        return True, transition

    # -- outcomes -----------------------------------------------------------------------

    def success(self, *, probe: bool = True) -> Transition | None:
        """Record a successful call.

        ``probe`` says whether the call held a half-open probe slot: one sent before the
        breaker opened that ends while it is half-open counts as a success, but frees no
        slot (it held none), so the probes in flight stay within ``half_open_probes``.
        """
        if self.state is BreakerState.HALF_OPEN:
            if probe:
                self.probes_in_flight = max(0, self.probes_in_flight - 1)
            self.probe_successes += 1
            if self.probe_successes >= self.settings.half_open_probes:
                return self._close(f"{self.probe_successes} probe(s) succeeded")
            return None
        self.consecutive = 0
        self._record(ok=True)
        return None

    def failure(
        self, kind: FailureKind, *, retry_after: float | None = None, probe: bool = True
    ) -> Transition | None:
        """Record a failed call of ``kind``.

        ``probe`` says whether this call held a half-open probe slot (a failure counted
        for a whole host arrives for models that had no call in flight).
        """
        counted = kind in self.settings.counted
        if self.state is BreakerState.HALF_OPEN:
            if probe:
                self.probes_in_flight = max(0, self.probes_in_flight - 1)
            if not counted:
                return None
            return self._open(f"probe failed ({kind})", retry_after, escalate=True)
        if self.state is BreakerState.OPEN or not counted:
            if self.state is BreakerState.CLOSED:
                self._record(ok=True)
            return None
        self.consecutive += 1
        self._record(ok=False)
        if self.consecutive >= self.settings.failure_threshold:
            return self._open(
                f"{self.consecutive} consecutive failures (last: {kind})", retry_after
            )
        failures = self._window.count(False)
        calls = len(self._window)
        if calls >= self.settings.min_calls and failures / calls >= self.settings.failure_rate:
            return self._open(
                f"failure rate {failures}/{calls} reached "
                f"{self.settings.failure_rate:.0%} (last: {kind})",
                retry_after,
            )
        return None

    def release(self) -> None:
        """Free a probe slot without an outcome (the call was cancelled)."""
        if self.state is BreakerState.HALF_OPEN:
            self.probes_in_flight = max(0, self.probes_in_flight - 1)

    # -- internals ----------------------------------------------------------------------

    def _record(self, *, ok: bool) -> None:
        self._window.append(ok)
        while len(self._window) > self.settings.window:
            self._window.popleft()

    def _open(
        self, reason: str, retry_after: float | None, *, escalate: bool = False
    ) -> Transition:
        s = self.settings
        if escalate:
            self.opened += 1
        open_for = min(s.max_open_s, s.open_s * s.backoff**self.opened)
        if retry_after is not None:
            open_for = max(open_for, min(retry_after, s.max_open_s))
        self.open_until = self.clock() + open_for
        self.probes_in_flight = 0
        self.probe_successes = 0
        return self._move(BreakerState.OPEN, reason, open_for)

    def _close(self, reason: str) -> Transition:
        self.consecutive = 0
        self.opened = 0
        self.probes_in_flight = 0
        self._window.clear()
        return self._move(BreakerState.CLOSED, reason)

    def _move(self, to: BreakerState, reason: str, open_for: float | None = None) -> Transition:
        transition = Transition(self.state, to, reason, open_for)
        self.state = to
        return transition
