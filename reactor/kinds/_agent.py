"""Running ``agent`` and ``conversation`` steps: requests to the agents' router actor.

The router (``engine.start_agents()``, named ``agents`` by default) forwards each
request to the virtual actor it addresses, activating it from the Store if it is
passivated. An ``agent`` step is one :class:`~actors.agents.Respond`; a ``conversation``
step describes its conversation (id ``<run_id>.<step>``), starts it if it does not exist,
returns it as it is if it ended already (a resumed run), and otherwise runs the team
pattern (:class:`~actors.agents.RunTeam`) to its end: what is left of its limits when it
continues a conversation an earlier attempt began.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actors import ActorNotFound, AskError, FailureKind, Ref
from actors.agents import (
    ConversationState,
    DescribeConversation,
    Respond,
    RunTeam,
    StartConversation,
    Termination,
)
from dsl import AgentImpl, ConversationImpl
from reactor.run import Attempt, Cancellable, StepExecutor, StepFailure

__all__ = ["AgentExecutor", "ConversationExecutor"]


def _router(attempt: Attempt[Any], name: str) -> Ref[Any] | None:
    lookup = attempt.services.lookup
    if lookup is None:
        return None
    try:
        return lookup(name)
    except ActorNotFound:
        return None


def _no_router(attempt: Attempt[Any], name: str) -> None:
    msg = f"no agents router named {name!r} runs in this process (call engine.start_agents())"
    attempt.fail(StepFailure("not_found", msg))


class AgentExecutor(StepExecutor):
    """Asks an agent through the router."""

    def start(self, attempt: Attempt[AgentImpl]) -> Cancellable | None:
        """Render the message and ask; a bad placeholder or no router fails at once."""
        impl = attempt.impl
        router = _router(attempt, impl.router)
        if router is None:
            _no_router(attempt, impl.router)
            return None
        try:
            message = impl.message.format_map(attempt.arguments)
            name = impl.agent.format_map(attempt.arguments)
        except (LookupError, AttributeError, ValueError) as exc:
            attempt.fail(StepFailure("bad_argument", str(exc)))
            return None
        attempt.ask(router, Respond(agent=name, message=message, run_id=attempt.run_id))
        return None


class ConversationExecutor(StepExecutor):
    """Starts (or continues) a conversation and runs its team pattern."""

    def start(self, attempt: Attempt[ConversationImpl]) -> Cancellable | None:
        """Render the topic and first message, then run the conversation as a coroutine."""
        impl = attempt.impl
        router = _router(attempt, impl.router)
        if router is None:
            _no_router(attempt, impl.router)
            return None
        try:
            topic = impl.topic.format_map(attempt.arguments)
            initial = impl.initial.format_map(attempt.arguments)
        except (LookupError, AttributeError, ValueError) as exc:
            attempt.fail(StepFailure("bad_argument", str(exc)))
            return None
        key = f"{attempt.run_id}.{attempt.spec.name}".replace("/", ".")
        start = StartConversation(
            conversation=key,
            participants=impl.participants,
            topic=topic,
            initial=initial,
            moderator=impl.moderator,
        )
        team = RunTeam(
            conversation=key,
            pattern=impl.pattern,  # type: ignore[arg-type]
            termination=Termination(
                max_rounds=impl.max_rounds,
                keyword=impl.keyword,
                max_messages=impl.max_messages,
                budget_usd=impl.budget_usd,
                budget_tokens=impl.budget_tokens,
            ),
            run_id=attempt.run_id,
        )
        return attempt.run(_converse(router, start, team, attempt.spec.timeout))


async def _converse(
    router: Ref[Any], start: StartConversation, team: RunTeam, timeout: float | None
) -> ConversationState:
    try:
        state: ConversationState = await router.ask_async(
            DescribeConversation(conversation=start.conversation)
        )
    except AskError as exc:
        if exc.failure.kind is not FailureKind.NOT_FOUND:
            raise
        await router.ask_async(start)
    else:
        if state.ended:
            return state
        team = _remaining(team, state)
    ended: ConversationState = await router.ask_async(team, timeout=timeout or 3600.0)
    return ended


def _remaining(team: RunTeam, state: ConversationState) -> RunTeam:
    """``team`` with the rounds and messages its conversation has had taken off its limits.

    A step's limits are the conversation's (``max_rounds``: rounds at most), and a team
    request counts only its own: a continued conversation (a retried attempt, a resumed
    run) runs what is left, not the whole again.
    """
    term = team.termination
    said = sum(1 for m in state.messages if m.round > 0)
    left = msgspec.structs.replace(
        term,
        max_rounds=max(term.max_rounds - state.rounds, 0),
        max_messages=None if term.max_messages is None else max(term.max_messages - said, 0),
    )
    return msgspec.structs.replace(team, termination=left)
