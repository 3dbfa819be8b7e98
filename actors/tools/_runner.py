"""The ToolRunner actor: one per system (named ``tools`` by default), on the I/O loop.

It owns what tool calls share: the registry, the policy and its rate windows, the
concurrency limits, the audit sink, the worker pool for plain ``def`` tools, and the
connections to MCP servers (opened when it starts; their tools join the registry,
namespaced ``<server>__<tool>``). It answers

* :class:`~actors.tools.ExecuteTools` with :class:`~actors.tools.ToolResults` (one
  turn's calls run concurrently; see :mod:`actors.tools._execute`);
* :class:`~actors.tools.ListTools` with :class:`~actors.tools.ToolList` (the specs a
  model is sent, capability docs and retry budgets, trimmed to what a step allows);
* :class:`~actors.tools.FlushAudit` once every audit record so far is committed.

Requests that arrive while MCP servers are still connecting wait, and are served in
order once they are (a server that cannot be reached is logged and left out).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, assert_never

import structlog

from actors import Actor, ChildSpec, Deferred, Failure, Message, Ref, Request, Restart
from actors.tools._audit import AuditSink
from actors.tools._execute import ToolCaller
from actors.tools._mcp import McpServerConfig, McpSource
from actors.tools._messages import ExecuteTools, ListTools, ToolList, ToolResults
from actors.tools._policy import Policy
from actors.tools._registry import ToolRegistry

__all__ = ["AuditFlushed", "FlushAudit", "ToolRunner", "ToolRunnerMessage"]

_log = structlog.get_logger("actors.tools")


class AuditFlushed(Message, frozen=True, kw_only=True):
    """The answer to :class:`FlushAudit`: how many records the Store has acknowledged."""

    written: int
    failed: int


class FlushAudit(Request[AuditFlushed], frozen=True, kw_only=True):
    """Wait until every audit record so far is committed (tests, benchmarks, shutdown)."""


ToolRunnerMessage = ExecuteTools | ListTools | FlushAudit


class ToolRunner(Actor[ToolRunnerMessage]):
    """Runs tool calls for ``tools`` steps (and anyone else who asks).

    Args:
        registry: The tools (MCP servers' tools are added to it when they connect).
        policy: Who may call what.
        store: The Store for audit records (none: no audit log).
        db_path: The database file, for audit retention (the Store's ``path``).
        audit_retention_s: Audit records older than this are pruned (``None``: kept).
        mcp: MCP servers to connect to, by name (``Config.mcp_servers``).
        max_parallel: Tool calls running at once.
        workers: Threads for plain ``def`` tools: how many of them run at once (each
            blocks its thread, and a thread cannot be stopped at a timeout).
    """

    on_loop: ClassVar[bool] = True

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        policy: Policy | None = None,
        store: Ref[Any] | None = None,
        db_path: str | Path | None = None,
        audit_retention_s: float | None = None,
        mcp: Mapping[str, McpServerConfig] | None = None,
        max_parallel: int = 128,
        workers: int = 32,
    ) -> None:
        super().__init__()
        self.registry = registry
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tool")
        self.audit = (
            AuditSink(store, retention_s=audit_retention_s, db_path=db_path)
            if store is not None
            else None
        )
        self.caller = ToolCaller(
            registry, policy=policy, audit=self.audit, pool=self._pool, max_parallel=max_parallel
        )
        self._mcp = [McpSource(config, name) for name, config in (mcp or {}).items()]
        self._ready = not self._mcp
        self._early: list[tuple[ToolRunnerMessage, Deferred[Any]]] = []

    @classmethod
    def spec(
        cls,
        registry: ToolRegistry,
        *,
        name: str = "tools",
        restart: Restart = Restart.PERMANENT,
        **options: Any,
    ) -> ChildSpec:
        """A child spec that starts a runner named ``name`` (``options`` as for the class)."""
        return ChildSpec(name=name, actor=cls, args=(registry,), kwargs=options, restart=restart)

    def started(self) -> None:
        """Connect to the MCP servers (requests wait until they are connected)."""
        if self._mcp:
            self.pipe_to_self(self._connect_all(), self._connected, name="mcp connect")

    async def _connect_all(self) -> list[tuple[str, list[Any] | str]]:
        async def one(source: McpSource) -> tuple[str, list[Any] | str]:
            try:
                return source.name, await source.start()
            except Exception as exc:  # noqa: BLE001 - one unreachable server must not stop the others
                return source.name, f"{type(exc).__name__}: {exc}"

        return list(await asyncio.gather(*(one(s) for s in self._mcp)))

    def _connected(self, outcome: list[tuple[str, list[Any] | str]] | Failure) -> None:
        if isinstance(outcome, Failure):
            _log.warning("mcp servers not connected", error=outcome.message)
        else:
            for name, tools in outcome:
                if isinstance(tools, str):
                    _log.warning("mcp server not connected", server=name, error=tools)
                    continue
                for built in tools:
                    self.registry.add(built, replace=True)
                _log.info("mcp server connected", server=name, tools=len(tools))
        self._ready = True
        early, self._early = self._early, []
        for message, reply in early:
            self._serve(message, reply)

    def stopped(self) -> None:
        """Close the MCP connections and the worker pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        for source in self._mcp:  # the system's shutdown waits for these to finish
            self.runtime.bridge.cleanup(source.close(), f"mcp {source.name} close")

    def receive(self, message: ToolRunnerMessage) -> object:
        """Serve a request (or queue it while MCP servers connect)."""
        if isinstance(message, ListTools) and self._ready:
            return self._list(message)
        reply = self.defer_reply()
        if self._ready:
            self._serve(message, reply)
        else:
            self._early.append((message, reply))
        return None

    def _serve(self, message: ToolRunnerMessage, reply: Deferred[Any]) -> None:
        match message:
            case ExecuteTools():
                self.pipe_to_self(self._execute(message), _ignore, name="tools", answer=reply)
            case ListTools():
                reply.send(self._list(message))
            case FlushAudit():
                self.pipe_to_self(self._flush(), _ignore, name="audit flush", answer=reply)
            case _:
                assert_never(message)

    async def _execute(self, message: ExecuteTools) -> ToolResults:
        return ToolResults(outcomes=tuple(await self.caller.execute(message)))

    async def _flush(self) -> AuditFlushed:
        if self.audit is None:
            return AuditFlushed(written=0, failed=0)
        await self.audit.flush()
        return AuditFlushed(written=self.audit.written, failed=self.audit.failed)

    def _list(self, message: ListTools) -> ToolList:
        chosen = self.registry.select(message.allowed)
        return ToolList(
            specs=tuple(t.spec for t in chosen),
            docs=self.registry.capability_docs(message.allowed),
            max_retries={t.name: t.meta.max_retries for t in chosen},
        )


def _ignore(_: object) -> None:
    """The answer went straight to the asker (``answer=``); nothing else to do."""
