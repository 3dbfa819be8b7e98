"""The one input checker: what the engine starts a run with, and what the CLI checks early."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import msgspec

from dsl import Plan
from reactor.run._errors import InputError

__all__ = ["check_inputs"]


def check_inputs(plan: Plan, given: Mapping[str, Any]) -> dict[str, Any]:
    """The run's input values: defaults filled in, transforms applied, types converted.

    Strings convert to an input's type (``"42"`` to ``42`` for an ``int``), so inputs
    typed on a command line check the same way as values passed from Python.

    Raises:
        InputError: An unknown input, a missing one (``missing`` names every required
            input not given), or one that does not convert, naming the reactor and the
            input.
    """
    for name in given:
        if name not in plan.inputs:
            close = difflib.get_close_matches(name, list(plan.inputs), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(plan.inputs) or "none"
            raise InputError(
                f"no such input{hint}; its inputs are: {known}", reactor=plan.reactor, input=name
            )
    missing = tuple(n for n, spec in plan.inputs.items() if spec.required and n not in given)
    if missing:
        also = ", ".join(repr(m) for m in missing[1:])
        verb = "is" if len(missing) == 2 else "are"
        problem = f"is required (so {verb} {also})" if also else "is required"
        raise InputError(problem, reactor=plan.reactor, input=missing[0], missing=missing)
    values: dict[str, Any] = {}
    for name, spec in plan.inputs.items():
        value = given.get(name, spec.default)
        if spec.transform is not None and name in given:
            try:
                value = spec.transform(value)
            except Exception as exc:
                raise InputError(
                    f"its transform failed: {type(exc).__name__}: {exc}",
                    reactor=plan.reactor,
                    input=name,
                ) from exc
        if spec.type is not Any:
            try:
                value = msgspec.convert(value, spec.type, strict=False)
            except (msgspec.ValidationError, TypeError) as exc:
                raise InputError(
                    f"{value!r} is not a valid {_type_name(spec.type)}: {exc}",
                    reactor=plan.reactor,
                    input=name,
                ) from exc
        values[name] = value
    return values


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind)
