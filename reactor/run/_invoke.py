"""Calling user code (and engine coroutines) so that whatever it does becomes a value.

A step's function, hook or composite may raise anything, take too long, or belong on
another thread: these helpers run it where it belongs (``async def`` on the event loop,
a plain ``def`` in the worker pool), under the step's timeout and trace context, and
turn its return or its exception into an :class:`Outcome` (:class:`Ok` or
:class:`Err`). Nothing here touches the run's state: the outcome goes back to the run
as a message.

User code may raise any :class:`BaseException`, not only an :class:`Exception`: a
step that calls ``sys.exit()`` or raises ``KeyboardInterrupt`` or ``GeneratorExit``
must fail its own step, never the event loop it runs on (asyncio re-raises
``SystemExit`` and ``KeyboardInterrupt`` out of the loop, which would take every run,
the Store's reads and the supervisor down with it). :func:`caught` decides: everything
becomes an :class:`Err` except the cancellation of the task itself, which must go on
propagating so that a cancelled attempt stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias

from opentelemetry import context as otel_context

__all__ = [
    "Err",
    "Ok",
    "Outcome",
    "call_any",
    "call_async",
    "call_sync",
    "caught",
    "guarded",
    "positional",
]


class Ok:
    """An attempt's (or a hook's) return value."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Err:
    """An attempt's (or a hook's) exception, as a value."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


Outcome: TypeAlias = Ok | Err
"""How an attempt ended, as the run receives it."""


def caught(error: BaseException) -> Err:
    """``error`` from user code as a value; re-raises the cancellation of this task.

    A ``CancelledError`` is the task being cancelled (the attempt was given up on) only
    while the current task is cancelling; one raised by user code on its own is just
    its failure. Anything else, ``SystemExit`` and ``KeyboardInterrupt`` included, is
    the step's failure.
    """
    if isinstance(error, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise error
    return Err(error)


async def call_async(
    fn: Callable[..., Any], kwargs: dict[str, Any], timeout: float | None, ctx: Any
) -> Outcome:
    """Await ``fn(**kwargs)`` on the loop, within ``timeout`` seconds, in trace ``ctx``."""
    token = otel_context.attach(ctx) if ctx is not None else None
    try:
        if timeout is None:
            return Ok(await fn(**kwargs))
        async with asyncio.timeout(timeout):
            return Ok(await fn(**kwargs))
    except BaseException as exc:  # noqa: BLE001 - the step's failure is a value here
        return caught(exc)
    finally:
        if token is not None:
            otel_context.detach(token)


def _in_context(fn: Callable[..., Any], kwargs: dict[str, Any], ctx: Any) -> Outcome:
    """In the worker thread: the call's outcome as a value.

    An exception must not cross to the loop through the future: asyncio would throw it
    into the awaiting coroutine chain, and a thrown ``GeneratorExit`` closes the chain
    instead of reaching the ``except`` that turns it into the step's failure.
    """
    token = otel_context.attach(ctx) if ctx is not None else None
    try:
        return Ok(fn(**kwargs))
    except BaseException as exc:  # noqa: BLE001 - the step's failure is a value here
        return Err(exc)
    finally:
        if token is not None:
            otel_context.detach(token)


async def call_sync(
    pool: ThreadPoolExecutor,
    fn: Callable[..., Any],
    kwargs: dict[str, Any],
    timeout: float | None,
    ctx: Any,
) -> Outcome:
    """Call ``fn(**kwargs)`` in ``pool``; past ``timeout`` its late result is ignored."""
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(pool, _in_context, fn, kwargs, ctx)
        if timeout is None:
            return await future
        return await asyncio.wait_for(future, timeout)
    except BaseException as exc:  # noqa: BLE001 - the step's failure is a value here
        return caught(exc)


async def call_any(
    pool: ThreadPoolExecutor, fn: Callable[..., Any], kwargs: dict[str, Any], ctx: Any
) -> Outcome:
    """Call a hook (compensate, undo) where its kind belongs: the loop or the pool."""
    if asyncio.iscoroutinefunction(fn):
        return await call_async(fn, kwargs, None, ctx)
    outcome = await call_sync(pool, fn, kwargs, None, ctx)
    if isinstance(outcome, Ok) and asyncio.iscoroutine(outcome.value):
        try:
            return Ok(await outcome.value)
        except BaseException as exc:  # noqa: BLE001 - see caught()
            return caught(exc)
    return outcome


async def guarded(coro: Coroutine[Any, Any, Any], timeout: float | None, ctx: Any) -> Outcome:
    """Await an engine coroutine (a composite's) within ``timeout``, in trace ``ctx``."""
    token = otel_context.attach(ctx) if ctx is not None else None
    try:
        if timeout is None:
            return Ok(await coro)
        async with asyncio.timeout(timeout):
            return Ok(await coro)
    except BaseException as exc:  # noqa: BLE001 - see caught()
        return caught(exc)
    finally:
        if token is not None:
            otel_context.detach(token)


async def positional(coro: Coroutine[Any, Any, Outcome]) -> Outcome:
    """``coro`` as a coroutine object of its own (for ``pipe_to_self``'s label)."""
    return await coro
