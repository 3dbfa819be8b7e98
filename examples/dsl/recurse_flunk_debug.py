"""``recurse``, ``flunk`` and ``debug``: loop a reactor on its own result, fail on purpose, log.

``recurse(Sub, max_iterations=, exit_condition=)`` runs ``Sub`` again and again, each
iteration's result (a mapping of ``Sub``'s inputs) being the next one's inputs, until
``exit_condition(result)`` is true or ``max_iterations`` ran (then the last result is
the step's, a success). ``flunk("message {x}", where=...)`` fails the run with a
``ForcedFailureError`` built from its arguments. ``debug("x", level=...)`` logs its
arguments through structlog and returns ``None``.

Run it with ``.venv/bin/python examples/dsl/recurse_flunk_debug.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import otel
from actors import System
from dsl import Input, Reactor, collect, debug, flunk, recurse, ref, step
from reactor import Engine, RunFailedError


class Collatz(Reactor):
    """One step of a Collatz sequence; its result holds its own next inputs."""

    n = Input(int)
    steps = Input(int, default=0)

    @step
    def following(n: int) -> int:
        return n // 2 if n % 2 == 0 else 3 * n + 1

    @step
    def counted(steps: int) -> int:
        return steps + 1

    out = collect(n=ref("following"), steps=ref("counted"))


def reached_one(result: dict[str, Any]) -> bool:
    """The exit condition: asked with each iteration's result."""
    return bool(result["n"] == 1)


class Settle(Reactor, returns="settled"):
    """Follows the sequence from ``start`` to 1 (at most 50 steps); too many steps fail."""

    start = Input(int)
    limit = Input(int, default=20)

    settled = recurse(Collatz, n=ref("start"), max_iterations=50, exit_condition=reached_one)
    shown = debug("start", "settled", level="warning")
    too_long = flunk(
        "{start} took {settled[steps]} steps, over the limit of {limit}",
        where=lambda args: args["settled"]["steps"] > args["limit"],
    )


def main() -> None:
    """Settle 6 (8 steps), then 27 (stopped at 50 steps, over the limit: flunked)."""
    otel.configure_logging(level="warning", stream=sys.stdout)  # shows the debug() lines
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "settle.db")
    with System() as system, Engine(system, db_path=db, logging=False) as engine:
        print("settled:", engine.run(Settle, {"start": 6}))
        try:
            engine.run(Settle, {"start": 27})
        except RunFailedError as exc:
            error = exc.errors[0]
            print(f"failed: {error.step}: {error.kind}: {error.message}")


if __name__ == "__main__":
    main()
