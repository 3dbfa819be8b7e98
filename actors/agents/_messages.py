"""The agents' protocol: requests to agents and conversations, their answers, stored events.

Every request here is a tagged :class:`~actors.Request` (the class name is the tag). An
agent's stream ``agent:<name>`` holds :class:`AgentDefined`, then :class:`TurnAdded`
and :class:`Summarised` events; a conversation's stream ``conversation:<id>`` holds
:class:`ConversationStarted`, :class:`Said` and :class:`ConversationEnded`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from actors import Message, Request
from actors.agents._roles import AgentSpec, Turn

__all__ = [
    "AGENT_PREFIX",
    "CONVERSATION_PREFIX",
    "AgentDefined",
    "AgentReply",
    "AgentState",
    "ConversationEnded",
    "ConversationStarted",
    "ConversationState",
    "DefineAgent",
    "DescribeAgent",
    "DescribeConversation",
    "Respond",
    "RunTeam",
    "Said",
    "Say",
    "StartConversation",
    "Summarised",
    "Termination",
    "TurnAdded",
]

AGENT_PREFIX = "agent:"
"""Agents' streams (and actor names) are ``agent:<name>``."""
CONVERSATION_PREFIX = "conversation:"
"""Conversations' streams (and actor names) are ``conversation:<id>``."""


# ---- agents ---------------------------------------------------------------------------


class AgentDefined(Message, frozen=True, kw_only=True):
    """An agent was defined (or redefined): its spec."""

    spec: AgentSpec


class DefineAgent(Request[AgentDefined], frozen=True, kw_only=True):
    """Define (or, with ``replace``, redefine) the agent ``spec.name``."""

    spec: AgentSpec
    replace: bool = False


class TurnAdded(Message, frozen=True, kw_only=True):
    """A turn was added to an agent's history."""

    turn: Turn


class Summarised(Message, frozen=True, kw_only=True):
    """The oldest ``upto`` turns of an agent's history are summed up by ``summary``."""

    summary: str
    upto: int


class AgentReply(Message, frozen=True, kw_only=True):
    """An agent's answer.

    Attributes:
        agent: Who answered.
        content: The answer.
        model: The model that wrote it (``host/model`` where known).
        input_tokens: Prompt tokens of the call(s).
        output_tokens: Answer tokens.
        cost_usd: What it cost (``None``: a model without a price).
        conversation: The conversation, if any.
        turns: The agent's history length after this answer.
    """

    agent: str
    content: str
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    conversation: str = ""
    turns: int = 0


class Respond(Request[AgentReply], frozen=True, kw_only=True):
    """Ask the agent ``agent`` to answer ``message``.

    Attributes:
        agent: The agent's name.
        message: What it is told.
        sender: Who says it (``user`` or another agent).
        conversation: The conversation it belongs to.
        context: Turns it has not seen yet (what others said in the conversation), added
            to its history before ``message``.
        run_id: The run asking (spend is charged to it).
    """

    agent: str
    message: str
    sender: str = "user"
    conversation: str = ""
    context: tuple[Turn, ...] = ()
    run_id: str = ""


class AgentState(Message, frozen=True, kw_only=True):
    """What an agent is and remembers."""

    spec: AgentSpec
    turns: tuple[Turn, ...] = ()
    summary: str = ""
    summarised: int = 0


class DescribeAgent(Request[AgentState], frozen=True, kw_only=True):
    """The agent's definition and history."""

    agent: str


# ---- conversations --------------------------------------------------------------------


class ConversationStarted(Message, frozen=True, kw_only=True):
    """A conversation began."""

    id: str
    participants: tuple[str, ...]
    topic: str = ""
    moderator: str = ""


class Said(Message, frozen=True, kw_only=True):
    """One message of a conversation.

    Attributes:
        sender: Who said it.
        recipient: To whom (empty: everyone).
        content: What was said.
        round: The team round it belongs to (0 outside team patterns).
        input_tokens: Prompt tokens of the answer's model call.
        output_tokens: Answer tokens.
        cost_usd: What the answer cost.
    """

    sender: str
    recipient: str = ""
    content: str
    round: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None


class ConversationEnded(Message, frozen=True, kw_only=True):
    """A conversation ended, and why (``max_rounds``, ``keyword``, ``predicate``, ``budget``)."""

    reason: str


class ConversationState(Message, frozen=True, kw_only=True):
    """A conversation: who takes part, what was said, and whether it ended."""

    id: str
    participants: tuple[str, ...] = ()
    topic: str = ""
    moderator: str = ""
    messages: tuple[Said, ...] = ()
    ended: str = ""
    rounds: int = 0


class StartConversation(Request[ConversationState], frozen=True, kw_only=True):
    """Start conversation ``conversation`` (its first message is ``initial``, from ``sender``)."""

    conversation: str
    participants: tuple[str, ...]
    topic: str = ""
    initial: str = ""
    sender: str = "user"
    moderator: str = ""


class Say(Request[Said], frozen=True, kw_only=True):
    """``sender`` tells ``recipient`` something; the recipient answers in context."""

    conversation: str
    sender: str
    recipient: str
    content: str
    run_id: str = ""


class Termination(msgspec.Struct, frozen=True, kw_only=True):
    """When a team conversation stops: whichever condition is met first.

    Attributes:
        max_rounds: Rounds at most (a round: every speaker of the pattern once).
        keyword: A word that ends it when a message contains it (``TERMINATE``).
        max_messages: Messages at most (the initial one not counted).
        budget_usd: Total cost at most (stops once spent reaches it).
        budget_tokens: Total tokens at most.
        predicate: A Python callable ``(ConversationState) -> bool`` that ends it when
            true (in-process only: it is never stored).
    """

    max_rounds: int = 3
    keyword: str | None = None
    max_messages: int | None = None
    budget_usd: float | None = None
    budget_tokens: int | None = None
    predicate: Any = None


class RunTeam(Request[ConversationState], frozen=True, kw_only=True):
    """Run (or resume) a team pattern on conversation ``conversation`` until it terminates.

    Attributes:
        conversation: The conversation (started already).
        pattern: ``round_robin`` (each participant in turn; a moderator, if any, opens
            each round) or ``selector`` (a model, or ``selector_func``, picks each speaker).
        termination: When to stop.
        selector_model: ``selector``: the agent whose model picks the next speaker
            (default: the moderator, else the first participant).
        selector_func: ``selector``: ``(ConversationState) -> name`` instead of a model
            (in-process only).
        allow_repeated_speaker: ``selector``: whether one speaker may speak twice in a row.
        run_id: The run asking.
    """

    conversation: str
    pattern: Literal["round_robin", "selector"] = "round_robin"
    termination: Termination = Termination()
    selector_model: str = ""
    selector_func: Any = None
    allow_repeated_speaker: bool = False
    run_id: str = ""


class DescribeConversation(Request[ConversationState], frozen=True, kw_only=True):
    """The conversation's state."""

    conversation: str
