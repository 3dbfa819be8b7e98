"""Orchestration: adaptive selection (and, as they land, fallback chains and budgets).

``python -m benchmarks orchestration`` prints one JSON object. Every figure comes from
real requests over loopback HTTP to fake servers whose behaviour is scripted (latency,
failure rate, the rate of correct answers per model and task type), so that the truth
is known. The selection measures and how each is computed are in ``_selection.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Sequence
from typing import Any

import otel
from benchmarks._selection import run_selection

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run every orchestration measure and print the JSON object."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks orchestration", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests for selection_regret")
    parser.add_argument("--trials", type=int, default=1000, help="pulls for best_arm_share")
    parser.add_argument("--overhead-n", type=int, default=1000, help="calls per side, overhead")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small counts, for the tests")
    args = parser.parse_args(argv)
    otel.configure_logging(level="error")
    if args.quick:
        args.requests, args.trials, args.overhead_n = 120, 80, 40
    result: dict[str, Any] = {}
    result.update(run_selection(args))
    result["meta"] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "seed": args.seed,
        "quick": args.quick,
    }
    print(json.dumps(result, indent=2))
    return 0
