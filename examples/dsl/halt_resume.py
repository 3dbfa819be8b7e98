"""``Halt``: pause a run, then resume it later (here, or in another process).

A step that returns ``Halt(reason)`` pauses the run: nothing new starts, and the run
ends as halted (``RunHaltedError``; ``reactor run`` exits 3). ``engine.resume(run_id)``
(or ``reactor runs resume RUN_ID``) continues it: completed steps are replayed from the
journal, not run again.

Run it with ``.venv/bin/python examples/dsl/halt_resume.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from actors import System
from dsl import Halt, Input, Reactor, step
from reactor import Engine, RunHaltedError

RUNS: list[str] = []
APPROVED = "HALT_EXAMPLE_APPROVED"
"""Approvals live outside the module: a resumed run loads its reactor from the file anew."""


class Publish(Reactor, returns="published"):
    """Drafts once, then waits for an approval before publishing."""

    title = Input(str)

    @step
    def draft(title: str) -> str:
        RUNS.append("draft")
        return f"draft of {title!r}"

    @step
    def approval(draft: str, title: str) -> str | Halt:
        if title not in os.environ.get(APPROVED, "").split(","):
            return Halt(f"waiting for an editor to approve {title!r}")
        return "approved"

    @step
    def published(draft: str, approval: str) -> str:
        return f"published {draft} ({approval})"


def main() -> None:
    """Run until the halt, approve, resume: the draft step ran once."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "publish.db")
    with System() as system, Engine(system, db_path=db, logging=False) as engine:
        handle = engine.start(Publish, {"title": "Tides"})
        try:
            handle.result(timeout=30)
        except RunHaltedError as exc:
            print(f"halted at {exc.step}: {exc.reason}")
        os.environ[APPROVED] = "Tides"
        print(engine.resume(handle.run_id).result(timeout=30))
    print("draft ran", RUNS.count("draft"), "time(s)")


if __name__ == "__main__":
    main()
