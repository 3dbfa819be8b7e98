"""``reactor runs approve|reject``, ``reactor tools audit|pending``: tool calls on the command line.

Approving or rejecting records the decision in the run's journal (bound to the hash of
the pending payload); the run goes on when it is resumed by a program that runs its
tools (``engine.resume(run_id)`` where the ToolRunner and its registry live).
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any, Literal, TextIO

from reactor.cli._parse import EXIT_OK, EXIT_USAGE, CliError
from reactor.cli._runs import _configure_logging, _journal

__all__ = ["run_audit", "run_decide", "run_pending"]


def _require_run(journal: Any, run_id: str) -> None:
    """Raise :class:`CliError` when the journal has no run ``run_id`` (a mistyped id)."""
    from reactor.run import stream_of  # noqa: PLC0415

    if not journal.read(stream_of(run_id), limit=1):
        msg = f"no run {run_id!r} in the journal"
        raise CliError(msg)


def run_decide(
    run_id: str,
    call_id: str,
    decision: Literal["approve", "edit", "reject"],
    *,
    db: Path | None,
    by: str,
    arguments: str | None = None,
    message: str = "",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Record a decision on a pending tool call; prints what was recorded."""
    out, err = out or sys.stdout, err or sys.stderr
    from actors import ActorError  # noqa: PLC0415
    from actors.tools import ApprovalError, decide  # noqa: PLC0415

    command = "approve" if decision != "reject" else "reject"
    edited: dict[str, Any] | None = None
    if arguments is not None:
        try:
            edited = json.loads(arguments)
        except ValueError as exc:
            err.write(f"reactor runs {command}: error: --arguments is not JSON: {exc}\n")
            return EXIT_USAGE
        if not isinstance(edited, dict):
            err.write(f"reactor runs {command}: error: --arguments must be a JSON object\n")
            return EXIT_USAGE
    try:
        _configure_logging("error")
        with _journal(db) as journal:
            _require_run(journal, run_id)
            approval = decide(
                journal, run_id, call_id, decision, by=by, arguments=edited, message=message
            )
    except (CliError, ApprovalError, ActorError) as exc:
        err.write(f"reactor runs {command}: error: {exc}\n")
        return EXIT_USAGE
    verb = {"approve": "approved", "edit": "approved with edited arguments", "reject": "rejected"}
    out.write(
        f"{verb[approval.decision]}: call {call_id} of run {run_id} "
        f"(payload {approval.payload_hash[:12]}); resume the run to apply it\n"
    )
    return EXIT_OK


def run_pending(
    run_id: str,
    *,
    db: Path | None,
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``reactor tools pending RUN_ID``: the calls waiting for a human."""
    out, err = out or sys.stdout, err or sys.stderr
    from actors import ActorError  # noqa: PLC0415
    from actors.tools import pending_calls  # noqa: PLC0415

    try:
        _configure_logging("error")
        with _journal(db) as journal:
            _require_run(journal, run_id)
            waiting = pending_calls(journal, run_id)
    except (CliError, ActorError) as exc:
        err.write(f"reactor tools pending: error: {exc}\n")
        return EXIT_USAGE
    if as_json:
        rows = [
            {
                "step": step,
                "call_id": c.call_id,
                "tool": c.name,
                "arguments": c.arguments,
                "payload_hash": c.payload_hash,
            }
            for step, c in waiting
        ]
        out.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    if not waiting:
        out.write(f"no tool calls of run {run_id} wait for approval\n")
    for step, call in waiting:
        shown = json.dumps(call.arguments, sort_keys=True)
        out.write(f"{call.call_id}  step {step}  {call.name}({shown})\n")
    return EXIT_OK


def _time(value: str | None) -> float | None:
    """Unix seconds, or an ISO 8601 time (UTC when it has no offset)."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def run_audit(
    *,
    db: Path | None,
    run_id: str | None,
    tool: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``reactor tools audit``: audit records, newest first, filtered."""
    out, err = out or sys.stdout, err or sys.stderr
    import msgspec  # noqa: PLC0415

    from actors.store import Store  # noqa: PLC0415
    from actors.tools import query_audit  # noqa: PLC0415

    try:
        start, end = _time(since), _time(until)
    except ValueError as exc:
        err.write(f"reactor tools audit: error: --since/--until: {exc}\n")
        return EXIT_USAGE
    try:
        records = query_audit(
            Store.path_of(db), run_id=run_id, tool=tool, since=start, until=end, limit=limit
        )
    except FileNotFoundError as exc:
        err.write(f"reactor tools audit: error: {exc}\n")
        return EXIT_USAGE
    if as_json:
        out.write(msgspec.json.encode(records).decode() + "\n")
        return EXIT_OK
    if not records:
        out.write("no audit records match\n")
    for r in records:
        when = datetime.datetime.fromtimestamp(r.at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        who = f" by {r.decided_by}" if r.decided_by else ""
        error = f"  {r.error[:120]}" if r.error else ""
        out.write(
            f"{when}  {r.run_id or '-'}  {r.step or '-'}  {r.identity or '-'}  {r.tool}  "
            f"{r.decision or '-'}{who}  {r.outcome}  {r.duration_s * 1000:.1f} ms"
            f"  {json.dumps(r.arguments, sort_keys=True)}{error}\n"
        )
    return EXIT_OK
