"""Two engines of one process on one journal: each owns its runs, one resume wins.

Run ownership used to be the process's: two engines of one process (each on its own
actor system, sharing one SQLite file) both took an interrupted run for theirs, and
both could resume it, running its pending steps twice. Now each engine is an owner of
its own, and the Store checks a resume's ``RunResumed`` against the journal's last seq
in the transaction that writes it. The steps here count their executions; the in-flight
step waits on an event the test sets, so the tests synchronise on events, not time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import AskError, Ref, System
from actors.store import JournalAppend, JournalAppended, Store
from dsl import Input, Reactor, step
from reactor.app import Engine, RunHandle
from reactor.run import ResumeError
from reactor.run._fingerprint import plan_print_raw
from reactor.run._records import (
    Owner,
    RunCompleted,
    RunEvent,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepStarted,
    stream_of,
)

_WAIT_S = 30.0  # a bound against hanging, not a timing assertion

_ran: Counter[str] = Counter()
_ran_lock = threading.Lock()
_entered = threading.Event()
_release = threading.Event()


def _count(name: str) -> None:
    with _ran_lock:
        _ran[name] += 1


class Counted(Reactor):
    """``first`` completed before the run was interrupted; ``second`` was in flight."""

    n = Input(int)

    @step
    def first(n: int) -> int:
        _count("first")
        return n + 1

    @step
    def second(first: int) -> int:
        _count("second")
        _entered.set()
        assert _release.wait(_WAIT_S), "the test never released the step"
        return first * 2


@pytest.fixture(autouse=True)
def _fresh_counts() -> Iterator[None]:
    _ran.clear()
    _entered.clear()
    _release.clear()
    yield
    _release.set()  # never leave a step thread waiting


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def two_systems() -> Iterator[tuple[System, System]]:
    with (
        System(name="one", default_timeout=20.0) as one,
        System(name="two", default_timeout=20.0) as two,
    ):
        yield one, two


def _engine(system: System, db: Path) -> Engine:
    return Engine(system, db_path=db, tracing=False, logging=False)


def _interrupt(db: Path, run_id: str) -> Owner:
    """Journal a run of Counted as an engine of this process left it when it stopped.

    ``first`` completed, ``second`` was started; the engine's actor system has stopped,
    so the run is interrupted. Returns that engine's owner.
    """
    with System(name="gone", default_timeout=20.0) as system:
        return _journal_interrupted(system, db, run_id)


def _journal_interrupted(system: System, db: Path, run_id: str) -> Owner:
    gone = _engine(system, db)
    owner = gone.owner
    now = time.time()
    events: list[RunEvent] = [
        RunStarted(
            run_id=run_id,
            reactor="Counted",
            locator=f"{__name__}:Counted",
            inputs=msgspec.Raw(b'{"n": 1}'),
            options={"max_concurrency": 4},
            owner=owner,
            at=now,
            plan=plan_print_raw(Counted),
        ),
        StepStarted(step="first", attempt=1, at=now),
        StepCompleted(step="first", attempt=1, value=msgspec.Raw(b"2"), started_at=now, at=now),
        StepStarted(step="second", attempt=1, at=now),
    ]
    for seq, event in enumerate(events):
        gone.journal.append(
            stream_of(run_id), type(event).__name__, msgspec.json.encode(event), expected_seq=seq
        )
    gone.close()
    return owner


def _resumers(engine: Engine, run_id: str) -> list[Owner]:
    return [e.owner for e in engine.history(run_id) if isinstance(e, RunResumed)]


def test_an_engine_leaves_alone_a_run_another_live_engine_of_its_process_resumed(
    two_systems: tuple[System, System], db: Path
) -> None:
    """Engine B does not resume (or list as interrupted) the run engine A is running."""
    one, two = two_systems
    gone = _interrupt(db, "r1")
    a, b = _engine(one, db), _engine(two, db)
    try:
        assert a.owner != b.owner != gone
        assert a.interrupted() == ["r1"]
        assert b.interrupted() == ["r1"]
        [handle] = a.resume_interrupted()
        assert _entered.wait(_WAIT_S)  # A's RunResumed is durable: a step runs
        assert b.interrupted() == []
        assert b.resume_interrupted() == []
        with pytest.raises(ResumeError) as caught:
            b.resume("r1")
        message = str(caught.value)
        assert f"engine {a.owner.engine}" in message
        assert "still running" in message
        assert "once that engine's actor system has stopped" in message
        _release.set()
        assert handle.result(_WAIT_S) == 4
    finally:
        _release.set()
        a.close()
        b.close()
    assert _ran == {"second": 1}
    check = _engine(one, db)
    assert _resumers(check, "r1") == [a.owner]
    assert isinstance(check.history("r1")[-1], RunCompleted)
    check.close()


def test_a_run_of_an_engine_whose_system_stopped_is_interrupted_for_another(
    db: Path,
) -> None:
    """Once the system of the engine that resumed a run stops, another engine resumes it.

    (Closing an engine is not enough: its runs' actors live on in its system.)
    """
    with System(name="two", default_timeout=20.0) as two:
        b = _engine(two, db)
        with System(name="one", default_timeout=20.0) as one:
            _interrupt(db, "r2")
            a = _engine(one, db)
            a.resume_interrupted()
            assert _entered.wait(_WAIT_S)
            a.close()
            assert b.interrupted() == []  # closed, but its run's actor still runs
        # System one stopped: its Run actor with it (the step's thread still waits).
        assert b.interrupted() == ["r2"]
        _entered.clear()
        [handle] = b.resume_interrupted()
        assert _entered.wait(_WAIT_S)
        _release.set()
        assert handle.result(_WAIT_S) == 4
        assert _resumers(b, "r2") == [a.owner, b.owner]
        b.close()


def _resume_in_thread(
    engine: Engine, run_id: str, barrier: threading.Barrier, outcome: dict[str, object]
) -> threading.Thread:
    def resume() -> None:
        barrier.wait(_WAIT_S)
        try:
            handle: RunHandle = engine.resume(run_id)
        except ResumeError as exc:
            outcome[engine.owner.engine] = exc
            return
        try:
            outcome[engine.owner.engine] = handle.result(_WAIT_S)
        except ResumeError as exc:
            outcome[engine.owner.engine] = exc

    thread = threading.Thread(target=resume, name=f"resume {engine.owner.engine}")
    thread.start()
    return thread


def test_two_engines_resuming_one_run_at_once_exactly_one_wins(
    two_systems: tuple[System, System], db: Path
) -> None:
    """Both resume at the same moment: one runs the pending step, the other is refused.

    However the two interleave (one sees the other's ``RunResumed`` before it starts,
    or when its Run actor reads the journal, or the Store refuses its ``RunResumed``),
    the loser's ``ResumeError`` names the run and the winner, and nothing ran for it.
    """
    one, two = two_systems
    _interrupt(db, "r3")
    a, b = _engine(one, db), _engine(two, db)
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}
    try:
        threads = [_resume_in_thread(e, "r3", barrier, outcome) for e in (a, b)]
        assert _entered.wait(_WAIT_S)
        _release.set()
        for thread in threads:
            thread.join(_WAIT_S)
            assert not thread.is_alive()
    finally:
        _release.set()
        a.close()
        b.close()
    assert _ran == {"second": 1}
    [winner] = [e for e in (a, b) if outcome[e.owner.engine] == 4]
    [loser] = [e for e in (a, b) if e is not winner]
    refused = outcome[loser.owner.engine]
    assert isinstance(refused, ResumeError), refused
    assert refused.run_id == "r3"
    assert f"engine {winner.owner.engine}" in str(refused)
    assert _resumers(winner, "r3") == [winner.owner]


def test_the_store_checks_expected_seq_against_another_writer_of_its_file(
    two_systems: tuple[System, System], db: Path
) -> None:
    """A Store whose cached seq is behind (another Store appended) refuses, naming the seq.

    Two Stores on one file, as two engines of one process have: the first caches the
    stream's last seq when it appends; the second appends after it; the first's next
    append at the seq it knew is a clean ``bad_request`` conflict (not a failed commit
    that fails every append it carried).
    """
    one, two = two_systems
    # Created first, as an Engine does: two Stores creating one new file at once may
    # find it locked while the other switches it to write-ahead logging.
    Store.check(db)
    first: Ref[Any] = one.spawn(Store.spec(db))
    second: Ref[Any] = two.spawn(Store.spec(db))

    def append(store: Ref[Any], data: bytes, expected: int) -> JournalAppended:
        answer = store.ask(
            JournalAppend(stream_id="s", event_type="E", data=data, expected_seq=expected)
        )
        assert isinstance(answer, JournalAppended)
        return answer

    assert append(first, b"1", 0).seq == 1
    assert append(second, b"2", 1).seq == 2
    with pytest.raises(AskError) as caught:
        append(first, b"3", 1)
    failure = caught.value.failure
    assert failure.kind.value == "bad_request"
    assert failure.details["actual_seq"] == "2"
    assert append(first, b"3", 2).seq == 3
