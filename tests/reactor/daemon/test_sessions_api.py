"""Reasoning sessions and conversations over the daemon's REST API (real HTTP)."""

from __future__ import annotations

import contextlib
import io
import json
import queue
from pathlib import Path
from typing import Any

import httpx

from actors.agents import AgentSpec, Role
from reactor.cli import main
from reactor.daemon import ConversationActivity, Daemon
from tests.reactor.daemon.conftest import TOKEN


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


def test_a_session_over_rest(client: httpx.Client) -> None:
    """Start, share, add steps, decide, read, search; stats and the audit trail see it all."""
    created = client.post(
        "/api/sessions",
        json={"task_description": "pick a queue for the crawler", "agent_name": "ann",
              "tags": ["rest-test"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    session = created.json()
    session_id = session["session_id"]
    assert session["owner"] == "ann"

    denied = client.post(
        f"/api/sessions/{session_id}/steps", json={"agent_name": "ben", "reasoning_text": "x"}
    )
    assert denied.status_code == 403
    assert _error(denied)["code"] == "forbidden"
    assert "ben" in _error(denied)["message"]
    assert session_id in _error(denied)["message"]

    shared = client.post(
        f"/api/sessions/{session_id}/participants", json={"agent_name": "ann",
                                                          "participants": ["ben"]}
    )  # fmt: skip
    assert shared.json()["participants"] == ["ben"]

    first = client.post(
        f"/api/sessions/{session_id}/steps",
        json={"agent_name": "ann", "reasoning_text": "a Redis stream", "step_type": "hypothesis"},
    )
    assert first.status_code == 201, first.text
    second = client.post(
        f"/api/sessions/{session_id}/steps",
        json={"agent_name": "ben", "reasoning_text": "Redis is one more service",
              "step_type": "critique"},
    )  # fmt: skip
    assert second.json()["builds_on_agent"] == "ann"

    wrong_type = client.post(
        f"/api/sessions/{session_id}/steps",
        json={"agent_name": "ann", "reasoning_text": "x", "step_type": "guess"},
    )
    assert wrong_type.status_code == 400
    assert _error(wrong_type) == {
        "code": "bad_request",
        "message": _error(wrong_type)["message"],
        "field": "step_type",
    }
    assert "critique" in _error(wrong_type)["message"]
    missing_field = client.post(f"/api/sessions/{session_id}/steps", json={"agent_name": "ann"})
    assert _error(missing_field)["field"] == "reasoning_text"

    decided = client.post(
        f"/api/sessions/{session_id}/decisions",
        json={"agent_name": "ann", "prompt": "which queue?", "task_type": "analysis"},
    )
    assert decided.is_success, decided.text
    execution_id = decided.json()["execution_id"]
    negative = client.post(
        f"/api/sessions/{session_id}/decisions",
        json={"agent_name": "ann", "prompt": "x", "wait_s": -1},
    )
    assert _error(negative)["field"] == "wait_s"
    bad_task = client.post(
        f"/api/sessions/{session_id}/decisions",
        json={"agent_name": "ann", "prompt": "x", "task_type": "poetry"},
    )
    assert _error(bad_task)["field"] == "task_type"
    waited = client.get(
        f"/api/sessions/{session_id}/decisions/{execution_id}",
        params={"agent": "ann", "wait": "30"},
    )
    assert waited.json()["status"] == "completed", waited.text
    assert waited.json()["result"]

    shown = client.get(f"/api/sessions/{session_id}", params={"agent": "ben"}).json()
    assert [s["step_type"] for s in shown["steps"]] == ["hypothesis", "critique"]
    assert shown["executions"][0]["execution_id"] == execution_id
    no_agent = client.get(f"/api/sessions/{session_id}")
    assert _error(no_agent)["field"] == "agent"
    unknown = client.get("/api/sessions/no-such-one", params={"agent": "ann"})
    assert unknown.status_code == 404
    assert "no-such-one" in _error(unknown)["message"]

    hits = client.get(
        "/api/sessions", params={"agent": "ben", "query": "Redis", "tags": "rest-test"}
    ).json()
    assert [h["session_id"] for h in hits] == [session_id]
    assert client.get("/api/sessions", params={"agent": "zed", "query": "Redis"}).json() == []
    bad_status = client.get("/api/sessions", params={"agent": "ann", "status": "sleeping"})
    assert _error(bad_status)["field"] == "status"

    capabilities = client.get("/api/sessions/capabilities", params={"agent": "ann"}).json()
    assert "fake/fake-small" in {m["model"] for m in capabilities["models"]}
    assert "analysis" in capabilities["task_types"]

    overview = client.get("/api/sessions/overview", params={"all": "true"}).json()
    (mine,) = [o for o in overview if o["session_id"] == session_id]
    assert (mine["owner"], mine["steps"], mine["decisions"]) == ("ann", 2, 1)
    assert mine["tags"] == ["rest-test"]

    stats = client.get("/api/sessions/stats").json()
    assert stats["interactions"]["ben"]["add_reasoning_step"] >= 1
    assert {"agent": "ben", "builds_on": "ann", "steps": 1} in stats["collaboration"]
    audit = client.get("/api/sessions/audit", params={"session": session_id}).json()
    outcomes = {(r["agent"], r["outcome"]) for r in audit}
    assert ("ben", "permission_denied") in outcomes


def test_overview_shows_an_agent_only_what_it_may_read(client: httpx.Client) -> None:
    """``?agent=``: owned, shared and open sessions only; ``?all=true`` every one; neither: 400."""

    def start(owner: str, task: str, **extra: Any) -> str:
        body = {"task_description": task, "agent_name": owner, "tags": ["acl-test"], **extra}
        created = client.post("/api/sessions", json=body)
        assert created.status_code == 201, created.text
        session_id: str = created.json()["session_id"]
        return session_id

    private = start("olga", "olga's own plan")
    shared = start("olga", "olga's plan shared with pia", participants=["pia"])
    public = start("quinn", "quinn's open question", open=True)

    def seen(**params: str) -> set[str]:
        answer = client.get("/api/sessions/overview", params={"limit": "200", **params})
        assert answer.status_code == 200, answer.text
        return {o["session_id"] for o in answer.json()} & {private, shared, public}

    assert seen(agent="olga") == {private, shared, public}
    assert seen(agent="pia") == {shared, public}
    assert seen(agent="rex") == {public}
    assert seen(all="true") == {private, shared, public}
    missing = client.get("/api/sessions/overview")
    assert missing.status_code == 400
    assert _error(missing)["field"] == "agent"
    audit = client.get("/api/sessions/audit", params={"agent": "rex"}).json()
    assert "search_reasoning_sessions" in {r["operation"] for r in audit}


def _define(daemon: Daemon, *names: str) -> None:
    for name in names:
        spec = AgentSpec(
            name=name,
            role=Role(name=f"{name}-role", system_prompt=f"You are {name}."),
            model="fake-small",
        )
        daemon.team.define(spec, replace=True)


def test_conversations_over_rest(daemon: Daemon, client: httpx.Client) -> None:
    """Start with a team pattern, list, show, send one message, resume; errors name the thing."""
    _define(daemon, "writer", "editor")
    started = client.post(
        "/api/conversations",
        json={"participants": ["writer", "editor"], "topic": "a release note",
              "initial": "Draft the note.", "id": "conv-rest", "pattern": "round_robin",
              "max_rounds": 1},
    )  # fmt: skip
    assert started.status_code == 201, started.text
    state = started.json()
    assert state["id"] == "conv-rest"
    assert [m["sender"] for m in state["messages"]] == ["user", "writer", "editor"]

    listed = client.get("/api/conversations").json()
    assert "conv-rest" in {c["id"] for c in listed}
    shown = client.get("/api/conversations/conv-rest").json()
    assert len(shown["messages"]) == 3

    said = client.post(
        "/api/conversations/conv-rest/messages",
        json={"sender": "editor", "recipient": "writer", "content": "Shorter, please."},
    )
    assert said.is_success, said.text
    assert said.json()["sender"] == "writer"

    resumed = client.post("/api/conversations/conv-rest/resume", json={"max_rounds": 1})
    assert resumed.is_success, resumed.text
    assert len(resumed.json()["messages"]) > len(shown["messages"]) + 2

    missing = client.get("/api/conversations/no-such-talk")
    assert missing.status_code == 404
    assert "no-such-talk" in _error(missing)["message"]
    stranger = client.post("/api/conversations", json={"participants": ["writer", "nobody"]})
    assert stranger.status_code in {400, 404}
    assert "nobody" in _error(stranger)["message"]
    bad_pattern = client.post("/api/conversations/conv-rest/resume", json={"pattern": "chaos"})
    assert _error(bad_pattern)["field"] == "pattern"


def test_a_team_conversation_is_announced_as_each_agent_speaks(
    daemon: Daemon, client: httpx.Client
) -> None:
    """The page hears of a team when it starts and after each message, not only at its end."""
    _define(daemon, "writer", "editor")
    assert daemon.system is not None
    heard: queue.Queue[ConversationActivity] = queue.Queue()
    subscription = daemon.system.bus.subscribe(ConversationActivity, heard)
    try:
        started = client.post(
            "/api/conversations",
            json={"participants": ["writer", "editor"], "topic": "a name", "initial": "Go.",
                  "id": "conv-live", "pattern": "round_robin", "max_rounds": 2},
        )  # fmt: skip
        assert started.status_code == 201, started.text
        resumed = client.post("/api/conversations/conv-live/resume", json={"max_rounds": 1})
        assert resumed.is_success, resumed.text
    finally:
        subscription.cancel()
    operations = []
    while not heard.empty():
        event = heard.get_nowait()
        if event.conversation_id == "conv-live":
            operations.append(event.operation)
    assert operations == ["started", *["said"] * 4, "ended", *["said"] * 2, "resumed"]


def test_openapi_lists_sessions_and_conversations(client: httpx.Client) -> None:
    """The new routes are in /openapi.json with their body schemas."""
    document = client.get("/openapi.json").json()
    for path in (
        "/api/sessions",
        "/api/sessions/{id}",
        "/api/sessions/{id}/steps",
        "/api/sessions/{id}/decisions",
        "/api/sessions/stats",
        "/api/sessions/audit",
        "/api/conversations",
        "/api/conversations/{id}/messages",
        "/api/conversations/{id}/resume",
    ):
        assert path in document["paths"], path
    schemas = document["components"]["schemas"]
    assert {"SessionCreate", "StepCreate", "DecisionCreate", "ConversationCreate"} <= set(schemas)


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_sessions_cli_with_server(daemon: Daemon, tmp_path: Path) -> None:
    """`reactor sessions ... --server URL`: the daemon's sessions, the local commands' output."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    remote = ("--server", daemon.url, "--token-file", str(token_file))

    code, out, err = _cli(
        "sessions", "start", "tune the retry policy", "--agent", "cleo", "--tag", "cli-test",
        "--participant", "dan", *remote,
    )  # fmt: skip
    assert code == 0, err
    session_id = out.strip()
    code, out, err = _cli(
        "sessions", "step", session_id, "back off exponentially", "--agent", "dan",
        "--type", "hypothesis", "--json", *remote,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["step_type"] == "hypothesis"

    code, out, err = _cli(
        "sessions", "execute", session_id, "which policy?", "--agent", "cleo", "--wait", "30",
        *remote,
    )  # fmt: skip
    assert code == 0, err
    assert f"session {session_id}" in out
    assert "result:" in out

    code, remote_show, err = _cli("sessions", "show", session_id, "--agent", "dan", *remote)
    assert code == 0, err
    code, local_show, err = _cli(
        "sessions", "show", session_id, "--agent", "dan", "--db", str(daemon.db_path)
    )
    assert code == 0, err
    assert remote_show == local_show

    code, out, err = _cli("sessions", "search", "exponentially", "--agent", "dan", *remote)
    assert code == 0, err
    assert session_id in out
    code, out, err = _cli("sessions", "capabilities", "--agent", "dan", "--json", *remote)
    assert "fake/fake-small" in out
    code, out, err = _cli("sessions", "stats", *remote)
    assert code == 0, err
    assert "dan -> cleo" not in out  # dan's step was the first: it builds on nothing
    assert "cleo:" in out
    code, out, err = _cli("sessions", "audit", "--session", session_id, *remote)
    assert "add_reasoning_step" in out

    code, out, err = _cli(
        "sessions", "step", session_id, "let me in", "--agent", "eve", *remote
    )  # fmt: skip
    assert code == 2
    assert "eve" in err
    assert session_id in err
