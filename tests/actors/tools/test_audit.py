"""The audit log in the Store: batched into the journal, queried by run, tool and time, pruned."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from actors import Ref, System
from actors.llm import ToolCall
from actors.store import Journal, Store
from actors.tools import (
    AUDIT_STREAM,
    AuditRecord,
    AuditSink,
    ExecuteTools,
    FlushAudit,
    ToolRegistry,
    ToolRunner,
    prune_audit,
    query_audit,
    tool,
)


def record(i: int, *, run_id: str = "r1", tool_name: str = "t", at: float = 0.0) -> AuditRecord:
    return AuditRecord(at=at or time.time(), run_id=run_id, tool=tool_name, call_id=f"c{i}")


def test_sink_batches_one_turn_of_records_into_one_append(system: System, tmp_path: Path) -> None:
    """Records made in one loop turn share one journal append (one commit)."""
    store: Ref[Any] = system.spawn(Store.spec(tmp_path / "a.db"))

    async def write() -> AuditSink:
        sink = AuditSink(store)
        for i in range(50):
            sink.record(record(i))
        await sink.flush()
        return sink

    sink = system.bridge.run(write())  # on the I/O loop, where the Store's replies arrive
    assert sink.written == 50
    rows = sqlite3.connect(tmp_path / "a.db").execute(
        "SELECT count(*), count(DISTINCT created_at) FROM events WHERE stream_id = ?",
        (AUDIT_STREAM,),
    )
    assert rows.fetchone() == (50, 1)


def test_runner_audits_every_call_and_queries_filter(system: System, tmp_path: Path) -> None:
    """Through a ToolRunner: every call is recorded; queries by run, tool and time select them."""
    db = tmp_path / "b.db"
    store: Ref[Any] = system.spawn(Store.spec(db))

    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    @tool
    def fail() -> None:
        """Fail."""
        raise RuntimeError("nope")

    runner: Ref[Any] = system.spawn(ToolRunner.spec(ToolRegistry([echo, fail]), store=store))
    before = time.time()
    for run_id in ("r1", "r2"):
        runner.ask(
            ExecuteTools(
                calls=(
                    ToolCall(id="a", name="echo", arguments={"text": run_id, "token": "s3cret"}),
                    ToolCall(id="b", name="fail"),
                ),
                run_id=run_id,
                step="s",
                identity="bot",
            )
        )
    assert runner.ask(FlushAudit()).written == 4
    everything = query_audit(db)
    assert len(everything) == 4
    by_run = query_audit(db, run_id="r2")
    assert {(r.tool, r.outcome) for r in by_run} == {
        ("echo", "invalid_arguments"),
        ("fail", "error"),
    }
    failed = query_audit(db, tool="fail")
    assert [r.run_id for r in failed] == ["r2", "r1"]  # newest first
    assert "nope" in failed[0].error
    assert failed[0].identity == "bot"
    assert query_audit(db, since=before - 1, limit=1)[0].run_id == "r2"
    assert query_audit(db, until=before - 1) == []
    [echo_r1] = query_audit(db, run_id="r1", tool="echo")
    assert echo_r1.arguments["token"] == "[redacted]"


def test_queries_use_the_audit_indexes(system: System, tmp_path: Path) -> None:
    """By run and by tool, SQLite answers from the partial indexes, not a scan of all events."""
    db = tmp_path / "c.db"
    Journal(system.spawn(Store.spec(db))).append("x", "X", b"{}")  # the file is open and migrated
    conn = sqlite3.connect(db)
    plan_run = conn.execute(
        "EXPLAIN QUERY PLAN SELECT data FROM events WHERE stream_id = ? "
        "AND json_extract(CAST(data AS TEXT), '$.run_id') = ? ORDER BY id DESC",
        (AUDIT_STREAM, "r"),
    ).fetchall()
    plan_tool = conn.execute(
        "EXPLAIN QUERY PLAN SELECT data FROM events WHERE stream_id = ? "
        "AND json_extract(CAST(data AS TEXT), '$.tool') = ? ORDER BY id DESC",
        (AUDIT_STREAM, "t"),
    ).fetchall()
    assert "events_tool_audit_run" in str(plan_run)
    assert "events_tool_audit_tool" in str(plan_tool)


def test_prune_removes_only_old_audit_records(system: System, tmp_path: Path) -> None:
    """Retention deletes audit records older than the cut-off, and nothing else."""
    db = tmp_path / "d.db"
    journal = Journal(system.spawn(Store.spec(db)))
    journal.append("run:keep", "RunStarted", b"{}")
    journal.append(AUDIT_STREAM, "ToolAudited", record(1))
    cut = time.time() + 1
    assert prune_audit(db, before=cut) == 1
    assert query_audit(db) == []
    assert journal.read("run:keep")  # other streams untouched
    journal.append(AUDIT_STREAM, "ToolAudited", record(2))  # the stream goes on after a prune
    assert [r.call_id for r in query_audit(db)] == ["c2"]


def test_query_of_a_missing_file_says_so(tmp_path: Path) -> None:
    """Querying where no database is names the path."""
    with pytest.raises(FileNotFoundError, match="no database"):
        query_audit(tmp_path / "none.db")


def test_retention_must_be_positive() -> None:
    """A zero or negative retention is refused."""
    with pytest.raises(ValueError, match="retention_s"):
        AuditSink(None, retention_s=0)


def test_sink_retention_prunes_after_a_commit(system: System, tmp_path: Path) -> None:
    """With a retention, the sink prunes what is older after its commits (here: everything)."""
    db = tmp_path / "e.db"
    store: Ref[Any] = system.spawn(Store.spec(db))

    async def write() -> None:
        sink = AuditSink(store, retention_s=1e-9, db_path=db, prune_every_s=0.0)
        sink.record(record(1))
        await sink.flush()

    system.bridge.run(write())
    assert query_audit(db) == []
