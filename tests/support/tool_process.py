"""A process that runs a ``tools`` step to its approval halt, or resumes it: for restart tests.

``python -m tests.support.tool_process URL DB start`` runs :class:`Payout` against the
model server at URL, journaled in DB, and prints the run id when it halts (exit 3);
``... URL DB resume RUN_ID`` resumes it (or any run) and prints the result as JSON;
``... URL DB crash`` starts :class:`Diary`, whose second turn kills the process when
``$CRASH`` is set. The tools append a line to the file named by ``$TRANSFERS_FILE``:
what ran, and how often.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import msgspec

import otel
from actors import System
from actors.llm import HostConfig, ModelHost
from actors.tools import ToolRegistry, tool
from dsl import Input, Reactor, tools
from reactor.app import Engine
from reactor.run import RunHaltedError


@tool(needs_approval=True, destructive=True)
def transfer(to: str, amount: int) -> str:
    """Send money."""
    with Path(os.environ["TRANSFERS_FILE"]).open("a") as out:
        out.write(f"{to} {amount}\n")
    return f"sent {amount} to {to}"


@tool
def note(text: str) -> str:
    """Write a line in the diary (a side effect that must not happen twice)."""
    with Path(os.environ["TRANSFERS_FILE"]).open("a") as out:
        out.write(f"note {text}\n")
    return "noted"


@tool
def crash() -> str:
    """Kill this process when $CRASH is set (a crash in the middle of a loop)."""
    with Path(os.environ["TRANSFERS_FILE"]).open("a") as out:
        out.write("crash\n")
    if os.environ.get("CRASH"):
        os._exit(9)
    return "survived"


class Diary(Reactor):
    """A loop whose second turn's tool kills the process (when $CRASH is set)."""

    topic = Input(str)
    entry = tools("write about {topic}", model="fake-small", allow=["note", "crash"], backoff=0)


class Payout(Reactor):
    """A step whose tool needs a human's approval."""

    who = Input(str)
    paid = tools("pay {who}", model="fake-small", allow=["transfer"], backoff=0)


def main(argv: list[str]) -> int:
    """Start or resume; see the module docstring."""
    url, db, mode = argv[:3]
    otel.configure_logging(level="error")
    with System(name="tool-process", default_timeout=10.0) as system:
        system.spawn(ModelHost, name="local", args=(HostConfig(url=url, protocol="openai"),))
        with Engine(system, db_path=db, logging=False, hosts={"fake-small": "local"}) as engine:
            engine.start_tools(ToolRegistry([transfer, note, crash]))
            if mode == "crash":
                handle = engine.start(Diary, {"topic": "tea"})
                print(handle.run_id, flush=True)
                handle.result(30)  # the process dies before this returns
                return 1
            if mode == "start":
                try:
                    engine.run(Payout, {"who": "ana"})
                except RunHaltedError as halted:
                    print(halted.run_id)
                    return 3
                return 0
            result = engine.resume(argv[3]).result(30)
            print(json.dumps(msgspec.to_builtins(result)))
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
