"""Running a ``switch`` step: the first branch whose predicate holds, as a child run."""

from __future__ import annotations

from typing import Any

from dsl import SwitchImpl
from reactor.kinds._composite import CompositeExecutor, inputs_of, maybe_await
from reactor.run import ChildRunner

__all__ = ["SwitchExecutor"]


class SwitchExecutor(CompositeExecutor[SwitchImpl]):
    """Chooses a branch (predicates may be ``async``); ``None`` when none holds."""

    async def body(self, impl: SwitchImpl, arguments: dict[str, Any], child: ChildRunner) -> Any:
        """The chosen branch's child run, named after its reactor."""
        on = arguments[impl.on]
        chosen = impl.default
        for predicate, reactor in impl.cases:
            if await maybe_await(predicate(on)):
                chosen = reactor
                break
        if chosen is None:
            return None
        return await child(chosen, inputs_of(chosen, arguments), chosen.__name__)
