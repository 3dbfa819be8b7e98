"""Running a ``function`` step: call it where it belongs, under its timeout.

``async def`` runs on the event loop, a plain ``def`` in the worker pool; a parameter
annotated :class:`~dsl.StepContext` gets the attempt's context.
"""

from __future__ import annotations

from typing import Any

from dsl import FunctionImpl
from reactor.run import Attempt, Cancellable, StepExecutor

__all__ = ["FunctionExecutor"]


class FunctionExecutor(StepExecutor):
    """Calls the step's function with its arguments."""

    def start(self, attempt: Attempt[FunctionImpl]) -> Cancellable:
        """Call the function; its return or exception is the outcome."""
        impl = attempt.impl
        kwargs: dict[str, Any] = attempt.arguments
        if impl.context_param is not None:
            kwargs = {**kwargs, impl.context_param: attempt.context}
        return attempt.call(impl.fn, kwargs, is_async=impl.is_async)
