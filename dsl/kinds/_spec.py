"""A step as written (:class:`StepDef`) and as bound (:class:`StepSpec`), and the binding.

Everything here is declarative data. ``step``, ``ask``, ``compose`` and the other
constructors build an unbound :class:`StepDef` (a kind's definition, its options and its
argument sources); the reactor class binds it to a name when the class is created
(:func:`bind`): the step's kind checks and binds its arguments, the common options are
checked once for every kind, and the executor (``reactor``) runs the bound
:class:`StepSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from dsl._sources import Ref, Source
from dsl.kinds._binding import Binder, suggest
from dsl.kinds._kind import KindError, kind_of
from dsl.kinds._options import (
    ALL_OPTIONS,
    DEFAULT_BACKOFF,
    DEFAULT_MAX_RETRIES,
    Backoff,
    checked_options,
)
from dsl.kinds._placement import Placement

if TYPE_CHECKING:
    from dsl._reactor import Reactor

__all__ = ["Impl", "StepContext", "StepDef", "StepSpec", "bind"]

Impl: TypeAlias = object
"""What a step does: an instance of a registered kind's definition class."""

_CONSTRUCTOR_OPTIONS = ("name", "args")
"""Keywords some constructors take besides the common options (for error messages)."""


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
        concurrency_key: The pool of step slots the run shares with other runs
            (``Engine.start(concurrency_key=...)``; ``None``: its own limit only).
        beat: What :meth:`heartbeat` calls (the run's progress stamp); ``None``: the
            run keeps no idle clock, and a heartbeat does nothing.
    """

    run_id: str
    reactor: str
    step: str
    attempt: int
    retries_left: int
    context: Mapping[str, Any] = field(default_factory=dict)
    concurrency_key: str | None = None
    beat: Callable[[], object] | None = field(default=None, repr=False, compare=False)

    def heartbeat(self) -> None:
        """Tell the run this step is making progress (its ``idle_timeout`` starts over).

        Thread-safe (a plain ``def`` step calls it from its worker thread) and cheap
        enough for a tight loop: it stamps the time, nothing more; the run's idle timer
        reads the stamp when it fires.
        """
        beat = self.beat
        if beat is not None:
            beat()

    @property
    def current_step(self) -> str:
        """Ash's name for :attr:`step`."""
        return self.step

    @property
    def current_try(self) -> int:
        """Retries before this attempt, from 0 (Ash's ``current_try``): ``attempt - 1``."""
        return self.attempt - 1

    @property
    def retries_remaining(self) -> int:
        """Ash's name for :attr:`retries_left`."""
        return self.retries_left


@dataclass(frozen=True, slots=True)
class StepDef:
    """A step as written, before the reactor gives it its name and checks it.

    Attributes:
        impl: What the step does (an instance of its kind's definition class).
        sources: Arguments given explicitly (``args=`` or keyword sources).
        name: The name given with ``name=``, else the function's (if any).
        options: The common options, as given (checked by :func:`bind`, which also
            reports options that do not exist or do not apply to the kind).
        named: Whether ``name=`` was given: in a class body, the attribute names a step
            unless ``name=`` was given (``loud = step(shout)`` is the step ``loud``).
    """

    impl: Impl
    sources: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    named: bool = False


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A bound, validated step: what the executor runs.

    The common options are bound here (a number of seconds of ``backoff`` became a
    function, ``wait_for`` a tuple); see :class:`~dsl.kinds.CommonOptions` for each.

    Attributes:
        name: Its name, unique in the reactor.
        impl: What it does.
        arguments: Argument name to its source.
        wait_for: Steps that must finish first without giving an argument.
        depends_on: Every input and step it needs (arguments and ``wait_for``).
        where: Run only if ``where(arguments, context)`` holds (hooks are adapted to
            one calling convention when bound: see ``dsl.kinds._hooks``).
        guard: ``guard(arguments, context)`` may supply the result instead of running
            (a :class:`~dsl.Shortcut`).
        max_retries: Retries after the first attempt.
        backoff: Seconds before each retry.
        timeout: Seconds an attempt may take (``None``: no limit).
        transform: ``transform(arguments)`` replaces the resolved arguments (same names).
        compensate: Decides what a failure means; called as
            ``compensate(error=..., arguments=...)``.
        undo: Rolls the step back when a later step fails; called as
            ``undo(value=..., arguments=...)``.
        description: What it is for.
        placement: Where its work runs (``None``: the reactor's, else the engine's).
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
    transform: Callable[[dict[str, Any]], Any] | None = None
    compensate: Callable[..., Any] | None = None
    undo: Callable[..., Any] | None = None
    description: str = ""
    placement: Placement | None = None

    @property
    def kind(self) -> str:
        """The kind's name: ``function``, ``ask``, ``compose``, ``for_each``, ..."""
        return kind_of(self.impl).name

    @property
    def result_type(self) -> Any:
        """The type results are decoded to when a run is replayed."""
        return kind_of(self.impl).result_type(self.impl)

    @property
    def sub_reactors(self) -> tuple[type[Reactor], ...]:
        """The reactors a composite step runs."""
        return kind_of(self.impl).sub_reactors(self.impl)


def bind(
    definition: StepDef,
    name: str,
    reactor: str,
    names: Mapping[str, str],
    *,
    again: bool = False,
) -> StepSpec:
    """Check ``definition`` as step ``name`` of ``reactor`` and bind its arguments.

    Args:
        definition: The step as written.
        name: Its name.
        reactor: The reactor's name (for errors).
        names: Every input and step name in the reactor (``"input"`` or ``"step"``).
        again: ``definition`` is step ``name`` re-emitting itself (a loop): it may take
            its own name (the previous iteration's result).

    Raises:
        DefinitionError: An unknown option or reference, a wrong option value, a
            parameter the function does not take or cannot get, naming reactor, step
            and argument.
    """
    binder = Binder(reactor, name, names, again)
    try:
        kind = kind_of(definition.impl)
    except KindError as exc:
        binder.fail(str(exc))
    takes = kind.option_table()
    for option in definition.options:
        if option in takes:
            continue
        if option in ALL_OPTIONS or option in _CONSTRUCTOR_OPTIONS:
            binder.fail(f"option {option!r} does not apply to this kind of step")
        known = [*ALL_OPTIONS, *_CONSTRUCTOR_OPTIONS]
        binder.fail(f"unknown option {option!r}{suggest(option, known)}")
    impl, arguments = kind.bind(definition.impl, definition.sources, binder)
    try:
        options = checked_options(definition.options)
    except ValueError as exc:
        binder.fail(str(exc))
    wait_for: tuple[str, ...] = options.pop("wait_for")
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
        **options,
    )
