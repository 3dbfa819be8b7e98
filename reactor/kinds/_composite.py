"""What the composite executors share: child runs, and undoing them.

``compose``, ``for_each``, ``switch``, ``group`` and ``around`` each run other reactors,
as coroutines on the event loop. A child run is a Run actor of its own with its own
journal stream, named after its parent, the step, the attempt and (for ``for_each``)
the element's index, so that after a crash the parent's re-run of the step finds each
child's journal and continues it: children that completed are not run again. When the
parent rolls back, the child runs this step completed are rolled back, newest first.
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from reactor.run import (
    Attempt,
    Cancellable,
    ChildRunner,
    RunCancelledError,
    RunFailedError,
    StepError,
    StepExecutor,
)

__all__ = ["CompositeExecutor", "child_cause", "inputs_of", "maybe_await"]

I = TypeVar("I")  # noqa: E741 - the kind's definition class


def child_cause(error: Exception) -> StepError:
    """What a child run's failure was: its first step error, a cancel, or the exception."""
    if isinstance(error, RunFailedError) and error.errors:
        return error.errors[0]
    if isinstance(error, RunCancelledError):
        kind, message = "cancelled", error.reason
    else:
        kind, message = "error", str(error) or repr(error)
    return StepError(step="", kind=kind, error=type(error).__name__, message=message)


def inputs_of(reactor: type[Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments that are ``reactor``'s inputs."""
    wanted = reactor.__plan__.inputs
    return {k: v for k, v in arguments.items() if k in wanted}


async def maybe_await(value: Any) -> Any:
    """``value``, awaited if it is awaitable (hooks may be ``async`` or not)."""
    return await value if inspect.isawaitable(value) else value


class CompositeExecutor(StepExecutor, Generic[I]):
    """Runs a coroutine that runs child runs; undoes them on rollback."""

    @abstractmethod
    def body(
        self, impl: I, arguments: dict[str, Any], child: ChildRunner
    ) -> Coroutine[Any, Any, Any]:
        """The coroutine whose result is the step's."""

    def start(self, attempt: Attempt[I]) -> Cancellable:
        """Run :meth:`body` on the loop under the step's timeout."""
        return attempt.run(self.body(attempt.impl, attempt.arguments, attempt.run_child))

    def undo(self, attempt: Attempt[I], value: Any) -> Coroutine[Any, Any, Any]:
        """Roll back the child runs the completed attempt ran, newest first."""
        return attempt.services.undo_children(attempt.child_prefix)
