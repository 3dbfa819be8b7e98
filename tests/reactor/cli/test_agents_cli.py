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
