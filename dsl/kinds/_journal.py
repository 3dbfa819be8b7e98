"""Steps added while a run runs, written to the journal so that a resume can rebuild them.

A step made at run time (``WithSteps``) is described by data only: its kind's name, what
its kind writes down (:meth:`~dsl.kinds.StepKind.describe`: a function's or reactor's
:func:`dsl.locate` string, a prompt), its argument sources, and its options (plain
values, or module-level functions by their locator). Anything that another process could
not find again (a lambda, a closure) is refused when the step is added, naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dsl._sources import Ref, Value
from dsl.kinds._kind import KindError, kind_named, kind_of, reserved_keys
from dsl.kinds._options import ALL_OPTIONS
from dsl.kinds._spec import StepDef

__all__ = ["describe_steps", "rebuild_steps"]


def _source(source: Any) -> dict[str, Any]:
    if isinstance(source, Ref):
        return {"ref": source.name, "path": list(source.path)}
    if isinstance(source, Value):
        return {"value": source.value}
    msg = f"{source!r} is not a source"
    raise ValueError(msg)


def _option(key: str, given: Any) -> Any:
    from dsl._reactor import locate  # noqa: PLC0415 - the modules refer to each other

    declared = ALL_OPTIONS.get(key)
    if declared is not None and declared[1].function and callable(given):
        return locate(given)
    if key == "wait_for":
        return [given] if isinstance(given, str) else list(given)
    return given


def _describe(definition: StepDef) -> dict[str, Any]:
    kind = kind_of(definition.impl)
    try:
        data = kind.describe(definition.impl)
    except ValueError as exc:
        msg = f"step {definition.name!r}: {exc}"
        raise ValueError(msg) from exc
    clash = reserved_keys() & set(data)
    if clash:
        msg = f"step kind {kind.name!r} describes its steps with reserved keys {sorted(clash)}"
        raise ValueError(msg)
    return {
        "name": definition.name,
        "kind": kind.name,
        **data,
        "args": {k: _source(v) for k, v in definition.sources.items()},
        "options": {k: _option(k, v) for k, v in definition.options.items()},
    }


def describe_steps(definitions: Sequence[StepDef]) -> tuple[dict[str, Any], ...]:
    """Journal-ready descriptions; ``ValueError`` names a step that cannot be described."""
    try:
        return tuple(_describe(d) for d in definitions)
    except ValueError as exc:
        msg = f"{exc} (steps added while running are journaled: use module-level functions)"
        raise ValueError(msg) from exc


def _rebuilt_source(data: Mapping[str, Any]) -> Any:
    if "ref" in data:
        return Ref(data["ref"], tuple(data.get("path", ())))
    return Value(data.get("value"))


def _rebuild(data: Mapping[str, Any]) -> StepDef:
    from dsl._reactor import find  # noqa: PLC0415 - the modules refer to each other

    name = data["name"]
    try:
        kind = kind_named(data["kind"])
    except KindError as exc:
        msg = f"step {name!r}: unknown kind {data['kind']!r} in the journal ({exc})"
        raise ValueError(msg) from exc
    args = {k: _rebuilt_source(v) for k, v in data.get("args", {}).items()}
    options = dict(data.get("options", {}))
    for key, given in options.items():
        declared = ALL_OPTIONS.get(key)
        if declared is not None and declared[1].function and isinstance(given, str):
            options[key] = find(given)
    return StepDef(impl=kind.rebuild(data), sources=args, name=name, options=options)


def rebuild_steps(described: Sequence[Mapping[str, Any]]) -> dict[str, StepDef]:
    """The step definitions a ``StepsAdded`` event describes (not yet bound)."""
    return {d["name"]: _rebuild(d) for d in described}
