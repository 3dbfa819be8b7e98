"""Every example in examples/ runs, and so does `reactor demo`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.proc import ROOT, run_python

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def run(*args: str, env_db: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a Python command from the repository root, with its own database file."""
    return run_python(*args, env={"REACTOR_DB": str(env_db)} if env_db is not None else None)


def test_there_are_examples() -> None:
    """The examples folder is not empty (so the next test is not vacuous)."""
    assert {p.name for p in EXAMPLES} >= {"quickstart.py", "supervision.py"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path, tmp_path: Path) -> None:
    """The example exits 0 and prints something."""
    result = run(str(path), env_db=tmp_path / "example.db")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_quickstart_shows_replies_and_nested_spans(tmp_path: Path) -> None:
    """The quickstart's output has both replies and the I/O span under the handler."""
    result = run(str(ROOT / "examples" / "quickstart.py"), env_db=tmp_path / "q.db")
    assert "sync:  Hello, Alan!" in result.stdout
    assert "async: Hello, Dr. Ada! / Hello, Grace!" in result.stdout
    assert "    greeter Greet" in result.stdout
    assert "      io look_up_title" in result.stdout


def test_reactor_demo_runs_the_briefing_reactor(tmp_path: Path) -> None:
    """`reactor demo` runs parallel ask steps and a combining one, says which servers, records."""
    db = tmp_path / "demo.db"
    result = run("-m", "reactor", "demo", "--db", str(db), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (
        "no LLM server found: using the built-in fake servers" in result.stderr
        or "LLM server " in result.stderr
    )
    report = json.loads(result.stdout[: result.stdout.index("\nthe run as journaled")])
    assert report["topic"]
    assert report["brief"]
    assert set(report["notes"]) == {"for", "against", "precedent"}
    assert report["tokens"] > 0
    assert report["editor_chosen_because"]  # the editor is a select step
    for name in ("question", "optimist", "sceptic", "historian", "editor", "report"):
        assert f"{name} " in result.stdout  # the journaled steps table
    assert "completed" in result.stdout
    assert db.exists()


def test_actors_demo_runs_end_to_end(tmp_path: Path) -> None:
    """`reactor actors-demo` answers from sync and async code, survives a crash, traces."""
    db = tmp_path / "demo.db"
    result = run("-m", "reactor", "actors-demo", "--db", str(db))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "researchers restarted researcher-2" in out
    assert "sync ask: report 'actors'" in out
    assert "async ask: report 'asyncio'" in out
    assert "journaled as seqs [1, 2, 3]" in out
    assert "editor timer retry researcher-2" in out
    # Without an LLM server on the default ports, the fakes answer, and the demo says so.
    assert "using the built-in fake servers" in out or "LLM server:" in out
    assert "ChatRequest" in out
    assert "chat fake-small" in out or "LLM server:" in out
    assert db.exists()
