"""The tool loop: model turn → tool calls → results → model turn, until the model answers.

:func:`run_tool_loop` drives one loop through four ports (:class:`LoopPorts`): the model
(a ``ChatRequest`` to a ModelHost), the ToolRunner (``ListTools``, ``ExecuteTools``),
and the loop's journal. It is what the ``tools`` step runs; it knows nothing of runs.

The loop, as pseudocode::

    history = the journal's records for this step since its last LoopFinished/LoopReset
    if history ends with LoopFinished: return its result            (a crash after the end)
    rebuild the conversation from history
    if the last turn has calls without outcomes:
        undecided approvals → halt again (AwaitingApproval)
        run the missing calls (decided approvals applied to their exact payloads)
        journal OutcomesRecorded (and ApprovalsPending for calls newly waiting)
    loop:
        turns == max_turns → fail (ToolLoopError "max_turns")
        ask the model (windowed conversation, the allowed tools' specs)
        tokens > budget_tokens or cost > budget_usd → fail ("budget")
        no tool calls → journal LoopFinished, return the answer
        journal TurnRecorded (the model's message, before any tool runs)
        run the calls concurrently (ExecuteTools); journal OutcomesRecorded
        calls waiting for approval → journal ApprovalsPending, halt
        a tool's correctable errors in a row > its max_retries → fail ("retries")

**Resuming.** Tool calls whose outcomes were journaled are never run again; a call the
model made whose outcome is not journaled (the process died while it ran) runs again on
resume, exactly as the model asked for it (at-least-once, as for steps). A failed loop
journals LoopReset, so a retried attempt starts a fresh conversation.

**Errors the model can correct.** Every outcome goes back to the model as the tool's
result: the value as JSON text, or ``{"error": kind, "message": ..., "fields": [...]}``.
Invalid arguments (naming the fields), unknown tools (listing the allowed ones),
timeouts, rate limits and :class:`~actors.tools.ToolRetry` spend the tool's retry
budget; a success resets it.

**Context windowing** (``context_chars``, about four characters a token): the system
prompt, the capability docs and the user's prompt are always kept, and so are the last
``keep_turns`` turns whole. While the conversation is too long: first the results of the
oldest tool calls are replaced by a one-line stub naming the tool and the size dropped,
oldest first; then the oldest turns are dropped whole (a model message with its results,
so no result is ever left without the call it answers), and a note saying how many
were left out is added to the prompt.

**Models without native tool calling** (``native=False``, or by default when the server
refuses tools with a bad request that names them, as Ollama does for such models; the
switch is journaled, so a resumed loop stays on it): the tools' docs and schemas
go into the system prompt, with the instruction to reply with only a JSON object
``{"tool_calls": [{"name": ..., "arguments": {...}}]}`` to call tools (text, or a code
fence around it, is tolerated); anything else is the answer. Calls get ids
``call_<turn>_<n>``, are validated like native ones, and their results go back as a
user message listing each call's id, tool and result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from actors import AskError, FailureKind
from actors.llm import ChatMessage, ChatRequest, Completion, ToolCall, Usage
from actors.tools._errors import ToolLoopError
from actors.tools._messages import (
    CORRECTABLE,
    Approval,
    ApprovalDecided,
    ApprovalsPending,
    ExecuteTools,
    FallbackChosen,
    LoopFinished,
    LoopRecord,
    LoopReset,
    OutcomesRecorded,
    PendingCall,
    ToolList,
    ToolLoopResult,
    ToolOutcome,
    ToolResults,
    ToolStatus,
    TurnRecorded,
    payload_hash,
)

__all__ = [
    "AwaitingApproval",
    "LoopPorts",
    "LoopSettings",
    "parse_json_calls",
    "run_tool_loop",
    "window",
]


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """One loop's settings (what a ``tools`` step holds, rendered).

    Attributes:
        model: The model.
        prompt: The user's prompt.
        system: A system prompt (the capability docs are added after it).
        allowed: The tools offered (names, globs, ``tag:x``); ``None``: all.
        identity: Who is calling (policies match on it).
        run_id: The run.
        reactor: The reactor.
        step: The step.
        max_turns: Model turns at most.
        budget_tokens: Input plus output tokens over all turns at most.
        budget_usd: Cost over all turns at most (turns of models without a configured
            price count nothing).
        tool_choice: ``auto``, ``required``, ``none`` or a tool's name.
        native: ``True``: the provider's tool calling; ``False``: the JSON-in-text
            fallback; ``None``: native, falling back when the server refuses tools.
        docs: Put the capability docs in the system prompt.
        context_chars: The conversation's size limit in characters (``None``: none).
        keep_turns: Turns always kept whole by windowing.
        temperature: Sampling temperature.
        max_tokens: Output token limit per turn.
        options: Vendor-specific request fields.
    """

    model: str
    prompt: str
    system: str | None = None
    allowed: tuple[str, ...] | None = None
    identity: str = ""
    run_id: str = ""
    reactor: str = ""
    step: str = ""
    max_turns: int = 8
    budget_tokens: int | None = None
    budget_usd: float | None = None
    tool_choice: str | None = None
    native: bool | None = None
    docs: bool = True
    context_chars: int | None = None
    keep_turns: int = 2
    temperature: float | None = None
    max_tokens: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AwaitingApproval:
    """The loop stopped: these calls wait for a human (the step halts the run)."""

    calls: tuple[PendingCall, ...]

    @property
    def reason(self) -> str:
        """What the halt says: the calls, by id and tool."""
        listed = ", ".join(f"{c.call_id} ({c.name})" for c in self.calls)
        return f"tool call(s) awaiting approval: {listed}"


class LoopPorts(Protocol):
    """What the loop talks to."""

    async def chat(self, request: ChatRequest) -> Completion:
        """Ask the model."""
        ...

    async def tools(self, allowed: tuple[str, ...] | None) -> ToolList:
        """The tools offered."""
        ...

    async def execute(self, request: ExecuteTools) -> ToolResults:
        """Run one turn's calls."""
        ...

    async def history(self) -> list[LoopRecord]:
        """This step's journal records, oldest first."""
        ...

    async def record(self, record: LoopRecord) -> None:
        """Journal one record (durable when it returns)."""
        ...


@dataclass(slots=True)
class _Turn:
    assistant: ChatMessage
    outcomes: dict[str, ToolOutcome] = field(default_factory=dict)
    pending: dict[str, PendingCall] = field(default_factory=dict)


@dataclass(slots=True)
class _State:
    turns: list[_Turn] = field(default_factory=list)
    decisions: dict[str, Approval] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    cost_usd: float = 0.0
    native: bool = True

    def add_usage(self, usage: Usage) -> None:
        self.usage = Usage(
            input_tokens=self.usage.input_tokens + usage.input_tokens,
            output_tokens=self.usage.output_tokens + usage.output_tokens,
        )


def _segment(
    records: Sequence[LoopRecord], step: str
) -> tuple[list[LoopRecord], ToolLoopResult | None]:
    """The records since the last end of a loop, or the result if the last loop finished."""
    mine = [r for r in records if r.step == step]
    last_end = -1
    for index, record in enumerate(mine):
        if isinstance(record, LoopFinished | LoopReset):
            last_end = index
    if last_end >= 0 and last_end == len(mine) - 1:
        final = mine[last_end]
        if isinstance(final, LoopFinished):
            return [], final.result
    return mine[last_end + 1 :], None


def _rebuild(records: Sequence[LoopRecord]) -> _State:
    state = _State()
    for record in records:
        match record:
            case TurnRecorded():
                state.turns.append(_Turn(assistant=record.assistant))
                state.add_usage(record.usage)
                state.model = record.model or state.model
            case ApprovalsPending():
                state.turns[-1].pending.update({c.call_id: c for c in record.calls})
            case ApprovalDecided():
                state.decisions[record.approval.call_id] = record.approval
            case OutcomesRecorded():
                state.turns[-1].outcomes.update({o.call_id: o for o in record.outcomes})
            case FallbackChosen():
                state.native = False
            case LoopFinished() | LoopReset():
                pass
    return state


async def run_tool_loop(
    settings: LoopSettings, ports: LoopPorts
) -> ToolLoopResult | AwaitingApproval:
    """Run (or resume) one tool loop; see the module docstring.

    Raises:
        ToolLoopError: It ran out of turns, tokens, or a tool's retry budget.
    """
    records, finished = _segment(await ports.history(), settings.step)
    if finished is not None:
        return finished
    state = _rebuild(records)
    state.native = state.native and settings.native is not False
    catalogue = await ports.tools(settings.allowed)
    try:
        return await _drive(settings, ports, state, catalogue)
    except ToolLoopError as exc:
        await ports.record(LoopReset(step=settings.step, reason=str(exc)))
        raise


async def _drive(
    settings: LoopSettings, ports: LoopPorts, state: _State, catalogue: ToolList
) -> ToolLoopResult | AwaitingApproval:
    if state.turns:
        waiting = await _complete_last_turn(settings, ports, state)
        if waiting is not None:
            return waiting
        _check_retries(state, catalogue)
    while True:
        if len(state.turns) >= settings.max_turns:
            msg = f"the model made tool calls in all {settings.max_turns} turns without answering"
            raise ToolLoopError(msg, reason="max_turns")
        head = _head(settings, catalogue, state.native)
        messages = window(
            [*head, *_conversation(state, state.native)],
            head=len(head),
            limit_chars=settings.context_chars,
            keep_turns=settings.keep_turns,
        )
        try:
            completion = await ports.chat(_request(settings, catalogue, messages, state.native))
        except AskError as exc:
            if not (state.native and settings.native is None and _refuses_tools(exc)):
                raise
            await ports.record(FallbackChosen(step=settings.step, reason=exc.failure.message))
            state.native = False
            continue
        state.add_usage(completion.usage)
        state.model = completion.model or state.model
        state.cost_usd += completion.cost_usd or 0.0
        if settings.budget_usd is not None and state.cost_usd > settings.budget_usd:
            msg = (
                f"the loop cost {state.cost_usd:.4f} USD, over its budget of {settings.budget_usd}"
            )
            raise ToolLoopError(msg, reason="budget")
        if settings.budget_tokens is not None and state.usage.total_tokens > settings.budget_tokens:
            used, budget = state.usage.total_tokens, settings.budget_tokens
            msg = f"the loop used {used} tokens, over its budget of {budget}"
            raise ToolLoopError(msg, reason="budget")
        turn = len(state.turns) + 1
        calls = (
            completion.tool_calls if state.native else parse_json_calls(completion.content, turn)
        )
        if not calls:
            result = _result(state, completion.content)
            await ports.record(LoopFinished(step=settings.step, result=result))
            return result
        # The reasoning blocks go back with the calls (Anthropic refuses a follow-up whose
        # tool-use turn lost them when thinking is on).
        assistant = ChatMessage.assistant(
            completion.content, tuple(calls), completion.thinking_blocks
        )
        await ports.record(
            TurnRecorded(
                step=settings.step,
                turn=turn,
                assistant=assistant,
                usage=completion.usage,
                model=completion.model,
            )
        )
        state.turns.append(_Turn(assistant=assistant))
        waiting = await _run_calls(settings, ports, state, tuple(calls))
        if waiting is not None:
            return waiting
        _check_retries(state, catalogue)


async def _complete_last_turn(
    settings: LoopSettings, ports: LoopPorts, state: _State
) -> AwaitingApproval | None:
    """Run the calls of the last journaled turn that have no outcome (resume)."""
    last = state.turns[-1]
    missing = [c for c in last.assistant.tool_calls if c.id not in last.outcomes]
    if not missing:
        return None
    undecided = [
        last.pending[c.id] for c in missing if c.id in last.pending and c.id not in state.decisions
    ]
    if undecided:
        return AwaitingApproval(calls=tuple(undecided))
    return await _run_calls(settings, ports, state, tuple(missing))


async def _run_calls(
    settings: LoopSettings, ports: LoopPorts, state: _State, calls: tuple[ToolCall, ...]
) -> AwaitingApproval | None:
    turn = state.turns[-1]
    approvals = {c.id: state.decisions[c.id] for c in calls if c.id in state.decisions}
    results = await ports.execute(
        ExecuteTools(
            calls=calls,
            allowed=settings.allowed,
            run_id=settings.run_id,
            reactor=settings.reactor,
            step=settings.step,
            identity=settings.identity,
            approvals=approvals,
        )
    )
    done = tuple(o for o in results.outcomes if o.status is not ToolStatus.PENDING_APPROVAL)
    waiting = tuple(
        PendingCall(
            call_id=o.call_id,
            name=o.name,
            arguments=o.arguments,
            payload_hash=payload_hash(o.name, o.arguments),
            reason=o.content,
        )
        for o in results.outcomes
        if o.status is ToolStatus.PENDING_APPROVAL
    )
    number = len(state.turns)
    if done:
        await ports.record(OutcomesRecorded(step=settings.step, turn=number, outcomes=done))
        turn.outcomes.update({o.call_id: o for o in done})
    if waiting:
        await ports.record(ApprovalsPending(step=settings.step, turn=number, calls=waiting))
        turn.pending.update({p.call_id: p for p in waiting})
        return AwaitingApproval(calls=waiting)
    return None


def _check_retries(state: _State, catalogue: ToolList) -> None:
    """Fail when a tool's correctable errors in a row exceed its retry budget."""
    streak: dict[str, int] = {}
    last: dict[str, ToolOutcome] = {}
    for turn in state.turns:
        for call in turn.assistant.tool_calls:
            outcome = turn.outcomes.get(call.id)
            if outcome is None:
                continue
            if outcome.status in CORRECTABLE:
                streak[outcome.name] = streak.get(outcome.name, 0) + 1
                last[outcome.name] = outcome
            elif outcome.ok:
                streak[outcome.name] = 0
    for name, count in streak.items():
        budget = catalogue.max_retries.get(name, 2)
        if count > budget:
            msg = (
                f"tool {name!r} failed {count} time(s) in a row (its retry budget is {budget}); "
                f"last error: {last[name].content}"
            )
            raise ToolLoopError(msg, reason="retries")


# ---- messages ---------------------------------------------------------------------------


_FALLBACK = (
    "To call tools, reply with only a JSON object and nothing else, in this form:\n"
    '{"tool_calls": [{"name": "<tool>", "arguments": {<arguments>}}]}\n'
    "Several calls may go in one reply. The results come back in the next message. "
    "When you have the answer, reply with plain text, without a tool_calls object."
)


def _refuses_tools(exc: AskError) -> bool:
    """Whether a failure is the server refusing tool calling (not another bad request)."""
    return exc.failure.kind is FailureKind.BAD_REQUEST and "tool" in exc.failure.message.lower()


def _head(settings: LoopSettings, catalogue: ToolList, native: bool) -> list[ChatMessage]:
    parts = [settings.system] if settings.system else []
    if settings.docs or not native:
        parts.append(catalogue.docs)
    if not native:
        schemas = {s.name: s.parameters for s in catalogue.specs}
        parts.extend(
            (f"Argument schemas (JSON Schema):\n{json.dumps(schemas, sort_keys=True)}", _FALLBACK)
        )
    head = [ChatMessage.system("\n\n".join(parts))] if parts else []
    return [*head, ChatMessage.user(settings.prompt)]


def _conversation(state: _State, native: bool) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for turn in state.turns:
        calls = turn.assistant.tool_calls
        if native:
            messages.append(turn.assistant)
            messages.extend(
                ChatMessage.tool(c, turn.outcomes[c.id].content)
                for c in calls
                if c.id in turn.outcomes
            )
        else:
            messages.append(ChatMessage.assistant(turn.assistant.content))
            lines = [
                f"[{c.id}] {c.name}: {turn.outcomes[c.id].content}"
                for c in calls
                if c.id in turn.outcomes
            ]
            messages.append(ChatMessage.user("Tool results:\n" + "\n".join(lines)))
    return messages


def _request(
    settings: LoopSettings, catalogue: ToolList, messages: list[ChatMessage], native: bool
) -> ChatRequest:
    return ChatRequest(
        model=settings.model,
        messages=tuple(messages),
        tools=catalogue.specs if native else (),
        tool_choice=settings.tool_choice if native else None,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        options=dict(settings.options),
    )


def _result(state: _State, content: str) -> ToolLoopResult:
    outcomes = tuple(
        turn.outcomes[c.id]
        for turn in state.turns
        for c in turn.assistant.tool_calls
        if c.id in turn.outcomes
    )
    return ToolLoopResult(
        content=content,
        model=state.model,
        turns=len(state.turns) + 1,
        calls=outcomes,
        usage=state.usage,
        data=_json_or_none(content),
    )


def _json_or_none(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


# ---- the JSON-in-text fallback ----------------------------------------------------------

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_json_calls(text: str, turn: int) -> list[ToolCall]:
    """The tool calls a reply asks for in the JSON fallback (none: the reply is an answer).

    Accepts ``{"tool_calls": [{"name", "arguments"}, ...]}`` or one ``{"name",
    "arguments"}`` object, alone or in a code fence or after some text.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] or [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1:
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except ValueError:
                start = candidate.find("{", start + 1)
                continue
            calls = _calls_of(value, turn)
            if calls:
                return calls
            break
    return []


def _calls_of(value: Any, turn: int) -> list[ToolCall]:
    if not isinstance(value, dict):
        return []
    items = value.get("tool_calls")
    if items is None and "name" in value:
        items = [value]
    if not isinstance(items, list):
        return []
    calls = []
    for index, item in enumerate(items, 1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        arguments = item.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                arguments = {"__unparsed__": arguments}
        calls.append(
            ToolCall(
                id=f"call_{turn}_{index}",
                name=item["name"],
                arguments=arguments if isinstance(arguments, dict) else {},
            )
        )
    return calls


# ---- windowing --------------------------------------------------------------------------


def _size(message: ChatMessage) -> int:
    calls = sum(len(c.name) + len(msgspec.json.encode(c.arguments)) for c in message.tool_calls)
    return len(message.content) + calls + 16


def window(
    messages: list[ChatMessage], *, head: int, limit_chars: int | None, keep_turns: int = 2
) -> list[ChatMessage]:
    """The conversation trimmed to ``limit_chars`` by the policy in the module docstring."""
    if limit_chars is None or sum(_size(m) for m in messages) <= limit_chars:
        return messages
    fixed, rest = messages[:head], messages[head:]
    groups: list[list[ChatMessage]] = []
    for message in rest:
        if message.role == "assistant" or not groups:
            groups.append([message])
        else:
            groups[-1].append(message)
    older = max(0, len(groups) - keep_turns)

    def total() -> int:
        return sum(_size(m) for m in fixed) + sum(_size(m) for g in groups for m in g)

    for group in groups[:older]:
        for index, message in enumerate(group):
            if total() <= limit_chars:
                break
            if message.role in ("tool", "user") and not message.content.startswith("[elided"):
                what = message.name or "tools"
                stub = f"[elided: result of {what}, {len(message.content)} characters]"
                group[index] = msgspec.structs.replace(message, content=stub)
    dropped = 0
    while total() > limit_chars and older > 0:
        groups.pop(0)
        older -= 1
        dropped += 1
    if dropped and fixed:
        prompt = fixed[-1]
        note = f"\n\n[{dropped} earlier tool turn(s) were left out to fit the context window]"
        fixed = [*fixed[:-1], msgspec.structs.replace(prompt, content=prompt.content + note)]
    return [*fixed, *(m for g in groups for m in g)]
