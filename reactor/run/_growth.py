"""Steps a run adds while it runs, and argument transforms: the checks the loop delegates.

``WithSteps`` hands the run new step definitions; :func:`plan_added` checks them against
the graph (any order, referring to each other) and writes their journal form, or says
in words what is wrong, so that the adding step fails instead of the run. A
``ref(..., transform=fn)`` argument goes through :func:`transformed` when its step is
dispatched, and a step's ``transform=`` option of its whole argument map through
:func:`transformed_arguments` after that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dsl import DefinitionError, Plan, Ref, StepDef, StepSpec, plan_steps
from dsl.kinds import describe_steps
from reactor.run._classify import StepFailure

__all__ = ["plan_added", "transformed", "transformed_arguments"]


def plan_added(
    plan: Plan, existing: Mapping[str, StepSpec], added: Any, by: str | None = None
) -> tuple[dict[str, StepSpec], tuple[dict[str, Any], ...]]:
    """Check the steps a ``WithSteps`` adds; returns their specs and journal form.

    The new steps may be listed in any order and refer to each other and to every
    input and existing step; the whole graph is checked for cycles. One of them may
    be named ``by`` (the adding step): it re-emits itself, its new definition runs
    next in its place (see :func:`dsl.plan_steps`' ``again``), and its dependents wait
    for the iteration that does not re-emit itself. Only a step that runs no reactor
    may loop so (a reactor loops with ``recurse``).

    Raises:
        ValueError: What is wrong with them, in words (the adding step fails with it).
    """
    if isinstance(added, StepDef | str) or not isinstance(added, Sequence):
        msg = f"WithSteps(steps=...) must be a list of steps, got {added!r}"
        raise ValueError(msg)
    defs: dict[str, StepDef] = {}
    for position, definition in enumerate(added):
        if not isinstance(definition, StepDef):
            msg = f"item {position} is {definition!r}, not a step: make it with step(fn, name=...)"
            raise ValueError(msg)
        if not definition.name:
            msg = f"item {position}: every added step needs a name: step(fn, name=...)"
            raise ValueError(msg)
        if definition.name in defs:
            msg = f"two added steps are named {definition.name!r}"
            raise ValueError(msg)
        defs[definition.name] = definition
    again = by if by is not None and by in defs else None
    try:
        specs = plan_steps(plan.reactor, plan.inputs, defs, existing=existing, again=again)
    except DefinitionError as exc:
        raise ValueError(str(exc)) from exc
    if again is not None and specs[again].sub_reactors:
        msg = (
            f"{again!r} re-emits itself as a {specs[again].kind} step, which runs a "
            "reactor: only a plain step may loop by re-emitting itself (use recurse)"
        )
        raise ValueError(msg)
    return specs, describe_steps(list(defs.values()))


def transformed(argument: str, source: Ref, value: Any) -> Any:
    """``source.transform(value)``; its failure fails the step, naming the argument.

    Raises:
        StepFailure: The transform raised (kind ``bad_argument``).
    """
    transform = source.transform
    if transform is None:
        return value
    try:
        return transform(value)
    except BaseException as exc:  # even SystemExit fails only the step
        name = getattr(transform, "__qualname__", "transform")
        msg = f"argument {argument!r}: its transform {name}() raised {type(exc).__name__}: {exc}"
        raise StepFailure("bad_argument", msg) from exc


def transformed_arguments(
    transform: Callable[[dict[str, Any]], Any], arguments: dict[str, Any]
) -> dict[str, Any]:
    """A step's ``transform`` of its whole argument map; the same names must come back.

    Raises:
        StepFailure: The transform raised, returned no mapping, or other names (kind
            ``bad_argument``).
    """
    name = getattr(transform, "__qualname__", "transform")
    try:
        result = transform(dict(arguments))
    except BaseException as exc:  # even SystemExit fails only the step
        msg = f"its transform {name}() raised {type(exc).__name__}: {exc}"
        raise StepFailure("bad_argument", msg) from exc
    if not isinstance(result, Mapping):
        shown = repr(result)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        msg = f"its transform {name}() returned {shown}, not a mapping of its arguments"
        raise StepFailure("bad_argument", msg)
    missing = [a for a in arguments if a not in result]
    extra = [str(k) for k in result if k not in arguments]
    if missing or extra:
        parts = [f"without {', '.join(map(repr, missing))}"] if missing else []
        parts += [f"with {', '.join(map(repr, extra))}, which it does not take"] if extra else []
        msg = f"its transform {name}() returned the arguments {' and '.join(parts)}"
        raise StepFailure("bad_argument", msg)
    return dict(result)
