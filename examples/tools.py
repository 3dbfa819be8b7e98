"""Tools: a model calls your Python functions, under a policy, with a human in the loop.

Offline: a fake OpenAI-compatible server plays the model (its answers are scripted, so
you can see every path), and a real ModelHost, ToolRunner, Store and run journal do the
rest. The reactor's ``tools`` step asks the model, runs the tool calls it makes
(validated, concurrent, audited, traced), sends the results back, and goes on until the
model answers. One tool needs approval: the run halts, a human approves, the run resumes
and the call runs with exactly the arguments that were approved.

Run it with ``.venv/bin/python examples/tools.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import Field

import otel
from actors import System
from actors.llm import HostConfig, ModelHost
from actors.testing import FakeServer, FakeToolCall, Reply
from actors.tools import FlushAudit, Policy, Rule, ToolRegistry, query_audit, tool
from dsl import Input, Reactor, tools
from reactor.app import Engine
from reactor.run import RunHaltedError

STOCK = {"tea-100g": 12, "mug": 0}


@tool(read_only=True, tags={"shop"})
def stock(sku: str = Field(pattern=r"^[a-z0-9-]+$")) -> int:
    """How many of an item are in stock.

    Args:
        sku: The item's stock-keeping unit, e.g. tea-100g.
    """
    return STOCK.get(sku, 0)


@tool(tags={"shop"}, needs_approval=True, destructive=True)
def refund(order: str, amount_eur: float = Field(gt=0, le=500)) -> str:
    """Refund part of an order (a human approves every refund).

    Args:
        order: The order number.
        amount_eur: How much, in euros.
    """
    return f"refunded {amount_eur:.2f} EUR on {order}"


class Support(Reactor):
    """A support agent: it may look at stock and ask for refunds, nothing else."""

    message = Input(str)
    reply = tools(
        "A customer writes: {message}",
        model="fake-small",
        system="You help customers of a tea shop. Be brief.",
        allow=["tag:shop"],
        max_turns=5,
    )


def script(server: FakeServer) -> None:
    """What the fake model answers, in order (a real model decides this itself)."""
    server.script(
        # turn 1: two calls at once; the second has a bad argument, the model will hear why
        Reply(
            tool_calls=(
                FakeToolCall("stock", {"sku": "tea-100g"}),
                FakeToolCall("stock", {"sku": "Mug!"}),
            )
        ),
        # turn 2: it corrects itself and asks for a refund (which needs approval)
        Reply(
            tool_calls=(
                FakeToolCall("stock", {"sku": "mug"}),
                FakeToolCall("refund", {"order": "A-17", "amount_eur": 9.0}, id="refund-1"),
            )
        ),
        # turn 3, after approval: the answer
        Reply(text="Tea is in stock (12). Mugs are sold out, so I refunded 9.00 EUR on A-17."),
    )


def main() -> None:
    """Run, halt for the refund, approve it, resume; print the answer and the audit log."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "tools.db")
    otel.configure_logging(level="warning")
    registry = ToolRegistry([stock, refund])
    policy = Policy([Rule(deny=["refund"], identity="guest-*", name="guests cannot refund")])
    with FakeServer("openai", models=["fake-small"]) as server, System() as system:
        system.spawn(ModelHost, name="local", args=(HostConfig(url=server.url, protocol="openai"),))
        with Engine(system, db_path=db, logging=False, hosts={"fake-small": "local"}) as engine:
            engine.start_tools(registry, policy=policy)
            script(server)
            try:
                engine.run(Support, {"message": "Is the tea in stock? My mug arrived broken."})
            except RunHaltedError as halted:
                print("halted:", halted.reason)
                for step, call in engine.pending_tool_calls(halted.run_id):
                    print(f"  pending in {step}: {call.name}({call.arguments})")
                engine.approve_tool_call(halted.run_id, "refund-1", by="maria")
                result = engine.resume(halted.run_id).result(30)
            print("reply:", result.content)
            for outcome in result.calls:
                print(f"  {outcome.name}: {outcome.status} {outcome.content[:70]}")
            system.lookup("tools").ask(FlushAudit())
    print("audit log (newest first):")
    for record in query_audit(db):
        who = f" by {record.decided_by}" if record.decided_by else ""
        print(
            f"  {record.tool} {record.arguments} -> {record.decision or '-'}{who}, {record.outcome}"
        )


if __name__ == "__main__":
    main()
