"""``reactor spend``: what model calls have cost, per budget, with a forecast.

Reads the Store's ``spend`` table (one row per settled call) and the ``[budgets]`` of
the configuration: every current budget window with its limit, spend, rate and the
time it runs out at that rate, then totals per model since ``--since`` hours ago.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

from reactor.cli._parse import EXIT_OK, EXIT_USAGE, CliError

__all__ = ["run_spend"]


def run_spend(
    *,
    db: Path | None,
    config_path: Path | None,
    since_hours: float,
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``reactor spend``: budgets and spend as a table, or JSON."""
    out, err = out or sys.stdout, err or sys.stderr
    from actors import ActorError, System  # noqa: PLC0415 - keep startup fast
    from actors.llm import ConfigError, load_config  # noqa: PLC0415
    from actors.orchestration.budget import SPEND_ROWS_SQL, spend_report  # noqa: PLC0415
    from actors.store import Journal, SqlValue, Store  # noqa: PLC0415

    if since_hours <= 0:
        err.write("reactor spend: error: --since must be a positive number of hours\n")
        return EXIT_USAGE
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        err.write(f"reactor spend: error: {exc}\n")
        return EXIT_USAGE
    now = time.time()
    since = now - since_hours * 3600.0
    path = Store.path_of(db)
    rows: list[tuple[SqlValue, ...]] = []
    if path.is_file():
        from actors.orchestration.budget import Ledger  # noqa: PLC0415

        start = min(Ledger(limits=tuple(config.budgets.limits)).earliest_start(now), since)
        try:
            with System(Store.spec(path), name="reactor-spend", default_timeout=30.0) as system:
                rows = Journal(system.lookup("store")).query(SPEND_ROWS_SQL, start)
        except (CliError, ActorError) as exc:
            err.write(f"reactor spend: error: {exc}\n")
            return EXIT_USAGE
    report = spend_report(rows, config.budgets, now=now, since=since)
    if as_json:
        import msgspec  # noqa: PLC0415

        out.write(json.dumps(msgspec.to_builtins(report), indent=2, sort_keys=True) + "\n")
        return EXIT_OK
    _table(out, report, since_hours, path, configured=bool(config.budgets.limits))
    return EXIT_OK


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}"


def _when(at: float | None) -> str:
    if at is None:
        return "not this window"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def _table(out: TextIO, report: object, hours: float, path: Path, *, configured: bool) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from actors.orchestration.budget import SpendReport  # noqa: PLC0415

    assert isinstance(report, SpendReport)
    console = Console(file=out, width=120, highlight=False, markup=False)  # names are data
    budgets = Table(title="budgets", title_justify="left")
    for column in ("scope", "name", "period", "limit", "spent", "left", "rate/h", "runs out"):
        budgets.add_column(column)
    for b in report.budgets:
        budgets.add_row(
            b.scope,
            b.name or "-",
            b.period or "for ever",
            _money(b.limit_usd),
            _money(b.spent_usd),
            _money(max(b.limit_usd - b.spent_usd, 0.0)),
            _money(b.rate_usd_per_hour),
            _when(b.runs_out_at),
        )
    if report.budgets:
        console.print(budgets)
    elif not configured:
        console.print("no budgets configured (add [[budgets.limits]] to the configuration)")
    console.print(f"spend in the last {hours:g} h ({path})")  # a title would fold to the table
    models = Table()
    models.add_column("model")
    models.add_column("spent", justify="right")
    for model, cost in sorted(report.by_model.items(), key=lambda kv: -kv[1]):
        models.add_row(model, _money(cost))
    models.add_row("total", _money(report.total_usd))
    console.print(models)
    console.print(f"{report.calls} call(s)", end="")
    if report.unpriced_calls:
        console.print(f", {report.unpriced_calls} of them to models without a price (counted $0)")
    else:
        console.print()
