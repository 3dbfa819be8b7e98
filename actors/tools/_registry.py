"""Tools and the registry: what a model may call, its schema, metadata and validation.

A :class:`Tool` is built once, when it is registered, from

* a Python function, sync or ``async`` (:func:`tool`): the JSON schema comes from its
  signature (pydantic ``Field`` defaults for constraints) and its docstring (the summary
  is the description, the ``Args:`` entries describe the parameters); the return
  annotation validates what it returns;
* a pydantic model (:func:`tool` on the class): its fields are the arguments; with a
  ``run`` method (sync or async) calling the tool runs it on the validated instance,
  without one the tool returns the validated instance (a structured answer);
* an MCP server's tool (:mod:`actors.tools._mcp`), with the server's own schema.

:class:`ToolMeta` carries what a policy and the runner need: the MCP annotations
(read-only, destructive, idempotent, open-world), a timeout, a concurrency limit, tags,
whether a human must approve each call, the per-tool retry budget for correctable
errors, and the fields that are secret (redacted in the audit log).

A :class:`ToolRegistry` holds tools by name; :meth:`ToolRegistry.select` trims it to
what a step allows (names, ``fnmatch`` globs, ``tag:x``), for the tool specs a model is
sent and the capability docs put in its context.
"""

from __future__ import annotations

import fnmatch
import inspect
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_type_hints, overload

import pydantic
from pydantic_core import to_jsonable_python

from actors.llm import ToolSpec
from actors.tools._errors import (
    ToolArgumentError,
    ToolDefinitionError,
    ToolOutputError,
    UnknownToolError,
)
from actors.tools._schema import arguments_model, docstring_parts, secret_fields, strip_titles

__all__ = [
    "Tool",
    "ToolContext",
    "ToolMeta",
    "ToolRegistry",
    "matches",
    "tool",
]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool may know about the call (declare a parameter of this type to get it).

    Attributes:
        call_id: The model's id for the call.
        tool: The tool's name.
        run_id: The run ("" outside a run).
        reactor: The reactor's name.
        step: The step's name.
        identity: Who is calling (the step's or agent's identity string).
    """

    call_id: str = ""
    tool: str = ""
    run_id: str = ""
    reactor: str = ""
    step: str = ""
    identity: str = ""


@dataclass(frozen=True, slots=True)
class ToolMeta:
    """What a tool is, beyond its schema.

    Attributes:
        read_only: It changes nothing (MCP ``readOnlyHint``).
        destructive: It may destroy or overwrite (MCP ``destructiveHint``; MCP tools
            default to ``True`` unless the server says otherwise).
        idempotent: Calling it twice with the same arguments does no more than once.
        open_world: It reaches outside the system (the web, other services).
        timeout: Seconds a call may take (``None``: no limit of its own).
        max_concurrency: Calls of it running at once (``None``: no limit of its own).
        tags: Labels policies and steps select tools by (``tag:x``).
        needs_approval: A human approves every call before it runs.
        max_retries: Correctable errors (bad arguments, ``ToolRetry``, timeouts) the
            model may make in a row with this tool before the loop gives up.
        inline: Run a plain ``def`` on the event loop instead of a worker thread (only
            for quick functions that never block).
    """

    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = False
    timeout: float | None = 30.0
    max_concurrency: int | None = None
    tags: frozenset[str] = frozenset()
    needs_approval: bool = False
    max_retries: int = 2
    inline: bool = False

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            msg = f"ToolMeta(timeout={self.timeout!r}): must be positive or None"
            raise ToolDefinitionError(msg)
        if self.max_concurrency is not None and self.max_concurrency < 1:
            msg = f"ToolMeta(max_concurrency={self.max_concurrency!r}): must be at least 1 or None"
            raise ToolDefinitionError(msg)
        if self.max_retries < 0:
            msg = f"ToolMeta(max_retries={self.max_retries!r}): must not be negative"
            raise ToolDefinitionError(msg)

    def flags(self) -> list[str]:
        """The flags worth telling a model: ``read-only``, ``destructive``, ... ."""
        names = [
            ("read-only", self.read_only),
            ("destructive", self.destructive and not self.read_only),
            ("idempotent", self.idempotent and not self.read_only),
            ("open-world", self.open_world),
            ("needs approval", self.needs_approval),
        ]
        return [name for name, on in names if on]


Invoke = Callable[[dict[str, Any], ToolContext], Any]
"""How a tool runs: validated arguments and the context in, its value (or an awaitable) out."""


class Tool:
    """One tool: its name, description, schema, metadata, and how it validates and runs.

    Build one with :func:`tool` (a function or a pydantic model) or
    :meth:`ToolRegistry.add`; MCP tools are built by their source. Calling a tool
    built from a function calls the function (so a decorated function stays usable).

    Attributes:
        name: What the model calls it (letters, digits, ``_`` and ``-``, at most 64).
        description: What it does, for the model.
        parameters: The JSON schema of its arguments.
        meta: Its metadata.
        kind: ``function`` (run in this process) or ``extension`` (run by an MCP server),
            as the ``gen_ai.tool.type`` span attribute says.
        source: Where it comes from: ``python`` or ``mcp:<server>``.
        secret: Argument fields the audit log redacts.
        is_async: Whether running it is awaited on the loop.
    """

    __slots__ = (
        "_args_model",
        "_fn",
        "_invoke",
        "_output",
        "description",
        "is_async",
        "kind",
        "meta",
        "name",
        "parameters",
        "secret",
        "source",
    )

    def __init__(
        self,
        *,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        invoke: Invoke,
        is_async: bool,
        meta: ToolMeta = ToolMeta(),
        kind: str = "function",
        source: str = "python",
        args_model: type[pydantic.BaseModel] | None = None,
        output: pydantic.TypeAdapter[Any] | None = None,
        secret: frozenset[str] = frozenset(),
        fn: Callable[..., Any] | None = None,
    ) -> None:
        check_name(name)
        self.name = name
        self.description = description
        self.parameters = dict(parameters)
        self.meta = meta
        self.kind = kind
        self.source = source
        self.secret = secret
        self.is_async = is_async
        self._invoke = invoke
        self._args_model = args_model
        self._output = output
        self._fn = fn

    def __repr__(self) -> str:
        return f"<Tool {self.name!r} from {self.source}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function the tool was built from, as it is (no validation)."""
        if self._fn is None:
            msg = f"tool {self.name!r} is not a Python function; run it through a ToolRunner"
            raise TypeError(msg)
        return self._fn(*args, **kwargs)

    @property
    def spec(self) -> ToolSpec:
        """What a model is sent: name, description, parameters."""
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments, validated and converted (what the call receives).

        Raises:
            ToolArgumentError: They do not fit the schema; the message names each field.
        """
        model = self._args_model
        if model is None:
            return _check_json_object(self.name, self.parameters, arguments)
        try:
            instance = model.model_validate(arguments)
        except pydantic.ValidationError as exc:
            raise argument_error(self.name, exc) from None
        return {name: getattr(instance, name) for name in model.model_fields} | {
            "__instance__": instance
        }

    def invoke(self, validated: dict[str, Any], context: ToolContext) -> Any:
        """Run it with validated arguments: its value, or an awaitable of it."""
        return self._invoke(validated, context)

    def check_output(self, value: Any) -> Any:
        """The value as JSON-ready data, checked against the return type.

        Raises:
            ToolOutputError: The value does not fit the declared return type.
        """
        adapter = self._output
        if adapter is not None:
            try:
                value = adapter.validate_python(value)
            except pydantic.ValidationError as exc:
                problem = _errors_text(exc)
                msg = f"tool {self.name!r} returned a value its return type rejects: {problem}"
                raise ToolOutputError(msg, tool=self.name) from None
        try:
            return to_jsonable_python(value)
        except Exception as exc:  # noqa: BLE001 - whatever pydantic_core raises for foreign types
            kind = type(value).__name__
            msg = f"tool {self.name!r} returned a {kind}, which is not JSON data: {exc}"
            raise ToolOutputError(msg, tool=self.name) from None

    def doc(self) -> str:
        """Its entry in capability docs: signature-like line, flags, parameter notes."""
        props: Mapping[str, Any] = self.parameters.get("properties", {})
        required = set(self.parameters.get("required", ()))
        params = ", ".join(
            f"{name}{'' if name in required else '?'}: {_type_of(schema)}"
            for name, schema in props.items()
        )
        flags = self.meta.flags()
        marks = f" [{', '.join(flags)}]" if flags else ""
        lines = [f"- {self.name}({params}){marks}"]
        if self.description:
            lines.append(f"  {self.description.splitlines()[0]}")
        lines.extend(
            f"  - {name}: {schema['description']}"
            for name, schema in props.items()
            if isinstance(schema, dict) and schema.get("description")
        )
        return "\n".join(lines)


def check_name(name: str) -> None:
    """Refuse names the providers refuse (OpenAI: ``^[a-zA-Z0-9_-]{1,64}$``)."""
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
        msg = (
            f"tool name {name!r}: must be 1 to 64 letters, digits, '_' or '-' "
            "(what every provider accepts)"
        )
        raise ToolDefinitionError(msg)


def argument_error(name: str, exc: pydantic.ValidationError) -> ToolArgumentError:
    """A :class:`ToolArgumentError` naming each field pydantic complained about."""
    fields = [".".join(str(p) for p in e["loc"]) or "(arguments)" for e in exc.errors()]
    return ToolArgumentError(
        f"invalid arguments for tool {name!r}: {_errors_text(exc)}", tool=name, fields=fields
    )


def _errors_text(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "(arguments)"
        got = error.get("input")
        shown = "" if error["type"] == "missing" else f" (got {json.dumps(got, default=str)[:80]})"
        parts.append(f"field {where!r}: {error['msg']}{shown}")
    return "; ".join(parts)


def _check_json_object(name: str, schema: Mapping[str, Any], arguments: Any) -> dict[str, Any]:
    """A light check for tools whose schema is foreign (MCP): an object, required keys present."""
    if not isinstance(arguments, Mapping):
        kind = type(arguments).__name__
        msg = f"invalid arguments for tool {name!r}: expected an object, got {kind}"
        raise ToolArgumentError(msg, tool=name, fields=["(arguments)"])
    missing = [k for k in schema.get("required", ()) if k not in arguments]
    if missing:
        text = "; ".join(f"field {k!r}: Field required" for k in missing)
        raise ToolArgumentError(
            f"invalid arguments for tool {name!r}: {text}", tool=name, fields=missing
        )
    props = schema.get("properties")
    if schema.get("additionalProperties") is False and isinstance(props, Mapping):
        extra = [k for k in arguments if k not in props]
        if extra:
            text = "; ".join(f"field {k!r}: Extra inputs are not permitted" for k in extra)
            raise ToolArgumentError(
                f"invalid arguments for tool {name!r}: {text}", tool=name, fields=extra
            )
    return dict(arguments)


def _type_of(schema: Any) -> str:
    if not isinstance(schema, Mapping):
        return "any"
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_type_of(schema.get('items'))}]"
    if isinstance(kind, str):
        return kind
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        return " | ".join(_type_of(o) for o in options)
    return "object" if "$ref" in schema else "any"


_IS: dict[str, Callable[[ToolMeta], bool]] = {
    "read_only": lambda m: m.read_only,
    "destructive": lambda m: m.destructive and not m.read_only,
    "idempotent": lambda m: m.idempotent,
    "open_world": lambda m: m.open_world,
    "needs_approval": lambda m: m.needs_approval,
}


def matches(candidate: Tool, pattern: str) -> bool:
    """Whether ``pattern`` selects the tool.

    ``tag:x`` selects by tag; ``is:destructive`` (or ``read_only``, ``idempotent``,
    ``open_world``, ``needs_approval``) by metadata, so a policy can, say, ask for
    approval of every destructive MCP tool; anything else is a name or ``fnmatch`` glob.
    """
    if pattern.startswith("tag:"):
        return pattern[4:] in candidate.meta.tags
    if pattern.startswith("is:"):
        test = _IS.get(pattern[3:])
        if test is None:
            msg = f"unknown pattern {pattern!r}: is: takes one of {', '.join(_IS)}"
            raise ValueError(msg)
        return bool(test(candidate.meta))
    return pattern in ("*", candidate.name) or fnmatch.fnmatchcase(candidate.name, pattern)


# ---- building tools ---------------------------------------------------------------------


def _is_context(annotation: Any) -> bool:
    return annotation is ToolContext


def _output_adapter(fn: Callable[..., Any]) -> pydantic.TypeAdapter[Any] | None:
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception:  # noqa: BLE001 - arguments_model already reported unresolvable hints
        return None
    ret = hints.get("return", inspect.Signature.empty)
    if ret in (inspect.Signature.empty, Any, None, type(None)):
        return None
    return pydantic.TypeAdapter(ret)


def _from_function(
    fn: Callable[..., Any], name: str | None, description: str | None, meta: ToolMeta
) -> Tool:
    target: object = fn
    if not callable(target):
        msg = f"cannot make a tool of {target!r}: not a function or pydantic model"
        raise ToolDefinitionError(msg)
    tool_name: str = name or str(getattr(fn, "__name__", ""))
    check_name(tool_name)
    model, _, context_param = arguments_model(fn, tool_name, skip=_is_context)
    summary, _ = docstring_parts(fn.__doc__)
    schema = strip_titles(model.model_json_schema())
    is_async = inspect.iscoroutinefunction(fn)
    field_names = tuple(model.model_fields)

    def invoke(validated: dict[str, Any], context: ToolContext) -> Any:
        kwargs = {k: validated[k] for k in field_names}
        if context_param is not None:
            kwargs[context_param] = context
        return fn(**kwargs)

    return Tool(
        name=tool_name,
        description=description if description is not None else summary,
        parameters=schema,
        invoke=invoke,
        is_async=is_async,
        meta=meta,
        args_model=model,
        output=_output_adapter(fn),
        secret=secret_fields(model),
        fn=fn,
    )


def _from_model(
    model: type[pydantic.BaseModel], name: str | None, description: str | None, meta: ToolMeta
) -> Tool:
    tool_name = name or model.__name__
    check_name(tool_name)
    run = getattr(model, "run", None)
    summary, _ = docstring_parts(model.__doc__)
    schema = strip_titles(model.model_json_schema())
    schema.pop("description", None)  # the tool's description says it
    if model.model_config.get("extra") == "forbid":
        schema.setdefault("additionalProperties", False)
    is_async = run is not None and inspect.iscoroutinefunction(run)

    def invoke(validated: dict[str, Any], context: ToolContext) -> Any:
        instance = validated["__instance__"]
        if run is None:
            return instance
        return instance.run()

    output = _output_adapter(run) if run is not None else None
    return Tool(
        name=tool_name,
        description=description if description is not None else summary,
        parameters=schema,
        invoke=invoke,
        is_async=is_async,
        meta=meta,
        args_model=model,
        output=output,
        secret=secret_fields(model),
    )


def make_tool(
    target: Callable[..., Any] | type[pydantic.BaseModel] | Tool,
    *,
    name: str | None = None,
    description: str | None = None,
    meta: ToolMeta | None = None,
) -> Tool:
    """A :class:`Tool` from a function, a pydantic model class, or a tool (as it is)."""
    if isinstance(target, Tool):
        return target
    meta = meta or ToolMeta()
    if isinstance(target, type) and issubclass(target, pydantic.BaseModel):
        return _from_model(target, name, description, meta)
    return _from_function(target, name, description, meta)


@overload
def tool(target: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    open_world: bool = False,
    timeout: float | None = 30.0,
    max_concurrency: int | None = None,
    tags: Iterable[str] = (),
    needs_approval: bool = False,
    max_retries: int = 2,
    inline: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    target: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    open_world: bool = False,
    timeout: float | None = 30.0,
    max_concurrency: int | None = None,
    tags: Iterable[str] = (),
    needs_approval: bool = False,
    max_retries: int = 2,
    inline: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a tool of a function or a pydantic model (used bare, or with options).

    Example::

        @tool(read_only=True, tags={"files"})
        def read_file(path: str = Field(max_length=200)) -> str:
            ...  # the docstring's summary and Args: describe the tool and `path`

    Args:
        target: The function or pydantic model class (when used bare).
        name: The tool's name (default: the function's or class's).
        description: What it does (default: the docstring's summary).
        read_only: See :class:`ToolMeta`, as are the options below.
        destructive: It may destroy or overwrite.
        idempotent: Calling it twice does no more than once.
        open_world: It reaches outside the system.
        timeout: Seconds a call may take.
        max_concurrency: Calls of it running at once.
        tags: Labels to select it by.
        needs_approval: A human approves every call.
        max_retries: Correctable errors in a row before the loop gives up.
        inline: Run a plain ``def`` on the event loop.

    Raises:
        ToolDefinitionError: A parameter has no annotation, is variadic or
            positional-only; the name is not one every provider accepts.
    """
    meta = ToolMeta(
        read_only=read_only,
        destructive=destructive,
        idempotent=idempotent,
        open_world=open_world,
        timeout=timeout,
        max_concurrency=max_concurrency,
        tags=frozenset(tags),
        needs_approval=needs_approval,
        max_retries=max_retries,
        inline=inline,
    )

    def build(fn: Callable[..., Any]) -> Tool:
        return make_tool(fn, name=name, description=description, meta=meta)

    return build(target) if target is not None else build


class ToolRegistry:
    """Tools by name: what runners validate and run, and what steps offer to models.

    Args:
        tools: Tools (or functions and pydantic models, made tools with default
            metadata) to start with.
    """

    def __init__(
        self, tools: Iterable[Tool | Callable[..., Any] | type[pydantic.BaseModel]] = ()
    ) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    def add(
        self,
        target: Tool | Callable[..., Any] | type[pydantic.BaseModel],
        *,
        name: str | None = None,
        description: str | None = None,
        meta: ToolMeta | None = None,
        replace: bool = False,
    ) -> Tool:
        """Register a tool (a function or pydantic model is made one first).

        Raises:
            ToolDefinitionError: The name is taken (unless ``replace``), or the target
                cannot be a tool.
        """
        built = make_tool(target, name=name, description=description, meta=meta)
        if built.name in self._tools and not replace:
            source = self._tools[built.name].source
            msg = f"a tool named {built.name!r} is registered already ({source}); pass replace=True"
            raise ToolDefinitionError(msg)
        self._tools[built.name] = built
        return built

    def remove(self, name: str) -> None:
        """Forget the tool ``name`` (nothing happens if it is not registered)."""
        self._tools.pop(name, None)

    def get(self, name: str, allowed: Sequence[str] | None = None) -> Tool:
        """The tool ``name``, if registered and (when ``allowed`` is given) selected by it.

        Raises:
            UnknownToolError: It is not; the message lists the tools that are.
        """
        found = self._tools.get(name)
        if found is None or (allowed is not None and not any(matches(found, p) for p in allowed)):
            offered = ", ".join(t.name for t in self.select(allowed)) or "none"
            msg = f"unknown tool {name!r}; the tools you may call are: {offered}"
            raise UnknownToolError(msg, tool=name)
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        """Every tool's name, in registration order."""
        return list(self._tools)

    def select(self, allowed: Sequence[str] | None = None) -> list[Tool]:
        """The tools ``allowed`` selects (names, globs, ``tag:x``); all of them when ``None``."""
        if allowed is None:
            return list(self._tools.values())
        return [t for t in self._tools.values() if any(matches(t, p) for p in allowed)]

    def specs(self, allowed: Sequence[str] | None = None) -> tuple[ToolSpec, ...]:
        """The tool specs a model is sent, trimmed to ``allowed``."""
        return tuple(t.spec for t in self.select(allowed))

    def capability_docs(self, allowed: Sequence[str] | None = None) -> str:
        """A plain-text summary of the tools ``allowed`` selects, for a model's context."""
        chosen = self.select(allowed)
        if not chosen:
            return "No tools are available."
        return "Tools you may call:\n" + "\n".join(t.doc() for t in chosen)
