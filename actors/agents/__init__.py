"""Agents with roles, templates, conversations between them, and PR review.

* :class:`Role` and :class:`AgentSpec` say what an agent is: a role (system prompt,
  context, constraints), a model (a named model, ``auto``/``auto:<policy>`` for the
  Selector, ``chain:<name>`` or a tuple for a fallback chain), tools, and a history
  :class:`Window` (last N turns, a token limit, or a summary of older turns);
* :class:`Agents` defines agents and asks them (``respond``, sync and async). Each
  agent is a virtual actor (:class:`Agent`): activated from its stream in the Store on
  first message, passivated when idle, addressed by name either way;
* :class:`Template` (:func:`load_templates` from TOML or YAML,
  :data:`BUILT_IN_TEMPLATES`) makes agents with every parameter checked against its
  constraint (:class:`TemplateError` names the field and the constraint);
* :class:`ConversationOrchestrator` starts conversations (virtual actors too), sends
  messages between agents, and runs team patterns (round-robin with a moderator, a
  selector that picks the next speaker) until a :class:`Termination`; conversations are
  stored, listed and resumed;
* :func:`review_pull_request` has specialist reviewers review a pull request (from the
  GitHub CLI's JSON and diff) in parallel, then a summary agent sums them up;
* :func:`compose_swarm` turns a query and constraints into a runnable reactor.
"""

from actors.agents._agent import Agent, AgentMemory, load_agent
from actors.agents._api import (
    AgentHandle,
    AgentRouter,
    Agents,
    ConversationInfo,
    ConversationOrchestrator,
)
from actors.agents._backend import AgentBackend, catalog_resolver
from actors.agents._compose import (
    STRATEGIES,
    SwarmConstraints,
    SwarmPlan,
    SwarmRole,
    plan_swarm,
)
from actors.agents._conversation import Conversation, ConversationMemory, load_conversation
from actors.agents._errors import AgentError, AgentNotFoundError, ConversationError, TemplateError
from actors.agents._messages import (
    AGENT_PREFIX,
    CONVERSATION_PREFIX,
    AgentDefined,
    AgentReply,
    AgentState,
    ConversationEnded,
    ConversationStarted,
    ConversationState,
    DefineAgent,
    DescribeAgent,
    DescribeConversation,
    Respond,
    RunTeam,
    Said,
    Say,
    StartConversation,
    Summarised,
    Termination,
    TurnAdded,
)
from actors.agents._review import (
    DEFAULT_REVIEWERS,
    DEFAULT_SUMMARIZER,
    PrFile,
    PullRequest,
    Review,
    ReviewResult,
    chunk_diff,
    ensure_reviewers,
    pull_request,
    review_prompt,
    review_pull_request,
    review_pull_request_async,
    split_diff,
)
from actors.agents._roles import AgentSpec, Role, Turn, Window, estimate_tokens, window_messages
from actors.agents._templates import (
    BUILT_IN_TEMPLATES,
    Param,
    Template,
    load_templates,
    parse_templates,
)

__all__ = [
    "AGENT_PREFIX",
    "BUILT_IN_TEMPLATES",
    "CONVERSATION_PREFIX",
    "DEFAULT_REVIEWERS",
    "DEFAULT_SUMMARIZER",
    "STRATEGIES",
    "Agent",
    "AgentBackend",
    "AgentDefined",
    "AgentError",
    "AgentHandle",
    "AgentMemory",
    "AgentNotFoundError",
    "AgentReply",
    "AgentRouter",
    "AgentSpec",
    "AgentState",
    "Agents",
    "Conversation",
    "ConversationEnded",
    "ConversationError",
    "ConversationInfo",
    "ConversationMemory",
    "ConversationOrchestrator",
    "ConversationStarted",
    "ConversationState",
    "DefineAgent",
    "DescribeAgent",
    "DescribeConversation",
    "Param",
    "PrFile",
    "PullRequest",
    "Respond",
    "Review",
    "ReviewResult",
    "Role",
    "RunTeam",
    "Said",
    "Say",
    "StartConversation",
    "Summarised",
    "SwarmConstraints",
    "SwarmPlan",
    "SwarmRole",
    "Template",
    "TemplateError",
    "Termination",
    "Turn",
    "TurnAdded",
    "Window",
    "catalog_resolver",
    "chunk_diff",
    "ensure_reviewers",
    "estimate_tokens",
    "load_agent",
    "load_conversation",
    "load_templates",
    "parse_templates",
    "plan_swarm",
    "pull_request",
    "review_prompt",
    "review_pull_request",
    "review_pull_request_async",
    "split_diff",
    "window_messages",
]
