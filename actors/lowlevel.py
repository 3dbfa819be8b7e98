"""What few users need: the runtime's plumbing under the actors.

* :class:`IoBridge` runs coroutines on the one I/O event loop and hands outcomes back
  (:class:`IoHandle` cancels one);
* :class:`Timers` fires callbacks after a delay on one timer thread
  (:class:`TimerHandle`);
* :class:`DeadLetters` records messages nobody received (:class:`DeadLetter`);
* :func:`message_types` lists every registered message struct, and decoding one that
  does not fit raises :class:`MessageDecodeError`;
* :class:`Supervisor` is the actor a :class:`~actors.SupervisorSpec` starts, and
  :class:`StartChild` asks one to start one more child (and waits for it);
  :func:`start_child` starts one on the calling thread and has the supervisor adopt it
  (no round trip: for children started by the thousand, such as runs);
* :func:`mailbox_depth` reads how many messages wait for an actor, without asking it
  (what :meth:`System.tree <actors.System.tree>` reports per actor);
* :class:`LoopScheduler` is the run queue of the actors that take turns on the loop;
* :func:`handoff_for` gives an event loop's :class:`Handoff`, which runs calls from
  other threads on that loop with one wake-up per batch;
* :func:`check_may_block` raises :class:`~actors.BlockingCallError` at once when a
  blocking call is made where it must not wait (an actor, the I/O loop, any running
  event loop): the guard every sync entry point (``System.start``, ``start_fleet``,
  ``Engine``) runs first;
* :class:`Reply` is the base of the reply slot every ask carries
  (``Ref.send_request``): a router that handles an answer where it arrives, rather
  than in its next turn, subclasses it;
* :class:`VirtualActor` and :class:`Activations`: virtual actors (agents, conversations,
  sessions) activated from stored state on first message and passivated when idle.
"""

from actors._bridge import IoBridge, IoHandle
from actors._bus import DeadLetter, DeadLetters
from actors._handoff import Handoff, handoff_for
from actors._local import check_may_block
from actors._loop import LoopScheduler
from actors._messages import MessageDecodeError, message_types
from actors._reply import Reply
from actors._supervisor import StartChild, Supervisor, mailbox_depth, start_child
from actors._timers import TimerHandle, Timers
from actors._virtual import Activations, VirtualActor

__all__ = [
    "Activations",
    "DeadLetter",
    "DeadLetters",
    "Handoff",
    "IoBridge",
    "IoHandle",
    "LoopScheduler",
    "MessageDecodeError",
    "Reply",
    "StartChild",
    "Supervisor",
    "TimerHandle",
    "Timers",
    "VirtualActor",
    "check_may_block",
    "handoff_for",
    "mailbox_depth",
    "message_types",
    "start_child",
]
