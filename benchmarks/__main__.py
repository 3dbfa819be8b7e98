"""Run one benchmark: ``python -m benchmarks <name> [options]``.

Every module ``benchmarks/<name>.py`` (not starting with ``_``) is a benchmark; its
``main(argv)`` receives the options that follow the name and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import cast

import benchmarks


def available() -> list[str]:
    """The names of the benchmarks in this package, sorted."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(benchmarks.__path__)
        if not info.name.startswith("_") and not info.ispkg
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to ``benchmarks.<name>.main`` with the remaining arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run one benchmark; it prints a single JSON object on stdout.",
    )
    parser.add_argument("benchmark", choices=available(), help="which benchmark to run")
    parser.add_argument(
        "args", nargs=argparse.REMAINDER, help="options for the benchmark (see <name> --help)"
    )
    ns = parser.parse_args(argv)
    module = importlib.import_module(f"benchmarks.{ns.benchmark}")
    run = cast("Callable[[list[str]], int]", module.main)
    return run(list(ns.args))


if __name__ == "__main__":
    sys.exit(main())
