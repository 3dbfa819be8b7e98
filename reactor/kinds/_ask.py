"""Running an ``ask`` step: render the prompt, find the model's host, and ask it.

``model="auto"`` hands the step to the Selector instead (see ``_select.py``).

The request is a message to a ModelHost actor; its answer (a ``Completion``, or a
``Failure`` whose kind says whether it is worth retrying) comes back to the run as a
message, within the step's timeout.
"""

from __future__ import annotations

from typing import Any

from actors import AskError, Failure
from actors.llm import ChatRequest, Completion
from actors.orchestration import SpendScope, budgeted_chat
from dsl import AUTO, AskImpl
from reactor.kinds._select import ask_selector, spend_scope
from reactor.run import Attempt, Cancellable, StepExecutor, StepFailure

__all__ = ["AskExecutor", "spend_scope"]


class AskExecutor(StepExecutor):
    """Asks one model host."""

    def start(self, attempt: Attempt[AskImpl]) -> Cancellable | None:
        """Ask; a model that no host serves, or a bad placeholder, fails at once.

        The model ``auto`` lets the Selector choose (the default policy).
        """
        impl = attempt.impl
        arguments = attempt.arguments
        if impl.model == AUTO and impl.host is None:
            ask_selector(
                attempt,
                prompt=impl.prompt,
                system=impl.system,
                temperature=impl.temperature,
                max_tokens=impl.max_tokens,
                options=impl.options,
            )
            return None
        try:
            model = impl.model.format_map(arguments)
            host, model = attempt.services.resolve_host(model, impl.host)
            prompt = impl.prompt.format_map(arguments)
            system = impl.system.format_map(arguments) if impl.system else None
        except (LookupError, AttributeError, ValueError) as exc:
            kind = "not_found" if isinstance(exc, LookupError) else "bad_argument"
            attempt.fail(StepFailure(kind, str(exc)))
            return None
        request = ChatRequest.prompt(
            model,
            prompt,
            system=system,
            temperature=impl.temperature,
            max_tokens=impl.max_tokens,
            options=dict(impl.options),
        )
        budget = attempt.services.budget
        if budget is None:
            attempt.ask(host, request)
            return None
        scope = spend_scope(attempt)
        return attempt.run(_budgeted(host, request, budget, scope, attempt.spec.timeout))


async def _budgeted(
    host: Any, request: ChatRequest, budget: Any, scope: SpendScope, timeout: float | None
) -> Completion:
    answer = await budgeted_chat(host, request, budget=budget, scope=scope, timeout=timeout)
    if isinstance(answer, Failure):
        raise AskError(answer)
    return answer
