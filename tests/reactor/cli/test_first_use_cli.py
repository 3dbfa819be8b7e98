"""What a newcomer hits first on the command line: versions, help, levels, JSON, imports.

Each command runs as a subprocess, as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from reactor.cli._main import _parser
from tests.support.proc import run_python

FLOW = '''
import os
import time
from dsl import Halt, Input, Reactor, step


class Gate(Reactor):
    """Fails, halts or completes, as its input says."""

    mode = Input(str)

    @step(max_retries=0)
    def go(mode: str) -> dict:
        if mode == "fail":
            raise ValueError("told to fail")
        if mode == "halt" and not os.path.exists(os.environ["GATE_MARKER"]):
            return Halt("waiting for the marker")
        return {"mode": mode}


class Stuck(Reactor):
    """A plain def step that outlives its timeout by far."""

    @step(timeout=0.2, max_retries=0)
    def nap() -> None:
        time.sleep(600)
'''


def _reactor(*args: str, db: Path, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    return run_python(
        "-m", "reactor", *args, env={"REACTOR_DB": str(db), **(env or {})}, timeout=timeout
    )


def _flow(tmp_path: Path) -> Path:
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(FLOW))
    return path


def test_version_option_prints_the_version() -> None:
    """`reactor --version` answers like `reactor version`."""
    result = run_python("-m", "reactor", "--version")
    assert result.returncode == 0
    assert result.stdout.startswith("reactor 0.")
    assert run_python("-m", "reactor", "version").stdout.strip() in result.stdout


def test_the_command_line_starts_without_loading_the_mcp_sdk() -> None:
    """The MCP SDK is loaded when an MCP server is used, not by every `reactor` command.

    It takes longer to import than the rest of the package together, and only
    ``reactor serve`` and tool sources that name an MCP server need it.
    """
    code = (
        "import sys, reactor.cli._main; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mcp'))"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_every_subcommand_and_argument_has_help() -> None:
    """No command, positional or option is undocumented in `--help`."""
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                for name, sub in action.choices.items():
                    if not helps.get(name):
                        missing.append(f"{path} {name}")
                    walk(sub, f"{path} {name}")
            elif not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(_parser(), "reactor")
    assert missing == []


def test_a_bogus_log_level_lists_the_valid_ones(tmp_path: Path) -> None:
    """`--log-level bogus` is a usage error naming the levels, not an internal function."""
    result = _reactor("run", "x.py:X", "--log-level", "bogus", db=tmp_path / "j.db")
    assert result.returncode == 2
    assert "invalid choice: 'bogus'" in result.stderr
    assert "'debug', 'info', 'warning', 'error', 'critical'" in result.stderr
    assert "configure_logging" not in result.stderr
    ok = _reactor("run", "x.py:X", "--log-level", "WARNING", db=tmp_path / "j.db")
    assert "invalid choice" not in ok.stderr  # any case; fails later, on the missing file


def test_run_json_prints_a_machine_readable_outcome_for_each_ending(tmp_path: Path) -> None:
    """--json: completed, failed and halted runs, a resume and a usage error, as JSON."""
    flow, db = _flow(tmp_path), tmp_path / "j.db"
    marker = tmp_path / "marker"
    env = {"GATE_MARKER": str(marker)}
    done = _reactor("run", f"{flow}:Gate", "-i", "mode=ok", "--json", db=db, env=env)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert (outcome["status"], outcome["result"]) == ("completed", {"mode": "ok"})

    failed = _reactor("run", f"{flow}:Gate", "-i", "mode=fail", "--json", db=db, env=env)
    assert failed.returncode == 1
    outcome = json.loads(failed.stdout)
    assert outcome["status"] == "failed"
    (error,) = outcome["errors"]
    assert error["step"] == "go"
    assert error["error"] == "ValueError"
    assert error["message"] == "told to fail"
    assert error["retryable"] is False  # every key the README lists, even a default
    assert set(error) == {"step", "kind", "error", "message", "retryable", "traceback"}
    assert outcome["run_id"] in failed.stderr

    halted = _reactor(
        "run", f"{flow}:Gate", "-i", "mode=halt", "--run-id", "h-1", "--json", db=db, env=env
    )
    assert halted.returncode == 3
    outcome = json.loads(halted.stdout)
    assert outcome == {
        "run_id": "h-1",
        "status": "halted",
        "step": "go",
        "reason": "waiting for the marker",
        "halted": [{"step": "go", "reason": "waiting for the marker"}],
        "resume": "reactor runs resume h-1",
    }
    marker.write_text("go")
    resumed = _reactor("runs", "resume", "h-1", "--json", db=db, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {
        "run_id": "h-1",
        "status": "completed",
        "result": {"mode": "halt"},
    }
    unknown = _reactor("runs", "resume", "nope", "--json", db=db)
    assert unknown.returncode == 2
    assert json.loads(unknown.stdout) == {
        "status": "error",
        "error": f"no run 'nope' in the journal at {db}",
        "exit_status": 2,
    }
    usage = _reactor("run", f"{flow}:Gate", "--json", db=db)
    assert usage.returncode == 2
    assert json.loads(usage.stdout)["status"] == "error"


def test_a_timed_out_sync_step_does_not_keep_the_command_alive(tmp_path: Path) -> None:
    """The run fails on the step's timeout and the process exits, its thread still asleep."""
    flow = _flow(tmp_path)
    # A process kept alive by the sleeping thread would outlast this limit by minutes.
    result = _reactor("run", f"{flow}:Stuck", "--json", db=tmp_path / "j.db", timeout=60)
    assert result.returncode == 1, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["status"] == "failed"
    assert outcome["errors"][0]["kind"] == "timeout"


def test_a_reactor_file_can_import_a_module_beside_it(tmp_path: Path) -> None:
    """`reactor run dir/flow.py:Flow` where flow.py imports dir/helpers.py."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "u2_helpers_beside.py").write_text("def shout(text):\n    return text.upper()\n")
    (folder / "flow.py").write_text(
        textwrap.dedent(
            """
            from dsl import Input, Reactor, step
            from u2_helpers_beside import shout

            class Flow(Reactor):
                word = Input(str)

                @step
                def loud(word: str) -> str:
                    return shout(word)
            """
        )
    )
    result = _reactor("run", f"{folder / 'flow.py'}:Flow", "-i", "word=hi", db=tmp_path / "j.db")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "HI"


def test_loading_a_file_leaves_the_import_path_as_it_was(tmp_path: Path) -> None:
    """The file's folder is on sys.path while it loads, and only then."""
    import dsl

    (tmp_path / "u2_sibling_mod.py").write_text("VALUE = 41\n")
    (tmp_path / "flow2.py").write_text("from u2_sibling_mod import VALUE\nANSWER = VALUE + 1\n")
    before = list(sys.path)
    assert dsl.find(f"{tmp_path / 'flow2.py'}:ANSWER") == 42
    assert sys.path == before
