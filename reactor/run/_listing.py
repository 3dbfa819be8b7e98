"""Runs as the journal tells them: a run's events, its status, and the list of runs.

A run is the journal stream ``run:<run_id>``. Its status is the one its latest event
gives (:data:`END_STATUS`), else ``running`` while the process that ran it last is
alive and ``interrupted`` once it is gone (it can be resumed). The engine
(``Engine.runs``) and the command (``reactor runs list``) both list runs with
:func:`list_runs`, so they always agree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import msgspec

from actors.store import Journal, JournalEntry, StreamInfo
from reactor.run._errors import JournalCorruptError
from reactor.run._owner import owner_alive
from reactor.run._records import (
    END_STATUS,
    RUN_EVENT_DECODER,
    STREAM_PREFIX,
    Owner,
    RunEvent,
    RunResumed,
    RunStarted,
    stream_of,
)

__all__ = [
    "RunSummary",
    "decode_history",
    "latest_owner",
    "list_runs",
    "read_history",
    "run_status",
]


class RunSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One run, as ``reactor runs list`` shows it.

    Attributes:
        run_id: The run.
        reactor: The reactor's name (``?`` when its first event cannot be read).
        locator: Where its definition is found.
        status: ``running``, ``completed``, ``failed``, ``halted``, ``cancelled``,
            ``undone``, or ``interrupted`` (its process is gone; it can be resumed).
        created_at: When it started.
        updated_at: When its journal last changed.
        last_event: Its latest journal event.
        events: How many events its journal has.
        parent: The run that composed it, if any.
    """

    run_id: str
    reactor: str
    locator: str
    status: str
    created_at: float
    updated_at: float
    last_event: str
    events: int
    parent: str | None = None


def read_history(
    journal: Journal, run_id: str, *, damaged: list[tuple[int, str]] | None = None
) -> list[RunEvent]:
    """The run's journal, decoded, oldest first (empty for an unknown run).

    Args:
        journal: The journal to read.
        run_id: The run.
        damaged: Where to put the rows that cannot be decoded, as ``(seq, problem)``;
            they are left out of the result. ``None``: such a row raises.

    Raises:
        JournalCorruptError: A row cannot be decoded (and ``damaged`` is ``None``); it
            names the run, the row's seq and what is wrong.
    """
    return decode_history(run_id, journal.read(stream_of(run_id)), damaged=damaged)


def decode_history(
    run_id: str, entries: Iterable[JournalEntry], *, damaged: list[tuple[int, str]] | None = None
) -> list[RunEvent]:
    """:func:`read_history` for entries already read."""
    events: list[RunEvent] = []
    for entry in entries:
        try:
            events.append(RUN_EVENT_DECODER.decode(entry.data))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            problem = f"{entry.event_type} event: {exc}"
            if damaged is None:
                reactor = _reactor_of(events)
                raise JournalCorruptError(
                    run_id=run_id, reactor=reactor, seq=entry.seq, problem=problem
                ) from None
            damaged.append((entry.seq, problem))
    return events


def _reactor_of(events: list[RunEvent]) -> str:
    first = events[0] if events else None
    return first.reactor if isinstance(first, RunStarted) else ""


def run_status(last_event: str, owner: Owner | None) -> str:
    """A run's status from its latest event type and the process that ran it last."""
    status = END_STATUS.get(last_event)
    if status is not None:
        return status
    return "interrupted" if owner_alive(owner) is False else "running"


def latest_owner(journal: Journal, started: RunStarted, events: int) -> Owner:
    """The process that ran the run last: its latest ``RunResumed``'s, else its starter's.

    ``events`` is how many events the run has (a run of one event was never resumed).
    """
    if events > 1:
        for event in reversed(read_history(journal, started.run_id, damaged=[])):
            if isinstance(event, RunResumed):
                return event.owner
    return started.owner


def _summary(journal: Journal, info: StreamInfo) -> RunSummary:
    started: RunStarted | None = None
    if info.first is not None:
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            first = RUN_EVENT_DECODER.decode(info.first.data)
            started = first if isinstance(first, RunStarted) else None
    owner = None
    if started is not None and info.last_type not in END_STATUS:  # by whom, last?
        owner = latest_owner(journal, started, info.last_seq)
    return RunSummary(
        run_id=info.stream_id.removeprefix(STREAM_PREFIX),
        reactor=started.reactor if started else "?",
        locator=started.locator if started else "",
        status=run_status(info.last_type, owner),
        created_at=info.created_at,
        updated_at=info.updated_at,
        last_event=info.last_type,
        events=info.last_seq,
        parent=started.parent if started else None,
    )


def list_runs(
    journal: Journal, *, limit: int | None = 50, include_children: bool = False
) -> list[RunSummary]:
    """Runs in the journal, newest first, at most ``limit`` (composed runs if asked)."""
    fetch = limit
    while True:
        infos = journal.streams(STREAM_PREFIX, limit=fetch)
        rows = [_summary(journal, info) for info in infos]
        if not include_children:
            rows = [row for row in rows if row.parent is None]
        if limit is None or fetch is None or len(rows) >= limit or len(infos) < fetch:
            return rows[:limit] if limit is not None else rows
        fetch *= 4
