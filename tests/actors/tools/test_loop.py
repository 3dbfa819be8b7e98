"""The tool loop with a scripted model and an in-memory journal: corrections, limits, resume."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import pytest

from actors.llm import ChatMessage, ChatRequest, Completion, ToolCall, Usage
from actors.llm.providers._anthropic import AnthropicProvider
from actors.llm.providers._base import Timeouts, make_client
from actors.testing import FakeServer, FakeToolCall, Reply
from actors.testing._anthropic import AnthropicProtocol
from actors.tools import (
    Approval,
    ApprovalDecided,
    AwaitingApproval,
    ExecuteTools,
    LoopRecord,
    LoopSettings,
    ToolCaller,
    ToolList,
    ToolLoopError,
    ToolLoopResult,
    ToolRegistry,
    ToolResults,
    ToolStatus,
    TurnRecorded,
    parse_json_calls,
    run_tool_loop,
    tool,
    window,
)


class Ports:
    """A scripted model, a real ToolCaller, and a journal kept in a list."""

    def __init__(
        self,
        registry: ToolRegistry,
        script: Sequence[Completion | Callable[[ChatRequest], Completion]],
    ) -> None:
        self.caller = ToolCaller(registry)
        self.registry = registry
        self.script = list(script)
        self.requests: list[ChatRequest] = []
        self.journal: list[LoopRecord] = []
        self.executed: list[str] = []

    async def chat(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        step = self.script.pop(0)
        return step(request) if callable(step) else step

    async def tools(self, allowed: tuple[str, ...] | None) -> ToolList:
        chosen = self.registry.select(allowed)
        return ToolList(
            specs=tuple(t.spec for t in chosen),
            docs=self.registry.capability_docs(allowed),
            max_retries={t.name: t.meta.max_retries for t in chosen},
        )

    async def execute(self, request: ExecuteTools) -> ToolResults:
        self.executed.extend(c.id for c in request.calls)
        return ToolResults(outcomes=tuple(await self.caller.execute(request)))

    async def history(self) -> list[LoopRecord]:
        return list(self.journal)

    async def record(self, record: LoopRecord) -> None:
        self.journal.append(record)


def calls(*items: tuple[str, str, dict[str, Any]]) -> Completion:
    return Completion(
        model="m",
        provider="fake",
        tool_calls=tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in items),
        usage=Usage(input_tokens=10, output_tokens=5),
    )


def answer(text: str) -> Completion:
    return Completion(
        model="m", provider="fake", content=text, usage=Usage(input_tokens=10, output_tokens=5)
    )


@tool(max_retries=1)
def square(x: int) -> int:
    """Square a number."""
    return x * x


SETTINGS = LoopSettings(model="m", prompt="square 4", step="s", run_id="r")


def loop(ports: Ports, settings: LoopSettings = SETTINGS) -> ToolLoopResult | AwaitingApproval:
    return asyncio.run(run_tool_loop(settings, ports))


def test_a_validation_error_is_corrected_by_the_model() -> None:
    """The model sees which field was wrong, calls again correctly, then answers."""
    ports = Ports(
        ToolRegistry([square]),
        [calls(("a", "square", {"x": "four"})), calls(("b", "square", {"x": 4})), answer("16")],
    )
    result = loop(ports)
    assert isinstance(result, ToolLoopResult)
    assert result.content == "16"
    assert [o.status for o in result.calls] == [ToolStatus.INVALID_ARGUMENTS, ToolStatus.OK]
    second = ports.requests[1].messages
    assert second[-1].role == "tool"
    assert second[-1].tool_call_id == "a"
    assert '"fields":["x"]' in second[-1].content
    assert result.usage == Usage(input_tokens=30, output_tokens=15)
    assert result.turns == 3


def test_the_retry_budget_ends_the_loop() -> None:
    """Two bad calls in a row exceed max_retries=1: the loop fails, naming the tool."""
    ports = Ports(ToolRegistry([square]), [calls(("a", "square", {})), calls(("b", "square", {}))])
    with pytest.raises(ToolLoopError, match="'square' failed 2 time") as caught:
        loop(ports)
    assert caught.value.reason == "retries"


def test_unknown_tools_are_told_what_they_may_call() -> None:
    """An unknown tool's outcome lists the tools offered; the model can recover."""
    ports = Ports(ToolRegistry([square]), [calls(("a", "cube", {"x": 2})), answer("sorry")])
    result = loop(ports)
    assert isinstance(result, ToolLoopResult)
    assert result.calls[0].status is ToolStatus.UNKNOWN_TOOL
    assert "you may call are: square" in ports.requests[1].messages[-1].content


def test_max_turns_and_budget_end_the_loop() -> None:
    """A model that never answers is stopped by max_turns; a token budget stops it sooner."""
    endless = [calls((f"c{i}", "square", {"x": i})) for i in range(5)]
    ports = Ports(ToolRegistry([square]), endless)
    with pytest.raises(ToolLoopError, match="all 3 turns") as caught:
        loop(ports, LoopSettings(model="m", prompt="p", step="s", max_turns=3))
    assert caught.value.reason == "max_turns"
    ports = Ports(ToolRegistry([square]), endless)
    with pytest.raises(ToolLoopError, match="budget of 20") as caught:
        loop(ports, LoopSettings(model="m", prompt="p", step="s", budget_tokens=20))
    assert caught.value.reason == "budget"
    priced = [msgspec.structs.replace(c, cost_usd=0.02) for c in endless]
    ports = Ports(ToolRegistry([square]), priced)
    with pytest.raises(ToolLoopError, match="USD, over its budget of 0.05") as caught:
        loop(ports, LoopSettings(model="m", prompt="p", step="s", budget_usd=0.05))
    assert len(ports.requests) == 3


def test_resume_does_not_rerun_journaled_calls() -> None:
    """After a crash between turns, the journaled outcome is reused, the tool not called again."""
    ran: list[int] = []

    @tool
    def side_effect(x: int) -> int:
        """Count calls."""
        ran.append(x)
        return x

    registry = ToolRegistry([side_effect])

    def crash(request: ChatRequest) -> Completion:
        raise ConnectionError  # the process "dies" while the model thinks

    first = Ports(registry, [calls(("a", "side_effect", {"x": 1})), crash])
    with pytest.raises(ConnectionError):
        loop(first)
    assert ran == [1]
    second = Ports(registry, [answer("done")])
    second.journal = list(first.journal)
    result = loop(second)
    assert isinstance(result, ToolLoopResult)
    assert ran == [1]
    assert second.executed == []
    assert [o.value for o in result.calls] == [1]
    assert second.requests[0].messages[-1].content == "1"


def test_a_call_journaled_without_outcome_runs_once_on_resume() -> None:
    """A turn whose calls were journaled but not their outcomes: exactly those calls run."""
    first = Ports(ToolRegistry([square]), [calls(("a", "square", {"x": 3}))])

    async def crash(request: ExecuteTools) -> ToolResults:
        raise ConnectionError

    first.execute = crash  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        loop(first)
    second = Ports(ToolRegistry([square]), [answer("9")])
    second.journal = list(first.journal)
    result = loop(second)
    assert second.executed == ["a"]
    assert isinstance(result, ToolLoopResult)
    assert result.content == "9"


def test_approval_halts_then_resumes_with_the_decision() -> None:
    """A call that needs approval stops the loop; with a decision it runs on resume."""
    paid: list[int] = []

    @tool(needs_approval=True)
    def pay(amount: int) -> int:
        """Pay."""
        paid.append(amount)
        return amount

    registry = ToolRegistry([pay])
    ports = Ports(registry, [calls(("a", "pay", {"amount": 10}))])
    waiting = loop(ports)
    assert isinstance(waiting, AwaitingApproval)
    [pending] = waiting.calls
    assert (pending.call_id, pending.name, pending.arguments) == ("a", "pay", {"amount": 10})
    assert paid == []
    again = Ports(registry, [])
    again.journal = list(ports.journal)
    assert isinstance(loop(again), AwaitingApproval)  # still undecided: halts again, asks nothing
    assert again.requests == []
    approval = Approval(
        call_id="a", payload_hash=pending.payload_hash, decision="approve", by="ana"
    )
    resumed = Ports(registry, [answer("paid")])
    resumed.journal = [*ports.journal, ApprovalDecided(step="s", approval=approval)]
    result = loop(resumed)
    assert isinstance(result, ToolLoopResult)
    assert paid == [10]
    assert (result.calls[0].decision, result.calls[0].decided_by) == ("approved", "ana")


def test_json_fallback_for_models_without_tool_calling() -> None:
    """native=False: schemas and instructions in the prompt, calls parsed from the text."""
    ports = Ports(
        ToolRegistry([square]),
        [
            answer(
                'Sure.\n```json\n{"tool_calls": [{"name": "square", "arguments": {"x": 5}}]}\n```'
            ),
            answer("25"),
        ],
    )
    result = loop(ports, LoopSettings(model="m", prompt="p", step="s", native=False))
    assert isinstance(result, ToolLoopResult)
    assert result.calls[0].call_id == "call_1_1"
    assert result.calls[0].value == 25
    first, second = ports.requests
    assert first.tools == ()
    assert '"tool_calls"' in first.messages[0].content
    assert second.messages[-1].role == "user"
    assert second.messages[-1].content == "Tool results:\n[call_1_1] square: 25"


def test_parse_json_calls_accepts_the_common_shapes() -> None:
    """One call object, a list, text around it; plain text and broken JSON are answers."""
    assert [c.name for c in parse_json_calls('{"name": "a", "arguments": {}}', 1)] == ["a"]
    assert [
        c.arguments
        for c in parse_json_calls(
            'x {"tool_calls": [{"name": "a", "arguments": "{\\"k\\": 1}"}]}', 2
        )
    ] == [{"k": 1}]
    assert parse_json_calls("The answer is 4.", 1) == []
    assert parse_json_calls('{"tool_calls": [', 1) == []


def test_windowing_stubs_old_results_then_drops_whole_turns() -> None:
    """Old results become stubs first; then whole old turns go, never orphaning a result."""
    head = [ChatMessage.system("sys"), ChatMessage.user("prompt")]
    turns: list[ChatMessage] = []
    for i in range(4):
        call = ToolCall(id=f"c{i}", name="read", arguments={})
        turns += [ChatMessage.assistant("", (call,)), ChatMessage.tool(call, "x" * 200)]
    full = [*head, *turns]
    stubbed = window(full, head=2, limit_chars=700, keep_turns=2)
    assert stubbed[3].content.startswith("[elided: result of read, 200 characters]")
    assert stubbed[-1].content == "x" * 200
    assert len(stubbed) == len(full)
    dropped = window(full, head=2, limit_chars=350, keep_turns=1)
    assert "earlier tool turn(s) were left out" in dropped[1].content
    roles = [m.role for m in dropped[2:]]
    assert roles[0] == "assistant"
    assert all(
        m.tool_call_id in {c.id for a in dropped for c in a.tool_calls}
        for m in dropped
        if m.role == "tool"
    )
    assert window(full, head=2, limit_chars=None) is full


def test_the_loop_sends_the_windowed_conversation() -> None:
    """With context_chars set, a long loop's later requests carry stubs, not old results."""

    @tool
    def big(n: int) -> str:
        """A big result."""
        return "y" * 500

    script = [calls((f"c{i}", "big", {"n": i})) for i in range(4)] + [answer("ok")]
    ports = Ports(ToolRegistry([big]), script)
    loop(
        ports,
        LoopSettings(model="m", prompt="p", step="s", context_chars=1500, keep_turns=1, docs=False),
    )
    last = ports.requests[-1].messages
    assert sum(len(m.content) for m in last) < 1500
    assert any(m.content.startswith("[elided") for m in last)


# -- Anthropic extended thinking: the loop echoes each turn's reasoning blocks -----------


class HttpPorts(Ports):
    """The scripted ports, but the model is the Anthropic fake over loopback HTTP."""

    def __init__(self, registry: ToolRegistry, provider: AnthropicProvider, stream: bool) -> None:
        super().__init__(registry, [])
        self.provider = provider
        self.stream = stream

    async def chat(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        return await self.provider.complete(msgspec.structs.replace(request, stream=self.stream))


THINKING = LoopSettings(
    model="claude-think",
    prompt="square 4, then square the result",
    step="s",
    max_tokens=4096,
    options={"thinking": {"type": "enabled", "budget_tokens": 2048}},
)


@pytest.mark.parametrize("stream", [False, True])
async def test_the_loop_sends_thinking_blocks_back_with_the_calls(stream: bool) -> None:
    """Thinking on: each follow-up's tool-use turn carries its signed reasoning blocks.

    The fake refuses (400) a tool-use turn without them, as the API does; a crash after
    the first turn and a resume from the journal (encoded as stored) keeps them too.
    """
    http = make_client(timeouts=Timeouts(connect=2.0, read=5.0, stream_idle=2.0))
    try:
        with FakeServer(AnthropicProtocol(redacted_thinking=1), models=["claude-think"]) as server:
            provider = AnthropicProvider(server.url, client=http)
            server.script(
                Reply(reasoning="Square 4 first.", tool_calls=(FakeToolCall("square", {"x": 4}),)),
                Reply(reasoning="Now 16.", tool_calls=(FakeToolCall("square", {"x": 16}),)),
            )
            first = HttpPorts(ToolRegistry([square]), provider, stream)

            async def crash(request: ChatRequest) -> Completion:
                if len(first.requests) == 2:  # the process "dies" after the second turn
                    raise ConnectionError
                return await HttpPorts.chat(first, request)

            first.chat = crash  # type: ignore[method-assign]
            with pytest.raises(ConnectionError):
                await run_tool_loop(THINKING, first)
            second = HttpPorts(ToolRegistry([square]), provider, stream)
            second.journal = [
                msgspec.json.decode(msgspec.json.encode(r), type=type(r)) for r in first.journal
            ]
            server.script(Reply(reasoning="Both done.", text="256"))
            result = await run_tool_loop(THINKING, second)
            bodies = [c.body for c in server.calls if c.path == "/v1/messages"]
    finally:
        await http.aclose()
    assert isinstance(result, ToolLoopResult)
    assert result.content == "256"
    assert [o.value for o in result.calls] == [16, 256]
    assert len(bodies) == 3
    for body, thought in ((bodies[1], "Square 4 first."), (bodies[2], "Now 16.")):
        turn = body["messages"][-2]["content"]
        assert [b["type"] for b in turn] == ["thinking", "redacted_thinking", "tool_use"]
        assert turn[0]["thinking"] == thought
        assert turn[0]["signature"]
    recorded = [r for r in second.journal if isinstance(r, TurnRecorded)]
    assert [len(r.assistant.thinking_blocks) for r in recorded] == [2, 2]
