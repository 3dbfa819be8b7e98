"""One call from a task to an answer: analyse, choose, run (for callers that are not reactors).

:func:`orchestrate` is what a reasoning session's "decide with several models" needs:
a prompt, its task type, the reasoning so far, the members, and the engine's paths
(how a model name finds its host, the catalog, the Budget); back comes a
:class:`~._runner.StrategyResult` with the strategy chosen, why, and every call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from actors import Ref
from actors.llm import Catalog, TaskType
from actors.orchestration.budget import SpendScope
from actors.orchestration.selection import analyse
from actors.orchestration.strategies._aggregate import Aggregator
from actors.orchestration.strategies._chooser import AUTO, choose_strategy
from actors.orchestration.strategies._runner import (
    Resolve,
    StrategyResult,
    embedder,
    host_caller,
    run_strategy,
)
from actors.orchestration.strategies._spec import Member, StrategyKind

__all__ = ["orchestrate"]


async def orchestrate(
    prompt: str,
    *,
    members: Sequence[str | Member],
    resolve: Resolve,
    catalog: Catalog | None = None,
    task_type: TaskType | None = None,
    context: str = "",
    kind: StrategyKind | Literal["auto"] = AUTO,
    system: str | None = None,
    threshold: float = 0.6,
    resonance: float = 0.8,
    embedding_model: str | None = None,
    aggregator: Aggregator | None = None,
    resident_limits: Mapping[str, int] | None = None,
    max_tokens: int | None = None,
    budget: Ref[Any] | None = None,
    scope: SpendScope | None = None,
    timeout: float | None = None,
) -> StrategyResult:
    """Choose a strategy for ``prompt`` (or validate ``kind``), run it, return the answer.

    Args:
        prompt: The task.
        members: Model names (``model``, ``host/model``) or :class:`~._spec.Member` s.
        resolve: ``(model, host) -> (host ref, model)`` (an engine's, or a fleet's).
        catalog: What is loaded and what fits (``None``: everything is taken to fit).
        task_type: ``code``, ``reasoning``, ``analysis``, ``general``, ``creative`` or
            ``factual`` (``None``: inferred from the prompt).
        context: The reasoning accumulated so far.
        kind: ``auto`` or a strategy.
        system: A system prompt for every call.
        threshold: ``consensus``: the agreement below which the result is flagged.
        resonance: ``semantic``: the cosine similarity at which answers resonate.
        embedding_model: The embedding model for ``semantic``.
        aggregator: ``consensus``/``semantic``: how answers become one.
        resident_limits: Models each host keeps resident, by host name.
        max_tokens: Output tokens per member answer (default: by task type).
        budget: The Budget actor that admits every call.
        scope: Whom the calls are charged to.
        timeout: Seconds each call may take.

    Raises:
        StrategyError: A constraint is broken (before any call).
        StrategyFailed: No member answered.
    """
    given = [Member(model=m) if isinstance(m, str) else m for m in members]
    features = analyse(f"{context}\n{prompt}" if context else prompt, task_type=task_type)
    choice = choose_strategy(
        features,
        given,
        catalog,
        kind=kind,
        threshold=threshold,
        resonance=resonance,
        embedding_model=embedding_model,
        resident_limits=resident_limits,
    )
    if max_tokens is not None:
        choice = replace(choice, profile=replace(choice.profile, max_tokens=max_tokens))
    return await run_strategy(
        choice,
        prompt,
        call=host_caller(resolve, budget=budget, scope=scope, timeout=timeout),
        system=system,
        context=context,
        aggregator=aggregator,
        embed=embedder(resolve, embedding_model) if embedding_model else None,
    )
