"""Approvals: what waits for a human, and recording a human's decision.

A ``tools`` step whose model calls a tool that needs approval journals the calls
(:class:`~actors.tools.ApprovalsPending`: name, exact arguments, their hash) on the
run's tool stream ``tools:<run_id>`` and halts the run. A decision is appended to the
same stream (:class:`~actors.tools.ApprovalDecided`), bound to the hash of the payload
that was pending; resuming the run applies it to exactly that payload, once. A decision
survives restarts like any journal record; a call decided already cannot be decided
again. ``reactor runs approve|reject RUN_ID CALL_ID`` calls these functions.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from actors.store import Journal, JournalEntry
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
    "decide",
    "decide_async",
    "loop_stream",
    "pending_calls",
    "pending_calls_async",
]


def loop_stream(run_id: str) -> str:
    """The journal stream of a run's tool loops."""
    return f"tools:{run_id}"


def _decode(entries: list[JournalEntry]) -> list[LoopRecord]:
    return [LOOP_RECORD_DECODER.decode(e.data) for e in entries]


def _pending(records: list[LoopRecord]) -> list[tuple[str, PendingCall]]:
    """Calls waiting for a decision, with their step, oldest first."""
    waiting: dict[str, tuple[str, PendingCall]] = {}
    for record in records:
        match record:
            case ApprovalsPending():
                waiting.update({c.call_id: (record.step, c) for c in record.calls})
            case ApprovalDecided():
                waiting.pop(record.approval.call_id, None)
            case OutcomesRecorded():
                for outcome in record.outcomes:
                    waiting.pop(outcome.call_id, None)
            case _:
                pass
    return list(waiting.values())


def pending_calls(journal: Journal, run_id: str) -> list[tuple[str, PendingCall]]:
    """The run's tool calls waiting for a human: ``(step, call)`` pairs."""
    return _pending(_decode(journal.read(loop_stream(run_id))))


async def pending_calls_async(journal: Journal, run_id: str) -> list[tuple[str, PendingCall]]:
    """:func:`pending_calls` for asyncio code."""
    return _pending(_decode(await journal.read_async(loop_stream(run_id))))


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
    entries = journal.read(loop_stream(run_id))
    decided = _decision(
        _decode(entries), run_id, call_id, decision, by, arguments, message, registry
    )
    # expected_seq: a decision recorded meanwhile (by another human) refuses this one.
    seq = entries[-1].seq if entries else 0
    journal.append(loop_stream(run_id), "ApprovalDecided", decided, expected_seq=seq)
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
    entries = await journal.read_async(loop_stream(run_id))
    decided = _decision(
        _decode(entries), run_id, call_id, decision, by, arguments, message, registry
    )
    seq = entries[-1].seq if entries else 0
    await journal.append_async(loop_stream(run_id), "ApprovalDecided", decided, expected_seq=seq)
    return decided.approval
