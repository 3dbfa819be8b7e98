"""The actor runtime: actors, refs, supervision, the I/O bridge, the event bus.

Every agent, model host, monitor and session in Reactor Swarm is an :class:`Actor`
(a pykka thread with a mailbox) exchanging typed msgspec :class:`Message` structs.
Actors never block: I/O runs on one event loop (:meth:`Actor.pipe_to_self`), and asks
between actors come back as messages (:meth:`Actor.ask`). Every ask has a deadline and
is answered exactly once, with a result or a typed :class:`Failure`.
"""

from actors._actor import Actor, Deferred, Ref
from actors._bridge import IoBridge, IoHandle
from actors._bus import DeadLetter, DeadLetters, EventBus, Subscription
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
from actors._messages import (
    Event,
    Failure,
    FailureKind,
    Message,
    MessageDecodeError,
    Request,
    decode,
    encode,
    message_types,
)
from actors._store import (
    DB_ENV_VAR,
    MIGRATIONS,
    Journal,
    Store,
    StoreError,
    default_db_path,
)
from actors._store_messages import (
    JournalAppend,
    JournalAppended,
    JournalEntries,
    JournalEntry,
    JournalRead,
    StoreRequest,
    StoreStats,
    StoreStatsQuery,
)
from actors._supervisor import (
    ChildInfo,
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    SupervisorSpec,
)
from actors._system import System
from actors._timers import TimerHandle, Timers

__all__ = [
    "DB_ENV_VAR",
    "MIGRATIONS",
    "Actor",
    "ActorCrashed",
    "ActorError",
    "ActorNotFound",
    "ActorRestarted",
    "ActorStarted",
    "ActorStopped",
    "AskError",
    "BlockingCallError",
    "ChildInfo",
    "ChildSpec",
    "DeadLetter",
    "DeadLetters",
    "Deferred",
    "DuplicateActorName",
    "Event",
    "EventBus",
    "Failure",
    "FailureKind",
    "IoBridge",
    "IoHandle",
    "Journal",
    "JournalAppend",
    "JournalAppended",
    "JournalEntries",
    "JournalEntry",
    "JournalRead",
    "Message",
    "MessageDecodeError",
    "Ref",
    "Request",
    "Restart",
    "Store",
    "StoreError",
    "StoreRequest",
    "StoreStats",
    "StoreStatsQuery",
    "Strategy",
    "Subscription",
    "Supervisor",
    "SupervisorGaveUp",
    "SupervisorSpec",
    "System",
    "SystemNotRunning",
    "TimerHandle",
    "Timers",
    "decode",
    "default_db_path",
    "encode",
    "message_types",
]
