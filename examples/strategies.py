"""Strategies for a reasoning task, offline: several models, one answer, chosen to fit memory.

One fake LM Studio server stands in for a local machine with three chat models (one
loaded, two not) and an embedding model. LM Studio keeps one JIT model resident, so the
chooser never fans out across its models: members run in waves, each model loaded once.
Three reactors:

* ``Auto``: ``kind="auto"``: a reasoning question gets ``consensus``; the result says
  why, in which waves, and how much the members agree;
* ``Council``: ``hierarchical``: workers answer, the coordinator decides;
* ``Judged``: ``combinatorial``: every pair of answers is judged.

Then a constraint broken where the reactor is defined, and the same chooser called
directly (as a reasoning session would).

    python examples/strategies.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import otel
from actors import System
from actors.llm import Catalog, HostConfig, HostInventory, ModelHost, ModelInfo
from actors.orchestration import analyse
from actors.orchestration.strategies import Member, StrategyResult, choose_strategy, member
from actors.testing import Exchange, FakeModel, FakeServer, Reply
from dsl import DefinitionError, Input, Reactor, step, strategy
from reactor.app import Engine

ANSWERS = {"qwen": "Answer: 42", "llama": "The answer is 42.", "phi": "41"}
GB = 1_000_000_000


def respond(exchange: Exchange) -> Reply:
    """Each fake model's behaviour: an answer, a judgement, a coordinator's decision."""
    text = exchange.prompt_text()
    if "Reply with exactly one letter" in text:
        first = text.split("Answer A:", 1)[1].split("Answer B:", 1)[0]
        return Reply(text="A" if "42" in first else "B")
    if "Answers from several models" in text:
        return Reply(text="42 (two of three workers agree; 41 is an arithmetic slip)")
    return Reply(text=ANSWERS.get(exchange.model or "", "?"))


class Auto(Reactor):
    """Let the chooser pick the strategy for the question."""

    question = Input(str)
    decided = strategy("{question}", members=["qwen", "llama", "phi"])

    @step
    def report(decided: StrategyResult) -> dict[str, object]:
        return {
            "strategy": decided.strategy,
            "answer": decided.answer,
            "agreement": round(decided.agreement or 0.0, 2),
            "agreed": decided.agreed,
            "waves": decided.waves,
            "why": decided.reasons,
            "calls": [f"{c.member} [{c.stage}, wave {c.wave}]: {c.content}" for c in decided.calls],
        }


class Council(Reactor):
    """Workers answer; the coordinator decides."""

    question = Input(str)
    decided = strategy(
        "{question}",
        kind="hierarchical",
        members=[member("qwen", role="coordinator"), "llama", "phi"],
    )


class Judged(Reactor):
    """Every pair of answers is judged by qwen; the answer with the most wins."""

    question = Input(str)
    decided = strategy(
        "{question}",
        kind="combinatorial",
        members=["llama", "phi", member("qwen", role="judge")],
    )


def catalog_for(url: str) -> Catalog:
    """What the fleet's catalog would say: qwen loaded, the others not, 10 GB free."""
    catalog = Catalog()
    models = (
        ModelInfo(id="qwen", loaded=True, size_bytes=5 * GB),
        ModelInfo(id="llama", loaded=False, size_bytes=5 * GB),
        ModelInfo(id="phi", loaded=False, size_bytes=3 * GB),
        ModelInfo(id="nomic-embed", loaded=False, size_bytes=GB, capabilities=("embeddings",)),
    )
    catalog.add_host(
        "studio", HostInventory(url=url, provider="lmstudio", reachable=True, models=models)
    )
    catalog.set_free_bytes(10 * GB, budget=15 * GB)
    return catalog


def main() -> None:
    """Run the three reactors against the fake server, then call the chooser directly."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "strategies.db")
    otel.configure_logging(level="critical")
    models = [FakeModel("qwen"), FakeModel("llama", loaded=False), FakeModel("phi", loaded=False)]
    models.append(FakeModel("nomic-embed", embeddings=True, loaded=False))
    with (
        FakeServer("lmstudio", models=models, responder=respond) as studio,
        System(name="strategies-demo") as system,
    ):
        system.spawn(
            ModelHost, name="studio", args=(HostConfig(url=studio.url, protocol="lmstudio"),)
        )
        catalog = catalog_for(studio.url)
        hosts = dict.fromkeys([*ANSWERS, "nomic-embed"], "studio")
        with Engine(system, db_path=db, logging=False, hosts=hosts, catalog=catalog) as engine:
            auto = engine.run(Auto, {"question": "What is 6 * 7? Solve it step by step."})
            print("auto chose:", auto["strategy"], "->", auto["answer"])
            print(
                f"  agreement {auto['agreement']} (agreed: {auto['agreed']}), waves {auto['waves']}"
            )
            for why in auto["why"]:
                print("  why:", why)
            for line in auto["calls"]:
                print("  ", line)
            council: StrategyResult = engine.run(Council, {"question": "What is 6 * 7?"})
            print("hierarchical:", council.answer, f"(by {', '.join(council.answered_by)})")
            judged: StrategyResult = engine.run(Judged, {"question": "What is 6 * 7?"})
            judgements = sum(1 for c in judged.calls if c.stage == "judge")
            print(f"combinatorial: {judged.answer} ({judgements} pairwise judgement(s))")
        print("chat requests, in order:", [c.model for c in studio.calls if "chat" in c.path])
    try:

        class TooFew(Reactor):
            decided = strategy("q", kind="consensus", members=["qwen", "llama"])

    except DefinitionError as exc:
        print("refused:", str(exc).splitlines()[0])
    choice = choose_strategy(
        analyse("Write a short poem about tides."),
        [Member("qwen"), Member("llama"), Member("phi")],
        catalog,
        embedding_model="nomic-embed",
    )
    print("for a poem:", choice.kind, "-", choice.reasons[0])


if __name__ == "__main__":
    main()
