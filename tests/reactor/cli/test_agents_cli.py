"""``reactor agents create`` as a newcomer meets it: no LLM server, so no model to pick."""

from __future__ import annotations

from pathlib import Path

import pytest

from reactor.cli import main


def test_create_without_a_known_model_says_how_to_name_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No server lists the template's preferred models: the error names --model, not model=."""
    config = tmp_path / "config.toml"
    config.write_text("[discovery]\nenabled = false\n")
    db = str(tmp_path / "agents.db")
    create = ["agents", "create", "r1", "--template", "researcher"]
    assert main([*create, "--config", str(config), "--db", db]) == 2
    err = capsys.readouterr().err
    assert "researcher: model must be one the catalog knows" in err
    assert "give --model NAME" in err
    assert "--model auto" in err
    assert main([*create, "--model", "auto", "--config", str(config), "--db", db]) == 0
    assert "defined r1 (researcher, model auto)" in capsys.readouterr().out
    bad = ["--param", "temperature=2", "--model", "auto", "--replace"]
    assert main([*create, *bad, "--config", str(config), "--db", db]) == 2
    assert "give --model" not in capsys.readouterr().err  # only under a model error


def test_with_no_server_the_readme_agent_commands_run_on_the_fakes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agents create ... --model auto`, `agents ask ... --simulated`, `review --simulated`."""
    config = tmp_path / "config.toml"
    config.write_text("[discovery]\nenabled = false\n")
    where = ["--config", str(config), "--db", str(tmp_path / "agents.db")]
    create = ["agents", "create", "r1", "--template", "researcher", "--param", "temperature=0.8"]
    assert main([*create, "--model", "auto", *where]) == 0
    assert main(["agents", "ask", "r1", "What is known about sleep?", "--simulated", *where]) == 0
    assert "simulated answer" in capsys.readouterr().out
    pr_json, diff = tmp_path / "pr.json", tmp_path / "pr.diff"
    pr_json.write_text('{"title": "Add a limit", "body": "", "files": [{"path": "a.py"}]}')
    diff.write_text("diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x\n+y\n")
    review = ["review", "--pr-json", str(pr_json), "--diff", str(diff), *where]
    assert main(review) == 2  # no server: the reviewers' models are nowhere
    assert "give --model NAME" in capsys.readouterr().err
    assert main([*review, "--simulated"]) == 0  # the fakes: the Selector picks the models
    out = capsys.readouterr().out
    assert "# Review: Add a limit" in out
    assert "simulated answer" in out
