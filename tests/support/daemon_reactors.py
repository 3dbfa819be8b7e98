"""Reactors the daemon tests serve, and the tools and task types they use.

A quick reactor, one that waits for a file, one asking a model, one whose tool needs a
human's approval; the ``wait_file`` task type, for workflows that must still be running
when a test stops the daemon.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from actors.llm import Completion
from actors.tools import tool
from dsl import Halt, Input, Reactor, ask, step, tools
from reactor.daemon import Agent, Task, TaskRunner, register_task_handler

TRANSFERS: list[tuple[str, int]] = []
"""What :func:`transfer` did (in the process that serves it)."""


@tool(needs_approval=True, destructive=True)
def transfer(to: str, amount: int) -> str:
    """Send money (needs a human's approval)."""
    TRANSFERS.append((to, amount))
    return f"sent {amount} to {to}"


class Greet(Reactor):
    """Greets someone, in two steps."""

    name = Input(str)
    punctuation = Input(str, default="!")

    @step
    def hello(name: str) -> str:
        return f"hello {name}"

    @step
    def shout(hello: str, punctuation: str) -> str:
        return hello.upper() + punctuation


class Gate(Reactor):
    """Waits until the file ``gate`` names exists (so a test can stop the daemon mid-run)."""

    gate = Input(str)

    @step
    def started(gate: str) -> str:
        return gate

    @step
    def wait(started: str) -> str:
        deadline = time.monotonic() + 60
        while not os.path.exists(started) and time.monotonic() < deadline:
            time.sleep(0.02)
        return Path(started).read_text() if os.path.exists(started) else "gave up"


class Asker(Reactor):
    """One question to the default model."""

    topic = Input(str)
    answer = ask("Say something about {topic}.")

    @step
    def text(answer: Completion) -> str:
        return answer.content


class Approval(Reactor):
    """Halts until the file ``approval`` names exists; resumed, it finishes."""

    approval = Input(str)

    @step
    def check(approval: str) -> str | Halt:
        if not os.path.exists(approval):
            return Halt(f"waiting for {approval}")
        return "approved"

    @step
    def done(check: str) -> str:
        return f"done ({check})"


class Payout(Reactor):
    """A tools step whose tool needs approval: the run halts until a human decides."""

    who = Input(str)
    paid = tools("pay {who}", model="fake-small", allow=["transfer"], backoff=0)


async def wait_file(task: Task, runner: TaskRunner, agent: Agent | None) -> str:
    """A task type: waits (up to a minute) until the file its input names exists; its text.

    It polls on the loop rather than blocking a thread, so that a daemon stopping
    meanwhile is not held up by it (the file is another process's to write).
    """
    path = Path(task.input.strip())
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:  # noqa: ASYNC110, ASYNC240
        await asyncio.sleep(0.02)
    return path.read_text() if path.exists() else "gave up"  # noqa: ASYNC240


register_task_handler("wait_file", wait_file)
