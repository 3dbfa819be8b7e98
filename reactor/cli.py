"""The ``reactor`` command line.

Subcommands:

* ``reactor demo [--db PATH]``: start the system, send requests through a few actors
  and print what happened, with the trace of every request.
* ``reactor version``: print the installed version.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reactor", description="Reactor Swarm: orchestrate many LLMs as actors."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="run the demo and show its traces")
    demo.add_argument(
        "--db",
        type=Path,
        default=None,
        help="SQLite file for the journal (default: REACTOR_DB, else the user data dir)",
    )
    demo.add_argument(
        "--log-level",
        default="critical",
        help="structlog level on standard error (debug, info, warning, error, critical)",
    )
    commands.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    match args.command:
        case "demo":
            from reactor._demo import run_demo  # noqa: PLC0415 - keep `reactor version` fast

            return run_demo(db_path=args.db, log_level=args.log_level)
        case "version":
            print(metadata.version("reactor-swarm"))
            return 0
        case _:  # argparse rejects unknown commands before this
            return 2


if __name__ == "__main__":
    sys.exit(main())
