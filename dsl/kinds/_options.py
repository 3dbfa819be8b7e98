"""The options every kind of step can take, each declared once: type, default and doc.

An option is a key of :class:`CommonOptions` (or :class:`UndoableOptions`), annotated
``Annotated[type, Option(default, doc, check=...)]``. That one declaration serves all
four uses: the constructors' signatures (``**options: Unpack[CommonOptions]``, so a type
checker flags a misspelt option), the checks and defaults applied when a step is bound
(:func:`checked_options`), the journal form of a step added at run time (an option that
may be a function is journaled by its :func:`~dsl.locate` string), and the list of
options a kind takes (:attr:`~dsl.kinds.StepKind.options`). A kind's own options (an
``ask`` step's ``model``, a ``for_each``'s ``batch_size``) are the fields of its
definition class instead.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, TypeAlias, TypedDict, get_type_hints

from dsl.kinds._hooks import adapt_hook
from dsl.kinds._placement import Placement, placement_of

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_RETRIES",
    "Backoff",
    "CommonOptions",
    "FlowOptions",
    "FunctionOptions",
    "Option",
    "UndoableOptions",
    "checked_options",
    "exponential",
    "option_table",
]

DEFAULT_MAX_RETRIES = 3
"""Retries a step gets when it sets no ``max_retries``: 3 (so at most 4 attempts).

A step is retried when it returns :class:`~dsl.Retry`, when its ``compensate`` returns
:class:`~dsl.Retry`, or when it fails transiently (a timeout, a connection error, or a
model failure whose kind is retryable, such as ``rate_limited``). Other exceptions go to
``compensate`` (when there is one) and otherwise fail the step at once; so does a
transient failure once the retries are used up.
"""

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
class Option:
    """How one option is checked, defaulted and documented.

    Attributes:
        default: The value when the option is not given.
        doc: What it does, for users (shown by ``help()`` on the constructors' kinds).
        check: ``check(value) -> bound value``; raises ``ValueError`` with the problem
            (the binder adds the reactor and step). ``None``: taken as given.
        function: Whether the value may be a function, journaled by where it is found
            (for steps added while a run runs).
    """

    default: Any
    doc: str
    check: Callable[[Any], Any] | None = None
    function: bool = False


def _function(name: str) -> Callable[[Any], Any]:
    """A hook's check: a function that fits the hook's calling convention, adapted to it."""

    def check(given: Any) -> Any:
        if given is not None and not callable(given):
            msg = f"option {name!r} must be a function, got {given!r}"
            raise ValueError(msg)
        if given is None:
            return None
        try:
            return adapt_hook(name, given)
        except TypeError as exc:
            msg = f"option {name!r} {exc}"
            raise ValueError(msg) from exc

    return check


def _wait_for(given: Any) -> tuple[str, ...]:
    waits = given or ()
    return (waits,) if isinstance(waits, str) else tuple(waits)


def _max_retries(given: Any) -> int:
    if not isinstance(given, int) or isinstance(given, bool) or given < 0:
        msg = f"option 'max_retries' must be an int >= 0, got {given!r}"
        raise ValueError(msg)
    return given


def _timeout(given: Any) -> float | None:
    if given is None:
        return None
    if not isinstance(given, int | float) or isinstance(given, bool) or given <= 0:
        msg = f"option 'timeout' must be a number of seconds > 0, got {given!r}"
        raise ValueError(msg)
    return float(given)


def _backoff(given: Any) -> Backoff:
    if given is None:
        return DEFAULT_BACKOFF
    if isinstance(given, int | float) and not isinstance(given, bool) and given >= 0:
        seconds = float(given)
        return lambda _n, _e: seconds
    if callable(given):
        return given  # type: ignore[no-any-return]
    msg = f"option 'backoff' must be seconds >= 0 or fn(n, error), got {given!r}"
    raise ValueError(msg)


def _transform(given: Any) -> Callable[[dict[str, Any]], Any] | None:
    if given is None:
        return None
    if not callable(given):
        msg = f"option 'transform' must be a function of the arguments, got {given!r}"
        raise ValueError(msg)
    if inspect.iscoroutinefunction(given):  # its coroutine would be the arguments
        msg = "option 'transform' must be a plain function, not async def"
        raise ValueError(msg)
    return given  # type: ignore[no-any-return]


def _description(given: Any) -> str:
    if not isinstance(given, str):
        msg = f"option 'description' must be a str, got {given!r}"
        raise ValueError(msg)
    return given


Predicate: TypeAlias = Callable[..., Any]
"""``fn(arguments)`` or ``fn(arguments, context)`` (see ``dsl.kinds._hooks``)."""


class FlowOptions(TypedDict, total=False):
    """The options of every kind that takes options: when its steps run, and what for.

    Kinds whose steps do no work that could be retried or rolled back (``flunk``,
    ``debug``) take only these; :class:`CommonOptions` adds retries and the rest.
    """

    wait_for: Annotated[
        Sequence[str] | str,
        Option((), "Steps that must finish first, without passing their results.", check=_wait_for),
    ]
    where: Annotated[
        Predicate | None,
        Option(
            None,
            "Run the step only if ``where(arguments)`` is true; otherwise it is skipped "
            "and steps that need its result are skipped too. A second parameter (or one "
            "named ``context``) gets the run's context.",
            check=_function("where"),
            function=True,
        ),
    ]
    guard: Annotated[
        Predicate | None,
        Option(
            None,
            "``guard(arguments)`` returns ``None`` to run the step, or a "
            ":class:`~dsl.Shortcut` whose value is the result instead. It may take the "
            "run's context too: ``guard(arguments, context)``.",
            check=_function("guard"),
            function=True,
        ),
    ]
    description: Annotated[str, Option("", "What the step is for.", check=_description)]


class CommonOptions(FlowOptions, total=False):
    """The options of every kind that runs work of its own (functions, LLM calls, ...).

    :class:`FlowOptions`, and retries, backoff, a timeout, ``transform`` and ``compensate``.
    """

    max_retries: Annotated[
        int,
        Option(
            DEFAULT_MAX_RETRIES,
            "Retries after the first attempt (see :data:`DEFAULT_MAX_RETRIES`).",
            check=_max_retries,
        ),
    ]
    backoff: Annotated[
        float | Backoff | None,
        Option(
            None,
            "Seconds before a retry: a number, or ``fn(retry_number, error)``; "
            "default :func:`exponential`.",
            check=_backoff,
            function=True,
        ),
    ]
    timeout: Annotated[
        float | None,
        Option(
            None,
            "Seconds an attempt may take; then it fails with a timeout (which is "
            "retried). A sync step's thread cannot be stopped: its late result is ignored.",
            check=_timeout,
        ),
    ]
    transform: Annotated[
        Callable[[dict[str, Any]], Mapping[str, Any]] | None,
        Option(
            None,
            "``transform(arguments)`` returns the arguments the step gets instead: a "
            "mapping with the same names (a function step is called with it). It sees "
            "each argument after its own ``ref(..., transform=)``, and ``where``, "
            "``guard``, ``undo`` and ``compensate`` see what it returns. A plain "
            "function (not ``async def``), called in the run; one that raises, or "
            "returns other names, fails the step (kind ``bad_argument``).",
            check=_transform,
            function=True,
        ),
    ]
    compensate: Annotated[
        Callable[..., Any] | None,
        Option(
            None,
            "``compensate(error, arguments)`` returns :class:`~dsl.Continue`, "
            ":class:`~dsl.Retry` or :class:`~dsl.Fail` (``None``: fail). A step rescued "
            "with ``Continue`` counts as completed: its ``undo`` runs in a rollback. The "
            "two arguments are taken positionally (any names) or by keyword (these "
            "names); a function that can take neither is a DefinitionError.",
            check=_function("compensate"),
            function=True,
        ),
    ]


class UndoableOptions(CommonOptions, total=False):
    """:class:`CommonOptions`, and ``undo`` for kinds whose work has side effects."""

    undo: Annotated[
        Callable[..., Any] | None,
        Option(
            None,
            "``undo(value, arguments)`` rolls the step back when a later step fails; "
            "completed steps are undone in reverse order of completion. The two "
            "arguments are taken positionally (any names) or by keyword (these names).",
            check=_function("undo"),
            function=True,
        ),
    ]


def _placement(given: Any) -> Placement | None:
    try:
        return placement_of(given)
    except ValueError as exc:
        msg = str(exc) if str(exc).startswith("option") else f"option 'placement': {exc}"
        raise ValueError(msg) from exc


class FunctionOptions(UndoableOptions, total=False):
    """:class:`UndoableOptions`, and ``placement`` for kinds that run user code."""

    placement: Annotated[
        str | Placement | None,
        Option(
            None,
            "Where the step's work runs: ``'local'`` (the event loop and worker pool), "
            "``'ray'`` (a Ray cluster) or a :class:`~dsl.Placement` with the resources "
            "one call needs (CPUs, GPUs, memory, custom resources, a pool of actors). "
            "``None``: the reactor's placement, else the engine's.",
            check=_placement,
        ),
    ]


@cache
def option_table(options: type | None) -> Mapping[str, tuple[Any, Option]]:
    """Option name to ``(type, Option)`` for an options TypedDict (``None``: no options)."""
    if options is None:
        return {}
    hints = get_type_hints(options, include_extras=True)
    table: dict[str, tuple[Any, Option]] = {}
    for key, hint in hints.items():
        declared = next(m for m in hint.__metadata__ if isinstance(m, Option))
        table[key] = (hint.__origin__, declared)
    return table


ALL_OPTIONS = option_table(FunctionOptions)
"""Every common option: what :func:`checked_options` knows of."""


def checked_options(given: Mapping[str, Any]) -> dict[str, Any]:
    """Every common option, bound: ``given``'s checked, the others' defaults.

    Raises:
        ValueError: An option's value is wrong, saying which and why.
    """
    bound: dict[str, Any] = {}
    for key, (_type, option) in ALL_OPTIONS.items():
        value = given.get(key, option.default)
        bound[key] = option.check(value) if option.check is not None else value
    return bound
