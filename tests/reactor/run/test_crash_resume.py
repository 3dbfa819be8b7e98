"""Crash and resume for real: a run's process is SIGKILLed mid-run, another resumes it.

The reactors are in :mod:`tests.support.crashy`: every step logs each execution that
returns (fsynced), and one step waits for a ``go`` file. The first process runs until
that step is in flight and the steps before it are durably completed, then is killed;
a second process resumes the run (``Engine.resume`` or ``Engine(resume_interrupted=True)``)
with ``go`` created. The side-effect log then says what ran twice.

Also here: which runs :meth:`Engine.interrupted` (and so ``resume_interrupted``) picks,
from journals written as a dead, a live or another machine's process would leave them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import System
from reactor.app import Engine
from reactor.run import ResumeError
from reactor.run._owner import THIS_PROCESS
from reactor.run._records import (
    RUN_EVENT_DECODER,
    Owner,
    RunCompleted,
    RunEvent,
    RunHalted,
    RunResumed,
    RunStarted,
    StepCompleted,
    StepStarted,
    stream_of,
)
from tests.support import crashy
from tests.support.proc import ROOT

# -- running the crashy program ----------------------------------------------------------

_WAIT_S = 30.0  # a bound against hanging, not a timing assertion


@dataclass
class Crash:
    """One crash scenario's files: the database and the marker directory."""

    tmp: Path

    @property
    def db(self) -> Path:
        return self.tmp / "runs.db"

    @property
    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        return {**clean, "REACTOR_DB": str(self.db), crashy.DIR_ENV: str(self.tmp)}

    def spawn(self, *args: str, name: str) -> subprocess.Popen[str]:
        """``python -m tests.support.crashy ARGS``, output into files named after ``name``."""
        with (
            (self.tmp / f"{name}.out").open("w") as out,
            (self.tmp / f"{name}.err").open("w") as err,
        ):
            return subprocess.Popen(
                [sys.executable, "-m", "tests.support.crashy", *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=err,
                text=True,
            )

    def output(self, name: str) -> str:
        return (self.tmp / f"{name}.out").read_text() + (self.tmp / f"{name}.err").read_text()

    def result(self, name: str) -> Any:
        """The ``result`` a crashy process printed."""
        for line in (self.tmp / f"{name}.out").read_text().splitlines():
            data = json.loads(line)
            if "result" in data:
                return data["result"]
        raise AssertionError(f"no result from {name}:\n{self.output(name)}")

    def effects(self) -> list[str]:
        return crashy.lines(self.tmp, crashy.EFFECTS)

    def starts(self) -> list[str]:
        return crashy.lines(self.tmp, crashy.STARTS)

    def go(self) -> None:
        (self.tmp / crashy.GO).touch()

    def events(self, run_id: str) -> list[RunEvent]:
        """The run's journal, read from the file read-only (no Store involved)."""
        if not self.db.exists():
            return []
        with closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as conn:
            try:
                rows = conn.execute(
                    "SELECT data FROM events WHERE stream_id = ? ORDER BY seq",
                    (stream_of(run_id),),
                ).fetchall()
            except sqlite3.OperationalError:  # not created yet
                return []
        return [RUN_EVENT_DECODER.decode(row[0]) for row in rows]

    def streams(self) -> set[str]:
        with closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as conn:
            return {row[0] for row in conn.execute("SELECT DISTINCT stream_id FROM events")}

    def wait(
        self, what: str, condition: Callable[[], bool], proc: subprocess.Popen[str], name: str
    ) -> None:
        """Poll until ``condition()``; fail if the process ``name`` ends first."""
        deadline = time.monotonic() + _WAIT_S
        while not condition():
            if proc.poll() is not None:
                pytest.fail(f"{name} ended while waiting for {what}:\n{self.output(name)}")
            if time.monotonic() > deadline:
                pytest.fail(f"gave up waiting for {what}:\n{self.output(name)}")
            time.sleep(0.02)

    def run_and_kill(
        self,
        reactor: str,
        n: int,
        run_id: str,
        *,
        gated: str,
        logged: list[str],
        durable: dict[str, list[str]],
        ended: Sequence[str] = (),
    ) -> None:
        """Start ``reactor`` in a process and SIGKILL it mid-run.

        It is killed once ``gated`` is in flight, the side-effect log shows ``logged``,
        the steps in ``durable`` (by run id) have their ``StepCompleted`` journaled, and
        the runs in ``ended`` their ``RunCompleted``.
        """
        first = self.spawn("start", run_id, reactor, str(n), name="first")
        try:
            self.wait(f"{gated} to start", lambda: gated in self.starts(), first, "first")
            self.wait(
                f"{logged} logged", lambda: set(logged) <= set(self.effects()), first, "first"
            )
            for rid, steps in durable.items():
                self.wait(f"{steps} in {rid}'s journal", _done(self, rid, steps), first, "first")
            for rid in ended:
                self.wait(f"{rid} to end", _ended(self, rid), first, "first")
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
        assert first.returncode == -signal.SIGKILL
        assert self.result_lines("first") == [], "the first run must not have finished"

    def result_lines(self, name: str) -> list[str]:
        out = (self.tmp / f"{name}.out").read_text().splitlines()
        return [line for line in out if "result" in json.loads(line)]


def _done(crash: Crash, run_id: str, steps: list[str]) -> Callable[[], bool]:
    """Whether every one of ``steps`` has its StepCompleted in ``run_id``'s journal."""

    def check() -> bool:
        completed = {e.step for e in crash.events(run_id) if isinstance(e, StepCompleted)}
        return set(steps) <= completed

    return check


def _ended(crash: Crash, run_id: str) -> Callable[[], bool]:
    """Whether ``run_id``'s RunCompleted is in its journal."""
    return lambda: any(isinstance(e, RunCompleted) for e in crash.events(run_id))


def _types(events: list[RunEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def _status(db: Path, run_id: str) -> str:
    """The run's status as a fresh Engine in this process lists it."""
    with System(name="lister", default_timeout=10.0) as system:
        engine = Engine(system, db_path=db, tracing=False, logging=False)
        try:
            statuses: dict[str, str] = {r.run_id: r.status for r in engine.runs()}
            return statuses[run_id]
        finally:
            engine.close()


@pytest.fixture
def crash(tmp_path: Path) -> Crash:
    return Crash(tmp_path)


# -- SIGKILL and resume ----------------------------------------------------------------------

PIPELINE_DONE = ["fetch", "left", "right", "upper"]


def _check_pipeline_resumed(crash: Crash, run_id: str, reason: str) -> None:
    effects = crash.effects()
    for name in PIPELINE_DONE:
        assert effects.count(name) == 1, effects  # completed before the kill: not again
    assert effects.count("gate") == 1  # returned only in the second process
    assert crash.starts() == ["gate", "gate"]  # the in-flight step ran again
    assert effects.count("final") == 1
    events = crash.events(run_id)
    assert isinstance(events[-1], RunCompleted)
    assert msgspec.json.decode(events[-1].value) == crashy.pipeline_result(1)
    resumed = [e for e in events if isinstance(e, RunResumed)]
    assert [r.reason for r in resumed] == [reason]
    assert isinstance(events[0], RunStarted)
    assert resumed[0].owner.pid != events[0].owner.pid  # another process resumed it
    gate = [e for e in events if isinstance(e, StepStarted | StepCompleted) and e.step == "gate"]
    # Started before the kill; after it, the same attempt ran again (not a retry). Its
    # StepStarted there is left out when its StepCompleted went in the same batch.
    assert isinstance(gate[0], StepStarted)
    assert gate.index(gate[0]) < events.index(resumed[0]) < events.index(gate[-1])
    assert isinstance(gate[-1], StepCompleted)
    assert {e.attempt for e in gate} == {1}
    completed = [e.step for e in events if isinstance(e, StepCompleted)]
    assert sorted(completed) == sorted([*PIPELINE_DONE, "gate", "final"])  # each once


@pytest.mark.slow
def test_killed_run_resumed_by_engine_resume_runs_only_what_had_not_completed(
    crash: Crash,
) -> None:
    """After SIGKILL, Engine.resume reruns the in-flight step only; completed ones replay."""
    crash.run_and_kill(
        "Pipeline",
        1,
        "kill-resume",
        gated="gate",
        logged=PIPELINE_DONE,
        durable={"kill-resume": PIPELINE_DONE},
    )
    assert _status(crash.db, "kill-resume") == "interrupted"

    second = crash.spawn("resume", "kill-resume", name="second")
    try:
        # Resumed, and blocked again at the gate: the run is running, in the second process.
        crash.wait("the resumed gate", lambda: crash.starts().count("gate") == 2, second, "second")
        crash.wait(
            "RunResumed in the journal",
            lambda: any(isinstance(e, RunResumed) for e in crash.events("kill-resume")),
            second,
            "second",
        )
        assert _status(crash.db, "kill-resume") == "running"
        crash.go()
        assert second.wait(timeout=_WAIT_S) == 0, crash.output("second")
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert crash.result("second") == crashy.pipeline_result(1)
    _check_pipeline_resumed(crash, "kill-resume", "resumed")
    assert _status(crash.db, "kill-resume") == "completed"


@pytest.mark.slow
def test_a_run_still_running_in_another_process_is_not_resumed(crash: Crash) -> None:
    """Engine.resume (the daemon's resume API) refuses a run a live process is running.

    Resuming it anyway would run its pending steps in two processes at once.
    """
    first = crash.spawn("start", "busy", "Pipeline", "1", name="first")
    try:
        crash.wait("the gate", lambda: "gate" in crash.starts(), first, "first")
        crash.wait("the first steps", _done(crash, "busy", PIPELINE_DONE), first, "first")
        with System(name="other", default_timeout=10.0) as system:
            engine = Engine(system, db_path=crash.db, tracing=False, logging=False)
            try:
                with pytest.raises(ResumeError, match=f"still running in process {first.pid}"):
                    engine.resume("busy")
            finally:
                engine.close()
        crash.go()
        assert first.wait(timeout=_WAIT_S) == 0, crash.output("first")
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert crash.starts() == ["gate"]
    assert crash.result("first") == crashy.pipeline_result(1)
    assert not any(isinstance(e, RunResumed) for e in crash.events("busy"))


@pytest.mark.slow
def test_killed_run_is_resumed_at_start_up_with_resume_interrupted(crash: Crash) -> None:
    """Engine(resume_interrupted=True) in a new process picks up and finishes the killed run."""
    crash.run_and_kill(
        "Pipeline",
        1,
        "kill-auto",
        gated="gate",
        logged=PIPELINE_DONE,
        durable={"kill-auto": PIPELINE_DONE},
    )
    with System(name="lister", default_timeout=10.0) as system:
        engine = Engine(system, db_path=crash.db, tracing=False, logging=False)
        assert engine.interrupted() == ["kill-auto"]
        assert [(r.run_id, r.status) for r in engine.runs()] == [("kill-auto", "interrupted")]
        engine.close()

    crash.go()
    second = crash.spawn("auto", "kill-auto", name="second")
    assert second.wait(timeout=_WAIT_S) == 0, crash.output("second")
    assert crash.result("second") == crashy.pipeline_result(1)
    _check_pipeline_resumed(crash, "kill-auto", "its process died")


@pytest.mark.slow
def test_killed_composed_run_continues_its_child_when_the_parent_resumes(crash: Crash) -> None:
    """Resuming the parent continues its composed child run: the child's done steps replay."""
    child = "kill-outer/sub.1"
    crash.run_and_kill(
        "Outer",
        1,
        "kill-outer",
        gated="inner.two",
        logged=["outer.before", "inner.one"],
        durable={"kill-outer": ["before"], child: ["one"]},
    )
    with System(name="lister", default_timeout=10.0) as system:
        engine = Engine(system, db_path=crash.db, tracing=False, logging=False)
        assert engine.interrupted() == ["kill-outer"]  # the child is its parent's business
        statuses = {r.run_id: r.status for r in engine.runs(include_children=True)}
        assert statuses == {"kill-outer": "interrupted", child: "interrupted"}
        engine.close()

    crash.go()
    second = crash.spawn("resume", "kill-outer", name="second")
    assert second.wait(timeout=_WAIT_S) == 0, crash.output("second")
    assert crash.result("second") == crashy.outer_result(1)

    assert crash.effects() == [
        "outer.before",
        "inner.one",
        "inner.two",
        "inner.three",
        "outer.after",
    ]
    assert crash.starts() == ["inner.two", "inner.two"]
    assert crash.streams() == {stream_of("kill-outer"), stream_of(child)}  # no second child
    events = crash.events(child)
    assert isinstance(events[-1], RunCompleted)
    assert [e.reason for e in events if isinstance(e, RunResumed)] == ["its parent resumed"]
    assert [e.step for e in events if isinstance(e, StepCompleted)] == ["one", "two", "three"]
    parent = crash.events("kill-outer")
    assert isinstance(parent[-1], RunCompleted)
    assert [e.reason for e in parent if isinstance(e, RunResumed)] == ["resumed"]


@pytest.mark.slow
def test_killed_for_each_does_not_rerun_children_that_completed(crash: Crash) -> None:
    """A for_each killed mid-way: resumed at start-up, only the unfinished child runs again."""
    crash.run_and_kill(
        "Fan",
        3,
        "kill-fan",
        gated="item.1",
        logged=["items", "item.0", "item.2"],
        durable={
            "kill-fan": ["items"],
            "kill-fan/squares.1/0": ["square"],
            "kill-fan/squares.1/2": ["square"],
        },
        ended=["kill-fan/squares.1/0", "kill-fan/squares.1/2"],
    )
    crash.go()
    second = crash.spawn("auto", "kill-fan", name="second")
    assert second.wait(timeout=_WAIT_S) == 0, crash.output("second")
    assert crash.result("second") == 0 + 1 + 4

    effects = crash.effects()
    assert sorted(effects) == sorted(["items", "item.0", "item.1", "item.2", "total"])
    assert crash.starts() == ["item.1", "item.1"]
    children = {f"kill-fan/squares.1/{i}" for i in range(3)}
    assert crash.streams() == {stream_of(r) for r in {"kill-fan", *children}}
    for done in ("kill-fan/squares.1/0", "kill-fan/squares.1/2"):
        # Answered from its journal: not resumed, nothing appended (its StepStarted is
        # there only if the linger sent it before the step completed).
        assert [t for t in _types(crash.events(done)) if t != "StepStarted"] == [
            "RunStarted",
            "StepCompleted",
            "RunCompleted",
        ]
    unfinished = crash.events("kill-fan/squares.1/1")
    assert [e.reason for e in unfinished if isinstance(e, RunResumed)] == ["its parent resumed"]
    assert isinstance(unfinished[-1], RunCompleted)


@pytest.mark.slow
def test_killed_recurse_does_not_rerun_iterations_that_completed(crash: Crash) -> None:
    """A recurse killed in iteration 2: resumed, iteration 1 answers from its journal."""
    first_iteration = "kill-spiral/loop.1/1"
    crash.run_and_kill(
        "Spiral",
        10,
        "kill-spiral",
        gated="turn.2",
        logged=["turn.1"],
        durable={first_iteration: ["turn"]},
        ended=[first_iteration],
    )
    crash.go()
    second = crash.spawn("resume", "kill-spiral", name="second")
    assert second.wait(timeout=_WAIT_S) == 0, crash.output("second")
    assert crash.result("second") == crashy.spiral_result(10)

    assert crash.effects() == ["turn.1", "turn.2", "turn.3", "spiral.after"]
    assert crash.starts() == ["turn.2", "turn.2"]  # the unfinished iteration ran again
    iterations = [f"kill-spiral/loop.1/{i}" for i in (1, 2, 3)]
    assert crash.streams() == {stream_of(r) for r in ["kill-spiral", *iterations]}
    done = crash.events(first_iteration)
    assert [t for t in _types(done) if t != "StepStarted"] == [
        "RunStarted",
        "StepCompleted",
        "RunCompleted",
    ]
    unfinished = crash.events(iterations[1])
    assert [e.reason for e in unfinished if isinstance(e, RunResumed)] == ["its parent resumed"]
    assert isinstance(unfinished[-1], RunCompleted)
    assert isinstance(crash.events(iterations[2])[-1], RunCompleted)
    parent = crash.events("kill-spiral")
    assert [e.step for e in parent if isinstance(e, StepCompleted)] == ["loop", "after"]


@pytest.mark.slow
def test_killed_loop_resumes_at_the_iteration_it_reached(crash: Crash) -> None:
    """A step re-emitting itself, killed in iteration 2: iteration 1 does not run again."""
    crash.run_and_kill(
        "Loop", 10, "kill-loop", gated="spin.2", logged=["spin.1"], durable={"kill-loop": ["spin"]}
    )
    crash.go()
    second = crash.spawn("resume", "kill-loop", name="second")
    assert second.wait(timeout=_WAIT_S) == 0, crash.output("second")
    assert crash.result("second") == 10 + 1 + 2 + 3
    assert crash.effects() == ["spin.1", "spin.2", "spin.3", "loop.after"]
    assert crash.starts() == ["spin.2", "spin.2"]  # the unfinished iteration ran again
    events = crash.events("kill-loop")
    iterations = [e for e in events if isinstance(e, StepCompleted) and e.step == "spin"]
    assert [e.again for e in iterations] == [True, True, False]


# -- which runs count as interrupted ---------------------------------------------------------

QUICK = "tests.support.crashy:Quick"


@pytest.fixture
def processes() -> Iterator[tuple[int, int]]:
    """The pid of a process that has ended, and of one that is still running."""
    ended = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert ended.returncode == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield dead.pid, live.pid
    finally:
        live.kill()
        live.wait()


def _owner(pid: int, host: str | None = None) -> Owner:
    # As a real owner records it: not before its process started (an owner whose
    # process started later than it claims is a reused pid, not that owner).
    return Owner(host=host or socket.gethostname(), pid=pid, started_at=time.time())


def _write_run(
    engine: Engine, run_id: str, owner: Owner, *later: RunEvent, parent: str | None = None
) -> None:
    """Journal a run of Quick (n=2) as a process ``owner`` would have left it."""
    started = RunStarted(
        run_id=run_id,
        reactor="Quick",
        locator=QUICK,
        inputs=msgspec.Raw(b'{"n": 2}'),
        options={"max_concurrency": 4},
        parent=parent,
        owner=owner,
        at=time.time(),
    )
    for seq, event in enumerate((started, *later)):
        engine.journal.append(
            stream_of(run_id), type(event).__name__, msgspec.json.encode(event), expected_seq=seq
        )


def _journal_scenarios(engine: Engine, dead: int, live: int) -> set[str]:
    """Runs in every state; returns the ids of those that are interrupted."""
    now = time.time()
    in_flight = StepStarted(step="double", attempt=1, at=now)
    _write_run(engine, "dead", _owner(dead), in_flight)
    _write_run(engine, "dead-just-started", _owner(dead))
    _write_run(
        engine,
        "resumed-by-dead",
        _owner(live),
        RunResumed(run_id="resumed-by-dead", owner=_owner(dead), reason="resumed", at=now),
    )
    _write_run(
        engine,
        "dead-halted",
        _owner(dead),
        in_flight,
        RunHalted(run_id="dead-halted", step="double", reason="wait", at=now),
    )
    _write_run(engine, "dead-child", _owner(dead), in_flight, parent="dead")
    _write_run(engine, "live", _owner(live), in_flight)
    _write_run(engine, "this-process", THIS_PROCESS, in_flight)
    _write_run(engine, "other-host", _owner(dead, host="elsewhere.invalid"), in_flight)
    _write_run(
        engine,
        "resumed-by-live",
        _owner(dead),
        RunResumed(run_id="resumed-by-live", owner=_owner(live), reason="resumed", at=now),
        in_flight,
    )
    _write_run(
        engine,
        "dead-completed",
        _owner(dead),
        in_flight,
        StepCompleted(step="double", attempt=1, value=msgspec.Raw(b"4"), started_at=now, at=now),
        RunCompleted(run_id="dead-completed", value=msgspec.Raw(b"4"), at=now),
    )
    return {"dead", "dead-just-started", "resumed-by-dead"}


def test_interrupted_is_top_level_runs_whose_last_process_is_gone(
    system: System, tmp_path: Path, processes: tuple[int, int]
) -> None:
    """interrupted(): not halted, child, live-process, other-host, or ended runs."""
    engine = Engine(system, db_path=tmp_path / "runs.db", tracing=False, logging=False)
    expected = _journal_scenarios(engine, *processes)
    assert sorted(engine.interrupted()) == sorted(expected)
    statuses = {r.run_id: r.status for r in engine.runs(include_children=True)}
    assert statuses == {
        "dead": "interrupted",
        "dead-just-started": "interrupted",
        "resumed-by-dead": "interrupted",
        "dead-halted": "halted",
        "dead-child": "interrupted",
        "live": "running",
        "this-process": "running",
        "other-host": "running",
        "resumed-by-live": "running",  # started by a dead process, resumed by a live one
        "dead-completed": "completed",
    }
    engine.close()


def test_resume_interrupted_resumes_exactly_the_interrupted_runs(
    system: System, tmp_path: Path, processes: tuple[int, int]
) -> None:
    """resume_interrupted() returns a handle per interrupted run, each finishing the run."""
    engine = Engine(system, db_path=tmp_path / "runs.db", tracing=False, logging=False)
    expected = _journal_scenarios(engine, *processes)
    handles = engine.resume_interrupted()
    assert {h.run_id for h in handles} == expected
    assert [h.result(timeout=10) for h in handles] == [4] * len(expected)
    for run_id in expected:
        resumed = [e for e in engine.history(run_id) if isinstance(e, RunResumed)]
        assert resumed[-1].reason == "its process died"
        assert resumed[-1].owner == engine.owner
    assert engine.interrupted() == []
    engine.close()


def test_engine_resume_interrupted_at_start_leaves_other_runs_alone(
    system: System, tmp_path: Path, processes: tuple[int, int]
) -> None:
    """Engine(resume_interrupted=True) finishes the interrupted runs and appends to no other."""
    db = tmp_path / "runs.db"
    writer = Engine(system, db_path=db, tracing=False, logging=False)
    expected = _journal_scenarios(writer, *processes)
    before = {r.run_id: r.last_event for r in writer.runs(include_children=True)}

    engine = Engine(system, db_path=db, tracing=False, logging=False, resume_interrupted=True)
    deadline = time.monotonic() + _WAIT_S
    while {r.run_id for r in engine.runs() if r.status == "completed"} < {
        *expected,
        "dead-completed",
    }:
        assert time.monotonic() < deadline, engine.runs()
        time.sleep(0.02)
    for run_id in expected:
        last = engine.history(run_id)[-1]
        assert isinstance(last, RunCompleted)
        assert msgspec.json.decode(last.value) == 4
    after = {r.run_id: r.last_event for r in engine.runs(include_children=True)}
    assert {k: v for k, v in after.items() if k not in expected} == {
        k: v for k, v in before.items() if k not in expected
    }
    for run_id in set(before) - expected:
        assert not any(
            isinstance(e, RunResumed) and e.owner.pid == os.getpid() for e in engine.history(run_id)
        )
    engine.close()
    writer.close()
