"""Where a step's work runs: the engine's process, or a Ray cluster.

A reactor does not change when its steps move. Its steps (or the reactor, with the
``placement`` class keyword) may say where they run, with the resources one call needs
(:class:`~dsl.Placement`: CPUs, GPUs, memory, custom resources, a pool of actors); the
engine may say it for them (``Engine(placement=..., placements={...})`` or the
configuration's ``[placement]`` section). Only the step's code moves: the Run actor,
its journal, retries, timeouts and supervision stay with the engine.

* :class:`StepPlacement`: the interface (``place(call) -> coroutine | None``);
  :class:`LocalPlacement` (the event loop and the worker pool) and
  :class:`RayPlacement` (Ray tasks, or a pool of Ray actors) implement it.
* :class:`Placements`: the engine's choice per step (see its module for the order).
* Errors: :class:`PlacementError`, :class:`InfeasibleResourcesError`,
  :class:`RayNotInstalledError`,
  :class:`UnencodableError`, :class:`UnknownPlacementError`, :class:`WorkerLostError`.

Ray is an optional extra: ``pip install 'reactor-swarm[ray]'``.
"""

from reactor.placement._errors import (
    InfeasibleResourcesError,
    PlacementError,
    RayNotInstalledError,
    UnencodableError,
    UnknownPlacementError,
    WorkerLostError,
)
from reactor.placement._placement import LocalPlacement, PlacedCall, Placements, StepPlacement
from reactor.placement._ray import LOOPBACK_ENV, RayPlacement, loopback_only

__all__ = [
    "LOOPBACK_ENV",
    "InfeasibleResourcesError",
    "LocalPlacement",
    "PlacedCall",
    "PlacementError",
    "Placements",
    "RayNotInstalledError",
    "RayPlacement",
    "StepPlacement",
    "UnencodableError",
    "UnknownPlacementError",
    "WorkerLostError",
    "loopback_only",
]
