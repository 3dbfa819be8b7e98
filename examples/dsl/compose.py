"""``compose``: run another reactor as one step, and pass it arguments.

A composed reactor's inputs bind by name to the outer reactor's inputs and steps of
the same name; to bind one to something else, give it as a keyword: a source
(``ref("step")``, ``ref("step", "key")``) or a constant (``value(...)``).

Run it with ``.venv/bin/python examples/dsl/compose.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from actors import System
from dsl import Input, Reactor, compose, ref, step, value
from reactor import Engine


class Greet(Reactor, returns="greeting"):
    """The reactor being composed: two inputs, one step."""

    name = Input(str)
    punctuation = Input(str, default=".")

    @step
    def greeting(name: str, punctuation: str) -> str:
        return f"Hello, {name}{punctuation}"


class Welcome(Reactor, returns="both"):
    """Composes Greet twice: once by name, once with arguments given explicitly."""

    name = Input(str)
    guest = Input(dict[str, str])

    # `name` binds to this reactor's input `name`; `punctuation` keeps its default.
    host_greeting = compose(Greet)
    # Arguments given explicitly: a path into an input, and a constant.
    guest_greeting = compose(Greet, name=ref("guest", "first"), punctuation=value("!"))

    @step
    def both(host_greeting: str, guest_greeting: str) -> list[str]:
        return [host_greeting, guest_greeting]


def main() -> None:
    """Run Welcome on a throwaway journal and print its result."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "compose.db")
    with System() as system, Engine(system, db_path=db, logging=False) as engine:
        print(engine.run(Welcome, {"name": "Ada", "guest": {"first": "Grace"}}))


if __name__ == "__main__":
    main()
