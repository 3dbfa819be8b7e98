"""The daemon, embedded: serve a reactor over HTTP, then call it as any client would.

``reactor serve`` does the same from the command line (see the README's daemon section).
Here the daemon serves ``examples/briefing.py:Briefing`` on a free loopback port with the
built-in fake LLM servers, and a client creates an agent, runs two tasks, starts a run
and follows its events (server-sent events) until it completes, then two agents reason
in a session and decide (what LM Studio agents do through the MCP tools)::

    .venv/bin/python examples/daemon.py
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from actors.llm import Config
from reactor.daemon import Daemon, DaemonClient

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Serve, call, stop."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "daemon.db")
    daemon = Daemon(
        Config(),
        db_path=db,
        port=0,  # any free port
        token="example-token",  # noqa: S106 - normally generated into a 0600 file
        reactors=[f"{HERE / 'briefing.py'}:Briefing"],
        simulated=True,  # no LLM server here: the built-in fakes
        discovery=False,
    )
    daemon.start()
    try:
        with DaemonClient(daemon.url, token=daemon.token) as client:
            agent = client.post(
                "/api/orchestration/agents",
                {"name": "writer", "config": {"routing_preferences": {"generate": "fake-large"}}},
            )
            tasks = client.post(
                "/api/orchestration/tasks",
                {
                    "agent_id": agent["id"],
                    "tasks": [
                        {"type": "generate", "input": "A haiku about tides"},
                        {"type": "chat", "input": "And one about the moon"},
                    ],
                },
            )
            for result in tasks["results"]:
                print(result["task_id"], result["status"], "on", result["model_used"])
            run = client.post("/api/runs", {"reactor": "Briefing", "inputs": {"topic": "tides"}})
            for event in client.events(run["events"]):
                print("event", event.id, event.event)
            report = client.get(f"/api/runs/{run['run_id']}")
            print("status:", report["status"])
            print(json.dumps(report["result"])[:120])

            session = client.post(
                "/api/sessions",
                {"task_description": "Plan a tide-pool field trip", "agent_name": "ana",
                 "participants": ["ben"]},
            )  # fmt: skip
            sid = session["session_id"]
            client.post(
                f"/api/sessions/{sid}/steps",
                {"agent_name": "ana", "reasoning_text": "Go at low tide, mornings in May",
                 "step_type": "hypothesis"},
            )  # fmt: skip
            client.post(
                f"/api/sessions/{sid}/steps",
                {"agent_name": "ben", "reasoning_text": "Check the tide tables first",
                 "step_type": "critique"},
            )  # fmt: skip
            decision = client.post(
                f"/api/sessions/{sid}/decisions",
                {"agent_name": "ana", "prompt": "Which day?", "task_type": "analysis",
                 "wait_s": 30},
            )  # fmt: skip
            print("decision:", decision["strategy"], decision["status"])
            shown = client.get(f"/api/sessions/{sid}", agent="ben")
            print("session", sid, "steps:", [s["step_type"] for s in shown["steps"]])
    finally:
        daemon.stop()


if __name__ == "__main__":
    main()
