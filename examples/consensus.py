"""Consensus, offline: five models answer at once; a vote, a number, and a split for a person.

Two fake servers stand in for a local Ollama (three models) and a cloud API (two). Each
model is scripted: four name the right city in their own words and one names another; one
model multiplies badly; on a matter of taste they split. Three ``consensus`` steps:

* a vote (the answers' prose is reduced to the city, and the confidence is the Wilson
  lower bound of the agreement, not a model's say-so);
* a number, with the wild answer rejected by the MAD rule and named as an outlier;
* a low consensus that halts the run for a person (``on_low="halt"``), who answers;
  the run resumes with the person's answer.

    python examples/consensus.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import otel
from actors import System
from actors.llm import HostConfig, ModelHost
from actors.orchestration import ConsensusResult
from actors.testing import FakeServer, Reply
from actors.testing._server import Exchange
from dsl import Input, Reactor, consensus, step
from reactor.app import Engine
from reactor.kinds import answer_review
from reactor.run import RunHaltedError

MEMBERS = ["local/llama3.2", "local/qwen2.5", "local/gemma2", "cloud/gpt-4o-mini", "cloud/mistral"]

SCRIPT = {
    "capital": {
        "llama3.2": "The capital of Australia is Canberra.",
        "qwen2.5": "Answer: Canberra",
        "gemma2": "**Canberra**",
        "gpt-4o-mini": "It is Canberra, the planned capital.",
        "mistral": "Sydney",
    },
    "multiply": {
        "llama3.2": "17 * 23 = \\boxed{391}",
        "qwen2.5": "391",
        "gemma2": "The product is 391.",
        "gpt-4o-mini": "17 times 23 is 391",
        "mistral": "I get 3910.",
    },
    "taste": {
        "llama3.2": "Answer: tabs",
        "qwen2.5": "Answer: spaces",
        "gemma2": "Answer: tabs",
        "gpt-4o-mini": "Answer: spaces",
        "mistral": "Answer: spaces, mostly",
    },
}


def scripted(exchange: Exchange) -> Reply:
    """Each model's scripted answer to the question its prompt is about."""
    prompt = exchange.prompt_text()
    topic = next((t for t in SCRIPT if t in prompt), "capital")
    return Reply(text=SCRIPT[topic].get(exchange.model or "", "no idea"))


class Facts(Reactor):
    """A vote and a number, each with its provenance."""

    country = Input(str)
    city = consensus(
        "What is the capital of {country}? (capital)",
        members=MEMBERS,
        choices=["Canberra", "Sydney", "Melbourne"],
        threshold=0.3,
    )
    product = consensus(
        "What is 17 * 23? Put the result in \\boxed{{}}. (multiply)",
        members=MEMBERS,
        output="numeric",
    )

    @step
    def report(city: ConsensusResult, product: ConsensusResult) -> dict[str, object]:
        return {
            "city": city.answer,
            "city_confidence": city.confidence,
            "disagreed": [m.member for m in city.members if not m.agrees],
            "product": product.answer,
            "outliers": list(product.outliers),
        }


class Style(Reactor):
    """A matter of taste: the models split, so a person decides."""

    topic = Input(str)
    verdict = consensus(
        "{topic}: tabs or spaces? (taste)",
        members=MEMBERS,
        choices=["tabs", "spaces"],
        on_low="halt",
    )

    @step
    def decision(verdict: ConsensusResult) -> str:
        return f"{verdict.answer} (decided by {verdict.method}: {verdict.note})"


def main() -> None:
    """Run both reactors against the fakes; answer the halted one as a person would."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "consensus.db")
    otel.configure_logging(level="critical")
    models = {"local": ["llama3.2", "qwen2.5", "gemma2"], "cloud": ["gpt-4o-mini", "mistral"]}
    with (
        FakeServer("ollama", models=models["local"], responder=scripted) as local,
        FakeServer("openai", models=models["cloud"], responder=scripted) as cloud,
        System(name="consensus-demo") as system,
    ):
        system.spawn(ModelHost, name="local", args=(HostConfig(url=local.url, protocol="ollama"),))
        system.spawn(ModelHost, name="cloud", args=(HostConfig(url=cloud.url, protocol="openai"),))
        with Engine(system, db_path=db, logging=False) as engine:
            print(engine.run(Facts, {"country": "Australia"}, timeout=60))
            handle = engine.start(Style, {"topic": "Indentation"})
            try:
                handle.result(60)
            except RunHaltedError as exc:
                print("halted for review:", exc.reason[:90], "...")
            answer_review(engine.journal, handle.run_id, "verdict", "spaces", reviewer="ana")
            print(engine.resume(handle.run_id, reactor=Style).result(60))


if __name__ == "__main__":
    main()
