"""Quickstart: define an actor, ask it from sync and from async code, see its spans.

Run it with ``.venv/bin/python examples/quickstart.py``.
"""

from __future__ import annotations

import asyncio

import otel
from actors import Actor, Failure, Message, Request, System
from otel.testing import capture_spans


class Greeting(Message, frozen=True, kw_only=True):
    """The answer to :class:`Greet`."""

    text: str


class Greet(Request[Greeting], frozen=True, kw_only=True):
    """Ask for a greeting; ``slowly`` looks the name up with (simulated) I/O first."""

    name: str
    slowly: bool = False


async def look_up_title(name: str) -> str:
    """Stand-in for real I/O (an HTTP call, a database query)."""
    await asyncio.sleep(0.01)
    return "Dr." if name == "Ada" else ""


class Greeter(Actor[Greet]):
    """Answers Greet, at once or after I/O that runs on the system's event loop."""

    def receive(self, message: Greet) -> object:
        """Reply now, or defer the reply until the I/O is done."""
        if not message.slowly:
            return Greeting(text=f"Hello, {message.name}!")
        reply = self.defer_reply()

        def answer(title: str | Failure) -> None:
            if isinstance(title, Failure):
                reply.send(title)
            else:
                reply.send(Greeting(text=f"Hello, {title} {message.name}!".replace("  ", " ")))

        self.pipe_to_self(look_up_title(message.name), answer, name="look_up_title")
        return None


async def from_async_code(system: System) -> str:
    """Asyncio code awaits replies without blocking its loop."""
    greeter = system.lookup("greeter")
    answers = await asyncio.gather(
        greeter.ask_async(Greet(name="Ada", slowly=True)),
        greeter.ask_async(Greet(name="Grace")),
    )
    return " / ".join(a.text for a in answers)


def main() -> None:
    """Start a system, ask from both worlds, print the spans as trees."""
    # trace_actors: each handled message is a span too (the runtime's debugging view).
    with capture_spans(trace_actors=True) as spans, System(name="quickstart") as system:
        greeter = system.spawn(Greeter, name="greeter")
        with otel.tracer().start_as_current_span("sync caller"):
            print("sync: ", greeter.ask(Greet(name="Alan", slowly=True)).text)
        print("async:", asyncio.run(from_async_code(system)))
    print(otel.span_tree(spans.get_finished_spans()))


if __name__ == "__main__":
    main()
