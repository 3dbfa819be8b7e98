"""Supervision: a worker crashes, its supervisor restarts it, the Ref keeps working.

Run it with ``.venv/bin/python examples/supervision.py``.
"""

from __future__ import annotations

import time

import otel
from actors import (
    Actor,
    AskError,
    ChildSpec,
    Message,
    Request,
    Restart,
    Strategy,
    SupervisorSpec,
    System,
)


class Count(Message, frozen=True, kw_only=True):
    """How many requests this incarnation has served."""

    served: int
    incarnation: int


class Work(Request[Count], frozen=True, kw_only=True):
    """Do some work; ``poison`` makes the worker crash."""

    poison: bool = False


class Worker(Actor[Work]):
    """Counts requests; its state starts afresh with every restart."""

    def __init__(self) -> None:
        super().__init__()
        self.served = 0

    def receive(self, message: Work) -> object:
        """Serve, or crash on poison."""
        if message.poison:
            msg = "poisoned request"
            raise ValueError(msg)
        self.served += 1
        return Count(served=self.served, incarnation=self.incarnation)


def main() -> None:
    """Crash a worker and watch it come back under the same name."""
    workers = SupervisorSpec(
        name="workers",
        strategy=Strategy.ONE_FOR_ONE,
        max_restarts=3,  # more than 3 restarts ...
        within=5.0,  # ... within 5 s: stop the children and escalate
        children=[
            ChildSpec(name="worker-1", actor=Worker),
            ChildSpec(name="worker-2", actor=Worker, restart=Restart.TRANSIENT),
        ],
    )
    otel.configure_logging(level="critical")  # the crash is logged; this example prints it
    with System(workers, name="supervision") as system:
        worker = system.lookup("worker-1")
        print("before:", worker.ask(Work()), worker.ask(Work()))
        try:
            worker.ask(Work(poison=True))
        except AskError as exc:
            print("crash: ", exc.failure.kind.value, "-", exc.failure.message)
        while not worker.is_alive():  # the restart takes a moment
            time.sleep(0.01)
        print("after: ", system.lookup("worker-1").ask(Work()))
        for node in system.tree().walk():  # the whole tree: parents, restarts, mailboxes
            print(f"  {node.name} (under {node.parent}): restarts={node.restarts}")


if __name__ == "__main__":
    main()
