"""``WithSteps``: a step that grows the graph while the run goes on.

A step returns ``WithSteps(value, [step(fn, name=..., args=...)])``: ``value`` is its own
result, and the new steps join the running graph. They may be listed in any order and
refer to each other, to inputs and to steps that already ran.

Run it with ``.venv/bin/python examples/dsl/with_steps.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from actors import System
from dsl import Input, Reactor, WithSteps, ref, step, value
from reactor import Engine


def fetch(url: str, so_far: list[str]) -> list[str]:
    return [*so_far, f"<page {url}>"]


def count(pages: list[str]) -> int:
    return len(pages)


class Crawl(Reactor):
    """Plans one fetch step per URL (known only at run time), each after the one before."""

    urls = Input(list[str])

    @step
    def plan(urls: list[str]) -> WithSteps:
        fetches = [
            step(
                fetch,
                name=f"fetch_{i}",
                args={
                    "url": ref("urls", i),
                    "so_far": ref(f"fetch_{i - 1}") if i else value([]),
                },
            )
            for i in range(len(urls))
        ]
        total = step(count, name="total", args={"pages": ref(f"fetch_{len(urls) - 1}")})
        # Listed last first: the new steps may come in any order.
        return WithSteps(f"{len(urls)} fetches planned", [total, *reversed(fetches)])


def main() -> None:
    """Run Crawl and print every step's result."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "crawl.db")
    with System() as system, Engine(system, db_path=db, logging=False) as engine:
        handle = engine.start(Crawl, {"urls": ["a.example", "b.example", "c.example"]})
        print(handle.result(timeout=30))
        for event in engine.history(handle.run_id):
            if type(event).__name__ == "StepCompleted":
                print(" ", getattr(event, "step", ""), "completed")


if __name__ == "__main__":
    main()
