"""The ``compose`` kind: run another reactor as one step.

Its inputs are the step's arguments. Journaled (when added while running) by the
reactor's :func:`~dsl.locate` string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dsl.kinds._composite import CompositeKind
from dsl.kinds._kind import register
from dsl.kinds._spec import StepDef

if TYPE_CHECKING:
    from dsl._reactor import Reactor

__all__ = ["ComposeImpl", "ComposeKind", "compose"]


@dataclass(frozen=True, slots=True)
class ComposeImpl:
    """Run another reactor as this step (its inputs are this step's arguments)."""

    reactor: type[Reactor]


class ComposeKind(CompositeKind[ComposeImpl]):
    """Steps that run another reactor, whose result is theirs."""

    name = "compose"
    impl = ComposeImpl

    def describe(self, impl: ComposeImpl) -> dict[str, Any]:
        """``{"reactor": "module:Reactor"}``."""
        from dsl._reactor import locate  # noqa: PLC0415 - the modules refer to each other

        return {"reactor": locate(impl.reactor)}

    def rebuild(self, data: Mapping[str, Any]) -> ComposeImpl:
        """The reactor found again from its locator."""
        from dsl._reactor import find  # noqa: PLC0415

        return ComposeImpl(find(data["reactor"]))


register(ComposeKind())


def compose(reactor: type[Reactor], /, **args: Any) -> Any:
    """Run ``reactor`` as one step; its inputs bind by name, or to the sources given."""
    return StepDef(impl=ComposeImpl(reactor), sources=args)
