"""A real MCP server written with the ``mcp`` SDK, for the MCP tool-source tests.

``python -m tests.support.mcp_server`` serves stdio; ``--http PORT`` serves Streamable
HTTP on 127.0.0.1 at ``/mcp``, refusing (401) any request without the header
``X-Token: <--token>`` when a token is given.
"""

from __future__ import annotations

import argparse
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("demo")


@server.tool(
    annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
)
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def wipe(folder: str) -> str:
    """Delete a folder (says nothing of itself: destructive by default)."""
    return f"wiped {folder}"


@server.tool()
def broken(reason: str) -> str:
    """Always fails, saying why."""
    raise ToolError(f"broken on purpose: {reason}")


def _guarded(app: Any, token: str) -> Any:
    """The app, answering 401 to requests without ``X-Token: token``."""

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"x-token", b"").decode() != token:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"missing X-Token"})
                return
        await app(scope, receive, send)

    return guarded


def main() -> None:
    """Serve stdio, or Streamable HTTP with ``--http PORT``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=None)
    parser.add_argument("--token", default=None)
    args = parser.parse_args()
    if args.http is None:
        server.run()
        return
    import uvicorn

    app = server.streamable_http_app()
    if args.token:
        app = _guarded(app, args.token)
    uvicorn.run(app, host="127.0.0.1", port=args.http, log_level="warning")


if __name__ == "__main__":
    main()
