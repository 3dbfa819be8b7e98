"""What goes wrong when a step's work is placed away from the engine.

::

    PlacementError                 a placement cannot run the step (not transient)
    ├── RayNotInstalledError       Ray placement asked for without the ``ray`` extra
    ├── UnknownPlacementError      a placement name the engine was not given
    ├── UnencodableError           an argument or result cannot cross (msgspec's rule)
    └── InfeasibleResourcesError   a step asks for resources no node of the cluster has
    WorkerLostError (AskError)     the process or node running the call died: transient
                                   (kind ``actor_crashed``), so the step's retries apply
"""

from __future__ import annotations

from actors import AskError, Failure, FailureKind

__all__ = [
    "InfeasibleResourcesError",
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


class InfeasibleResourcesError(PlacementError):
    """A step asks for resources that no node of the cluster has: it could never run.

    Checked against the cluster's nodes before the call is sent (unless the ``[ray]``
    configuration's ``check_resources`` is off, as for an autoscaling cluster).

    Attributes:
        step: The step.
        reactor: Its reactor.
        wanted: What one call of it holds (``{"GPU": 64.0, "CPU": 1.0}``).
        missing: Each resource that no single node has enough of, with the most one
            node has (empty: each is somewhere, but no node has all of them).
    """

    def __init__(
        self, reactor: str, step: str, wanted: dict[str, float], missing: dict[str, float]
    ) -> None:
        self.reactor = reactor
        self.step = step
        self.wanted = wanted
        self.missing = missing
        if missing:
            lacks = ", ".join(
                f"{name} (the most one node has: {have:g})" for name, have in missing.items()
            )
            why = f"no node of the cluster has enough {lacks}"
        else:
            why = "the cluster has each of them, but no single node has all of them together"
        super().__init__(
            f"step {step!r} of reactor {reactor!r} asks Ray for {_amounts(wanted)}: {why}; "
            "it would wait for them until its timeout (on an autoscaling cluster, which "
            "adds nodes on demand, turn this check off: [ray] check_resources = false)"
        )


def _amounts(amounts: dict[str, float]) -> str:
    return ", ".join(f"{name}={amount:g}" for name, amount in amounts.items())


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
