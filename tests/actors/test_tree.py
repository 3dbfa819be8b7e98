"""The supervision tree as data: parents, restarts, mailbox depth, loop actors, truncation."""

from __future__ import annotations

import asyncio
import queue
import threading

import pytest

from actors import (
    ActorNode,
    ActorRestarted,
    AskError,
    ChildSpec,
    LoopActor,
    Restart,
    SupervisorSpec,
    System,
)
from actors.lowlevel import mailbox_depth
from tests.support.actors import Block, Crash, Echo, Gated, Ping, Pong


class OnLoop(LoopActor[Ping]):
    """Answers Ping on the I/O loop."""

    def receive(self, message: Ping) -> object:
        """Answer."""
        return Pong(n=message.n + 1, by=self.name)


def test_tree_nests_supervisors_and_counts_restarts_and_mail() -> None:
    """Parent links, restarts after a crash, waiting mail of a busy actor, loop actors."""
    gate = threading.Event()
    blocked = threading.Event()
    handled: list[int] = []
    team = SupervisorSpec(
        name="team",
        children=[
            ChildSpec(name="gated", actor=Gated, args=(gate, handled, blocked)),
            ChildSpec(name="looped", actor=OnLoop),
        ],
    )
    with System(ChildSpec(name="echo", actor=Echo), team, name="t") as system:
        restarts: queue.Queue[ActorRestarted] = queue.Queue()
        system.bus.subscribe(ActorRestarted, restarts)
        with pytest.raises(AskError):
            system.lookup("echo").ask(Crash())
        assert restarts.get(timeout=10).name == "echo"
        gated = system.lookup("gated")
        gated.tell(Block())
        assert blocked.wait(10)  # the Block is being handled: the mailbox holds only Pings
        for n in range(5):
            gated.tell(Ping(n=n))
        tree = system.tree()
        assert tree.name == "t.root"
        assert tree.parent is None
        assert [c.name for c in tree.children] == ["echo", "team"]
        echo = tree.find("echo")
        assert echo is not None
        assert (echo.parent, echo.restarts, echo.supervisor) == ("t.root", 1, False)
        node = tree.find("gated")
        assert node is not None
        assert node.parent == "team"
        assert node.mailbox == 5  # the Pings wait behind the Block
        assert node.mailbox == mailbox_depth(gated)
        looped = tree.find("looped")
        assert looped is not None
        assert (looped.on_loop, looped.mailbox, looped.restart) == (True, 0, Restart.PERMANENT)
        team_node = tree.find("team")
        assert team_node is not None
        assert team_node.supervisor
        assert [c.name for c in team_node.children] == ["gated", "looped"]
        assert {n.name for n in tree.walk()} == {"t.root", "echo", "team", "gated", "looped"}
        gate.set()
        assert gated.ask(Ping(n=9)).n == 10
        assert system.tree().find("gated") == ActorNode(
            name="gated", parent="team", supervisor=False, running=True
        )
        as_json = tree.to_dict()
        assert as_json["children"][1]["children"][0]["mailbox"] == node.mailbox


def test_tree_lists_at_most_max_children_and_counts_the_rest() -> None:
    """A supervisor of many: the first ``max_children`` listed, the rest in ``more``."""
    many = SupervisorSpec(
        name="many",
        children=[ChildSpec(name=f"e{i}", actor=OnLoop) for i in range(7)],
    )
    with System(many, name="m") as system:
        node = system.tree(max_children=3).find("many")
        assert node is not None
        assert [c.name for c in node.children] == ["e0", "e1", "e2"]
        assert node.more == 4


def test_tree_async_on_the_loop() -> None:
    """``tree_async`` awaits each supervisor; the sync one refuses to block the loop."""

    async def main() -> None:
        async with System(ChildSpec(name="echo", actor=Echo), name="a") as system:
            tree = await system.tree_async()
            assert [c.name for c in tree.children] == ["echo"]
            with pytest.raises(Exception, match="tree_async|block"):
                system.tree()

    asyncio.run(main())
