"""Virtual actors: activated from stored state on first message, passivated when idle.

Long-lived entities that exist by the thousand (agents, conversations, reasoning
sessions) are addressed by a key whether or not an actor for them is running, in the
manner of Orleans grains:

* :class:`Activations` maps a key to its running loop actor (named
  ``{prefix}{key}#{n}``), starting one (a child of the given supervisor, without a
  round trip) when none runs;
* a :class:`VirtualActor` loads its state with :meth:`VirtualActor.activate` (a
  coroutine on the I/O loop); mail that arrives meanwhile waits in a stash and is
  handled, in order, once the state is there;
* after ``idle_s`` seconds without mail and with no work in flight, it calls
  :meth:`VirtualActor.passivate`, its Activations forgets it, and it stops; the next
  message for its key activates a fresh one. A request that reached the old one while
  it was stopping is answered ``actor_stopped``, and :meth:`Activations.ask_async` (or
  :meth:`Activations.forward`, inside an actor) sends it again to a new activation.

State is expected to be persisted as it changes (an event stream in the Store), so
passivation writes nothing by default: a crash loses nothing that was acknowledged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from actors._actor import Deferred, LoopActor, Ref
from actors._errors import AskError
from actors._messages import Failure, FailureKind, Request
from actors._supervisor import ChildSpec, Restart, start_child

__all__ = ["Activations", "VirtualActor"]

S = TypeVar("S")
R = TypeVar("R")

_RETRIES = 3
"""Times a request is sent again when it met an activation that was passivating."""


class VirtualActor(LoopActor[Any], Generic[S]):
    """A loop actor whose state is loaded on activation and dropped when idle.

    Subclasses implement :meth:`activate` (load the state for ``self.key``) and
    :meth:`handle` (one message, with the state loaded); they call :meth:`busy` /
    :meth:`idle` around work they start (a coroutine piped to themselves) so that they
    are not passivated while it runs.

    Args:
        key: What this actor stands for (an agent's name, a conversation's id).
        idle_s: Seconds without mail after which it passivates (``None``: never).
        on_passivate: Called with the key and the actor's name just before it stops for
            being idle (its :class:`Activations` forgets it then).
    """

    def __init__(
        self,
        key: str,
        idle_s: float | None = 300.0,
        on_passivate: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__()
        self.key = key
        self.idle_s = idle_s
        self.state: S | None = None
        self._on_passivate = on_passivate
        self._stash: list[tuple[Any, Deferred[Any] | None]] = []
        self._last = time.monotonic()
        self._in_flight = 0
        self._gone = False
        self._replying: Deferred[Any] | None = None

    # ---- for subclasses --------------------------------------------------------------

    async def activate(self) -> S:
        """Load this actor's state from the store (runs on the I/O loop)."""
        raise NotImplementedError

    def handle(self, message: Any) -> object:
        """Handle one message with :attr:`state` loaded (like ``receive``)."""
        raise NotImplementedError

    def passivate(self) -> None:
        """Called before the actor stops for being idle; nothing to do by default."""

    def busy(self) -> None:
        """Work is in flight: do not passivate until the matching :meth:`idle`."""
        self._in_flight += 1

    def idle(self) -> None:
        """Work started with :meth:`busy` has finished."""
        self._in_flight = max(0, self._in_flight - 1)
        self._last = time.monotonic()

    # ---- the machinery ---------------------------------------------------------------

    def started(self) -> None:
        """Load the state on the I/O loop; mail waits in the stash until it is there."""
        self.pipe_to_self(self.activate(), self._activated, name=f"activate {self.key}")

    def _activated(self, outcome: S | Failure) -> None:
        if isinstance(outcome, Failure):
            for _, reply in self._stash:
                if reply is not None:
                    reply.send(outcome)
            self._stash.clear()
            self._release()
            return
        self.state = outcome
        stash, self._stash = self._stash, []
        for message, reply in stash:
            self._handle_stashed(message, reply)
        self._arm()

    def receive(self, message: Any) -> object:
        """Stash mail until the state is loaded, then hand each message to :meth:`handle`."""
        self._last = time.monotonic()
        if self.state is None:
            reply = self._take_reply()
            self._stash.append((message, reply))
            return None
        return self.handle(message)

    def _take_reply(self) -> Deferred[Any] | None:
        try:
            return self.defer_reply()
        except RuntimeError:
            return None  # a tell: nobody waits for an answer

    def _handle_stashed(self, message: Any, reply: Deferred[Any] | None) -> None:
        if reply is None:
            self.handle(message)
            return
        self._replying = reply
        try:
            answer = self.handle(message)
        except Exception as exc:  # noqa: BLE001 - the asker gets a typed failure
            reply.fail(FailureKind.SERVER_ERROR, f"{type(exc).__name__}: {exc}")
            return
        finally:
            self._replying = None
        if answer is not None:
            reply.send(answer)

    def reply_slot(self) -> Deferred[Any]:
        """The reply of the request being handled, to answer later (stash-aware)."""
        if self._replying is not None:
            reply, self._replying = self._replying, None
            return reply
        return self.defer_reply()

    def _arm(self) -> None:
        if self.idle_s is not None and not self._gone:
            self.call_later(self.idle_s, self._check_idle, name=f"idle {self.key}")

    def _check_idle(self) -> None:
        if self._gone or self.idle_s is None:
            return
        quiet = time.monotonic() - self._last
        if self._in_flight or quiet < self.idle_s:
            delay = self.idle_s - quiet if not self._in_flight else self.idle_s
            self.call_later(max(delay, 0.001), self._check_idle, name=f"idle {self.key}")
            return
        self.passivate()
        if self._on_passivate is not None:
            self._on_passivate(self.key, self.name)
        self._release()

    def _release(self) -> None:
        """Stop once the mail already here is handled (later requests go elsewhere)."""
        self._gone = True
        self.stop()


class Activations:
    """Keys to running virtual actors: activate on demand, forget on passivation.

    Thread-safe; cheap enough to call per message. Each activation is a ``TEMPORARY``
    child of ``supervisor`` named ``{prefix}{key}``.

    Args:
        supervisor: The supervisor activations are children of.
        actor: The :class:`VirtualActor` subclass.
        prefix: The name prefix (``"agent:"``).
        kwargs: More constructor arguments for every activation.
        idle_s: Seconds idle before an activation passivates (``None``: never).
    """

    def __init__(
        self,
        supervisor: Ref[Any],
        actor: type[VirtualActor[Any]],
        *,
        prefix: str,
        kwargs: Mapping[str, Any] | None = None,
        idle_s: float | None = 300.0,
    ) -> None:
        self.supervisor = supervisor
        self.actor = actor
        self.prefix = prefix
        self.kwargs = dict(kwargs or {})
        self.idle_s = idle_s
        self.activated = 0
        """How many activations were started."""
        self.passivated = 0
        """How many activations passivated."""
        self._lock = threading.Lock()
        self._active: dict[str, Ref[Any]] = {}

    def name(self, key: str) -> str:
        """The name prefix of ``key``'s activations (each adds ``#<n>``)."""
        return f"{self.prefix}{key}"

    def is_active(self, key: str) -> bool:
        """Whether an activation of ``key`` is running now."""
        with self._lock:
            ref = self._active.get(key)
        return ref is not None and ref.is_alive()

    def active(self) -> list[str]:
        """The keys with a running activation."""
        with self._lock:
            return [key for key, ref in self._active.items() if ref.is_alive()]

    def ref(self, key: str) -> Ref[Any]:
        """The running activation of ``key``, started if there is none.

        Each activation has a name of its own (``{prefix}{key}#{n}``), so that a new
        activation never shares a name with one that is still stopping.
        """
        with self._lock:
            ref = self._active.get(key)
            if ref is not None and ref.is_alive():
                return ref
            self.activated += 1
            spec = ChildSpec(
                name=f"{self.name(key)}#{self.activated}",
                actor=self.actor,
                kwargs={
                    "key": key,
                    "idle_s": self.idle_s,
                    "on_passivate": self._passivated,
                    **self.kwargs,
                },
                restart=Restart.TEMPORARY,
            )
            ref = start_child(self.supervisor, spec)
            self._active[key] = ref
            return ref

    def _passivated(self, key: str, name: str) -> None:
        """Forget ``key``'s activation ``name`` (not a newer one), before it stops."""
        with self._lock:
            current = self._active.get(key)
            if current is not None and current.name == name:
                del self._active[key]
            self.passivated += 1

    async def ask_async(self, key: str, message: Request[R], *, timeout: float | None = None) -> R:
        """Ask ``key``'s activation (activating it); sent again if it was passivating."""
        for attempt in range(_RETRIES):
            try:
                answer: R = await self.ref(key).ask_async(message, timeout=timeout)
            except AskError as exc:
                if exc.failure.kind is not FailureKind.ACTOR_STOPPED or attempt == _RETRIES - 1:
                    raise
            else:
                return answer
        raise AssertionError  # pragma: no cover - the loop returns or raises

    def ask(self, key: str, message: Request[R], *, timeout: float | None = None) -> R:
        """:meth:`ask_async` for plain threads."""
        for attempt in range(_RETRIES):
            try:
                answer: R = self.ref(key).ask(message, timeout=timeout)
            except AskError as exc:
                if exc.failure.kind is not FailureKind.ACTOR_STOPPED or attempt == _RETRIES - 1:
                    raise
            else:
                return answer
        raise AssertionError  # pragma: no cover - the loop returns or raises

    def forward(
        self,
        asker: LoopActor[Any],
        key: str,
        message: Request[Any],
        then: Callable[[Any], object],
        *,
        timeout: float | None = None,
    ) -> None:
        """Inside an actor: ask ``key``'s activation; ``then(answer)`` on ``asker``'s turn."""

        def answered(answer: Any, tries: int = 1) -> None:
            if (
                isinstance(answer, Failure)
                and answer.kind is FailureKind.ACTOR_STOPPED
                and tries < _RETRIES
            ):
                asker.ask(self.ref(key), message, lambda a: answered(a, tries + 1), timeout=timeout)
                return
            then(answer)

        asker.ask(self.ref(key), message, answered, timeout=timeout)
