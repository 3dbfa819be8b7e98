"""Agents and conversations: message routing, exchanges and registration.

``python -m benchmarks agents`` prints one JSON object. Each figure group is a function
of a private module (``_agents.agent_figures``; the reasoning sessions' group is added
to :data:`GROUPS` by its module) taking ``quick`` and returning its figures. Targets
(issue 16): ``route_p50_ms`` at most 1 ms (the seed system promised under 50 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable, Sequence
from typing import Any

import otel
from benchmarks import _agents

__all__ = ["GROUPS", "TARGETS", "main"]

GROUPS: list[Callable[..., dict[str, Any]]] = [_agents.agent_figures]
"""The figure groups, each ``group(quick=bool) -> {figure: value}``, run in order."""

TARGETS: dict[str, float] = {"route_p50_ms_max": 1.0}
"""What the figures should achieve (see ``targets_met``)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run every figure group and print the JSON object."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks agents", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, for the tests")
    args = parser.parse_args(argv)
    otel.configure_logging(level="critical")
    result: dict[str, Any] = {}
    for group in GROUPS:
        result.update(group(quick=args.quick))
    result["targets"] = TARGETS
    result["targets_met"] = {
        name: result[name.removesuffix("_max")] <= limit
        for name, limit in TARGETS.items()
        if name.removesuffix("_max") in result
    }
    result["meta"] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "quick": args.quick,
    }
    print(json.dumps(result, indent=2))
    return 0
