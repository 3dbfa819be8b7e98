"""What a step kind is on the definition side, and the registry of kinds.

A kind is a :class:`StepKind` subclass (one instance registered) plus its definition
class: a frozen dataclass holding what a step of that kind does (a function, a prompt
and a model, a reactor to run per element). The kind says everything the DSL, the
planner, the diagrams and the journal need to know about its steps; the executor
(``reactor.kinds``) says how they run. Registering a kind is what makes its steps
bindable, drawable and journalable::

    @dataclass(frozen=True)
    class LookupImpl:
        table: str

    class LookupKind(StepKind[LookupImpl]):
        name = "lookup"
        impl = LookupImpl
        options = CommonOptions
        shape = ("[(", ")]")

        def bind(self, impl, sources, binder): ...

    register(LookupKind())
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from dsl.kinds._options import ALL_OPTIONS, Option, option_table

if TYPE_CHECKING:
    from dsl._reactor import Reactor
    from dsl._sources import Source
    from dsl.kinds._binding import Binder
    from dsl.kinds._spec import StepSpec

__all__ = ["KindError", "StepKind", "kind_named", "kind_of", "kinds", "register", "unregister"]

I = TypeVar("I")  # noqa: E741 - the kind's definition class

_RESERVED = frozenset({"name", "kind", "args", "options"})
"""Keys of a step's journal form that the journal itself uses."""


class KindError(ValueError):
    """A step kind cannot be registered (a name taken, a definition class claimed twice)."""


class StepKind(ABC, Generic[I]):
    """A kind of step, on the definition side: subclass it and :func:`register` one.

    Attributes:
        name: The kind's name: how diagrams, the journal and ``StepSpec.kind`` call it.
        impl: The definition class (a frozen dataclass) whose instances are steps of
            this kind.
        options: The TypedDict of common options its steps take
            (:class:`~dsl.kinds.CommonOptions`, :class:`~dsl.kinds.UndoableOptions`), or
            ``None`` when its constructor's keywords are all argument sources.
        shape: Its node in a Mermaid diagram: the opening and closing brackets.
        bounded: Its work ends by a deadline of its own (a model call's timeout), so a
            run's ``idle_timeout`` does not count a step of this kind still running as
            a run without progress: it will finish or fail, and either is progress.
    """

    name: ClassVar[str]
    impl: ClassVar[type[Any]]
    options: ClassVar[type | None] = None
    shape: ClassVar[tuple[str, str]] = ("[", "]")
    bounded: ClassVar[bool] = False

    @abstractmethod
    def bind(
        self, impl: I, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[I, dict[str, Source]]:
        """Check a step of this kind and bind its arguments.

        Args:
            impl: The step's definition, as written.
            sources: Argument sources given explicitly (``args=``, keywords).
            binder: Resolves names and reports errors naming the reactor and step
                (:meth:`Binder.fail`, :meth:`Binder.source`, :meth:`Binder.by_name`).

        Returns:
            The definition, completed where binding fills something in (a default
            taken from the graph), and argument name to source.
        """

    def option_table(self) -> Mapping[str, tuple[Any, Option]]:
        """The common options this kind takes: name to ``(type, Option)``."""
        return option_table(self.options)

    def result_type(self, impl: I) -> Any:
        """The type a result is decoded to when a run is replayed (``Any``: as JSON)."""
        return Any

    def sub_reactors(self, impl: I) -> tuple[type[Reactor], ...]:
        """The reactors a step of this kind runs (composites); ``()`` for the others."""
        return ()

    def label(self, spec: StepSpec) -> str:
        """Its text in a Mermaid diagram: ``name: kind`` and the reactors it runs."""
        title = f"{spec.name}: {self.name}"
        subs = ", ".join(r.__name__ for r in spec.sub_reactors)
        return f"{title} {subs}" if subs else title

    def describe(self, impl: I) -> dict[str, Any]:
        """The journal form of a step added at run time: JSON-ready data.

        Functions and reactors are journaled by :func:`~dsl.locate`, so that another
        process finds them again. The default refuses: a kind that can be added
        while running says how to write it down.

        Raises:
            ValueError: It cannot be described (a lambda, a kind that cannot be
                added while running).
        """
        msg = f"a {self.name} step cannot be added while running"
        raise ValueError(msg)

    def rebuild(self, data: Mapping[str, Any]) -> I:
        """The definition :meth:`describe` wrote down (``data`` holds its keys)."""
        msg = f"a {self.name} step cannot be rebuilt from the journal"
        raise ValueError(msg)


_BY_NAME: dict[str, StepKind[Any]] = {}
_BY_IMPL: dict[type[Any], StepKind[Any]] = {}


def _origin(kind: StepKind[Any]) -> tuple[str, str]:
    cls = type(kind)
    try:
        where = inspect.getfile(cls)
    except TypeError:
        where = cls.__module__
    return where, cls.__qualname__


def register(kind: StepKind[Any]) -> StepKind[Any]:
    """Make a kind known: its steps can then be bound, drawn and journaled.

    Registering the same kind class again (its module imported a second time, as a
    script and by path) is allowed and keeps the first.

    Raises:
        KindError: Another kind has that name, or its definition class is another
            kind's, or a required attribute is missing.
    """
    for attribute in ("name", "impl"):
        if not hasattr(kind, attribute):
            msg = f"{type(kind).__qualname__} has no {attribute!r}: every step kind sets one"
            raise KindError(msg)
    if not kind.name.isidentifier():
        msg = f"a step kind's name must be an identifier, got {kind.name!r}"
        raise KindError(msg)
    unknown = set(kind.option_table()) - set(ALL_OPTIONS)
    if unknown:
        msg = f"step kind {kind.name!r}: unknown common options {sorted(unknown)}"
        raise KindError(msg)
    existing = _BY_NAME.get(kind.name)
    if existing is not None:
        if _origin(existing) != _origin(kind):
            msg = (
                f"a step kind named {kind.name!r} is already registered "
                f"({type(existing).__module__}.{type(existing).__qualname__}); "
                "choose another name, or unregister it first"
            )
            raise KindError(msg)
        _BY_IMPL.setdefault(kind.impl, existing)
        return existing
    claimed = _BY_IMPL.get(kind.impl)
    if claimed is not None:
        msg = f"{kind.impl.__qualname__} is already the definition of the {claimed.name!r} kind"
        raise KindError(msg)
    _BY_NAME[kind.name] = kind
    _BY_IMPL[kind.impl] = kind
    return kind


def unregister(name: str) -> None:
    """Forget the kind ``name`` (tests that register kinds of their own clean up)."""
    kind = _BY_NAME.pop(name, None)
    for impl, registered in list(_BY_IMPL.items()):
        if registered is kind:
            del _BY_IMPL[impl]


def kind_of(impl: object) -> StepKind[Any]:
    """The registered kind a step definition belongs to.

    Raises:
        KindError: Its class is no registered kind's definition.
    """
    kind = _BY_IMPL.get(type(impl))
    if kind is None:
        msg = f"{type(impl).__qualname__} is not the definition of a registered step kind"
        raise KindError(msg)
    return kind


def kind_named(name: str) -> StepKind[Any]:
    """The registered kind called ``name``.

    Raises:
        KindError: None is, listing those that are.
    """
    kind = _BY_NAME.get(name)
    if kind is None:
        msg = f"no step kind named {name!r} (registered: {', '.join(sorted(_BY_NAME))})"
        raise KindError(msg)
    return kind


def kinds() -> tuple[StepKind[Any], ...]:
    """Every registered kind, in registration order."""
    return tuple(_BY_NAME.values())


def reserved_keys() -> frozenset[str]:
    """Keys a kind's :meth:`StepKind.describe` may not use."""
    return _RESERVED
