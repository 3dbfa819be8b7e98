"""The ``recurse`` kind: run a reactor again and again, each result the next inputs.

The first iteration's inputs are the step's arguments (bound like any composite's);
each later iteration's inputs are the previous iteration's result, read as a mapping
of input names (a ``dict``, a dataclass or a ``msgspec.Struct``; keys that are not
inputs of the reactor are left out, inputs it does not give take their defaults).
After each iteration ``exit_condition(result)`` is asked (when given); a true answer
ends the step with that result. Reaching ``max_iterations`` ends it too, and also
successfully, with the last iteration's result (as Ash Reactor does).

Checked when the reactor is defined: ``max_iterations`` is an int >= 1, the step has
``max_iterations`` or ``exit_condition`` (or it could never stop), and, when the type of
the reactor's result is known (its returned step is a ``collect``, or a function
annotated with a ``TypedDict``, a dataclass or a ``msgspec.Struct``), that result gives
every required input. A result of a known type that is no mapping at all (``int``,
``str``, a ``list``) is refused too. A result whose type is not known (``dict``,
``Any``) is checked after each iteration instead.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from dsl._outcomes import WithSteps
from dsl.kinds._binding import Binder
from dsl.kinds._composite import CompositeKind
from dsl.kinds._kind import register
from dsl.kinds._spec import StepDef, StepSpec

if TYPE_CHECKING:
    from dsl._reactor import Reactor

__all__ = ["RecurseImpl", "RecurseKind", "recurse", "result_fields"]


@dataclass(frozen=True, slots=True)
class RecurseImpl:
    """Run ``reactor`` repeatedly, each iteration's result being the next one's inputs.

    Attributes:
        reactor: The reactor each iteration runs.
        max_iterations: At most this many iterations (``None``: until ``exit_condition``
            says stop); the last one's result is the step's.
        exit_condition: ``exit_condition(result) -> bool``, asked after each iteration
            (``async`` or not); true ends the step with that result.
    """

    reactor: type[Reactor]
    max_iterations: int | None = None
    exit_condition: Callable[[Any], Any] | None = None


class RecurseKind(CompositeKind[RecurseImpl]):
    """Steps that iterate a reactor on its own result."""

    name = "recurse"
    impl = RecurseImpl

    def complete(self, impl: RecurseImpl, binder: Binder) -> RecurseImpl:
        """The stopping options are sound, and the result can feed the next iteration."""
        most = impl.max_iterations
        if most is not None and (not isinstance(most, int) or isinstance(most, bool) or most < 1):
            binder.fail(f"max_iterations must be an int >= 1, got {most!r}", "max_iterations")
        condition = impl.exit_condition
        if condition is not None and not callable(condition):
            binder.fail(
                f"exit_condition must be a function of the result, got {condition!r}",
                "exit_condition",
            )
        if most is None and condition is None:
            binder.fail(
                "recurse needs max_iterations or exit_condition (or both): "
                "without either it would never stop"
            )
        problem = feedback_problem(impl.reactor)
        if problem is not None:
            binder.fail(problem, "reactor")
        return impl

    def describe(self, impl: RecurseImpl) -> dict[str, Any]:
        """``{"reactor": ..., "max_iterations": n, "exit_condition": "module:fn" | None}``."""
        from dsl._reactor import locate  # noqa: PLC0415 - the modules refer to each other

        condition = impl.exit_condition
        return {
            "reactor": locate(impl.reactor),
            "max_iterations": impl.max_iterations,
            "exit_condition": None if condition is None else locate(condition),
        }

    def rebuild(self, data: Mapping[str, Any]) -> RecurseImpl:
        """The reactor and the exit condition found again from their locators."""
        from dsl._reactor import find  # noqa: PLC0415

        condition = data.get("exit_condition")
        return RecurseImpl(
            find(data["reactor"]),
            data.get("max_iterations"),
            None if condition is None else find(condition),
        )


register(RecurseKind())


def recurse(
    reactor: type[Reactor],
    /,
    *,
    max_iterations: int | None = None,
    exit_condition: Callable[[Any], Any] | None = None,
    **args: Any,
) -> Any:
    """Run ``reactor`` repeatedly: the result of iteration ``i`` is the inputs of ``i + 1``.

    The step's result is the result of the last iteration run: the one for which
    ``exit_condition(result)`` was true, or iteration ``max_iterations``. Each iteration
    is a child run (``<run>/<step>.<attempt>/<i>``, ``i`` from 1): a resumed run does
    not run again the iterations that completed, and a rollback undoes the completed
    iterations newest first. A failing iteration fails the step, naming the iteration.

    Args:
        reactor: The reactor iterated; its result must be a mapping of its inputs.
        max_iterations: At most this many iterations (an int >= 1).
        exit_condition: ``exit_condition(result) -> bool`` after each iteration, on the
            event loop (``async def`` is awaited); it is asked again of the completed
            iterations' results when a run resumes, so keep it a pure function.
        **args: Sources for the first iteration's inputs (by default bound by name).
    """
    impl = RecurseImpl(reactor, max_iterations, exit_condition)
    return StepDef(impl=impl, sources=args)


# -- what the reactor's result can give -------------------------------------------------

_UNKNOWN: frozenset[str] | None = None
_NOT_A_MAPPING = frozenset({"\0not a mapping"})


def feedback_problem(reactor: type[Reactor]) -> str | None:
    """Why ``reactor``'s result cannot be its next inputs, when that is known; else ``None``."""
    plan = reactor.__plan__
    returned = plan.steps[plan.returns]
    fields, shown = _result_fields(returned)
    if fields is _UNKNOWN:
        return None
    what = f"its result (step {returned.name!r}, {shown})"
    if fields is _NOT_A_MAPPING:
        return (
            f"{plan.reactor} cannot be recursed: {what} is not a mapping of its inputs, "
            "so it cannot be the next iteration's inputs"
        )
    assert fields is not None
    missing = [n for n, spec in plan.inputs.items() if spec.required and n not in fields]
    if missing:
        return (
            f"{plan.reactor} cannot be recursed: {what} does not give its required "
            f"input{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}, "
            "and each iteration's result is the next iteration's inputs"
        )
    return None


def _result_fields(spec: StepSpec) -> tuple[frozenset[str] | None, str]:
    """The keys a step's result is known to have, and how to show its type.

    ``None`` when it is not known; :data:`_NOT_A_MAPPING` when it has no keys at all.
    """
    if spec.kind == "collect" and getattr(spec.impl, "transform", None) is None:
        keys = frozenset(spec.arguments)
        return keys, f"a collect of {', '.join(sorted(keys))}"
    annotation = spec.result_type
    fn = getattr(spec.impl, "fn", None)
    if annotation is Any and fn is not None:
        try:  # a string annotation (``from __future__ import annotations``), resolved
            annotation = typing.get_type_hints(fn).get("return", Any)
        except Exception:  # noqa: BLE001 - a name it cannot resolve: not known then
            return _UNKNOWN, ""
        if WithSteps in (annotation, *typing.get_args(annotation)):
            return _UNKNOWN, ""  # the value inside is the result, of no declared type
    return result_fields(annotation), _shown(annotation)


def result_fields(annotation: Any) -> frozenset[str] | None:
    """The keys a value of type ``annotation`` always has, when the type says.

    ``None``: not known (``Any``, ``dict``, a union); a set with no known key
    (:data:`_NOT_A_MAPPING`) for a type whose values are not mappings (``int``, ``list``).
    """
    if annotation is Any or annotation is object:
        return _UNKNOWN
    if annotation is None:
        annotation = type(None)
    declared = _declared_fields(annotation)
    if declared is not None:
        return declared
    origin = typing.get_origin(annotation) or annotation
    if not isinstance(origin, type):
        return _UNKNOWN  # a union, a type variable, a literal ...
    if issubclass(origin, Mapping):
        return _UNKNOWN
    return _NOT_A_MAPPING


def _declared_fields(annotation: Any) -> frozenset[str] | None:
    """The fields of a TypedDict (its required keys), a dataclass or a Struct; else ``None``."""
    if typing.is_typeddict(annotation):
        return frozenset(annotation.__required_keys__)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return frozenset(f.name for f in dataclasses.fields(annotation))
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return frozenset(annotation.__struct_fields__)
    return None


def _shown(annotation: Any) -> str:
    name = getattr(annotation, "__qualname__", None)
    return f"returning {name}" if isinstance(name, str) else f"returning {annotation!r}"
