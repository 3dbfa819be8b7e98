"""Running a ``template`` step: render it with the arguments, at once."""

from __future__ import annotations

from dsl import TemplateImpl
from reactor.run import Attempt, Cancellable, StepExecutor

__all__ = ["TemplateExecutor"]


class TemplateExecutor(StepExecutor):
    """Renders ``str.format`` templates without leaving the run."""

    def start(self, attempt: Attempt[TemplateImpl]) -> Cancellable | None:
        """The rendered text, or the formatting error."""
        try:
            attempt.succeed(attempt.impl.text.format_map(attempt.arguments))
        except (KeyError, IndexError, AttributeError, ValueError) as exc:
            attempt.fail(exc)
        return None
