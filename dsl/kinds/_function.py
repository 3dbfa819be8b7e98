"""The ``function`` kind: a Python function is a step (``@step``).

Its parameters are its arguments, each bound to the input or step of the same name
unless its default is a source; a parameter annotated :class:`~dsl.StepContext` gets
the run's context instead. Drawn as a box; journaled (when added while running) by the
function's :func:`~dsl.locate` string.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Unpack, cast, get_args, overload

from dsl._outcomes import WithSteps
from dsl._sources import Ref, Source, Value
from dsl.kinds._binding import Binder, suggest
from dsl.kinds._kind import StepKind, register
from dsl.kinds._options import FunctionOptions
from dsl.kinds._spec import StepContext, StepDef, StepSpec

__all__ = ["FunctionImpl", "FunctionKind", "function_impl", "step"]


@dataclass(frozen=True, slots=True)
class FunctionImpl:
    """A Python function: ``async def`` runs on the event loop, ``def`` in a worker pool.

    Attributes:
        fn: The function.
        is_async: Whether it is a coroutine function.
        context_param: The parameter that receives the :class:`StepContext`, if any.
        result_type: The return annotation (results are decoded to it on replay).
    """

    fn: Callable[..., Any]
    is_async: bool
    context_param: str | None = None
    result_type: Any = Any


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, SyntaxError):
        return inspect.signature(fn)


def _is_context(annotation: Any) -> bool:
    return annotation is StepContext or annotation == "StepContext"


def function_impl(fn: Callable[..., Any]) -> FunctionImpl:
    """The definition of a step that calls ``fn``, read from its signature."""
    signature = _signature(fn)
    context_param = None
    for param in signature.parameters.values():
        if _is_context(param.annotation):
            context_param = param.name
    result_type = signature.return_annotation
    if (
        result_type is inspect.Signature.empty
        or isinstance(result_type, str)
        or WithSteps in (result_type, *get_args(result_type))
    ):
        # A step that may return WithSteps: its journaled result is the value inside,
        # whose type the annotation does not say.
        result_type = Any
    return FunctionImpl(
        fn=fn,
        is_async=inspect.iscoroutinefunction(fn),
        context_param=context_param,
        result_type=result_type,
    )


class FunctionKind(StepKind[FunctionImpl]):
    """Steps that call a Python function."""

    name = "function"
    impl = FunctionImpl
    options = FunctionOptions
    shape = ("[", "]")

    def bind(
        self, impl: FunctionImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[FunctionImpl, dict[str, Source]]:
        """Bind each parameter: a given source, its default source, or by name."""
        params = _signature(impl.fn).parameters
        for argument in sources:
            if argument not in params:
                binder.fail(
                    f"the function {impl.fn.__qualname__}() takes no parameter {argument!r}",
                    argument,
                )
        arguments: dict[str, Source] = {}
        for param in params.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                binder.fail("a step function cannot take *args or **kwargs", param.name)
            if param.kind is param.POSITIONAL_ONLY:
                binder.fail("a step's parameters are passed by name: none can be positional-only")
            if param.name == impl.context_param:
                continue
            if param.name in sources:
                arguments[param.name] = binder.source(param.name, sources[param.name])
            elif isinstance(param.default, Ref | Value):
                arguments[param.name] = binder.source(param.name, param.default)
            elif binder.gettable(param.name):
                arguments[param.name] = Ref(param.name)
            elif param.default is inspect.Parameter.empty:
                if param.name == binder.step:
                    binder.fail("a step cannot take its own result", param.name)
                hint = suggest(param.name, binder.names)
                binder.fail(
                    f"no input or step named {param.name!r}{hint}; give the parameter a "
                    "default, or a source: ref('name', ...) or value(...)",
                    param.name,
                )
        return impl, arguments

    def result_type(self, impl: FunctionImpl) -> Any:
        """The function's return annotation."""
        return impl.result_type

    def label(self, spec: StepSpec) -> str:
        """Just the step's name: boxes are functions."""
        return spec.name

    def describe(self, impl: FunctionImpl) -> dict[str, Any]:
        """``{"fn": "module:function"}``."""
        from dsl._reactor import locate  # noqa: PLC0415 - the modules refer to each other

        return {"fn": locate(impl.fn)}

    def rebuild(self, data: Mapping[str, Any]) -> FunctionImpl:
        """The function found again from its locator."""
        from dsl._reactor import find  # noqa: PLC0415

        return function_impl(find(data["fn"]))


register(FunctionKind())


@overload
def step(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    args: Mapping[str, Any] | None = None,
    **options: Unpack[FunctionOptions],
) -> Callable[[Callable[..., Any]], Any]: ...


@overload
def step(
    fn: Callable[..., Any],
    /,
    *,
    name: str | None = None,
    args: Mapping[str, Any] | None = None,
    **options: Unpack[FunctionOptions],
) -> Any: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    args: Mapping[str, Any] | None = None,
    **options: Unpack[FunctionOptions],
) -> Any:
    """Make a function a step: ``@step`` or ``@step(max_retries=2, ...)`` in a reactor.

    The function's parameters are its arguments: each binds to the input or step of the
    same name, unless its default is a source (:func:`~dsl.ref`, :func:`~dsl.value`).
    ``async def`` functions run on the event loop; plain ``def`` in a worker pool.

    Args:
        fn: The function (when used as ``@step`` without parentheses); or a step of
            another kind (``compose(...)``, ``for_each(...)``, ...) to name it (and add
            options): how such a step added while running (``WithSteps``) is named.
        name: The step's name; by default the class attribute's (``shout = step(fn)``
            is the step ``shout``). A step added while running (``WithSteps``) that sets
            none is named after its function.
        args: Sources for parameters, for functions whose signature you don't control
            and for steps made while running (``WithSteps``).
        **options: The common step options, each documented on
            :class:`~dsl.kinds.FunctionOptions` (``wait_for``, ``where``, ``guard``,
            ``max_retries``, ``backoff``, ``timeout``, ``compensate``, ``undo``,
            ``description``, ``placement``). One that does not exist is reported, with the reactor
            and step, when the reactor is defined.
    """
    if isinstance(cast(object, fn), StepDef):
        return _renamed(cast("StepDef", fn), name, args, dict(options))

    def make(function: Callable[..., Any]) -> StepDef:
        if isinstance(cast(object, function), StepDef) or not callable(function):
            msg = f"@step needs a function, got {function!r}"
            raise TypeError(msg)
        return StepDef(
            impl=function_impl(function),
            sources=dict(args or {}),
            name=name or getattr(function, "__name__", None),
            named=name is not None,
            options=dict(options),
        )

    return make if fn is None else make(fn)


def _renamed(
    definition: StepDef,
    name: str | None,
    args: Mapping[str, Any] | None,
    options: dict[str, Any],
) -> StepDef:
    """``step(compose(...), name=...)``: a step of another kind, named (and optioned).

    How a ``compose``, ``for_each``, ``switch``, ... step added while running
    (``WithSteps``) gets its name; its sources are given where it is made.
    """
    if args:
        msg = (
            "step(definition, args=...): give a compose/for_each/... step its sources "
            "where it is made, e.g. compose(Child, x=ref('x'))"
        )
        raise TypeError(msg)
    return dataclasses.replace(
        definition,
        name=name or definition.name,
        named=name is not None or definition.named,
        options={**definition.options, **options},
    )
