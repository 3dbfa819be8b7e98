"""``reactor models``: the model catalog, with each model's health and history.

Starts the model hosts the configuration names (and those discovery finds), reads the
catalog they fill (host, loaded or not, context window, price, breaker, declared tier)
and the selection history persisted in the journal (calls, success rate, latency,
quality), and prints one row per model; aliases follow. Nothing is sent to any model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from actors.llm import Catalog, ModelEntry
    from actors.orchestration import ModelSummary

__all__ = ["format_models", "run_models"]


def _price(entry: ModelEntry) -> str:
    if entry.price is None:
        return "-"
    return f"{entry.price.input_per_mtok:g}/{entry.price.output_per_mtok:g}"


def _loaded(entry: ModelEntry) -> str:
    return {True: "loaded", False: "not loaded", None: "-"}[entry.loaded]


def _context(entry: ModelEntry) -> str:
    """The served context, then the trained one where the server said it is more."""
    if entry.context_length is None:
        return "-"
    trained = entry.trained_context_length
    if trained is not None and trained > entry.context_length:
        return f"{entry.context_length}/{trained}"
    return str(entry.context_length)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _calls(value: float) -> str:
    """Calls as the history weighs them: older ones fade, so a count may be fractional.

    Within 0.05 of a whole number it is shown as that number (a call made a while ago
    weighs 0.997, not "0.997 calls"); below that, with one decimal.
    """
    whole = round(value)
    return str(whole) if abs(value - whole) < 0.05 else f"{value:.1f}"


def format_models(catalog: Catalog, history: dict[str, ModelSummary]) -> str:
    """One row per model (host, state, context, price, health, tier, history), then aliases.

    CONTEXT is the context the model is served with, followed by ``/`` and the one it
    was trained for when that is larger and known (``4096/131072``: an Ollama model
    served with the default).
    """
    rows = [
        (
            "MODEL",
            "STATE",
            "CONTEXT",
            "PRICE $/MTOK",
            "HEALTH",
            "TIER",
            "CALLS",
            "OK",
            "LATENCY",
            "QUALITY",
        )
    ]
    for entry in catalog.entries():
        summary = history.get(entry.qualified)
        rows.append(
            (
                entry.qualified,
                _loaded(entry),
                _context(entry),
                _price(entry),
                "ok" if entry.healthy else str(entry.breaker),
                str(entry.tier or "-"),
                _calls(summary.calls) if summary else "0",
                _pct(summary.success_rate) if summary else "-",
                _seconds(summary.latency_s) if summary else "-",
                _pct(summary.quality) if summary else "-",
            )
        )
    if len(rows) == 1:
        return "no models: no LLM server is configured or was found"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    aliases = catalog.aliases()
    if aliases:
        lines.append("")
        lines.append("aliases:")
        lines.extend(
            f"  {name} -> {', '.join(targets)}" for name, targets in sorted(aliases.items())
        )
    return "\n".join(lines)


def run_models(
    *,
    config: Path | None,
    db: Path | None,
    as_json: bool,
    discovery: bool,
    simulated: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the catalog; exit status 0, or 2 for a bad configuration."""
    out = out or sys.stdout
    err = err or sys.stderr
    import msgspec  # noqa: PLC0415 - keep `reactor --help` fast

    from actors import Ref, System  # noqa: PLC0415
    from actors.llm import ConfigError, load_config, start_fleet  # noqa: PLC0415
    from actors.orchestration import read_history  # noqa: PLC0415
    from actors.store import Journal, Store  # noqa: PLC0415
    from actors.testing import fake_servers  # noqa: PLC0415

    try:
        settings = load_config(config)
    except ConfigError as exc:
        err.write(f"{exc}\n")
        return 2
    with System(name="reactor-models") as system:
        try:
            fleet = start_fleet(
                system, settings, discovery=discovery, fallback=fake_servers if simulated else None
            )
        except ValueError as exc:
            err.write(f"model hosts: {exc}\n")
            return 2
        try:
            store: Ref[Any] = system.spawn(Store.spec(db))
            history = read_history(Journal(store), settings.selection).summaries()
            if as_json:
                data: dict[str, Any] = {
                    "models": [
                        {
                            **entry.to_dict(),
                            "history": msgspec.to_builtins(history.get(entry.qualified)),
                        }
                        for entry in fleet.catalog.entries()
                    ],
                    "aliases": {k: list(v) for k, v in fleet.catalog.aliases().items()},
                }
                out.write(json.dumps(data, indent=2) + "\n")
            else:
                out.write(format_models(fleet.catalog, history) + "\n")
        finally:
            fleet.close()
    return 0
