"""The Store: group commits, durability under SIGKILL, migrations, optimistic concurrency."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import platformdirs
import pytest
from structlog.testing import capture_logs

from actors import AskError, Failure, FailureKind, Ref, Restart, System, decode, encode
from actors.store import (
    Journal,
    JournalAppend,
    JournalAppended,
    JournalEntries,
    JournalEntry,
    JournalEvent,
    JournalRead,
    Store,
    StoreError,
    StoreStats,
    default_db_path,
)
from actors.store._store import MIGRATIONS

REPO_ROOT = Path(__file__).resolve().parents[3]


def _db_rows(path: Path, sql: str) -> list[Any]:
    """Run a query with the stdlib sqlite3 module (not through the Store)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def _no_sqlite_threads_left() -> bool:
    """Whether every aiosqlite worker thread has ended (every connection was closed)."""
    return not [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


async def _until(probe: Callable[[], Any], check: Callable[[Any], bool], what: str) -> Any:
    """Poll ``await probe()`` until ``check`` holds (5 s at most)."""
    give_up = time.monotonic() + 5.0
    while True:
        value = await probe()
        if check(value):
            return value
        assert time.monotonic() < give_up, f"timed out waiting for {what}; last: {value!r}"
        await asyncio.sleep(0.005)


# ---- group commit under concurrency -------------------------------------------------------

WRITERS = 8
PER_WRITER = 1250  # 8 x 1250 = 10,000 appends
WINDOW = 64  # appends each writer keeps in flight


def test_concurrent_appends_all_land_in_writer_order_in_few_commits(
    system: System, tmp_path: Path
) -> None:
    """10,000 pipelined appends from 8 threads land gap-free, in send order, in few commits."""
    journal = Journal(system.spawn(Store.spec(tmp_path / "journal.db", name="journal")))

    def writer(w: int) -> list[JournalAppended]:
        async def run() -> list[JournalAppended]:
            window = asyncio.Semaphore(WINDOW)

            async def one(k: int) -> JournalAppended:
                try:
                    stream = f"writer-{w}" if k % 2 else "shared"
                    return await journal.append_async(stream, "Counted", {"writer": w, "n": k})
                finally:
                    window.release()

            tasks = []
            for k in range(PER_WRITER):
                await window.acquire()
                tasks.append(asyncio.create_task(one(k)))  # sent in k order
            return await asyncio.gather(*tasks)

        return asyncio.run(run())

    with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
        acks = list(pool.map(writer, range(WRITERS), timeout=45))

    assert sum(map(len, acks)) == WRITERS * PER_WRITER
    ids = [ack.id for per_writer in acks for ack in per_writer]
    assert len(set(ids)) == len(ids)

    # Each writer's own stream: seqs 1..N, in the order the writer sent them.
    for w, per_writer in enumerate(acks):
        own = [ack for k, ack in enumerate(per_writer) if k % 2]
        assert [ack.seq for ack in own] == list(range(1, len(own) + 1))
        entries = journal.read(f"writer-{w}")
        assert [e.seq for e in entries] == list(range(1, PER_WRITER // 2 + 1))
        assert [msgspec.json.decode(e.data)["n"] for e in entries] == list(range(1, PER_WRITER, 2))

    # The shared stream interleaves the writers, gap-free, each writer's appends in order.
    shared = journal.read("shared")
    assert [e.seq for e in shared] == list(range(1, WRITERS * PER_WRITER // 2 + 1))
    bodies = [msgspec.json.decode(e.data) for e in shared]
    for w, per_writer in enumerate(acks):
        mine = [b["n"] for b in bodies if b["writer"] == w]
        assert mine == list(range(0, PER_WRITER, 2))
        seqs = [ack.seq for k, ack in enumerate(per_writer) if not k % 2]
        assert seqs == sorted(seqs)
    switches = sum(a["writer"] != b["writer"] for a, b in itertools.pairwise(bodies))
    assert switches > WRITERS, "the writers' appends interleave in the shared stream"

    stats = journal.stats()
    assert stats.appends == WRITERS * PER_WRITER
    assert stats.failed_commits == 0
    assert stats.largest_batch > 1
    assert stats.commits < stats.appends // 4, f"group commit did not batch: {stats}"


def test_reads_page_through_a_stream_and_do_not_wait_behind_a_blocked_commit(
    system: System, tmp_path: Path
) -> None:
    """after_seq/limit page a stream; a read is answered while another stream's commit waits."""
    db = tmp_path / "reads.db"
    journal = Journal(system.spawn(Store.spec(db, name="reads")))
    for n in range(1, 6):
        journal.append("run-1", "Step", {"n": n})
    assert [e.seq for e in journal.read("run-1", after_seq=2)] == [3, 4, 5]
    assert [e.seq for e in journal.read("run-1", after_seq=1, limit=2)] == [2, 3]
    assert journal.read("run-1", after_seq=5) == []
    assert journal.read("no-such-stream") == []
    entry = journal.read("run-1", limit=1)[0]
    assert (entry.stream_id, entry.event_type, entry.data) == ("run-1", "Step", b'{"n":1}')

    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

        async def scenario() -> None:
            blocked = asyncio.create_task(journal.append_async("run-2", "Step", {"n": 1}))
            await _until(journal.stats_async, lambda s: s.in_flight == 1, "a commit in flight")
            started = time.monotonic()
            entries = await journal.read_async("run-1")
            assert time.monotonic() - started < 1.0
            assert len(entries) == 5
            assert not blocked.done()
            other.execute("ROLLBACK")
            assert (await blocked).seq == 1

        asyncio.run(scenario())


def test_a_read_sees_every_append_the_store_received_before_it(
    system: System, tmp_path: Path
) -> None:
    """Read-your-writes per stream, whoever wrote: a read waits for the stream's queued appends.

    An append sent without waiting (as a stopping run sends its last events) and a read
    sent after it by someone else: the read's answer holds the append, even while the
    commit waits for another process's write lock.
    """
    db = tmp_path / "ryw.db"
    journal = Journal(system.spawn(Store.spec(db, name="ryw")))
    journal.append("run-1", "Step", {"n": 1})
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # the next commit waits for this lock

        async def scenario() -> None:
            pending = asyncio.create_task(journal.append_async("run-1", "Step", {"n": 2}))
            await _until(journal.stats_async, lambda s: s.in_flight == 1, "a commit in flight")
            read = asyncio.create_task(journal.read_async("run-1"))
            other_read = await journal.read_async("run-2")  # another stream does not wait
            assert other_read == []
            assert not read.done()
            other.execute("ROLLBACK")
            assert (await pending).seq == 2
            assert [e.seq for e in await read] == [1, 2]

        asyncio.run(scenario())


# ---- durability ---------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_every_acknowledged_append_survives_sigkill(system: System, tmp_path: Path) -> None:
    """Appends acknowledged before a SIGKILL are all on disk, intact; appending resumes after."""
    db = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.store_writer", str(db)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(30.0, proc.kill)  # a hung writer must not hang the test
    watchdog.start()
    acked: set[tuple[str, int, int]] = set()
    other: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ack "):
                _, stream, seq, row_id = line.split()
                acked.add((stream, int(seq), int(row_id)))
                if len(acked) >= 300:
                    break
            else:
                other.append(line)
        proc.send_signal(signal.SIGKILL)
        # Lines already written before the kill were acknowledged too.
        for line in proc.stdout:
            if line.startswith("ack "):
                _, stream, seq, row_id = line.split()
                acked.add((stream, int(seq), int(row_id)))
        proc.wait(10)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert len(acked) >= 300, "the writer stopped early:\n" + "".join(other[-20:])
    assert proc.returncode == -signal.SIGKILL

    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = set(conn.execute("SELECT stream_id, seq, id FROM events").fetchall())
        last = dict(conn.execute("SELECT stream_id, max(seq) FROM events GROUP BY stream_id"))
        counts = dict(conn.execute("SELECT stream_id, count(*) FROM events GROUP BY stream_id"))
    missing = acked - stored
    assert not missing, f"{len(missing)} acknowledged appends lost, e.g. {sorted(missing)[:5]}"
    assert counts == last, "every stream is gap-free"

    journal = Journal(system.spawn(Store.spec(db, name="reopened")))
    ack = journal.append("stream-1", "Tick", {"n": "after"}, expected_seq=last["stream-1"])
    assert ack.seq == last["stream-1"] + 1
    entries = journal.read("stream-1")
    assert [e.seq for e in entries] == list(range(1, ack.seq + 1))


def test_a_clean_stop_closes_every_connection(tmp_path: Path) -> None:
    """After System.stop() no aiosqlite thread is left and the WAL has been checkpointed."""
    db = tmp_path / "clean.db"
    with System(Store.spec(db), name="clean", default_timeout=5.0) as system:
        journal = Journal(system.lookup("store"))
        journal.append("s", "E", b"{}")
        assert journal.read("s")[0].data == b"{}"
    assert _no_sqlite_threads_left()
    assert not Path(f"{db}-wal").exists(), "the last close checkpoints and removes the WAL"
    assert _db_rows(db, "SELECT stream_id, seq FROM events") == [("s", 1)]


# ---- migrations ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_migrations_run_once_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """user_version counts applied scripts; reopening re-runs none; a newer file is refused."""
    db = tmp_path / "schema.db"
    known = len(MIGRATIONS)
    newer = (*MIGRATIONS, "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);")

    async with System(Store.spec(db, migrations=newer), name="first", default_timeout=5.0) as first:
        await Journal(first.lookup("store")).append_async("s", "E", b"1")
    assert _db_rows(db, "PRAGMA user_version") == [(known + 1,)]
    tables = _db_rows(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    assert {("events",), ("notes",), ("streams",)} <= set(tables)  # and other features' tables

    # Re-running either script would fail ("table ... already exists"): reopening must not.
    async with System(Store.spec(db, migrations=newer), name="again", default_timeout=5.0) as again:
        journal = Journal(again.lookup("store"))
        assert (await journal.append_async("s", "E", b"2")).seq == 2
    assert _db_rows(db, "PRAGMA user_version") == [(known + 1,)]

    # Code that knows only the shipped versions refuses the file, naming it and both, on
    # every request, and stays up (no crash, no restart loop).
    async with System(name="older", default_timeout=5.0) as older:
        ref: Ref[Any] = await older.spawn_async(Store.spec(db, restart=Restart.TEMPORARY))
        for _ in range(2):
            with pytest.raises(AskError) as refused:
                await Journal(ref).read_async("s")
            for text in (str(db), f"schema version {known + 1}", f"knows ({known})"):
                assert text in str(refused.value)
        assert ref.is_alive()
    assert _db_rows(db, "SELECT count(*) FROM events") == [(2,)], "nothing was touched"


@pytest.mark.parametrize("bad", ["directory", "not a database"])
def test_a_store_that_cannot_open_its_file_says_so_once_and_stays_up(
    tmp_path: Path, bad: str
) -> None:
    """An embedder's ``System(Store.spec(bad_path))``: one error line, no tracebacks.

    Every request is answered with the failure naming the file and the cause; the Store
    is not restarted over and over (each time with a traceback) until the supervisor
    gives up and takes the system down.
    """
    path = tmp_path / "journal.db"
    if bad == "directory":
        path.mkdir()
        cause = "Is a directory"
    else:
        path.write_bytes(b"these are not the bytes of a SQLite database " * 100)
        cause = "file is not a database"
    with (
        capture_logs() as logs,
        System(Store.spec(path), name="embedded", default_timeout=5.0) as system,
    ):
        store = system.lookup("store")
        journal = Journal(store)
        for _ in range(3):
            with pytest.raises(AskError) as refused:
                journal.read("s")
            assert str(path) in str(refused.value)
            assert cause in str(refused.value)
        assert store.is_alive()
    errors = [entry for entry in logs if entry["log_level"] in ("error", "critical")]
    assert [entry["event"] for entry in errors] == ["store cannot open its database"]
    assert str(path) in errors[0]["error"]
    assert "exception" not in errors[0]  # one line: no traceback


def test_fresh_database_gets_the_current_schema(system: System, tmp_path: Path) -> None:
    """A new file is created (with its directories) at user_version == len(MIGRATIONS), in WAL."""
    db = tmp_path / "a" / "b" / "fresh.db"
    journal = Journal(system.spawn(Store.spec(db, name="fresh")))
    assert journal.stats().path == str(db)
    journal.append("s", "E", b"{}")
    assert _db_rows(db, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert _db_rows(db, "PRAGMA journal_mode") == [("wal",)]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_a_new_database_is_readable_by_its_owner_only(system: System, tmp_path: Path) -> None:
    """A new file (and its WAL) is 0600, each directory made for it 0700; old files keep theirs."""
    db = tmp_path / "private" / "runs.db"
    journal = Journal(system.spawn(Store.spec(db, name="private")))
    journal.append("s", "E", b"{}")
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{db}-wal").stat().st_mode) == 0o600

    deep = tmp_path / "one" / "two" / "runs.db"
    Journal(system.spawn(Store.spec(deep, name="deep"))).append("s", "E", b"{}")
    for folder in (tmp_path / "one", tmp_path / "one" / "two"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder

    shared = tmp_path / "shared.db"
    shared.touch(mode=0o644)
    shared.chmod(0o644)
    Journal(system.spawn(Store.spec(shared, name="shared"))).append("s", "E", b"{}")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644


# ---- optimistic concurrency ---------------------------------------------------------------


def test_expected_seq_conflict_fails_alone_and_its_batch_commits(
    system: System, tmp_path: Path
) -> None:
    """A stale expected_seq is a bad_request naming stream and seqs; its batch-mates commit."""
    db = tmp_path / "occ.db"
    journal = Journal(system.spawn(Store.spec(db, name="occ")))
    assert journal.append("orders", "Created", {"n": 0}, expected_seq=0).seq == 1
    commits_before = journal.stats().commits

    async def scenario(lock: sqlite3.Connection) -> list[JournalAppended | BaseException]:
        # A first commit waits for the lock, so the next four appends queue into one batch.
        plug = asyncio.create_task(journal.append_async("plug", "Plug", b"{}"))
        await _until(journal.stats_async, lambda s: s.in_flight == 1, "the plug in flight")
        batch = [
            asyncio.create_task(journal.append_async("orders", "Paid", {"n": 1}, expected_seq=1)),
            asyncio.create_task(journal.append_async("orders", "Paid", {"n": 2}, expected_seq=1)),
            asyncio.create_task(journal.append_async("orders", "Shipped", {"n": 3})),
            asyncio.create_task(
                journal.append_async("refunds", "Opened", {"n": 4}, expected_seq=0)
            ),
        ]
        await _until(journal.stats_async, lambda s: s.pending == 4, "four appends queued")
        lock.execute("ROLLBACK")
        await plug
        return await asyncio.gather(*batch, return_exceptions=True)

    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as lock:
        lock.execute("BEGIN IMMEDIATE")
        paid, stale, shipped, refund = asyncio.run(scenario(lock))

    assert isinstance(paid, JournalAppended)
    assert paid.seq == 2
    assert isinstance(stale, AskError)
    assert stale.kind is FailureKind.BAD_REQUEST
    assert not stale.failure.retryable
    for text in ("'orders'", "expected it at seq 1", "at seq 2"):
        assert text in str(stale)
    assert stale.failure.details == {"stream_id": "orders", "expected_seq": "1", "actual_seq": "2"}
    assert isinstance(shipped, JournalAppended)
    assert shipped.seq == 3
    assert isinstance(refund, JournalAppended)
    assert refund.seq == 1

    stats = journal.stats()
    assert stats.commits == commits_before + 2, "the plug, then the four in one commit"
    assert stats.conflicts == 1
    orders = journal.read("orders")
    assert [(e.seq, e.event_type) for e in orders] == [(1, "Created"), (2, "Paid"), (3, "Shipped")]
    assert msgspec.json.decode(orders[1].data) == {"n": 1}


def test_an_append_whose_caller_gave_up_before_its_commit_is_not_written(
    system: System, tmp_path: Path
) -> None:
    """An append still queued when its deadline passes times out and is never written."""
    db = tmp_path / "late.db"
    ref: Ref[Any] = system.spawn(Store.spec(db, name="late"))
    journal = Journal(ref)
    journal.append("first", "E", b"{}")  # the file is open before the test takes the lock

    async def scenario(lock: sqlite3.Connection) -> None:
        plug = asyncio.create_task(journal.append_async("plug", "Plug", b"{}"))
        await _until(journal.stats_async, lambda s: s.in_flight == 1, "the plug in flight")
        with pytest.raises(AskError) as late:
            await Journal(ref, timeout=0.2).append_async("late", "E", b"{}")
        assert late.value.kind is FailureKind.TIMEOUT
        lock.execute("ROLLBACK")
        await plug

    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as lock:
        lock.execute("BEGIN IMMEDIATE")
        asyncio.run(scenario(lock))
    assert journal.read("late") == []
    stats = journal.stats()
    assert (stats.appends, stats.pending, stats.in_flight) == (2, 0, 0)


def test_malformed_requests_are_bad_requests(system: System, tmp_path: Path) -> None:
    """Empty ids and negative positions are refused at once with bad_request."""
    ref: Ref[Any] = system.spawn(Store.spec(tmp_path / "bad.db", name="bad"))
    for request in (
        JournalAppend(stream_id="", event_type="E", data=b"{}"),
        JournalAppend(stream_id="s", event_type="", data=b"{}"),
        JournalAppend(stream_id="s", event_type="E", data=b"{}", expected_seq=-1),
        JournalRead(stream_id="s", after_seq=-1),
        JournalRead(stream_id="s", limit=-5),
    ):
        with pytest.raises(AskError) as refused:
            ref.ask(request)
        assert refused.value.kind is FailureKind.BAD_REQUEST
    assert Journal(ref).stats().appends == 0


def test_protocol_round_trips_through_json() -> None:
    """Every Store message encodes to JSON and decodes back to an equal value."""
    entry = JournalEntry(
        stream_id="s", seq=1, id=7, event_type="E", data=b'{"x":1}', created_at=1.5
    )
    samples = [
        JournalAppend(stream_id="s", event_type="E", data=b'{"x":1}', expected_seq=0),
        JournalAppended(stream_id="s", seq=1, id=7),
        JournalRead(stream_id="s", after_seq=3, limit=10),
        JournalEntries(stream_id="s", entries=(entry,)),
        StoreStats(
            path="/x.db",
            open=True,
            commits=1,
            failed_commits=0,
            appends=1,
            conflicts=0,
            largest_batch=1,
            pending=0,
            in_flight=0,
        ),
    ]
    for message in samples:
        assert decode(encode(message)) == message


# ---- where the file is --------------------------------------------------------------------


@pytest.fixture
def no_reactor_db(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """REACTOR_DB unset for the test."""
    monkeypatch.delenv("REACTOR_DB", raising=False)
    return monkeypatch


def test_default_path_honours_reactor_db_else_the_user_data_dir(
    no_reactor_db: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """REACTOR_DB wins; without it the file is reactor.db in platformdirs' user data dir."""
    expected = platformdirs.user_data_path("reactor-swarm") / "reactor.db"
    assert default_db_path() == expected
    no_reactor_db.setenv("REACTOR_DB", "~/elsewhere/my.db")
    assert default_db_path() == Path.home() / "elsewhere" / "my.db"

    target = tmp_path / "configured" / "by-env.db"
    no_reactor_db.setenv("REACTOR_DB", str(target))
    assert default_db_path() == target
    with System(Store.spec(), name="env", default_timeout=5.0) as system:
        journal = Journal(system.lookup("store"))
        assert journal.stats().path == str(target)
        journal.append("s", "E", b"{}")
    assert target.exists()
    assert _db_rows(target, "SELECT count(*) FROM events") == [(1,)]


# ---- several events in one append ----------------------------------------------------------


def test_an_append_with_more_events_writes_them_all_in_order(
    system: System, tmp_path: Path
) -> None:
    """`JournalAppend.more` lands right after the first event; the answer names the last."""
    store: Ref[Any] = system.spawn(Store.spec(tmp_path / "more.db", name="more"))
    journal = Journal(store)
    journal.append("s", "First", {"n": 0})
    request = JournalAppend(
        stream_id="s",
        event_type="A",
        data=b'{"n":1}',
        expected_seq=1,
        more=(
            JournalEvent(event_type="B", data=b'{"n":2}'),
            JournalEvent(event_type="C", data=b'{"n":3}'),
        ),
    )
    answer = store.ask(request)
    assert answer.seq == 4
    entries = journal.read("s")
    assert [(e.seq, e.event_type) for e in entries] == [(1, "First"), (2, "A"), (3, "B"), (4, "C")]
    assert answer.id == entries[-1].id


def test_an_append_with_more_events_that_conflicts_writes_none(
    system: System, tmp_path: Path
) -> None:
    """A wrong `expected_seq` refuses the whole append: none of its events is written."""
    store: Ref[Any] = system.spawn(Store.spec(tmp_path / "conflict.db", name="conflict"))
    journal = Journal(store)
    journal.append("s", "First", {})
    request = JournalAppend(
        stream_id="s",
        event_type="A",
        data=b"{}",
        expected_seq=0,
        more=(JournalEvent(event_type="B", data=b"{}"),),
    )
    with pytest.raises(AskError, match="expected it at seq 0 but it is at seq 1"):
        store.ask(request)
    assert [e.event_type for e in journal.read("s")] == ["First"]


def test_writes_accepted_before_a_stop_are_committed(tmp_path: Path) -> None:
    """A process that stops as soon as it has sent its last writes still has them.

    The writes go out without waiting for their answers (an actor's tell-and-go, an
    audit row sent as the process exits); the stop follows them in the Store's
    mailbox, so each was accepted first, and the writer commits it before closing.
    """
    from actors._reply import SyncReply
    from actors.store import StoreInsert

    path = tmp_path / "stop.db"
    replies = [SyncReply() for _ in range(300)]
    with System(Store.spec(path), name="stopping", default_timeout=5.0) as system:
        store = system.lookup("store")
        store.ask(JournalRead(stream_id="warm-up"))  # the file is open
        for number, reply in enumerate(replies):
            row = ((float(number), f"m{number}", 0.0),)
            store.send_request(
                StoreInsert(table="spend", columns=("at", "model", "cost_usd"), rows=row), reply
            )
    assert _db_rows(path, "SELECT count(*) FROM spend") == [(300,)]
    timed_out = Failure(kind=FailureKind.TIMEOUT, message="no answer")
    answers = [reply.wait(5.0, lambda: timed_out) for reply in replies]
    assert {type(a).__name__ for a in answers} == {"StoreInserted"}


# ---- tables beside the journal ---------------------------------------------------------------


def test_rows_go_in_with_the_next_commit_and_queries_cannot_write(tmp_path: Path) -> None:
    """StoreInsert commits rows into a schema table; StoreQuery reads them, and only reads."""
    from actors import AskError
    from actors.store import StoreInsert, StoreQuery

    with System(Store.spec(tmp_path / "t.db"), name="tables", default_timeout=5.0) as system:
        store = system.lookup("store")
        columns = ("at", "model", "cost_usd")
        done = store.ask(StoreInsert(table="spend", columns=columns, rows=((1.0, "m", 0.5),)))
        assert done.rows == 1
        assert Journal(store).query("SELECT model, cost_usd FROM spend") == [("m", 0.5)]
        with pytest.raises(AskError, match="plain identifier"):
            store.ask(StoreInsert(table="spend; DROP", columns=columns, rows=()))
        with pytest.raises(AskError, match="has 1 values for 3 columns"):
            store.ask(StoreInsert(table="spend", columns=columns, rows=((1.0,),)))
        with pytest.raises(AskError, match="query failed"):
            store.ask(StoreQuery(sql="DELETE FROM spend"))
        assert Journal(store).query("SELECT count(*) FROM spend") == [(1,)]


def test_stores_opening_one_new_file_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    """Six openers race to make a new file WAL; none gets "database is locked".

    SQLite answers a journal-mode switch that would have to wait behind another's
    with an immediate "locked" (it does not wait where waiting could deadlock), so the
    opening retries within ``busy_timeout``. Several rounds, as the race is a race.
    """
    for round_ in range(20):
        path = tmp_path / f"race-{round_}.db"
        start = threading.Barrier(6)
        errors: list[BaseException] = []

        def open_it(
            path: Path = path,
            start: threading.Barrier = start,
            errors: list[BaseException] = errors,
        ) -> None:
            start.wait()
            try:
                Store.check(path)
            except StoreError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"round {round_}: {errors[0]}"
        assert _journal_mode(path) == "wal"


def _journal_mode(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
