"""``reactor sessions``: start, step, execute, show, share, search, capabilities, stats, audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.testing import FakeServer
from reactor.cli._main import main


def config_for(server: FakeServer, tmp_path: Path) -> Path:
    """A configuration with the fake server as the only host (no discovery, no NVML)."""
    path = tmp_path / "reactor.toml"
    path.write_text(
        "[discovery]\nenabled = false\n[resources]\nnvml = false\n"
        f'[hosts.local]\nurl = "{server.url}"\nprotocol = "openai"\n'
    )
    return path


def test_a_session_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Start, add steps, refuse an outsider, execute over a fake server, search, stats, audit."""
    db = ["--db", str(tmp_path / "s.db")]
    assert (
        main(["sessions", "start", "Pick a queue", "--agent", "alice", "--tag", "infra", *db]) == 0
    )
    sid = capsys.readouterr().out.strip()
    assert (
        main(
            [
                "sessions",
                "step",
                sid,
                "Kafka gives replay",
                "--agent",
                "alice",
                "--type",
                "hypothesis",
                *db,
            ]
        )
        == 0
    )
    assert main(["sessions", "step", sid, "Nobody replays", "--agent", "bob", *db]) == 2
    assert "permission_denied" in capsys.readouterr().err
    assert main(["sessions", "share", sid, "--agent", "alice", "--participant", "bob", *db]) == 0
    assert (
        main(
            ["sessions", "step", sid, "Nobody replays", "--agent", "bob", "--type", "critique", *db]
        )
        == 0
    )
    capsys.readouterr()

    with FakeServer("openai", models=["m1", "m2"]) as server:
        config = ["--config", str(config_for(server, tmp_path))]
        code = main(
            ["sessions", "execute", sid, "Which queue?", "--agent", "bob", "--json", *config, *db]
        )
        assert code == 0, capsys.readouterr().err
        execution = json.loads(capsys.readouterr().out)
        assert execution["status"] == "completed"
        assert execution["strategy"] == "concurrent"  # a critique, but two models only
        assert main(["sessions", "capabilities", "--agent", "bob", "--json", *config, *db]) == 0
        models = [m["model"] for m in json.loads(capsys.readouterr().out)["models"]]
        assert sorted(models) == ["local/m1", "local/m2"]

    assert main(["sessions", "show", sid, "--agent", "bob", *db]) == 0
    shown = capsys.readouterr().out
    assert "2. [critique] bob (on 1 by alice): Nobody replays" in shown
    assert "decision d1 by bob: concurrent (completed)" in shown
    assert main(["sessions", "search", "replay*", "--agent", "bob", "--json", *db]) == 0
    assert [h["session_id"] for h in json.loads(capsys.readouterr().out)] == [sid]
    assert main(["sessions", "stats", "--json", *db]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["collaboration"] == [{"agent": "bob", "builds_on": "alice", "steps": 1}]
    assert stats["denied"] == {"bob": 1}
    assert main(["sessions", "audit", "--agent", "bob", "--json", *db]) == 0
    operations = [r["operation"] for r in json.loads(capsys.readouterr().out)]
    assert operations[-1] == "add_reasoning_step"  # the refused one, first
    assert "execute_orchestrated_decision" in operations


def test_reading_commands_need_an_existing_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Show on a file that does not exist says so, and creates nothing."""
    missing = tmp_path / "none.db"
    assert main(["sessions", "show", "abc", "--agent", "a", "--db", str(missing)]) == 2
    assert "no database at" in capsys.readouterr().err
    assert not missing.exists()
