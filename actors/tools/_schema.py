"""JSON schemas for tools: from a function's signature and docstring, or a pydantic model.

A function's parameters become the fields of a pydantic model built once, when the tool
is registered: their annotations give the types, their defaults (plain values or
``pydantic.Field``) the defaults and constraints, and a Google-style ``Args:`` section
of the docstring the descriptions a parameter's ``Field`` does not give. The model then
both validates the model's arguments before the call and produces the JSON schema the
model sees (titles stripped: they repeat the names and cost context).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, get_type_hints

import pydantic
from pydantic.fields import FieldInfo

from actors.tools._errors import ToolDefinitionError

__all__ = ["arguments_model", "docstring_parts", "secret_fields", "strip_titles"]

_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Returns|Raises|Yields|Example|Examples|Note|Notes|Attributes):\s*$"
)
_PARAM = re.compile(r"^\s*(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")


def docstring_parts(doc: str | None) -> tuple[str, dict[str, str]]:
    """The summary (everything before the first section) and each ``Args:`` entry's text."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    indent = 0
    for line in lines:
        header = _SECTION.match(line)
        if header:
            section, current = header.group(1), None
            continue
        if section is None:
            summary.append(line)
            continue
        if section not in ("Args", "Arguments", "Parameters") or not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        match = _PARAM.match(line)
        if match and (current is None or depth <= indent):
            current, indent = match.group(1).lstrip("*"), depth
            params[current] = match.group(3).strip()
        elif current is not None:
            params[current] = f"{params[current]} {line.strip()}".strip()
    return "\n".join(summary).strip(), params


def strip_titles(schema: Any) -> Any:
    """The schema without pydantic's ``title`` keys (kept where ``title`` is a property name)."""
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "title" and isinstance(value, str):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: strip_titles(v) for name, v in value.items()}
            else:
                out[key] = strip_titles(value)
        return out
    if isinstance(schema, list):
        return [strip_titles(v) for v in schema]
    return schema


def arguments_model(
    fn: Callable[..., Any], name: str, *, skip: Callable[[Any], bool]
) -> tuple[type[pydantic.BaseModel], dict[str, str], str | None]:
    """A pydantic model of ``fn``'s parameters, and the parameter given the call's context.

    Args:
        fn: The function.
        name: The tool's name (the model's name, in error messages).
        skip: Says whether an annotation is the injected context type.

    Returns:
        The model, the docstring's parameter descriptions, and the name of the
        parameter annotated with the context type (``None`` when there is none).

    Raises:
        ToolDefinitionError: A parameter is positional-only or variadic, or has no
            annotation, or an annotation does not resolve.
    """
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as exc:
        msg = f"tool {name!r}: cannot resolve the annotations of {fn.__qualname__}: {exc}"
        raise ToolDefinitionError(msg) from exc
    _, described = docstring_parts(fn.__doc__)
    fields: dict[str, Any] = {}
    context_param: str | None = None
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            msg = (
                f"tool {name!r}: parameter {param.name!r} is {param.kind.description}; "
                "a tool's parameters must be nameable (keyword) arguments"
            )
            raise ToolDefinitionError(msg)
        if param.name not in hints:
            msg = f"tool {name!r}: parameter {param.name!r} has no type annotation (needed)"
            raise ToolDefinitionError(msg)
        annotation = hints[param.name]
        if skip(annotation):
            context_param = param.name
            continue
        default = param.default
        if isinstance(default, FieldInfo):
            info = default
            if info.description is None and param.name in described:
                info = FieldInfo.merge_field_infos(info, description=described[param.name])
        else:
            info = pydantic.Field(
                default=... if default is param.empty else default,
                description=described.get(param.name),
            )
        fields[param.name] = (annotation, info)
    model: type[pydantic.BaseModel] = pydantic.create_model(
        f"{name}_arguments",
        __config__=pydantic.ConfigDict(extra="forbid"),
        **fields,
    )
    return model, described, context_param


def secret_fields(model: type[pydantic.BaseModel]) -> frozenset[str]:
    """The fields marked secret.

    ``SecretStr``/``SecretBytes`` fields, and ``Field(json_schema_extra={"secret": True})``.
    """
    secret: set[str] = set()
    for field_name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if (isinstance(extra, dict) and extra.get("secret")) or info.annotation in (
            pydantic.SecretStr,
            pydantic.SecretBytes,
        ):
            secret.add(field_name)
    return frozenset(secret)
