"""Running a ``fallback`` step: render the prompt and ask the chain's FallbackChain actor.

The chain's actor (one per chain, shared by every run: see
:class:`~actors.orchestration.Chains`) walks the links and answers a
:class:`~actors.orchestration.FallbackResult`, or the failure that ended the walk
(whose kind decides whether the step's own retries apply).
"""

from __future__ import annotations

from actors.llm import ChatRequest
from actors.orchestration import FallbackRequest
from dsl import FallbackImpl
from reactor.kinds._ask import spend_scope
from reactor.run import Attempt, Cancellable, StepExecutor, StepFailure

__all__ = ["FallbackExecutor"]


class FallbackExecutor(StepExecutor):
    """Asks a fallback chain."""

    def start(self, attempt: Attempt[FallbackImpl]) -> Cancellable | None:
        """Ask the chain; an unknown chain, or a bad placeholder, fails at once."""
        impl = attempt.impl
        chains = attempt.services.fallback_chain
        if chains is None:
            attempt.fail(StepFailure("not_found", "this engine has no fallback chains"))
            return None
        try:
            prompt = impl.prompt.format_map(attempt.arguments)
            system = impl.system.format_map(attempt.arguments) if impl.system else None
            ref = chains(impl.chain, attempt.arguments)
        except (LookupError, AttributeError, ValueError) as exc:
            kind = "not_found" if isinstance(exc, LookupError) else "bad_argument"
            attempt.fail(StepFailure(kind, str(exc)))
            return None
        request = ChatRequest.prompt(
            "",  # each link sets its own model
            prompt,
            system=system,
            temperature=impl.temperature,
            max_tokens=impl.max_tokens,
            stream=impl.stream,
            options=dict(impl.options),
        )
        scope = spend_scope(attempt)
        attempt.ask(
            ref,
            FallbackRequest(
                request=request, run_id=scope.run_id, reactor=scope.reactor, agent=scope.agent
            ),
        )
        return None
