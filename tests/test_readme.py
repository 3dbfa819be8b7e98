"""The README's newcomer path works as written: its code is real, its commands run."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.proc import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_the_first_code_block_is_the_example_file_it_names() -> None:
    """The first reactor in the README is examples/briefing.py's, to the character."""
    first = _blocks("python")[0]
    assert "class Briefing(Reactor" in first
    assert first in (ROOT / "examples" / "briefing.py").read_text(encoding="utf-8")
    assert "That is `examples/briefing.py`" in README


def test_every_example_path_the_readme_names_exists() -> None:
    """No `examples/my_flow.py`: each examples/... path in the README is a real file."""
    named = set(re.findall(r"examples/[\w/]+\.(?:py|toml)", README))
    assert named
    assert sorted(p for p in named if not (ROOT / p).is_file()) == []


def test_shell_commands_run_without_an_activated_venv() -> None:
    """Commands are written .venv/bin/reactor and .venv/bin/python, never bare."""
    bare = [
        line
        for block in _blocks("sh")
        for line in block.splitlines()
        if re.match(r"\s*(?:[A-Z_]+=\S*\s+)*(reactor|python3?)\s", line)  # VAR=x reactor too
    ]
    assert bare == []
    assert "source .venv/bin/activate" in README


def test_the_readme_cli_example_runs_as_written(tmp_path: Path) -> None:
    """`.venv/bin/reactor run examples/briefing.py:Briefing --input topic=tides` works."""
    (line,) = [
        line
        for block in _blocks("sh")
        for line in block.splitlines()
        if line.startswith(".venv/bin/reactor run examples/") and "topic=tides" in line
    ]
    argv = shlex.split(line.split("#", 1)[0])
    argv[0] = str(Path(sys.executable).parent / "reactor")  # this venv's, wherever it is
    result = subprocess.run(
        [*argv, "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"REACTOR_DB": str(tmp_path / "readme.db"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["topic"] == "tides"


def test_every_toml_block_loads(tmp_path: Path) -> None:
    """Each configuration the README shows passes the Config loader as written."""
    import certifi

    from actors.llm import load_config

    blocks = _blocks("toml")
    assert len(blocks) >= 5
    for i, block in enumerate(blocks):
        # The one file a block names must exist when it loads: a real CA bundle stands in.
        text = block.replace("/etc/ssl/company-ca.pem", certifi.where())
        path = tmp_path / f"block{i}.toml"
        path.write_text(text, encoding="utf-8")
        load_config(path, env={})
