"""Running a ``select`` step (and ``ask(model="auto")``): the Selector chooses, then asks.

The request goes to the Selector actor as a :class:`~actors.orchestration.SelectChat`;
its answer (the chosen model's ``Completion`` with the decision in
``extras["selection"]``, or a ``Failure`` with the decision in its details) comes back
to the run as a message, within the step's timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actors.llm import ChatRequest, TaskType
from actors.orchestration import SelectChat, SpendScope
from dsl import SelectImpl
from reactor.run import Attempt, Cancellable, StepExecutor, StepFailure

__all__ = ["SelectExecutor", "ask_selector", "spend_scope"]


def spend_scope(attempt: Attempt[Any]) -> SpendScope:
    """Whom a step's model calls are charged to: its top-level run, reactor and agent."""
    agent = attempt.context_values.get("agent")
    return SpendScope(
        run_id=attempt.run_id.split("/", 1)[0],
        reactor=attempt.reactor,
        agent=agent if isinstance(agent, str) else "",
    )


def ask_selector(
    attempt: Attempt[Any],
    *,
    prompt: str,
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    options: Mapping[str, Any],
    policy: str | None = None,
    task_type: TaskType | None = None,
    models: tuple[str, ...] = (),
    needs: tuple[str, ...] = (),
) -> None:
    """Render the prompt and ask the engine's Selector; a bad placeholder fails at once."""
    selector = attempt.services.selector
    if selector is None:
        msg = "this engine has no Selector, so it cannot choose a model"
        attempt.fail(StepFailure("not_found", msg))
        return
    arguments = attempt.arguments
    try:
        text = prompt.format_map(arguments)
        system_text = system.format_map(arguments) if system else None
    except (LookupError, AttributeError, ValueError) as exc:
        attempt.fail(StepFailure("bad_argument", str(exc)))
        return
    request = ChatRequest.prompt(
        "",
        text,
        system=system_text,
        temperature=temperature,
        max_tokens=max_tokens,
        options=dict(options),
    )
    scope = spend_scope(attempt)
    attempt.ask(
        selector,
        SelectChat(
            request=request,
            policy=policy,
            task_type=task_type,
            candidates=models,
            needs=needs,
            run_id=attempt.run_id,
            step=attempt.spec.name,
            reactor=scope.reactor,
            agent=scope.agent,
        ),
    )


class SelectExecutor(StepExecutor):
    """Asks the Selector, which asks the model it chose."""

    def start(self, attempt: Attempt[SelectImpl]) -> Cancellable | None:
        """Send the request to the Selector (the answer is the attempt's outcome)."""
        impl = attempt.impl
        ask_selector(
            attempt,
            prompt=impl.prompt,
            system=impl.system,
            temperature=impl.temperature,
            max_tokens=impl.max_tokens,
            options=impl.options,
            policy=impl.policy,
            task_type=impl.task_type,
            models=impl.models,
            needs=impl.needs,
        )
        return None
