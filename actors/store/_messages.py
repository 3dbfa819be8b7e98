"""The Store's protocol: append to and read from the event journal, and ask for stats.

Every struct here is a tagged :class:`~actors.Message` (the class name is the tag), so
requests and replies round-trip through :func:`~actors.encode` / :func:`~actors.decode`
and the same definitions serve the HTTP API and the MCP tools. The names carry a
``Journal``/``Store`` prefix because tags are global to the process.

The journal's event type is the field ``event_type``: ``type`` is the tag field of
every message and cannot also be a field.
"""

from __future__ import annotations

from actors import Message, Request

__all__ = [
    "JournalAppend",
    "JournalAppended",
    "JournalEntries",
    "JournalEntry",
    "JournalEvent",
    "JournalRead",
    "JournalStreamList",
    "JournalStreams",
    "SqlValue",
    "StoreInsert",
    "StoreInserted",
    "StoreQuery",
    "StoreRequest",
    "StoreRows",
    "StoreStats",
    "StoreStatsQuery",
    "StreamInfo",
]


class JournalAppended(Message, frozen=True, kw_only=True):
    """The answer to :class:`JournalAppend`: where the event landed.

    Attributes:
        stream_id: The stream appended to.
        seq: The event's position in its stream (the first event is 1).
        id: The event's position in the whole journal (increasing across streams).
    """

    stream_id: str
    seq: int
    id: int


class JournalEvent(Message, frozen=True, kw_only=True):
    """One more event of a :class:`JournalAppend` (see its ``more``)."""

    event_type: str
    data: bytes


class JournalAppend(Request[JournalAppended], frozen=True, kw_only=True):
    """Append one event to a stream; answered once the event is durably committed.

    Attributes:
        stream_id: The stream (a run, a session, a conversation, ...).
        event_type: What happened, e.g. ``"StepCompleted"``.
        data: The event's body: JSON bytes by convention (``msgspec.json.encode``).
        expected_seq: Optimistic concurrency: when set, the append succeeds only if the
            stream's last sequence number is exactly this (0 for an empty stream);
            otherwise it is answered with a ``bad_request`` failure and not written.
        more: Further events for the same stream, written right after this one in the
            same transaction: all of them or none. The answer names the last one.
    """

    stream_id: str
    event_type: str
    data: bytes
    expected_seq: int | None = None
    more: tuple[JournalEvent, ...] = ()


class JournalEntry(Message, frozen=True, kw_only=True):
    """One stored event, as read back.

    Attributes:
        stream_id: Its stream.
        seq: Its position in the stream (from 1, without gaps).
        id: Its position in the whole journal.
        event_type: What happened.
        data: The bytes that were appended.
        created_at: When it was committed (``time.time()`` seconds).
    """

    stream_id: str
    seq: int
    id: int
    event_type: str
    data: bytes
    created_at: float


class JournalEntries(Message, frozen=True, kw_only=True):
    """The answer to :class:`JournalRead`: entries of one stream in ``seq`` order.

    Attributes:
        stream_id: The stream that was read.
        entries: The entries after ``after_seq``, at most ``limit`` of them.
    """

    stream_id: str
    entries: tuple[JournalEntry, ...] = ()


class JournalRead(Request[JournalEntries], frozen=True, kw_only=True):
    """Read a stream's events in order.

    Reads use their own connection, so they never wait behind the writer.

    Attributes:
        stream_id: The stream to read.
        after_seq: Return only events with a greater ``seq`` (0 reads from the start).
        limit: At most this many events; ``None`` for all of them.
    """

    stream_id: str
    after_seq: int = 0
    limit: int | None = None


class StreamInfo(Message, frozen=True, kw_only=True):
    """One stream of the journal, summarised (kept up to date on every append).

    Attributes:
        stream_id: The stream.
        created_at: When its first event was committed (``time.time()`` seconds).
        updated_at: When its last event was committed.
        last_seq: Its last event's ``seq`` (how many events it has).
        last_type: Its last event's ``event_type``.
        first: Its first event (``seq`` 1), e.g. a run's ``RunStarted``; ``None`` when
            it was not asked for (``include_first=False``).
    """

    stream_id: str
    created_at: float
    updated_at: float
    last_seq: int
    last_type: str
    first: JournalEntry | None = None


class JournalStreamList(Message, frozen=True, kw_only=True):
    """The answer to :class:`JournalStreams`: the matching streams, newest first.

    Attributes:
        stream_infos: One summary per stream, by ``created_at`` descending (streams
            created in the same commit: the later-created one first).
    """

    stream_infos: tuple[StreamInfo, ...] = ()


class JournalStreams(Request[JournalStreamList], frozen=True, kw_only=True):
    """List the journal's streams, newest first, from the summary table (no event scan).

    Reads use their own connection, so they never wait behind the writer.

    Attributes:
        prefix: Only streams whose id starts with this (e.g. ``"run:"``); matched
            literally (``%`` and ``_`` are ordinary characters). ``""`` matches all.
        open_only: Leave out the streams whose last event is one of ``terminal_types``
            (e.g. the runs that finished, to find the ones a crash interrupted).
            Requires ``terminal_types``.
        terminal_types: The event types that end a stream (used with ``open_only``).
        limit: At most this many streams (the newest); ``None`` for all of them.
        include_first: Whether each summary carries its stream's first event.
    """

    prefix: str = ""
    open_only: bool = False
    terminal_types: tuple[str, ...] = ()
    limit: int | None = None
    include_first: bool = True


class StoreStats(Message, frozen=True, kw_only=True):
    """The answer to :class:`StoreStatsQuery`: what the Store has done so far.

    Attributes:
        path: The database file.
        open: Whether the database is open (requests before that are queued).
        commits: Group commits that succeeded.
        failed_commits: Group commits that failed (each failed all its appends).
        appends: Events written.
        conflicts: Appends refused because ``expected_seq`` did not match.
        largest_batch: The most appends one commit carried.
        pending: Appends waiting for the next commit.
        in_flight: Appends in the commit that is running now.
    """

    path: str
    open: bool
    commits: int
    failed_commits: int
    appends: int
    conflicts: int
    largest_batch: int
    pending: int
    in_flight: int


class StoreStatsQuery(Request[StoreStats], frozen=True, kw_only=True):
    """Ask the Store for its counters (answered at once, without touching the disk)."""


SqlValue = str | int | float | None
"""A value in a table row (msgspec allows one string-like type in a union: no BLOBs)."""


class StoreInserted(Message, frozen=True, kw_only=True):
    """The answer to :class:`StoreInsert`: the rows are committed."""

    table: str
    rows: int


class StoreInsert(Request[StoreInserted], frozen=True, kw_only=True):
    """Insert rows into one of the schema's tables, in the next group commit.

    For the tables beside the journal (spend records, history): the rows ride in the
    same transaction as the journal appends queued with them, so they cost no commit
    of their own. Table and column names must be plain identifiers.

    Attributes:
        table: The table (created by a migration).
        columns: The columns the rows give, in order.
        rows: The values, one tuple per row, as many as ``columns``.
    """

    table: str
    columns: tuple[str, ...]
    rows: tuple[tuple[SqlValue, ...], ...]


class StoreRows(Message, frozen=True, kw_only=True):
    """The answer to :class:`StoreQuery`: its rows, in order."""

    rows: tuple[tuple[SqlValue, ...], ...] = ()


class StoreQuery(Request[StoreRows], frozen=True, kw_only=True):
    """One SQL query on the read-only connection (it can read, never write).

    Attributes:
        sql: A single ``SELECT`` (placeholders ``?``).
        params: The placeholders' values.
    """

    sql: str
    params: tuple[SqlValue, ...] = ()


StoreRequest = (
    JournalAppend | JournalRead | JournalStreams | StoreStatsQuery | StoreInsert | StoreQuery
)
"""Every request the :class:`~actors.Store` understands."""
