"""The ``around`` kind: wrap a reactor's steps in a coroutine of the user's.

``await wrapper(args, run)`` must ``await run(args)``: for a transaction, a lock, a
temporary directory, whatever must hold while the steps run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dsl.kinds._composite import CompositeKind
from dsl.kinds._kind import register
from dsl.kinds._spec import StepDef

if TYPE_CHECKING:
    from dsl._reactor import Reactor

__all__ = ["AroundImpl", "AroundKind", "Wrapper", "around"]

Wrapper = Callable[[dict[str, Any], Callable[[dict[str, Any]], Awaitable[Any]]], Awaitable[Any]]
"""``async def wrapper(args, run)``: must ``await run(args)``; returns the step's result."""


@dataclass(frozen=True, slots=True)
class AroundImpl:
    """``await wrapper(args, run)``, where ``await run(args)`` runs ``reactor``."""

    reactor: type[Reactor]
    wrapper: Wrapper


class AroundKind(CompositeKind[AroundImpl]):
    """Steps that run a reactor inside a wrapper coroutine."""

    name = "around"
    impl = AroundImpl

    def result_type(self, impl: AroundImpl) -> Any:
        """``Any``: the result is whatever the wrapper returns, not the reactor's."""
        return Any


register(AroundKind())


def around(reactor: type[Reactor], wrapper: Wrapper, /, **args: Any) -> Any:
    """Wrap ``reactor``'s steps: ``await wrapper(args, run)`` must ``await run(args)``.

    For a transaction, a lock, a temporary directory: whatever must hold while the
    steps run. What ``wrapper`` returns is the step's result.
    """
    return StepDef(impl=AroundImpl(reactor, wrapper), sources=args)
