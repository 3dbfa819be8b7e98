"""The actor runtime: actors, refs, supervision, the system, messages and failures.

Every agent, model host, monitor and session in Reactor Swarm is an :class:`Actor`
exchanging typed msgspec :class:`Message` structs, one message at a time. An actor owns
a thread, unless it is a :class:`LoopActor`: those take turns on the one I/O loop, so
thousands of them (runs, sessions) cost no thread each. Actors never
block: I/O runs on one event loop (:meth:`Actor.pipe_to_self`), and asks between actors
come back as messages (:meth:`Actor.ask`). Every ask has a deadline and is answered
exactly once, with a result or a typed :class:`Failure`. A :class:`System` starts actors
under :class:`Supervisor` trees (one_for_one, one_for_all, rest_for_one).

This is what a user writes actor code with. The rest lives in subpackages:

* :mod:`actors.lowlevel`: the I/O bridge, timers, dead letters, message registry;
* :mod:`actors.store`: the SQLite Store actor and the run journal;
* :mod:`actors.llm`: model hosts, wire protocols, breakers, discovery, the fleet
  (:mod:`actors.llm.resources` for GPUs and admission);
* :mod:`actors.sessions`: collaborative reasoning sessions (virtual actors, FTS5 search);
* :mod:`actors.testing`: fake LLM servers for offline use and tests.
"""

from actors._actor import Actor, Deferred, LoopActor, Ref
from actors._bus import EventBus, Subscription
from actors._errors import (
    ActorError,
    ActorNotFound,
    AskError,
    BlockingCallError,
    DuplicateActorName,
    SystemNotRunning,
)
from actors._events import (
    ActorCrashed,
    ActorRestarted,
    ActorStarted,
    ActorStopped,
    SupervisorGaveUp,
)
from actors._messages import Event, Failure, FailureKind, Message, Request, decode, encode
from actors._supervisor import (
    ChildInfo,
    ChildSpec,
    Restart,
    Strategy,
    SupervisorSpec,
)
from actors._system import System
from actors._tree import ActorNode

__all__ = [
    "Actor",
    "ActorCrashed",
    "ActorError",
    "ActorNode",
    "ActorNotFound",
    "ActorRestarted",
    "ActorStarted",
    "ActorStopped",
    "AskError",
    "BlockingCallError",
    "ChildInfo",
    "ChildSpec",
    "Deferred",
    "DuplicateActorName",
    "Event",
    "EventBus",
    "Failure",
    "FailureKind",
    "LoopActor",
    "Message",
    "Ref",
    "Request",
    "Restart",
    "Strategy",
    "Subscription",
    "SupervisorGaveUp",
    "SupervisorSpec",
    "System",
    "SystemNotRunning",
    "decode",
    "encode",
]
