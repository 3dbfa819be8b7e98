"""The Agent: a virtual actor per agent name, its history in the stream ``agent:<name>``.

Answering a :class:`~actors.agents.Respond`, as pseudocode::

    (one answer at a time: later requests wait in a queue)
    history += the request's context turns + the message (as user turns)
    if the window is ``summary`` and too many turns are unsummarised:
        ask the model to fold the older turns into the summary; journal Summarised
    messages = system prompt + window(history)
    completion = backend.chat(spec, messages)        (an ``invoke_agent`` span around it)
    journal TurnAdded for each new turn and the answer (one append), then answer

Nothing is kept that was not journaled: a failed call leaves the history as it was.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, assert_never

import msgspec
from opentelemetry import context as otel_context

import otel
from actors import Deferred, Failure, FailureKind
from actors.agents._backend import AgentBackend
from actors.agents._errors import AgentError
from actors.agents._messages import (
    AGENT_PREFIX,
    AgentDefined,
    AgentReply,
    AgentState,
    DefineAgent,
    DescribeAgent,
    Respond,
    Summarised,
    TurnAdded,
)
from actors.agents._roles import (
    AgentSpec,
    Turn,
    estimate_tokens,
    needs_summary,
    summary_prompt,
    system_prompt,
    window_messages,
)
from actors.llm import ChatMessage, Completion
from actors.lowlevel import VirtualActor
from actors.store import Journal, JournalEvent

__all__ = ["Agent", "AgentMemory", "load_agent", "prompt_budget"]

AgentRequest = Respond | DefineAgent | DescribeAgent


@dataclass(slots=True)
class AgentMemory:
    """An agent's state as its stream tells it (``spec`` is ``None``: not defined)."""

    spec: AgentSpec | None = None
    turns: list[Turn] = field(default_factory=list)
    summary: str = ""
    summarised: int = 0
    last_seq: int = 0


_decode_defined = msgspec.json.Decoder(AgentDefined)
_decode_turn = msgspec.json.Decoder(TurnAdded)
_decode_summary = msgspec.json.Decoder(Summarised)


async def load_agent(journal: Journal, name: str) -> AgentMemory:
    """Fold the stream ``agent:<name>`` into an :class:`AgentMemory`."""
    memory = AgentMemory()
    for entry in await journal.read_async(AGENT_PREFIX + name):
        memory.last_seq = entry.seq
        match entry.event_type:
            case "AgentDefined":
                memory.spec = _decode_defined.decode(entry.data).spec
            case "TurnAdded":
                memory.turns.append(_decode_turn.decode(entry.data).turn)
            case "Summarised":
                event = _decode_summary.decode(entry.data)
                memory.summary, memory.summarised = event.summary, event.upto
            case _:
                pass  # an event of a later version: skipped
    return memory


class _Answer(msgspec.Struct, frozen=True):
    new_turns: tuple[Turn, ...]
    summary: Summarised | None
    reply: AgentReply


class Agent(VirtualActor[AgentMemory]):
    """One agent, activated from its stream on first message (see the module docstring).

    Args:
        key: The agent's name.
        idle_s: Seconds idle before it passivates.
        on_passivate: Called when it passivates.
        backend: How its model calls are made.
    """

    def __init__(
        self,
        key: str,
        idle_s: float | None = 300.0,
        on_passivate: Any = None,
        *,
        backend: AgentBackend,
    ) -> None:
        super().__init__(key, idle_s, on_passivate)
        self.backend = backend
        self.journal = Journal(backend.store, timeout=backend.timeout)
        self._queue: collections.deque[tuple[Respond, Deferred[Any]]] = collections.deque()
        self._answering = False

    async def activate(self) -> AgentMemory:
        """Read the agent's stream."""
        return await load_agent(self.journal, self.key)

    def handle(self, message: AgentRequest) -> object:
        """Define, describe, or queue an answer."""
        memory = self.state
        assert memory is not None
        match message:
            case DefineAgent():
                return self._define(message, memory)
            case DescribeAgent():
                if memory.spec is None:
                    return self._unknown()
                return AgentState(
                    spec=memory.spec,
                    turns=tuple(memory.turns),
                    summary=memory.summary,
                    summarised=memory.summarised,
                )
            case Respond():
                if memory.spec is None:
                    return self._unknown()
                self._queue.append((message, self.reply_slot()))
                self._next()
                return None
            case _:
                assert_never(message)

    def _unknown(self) -> Failure:
        return Failure(
            kind=FailureKind.NOT_FOUND,
            message=f"no agent named {self.key!r} is defined",
            source=self.name,
        )

    def _define(self, message: DefineAgent, memory: AgentMemory) -> object:
        try:
            message.spec.check()
        except AgentError as exc:
            return Failure(kind=FailureKind.BAD_REQUEST, message=str(exc), source=self.name)
        if message.spec.name != self.key:
            msg = f"DefineAgent for {message.spec.name!r} sent to agent {self.key!r}"
            return Failure(kind=FailureKind.BAD_REQUEST, message=msg, source=self.name)
        if memory.spec is not None and not message.replace:
            if memory.spec == message.spec:
                return AgentDefined(spec=memory.spec)
            msg = f"an agent named {self.key!r} exists (pass replace=True to redefine it)"
            return Failure(kind=FailureKind.BAD_REQUEST, message=msg, source=self.name)
        reply = self.reply_slot()
        event = AgentDefined(spec=message.spec)
        self.busy()

        def done(outcome: object) -> None:
            self.idle()
            if isinstance(outcome, Failure):
                reply.send(outcome)
                return
            memory.spec = message.spec
            reply.send(event)

        self.pipe_to_self(
            self.journal.append_async(AGENT_PREFIX + self.key, "AgentDefined", event),
            done,
            name=f"define {self.key}",
        )
        return None

    def _next(self) -> None:
        if self._answering or not self._queue:
            return
        request, reply = self._queue.popleft()
        memory = self.state
        assert memory is not None
        assert memory.spec is not None
        self._answering = True
        self.busy()
        snapshot = AgentMemory(
            spec=memory.spec,
            turns=list(memory.turns),
            summary=memory.summary,
            summarised=memory.summarised,
        )

        def done(outcome: _Answer | Failure) -> None:
            self._answering = False
            self.idle()
            if isinstance(outcome, Failure):
                reply.send(outcome)
            else:
                memory.turns.extend(outcome.new_turns)
                if outcome.summary is not None:
                    memory.summary = outcome.summary.summary
                    memory.summarised = outcome.summary.upto
                reply.send(outcome.reply)
            self._next()

        self.pipe_to_self(self._answer(request, snapshot), done, name=f"answer {self.key}")

    async def _answer(self, request: Respond, memory: AgentMemory) -> _Answer:
        spec = memory.spec
        assert spec is not None
        parent = otel.extract(request.trace)
        token = otel_context.attach(parent) if parent is not None else None
        try:
            with otel.invoke_agent_span(
                spec.name,
                agent_id=AGENT_PREFIX + spec.name,
                description=spec.description or spec.role.name,
                model=spec.model_label,
                conversation_id=request.conversation or None,
            ) as span:
                answer = await self._think(request, memory, spec)
                if span.is_recording():
                    span.set_attribute(otel.GEN_AI_RESPONSE_MODEL, answer.reply.model)
                    span.set_attribute(otel.GEN_AI_USAGE_INPUT_TOKENS, answer.reply.input_tokens)
                    span.set_attribute(otel.GEN_AI_USAGE_OUTPUT_TOKENS, answer.reply.output_tokens)
                return answer
        finally:
            if token is not None:
                otel_context.detach(token)

    async def _think(self, request: Respond, memory: AgentMemory, spec: AgentSpec) -> _Answer:
        incoming = [*request.context]
        incoming.append(
            Turn(
                role="user",
                content=request.message,
                sender=request.sender,
                conversation=request.conversation,
            )
        )
        turns = memory.turns + incoming
        summary: Summarised | None = None
        events: list[JournalEvent] = []
        if needs_summary(turns, spec.window, memory.summarised):
            upto = len(turns) - spec.window.keep
            folded = await self._summarise(
                spec, memory.summary, turns[memory.summarised : upto], request.run_id
            )
            summary = Summarised(summary=folded, upto=upto)
            memory.summary, memory.summarised = summary.summary, upto
        messages = window_messages(
            system_prompt(spec),
            turns,
            spec.window,
            agent=spec.name,
            summary=memory.summary,
            summarised=memory.summarised,
        )
        messages = _fit_context(messages, self.backend.context_tokens(spec), spec.max_tokens)
        completion = await self.backend.chat(spec, messages, run_id=request.run_id)
        answer = Turn(
            role="assistant",
            content=completion.content,
            sender=spec.name,
            conversation=request.conversation,
        )
        new_turns = (*incoming, answer)
        events = [_event("TurnAdded", TurnAdded(turn=t)) for t in new_turns]
        if summary is not None:
            events.append(_event("Summarised", summary))
        await self._journal(events)
        return _Answer(new_turns, summary, _reply(spec, request, completion, len(turns) + 1))

    async def _summarise(
        self, spec: AgentSpec, summary: str, turns: list[Turn], run_id: str
    ) -> str:
        """Fold ``turns`` into ``summary``: one model call per part that fits the prompt budget."""
        context = self.backend.context_tokens(spec)
        budget = None if context is None else prompt_budget(context, spec.max_tokens)
        start = 0
        while start < len(turns):
            part = _fold_part(summary, turns, start, budget)
            folded = await self.backend.chat(
                spec, [ChatMessage.user(summary_prompt(summary, part))], run_id=run_id
            )
            summary = folded.content.strip()
            start += len(part)
        return summary

    async def _journal(self, events: list[JournalEvent]) -> None:
        first, *more = events
        request = self.journal.append_message(
            AGENT_PREFIX + self.key, first.data, event_type=first.event_type
        )
        request = msgspec.structs.replace(request, more=tuple(more))
        await self.backend.store.ask_async(request, timeout=self.backend.timeout)


_CONTEXT_SHARE = 0.8
"""The share of a model's context window the prompt may fill (estimates are rough)."""
_ANSWER_RESERVE = 512
"""Tokens kept for the answer when the agent sets no ``max_tokens``."""


def prompt_budget(context: int, max_tokens: int | None) -> int:
    """The tokens a prompt may take in a ``context``-token window, the answer's kept aside."""
    return int(context * _CONTEXT_SHARE) - (max_tokens or _ANSWER_RESERVE)


def _fold_part(summary: str, turns: list[Turn], start: int, budget: int | None) -> list[Turn]:
    """The turns from ``start`` that one summary request can take within ``budget`` tokens.

    At least one: a turn too long alone goes with its beginning only.
    """
    if budget is None:
        return turns[start:]
    end = start + 1
    while (
        end < len(turns)
        and estimate_tokens(summary_prompt(summary, turns[start : end + 1])) <= budget
    ):
        end += 1
    part = turns[start:end]
    over = estimate_tokens(summary_prompt(summary, part)) - budget
    if end == start + 1 and over > 0:
        turn = part[0]
        part = [
            msgspec.structs.replace(
                turn, content=turn.content[: max(len(turn.content) - 4 * over, 0)]
            )
        ]
    return part


def _fit_context(
    messages: list[ChatMessage], context: int | None, max_tokens: int | None
) -> list[ChatMessage]:
    """Drop the oldest non-system messages until the prompt fits the model's context.

    Whatever the window policy, a known context window is never overrun by history: the
    system messages and the newest message always stay.
    """
    if context is None:
        return messages
    budget = prompt_budget(context, max_tokens)
    head = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    used = sum(estimate_tokens(m.content) for m in head)
    kept: list[ChatMessage] = []
    for message in reversed(rest):
        cost = estimate_tokens(message.content)
        if kept and used + cost > budget:
            break
        kept.append(message)
        used += cost
    return head + kept[::-1]


def _event(event_type: str, data: object) -> JournalEvent:
    return JournalEvent(event_type=event_type, data=msgspec.json.encode(data))


def _reply(spec: AgentSpec, request: Respond, completion: Completion, turns: int) -> AgentReply:
    model = f"{completion.host}/{completion.model}" if completion.host else completion.model
    return AgentReply(
        agent=spec.name,
        content=completion.content,
        model=model,
        input_tokens=completion.usage.input_tokens,
        output_tokens=completion.usage.output_tokens,
        cost_usd=completion.cost_usd,
        conversation=request.conversation,
        turns=turns,
    )
