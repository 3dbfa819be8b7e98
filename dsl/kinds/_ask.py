"""The ``ask`` kind: ask one model, and the step's result is its ``Completion``.

``prompt``, ``system`` and ``model`` are ``str.format`` templates whose placeholders are
the step's arguments. Drawn as a hexagon; journaled (when added while running) with its
request fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Unpack

from dsl._sources import Source
from dsl.kinds._binding import Binder, template_arguments
from dsl.kinds._kind import StepKind, register
from dsl.kinds._options import CommonOptions
from dsl.kinds._spec import StepDef

__all__ = ["AskImpl", "AskKind", "ask"]


@dataclass(frozen=True, slots=True)
class AskImpl:
    """Ask one model: render ``prompt`` (a template) and send it to a model host.

    Attributes:
        prompt: The prompt template (``{name}`` placeholders are arguments).
        model: The model id as the host knows it (a template too).
        host: The ModelHost actor's name; ``None`` lets the engine find a host that
            serves ``model``.
        system: An optional system prompt template.
        temperature: Sampling temperature (the server's default when ``None``).
        max_tokens: Output token limit.
        options: Vendor-specific request fields.
    """

    prompt: str
    model: str
    host: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


class AskKind(StepKind[AskImpl]):
    """Steps that ask one model (no ``undo``: asking has no side effect to roll back)."""

    name = "ask"
    bounded = True  # its model calls end by their own deadlines
    impl = AskImpl
    options = CommonOptions
    shape = ("{{", "}}")

    def bind(
        self, impl: AskImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[AskImpl, dict[str, Source]]:
        """One argument per placeholder of the prompt, the model and the system prompt."""
        if not isinstance(impl.model, str):
            binder.fail(f"option 'model' must be a model id (a string), got {impl.model!r}")
        texts = [impl.prompt, impl.model]
        if impl.system is not None:
            texts.append(impl.system)
        return impl, template_arguments(binder, texts, sources)

    def result_type(self, impl: AskImpl) -> Any:
        """:class:`~actors.llm.Completion`."""
        from actors.llm import Completion  # noqa: PLC0415 - only when decoding

        return Completion

    def describe(self, impl: AskImpl) -> dict[str, Any]:
        """``{"ask": {prompt, model, host, system, temperature, max_tokens, options}}``."""
        return {
            "ask": {
                "prompt": impl.prompt,
                "model": impl.model,
                "host": impl.host,
                "system": impl.system,
                "temperature": impl.temperature,
                "max_tokens": impl.max_tokens,
                "options": dict(impl.options),
            }
        }

    def rebuild(self, data: Mapping[str, Any]) -> AskImpl:
        """The request fields, read back."""
        return AskImpl(**data["ask"])


register(AskKind())


def ask(
    prompt: str,
    *,
    model: str = "",
    host: str | None = None,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    options: Mapping[str, Any] | None = None,
    args: Mapping[str, Any] | None = None,
    **step_options: Unpack[CommonOptions],
) -> Any:
    """A step that asks ``model`` and returns its :class:`~actors.llm.Completion`.

    ``prompt``, ``system`` and ``model`` are templates: each ``{name}`` is an argument,
    bound to the input or step of that name (``args`` may give other sources), and
    rendered with ``str.format`` (so ``{draft.content}`` and ``{facts[0]}`` work).
    Failures the model host reports as retryable (rate limits, overload, timeouts) are
    retried with backoff; an open circuit breaker fails the step at once. The model
    ``"auto"`` lets the Selector choose one with its default policy (a
    :func:`~dsl.select` step without options).

    Args:
        prompt: The prompt template.
        model: The model (a template); empty (the default), or a template that
            renders empty, asks the engine's default model (``Engine(default_model=)``,
            else the fleet's first chat model).
        host: The ModelHost to ask; by default one that serves ``model``.
        system: A system prompt template.
        temperature: Sampling temperature.
        max_tokens: Output token limit.
        options: Vendor-specific request fields.
        args: Sources for placeholders that are not bound by name.
        **step_options: The common step options (:class:`~dsl.kinds.CommonOptions`).
    """
    impl = AskImpl(
        prompt=prompt,
        model=model,
        host=host,
        system=system,
        temperature=temperature,
        max_tokens=max_tokens,
        options=dict(options or {}),
    )
    return StepDef(impl=impl, sources=dict(args or {}), options=dict(step_options))
