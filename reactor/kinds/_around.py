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
        """What the wrapper returns.

        Each ``run`` call is a child run of its own (a wrapper may retry a transaction):
        the first is named after the attempt, the n-th after it with ``/n``, so a re-run
        attempt after a crash finds each again, in the order the wrapper made them.
        """
        reactor = impl.reactor
        calls = 0

        async def run(inputs: dict[str, Any]) -> Any:
            nonlocal calls
            calls += 1
            suffix = "" if calls == 1 else str(calls)
            return await child(reactor, inputs_of(reactor, inputs), suffix)

        return await impl.wrapper(dict(arguments), run)
