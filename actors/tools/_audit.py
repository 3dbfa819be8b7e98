"""The audit log: every tool call, who made it, what was decided, and how it went.

Records go to the Store's journal, on the stream ``tool-audit`` (event type
``ToolAudited``), so they share the Store's group commits and durability; a migration
indexes that stream by run and by tool and time (partial expression indexes over the
events table, so no other stream pays for them). An :class:`AuditSink` keeps at most
one append in flight: the records made while it commits go together in the next one
(one :class:`~actors.store.JournalAppend` with ``more``), which is what makes tens of
thousands of records a second affordable, and a record costs a tool call little more
than its encoding.

Arguments are written with secret fields redacted: the fields a tool marks secret
(``SecretStr``, or ``Field(json_schema_extra={"secret": True})``) and any key that
looks like a credential (``password``, ``token``, ``api_key``, ``secret``,
``authorization``), at any depth.

Reading (:func:`query_audit`, ``reactor tools audit``) and pruning (:func:`prune_audit`,
the ``retention_s`` of a sink) open the database file themselves: reads on a read-only
connection, which in WAL mode never waits behind the Store's writer; pruning deletes old
rows of the ``tool-audit`` stream only, in its own short transaction (the Store's writer
then finds the stream's last sequence number as usual).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import msgspec
import structlog

from actors import AskError, FailureKind, Message, Ref
from actors.store import JournalAppend, JournalEvent

__all__ = [
    "AUDIT_STREAM",
    "AuditRecord",
    "AuditSink",
    "prune_audit",
    "query_audit",
    "redact",
]

_log = structlog.get_logger("actors.tools.audit")

AUDIT_STREAM = "tool-audit"
"""The journal stream audit records are appended to."""

_EVENT = "ToolAudited"
_TRIES = 3
REDACTED = "[redacted]"
_SECRET_KEYS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "credential",
)


class AuditRecord(Message, frozen=True, kw_only=True):
    """One tool call, as the audit log keeps it.

    Attributes:
        at: When the call was decided (Unix time).
        run_id: The run ("" outside a run).
        reactor: The reactor.
        step: The step.
        identity: Who called.
        tool: The tool.
        call_id: The model's id for the call.
        arguments: The arguments, secret fields redacted.
        decision: ``allowed``, ``denied``, ``approved``, ``edited``, ``rejected`` or ``pending``.
        decided_by: Who approved, edited or rejected it; the rule that denied it.
        outcome: The call's status (``ok``, ``invalid_arguments``, ``permission_denied``, ...).
        duration_s: Wall time of the call itself.
        error: The error, when it failed.
    """

    at: float
    run_id: str = ""
    reactor: str = ""
    step: str = ""
    identity: str = ""
    tool: str
    call_id: str = ""
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    decision: str = "allowed"
    decided_by: str = ""
    outcome: str = "ok"
    duration_s: float = 0.0
    error: str = ""


def redact(arguments: Mapping[str, Any], secret: Collection[str] = ()) -> dict[str, Any]:
    """``arguments`` with the ``secret`` fields and credential-like keys replaced, at any depth."""
    return {k: _redact_value(k, v, secret) for k, v in arguments.items()}


def _redact_value(key: str, value: Any, secret: Collection[str]) -> Any:
    lowered = key.lower()
    if key in secret or any(s in lowered for s in _SECRET_KEYS):
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v, ()) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value("", v, ()) for v in value]
    if hasattr(value, "get_secret_value"):
        return REDACTED
    return value


_encode = msgspec.json.Encoder().encode


class AuditSink:
    """Batches audit records into journal appends to the Store (call it on the I/O loop).

    Args:
        store: The Store's ref; ``None`` keeps records in memory only (``records``).
        batch: The most records one append carries.
        retention_s: Prune records older than this (``None``: keep them all) when the
            sink starts and every ``prune_every_s`` after that.
        db_path: The database file, for pruning (the Store's ``path``).
        prune_every_s: Seconds between prunes.

    Attributes:
        records: The last records written when there is no store (tests, benchmarks).
        written: Records the Store acknowledged.
        failed: Records whose append failed (logged).
    """

    def __init__(
        self,
        store: Ref[Any] | None,
        *,
        batch: int = 1000,
        retention_s: float | None = None,
        db_path: str | Path | None = None,
        prune_every_s: float = 3600.0,
    ) -> None:
        if retention_s is not None and not retention_s > 0:
            msg = f"AuditSink(retention_s={retention_s!r}): must be positive or None"
            raise ValueError(msg)
        self.store = store
        self.batch = batch
        self.retention_s = retention_s
        self.db_path = Path(db_path) if db_path is not None else None
        self.prune_every_s = prune_every_s
        self.records: list[AuditRecord] = []
        self.written = 0
        self.failed = 0
        self._buffer: list[bytes] = []
        self._scheduled = False
        self._inflight: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self._pruning: asyncio.Task[int] | None = None

    def record(self, record: AuditRecord) -> None:
        """Queue one record; it is appended with the others queued meanwhile.

        At most one append is in flight: records made while it commits wait and go
        together in the next one (a group commit of audit records), so a busy runner
        costs one append per commit, not one per call.
        """
        if self.store is None:
            self.records.append(record)
            return
        self._buffer.append(_encode(record))
        if self._inflight is None and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._inflight is not None or not self._buffer or self.store is None:
            return
        buffer, self._buffer = self._buffer[: self.batch], self._buffer[self.batch :]
        request = JournalAppend(
            stream_id=AUDIT_STREAM,
            event_type=_EVENT,
            data=buffer[0],
            more=tuple(JournalEvent(event_type=_EVENT, data=d) for d in buffer[1:]),
        )
        task = asyncio.get_running_loop().create_task(self._append(request, len(buffer)))
        self._inflight = task
        task.add_done_callback(self._appended)

    def _appended(self, _: asyncio.Task[None]) -> None:
        self._inflight = None
        self._maybe_prune()  # after a commit: what it wrote is on disk to be judged
        if self._buffer:
            self._flush()

    async def flush(self) -> None:
        """Append what is queued and wait until every append so far is answered."""
        while self._inflight is not None or self._buffer:
            if self._inflight is None:
                self._flush()
            task = self._inflight
            if task is not None:
                await asyncio.shield(task)
                await asyncio.sleep(0)  # let its done callback run (it starts the next)
        if self._pruning is not None:
            await asyncio.shield(self._pruning)

    async def _append(self, request: JournalAppend, count: int) -> None:
        """Append, trying again when the group commit failed.

        A group commit fails all its appends when one of them fails (a stale sequence
        number of another stream, written by another process): this one may be innocent.
        """
        assert self.store is not None
        for attempt in range(_TRIES):
            try:
                await self.store.ask_async(request)
            except AskError as exc:
                if exc.failure.kind is FailureKind.SERVER_ERROR and attempt < _TRIES - 1:
                    continue
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - logged, never raised into a tool call
                error = str(exc)
            else:
                self.written += count
                return
            self.failed += count
            _log.warning("audit records not written", count=count, error=error)
            return

    def _maybe_prune(self) -> None:
        if self.retention_s is None or self.db_path is None:
            return
        now = time.time()
        if now - self._last_prune < self.prune_every_s:
            return
        self._last_prune = now
        cutoff = now - self.retention_s
        loop = asyncio.get_running_loop()
        task = loop.create_task(asyncio.to_thread(prune_audit, self.db_path, before=cutoff))
        task.add_done_callback(_log_prune)
        self._pruning = task


def _log_prune(task: asyncio.Task[int]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        _log.warning("pruning the audit log failed", error=str(exc))


def _connect(path: str | Path, *, read_only: bool) -> sqlite3.Connection:
    target = Path(path).expanduser().absolute()
    if read_only:
        if not target.exists():
            msg = f"no database at {target} (nothing has been audited there)"
            raise FileNotFoundError(msg)
        conn = sqlite3.connect(f"{target.as_uri()}?mode=ro", uri=True)
    else:
        conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


_DATA = "CAST(data AS TEXT)"
"""How the indexes (and so the queries) read a record's JSON."""


def query_audit(
    db_path: str | Path,
    *,
    run_id: str | None = None,
    tool: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = 100,
) -> list[AuditRecord]:
    """Audit records, newest first, filtered by run, tool and time (Unix seconds).

    Raises:
        FileNotFoundError: There is no database at ``db_path``.
    """
    where = ["stream_id = ?"]
    params: list[Any] = [AUDIT_STREAM]
    if run_id is not None:
        where.append(f"json_extract({_DATA}, '$.run_id') = ?")
        params.append(run_id)
    if tool is not None:
        where.append(f"json_extract({_DATA}, '$.tool') = ?")
        params.append(tool)
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    if until is not None:
        where.append("created_at < ?")
        params.append(until)
    params.append(-1 if limit is None else limit)
    sql = f"SELECT data FROM events WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"  # noqa: S608 - placeholders only
    decoder = msgspec.json.Decoder(AuditRecord)
    with contextlib.closing(_connect(db_path, read_only=True)) as conn:
        try:
            rows = conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
    return [decoder.decode(bytes(r[0])) for r in rows]


def prune_audit(db_path: str | Path, *, before: float) -> int:
    """Delete the audit records committed before ``before`` (Unix seconds); how many went."""
    with contextlib.closing(_connect(db_path, read_only=False)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.execute(
                "DELETE FROM events WHERE stream_id = ? AND created_at < ?", (AUDIT_STREAM, before)
            )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
    return cursor.rowcount
