"""Running a ``collect`` step: its arguments, as a dict (or transformed), at once."""

from __future__ import annotations

from dsl import CollectImpl
from reactor.run import Attempt, Cancellable, StepExecutor

__all__ = ["CollectExecutor"]


class CollectExecutor(StepExecutor):
    """Gathers the arguments without leaving the run."""

    def start(self, attempt: Attempt[CollectImpl]) -> Cancellable | None:
        """A dict of the arguments, or its ``transform``'s result (or error)."""
        collected = dict(attempt.arguments)
        transform = attempt.impl.transform
        if transform is None:
            attempt.succeed(collected)
            return None
        try:
            result = transform(collected)
        except BaseException as exc:  # noqa: BLE001 - user code fails only its step
            attempt.fail(exc)
            return None
        attempt.succeed(result)
        return None
