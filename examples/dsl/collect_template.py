"""``collect`` and ``template``: steps made of their arguments, with no function.

``collect(a=ref(...), b=...)`` is a dict of its arguments; ``template("...")`` renders
``str.format`` placeholders, each bound by name (``{topic}``, ``{facts[0]}``,
``{profile.name}``) or to a source given as a keyword.

Run it with ``.venv/bin/python examples/dsl/collect_template.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from actors import System
from dsl import Input, Reactor, collect, ref, step, template, value
from reactor import Engine


class Card(Reactor, returns="card"):
    """Builds a small record and a line of text from inputs and a step."""

    topic = Input(str)
    facts = Input(list[str])

    @step
    def count(facts: list[str]) -> int:
        return len(facts)

    headline = template("{topic}: {count} facts, first: {facts[0]}")
    signed = template("{headline} ({author})", author=value("the desk"))
    card = collect(title=ref("signed"), first=ref("facts", 0), n=ref("count"))


def main() -> None:
    """Run Card and print the collected dict."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "card.db")
    with System() as system, Engine(system, db_path=db, logging=False) as engine:
        print(engine.run(Card, {"topic": "tides", "facts": ["the moon pulls", "twice a day"]}))


if __name__ == "__main__":
    main()
