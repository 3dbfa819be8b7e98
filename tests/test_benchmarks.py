"""`python -m benchmarks routing --quick` runs and prints one well-formed JSON object.

Only the shape is checked: timings on shared machines are not something to assert.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FIGURES = (
    "raw_ask_p50_us",
    "raw_ask_p99_us",
    "ask_1hop_p50_us",
    "ask_1hop_p99_us",
    "ask_3hop_p50_us",
    "ask_3hop_p99_us",
    "ask_1hop_traced_p50_us",
    "raw_tell_per_s",
    "tell_per_s",
    "ask_1hop_ratio",
    "tell_ratio",
)
TARGETS = ("ask_1hop_ratio_max", "ask_3hop_p50_us_max", "tell_ratio_min")


def test_routing_quick_prints_one_json_object_with_every_figure() -> None:
    # The caller's OTEL_* settings could add exporters (the console one prints to stdout).
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "routing", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # the whole of stdout is the one object
    assert isinstance(data, dict)

    for key in FIGURES:
        value = data.get(key)
        assert isinstance(value, int | float), f"{key}: {value!r}"
        assert not isinstance(value, bool), key
        assert value > 0, f"{key}: {value!r}"

    assert set(data["targets"]) == set(TARGETS)
    assert all(isinstance(v, int | float) and v > 0 for v in data["targets"].values())
    assert set(data["targets_met"]) == set(TARGETS)
    assert all(isinstance(v, bool) for v in data["targets_met"].values())

    meta = data["meta"]
    assert meta["python"].count(".") == 2
    assert meta["pykka"]
    assert meta["n"] > 0
    assert meta["cpu_count"] > 0
