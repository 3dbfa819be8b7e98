"""Where a step's arguments come from: another step's result or an input, or a value.

A parameter of a step function that is named like an input or a step gets its value;
to take something else, give the parameter a source as its default::

    @step
    def brief(notes: str = ref("research", "notes"), limit: int = value(3)) -> str: ...

``ref(name, *path)`` reads an input's value or a step's result (inputs and steps share
one namespace), then walks ``path``: a ``str`` is a mapping key or an attribute, an
``int`` a sequence index. ``ref(name, *path, transform=fn)`` then gives the step
``fn(value)`` instead: a per-argument transform, applied when the step is dispatched
(a transform that raises fails the step, naming the argument)::

    @step
    def greet(name: str = ref("user", "name", transform=str.title)) -> str: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

__all__ = ["PathError", "PathItem", "Ref", "Source", "Value", "ref", "resolve_path", "value"]

PathItem = str | int
"""One step into a value: a key or attribute (``str``) or an index (``int``)."""


@dataclass(frozen=True, slots=True)
class Ref:
    """The value of an input or the result of a step, optionally a part of it.

    Attributes:
        name: The input or step.
        path: Keys, attributes and indexes to walk into the value.
        transform: Applied to the value found, before the step gets it.
    """

    name: str
    path: tuple[PathItem, ...] = ()
    transform: Callable[[Any], Any] | None = None

    def describe(self) -> str:
        """``name.key[0]`` (``fn(name.key[0])`` if transformed), as errors and diagrams show it."""
        text = self.name
        for item in self.path:
            text += f"[{item}]" if isinstance(item, int) else f".{item}"
        if self.transform is not None:
            text = f"{getattr(self.transform, '__name__', 'transform')}({text})"
        return text


@dataclass(frozen=True, slots=True)
class Value:
    """A literal argument value."""

    value: Any

    def describe(self) -> str:
        """The value's repr, shortened for diagrams."""
        text = repr(self.value)
        return text if len(text) <= 24 else text[:21] + "..."


Source = Ref | Value
"""Where an argument comes from."""


def ref(name: str, *path: PathItem, transform: Callable[[Any], Any] | None = None) -> Any:
    """An argument taken from the input or step ``name``, then down ``path``.

    Args:
        name: The input or step.
        *path: Keys, attributes and indexes to walk into its value.
        transform: ``transform(value)`` is what the step gets (a plain function,
            called on the run's thread when the step is dispatched: keep it quick). If
            it raises, the step fails (it is not retried) with an error naming the
            argument. Steps added while running (``WithSteps``) need a module-level
            function here, so that a resumed run finds it again.

    Typed ``Any`` so that it can stand as any parameter's default.
    """
    if not isinstance(name, str) or not name:
        msg = f"ref() needs an input or step name, got {name!r}"
        raise TypeError(msg)
    for item in path:
        if not isinstance(item, str | int) or isinstance(item, bool):
            msg = f"ref({name!r}, ...): a path item must be a str or an int, got {item!r}"
            raise TypeError(msg)
    if transform is not None and not callable(cast(object, transform)):
        msg = f"ref({name!r}, ...): transform must be a function, got {transform!r}"
        raise TypeError(msg)
    if inspect.iscoroutinefunction(transform):  # its coroutine would be the argument
        msg = f"ref({name!r}, ...): transform must be a plain function, not async def"
        raise TypeError(msg)
    return Ref(name, tuple(path), transform)


def value(literal: Any) -> Any:
    """An argument that is always ``literal``."""
    return Value(literal)


class PathError(LookupError):
    """A sub-path does not exist in the value it walks (at run time)."""


def resolve_path(root: Any, path: Sequence[PathItem], *, what: str) -> Any:
    """Walk ``path`` into ``root``; :class:`PathError` names where it stopped."""
    current = root
    walked = what
    for item in path:
        try:
            if isinstance(item, int) or isinstance(current, Mapping):
                current = current[item]
            else:
                current = getattr(current, item)
        except (KeyError, IndexError, AttributeError, TypeError) as exc:
            shown = f"[{item}]" if isinstance(item, int) else f".{item}"
            msg = f"{walked} has no {shown} (it is a {type(current).__name__}{_holds(current)})"
            raise PathError(msg) from exc
        walked += f"[{item}]" if isinstance(item, int) else f".{item}"
    return current


def _holds(value: Any) -> str:
    """What a value a path could not walk into has: its keys, or its length."""
    if isinstance(value, Mapping):
        keys = [repr(k) for k in list(value)[:10]]
        more = ", ..." if len(value) > 10 else ""
        return f" with keys {', '.join(keys)}{more}" if keys else ", empty"
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return f" of {len(value)} item{'s' if len(value) != 1 else ''}"
    return ""
