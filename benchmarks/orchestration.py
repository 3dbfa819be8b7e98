"""Orchestration: budgets and fallback chains against fake servers whose truth is known.

``python -m benchmarks orchestration [--quick]`` prints one JSON object. The figures
and how each is measured are in :mod:`benchmarks._fallback_budget`. Targets (issue 13):
``fallback_overhead_us`` at most 100 µs; ``budget_admitted`` equal to ``budget_calls``
and ``budget_overspend_usd`` 0.
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

__all__ = ["TARGETS", "main"]

TARGETS = {"fallback_overhead_us_max": 100.0, "budget_overspend_usd_max": 0.0}


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measure and print the JSON object."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks orchestration", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, for the tests")
    args = parser.parse_args(argv)
    otel.configure_logging(level="critical")
    result: dict[str, Any] = {}
    result.update(_fallback_budget.run(quick=args.quick))
    result["targets"] = TARGETS
    result["targets_met"] = {
        "fallback_overhead_us_max": result["fallback_overhead_us"]
        <= TARGETS["fallback_overhead_us_max"],
        "budget_overspend_usd_max": result["budget_overspend_usd"]
        <= TARGETS["budget_overspend_usd_max"]
        and result["budget_admitted"] == result["budget_calls"],
    }
    result["meta"] = {"python": platform.python_version(), "cpu_count": os.cpu_count()}
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0
