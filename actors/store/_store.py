"""The Store: one SQLite file, one writer thread, group commits, an append-only journal.

Everything the system persists lives in one SQLite database, owned by one
:class:`Store` actor. The design, in the order a write goes through it:

**Single writer, group commit, answered where it became durable.** The Store hands
every append to its writer: one thread of its own that holds the writing connection.
The writer takes everything that has queued up (at most ``max_batch`` appends), writes
it in one transaction, and answers each caller itself, straight from the thread on
which the commit became durable. While one commit runs, the next batch queues, so under
load a commit carries many appends for the price of one transaction and one fsync; with
a single writer, the per-stream sequence numbers are assigned in arrival order and never
collide. (The writer caches each stream's last ``seq``, reading it from the file the
first time a stream is touched, inside the commit's transaction. The cache is trusted
only while nobody else wrote the file: each commit reads SQLite's ``data_version``
under the write lock, and when another connection (another process, or another Store
on the same file in this process) committed since this writer's last commit, the cache
is dropped and the commit's streams are read again. So an append's ``expected_seq`` is
always checked against the file, in the transaction that writes it: of two writers
appending to one stream at the same expected seq, one is written and the other gets a
``bad_request`` conflict naming the seq it found. ``UNIQUE(stream_id, seq)`` remains
the last guard against forking a stream.) A commit that fails answers every
append it carried with a typed :class:`~actors.Failure` naming the file and the SQLite
error; nothing raises across threads. An append whose caller gave up (its deadline
passed) before its commit started is not written.

**Why a thread and the stdlib ``sqlite3`` for writing, not aiosqlite.** A commit used to
go from the Store's thread to the I/O loop, on to aiosqlite's worker thread, back to the
loop and back to the Store before its caller heard of it: four hand-overs between
threads (each a queue, a wake-up and a turn at the GIL, and the loop's self-pipe) that
cost more than the SQL itself, and that the loop and the Store were starved of when
thousands of runs were alive. Writing needs nothing from the loop: the writer blocks
only in SQLite, which releases the GIL, and on its own queue. So an append now goes
caller → Store → writer → caller. aiosqlite stays for reads, which run on the I/O loop
as before.

**Never blocking.** The Store's handlers only queue work: appends go to the writer's
queue, reads to the I/O loop via :meth:`~actors.Actor.pipe_to_self`, and the statistics
are counters. A read or a stats query is therefore answered while a commit waits for the
write lock. Opening happens in ``started()``: the writer opens and migrates the file on
its thread, then the read connection is opened on the loop; requests that arrive before
both are open wait in the actor and are served in order once they are; if the file cannot
be opened they are answered with a failure and the actor crashes, so its supervisor
knows (as it does if the writer ever stops on an unexpected error).

**Two connections.** Writes go through the writer connection, each commit in an explicit
``BEGIN IMMEDIATE`` transaction (the write lock is taken at the start, so a commit never
fails half-way for want of it; ``busy_timeout`` bounds the wait if another process holds
it). Reads go through a second, read-only (``query_only``) connection: in WAL mode a
reader sees the last committed state and never waits behind the writer, with one
exception: a read of a stream that has appends submitted and not yet answered (by any
sender) waits for their answers, so that a read sees every append the Store received
before it (a run resumed right after its stopped actor's last append, say).

**Durability.** ``journal_mode=WAL`` with ``synchronous=FULL`` by default: the WAL is
fsynced before ``COMMIT`` returns, and an append is acknowledged only after that, so
every acknowledged append survives a killed process (SIGKILL), an OS crash and a power
loss (as far as the disk honours fsync). Group commit keeps this affordable: one fsync
per batch, not per append. ``synchronous="NORMAL"`` may be chosen instead: in WAL mode a
committed transaction is then in the OS page cache but not yet on disk, so it still
survives the process being killed, but the last commits may be lost (never corrupted)
when the machine itself goes down.

**Schema migrations** are an ordered list of SQL scripts, :data:`MIGRATIONS`; the
database's ``PRAGMA user_version`` is how many of them it has had. Opening applies the
missing ones in one ``BEGIN IMMEDIATE`` transaction that also sets ``user_version``, so
a migration is applied entirely or not at all, and by one process only. A database with
a higher version than the code knows was written by newer code: opening it is an error
naming the file and both versions. To change the schema, append a script; never edit one
that has shipped. A migration also stamps the file with :data:`APPLICATION_ID`; a SQLite
file of another application (another ``application_id``, or tables and no version) is
refused, naming it, instead of getting the journal's tables written into it.

**Listing streams.** A ``streams`` table (migration 2) holds one summary row per stream
(its first event's id and time, its last ``seq``, type and time), written by the commit
that appends to the stream, in the same transaction: one upsert per stream per commit
(migration 3 dropped the trigger that upserted it once per row). So
:class:`JournalStreams` (e.g. "the runs, newest first", or "the runs whose last event is
not terminal") is answered from it on the read connection without scanning the events.

**Checking before use.** :meth:`Store.check` does the writer's opening (creation,
write-ahead logging, migrations) on the calling thread and closes the file again, and
reads the journal's tables once: whoever must know that the journal is usable before
anything happens (the ``reactor`` command before a run's first step, an ``Engine`` that
starts its Store) gets one :class:`StoreError` naming the file and the cause (a
directory, a read-only file, a file that is not SQLite or another application's, a newer
schema) instead of an actor that crashes after the first step ran.

**Where the file is.** ``$REACTOR_DB`` if set, else ``reactor.db`` in the user's data
directory (:func:`default_db_path`). The journal holds the inputs and results of runs, so
a new file is created readable and writable by its owner only (``0600``; SQLite gives its
``-wal`` and ``-shm`` files the same mode) and every missing directory on its path
``0700``; an existing file or directory keeps its mode (the README says so: tighten an
older one with ``chmod 600``).

**Closing.** When the actor stops (or crashes), the writer commits what it had
accepted before (each write handed to it is its to answer: a process that exits as soon
as it has its last answer, a ``reactor`` command, still has the audit or spend rows it
sent just before), closes its connection and ends; the Store waits for it. Requests
still in the mailbox are answered ``actor_stopped``; a write whose caller gave up (its
deadline passed) is not made. The read
connection belongs to one task on the I/O loop from open to close: the Store asks that
task to close it, without waiting; if the system stops the loop first, the loop's own
shutdown cancels the task, which closes the connection all the same, and the loop waits
for it (for aiosqlite's worker thread to finish), so a clean ``System.stop()`` leaves
nothing open.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, assert_never

import aiosqlite
import msgspec
import platformdirs
import structlog
from opentelemetry import context as otel_context

import otel
from actors import Actor, ActorError, ChildSpec, Deferred, Failure, FailureKind, Ref, Restart
from actors._reply import Callback
from actors.store._messages import (
    JournalAppend,
    JournalAppended,
    JournalEntries,
    JournalEntry,
    JournalRead,
    JournalStreamList,
    JournalStreams,
    SqlValue,
    StoreInsert,
    StoreInserted,
    StoreQuery,
    StoreRequest,
    StoreRows,
    StoreStats,
    StoreStatsQuery,
    StreamInfo,
)

__all__ = [
    "DB_ENV_VAR",
    "MIGRATIONS",
    "Journal",
    "Store",
    "StoreError",
    "default_db_path",
]

_log = structlog.get_logger("actors.store")

DB_ENV_VAR = "REACTOR_DB"
"""The environment variable that overrides the default database path."""

MIGRATIONS: tuple[str, ...] = (
    # 1: the append-only event journal.
    """
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY,
        stream_id  TEXT    NOT NULL,
        seq        INTEGER NOT NULL,
        type       TEXT    NOT NULL,
        data       BLOB    NOT NULL,
        created_at REAL    NOT NULL,
        UNIQUE (stream_id, seq)
    );
    """,
    # 2: a summary row per stream (back-filled, then kept by a trigger), so streams are
    # listed without scanning the events: e.g. the runs, newest first, or the ones that
    # did not end. The index serves "prefix P, newest first, LIMIT n": it is walked
    # newest first and the prefix and type filters are decided in it, without reading
    # the table, until n rows matched.
    """
    CREATE TABLE streams (
        stream_id  TEXT    PRIMARY KEY,
        first_id   INTEGER NOT NULL,
        created_at REAL    NOT NULL,
        updated_at REAL    NOT NULL,
        last_seq   INTEGER NOT NULL,
        last_type  TEXT    NOT NULL
    );
    INSERT INTO streams (stream_id, first_id, created_at, updated_at, last_seq, last_type)
    SELECT b.stream_id, f.id, f.created_at, l.created_at, l.seq, l.type
    FROM (SELECT stream_id, min(seq) AS lo, max(seq) AS hi FROM events GROUP BY stream_id) AS b
    JOIN events AS f ON f.stream_id = b.stream_id AND f.seq = b.lo
    JOIN events AS l ON l.stream_id = b.stream_id AND l.seq = b.hi;
    CREATE TRIGGER events_streams AFTER INSERT ON events
    BEGIN
        INSERT INTO streams (stream_id, first_id, created_at, updated_at, last_seq, last_type)
        VALUES (NEW.stream_id, NEW.id, NEW.created_at, NEW.created_at, NEW.seq, NEW.type)
        ON CONFLICT (stream_id) DO UPDATE SET
            updated_at = excluded.updated_at,
            last_seq = excluded.last_seq,
            last_type = excluded.last_type
        WHERE excluded.last_seq > streams.last_seq;
    END;
    CREATE INDEX streams_newest ON streams (created_at, first_id, stream_id, last_type);
    """,
    # 3: the writer keeps the summaries itself, one upsert per stream per commit, instead
    # of the trigger's upsert per row (most of what a row cost to insert).
    """
    DROP TRIGGER IF EXISTS events_streams;
    """,
    # 4: spend: one row per settled model call (actors.orchestration budgets), so spend is
    # summed per period, run, reactor, agent or model without reading the journal.
    """
    CREATE TABLE spend (
        id            INTEGER PRIMARY KEY,
        at            REAL    NOT NULL,
        run_id        TEXT    NOT NULL DEFAULT '',
        reactor       TEXT    NOT NULL DEFAULT '',
        agent         TEXT    NOT NULL DEFAULT '',
        host          TEXT    NOT NULL DEFAULT '',
        model         TEXT    NOT NULL,
        cost_usd      REAL    NOT NULL,
        reserved_usd  REAL    NOT NULL DEFAULT 0,
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        priced        INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX spend_at ON spend (at);
    CREATE INDEX spend_run ON spend (run_id);
    """,
    # 5: the tool audit log (actors.tools): records are events of the stream 'tool-audit';
    # partial indexes find them by run and by tool and time without other streams
    # paying for them (the expressions are what actors.tools queries with).
    """
    CREATE INDEX events_tool_audit_run ON events
        (json_extract(CAST(data AS TEXT), '$.run_id'), id) WHERE stream_id = 'tool-audit';
    CREATE INDEX events_tool_audit_tool ON events
        (json_extract(CAST(data AS TEXT), '$.tool'), created_at) WHERE stream_id = 'tool-audit';
    CREATE INDEX events_tool_audit_time ON events (created_at) WHERE stream_id = 'tool-audit';
    """,
    # 6: reasoning sessions (actors.sessions): each session's journal stream is its
    # truth; these tables index it for search, access checks and analytics. A session's
    # summary row is replaced whole on each change (ON CONFLICT REPLACE: a plain INSERT
    # updates it); steps, executions and the audit trail are appended; the FTS5 table
    # holds the searchable text (task descriptions, steps, results).
    """
    CREATE TABLE reasoning_sessions (
        session_id       TEXT    PRIMARY KEY ON CONFLICT REPLACE,
        task_description TEXT    NOT NULL,
        owner            TEXT    NOT NULL,
        open             INTEGER NOT NULL DEFAULT 0,
        status           TEXT    NOT NULL,
        tags             TEXT    NOT NULL DEFAULT '[]',
        created_at       REAL    NOT NULL,
        updated_at       REAL    NOT NULL,
        steps            INTEGER NOT NULL DEFAULT 0,
        executions       INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX reasoning_sessions_updated ON reasoning_sessions (updated_at);
    CREATE INDEX reasoning_sessions_owner ON reasoning_sessions (owner, updated_at);
    CREATE TABLE reasoning_session_members (
        session_id TEXT NOT NULL,
        agent      TEXT NOT NULL,
        PRIMARY KEY (session_id, agent) ON CONFLICT IGNORE
    ) WITHOUT ROWID;
    CREATE INDEX reasoning_session_members_agent ON reasoning_session_members (agent);
    CREATE TABLE reasoning_steps (
        session_id      TEXT    NOT NULL,
        seq             INTEGER NOT NULL,
        agent           TEXT    NOT NULL,
        step_type       TEXT    NOT NULL,
        builds_on_agent TEXT    NOT NULL DEFAULT '',
        at              REAL    NOT NULL,
        PRIMARY KEY (session_id, seq) ON CONFLICT IGNORE
    ) WITHOUT ROWID;
    CREATE INDEX reasoning_steps_agent ON reasoning_steps (agent, builds_on_agent);
    CREATE TABLE reasoning_executions (
        session_id   TEXT    NOT NULL,
        execution_id TEXT    NOT NULL,
        agent        TEXT    NOT NULL,
        task_type    TEXT    NOT NULL,
        strategy     TEXT    NOT NULL,
        status       TEXT    NOT NULL,
        started_at   REAL    NOT NULL,
        duration_s   REAL,
        models       INTEGER NOT NULL DEFAULT 0,
        cost_usd     REAL    NOT NULL DEFAULT 0,
        PRIMARY KEY (session_id, execution_id) ON CONFLICT REPLACE
    ) WITHOUT ROWID;
    CREATE INDEX reasoning_executions_agent ON reasoning_executions (agent);
    CREATE TABLE reasoning_audit (
        id         INTEGER PRIMARY KEY,
        at         REAL    NOT NULL,
        agent      TEXT    NOT NULL,
        operation  TEXT    NOT NULL,
        session_id TEXT    NOT NULL DEFAULT '',
        outcome    TEXT    NOT NULL,
        detail     TEXT    NOT NULL DEFAULT ''
    );
    CREATE INDEX reasoning_audit_agent ON reasoning_audit (agent, at);
    CREATE INDEX reasoning_audit_session ON reasoning_audit (session_id, at);
    CREATE VIRTUAL TABLE reasoning_fts USING fts5(
        session_id UNINDEXED, kind UNINDEXED, body, tokenize = 'porter unicode61'
    );
    """,
    # 7: the daemon's agent configurations (reactor.daemon): insert-only revisions, the
    # newest per id wins; a deleted agent is a revision with deleted = 1.
    """
    CREATE TABLE daemon_agents (
        id         TEXT    NOT NULL,
        rev        INTEGER NOT NULL,
        at         REAL    NOT NULL,
        deleted    INTEGER NOT NULL DEFAULT 0,
        data       TEXT    NOT NULL,
        PRIMARY KEY (id, rev)
    );
    """,
    # 8: budget_holds: the Budget's reservations, each opened and then closed (settled or
    # released) as rows of their own (the Store only appends), so that a restarted Budget
    # holds again what calls still in flight had reserved.
    """
    CREATE TABLE budget_holds (
        id            TEXT    NOT NULL,
        at            REAL    NOT NULL,
        event         TEXT    NOT NULL,
        run_id        TEXT    NOT NULL DEFAULT '',
        reactor       TEXT    NOT NULL DEFAULT '',
        agent         TEXT    NOT NULL DEFAULT '',
        host          TEXT    NOT NULL DEFAULT '',
        model         TEXT    NOT NULL DEFAULT '',
        amount_usd    REAL    NOT NULL DEFAULT 0,
        expires       REAL    NOT NULL DEFAULT 0
    );
    CREATE INDEX budget_holds_id ON budget_holds (id, event);
    CREATE INDEX budget_holds_open ON budget_holds (expires) WHERE event = 'open';
    """,
    # 9: selection_history: the Selector's performance-history snapshots, a few slots
    # per name replaced in turn (ON CONFLICT REPLACE: a plain INSERT overwrites the
    # oldest), so the rows stay bounded however long it runs. Each snapshot is the whole
    # (decayed) history, so the newest carries everything the older ones did: the newest
    # of the journal stream it replaces moves here, and the stream's others go.
    """
    CREATE TABLE selection_history (
        name TEXT    NOT NULL,
        slot INTEGER NOT NULL,
        seq  INTEGER NOT NULL,
        at   REAL    NOT NULL,
        data TEXT    NOT NULL,
        PRIMARY KEY (name, slot) ON CONFLICT REPLACE
    ) WITHOUT ROWID;
    INSERT INTO selection_history (name, slot, seq, at, data)
    SELECT stream_id, 0, seq, created_at, CAST(data AS TEXT) FROM events
    WHERE stream_id = 'selection:history' ORDER BY seq DESC LIMIT 1;
    DELETE FROM events WHERE stream_id = 'selection:history';
    DELETE FROM streams WHERE stream_id = 'selection:history';
    """,
)
"""The schema, as ordered migration scripts: the database's ``user_version`` counts
how many have been applied. Append new scripts; never change one that has shipped."""

APPLICATION_ID = 0x52535741
"""``PRAGMA application_id`` of the Store's files ("RSWA"): tells them from other SQLite
files (set by the first migration a file gets; older files have 0 and a version)."""

_CACHE_LIMIT = 100_000
"""Streams whose last sequence number the Store remembers (others are read from disk)."""
_IN_CHUNK = 500
"""Stream ids per ``IN (...)`` lookup, well under SQLite's limit on parameters."""
_CLOSE_GRACE = 5.0
"""Seconds a stopping Store waits for its writer beyond the busy timeout."""


def default_db_path() -> Path:
    """Where the database is when none is configured.

    Returns:
        ``$REACTOR_DB`` when that is set (``~`` expanded), else ``reactor.db`` in the
        user's data directory for ``reactor-swarm`` (as ``platformdirs`` defines it).
        Nothing is created here; the Store creates missing directories when it opens.
    """
    configured = os.environ.get(DB_ENV_VAR, "").strip()
    if configured:
        return Path(configured).expanduser()
    return platformdirs.user_data_path("reactor-swarm") / "reactor.db"


class StoreError(ActorError):
    """The database cannot be used: :meth:`Store.check` raises it, naming the file and cause.

    Attributes:
        failure: The typed failure the waiting requests were answered with.
    """

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


# ---- where failures point -------------------------------------------------------------


class _Where(NamedTuple):
    """The file and the actor a failure names."""

    path: Path
    source: str

    def failure(self, kind: FailureKind, what: str, **details: str) -> Failure:
        return Failure(
            kind=kind,
            message=f"store {self.path}: {what}",
            source=self.source,
            details={"path": str(self.path), **details},
        )

    def error(self, exc: BaseException, what: str) -> Failure:
        details = {"error": type(exc).__name__}
        code = getattr(exc, "sqlite_errorcode", None)
        name = getattr(exc, "sqlite_errorname", None)
        if isinstance(name, str):
            details["sqlite_error"] = name
        if isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            kind = FailureKind.OVERLOADED
        elif isinstance(exc, sqlite3.Error | OSError):
            kind = FailureKind.SERVER_ERROR
        else:
            kind = FailureKind.INTERNAL
        return self.failure(kind, f"{what}: {type(exc).__name__}: {exc}", **details)


# ---- the writer: its own thread and connection ------------------------------------------


class _Written(NamedTuple):
    seq: int
    id: int


class _Conflict(NamedTuple):
    last_seq: int


class _Row(NamedTuple):
    stream_id: str
    event_type: str
    data: bytes
    expected_seq: int | None
    follows: bool = False  # one of a JournalAppend's `more`: written only with the first


class _Committed(NamedTuple):
    outcomes: list[_Written | _Conflict]
    last_seqs: dict[str, int]
    data_version: int  # the file's, as this connection saw it under the write lock
    stale: bool  # another connection wrote the file since this writer's last commit


class _Pending(NamedTuple):
    message: JournalAppend | StoreInsert
    reply: Deferred[Any]


class _Barrier(NamedTuple):
    """Calls ``then()`` once every append queued before it has been answered."""

    then: Callable[[], object]


class _Writer:
    """The writing connection on a thread of its own: opens, migrates, group-commits.

    The actor calls :meth:`start`, :meth:`submit` and :meth:`close` and reads the
    counters; everything else runs on the writer's thread, which alone touches the
    connection and the cache of last sequence numbers.
    """

    def __init__(
        self,
        where: _Where,
        *,
        migrations: Sequence[str],
        synchronous: str,
        busy_timeout_ms: int,
        max_batch: int,
    ) -> None:
        self.where = where
        self.migrations = tuple(migrations)
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | _Barrier | None] = queue.SimpleQueue()
        # Appends submitted but not yet answered, per stream: a read of such a stream
        # waits for them (read-your-writes, whoever wrote). Both threads touch it.
        self._unsettled: dict[str, int] = {}
        self._unsettled_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._last_seq: dict[str, int] = {}
        # The file's data_version after this writer's last commit (None: not known, so
        # the cache is not trusted): another connection's commit changes it.
        self._data_version: int | None = None
        # Written on the writer's thread only; the actor reads them for StoreStats.
        self.commits = 0
        self.failed_commits = 0
        self.appends = 0
        self.conflicts = 0
        self.largest_batch = 0
        self.in_flight = 0

    # ---- the actor's side -----------------------------------------------------------

    def start(
        self, opened: Callable[[Failure | None], None], died: Callable[[Failure], None]
    ) -> None:
        """Start the thread: it opens the file, then reports with ``opened(outcome)``.

        ``died(failure)`` reports a writer that stopped on an unexpected error. Both are
        called on the writer's thread, so they must only hand the outcome over.
        """
        self._thread = threading.Thread(
            target=self._run,
            args=(opened, died),
            name=f"store-writer {self.where.path.name}",
            daemon=True,  # a commit stuck in the disk must not keep the process alive
        )
        self._thread.start()

    def submit(self, pending: _Pending) -> None:
        """Queue an append for the next commit (from any thread, never waits)."""
        message = pending.message
        if isinstance(message, JournalAppend):
            stream = message.stream_id
            with self._unsettled_lock:
                unsettled = self._unsettled
                unsettled[stream] = unsettled.get(stream, 0) + 1
        self._queue.put(pending)

    def unsettled(self, stream_id: str) -> bool:
        """Whether appends to ``stream_id`` were submitted and are not answered yet."""
        return stream_id in self._unsettled  # a dict lookup: atomic under the GIL

    def after_queued(self, then: Callable[[], object]) -> None:
        """Call ``then()`` on the writer's thread once every append queued now is answered."""
        self._queue.put(_Barrier(then))

    def _settled(self, batch: list[_Pending]) -> None:
        """The batch's appends are answered: a read of their streams need not wait."""
        with self._unsettled_lock:
            unsettled = self._unsettled
            for message, _ in batch:
                if isinstance(message, JournalAppend):
                    left = unsettled.get(message.stream_id, 0) - 1
                    if left > 0:
                        unsettled[message.stream_id] = left
                    else:
                        unsettled.pop(message.stream_id, None)

    @property
    def queued(self) -> int:
        """Appends waiting for a commit (not counting the one in progress)."""
        return self._queue.qsize()

    def close(self, timeout: float) -> None:
        """Let the commit in progress finish, close the connection, wait for the thread."""
        self._queue.put(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ---- the writer's thread ------------------------------------------------------------

    def _run(
        self, opened: Callable[[Failure | None], None], died: Callable[[Failure], None]
    ) -> None:
        try:
            failure = self._open()
        except Exception as exc:  # noqa: BLE001 - the Store must hear of every failure
            failure = self.where.error(exc, "cannot open the database")
        try:
            opened(failure)
            if failure is None:
                self._serve()
        except Exception as exc:  # noqa: BLE001 - reported to the actor, which crashes
            _log.exception("store writer failed", path=str(self.where.path))
            died(self.where.error(exc, "the writer failed"))
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    _log.warning(
                        "closing the store failed", path=str(self.where.path), error=str(exc)
                    )

    def _open(self) -> Failure | None:
        path = self.where.path
        try:
            _create_private(path)
            conn = self._conn = sqlite3.connect(path, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            mode = _write_ahead(conn, self.busy_timeout_ms / 1000)
            if str(mode).lower() != "wal":
                return self.where.failure(
                    FailureKind.INTERNAL,
                    f"cannot use write-ahead logging (journal_mode stays {mode!r})",
                )
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            failure = self._migrate(conn)
        except (sqlite3.Error, OSError) as exc:
            return self.where.error(exc, "cannot open the database")
        if failure is None:
            _log.info("store open", path=str(path), schema_version=len(self.migrations))
        return failure

    def _migrate(self, conn: sqlite3.Connection) -> Failure | None:
        known = len(self.migrations)
        current = _user_version(conn)
        foreign = _foreign(conn, current)
        if foreign is not None:
            return self.where.failure(FailureKind.BAD_REQUEST, foreign)
        if current < known:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Again under the write lock: another process may have migrated meanwhile.
                current = _user_version(conn)
                foreign = _foreign(conn, current)
                if foreign is not None:
                    conn.execute("ROLLBACK")
                    return self.where.failure(FailureKind.BAD_REQUEST, foreign)
                for version in range(current, known):
                    for statement in _statements(self.migrations[version]):
                        conn.execute(statement)
                if current < known:
                    conn.execute(f"PRAGMA user_version = {known}")
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                return self.where.error(exc, f"migrating the schema from version {current} failed")
            if current < known:
                _log.info(
                    "store schema migrated",
                    path=str(self.where.path),
                    from_version=current,
                    to=known,
                )
        if current > known:
            return self.where.failure(
                FailureKind.INTERNAL,
                f"the database has schema version {current}, newer than this code knows "
                f"({known}); it was written by a newer reactor-swarm (upgrade, or set "
                f"{DB_ENV_VAR} to another file)",
                schema_version=str(current),
                known_version=str(known),
            )
        return None

    def _serve(self) -> None:
        """Commit whatever has queued, one batch at a time, until asked to close."""
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while True:
            item = get()
            if item is None:
                return
            batch = [item]
            closing = False
            while len(batch) < self.max_batch:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    closing = True
                    break
                batch.append(item)
            appends = [item for item in batch if type(item) is _Pending]
            try:
                if appends:
                    self._commit(appends)
            finally:
                self._settled(appends)
            if len(appends) != len(batch):  # a read waits for what was queued before it
                for item in batch:
                    if type(item) is _Barrier:
                        item.then()
            if closing:
                return

    def _commit(self, queued: list[_Pending]) -> None:
        batch: list[_Pending] = []
        for item in queued:
            if item.reply.answered:
                # Its caller gave up (the deadline passed) or the Store stopped: do not
                # write it. Sending only releases the reply slot.
                item.reply.fail(FailureKind.TIMEOUT, "deadline passed before the commit")
            else:
                batch.append(item)
        if not batch:
            return
        inserts = [(m, r) for m, r in batch if isinstance(m, StoreInsert)]
        if inserts:
            batch = [item for item in batch if not isinstance(item.message, StoreInsert)]
        rows = _rows(batch)
        cache = self._last_seq
        known = {r.stream_id: cache[r.stream_id] for r in rows if r.stream_id in cache}
        conn = self._conn
        assert conn is not None  # _serve runs only once the file is open
        self.in_flight = len(batch) + len(inserts)
        started = time.perf_counter()
        try:
            committed = _commit_rows(conn, rows, known, [m for m, _ in inserts], self._data_version)
        except Exception as exc:  # noqa: BLE001 - every append of the batch gets the failure
            self.in_flight = 0
            self._data_version = None
            failure = self.where.error(exc, f"commit of {len(rows) + len(inserts)} write(s) failed")
            self._failed([*batch, *(_Pending(m, r) for m, r in inserts)], failure)
            return
        self.in_flight = 0
        meters = otel.instruments()
        if meters is not None:  # reactor.journal.commit.duration
            meters.journal_commit.record(time.perf_counter() - started)
        self.commits += 1
        self.largest_batch = max(self.largest_batch, len(batch) + len(inserts))
        if committed.stale:
            self._last_seq.clear()  # another writer: every cached seq may be behind
        self._data_version = committed.data_version
        self._remember(committed.last_seqs)
        for insert, answer in inserts:
            _send(insert, answer, StoreInserted(table=insert.table, rows=len(insert.rows)))
        results = iter(committed.outcomes)
        for message, reply in batch:
            assert isinstance(message, JournalAppend)
            written = [next(results) for _ in range(1 + len(message.more))]
            conflict = next((r for r in written if isinstance(r, _Conflict)), None)
            last = written[-1]
            if conflict is not None:
                self.conflicts += 1
                _send(message, reply, self._conflict(message, conflict.last_seq))
            elif isinstance(last, _Written):
                self.appends += len(written)
                _send(
                    message,
                    reply,
                    JournalAppended(stream_id=message.stream_id, seq=last.seq, id=last.id),
                )

    def _failed(self, batch: list[_Pending], failure: Failure) -> None:
        self.failed_commits += 1
        for message, _ in batch:  # the disk is the truth; read it again next time
            if isinstance(message, JournalAppend):
                self._last_seq.pop(message.stream_id, None)
        _log.warning("store commit failed", appends=len(batch), error=failure.message)
        for message, reply in batch:
            _send(message, reply, failure)

    def _remember(self, last_seqs: dict[str, int]) -> None:
        cache = self._last_seq
        for stream_id, seq in last_seqs.items():
            cache.pop(stream_id, None)  # re-inserted at the end: most recently used
            cache[stream_id] = seq
        excess = len(cache) - _CACHE_LIMIT
        if excess > 0:
            for stream_id in list(itertools.islice(cache, excess)):
                del cache[stream_id]

    def _conflict(self, message: JournalAppend, last_seq: int) -> Failure:
        return Failure(
            kind=FailureKind.BAD_REQUEST,
            message=f"append to stream {message.stream_id!r} expected it at seq "
            f"{message.expected_seq} but it is at seq {last_seq}; nothing was written",
            source=self.where.source,
            details={
                "stream_id": message.stream_id,
                "expected_seq": str(message.expected_seq),
                "actual_seq": str(last_seq),
            },
        )


def _send(message: JournalAppend | StoreInsert, reply: Deferred[Any], answer: object) -> None:
    """Answer an append from the writer's thread, in the trace of the request."""
    context = otel.extract(message.trace) if message.trace and otel.enabled() else None
    if context is None:
        reply.send(answer)
        return
    token = otel_context.attach(context)
    try:
        reply.send(answer)
    finally:
        otel_context.detach(token)


def _rows(batch: list[_Pending]) -> list[_Row]:
    """The rows a batch writes: each append's first event, then its ``more``."""
    rows: list[_Row] = []
    for message, _ in batch:
        assert isinstance(message, JournalAppend)
        expected = message.expected_seq
        rows.append(_Row(message.stream_id, message.event_type, message.data, expected))
        rows.extend(
            _Row(
                message.stream_id,
                event.event_type,
                event.data,
                None if expected is None else expected + number,
                follows=True,
            )
            for number, event in enumerate(message.more, 1)
        )
    return rows


def _create_private(path: Path) -> None:
    """Create the file's directories (0700) and the file (0600) where they are missing.

    SQLite creates the ``-wal`` and ``-shm`` files with the database file's mode, so they
    are owner-only too. An existing file keeps the mode it has.
    """
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    for folder in reversed(missing):  # each folder created here, not only the last, is 0700
        folder.mkdir(mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def _write_ahead(conn: sqlite3.Connection, patience: float) -> str:
    """Switch ``conn``'s file to write-ahead logging; the journal mode it has after.

    The switch needs the file to itself. When other connections open a new file at
    the same moment (two Stores, two processes starting), SQLite may answer "database
    is locked" at once instead of waiting out ``busy_timeout``: it does not wait where
    waiting could deadlock. So the switch is tried again, a little later each time,
    for as long as ``busy_timeout`` allows; once another connection has made the file
    WAL, the switch is a no-op.
    """
    deadline = time.monotonic() + patience
    pause = 0.002
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _foreign(conn: sqlite3.Connection, version: int) -> str | None:
    """Why the file is another application's SQLite database (``None``: it is not).

    Ours carry :data:`APPLICATION_ID` (files from before it have ``0``, and a
    ``user_version`` from our migrations). A file with another ``application_id``, or
    with tables and no version at all, belongs to someone else: migrating would write
    the journal's tables into it.
    """
    app = int(conn.execute("PRAGMA application_id").fetchone()[0])
    if app not in (0, APPLICATION_ID):
        return (
            f"it is not a reactor-swarm database (its application_id is {app:#x}); "
            f"point {DB_ENV_VAR} or --db at another file"
        )
    if app == 0 and version == 0:
        tables = conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 3"
        ).fetchall()
        if tables:
            names = ", ".join(str(t[0]) for t in tables)
            return (
                f"it is a SQLite database of another application (tables {names}, and no "
                f"reactor-swarm schema version); point {DB_ENV_VAR} or --db at another file"
            )
    return None


def _commit_rows(
    conn: sqlite3.Connection,
    rows: list[_Row],
    known: dict[str, int],
    inserts: Sequence[StoreInsert] = (),
    seen: int | None = None,
) -> _Committed:
    """The group commit's transaction: the events, their stream summaries, table rows.

    One summary upsert per stream, and the rows of any :class:`StoreInsert` s.
    ``known`` (the cached last seqs) is used only if the file's ``data_version`` is
    still ``seen``, the one of the writer's last commit: else another connection wrote
    meanwhile, and every stream's last seq is read from the file.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        data_version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        stale = seen is None or data_version != seen
        if stale:
            known = {}
        for insert in inserts:
            marks = ", ".join("?" * len(insert.columns))
            columns = ", ".join(insert.columns)
            conn.executemany(
                f"INSERT INTO {insert.table} ({columns}) VALUES ({marks})",  # noqa: S608 - identifiers checked
                insert.rows,
            )
        last = dict(known)
        unknown = sorted({row.stream_id for row in rows} - last.keys())
        for chunk in _chunks(unknown, _IN_CHUNK):
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT stream_id, max(seq) FROM events WHERE stream_id IN ({marks})"  # noqa: S608 - only placeholders
            found = conn.execute(f"{sql} GROUP BY stream_id", chunk).fetchall()
            last.update({str(r[0]): int(r[1]) for r in found})
        for stream_id in unknown:
            last.setdefault(stream_id, 0)
        next_id = int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]) + 1
        now = time.time()
        outcomes: list[_Written | _Conflict] = []
        values: list[tuple[int, str, int, str, bytes, float]] = []
        # Per stream: (first id, created_at, updated_at, last seq, last type) of this commit.
        summaries: dict[str, tuple[int, float, float, int, str]] = {}
        refused = False
        for row in rows:
            current = last[row.stream_id]
            refused = (refused and row.follows) or (
                row.expected_seq is not None and row.expected_seq != current
            )
            if refused:
                outcomes.append(_Conflict(current))
                continue
            seq = last[row.stream_id] = current + 1
            outcomes.append(_Written(seq, next_id))
            values.append((next_id, row.stream_id, seq, row.event_type, row.data, now))
            first = summaries.get(row.stream_id)
            first_id = next_id if first is None else first[0]
            summaries[row.stream_id] = (first_id, now, now, seq, row.event_type)
            next_id += 1
        if values:
            conn.executemany(
                "INSERT INTO events (id, stream_id, seq, type, data, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
            conn.executemany(_UPSERT_SUMMARY, [(s, *v) for s, v in summaries.items()])
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return _Committed(outcomes, last, data_version, stale)


_UPSERT_SUMMARY = """
    INSERT INTO streams (stream_id, first_id, created_at, updated_at, last_seq, last_type)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (stream_id) DO UPDATE SET
        updated_at = excluded.updated_at,
        last_seq = excluded.last_seq,
        last_type = excluded.last_type
    WHERE excluded.last_seq > streams.last_seq
"""
"""A stream's summary after a commit: inserted with its first event, then kept current."""


# ---- the reader, on the I/O loop ------------------------------------------------------


class _Reader:
    """The read-only connection (aiosqlite, on the I/O loop) and the reads.

    One owner task holds the connection from open to close (see the module docstring).
    Only :meth:`close_soon` may be called from another thread.
    """

    def __init__(self, where: _Where, *, busy_timeout_ms: int) -> None:
        self.where = where
        self.busy_timeout_ms = busy_timeout_ms
        self.conn: aiosqlite.Connection | None = None
        self._owner: asyncio.Task[None] | None = None
        self._close_requested: asyncio.Future[None] | None = None
        self._closing = False

    # ---- lifecycle -----------------------------------------------------------------

    async def open(self) -> Failure | None:
        """Open the read connection (the writer made the file); ``None`` once open."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Failure | None] = loop.create_future()
        self._close_requested = loop.create_future()
        self._owner = loop.create_task(self._own(ready), name=f"store {self.where.path}")
        # Shielded: if the Store stops while opening, the owner still finishes and closes.
        return await asyncio.shield(ready)

    def close_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ask the owner task to close the connection (from any thread, never waits)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing is open
            loop.call_soon_threadsafe(self._request_close)

    def _request_close(self) -> None:
        self._closing = True
        waiter = self._close_requested
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _own(self, ready: asyncio.Future[Failure | None]) -> None:
        try:
            failure = await self._open()
        except asyncio.CancelledError:
            failure = self.where.failure(
                FailureKind.CANCELLED, "opening was cancelled (the system is stopping)"
            )
        except Exception as exc:  # noqa: BLE001 - the Store must hear of every failure
            failure = self.where.error(exc, "cannot open the database")
        if not ready.done():
            ready.set_result(failure)
        if failure is None and not self._closing and self._close_requested is not None:
            # Cancelled only by the loop's own shutdown: close all the same.
            with contextlib.suppress(asyncio.CancelledError):
                await self._close_requested
        if self.conn is not None:
            await _close_quietly(self.conn, self.where.path)
        self.conn = None

    async def _open(self) -> Failure | None:
        try:
            # Kept before it is awaited, so that a cancelled open still gets closed.
            self.conn = aiosqlite.connect(self.where.path, isolation_level=None)
            conn = await self.conn
            await conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            await conn.execute("PRAGMA query_only = ON")
        except (sqlite3.Error, OSError) as exc:
            return self.where.error(exc, "cannot open the database")
        return None

    # ---- reads ---------------------------------------------------------------------

    async def read(
        self, stream_id: str, after_seq: int, limit: int | None
    ) -> JournalEntries | Failure:
        """Read one stream's entries after ``after_seq``, in order."""
        conn = self.conn
        if conn is None:
            return self.where.failure(FailureKind.INTERNAL, "the database is not open")
        try:
            rows = await conn.execute_fetchall(
                "SELECT id, seq, type, data, created_at FROM events "
                "WHERE stream_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (stream_id, after_seq, -1 if limit is None else limit),
            )
        except sqlite3.Error as exc:
            return self.where.error(exc, f"reading stream {stream_id!r} failed")
        entries = tuple(
            JournalEntry(
                stream_id=stream_id,
                id=int(r[0]),
                seq=int(r[1]),
                event_type=str(r[2]),
                data=bytes(r[3]),
                created_at=float(r[4]),
            )
            for r in rows
        )
        return JournalEntries(stream_id=stream_id, entries=entries)

    async def query(self, request: StoreQuery) -> StoreRows | Failure:
        """Run one read-only query (the connection is ``query_only``: it cannot write)."""
        conn = self.conn
        if conn is None:
            return self.where.failure(FailureKind.INTERNAL, "the database is not open")
        try:
            rows = await conn.execute_fetchall(request.sql, request.params)
        except sqlite3.Error as exc:
            return self.where.error(exc, f"query failed ({request.sql.strip()[:80]!r})")
        return StoreRows(rows=tuple(tuple(row) for row in rows))

    async def streams(self, request: JournalStreams) -> JournalStreamList | Failure:
        """Summaries of the streams ``request`` selects, newest first."""
        conn = self.conn
        if conn is None:
            return self.where.failure(FailureKind.INTERNAL, "the database is not open")
        sql, params = _streams_query(request)
        try:
            rows = await conn.execute_fetchall(sql, params)
        except sqlite3.Error as exc:
            return self.where.error(exc, f"listing streams (prefix {request.prefix!r}) failed")
        infos = tuple(
            StreamInfo(
                stream_id=str(r[0]),
                created_at=float(r[1]),
                updated_at=float(r[2]),
                last_seq=int(r[3]),
                last_type=str(r[4]),
                first=None
                if len(r) == 5 or r[5] is None
                else JournalEntry(
                    stream_id=str(r[0]),
                    id=int(r[5]),
                    seq=int(r[6]),
                    event_type=str(r[7]),
                    data=bytes(r[8]),
                    created_at=float(r[9]),
                ),
            )
            for r in rows
        )
        return JournalStreamList(stream_infos=infos)


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (semicolons in strings and triggers too)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending.strip()
            pending = ""
    if pending.strip(" \t\r\n;"):
        yield pending.strip()


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _streams_query(request: JournalStreams) -> tuple[str, list[object]]:
    """The SELECT (and its parameters) that answers ``request`` from ``streams``."""
    columns = "s.stream_id, s.created_at, s.updated_at, s.last_seq, s.last_type"
    # With a LIMIT, walk the time index newest first and stop after ``limit`` matches
    # (the planner would otherwise take the prefix's range of the primary key and sort
    # all of it); without one, every match is read anyway and the range is cheaper.
    source = "streams AS s" if request.limit is None else "streams AS s INDEXED BY streams_newest"
    if request.include_first:
        columns += ", f.id, f.seq, f.type, f.data, f.created_at"
        source += " LEFT JOIN events AS f ON f.id = s.first_id"
    where: list[str] = []
    params: list[object] = []
    if request.prefix:
        # A range, not LIKE: '%' and '_' in the prefix are ordinary characters.
        where.append("s.stream_id >= ?")
        params.append(request.prefix)
        end = _prefix_end(request.prefix)
        if end is not None:
            where.append("s.stream_id < ?")
            params.append(end)
    if request.open_only:
        where.append(f"s.last_type NOT IN ({', '.join('?' * len(request.terminal_types))})")
        params.extend(request.terminal_types)
    sql = f"SELECT {columns} FROM {source}"  # noqa: S608 - only placeholders are interpolated
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY s.created_at DESC, s.first_id DESC LIMIT ?"
    params.append(-1 if request.limit is None else request.limit)
    return sql, params


def _prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (``None``: none is).

    SQLite compares text by its UTF-8 bytes, which order like the code points, so this is
    ``prefix`` with its last character incremented (dropping characters that cannot be).
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates are never stored: skip past them
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


async def _close_quietly(conn: aiosqlite.Connection, path: Path) -> None:
    """Close ``conn`` and wait until its worker thread has ended.

    Tolerates one cancellation (the loop shutting down): aiosqlite still stops the
    connection then. The wait matters because the worker thread hands its last results
    to the loop just before it ends, which fails once the loop is closed.
    """
    try:
        await conn.close()
    except asyncio.CancelledError:
        pass
    except Exception as exc:  # noqa: BLE001 - closing is best effort; the wait below is not
        _log.warning("closing the store failed", path=str(path), error=str(exc))
    thread = _worker_thread(conn)
    give_up = time.monotonic() + 30.0
    while thread is not None and thread.is_alive() and time.monotonic() < give_up:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.002)


def _worker_thread(conn: aiosqlite.Connection) -> threading.Thread | None:
    # aiosqlite < 0.21 made the connection itself the thread; later versions hold one.
    thread: object = conn if isinstance(conn, threading.Thread) else getattr(conn, "_thread", None)
    return thread if isinstance(thread, threading.Thread) else None


# ---- the actor -------------------------------------------------------------------------


_Served = JournalAppend | JournalRead | JournalStreams | StoreInsert | StoreQuery
"""The requests that wait for the database to be open."""


class Store(Actor[StoreRequest]):
    """The single writer of the database: group-commits journal appends, serves reads.

    Start it under a supervisor with :meth:`spec` and talk to it through a
    :class:`Journal`, or with the messages of :mod:`actors.store._messages` directly.

    Args:
        path: The database file; :func:`default_db_path` when ``None``.
        max_batch: The most appends one commit carries.
        synchronous: ``"FULL"`` (survives power loss) or ``"NORMAL"`` (survives a
            killed process only); see the module docstring.
        busy_timeout: Seconds to wait for the write lock held by another process.
        migrations: The schema scripts (the default is the system's own schema).

    Attributes:
        path: The database file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_batch: int = 1000,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout: float = 5.0,
        migrations: Sequence[str] = MIGRATIONS,
    ) -> None:
        super().__init__()
        if max_batch < 1:
            msg = f"Store(max_batch={max_batch!r}): must be at least 1"
            raise ValueError(msg)
        if synchronous not in ("FULL", "NORMAL"):
            msg = f"Store(synchronous={synchronous!r}): must be 'FULL' or 'NORMAL'"
            raise ValueError(msg)
        if not busy_timeout >= 0:
            msg = f"Store(busy_timeout={busy_timeout!r}): must not be negative"
            raise ValueError(msg)
        self.path = self.path_of(path)
        self.max_batch = max_batch
        where = _Where(self.path, self.name)
        busy_timeout_ms = round(busy_timeout * 1000)
        self._writer = _Writer(
            where,
            migrations=migrations,
            synchronous=synchronous,
            busy_timeout_ms=busy_timeout_ms,
            max_batch=max_batch,
        )
        self._reader = _Reader(where, busy_timeout_ms=busy_timeout_ms)
        # A commit in progress when the Store stops may wait this long for the lock.
        self._close_wait = busy_timeout + _CLOSE_GRACE
        self._open = False
        self._unusable: Failure | None = None
        self._early: list[tuple[_Served, Deferred[Any]]] = []

    @staticmethod
    def path_of(path: str | os.PathLike[str] | None = None) -> Path:
        """The file a Store given ``path`` uses: that path, else :func:`default_db_path`."""
        return Path(path if path is not None else default_db_path()).expanduser().absolute()

    @staticmethod
    def check(
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        busy_timeout: float = 5.0,
        migrations: Sequence[str] = MIGRATIONS,
    ) -> Path:
        """Open the database as a Store would, on the calling thread, and close it again.

        For those that must know the journal is usable before anything happens (the
        ``reactor`` command before a run's first step; an engine before its first run):
        the same opening (owner-only creation, write-ahead logging, migrations) that the
        Store's writer does, so what fails here would fail there, but as one error
        naming the file and the cause instead of a crashed actor.

        Args:
            path: The database file; :func:`default_db_path` when ``None``.
            create: Create it (and its directory) when it does not exist; when
                ``False``, a missing file is an error too.
            busy_timeout: Seconds to wait for a write lock held by another process.
            migrations: The schema scripts.

        Returns:
            The file's absolute path.

        Raises:
            StoreError: The path is a directory, not readable or writable, not a
                SQLite database, has a newer schema than this code knows, or cannot be
                opened for another reason (the failure's message says which).
        """
        file = Store.path_of(path)
        where = _Where(file, "store")
        problem = _unusable(file, create=create)
        if problem is not None:
            raise StoreError(where.failure(FailureKind.BAD_REQUEST, problem))
        writer = _Writer(
            where,
            migrations=migrations,
            synchronous="FULL",
            busy_timeout_ms=round(busy_timeout * 1000),
            max_batch=1,
        )
        try:
            failure = writer._open()
            if failure is None:
                failure = _readable(writer)
        except Exception as exc:  # noqa: BLE001 - every way it fails is reported the same way
            failure = where.error(exc, "cannot open the database")
        finally:
            conn, writer._conn = writer._conn, None
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        if failure is not None:
            raise StoreError(failure)
        return file

    @classmethod
    def spec(
        cls,
        path: str | os.PathLike[str] | None = None,
        name: str = "store",
        *,
        restart: Restart = Restart.PERMANENT,
        max_batch: int = 1000,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout: float = 5.0,
        migrations: Sequence[str] = MIGRATIONS,
    ) -> ChildSpec:
        """A :class:`~actors.ChildSpec` that starts a Store (see the class for the options).

        Args:
            path: The database file; :func:`default_db_path` when ``None``.
            name: The actor's name.
            restart: Its restart type under the supervisor.
            max_batch: The most appends one commit carries.
            synchronous: ``"FULL"`` or ``"NORMAL"``.
            busy_timeout: Seconds to wait for a write lock held elsewhere.
            migrations: The schema scripts.
        """
        return ChildSpec(
            name=name,
            actor=cls,
            kwargs={
                "path": path,
                "max_batch": max_batch,
                "synchronous": synchronous,
                "busy_timeout": busy_timeout,
                "migrations": tuple(migrations),
            },
            restart=restart,
        )

    # ---- lifecycle -----------------------------------------------------------------

    def started(self) -> None:
        """Start the writer, which opens the file (requests queue meanwhile)."""
        ref = self.self_ref

        def opened(outcome: Failure | None) -> None:
            ref.tell_if_alive(Callback(self._writer_opened, outcome, None, "store writer open"))

        def died(failure: Failure) -> None:
            ref.tell_if_alive(Callback(_raise, StoreError(failure), None, "store writer died"))

        self._writer.start(opened, died)

    def stopped(self) -> None:
        """Close the writer (after its commit in progress), then the read connection."""
        self._writer.close(self._close_wait)
        self._reader.close_soon(self.runtime.bridge.loop)

    def _writer_opened(self, outcome: Failure | None) -> None:
        if outcome is not None:
            self._opened(outcome)
            return
        self.pipe_to_self(self._reader.open(), self._opened, name="store open")

    def _opened(self, outcome: Failure | None) -> None:
        early, self._early = self._early, []
        if outcome is not None:
            # The file cannot be used (a directory, not a database, a newer schema,
            # no permission): no restart would change that, and a crash would only
            # repeat it, a traceback each time, until the supervisor gave up and took
            # the system down. Say it once, and answer every request with it.
            self._unusable = outcome
            self.log.error("store cannot open its database", error=outcome.message)
            for _, reply in early:
                reply.send(outcome)
            return
        self._open = True
        for message, reply in early:
            self._serve(message, reply)

    # ---- messages ------------------------------------------------------------------

    def receive(self, message: StoreRequest) -> object:
        """Hand appends to the writer; start reads; answer stats."""
        match message:
            case JournalAppend() | JournalRead() | JournalStreams() | StoreInsert() | StoreQuery():
                problem = _check(message)
                if problem is not None:
                    return Failure(
                        kind=FailureKind.BAD_REQUEST,
                        message=f"{type(message).__name__}: {problem}",
                        source=self.name,
                    )
                if self._unusable is not None:
                    return self._unusable
                reply = self.defer_reply()
                if self._open:
                    self._serve(message, reply)
                else:
                    self._early.append((message, reply))
                return None
            case StoreStatsQuery():
                return self._stats()
            case _:
                assert_never(message)

    def _serve(self, message: _Served, reply: Deferred[Any]) -> None:
        match message:
            case JournalRead():
                if self._writer.unsettled(message.stream_id):
                    # Appends to this stream are queued or being committed (by anyone):
                    # the read waits for their answers, so that it sees them.
                    ref = self.self_ref

                    def read(_: object) -> None:
                        self._read(message, reply)

                    self._writer.after_queued(
                        lambda: ref.tell_if_alive(Callback(read, None, None, "store read"))
                    )
                    return
                self._read(message, reply)
            case JournalStreams():
                self.pipe_to_self(
                    self._reader.streams(message),
                    reply.send,
                    name="store streams",
                )
            case StoreQuery():
                self.pipe_to_self(self._reader.query(message), reply.send, name="store query")
            case JournalAppend() | StoreInsert():
                # Accepted: the writer commits it and answers, even if the Store stops
                # meanwhile (see "Closing" in the module docstring).
                reply.detach()
                self._writer.submit(_Pending(message, reply))
            case _:
                assert_never(message)

    def _read(self, message: JournalRead, reply: Deferred[Any]) -> None:
        self.pipe_to_self(
            self._reader.read(message.stream_id, message.after_seq, message.limit),
            reply.send,
            name="store read",
        )

    def _stats(self) -> StoreStats:
        writer = self._writer
        return StoreStats(
            path=str(self.path),
            open=self._open,
            commits=writer.commits,
            failed_commits=writer.failed_commits,
            appends=writer.appends,
            conflicts=writer.conflicts,
            largest_batch=writer.largest_batch,
            pending=writer.queued + sum(isinstance(m, JournalAppend) for m, _ in self._early),
            in_flight=writer.in_flight,
        )


def _raise(error: BaseException) -> None:
    raise error


def _unusable(file: Path, *, create: bool) -> str | None:
    """What makes ``file`` unusable before SQLite is asked, in words (``None``: nothing)."""
    if file.is_dir():
        return f"it is a directory, not a database file (point {DB_ENV_VAR} or --db at a file)"
    if not file.exists():
        return None if create else "there is no such file"
    if not os.access(file, os.R_OK):
        return "the file cannot be read (permission denied)"
    if not os.access(file, os.W_OK):
        return "the file is read-only (the journal is written to it, so it must be writable)"
    return None


def _readable(writer: _Writer) -> Failure | None:
    """Read the journal's tables once, as the Store's reads will."""
    conn = writer._conn
    assert conn is not None
    try:
        conn.execute("SELECT stream_id FROM streams LIMIT 1").fetchall()
        conn.execute("SELECT id FROM events LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        return writer.where.error(exc, "cannot read the journal")
    return None


def _check(message: _Served) -> str | None:
    """What is wrong with a request's fields, or ``None``."""
    match message:
        case JournalAppend() | JournalRead():
            return _check_one_stream(message)
        case JournalStreams():
            return _check_streams(message)
        case StoreInsert():
            return _check_insert(message)
        case StoreQuery():
            return None if message.sql.strip() else "sql must not be empty"
        case _:
            assert_never(message)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_insert(message: StoreInsert) -> str | None:
    names = (message.table, *message.columns)
    bad = next((n for n in names if not _IDENTIFIER.fullmatch(n)), None)
    if bad is not None:
        return f"{bad!r} is not a plain identifier (table {message.table!r})"
    if not message.columns:
        return f"no columns given for table {message.table!r}"
    width = len(message.columns)
    for number, row in enumerate(message.rows):
        if len(row) != width:
            return f"rows[{number}] has {len(row)} values for {width} columns ({message.table!r})"
    return None


def _check_one_stream(message: JournalAppend | JournalRead) -> str | None:
    if not message.stream_id:
        return "stream_id must not be empty"
    if isinstance(message, JournalAppend):
        if not message.event_type or any(not e.event_type for e in message.more):
            return f"event_type must not be empty (stream {message.stream_id!r})"
        if message.expected_seq is not None and message.expected_seq < 0:
            return f"expected_seq={message.expected_seq} must not be negative"
    elif message.after_seq < 0:
        return f"after_seq={message.after_seq} must not be negative"
    elif message.limit is not None and message.limit < 0:
        return f"limit={message.limit} must not be negative"
    return None


def _check_streams(message: JournalStreams) -> str | None:
    if message.limit is not None and message.limit < 0:
        return f"limit={message.limit} must not be negative"
    if message.open_only and not message.terminal_types:
        return "open_only needs terminal_types (the event types that end a stream)"
    return None


# ---- the client ----------------------------------------------------------------------


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    return msgspec.json.encode(data)


class Journal:
    """A typed client of a :class:`Store`'s journal, for sync and asyncio code.

    ``data`` may be bytes (stored as they are: JSON by convention) or any value msgspec
    can encode (a Struct, a dict, ...), which is stored as its JSON encoding. Failures
    raise :class:`~actors.AskError` (``bad_request`` for an ``expected_seq`` conflict).

    Inside an actor, where nothing may block, build the request with
    :meth:`append_message` and send it with ``self.ask(journal.ref, request, then)``.

    Args:
        ref: The Store's ref (``system.lookup("store")``).
        timeout: Seconds each ask waits; the system default when ``None``.

    Attributes:
        ref: The Store's ref.
        timeout: Seconds each ask waits (``None``: the system default).
    """

    def __init__(self, ref: Ref[Any], *, timeout: float | None = None) -> None:
        self.ref = ref
        self.timeout = timeout

    def append_message(
        self,
        stream_id: str,
        data: object,
        *,
        event_type: str | None = None,
        expected_seq: int | None = None,
    ) -> JournalAppend:
        """The :class:`JournalAppend` request for ``data``, to send with ``Actor.ask``.

        Args:
            stream_id: The stream to append to.
            data: Bytes (stored as they are) or a value msgspec encodes as JSON.
            event_type: What happened; by default the tag of ``data`` when it is a
                message (its class name), which is then required for anything else.
            expected_seq: See :class:`JournalAppend`.

        Raises:
            ValueError: No ``event_type`` was given and ``data`` is not a message.
        """
        if event_type is None:
            tag = getattr(getattr(type(data), "__struct_config__", None), "tag", None)
            if not isinstance(tag, str):
                msg = (
                    f"Journal.append_message({stream_id!r}, <{type(data).__name__}>): "
                    "pass event_type= (only a tagged message names its own type)"
                )
                raise ValueError(msg)
            event_type = tag
        return _append(stream_id, event_type, data, expected_seq)

    def append(
        self, stream_id: str, event_type: str, data: object, *, expected_seq: int | None = None
    ) -> JournalAppended:
        """Append one event and wait until it is committed (from a plain thread)."""
        request = _append(stream_id, event_type, data, expected_seq)
        return self.ref.ask(request, timeout=self.timeout)

    async def append_async(
        self, stream_id: str, event_type: str, data: object, *, expected_seq: int | None = None
    ) -> JournalAppended:
        """Append one event and await its commit (from asyncio code)."""
        request = _append(stream_id, event_type, data, expected_seq)
        return await self.ref.ask_async(request, timeout=self.timeout)

    def read(
        self, stream_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[JournalEntry]:
        """The stream's entries after ``after_seq`` (at most ``limit``), in order."""
        request = JournalRead(stream_id=stream_id, after_seq=after_seq, limit=limit)
        return list(self.ref.ask(request, timeout=self.timeout).entries)

    async def read_async(
        self, stream_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[JournalEntry]:
        """:meth:`read` for asyncio code."""
        request = JournalRead(stream_id=stream_id, after_seq=after_seq, limit=limit)
        return list((await self.ref.ask_async(request, timeout=self.timeout)).entries)

    def streams(
        self,
        prefix: str = "",
        *,
        open_only: bool = False,
        terminal_types: Collection[str] = (),
        limit: int | None = None,
        include_first: bool = True,
    ) -> list[StreamInfo]:
        """The streams whose id starts with ``prefix``, newest first (see :class:`JournalStreams`).

        Args:
            prefix: Matched literally; ``""`` lists every stream.
            open_only: Only streams whose last event type is not in ``terminal_types``.
            terminal_types: The event types that end a stream (required by ``open_only``).
            limit: At most this many (the newest); ``None`` for all.
            include_first: Whether each summary carries the stream's first event.
        """
        request = _streams(prefix, open_only, terminal_types, limit, include_first)
        return list(self.ref.ask(request, timeout=self.timeout).stream_infos)

    async def streams_async(
        self,
        prefix: str = "",
        *,
        open_only: bool = False,
        terminal_types: Collection[str] = (),
        limit: int | None = None,
        include_first: bool = True,
    ) -> list[StreamInfo]:
        """:meth:`streams` for asyncio code."""
        request = _streams(prefix, open_only, terminal_types, limit, include_first)
        return list((await self.ref.ask_async(request, timeout=self.timeout)).stream_infos)

    def query(self, sql: str, *params: SqlValue) -> list[tuple[SqlValue, ...]]:
        """Rows of one read-only query on the Store's read connection (from a plain thread)."""
        request = StoreQuery(sql=sql, params=params)
        return list(self.ref.ask(request, timeout=self.timeout).rows)

    async def query_async(self, sql: str, *params: SqlValue) -> list[tuple[SqlValue, ...]]:
        """:meth:`query` for asyncio code."""
        request = StoreQuery(sql=sql, params=params)
        return list((await self.ref.ask_async(request, timeout=self.timeout)).rows)

    def stats(self) -> StoreStats:
        """The Store's counters."""
        return self.ref.ask(StoreStatsQuery(), timeout=self.timeout)

    async def stats_async(self) -> StoreStats:
        """:meth:`stats` for asyncio code."""
        return await self.ref.ask_async(StoreStatsQuery(), timeout=self.timeout)


def _append(
    stream_id: str, event_type: str, data: object, expected_seq: int | None
) -> JournalAppend:
    return JournalAppend(
        stream_id=stream_id,
        event_type=event_type,
        data=_as_bytes(data),
        expected_seq=expected_seq,
    )


def _streams(
    prefix: str,
    open_only: bool,
    terminal_types: Collection[str],
    limit: int | None,
    include_first: bool,
) -> JournalStreams:
    if isinstance(terminal_types, str):
        msg = f"terminal_types={terminal_types!r}: pass a collection of event types, not a str"
        raise TypeError(msg)
    return JournalStreams(
        prefix=prefix,
        open_only=open_only,
        terminal_types=tuple(terminal_types),
        limit=limit,
        include_first=include_first,
    )
