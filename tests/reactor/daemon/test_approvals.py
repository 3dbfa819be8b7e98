"""Tool calls that wait for a human, decided over REST: the run halts, then resumes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import otel
from actors.llm import load_config
from actors.testing import FakeServer, FakeToolCall, Reply
from dsl import find
from reactor.daemon import Daemon
from tests.reactor.daemon.conftest import REACTORS, SUPPORT, TOKEN, write_config

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, FakeServer]]:
    """A daemon serving Payout and its ``transfer`` tool, with a fake server of its own."""
    otel.configure_logging(format="console", level="warning", stream=sys.__stderr__)
    folder = tmp_path_factory.mktemp("approvals")
    with FakeServer("openai", models=["fake-small"]) as fake:
        daemon = Daemon(
            load_config(write_config(folder, fake.url), env={}),
            db_path=folder / "daemon.db",
            port=0,
            token=TOKEN,
            discovery=False,
            reactors=[*REACTORS, f"{SUPPORT}:Payout"],
            tools=[f"{SUPPORT}:transfer"],
        )
        daemon.start()
        try:
            yield daemon, fake
        finally:
            daemon.stop()


@pytest.fixture
def http(served: tuple[Daemon, FakeServer]) -> Iterator[httpx.Client]:
    """A client with the token."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=served[0].url, headers=headers, timeout=30.0) as client:
        yield client


def _follow(http: httpx.Client, run_id: str, after: int = 0) -> tuple[list[str], int]:
    """The run's events (their types) from ``after`` to the end of the stream, and the last id."""
    names: list[str] = []
    last = after
    headers = {"Last-Event-ID": str(after)} if after else {}
    with http.stream("GET", f"/api/runs/{run_id}/events", headers=headers) as stream:
        for line in stream.iter_lines():
            if line.startswith("id: "):
                last = int(line[4:])
            elif line.startswith("event: "):
                names.append(line[7:])
    return names, last


def _halted_with_a_pending_call(
    http: httpx.Client, fake: FakeServer, who: str, amount: int, call_id: str
) -> tuple[str, int]:
    call = FakeToolCall("transfer", {"to": who, "amount": amount}, id=call_id)
    fake.script(Reply(tool_calls=(call,)))
    started = http.post("/api/runs", json={"reactor": "Payout", "inputs": {"who": who}})
    assert started.status_code == 201, started.text
    run_id: str = started.json()["run_id"]
    names, last = _follow(http, run_id)
    assert names[-1] == "RunHalted", names
    assert http.get(f"/api/runs/{run_id}").json()["status"] == "halted"
    [pending] = http.get(f"/api/runs/{run_id}/tool-calls").json()
    assert (pending["step"], pending["name"], pending["call_id"]) == ("paid", "transfer", call_id)
    assert pending["arguments"] == {"to": who, "amount": amount}
    return run_id, last


def _transfers() -> list[tuple[str, int]]:
    done: list[tuple[str, int]] = find(f"{SUPPORT}:TRANSFERS")
    return done


def test_approve_over_rest_resumes_the_run_to_completion(
    served: tuple[Daemon, FakeServer], http: httpx.Client
) -> None:
    """The run waits on the call; approving it over REST runs the tool once and completes."""
    _, fake = served
    run_id, last = _halted_with_a_pending_call(http, fake, "ana", 30, "pay-1")
    assert ("ana", 30) not in _transfers()
    fake.script(Reply(text="paid ana"))
    decided = http.post(f"/api/runs/{run_id}/tool-calls/pay-1/approve", json={"by": "ana"})
    assert decided.status_code == 200, decided.text
    answer = decided.json()
    assert answer["approval"]["decision"] == "approve"
    assert answer["resumed"]["run_id"] == run_id
    assert answer["resume_error"] is None
    names, _ = _follow(http, run_id, after=last)
    assert names[-1] == "RunCompleted", names
    run: dict[str, Any] = http.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "completed"
    assert run["result"]["content"] == "paid ana"
    [call] = run["result"]["calls"]
    assert (call["decision"], call["decided_by"], call["status"]) == ("approved", "ana", "ok")
    assert _transfers().count(("ana", 30)) == 1
    assert http.get(f"/api/runs/{run_id}/tool-calls").json() == []
    again = http.post(f"/api/runs/{run_id}/tool-calls/pay-1/approve", json={"by": "ana"})
    assert again.status_code == 404
    assert again.json()["error"]["field"] == "call_id"
    audit = http.get("/api/tools/audit", params={"run": run_id}).json()
    assert [(r["decision"], r.get("decided_by", "")) for r in audit] == [
        ("approved", "ana"),
        ("pending", ""),
    ]


def test_reject_over_rest_tells_the_model_and_never_runs_the_tool(
    served: tuple[Daemon, FakeServer], http: httpx.Client
) -> None:
    """Rejected: the tool never runs, the refusal is the call's outcome and reaches the model."""
    _, fake = served
    run_id, last = _halted_with_a_pending_call(http, fake, "bo", 999, "pay-2")
    fake.script(Reply(text="I may not pay bo"))
    decided = http.post(
        f"/api/runs/{run_id}/tool-calls/pay-2/reject", json={"by": "cfo", "message": "fraud"}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["approval"]["decision"] == "reject"
    names, _ = _follow(http, run_id, after=last)
    assert names[-1] == "RunCompleted", names
    run: dict[str, Any] = http.get(f"/api/runs/{run_id}").json()
    [call] = run["result"]["calls"]
    assert call["status"] == "rejected"
    assert "cfo rejected the call: fraud" in call["content"]
    assert run["result"]["content"] == "I may not pay bo"
    assert ("bo", 999) not in _transfers()
    told = json.dumps(fake.calls[-1].body)
    assert "cfo rejected the call: fraud" in told
