"""Running a ``for_each`` step: one child run per element, at most ``batch_size`` at once."""

from __future__ import annotations

import asyncio
from typing import Any

from dsl import ForEachImpl
from reactor.kinds._composite import CompositeExecutor, inputs_of
from reactor.run import ChildRunner

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

        async def one(index: int, item: Any) -> Any:
            async with gate:
                return await child(impl.reactor, {**shared, impl.element: item}, str(index))

        async with asyncio.TaskGroup() as tasks:
            futures = [tasks.create_task(one(i, item)) for i, item in enumerate(items)]
            if not impl.ordered:
                finished = [await f for f in asyncio.as_completed(futures)]
        return [f.result() for f in futures] if impl.ordered else finished
