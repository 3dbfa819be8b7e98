"""Listing the journal's streams: the summary table, its filters, and migration 2."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import AskError, FailureKind, Ref, System, decode, encode
from actors.store import Journal, JournalStreamList, JournalStreams, Store, StreamInfo
from actors.store._store import MIGRATIONS, _prefix_end, _streams_query


def _db_rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run a query with the stdlib sqlite3 module (not through the Store)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def _summaries_from_events(path: Path) -> dict[str, tuple[Any, ...]]:
    """Each stream's summary, computed the slow way: by scanning the events table."""
    rows = _db_rows(
        path,
        "SELECT f.stream_id, f.id, f.created_at, l.created_at, l.seq, l.type FROM events f "
        "JOIN events l ON l.stream_id = f.stream_id "
        "AND l.seq = (SELECT max(seq) FROM events WHERE stream_id = f.stream_id) "
        "WHERE f.seq = 1",
    )
    return {row[0]: tuple(row) for row in rows}


def _summaries_table(path: Path) -> dict[str, tuple[Any, ...]]:
    """The rows of the streams table, by stream id."""
    rows = _db_rows(
        path,
        "SELECT stream_id, first_id, created_at, updated_at, last_seq, last_type FROM streams",
    )
    return {row[0]: tuple(row) for row in rows}


def _ids(infos: list[StreamInfo]) -> list[str]:
    """The stream ids, in the order listed."""
    return [info.stream_id for info in infos]


def test_summary_follows_appends_to_several_streams(system: System, tmp_path: Path) -> None:
    """Every append, batched or not, keeps each stream's row equal to a scan of its events."""
    db = tmp_path / "summary.db"
    journal = Journal(system.spawn(Store.spec(db, name="summary")))
    journal.append("run:a", "RunStarted", {"goal": "a"})
    journal.append("session:x", "Opened", b"{}")
    journal.append("run:a", "StepCompleted", {"n": 1})
    journal.append("run:b", "RunStarted", {"goal": "b"})

    async def burst() -> None:
        # Queued together, so that commits carry several rows for the same streams.
        await asyncio.gather(
            *(journal.append_async(f"run:{'ab'[n % 2]}", f"Step{n}", {"n": n}) for n in range(40))
        )

    asyncio.run(burst())
    journal.append("run:a", "RunFinished", {"ok": True})
    assert journal.stats().largest_batch > 1

    assert _summaries_table(db) == _summaries_from_events(db)
    infos = journal.streams()
    assert _ids(infos) == ["run:b", "session:x", "run:a"], "newest first"
    by_id = {info.stream_id: info for info in infos}
    run_a, run_b = by_id["run:a"], by_id["run:b"]
    assert (run_a.last_seq, run_a.last_type) == (23, "RunFinished")
    assert (run_b.last_seq, run_b.last_type) == (21, "Step39")
    entries = journal.read("run:a")
    assert run_a.created_at == entries[0].created_at
    assert run_a.updated_at == entries[-1].created_at
    assert run_a.first == entries[0]
    assert run_b.first is not None
    assert (run_b.first.seq, run_b.first.event_type) == (1, "RunStarted")
    assert msgspec.json.decode(run_b.first.data) == {"goal": "b"}
    assert by_id["session:x"].last_seq == 1


def test_prefix_matches_literally(system: System, tmp_path: Path) -> None:
    """'%' and '_' in a prefix are ordinary characters; multi-byte characters are in range."""
    journal = Journal(system.spawn(Store.spec(tmp_path / "prefix.db", name="prefix")))
    names = [
        "run",
        "run:%",
        "run:%done",
        "run:_x",
        "run:ax",
        "run:\N{LATIN SMALL LETTER E WITH ACUTE}",
        "run:\N{GRINNING FACE}",
        "run;",
        "runx",
        "ru_n:1",
        "rux",
        "a\U0010ffff",
        "a\U0010ffffz",
        "b",
    ]
    for name in names:
        journal.append(name, "E", b"{}")

    def listed(prefix: str) -> list[str]:
        return sorted(_ids(journal.streams(prefix)))

    emoji = "run:\N{GRINNING FACE}"
    accented = "run:\N{LATIN SMALL LETTER E WITH ACUTE}"
    assert listed("run:") == sorted(["run:%", "run:%done", "run:_x", "run:ax", accented, emoji])
    assert listed("run:%") == ["run:%", "run:%done"]
    assert listed("run:_") == ["run:_x"]
    assert listed("ru_") == ["ru_n:1"]
    assert listed("%") == []
    assert listed("_") == []
    assert listed("run") == sorted(
        ["run", "run:%", "run:%done", "run:_x", "run:ax", accented, emoji, "run;", "runx"]
    )
    assert listed(emoji) == [emoji]
    assert listed("a\U0010ffff") == ["a\U0010ffff", "a\U0010ffffz"]
    assert listed("") == sorted(names)
    assert _ids(journal.streams()) == names[::-1], "all of them, newest first"


def test_prefix_end_is_the_least_string_above_the_prefix() -> None:
    """The upper bound increments the last character, skipping surrogates and U+10FFFF."""
    assert _prefix_end("run:") == "run;"
    assert _prefix_end("a\U0010ffff") == "b"
    assert _prefix_end("\U0010ffff\U0010ffff") is None
    assert _prefix_end("x\ud7ff") == "x\ue000"
    assert _prefix_end("") is None


def test_open_only_leaves_out_streams_that_ended(system: System, tmp_path: Path) -> None:
    """open_only keeps the streams whose last event type is not terminal, newest first."""
    ref: Ref[Any] = system.spawn(Store.spec(tmp_path / "open.db", name="open"))
    journal = Journal(ref)
    journal.append("run:1", "RunStarted", b"{}")
    journal.append("run:2", "RunStarted", b"{}")
    journal.append("run:3", "RunStarted", b"{}")
    journal.append("run:4", "RunStarted", b"{}")
    journal.append("session:1", "Opened", b"{}")
    journal.append("run:1", "RunFinished", b"{}")
    journal.append("run:2", "StepCompleted", b"{}")
    journal.append("run:2", "RunFailed", b"{}")
    journal.append("run:3", "StepCompleted", b"{}")
    terminal = ("RunFinished", "RunFailed")

    open_runs = journal.streams("run:", open_only=True, terminal_types=terminal)
    assert _ids(open_runs) == ["run:4", "run:3"]
    assert [info.last_type for info in open_runs] == ["RunStarted", "StepCompleted"]
    assert all(info.first is not None for info in open_runs)
    assert _ids(journal.streams(open_only=True, terminal_types=terminal)) == [
        "session:1",
        "run:4",
        "run:3",
    ]
    assert _ids(journal.streams("run:", terminal_types=terminal)) == [
        "run:4",
        "run:3",
        "run:2",
        "run:1",
    ], "terminal_types alone filters nothing"

    with pytest.raises(AskError) as refused:
        journal.streams("run:", open_only=True)
    assert refused.value.kind is FailureKind.BAD_REQUEST
    assert "terminal_types" in str(refused.value)
    with pytest.raises(TypeError):
        journal.streams("run:", open_only=True, terminal_types="RunFinished")


def test_limit_keeps_the_newest_and_include_first_can_be_off(
    system: System, tmp_path: Path
) -> None:
    """A limit returns the newest n (filters too); include_first=False leaves first unset."""
    ref: Ref[Any] = system.spawn(Store.spec(tmp_path / "limit.db", name="limit"))
    journal = Journal(ref)
    for n in range(1, 8):
        journal.append(f"run:{n}", "RunStarted", {"n": n})
        journal.append(f"other:{n}", "E", b"{}")
    journal.append("run:6", "RunFinished", b"{}")

    assert _ids(journal.streams("run:", limit=3)) == ["run:7", "run:6", "run:5"]
    assert _ids(journal.streams(limit=3)) == ["other:7", "run:7", "other:6"]
    assert _ids(
        journal.streams("run:", open_only=True, terminal_types=["RunFinished"], limit=3)
    ) == ["run:7", "run:5", "run:4"]
    assert journal.streams("run:", limit=0) == []
    assert len(journal.streams("run:", limit=100)) == 7

    bare = journal.streams("run:", limit=2, include_first=False)
    assert _ids(bare) == ["run:7", "run:6"]
    assert all(info.first is None for info in bare)
    assert bare[1].last_type == "RunFinished"
    full = journal.streams("run:", limit=1)[0]
    assert full.first is not None
    assert msgspec.json.decode(full.first.data) == {"n": 7}

    with pytest.raises(AskError) as refused:
        ref.ask(JournalStreams(limit=-1))
    assert refused.value.kind is FailureKind.BAD_REQUEST


def test_a_version_1_database_is_migrated_and_back_filled(system: System, tmp_path: Path) -> None:
    """A file with only migration 1 gets the streams table from its events, then the trigger."""
    db = tmp_path / "v1.db"
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.executescript(MIGRATIONS[0])
        rows = [
            (1, "run:old", 1, "RunStarted", b'{"goal":"old"}', 100.0),
            (2, "session:s", 1, "Opened", b"{}", 101.0),
            (3, "run:old", 2, "StepCompleted", b"{}", 102.0),
            (4, "run:new", 1, "RunStarted", b'{"goal":"new"}', 103.0),
            (5, "run:old", 3, "RunFinished", b"{}", 104.0),
            (6, "run:new", 2, "StepCompleted", b"{}", 105.0),
        ]
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.execute("PRAGMA user_version = 1")

    journal = Journal(system.spawn(Store.spec(db, name="v1")))
    infos = journal.streams()
    assert _db_rows(db, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert [(i.stream_id, i.created_at, i.updated_at, i.last_seq, i.last_type) for i in infos] == [
        ("run:new", 103.0, 105.0, 2, "StepCompleted"),
        ("session:s", 101.0, 101.0, 1, "Opened"),
        ("run:old", 100.0, 104.0, 3, "RunFinished"),
    ]
    assert infos[0].first is not None
    assert (infos[0].first.id, infos[0].first.data) == (4, b'{"goal":"new"}')
    assert _summaries_table(db) == _summaries_from_events(db)

    # The trigger carries on from the back-filled rows.
    assert journal.append("run:new", "RunFinished", b"{}").seq == 3
    journal.append("run:newer", "RunStarted", b"{}")
    open_runs = journal.streams("run:", open_only=True, terminal_types=["RunFinished"])
    assert _ids(open_runs) == ["run:newer"]
    assert _summaries_table(db) == _summaries_from_events(db)


def test_listing_does_not_wait_behind_a_blocked_commit(system: System, tmp_path: Path) -> None:
    """Streams are listed on the read connection while a commit waits for the write lock."""
    db = tmp_path / "busy.db"
    journal = Journal(system.spawn(Store.spec(db, name="busy")))
    journal.append("run:1", "RunStarted", b"{}")

    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

        async def scenario() -> None:
            blocked = asyncio.create_task(journal.append_async("run:2", "RunStarted", b"{}"))
            give_up = time.monotonic() + 5.0
            while (await journal.stats_async()).in_flight != 1:
                assert time.monotonic() < give_up, "the append never went in flight"
                await asyncio.sleep(0.005)
            started = time.monotonic()
            infos = await journal.streams_async("run:")
            assert time.monotonic() - started < 1.0
            assert _ids(infos) == ["run:1"]
            assert not blocked.done()
            other.execute("ROLLBACK")
            assert (await blocked).seq == 1
            assert _ids(await journal.streams_async("run:")) == ["run:2", "run:1"]

        asyncio.run(scenario())


def test_a_limited_listing_walks_the_time_index_and_no_events() -> None:
    """With a limit the query plan walks streams_newest and reaches events only by id."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        for script in MIGRATIONS:
            conn.executescript(script)
        request = JournalStreams(
            prefix="run:", open_only=True, terminal_types=("RunFinished",), limit=20
        )
        sql, params = _streams_query(request)
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    assert "SCAN s USING INDEX streams_newest" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    assert "SEARCH f USING INTEGER PRIMARY KEY" in plan, plan


def test_streams_messages_round_trip_through_json() -> None:
    """JournalStreams, JournalStreamList and StreamInfo encode to JSON and decode back."""
    info = StreamInfo(
        stream_id="run:1",
        created_at=1.0,
        updated_at=2.0,
        last_seq=3,
        last_type="RunFinished",
        first=None,
    )
    samples = [
        JournalStreams(
            prefix="run:", open_only=True, terminal_types=("A", "B"), limit=5, include_first=False
        ),
        JournalStreamList(stream_infos=(info,)),
    ]
    for message in samples:
        assert decode(encode(message)) == message
