"""The ``tools`` step against real ModelHosts, a ToolRunner and each fake provider over loopback.

Every provider's tool-call format goes through the same loop: OpenAI and LM Studio
(``tool_calls`` with JSON-string arguments), Ollama (object arguments, no ids: they are
synthesised), Anthropic (``tool_use`` / ``tool_result`` blocks) and Gemini
(``functionCall`` / ``functionResponse``). Approvals halt the run and survive a restart
of the system; the CLI records decisions; spans nest under the step.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from actors import System
from actors.llm import HostConfig, HostProtocol
from actors.testing import FakeModel, FakeServer, FakeToolCall, Reply
from actors.testing._anthropic import AnthropicProtocol
from actors.tools import (
    ApprovalError,
    FlushAudit,
    Policy,
    Rule,
    ToolLoopResult,
    ToolRegistry,
    ToolStatus,
    history,
    query_audit,
    tool,
)
from dsl import Halt, Input, Reactor, step, tools
from otel.testing import InMemorySpanExporter
from reactor.app import Engine
from reactor.cli import main
from reactor.run import RunHaltedError
from tests.support.hosts import start_host

TRANSFERS: list[tuple[str, int]] = []


@tool(read_only=True, tags={"math"})
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(needs_approval=True, destructive=True)
def transfer(to: str, amount: int) -> str:
    """Send money."""
    TRANSFERS.append((to, amount))
    return f"sent {amount} to {to}"


class Sums(Reactor):
    """One tools step: the model adds numbers with a tool."""

    question = Input(str)
    answer = tools("{question}", model="fake-small", allow=["tag:math"], backoff=0, max_retries=0)


class Payout(Reactor):
    """A step whose tool needs a human's approval."""

    who = Input(str)
    paid = tools("pay {who}", model="fake-small", allow=["transfer"], backoff=0)


def settings(server: FakeServer, protocol: HostProtocol) -> HostConfig:
    return HostConfig(url=server.url, protocol=protocol, connect_timeout_s=1.0, timeout_s=5.0)


def bodies(server: FakeServer) -> list[dict[str, Any]]:
    """The chat request bodies the server received."""
    return [
        c.body
        for c in server.calls
        if isinstance(c.body, dict) and ("messages" in c.body or "contents" in c.body)
    ]


def start(
    system: System, db: Path, server: FakeServer, protocol: HostProtocol, **runner: Any
) -> Engine:
    start_host(system, settings(server, protocol))
    engine = Engine(system, db_path=db, logging=False, hosts={"fake-small": "local"})
    engine.start_tools(ToolRegistry([add, transfer]), **runner)
    return engine


@pytest.mark.parametrize("protocol", ["openai", "lmstudio", "ollama", "anthropic", "gemini"])
def test_loop_over_each_provider(system: System, tmp_path: Path, protocol: HostProtocol) -> None:
    """A bad call is corrected, two run in one turn, results go back in each provider's shape."""
    with FakeServer(protocol, models=["fake-small"]) as server:
        engine = start(system, tmp_path / "t.db", server, protocol)
        server.script(
            Reply(tool_calls=(FakeToolCall("add", {"a": 2, "b": "three"}),)),
            Reply(
                tool_calls=(
                    FakeToolCall("add", {"a": 2, "b": 3}),
                    FakeToolCall("add", {"a": 1, "b": 1}),
                )
            ),
            Reply(text="5 and 2"),
        )
        result = engine.run(Sums, {"question": "add them"})
        assert isinstance(result, ToolLoopResult)
        assert result.content == "5 and 2"
        assert [o.status for o in result.calls] == [
            ToolStatus.INVALID_ARGUMENTS,
            ToolStatus.OK,
            ToolStatus.OK,
        ]
        assert [o.value for o in result.calls[1:]] == [5, 2]
        assert all(o.call_id for o in result.calls)
        # ids are synthesised where the server gives none
        assert len({o.call_id for o in result.calls}) == 3
        sent = json.dumps(bodies(server)[-1])
        assert "invalid_arguments" in json.dumps(bodies(server)[1])
        expected_result_shape = {
            "openai": '"role": "tool"',
            "lmstudio": '"role": "tool"',
            "ollama": '"tool_name": "add"',
            "anthropic": '"type": "tool_result"',
            "gemini": '"functionResponse"',
        }[protocol]
        assert expected_result_shape in sent
        assert '"add"' in json.dumps(bodies(server)[0])  # the tool was offered
        engine.close()


def test_denied_calls_reach_the_model_and_the_audit_log(system: System, tmp_path: Path) -> None:
    """A policy denial is permission_denied for the model and a denied audit record."""
    db = tmp_path / "d.db"
    with FakeServer("openai", models=["fake-small"]) as server:
        policy = Policy([Rule(deny=["add"], reactor="Sums", name="no maths")])
        engine = start(system, db, server, "openai", policy=policy)
        server.script(
            Reply(tool_calls=(FakeToolCall("add", {"a": 1, "b": 2}),)), Reply(text="cannot")
        )
        result = engine.run(Sums, {"question": "q"})
        assert result.calls[0].status is ToolStatus.PERMISSION_DENIED
        assert "permission_denied" in json.dumps(bodies(server)[1])
        system.lookup("tools").ask(FlushAudit())
        [record] = query_audit(db)
        assert (record.decision, record.outcome, record.step) == (
            "denied",
            "permission_denied",
            "answer",
        )
        assert record.identity == "Sums.answer"
        engine.close()


def test_approval_survives_a_restart_and_applies_to_the_exact_payload(tmp_path: Path) -> None:
    """Halted with a pending call; a new system on the same file approves and resumes it."""
    db = tmp_path / "a.db"
    TRANSFERS.clear()
    with FakeServer("openai", models=["fake-small"]) as server:
        server.script(
            Reply(tool_calls=(FakeToolCall("transfer", {"to": "ana", "amount": 30}, id="pay-1"),))
        )
        with System(name="before", default_timeout=5.0) as system:
            engine = start(system, db, server, "openai")
            with pytest.raises(RunHaltedError, match="pay-1") as halted:
                engine.run(Payout, {"who": "ana"})
            run_id = halted.value.run_id
            engine.close()
        assert TRANSFERS == []
        server.script(Reply(text="paid ana"))
        with System(name="after", default_timeout=5.0) as system:
            engine = start(system, db, server, "openai")
            [(step, call)] = engine.pending_tool_calls(run_id)
            assert (step, call.name, call.arguments) == (
                "paid",
                "transfer",
                {"to": "ana", "amount": 30},
            )
            engine.approve_tool_call(run_id, "pay-1", by="ana")
            result = engine.resume(run_id).result(10)
            system.lookup("tools").ask(FlushAudit())
            engine.close()
        assert TRANSFERS == [("ana", 30)]
        assert result.content == "paid ana"
        assert (result.calls[0].decision, result.calls[0].decided_by) == ("approved", "ana")
        assert [(r.decision, r.decided_by) for r in query_audit(db, tool="transfer")] == [
            ("approved", "ana"),
            ("pending", ""),
        ]


def test_cli_rejects_and_edits_pending_calls(system: System, tmp_path: Path) -> None:
    """`reactor runs reject|approve --arguments`: recorded, then applied on resume."""
    db = tmp_path / "c.db"
    TRANSFERS.clear()
    with FakeServer("openai", models=["fake-small"]) as server:
        engine = start(system, db, server, "openai")
        server.script(
            Reply(
                tool_calls=(
                    FakeToolCall("transfer", {"to": "eve", "amount": 999}, id="t1"),
                    FakeToolCall("transfer", {"to": "bo", "amount": 50}, id="t2"),
                )
            ),
            Reply(text="done"),
        )
        with pytest.raises(RunHaltedError) as halted:
            engine.run(Payout, {"who": "eve"})
        run_id = halted.value.run_id
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main(["tools", "pending", run_id, "--db", str(db)]) == 0
            assert (
                main(
                    [
                        "runs",
                        "reject",
                        run_id,
                        "t1",
                        "--db",
                        str(db),
                        "--by",
                        "cfo",
                        "--message",
                        "fraud",
                    ]
                )
                == 0
            )
            assert (
                main(
                    [
                        "runs",
                        "approve",
                        run_id,
                        "t2",
                        "--db",
                        str(db),
                        "--by",
                        "cfo",
                        "--arguments",
                        '{"to": "bo", "amount": 5}',
                    ]
                )
                == 0
            )
            assert main(["runs", "approve", run_id, "t2", "--db", str(db)]) == 2  # decided already
        assert "t1  step paid  transfer" in out.getvalue()
        assert "no tool call 't2' is waiting" in err.getvalue()
        result = engine.resume(run_id).result(10)
        assert TRANSFERS == [("bo", 5)]
        rejected, edited = result.calls
        assert rejected.status is ToolStatus.REJECTED
        assert "cfo rejected the call: fraud" in rejected.content
        assert (edited.decision, edited.arguments) == ("edited", {"to": "bo", "amount": 5})
        system.lookup("tools").ask(FlushAudit())
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["tools", "audit", "--db", str(db), "--run", run_id, "--json"]) == 0
        decisions = sorted(r["decision"] for r in json.loads(out.getvalue()))
        assert decisions == ["edited", "pending", "pending", "rejected"]
        engine.close()


def test_tool_spans_nest_under_the_step(
    system: System, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    """Each call's execute_tool span is a child of the tools step's span, in the run's trace."""
    with FakeServer("openai", models=["fake-small"]) as server:
        engine = start(system, tmp_path / "s.db", server, "openai")
        server.script(Reply(tool_calls=(FakeToolCall("add", {"a": 1, "b": 2}),)), Reply(text="3"))
        engine.run(Sums, {"question": "q"})
        engine.close()
    finished = spans.get_finished_spans()
    tool_span = next(s for s in finished if s.name == "execute_tool add")
    parent = next(
        s for s in finished if tool_span.parent and s.context.span_id == tool_span.parent.span_id
    )
    assert "answer" in parent.name
    assert tool_span.context.trace_id == parent.context.trace_id


def test_no_runner_halts_the_run_saying_where_to_resume(system: System, tmp_path: Path) -> None:
    """Without a ToolRunner the run halts (not fails): it can be resumed where the tools are."""
    with FakeServer("openai", models=["fake-small"]) as server:
        start_host(system, settings(server, "openai"))
        hosts = {"fake-small": "local"}
        with Engine(system, db_path=tmp_path / "n.db", logging=False, hosts=hosts) as engine:
            with pytest.raises(RunHaltedError, match="no ToolRunner named 'tools'") as halted:
                engine.run(Sums, {"question": "q"})
            engine.start_tools(ToolRegistry([add]))
            server.script(Reply(text="later"))
            assert engine.resume(halted.value.run_id).result(10).content == "later"


def test_step_settings_are_checked_when_the_reactor_is_defined() -> None:
    """A bad max_turns is a definition error naming the option."""
    from dsl import DefinitionError

    with pytest.raises(DefinitionError, match="max_turns"):

        class Bad(Reactor):
            q = Input(str)
            a = tools("{q}", model="m", max_turns=0)


@pytest.fixture(autouse=True)
def _clean() -> None:
    """Each test starts with no transfers made."""
    TRANSFERS.clear()


class Plain(Reactor):
    """A model without native tool calling: the JSON-in-text fallback."""

    question = Input(str)
    answer = tools("{question}", model="tiny", allow=["add"], native=False, backoff=0)


def test_json_fallback_with_a_model_without_tool_calling(system: System, tmp_path: Path) -> None:
    """Ollama refuses tools for this model; native=False sends none and parses the text."""
    with FakeServer("ollama", models=[FakeModel("tiny", tools=False)]) as server:
        start_host(system, settings(server, "ollama"))
        hosts = {"tiny": "local"}
        with Engine(system, db_path=tmp_path / "j.db", logging=False, hosts=hosts) as engine:
            engine.start_tools(ToolRegistry([add]))
            server.script(
                Reply(text='{"tool_calls": [{"name": "add", "arguments": {"a": 40, "b": 2}}]}'),
                Reply(text="42"),
            )
            result = engine.run(Plain, {"question": "what is 40 + 2?"})
        assert result.content == "42"
        assert result.calls[0].value == 42
        first, second = bodies(server)
        assert "tools" not in first
        assert second["messages"][-1]["content"] == "Tool results:\n[call_1_1] add: 42"


def test_a_call_is_decided_once(system: System, tmp_path: Path) -> None:
    """A second decision on the same call is refused, naming the call."""
    with FakeServer("openai", models=["fake-small"]) as server:
        engine = start(system, tmp_path / "o.db", server, "openai")
        server.script(
            Reply(tool_calls=(FakeToolCall("transfer", {"to": "x", "amount": 1}, id="t"),))
        )
        with pytest.raises(RunHaltedError) as halted:
            engine.run(Payout, {"who": "x"})
        run_id = halted.value.run_id
        engine.reject_tool_call(run_id, "t", by="a", message="no")
        with pytest.raises(ApprovalError, match="'t'"):
            engine.approve_tool_call(run_id, "t", by="b")
        assert engine.pending_tool_calls(run_id) == []
        engine.close()


def test_approval_across_process_restarts(tmp_path: Path) -> None:
    """One process halts, a shell approves, a third resumes: the tool runs once, as approved."""
    from tests.support.proc import run_python

    db, ran = tmp_path / "p.db", tmp_path / "transfers.txt"
    env = {"TRANSFERS_FILE": str(ran)}
    with FakeServer("openai", models=["fake-small"]) as server:
        server.script(
            Reply(tool_calls=(FakeToolCall("transfer", {"to": "ana", "amount": 30}, id="p1"),))
        )
        started = run_python(
            "-m", "tests.support.tool_process", server.url, str(db), "start", env=env
        )
        assert started.returncode == 3, started.stderr
        run_id = started.stdout.strip()
        assert not ran.exists()
        approved = run_python(
            "-m", "reactor", "runs", "approve", run_id, "p1", "--db", str(db), "--by", "ana"
        )
        assert approved.returncode == 0, approved.stderr
        server.script(Reply(text="paid ana"))
        resumed = run_python(
            "-m", "tests.support.tool_process", server.url, str(db), "resume", run_id, env=env
        )
        assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["content"] == "paid ana"
    assert ran.read_text() == "ana 30\n"
    assert [(c["decision"], c["decided_by"]) for c in result["calls"]] == [("approved", "ana")]


def test_the_journal_form_of_a_tools_step_round_trips() -> None:
    """A tools step added while running is journaled by its settings and rebuilt the same."""
    from dsl.kinds import ToolsImpl, ToolsKind

    impl = ToolsImpl(
        prompt="p {x}", model="m", allow=("a", "tag:b"), budget_usd=0.5, options={"k": 1}
    )
    kind = ToolsKind()
    data = json.loads(json.dumps(kind.describe(impl)))
    assert kind.rebuild(data) == impl


def test_a_crash_mid_loop_does_not_rerun_journaled_calls(tmp_path: Path) -> None:
    """Killed in turn 2: on resume turn 1's call is not run again; turn 2's unjournaled one is."""
    from tests.support.proc import run_python

    db, ran = tmp_path / "k.db", tmp_path / "diary.txt"
    with FakeServer("openai", models=["fake-small"]) as server:
        server.script(
            Reply(tool_calls=(FakeToolCall("note", {"text": "first"}),)),
            Reply(tool_calls=(FakeToolCall("crash", {}),)),
        )
        env = {"TRANSFERS_FILE": str(ran), "CRASH": "1"}
        died = run_python("-m", "tests.support.tool_process", server.url, str(db), "crash", env=env)
        assert died.returncode == 9, died.stderr
        run_id = died.stdout.strip()
        assert ran.read_text() == "note first\ncrash\n"
        server.script(Reply(text="done"))
        env = {"TRANSFERS_FILE": str(ran)}
        args = ("-m", "tests.support.tool_process", server.url, str(db), "resume", run_id)
        resumed = run_python(*args, env=env)
        assert resumed.returncode == 0, resumed.stderr
    assert ran.read_text() == "note first\ncrash\ncrash\n"
    result = json.loads(resumed.stdout)
    assert result["content"] == "done"
    assert [c["content"] for c in result["calls"]] == ["noted", "survived"]


SEEN: list[Any] = []


class ThenHalt(Reactor):
    """A tools step, then a step that halts once: a resume replays the loop's result."""

    question = Input(str)
    answer = tools("{question}", model="fake-small", allow=["add"], backoff=0)

    @step
    def check(answer: ToolLoopResult) -> str:
        SEEN.append(answer)
        if len(SEEN) == 1:
            return Halt("look first")  # type: ignore[return-value]
        return answer.content


def test_a_replayed_loop_result_is_a_tool_loop_result(system: System, tmp_path: Path) -> None:
    """On resume the completed tools step is not run again; its result decodes to its type."""
    SEEN.clear()
    with FakeServer("openai", models=["fake-small"]) as server:
        engine = start(system, tmp_path / "r.db", server, "openai")
        server.script(Reply(tool_calls=(FakeToolCall("add", {"a": 1, "b": 2}),)), Reply(text="3"))
        with pytest.raises(RunHaltedError) as halted:
            engine.run(ThenHalt, {"question": "q"})
        assert engine.resume(halted.value.run_id).result(10) == "3"
        engine.close()
        assert len(bodies(server)) == 2  # the model was not asked again
    replayed = SEEN[1]
    assert isinstance(replayed, ToolLoopResult)
    assert replayed.calls[0].status is ToolStatus.OK
    assert replayed.calls[0].value == 3


class Auto(Reactor):
    """The default: native tool calling, JSON in the text when the server refuses tools."""

    question = Input(str)
    answer = tools("{question}", model="tiny", allow=["add"], backoff=0)


def test_a_server_that_refuses_tools_gets_the_json_fallback(system: System, tmp_path: Path) -> None:
    """Ollama answers 400 'does not support tools': the loop switches, journals it, goes on."""
    with FakeServer("ollama", models=[FakeModel("tiny", tools=False)]) as server:
        start_host(system, settings(server, "ollama"))
        hosts = {"tiny": "local"}
        with Engine(system, db_path=tmp_path / "a.db", logging=False, hosts=hosts) as engine:
            engine.start_tools(ToolRegistry([add]))
            server.script(
                Reply(text='{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 1}}]}'),
                Reply(text="2"),
            )
            handle = engine.start(Auto, {"question": "1 + 1?"})
            result = handle.result(10)
            records = history(engine.journal, handle.run_id)
        assert result.content == "2"
        assert result.calls[0].value == 2
        sent = bodies(server)
        assert "tools" in sent[0]
        assert all("tools" not in body for body in sent[1:])
        assert [type(r).__name__ for r in records][:2] == ["FallbackChosen", "TurnRecorded"]


THINK = {"thinking": {"type": "enabled", "budget_tokens": 2048}}


class ThinkingPayout(Reactor):
    """A tools step with Anthropic extended thinking on, whose tool needs approval."""

    who = Input(str)
    paid = tools(
        "pay {who}", model="fake-small", allow=["transfer"], max_tokens=4096, options=THINK
    )


def test_thinking_blocks_survive_the_journal_and_an_approval_restart(tmp_path: Path) -> None:
    """Thinking on: the halted turn's signed reasoning is journaled and sent back on resume.

    The Anthropic fake refuses (400) a follow-up whose tool-use turn lacks the reasoning
    blocks it answered with, as the API does.
    """
    db = tmp_path / "think.db"
    TRANSFERS.clear()
    call = FakeToolCall("transfer", {"to": "bo", "amount": 5}, id="pay-2")
    with FakeServer(AnthropicProtocol(redacted_thinking=1), models=["fake-small"]) as server:
        server.script(Reply(reasoning="Bo is owed 5; pay it.", tool_calls=(call,)))
        with System(name="before", default_timeout=5.0) as system:
            engine = start(system, db, server, "anthropic")
            with pytest.raises(RunHaltedError, match="pay-2") as halted:
                engine.run(ThinkingPayout, {"who": "bo"})
            run_id = halted.value.run_id
            engine.close()
        server.script(Reply(reasoning="Paid.", text="paid bo"))
        with System(name="after", default_timeout=5.0) as system:
            engine = start(system, db, server, "anthropic")
            engine.approve_tool_call(run_id, "pay-2", by="ana")
            result = engine.resume(run_id).result(10)
            engine.close()
        first, follow_up = bodies(server)
    assert TRANSFERS == [("bo", 5)]
    assert result.content == "paid bo"
    assert first["thinking"] == THINK["thinking"]
    turn = follow_up["messages"][-2]["content"]
    assert [b["type"] for b in turn] == ["thinking", "redacted_thinking", "tool_use"]
    assert turn[0]["thinking"] == "Bo is owed 5; pay it."
    assert turn[0]["signature"]
