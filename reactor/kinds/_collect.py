"""Running a ``collect`` step: its arguments, as a dict, at once."""

from __future__ import annotations

from dsl import CollectImpl
from reactor.run import Attempt, Cancellable, StepExecutor

__all__ = ["CollectExecutor"]


class CollectExecutor(StepExecutor):
    """Gathers the arguments without leaving the run."""

    def start(self, attempt: Attempt[CollectImpl]) -> Cancellable | None:
        """A dict of the arguments."""
        attempt.succeed(dict(attempt.arguments))
        return None
