"""The ``template`` kind: render a ``str.format`` template with the arguments.

Each ``{placeholder}`` binds by name (or to a source given by keyword). Runs at once,
without leaving the run; drawn as a parallelogram.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dsl._sources import Source
from dsl.kinds._binding import Binder, template_arguments
from dsl.kinds._kind import StepKind, register
from dsl.kinds._spec import StepDef

__all__ = ["TemplateImpl", "TemplateKind", "template"]


@dataclass(frozen=True, slots=True)
class TemplateImpl:
    """Render ``text`` (``str.format`` syntax) with the arguments."""

    text: str


class TemplateKind(StepKind[TemplateImpl]):
    """Steps whose result is a rendered template (a ``str``)."""

    name = "template"
    impl = TemplateImpl
    shape = ("[/", "/]")

    def bind(
        self, impl: TemplateImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[TemplateImpl, dict[str, Source]]:
        """One argument per placeholder."""
        return impl, template_arguments(binder, [impl.text], sources)

    def result_type(self, impl: TemplateImpl) -> Any:
        """``str``."""
        return str

    def describe(self, impl: TemplateImpl) -> dict[str, Any]:
        """``{"text": template}``."""
        return {"text": impl.text}

    def rebuild(self, data: Mapping[str, Any]) -> TemplateImpl:
        """The template, read back."""
        return TemplateImpl(data["text"])


register(TemplateKind())


def template(text: str, /, **args: Any) -> Any:
    """A step that renders ``text`` with ``str.format``; ``{name}`` binds by name."""
    return StepDef(impl=TemplateImpl(text), sources=args)
