"""Hand-made run journal events, for tests that fold or show a run without running it."""

from __future__ import annotations

from typing import Any

import msgspec

from reactor.run import Owner, RunStarted, StepError

T0 = 1_700_000_000.0
"""When the hand-made runs start (a fixed time, so views and tables are predictable)."""

OWNER = Owner(host="somewhere-else", pid=1, started_at=T0 - 10)
"""A process on another host: its runs are never taken for this process's own."""


def run_started(run_id: str = "r1", reactor: str = "Demo", at: float = T0) -> RunStarted:
    """The first event of run ``run_id`` of ``reactor``, owned by :data:`OWNER`."""
    return RunStarted(
        run_id=run_id,
        reactor=reactor,
        locator=f"/tmp/demo.py:{reactor}",
        inputs=msgspec.Raw(b'{"topic":"actors"}'),
        options={"max_concurrency": 4},
        owner=OWNER,
        at=at,
    )


def raw_json(value: Any) -> msgspec.Raw:
    """``value`` as the journal stores it (JSON)."""
    return msgspec.Raw(msgspec.json.encode(value))


def step_error(
    step: str, message: str, kind: str = "error", error: str = "ValueError"
) -> StepError:
    """A step's error as a run journals it."""
    return StepError(step=step, kind=kind, error=error, message=message)
