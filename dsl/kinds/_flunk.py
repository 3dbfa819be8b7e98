"""The ``flunk`` kind: a step that always fails, with a message built from its arguments.

The message is a ``str.format`` template whose placeholders bind by name (or to
sources given in ``args``); ``args`` may give other arguments too, which the error
carries. The step fails with :class:`~reactor.run.ForcedFailureError` (journal kind
``forced_failure``), which is not retried, so the run rolls back. Use ``where=`` to
flunk only in some cases. Drawn as a flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Unpack

from dsl._sources import Source
from dsl.kinds._binding import Binder, template_arguments, template_fields
from dsl.kinds._kind import StepKind, register
from dsl.kinds._options import FlowOptions
from dsl.kinds._spec import StepDef

__all__ = ["FlunkImpl", "FlunkKind", "flunk"]


@dataclass(frozen=True, slots=True)
class FlunkImpl:
    """Fail with ``message`` (a ``str.format`` template) rendered with the arguments."""

    message: str


class FlunkKind(StepKind[FlunkImpl]):
    """Steps that fail on purpose (they take ``wait_for``, ``where``, ``guard``)."""

    name = "flunk"
    impl = FlunkImpl
    options = FlowOptions
    shape = (">", "]")

    def bind(
        self, impl: FlunkImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[FlunkImpl, dict[str, Source]]:
        """One argument per placeholder, and one per other source given."""
        if not isinstance(impl.message, str):
            binder.fail(f"the message must be a str, got {impl.message!r}", "message")
        try:
            fields = template_fields(impl.message)
        except ValueError as exc:
            binder.fail(f"bad message template {impl.message!r}: {exc}", "message")
        placeholders = {k: v for k, v in sources.items() if k in fields}
        arguments = template_arguments(binder, [impl.message], placeholders)
        for argument, given in sources.items():
            if argument not in arguments:
                arguments[argument] = binder.source(argument, given)
        return impl, arguments

    def describe(self, impl: FlunkImpl) -> dict[str, Any]:
        """``{"message": template}``."""
        return {"message": impl.message}

    def rebuild(self, data: Mapping[str, Any]) -> FlunkImpl:
        """The message template, read back."""
        return FlunkImpl(data["message"])


register(FlunkKind())


def flunk(
    message: str,
    /,
    *,
    args: Mapping[str, Any] | None = None,
    **step_options: Unpack[FlowOptions],
) -> Any:
    """A step that always fails with a ``ForcedFailureError`` saying ``message``.

    Args:
        message: A ``str.format`` template: ``{name}`` binds to the input or step of
            that name (``"order {order.id} is over its limit"``).
        args: Sources for placeholders not bound by name, and other arguments the
            error carries (``ForcedFailureError.arguments``).
        **step_options: ``wait_for``, ``where`` (flunk only if), ``guard``,
            ``description`` (:class:`~dsl.kinds.FlowOptions`).
    """
    return StepDef(impl=FlunkImpl(message), sources=dict(args or {}), options=dict(step_options))
