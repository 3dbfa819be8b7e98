"""The daemon's MCP server through the official SDK's client: Streamable HTTP and stdio."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx2
import mcp
import pytest
from mcp.client.streamable_http import streamable_http_client

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


async def test_mcp_over_streamable_http(daemon: Daemon) -> None:
    """The SDK client lists and runs reactors at /mcp with the token; tool errors are isError."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30.0) as http:
        transport = streamable_http_client(f"{daemon.url}/mcp", http_client=http)
        async with mcp.Client(transport) as client:
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


async def test_mcp_over_stdio(fake: FakeServer, tmp_path: Path) -> None:
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
    async with mcp.Client(params, read_timeout_seconds=60) as client:
        await _exercise(client)
