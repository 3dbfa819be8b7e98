"""Running an ``around`` step: the user's wrapper, which runs the child run inside it."""

from __future__ import annotations

from typing import Any

from dsl import AroundImpl
from reactor.kinds._composite import CompositeExecutor, inputs_of
from reactor.run import ChildRunner

__all__ = ["AroundExecutor"]


class AroundExecutor(CompositeExecutor[AroundImpl]):
    """``await wrapper(args, run)``; ``await run(args)`` is the child run."""

    async def body(self, impl: AroundImpl, arguments: dict[str, Any], child: ChildRunner) -> Any:
        """What the wrapper returns."""
        reactor = impl.reactor

        async def run(inputs: dict[str, Any]) -> Any:
            return await child(reactor, inputs_of(reactor, inputs))

        return await impl.wrapper(dict(arguments), run)
