"""``ask``: one model call as a step, offline on the built-in fake servers.

``ask("prompt {placeholder}")`` asks the engine's default model (the first chat model
the fleet found, or ``Engine(default_model=...)``); ``model=`` names one (a template
too, so an input can choose it), ``system=`` gives a system prompt, ``host=`` a host.
The step's result is an ``actors.llm.Completion``: ``.content``, ``.usage``,
``.model``, ``.cost_usd``, ...

Run it with ``.venv/bin/python examples/dsl/ask.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from actors import System
from actors.llm import Completion, Config, start_fleet
from actors.testing import fake_servers
from dsl import Input, Reactor, ask, step
from reactor import Engine


class Haiku(Reactor, returns="poem"):
    """Two asks: one on the default model, one on the model an input names."""

    topic = Input(str)
    model = Input(str, default="fake-large")

    idea = ask("Give one image for a haiku about {topic}.")
    poem_draft = ask(
        "Write a haiku about {topic} around this image: {idea.content}",
        model="{model}",
        system="You are a terse poet.",
        max_tokens=60,
    )

    @step
    def poem(poem_draft: Completion) -> dict[str, object]:
        return {"model": poem_draft.model, "text": poem_draft.content}


def main() -> None:
    """Start the fake servers as the fleet (no discovery) and run Haiku."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "haiku.db")
    offline = Config.model_validate({"discovery": {"enabled": False}})
    with System() as system:
        fleet = start_fleet(system, offline, fallback=fake_servers)
        try:
            with Engine(system, fleet=fleet, db_path=db, logging=False) as engine:
                print("default model:", engine.default_model)
                print(engine.run(Haiku, {"topic": "tides"}))
        finally:
            fleet.close()


if __name__ == "__main__":
    main()
