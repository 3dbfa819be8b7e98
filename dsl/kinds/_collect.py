"""The ``collect`` kind: the step's result is a dict of its arguments.

With ``transform=fn`` the result is ``fn(that dict)`` instead (a plain function, called
in the run). Runs at once, without leaving the run; drawn as a parallelogram.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dsl._sources import Source
from dsl.kinds._binding import Binder
from dsl.kinds._kind import StepKind, register
from dsl.kinds._spec import StepDef

__all__ = ["CollectImpl", "CollectKind", "collect"]


@dataclass(frozen=True, slots=True)
class CollectImpl:
    """The arguments, as a dict (or what ``transform`` makes of that dict)."""

    transform: Callable[[dict[str, Any]], Any] | None = None


class CollectKind(StepKind[CollectImpl]):
    """Steps that gather their arguments into a dict."""

    name = "collect"
    impl = CollectImpl
    shape = ("[/", "/]")

    def bind(
        self, impl: CollectImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[CollectImpl, dict[str, Source]]:
        """Every keyword is a source; at least one is needed."""
        if not sources:
            binder.fail("collect() needs at least one argument")
        transform = impl.transform
        if transform is not None and (
            not callable(transform) or inspect.iscoroutinefunction(transform)
        ):
            binder.fail(
                f"transform must be a plain function of the dict, got {transform!r}", "transform"
            )
        return impl, {k: binder.source(k, v) for k, v in sources.items()}

    def describe(self, impl: CollectImpl) -> dict[str, Any]:
        """``{"transform": "module:fn"}`` when it has one; else nothing beyond its arguments."""
        if impl.transform is None:
            return {}
        from dsl._reactor import locate  # noqa: PLC0415 - the modules refer to each other

        return {"transform": locate(impl.transform)}

    def rebuild(self, data: Mapping[str, Any]) -> CollectImpl:
        """A collect step (with its transform found again)."""
        from dsl._reactor import find  # noqa: PLC0415

        transform = data.get("transform")
        return CollectImpl(None if transform is None else find(transform))


register(CollectKind())


def collect(*, transform: Callable[[dict[str, Any]], Any] | None = None, **args: Any) -> Any:
    """A step whose result is a dict of its arguments (sources, by keyword).

    ``transform(the dict)``, when given, is the result instead (a plain function; one
    that raises fails the step).
    """
    return StepDef(impl=CollectImpl(transform), sources=args)
