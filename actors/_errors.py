"""Exceptions raised by the actor runtime to the code that calls it.

Inside the system, failures travel as :class:`~actors.Failure` values. They become
exceptions only at the edge, where sync or async code called :meth:`Ref.ask`::

    ActorError                 base of everything raised here
    ├── AskError               an ask was answered with a Failure (``.failure``)
    ├── ActorNotFound          no actor is registered under that name
    ├── DuplicateActorName     a second actor asked for a name already taken
    ├── BlockingCallError      a blocking call made from an actor or the I/O loop
    └── SystemNotRunning       the System was used before start() or after stop()
"""

from __future__ import annotations

from actors._messages import Failure, FailureKind

__all__ = [
    "ActorError",
    "ActorNotFound",
    "AskError",
    "BlockingCallError",
    "DuplicateActorName",
    "SystemNotRunning",
]


class ActorError(Exception):
    """Base of every exception the actor runtime raises."""


class AskError(ActorError):
    """An ask was answered with a failure instead of a result.

    Attributes:
        failure: The typed failure; ``failure.kind`` says what went wrong.
    """

    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure

    @property
    def kind(self) -> FailureKind:
        """Shortcut for ``failure.kind``."""
        return self.failure.kind


class ActorNotFound(ActorError, LookupError):  # noqa: N818 - reads as a statement
    """No actor is registered under the name that was looked up."""


class DuplicateActorName(ActorError, ValueError):  # noqa: N818
    """An actor was started under a name another actor already holds."""


class BlockingCallError(ActorError, RuntimeError):
    """A blocking call was made where blocking would stall the system.

    An actor's handler must not wait for another actor (use ``self.ask(..., then=...)``)
    and the I/O loop must not wait at all (use ``await ref.ask_async(...)``).
    """


class SystemNotRunning(ActorError, RuntimeError):  # noqa: N818
    """The System was used before ``start()`` or after ``stop()``."""
