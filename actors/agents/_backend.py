"""How an agent reaches its model: a named model, the Selector, a fallback chain, the tool loop.

:class:`AgentBackend` holds the services an agent's model calls go through (the same
ones a reactor's steps use: the host resolver, the Selector, the fallback chains, the
Budget, a ToolRunner) and :meth:`AgentBackend.chat` routes one request by the agent's
``model``:

* ``auto`` / ``auto:<policy>``: a :class:`~actors.orchestration.SelectChat` to the Selector;
* ``chain:<name>`` (a configured chain) or a tuple of models (an inline chain): a
  :class:`~actors.orchestration.FallbackRequest` to that chain's FallbackChain actor;
* anything else: the model's host (through the Budget when there is one).

An agent with ``tools`` runs :func:`actors.tools.run_tool_loop` instead, on a named model.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

import otel
from actors import AskError, Failure, FailureKind, Ref
from actors.agents._errors import AgentError
from actors.agents._roles import AgentSpec
from actors.llm import Catalog, ChatMessage, ChatRequest, Completion, Usage
from actors.orchestration import (
    Chain,
    FallbackRequest,
    FallbackResult,
    Link,
    SelectChat,
    SpendScope,
    budgeted_chat,
    link,
)
from actors.store import Journal
from actors.tools import (
    AwaitingApproval,
    ExecuteTools,
    ListTools,
    LoopRecord,
    LoopSettings,
    ToolList,
    ToolResults,
    history_async,
    loop_stream,
    run_tool_loop,
)

__all__ = ["AgentBackend", "catalog_resolver"]

Resolver = Callable[[str], tuple[Ref[Any], str]]
"""``model -> (host ref, model as the host knows it)``; raises ``LookupError``."""


def catalog_resolver(
    system: Any, catalog: Catalog, hosts: Mapping[str, str] | None = None
) -> Resolver:
    """A resolver that finds a model's host in ``catalog`` (or ``hosts``: model → host name)."""
    named = dict(hosts or {})

    def resolve(model: str) -> tuple[Ref[Any], str]:
        if model in named:
            return system.lookup(named[model]), model
        found = catalog.lookup(model)
        if not found:
            raise LookupError(catalog.unknown(model))
        return system.lookup(found[0].host), found[0].model

    return resolve


@dataclass(slots=True)
class AgentBackend:
    """The services agents' model calls go through.

    Attributes:
        store: The Store actor (agents' and conversations' streams).
        resolve: Finds a named model's host (see :func:`catalog_resolver`).
        catalog: The model catalog (templates check models against it).
        selector: The Selector, for ``auto`` models.
        chains: ``(chain, values) -> Ref``: the FallbackChain actor of a chain (a
            configured name or a :class:`~actors.orchestration.Chain`), e.g.
            ``Chains(...).ref``.
        budget: The Budget actor that admits every call (``None``: no limits).
        tools: The ToolRunner actor, for agents with tools.
        timeout: Seconds one model call (or tool loop) may take.
        known_models: Model names served beside the catalog's (a ``{model: host}`` map);
            templates accept them.
        chain_links: ``name -> links``: a configured chain's links (e.g.
            ``Chains(...).chain(name).links``), whose windows a ``chain:<name>``
            agent's prompts are fitted to.
    """

    store: Ref[Any]
    resolve: Resolver | None = None
    catalog: Catalog | None = None
    selector: Ref[Any] | None = None
    chains: Callable[[Any, Any], Ref[Any]] | None = None
    budget: Ref[Any] | None = None
    tools: Ref[Any] | None = None
    timeout: float = 120.0
    known_models: tuple[str, ...] = ()
    chain_links: Callable[[str], Sequence[Link]] | None = None
    _inline: dict[tuple[str, ...], Chain] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loops: itertools.count[int] = field(default_factory=itertools.count)

    def context_tokens(self, spec: AgentSpec) -> int | None:
        """The context window ``spec``'s prompts are fitted to, where the catalog knows one.

        Named models (one, or a chain's links, inline or configured as
        ``chain:<name>``): the smallest of their windows, so that every link can take
        the prompt (a link's own ``context_length`` first, else the catalog's). ``auto``:
        the largest window of the catalog's chat models, since the Selector turns down
        every model too small for the prompt it is given (fitting the smallest would
        throw history away that the larger models could take). A link that is a
        template or a Selector counts for nothing.
        """
        if self.catalog is None:
            return None
        names = spec.model if isinstance(spec.model, tuple) else (spec.model,)
        windows: list[int] = []
        for name in names:
            if name.startswith("chain:"):
                windows.extend(self._chain_windows(name.removeprefix("chain:")))
            elif not name.startswith("auto"):
                windows.extend(
                    e.context_length for e in self.catalog.lookup(name) if e.context_length
                )
        if windows:
            return min(windows)
        if any(name == "auto" or name.startswith("auto:") for name in names):
            chat = [
                entry.context_length
                for entry in self.catalog.entries()
                if entry.context_length and "chat" in entry.capabilities
            ]
            return max(chat) if chat else None
        return None

    def _chain_windows(self, name: str) -> list[int]:
        """The known windows of the configured chain ``name``'s links (none if unknown)."""
        if self.chain_links is None or self.catalog is None:
            return []
        try:
            links = self.chain_links(name)
        except LookupError:
            return []  # the call itself will say that no such chain is configured
        windows: list[int] = []
        for one in links:
            if one.context_length:
                windows.append(one.context_length)
                continue
            if one.templated or not one.model or one.model.startswith("auto"):
                continue
            model = f"{one.host}/{one.model}" if one.host else one.model
            windows.extend(e.context_length for e in self.catalog.lookup(model) if e.context_length)
        return windows

    async def chat(
        self,
        spec: AgentSpec,
        messages: list[ChatMessage],
        *,
        run_id: str = "",
        model: str | tuple[str, ...] | None = None,
    ) -> Completion:
        """Ask ``spec``'s model (or ``model``) for the next message; raises ``AskError``."""
        target = spec.model if model is None else model
        request = ChatRequest(
            model="",
            messages=tuple(messages),
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            trace=otel.inject(),
        )
        scope = SpendScope(run_id=run_id, agent=spec.name)
        if isinstance(target, tuple) or target.startswith("chain:"):
            return await self._fallback(spec, target, request, scope)
        if target == "auto" or target.startswith("auto:"):
            return await self._select(target, request, run_id)
        if spec.tools and model is None:
            return await self._tool_loop(spec, target, messages, run_id)
        host, name = self._host(spec, target)
        request = msgspec.structs.replace(request, model=name)
        answer = await budgeted_chat(
            host, request, budget=self.budget, scope=scope, timeout=self.timeout
        )
        if isinstance(answer, Failure):
            raise AskError(answer)
        return answer

    def _host(self, spec: AgentSpec, model: str) -> tuple[Ref[Any], str]:
        if self.resolve is None:
            msg = f"agent {spec.name!r}: no model resolver, so model {model!r} has no host"
            raise AskError(Failure(kind=FailureKind.NOT_FOUND, message=msg))
        try:
            return self.resolve(model)
        except LookupError as exc:
            msg = f"agent {spec.name!r}: model {model!r}: {exc}"
            raise AskError(Failure(kind=FailureKind.NOT_FOUND, message=msg)) from None

    async def _select(self, target: str, request: ChatRequest, run_id: str) -> Completion:
        if self.selector is None:
            msg = f"model {target!r} needs a Selector, and none was given"
            raise AskError(Failure(kind=FailureKind.NOT_FOUND, message=msg))
        policy = target.partition(":")[2] or None
        answer: Completion = await self.selector.ask_async(
            SelectChat(request=request, policy=policy, run_id=run_id), timeout=self.timeout
        )
        return answer

    async def _fallback(
        self,
        spec: AgentSpec,
        target: str | tuple[str, ...],
        request: ChatRequest,
        scope: SpendScope,
    ) -> Completion:
        if self.chains is None:
            msg = f"agent {spec.name!r}: model {target!r} is a fallback chain, and none is set up"
            raise AskError(Failure(kind=FailureKind.NOT_FOUND, message=msg))
        chain: Chain | str
        if isinstance(target, tuple):
            with self._lock:
                found = self._inline.get(target)
                if found is None:
                    links = tuple(link(m) for m in target)
                    found = self._inline[target] = Chain(links=links, name=f"agent:{spec.name}")
            chain = found
        else:
            chain = target.removeprefix("chain:")
        try:
            ref = self.chains(chain, {})
        except LookupError as exc:
            raise AskError(Failure(kind=FailureKind.NOT_FOUND, message=str(exc))) from None
        result: FallbackResult = await ref.ask_async(
            FallbackRequest(request=request, run_id=scope.run_id, agent=scope.agent),
            timeout=self.timeout,
        )
        return result.completion

    async def _tool_loop(
        self, spec: AgentSpec, model: str, messages: list[ChatMessage], run_id: str
    ) -> Completion:
        if self.tools is None:
            msg = (
                f"agent {spec.name!r} may use tools {list(spec.tools)}, but no ToolRunner is set up"
            )
            raise AgentError(msg)
        host, name = self._host(spec, model)
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        transcript = "\n\n".join(
            f"{'You' if m.role == 'assistant' else 'Message'}: {m.content}"
            for m in messages[:-1]
            if m.role != "system"
        )
        last = messages[-1].content if messages else ""
        prompt = f"Earlier:\n{transcript}\n\nNow: {last}" if transcript else last
        loop_id = f"agent-{spec.name}-{next(self._loops)}-{run_id or 'direct'}"
        settings = LoopSettings(
            model=name,
            prompt=prompt,
            system=system or None,
            allowed=spec.tools,
            identity=f"agent:{spec.name}",
            run_id=loop_id,
            reactor="agents",
            step=spec.name,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
        )
        ports = _Ports(host, self.tools, Journal(self.store), loop_id, spec.name, self.timeout)
        outcome = await run_tool_loop(settings, ports)
        if isinstance(outcome, AwaitingApproval):
            msg = (
                f"agent {spec.name!r}: a tool call needs approval ({outcome.reason}); agents "
                "cannot wait for one: give them tools that need none"
            )
            raise AgentError(msg)
        return Completion(
            model=outcome.model or name,
            provider="tools",
            content=outcome.content,
            usage=outcome.usage if isinstance(outcome.usage, Usage) else Usage(),
        )


class _Ports:
    """The tool loop's ports for one agent answer (see :class:`actors.tools.LoopPorts`)."""

    def __init__(  # noqa: PLR0917 - one loop's ports, all required
        self,
        host: Ref[Any],
        runner: Ref[Any],
        journal: Journal,
        run_id: str,
        step: str,
        timeout: float,
    ) -> None:
        self.host = host
        self.runner = runner
        self.journal = journal
        self.run_id = run_id
        self.step = step
        self.timeout = timeout

    async def chat(self, request: ChatRequest) -> Completion:
        completion: Completion = await self.host.ask_async(request, timeout=self.timeout)
        return completion

    async def tools(self, allowed: tuple[str, ...] | None) -> ToolList:
        listed: ToolList = await self.runner.ask_async(
            ListTools(allowed=allowed), timeout=self.timeout
        )
        return listed

    async def execute(self, request: ExecuteTools) -> ToolResults:
        results: ToolResults = await self.runner.ask_async(request, timeout=self.timeout)
        return results

    async def history(self) -> list[LoopRecord]:
        records = await history_async(self.journal, self.run_id)
        return [r for r in records if r.step == self.step]

    async def record(self, record: LoopRecord) -> None:
        await self.journal.append_async(loop_stream(self.run_id), type(record).__name__, record)
