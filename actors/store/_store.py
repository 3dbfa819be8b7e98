"""The Store: one SQLite file, one writer actor, group commits, an append-only journal.

Everything the system persists lives in one SQLite database, owned by one
:class:`Store` actor. The design, in the order a write goes through it:

**Single writer, group commit.** Appends are requests to the Store. While one commit is
running on the I/O loop, further appends only queue up in the actor; when the commit
finishes, every append in it is answered (with its sequence number) and the next commit
starts with everything that queued meanwhile, at most ``max_batch`` rows. Under load a
commit therefore carries many appends for the price of one transaction and one fsync;
with a single writer, the per-stream sequence numbers are assigned in mailbox order and
never collide. (The Store caches each stream's last ``seq``, reading it from the file the
first time a stream is touched, inside the commit's transaction. Should another process
write the same stream anyway, ``UNIQUE(stream_id, seq)`` fails that commit instead of
forking the stream, and the cache is read again.) A commit that fails answers every
append it carried with a typed :class:`~actors.Failure` naming the file and the SQLite
error; nothing raises across threads. An append whose caller gave up (its deadline
passed) before its commit started is not written.

**Never blocking.** The Store's handlers only queue work: the database is used through
aiosqlite on the system's I/O loop, via :meth:`~actors.Actor.pipe_to_self`, and the
outcome comes back to the actor as a message. Opening happens the same way, in
``started()``: requests that arrive before the file is open wait in the actor and are
served in order once it is; if it cannot be opened they are answered with a failure and
the actor crashes, so its supervisor knows.

**Two connections.** Writes go through the writer connection, each commit in an explicit
``BEGIN IMMEDIATE`` transaction (the write lock is taken at the start, so a commit never
fails half-way for want of it; ``busy_timeout`` bounds the wait if another process holds
it). Reads go through a second, read-only (``query_only``) connection: in WAL mode a
reader sees the last committed state and never waits behind the writer.

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
that has shipped.

**Listing streams.** A ``streams`` table (migration 2) holds one summary row per stream
(its first event's id and time, its last ``seq``, type and time), kept by a trigger on
``events`` within the same transaction as the append, so :class:`JournalStreams` (e.g.
"the runs, newest first", or "the runs whose last event is not terminal") is answered
from it on the read connection without scanning the events.

**Where the file is.** ``$REACTOR_DB`` if set, else ``reactor.db`` in the user's data
directory (:func:`default_db_path`); missing parent directories are created.

**Closing.** The connections belong to one task on the I/O loop from open to close.
When the actor stops (or crashes) it asks that task to close them, without waiting; if
the system stops the loop first, the loop's own shutdown cancels the task, which closes
the connections all the same, and the loop waits for it (for aiosqlite's worker threads
to finish), so a clean ``System.stop()`` leaves nothing open.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, assert_never

import aiosqlite
import msgspec
import platformdirs
import structlog

from actors import Actor, ActorError, ChildSpec, Deferred, Failure, FailureKind, Ref, Restart
from actors.store._messages import (
    JournalAppend,
    JournalAppended,
    JournalEntries,
    JournalEntry,
    JournalRead,
    JournalStreamList,
    JournalStreams,
    StoreRequest,
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
)
"""The schema, as ordered migration scripts: the database's ``user_version`` counts
how many have been applied. Append new scripts; never change one that has shipped."""

_CACHE_LIMIT = 100_000
"""Streams whose last sequence number the Store remembers (others are read from disk)."""
_IN_CHUNK = 500
"""Stream ids per ``IN (...)`` lookup, well under SQLite's limit on parameters."""


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
    """The database could not be opened (the Store crashes with this).

    Attributes:
        failure: The typed failure the waiting requests were answered with.
    """

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


# ---- the database, on the I/O loop ----------------------------------------------------


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


class _Database:
    """The two connections and the SQL; every coroutine here runs on the I/O loop.

    One owner task holds the connections from open to close (see the module
    docstring). Only :meth:`close_soon` may be called from another thread.
    """

    def __init__(
        self,
        path: Path,
        *,
        source: str,
        migrations: Sequence[str],
        synchronous: str,
        busy_timeout_ms: int,
    ) -> None:
        self.path = path
        self.source = source
        self.migrations = tuple(migrations)
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.writer: aiosqlite.Connection | None = None
        self.reader: aiosqlite.Connection | None = None
        self._owner: asyncio.Task[None] | None = None
        self._close_requested: asyncio.Future[None] | None = None
        self._closing = False

    # ---- lifecycle -----------------------------------------------------------------

    async def open(self) -> Failure | None:
        """Open (and migrate) the database; ``None`` once open, else why not."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Failure | None] = loop.create_future()
        self._close_requested = loop.create_future()
        self._owner = loop.create_task(self._own(ready), name=f"store {self.path}")
        # Shielded: if the Store stops while opening, the owner still finishes and closes.
        return await asyncio.shield(ready)

    def close_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ask the owner task to close the connections (from any thread, never waits)."""
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
            failure = self._failure(
                FailureKind.CANCELLED, "opening was cancelled (the system is stopping)"
            )
        except Exception as exc:  # noqa: BLE001 - the Store must hear of every failure
            failure = self._error(exc, "cannot open the database")
        if not ready.done():
            ready.set_result(failure)
        if failure is None and not self._closing and self._close_requested is not None:
            # Cancelled only by the loop's own shutdown: close all the same.
            with contextlib.suppress(asyncio.CancelledError):
                await self._close_requested
        for conn in (self.reader, self.writer):
            if conn is not None:
                await _close_quietly(conn, self.path)
        self.reader = self.writer = None

    async def _open(self) -> Failure | None:
        try:
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
            # Kept before it is awaited, so that a cancelled open still gets closed.
            self.writer = aiosqlite.connect(self.path, isolation_level=None)
            writer = await self.writer
            await writer.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            mode = await _scalar(writer, "PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                return self._failure(
                    FailureKind.INTERNAL,
                    f"cannot use write-ahead logging (journal_mode stays {mode!r})",
                )
            await writer.execute(f"PRAGMA synchronous = {self.synchronous}")
            failure = await self._migrate(writer)
            if failure is not None:
                return failure
            self.reader = aiosqlite.connect(self.path, isolation_level=None)
            reader = await self.reader
            await reader.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            await reader.execute("PRAGMA query_only = ON")
        except (sqlite3.Error, OSError) as exc:
            return self._error(exc, "cannot open the database")
        _log.info("store open", path=str(self.path), schema_version=len(self.migrations))
        return None

    async def _migrate(self, conn: aiosqlite.Connection) -> Failure | None:
        known = len(self.migrations)
        current = int(await _scalar(conn, "PRAGMA user_version"))
        if current == known:
            return None
        if current < known:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                # Again under the write lock: another process may have migrated meanwhile.
                current = int(await _scalar(conn, "PRAGMA user_version"))
                for version in range(current, known):
                    for statement in _statements(self.migrations[version]):
                        await conn.execute(statement)
                if current < known:
                    await conn.execute(f"PRAGMA user_version = {known}")
                await conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    await conn.execute("ROLLBACK")
                return self._error(exc, f"migrating the schema from version {current} failed")
            if current < known:
                _log.info(
                    "store schema migrated", path=str(self.path), from_version=current, to=known
                )
        if current > known:
            return self._failure(
                FailureKind.INTERNAL,
                f"the database has schema version {current}, newer than this code knows "
                f"({known}); it was written by a newer reactor-swarm (upgrade, or set "
                f"{DB_ENV_VAR} to another file)",
                schema_version=str(current),
                known_version=str(known),
            )
        return None

    # ---- work ----------------------------------------------------------------------

    async def commit(self, rows: list[_Row], known: dict[str, int]) -> _Committed | Failure:
        """Write one batch in one transaction; ``known`` holds cached last seqs.

        The transaction runs as one call on aiosqlite's own thread (its ``_execute``,
        given the ``sqlite3`` connection it owns): one hop there and back instead of
        one per statement, which measured 10-15% of a reactor step's overhead.
        """
        writer = self.writer
        if writer is None:
            return self._failure(FailureKind.INTERNAL, "the database is not open")
        try:
            committed: _Committed = await writer._execute(  # type: ignore[no-untyped-call]
                _commit_rows, writer._conn, rows, known
            )
        except Exception as exc:  # noqa: BLE001 - every append of the batch gets the failure
            return self._error(exc, f"commit of {len(rows)} append(s) failed")
        return committed

    async def read(
        self, stream_id: str, after_seq: int, limit: int | None
    ) -> JournalEntries | Failure:
        """Read one stream's entries after ``after_seq``, in order."""
        reader = self.reader
        if reader is None:
            return self._failure(FailureKind.INTERNAL, "the database is not open")
        try:
            rows = await reader.execute_fetchall(
                "SELECT id, seq, type, data, created_at FROM events "
                "WHERE stream_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (stream_id, after_seq, -1 if limit is None else limit),
            )
        except sqlite3.Error as exc:
            return self._error(exc, f"reading stream {stream_id!r} failed")
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

    async def streams(self, request: JournalStreams) -> JournalStreamList | Failure:
        """Summaries of the streams ``request`` selects, newest first."""
        reader = self.reader
        if reader is None:
            return self._failure(FailureKind.INTERNAL, "the database is not open")
        sql, params = _streams_query(request)
        try:
            rows = await reader.execute_fetchall(sql, params)
        except sqlite3.Error as exc:
            return self._error(exc, f"listing streams (prefix {request.prefix!r}) failed")
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

    # ---- failures ------------------------------------------------------------------

    def _failure(self, kind: FailureKind, what: str, **details: str) -> Failure:
        return Failure(
            kind=kind,
            message=f"store {self.path}: {what}",
            source=self.source,
            details={"path": str(self.path), **details},
        )

    def _error(self, exc: Exception, what: str) -> Failure:
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
        return self._failure(kind, f"{what}: {type(exc).__name__}: {exc}", **details)


def _commit_rows(conn: sqlite3.Connection, rows: list[_Row], known: dict[str, int]) -> _Committed:
    """The group commit's transaction, on the writer connection's own thread."""
    conn.execute("BEGIN IMMEDIATE")
    try:
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
            next_id += 1
        if values:
            conn.executemany(
                "INSERT INTO events (id, stream_id, seq, type, data, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return _Committed(outcomes, last)


async def _scalar(conn: aiosqlite.Connection, sql: str) -> Any:
    rows = list(await conn.execute_fetchall(sql))
    return rows[0][0]


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


class _Flush:
    """Sent by the Store to itself: start a commit with what has queued up."""

    __slots__ = ()


_Served = JournalAppend | JournalRead | JournalStreams
"""The requests that wait for the database to be open."""


class _Pending(NamedTuple):
    message: JournalAppend
    reply: Deferred[Any]


class Store(Actor[StoreRequest | _Flush]):
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
        self._db = _Database(
            self.path,
            source=self.name,
            migrations=migrations,
            synchronous=synchronous,
            busy_timeout_ms=round(busy_timeout * 1000),
        )
        self._open = False
        self._early: list[tuple[_Served, Deferred[Any]]] = []
        self._pending: collections.deque[_Pending] = collections.deque()
        self._in_flight = 0
        self._flush_sent = False
        self._last_seq: dict[str, int] = {}
        self._commits = 0
        self._failed_commits = 0
        self._appends = 0
        self._conflicts = 0
        self._largest_batch = 0

    @staticmethod
    def path_of(path: str | os.PathLike[str] | None = None) -> Path:
        """The file a Store given ``path`` uses: that path, else :func:`default_db_path`."""
        return Path(path if path is not None else default_db_path()).expanduser().absolute()

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
        """Start opening the database on the I/O loop (requests queue meanwhile)."""
        self.pipe_to_self(self._db.open(), self._opened, name="store open")

    def stopped(self) -> None:
        """Have the connections closed on the I/O loop (pending asks are already failed)."""
        self._db.close_soon(self.runtime.bridge.loop)

    def _opened(self, outcome: Failure | None) -> None:
        early, self._early = self._early, []
        if outcome is not None:
            for _, reply in early:
                reply.send(outcome)
            raise StoreError(outcome)
        self._open = True
        for message, reply in early:
            self._serve(message, reply)

    # ---- messages ------------------------------------------------------------------

    def receive(self, message: StoreRequest | _Flush) -> object:
        """Queue appends for the next group commit; start reads; answer stats."""
        match message:
            case JournalAppend() | JournalRead() | JournalStreams():
                problem = _check(message)
                if problem is not None:
                    return Failure(
                        kind=FailureKind.BAD_REQUEST,
                        message=f"{type(message).__name__}: {problem}",
                        source=self.name,
                    )
                reply = self.defer_reply()
                if self._open:
                    self._serve(message, reply)
                else:
                    self._early.append((message, reply))
                return None
            case StoreStatsQuery():
                return self._stats()
            case _Flush():
                self._flush_sent = False
                self._commit_next()
                return None
            case _:
                assert_never(message)

    def _serve(self, message: _Served, reply: Deferred[Any]) -> None:
        match message:
            case JournalRead():
                self.pipe_to_self(
                    self._db.read(message.stream_id, message.after_seq, message.limit),
                    lambda outcome: _answer(reply, outcome),
                    name="store read",
                )
            case JournalStreams():
                self.pipe_to_self(
                    self._db.streams(message),
                    lambda outcome: _answer(reply, outcome),
                    name="store streams",
                )
            case JournalAppend():
                self._pending.append(_Pending(message, reply))
                if not self._in_flight and not self._flush_sent:
                    # Behind whatever is already in the mailbox, so that it joins this commit.
                    self._flush_sent = True
                    self.actor_ref.tell(_Flush())
            case _:
                assert_never(message)

    # ---- group commit --------------------------------------------------------------

    def _commit_next(self) -> None:
        if self._in_flight or not self._pending:
            return
        batch: list[_Pending] = []
        while self._pending and len(batch) < self.max_batch:
            item = self._pending.popleft()
            if item.reply.answered:
                # Its caller gave up (the deadline passed): do not write it. Sending only
                # releases the reply slot; the caller already has its timeout failure.
                item.reply.fail(FailureKind.TIMEOUT, "deadline passed before the commit")
                continue
            batch.append(item)
        if not batch:
            return
        rows: list[_Row] = []
        for message, _ in batch:
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
        known = {
            r.stream_id: self._last_seq[r.stream_id] for r in rows if r.stream_id in self._last_seq
        }
        self._in_flight = len(batch)
        self.pipe_to_self(
            self._db.commit(rows, known),
            lambda outcome: self._committed(batch, outcome),
            name="store commit",
        )

    def _committed(self, batch: list[_Pending], outcome: _Committed | Failure) -> None:
        self._in_flight = 0
        if isinstance(outcome, Failure):
            self._failed_commits += 1
            for message, _ in batch:  # the disk is the truth; read it again next time
                self._last_seq.pop(message.stream_id, None)
            self.log.warning("store commit failed", appends=len(batch), error=outcome.message)
            for _, reply in batch:
                reply.send(outcome)
        else:
            self._commits += 1
            self._largest_batch = max(self._largest_batch, len(batch))
            self._remember(outcome.last_seqs)
            results = iter(outcome.outcomes)
            for message, reply in batch:
                written = [next(results) for _ in range(1 + len(message.more))]
                conflict = next((r for r in written if isinstance(r, _Conflict)), None)
                last = written[-1]
                if conflict is not None:
                    self._conflicts += 1
                    reply.send(self._conflict(message, conflict.last_seq))
                elif isinstance(last, _Written):
                    self._appends += len(written)
                    reply.send(
                        JournalAppended(stream_id=message.stream_id, seq=last.seq, id=last.id)
                    )
        self._commit_next()

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
            source=self.name,
            details={
                "stream_id": message.stream_id,
                "expected_seq": str(message.expected_seq),
                "actual_seq": str(last_seq),
            },
        )

    def _stats(self) -> StoreStats:
        return StoreStats(
            path=str(self.path),
            open=self._open,
            commits=self._commits,
            failed_commits=self._failed_commits,
            appends=self._appends,
            conflicts=self._conflicts,
            largest_batch=self._largest_batch,
            pending=len(self._pending) + sum(isinstance(m, JournalAppend) for m, _ in self._early),
            in_flight=self._in_flight,
        )


def _check(message: _Served) -> str | None:
    """What is wrong with a request's fields, or ``None``."""
    match message:
        case JournalAppend() | JournalRead():
            return _check_one_stream(message)
        case JournalStreams():
            return _check_streams(message)
        case _:
            assert_never(message)


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


def _answer(reply: Deferred[Any], outcome: object) -> None:
    reply.send(outcome)


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
