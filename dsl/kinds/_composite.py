"""What the composite kinds share: binding the inputs of the reactors they run.

A composite step (``compose``, ``for_each``, ``switch``, ``group``, ``around``) runs other
reactors; its arguments are those reactors' inputs, each bound by name or to a source
given by keyword. Composites are drawn as subroutine boxes and take no common options
(their keywords are the inputs' sources).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from dsl._sources import Ref, Source
from dsl.kinds._binding import Binder, suggest
from dsl.kinds._kind import StepKind

if TYPE_CHECKING:
    from dsl._reactor import Reactor

__all__ = ["CompositeKind", "returned_type"]

I = TypeVar("I")  # noqa: E741 - the kind's definition class


class CompositeKind(StepKind[I]):
    """A kind whose steps run other reactors (subclasses say which, and check the rest).

    Attributes:
        special: Source keys that are not inputs of the reactors run (``__over__``) to
            the argument name errors show (``over``).
    """

    shape = ("[[", "]]")
    special: ClassVar[Mapping[str, str]] = {}

    def sub_reactors(self, impl: I) -> tuple[type[Reactor], ...]:
        """``(impl.reactor,)``; a kind that runs several says so."""
        return (impl.reactor,)  # type: ignore[attr-defined]

    def result_type(self, impl: I) -> Any:
        """The type the reactors run declare they return, when they agree (else ``Any``).

        A composite's result is one of its reactors' results, so a replayed run decodes
        it as that reactor's return step would be (a dataclass stays a dataclass).
        """
        return returned_type(self.sub_reactors(impl))

    def complete(self, impl: I, binder: Binder) -> I:
        """Check what only this kind has, filling in defaults taken from the reactor."""
        return impl

    def fed(self, impl: I) -> frozenset[str]:
        """Inputs of the reactors run that the kind fills in itself (not arguments)."""
        return frozenset()

    def bind(
        self, impl: I, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[I, dict[str, Source]]:
        """The reactors' inputs, by name or as given; the special sources as given."""
        from dsl._reactor import Reactor  # noqa: PLC0415 - the modules refer to each other

        reactors = self.sub_reactors(impl)
        for sub in reactors:
            if not (isinstance(sub, type) and issubclass(sub, Reactor)) or sub is Reactor:
                binder.fail(f"{sub!r} is not a Reactor subclass")
        arguments: dict[str, Source] = {}
        for key, shown in self.special.items():
            if key in sources:
                arguments[key] = binder.source(shown, sources[key])
        impl = self.complete(impl, binder)
        arguments.update(self._inputs(reactors, self.fed(impl), sources, binder))
        return impl, arguments

    def _inputs(
        self,
        reactors: tuple[type[Reactor], ...],
        skip: frozenset[str],
        sources: Mapping[str, Any],
        binder: Binder,
    ) -> dict[str, Source]:
        wanted: dict[str, bool] = {}  # input name -> required by some reactor
        for sub in reactors:
            for input_name, spec in sub.__plan__.inputs.items():
                if input_name not in skip:
                    wanted[input_name] = wanted.get(input_name, False) or spec.required
        for argument in sources:
            if argument not in self.special and argument not in wanted:
                names = ", ".join(r.__name__ for r in reactors)
                binder.fail(f"{names} has no input {argument!r}", argument)
        arguments: dict[str, Source] = {}
        for input_name, required in wanted.items():
            if input_name in sources:
                arguments[input_name] = binder.source(input_name, sources[input_name])
            elif binder.gettable(input_name):
                arguments[input_name] = Ref(input_name)
            elif required:
                if input_name == binder.step:
                    binder.fail("a step cannot take its own result", input_name)
                binder.fail(
                    f"the input {input_name!r} of "
                    f"{'/'.join(r.__name__ for r in reactors)} has no input or step of that "
                    f"name here{suggest(input_name, binder.names)}; pass {input_name}=ref(...)",
                    input_name,
                )
        return arguments


def returned_type(reactors: tuple[type[Reactor], ...]) -> Any:
    """The result type the return steps of ``reactors`` declare, if they all declare one."""
    kinds = []
    for reactor in reactors:
        plan = getattr(reactor, "__plan__", None)
        step = None if plan is None else plan.steps.get(plan.returns)
        if step is None:
            return Any
        kinds.append(step.result_type)
    if not kinds or any(k is Any for k in kinds) or any(k != kinds[0] for k in kinds):
        return Any
    return kinds[0]
