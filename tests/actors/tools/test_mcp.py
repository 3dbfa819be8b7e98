"""MCP servers as tool sources: a real server written with the ``mcp`` SDK, over stdio and HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcp
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.types import (
    BlobResourceContents,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)
from pydantic import SecretStr

from actors import Ref, System
from actors.llm import Config, McpServerConfig, ToolCall
from actors.store import Store
from actors.tools import (
    ExecuteTools,
    FlushAudit,
    ListTools,
    McpSource,
    Policy,
    Rule,
    ToolRegistry,
    ToolRunner,
    ToolStatus,
    mcp_tool_name,
    query_audit,
)
from otel.testing import InMemorySpanExporter
from tests.support.proc import ROOT

STDIO = McpServerConfig(
    command=sys.executable, args=["-m", "tests.support.mcp_server"], env={"PYTHONPATH": str(ROOT)}
)


def runner(system: System, servers: dict[str, McpServerConfig], **options: Any) -> Ref[Any]:
    return system.spawn(ToolRunner.spec(ToolRegistry(), mcp=servers, **options))


def execute(ref: Ref[Any], *calls: ToolCall) -> list[Any]:
    return list(ref.ask(ExecuteTools(calls=calls), timeout=30).outcomes)


def test_stdio_tools_join_the_registry_with_their_annotations(system: System) -> None:
    """Tools are namespaced by server; annotations set metadata, destructive by default."""
    ref = runner(system, {"demo": STDIO})
    listed = ref.ask(ListTools(), timeout=30)
    names = {s.name for s in listed.specs}
    assert names == {"demo__add", "demo__wipe", "demo__broken"}
    docs = listed.docs
    assert "- demo__add(a: integer, b: integer) [read-only]" in docs
    assert "- demo__wipe(folder: string) [destructive, open-world]" in docs


def test_stdio_calls_results_and_errors(system: System, spans: InMemorySpanExporter) -> None:
    """A call returns the server's structured result; isError and bad arguments reach the model."""
    ref = runner(system, {"demo": STDIO})
    ok, failed, invalid = execute(
        ref,
        ToolCall(id="a", name="demo__add", arguments={"a": 2, "b": 3}),
        ToolCall(id="b", name="demo__broken", arguments={"reason": "test"}),
        ToolCall(id="c", name="demo__add", arguments={"a": 2}),
    )
    assert ok.status is ToolStatus.OK
    assert ok.value == {"result": 5}
    assert failed.status is ToolStatus.ERROR
    assert "broken on purpose: test" in failed.content
    assert invalid.status is ToolStatus.INVALID_ARGUMENTS
    assert invalid.fields == ("b",)
    span = next(s for s in spans.get_finished_spans() if s.name == "execute_tool demo__add")
    assert span.attributes is not None
    assert span.attributes["gen_ai.tool.type"] == "extension"


def test_policies_approvals_and_audit_apply_to_mcp_tools(system: System, tmp_path: Path) -> None:
    """Approval for every destructive tool, a denial by name, and every call audited."""
    policy = Policy([Rule(approve=["is:destructive"]), Rule(deny=["demo__broken"])])
    store: Ref[Any] = system.spawn(Store.spec(tmp_path / "m.db"))
    ref = runner(system, {"demo": STDIO}, policy=policy, store=store)
    wipe, broken, add = execute(
        ref,
        ToolCall(id="a", name="demo__wipe", arguments={"folder": "/"}),
        ToolCall(id="b", name="demo__broken", arguments={"reason": "x"}),
        ToolCall(id="c", name="demo__add", arguments={"a": 1, "b": 1}),
    )
    assert wipe.status is ToolStatus.PENDING_APPROVAL
    assert broken.status is ToolStatus.PERMISSION_DENIED
    assert add.ok
    ref.ask(FlushAudit(), timeout=30)
    audited = {(r.tool, r.decision, r.outcome) for r in query_audit(tmp_path / "m.db")}
    assert audited == {
        ("demo__wipe", "pending", "pending_approval"),
        ("demo__broken", "denied", "permission_denied"),
        ("demo__add", "allowed", "ok"),
    }


def test_untrusted_servers_get_the_protocol_defaults(system: System) -> None:
    """trusted=false ignores what the server says: its read-only tool counts as destructive."""
    untrusted = STDIO.model_copy(update={"trusted": False})
    listed = runner(system, {"demo": untrusted}).ask(ListTools(allowed=("demo__add",)), timeout=30)
    assert "[destructive, open-world]" in listed.docs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def http_server() -> Iterator[str]:
    """The demo server over Streamable HTTP on 127.0.0.1, requiring X-Token: s3cret."""
    port = free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.mcp_server",
            "--http",
            str(port),
            "--token",
            "s3cret",
        ],
        cwd=ROOT,
    )
    try:
        give_up = time.monotonic() + 30
        while True:  # wait until it listens (or died)
            assert child.poll() is None, "the MCP server exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        child.terminate()
        child.wait(10)


def test_http_with_headers(system: System, http_server: str) -> None:
    """Streamable HTTP with the configured headers: listed and called like stdio tools."""
    config = McpServerConfig(url=http_server, headers={"X-Token": SecretStr("s3cret")})
    ref = runner(system, {"web": config})
    [outcome] = execute(ref, ToolCall(id="a", name="web__add", arguments={"a": 20, "b": 22}))
    assert outcome.value == {"result": 42}


def test_an_unreachable_server_is_left_out(system: System, http_server: str) -> None:
    """Without the header the server refuses; the runner serves its other tools all the same."""
    ref = runner(system, {"web": McpServerConfig(url=http_server), "demo": STDIO})
    names = {s.name for s in ref.ask(ListTools(), timeout=30).specs}
    assert names == {"demo__add", "demo__wipe", "demo__broken"}


def test_config_in_the_toml_shape_of_mcp_json(tmp_path: Path) -> None:
    """[mcpServers.x] tables take LM Studio's mcp.json entry shape; bad entries name the field."""
    from actors.llm import ConfigError, load_config

    path = tmp_path / "config.toml"
    path.write_text(
        '[mcpServers.files]\ncommand = "npx"\nargs = ["-y", "server-files"]\n'
        '[mcpServers.web]\nurl = "http://127.0.0.1:9/mcp"\n'
        'headers = { Authorization = "Bearer t" }\n'
    )
    config: Config = load_config(path, env={})
    assert config.mcp_servers["files"].args == ["-y", "server-files"]
    web = config.mcp_servers["web"]
    assert web.header_values() == {"Authorization": "Bearer t"}
    assert "Bearer t" not in repr(config)  # a secret, masked when printed
    path.write_text('[mcpServers.both]\ncommand = "x"\nurl = "http://127.0.0.1:9/mcp"\n')
    with pytest.raises(ConfigError, match="both"):
        load_config(path, env={})


def test_names_are_made_safe_for_every_provider() -> None:
    """Dots and slashes in MCP names become underscores; long names are cut to 64."""
    assert mcp_tool_name("gh", "repos.list/all") == "gh__repos_list_all"
    assert len(mcp_tool_name("s", "x" * 100)) == 64


async def test_results_that_are_not_text_reach_the_model() -> None:
    """Images, resources and links in a result are named in its text, not dropped."""
    server = MCPServer("media")

    @server.tool()
    def snapshot() -> list[TextContent | ImageContent | ResourceLink | EmbeddedResource]:
        """A picture, a link, a text file and a binary file."""
        return [
            ImageContent(type="image", data="iVBORw0KGgo=", mime_type="image/png"),
            ResourceLink(type="resource_link", name="report", uri="file:///srv/report.pdf"),
            EmbeddedResource(
                type="resource",
                resource=TextResourceContents(uri="file:///srv/notes.txt", text="the notes"),
            ),
            EmbeddedResource(
                type="resource",
                resource=BlobResourceContents(uri="file:///srv/a.bin", blob="AAAA"),
            ),
        ]

    source = McpSource(McpServerConfig(command="unused"), "media")
    async with mcp.Client(server) as client:
        source._client = client
        text = await source.call("snapshot", {})
    assert isinstance(text, str)
    lines = text.splitlines()
    assert lines[0].startswith("[image: image/png")
    assert lines[1] == "[resource link: report <file:///srv/report.pdf>]"
    assert lines[2] == "the notes"
    assert lines[3].startswith("[resource <file:///srv/a.bin>: binary")
