"""The Python API: :class:`Agents` (define, respond, list) and :class:`ConversationOrchestrator`.

Both are thin clients of virtual actors (:class:`~actors.agents.Agent`,
:class:`~actors.agents.Conversation`) activated on demand under one supervisor, plus a
router actor (named ``agents`` by default) that the DSL's ``agent`` and
``conversation`` steps send their requests to. Every method has a sync form (for plain
threads) and an ``_async`` form (for asyncio code).
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from actors import (
    AskError,
    DuplicateActorName,
    FailureKind,
    LoopActor,
    Ref,
    SupervisorSpec,
    System,
)
from actors.agents._agent import Agent
from actors.agents._backend import AgentBackend
from actors.agents._conversation import Conversation
from actors.agents._errors import AgentError, AgentNotFoundError, ConversationError
from actors.agents._messages import (
    AGENT_PREFIX,
    CONVERSATION_PREFIX,
    AgentDefined,
    AgentReply,
    AgentState,
    ConversationState,
    DefineAgent,
    DescribeAgent,
    DescribeConversation,
    Respond,
    RunTeam,
    Said,
    Say,
    StartConversation,
    Termination,
)
from actors.agents._roles import AgentSpec
from actors.lowlevel import Activations
from actors.store import Journal, StreamInfo

__all__ = [
    "AgentHandle",
    "AgentRouter",
    "Agents",
    "ConversationInfo",
    "ConversationOrchestrator",
]

T = TypeVar("T")


class AgentRouter(LoopActor[Any]):
    """Routes agent requests to agents and conversation requests to conversations."""

    def __init__(self, agents: Activations, conversations: Activations) -> None:
        super().__init__()
        self.agents = agents
        self.conversations = conversations

    def receive(self, message: Any) -> object:
        """Forward to the addressed virtual actor; its answer is the answer."""
        try:
            reply = self.defer_reply()
        except RuntimeError:  # a tell: nobody waits, so there is nothing to route back
            self.log.warning("agents router: not a request", type=type(message).__name__)
            return None
        match message:
            case Respond() | DescribeAgent():
                target, key = self.agents, message.agent
            case DefineAgent():
                target, key = self.agents, message.spec.name
            case StartConversation() | Say() | RunTeam() | DescribeConversation():
                target, key = self.conversations, message.conversation
            case _:
                reply.fail(
                    FailureKind.BAD_REQUEST, f"not an agent request: {type(message).__name__}"
                )
                return None
        target.forward(self, key, message, reply.send)
        return None


class Agents:
    """Agents by name, whether active or passivated.

    Args:
        system: The actor system.
        backend: The services agents' model calls go through (and the Store).
        idle_s: Seconds an agent or conversation may stay idle before it passivates.
        name: The router's actor name (``agent``/``conversation`` steps use ``agents``).
    """

    def __init__(
        self,
        system: System,
        backend: AgentBackend,
        *,
        idle_s: float | None = 300.0,
        name: str = "agents",
    ) -> None:
        self.system = system
        self.backend = backend
        self.journal = Journal(backend.store, timeout=backend.timeout)
        spec = SupervisorSpec(
            name=f"{name}-supervisor", max_restarts=1_000_000, within=1.0, on_loop=True
        )
        try:
            supervisor: Ref[Any] = system.spawn(spec)
        except DuplicateActorName:
            supervisor = system.lookup(spec.name)
        self.activations = Activations(
            supervisor, Agent, prefix=AGENT_PREFIX, kwargs={"backend": backend}, idle_s=idle_s
        )
        self.conversations = Activations(
            supervisor,
            Conversation,
            prefix=CONVERSATION_PREFIX,
            kwargs={"backend": backend, "agents": self.activations},
            idle_s=idle_s,
        )
        try:
            self.router: Ref[Any] = system.spawn(
                AgentRouter, name=name, args=(self.activations, self.conversations)
            )
        except DuplicateActorName:
            self.router = system.lookup(name)

    # ---- defining ---------------------------------------------------------------------

    def define(self, spec: AgentSpec, *, replace: bool = False) -> AgentSpec:
        """Define an agent (stored); an identical definition is accepted again.

        Raises:
            AgentError: Another agent of that name exists (pass ``replace=True``).
        """
        spec.check()
        answer: AgentDefined = _call(
            lambda: self.activations.ask(spec.name, DefineAgent(spec=spec, replace=replace))
        )
        return answer.spec

    async def define_async(self, spec: AgentSpec, *, replace: bool = False) -> AgentSpec:
        """:meth:`define` for asyncio code."""
        spec.check()
        request = DefineAgent(spec=spec, replace=replace)
        answer: AgentDefined = await _call_async(self.activations.ask_async(spec.name, request))
        return answer.spec

    # ---- using ------------------------------------------------------------------------

    def respond(
        self, agent: str, message: str, *, sender: str = "user", run_id: str = ""
    ) -> AgentReply:
        """``agent``'s answer to ``message`` (its history grows by both).

        Raises:
            AgentNotFoundError: No agent of that name is defined.
            AskError: The model call failed (its kind says why).
        """
        request = Respond(agent=agent, message=message, sender=sender, run_id=run_id)
        return _call(lambda: self.activations.ask(agent, request))

    async def respond_async(
        self, agent: str, message: str, *, sender: str = "user", run_id: str = ""
    ) -> AgentReply:
        """:meth:`respond` for asyncio code."""
        request = Respond(agent=agent, message=message, sender=sender, run_id=run_id)
        return await _call_async(self.activations.ask_async(agent, request))

    def get(self, agent: str) -> AgentState:
        """The agent's definition and history."""
        return _call(lambda: self.activations.ask(agent, DescribeAgent(agent=agent)))

    async def get_async(self, agent: str) -> AgentState:
        """:meth:`get` for asyncio code."""
        return await _call_async(self.activations.ask_async(agent, DescribeAgent(agent=agent)))

    def names(self) -> builtins.list[str]:
        """Every stored agent's name, newest first."""
        return [s.stream_id.removeprefix(AGENT_PREFIX) for s in self._streams()]

    def list(self) -> builtins.list[AgentSpec]:
        """Every stored agent's definition (as first defined), newest first."""
        return [spec for spec in (_first_spec(s) for s in self._streams()) if spec is not None]

    def _streams(self) -> builtins.list[StreamInfo]:
        return self.journal.streams(AGENT_PREFIX)

    def is_active(self, agent: str) -> bool:
        """Whether ``agent`` has a running activation now."""
        return self.activations.is_active(agent)

    def agent(self, name: str) -> AgentHandle:
        """A handle on the agent ``name`` (defined or not yet)."""
        return AgentHandle(self, name)


class AgentHandle:
    """One agent by name: ``agents.agent("alice").respond("hi")``.

    A handle is a name and the :class:`Agents` it belongs to; the agent is activated
    when a message reaches it, wherever the handle was made.
    """

    __slots__ = ("agents", "name")

    def __init__(self, agents: Agents, name: str) -> None:
        self.agents = agents
        self.name = name

    def __repr__(self) -> str:
        return f"<AgentHandle {self.name!r}>"

    def respond(self, message: str, *, sender: str = "user", run_id: str = "") -> AgentReply:
        """The agent's answer (see :meth:`Agents.respond`)."""
        return self.agents.respond(self.name, message, sender=sender, run_id=run_id)

    async def respond_async(
        self, message: str, *, sender: str = "user", run_id: str = ""
    ) -> AgentReply:
        """:meth:`respond` for asyncio code."""
        return await self.agents.respond_async(self.name, message, sender=sender, run_id=run_id)

    def state(self) -> AgentState:
        """Its definition and history."""
        return self.agents.get(self.name)


class ConversationInfo:
    """A stored conversation in a listing."""

    __slots__ = ("created_at", "id", "last", "messages", "updated_at")

    def __init__(self, info: StreamInfo) -> None:
        self.id = info.stream_id.removeprefix(CONVERSATION_PREFIX)
        self.created_at = info.created_at
        self.updated_at = info.updated_at
        self.messages = info.last_seq
        self.last = info.last_type

    @property
    def ended(self) -> bool:
        """Whether its last event ended it."""
        return self.last == "ConversationEnded"

    def to_dict(self) -> dict[str, Any]:
        """For JSON output."""
        return {
            "id": self.id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "events": self.messages,
            "ended": self.ended,
        }


class ConversationOrchestrator:
    """Conversations between registered agents: direct messages and team patterns.

    Args:
        agents: The agents (and the services behind them).
    """

    def __init__(self, agents: Agents) -> None:
        self.agents = agents
        self._conversations = agents.conversations

    def register(self, *specs: AgentSpec, replace: bool = False) -> builtins.list[AgentSpec]:
        """Define agents (see :meth:`Agents.define`)."""
        return [self.agents.define(spec, replace=replace) for spec in specs]

    async def register_async(self, *specs: AgentSpec, replace: bool = False) -> list[AgentSpec]:
        """:meth:`register` for asyncio code."""
        return [await self.agents.define_async(spec, replace=replace) for spec in specs]

    def _start_request(
        self,
        participants: tuple[str, ...] | list[str],
        *,
        topic: str,
        initial: str,
        sender: str,
        moderator: str,
        conversation: str | None,
    ) -> StartConversation:
        names = tuple(participants)
        if not names:
            msg = "a conversation needs at least one participant"
            raise ConversationError(msg)
        if moderator and moderator not in names:
            names = (*names, moderator)
        return StartConversation(
            conversation=conversation or uuid.uuid4().hex[:12],
            participants=names,
            topic=topic,
            initial=initial,
            sender=sender,
            moderator=moderator,
        )

    def start(
        self,
        participants: tuple[str, ...] | list[str],
        *,
        topic: str = "",
        initial: str = "",
        sender: str = "user",
        moderator: str = "",
        conversation: str | None = None,
    ) -> str:
        """Start a conversation (stored) and return its id."""
        request = self._start_request(
            participants,
            topic=topic,
            initial=initial,
            sender=sender,
            moderator=moderator,
            conversation=conversation,
        )
        for name in request.participants:
            self.agents.get(name)  # every participant must exist
        state: ConversationState = _call(
            lambda: self._conversations.ask(request.conversation, request)
        )
        return state.id

    async def start_async(
        self,
        participants: tuple[str, ...] | list[str],
        *,
        topic: str = "",
        initial: str = "",
        sender: str = "user",
        moderator: str = "",
        conversation: str | None = None,
    ) -> str:
        """:meth:`start` for asyncio code."""
        request = self._start_request(
            participants,
            topic=topic,
            initial=initial,
            sender=sender,
            moderator=moderator,
            conversation=conversation,
        )
        for name in request.participants:
            await self.agents.get_async(name)
        state: ConversationState = await _call_async(
            self._conversations.ask_async(request.conversation, request)
        )
        return state.id

    def send(self, conversation: str, sender: str, recipient: str, content: str) -> Said:
        """``sender`` tells ``recipient`` something in ``conversation``; the recipient's answer."""
        request = Say(
            conversation=conversation, sender=sender, recipient=recipient, content=content
        )
        return _call(lambda: self._conversations.ask(conversation, request))

    async def send_async(
        self, conversation: str, sender: str, recipient: str, content: str
    ) -> Said:
        """:meth:`send` for asyncio code."""
        request = Say(
            conversation=conversation, sender=sender, recipient=recipient, content=content
        )
        return await _call_async(self._conversations.ask_async(conversation, request))

    def run_team(
        self,
        conversation: str,
        *,
        pattern: str = "round_robin",
        termination: Termination | None = None,
        **options: Any,
    ) -> ConversationState:
        """Run a team pattern until it terminates (see :class:`~actors.agents.RunTeam`)."""
        request = _team(conversation, pattern, termination, options)
        return _call(lambda: self._conversations.ask(conversation, request, timeout=_long(self)))

    async def run_team_async(
        self,
        conversation: str,
        *,
        pattern: str = "round_robin",
        termination: Termination | None = None,
        **options: Any,
    ) -> ConversationState:
        """:meth:`run_team` for asyncio code."""
        request = _team(conversation, pattern, termination, options)
        return await _call_async(
            self._conversations.ask_async(conversation, request, timeout=_long(self))
        )

    def resume(self, conversation: str, **kwargs: Any) -> ConversationState:
        """Continue a stored conversation with another :meth:`run_team` (it may have ended)."""
        self.get(conversation)
        return self.run_team(conversation, **kwargs)

    async def resume_async(self, conversation: str, **kwargs: Any) -> ConversationState:
        """:meth:`resume` for asyncio code."""
        await self.get_async(conversation)
        return await self.run_team_async(conversation, **kwargs)

    def get(self, conversation: str) -> ConversationState:
        """The conversation: participants, messages, whether it ended."""
        request = DescribeConversation(conversation=conversation)
        return _call(lambda: self._conversations.ask(conversation, request))

    async def get_async(self, conversation: str) -> ConversationState:
        """:meth:`get` for asyncio code."""
        request = DescribeConversation(conversation=conversation)
        return await _call_async(self._conversations.ask_async(conversation, request))

    def list(self, *, limit: int | None = None) -> builtins.list[ConversationInfo]:
        """Stored conversations, newest first."""
        streams = self.agents.journal.streams(CONVERSATION_PREFIX, limit=limit, include_first=False)
        return [ConversationInfo(s) for s in streams]


def _long(orchestrator: ConversationOrchestrator) -> float:
    return orchestrator.agents.backend.timeout * 50


def _team(
    conversation: str, pattern: str, termination: Termination | None, options: dict[str, Any]
) -> RunTeam:
    if pattern not in {"round_robin", "selector"}:
        msg = f"pattern {pattern!r}: must be 'round_robin' or 'selector'"
        raise ConversationError(msg)
    return RunTeam(
        conversation=conversation,
        pattern=pattern,  # type: ignore[arg-type]
        termination=termination or Termination(),
        **options,
    )


def _first_spec(info: StreamInfo) -> AgentSpec | None:
    import msgspec  # noqa: PLC0415 - listing only

    first = info.first
    if first is None or first.event_type != "AgentDefined":
        return None
    return msgspec.json.decode(first.data, type=AgentDefined).spec


def _translate(exc: BaseException) -> BaseException:
    """An agent's or conversation's own refusal as an AgentError; anything else as it is."""
    if not isinstance(exc, AskError):
        return exc
    failure = exc.failure
    if not (failure.source or "").startswith((AGENT_PREFIX, CONVERSATION_PREFIX)):
        return exc
    if failure.kind is FailureKind.NOT_FOUND:
        cls: type[AgentError] = (
            AgentNotFoundError
            if (failure.source or "").startswith(AGENT_PREFIX)
            else ConversationError
        )
        return cls(failure.message)
    if failure.kind is FailureKind.BAD_REQUEST:
        return AgentError(failure.message)
    return exc


def _call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except AskError as exc:
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from exc


async def _call_async(coro: Awaitable[T]) -> T:
    try:
        return await coro
    except AskError as exc:
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from exc
