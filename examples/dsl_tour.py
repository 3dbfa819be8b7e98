"""A tour of the reactor DSL, offline.

Inputs, sync and async steps, sub-paths, where, guard, for_each, switch, retries, undo,
and the graph as Mermaid.

Run it with ``.venv/bin/python examples/dsl_tour.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path

import otel
from actors import System
from dsl import Input, Reactor, Retry, Shortcut, StepContext, for_each, ref, step, switch, value
from reactor.app import Engine
from reactor.run import RunFailedError

CACHE: dict[str, int] = {"tides": 42}
LOG: list[str] = []


class WordCount(Reactor):
    """Count the words of one document (run once per document by ``for_each``)."""

    doc = Input(str)

    @step
    async def count(doc: str) -> int:
        await asyncio.sleep(0)
        return len(doc.split())


class Short(Reactor):
    """The branch for a short corpus."""

    total = Input(int)

    @step
    def verdict(total: int) -> str:
        return f"short ({total} words)"


class Long(Reactor):
    """The branch for a long corpus."""

    total = Input(int)

    @step
    def verdict(total: int) -> str:
        return f"long ({total} words)"


def flaky(ctx: StepContext, topic: str) -> Retry | str:
    """Fails twice, then succeeds: retried with backoff (``max_retries`` allows it)."""
    return Retry("warming up") if ctx.attempt < 3 else f"notes on {topic}"


class Tour(Reactor, returns="summary"):
    """Count words in documents, pick a verdict, and write a summary."""

    topic = Input(str)
    docs = Input(list[str])
    verbose = Input(bool, default=False)

    counts = for_each(ref("docs"), WordCount, batch_size=2)

    @step(guard=lambda args: Shortcut(CACHE[args["topic"]]) if args["topic"] in CACHE else None)
    def lookup(topic: str) -> int:
        return len(topic)

    @step
    def total(counts: list[int]) -> int:
        return sum(counts)

    verdict = switch(ref("total"), [(lambda n: n < 10, Short)], default=Long)

    notes = step(flaky, max_retries=3, backoff=0.01)

    @step(where=lambda args: args["verbose"])
    def details(counts: list[int], verbose: bool) -> str:
        return ", ".join(map(str, counts))

    @step(undo=lambda value, arguments: LOG.append(f"undo summary {value!r}"))
    def summary(
        *,
        topic: str,
        verdict: str,
        notes: str,
        lookup: int,
        first: int = ref("counts", 0),
        unit: str = value("words"),
    ) -> dict[str, object]:
        return {
            "topic": topic,
            "verdict": verdict,
            "notes": notes,
            "cached": lookup,
            "first_doc": f"{first} {unit}",
        }


class Fragile(Reactor):
    """A step with an undo, then one that fails: the first is rolled back."""

    @step(undo=lambda value, arguments: LOG.append(f"undo reserve {value}"))
    def reserve() -> str:
        return "seat 12A"

    @step(max_retries=0)
    def pay(reserve: str) -> str:
        msg = f"card declined for {reserve}"
        raise ValueError(msg)


def main() -> None:
    """Run the tour against a throwaway SQLite file."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "tour.db")
    otel.configure_logging(level="warning")
    with System() as system, Engine(system, db_path=db, logging=False) as engine:
        result = engine.run(Tour, {"topic": "tides", "docs": ["the moon pulls", "the sea rises"]})
        print("result:", json.dumps(result, sort_keys=True))
        try:
            engine.run(Fragile)
        except RunFailedError as exc:
            print("failed as planned:", exc.errors[0].message)
        print("rollback:", LOG)
        print(Tour.to_mermaid())


if __name__ == "__main__":
    main()
