"""The README's first reactor: three analysts in parallel, then an editor.

From the command line (on a local LLM server if one is found, else the built-in fakes)::

    .venv/bin/reactor run examples/briefing.py:Briefing --input topic=tides

or as a script: ``.venv/bin/python examples/briefing.py``. ``reactor demo`` runs a
longer version of it (``reactor/cli/_demo.py``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from actors.llm import Completion
from dsl import Input, Reactor, ask, step


class Briefing(Reactor, returns="report"):
    """Three analysts look at a topic in parallel; an editor combines their notes."""

    topic = Input(str)
    model = Input(str, default="")  # empty: the engine's default model

    @step
    def question(topic: str) -> str:
        return f"Consider {topic}."

    # Three LLM calls that need only `question`: they run at the same time.
    optimist = ask("{question} Give the strongest case for it.", model="{model}")
    sceptic = ask("{question} Give the strongest case against it.", model="{model}")
    historian = ask("{question} Name one historical parallel.", model="{model}")

    # Needs all three, so it runs after them.
    editor = ask(
        "Brief on {topic}.\nFor: {optimist.content}\nAgainst: {sceptic.content}\n"
        "Parallel: {historian.content}",
        model="{model}",
    )

    @step
    def report(topic: str, editor: Completion) -> dict[str, str]:
        return {"topic": topic, "brief": editor.content}


def main() -> None:
    """Run one briefing on the LLM servers found (else the fakes) and print it."""
    # Imported here: the README shows this file's reactor alone, from its imports down.
    from actors import System  # noqa: PLC0415
    from actors.llm import start_fleet  # noqa: PLC0415
    from actors.testing import fake_servers  # noqa: PLC0415
    from reactor import Engine  # noqa: PLC0415

    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "briefing.db")
    with System() as system:
        fleet = start_fleet(system, fallback=fake_servers)
        try:
            with Engine(system, fleet=fleet, db_path=db, logging=False) as engine:
                print(engine.run(Briefing, {"topic": "tides"}))
        finally:
            fleet.close()


if __name__ == "__main__":
    main()
