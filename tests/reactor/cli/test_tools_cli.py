"""``reactor tools pending`` and ``reactor runs approve|reject`` given a run that is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from reactor.cli import main


def test_a_mistyped_run_id_is_named_as_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run the journal lacks: exit 2 and "no run", not "nothing waits for approval"."""
    db = str(tmp_path / "runs.db")
    run = ["run", "tests.support.reactors:Echo", "--input", "text=hi", "--no-progress"]
    assert main([*run, "--db", db]) == 0
    capsys.readouterr()
    assert main(["tools", "pending", "nosuch", "--db", db]) == 2
    assert (
        capsys.readouterr().err == "reactor tools pending: error: no run 'nosuch' in the journal\n"
    )
    for action in ("approve", "reject"):
        assert main(["runs", action, "nosuch", "call-1", "--by", "ann", "--db", db]) == 2
        err = capsys.readouterr().err
        assert err == f"reactor runs {action}: error: no run 'nosuch' in the journal\n"
