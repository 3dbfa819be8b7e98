"""How the engine calls a step's hooks, settled once when the step is bound.

Users write hooks the way that reads best to them, and a hook that cannot be called
is a :class:`~dsl.DefinitionError` when the reactor class is defined, not a failure in
the middle of a rollback. :func:`adapt_hook` checks each hook's signature and returns
a callable with the one calling convention the executor uses:

* ``undo`` is called as ``undo(value=..., arguments=...)`` and ``compensate`` as
  ``compensate(error=..., arguments=...)``. The user's function may take the two by
  keyword under those names (in any order, keyword-only included) or positionally,
  under any names (``lambda v, args: ...``).
* ``where`` and ``guard`` are called as ``fn(arguments, context)``, where ``context`` is
  the run's context (a read-only mapping, see ``Engine.start(context=...)``). The
  user's function takes the arguments alone (``lambda args: ...``), or also the context:
  as a second positional parameter or a parameter named ``context``.

An ``async def`` ``undo`` or ``compensate`` stays a coroutine function once adapted, so
the executor still runs it on the event loop rather than in the worker pool. ``where``
and ``guard`` are called when the step is dispatched, so they must be plain functions.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["HOOK_PARAMETERS", "adapt_hook"]

HOOK_PARAMETERS: Mapping[str, tuple[str, str]] = {
    "undo": ("value", "arguments"),
    "compensate": ("error", "arguments"),
    "where": ("arguments", "context"),
    "guard": ("arguments", "context"),
}
"""The parameters each hook is given, in order."""

_SENTINEL = object()


def adapt_hook(option: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` made callable the executor's way for hook ``option`` (see the module).

    Raises:
        TypeError: ``fn`` cannot take what the hook is given; the message says what
            it should take (the binder turns it into a ``DefinitionError``).
    """
    if option in ("where", "guard") and inspect.iscoroutinefunction(fn):
        msg = (
            f"must be a plain function, not async def: it decides when the step is "
            f"dispatched (an async {_name(fn)} would return a coroutine, read as its answer)"
        )
        raise TypeError(msg)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return _as_is(option, fn)  # a builtin without a signature: trust it
    first, second = HOOK_PARAMETERS[option]
    if option in ("where", "guard"):
        return _predicate(fn, signature, first, second)
    if _binds(signature, **{first: _SENTINEL, second: _SENTINEL}):
        return fn  # already takes them by keyword, under these names
    if _binds(signature, _SENTINEL, _SENTINEL):
        return _positional(fn, (first, second))
    msg = (
        f"must take ({first}, {second}), positionally or by keyword; "
        f"{_name(fn)} takes {_shown(signature)}"
    )
    raise TypeError(msg)


def _predicate(
    fn: Callable[..., Any], signature: inspect.Signature, first: str, second: str
) -> Callable[..., Any]:
    """``where`` and ``guard``: ``(arguments)``, ``(arguments, context)`` or ``context=``."""
    takes_one = _binds(signature, _SENTINEL)
    if not takes_one and _binds(signature, _SENTINEL, _SENTINEL):
        return fn  # (arguments, context) already
    if second in signature.parameters and _binds(signature, _SENTINEL, **{second: _SENTINEL}):
        return _keyword_context(fn, second)
    if takes_one:
        return _without_context(fn)
    msg = f"must take ({first}) or ({first}, {second}); {_name(fn)} takes {_shown(signature)}"
    raise TypeError(msg)


def _binds(signature: inspect.Signature, *args: Any, **kwargs: Any) -> bool:
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        return False
    return True


def _as_is(option: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if option in ("where", "guard"):
        return _without_context(fn)
    return _positional(fn, HOOK_PARAMETERS[option])


def _positional(fn: Callable[..., Any], order: tuple[str, str]) -> Callable[..., Any]:
    first, second = order
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def call_async(**given: Any) -> Any:
            return await fn(given[first], given[second])

        return call_async

    @functools.wraps(fn)
    def call(**given: Any) -> Any:
        return fn(given[first], given[second])

    return call


def _without_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(arguments: Any, _context: Any) -> Any:
        return fn(arguments)

    return call


def _keyword_context(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(arguments: Any, context: Any) -> Any:
        return fn(arguments, **{name: context})

    return call


def _name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__qualname__', None) or type(fn).__name__}()"


def _shown(signature: inspect.Signature) -> str:
    params = [p.name for p in signature.parameters.values()]
    return f"({', '.join(params)})" if params else "no arguments"
