"""The ``group`` kind: ``before(args)``, then a reactor's steps, then ``after(args, result)``.

``after`` runs whether the steps succeeded or not, like a ``finally``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dsl.kinds._composite import CompositeKind
from dsl.kinds._kind import register
from dsl.kinds._spec import StepDef

if TYPE_CHECKING:
    from dsl._reactor import Reactor

__all__ = ["GroupImpl", "GroupKind", "group"]


@dataclass(frozen=True, slots=True)
class GroupImpl:
    """Run ``before(args)``, then ``reactor``, then ``after(args, result)``."""

    reactor: type[Reactor]
    before: Callable[[dict[str, Any]], Any] | None = None
    after: Callable[[dict[str, Any], Any], Any] | None = None


class GroupKind(CompositeKind[GroupImpl]):
    """Steps that run a reactor between a setup and a teardown."""

    name = "group"
    impl = GroupImpl


register(GroupKind())


def group(
    reactor: type[Reactor],
    /,
    *,
    before: Callable[[dict[str, Any]], Any] | None = None,
    after: Callable[[dict[str, Any], Any], Any] | None = None,
    **args: Any,
) -> Any:
    """Run ``before(args)``, then ``reactor``'s steps, then ``after(args, result)``.

    ``after`` runs whether the steps succeeded or not (with ``None`` as the result when
    they failed), like a ``finally``; ``before`` and ``after`` may be ``async``.
    """
    return StepDef(impl=GroupImpl(reactor, before, after), sources=args)
