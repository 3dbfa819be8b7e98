"""A step that loops by re-emitting itself, and ``max_iterations``, Ash Reactor's limit.

``poll`` checks a (simulated) job; while it is not finished, the step returns
``WithSteps(status, [step(poll, name="poll", ...)])``: the status is that iteration's
result, and the new definition, which reads it under the step's own name, runs next
in its place. ``report`` waits for the iteration that returns a plain value. Each
iteration is journaled: capped with ``max_iterations=2`` the run halts before its
third re-emission, and ``resume`` goes on from the iteration it had reached.

Run it with ``.venv/bin/python examples/dsl/loop.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from actors import System
from dsl import Input, Reactor, WithSteps, ref, step
from reactor import Engine
from reactor.run import RunHaltedError

CHECKS: list[int] = []
"""Each check's number, in order (the job finishes at check ``ready_at``)."""


def check(checks: int, ready_at: int) -> Any:
    """One check of the job; loops (re-emits itself) until the job is done."""
    checks += 1
    CHECKS.append(checks)
    if checks >= ready_at:
        return {"state": "done", "checks": checks}
    again = step(check_again, name="poll", args={"last": ref("poll")})
    return WithSteps({"state": "running", "checks": checks}, [again])


def check_again(last: dict[str, Any], ready_at: int) -> Any:
    """The next iteration: reads the previous one's result under the step's name."""
    return check(last["checks"], ready_at)


class Job(Reactor):
    """Polls a job until it is done, then reports how many checks it took."""

    ready_at = Input(int)

    @step
    def poll(ready_at: int) -> Any:
        return check(0, ready_at)

    @step
    def report(poll: dict[str, Any]) -> str:
        return f"job {poll['state']} after {poll['checks']} checks"


def main() -> None:
    """Run Job capped at 2 loops (it halts), then resume it to the end."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "loop.db")
    with System() as system, Engine(system, db_path=db, logging=False) as engine:
        handle = engine.start(Job, {"ready_at": 5}, max_iterations=2)
        try:
            handle.result(timeout=30)
        except RunHaltedError as halted:
            print(f"halted: {halted.reason} (checks so far: {CHECKS})")
        print(engine.resume(handle.run_id).result(timeout=30))


if __name__ == "__main__":
    main()
