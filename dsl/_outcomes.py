"""What a step, guard or compensation may return besides a plain value.

* A step function returns its result, or :class:`Halt` (pause the run: it can be
  resumed later, and this step runs again then), :class:`Retry` (try this step again,
  counting against ``max_retries``), :class:`Fail` (the step fails with that reason,
  as if it had raised: its ``compensate`` decides, as for Ash's ``{:error, reason}``),
  or :class:`WithSteps` (a result plus new steps that join the graph while it runs).
* A ``guard`` returns ``None`` to let the step run, or :class:`Shortcut` to give the
  step's result without running it (a cache, say).
* A ``compensate`` function decides what a failure means: :class:`Continue` (carry on
  with a substitute result), :class:`Retry`, or :class:`Fail` (``None`` means the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsl.kinds import StepDef

__all__ = ["Continue", "Fail", "Halt", "Retry", "Shortcut", "WithSteps"]


@dataclass(frozen=True, slots=True)
class Halt:
    """Pause the run here; ``resume`` runs this step again later."""

    reason: str = "halted"


@dataclass(frozen=True, slots=True)
class Retry:
    """Run this step again (after its backoff), if it has retries left."""

    reason: str = "retry requested"


@dataclass(frozen=True, slots=True)
class WithSteps:
    """A result, and new steps to add to the running graph.

    The new steps are built with :func:`dsl.step` (``step(fn, name=..., args=...)``);
    their arguments may refer to any input or step, including each other.
    """

    value: Any
    steps: Sequence[StepDef] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Shortcut:
    """From a guard: the step's result, without running it."""

    value: Any


@dataclass(frozen=True, slots=True)
class Continue:
    """From ``compensate``: carry on as if the step had returned ``value``."""

    value: Any


@dataclass(frozen=True, slots=True)
class Fail:
    """The failure stands.

    From ``compensate``, the run rolls back; from ``undo``, it is an undo error; from a
    step itself, the step fails with ``reason`` as if it had raised.
    """

    reason: str | None = None
