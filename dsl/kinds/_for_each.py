"""The ``for_each`` kind: run a reactor once per element of a collection.

The collection is the argument ``over``; each element goes to one input of the reactor
(``element``), the reactor's other inputs bind like any composite's. The result is the
list of the runs' results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dsl.kinds._binding import Binder
from dsl.kinds._composite import CompositeKind, returned_type
from dsl.kinds._kind import register
from dsl.kinds._spec import StepDef

if TYPE_CHECKING:
    from dsl._reactor import Reactor

__all__ = ["ForEachImpl", "ForEachKind", "for_each"]


@dataclass(frozen=True, slots=True)
class ForEachImpl:
    """Run ``reactor`` once per element of the argument ``over``.

    Attributes:
        reactor: The reactor run per element.
        over: The argument holding the collection.
        element: The reactor input that receives each element.
        batch_size: At most this many elements run at once.
        ordered: Results in element order (``True``) or in completion order.
    """

    reactor: type[Reactor]
    over: str
    element: str
    batch_size: int = 100
    ordered: bool = True


class ForEachKind(CompositeKind[ForEachImpl]):
    """Steps that map a reactor over a collection."""

    name = "for_each"
    impl = ForEachImpl
    special = {"__over__": "over"}  # noqa: RUF012 - a class constant, never changed

    def result_type(self, impl: ForEachImpl) -> Any:
        """``list[T]`` when the reactor declares it returns ``T`` (else ``Any``)."""
        kind = returned_type((impl.reactor,))
        return Any if kind is Any else list[kind]  # type: ignore[valid-type]

    def complete(self, impl: ForEachImpl, binder: Binder) -> ForEachImpl:
        """The element input (default: the reactor's first) must exist; batches >= 1."""
        inputs = impl.reactor.__plan__.inputs
        element = impl.element or next(iter(inputs), "")
        if element not in inputs:
            binder.fail(
                f"{impl.reactor.__name__} has no input {element!r} to receive each element",
                "element",
            )
        if impl.batch_size < 1:
            binder.fail(f"batch_size must be >= 1, got {impl.batch_size!r}", "batch_size")
        return ForEachImpl(impl.reactor, impl.over, element, impl.batch_size, impl.ordered)

    def fed(self, impl: ForEachImpl) -> frozenset[str]:
        """The element input."""
        return frozenset({impl.element})


register(ForEachKind())


def for_each(
    over: Any,
    reactor: type[Reactor],
    /,
    *,
    element: str | None = None,
    batch_size: int = 100,
    ordered: bool = True,
    **args: Any,
) -> Any:
    """Run ``reactor`` once per element of ``over`` (a source); the result is a list.

    Args:
        over: Where the collection comes from (``ref("docs")``).
        reactor: The reactor run per element.
        element: Its input that receives the element (default: its first input).
        batch_size: At most this many elements run at once.
        ordered: Results in the collection's order; otherwise in completion order.
        **args: Sources for its other inputs (by default bound by name).
    """
    impl = ForEachImpl(
        reactor=reactor,
        over="__over__",
        element=element or "",
        batch_size=batch_size,
        ordered=ordered,
    )
    return StepDef(impl=impl, sources={"__over__": over, **args})
