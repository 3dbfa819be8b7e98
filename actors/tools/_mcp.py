"""MCP servers as tool sources, through the official ``mcp`` SDK.

An :class:`McpSource` connects to one server, described by an
:class:`~actors.llm.McpServerConfig` (an LM Studio ``mcp.json`` entry: ``command``,
``args``, ``env`` for a child process over stdio; ``url`` and ``headers`` for Streamable
HTTP), lists its tools, and makes each a :class:`~actors.tools.Tool` named
``<server>__<tool>`` (characters providers refuse become ``_``) whose calls go to the
server. They then pass through the same validation, policy, approvals, audit and spans
as Python tools (``gen_ai.tool.type`` is ``extension``).

**Annotations.** A tool's MCP annotations set its metadata, with the protocol's
defaults where the server says nothing: not read-only, **destructive**, not idempotent,
**open-world**. A server configured ``trusted = false`` gets those defaults whatever it
says. Tools are tagged ``mcp``, ``mcp:<server>`` and the server's configured ``tags``.

**Errors.** A result with ``isError`` is a tool error the model reads (it can correct
its call); a JSON-RPC "invalid params" error is ``invalid_arguments``; the server's
input schema is checked lightly before the call (an object, required keys, no unknown
keys when it forbids them) and fully by the server.

**One task owns the connection.** The SDK's client is an async context manager whose
scopes must open and close in one task: :meth:`McpSource.start` starts that task on the
I/O loop, which connects, lists the tools, and then holds the connection until
:meth:`McpSource.close` (calls are made from other tasks meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import TYPE_CHECKING, Any

from actors.llm import McpServerConfig
from actors.tools._errors import ToolArgumentError, ToolError
from actors.tools._registry import Tool, ToolContext, ToolMeta

if TYPE_CHECKING:
    import mcp
    import mcp.types

__all__ = ["McpServerConfig", "McpSource", "mcp_tool_name"]

# The SDK is imported when a source first connects, not with this module: it takes
# longer to import than the rest of the package (every ``reactor`` command paid it).

_INVALID_PARAMS = -32602
_BAD = re.compile(r"[^A-Za-z0-9_-]")


def mcp_tool_name(server: str, tool: str) -> str:
    """``<server>__<tool>`` with characters providers refuse replaced, at most 64 long."""
    return _BAD.sub("_", f"{server}__{tool}")[:64]


class McpSource:
    """One MCP server's tools (see the module docstring).

    Args:
        config: The server (``name`` set, or given as ``name``).
        name: The server's name (its key in ``mcpServers``).
    """

    def __init__(self, config: McpServerConfig, name: str) -> None:
        if not name:
            msg = "McpSource needs the server's name (its key in mcpServers)"
            raise ValueError(msg)
        self.name = name
        self.config = config
        self._client: mcp.Client | None = None
        self._stop: asyncio.Event | None = None
        self._owner: asyncio.Task[None] | None = None

    def _transport(self) -> Any:
        import mcp  # noqa: PLC0415 - see the note on the SDK's import above

        config = self.config
        if config.command is not None:
            return mcp.StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.env) or None
            )
        assert config.url is not None
        import httpx2  # noqa: PLC0415
        from mcp.client.streamable_http import streamable_http_client  # noqa: PLC0415
        from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: PLC0415

        timeout = httpx2.Timeout(30.0, read=max(config.timeout_s, 30.0))
        http = create_mcp_http_client(headers=config.header_values(), timeout=timeout)
        return http, streamable_http_client(config.url, http_client=http)

    async def start(self) -> list[Tool]:
        """Connect, list the tools, and keep the connection in a task of its own."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[list[Tool]] = loop.create_future()
        self._stop = asyncio.Event()
        self._owner = loop.create_task(self._own(ready), name=f"mcp {self.name}")
        return await ready

    async def _own(self, ready: asyncio.Future[list[Tool]]) -> None:
        import mcp  # noqa: PLC0415 - see the note on the SDK's import above

        try:
            async with contextlib.AsyncExitStack() as stack:
                transport = self._transport()
                if isinstance(transport, tuple):
                    http, transport = transport
                    await stack.enter_async_context(http)
                client = await stack.enter_async_context(
                    mcp.Client(transport, read_timeout_seconds=self.config.timeout_s)
                )
                tools = await self._list(client)
                self._client = client
                ready.set_result(tools)
                assert self._stop is not None
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._client = None

    async def _list(self, client: mcp.Client) -> list[Tool]:
        found: list[mcp.types.Tool] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            found.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        allowed = self.config.allowed_tools
        return [self._tool(t) for t in found if allowed is None or t.name in allowed]

    def _tool(self, spec: mcp.types.Tool) -> Tool:
        config = self.config
        hints = spec.annotations if config.trusted else None
        read_only = (
            bool(hints.read_only_hint) if hints and hints.read_only_hint is not None else False
        )
        destructive = (
            hints.destructive_hint if hints and hints.destructive_hint is not None else True
        )
        idempotent = (
            bool(hints.idempotent_hint) if hints and hints.idempotent_hint is not None else False
        )
        open_world = hints.open_world_hint if hints and hints.open_world_hint is not None else True
        meta = ToolMeta(
            read_only=read_only,
            destructive=destructive and not read_only,
            idempotent=idempotent,
            open_world=open_world,
            timeout=config.timeout_s,
            tags=frozenset({"mcp", f"mcp:{self.name}", *config.tags}),
            needs_approval=config.needs_approval,
        )
        remote = spec.name
        schema = dict(spec.input_schema or {"type": "object", "properties": {}})

        async def invoke(arguments: dict[str, Any], context: ToolContext) -> Any:
            return await self.call(remote, arguments)

        return Tool(
            name=mcp_tool_name(self.name, remote),
            description=spec.description or spec.title or "",
            parameters=schema,
            invoke=invoke,
            is_async=True,
            meta=meta,
            kind="extension",
            source=f"mcp:{self.name}",
        )

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """Call ``tool`` on the server: its structured result, else its text.

        The text joins every content block: text as it is, an embedded text resource's
        text, and a line naming each other block (image, audio, binary resource, resource
        link), so a result that is not text never reaches the model as nothing.

        Raises:
            ToolError: The server reported an error (``isError``), or is not connected.
            ToolArgumentError: The server refused the arguments (invalid params).
        """
        import mcp  # noqa: PLC0415 - loaded already: the client exists once connected

        client = self._client
        name = mcp_tool_name(self.name, tool)
        if client is None:
            msg = f"MCP server {self.name!r} is not connected"
            raise ToolError(msg, tool=name)
        try:
            result = await client.call_tool(tool, arguments)
        except mcp.MCPError as exc:
            if exc.code == _INVALID_PARAMS:
                raise ToolArgumentError(
                    f"invalid arguments for tool {name!r}: {exc.message}", tool=name
                ) from None
            raise ToolError(f"{name}: MCP error {exc.code}: {exc.message}", tool=name) from None
        text = "\n".join(_block_text(block) for block in result.content)
        if result.is_error:
            raise ToolError(text or f"{name} failed", tool=name)
        if result.structured_content is not None:
            return result.structured_content
        return text

    async def close(self) -> None:
        """Close the connection (ends the owner task)."""
        if self._stop is not None:
            self._stop.set()
        owner = self._owner
        if owner is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await owner


def _block_text(block: Any) -> str:
    """One content block of a tool result as text for the model."""
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        size = len(block.data) * 3 // 4  # base64
        return f"[{kind}: {block.mime_type}, about {size} bytes]"
    if kind == "resource_link":
        what = f" ({block.mime_type})" if block.mime_type else ""
        return f"[resource link: {block.name} <{block.uri}>{what}]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        if text is not None:
            return str(text)
        what = resource.mime_type or "binary"
        return f"[resource <{resource.uri}>: {what}, about {len(resource.blob) * 3 // 4} bytes]"
    return f"[{kind or 'unknown'} content]"
