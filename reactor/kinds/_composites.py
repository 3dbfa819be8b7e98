"""How the composite steps run: coroutines on the event loop that run child runs.

``compose``, ``for_each``, ``switch``, ``group`` and ``around`` each run other reactors.

A child run is a Run actor of its own with its own journal stream, named after its
parent, the step, the attempt and (for ``for_each``) the element's index, so that after
a crash the parent's re-run of the step finds each child's journal and continues it:
children that completed are not run again.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from dsl import AroundImpl, ComposeImpl, ForEachImpl, GroupImpl, Impl, SwitchImpl
from reactor.run import ChildRunner

__all__ = ["run_composite"]


def _inputs_of(reactor: type[Any], arguments: dict[str, Any]) -> dict[str, Any]:
    wanted = reactor.__plan__.inputs
    return {k: v for k, v in arguments.items() if k in wanted}


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _for_each(impl: ForEachImpl, arguments: dict[str, Any], child: ChildRunner) -> list[Any]:
    items = list(arguments[impl.over])
    shared = _inputs_of(impl.reactor, arguments)
    gate = asyncio.Semaphore(impl.batch_size)

    async def one(index: int, item: Any) -> Any:
        async with gate:
            return await child(impl.reactor, {**shared, impl.element: item}, str(index))

    async with asyncio.TaskGroup() as tasks:
        futures = [tasks.create_task(one(i, item)) for i, item in enumerate(items)]
        if not impl.ordered:
            finished = [await f for f in asyncio.as_completed(futures)]
    return [f.result() for f in futures] if impl.ordered else finished


async def _switch(impl: SwitchImpl, arguments: dict[str, Any], child: ChildRunner) -> Any:
    on = arguments[impl.on]
    chosen = impl.default
    for predicate, reactor in impl.cases:
        if await _maybe_await(predicate(on)):
            chosen = reactor
            break
    if chosen is None:
        return None
    return await child(chosen, _inputs_of(chosen, arguments), chosen.__name__)


async def _group(impl: GroupImpl, arguments: dict[str, Any], child: ChildRunner) -> Any:
    if impl.before is not None:
        await _maybe_await(impl.before(dict(arguments)))
    try:
        result = await child(impl.reactor, _inputs_of(impl.reactor, arguments))
    except BaseException:
        if impl.after is not None:
            await _maybe_await(impl.after(dict(arguments), None))
        raise
    if impl.after is not None:
        await _maybe_await(impl.after(dict(arguments), result))
    return result


async def run_composite(impl: Impl, arguments: dict[str, Any], child: ChildRunner) -> Any:
    """Run a composite step's child reactors; returns the step's result."""
    match impl:
        case ComposeImpl():
            return await child(impl.reactor, _inputs_of(impl.reactor, arguments))
        case ForEachImpl():
            return await _for_each(impl, arguments, child)
        case SwitchImpl():
            return await _switch(impl, arguments, child)
        case GroupImpl():
            return await _group(impl, arguments, child)
        case AroundImpl():
            reactor = impl.reactor

            async def run(inputs: dict[str, Any]) -> Any:
                return await child(reactor, _inputs_of(reactor, inputs))

            return await impl.wrapper(dict(arguments), run)
        case _:
            msg = f"{type(impl).__name__} is not a composite step"
            raise TypeError(msg)
