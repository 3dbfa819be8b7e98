"""Running a ``compose`` step: one child run of the composed reactor."""

from __future__ import annotations

from typing import Any

from dsl import ComposeImpl
from reactor.kinds._composite import CompositeExecutor, inputs_of
from reactor.run import ChildRunner

__all__ = ["ComposeExecutor"]


class ComposeExecutor(CompositeExecutor[ComposeImpl]):
    """Runs the composed reactor; its result is the step's."""

    async def body(self, impl: ComposeImpl, arguments: dict[str, Any], child: ChildRunner) -> Any:
        """One child run."""
        return await child(impl.reactor, inputs_of(impl.reactor, arguments))
