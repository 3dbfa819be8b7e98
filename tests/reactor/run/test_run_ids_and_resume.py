"""A run id names one run; the journal must be usable before a step runs; resume is honest.

Through a real :class:`reactor.Engine` on SQLite files in ``tmp_path``: a new run under
an existing id is refused (also when two engines race, each with its own Store on the
same file); an unusable database is a :class:`~actors.store.StoreError` naming the
file, and a run whose journal cannot be written runs no step; a damaged journal row is
named; and a run whose reactor's steps changed is not resumed unless forced.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from actors import System
from actors.store import Store, StoreError
from dsl import Halt, Input, Reactor, find, step
from reactor.app import Engine
from reactor.run import (
    JournalCorruptError,
    PlanChangedError,
    ResumeError,
    RunExistsError,
    RunFailedError,
    RunHaltedError,
    RunResumed,
    RunStarted,
    StepCompleted,
    compare_plan,
    decode_plan,
    plan_print,
)

WAIT = 10.0
"""Seconds a test waits for a run's result before calling it hung."""

CALLS: list[str] = []
"""What the steps below were called with."""


class Counted(Reactor):
    """Records each call, so a test can tell how often the step ran and with what."""

    text = Input(str)

    @step
    def record(text: str) -> str:
        CALLS.append(text)
        return text.upper()


@pytest.fixture(autouse=True)
def _clear_calls() -> Iterator[None]:
    CALLS.clear()
    yield
    CALLS.clear()


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine journaling into a fresh database, without log lines."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


# ---- a run id names one run -----------------------------------------------------------------


def test_a_new_run_under_an_existing_id_is_refused_and_nothing_runs(engine: Engine) -> None:
    """The second start under id 'x' raises RunExistsError; its inputs never reach a step."""
    assert engine.run(Counted, {"text": "first"}, run_id="x") == "FIRST"
    before = engine.history("x")
    handle = engine.start(Counted, {"text": "second"}, run_id="x")
    with pytest.raises(RunExistsError) as caught:
        handle.result(WAIT)
    assert caught.value.run_id == "x"
    assert "reactor runs resume x" in str(caught.value)
    assert CALLS == ["first"]
    assert engine.history("x") == before, "the journal is untouched"


def test_starting_an_id_that_is_running_here_raises_at_once(engine: Engine) -> None:
    """While run 'busy' runs in this process, starting 'busy' again raises RunExistsError."""
    release = threading.Event()

    class Waits(Reactor):
        @step
        def wait() -> int:
            release.wait(WAIT)
            return 1

    running = engine.start(Waits, run_id="busy")
    try:
        with pytest.raises(RunExistsError, match="running in this process"):
            engine.start(Waits, run_id="busy")
    finally:
        release.set()
    assert running.result(WAIT) == 1


def test_two_engines_racing_on_one_id_run_it_once(tmp_path: Path) -> None:
    """Two systems (two Stores, one file) start id 'race' together: one runs, one is refused."""
    db = tmp_path / "shared.db"
    with (
        System(name="one", default_timeout=5.0) as first,
        System(name="two", default_timeout=5.0) as second,
        Engine(first, db_path=db, logging=False) as one,
        Engine(second, db_path=db, logging=False) as two,
    ):
        handles = [
            one.start(Counted, {"text": "from one"}, run_id="race"),
            two.start(Counted, {"text": "from two"}, run_id="race"),
        ]
        outcomes: list[Any] = []
        for handle in handles:
            try:
                outcomes.append(handle.result(WAIT))
            except RunExistsError as exc:
                outcomes.append(exc)
        started = [e for e in one.history("race") if isinstance(e, RunStarted)]
    refused = [o for o in outcomes if isinstance(o, RunExistsError)]
    assert len(refused) == 1, outcomes
    assert len(CALLS) == 1, CALLS
    assert len(started) == 1


class HaltsFirst(Reactor):
    """Halts until ``MODE["run"]``; then records the call and waits for ``GO``."""

    text = Input(str)

    @step
    def record(text: str) -> Any:
        if not MODE.get("run"):
            return Halt("not yet")
        CALLS.append(text)
        ENTERED.set()
        GO.wait(WAIT)
        return text.upper()


MODE: dict[str, bool] = {}
ENTERED = threading.Event()
GO = threading.Event()


def test_a_run_resumed_by_another_engine_meanwhile_is_not_resumed_twice(
    tmp_path: Path,
) -> None:
    """Two engines resume one halted run at once: the pending step runs once, not twice.

    The second resume is checked before the first appends anything; by the time its
    run reads the journal, the first has resumed the run: it is refused, running nothing.
    """
    db = tmp_path / "shared.db"
    MODE.clear()
    ENTERED.clear()
    GO.clear()
    with (
        System(name="one", default_timeout=5.0) as first,
        System(name="two", default_timeout=5.0) as second,
        Engine(first, db_path=db, logging=False) as one,
        Engine(second, db_path=db, logging=False) as two,
    ):
        with pytest.raises(RunHaltedError):
            one.run(HaltsFirst, {"text": "x"}, run_id="twice")
        MODE["run"] = True
        checked = one.history
        winner: list[Any] = []

        def history_then_resumed_elsewhere(run_id: str) -> list[Any]:
            events = checked(run_id)
            winner.append(two.resume(run_id))
            assert ENTERED.wait(WAIT)
            return events

        one.history = history_then_resumed_elsewhere  # type: ignore[method-assign]
        try:
            loser = one.resume("twice")
            with pytest.raises(ResumeError) as refused:
                loser.result(WAIT)
            # It names the engine that won, and its own.
            assert f"resumed by {two.owner.describe()} while {one.owner.describe()}" in str(
                refused.value
            )
        finally:
            GO.set()
        assert winner[0].result(WAIT) == "X"
    assert CALLS == ["x"]


# ---- the journal is usable before anything runs -------------------------------------------


def _newer_schema(path: Path) -> Path:
    Store.check(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    return path


def _random_bytes(path: Path) -> Path:
    path.write_bytes(os.urandom(8192))
    return path


def _another_applications(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    return path


def _another_application_id(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id = 1234")
        conn.execute("PRAGMA user_version = 3")
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (_directory, "it is a directory"),
        (_random_bytes, "file is not a database"),
        (_newer_schema, "schema version 99, newer than this code knows"),
        (_another_applications, "a SQLite database of another application (tables notes"),
        (_another_application_id, "not a reactor-swarm database (its application_id is 0x4d2)"),
    ],
)
def test_an_unusable_database_is_a_store_error_naming_the_file(
    system: System, tmp_path: Path, make: Any, cause: str
) -> None:
    """Engine(db_path=...) checks the file first: StoreError with the path and the cause."""
    bad = make(tmp_path / "bad.db")
    with pytest.raises(StoreError) as caught:
        Engine(system, db_path=bad, logging=False)
    assert str(bad) in str(caught.value)
    assert cause in str(caught.value)
    if make in (_another_applications, _another_application_id):  # nothing written into it
        with closing(sqlite3.connect(bad)) as conn:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            assert "events" not in {row[0] for row in tables}


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes anyway")
def test_a_read_only_database_is_a_store_error(tmp_path: Path) -> None:
    """A file the user cannot write is refused as read-only, naming the file."""
    db = Store.check(tmp_path / "ro.db")
    db.chmod(0o444)
    with pytest.raises(StoreError, match="read-only"):
        Store.check(db)


def test_a_run_whose_journal_cannot_be_written_runs_no_step(tmp_path: Path) -> None:
    """With a Store on random bytes, a new run fails before its first step (no side effect)."""
    bad = _random_bytes(tmp_path / "noise.db")
    with (
        System(Store.spec(bad), name="bad", default_timeout=5.0) as system,
        Engine(system, logging=False) as engine,
    ):
        handle = engine.start(Counted, {"text": "side effect"})
        with pytest.raises(RunFailedError) as caught:
            handle.result(WAIT)
    assert CALLS == []
    assert "the journal could not be written" in str(caught.value.errors[0].message)


# ---- a damaged row ---------------------------------------------------------------------------


def test_a_damaged_journal_row_is_named_by_run_and_seq(engine: Engine, tmp_path: Path) -> None:
    """A row that does not decode: JournalCorruptError with the run, its seq and the problem."""
    engine.run(Counted, {"text": "a"}, run_id="dmg")
    seq = next(n for n, e in enumerate(engine.history("dmg"), 1) if isinstance(e, StepCompleted))
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        conn.execute(
            "UPDATE events SET data = ? WHERE stream_id = 'run:dmg' AND seq = ?",
            (b'{"type":"StepCompleted","step":7}', seq),
        )
    with pytest.raises(JournalCorruptError) as caught:
        engine.history("dmg")
    assert (caught.value.run_id, caught.value.seq) == ("dmg", seq)
    assert f"journal row seq {seq}" in str(caught.value)
    assert "StepCompleted" in caught.value.problem


# ---- resume is honest about changed code ----------------------------------------------------

FLOW_V1 = """
import os
from dsl import Halt, Input, Reactor, step

class Flow(Reactor):
    text = Input(str)

    @step
    def a(text: str) -> str:
        return text + "!"

    @step
    def b(a: str) -> str:
        if not os.path.exists(os.environ["FLOW_GO"]):
            return Halt("waiting")
        return a + "?"
"""


def _write(folder: Path, text: str) -> type[Reactor]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "flow.py"
    path.write_text(textwrap.dedent(text))
    found: type[Reactor] = find(f"{path}:Flow")
    return found


@pytest.fixture
def halted(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A run of v1 of the flow, halted at step b; the marker that lets b go on."""
    marker = tmp_path / "go"
    monkeypatch.setenv("FLOW_GO", str(marker))
    v1 = _write(tmp_path / "v1", FLOW_V1)
    with pytest.raises(RunHaltedError):
        engine.run(v1, {"text": "hi"}, run_id="h")
    return "h", marker


def test_run_started_carries_the_plan_and_the_source_hash(
    engine: Engine, halted: tuple[str, Path]
) -> None:
    """RunStarted.plan holds each step's kind and needs, and sha256 of the file."""
    started = engine.history(halted[0])[0]
    assert isinstance(started, RunStarted)
    plan = decode_plan(started.plan)
    assert plan is not None
    assert plan.steps["b"].needs == ("a",)
    assert plan.steps["a"].kind == "function"
    assert plan.source.startswith("sha256:")


RENAMED = (
    FLOW_V1.replace("def a(text", "def renamed(text")
    .replace("def b(a: str)", "def b(renamed: str)")
    .replace("return a + ", "return renamed + ")
)
"""The flow with step ``a`` renamed ``renamed`` (and ``b`` following it)."""

MORE_NEEDS = FLOW_V1.replace("def b(a: str)", "def b(a: str, text: str)")
"""The flow with ``b`` depending on the input ``text`` too."""


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (RENAMED, "step 'a' was renamed to 'renamed'"),
        (MORE_NEEDS, "step 'b' depends on 'a', 'text', was 'a'"),
    ],
)
def test_resume_refuses_a_changed_plan_naming_the_change(
    engine: Engine, tmp_path: Path, halted: tuple[str, Path], text: str, said: str
) -> None:
    """A renamed step or a new dependency: PlanChangedError saying what changed."""
    changed = _write(tmp_path / "v2", text)
    with pytest.raises(PlanChangedError) as caught:
        engine.resume(halted[0], reactor=changed)
    assert said in caught.value.changes, caught.value.changes
    assert "internal" not in str(caught.value)


def test_added_and_removed_steps_are_named() -> None:
    """compare_plan names a removed and an added step (not a rename) and a new result type."""

    class Before(Reactor):
        @step
        def keep() -> int:
            return 1

        @step
        def gone(keep: int) -> int:
            return keep

    class After(Reactor):
        @step
        def keep() -> str:
            return "1"

        @step
        def fresh() -> int:
            return 2

    check = compare_plan(plan_print(Before), After)
    assert "step 'gone' was removed" in check.changes
    assert "step 'fresh' was added" in check.changes
    assert "step 'keep' returns str, was int" in check.changes


def test_force_resumes_a_renamed_step_and_runs_it_again(
    engine: Engine, tmp_path: Path, halted: tuple[str, Path]
) -> None:
    """With force, the renamed step runs (no `internal (ResumeError): 'a'`), and b completes."""
    run_id, marker = halted
    changed = _write(tmp_path / "v2", RENAMED)
    marker.write_text("go")
    handle = engine.resume(run_id, reactor=changed, force=True)
    assert handle.result(WAIT) == "hi!?"
    assert any("force" in w for w in handle.warnings)
    assert any(isinstance(e, StepCompleted) and e.step == "renamed" for e in engine.history(run_id))


def test_a_changed_source_only_warns_and_a_moved_file_is_remembered(
    engine: Engine, tmp_path: Path, halted: tuple[str, Path]
) -> None:
    """Same steps, other source: resumes with a warning; RunResumed records the new place."""
    run_id, marker = halted
    moved = _write(tmp_path / "moved", FLOW_V1 + "\n# a comment changes the source\n")
    marker.write_text("go")
    handle = engine.resume(run_id, reactor=moved)
    assert handle.result(WAIT) == "hi!?"
    assert any("source" in w and "changed" in w for w in handle.warnings), handle.warnings
    resumed = [e for e in engine.history(run_id) if isinstance(e, RunResumed)]
    assert resumed[-1].locator.startswith(str(tmp_path / "moved" / "flow.py"))


def test_a_missing_reactor_file_says_how_to_give_its_new_place(
    engine: Engine, halted: tuple[str, Path], tmp_path: Path
) -> None:
    """The file is gone: ResumeError naming the locator and the way to pass a new path."""
    (tmp_path / "v1" / "flow.py").unlink()
    for name in [n for n in sys.modules if n.startswith("reactor_user_file_")]:
        del sys.modules[name]  # forget the loaded module, as a new process would
    with pytest.raises(ResumeError, match="NEW/PATH.py"):
        engine.resume(halted[0])


COMPOSED_V1 = """
import os
from dsl import Halt, Input, Reactor, compose, step

class Child(Reactor):
    text = Input(str)

    @step
    def a(text: str) -> str:
        return text + "!"

    @step
    def b(a: str) -> str:
        if not os.path.exists(os.environ["FLOW_GO"]):
            return Halt("waiting")
        return a + "?"

class Flow(Reactor):
    text = Input(str)
    child = compose(Child)
"""


def test_a_composed_run_whose_steps_changed_is_refused_when_its_parent_resumes(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent's plan is the same, its child's is not: the child refuses, naming the rename."""
    marker = tmp_path / "go"
    monkeypatch.setenv("FLOW_GO", str(marker))
    v1 = _write(tmp_path / "v1", COMPOSED_V1)
    with pytest.raises(RunHaltedError):
        engine.run(v1, {"text": "hi"}, run_id="parent")
    v2 = _write(
        tmp_path / "v2",
        COMPOSED_V1.replace("def a(text", "def first(text")
        .replace("def b(a: str)", "def b(first: str)")
        .replace("return a + ", "return first + "),
    )
    marker.write_text("go")
    handle = engine.resume("parent", reactor=v2)
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    assert "step 'a' was renamed to 'first'" in caught.value.errors[0].message


def test_a_forced_resume_continues_a_composed_run_whose_steps_changed(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``force`` reaches the composed runs: the changed child resumes with the new steps."""
    marker = tmp_path / "go"
    monkeypatch.setenv("FLOW_GO", str(marker))
    v1 = _write(tmp_path / "v1", COMPOSED_V1)
    with pytest.raises(RunHaltedError):
        engine.run(v1, {"text": "hi"}, run_id="parent")
    v2 = _write(
        tmp_path / "v2",
        COMPOSED_V1.replace("def a(text", "def first(text")
        .replace("def b(a: str)", "def b(first: str)")
        .replace("return a + ", "return first + "),
    )
    marker.write_text("go")
    handle = engine.resume("parent", reactor=v2, force=True)
    assert handle.result(WAIT) == "hi!?"  # the child ran its new step, then b
