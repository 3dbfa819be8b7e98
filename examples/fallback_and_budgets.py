"""A fallback chain and a budget, offline: a failing local model, a cloud one, a spending cap.

Two fake servers stand in for a local Ollama (whose model fails with 500s) and a cloud
OpenAI-compatible API (which answers). A ``fallback`` step asks the local model first
and falls through to the cloud one; its result names the link that answered and every
attempt on the way. A ``[budgets]`` cap on each run refuses a second, larger question
before its request is sent. Then the spend, as ``reactor spend`` shows it.

    python examples/fallback_and_budgets.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import otel
from actors import System
from actors.llm import ChatRequest, Config, HostConfig, ModelHost
from actors.orchestration import FallbackResult, SpendQuery, link
from actors.testing import FakeServer, Fault
from dsl import Input, Reactor, fallback, step
from reactor.app import Engine
from reactor.run import RunFailedError


def short_prompt(request: ChatRequest) -> bool:
    """Only short prompts go to the small local model (a conditional link)."""
    return len(request.messages[-1].content) < 2000


class Answer(Reactor):
    """Ask the local model, falling back to the cloud; report who answered and how."""

    question = Input(str)
    reply = fallback(
        "Answer briefly: {question}",
        chain=[
            link("llama3.2", host="local", when=short_prompt),
            link("gpt-4o-mini", host="cloud"),
        ],
        name="local-first",
        max_tokens=200,
    )

    @step
    def report(reply: FallbackResult) -> dict[str, object]:
        return {
            "answer": reply.content,
            "answered_by": reply.link,
            "path": [f"{a.link}: {a.outcome} ({a.action})" for a in reply.attempts],
            "cost_usd": reply.completion.cost_usd,
        }


class Essay(Reactor):
    """The same chain, with room for a very long answer."""

    question = Input(str)
    reply = fallback(
        "{question}",
        chain=[link("llama3.2", host="local"), link("gpt-4o-mini", host="cloud")],
        max_tokens=20_000,
    )


CONFIG = {
    # A local model costs its GPU time; the cloud model its tokens. Never a silent $0.
    "prices": {
        "local/llama3.2": {"per_gpu_second": 0.0002},
        "cloud/gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
    },
    "budgets": {
        "reserve_seconds": 30,
        "limits": [
            {"scope": "run", "usd": 0.01},  # each run
            {"scope": "global", "usd": 5.0, "period": "1d"},  # everything, per UTC day
        ],
    },
}


def main() -> None:
    """Run the reactor twice against the fakes, then print the spend."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "fallback.db")
    otel.configure_logging(level="critical")
    config = Config.model_validate(CONFIG)
    with (
        FakeServer("ollama", models=["llama3.2"]) as local,
        FakeServer("openai", models=["gpt-4o-mini"]) as cloud,
        System(name="fallback-demo") as system,
    ):
        local.inject(Fault(status=500, times=None))  # the local server is having a bad day
        hosts = {
            "local": HostConfig(url=local.url, protocol="ollama"),
            "cloud": HostConfig(url=cloud.url, protocol="openai"),
        }
        for name, section in hosts.items():  # with the [prices] that apply to each
            system.spawn(ModelHost, name=name, args=(config.host(name, section),))
        with Engine(system, db_path=db, logging=False, config=config) as engine:
            result = engine.run(Answer, {"question": "Why do fallback chains need rules?"})
            print("answered by:", result["answered_by"])
            for line in result["path"]:
                print("  ", line)
            print("answer:", result["answer"])
            # 20000 output tokens at $0.60/Mtok may cost $0.012: more than the $0.01 run
            # budget, so the cloud link is refused before its request is sent.
            try:
                engine.run(Essay, {"question": "Tell me everything."})
            except RunFailedError as exc:
                print("refused:", exc.errors[0].kind, "-", exc.errors[0].message[:110])
            report = engine.budget.ask(SpendQuery()) if engine.budget is not None else None
            if report is not None:
                print(f"spent: ${report.total_usd:.6f} in {report.calls} call(s)")
                for b in report.budgets:
                    print(f"  {b.scope} budget {b.name or ''} ${b.spent_usd:.6f} of ${b.limit_usd}")


if __name__ == "__main__":
    main()
