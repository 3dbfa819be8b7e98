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
from reactor.run import (
    ChildRunner,
    ElementFailedError,
    RunCancelledError,
    RunFailedError,
    RunHaltedError,
    StepError,
)

__all__ = ["run_composite"]


def _inputs_of(reactor: type[Any], arguments: dict[str, Any]) -> dict[str, Any]:
    wanted = reactor.__plan__.inputs
    return {k: v for k, v in arguments.items() if k in wanted}


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _for_each(impl: ForEachImpl, arguments: dict[str, Any], child: ChildRunner) -> list[Any]:
    """One child run per element, at most ``batch_size`` at once.

    When an element fails, the others still running are cancelled (each rolls itself
    back, and is waited for) and the step fails with :class:`ElementFailedError`: the
    element's index, kind and own message. The elements that had completed stay
    completed here; the run's rollback undoes them, newest first. An element that
    halts lets the others finish, then halts the step (a resume runs it again and
    the finished elements answer from their journals).
    """
    items = list(arguments[impl.over])
    shared = _inputs_of(impl.reactor, arguments)
    gate = asyncio.Semaphore(impl.batch_size)
    results: dict[int, Any] = {}
    finished: list[int] = []  # completion order, for unordered results
    failures: list[tuple[int, Exception]] = []  # in the order they happened
    tasks: list[asyncio.Task[None]] = []

    async def one(index: int, item: Any) -> None:
        try:
            async with gate:
                results[index] = await child(
                    impl.reactor, {**shared, impl.element: item}, str(index)
                )
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
        raise _element_error(impl, index, error) from error
    if failures:
        raise failures[0][1]  # every failure is a halt: the step halts
    return [results[i] for i in (range(len(items)) if impl.ordered else finished)]


def _element_error(impl: ForEachImpl, index: int, error: Exception) -> ElementFailedError:
    """The step's error for element ``index``'s failure: its kind and its own message."""
    if isinstance(error, RunFailedError) and error.errors:
        cause = error.errors[0]
    elif isinstance(error, RunCancelledError):
        cause = StepError(
            step="", kind="cancelled", error=type(error).__name__, message=error.reason
        )
    else:
        cause = StepError(
            step="", kind="error", error=type(error).__name__, message=str(error) or repr(error)
        )
    return ElementFailedError(
        run_id=getattr(error, "run_id", ""),
        reactor=impl.reactor.__plan__.reactor,
        index=index,
        cause=cause,
    )


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
