"""The ``select`` kind: let the Selector choose the model, and ask it.

A ``select`` step is an ``ask`` whose model is chosen per request: by a policy (a name
the Selector knows: ``balanced``, ``cheapest``, ``fastest``, ``best``, or one configured
in ``[selection.policies]`` or given to the engine in Python), among candidate models
(default: every chat model in the catalog), for a task type (given, or inferred from the
prompt). Its result is the :class:`~actors.llm.Completion`, whose
``extras["selection"]`` records the decision: the chosen model, why, and every model
considered with its score or the reason it was rejected.

``ask(..., model="auto")`` is the same with the default policy. Drawn as a hexagon, like
``ask``; journaled (when added while running) with its request fields.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

from actors.llm import TaskType
from dsl._sources import Source
from dsl.kinds._binding import Binder, template_arguments
from dsl.kinds._kind import StepKind, register
from dsl.kinds._options import CommonOptions
from dsl.kinds._spec import StepDef

__all__ = ["AUTO", "SelectImpl", "SelectKind", "select"]

AUTO = "auto"
"""The model name that makes an ``ask`` step a ``select`` with the default policy."""

_TASK_TYPES = typing.get_args(TaskType)
_NEEDS = ("tools", "json", "vision", "embeddings")


@dataclass(frozen=True, slots=True)
class SelectImpl:
    """Choose a model under a policy, then ask it: render ``prompt`` and send it.

    Attributes:
        prompt: The prompt template (``{name}`` placeholders are arguments).
        policy: The selection policy's name (``None``: the selector's default).
        task_type: The task type (``None``: inferred from the prompt).
        models: The candidates (names, ``host/model`` or aliases); empty: the policy's,
            else every chat model in the catalog.
        needs: Capabilities the model must have: ``tools``, ``json``, ``vision``.
        system: An optional system prompt template.
        temperature: Sampling temperature (the server's default when ``None``).
        max_tokens: Output token limit (it counts against context windows).
        options: Vendor-specific request fields.
    """

    prompt: str
    policy: str | None = None
    task_type: TaskType | None = None
    models: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


class SelectKind(StepKind[SelectImpl]):
    """Steps whose model the Selector chooses (no ``undo``: asking has no side effect)."""

    name = "select"
    bounded = True  # its model calls end by their own deadlines
    impl = SelectImpl
    options = CommonOptions
    shape = ("{{", "}}")

    def bind(
        self, impl: SelectImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[SelectImpl, dict[str, Source]]:
        """One argument per placeholder of the prompt and the system prompt."""
        if impl.policy is not None and (not isinstance(impl.policy, str) or not impl.policy):
            binder.fail(f"option 'policy' must name a selection policy, got {impl.policy!r}")
        if impl.task_type is not None and impl.task_type not in _TASK_TYPES:
            binder.fail(
                f"option 'task_type' must be one of {', '.join(_TASK_TYPES)}, "
                f"got {impl.task_type!r}"
            )
        for model in impl.models:
            if not isinstance(model, str) or not model:
                binder.fail(f"option 'models' must hold model names, got {model!r}")
        unknown = [n for n in impl.needs if n not in _NEEDS]
        if unknown:
            binder.fail(f"option 'needs': unknown capabilities {unknown} (known: {_NEEDS})")
        if impl.max_tokens is not None and impl.max_tokens < 1:
            binder.fail(f"option 'max_tokens' must be at least 1, got {impl.max_tokens!r}")
        texts = [impl.prompt]
        if impl.system is not None:
            texts.append(impl.system)
        return impl, template_arguments(binder, texts, sources)

    def result_type(self, impl: SelectImpl) -> Any:
        """:class:`~actors.llm.Completion`."""
        from actors.llm import Completion  # noqa: PLC0415 - only when decoding

        return Completion

    def describe(self, impl: SelectImpl) -> dict[str, Any]:
        """``{"select": {prompt, policy, task_type, models, needs, system, ...}}``."""
        return {
            "select": {
                "prompt": impl.prompt,
                "policy": impl.policy,
                "task_type": impl.task_type,
                "models": list(impl.models),
                "needs": list(impl.needs),
                "system": impl.system,
                "temperature": impl.temperature,
                "max_tokens": impl.max_tokens,
                "options": dict(impl.options),
            }
        }

    def rebuild(self, data: Mapping[str, Any]) -> SelectImpl:
        """The request fields, read back."""
        fields = dict(data["select"])
        fields["models"] = tuple(fields.get("models") or ())
        fields["needs"] = tuple(fields.get("needs") or ())
        return SelectImpl(**fields)


register(SelectKind())


def select(
    prompt: str,
    *,
    policy: str | None = None,
    task_type: TaskType | None = None,
    models: Sequence[str] = (),
    needs: Sequence[str] = (),
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    options: Mapping[str, Any] | None = None,
    args: Mapping[str, Any] | None = None,
    **step_options: Unpack[CommonOptions],
) -> Any:
    """A step whose model the Selector chooses; its result is the :class:`~actors.llm.Completion`.

    ``prompt`` and ``system`` are templates, as for :func:`~dsl.ask`. The decision (the
    chosen model, the reason, every model considered) is in the result's
    ``extras["selection"]``, in the journal with it, and on the step's ``select`` span.
    A failure the selector blames on the model (a server error, a timeout) teaches it
    to avoid that model, so a retry may well go elsewhere.

    Args:
        prompt: The prompt template.
        policy: The selection policy's name (default: the selector's default policy).
        task_type: ``code``, ``reasoning``, ``analysis``, ``creative``, ``factual`` or
            ``general`` (default: inferred from the prompt).
        models: The candidates (default: the policy's, else every chat model).
        needs: Capabilities the model must have (``tools``, ``json``, ``vision``).
        system: A system prompt template.
        temperature: Sampling temperature.
        max_tokens: Output token limit.
        options: Vendor-specific request fields.
        args: Sources for placeholders that are not bound by name.
        **step_options: The common step options (:class:`~dsl.kinds.CommonOptions`).
    """
    impl = SelectImpl(
        prompt=prompt,
        policy=policy,
        task_type=task_type,
        models=tuple(models),
        needs=tuple(needs),
        system=system,
        temperature=temperature,
        max_tokens=max_tokens,
        options=dict(options or {}),
    )
    return StepDef(impl=impl, sources=dict(args or {}), options=dict(step_options))
