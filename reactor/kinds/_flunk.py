"""Running a ``flunk`` step: fail at once with a :class:`~reactor.run.ForcedFailureError`."""

from __future__ import annotations

from dsl import FlunkImpl
from reactor.run import Attempt, Cancellable, ForcedFailureError, StepExecutor

__all__ = ["FlunkExecutor"]


class FlunkExecutor(StepExecutor):
    """Fails every attempt, with the message rendered from the arguments."""

    def start(self, attempt: Attempt[FlunkImpl]) -> Cancellable | None:
        """The forced failure (or the template's own error, if it cannot be rendered)."""
        try:
            message = attempt.impl.message.format_map(attempt.arguments)
        except (KeyError, IndexError, AttributeError, ValueError) as exc:
            attempt.fail(exc)
            return None
        attempt.fail(ForcedFailureError(message, attempt.arguments))
        return None
