"""Run this repository's Python entry points in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` from the repository root, output captured as text.

    The caller's ``OTEL_*`` settings are dropped: they would send the child's spans
    somewhere (the console exporter would even write them into its standard output).
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**clean, **(env or {})},
    )
