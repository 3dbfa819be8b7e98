"""Approvals: what waits for a human, and recording a human's decision.

A ``tools`` step whose model calls a tool that needs approval journals the calls
(:class:`~actors.tools.ApprovalsPending`: name, exact arguments, their hash) on the
run's tool stream ``tools:<run_id>`` and halts the run. A decision
(:class:`~actors.tools.ApprovalDecided`, bound to the hash of the payload that was
pending) goes to a stream of its own, ``tools-approval:<run_id>:<call_id>``, appended
with ``expected_seq=0``: a call is decided once, whoever decides first wins, and the
other is told it was decided already. A stream of its own also means that a decision
recorded by another process (``reactor runs approve`` beside a running daemon) never
touches a stream the daemon's Store writes, so neither Store finds its sequence numbers
stale. Resuming the run applies the decision to exactly that payload, once.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from actors import AskError, FailureKind
from actors.store import Journal, JournalEntry, StreamInfo
from actors.tools._errors import ApprovalError
from actors.tools._messages import (
    LOOP_RECORD_DECODER,
    Approval,
    ApprovalDecided,
    ApprovalsPending,
    LoopRecord,
    OutcomesRecorded,
    PendingCall,
)
from actors.tools._registry import ToolRegistry

__all__ = [
    "approval_stream",
    "decide",
    "decide_async",
    "history",
    "history_async",
    "loop_stream",
    "pending_calls",
    "pending_calls_async",
]


def loop_stream(run_id: str) -> str:
    """The journal stream of a run's tool loops."""
    return f"tools:{run_id}"


def approval_stream(run_id: str, call_id: str) -> str:
    """The journal stream of the decision on one call."""
    return f"{_APPROVAL_PREFIX}{run_id}:{call_id}"


_APPROVAL_PREFIX = "tools-approval:"


def _decode(entries: list[JournalEntry]) -> list[LoopRecord]:
    return [LOOP_RECORD_DECODER.decode(e.data) for e in entries]


def _decisions(infos: list[StreamInfo]) -> list[LoopRecord]:
    """The decisions: the first (only) event of each of a run's approval streams."""
    return [LOOP_RECORD_DECODER.decode(i.first.data) for i in infos if i.first is not None]


def history(journal: Journal, run_id: str) -> list[LoopRecord]:
    """A run's tool-loop records, then the decisions on its calls."""
    records = _decode(journal.read(loop_stream(run_id)))
    infos = journal.streams(f"{_APPROVAL_PREFIX}{run_id}:", include_first=True)
    return records + _decisions(infos)


async def history_async(journal: Journal, run_id: str) -> list[LoopRecord]:
    """:func:`history` for asyncio code."""
    records = _decode(await journal.read_async(loop_stream(run_id)))
    infos = await journal.streams_async(f"{_APPROVAL_PREFIX}{run_id}:", include_first=True)
    return records + _decisions(infos)


def _pending(records: list[LoopRecord]) -> list[tuple[str, PendingCall]]:
    """Calls waiting for a decision, with their step, oldest first."""
    waiting: dict[str, tuple[str, PendingCall]] = {}
    decided: set[str] = set()
    for record in records:
        match record:
            case ApprovalsPending():
                waiting.update({c.call_id: (record.step, c) for c in record.calls})
            case ApprovalDecided():
                decided.add(record.approval.call_id)
            case OutcomesRecorded():
                for outcome in record.outcomes:
                    waiting.pop(outcome.call_id, None)
            case _:
                pass
    return [entry for call_id, entry in waiting.items() if call_id not in decided]


def pending_calls(journal: Journal, run_id: str) -> list[tuple[str, PendingCall]]:
    """The run's tool calls waiting for a human: ``(step, call)`` pairs."""
    return _pending(history(journal, run_id))


async def pending_calls_async(journal: Journal, run_id: str) -> list[tuple[str, PendingCall]]:
    """:func:`pending_calls` for asyncio code."""
    return _pending(await history_async(journal, run_id))


def _decision(  # noqa: PLR0917 - the public functions' arguments, passed on
    records: list[LoopRecord],
    run_id: str,
    call_id: str,
    decision: Literal["approve", "edit", "reject"],
    by: str,
    arguments: dict[str, Any] | None,
    message: str,
    registry: ToolRegistry | None,
) -> ApprovalDecided:
    found = {c.call_id: (step, c) for step, c in _pending(records)}
    if call_id not in found:
        waiting = ", ".join(sorted(found)) or "none"
        msg = f"run {run_id}: no tool call {call_id!r} is waiting for approval (waiting: {waiting})"
        raise ApprovalError(msg)
    step, call = found[call_id]
    if decision == "edit":
        if not isinstance(arguments, dict):
            msg = f"run {run_id}, call {call_id}: editing needs the new arguments as an object"
            raise ApprovalError(msg)
        if registry is not None and call.name in registry:
            try:
                registry.get(call.name).validate(arguments)
            except Exception as exc:
                msg = f"run {run_id}, call {call_id}: the edited arguments do not validate: {exc}"
                raise ApprovalError(msg) from exc
    approval = Approval(
        call_id=call_id,
        payload_hash=call.payload_hash,
        decision=decision,
        by=by,
        arguments=arguments if decision == "edit" else None,
        message=message,
    )
    return ApprovalDecided(step=step, approval=approval, at=time.time())


def decide(
    journal: Journal,
    run_id: str,
    call_id: str,
    decision: Literal["approve", "edit", "reject"],
    *,
    by: str = "",
    arguments: dict[str, Any] | None = None,
    message: str = "",
    registry: ToolRegistry | None = None,
) -> Approval:
    """Record a human's decision on a pending call; resume the run to apply it.

    Args:
        journal: The Store's journal.
        run_id: The halted run.
        call_id: The pending call.
        decision: ``approve``, ``edit`` (run with ``arguments``) or ``reject``.
        by: Who decided (the audit log names them).
        arguments: For ``edit``: the arguments to run with instead.
        message: For ``reject``: what the model is told.
        registry: Validates edited arguments now (else they are validated on resume).

    Raises:
        ApprovalError: No such call waits (or it was decided already), or the edited
            arguments are not an object or do not validate.
    """
    records = history(journal, run_id)
    decided = _decision(records, run_id, call_id, decision, by, arguments, message, registry)
    stream = approval_stream(run_id, call_id)
    try:  # expected_seq=0: a decision recorded meanwhile (by someone else) wins
        journal.append(stream, "ApprovalDecided", decided, expected_seq=0)
    except AskError as exc:
        raise _decided_already(run_id, call_id, exc) from exc
    return decided.approval


async def decide_async(
    journal: Journal,
    run_id: str,
    call_id: str,
    decision: Literal["approve", "edit", "reject"],
    *,
    by: str = "",
    arguments: dict[str, Any] | None = None,
    message: str = "",
    registry: ToolRegistry | None = None,
) -> Approval:
    """:func:`decide` for asyncio code."""
    records = await history_async(journal, run_id)
    decided = _decision(records, run_id, call_id, decision, by, arguments, message, registry)
    stream = approval_stream(run_id, call_id)
    try:
        await journal.append_async(stream, "ApprovalDecided", decided, expected_seq=0)
    except AskError as exc:
        raise _decided_already(run_id, call_id, exc) from exc
    return decided.approval


def _decided_already(run_id: str, call_id: str, exc: AskError) -> BaseException:
    """An ``expected_seq`` conflict means someone decided first; anything else is itself."""
    if exc.failure.kind is FailureKind.BAD_REQUEST:
        msg = f"run {run_id}: tool call {call_id!r} was decided meanwhile (by someone else)"
        return ApprovalError(msg)
    return exc
