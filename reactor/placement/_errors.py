"""What goes wrong when a step's work is placed away from the engine.

::

    PlacementError                 a placement cannot run the step (not transient)
    ├── RayNotInstalledError       Ray placement asked for without the ``ray`` extra
    ├── UnknownPlacementError      a placement name the engine was not given
    └── UnencodableError           an argument or result cannot cross (msgspec's rule)
    WorkerLostError (AskError)     the process or node running the call died: transient
                                   (kind ``actor_crashed``), so the step's retries apply
"""

from __future__ import annotations

from actors import AskError, Failure, FailureKind

__all__ = [
    "PlacementError",
    "RayNotInstalledError",
    "UnencodableError",
    "UnknownPlacementError",
    "WorkerLostError",
]


class PlacementError(Exception):
    """A placement cannot run a step's work; the step fails (it is not retried)."""


class RayNotInstalledError(PlacementError, ImportError):
    """Ray placement was asked for, and Ray is not installed."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"{where} is placed on Ray, but Ray is not installed: pip install 'reactor-swarm[ray]'"
        )


class UnknownPlacementError(PlacementError, LookupError):
    """A step names a placement the engine does not have."""


class UnencodableError(PlacementError, TypeError):
    """An argument or a result cannot cross to or from the cluster.

    Values cross as msgspec encodes them (the journal's rule): Structs, dataclasses,
    pydantic models, dicts, lists, strings, numbers, datetimes, enums, ...

    Attributes:
        step: The step.
        what: ``"argument 'name'"`` or ``"result"``.
    """

    def __init__(self, step: str, what: str, reason: str) -> None:
        super().__init__(
            f"step {step!r} is placed on another machine, and its {what} cannot cross "
            f"there: {reason} (values cross as msgspec encodes them, as in the journal)"
        )
        self.step = step
        self.what = what


class WorkerLostError(AskError):
    """The worker process or node running the step died mid-call: a transient failure."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(
            Failure(
                kind=FailureKind.ACTOR_CRASHED,
                message=f"the Ray worker running step {step!r} was lost: {detail}",
                source="ray",
            )
        )
        self.step = step
