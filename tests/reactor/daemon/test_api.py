"""The daemon's REST API over real HTTP: auth, agents, tasks, workflows, reactors, runs, fleet."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.llm import Config
from dsl import find
from otel.testing import capture_spans, wait_for_spans
from reactor.daemon import Agent, Daemon, Task, TaskRunner, register_task_handler
from reactor.daemon._agents import AgentBook
from reactor.daemon._daemon import _token_from_file
from tests.reactor.daemon.conftest import TOKEN


async def _upper(task: Task, runner: TaskRunner, agent: Agent | None) -> str:
    return task.input.upper()


async def _braces(task: Task, runner: TaskRunner, agent: Agent | None) -> str:
    return "literal {{first}} and {{step1}}"


async def _boom(task: Task, runner: TaskRunner, agent: Agent | None) -> str:
    msg = f"cannot do {task.input!r}"
    raise RuntimeError(msg)


register_task_handler("upper", _upper)
register_task_handler("braces", _braces)
register_task_handler("boom", _boom)


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


def _wait_status(client: httpx.Client, run_id: str, wanted: set[str]) -> dict[str, Any]:
    """Follow the run's SSE stream to its end, then read the run."""
    with client.stream("GET", f"/api/runs/{run_id}/events") as stream:
        for _ in stream.iter_lines():
            pass
    run: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] in wanted, run
    return run


# ---- auth ---------------------------------------------------------------------------------------


def test_health_needs_no_token(daemon: Daemon) -> None:
    """/health answers without a token."""
    response = httpx.get(f"{daemon.url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}]
)
def test_api_refuses_missing_or_wrong_token(daemon: Daemon, headers: dict[str, str]) -> None:
    """Without the right bearer token every API path is 401 in the one error shape."""
    for path in ("/api/runs", "/api/orchestration/agents", "/openapi.json", "/", "/mcp"):
        response = httpx.get(f"{daemon.url}{path}", headers=headers)
        assert response.status_code == 401, path
        assert _error(response)["code"] == "unauthorized"
        assert _error(response)["field"] == "Authorization"
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_right_token_and_page_cookie(daemon: Daemon) -> None:
    """The bearer token works; /?token= sets a cookie that authorises the page's requests."""
    assert httpx.get(
        f"{daemon.url}/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}
    ).is_success
    with httpx.Client(base_url=daemon.url) as browser:
        first = browser.get(f"/?token={TOKEN}")
        assert first.status_code == 303
        assert "httponly" in first.headers["set-cookie"].lower()
        assert browser.get("/api/runs").is_success
        assert "Reactor Swarm" in browser.get("/").text


def test_foreign_origin_is_forbidden(daemon: Daemon, client: httpx.Client) -> None:
    """A browser Origin other than the daemon's own is refused before the token is looked at."""
    response = client.get("/api/runs", headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert _error(response) == {
        "code": "forbidden",
        "message": "origin 'http://evil.example' is not allowed",
        "field": "Origin",
    }
    own = client.get("/api/runs", headers={"Origin": f"http://127.0.0.1:{daemon.port}"})
    assert own.is_success


def test_binds_loopback_by_default_and_warns_otherwise(daemon: Daemon) -> None:
    """The default address is loopback; any other is a warning at the check."""
    assert daemon.host == "127.0.0.1"
    wide = Daemon(Config(), host="0.0.0.0", token="x", port=0)
    assert any("reachable from other machines" in w for w in wide.check())
    assert Daemon(Config(), token="x").check() == []


def test_token_file_is_generated_owner_only_and_reused(tmp_path: Path) -> None:
    """The first start writes a 0600 token file; later starts read it; a readable one is refused."""
    path = tmp_path / "sub" / "daemon.token"
    token = _token_from_file(path)
    assert len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _token_from_file(path) == token
    os.chmod(path, 0o644)
    with pytest.raises(RuntimeError, match="chmod 600"):
        _token_from_file(path)


# ---- agents -------------------------------------------------------------------------------------


def test_agents_crud_and_persistence(daemon: Daemon, client: httpx.Client) -> None:
    """Agents are created, listed, read, updated, deleted, and stored in the database."""
    body = {
        "name": "coder",
        "description": "writes code",
        "models": ["fake-small", "fake-large"],
        "config": {"routing_preferences": {"generate": "fake-large"}, "max_concurrent_tasks": 2},
    }
    created = client.post("/api/orchestration/agents", json=body)
    assert created.status_code == 201
    agent = created.json()
    assert agent["config"]["routing_preferences"] == {"generate": "fake-large"}
    assert agent["id"] in {a["id"] for a in client.get("/api/orchestration/agents").json()}
    updated = client.put(
        f"/api/orchestration/agents/{agent['id']}",
        json={"config": {"default_model": "fake-small", "timeout_seconds": 9}},
    ).json()
    assert updated["config"]["default_model"] == "fake-small"
    assert updated["name"] == "coder"
    assert updated["updated_at"] >= agent["updated_at"]

    book = AgentBook(daemon.engine.journal)
    daemon.system.bridge.run(book.load())  # type: ignore[union-attr]
    assert book.get(agent["id"]).config.timeout_seconds == 9

    assert client.delete(f"/api/orchestration/agents/{agent['id']}").is_success
    gone = client.get(f"/api/orchestration/agents/{agent['id']}")
    assert gone.status_code == 404
    assert _error(gone)["code"] == "not_found"
    book = AgentBook(daemon.engine.journal)
    daemon.system.bridge.run(book.load())  # type: ignore[union-attr]
    assert agent["id"] not in {a.id for a in book.list()}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "config": {"max_concurrent_tasks": 0}}, "config.max_concurrent_tasks"),
        ({"name": "x", "config": {"timeout_seconds": "soon"}}, "config.timeout_seconds"),
        ({"name": "x", "colour": "red"}, None),
    ],
)
def test_bad_agent_names_the_field(
    client: httpx.Client, body: dict[str, Any], field: str | None
) -> None:
    """A bad agent is a 400 whose field is the path of what is wrong."""
    response = client.post("/api/orchestration/agents", json=body)
    assert response.status_code == 400
    assert _error(response)["code"] == "bad_request"
    if field is not None:
        assert _error(response)["field"] == field
    else:
        assert "colour" in _error(response)["message"]


# ---- tasks --------------------------------------------------------------------------------------


def test_tasks_route_by_preference_default_and_selector(client: httpx.Client) -> None:
    """Each task says its model, why, its tokens and duration; one failure stops nothing."""
    agent = client.post(
        "/api/orchestration/agents",
        json={"name": "router", "config": {"routing_preferences": {"generate": "fake-large"}}},
    ).json()
    tasks = [
        {"type": "generate", "input": "one"},
        {
            "type": "chat",
            "input": "two",
            "parameters": {"messages": [{"role": "user", "content": "hi"}]},
        },
        {"type": "embed", "input": "three"},
        {"type": "generate", "input": "four", "model_name": "no-such-model"},
        {"type": "upper", "input": "five"},
        {"type": "boom", "input": "six"},
    ]
    answer = client.post(
        "/api/orchestration/tasks", json={"agent_id": agent["id"], "tasks": tasks}
    ).json()
    results = answer["results"]
    assert answer["status"] == "partial"
    assert [r["status"] for r in results] == [
        "completed",
        "completed",
        "completed",
        "failed",
        "completed",
        "failed",
    ]
    assert results[0]["model_used"] == "fake/fake-large"
    assert results[0]["routing"] == "preference:generate"
    assert results[0]["metrics"]["tokens_used"] > 0
    assert results[0]["metrics"]["duration"] > 0
    assert results[1]["routing"].startswith("selector:")
    assert results[2]["model_used"] == "fake/fake-embed"
    assert isinstance(results[2]["output"][0][0], float)
    assert "no-such-model" in results[3]["error"]
    assert results[4]["output"] == "FIVE"
    assert results[5]["error"] == "RuntimeError: cannot do 'six'"

    client.put(
        f"/api/orchestration/agents/{agent['id']}", json={"config": {"default_model": "fake-small"}}
    )
    again = client.post(
        "/api/orchestration/tasks",
        json={
            "agent_id": agent["id"],
            "tasks": [{"type": "chat", "input": "x"}],
            "sequential": True,
        },
    ).json()
    assert again["results"][0]["routing"] == "default_model"
    assert again["results"][0]["model_used"] == "fake/fake-small"
    assert again["sequential"] is True


def test_tasks_refuse_unknown_types_and_agents(client: httpx.Client) -> None:
    """An unknown task type or agent is a 400/404 naming the field; nothing runs."""
    bad = client.post(
        "/api/orchestration/tasks",
        json={"tasks": [{"type": "generate", "input": "a"}, {"type": "paint", "input": "b"}]},
    )
    assert bad.status_code == 400
    assert _error(bad)["field"] == "tasks[1].type"
    missing = client.post(
        "/api/orchestration/tasks",
        json={"agent_id": "nobody", "tasks": [{"type": "generate", "input": "a"}]},
    )
    assert missing.status_code == 404
    assert _error(missing)["field"] == "agent_id"


# ---- workflows ----------------------------------------------------------------------------------


def test_workflow_substitutes_once_and_is_a_journaled_run(
    daemon: Daemon, client: httpx.Client
) -> None:
    """{{name}} and {{stepN}} are replaced once; the workflow is a run that can be found again."""
    steps = [
        "first:braces:anything",
        "second:upper:got {{first}} / {{step1}}",
        {
            "name": "third",
            "type": "generate",
            "input": "say {{second}}",
            "model_name": "fake-small",
        },
    ]
    answer = client.post("/api/orchestration/workflows", json={"steps": steps}).json()
    assert answer["success"] is True, answer
    by_name = {s["name"]: s for s in answer["steps"]}
    assert by_name["second"]["input"] == (
        "got literal {{first}} and {{step1}} / literal {{first}} and {{step1}}"
    )
    assert by_name["second"]["output"] == by_name["second"]["input"].upper()
    assert by_name["third"]["model_used"] == "fake/fake-small"
    run = client.get(f"/api/runs/{answer['run_id']}").json()
    assert run["status"] == "completed"
    assert [s["name"] for s in run["steps"]][-1] == "workflow_result"
    assert find(run["locator"]).__plan__.reactor == answer["reactor"]  # resumable by locator


def test_workflow_failure_and_bad_references(client: httpx.Client) -> None:
    """A failing step fails the workflow with its error; a forward reference is refused."""
    answer = client.post(
        "/api/orchestration/workflows", json={"steps": ["a:boom:x", "b:upper:{{a}}"]}
    ).json()
    assert answer["success"] is False
    assert "cannot do 'x'" in (answer["error"] or "")
    assert answer["steps"][0]["success"] is False
    bad = client.post(
        "/api/orchestration/workflows", json={"steps": ["a:upper:{{b}}", "b:upper:x"]}
    )
    assert bad.status_code == 400
    assert _error(bad)["field"] == "steps[0].input"
    bad = client.post("/api/orchestration/workflows", json={"steps": ["just text"]})
    assert _error(bad)["field"] == "steps[0]"


# ---- reactors and runs ---------------------------------------------------------------------------


def test_reactors_are_listed_with_inputs_and_graph(client: httpx.Client) -> None:
    """The served reactors, their inputs and Mermaid graphs."""
    listed = {r["name"]: r for r in client.get("/api/reactors").json()}
    assert {"Greet", "Gate", "Asker"} <= set(listed)
    assert listed["Greet"]["inputs"][0] == {
        "name": "name",
        "type": "str",
        "required": True,
        "description": "",
    }
    assert listed["Greet"]["mermaid"].startswith("flowchart")
    assert client.get("/api/reactors/Greet").json()["steps"] == ["hello", "shout"]
    assert _error(client.get("/api/reactors/Nope"))["code"] == "not_found"


def test_run_start_get_list_and_input_errors(client: httpx.Client) -> None:
    """A run starts with checked inputs, completes, and is listed and shown."""
    created = client.post("/api/runs", json={"reactor": "Greet", "inputs": {"name": "ada"}})
    assert created.status_code == 201
    run_id = created.json()["run_id"]
    run = _wait_status(client, run_id, {"completed"})
    assert run["result"] == "HELLO ADA!"
    assert [s["status"] for s in run["steps"]] == ["done", "done"]
    assert run_id in {r["run_id"] for r in client.get("/api/runs", params={"limit": 50}).json()}
    bad = client.post("/api/runs", json={"reactor": "Greet", "inputs": {"nmae": "x"}})
    assert bad.status_code == 400
    assert _error(bad)["field"] == "inputs.nmae"
    assert "did you mean 'name'" in _error(bad)["message"]
    again = client.post(
        "/api/runs", json={"reactor": "Greet", "inputs": {"name": "b"}, "run_id": run_id}
    )
    assert again.status_code == 409
    assert _error(client.get("/api/runs/nope"))["code"] == "not_found"
    assert _error(client.get("/api/runs", params={"limit": "x"}))["field"] == "limit"


@pytest.mark.parametrize(
    "option", [{"on_timeout": "soft"}, {"max_iterations": -1}, {"idle_timeout": 0}]
)
def test_run_options_are_checked(client: httpx.Client, option: dict[str, Any]) -> None:
    """A bad on_timeout, max_iterations or idle_timeout is a 400 naming it; good ones are taken."""
    bad = client.post("/api/runs", json={"reactor": "Greet", "inputs": {"name": "a"}, **option})
    assert bad.status_code == 400
    [name] = option
    assert _error(bad)["field"] == name
    good = client.post(
        "/api/runs",
        json={
            "reactor": "Greet",
            "inputs": {"name": "a"},
            "on_timeout": "halt",
            "max_iterations": 3,
            "idle_timeout": 60.0,
        },
    )
    assert good.status_code == 201, good.text


def test_cancel_and_resume_rules(client: httpx.Client, tmp_path: Path) -> None:
    """A running run is cancelled; cancelling or resuming an ended one is a conflict."""
    gate = tmp_path / "gate"
    run_id = client.post(
        "/api/runs", json={"reactor": "Gate", "inputs": {"gate": str(gate)}}
    ).json()["run_id"]
    with client.stream("GET", f"/api/runs/{run_id}/events") as stream:
        lines = stream.iter_lines()
        for line in lines:
            if line == "event: StepCompleted":  # `started` done: `wait` is running
                break
        assert client.post(f"/api/runs/{run_id}/cancel").status_code == 202
        gate.write_text("open")  # the blocking step returns; the run is cancelled
        for _ in lines:
            pass
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "cancelled"
    assert _error(client.post(f"/api/runs/{run_id}/cancel"))["code"] == "conflict"
    assert _error(client.post(f"/api/runs/{run_id}/resume"))["code"] == "conflict"
    assert _error(client.post("/api/runs/none-such/resume"))["code"] == "not_found"


def _halted_approval(client: httpx.Client, approval: Path) -> tuple[str, list[dict[str, str]]]:
    """A run of ``Approval`` that halted waiting for ``approval``: its id and its events."""
    run_id = client.post(
        "/api/runs", json={"reactor": "Approval", "inputs": {"approval": str(approval)}}
    ).json()["run_id"]
    halted = _frames(client, f"/api/runs/{run_id}/events")
    assert halted[-1]["event"] == "RunHalted"
    return run_id, halted


def test_a_halted_run_is_resumed_over_the_api(client: httpx.Client, tmp_path: Path) -> None:
    """A run that halted is resumed with POST .../resume and completes; its events go on."""
    approval = tmp_path / "approved"
    run_id, halted = _halted_approval(client, approval)
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "halted"
    approval.write_text("yes")
    resumed = client.post(f"/api/runs/{run_id}/resume")
    assert resumed.status_code == 202
    after = _frames(client, f"/api/runs/{run_id}/events", {"Last-Event-ID": halted[-1]["id"]})
    assert after[0]["event"] == "RunResumed"
    assert after[-1]["event"] == "RunCompleted"
    assert client.get(f"/api/runs/{run_id}").json()["result"] == "done (approved)"


def test_resume_takes_run_options_in_its_body(client: httpx.Client, tmp_path: Path) -> None:
    """The resume's body gives run options anew (journaled); a bad one is a 400 naming it."""
    approval = tmp_path / "approved"
    run_id, halted = _halted_approval(client, approval)
    refused = client.post(f"/api/runs/{run_id}/resume", json={"max_iterations": -1})
    assert refused.status_code == 400
    assert _error(refused)["field"] == "max_iterations"
    approval.write_text("yes")
    body = {"timeout": 120.0, "on_timeout": "halt", "max_iterations": 3}
    assert client.post(f"/api/runs/{run_id}/resume", json=body).status_code == 202
    after = _frames(client, f"/api/runs/{run_id}/events", {"Last-Event-ID": halted[-1]["id"]})
    assert after[0]["event"] == "RunResumed"
    assert json.loads(after[0]["data"])["options"] == body
    assert after[-1]["event"] == "RunCompleted"
    shown = client.get(f"/api/runs/{run_id}").json()
    assert {k: shown["options"][k] for k in body} == body


def test_tool_call_decisions_need_a_pending_call(client: httpx.Client) -> None:
    """Approving or rejecting a call that waits for nothing is a 404 naming call_id."""
    run_id = client.post("/api/runs", json={"reactor": "Greet", "inputs": {"name": "x"}}).json()[
        "run_id"
    ]
    _wait_status(client, run_id, {"completed"})
    assert client.get(f"/api/runs/{run_id}/tool-calls").json() == []
    for action in ("approve", "reject"):
        response = client.post(f"/api/runs/{run_id}/tool-calls/call-1/{action}", json={"by": "ada"})
        assert response.status_code == 404
        assert _error(response)["field"] == "call_id"


# ---- server-sent events -------------------------------------------------------------------------


def _frames(
    client: httpx.Client, path: str, headers: dict[str, str] | None = None
) -> list[dict[str, str]]:
    frames: list[dict[str, str]] = []
    current: dict[str, str] = {}
    with client.stream("GET", path, headers=headers or {}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if not line:
                if "event" in current:
                    frames.append(current)
                current = {}
                continue
            key, _, value = line.partition(": ")
            current[key] = value
    return frames


def test_run_events_resume_after_last_event_id(client: httpx.Client) -> None:
    """A run's events carry id: seq; Last-Event-ID resumes after it."""
    run_id = client.post("/api/runs", json={"reactor": "Greet", "inputs": {"name": "sse"}}).json()[
        "run_id"
    ]
    frames = _frames(client, f"/api/runs/{run_id}/events")
    kinds = [f["event"] for f in frames]
    assert (kinds[0], kinds[-1]) == ("RunStarted", "RunCompleted")
    assert kinds.count("StepCompleted") == 2  # StepStarted too, when a step lingers
    assert [f["id"] for f in frames] == [str(i) for i in range(1, len(frames) + 1)]
    rest = _frames(client, f"/api/runs/{run_id}/events", {"Last-Event-ID": "2"})
    assert rest == frames[2:]
    assert '"HELLO SSE!"' in rest[-1]["data"]


def test_bus_events_stream_run_activity(daemon: Daemon, client: httpx.Client) -> None:
    """/api/events streams bus events (run activity among them); Last-Event-ID replays kept ones."""
    before = daemon.hub.last_id
    run_id = client.post("/api/runs", json={"reactor": "Greet", "inputs": {"name": "bus"}}).json()[
        "run_id"
    ]
    _wait_status(client, run_id, {"completed"})
    seen: list[dict[str, str]] = []
    current: dict[str, str] = {}
    with client.stream("GET", "/api/events", headers={"Last-Event-ID": str(before)}) as stream:
        for line in stream.iter_lines():
            if line:
                key, _, value = line.partition(": ")
                current[key] = value
                continue
            if current.get("event") == "RunActivity" and run_id in current.get("data", ""):
                seen.append(current)
                if '"run_finished"' in current["data"]:
                    break
            current = {}
    kinds = [f["data"] for f in seen]
    assert '"run_started"' in kinds[0]
    assert '"run_finished"' in kinds[-1]
    assert all(int(f["id"]) > before for f in seen)


def test_a_reconnect_after_the_last_event_of_an_ended_run_gets_204(client: httpx.Client) -> None:
    """An EventSource reconnects when a stream ends; after a run's last event, 204 stops it."""
    run_id = client.post("/api/runs", json={"reactor": "Greet", "inputs": {"name": "end"}}).json()[
        "run_id"
    ]
    frames = _frames(client, f"/api/runs/{run_id}/events")
    assert frames[-1]["event"] == "RunCompleted"
    again = client.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": frames[-1]["id"]})
    assert again.status_code == 204
    earlier = _frames(client, f"/api/runs/{run_id}/events", {"Last-Event-ID": frames[-2]["id"]})
    assert earlier == frames[-1:]


def test_bus_events_resume_from_an_id_of_an_earlier_daemon(client: httpx.Client) -> None:
    """A Last-Event-ID the daemon never gave (a restarted one's) streams from now on."""
    with client.stream("GET", "/api/events", headers={"Last-Event-ID": "999999999"}) as stream:
        lines = stream.iter_lines()
        assert next(lines) == "retry: 1000"  # the stream's start point is fixed by now
        run_id = client.post(
            "/api/runs", json={"reactor": "Greet", "inputs": {"name": "again"}}
        ).json()["run_id"]
        for line in lines:
            if line.startswith("data: ") and run_id in line and '"run_finished"' in line:
                break


def test_a_quiet_run_stream_sends_keep_alives(
    client: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a step runs and nothing is journaled, the run's stream sends ``:`` comments."""
    import reactor.daemon._app as app

    monkeypatch.setattr(app, "KEEPALIVE_S", 0.0)
    gate = tmp_path / "quiet-gate"
    run_id = client.post(
        "/api/runs", json={"reactor": "Gate", "inputs": {"gate": str(gate)}}
    ).json()["run_id"]
    with client.stream("GET", f"/api/runs/{run_id}/events") as stream:
        lines = stream.iter_lines()
        for line in lines:
            if line == "event: StepCompleted":  # `started` done: `wait` is running
                break
        for line in lines:
            if line.startswith(":"):
                break
        gate.write_text("open")
        for _ in lines:
            pass
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "completed"


def test_a_filtered_bus_stream_sends_keep_alives_while_other_events_flow(
    daemon: Daemon, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events the ``types`` filter drops are not traffic: the client still hears ``:``."""
    import reactor.daemon._app as app
    from reactor.daemon._hub import RunActivity

    monkeypatch.setattr(app, "KEEPALIVE_S", 0.0)
    hub = daemon.hub
    waited = hub.wait

    async def busy_wait(timeout: float | None = None) -> None:
        # An event of another type lands in every wait: the bus is never quiet.
        hub.publish(RunActivity(run_id="elsewhere", kind="step", reactor="Other"))
        await waited(timeout)

    monkeypatch.setattr(hub, "wait", busy_wait)
    with client.stream("GET", "/api/events", params={"types": "NoSuchEvent"}, timeout=10) as stream:
        lines = stream.iter_lines()
        assert next(lines) == "retry: 1000"
        for count, line in enumerate(lines):
            assert count < 200, "no keep-alive while filtered-out events flowed"
            assert not line.startswith("data: "), line
            if line.startswith(":"):
                break


# ---- fleet, documents, errors -------------------------------------------------------------------


def test_fleet_endpoints(client: httpx.Client) -> None:
    """Hosts, models, resources, spend, audit and actors answer with their data."""
    hosts = client.get("/api/hosts").json()
    assert hosts[0]["name"] == "fake"
    assert hosts[0]["reachable"] is True
    models = {m["model"] for m in client.get("/api/models").json()}
    assert {"fake-small", "fake-large", "fake-embed"} <= models
    assert client.get("/api/resources").json()["type"] == "ResourceSnapshot"
    spend = client.get("/api/spend", params={"since_hours": 1}).json()
    assert spend["total_usd"] >= 0
    assert client.get("/api/tools/audit").json() == []
    tree = client.get("/api/actors").json()
    assert tree["parent"] is None
    names = {a["name"] for a in tree["children"]}
    assert {"store", "fake", "runs"} <= names
    fake = next(a for a in tree["children"] if a["name"] == "fake")
    assert {"restarts", "mailbox", "running", "on_loop"} <= set(fake)
    assert _error(client.get("/api/actors", params={"max_children": 0}))["field"] == "max_children"
    assert _error(client.get("/api/spend", params={"since_hours": "x"}))["field"] == "since_hours"
    assert _error(client.get("/api/spend", params={"since_hours": "nan"}))["field"] == "since_hours"
    # A number too big for the database is the client's error (it was a text/plain 500).
    for path in ("/api/runs", "/api/tools/audit"):
        huge = client.get(path, params={"limit": str(2**70)})
        assert huge.status_code == 400, huge.text
        assert _error(huge)["field"] == "limit"


async def test_an_unforeseen_failure_is_a_500_in_the_error_shape(daemon: Daemon) -> None:
    """A handler's unexpected exception answers 500 with ``{"error": {"code": "internal"}}``."""
    from starlette.requests import Request

    from reactor.daemon._app import Endpoint, _endpoint_function

    async def broken(request: Request, served: Daemon) -> Any:
        msg = "a bug"
        raise RuntimeError(msg)

    endpoint = _endpoint_function(daemon, Endpoint("GET", "/broken", "broken", broken))
    scope = {"type": "http", "method": "GET", "path": "/broken", "headers": [], "query_string": b""}
    response = await endpoint(Request(scope))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    error = json.loads(bytes(response.body))["error"]
    assert error["code"] == "internal"
    assert "RuntimeError: a bug" in error["message"]


def test_openapi_and_unknown_routes(client: httpx.Client) -> None:
    """/openapi.json lists every route with schemas; an unknown route is the error shape."""
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert "post" in document["paths"]["/api/orchestration/tasks"]
    assert "TasksRequest" in document["components"]["schemas"]
    assert document["paths"]["/health"]["get"].get("security") is None
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert set(_error(missing)) == {"code", "message"}
    wrong = client.delete("/api/runs")
    assert _error(wrong)["code"] == "method_not_allowed"
    # RFC 9110: a 405 names the methods the resource has (GET and POST routes alike).
    assert {m.strip() for m in wrong.headers["allow"].split(",")} >= {"GET", "POST"}


def test_started_at_is_set(daemon: Daemon) -> None:
    """The daemon records when it started serving."""
    assert 0 < daemon.started_at <= time.time()


def test_a_run_started_with_a_traceparent_joins_the_callers_trace(client: httpx.Client) -> None:
    """POST /api/runs with ``traceparent``: the run's spans are in the caller's trace."""
    trace_id, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with capture_spans() as spans:
        created = client.post(
            "/api/runs",
            json={"reactor": "Greet", "inputs": {"name": "ada"}},
            headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
        )
        assert created.status_code == 201
        _wait_status(client, created.json()["run_id"], {"completed"})
        finished = wait_for_spans(spans, ["invoke_workflow Greet", "reactor.run Greet"])
    [top] = [s for s in finished if s.name == "invoke_workflow Greet"]
    assert top.parent is not None
    assert f"{top.parent.span_id:016x}" == caller_span
    assert dict(top.attributes or {})["gen_ai.operation.name"] == "invoke_workflow"
    assert {f"{s.context.trace_id:032x}" for s in finished if s.context} == {trace_id}
