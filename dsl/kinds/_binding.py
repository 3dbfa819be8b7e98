"""Binding a step's arguments, with errors that say where: the helpers every kind uses.

A kind's :meth:`~dsl.kinds.StepKind.bind` gets a :class:`Binder` for the step being
bound: it checks sources, binds a name to the input or step of that name, and raises
:class:`~dsl.DefinitionError` naming the reactor, the step and the argument.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Never

from dsl._errors import DefinitionError
from dsl._sources import Ref, Source, Value

__all__ = ["Binder", "suggest", "template_arguments", "template_fields"]


def suggest(name: str, names: Mapping[str, Any] | Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``names``, or ``""``."""
    import difflib  # noqa: PLC0415 - only on the error path

    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(slots=True)
class Binder:
    """Binds one step inside one reactor, raising errors that say where.

    Attributes:
        reactor: The reactor's name.
        step: The step's name.
        names: Every input and step name in the reactor, to ``"input"`` or ``"step"``.
        again: The step is being re-emitted by itself (a loop): it may take its own
            name, which stands for its previous iteration's result.
    """

    reactor: str
    step: str
    names: Mapping[str, str]
    again: bool = False

    def fail(self, problem: str, argument: str | None = None) -> Never:
        """Raise a :class:`~dsl.DefinitionError` about this step (and ``argument``)."""
        raise DefinitionError(problem, reactor=self.reactor, step=self.step, argument=argument)

    def source(self, argument: str, given: Any) -> Source:
        """``given`` as the source of ``argument``: a ``ref`` to a known name, or a value."""
        if not isinstance(given, Ref | Value):
            self.fail(
                f"{given!r} is not a source: use ref('step_or_input', ...) or value(...)",
                argument,
            )
        if isinstance(given, Ref):
            self.known(given.name, argument)
        return given

    def known(self, name: str, argument: str) -> None:
        """Fail unless ``name`` is another input or step of the reactor."""
        if name == self.step and not self.again:
            self.fail("a step cannot take its own result", argument)
        if name not in self.names:
            self.fail(f"no input or step named {name!r}{suggest(name, self.names)}", argument)

    def by_name(self, argument: str) -> Ref:
        """The input or step named like ``argument``."""
        self.known(argument, argument)
        return Ref(argument)

    def gettable(self, name: str) -> bool:
        """Whether ``name`` can be bound by name (another input or step of the reactor)."""
        return name in self.names and (name != self.step or self.again)


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


def template_arguments(
    binder: Binder, texts: Sequence[Any], given: Mapping[str, Any]
) -> dict[str, Source]:
    """Arguments for ``str.format`` templates: one per placeholder, bound by name.

    ``given`` may give other sources for placeholders; a source for no placeholder fails.
    """
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
