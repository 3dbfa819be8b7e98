"""Wiring the application: the :class:`Engine` over a System, a Store and the fleet."""

from reactor.app._compose import (
    compose_swarm,
    load_swarm,
    save_swarm,
    swarm_plan,
    swarm_reactor,
)
from reactor.app._engine import DEFAULT_MAX_DEPTH, Engine, RunHandle, new_run_id
from reactor.app._review import review_reactor

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "Engine",
    "RunHandle",
    "compose_swarm",
    "load_swarm",
    "new_run_id",
    "review_reactor",
    "save_swarm",
    "swarm_plan",
    "swarm_reactor",
]
