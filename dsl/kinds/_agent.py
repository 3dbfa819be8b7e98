"""The ``agent`` and ``conversation`` kinds: ask a named agent, or run a team conversation.

An ``agent`` step renders its message template and asks the agent (a virtual actor,
through the router actor the engine's :meth:`~reactor.Engine.start_agents` starts); its
result is the :class:`~actors.agents.AgentReply`. The agent's history grows by the
message and its answer, as it does for :meth:`actors.agents.Agents.respond`.

A ``conversation`` step starts a conversation between agents (its id is the run's and
step's, so a resumed run continues the same conversation), runs a team pattern
(``round_robin`` with an optional moderator, or ``selector``) until a termination
condition, and results in the :class:`~actors.agents.ConversationState`.

Drawn as a subroutine box (``[[ ]]``); journaled (when added while running) with its fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Unpack

from dsl._sources import Source
from dsl.kinds._binding import Binder, template_arguments
from dsl.kinds._kind import StepKind, register
from dsl.kinds._options import CommonOptions
from dsl.kinds._spec import StepDef

__all__ = [
    "AgentImpl",
    "AgentKind",
    "ConversationImpl",
    "ConversationKind",
    "agent",
    "conversation",
]

_PATTERNS = ("round_robin", "selector")


@dataclass(frozen=True, slots=True)
class AgentImpl:
    """Ask the agent ``agent`` to answer the rendered ``message``.

    Attributes:
        agent: The agent's name (a template: ``{reviewer}`` is an argument).
        message: The message template.
        router: The router actor's name (``agents``).
    """

    agent: str
    message: str
    router: str = "agents"


class AgentKind(StepKind[AgentImpl]):
    """Steps that ask an agent."""

    name = "agent"
    impl = AgentImpl
    options = CommonOptions
    shape = ("[[", "]]")

    def bind(
        self, impl: AgentImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[AgentImpl, dict[str, Source]]:
        """One argument per placeholder of the message and the agent's name."""
        if not isinstance(impl.agent, str) or not impl.agent:
            binder.fail(f"option 'agent' must name an agent, got {impl.agent!r}")
        return impl, template_arguments(binder, [impl.message, impl.agent], sources)

    def result_type(self, impl: AgentImpl) -> Any:
        """:class:`~actors.agents.AgentReply`."""
        from actors.agents import AgentReply  # noqa: PLC0415 - only when decoding

        return AgentReply

    def describe(self, impl: AgentImpl) -> dict[str, Any]:
        """``{"agent": {agent, message, router}}``."""
        return {"agent": {"agent": impl.agent, "message": impl.message, "router": impl.router}}

    def rebuild(self, data: Mapping[str, Any]) -> AgentImpl:
        """The fields, read back."""
        return AgentImpl(**dict(data["agent"]))


@dataclass(frozen=True, slots=True)
class ConversationImpl:
    """Run a team conversation between agents.

    Attributes:
        participants: The agents taking part.
        topic: The topic template.
        initial: The first message's template (from ``user``).
        pattern: ``round_robin`` or ``selector``.
        moderator: An agent that opens each round (``round_robin``) or picks speakers
            (``selector``).
        max_rounds: Rounds at most.
        keyword: A word that ends the conversation (``TERMINATE``).
        max_messages: Messages at most.
        budget_usd: Total cost at most.
        budget_tokens: Total tokens at most.
        router: The router actor's name.
    """

    participants: tuple[str, ...]
    topic: str = ""
    initial: str = ""
    pattern: str = "round_robin"
    moderator: str = ""
    max_rounds: int = 3
    keyword: str | None = None
    max_messages: int | None = None
    budget_usd: float | None = None
    budget_tokens: int | None = None
    router: str = "agents"


class ConversationKind(StepKind[ConversationImpl]):
    """Steps that run a conversation."""

    name = "conversation"
    impl = ConversationImpl
    options = CommonOptions
    shape = ("[[", "]]")

    def bind(
        self, impl: ConversationImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[ConversationImpl, dict[str, Source]]:
        """Check the options; one argument per placeholder of the topic and first message."""
        if not impl.participants or not all(isinstance(p, str) and p for p in impl.participants):
            binder.fail(f"option 'participants' must name agents, got {list(impl.participants)!r}")
        if impl.pattern not in _PATTERNS:
            binder.fail(f"option 'pattern' must be one of {_PATTERNS}, got {impl.pattern!r}")
        if impl.max_rounds < 1:
            binder.fail(f"option 'max_rounds' must be at least 1, got {impl.max_rounds!r}")
        if impl.max_messages is not None and impl.max_messages < 1:
            binder.fail(f"option 'max_messages' must be at least 1, got {impl.max_messages!r}")
        return impl, template_arguments(binder, [impl.topic, impl.initial], sources)

    def result_type(self, impl: ConversationImpl) -> Any:
        """:class:`~actors.agents.ConversationState`."""
        from actors.agents import ConversationState  # noqa: PLC0415 - only when decoding

        return ConversationState

    def describe(self, impl: ConversationImpl) -> dict[str, Any]:
        """``{"conversation": {participants, topic, initial, pattern, ...}}``."""
        fields = {name: getattr(impl, name) for name in ConversationImpl.__slots__}
        fields["participants"] = list(impl.participants)
        return {"conversation": fields}

    def rebuild(self, data: Mapping[str, Any]) -> ConversationImpl:
        """The fields, read back."""
        fields = dict(data["conversation"])
        fields["participants"] = tuple(fields["participants"])
        return ConversationImpl(**fields)


register(AgentKind())
register(ConversationKind())


def agent(
    message: str,
    *,
    agent: str,
    router: str = "agents",
    args: Mapping[str, Any] | None = None,
    **step_options: Unpack[CommonOptions],
) -> Any:
    """A step that asks an agent; its result is the :class:`~actors.agents.AgentReply`.

    Args:
        message: The message template (``{name}`` placeholders are arguments).
        agent: The agent's name (may be a template too).
        router: The router actor (``engine.start_agents()`` starts ``agents``).
        args: Sources for placeholders that are not bound by name.
        **step_options: The common step options.
    """
    impl = AgentImpl(agent=agent, message=message, router=router)
    return StepDef(impl=impl, sources=dict(args or {}), options=dict(step_options))


def conversation(
    *,
    participants: Sequence[str],
    topic: str = "",
    initial: str = "",
    pattern: str = "round_robin",
    moderator: str = "",
    max_rounds: int = 3,
    keyword: str | None = None,
    max_messages: int | None = None,
    budget_usd: float | None = None,
    budget_tokens: int | None = None,
    router: str = "agents",
    args: Mapping[str, Any] | None = None,
    **step_options: Unpack[CommonOptions],
) -> Any:
    """A step that runs a team conversation; its result is the final ``ConversationState``.

    Args:
        participants: The agents taking part.
        topic: The topic template.
        initial: The first message's template.
        pattern: ``round_robin`` or ``selector``.
        moderator: The moderating agent, if any.
        max_rounds: Rounds at most.
        keyword: A word that ends it.
        max_messages: Messages at most.
        budget_usd: Total cost at most.
        budget_tokens: Total tokens at most.
        router: The router actor.
        args: Sources for placeholders that are not bound by name.
        **step_options: The common step options.
    """
    impl = ConversationImpl(
        participants=tuple(participants),
        topic=topic,
        initial=initial,
        pattern=pattern,
        moderator=moderator,
        max_rounds=max_rounds,
        keyword=keyword,
        max_messages=max_messages,
        budget_usd=budget_usd,
        budget_tokens=budget_tokens,
        router=router,
    )
    return StepDef(impl=impl, sources=dict(args or {}), options=dict(step_options))
