"""Running a ``strategy`` step: choose (or validate) a strategy, then run it on the I/O loop.

1. render the prompt, the system prompt and the context from the step's arguments;
2. describe the task (:func:`~actors.orchestration.analyse`) and ask the chooser, with
   the engine's catalog (what is loaded, free GPU memory), for a strategy and its
   schedule; a broken constraint fails the step ``bad_argument`` before any call, its
   message naming the step, the strategy and the constraint;
3. run it (:func:`~actors.orchestration.strategies.run_strategy`): every member call
   goes to the host its model resolves to, admitted by the engine's Budget when there
   is one and charged to the run;
4. the result is the :class:`~actors.orchestration.strategies.StrategyResult`; when no
   member answered, the step fails with the members' own failure kind (so the step's
   retries apply to transient ones) and every member's error in its message;
5. the engine's Selector is told what each model did
   (:func:`~actors.orchestration.strategies.observations`): a vote's agreement is each
   member's quality, as the Consensus actor reports it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from opentelemetry import trace

from actors import AskError, Failure, FailureKind
from actors.orchestration import analyse
from actors.orchestration.strategies import (
    StrategyChoice,
    StrategyError,
    StrategyFailed,
    StrategyResult,
    choose_strategy,
    embedder,
    host_caller,
    observations,
    run_strategy,
)
from dsl import StrategyImpl
from reactor.kinds._ask import spend_scope
from reactor.run import Attempt, Cancellable, StepExecutor, StepFailure

__all__ = ["StrategyExecutor"]


class StrategyExecutor(StepExecutor):
    """Chooses a strategy for the step's task and runs it over the model hosts."""

    def start(self, attempt: Attempt[StrategyImpl]) -> Cancellable | None:
        """Validate and choose now; the members' calls run as the attempt's coroutine."""
        impl = attempt.impl
        services = attempt.services
        arguments = attempt.arguments
        try:
            prompt = impl.prompt.format_map(arguments)
            system = impl.system.format_map(arguments) if impl.system else None
            context = impl.context.format_map(arguments) if impl.context else ""
        except (LookupError, AttributeError, ValueError) as exc:
            attempt.fail(StepFailure("bad_argument", str(exc)))
            return None
        features = analyse(prompt, task_type=impl.task_type)
        try:
            choice = choose_strategy(
                features,
                impl.members,
                services.catalog,
                kind=impl.kind,
                threshold=impl.threshold,
                resonance=impl.resonance,
                embedding_model=impl.embedding_model,
                resident_limits=impl.resident_limits or None,
            )
        except StrategyError as exc:
            attempt.fail(StepFailure("bad_argument", f"step {attempt.spec.name!r}: {exc}"))
            return None
        if impl.max_tokens is not None:
            choice = replace(choice, profile=replace(choice.profile, max_tokens=impl.max_tokens))
        call = host_caller(
            services.resolve_host,
            budget=services.budget,
            scope=spend_scope(attempt),
            timeout=attempt.spec.timeout,
        )
        embed = (
            embedder(services.resolve_host, impl.embedding_model) if impl.embedding_model else None
        )
        return attempt.run(
            _run(
                choice,
                prompt,
                call=call,
                system=system,
                context=context,
                impl=impl,
                embed=embed,
                selector=services.selector,
            ),
        )


async def _run(
    choice: StrategyChoice,
    prompt: str,
    *,
    call: Any,
    system: str | None,
    context: str,
    impl: StrategyImpl,
    embed: Any,
    selector: Any,
) -> StrategyResult:
    span = trace.get_current_span()
    span.set_attribute("reactor.strategy.kind", choice.kind)
    span.set_attribute("reactor.strategy.auto", choice.auto)
    span.set_attribute("reactor.strategy.waves", len(choice.waves))
    try:
        result = await run_strategy(
            choice,
            prompt,
            call=call,
            system=system,
            context=context,
            aggregator=impl.aggregator,
            embed=embed,
        )
    except StrategyFailed as exc:
        try:
            kind = FailureKind(exc.kind)
        except ValueError:
            kind = FailureKind.INTERNAL
        raise AskError(Failure(kind=kind, message=str(exc), source="strategy")) from exc
    if selector is not None:  # what each model did, and a vote's agreement as its quality
        for seen in observations(result):
            selector.tell_if_alive(seen)
    span.set_attribute("reactor.strategy.method", result.method)
    span.set_attribute("reactor.strategy.calls", len(result.calls))
    if result.agreement is not None:
        span.set_attribute("reactor.strategy.agreement", result.agreement)
    if result.agreed is not None:
        span.set_attribute("reactor.strategy.agreed", result.agreed)
    return result
