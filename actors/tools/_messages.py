"""The ToolRunner's protocol, what each tool call came to, and the tool loop's journal records.

Requests and replies are tagged :class:`~actors.Message` s (they cross actors and the
journal unchanged); the values nested in them are plain frozen structs.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Any, Literal

import msgspec

from actors import Message, Request
from actors.llm import ChatMessage, ToolCall, ToolSpec, Usage

__all__ = [
    "Approval",
    "ApprovalDecided",
    "ApprovalsPending",
    "ExecuteTools",
    "FallbackChosen",
    "ListTools",
    "LoopFinished",
    "LoopRecord",
    "LoopReset",
    "OutcomesRecorded",
    "PendingCall",
    "ToolList",
    "ToolLoopResult",
    "ToolOutcome",
    "ToolResults",
    "ToolStatus",
    "TurnRecorded",
    "payload_hash",
]


class _Value(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Values nested inside messages."""


def payload_hash(name: str, arguments: dict[str, Any]) -> str:
    """The SHA-256 of a call's exact payload (tool name and canonical JSON arguments).

    An approval names this hash: it applies to exactly these arguments and no others.
    """
    body = msgspec.json.encode({"name": name, "arguments": arguments}, order="sorted")
    return hashlib.sha256(body).hexdigest()


class ToolStatus(enum.StrEnum):
    """What a tool call came to."""

    OK = "ok"
    ERROR = "error"
    INVALID_ARGUMENTS = "invalid_arguments"
    UNKNOWN_TOOL = "unknown_tool"
    PERMISSION_DENIED = "permission_denied"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    RETRY = "retry"
    INVALID_OUTPUT = "invalid_output"
    PENDING_APPROVAL = "pending_approval"
    REJECTED = "rejected"


CORRECTABLE = frozenset(
    {
        ToolStatus.INVALID_ARGUMENTS,
        ToolStatus.UNKNOWN_TOOL,
        ToolStatus.RATE_LIMITED,
        ToolStatus.TIMEOUT,
        ToolStatus.RETRY,
    }
)
"""Statuses the model may correct, each spending the tool's retry budget."""


class ToolOutcome(_Value, frozen=True, kw_only=True):
    """One tool call's outcome.

    Attributes:
        call_id: The model's id for the call.
        name: The tool.
        status: What it came to.
        content: What the model is told (the result as JSON text, or the error).
        value: The result, as JSON data (``None`` unless ``ok``).
        fields: For ``invalid_arguments``: the fields at fault.
        decision: ``allowed``, ``denied``, ``approved``, ``edited``, ``rejected`` or
            ``pending``.
        decided_by: Who approved, edited or rejected it.
        arguments: The arguments it ran with (edited ones, when edited).
        duration_s: Wall time of the call itself.
    """

    call_id: str
    name: str
    status: ToolStatus
    content: str = ""
    value: Any = None
    fields: tuple[str, ...] = ()
    decision: str = "allowed"
    decided_by: str = ""
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the call returned a result."""
        return self.status is ToolStatus.OK


class Approval(_Value, frozen=True, kw_only=True):
    """A human's decision on one pending call.

    Attributes:
        call_id: The call.
        payload_hash: The hash of the payload that was pending (:func:`payload_hash`).
        decision: ``approve``, ``edit`` (run with ``arguments`` instead) or ``reject``.
        by: Who decided.
        arguments: For ``edit``: the arguments to run with.
        message: For ``reject``: what the model is told.
    """

    call_id: str
    payload_hash: str
    decision: Literal["approve", "edit", "reject"]
    by: str = ""
    arguments: dict[str, Any] | None = None
    message: str = ""


class ToolResults(Message, frozen=True, kw_only=True):
    """The answer to :class:`ExecuteTools`: one outcome per call, in call order."""

    outcomes: tuple[ToolOutcome, ...] = ()


class ExecuteTools(Request[ToolResults], frozen=True, kw_only=True):
    """Run one turn's tool calls (concurrently, each under its timeout).

    Attributes:
        calls: The calls, as the model made them.
        allowed: The tools the step offers (names, globs, ``tag:x``); ``None``: all.
        run_id: The run (for the audit log and the tools' context).
        reactor: The reactor.
        step: The step.
        identity: Who is calling (policies match on it).
        approvals: Decisions on calls that needed approval, by call id.
    """

    calls: tuple[ToolCall, ...]
    allowed: tuple[str, ...] | None = None
    run_id: str = ""
    reactor: str = ""
    step: str = ""
    identity: str = ""
    approvals: dict[str, Approval] = msgspec.field(default_factory=dict)


class ToolList(Message, frozen=True, kw_only=True):
    """The answer to :class:`ListTools`: specs to send a model, capability docs, retry budgets."""

    specs: tuple[ToolSpec, ...] = ()
    docs: str = ""
    max_retries: dict[str, int] = msgspec.field(default_factory=dict)


class ListTools(Request[ToolList], frozen=True, kw_only=True):
    """Ask a ToolRunner for the tools ``allowed`` selects (``None``: all)."""

    allowed: tuple[str, ...] | None = None


class ToolLoopResult(_Value, frozen=True, kw_only=True):
    """What a ``tools`` step returns.

    Attributes:
        content: The model's final answer.
        model: The model that gave it.
        turns: Model turns taken.
        calls: Every tool call's outcome, in order.
        usage: Tokens over all turns.
        data: The final answer parsed as JSON, when it is JSON (else ``None``).
    """

    content: str
    model: str = ""
    turns: int = 0
    calls: tuple[ToolOutcome, ...] = ()
    usage: Usage = Usage()
    data: Any = None


# ---- the tool loop's journal (stream ``tools:<run_id>``) ------------------------------


class PendingCall(_Value, frozen=True, kw_only=True):
    """A call waiting for a human: its name, exact arguments and their hash."""

    call_id: str
    name: str
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    payload_hash: str = ""
    reason: str = ""


class TurnRecorded(Message, frozen=True, kw_only=True):
    """One model turn and the tool outcomes it led to, journaled before the next turn.

    Attributes:
        step: The step whose loop it is.
        turn: The turn's number, from 1.
        assistant: The model's message (its text, tool calls and reasoning blocks).
        outcomes: Outcomes of the calls that ran (pending ones are not here yet).
        usage: The turn's tokens.
        model: The model that answered.
    """

    step: str
    turn: int
    assistant: ChatMessage
    outcomes: tuple[ToolOutcome, ...] = ()
    usage: Usage = Usage()
    model: str = ""


class ApprovalsPending(Message, frozen=True, kw_only=True):
    """Calls of the last recorded turn that wait for a human; the run halts on this."""

    step: str
    turn: int
    calls: tuple[PendingCall, ...]


class ApprovalDecided(Message, frozen=True, kw_only=True):
    """A human decided on a pending call (appended by ``approve``/``reject``)."""

    step: str
    approval: Approval
    at: float = 0.0


class OutcomesRecorded(Message, frozen=True, kw_only=True):
    """Outcomes of a turn's calls that ran after approval (on resume)."""

    step: str
    turn: int
    outcomes: tuple[ToolOutcome, ...]


class FallbackChosen(Message, frozen=True, kw_only=True):
    """The server refused native tool calling; the loop goes on with JSON in the text."""

    step: str
    reason: str


class LoopFinished(Message, frozen=True, kw_only=True):
    """The loop answered (a retried step starts a fresh loop after this)."""

    step: str
    result: ToolLoopResult


class LoopReset(Message, frozen=True, kw_only=True):
    """The loop failed; a retried attempt starts a fresh conversation."""

    step: str
    reason: str


LoopRecord = (
    TurnRecorded
    | ApprovalsPending
    | ApprovalDecided
    | OutcomesRecorded
    | FallbackChosen
    | LoopFinished
    | LoopReset
)
"""Every record of a tool loop's journal stream."""

LOOP_RECORD_DECODER: msgspec.json.Decoder[LoopRecord] = msgspec.json.Decoder(LoopRecord)
"""Decodes any loop record from its JSON."""
