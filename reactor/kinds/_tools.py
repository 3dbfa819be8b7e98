"""Running a ``tools`` step: the tool loop, between a ModelHost, the ToolRunner and the journal.

The loop itself is :func:`actors.tools.run_tool_loop`, awaited on the event loop as the
attempt's coroutine (under the step's timeout). Its ports here: the model host found
like an ``ask`` step's, the ToolRunner actor named by the step (``tools``), and the
run's tool stream ``tools:<run_id>`` in the Store. Calls waiting for approval halt the
run (the step's outcome is a ``Halt``); resuming runs the step again, and the loop picks
up from its journal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

import otel
from actors import ActorNotFound, AskError, FailureKind, Ref
from actors.llm import ChatRequest, Completion
from actors.store import Journal
from actors.tools import (
    AwaitingApproval,
    ExecuteTools,
    ListTools,
    LoopRecord,
    LoopSettings,
    ToolList,
    ToolLoopResult,
    ToolResults,
    history_async,
    loop_stream,
    run_tool_loop,
)
from dsl import Halt, ToolsImpl
from reactor.run import Attempt, Cancellable, StepExecutor, StepFailure

__all__ = ["ToolsExecutor"]


class _Ports:
    """The loop's ports for one attempt (see :class:`actors.tools.LoopPorts`)."""

    __slots__ = ("host", "journal", "run_id", "runner", "step", "timeout")

    def __init__(  # noqa: PLR0917 - one attempt's ports, all required
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
        traced = request if request.trace else _with_trace(request)
        completion: Completion = await self.host.ask_async(traced, timeout=self.timeout)
        return completion

    async def tools(self, allowed: tuple[str, ...] | None) -> ToolList:
        listed: ToolList = await self.runner.ask_async(
            ListTools(allowed=allowed), timeout=self.timeout
        )
        return listed

    async def execute(self, request: ExecuteTools) -> ToolResults:
        results: ToolResults = await self.runner.ask_async(
            _with_trace(request), timeout=self.timeout
        )
        return results

    async def history(self) -> list[LoopRecord]:
        records = await history_async(self.journal, self.run_id)
        return [r for r in records if r.step == self.step]

    async def record(self, record: LoopRecord) -> None:
        """Append, trying again when the commit failed on a stale sequence number.

        Another process (``reactor runs approve`` while this one runs) may have appended
        to the stream: the Store's first commit then fails on ``UNIQUE(stream_id, seq)``
        and it re-reads the stream's last number, so the same append succeeds next
        time. Failing here instead would fail the attempt after its tool calls ran, and
        the retried attempt would run them again.
        """
        stream = loop_stream(self.run_id)
        for attempt in range(_RECORD_TRIES):
            try:
                await self.journal.append_async(stream, type(record).__name__, record)
            except AskError as exc:
                if exc.failure.kind is not FailureKind.SERVER_ERROR or attempt == _RECORD_TRIES - 1:
                    raise
            else:
                return


_RECORD_TRIES = 3


def _with_trace(request: Any) -> Any:
    carrier = otel.inject()
    return msgspec.structs.replace(request, trace=carrier) if carrier else request


class ToolsExecutor(StepExecutor):
    """Runs the tool loop of a ``tools`` step."""

    def start(self, attempt: Attempt[ToolsImpl]) -> Cancellable | None:
        """Start the loop; a model no host serves, a bad placeholder or no runner fails at once."""
        impl = attempt.impl
        arguments = attempt.arguments
        services = attempt.services
        try:
            model = impl.model.format_map(arguments)
            host, model = services.resolve_host(model, impl.host)
            prompt = impl.prompt.format_map(arguments)
            system = impl.system.format_map(arguments) if impl.system else None
        except (LookupError, AttributeError, ValueError) as exc:
            kind = "not_found" if isinstance(exc, LookupError) else "bad_argument"
            attempt.fail(StepFailure(kind, str(exc)))
            return None
        runner = _runner(services.lookup, impl.runner)
        if runner is None:
            # Halt rather than fail: the run may be resumed where its tools are registered
            # (`reactor runs resume` in a shell has none), and failing would roll it back.
            attempt.succeed(
                Halt(
                    f"no ToolRunner named {impl.runner!r} runs in this process: resume the "
                    "run where its tools are (engine.start_tools(registry))"
                )
            )
            return None
        step = attempt.spec.name
        settings = LoopSettings(
            model=model,
            prompt=prompt,
            system=system,
            allowed=impl.allow,
            identity=impl.identity or f"{attempt.reactor}.{step}",
            run_id=attempt.run_id,
            reactor=attempt.reactor,
            step=step,
            max_turns=impl.max_turns,
            budget_tokens=impl.budget_tokens,
            budget_usd=impl.budget_usd,
            tool_choice=impl.tool_choice,
            native=impl.native,
            docs=impl.docs,
            context_chars=impl.context_chars,
            keep_turns=impl.keep_turns,
            temperature=impl.temperature,
            max_tokens=impl.max_tokens,
            options=dict(impl.options),
        )
        ports = _Ports(
            host, runner, Journal(services.store), attempt.run_id, step, impl.turn_timeout
        )
        return attempt.run(_loop(settings, ports))


def _runner(lookup: Callable[[str], Ref[Any]] | None, name: str) -> Ref[Any] | None:
    if lookup is None:
        return None
    try:
        return lookup(name)
    except ActorNotFound:
        return None


async def _loop(settings: LoopSettings, ports: _Ports) -> ToolLoopResult | Halt:
    outcome = await run_tool_loop(settings, ports)
    if isinstance(outcome, AwaitingApproval):
        return Halt(outcome.reason)
    return outcome
