"""What few users need: the runtime's plumbing under the actors.

* :class:`IoBridge` runs coroutines on the one I/O event loop and hands outcomes back
  (:class:`IoHandle` cancels one);
* :class:`Timers` fires callbacks after a delay on one timer thread
  (:class:`TimerHandle`);
* :class:`DeadLetters` records messages nobody received (:class:`DeadLetter`);
* :func:`message_types` lists every registered message struct, and decoding one that
  does not fit raises :class:`MessageDecodeError`;
* :class:`Supervisor` is the actor a :class:`~actors.SupervisorSpec` starts, and
  :class:`StartChild` asks one to start one more child.
"""

from actors._bridge import IoBridge, IoHandle
from actors._bus import DeadLetter, DeadLetters
from actors._messages import MessageDecodeError, message_types
from actors._supervisor import StartChild, Supervisor
from actors._timers import TimerHandle, Timers

__all__ = [
    "DeadLetter",
    "DeadLetters",
    "IoBridge",
    "IoHandle",
    "MessageDecodeError",
    "StartChild",
    "Supervisor",
    "TimerHandle",
    "Timers",
    "message_types",
]
