"""The daemon's MCP server through the official SDK's client: Streamable HTTP and stdio."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import mcp
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.types import INVALID_PARAMS

from actors.testing import FakeServer
from reactor.daemon import Daemon
from tests.reactor.daemon.conftest import REACTORS, TOKEN, write_config

pytestmark = pytest.mark.slow

ROOT = str(Path(__file__).resolve().parents[3])


def _text(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def _exercise(client: mcp.Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"list_reactors", "run_reactor", "get_run"} <= set(tools)
    hints = tools["list_reactors"].annotations
    assert hints is not None
    assert hints.read_only_hint is True
    assert "reactor" in tools["run_reactor"].input_schema["properties"]

    listed = await client.call_tool("list_reactors", {})
    assert not listed.is_error
    assert "Greet" in _text(listed)
    # One text block, the structured content's JSON (the SDK would make one per item).
    assert len(listed.content) == 1
    assert json.loads(_text(listed)) == listed.structured_content
    assert "Greet" in {r["name"] for r in listed.structured_content["result"]}

    # An unknown tool is a protocol error (-32602), not a tool result.
    with pytest.raises(mcp.MCPError) as unknown:
        await client.call_tool("no_such_tool", {})
    assert unknown.value.code == INVALID_PARAMS
    assert "no_such_tool" in unknown.value.message

    ran = await client.call_tool("run_reactor", {"reactor": "Greet", "inputs": {"name": "mcp"}})
    assert not ran.is_error, _text(ran)
    outcome = json.loads(_text(ran))
    assert outcome["status"] == "completed"
    assert outcome["result"] == "HELLO MCP!"

    polled = await client.call_tool("get_run", {"run_id": outcome["run_id"]})
    assert json.loads(_text(polled))["steps"] == {"hello": "done", "shout": "done"}

    wrong = await client.call_tool("run_reactor", {"reactor": "Greet", "inputs": {"nmae": "x"}})
    assert wrong.is_error
    assert "did you mean 'name'" in _text(wrong)
    assert "inputs.nmae" in _text(wrong)

    await _reason_together(client, tools)


SESSION_TOOLS = {
    "initiate_reasoning_session": {"task_description", "agent_name", "tags"},
    "add_reasoning_step": {"session_id", "agent_name", "reasoning_text", "step_type"},
    "execute_orchestrated_decision": {"session_id", "agent_name", "prompt", "task_type"},
    "get_reasoning_session": {"session_id", "agent_name"},
    "search_reasoning_sessions": {"agent_name", "query", "tags", "status", "limit"},
    "get_orchestration_capabilities": {"agent_name"},
}


async def _reason_together(client: mcp.Client, tools: dict[str, Any]) -> None:
    for name, params in SESSION_TOOLS.items():
        assert set(tools[name].input_schema["properties"]) == params, name
    step_types = tools["add_reasoning_step"].input_schema["properties"]["step_type"]
    assert "critique" in json.dumps(step_types)

    started = await client.call_tool(
        "initiate_reasoning_session",
        {"task_description": "choose a cache for the planner", "agent_name": "alice",
         "tags": ["mcp-test"]},
    )  # fmt: skip
    assert not started.is_error, _text(started)
    session_id = json.loads(_text(started))["session_id"]

    step = await client.call_tool(
        "add_reasoning_step",
        {"session_id": session_id, "agent_name": "alice",
         "reasoning_text": "an LRU cache keyed by prompt", "step_type": "hypothesis"},
    )  # fmt: skip
    assert not step.is_error, _text(step)
    assert json.loads(_text(step))["step_type"] == "hypothesis"

    denied = await client.call_tool(
        "add_reasoning_step",
        {"session_id": session_id, "agent_name": "mallory", "reasoning_text": "mine now"},
    )
    assert denied.is_error
    assert "mallory" in _text(denied)
    assert session_id in _text(denied)

    bad_type = await client.call_tool(
        "add_reasoning_step",
        {"session_id": session_id, "agent_name": "alice", "reasoning_text": "x",
         "step_type": "guess"},
    )  # fmt: skip
    assert bad_type.is_error

    missing = await client.call_tool(
        "get_reasoning_session", {"session_id": "no-such-session", "agent_name": "alice"}
    )
    assert missing.is_error
    assert "no-such-session" in _text(missing)

    capabilities = await client.call_tool("get_orchestration_capabilities", {"agent_name": "alice"})
    assert not capabilities.is_error, _text(capabilities)
    models = {m["model"] for m in json.loads(_text(capabilities))["models"]}
    assert "fake/fake-small" in models

    decided = await client.call_tool(
        "execute_orchestrated_decision",
        {"session_id": session_id, "agent_name": "alice",
         "prompt": "which cache should we use?", "task_type": "analysis"},
    )  # fmt: skip
    assert not decided.is_error, _text(decided)
    execution = json.loads(_text(decided))
    assert execution["execution_id"]
    assert execution["status"] == "completed", execution
    assert execution["result"]

    shown = await client.call_tool(
        "get_reasoning_session", {"session_id": session_id, "agent_name": "alice"}
    )
    session = json.loads(_text(shown))
    assert session["steps"][0]["text"] == "an LRU cache keyed by prompt"
    assert [e["execution_id"] for e in session["executions"]] == [execution["execution_id"]]

    found = await client.call_tool(
        "search_reasoning_sessions", {"agent_name": "alice", "query": "LRU", "tags": ["mcp-test"]}
    )
    assert not found.is_error, _text(found)
    assert session_id in _text(found)
    hidden = await client.call_tool(
        "search_reasoning_sessions", {"agent_name": "mallory", "query": "LRU"}
    )
    assert session_id not in _text(hidden)
    # Nothing found is still a text block the model can read, not an empty content list.
    assert [block.type for block in hidden.content] == ["text"]
    assert json.loads(_text(hidden)) == hidden.structured_content == {"result": []}


# "legacy" is the initialize handshake of 2025-11-25 and before, which hosts such as LM
# Studio speak; "auto" discovers the stateless 2026-07-28 protocol the SDK serves too.
MODES = pytest.mark.parametrize("mode", ["legacy", "auto"])


@MODES
async def test_mcp_over_streamable_http(daemon: Daemon, mode: str) -> None:
    """The SDK client lists and runs reactors at /mcp with the token; tool errors are isError."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30.0) as http:
        transport = streamable_http_client(f"{daemon.url}/mcp", http_client=http)
        async with mcp.Client(transport, mode=mode) as client:
            await _exercise(client)


async def test_mcp_http_needs_the_token_and_a_local_origin(daemon: Daemon) -> None:
    """/mcp refuses a missing token (401) and a foreign Origin (403)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=10.0) as http:
        missing = await http.post(f"{daemon.url}/mcp", json=body, headers=accept)
        assert missing.status_code == 401
        foreign = await http.post(
            f"{daemon.url}/mcp",
            json=body,
            headers={**accept, "Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"},
        )
        assert foreign.status_code == 403


async def test_streamable_http_sessions_on_the_wire(daemon: Daemon) -> None:
    """The 2025-11-25 handshake over plain HTTP: session id, 202s, 400, 404 and DELETE."""
    url = f"{daemon.url}/mcp"
    accept = {"Accept": "application/json, text/event-stream"}
    hello = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "wire", "version": "1"}},
    }  # fmt: skip
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    headers = {"Authorization": f"Bearer {TOKEN}", **accept}
    async with httpx2.AsyncClient(headers=headers, timeout=30.0) as http:
        started = await http.post(url, json=hello)
        assert started.status_code == 200
        session = started.headers["mcp-session-id"]
        assert "2025-11-25" in started.text
        after = {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
        ready = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await http.post(url, json=ready, headers=after)).status_code == 202
        listed = await http.post(url, json=listing, headers=after)
        assert listed.status_code == 200
        assert '"list_reactors"' in listed.text
        assert (await http.post(url, json=listing)).status_code == 400  # no session id
        stranger = {**after, "Mcp-Session-Id": "no-such-session"}
        assert (await http.post(url, json=listing, headers=stranger)).status_code == 404
        assert (await http.delete(url, headers=after)).status_code in (200, 204)
        assert (await http.post(url, json=listing, headers=after)).status_code == 404
        foreign = await http.post(url, json=hello, headers={"Host": "rebound.example"})
        assert foreign.status_code == 421  # bound to loopback: only local Host names


@pytest.fixture
def wide(fake: FakeServer, tmp_path: Path) -> Iterator[Daemon]:
    """A daemon bound to every address (as ``--host 0.0.0.0``)."""
    from actors.llm import load_config

    served = Daemon(
        load_config(write_config(tmp_path, fake.url), env={}),
        db_path=tmp_path / "wide.db",
        host="0.0.0.0",
        port=0,
        token=TOKEN,
        discovery=False,
        reactors=REACTORS[:1],
        grace_s=2.0,
    )
    served.start()
    try:
        yield served
    finally:
        served.stop()


async def test_mcp_bound_for_other_machines_takes_their_host_names(wide: Daemon) -> None:
    """Bound to every address, /mcp serves a Host naming the machine (it answered 421)."""
    url = f"http://127.0.0.1:{wide.port}/mcp"
    named = {"Host": f"reactor-box.lan:{wide.port}"}
    async with httpx2.AsyncClient(headers=named, timeout=30.0) as http:
        refused = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
        assert refused.status_code == 401  # the token is still needed
    headers = {**named, "Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30.0) as http:
        transport = streamable_http_client(url, http_client=http)
        async with mcp.Client(transport) as client:
            listed = await client.call_tool("list_reactors", {})
            assert "Greet" in _text(listed)


@MODES
async def test_mcp_over_stdio(fake: FakeServer, tmp_path: Path, mode: str) -> None:
    """`reactor mcp` serves the same tools over stdio to a client that starts it."""
    config = write_config(tmp_path, fake.url)
    args = ["mcp", "--config", str(config), "--db", str(tmp_path / "mcp.db")]
    for locator in REACTORS:
        args += ["--reactor", locator]
    params = mcp.StdioServerParameters(
        command=str(Path(sys.executable).parent / "reactor"),
        args=args,
        env={"PYTHONPATH": ROOT},
        cwd=str(tmp_path),
    )
    async with mcp.Client(params, read_timeout_seconds=60, mode=mode) as client:
        await _exercise(client)


async def test_a_long_decision_answers_with_a_handle(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decision not finished within the wait limit comes back as an execution_id to poll."""
    import reactor.daemon._mcp as served_mcp

    monkeypatch.setattr(served_mcp, "WAIT_LIMIT_S", 0.0)
    session_id = await daemon.sessions.initiate_reasoning_session_async("a slow choice", "bob")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30.0) as http:
        transport = streamable_http_client(f"{daemon.url}/mcp", http_client=http)
        async with mcp.Client(transport) as client:
            decided = await client.call_tool(
                "execute_orchestrated_decision",
                {"session_id": session_id, "agent_name": "bob", "prompt": "decide"},
            )
            handle = json.loads(_text(decided))
            assert handle["status"] == "running", handle
            assert handle["poll"] == "get_reasoning_session"
            finished = await daemon.sessions.wait_for_decision_async(
                session_id, "bob", handle["execution_id"], timeout=30.0
            )
            assert finished.status.value == "completed"
            shown = await client.call_tool(
                "get_reasoning_session", {"session_id": session_id, "agent_name": "bob"}
            )
            (execution,) = json.loads(_text(shown))["executions"]
            assert execution["execution_id"] == handle["execution_id"]
            assert execution["status"] == "completed"
