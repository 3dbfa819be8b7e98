"""Orchestration: adaptive selection, fallback chains and budgets.

``python -m benchmarks orchestration`` prints one JSON object. Every figure comes from
real requests over loopback HTTP to fake servers whose behaviour is scripted (latency,
failure rate, the rate of correct answers per model and task type), so that the truth
is known. The selection measures and how each is computed are in ``_selection.py``; the
fallback and budget ones in ``_fallback_budget.py``. Targets (issue 13):
``fallback_overhead_us`` at most 100 µs; ``budget_admitted`` equal to ``budget_calls``
and ``budget_overspend_usd`` 0, and so through the Selector (``budget_select_*``) and
across a Budget crash (``budget_restart_*``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Sequence
from typing import Any

import otel
from benchmarks import _fallback_budget
from benchmarks._selection import run_selection

__all__ = ["TARGETS", "main"]

TARGETS = {"fallback_overhead_us_max": 100.0, "budget_overspend_usd_max": 0.0}
"""What fallback and budgets should achieve (see ``targets_met``)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run every orchestration measure and print the JSON object."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks orchestration", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests for selection_regret")
    parser.add_argument("--trials", type=int, default=1000, help="pulls for best_arm_share")
    parser.add_argument("--overhead-n", type=int, default=1000, help="calls per side, overhead")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small counts, for the tests")
    args = parser.parse_args(argv)
    otel.configure_logging(level="critical")
    if args.quick:
        args.requests, args.trials, args.overhead_n = 120, 80, 40
    result: dict[str, Any] = {}
    result.update(run_selection(args))
    result.update(_fallback_budget.run(quick=args.quick))
    result["targets"] = TARGETS
    result["targets_met"] = {
        "fallback_overhead_us_max": result["fallback_overhead_us"]
        <= TARGETS["fallback_overhead_us_max"],
        "budget_overspend_usd_max": result["budget_overspend_usd"]
        <= TARGETS["budget_overspend_usd_max"]
        and result["budget_admitted"] == result["budget_calls"],
        "budget_select_overspend_usd_max": result["budget_select_overspend_usd"]
        <= TARGETS["budget_overspend_usd_max"]
        and result["budget_select_admitted"] == result["budget_select_calls"],
        "budget_restart_overspend_usd_max": result["budget_restart_overspend_usd"]
        <= TARGETS["budget_overspend_usd_max"],
    }
    result["meta"] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "seed": args.seed,
        "quick": args.quick,
    }
    print(json.dumps(result, indent=2))
    return 0
