"""The supervision tree as data: every actor, its parent, restarts and mailbox depth.

:meth:`System.tree <actors.System.tree>` (and ``tree_async``) asks the root supervisor
which children it has, then each child supervisor in turn, and returns one
:class:`ActorNode` per actor, nested as supervised. What each supervisor says is a
snapshot of the moment it was asked: an actor that starts or stops meanwhile may show
under one walk and not the next. A supervisor with more than ``max_children``
children (the run actors, by the thousand) lists the first ones and counts the rest in
``more``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors._errors import ActorNotFound, AskError
from actors._supervisor import ChildInfo, Restart

__all__ = ["ActorNode", "build_tree", "build_tree_async"]


@dataclass(frozen=True, slots=True)
class ActorNode:
    """One actor in the supervision tree.

    Attributes:
        name: Its name (the root is ``<system>.root``).
        parent: Its supervisor's name (``None`` for the root).
        supervisor: Whether it supervises others.
        running: Whether its current incarnation runs.
        restarts: How many times its supervisor restarted it.
        mailbox: Messages waiting in its mailbox when its supervisor was asked.
        on_loop: Whether it runs on the I/O loop (else on a thread of its own).
        restart: Its restart type.
        children: What it supervises, in start order (at most ``max_children``).
        more: How many more children it has than ``children`` lists.
        error: Why its children could not be listed (it did not answer in time).
    """

    name: str
    parent: str | None
    supervisor: bool
    running: bool
    restarts: int = 0
    mailbox: int = 0
    on_loop: bool = False
    restart: Restart = Restart.PERMANENT
    children: tuple[ActorNode, ...] = field(default=())
    more: int = 0
    error: str | None = None

    def walk(self) -> list[ActorNode]:
        """This node and every node below it, depth first."""
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes

    def find(self, name: str) -> ActorNode | None:
        """The node named ``name`` in this subtree, or ``None``."""
        return next((n for n in self.walk() if n.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The node and its children as plain JSON values."""
        return {
            "name": self.name,
            "parent": self.parent,
            "supervisor": self.supervisor,
            "running": self.running,
            "restarts": self.restarts,
            "mailbox": self.mailbox,
            "on_loop": self.on_loop,
            "restart": self.restart.value,
            "children": [c.to_dict() for c in self.children],
            "more": self.more,
            "error": self.error,
        }


Ask = Callable[[str], Sequence[ChildInfo]]
AskAsync = Callable[[str], Awaitable[Sequence[ChildInfo]]]


def _node(
    info: ChildInfo,
    parent: str | None,
    children: Sequence[ActorNode] = (),
    more: int = 0,
    error: str | None = None,
) -> ActorNode:
    return ActorNode(
        name=info.name,
        parent=parent,
        supervisor=info.supervisor,
        running=info.running,
        restarts=info.restarts,
        mailbox=info.mailbox,
        on_loop=info.on_loop,
        restart=info.restart,
        children=tuple(children),
        more=more,
        error=error,
    )


def build_tree(
    info: ChildInfo, ask: Ask, max_children: int, parent: str | None = None
) -> ActorNode:
    """The tree under ``info``, asking each running supervisor for its children."""
    if not (info.supervisor and info.running):
        return _node(info, parent)
    try:
        infos = list(ask(info.name))
    except (AskError, ActorNotFound) as exc:
        return _node(info, parent, error=str(exc))
    children = [build_tree(i, ask, max_children, info.name) for i in infos[:max_children]]
    return _node(info, parent, children, max(0, len(infos) - max_children))


async def build_tree_async(
    info: ChildInfo, ask: AskAsync, max_children: int, parent: str | None = None
) -> ActorNode:
    """:func:`build_tree` for asyncio code."""
    if not (info.supervisor and info.running):
        return _node(info, parent)
    try:
        infos = list(await ask(info.name))
    except (AskError, ActorNotFound) as exc:
        return _node(info, parent, error=str(exc))
    children = [
        await build_tree_async(i, ask, max_children, info.name) for i in infos[:max_children]
    ]
    return _node(info, parent, children, max(0, len(infos) - max_children))
