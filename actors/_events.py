"""Events the runtime itself publishes on the bus."""

from __future__ import annotations

from actors._messages import Event

__all__ = [
    "ActorCrashed",
    "ActorRestarted",
    "ActorStarted",
    "ActorStopped",
    "SupervisorGaveUp",
]


class ActorStarted(Event, frozen=True, kw_only=True):
    """An actor (or a restarted incarnation of it) began running."""

    name: str
    incarnation: int


class ActorStopped(Event, frozen=True, kw_only=True):
    """An actor stopped without crashing."""

    name: str
    incarnation: int


class ActorCrashed(Event, frozen=True, kw_only=True):
    """An actor's handler raised; the actor stopped and its pending asks were failed."""

    name: str
    incarnation: int
    error: str
    failed_asks: int


class ActorRestarted(Event, frozen=True, kw_only=True):
    """A supervisor restarted a child (``cause`` names the child whose exit caused it)."""

    name: str
    supervisor: str
    cause: str
    restarts_in_window: int


class SupervisorGaveUp(Event, frozen=True, kw_only=True):
    """A supervisor exceeded its restart intensity, stopped its children and escalated."""

    name: str
    max_restarts: int
    within_s: float
    last_error: str
