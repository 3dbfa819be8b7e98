"""A reasoning session: two agents reason together, then several models decide.

Offline: a fake OpenAI-compatible server stands in for a local LM Studio with three
models (their answers are scripted: two agree, one does not). Alice starts a session
and lets Bob in; each adds steps, Bob's critique building on Alice's hypothesis; Eve,
not invited, is refused. Bob asks for an orchestrated decision: because the reasoning
disagrees with itself (a critique), the orchestrator runs ``hybrid`` (three models
answer in parallel, the best synthesises). The call answers at once with a handle; its
progress shows in ``get_reasoning_session`` until it is done. Then a full-text search,
the analytics and the audit trail.

Run it with ``.venv/bin/python examples/reasoning_session.py``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import otel
from actors import AskError, System
from actors.llm import Config, start_fleet
from actors.sessions import Sessions
from actors.testing import FakeModel, FakeServer, Reply


def answers(exchange: Any) -> Reply:
    """The fake models: 'qwen' and 'llama' agree on write-through; 'phi' does not."""
    if "models answered" in exchange.prompt_text():
        return Reply(text="Write-through cache with a 5 min TTL; invalidate on price change.")
    if exchange.model == "phi":
        return Reply(text="No cache: read the database every time.")
    return Reply(text="A write-through cache with a short TTL.")


def main() -> None:
    """Run the session from start to decision, and print what happened."""
    otel.configure_logging(level="warning")
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "sessions.db")
    models = [FakeModel("qwen"), FakeModel("llama"), FakeModel("phi")]
    with (
        FakeServer("lmstudio", models=models, responder=answers, latency=0.2) as lmstudio,
        System() as system,
    ):
        config = Config.model_validate(
            {
                "discovery": {"enabled": False},
                "resources": {"nvml": False},
                "hosts": {"lmstudio": {"url": lmstudio.url, "protocol": "lmstudio"}},
                "models": {"qwen": {"tier": 3}, "llama": {"tier": 2}},
            }
        )
        fleet = start_fleet(system, config)
        sessions = Sessions(system, db_path=db, catalog=fleet.catalog)

        sid = sessions.initiate_reasoning_session(
            "Cache product prices for the shop API?", "alice", ["cache", "api"]
        )
        sessions.add_participants(sid, "alice", ["bob"])
        sessions.add_reasoning_step(sid, "alice", "Prices change rarely: cache them.", "hypothesis")
        sessions.add_reasoning_step(
            sid, "bob", "Stale prices at checkout cost money: bound staleness.", "critique"
        )
        try:
            sessions.add_reasoning_step(sid, "eve", "Let me in.")
        except AskError as refused:
            print("eve:", refused.failure.kind.value)

        handle = sessions.execute_orchestrated_decision(sid, "bob", "Cache or not?", "reasoning")
        print(f"decision {handle.execution_id}: {handle.strategy.value} ({handle.status.value})")
        print("  why:", handle.reason)
        session = sessions.get_reasoning_session(sid, "alice")
        shown = ""
        while session.executions[-1].status.value == "running":  # what an MCP client polls
            if session.executions[-1].progress != shown:
                shown = session.executions[-1].progress
                print("  progress:", shown)
            time.sleep(0.05)
            session = sessions.get_reasoning_session(sid, "alice")
        decision = session.executions[-1]
        for answer in decision.answers:
            print(f"  {answer.model} [{answer.role}]: {answer.text}")
        print("result:", decision.result)
        print("confidence:", decision.confidence)

        for hit in sessions.search_reasoning_sessions("bob", "staleness"):
            print("search:", hit.session_id == sid, hit.snippet)
        stats = sessions.stats()
        print("collaboration:", [(e.agent, e.builds_on, e.steps) for e in stats.collaboration])
        print("bob's decisions:", stats.performance["bob"]["executions"])
        for record in sessions.audit(session_id=sid):
            if record.operation != "get_reasoning_session":  # the polling above, left out
                print("audit:", record.agent, record.operation, record.outcome, record.detail)
        fleet.close()


if __name__ == "__main__":
    main()
