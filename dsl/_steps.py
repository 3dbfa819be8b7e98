"""The building blocks of a reactor body: inputs, steps and the step kinds.

Everything here is declarative data. ``step``, ``ask``, ``compose`` and the others build
an unbound :class:`StepDef` (a kind, its options and its argument sources); the reactor
class binds it to a name when the class is created (:func:`bind`), validating it against
every other input and step, and the executor (``reactor``) runs the bound
:class:`StepSpec`.
"""

from __future__ import annotations

import inspect
import random
import string
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Never, TypeAlias, cast, overload

from dsl._errors import DefinitionError
from dsl._hooks import adapt_hook
from dsl._sources import Ref, Source, Value

if TYPE_CHECKING:
    from dsl._reactor import Reactor

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_RETRIES",
    "AroundImpl",
    "AskImpl",
    "Backoff",
    "CollectImpl",
    "ComposeImpl",
    "ForEachImpl",
    "FunctionImpl",
    "GroupImpl",
    "Impl",
    "Input",
    "StepContext",
    "StepDef",
    "StepSpec",
    "SwitchImpl",
    "TemplateImpl",
    "around",
    "ask",
    "collect",
    "compose",
    "exponential",
    "for_each",
    "group",
    "step",
    "switch",
    "template",
    "template_fields",
]

DEFAULT_MAX_RETRIES = 3
"""Retries a step gets when it sets no ``max_retries``: 3 (so at most 4 attempts).

A step is retried when it returns :class:`~dsl.Retry`, when its ``compensate`` returns
:class:`~dsl.Retry`, or when it fails transiently (a timeout, a connection error, or a
model failure whose kind is retryable, such as ``rate_limited``). Other exceptions go to
``compensate`` (when there is one) and otherwise fail the step at once.
"""

_MISSING: Any = object()

Backoff: TypeAlias = Callable[[int, BaseException | None], float]
"""Seconds to wait before retry number ``n`` (from 1), given the error (if any)."""


def exponential(
    base: float = 0.05, *, factor: float = 2.0, cap: float = 5.0, jitter: bool = True
) -> Backoff:
    """Exponential backoff: ``base * factor**(n-1)`` seconds, at most ``cap``.

    With ``jitter`` the delay is drawn uniformly from its upper half, so that many
    retrying steps do not wake up together.
    """

    def delay(attempt: int, _error: BaseException | None) -> float:
        seconds = float(min(cap, base * factor ** max(0, attempt - 1)))
        return seconds * random.uniform(0.5, 1.0) if jitter else seconds

    return delay


DEFAULT_BACKOFF: Backoff = exponential()
"""The backoff of a step that sets none: 50 ms, doubling, at most 5 s, with jitter."""


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a step may know about its run: declare a parameter of this type to get it.

    Attributes:
        run_id: The run.
        reactor: The reactor's name.
        step: This step's name.
        attempt: This attempt, from 1.
        retries_left: Retries left after this attempt.
        context: The run's context (``Engine.start(context=...)``), read-only; a
            composed run shares its parent's.
    """

    run_id: str
    reactor: str
    step: str
    attempt: int
    retries_left: int
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Input:
    """A reactor input: ``topic = Input(str)`` in the class body.

    Attributes:
        type: The type the value must have (checked and converted with msgspec when a
            run starts; ``Any`` accepts anything JSON can carry).
        default: The value when the input is not given (none: the input is required).
        transform: Applied to the given value before the type check.
        description: What the input is for (shown by the CLI and in diagrams).
    """

    type: Any = Any
    default: Any = _MISSING
    transform: Callable[[Any], Any] | None = None
    description: str = ""

    @property
    def required(self) -> bool:
        """Whether a run must be given this input."""
        return self.default is _MISSING


# -- step kinds ------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class AskImpl:
    """Ask one model: render ``prompt`` (a template) and send it to a model host.

    Attributes:
        prompt: The prompt template (``{name}`` placeholders are arguments).
        model: The model id as the host knows it.
        host: The ModelHost actor's name; ``None`` lets the engine find a host that
            serves ``model``.
        system: An optional system prompt template.
        temperature: Sampling temperature (the server's default when ``None``).
        max_tokens: Output token limit.
        options: Vendor-specific request fields.
    """

    prompt: str
    model: str
    host: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ComposeImpl:
    """Run another reactor as this step (its inputs are this step's arguments)."""

    reactor: type[Reactor]


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


@dataclass(frozen=True, slots=True)
class SwitchImpl:
    """Run the first branch whose predicate holds for the argument ``on``.

    Attributes:
        on: The argument the predicates look at.
        cases: ``(predicate, reactor)`` pairs, tried in order.
        default: The reactor when no predicate holds (``None``: the result is ``None``).
    """

    on: str
    cases: tuple[tuple[Callable[[Any], bool], type[Reactor]], ...]
    default: type[Reactor] | None = None


@dataclass(frozen=True, slots=True)
class GroupImpl:
    """Run ``before(args)``, then ``reactor``, then ``after(args, result)``."""

    reactor: type[Reactor]
    before: Callable[[dict[str, Any]], Any] | None = None
    after: Callable[[dict[str, Any], Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class AroundImpl:
    """``await wrapper(args, run)``, where ``await run(args)`` runs ``reactor``."""

    reactor: type[Reactor]
    wrapper: Callable[[dict[str, Any], Callable[[dict[str, Any]], Awaitable[Any]]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class CollectImpl:
    """The arguments, as a dict."""


@dataclass(frozen=True, slots=True)
class TemplateImpl:
    """Render ``text`` (``str.format`` syntax) with the arguments."""

    text: str


Impl = (
    FunctionImpl
    | AskImpl
    | ComposeImpl
    | ForEachImpl
    | SwitchImpl
    | GroupImpl
    | AroundImpl
    | CollectImpl
    | TemplateImpl
)
"""Every step kind."""

_COMPOSITES = (ComposeImpl, ForEachImpl, SwitchImpl, GroupImpl, AroundImpl)


# -- unbound and bound steps -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepDef:
    """A step as written, before the reactor gives it its name and checks it.

    Attributes:
        impl: What the step does.
        sources: Arguments given explicitly (``args=`` or keyword sources).
        name: The name given with ``name=``, else the function's (if any).
        options: The other options, as given (checked by :func:`bind`).
        unknown: Options that do not exist (reported by :func:`bind`).
        named: Whether ``name=`` was given: in a class body, the attribute names a step
            unless ``name=`` was given (``loud = step(shout)`` is the step ``loud``).
    """

    impl: Impl
    sources: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    unknown: Mapping[str, Any] = field(default_factory=dict)
    named: bool = False


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A bound, validated step: what the executor runs.

    Attributes:
        name: Its name, unique in the reactor.
        impl: What it does.
        arguments: Argument name to its source.
        wait_for: Steps that must finish first without giving an argument.
        depends_on: Every input and step it needs (arguments and ``wait_for``).
        where: Run only if ``where(arguments, context)`` holds (adapted when bound:
            see ``dsl._hooks``).
        guard: ``guard(arguments, context)`` may supply the result instead of running
            (a :class:`~dsl.Shortcut`).
        max_retries: Retries after the first attempt.
        backoff: Seconds before each retry.
        timeout: Seconds an attempt may take (``None``: no limit).
        compensate: Decides what a failure means; called as
            ``compensate(error=..., arguments=...)``.
        undo: Rolls the step back when a later step fails; called as
            ``undo(value=..., arguments=...)``.
        description: What it is for.
    """

    name: str
    impl: Impl
    arguments: Mapping[str, Source]
    wait_for: tuple[str, ...] = ()
    depends_on: frozenset[str] = frozenset()
    where: Callable[[dict[str, Any], Mapping[str, Any]], Any] | None = None
    guard: Callable[[dict[str, Any], Mapping[str, Any]], Any] | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff: Backoff = DEFAULT_BACKOFF
    timeout: float | None = None
    compensate: Callable[..., Any] | None = None
    undo: Callable[..., Any] | None = None
    description: str = ""

    @property
    def kind(self) -> str:
        """``function``, ``ask``, ``compose``, ``for_each``, ... (for display)."""
        return {
            FunctionImpl: "function",
            AskImpl: "ask",
            ComposeImpl: "compose",
            ForEachImpl: "for_each",
            SwitchImpl: "switch",
            GroupImpl: "group",
            AroundImpl: "around",
            CollectImpl: "collect",
            TemplateImpl: "template",
        }[type(self.impl)]

    @property
    def result_type(self) -> Any:
        """The type results are decoded to when a run is replayed."""
        if isinstance(self.impl, FunctionImpl):
            return self.impl.result_type
        if isinstance(self.impl, AskImpl):
            from actors.llm import Completion  # noqa: PLC0415

            return Completion
        if isinstance(self.impl, TemplateImpl):
            return str
        return Any

    @property
    def sub_reactors(self) -> tuple[type[Reactor], ...]:
        """The reactors a composite step runs."""
        impl = self.impl
        if isinstance(impl, SwitchImpl):
            branches = [reactor for _, reactor in impl.cases]
            return (*branches, *([impl.default] if impl.default else []))
        if isinstance(impl, _COMPOSITES):
            return (impl.reactor,)
        return ()


# -- the constructors users call ----------------------------------------------------------


@overload
def step(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    args: Mapping[str, Any] | None = None,
    wait_for: Sequence[str] = (),
    where: Callable[..., Any] | None = None,
    guard: Callable[..., Any] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    backoff: float | Backoff | None = None,
    timeout: float | None = None,
    compensate: Callable[..., Any] | None = None,
    undo: Callable[..., Any] | None = None,
    description: str = "",
    **unknown: Never,
) -> Callable[[Callable[..., Any]], Any]: ...


@overload
def step(
    fn: Callable[..., Any],
    /,
    *,
    name: str | None = None,
    args: Mapping[str, Any] | None = None,
    wait_for: Sequence[str] = (),
    where: Callable[..., Any] | None = None,
    guard: Callable[..., Any] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    backoff: float | Backoff | None = None,
    timeout: float | None = None,
    compensate: Callable[..., Any] | None = None,
    undo: Callable[..., Any] | None = None,
    description: str = "",
    **unknown: Never,
) -> Any: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    args: Mapping[str, Any] | None = None,
    wait_for: Sequence[str] = (),
    where: Callable[..., Any] | None = None,
    guard: Callable[..., Any] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    backoff: float | Backoff | None = None,
    timeout: float | None = None,
    compensate: Callable[..., Any] | None = None,
    undo: Callable[..., Any] | None = None,
    description: str = "",
    **unknown: Never,
) -> Any:
    """Make a function a step: ``@step`` or ``@step(max_retries=2, ...)`` in a reactor.

    The function's parameters are its arguments: each binds to the input or step of the
    same name, unless its default is a source (:func:`~dsl.ref`, :func:`~dsl.value`).
    ``async def`` functions run on the event loop; plain ``def`` in a worker pool.

    Args:
        fn: The function (when used as ``@step`` without parentheses).
        name: The step's name; by default the class attribute's (``shout = step(fn)``
            is the step ``shout``). A step added while running (``WithSteps``) that sets
            none is named after its function.
        args: Sources for parameters, for functions whose signature you don't control
            and for steps made while running (``WithSteps``).
        wait_for: Steps that must finish first, without passing their results.
        where: Run the step only if ``where(arguments)`` is true; otherwise it is
            skipped and steps that need its result are skipped too. A second
            parameter (or one named ``context``) gets the run's context.
        guard: ``guard(arguments)`` returns ``None`` to run the step, or a
            :class:`~dsl.Shortcut` whose value is the result instead. Like ``where``,
            it may take the run's context too: ``guard(arguments, context)``.
        max_retries: Retries after the first attempt (default
            :data:`DEFAULT_MAX_RETRIES`).
        backoff: Seconds before a retry: a number, or ``fn(retry_number, error)``;
            default :func:`exponential`.
        timeout: Seconds an attempt may take; then it fails with a timeout (which is
            retried). A sync step's thread cannot be stopped: its late result is ignored.
        compensate: ``compensate(error, arguments)`` returns :class:`~dsl.Continue`,
            :class:`~dsl.Retry` or :class:`~dsl.Fail` (``None``: fail). A step rescued
            with ``Continue`` counts as completed: its ``undo`` runs in a rollback.
        undo: ``undo(value, arguments)`` rolls the step back when a later step fails;
            completed steps are undone in reverse order of completion.
            ``compensate`` and ``undo`` take their two arguments positionally (any
            names) or by keyword (these names); one that can take neither is a
            :class:`~dsl.DefinitionError` when the reactor is defined.
        description: What the step is for.
        **unknown: Options that do not exist: reported, with the reactor and step,
            when the reactor is defined.
    """
    options: dict[str, Any] = {
        "wait_for": wait_for,
        "where": where,
        "guard": guard,
        "max_retries": max_retries,
        "backoff": backoff,
        "timeout": timeout,
        "compensate": compensate,
        "undo": undo,
        "description": description,
    }

    def make(function: Callable[..., Any]) -> StepDef:
        if isinstance(cast(object, function), StepDef) or not callable(function):
            msg = f"@step needs a function, got {function!r}"
            raise TypeError(msg)
        return StepDef(
            impl=_function_impl(function),
            sources=dict(args or {}),
            name=name or getattr(function, "__name__", None),
            named=name is not None,
            options=options,
            unknown=dict(unknown),
        )

    return make if fn is None else make(fn)


def ask(
    prompt: str,
    *,
    model: str,
    host: str | None = None,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    options: Mapping[str, Any] | None = None,
    args: Mapping[str, Any] | None = None,
    wait_for: Sequence[str] = (),
    where: Callable[..., Any] | None = None,
    guard: Callable[..., Any] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    backoff: float | Backoff | None = None,
    timeout: float | None = None,
    compensate: Callable[..., Any] | None = None,
    description: str = "",
    **unknown: Never,
) -> Any:
    """A step that asks ``model`` and returns its :class:`~actors.Completion`.

    ``prompt``, ``system`` and ``model`` are templates: each ``{name}`` is an argument, bound to
    the input or step of that name (``args`` may give other sources), and rendered
    with ``str.format`` (so ``{draft.content}`` and ``{facts[0]}`` work).
    Failures the model host reports as retryable (rate limits, overload, timeouts) are
    retried with backoff; an open circuit breaker fails the step at once.
    """
    sources = dict(args or {})
    step_options: dict[str, Any] = {
        "wait_for": wait_for,
        "where": where,
        "guard": guard,
        "max_retries": max_retries,
        "backoff": backoff,
        "timeout": timeout,
        "compensate": compensate,
        "description": description,
    }
    impl = AskImpl(
        prompt=prompt,
        model=model,
        host=host,
        system=system,
        temperature=temperature,
        max_tokens=max_tokens,
        options=dict(options or {}),
    )
    return StepDef(impl=impl, sources=sources, options=step_options, unknown=dict(unknown))


def compose(reactor: type[Reactor], /, **args: Any) -> Any:
    """Run ``reactor`` as one step; its inputs bind by name, or to the sources given."""
    return StepDef(impl=ComposeImpl(reactor), sources=args)


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


def switch(
    on: Any,
    /,
    cases: Sequence[tuple[Callable[[Any], bool], type[Reactor]]],
    *,
    default: type[Reactor] | None = None,
    **args: Any,
) -> Any:
    """Run the first reactor in ``cases`` whose predicate holds for ``on`` (a source).

    ``default`` runs when none holds (without one, the step's result is ``None``). Each
    branch's inputs bind by name, or to the sources given.
    """
    impl = SwitchImpl(on="__on__", cases=tuple(cases), default=default)
    return StepDef(impl=impl, sources={"__on__": on, **args})


def group(
    reactor: type[Reactor],
    /,
    *,
    before: Callable[[dict[str, Any]], Any] | None = None,
    after: Callable[[dict[str, Any], Any], Any] | None = None,
    **args: Any,
) -> Any:
    """Run ``before(args)``, then ``reactor``'s steps, then ``after(args, result)``.

    ``after`` runs whether the steps succeeded or not (with ``None`` as the result when
    they failed), like a ``finally``; ``before`` and ``after`` may be ``async``.
    """
    return StepDef(impl=GroupImpl(reactor, before, after), sources=args)


def around(
    reactor: type[Reactor],
    wrapper: Callable[[dict[str, Any], Callable[[dict[str, Any]], Awaitable[Any]]], Awaitable[Any]],
    /,
    **args: Any,
) -> Any:
    """Wrap ``reactor``'s steps: ``await wrapper(args, run)`` must ``await run(args)``.

    For a transaction, a lock, a temporary directory: whatever must hold while the
    steps run. What ``wrapper`` returns is the step's result.
    """
    return StepDef(impl=AroundImpl(reactor, wrapper), sources=args)


def collect(**args: Any) -> Any:
    """A step whose result is a dict of its arguments (sources, by keyword)."""
    return StepDef(impl=CollectImpl(), sources=args)


def template(text: str, /, **args: Any) -> Any:
    """A step that renders ``text`` with ``str.format``; ``{name}`` binds by name."""
    return StepDef(impl=TemplateImpl(text), sources=args)


# -- binding: from StepDef to StepSpec -----------------------------------------------------


def _function_impl(fn: Callable[..., Any]) -> FunctionImpl:
    signature = _signature(fn)
    context_param = None
    for param in signature.parameters.values():
        if _is_context(param.annotation):
            context_param = param.name
    result_type = signature.return_annotation
    if result_type is inspect.Signature.empty or isinstance(result_type, str):
        result_type = Any
    return FunctionImpl(
        fn=fn,
        is_async=inspect.iscoroutinefunction(fn),
        context_param=context_param,
        result_type=result_type,
    )


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(fn, eval_str=True)
    except (NameError, TypeError, SyntaxError):
        return inspect.signature(fn)


def _is_context(annotation: Any) -> bool:
    return annotation is StepContext or annotation == "StepContext"


@dataclass(slots=True)
class _Binder:
    """Binds one StepDef inside one reactor, raising errors that say where."""

    reactor: str
    step: str
    names: Mapping[str, str]  # every input/step name -> "input" or "step"

    def fail(self, problem: str, argument: str | None = None) -> Never:
        raise DefinitionError(problem, reactor=self.reactor, step=self.step, argument=argument)

    def source(self, argument: str, given: Any) -> Source:
        if not isinstance(given, Ref | Value):
            self.fail(
                f"{given!r} is not a source: use ref('step_or_input', ...) or value(...)",
                argument,
            )
        if isinstance(given, Ref):
            self.known(given.name, argument)
        return given

    def known(self, name: str, argument: str) -> None:
        if name == self.step:
            self.fail("a step cannot take its own result", argument)
        if name not in self.names:
            self.fail(f"no input or step named {name!r}{_suggest(name, self.names)}", argument)

    def by_name(self, argument: str) -> Ref:
        self.known(argument, argument)
        return Ref(argument)


def _suggest(name: str, names: Mapping[str, str]) -> str:
    import difflib  # noqa: PLC0415 - only on the error path

    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def bind(definition: StepDef, name: str, reactor: str, names: Mapping[str, str]) -> StepSpec:
    """Check ``definition`` as step ``name`` of ``reactor`` and bind its arguments.

    Args:
        definition: The step as written.
        name: Its name.
        reactor: The reactor's name (for errors).
        names: Every input and step name in the reactor (``"input"`` or ``"step"``).

    Raises:
        DefinitionError: An unknown option or reference, a wrong option value, a
            parameter the function does not take or cannot get, naming reactor, step
            and argument.
    """
    binder = _Binder(reactor, name, names)
    for option in definition.unknown:
        if option in _OPTION_NAMES:
            binder.fail(f"option {option!r} does not apply to this kind of step")
        binder.fail(f"unknown option {option!r}{_suggest(option, _OPTION_NAMES)}")
    impl = definition.impl
    arguments: dict[str, Source] = {}
    match impl:
        case FunctionImpl():
            arguments = _function_arguments(binder, impl, definition.sources)
        case AskImpl() | TemplateImpl():
            arguments = _template_arguments(binder, impl, definition.sources)
        case CollectImpl():
            if not definition.sources:
                binder.fail("collect() needs at least one argument")
            arguments = {k: binder.source(k, v) for k, v in definition.sources.items()}
        case ComposeImpl() | ForEachImpl() | SwitchImpl() | GroupImpl() | AroundImpl():
            impl, arguments = _composite_arguments(binder, impl, definition.sources)
    options = dict(definition.options)
    waits = options.pop("wait_for", ()) or ()
    wait_for: tuple[str, ...] = (waits,) if isinstance(waits, str) else tuple(waits)
    for other in wait_for:
        binder.known(other, "wait_for")
    return StepSpec(
        name=name,
        impl=impl,
        arguments=arguments,
        wait_for=wait_for,
        depends_on=frozenset(
            {s.name for s in arguments.values() if isinstance(s, Ref)} | set(wait_for)
        ),
        **_checked_options(binder, options),
    )


_OPTION_NAMES = dict.fromkeys(
    (
        "name",
        "args",
        "wait_for",
        "where",
        "guard",
        "max_retries",
        "backoff",
        "timeout",
        "compensate",
        "undo",
        "description",
    ),
    "option",
)


def _checked_options(binder: _Binder, options: dict[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key in ("where", "guard", "compensate", "undo"):
        fn = options.get(key)
        if fn is not None and not callable(fn):
            binder.fail(f"option {key!r} must be a function, got {fn!r}")
        if fn is not None:
            try:
                checked[key] = adapt_hook(key, fn)
            except TypeError as exc:
                binder.fail(f"option {key!r} {exc}")
    retries = options.get("max_retries", DEFAULT_MAX_RETRIES)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        binder.fail(f"option 'max_retries' must be an int >= 0, got {retries!r}")
    checked["max_retries"] = retries
    timeout = options.get("timeout")
    if timeout is not None and (
        not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0
    ):
        binder.fail(f"option 'timeout' must be a number of seconds > 0, got {timeout!r}")
    checked["timeout"] = None if timeout is None else float(timeout)
    backoff = options.get("backoff")
    if backoff is None:
        checked["backoff"] = DEFAULT_BACKOFF
    elif isinstance(backoff, int | float) and not isinstance(backoff, bool) and backoff >= 0:
        seconds = float(backoff)
        checked["backoff"] = lambda _n, _e: seconds
    elif callable(backoff):
        checked["backoff"] = backoff
    else:
        binder.fail(f"option 'backoff' must be seconds >= 0 or fn(n, error), got {backoff!r}")
    description = options.get("description", "")
    if not isinstance(description, str):
        binder.fail(f"option 'description' must be a str, got {description!r}")
    checked["description"] = description
    return checked


def _function_arguments(
    binder: _Binder, impl: FunctionImpl, given: Mapping[str, Any]
) -> dict[str, Source]:
    signature = _signature(impl.fn)
    params = signature.parameters
    for argument in given:
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
        if param.name in given:
            arguments[param.name] = binder.source(param.name, given[param.name])
        elif isinstance(param.default, Ref | Value):
            arguments[param.name] = binder.source(param.name, param.default)
        elif param.name in binder.names and param.name != binder.step:
            arguments[param.name] = Ref(param.name)
        elif param.default is inspect.Parameter.empty:
            if param.name == binder.step:
                binder.fail("a step cannot take its own result", param.name)
            hint = _suggest(param.name, binder.names)
            binder.fail(
                f"no input or step named {param.name!r}{hint}; give the parameter a "
                "default, or a source: ref('name', ...) or value(...)",
                param.name,
            )
    return arguments


def template_fields(text: str) -> list[str]:
    """The root names of the ``{placeholders}`` in a ``str.format`` template.

    A positional placeholder gives its number, or ``""`` for ``{}``, so that it can be
    refused: arguments are passed by name.
    """
    roots: list[str] = []
    for _literal, field_name, _spec, _conv in string.Formatter().parse(text):
        if field_name is None:
            continue
        root = field_name.split(".", 1)[0].split("[", 1)[0]
        if root not in roots:
            roots.append(root)
    return roots


def _template_arguments(
    binder: _Binder, impl: AskImpl | TemplateImpl, given: Mapping[str, Any]
) -> dict[str, Source]:
    texts = [impl.text] if isinstance(impl, TemplateImpl) else [impl.prompt]
    if isinstance(impl, AskImpl):
        if not isinstance(impl.model, str) or not impl.model:
            binder.fail(f"option 'model' must name a model, got {impl.model!r}")
        texts.append(impl.model)
        if impl.system is not None:
            texts.append(impl.system)
    fields: list[str] = []
    for text in texts:
        if not isinstance(text, str):
            binder.fail(f"the template must be a str, got {text!r}")
        try:
            fields.extend(f for f in template_fields(text) if f not in fields)
        except ValueError as exc:
            binder.fail(f"bad template {text!r}: {exc}")
    arguments: dict[str, Source] = {}
    for placeholder in fields:
        if placeholder.isdigit() or not placeholder.isidentifier():
            binder.fail(f"placeholder {{{placeholder}}} must be a name", placeholder)
        if placeholder in given:
            arguments[placeholder] = binder.source(placeholder, given[placeholder])
        else:
            arguments[placeholder] = binder.by_name(placeholder)
    for extra in given:
        if extra not in arguments:
            binder.fail("the template has no placeholder {" + extra + "}", extra)
    return arguments


def _composite_arguments(  # noqa: PLR0912 - one check per kind of mistake
    binder: _Binder,
    impl: ComposeImpl | ForEachImpl | SwitchImpl | GroupImpl | AroundImpl,
    given: Mapping[str, Any],
) -> tuple[Impl, dict[str, Source]]:
    from dsl._reactor import Reactor  # noqa: PLC0415 - the two modules refer to each other

    if isinstance(impl, SwitchImpl):
        for number, case in enumerate(impl.cases, 1):
            if not (isinstance(case, tuple) and len(case) == 2 and callable(case[0])):
                binder.fail(f"case {number} must be a (predicate, Reactor) pair, got {case!r}")
    reactors = (
        [r for _, r in impl.cases] + ([impl.default] if impl.default else [])
        if isinstance(impl, SwitchImpl)
        else [impl.reactor]
    )
    for sub in reactors:
        if not (isinstance(sub, type) and issubclass(sub, Reactor)) or sub is Reactor:
            binder.fail(f"{sub!r} is not a Reactor subclass")
    arguments: dict[str, Source] = {}
    special = {"__over__", "__on__"}
    for key in special & set(given):
        arguments[key] = binder.source("over" if key == "__over__" else "on", given[key])
    if isinstance(impl, ForEachImpl):
        inputs = impl.reactor.__plan__.inputs
        element = impl.element or next(iter(inputs), "")
        if element not in inputs:
            binder.fail(
                f"{impl.reactor.__name__} has no input {element!r} to receive each element",
                "element",
            )
        if impl.batch_size < 1:
            binder.fail(f"batch_size must be >= 1, got {impl.batch_size!r}", "batch_size")
        impl = ForEachImpl(impl.reactor, impl.over, element, impl.batch_size, impl.ordered)
    skip = {impl.element} if isinstance(impl, ForEachImpl) else set()
    wanted: dict[str, bool] = {}  # input name -> required by some branch
    for sub in reactors:
        for input_name, spec in sub.__plan__.inputs.items():
            if input_name not in skip:
                wanted[input_name] = wanted.get(input_name, False) or spec.required
    for argument in given:
        if argument not in special and argument not in wanted:
            names = ", ".join(r.__name__ for r in reactors)
            binder.fail(f"{names} has no input {argument!r}", argument)
    for input_name, required in wanted.items():
        if input_name in given:
            arguments[input_name] = binder.source(input_name, given[input_name])
        elif input_name in binder.names and input_name != binder.step:
            arguments[input_name] = Ref(input_name)
        elif required:
            if input_name == binder.step:
                binder.fail("a step cannot take its own result", input_name)
            binder.fail(
                f"the input {input_name!r} of "
                f"{'/'.join(r.__name__ for r in reactors)} has no input or step of that "
                f"name here{_suggest(input_name, binder.names)}; pass {input_name}=ref(...)",
                input_name,
            )
    return impl, arguments
