"""Selection under a budget: the Selector picks a cheaper model when the best one cannot fit.

Offline: two fake servers, a local "small" model (cheap) and a cloud "large" one (the
better model, by its declared tier, and pricey). Each run may spend $0.01. A ``select``
step under the ``best`` policy would take "large", but its worst case (200 output tokens
at $60 per million: $0.012) is more than the run has left, so the Selector is given the
budget's headroom and chooses "small"; the decision says so. A policy that forbids
downgrading (``downgrade = false``) fails ``budget_exceeded`` instead, before any request
is sent. The Selector's own calls are reserved, settled and kept like every other.

Run it with ``.venv/bin/python examples/select_within_budget.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import otel
from actors import System
from actors.llm import Config, start_fleet
from actors.orchestration import SpendQuery
from actors.testing import FakeServer
from dsl import Input, Reactor, select
from reactor.app import Engine
from reactor.run import RunFailedError


class Answer(Reactor, returns="answer"):
    """The best model that the run can afford."""

    question = Input(str)
    answer = select("{question}", policy="best", max_tokens=200)


class Strict(Reactor, returns="answer"):
    """The best model, or nothing."""

    question = Input(str)
    answer = select("{question}", policy="best-or-nothing", max_tokens=200)


def config(local: FakeServer, cloud: FakeServer) -> Config:
    """What a TOML file would say."""
    return Config.model_validate(
        {
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
            "hosts": {
                "local": {"url": local.url, "protocol": "ollama"},
                "cloud": {"url": cloud.url, "protocol": "openai"},
            },
            "prices": {
                "local/small": {"input_per_mtok": 0.05, "output_per_mtok": 0.1},
                "cloud/large": {"input_per_mtok": 10, "output_per_mtok": 60},
            },
            "models": {"small": {"tier": 1}, "large": {"tier": 3, "context_length": 8192}},
            "selection": {
                "policies": {
                    "best-or-nothing": {"kind": "best", "explore": False, "downgrade": False}
                }
            },
            "budgets": {"limits": [{"scope": "run", "usd": 0.01}]},
        }
    )


def main() -> None:
    """One run that downgrades, one that is refused; then the spend."""
    otel.configure_logging(level="critical")
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "budget.db")
    with (
        FakeServer("ollama", models=["small"]) as local,
        FakeServer("openai", models=["large"]) as cloud,
        System() as system,
    ):
        fleet = start_fleet(system, config(local, cloud))
        with Engine(system, db_path=db, fleet=fleet, logging=False) as engine:
            answer = engine.run(Answer, {"question": "What is a budget?"})
            decision = answer.extras["selection"]
            print("chosen:", decision["chosen"])
            print("budget constrained:", decision["budget_constrained"])
            print("reason:", decision["reason"])
            for considered in decision["considered"]:
                print("  ", considered["model"], "-", considered.get("rejected", "a candidate"))
            try:
                engine.run(Strict, {"question": "What is a budget?"})
            except RunFailedError as exc:
                print("strict policy:", exc.errors[0].kind)
            assert engine.budget is not None
            report = engine.budget.ask(SpendQuery())
            print(f"spent: {report.calls} call(s), by model: {sorted(report.by_model)}")
        fleet.close()


if __name__ == "__main__":
    main()
