"""Steps added while a run runs, written to the journal so that a resume can rebuild them.

A step made at run time (``WithSteps``) is described by data only: its kind, the
function's or reactor's :func:`dsl.locate` string, its argument sources, and the options
that are plain values or module-level functions. Anything that another process could not
find again (a lambda, a closure) is refused when the step is added, naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dsl import (
    AskImpl,
    CollectImpl,
    ComposeImpl,
    DefinitionError,
    FunctionImpl,
    Plan,
    Ref,
    StepDef,
    StepSpec,
    TemplateImpl,
    Value,
    compose,
    find,
    locate,
    plan_steps,
    step,
)

__all__ = ["describe_steps", "plan_added", "rebuild_steps"]

_HOOKS = ("where", "guard", "compensate", "undo")


def _source(source: Any) -> dict[str, Any]:
    if isinstance(source, Ref):
        described: dict[str, Any] = {"ref": source.name, "path": list(source.path)}
        if source.transform is not None:
            described["transform"] = locate(source.transform)
        return described
    if isinstance(source, Value):
        return {"value": source.value}
    msg = f"{source!r} is not a source"
    raise ValueError(msg)


def _describe(definition: StepDef) -> dict[str, Any]:  # noqa: PLR0912 - a branch per kind
    impl = definition.impl
    described: dict[str, Any] = {"name": definition.name}
    match impl:
        case FunctionImpl():
            described["kind"] = "function"
            described["fn"] = locate(impl.fn)
        case ComposeImpl():
            described["kind"] = "compose"
            described["reactor"] = locate(impl.reactor)
        case AskImpl():
            described["kind"] = "ask"
            described["ask"] = {
                "prompt": impl.prompt,
                "model": impl.model,
                "host": impl.host,
                "system": impl.system,
                "temperature": impl.temperature,
                "max_tokens": impl.max_tokens,
                "options": dict(impl.options),
            }
        case TemplateImpl():
            described["kind"] = "template"
            described["text"] = impl.text
        case CollectImpl():
            described["kind"] = "collect"
        case _:
            msg = (
                f"step {definition.name!r}: only function, ask, compose, template and "
                "collect steps can be added while running"
            )
            raise ValueError(msg)
    described["args"] = {k: _source(v) for k, v in definition.sources.items()}
    options: dict[str, Any] = {}
    for key, option in definition.options.items():
        if key in _HOOKS:
            if option is not None:
                options[key] = locate(option)
        elif key == "backoff":
            if option is not None and not isinstance(option, int | float):
                options[key] = locate(option)
            elif option is not None:
                options[key] = option
        elif key == "wait_for":
            options[key] = list(option)
        else:
            options[key] = option
    described["options"] = options
    return described


def describe_steps(definitions: Sequence[StepDef]) -> tuple[dict[str, Any], ...]:
    """Journal-ready descriptions; ``ValueError`` names a step that cannot be described."""
    try:
        return tuple(_describe(d) for d in definitions)
    except ValueError as exc:
        msg = f"{exc} (steps added while running are journaled: use module-level functions)"
        raise ValueError(msg) from exc


def _rebuilt_source(data: Mapping[str, Any]) -> Any:
    if "ref" in data:
        transform = data.get("transform")
        return Ref(data["ref"], tuple(data.get("path", ())), find(transform) if transform else None)
    return Value(data.get("value"))


def _rebuild(data: Mapping[str, Any]) -> StepDef:
    args = {k: _rebuilt_source(v) for k, v in data.get("args", {}).items()}
    options = dict(data.get("options", {}))
    for key in (*_HOOKS, "backoff"):
        if isinstance(options.get(key), str):
            options[key] = find(options[key])
    name = data["name"]
    match data["kind"]:
        case "function":
            built: StepDef = step(find(data["fn"]), name=name, args=args, **options)
        case "compose":
            built = compose(find(data["reactor"]), **args)
        case "ask":
            built = StepDef(impl=AskImpl(**data["ask"]), sources=args, options=options)
        case "template":
            built = StepDef(impl=TemplateImpl(data["text"]), sources=args, options=options)
        case "collect":
            built = StepDef(impl=CollectImpl(), sources=args, options=options)
        case other:
            msg = f"step {name!r}: unknown kind {other!r} in the journal"
            raise ValueError(msg)
    return StepDef(impl=built.impl, sources=built.sources, name=name, options=built.options)


def rebuild_steps(described: Sequence[Mapping[str, Any]]) -> dict[str, StepDef]:
    """The step definitions a ``StepsAdded`` event describes (not yet bound)."""
    return {d["name"]: _rebuild(d) for d in described}


def plan_added(
    plan: Plan, existing: Mapping[str, StepSpec], added: Any
) -> tuple[dict[str, StepSpec], tuple[dict[str, Any], ...]]:
    """Check the steps a ``WithSteps`` adds; returns their specs and journal form.

    The new steps may be listed in any order and refer to each other and to every
    input and existing step; the whole graph is checked for cycles.

    Raises:
        ValueError: What is wrong with them, in words (the adding step fails with it).
    """
    if isinstance(added, StepDef) or not isinstance(added, Sequence) or isinstance(added, str):
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
    try:
        specs = plan_steps(plan.reactor, plan.inputs, defs, existing=existing)
    except DefinitionError as exc:
        raise ValueError(str(exc)) from exc
    return specs, describe_steps(list(defs.values()))
