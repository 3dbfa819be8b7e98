"""The ``reactor`` command line.

Subcommands:

* ``reactor demo [--db PATH]``: start the system, send requests through a few actors
  and print what happened, with the trace of every request.
* ``reactor discover [URL ...] [--json]``: find LLM servers (the given URLs and the
  default local ports) and list their models.
* ``reactor fake-server --protocol P --port N [--models a,b]``: serve a fake LLM server
  that speaks a real protocol, to try reactors offline.
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
    discover = commands.add_parser("discover", help="find LLM servers and list their models")
    discover.add_argument("urls", nargs="*", metavar="URL", help="endpoints to probe as well")
    discover.add_argument("--json", action="store_true", help="print JSON instead of a table")
    discover.add_argument(
        "--no-defaults",
        action="store_true",
        help="probe only the given URLs, not the default local ports",
    )
    discover.add_argument(
        "--timeout", type=float, default=1.0, help="seconds per probe (default 1.0)"
    )
    fake = commands.add_parser("fake-server", help="serve a fake LLM server on 127.0.0.1")
    fake.add_argument(
        "--protocol",
        required=True,
        choices=sorted(_fake_protocols()),
        help="which server to imitate",
    )
    fake.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    fake.add_argument(
        "--models",
        default="",
        help="comma-separated model ids (default: fake-small,fake-large)",
    )
    fake.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    fake.add_argument(
        "--token-delay", type=float, default=0.0, help="seconds between streamed tokens"
    )
    fake.add_argument(
        "--reply-words",
        type=int,
        default=0,
        help="answer every request with this many words (default: echo the prompt)",
    )
    commands.add_parser("version", help="print the version")
    return parser


def _fake_protocols() -> list[str]:
    from actors.testing._protocols import PROTOCOLS  # noqa: PLC0415 - no aiohttp import

    return list(PROTOCOLS)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    match args.command:
        case "demo":
            from reactor._demo import run_demo  # noqa: PLC0415 - keep `reactor version` fast

            return run_demo(db_path=args.db, log_level=args.log_level)
        case "discover":
            from reactor._hosts_cli import run_discover  # noqa: PLC0415

            return run_discover(
                args.urls,
                as_json=args.json,
                default_ports=not args.no_defaults,
                timeout=args.timeout,
            )
        case "fake-server":
            from reactor._hosts_cli import run_fake_server  # noqa: PLC0415

            models = [m.strip() for m in args.models.split(",") if m.strip()]
            return run_fake_server(
                args.protocol,
                port=args.port,
                models=models,
                latency=args.latency,
                token_delay=args.token_delay,
                reply_words=args.reply_words,
            )
        case "version":
            print(metadata.version("reactor-swarm"))
            return 0
        case _:  # argparse rejects unknown commands before this
            return 2


if __name__ == "__main__":
    sys.exit(main())
