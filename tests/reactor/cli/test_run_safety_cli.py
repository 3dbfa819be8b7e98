"""`reactor run` and `reactor runs ...` never lose what a user asked for, and say why.

``reactor run`` runs as a subprocess, as a user runs it (also three at once racing on
one ``--run-id``); ``runs list`` and ``runs show`` run in-process on real SQLite files.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import otel
from actors import System
from actors.store import Store
from reactor.app import Engine
from reactor.cli._runs import run_list, run_show
from reactor.run import RunFailedError
from tests.support.proc import ROOT, run_python

FLOW = """
import os
from dsl import Halt, Input, Reactor, step

class Flow(Reactor):
    text = Input(str)

    @step
    def a(text: str) -> str:
        with open(os.environ["FLOW_MARKS"], "a") as marks:
            marks.write(text + "\\n")
        return text + "!"

    @step
    def b(a: str) -> str:
        if os.environ.get("FLOW_FAIL"):
            raise ValueError("told to fail: " + a)
        if not os.path.exists(os.environ["FLOW_GO"]):
            return Halt("waiting")
        return a + "?"
"""


@pytest.fixture(autouse=True)
def restore_logging() -> Any:
    """The commands point structlog at standard error; put the suite's set-up back after."""
    yield
    otel.configure_logging(level="warning")


class Cli:
    """Runs `python -m reactor` on one database, with the flow's marks and go-file."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.db = tmp_path / "runs.db"
        self.marks = tmp_path / "marks"
        self.go = tmp_path / "go"
        self.flow = tmp_path / "flow.py"
        self.flow.write_text(textwrap.dedent(FLOW))

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "REACTOR_DB": str(self.db),
            "FLOW_MARKS": str(self.marks),
            "FLOW_GO": str(self.go),
            **extra,
        }

    def __call__(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return run_python("-m", "reactor", *args, env=self.env(**extra))

    def marked(self) -> list[str]:
        return self.marks.read_text().split() if self.marks.exists() else []


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The command on a fresh database and flow file."""
    return Cli(tmp_path)


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# ---- run ids -------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_under_an_existing_id_exits_2_and_keeps_the_old_run(cli: Cli) -> None:
    """`--run-id X` twice: the second exits 2, one line naming X and `runs resume`."""
    cli.go.write_text("go")
    first = cli("run", f"{cli.flow}:Flow", "-i", "text=one", "--run-id", "X", "--no-progress")
    assert first.returncode == 0, first.stderr
    again = cli("run", f"{cli.flow}:Flow", "-i", "text=two", "--run-id", "X", "--no-progress")
    assert again.returncode == 2, again.stderr
    line = _one_line(again.stderr)
    assert "run X already exists" in line
    assert "reactor runs resume X" in line
    assert again.stdout == ""
    assert cli.marked() == ["one"]


@pytest.mark.slow
def test_three_processes_racing_on_one_id_run_it_once(cli: Cli) -> None:
    """Three `reactor run --run-id R` at once: one exits 0, two exit 2; the step ran once."""
    cli.go.write_text("go")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    command = [sys.executable, "-m", "reactor", "run", f"{cli.flow}:Flow", "--no-progress"]
    procs = [
        subprocess.Popen(
            [*command, "-i", f"text=p{n}", "--run-id", "R"],
            cwd=ROOT,
            env={**clean, **cli.env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    results = [(p.wait(60), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2, 2], results
    for code, _, stderr in results:
        if code == 2:
            assert "run R already exists" in _one_line(stderr)
    assert len(cli.marked()) == 1, cli.marked()
    shown = json.loads(cli("runs", "show", "R", "--json").stdout)
    assert shown["inputs"] == {"text": cli.marked()[0]}


# ---- an unusable database ---------------------------------------------------------------------


def _random(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def _newer(path: Path) -> None:
    Store.check(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 42")


@pytest.mark.slow
def test_run_on_an_unusable_database_exits_2_before_any_step(cli: Cli) -> None:
    """A directory, random bytes, a newer schema: one line naming file and cause; no step ran."""
    cases: list[tuple[Path, str]] = []
    folder = cli.dir / "folder.db"
    folder.mkdir()
    cases.append((folder, "it is a directory"))
    noise = cli.dir / "noise.db"
    _random(noise)
    cases.append((noise, "file is not a database"))
    newer = cli.dir / "newer.db"
    _newer(newer)
    cases.append((newer, "schema version 42"))
    for db, cause in cases:
        done = cli("run", f"{cli.flow}:Flow", "-i", "text=x", "--no-progress", REACTOR_DB=str(db))
        assert done.returncode == 2, done.stderr
        line = _one_line(done.stderr)
        assert str(db) in line
        assert cause in line
    assert cli.marked() == []


@pytest.mark.parametrize(("make", "cause"), [(_random, "file is not a database")])
def test_runs_list_on_an_unusable_database_says_why(tmp_path: Path, make: Any, cause: str) -> None:
    """`runs list` on random bytes or a directory: exit 2, 'cannot read', the file and cause."""
    noise = tmp_path / "noise.db"
    make(noise)
    folder = tmp_path / "folder.db"
    folder.mkdir()
    for db, why in ((noise, cause), (folder, "it is a directory")):
        out, err = io.StringIO(), io.StringIO()
        assert run_list(db=db, limit=10, as_json=False, out=out, err=err) == 2
        assert out.getvalue() == ""
        assert "cannot read the runs" in err.getvalue()
        assert str(db) in err.getvalue()
        assert why in err.getvalue()


# ---- runs show: damaged rows and tracebacks -------------------------------------------------


def _failed_run(db: Path) -> str:
    def boom() -> int:
        raise KeyError("deep inside")

    from dsl import Reactor, step

    class Boom(Reactor):
        fails = step(boom)

    with (
        System(name="writer", default_timeout=5.0) as system,
        Engine(system, db_path=db, logging=False) as engine,
        pytest.raises(RunFailedError),
    ):
        engine.run(Boom, run_id="boom")
    return "boom"


def test_runs_show_traceback_prints_where_the_step_raised(tmp_path: Path) -> None:
    """`runs show ID` hints at --traceback; with it, the traceback of the step is printed."""
    db = tmp_path / "tb.db"
    run_id = _failed_run(db)
    out, err = io.StringIO(), io.StringIO()
    assert run_show(run_id, db=db, as_json=False, out=out, err=err) == 0
    assert f"reactor runs show {run_id} --traceback" in out.getvalue()
    out = io.StringIO()
    assert run_show(run_id, db=db, as_json=False, traceback=True, out=out, err=err) == 0
    text = out.getvalue()
    assert "traceback of step fails (KeyError)" in text
    assert "in boom" in text
    assert "KeyError: 'deep inside'" in text


def test_runs_show_names_a_damaged_row_and_shows_the_rest(tmp_path: Path) -> None:
    """A corrupted row: stderr names the run, the seq and the problem; the rest is shown."""
    db = tmp_path / "damaged.db"
    run_id = _failed_run(db)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE events SET data = ? WHERE stream_id = ? AND seq = 2",
            (b"not json at all", f"run:{run_id}"),
        )
    out, err = io.StringIO(), io.StringIO()
    assert run_show(run_id, db=db, as_json=True, out=out, err=err) == 1
    assert f"run {run_id}: journal row seq 2 is damaged" in err.getvalue()
    assert "Traceback" not in err.getvalue()
    shown = json.loads(out.getvalue())
    assert shown["status"] == "failed"


# ---- resume and changed code -------------------------------------------------------------


@pytest.mark.slow
def test_resume_refuses_a_renamed_step_then_force_and_a_moved_file(cli: Cli) -> None:
    """Renamed step: exit 2 naming it; --force completes; a moved file resumes from its path."""
    halted = cli("run", f"{cli.flow}:Flow", "-i", "text=hi", "--run-id", "H", "--no-progress")
    assert halted.returncode == 3, halted.stderr
    original = cli.flow.read_text()
    cli.flow.write_text(
        original.replace("def a(text", "def first(text")
        .replace("def b(a: str)", "def b(first: str)")
        .replace("+ a)", "+ first)")
        .replace("return a + ", "return first + ")
    )
    refused = cli("runs", "resume", "H", "--no-progress")
    assert refused.returncode == 2, refused.stderr
    line = _one_line(refused.stderr)
    assert "step 'a' was renamed to 'first'" in line
    assert "--force" in line

    cli.flow.write_text(original + "\n# only a comment changed\n")
    moved = cli.dir / "elsewhere" / "flow.py"
    moved.parent.mkdir()
    cli.flow.rename(moved)
    lost = cli("runs", "resume", "H", "--no-progress")
    assert lost.returncode == 2
    assert "reactor runs resume H NEW.py" in lost.stderr
    cli.go.write_text("go")
    resumed = cli("runs", "resume", "H", str(moved), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == "hi!?"
    assert "warning: run H: the source of reactor 'Flow'" in resumed.stderr


@pytest.mark.slow
def test_force_resumes_a_changed_plan(cli: Cli) -> None:
    """`runs resume H --force` after a rename runs the renamed step and completes."""
    halted = cli("run", f"{cli.flow}:Flow", "-i", "text=yo", "--run-id", "H", "--no-progress")
    assert halted.returncode == 3, halted.stderr
    cli.flow.write_text(
        cli.flow.read_text()
        .replace("def a(text", "def first(text")
        .replace("def b(a: str)", "def b(first: str)")
        .replace("return a + ", "return first + ")
    )
    cli.go.write_text("go")
    forced = cli("runs", "resume", "H", "--force", "--no-progress")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout) == "yo!?"
    assert "resumed with force" in forced.stderr
