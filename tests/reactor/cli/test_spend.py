"""``reactor spend``: budgets and spend from the journal's spend table, as JSON and a table."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from actors import System
from actors.store import Store, StoreInsert
from reactor.cli._main import main
from reactor.cli._spend import run_spend

COLUMNS = ("at", "run_id", "reactor", "agent", "host", "model", "cost_usd", "priced")


def write_spend(db: Path, *rows: tuple[float, str, str, str, str, str, float, int]) -> None:
    """Spend rows, as the Budget actor writes them."""
    with System(Store.spec(db), name="writer", default_timeout=5.0) as system:
        system.lookup("store").ask(StoreInsert(table="spend", columns=COLUMNS, rows=rows))


def test_spend_shows_each_budget_with_its_forecast_and_totals_per_model(tmp_path: Path) -> None:
    """Two calls today against a $10 daily budget: spent, rate and per-model totals."""
    db = tmp_path / "spend.db"
    config = tmp_path / "config.toml"
    config.write_text("[[budgets.limits]]\nscope = 'global'\nusd = 10\nperiod = '1d'\n")
    now = time.time()
    write_spend(
        db,
        (now - 60, "r1", "Brief", "", "local", "llama", 0.25, 1),
        (now - 30, "r2", "Brief", "", "cloud", "gpt", 1.0, 1),
    )
    out = io.StringIO()
    assert run_spend(db=db, config_path=config, since_hours=24, as_json=True, out=out) == 0
    report = json.loads(out.getvalue())
    assert report["total_usd"] == 1.25
    assert report["by_model"] == {"local/llama": 0.25, "cloud/gpt": 1.0}
    (budget,) = report["budgets"]
    assert (budget["scope"], budget["limit_usd"], budget["spent_usd"]) == ("global", 10.0, 1.25)
    assert budget["rate_usd_per_hour"] > 0

    table = io.StringIO()
    assert run_spend(db=db, config_path=config, since_hours=24, as_json=False, out=table) == 0
    assert "cloud/gpt" in table.getvalue()
    assert "$10.0000" in table.getvalue()


def test_spend_without_a_database_or_budgets_says_so(tmp_path: Path) -> None:
    """No file yet, no budgets: nothing spent, and a hint where budgets go."""
    empty = tmp_path / "none.toml"
    empty.write_text("")
    out = io.StringIO()
    code = run_spend(
        db=tmp_path / "missing.db", config_path=empty, since_hours=24, as_json=False, out=out
    )
    assert code == 0
    assert "no budgets configured (add [[budgets.limits]] to the configuration)" in out.getvalue()
    assert f"spend in the last 24 h ({tmp_path / 'missing.db'})" in out.getvalue()
    assert not (tmp_path / "missing.db").exists()


def test_a_bad_since_is_a_usage_error(tmp_path: Path) -> None:
    """``--since 0`` is refused with exit status 2."""
    assert main(["spend", "--since", "0", "--db", str(tmp_path / "x.db")]) == 2


def test_a_budget_with_nothing_spent_yet_is_listed_at_zero(tmp_path: Path) -> None:
    """A configured global or named budget shows its limit before the first call."""
    config = tmp_path / "config.toml"
    config.write_text(
        "[[budgets.limits]]\nscope = 'global'\nusd = 20\nperiod = '1d'\n"
        "[[budgets.limits]]\nscope = 'reactor'\nname = 'Summarise'\nusd = 2\n"
        "[[budgets.limits]]\nscope = 'run'\nusd = 0.25\n"  # one account per run: none yet
    )
    out = io.StringIO()
    db = tmp_path / "none.db"
    assert run_spend(db=db, config_path=config, since_hours=24, as_json=True, out=out) == 0
    budgets = json.loads(out.getvalue())["budgets"]
    shown = [(b["scope"], b.get("name", ""), b["limit_usd"], b["spent_usd"]) for b in budgets]
    assert shown == [("global", "", 20.0, 0.0), ("reactor", "Summarise", 2.0, 0.0)]
    table = io.StringIO()
    assert run_spend(db=db, config_path=config, since_hours=24, as_json=False, out=table) == 0
    assert "$20.0000" in table.getvalue()
    assert "no budgets configured" not in table.getvalue()
