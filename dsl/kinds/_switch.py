"""The ``switch`` kind: run the first branch whose predicate holds.

The predicates look at the argument ``on``; each branch is a reactor whose inputs bind
like any composite's. Without a matching branch or a default, the result is ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dsl._sources import Source
from dsl.kinds._binding import Binder
from dsl.kinds._composite import CompositeKind, returned_type
from dsl.kinds._kind import register
from dsl.kinds._spec import StepDef

if TYPE_CHECKING:
    from dsl._reactor import Reactor

__all__ = ["SwitchImpl", "SwitchKind", "switch"]


@dataclass(frozen=True, slots=True)
class SwitchImpl:
    """Run the first branch whose predicate holds for the argument ``on``.

    Attributes:
        on: The argument the predicates look at.
        cases: ``(predicate, reactor)`` pairs, tried in order.
        default: The reactor when no predicate holds (``None``: the result is ``None``).
    """

    on: str
    cases: tuple[tuple[Callable[[Any], bool], type[Reactor]], ...]
    default: type[Reactor] | None = None


class SwitchKind(CompositeKind[SwitchImpl]):
    """Steps that choose one of several reactors."""

    name = "switch"
    impl = SwitchImpl
    special = {"__on__": "on"}  # noqa: RUF012 - a class constant, never changed

    def sub_reactors(self, impl: SwitchImpl) -> tuple[type[Reactor], ...]:
        """Every branch, then the default."""
        branches = [reactor for _, reactor in impl.cases]
        return (*branches, *([impl.default] if impl.default else []))

    def result_type(self, impl: SwitchImpl) -> Any:
        """The branches' common result type; ``| None`` without a default (no branch ran)."""
        kind = returned_type(self.sub_reactors(impl))
        if kind is Any or impl.default is not None:
            return kind
        try:
            return kind | None
        except TypeError:  # an annotation that does not combine: decoded as JSON then
            return Any

    def bind(
        self, impl: SwitchImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[SwitchImpl, dict[str, Source]]:
        """Each case must be a ``(predicate, Reactor)`` pair; then like any composite."""
        for number, case in enumerate(impl.cases, 1):
            if not (isinstance(case, tuple) and len(case) == 2 and callable(case[0])):
                binder.fail(f"case {number} must be a (predicate, Reactor) pair, got {case!r}")
        return super().bind(impl, sources, binder)


register(SwitchKind())


def switch(
    on: Any,
    /,
    cases: Sequence[tuple[Callable[[Any], bool], type[Reactor]]],
    *,
    default: type[Reactor] | None = None,
    **args: Any,
) -> Any:
    """Run the first reactor in ``cases`` whose predicate holds for ``on`` (a source).

    ``default`` runs when none holds (without one, the step's result is ``None``). Each
    branch's inputs bind by name, or to the sources given.
    """
    impl = SwitchImpl(on="__on__", cases=tuple(cases), default=default)
    return StepDef(impl=impl, sources={"__on__": on, **args})
