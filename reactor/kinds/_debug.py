"""Running a ``debug`` step: one structlog line with the arguments, at once; the result is None."""

from __future__ import annotations

import structlog

from dsl import DebugImpl
from reactor.run import Attempt, Cancellable, StepExecutor

__all__ = ["DebugExecutor", "log"]

log = structlog.get_logger("reactor.debug")


class DebugExecutor(StepExecutor):
    """Logs the arguments without leaving the run."""

    def start(self, attempt: Attempt[DebugImpl]) -> Cancellable | None:
        """Log at the step's level; ``None`` is the result."""
        fields = {
            "run_id": attempt.run_id,
            "reactor": attempt.reactor,
            "step": attempt.spec.name,
            "arguments": dict(attempt.arguments),
        }
        if attempt.context_values:
            fields["context"] = dict(attempt.context_values)
        getattr(log, attempt.impl.level)("debug step", **fields)
        attempt.succeed(None)
        return None
