"""Where a step's work runs: :class:`Placement`, the value of the ``placement`` option.

A placement is declarative, like the rest of a step: ``"local"`` (the engine's event
loop and worker pool, the default) or ``"ray"`` (a Ray cluster), with the resources
one call needs there. The engine decides the rest (which cluster, how to connect) and
may override a reactor's or a step's placement without the definition changing; see
``reactor.placement``.

A placement is plain data, so a step added while a run runs journals it as an object
and gets it back (:func:`placement_of` accepts that mapping).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LOCAL", "RAY", "Placement", "placement_of"]

LOCAL = "local"
"""The engine's own process: ``async def`` on the event loop, ``def`` in the worker pool."""

RAY = "ray"
"""A Ray cluster (``pip install 'reactor-swarm[ray]'``)."""


def _number(name: str, value: Any, *, integer: bool = False) -> None:
    if value is None:
        return
    wrong_type = isinstance(value, bool) or not isinstance(value, int if integer else int | float)
    if wrong_type or value < 0:
        what = "an int" if integer else "a number"
        msg = f"placement {name} must be {what} >= 0, got {value!r}"
        raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one call of a step runs, and what it needs there.

    Example::

        @step(placement=Placement("ray", num_cpus=2, resources={"scorer": 1}))
        def score(doc: str) -> float: ...

    ``placement="ray"`` is ``Placement("ray")``: one CPU per call, as Ray's tasks get.

    Attributes:
        where: ``"local"``, ``"ray"``, or the name of a placement the engine was given.
        num_cpus: CPUs one call holds on its node (Ray's ``num_cpus``; ``None``: 1).
        num_gpus: GPUs one call holds (fractions share a GPU).
        memory: Bytes of memory one call reserves (Ray's ``memory``, a scheduling hint).
        resources: Custom resources one call holds, e.g. ``{"scorer": 1}``: only nodes
            started with that resource run it.
        actors: ``0``: each call is a Ray task. ``n > 0``: calls go to a pool of ``n``
            Ray actors that live as long as the engine, for steps that keep state or a
            warm model (a module-level cache, a loaded model) between calls.
    """

    where: str = RAY
    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: int | None = None
    resources: Mapping[str, float] = field(default_factory=dict)
    actors: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.where, str) or not self.where.isidentifier():
            msg = (
                f"placement where must be 'local', 'ray' or a placement's name, got {self.where!r}"
            )
            raise ValueError(msg)
        _number("num_cpus", self.num_cpus)
        _number("num_gpus", self.num_gpus)
        _number("memory", self.memory, integer=True)
        actors: Any = self.actors
        if actors is None:
            msg = "placement actors must be an int >= 0, got None"
            raise ValueError(msg)
        _number("actors", actors, integer=True)
        resources: Any = self.resources
        if not isinstance(resources, Mapping):
            msg = f"placement resources must be a mapping of name to amount, got {resources!r}"
            raise ValueError(msg)
        for name, amount in self.resources.items():
            if not isinstance(name, str) or not name:
                msg = f"placement resources: a resource name must be a string, got {name!r}"
                raise ValueError(msg)
            _number(f"resources[{name!r}]", amount)
        object.__setattr__(self, "resources", dict(self.resources))
        if self.where == LOCAL and self.needs():
            msg = (
                "placement 'local' takes no resources (num_cpus, num_gpus, memory, "
                "resources, actors): those are for a cluster placement such as 'ray'"
            )
            raise ValueError(msg)

    def needs(self) -> bool:
        """Whether it asks for anything beyond the default (resources or actors)."""
        return bool(
            self.num_cpus is not None
            or self.num_gpus is not None
            or self.memory is not None
            or self.resources
            or self.actors
        )


def placement_of(given: Any) -> Placement | None:
    """The ``placement`` option bound: ``None``, a name, a :class:`Placement` or its mapping.

    Raises:
        ValueError: Anything else, or a placement whose values are wrong.
    """
    if given is None or isinstance(given, Placement):
        return given
    if isinstance(given, str):
        return Placement(given)
    if isinstance(given, Mapping):
        try:
            return Placement(**given)
        except TypeError as exc:
            msg = f"placement {dict(given)!r}: {exc}"
            raise ValueError(msg) from exc
    msg = f"option 'placement' must be 'local', 'ray' or a Placement(...), got {given!r}"
    raise ValueError(msg)
