"""Adaptive model selection: a ``select`` step learns which model to use per task type.

Offline: two fake servers stand in for a local Ollama ("small", quick, free) and a cloud
API ("large", slower, priced). Their answers are scripted: "small" is good at factual
questions and poor at code, "large" good at both. A scoring function tells the selector
whether an answer was right (in real use: your tests, a grader, or ``engine.feedback``).

The selector starts from the declared tiers (3 for "large", 2 for "small"), tries both,
and within a few dozen requests sends code to "large" and factual questions to the cheap
"small". Every
decision says why, in the step's result (``extras["selection"]``), the journal and the
trace.

Run it with ``.venv/bin/python examples/selection.py``.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import otel
from actors import System
from actors.llm import Completion, Config, start_fleet
from actors.orchestration import HistoryQuery, Policy, Selector, TaskFeatures
from actors.testing import FakeModel, FakeServer, Reply
from dsl import Input, Reactor, select
from reactor.app import Engine

RIGHT = {("small", "code"): 0.3, ("small", "factual"): 0.9}
"""How often each model answers right, per task type (the rest: 0.95)."""

QUESTIONS = {"code": "Write python to sort a list", "factual": "What is the capital of Peru?"}

rng = random.Random(4)


def scripted(exchange: Any) -> Reply:
    """The fake servers' answers: right with the model's rate for the task."""
    task = "code" if "python" in exchange.prompt_text().lower() else "factual"
    right = rng.random() < RIGHT.get((exchange.model, task), 0.95)
    return Reply(text="right" if right else "wrong")


def graded(completion: Completion, features: TaskFeatures) -> float:
    """The scoring function: 1 for a right answer (your grader goes here)."""
    return 1.0 if completion.content == "right" else 0.0


class Answer(Reactor, returns="answer"):
    """One question, one model chosen for it."""

    question = Input(str)
    answer = select("{question}", policy="careful", max_tokens=200)


def config(ollama: FakeServer, cloud: FakeServer) -> Config:
    """What a TOML file would say (see examples/reactor.toml for the file form)."""
    return Config.model_validate(
        {
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
            "hosts": {
                "ollama": {"url": ollama.url, "protocol": "ollama"},
                "cloud": {"url": cloud.url, "protocol": "openai"},
            },
            "prices": {
                "cloud/large": {"input_per_mtok": 3, "output_per_mtok": 15},
                "ollama/small": {"input_per_mtok": 0.05, "output_per_mtok": 0.05},
            },
            "models": {"small": {"tier": 2}, "large": {"tier": 3}},
            "aliases": {"both": ["ollama/small", "cloud/large"]},
        }
    )


def main() -> None:
    """Ask 80 questions, half code and half factual; show where each kind went."""
    otel.configure_logging(level="warning")
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "selection.db")
    with (
        FakeServer("ollama", models=[FakeModel("small")], responder=scripted) as ollama,
        FakeServer("openai", models=["large"], responder=scripted, latency=0.01) as cloud,
        System() as system,
    ):
        fleet = start_fleet(system, config(ollama, cloud))
        # A policy in Python: mostly quality, a little cost and speed, among "both".
        careful = Policy(name="careful", quality=0.8, cost=0.1, latency=0.1, models=("both",))
        selector = system.spawn(
            Selector,
            name="selector",
            args=(fleet.catalog,),
            kwargs={"policies": {"careful": careful}, "scorer": graded, "seed": 1},
        )
        with Engine(system, db_path=db, fleet=fleet, selector=selector, logging=False) as engine:
            routed: Counter[tuple[str, str]] = Counter()
            for i in range(80):
                kind = "code" if i % 2 else "factual"
                question = (
                    "Write python to sort a list" if i % 2 else "What is the capital of Peru?"
                )
                answer = engine.run(Answer, {"question": question})
                if i >= 40:  # the second half: what it learnt
                    routed[(kind, answer.model)] += 1
            last = answer.extras["selection"]
            print("last decision:", last["chosen"], "-", last["reason"])
            for considered in last["considered"]:
                print("  considered", considered["model"], "score", considered.get("score"))
            print("second half, where each task type went:")
            for (kind, model), count in sorted(routed.items()):
                print(f"  {kind:8} -> {model:6} {count}")
            report = selector.ask(HistoryQuery())
            for model, summary in report.models.items():
                print(f"history {model}: {summary.calls:.0f} calls, quality {summary.quality:.2f}")


if __name__ == "__main__":
    main()
