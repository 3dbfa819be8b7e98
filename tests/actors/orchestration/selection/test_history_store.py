"""The performance history in the store: bounded rows, compacted snapshots, the old stream moved.

A real SQLite file behind a real Store actor, a real Selector asking a fake server over
loopback HTTP; the rows are read back with the stdlib ``sqlite3`` module. Tests wait on
bus events and answers, never on sleeps.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import Ref, System
from actors.llm import ChatRequest, Config, Fleet, start_fleet
from actors.orchestration import (
    HISTORY_STREAM,
    History,
    HistoryLoaded,
    HistoryQuery,
    SaveHistory,
    SelectChat,
    Selector,
)
from actors.orchestration.selection import HISTORY_SLOTS, Cell, HistorySnapshot
from actors.store import Store
from actors.store._store import MIGRATIONS
from actors.testing import FakeServer

DAY = 86_400.0
WEEK = 7 * DAY


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer("openai", models=["m"]) as running:
        yield running


def fleet_of(system: System, server: FakeServer) -> Fleet:
    config = Config.model_validate(
        {
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
            "hosts": {"h": {"url": server.url, "protocol": "openai"}},
        }
    )
    return start_fleet(system, config)


def rows(db: Path, sql: str) -> list[Any]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def selector(system: System, fleet: Fleet, store: Ref[Any], name: str) -> Ref[Any]:
    return system.spawn(Selector, name=name, args=(fleet.catalog,), kwargs={"store": store})


def ask(ref: Ref[Any]) -> None:
    ref.ask(
        SelectChat(request=ChatRequest.prompt("", "Write a python script"), candidates=("h/m",))
    )


def snapshot_json(at: float, *cells: Cell) -> str:
    return msgspec.json.encode(HistorySnapshot(at=at, clocks={"code": 1}, cells=cells)).decode()


def test_prune_drops_what_decay_no_longer_weighs() -> None:
    """A record untouched for 10 half-lives goes; a fresh one and one of unknown age stay."""
    now = time.time()
    history = History()
    history.record("h/old", "code", ok=True, latency_s=1.0, now=now - 10 * WEEK)
    history.record("h/new", "code", ok=True, latency_s=1.0, now=now - DAY)
    history.reward("h/unknown", "code", 1.0)  # no time recorded: kept
    history.dirty = False
    assert history.prune(now, half_life_s=WEEK) == 1
    assert set(history.cells) == {("h/new", "code"), ("h/unknown", "code")}
    assert history.dirty
    assert history.prune(now, half_life_s=WEEK) == 0
    # A heavy record lasts longer: 1,000 calls still weigh ~1 after 10 half-lives.
    for _ in range(1000):
        history.record("h/busy", "code", ok=True, now=now - 10 * WEEK)
    assert history.prune(now, half_life_s=WEEK) == 0


def test_snapshots_take_turns_in_a_bounded_number_of_rows(
    system: System, server: FakeServer, tmp_path: Path
) -> None:
    """Seven saves leave HISTORY_SLOTS rows, the newest with all seven calls, read by the next."""
    db = tmp_path / "history.db"
    fleet = fleet_of(system, server)
    store: Ref[Any] = system.spawn(Store.spec(db))
    first = selector(system, fleet, store, "first")
    for _ in range(7):
        ask(first)
        assert first.ask(SaveHistory()).cells == 1
    table = rows(db, "SELECT slot, seq FROM selection_history ORDER BY seq")
    assert table == [(5 % HISTORY_SLOTS, 5), (6 % HISTORY_SLOTS, 6), (7 % HISTORY_SLOTS, 7)]
    assert rows(db, "SELECT count(*) FROM events WHERE stream_id = 'selection:history'") == [(0,)]
    loaded: queue.Queue[HistoryLoaded] = queue.Queue()
    system.bus.subscribe(HistoryLoaded, loaded)
    second = selector(system, fleet, store, "second")
    assert loaded.get(timeout=10).cells == 1
    assert second.ask(HistoryQuery()).models["h/m"].calls == pytest.approx(7, rel=0.01)
    ask(second)
    assert second.ask(SaveHistory()).cells == 1
    assert rows(db, "SELECT max(seq), count(*) FROM selection_history") == [(8, HISTORY_SLOTS)]


def test_an_unreadable_newest_snapshot_falls_back_to_the_one_before(
    system: System, server: FakeServer, tmp_path: Path
) -> None:
    """A corrupt newest row is skipped with a warning: the older snapshot is loaded."""
    db = tmp_path / "history.db"
    Store.check(db)  # created and migrated
    now = time.time()
    good = Cell(model="h/m", task_type="code", calls=4, successes=4, updated_at=now)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executemany(
            "INSERT INTO selection_history (name, slot, seq, at, data) VALUES (?, ?, ?, ?, ?)",
            [
                (HISTORY_STREAM, 1, 1, now, snapshot_json(now, good)),
                (HISTORY_STREAM, 2, 2, now, "{"),
            ],
        )
        conn.commit()
    fleet = fleet_of(system, server)
    store: Ref[Any] = system.spawn(Store.spec(db))
    loaded: queue.Queue[HistoryLoaded] = queue.Queue()
    system.bus.subscribe(HistoryLoaded, loaded)
    ref = selector(system, fleet, store, "selector")
    assert loaded.get(timeout=10).cells == 1
    assert ref.ask(HistoryQuery()).models["h/m"].calls == pytest.approx(4, rel=0.01)


def test_a_record_decay_no_longer_weighs_is_not_written_again(
    system: System, server: FakeServer, tmp_path: Path
) -> None:
    """A model last seen 20 weeks ago (half-life a week) is loaded, then compacted away."""
    db = tmp_path / "history.db"
    Store.check(db)
    now = time.time()
    gone = Cell(
        model="h/gone", task_type="code", calls=50, successes=50, updated_at=now - 20 * WEEK
    )
    kept = Cell(model="h/m", task_type="code", calls=5, successes=5, updated_at=now - DAY)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "INSERT INTO selection_history (name, slot, seq, at, data) VALUES (?, ?, ?, ?, ?)",
            (HISTORY_STREAM, 1, 1, now, snapshot_json(now, gone, kept)),
        )
        conn.commit()
    fleet = fleet_of(system, server)
    store: Ref[Any] = system.spawn(Store.spec(db))
    loaded: queue.Queue[HistoryLoaded] = queue.Queue()
    system.bus.subscribe(HistoryLoaded, loaded)
    ref = selector(system, fleet, store, "selector")
    assert loaded.get(timeout=10).cells == 2
    ask(ref)
    assert ref.ask(SaveHistory()).cells == 1
    ((data,),) = rows(db, "SELECT data FROM selection_history WHERE seq = 2")
    written = msgspec.json.decode(data, type=HistorySnapshot)
    assert [(c.model, c.task_type) for c in written.cells] == [("h/m", "code")]
    assert written.cells[0].calls == pytest.approx(6, rel=0.01)


def test_the_old_journal_stream_moves_into_the_table_on_migration(
    system: System, server: FakeServer, tmp_path: Path
) -> None:
    """A version-8 file with three journal snapshots: the newest moves, the stream goes."""
    db = tmp_path / "old.db"
    now = time.time()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for script in MIGRATIONS[:8]:
            conn.executescript(script)
        conn.execute("PRAGMA user_version = 8")
        for seq in (1, 2, 3):
            cell = Cell(model="h/m", task_type="code", calls=seq, successes=seq, updated_at=now)
            data = snapshot_json(now, cell).encode()
            conn.execute(
                "INSERT INTO events (stream_id, seq, type, data, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (HISTORY_STREAM, seq, "HistorySnapshot", data, now),
            )
        conn.execute(
            "INSERT INTO streams VALUES (?, 1, ?, ?, 3, 'HistorySnapshot')",
            (HISTORY_STREAM, now, now),
        )
        conn.execute(
            "INSERT INTO events (stream_id, seq, type, data, created_at) "
            "VALUES ('run-1', 1, 'x', x'00', 0)"
        )
        conn.commit()
    fleet = fleet_of(system, server)
    store: Ref[Any] = system.spawn(Store.spec(db))
    loaded: queue.Queue[HistoryLoaded] = queue.Queue()
    system.bus.subscribe(HistoryLoaded, loaded)
    ref = selector(system, fleet, store, "selector")
    assert loaded.get(timeout=10).cells == 1
    assert ref.ask(HistoryQuery()).models["h/m"].calls == pytest.approx(3, rel=0.01)
    assert rows(db, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert rows(db, "SELECT name, slot, seq FROM selection_history") == [(HISTORY_STREAM, 0, 3)]
    assert rows(db, "SELECT stream_id FROM events") == [("run-1",)]  # other streams stay
    assert rows(db, "SELECT count(*) FROM streams WHERE stream_id = 'selection:history'") == [(0,)]
