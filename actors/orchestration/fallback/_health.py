"""Health-based reordering of a chain's links: outlier ejection with a floor (pure).

Modelled on Envoy's outlier detection: a link that fails ``eject_after`` times in a
row is ejected, and the n-th ejection lasts ``min(n * base, max)`` (so a link that keeps
failing stays out longer: 30 s, 60 s, 90 s, ... up to 300 s by default). An ejected
link is not dropped: it is demoted behind the healthy ones, and promoted back in its
configured place once its ejection ends; each success after that shortens the next
ejection again. The floor: at most ``max_ejected_percent`` of the links are ejected at
once (at least one may be), and never all of them, so a chain always has a link in
front that is tried first.

Separately, a link whose server said when to come back (``retry_after`` on a 429, an
open breaker's next probe) is *cooling*: it is passed over until then, and when every
remaining link is cooling the chain waits for the earliest one, within the deadline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Health", "LinkHealth"]


@dataclass(slots=True)
class LinkHealth:
    """One link's record."""

    consecutive: int = 0
    ejections: int = 0
    ejected_until: float = 0.0
    cool_until: float = 0.0
    successes: int = 0
    failures: int = 0


@dataclass(slots=True)
class Health:
    """Every link's record, and the order they are tried in."""

    size: int
    eject_after: int = 3
    base_s: float = 30.0
    max_s: float = 300.0
    max_percent: float = 50.0
    links: list[LinkHealth] = field(default_factory=list)
    clear_after: float = field(init=False, default=0.0)
    """When every ejection made so far is over: before then ``order`` has work to do,
    after it the configured order holds (kept by :meth:`failure`, which ejects)."""

    def __post_init__(self) -> None:
        if not self.links:
            self.links = [LinkHealth() for _ in range(self.size)]
        self.clear_after = max((record.ejected_until for record in self.links), default=0.0)

    def ejected(self, index: int, now: float) -> bool:
        """Whether the link is ejected now."""
        return self.links[index].ejected_until > now

    def order(self, now: float) -> list[int]:
        """Healthy links in their configured order, then ejected ones, soonest back first."""
        if self.clear_after <= now:
            return list(range(self.size))  # nothing ejected: the configured order
        healthy = [i for i in range(self.size) if not self.ejected(i, now)]
        out = sorted(
            (i for i in range(self.size) if self.ejected(i, now)),
            key=lambda i: self.links[i].ejected_until,
        )
        return healthy + out

    def cooling_until(self, index: int, now: float) -> float | None:
        """When a cooling link may be tried again (``None``: it is not cooling)."""
        until = self.links[index].cool_until
        return until if until > now else None

    def success(self, index: int, now: float) -> None:
        """A good answer: the failure streak ends; a past ejection weighs less."""
        record = self.links[index]
        record.consecutive = 0
        record.successes += 1
        record.cool_until = 0.0
        if record.ejections and record.ejected_until <= now:
            record.ejections -= 1

    def failure(self, index: int, now: float, retry_after: float | None = None) -> bool:
        """A failure that says something about the link; ``True`` when it is ejected now."""
        record = self.links[index]
        record.failures += 1
        record.consecutive += 1
        if retry_after:
            record.cool_until = max(record.cool_until, now + retry_after)
        if record.consecutive < self.eject_after or self.ejected(index, now):
            return False
        if not self._may_eject(now):
            return False
        record.ejections += 1
        record.consecutive = 0
        # A fresh ejection replaces the old deadline (not the shorter of the two).
        record.ejected_until = now + min(record.ejections * self.base_s, self.max_s)
        self.clear_after = max(self.clear_after, record.ejected_until)
        return True

    def _may_eject(self, now: float) -> bool:
        ejected = sum(self.ejected(i, now) for i in range(self.size))
        allowed = max(1, math.floor(self.size * self.max_percent / 100.0))
        return ejected + 1 <= allowed and ejected + 1 < self.size
