"""The Conversation: a virtual actor per conversation id, its messages in ``conversation:<id>``.

A conversation has participants (agent names), a topic and an optional moderator. Each
agent keeps its own history; what it is sent carries the conversation's context: the
messages it has not seen since it last spoke (as turns from their senders).

* :class:`~actors.agents.Say`: one agent tells another something; the recipient
  answers in context; both messages are journaled.
* :class:`~actors.agents.RunTeam`: a team pattern, until its :class:`Termination`::

      round = 0
      loop:
          speakers = round_robin: [moderator] + participants
                     selector:    [the one the selector model (or function) picks]
          for each speaker:
              answer = speaker.respond(last message, context = what it has not seen)
              journal Said
              keyword in answer / max_messages / budget / predicate → end
          round += 1; round == max_rounds → end
      journal ConversationEnded(reason)

  ``max_rounds`` counts the rounds of this request, so a conversation that ended (or
  was interrupted when its process died) is resumed by sending ``RunTeam`` again.

One request changes a conversation at a time; others wait in a queue.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, assert_never

import msgspec
from opentelemetry import context as otel_context

import otel
from actors import Deferred, Failure, FailureKind
from actors.agents._backend import AgentBackend
from actors.agents._messages import (
    CONVERSATION_PREFIX,
    AgentReply,
    AgentState,
    ConversationEnded,
    ConversationStarted,
    ConversationState,
    DescribeAgent,
    DescribeConversation,
    Respond,
    RunTeam,
    Said,
    Say,
    StartConversation,
)
from actors.agents._roles import Turn
from actors.llm import ChatMessage
from actors.lowlevel import Activations, VirtualActor
from actors.store import Journal, JournalEvent

__all__ = ["Conversation", "ConversationMemory", "load_conversation"]

ConversationRequest = StartConversation | Say | RunTeam | DescribeConversation

_CONTEXT = 20
"""Unseen messages at most that go with a message to an agent."""


@dataclass(slots=True)
class ConversationMemory:
    """A conversation as its stream tells it (``started`` is ``None``: never started)."""

    started: ConversationStarted | None = None
    messages: list[Said] = field(default_factory=list)
    ended: str = ""

    def state(self, key: str) -> ConversationState:
        """The conversation as a message."""
        started = self.started
        return ConversationState(
            id=key,
            participants=started.participants if started else (),
            topic=started.topic if started else "",
            moderator=started.moderator if started else "",
            messages=tuple(self.messages),
            ended=self.ended,
            rounds=max((m.round for m in self.messages), default=0),
        )


_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    "ConversationStarted": msgspec.json.Decoder(ConversationStarted),
    "Said": msgspec.json.Decoder(Said),
    "ConversationEnded": msgspec.json.Decoder(ConversationEnded),
}


async def load_conversation(journal: Journal, key: str) -> ConversationMemory:
    """Fold the stream ``conversation:<key>`` into a :class:`ConversationMemory`."""
    memory = ConversationMemory()
    for entry in await journal.read_async(CONVERSATION_PREFIX + key):
        decoder = _decoders.get(entry.event_type)
        if decoder is None:
            continue
        event = decoder.decode(entry.data)
        match event:
            case ConversationStarted():
                memory.started = event
            case Said():
                memory.messages.append(event)
                memory.ended = ""  # resumed after an end
            case ConversationEnded():
                memory.ended = event.reason
    return memory


class Conversation(VirtualActor[ConversationMemory]):
    """One conversation, activated from its stream on first message.

    Args:
        key: The conversation's id.
        idle_s: Seconds idle before it passivates.
        on_passivate: Called when it passivates.
        backend: The agents' services (its stream's Store, the selector's model).
        agents: The agents' :class:`~actors.lowlevel.Activations`.
    """

    def __init__(
        self,
        key: str,
        idle_s: float | None = 300.0,
        on_passivate: Any = None,
        *,
        backend: AgentBackend,
        agents: Activations,
    ) -> None:
        super().__init__(key, idle_s, on_passivate)
        self.backend = backend
        self.agents = agents
        self.journal = Journal(backend.store, timeout=backend.timeout)
        self._queue: collections.deque[tuple[ConversationRequest, Deferred[Any]]] = (
            collections.deque()
        )
        self._working = False

    async def activate(self) -> ConversationMemory:
        """Read the conversation's stream."""
        return await load_conversation(self.journal, self.key)

    def handle(self, message: ConversationRequest) -> object:
        """Describe at once; queue everything that changes the conversation."""
        memory = self.state
        assert memory is not None
        if isinstance(message, DescribeConversation):
            if memory.started is None:
                return self._unknown()
            return memory.state(self.key)
        self._queue.append((message, self.reply_slot()))
        self._next()
        return None

    def _unknown(self) -> Failure:
        msg = f"no conversation {self.key!r} was started"
        return Failure(kind=FailureKind.NOT_FOUND, message=msg, source=self.name)

    def _next(self) -> None:
        if self._working or not self._queue:
            return
        message, reply = self._queue.popleft()
        memory = self.state
        assert memory is not None
        work: Coroutine[Any, Any, Any]
        match message:
            case StartConversation():
                if memory.started is not None:
                    msg = f"conversation {self.key!r} exists already (resume it instead)"
                    reply.send(Failure(kind=FailureKind.BAD_REQUEST, message=msg))
                    self._next()
                    return
                work = self._start(message, memory)
            case Say() | RunTeam():
                if memory.started is None:
                    reply.send(self._unknown())
                    self._next()
                    return
                work = (
                    self._say(message, memory)
                    if isinstance(message, Say)
                    else self._team(message, memory)
                )
            case DescribeConversation():
                reply.send(memory.state(self.key))
                self._next()
                return
            case _:
                assert_never(message)
        self._working = True
        self.busy()

        def done(outcome: object) -> None:
            self._working = False
            self.idle()
            reply.send(outcome)
            self._next()

        self.pipe_to_self(self._traced(message, work), done, name=f"conversation {self.key}")

    async def _traced(self, message: ConversationRequest, work: Coroutine[Any, Any, Any]) -> Any:
        parent = otel.extract(message.trace)
        token = otel_context.attach(parent) if parent is not None else None
        try:
            return await work
        finally:
            if token is not None:
                otel_context.detach(token)

    async def _append(self, event: msgspec.Struct, *more: msgspec.Struct) -> None:
        """Append ``event`` (and ``more``) in one commit."""
        request = self.journal.append_message(
            CONVERSATION_PREFIX + self.key, event, event_type=type(event).__name__
        )
        if more:
            extra = tuple(
                JournalEvent(event_type=type(e).__name__, data=msgspec.json.encode(e)) for e in more
            )
            request = msgspec.structs.replace(request, more=extra)
        await self.backend.store.ask_async(request, timeout=self.backend.timeout)

    async def _start(
        self, message: StartConversation, memory: ConversationMemory
    ) -> ConversationState:
        if not message.participants:
            msg = f"conversation {self.key!r}: participants: at least one agent"
            raise ValueError(msg)
        started = ConversationStarted(
            id=self.key,
            participants=message.participants,
            topic=message.topic,
            moderator=message.moderator,
        )
        memory.started = started
        if message.initial:
            said = Said(sender=message.sender, content=message.initial)
            await self._append(started, said)
            memory.messages.append(said)
        else:
            await self._append(started)
        return memory.state(self.key)

    def _unseen(self, memory: ConversationMemory, agent: str, upto: int) -> tuple[Turn, ...]:
        """Messages before ``upto`` that ``agent`` has not seen (since it last spoke)."""
        seen = 0
        for index in range(upto - 1, -1, -1):
            if memory.messages[index].sender == agent:
                seen = index + 1
                break
        lo = max(seen, upto - _CONTEXT)
        return tuple(
            Turn(role="user", content=m.content, sender=m.sender, conversation=self.key)
            for m in memory.messages[lo:upto]
        )

    async def _ask(
        self,
        agent: str,
        *,
        text: str,
        sender: str,
        run_id: str,
        context: tuple[Turn, ...],
    ) -> AgentReply:
        reply: AgentReply = await self.agents.ask_async(
            agent,
            Respond(
                agent=agent,
                message=text,
                sender=sender,
                conversation=self.key,
                context=context,
                run_id=run_id,
            ),
            timeout=self.backend.timeout,
        )
        return reply

    async def _say(self, message: Say, memory: ConversationMemory) -> Said:
        told = Said(sender=message.sender, recipient=message.recipient, content=message.content)
        context = self._unseen(memory, message.recipient, len(memory.messages))
        answer = await self._ask(
            message.recipient,
            text=message.content,
            sender=message.sender,
            run_id=message.run_id,
            context=context,
        )
        said = _said(answer, recipient=message.sender, round_=0)
        await self._append(told, said)
        memory.messages += [told, said]
        return said

    async def _team(self, message: RunTeam, memory: ConversationMemory) -> ConversationState:
        started = memory.started
        assert started is not None
        term = message.termination
        speakers = [p for p in started.participants if p != started.moderator]
        base_round = max((m.round for m in memory.messages), default=0)
        spent_usd = sum(m.cost_usd or 0.0 for m in memory.messages)
        spent_tokens = sum(m.input_tokens + m.output_tokens for m in memory.messages)
        count = 0
        reason = ""
        rounds = 0
        while not reason:
            if rounds >= term.max_rounds:
                reason = "max_rounds"
                break
            round_no = base_round + rounds + 1
            if message.pattern == "round_robin":
                order = ([started.moderator] if started.moderator else []) + speakers
            else:
                order = [await self._pick(message, memory, speakers)]
            for speaker in order:
                last = memory.messages[-1] if memory.messages else None
                text = last.content if last else f"Let us discuss: {started.topic}"
                sender = last.sender if last else "user"
                upto = len(memory.messages) - 1 if last else 0
                context = self._unseen(memory, speaker, max(upto, 0))
                if last is not None and last.sender == speaker:
                    text, sender, context = _continue(started.topic), "user", ()
                answer = await self._ask(
                    speaker, text=text, sender=sender, run_id=message.run_id, context=context
                )
                said = _said(answer, recipient="", round_=round_no)
                await self._append(said)
                memory.messages.append(said)
                count += 1
                spent_usd += said.cost_usd or 0.0
                spent_tokens += said.input_tokens + said.output_tokens
                reason = _stop(term, said, count, spent_usd, spent_tokens, memory.state(self.key))
                if reason:
                    break
            rounds += 1
        ended = ConversationEnded(reason=reason)
        await self._append(ended)
        memory.ended = reason
        return memory.state(self.key)

    async def _pick(self, message: RunTeam, memory: ConversationMemory, speakers: list[str]) -> str:
        last = memory.messages[-1].sender if memory.messages else ""
        candidates = [
            s for s in speakers if message.allow_repeated_speaker or s != last
        ] or speakers
        func: Callable[[ConversationState], str] | None = message.selector_func
        if func is not None:
            chosen = func(memory.state(self.key))
            if chosen not in candidates:
                msg = f"selector_func chose {chosen!r}, not one of {candidates}"
                raise ValueError(msg)
            return chosen
        started = memory.started
        assert started is not None
        judge = message.selector_model or started.moderator or speakers[0]
        state: AgentState = await self.agents.ask_async(
            judge, DescribeAgent(agent=judge), timeout=self.backend.timeout
        )
        roles = []
        for name in candidates:
            described: AgentState = await self.agents.ask_async(
                name, DescribeAgent(agent=name), timeout=self.backend.timeout
            )
            roles.append(f"- {name}: {described.spec.role.name}. {described.spec.description}")
        history = "\n".join(f"{m.sender}: {m.content}" for m in memory.messages[-_CONTEXT:])
        prompt = (
            f"Topic: {started.topic}\nParticipants:\n" + "\n".join(roles) + f"\n\nConversation:\n"
            f"{history}\n\nWho should speak next? Reply with only one name from: "
            f"{', '.join(candidates)}."
        )
        completion = await self.backend.chat(
            state.spec, [ChatMessage.user(prompt)], run_id=message.run_id, model=state.spec.model
        )
        return _named(completion.content, candidates, last, speakers)


def _continue(topic: str) -> str:
    return f"Continue the discussion on: {topic}" if topic else "Continue."


def _named(text: str, candidates: list[str], last: str, speakers: list[str]) -> str:
    """The first candidate named in ``text``; else the next speaker after ``last``."""
    lowered = text.lower()
    found = [(lowered.find(c.lower()), c) for c in candidates if c.lower() in lowered]
    if found:
        return min(found)[1]
    if last in speakers:
        nxt = speakers[(speakers.index(last) + 1) % len(speakers)]
        if nxt in candidates:
            return nxt
    return candidates[0]


def _said(answer: AgentReply, *, recipient: str, round_: int) -> Said:
    return Said(
        sender=answer.agent,
        recipient=recipient,
        content=answer.content,
        round=round_,
        input_tokens=answer.input_tokens,
        output_tokens=answer.output_tokens,
        cost_usd=answer.cost_usd,
    )


def _stop(  # noqa: PLR0917 - one check per termination condition
    term: Any,
    said: Said,
    count: int,
    spent_usd: float,
    spent_tokens: int,
    state: ConversationState,
) -> str:
    """Why the conversation stops after ``said`` (``""``: it goes on)."""
    if term.keyword and term.keyword.lower() in said.content.lower():
        return "keyword"
    if term.max_messages is not None and count >= term.max_messages:
        return "max_messages"
    if term.budget_usd is not None and spent_usd >= term.budget_usd:
        return "budget"
    if term.budget_tokens is not None and spent_tokens >= term.budget_tokens:
        return "budget"
    if term.predicate is not None and term.predicate(state):
        return "predicate"
    return ""
