"""One turn's tool calls: concurrent, bounded, timed out, decided, audited, traced."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading

import pytest
from pydantic import SecretStr

from actors.llm import ToolCall
from actors.tools import (
    Approval,
    AuditSink,
    ExecuteTools,
    Policy,
    Rule,
    ToolCaller,
    ToolRegistry,
    ToolRetry,
    ToolStatus,
    payload_hash,
    tool,
)
from otel.testing import InMemorySpanExporter


def call(name: str, call_id: str = "c1", **arguments: object) -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=dict(arguments))


def run(caller: ToolCaller, *calls: ToolCall, **request: object) -> list:  # type: ignore[type-arg]
    return asyncio.run(caller.execute(ExecuteTools(calls=calls, **request)))  # type: ignore[arg-type]


def test_calls_of_one_turn_run_concurrently() -> None:
    """Three calls meet at a barrier: only possible if all three run at once."""

    async def meet(n: int) -> int:
        await barrier.wait()
        return n

    barrier: asyncio.Barrier
    registry = ToolRegistry([tool(timeout=5.0)(meet)])

    async def main() -> list[object]:
        nonlocal barrier
        barrier = asyncio.Barrier(3)
        outcomes = await ToolCaller(registry).execute(
            ExecuteTools(calls=tuple(call("meet", f"c{i}", n=i) for i in range(3)))
        )
        return [o.value for o in outcomes]

    assert asyncio.run(main()) == [0, 1, 2]


def test_max_parallel_bounds_the_calls_running_at_once() -> None:
    """With max_parallel=2, at most two calls are inside a tool at any time."""
    inside = 0
    most = 0

    async def work() -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        for _ in range(3):
            await asyncio.sleep(0)
        inside -= 1

    caller = ToolCaller(ToolRegistry([tool(work)]), max_parallel=2)
    outcomes = run(caller, *(call("work", f"c{i}") for i in range(6)))
    assert all(o.ok for o in outcomes)
    assert most == 2


def test_timeout_is_an_outcome_the_model_reads() -> None:
    """A call past its tool's timeout comes back as a timeout outcome, naming the limit."""

    async def stall() -> None:
        await asyncio.Event().wait()

    [outcome] = run(ToolCaller(ToolRegistry([tool(timeout=0.05)(stall)])), call("stall"))
    assert outcome.status is ToolStatus.TIMEOUT
    assert "timeout of 0.05 s" in outcome.content


def test_sync_tools_run_in_a_worker_thread_unless_inline() -> None:
    """A plain def runs off the loop's thread; inline=True keeps it on the loop."""

    def where() -> str:
        return threading.current_thread().name

    registry = ToolRegistry([tool(where), tool(name="where_inline", inline=True)(where)])
    threaded, inline = run(ToolCaller(registry), call("where", "a"), call("where_inline", "b"))
    assert threaded.value != threading.main_thread().name
    assert inline.value == threading.main_thread().name


def test_tool_errors_and_retry_requests_reach_the_model() -> None:
    """Exceptions become error outcomes; ToolRetry is marked correctable (retry)."""

    def broken() -> None:
        msg = "disk on fire"
        raise OSError(msg)

    def picky(x: int) -> int:
        if x < 0:
            raise ToolRetry("x must not be negative; try again with x >= 0")
        return x

    caller = ToolCaller(ToolRegistry([tool(broken), tool(picky)]))
    failed, retry = run(caller, call("broken", "a"), call("picky", "b", x=-1))
    assert failed.status is ToolStatus.ERROR
    assert "OSError: disk on fire" in failed.content
    assert retry.status is ToolStatus.RETRY
    assert "x >= 0" in retry.content


def test_denied_calls_are_not_run_and_are_audited() -> None:
    """A denied call never runs; the audit log has it with the rule that denied it."""
    ran = []

    def delete(path: str) -> None:
        ran.append(path)

    sink = AuditSink(None)
    caller = ToolCaller(
        ToolRegistry([tool(delete)]),
        policy=Policy([Rule(deny=["delete"], name="no deletes")]),
        audit=sink,
    )
    [outcome] = run(caller, call("delete", path="/"), run_id="r1", step="s", identity="bot")
    assert outcome.status is ToolStatus.PERMISSION_DENIED
    assert ran == []
    [record] = sink.records
    assert (record.tool, record.decision, record.outcome) == (
        "delete",
        "denied",
        "permission_denied",
    )
    assert "no deletes" in record.decided_by
    assert (record.run_id, record.step, record.identity) == ("r1", "s", "bot")


def test_secret_arguments_are_redacted_in_the_audit_log() -> None:
    """Fields marked secret and credential-like keys are redacted at any depth."""

    def connect(host: str, password: SecretStr, options: dict[str, str]) -> bool:
        return True

    sink = AuditSink(None)
    caller = ToolCaller(ToolRegistry([tool(connect)]), audit=sink)
    arguments = {"host": "db", "password": "hunter2", "options": {"api_key": "k", "mode": "ro"}}
    [outcome] = run(caller, ToolCall(id="c", name="connect", arguments=arguments))
    assert outcome.ok
    assert sink.records[0].arguments == {
        "host": "db",
        "password": "[redacted]",
        "options": {"api_key": "[redacted]", "mode": "ro"},
    }


def test_approval_applies_only_to_the_exact_payload() -> None:
    """Approved: runs, audited as approved by whom; a decision on another payload is refused."""

    def pay(amount: int) -> int:
        return amount

    caller = ToolCaller(ToolRegistry([tool(needs_approval=True)(pay)]))
    [pending] = run(caller, call("pay", amount=10))
    assert pending.status is ToolStatus.PENDING_APPROVAL
    good = Approval(
        call_id="c1", payload_hash=payload_hash("pay", {"amount": 10}), decision="approve", by="ana"
    )
    [approved] = run(caller, call("pay", amount=10), approvals={"c1": good})
    assert (approved.status, approved.decision, approved.decided_by) == (
        ToolStatus.OK,
        "approved",
        "ana",
    )
    [swapped] = run(caller, call("pay", amount=10_000), approvals={"c1": good})
    assert swapped.status is ToolStatus.PERMISSION_DENIED
    assert "another payload" in swapped.content


def test_edit_runs_with_the_edited_arguments_and_reject_tells_the_model() -> None:
    """An edit swaps the arguments (validated); a rejection's message reaches the model."""

    def pay(amount: int) -> int:
        return amount

    caller = ToolCaller(ToolRegistry([tool(needs_approval=True)(pay)]))
    digest = payload_hash("pay", {"amount": 10})
    edit = Approval(
        call_id="c1", payload_hash=digest, decision="edit", by="ana", arguments={"amount": 5}
    )
    [edited] = run(caller, call("pay", amount=10), approvals={"c1": edit})
    assert (edited.value, edited.decision, edited.arguments) == (5, "edited", {"amount": 5})
    reject = Approval(
        call_id="c1", payload_hash=digest, decision="reject", by="bo", message="too much"
    )
    [rejected] = run(caller, call("pay", amount=10), approvals={"c1": reject})
    assert rejected.status is ToolStatus.REJECTED
    assert "bo rejected the call: too much" in rejected.content


def test_each_call_gets_an_execute_tool_span(spans: InMemorySpanExporter) -> None:
    """execute_tool {name}, INTERNAL, with the GenAI tool attributes; failures marked."""

    def ok() -> int:
        return 1

    def bad() -> None:
        raise ValueError("no")

    run(ToolCaller(ToolRegistry([tool(ok), tool(bad)])), call("ok", "a"), call("bad", "b"))
    by_name = {s.name: s for s in spans.get_finished_spans()}
    span = by_name["execute_tool ok"]
    assert span.attributes is not None
    assert span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert span.attributes["gen_ai.tool.name"] == "ok"
    assert span.attributes["gen_ai.tool.call.id"] == "a"
    assert span.attributes["gen_ai.tool.type"] == "function"
    failed = by_name["execute_tool bad"]
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "error"
    assert not failed.status.is_ok


def test_arguments_and_results_are_on_the_span_only_when_content_may_be(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gen_ai.tool.call.arguments and .result: opt-in, as the conventions say."""
    import otel

    def add(a: int, b: int) -> int:
        return a + b

    caller = ToolCaller(ToolRegistry([tool(add)]))
    run(caller, call("add", "quiet", a=1, b=2))
    monkeypatch.setenv(otel.CAPTURE_CONTENT_VARIABLE, "true")
    run(caller, call("add", "loud", a=3, b=4))
    by_call = {
        s.attributes["gen_ai.tool.call.id"]: s.attributes
        for s in spans.get_finished_spans()
        if s.attributes is not None and s.name == "execute_tool add"
    }
    assert otel.GEN_AI_TOOL_CALL_ARGUMENTS not in by_call["quiet"]
    assert otel.GEN_AI_TOOL_CALL_RESULT not in by_call["quiet"]
    assert json.loads(str(by_call["loud"][otel.GEN_AI_TOOL_CALL_ARGUMENTS])) == {"a": 3, "b": 4}
    assert by_call["loud"][otel.GEN_AI_TOOL_CALL_RESULT] == "7"


def test_a_tool_runs_in_its_span(spans: InMemorySpanExporter) -> None:
    """Spans a tool opens (sync in a worker thread, or async) are children of execute_tool."""
    import otel

    def sync_tool() -> int:
        with otel.tracer().start_as_current_span("inside sync"):
            return 1

    async def async_tool() -> int:
        with otel.tracer().start_as_current_span("inside async"):
            return 2

    run(
        ToolCaller(ToolRegistry([tool(sync_tool), tool(async_tool)])),
        call("sync_tool", "a"),
        call("async_tool", "b"),
    )
    by_name = {s.name: s for s in spans.get_finished_spans()}
    for inner, outer in (
        ("inside sync", "execute_tool sync_tool"),
        ("inside async", "execute_tool async_tool"),
    ):
        parent = by_name[inner].parent
        assert parent is not None
        assert parent.span_id == by_name[outer].context.span_id


def test_a_failed_call_span_has_the_exception_event(spans: InMemorySpanExporter) -> None:
    """A tool that raised: its span carries the conventions' ``exception`` event."""

    def bad() -> None:
        raise ValueError("no such account")

    run(ToolCaller(ToolRegistry([tool(bad)])), call("bad"))
    [span] = [s for s in spans.get_finished_spans() if s.name == "execute_tool bad"]
    [event] = [e for e in span.events if e.name == "exception"]
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "no such account"
    assert "raise ValueError" in str(event.attributes["exception.stacktrace"])


def test_a_cancelled_call_still_ends_its_span(spans: InMemorySpanExporter) -> None:
    """Cancelling a turn mid-call ends the call's span with ``error.type=cancelled``."""
    entered = asyncio.Event()

    async def forever() -> None:
        entered.set()
        await asyncio.Event().wait()

    async def main() -> None:
        caller = ToolCaller(ToolRegistry([tool(timeout=60.0)(forever)]))
        turn = asyncio.create_task(caller.execute(ExecuteTools(calls=(call("forever"),))))
        await entered.wait()
        turn.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await turn

    asyncio.run(main())
    [span] = [s for s in spans.get_finished_spans() if s.name == "execute_tool forever"]
    assert span.attributes is not None
    assert span.attributes["error.type"] == "cancelled"
    assert not span.status.is_ok
