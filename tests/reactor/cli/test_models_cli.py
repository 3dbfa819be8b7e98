"""``reactor models``: the catalog of the configured hosts, with the persisted history.

A real fake server over loopback, a real TOML file and a real SQLite journal holding a
history that a real Selector saved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import Ref, System
from actors.llm import ChatRequest, load_config, start_fleet
from actors.orchestration import SaveHistory, SelectChat, Selector
from actors.store import Store
from actors.testing import FakeModel, FakeServer
from reactor.cli import main


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer("ollama", models=[FakeModel("llama3.2", context_length=8192)]) as running:
        yield running


def write_config(tmp_path: Path, server: FakeServer, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[hosts.local]
url = "{server.url}"
protocol = "ollama"

[discovery]
enabled = false

[resources]
nvml = false

[prices."local/llama3.2"]
input_per_mtok = 0.5
output_per_mtok = 1.5

[models."llama3.2"]
tier = 2

[aliases]
fast = "local/llama3.2"
{extra}"""
    )
    return path


def save_history(config: Path, db: Path) -> None:
    """Two routed calls, saved by a Selector to the journal."""
    with System(name="history-writer") as system:
        fleet = start_fleet(system, load_config(config))
        store: Ref[Any] = system.spawn(Store.spec(db))
        selector = system.spawn(Selector, args=(fleet.catalog,), kwargs={"store": store})
        for _ in range(2):
            selector.ask(SelectChat(request=ChatRequest.prompt("", "Write a poem")))
        assert selector.ask(SaveHistory()).cells == 1


def test_the_table_shows_each_model_with_price_health_tier_and_history(
    tmp_path: Path, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """One row per model; the history a Selector saved is summarised; aliases follow."""
    config, db = write_config(tmp_path, server), tmp_path / "runs.db"
    save_history(config, db)
    assert main(["models", "--config", str(config), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[:2]
    assert header.split()[:3] == ["MODEL", "STATE", "CONTEXT"]
    assert (
        row.split()
        == [
            "local/llama3.2",
            "loaded",
            "4096",  # served with Ollama's default, though trained for 8192
            "0.5/1.5",
            "ok",
            "2",
            "2",
            "100%",
            *row.split()[8:],
        ]
    )
    assert "fast -> local/llama3.2" in out


def test_json_carries_every_catalog_field_and_the_history(
    tmp_path: Path, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: entries as the catalog has them, with their history summary."""
    config, db = write_config(tmp_path, server), tmp_path / "runs.db"
    save_history(config, db)
    assert main(["models", "--config", str(config), "--db", str(db), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (entry,) = data["models"]
    assert entry["host"] == "local"
    assert entry["price"] == {"input_per_mtok": 0.5, "output_per_mtok": 1.5, "per_gpu_second": 0.0}
    assert entry["tier"] == 2
    assert entry["history"]["calls"] == pytest.approx(2)
    assert entry["history"]["by_task"] == {"creative": pytest.approx(2)}
    assert data["aliases"] == {"fast": ["local/llama3.2"]}


def test_a_bad_policy_in_the_file_is_an_error_naming_the_field(
    tmp_path: Path, server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """[selection] is validated with the rest: the dotted path of the bad field, status 2."""
    extra = '[selection]\ndefault_policy = "quick"\n[selection.policies.mine]\nkind = "random"\n'
    config = write_config(tmp_path, server, extra)
    assert main(["models", "--config", str(config), "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "selection.policies.mine.kind" in err


def test_faded_call_counts_read_as_counts() -> None:
    """History fades: a call made a while ago weighs 0.997, shown as 1, not "0.997"."""
    from reactor.cli._models import _calls

    assert [_calls(x) for x in (0.997, 1.994, 2.0, 0.4, 12.51)] == ["1", "2", "2", "0.4", "12.5"]
