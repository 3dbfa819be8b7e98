"""The ``strategy`` kind: several models on one task, under a strategy chosen to fit memory.

``strategy("{question}", kind="auto", members=["llama3.2", "qwen2.5", "mistral"])`` asks
the chooser (:func:`~actors.orchestration.strategies.choose_strategy`) for a strategy
from the prompt's features and what fits in GPU memory now, runs it, and returns a
:class:`~actors.orchestration.strategies.StrategyResult`: the answer, the agreement,
why this strategy, and every member's call. A kind given explicitly (``consensus``,
``hierarchical``, ...) has its constraints checked where the reactor is defined; those
that need the catalog (an embedding model that embeds, members that fit at once) are
checked before the first call. Drawn as a double circle; journaled with its members
and settings (an injected aggregator is a Python callable and is not).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Unpack

from actors.llm import TaskType
from actors.orchestration.strategies import (
    AUTO,
    KINDS,
    Aggregator,
    Member,
    Strategy,
    StrategyError,
    StrategyKind,
    check,
)
from dsl._sources import Source
from dsl.kinds._binding import Binder, template_arguments
from dsl.kinds._kind import StepKind, register
from dsl.kinds._options import CommonOptions
from dsl.kinds._spec import StepDef

__all__ = ["StrategyImpl", "StrategyStepKind", "strategy"]

_TASK_TYPES = typing.get_args(TaskType)


@dataclass(frozen=True, slots=True)
class StrategyImpl:
    """Run a strategy over ``members`` for the rendered ``prompt``.

    Attributes:
        prompt: The prompt template (``{name}`` placeholders are arguments).
        kind: ``auto`` (the chooser decides) or a strategy's name.
        members: The members, in order of preference.
        task_type: The task type (``None``: inferred from the prompt).
        threshold: ``consensus``: agreement below which the result is flagged.
        resonance: ``semantic``: the cosine similarity at which answers resonate.
        embedding_model: The embedding model (``semantic``; ``auto`` may choose it).
        context: A template for reasoning accumulated so far, put before the task.
        system: A system prompt template.
        max_tokens: Output tokens per member answer (``None``: the task type's).
        resident_limits: Models each host keeps resident, by host, over the defaults.
        aggregator: ``consensus``/``semantic``: how answers become one (``None``: the
            default; not journaled).
    """

    prompt: str
    kind: StrategyKind | Literal["auto"] = AUTO
    members: tuple[Member, ...] = ()
    task_type: TaskType | None = None
    threshold: float = 0.6
    resonance: float = 0.8
    embedding_model: str | None = None
    context: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    resident_limits: Mapping[str, int] = field(default_factory=dict)
    aggregator: Aggregator | None = None


class StrategyStepKind(StepKind[StrategyImpl]):
    """Steps that run a multi-model strategy (no ``undo``: asking has no side effect)."""

    name = "strategy"
    bounded = True  # its model calls end by their own deadlines
    impl = StrategyImpl
    options = CommonOptions
    shape = ("(((", ")))")

    def bind(
        self, impl: StrategyImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[StrategyImpl, dict[str, Source]]:
        """Validate the strategy's constraints; one argument per template placeholder."""
        if impl.kind != AUTO and impl.kind not in KINDS:
            binder.fail(
                f"option 'kind' must be 'auto' or one of {', '.join(KINDS)}, got {impl.kind!r}"
            )
        if impl.task_type is not None and impl.task_type not in _TASK_TYPES:
            binder.fail(
                f"option 'task_type' must be one of {', '.join(_TASK_TYPES)}, "
                f"got {impl.task_type!r}"
            )
        if not impl.members:
            binder.fail("option 'members' must list at least one model")
        if impl.max_tokens is not None and impl.max_tokens < 1:
            binder.fail(f"option 'max_tokens' must be at least 1, got {impl.max_tokens!r}")
        if impl.kind != AUTO:
            try:
                check(
                    Strategy(
                        kind=impl.kind,
                        members=impl.members,
                        threshold=impl.threshold,
                        resonance=impl.resonance,
                        embedding_model=impl.embedding_model,
                    )
                )
            except StrategyError as exc:
                binder.fail(str(exc))
        texts = [impl.prompt]
        texts += [t for t in (impl.system, impl.context) if t is not None]
        return impl, template_arguments(binder, texts, sources)

    def result_type(self, impl: StrategyImpl) -> Any:
        """:class:`~actors.orchestration.strategies.StrategyResult`."""
        from actors.orchestration.strategies import StrategyResult  # noqa: PLC0415

        return StrategyResult

    def describe(self, impl: StrategyImpl) -> dict[str, Any]:
        """``{"strategy": {prompt, kind, members, ...}}`` (the aggregator is not written)."""
        return {
            "strategy": {
                "prompt": impl.prompt,
                "kind": impl.kind,
                "members": [
                    {
                        "model": m.model,
                        "host": m.host,
                        "role": m.role,
                        "temperature": m.temperature,
                        "weight": m.weight,
                    }
                    for m in impl.members
                ],
                "task_type": impl.task_type,
                "threshold": impl.threshold,
                "resonance": impl.resonance,
                "embedding_model": impl.embedding_model,
                "context": impl.context,
                "system": impl.system,
                "max_tokens": impl.max_tokens,
                "resident_limits": dict(impl.resident_limits),
            }
        }

    def rebuild(self, data: Mapping[str, Any]) -> StrategyImpl:
        """What :meth:`describe` wrote."""
        fields = dict(data["strategy"])
        fields["members"] = tuple(Member(**m) for m in fields.get("members") or ())
        fields["resident_limits"] = dict(fields.get("resident_limits") or {})
        return StrategyImpl(**fields)


register(StrategyStepKind())


def _member(given: object) -> Member:
    if isinstance(given, Member):
        return given
    if isinstance(given, str):
        return Member(model=given)
    msg = f"strategy members are model names or member(...), got {given!r}"
    raise TypeError(msg)


def strategy(
    prompt: str,
    *,
    kind: StrategyKind | Literal["auto"] = AUTO,
    members: Sequence[str | Member],
    task_type: TaskType | None = None,
    threshold: float = 0.6,
    resonance: float = 0.8,
    embedding_model: str | None = None,
    context: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    resident_limits: Mapping[str, int] | None = None,
    aggregator: Aggregator | None = None,
    args: Mapping[str, Any] | None = None,
    **step_options: Unpack[CommonOptions],
) -> Any:
    """A step that runs several models on one task; its result is a ``StrategyResult``.

    ``strategy("{question}", members=["a", "b", "c"])`` lets the chooser pick the
    strategy from the question and what fits in GPU memory; ``kind="consensus"``
    (and ``threshold=``), ``"hierarchical"`` (a ``member(..., role="coordinator")``),
    ``"semantic"`` (``embedding_model=``, ``resonance=``), ``"combinatorial"``,
    ``"concurrent"``, ``"chain"``, ``"specialized"`` (members with ``role=`` a task
    type), ``"hybrid"`` or ``"parallel"`` name one.

    Args:
        prompt: The prompt template.
        kind: ``auto`` or a strategy.
        members: Model names (``model``, ``host/model``) or
            :func:`~actors.orchestration.strategies.member` s.
        task_type: ``code``, ``reasoning``, ``analysis``, ``creative``, ``factual`` or
            ``general`` (default: inferred from the prompt).
        threshold: ``consensus``: the agreement below which the result is flagged.
        resonance: ``semantic``: the cosine similarity at which answers resonate.
        embedding_model: The embedding model ``semantic`` compares answers with.
        context: A template for the reasoning so far, put before the task.
        system: A system prompt template.
        max_tokens: Output tokens per member answer (default: by task type).
        resident_limits: Models each host keeps resident, by host name.
        aggregator: ``(answers, members) -> Agreement`` for ``consensus``/``semantic``.
        args: Sources for placeholders that are not bound by name.
        **step_options: The common step options (:class:`~dsl.kinds.CommonOptions`).

    Raises:
        TypeError: A member is neither a name nor a ``member(...)``.
    """
    impl = StrategyImpl(
        prompt=prompt,
        kind=kind,
        members=tuple(_member(m) for m in members),
        task_type=task_type,
        threshold=threshold,
        resonance=resonance,
        embedding_model=embedding_model,
        context=context,
        system=system,
        max_tokens=max_tokens,
        resident_limits=dict(resident_limits or {}),
        aggregator=aggregator,
    )
    return StepDef(impl=impl, sources=dict(args or {}), options=dict(step_options))
