"""The ``debug`` kind: log the step's arguments through structlog, and pass nothing on.

Each name given binds to the input or step of that name; ``args`` gives other sources.
The line goes to the ``reactor.debug`` logger at the step's ``level`` (``debug`` by
default), with the run id, the reactor, the step, the arguments and the run's context.
The step's result is ``None`` (as in Ash Reactor): wait for it with ``wait_for`` if
something must come after the line. It runs at once, in the run; drawn as a
parallelogram leaning left.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Unpack

from dsl._sources import Source
from dsl.kinds._binding import Binder
from dsl.kinds._kind import StepKind, register
from dsl.kinds._options import FlowOptions
from dsl.kinds._spec import StepDef

__all__ = ["LEVELS", "DebugImpl", "DebugKind", "debug"]

LEVELS = ("debug", "info", "warning", "error", "critical")
"""The levels a ``debug`` step may log at."""


@dataclass(frozen=True, slots=True)
class DebugImpl:
    """Log the arguments at ``level``.

    Attributes:
        names: The arguments bound by name (inputs or steps of those names).
        level: One of :data:`LEVELS`.
    """

    names: tuple[str, ...] = ()
    level: str = "debug"


class DebugKind(StepKind[DebugImpl]):
    """Steps that log their arguments (they take ``wait_for``, ``where``, ``guard``)."""

    name = "debug"
    impl = DebugImpl
    options = FlowOptions
    shape = ("[\\", "\\]")

    def bind(
        self, impl: DebugImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[DebugImpl, dict[str, Source]]:
        """Each name binds by name, each source as given; the level must be known."""
        if impl.level not in LEVELS:
            binder.fail(f"level must be one of {', '.join(LEVELS)}; got {impl.level!r}", "level")
        arguments: dict[str, Source] = {}
        for name in impl.names:
            if not isinstance(name, str) or name in arguments:
                binder.fail(f"{name!r} must be an input or step name, given once", str(name))
            arguments[name] = binder.by_name(name)
        for argument, given in sources.items():
            if argument in arguments:
                binder.fail("given both by name and as a source", argument)
            arguments[argument] = binder.source(argument, given)
        return impl, arguments

    def describe(self, impl: DebugImpl) -> dict[str, Any]:
        """``{"names": [...], "level": level}``."""
        return {"names": list(impl.names), "level": impl.level}

    def rebuild(self, data: Mapping[str, Any]) -> DebugImpl:
        """The names and level, read back."""
        return DebugImpl(tuple(data["names"]), data["level"])


register(DebugKind())


def debug(
    *names: str,
    level: str = "debug",
    args: Mapping[str, Any] | None = None,
    **step_options: Unpack[FlowOptions],
) -> Any:
    """A step that logs its arguments through structlog; its result is ``None``.

    Args:
        *names: Inputs or steps to log, bound by name (``debug("draft", "score")``).
        level: ``debug`` (default), ``info``, ``warning``, ``error`` or ``critical``.
        args: Other arguments, by source (``{"title": ref("draft", "title")}``).
        **step_options: ``wait_for``, ``where``, ``guard``, ``description``
            (:class:`~dsl.kinds.FlowOptions`).
    """
    impl = DebugImpl(tuple(names), level)
    return StepDef(impl=impl, sources=dict(args or {}), options=dict(step_options))
