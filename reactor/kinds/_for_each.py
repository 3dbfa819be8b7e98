"""Running a ``for_each`` step: one child run per element, at most ``batch_size`` at once.

When an element fails, the others still running are cancelled (each rolls itself back,
and is waited for) and the step fails with :class:`~reactor.run.ElementFailedError`:
the element's index, kind and own message. The elements that completed stay completed
here; the run's rollback undoes them, newest first, before the steps that completed
earlier. An element that halts lets the others finish, then halts the step (a resume
runs it again, and the finished elements answer from their journals).
"""

from __future__ import annotations

import asyncio
from typing import Any

from dsl import ForEachImpl
from reactor.kinds._composite import CompositeExecutor, child_cause, inputs_of
from reactor.run import (
    ChildRunner,
    ElementFailedError,
    RunHaltedError,
)

__all__ = ["ForEachExecutor"]


class ForEachExecutor(CompositeExecutor[ForEachImpl]):
    """Maps the reactor over the collection; the results in order (or as they end)."""

    async def body(
        self, impl: ForEachImpl, arguments: dict[str, Any], child: ChildRunner
    ) -> list[Any]:
        """A child run per element, named by its index."""
        items = list(arguments[impl.over])
        shared = inputs_of(impl.reactor, arguments)
        gate = asyncio.Semaphore(impl.batch_size)
        results: dict[int, Any] = {}
        finished: list[int] = []  # completion order, for unordered results
        failures: list[tuple[int, Exception]] = []  # in the order they happened
        tasks: list[asyncio.Task[None]] = []

        async def one(index: int, item: Any) -> None:
            try:
                async with gate:
                    inputs = {**shared, impl.element: item}
                    results[index] = await child(impl.reactor, inputs, str(index))
            except Exception as exc:  # noqa: BLE001 - an element's failure is the step's
                failures.append((index, exc))
                if not isinstance(exc, RunHaltedError):
                    for task in tasks:
                        task.cancel()  # stop the others: the step has failed
                return
            finished.append(index)

        tasks.extend(asyncio.create_task(one(i, item)) for i, item in enumerate(items))
        if tasks:
            try:
                await asyncio.wait(tasks)
            except asyncio.CancelledError:
                for task in tasks:
                    task.cancel()
                await asyncio.wait(tasks)  # each cancelled element rolls itself back first
                raise
        failed = [(i, e) for i, e in failures if not isinstance(e, RunHaltedError)]
        if failed:
            index, error = failed[0]
            raise element_error(impl, index, error) from error
        if failures:
            raise failures[0][1]  # every failure is a halt: the step halts
        return [results[i] for i in (range(len(items)) if impl.ordered else finished)]


def element_error(impl: ForEachImpl, index: int, error: Exception) -> ElementFailedError:
    """The step's error for element ``index``'s failure: its kind and its own message."""
    cause = child_cause(error)
    return ElementFailedError(
        run_id=getattr(error, "run_id", ""),
        reactor=impl.reactor.__plan__.reactor,
        index=index,
        cause=cause,
    )
