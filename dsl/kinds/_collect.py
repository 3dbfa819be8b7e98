"""The ``collect`` kind: the step's result is a dict of its arguments.

Runs at once, without leaving the run; drawn as a parallelogram.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dsl._sources import Source
from dsl.kinds._binding import Binder
from dsl.kinds._kind import StepKind, register
from dsl.kinds._spec import StepDef

__all__ = ["CollectImpl", "CollectKind", "collect"]


@dataclass(frozen=True, slots=True)
class CollectImpl:
    """The arguments, as a dict."""


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
        return impl, {k: binder.source(k, v) for k, v in sources.items()}

    def describe(self, impl: CollectImpl) -> dict[str, Any]:
        """Nothing beyond its arguments."""
        return {}

    def rebuild(self, data: Mapping[str, Any]) -> CollectImpl:
        """A collect step."""
        return CollectImpl()


register(CollectKind())


def collect(**args: Any) -> Any:
    """A step whose result is a dict of its arguments (sources, by keyword)."""
    return StepDef(impl=CollectImpl(), sources=args)
