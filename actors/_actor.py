"""Actors and the refs that address them.

An :class:`Actor` is a pykka ``ThreadingActor``: one thread, one mailbox, one message at
a time. A :class:`LoopActor` is the same actor without a thread: it takes turns on the
I/O loop with every other loop actor (see ``actors._loop``), for actors that exist in
thousands (runs, sessions, agents). Subclasses implement :meth:`Actor.receive`,
matching on the message type; the value it returns answers an ask. Three tools keep a
handler from ever blocking:

* :meth:`Actor.pipe_to_self` runs a coroutine on the I/O loop and hands its outcome
  back to a callback on the actor's own thread (for a loop actor: its next turn);
* :meth:`Actor.ask` asks another actor and hands the answer back the same way;
* :meth:`Actor.defer_reply` takes the current request's reply slot so the answer can
  be sent later, from one of those callbacks.

A handler that raises crashes the actor ("let it crash"): the current ask, every
deferred reply and every ask still in the mailbox are answered with an
``actor_crashed`` failure, the actor's I/O is cancelled, and its supervisor decides
whether to restart it. A :class:`Ref` survives restarts: it always points at the
current incarnation.

Tracing: a message carries its sender's trace context, and its handler runs in that
context, so the spans a handler makes (an LLM call's ``chat {model}``) join the trace
that caused them. The messages themselves are not spans: the runtime's bookkeeping
(journal flushes, store commits, supervision, timers, replies) would bury a run's
trace. ``otel.configure_tracing(trace_actors=True)`` (or ``REACTOR_TRACE_ACTORS=1``)
makes each message a CONSUMER span ``{ActorClass} {Message}``, the child of its
sender's span, for debugging the runtime; a message that belongs to no trace is not
a span even then.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar, cast, final, overload

import msgspec
import pykka
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from pykka.messages import _ActorStop

import otel
from actors._bridge import IoBridge, IoHandle
from actors._errors import AskError
from actors._events import ActorCrashed, ActorStarted, ActorStopped
from actors._local import check_may_block, forbid_blocking
from actors._loop import TURN, Mailbox
from actors._messages import Failure, FailureKind, Message, Request
from actors._reply import ActorReply, AsyncReply, Callback, Reply, SyncReply, post
from actors._tb import plain_traceback
from otel import tracing_state as _tracing

if TYPE_CHECKING:
    from pykka._envelope import Envelope

    from actors._runtime import Runtime
    from actors._timers import TimerHandle

__all__ = ["Actor", "Deferred", "LoopActor", "Ref"]

M = TypeVar("M")
R = TypeVar("R")
T = TypeVar("T")

_log = structlog.get_logger("actors")


class _LoopActorRef(pykka.ActorRef[Any]):
    """pykka's ref to a loop actor, without a weak reference of its own.

    Its mailbox refers to the actor already (and the ref to the mailbox), so a weak
    reference would keep nothing from living longer; it would be one more object per
    actor for the garbage collector to walk.
    """

    def __init__(self, actor: Actor[Any]) -> None:  # pykka's, without its weakref
        mailbox = actor._mailbox
        assert mailbox is not None  # only loop actors have one
        self.actor_class = type(actor)
        self.actor_urn = actor.actor_urn
        self.actor_inbox = mailbox
        self.actor_stopped = actor.actor_stopped

    def _actor_weakref(self) -> Any:  # type: ignore[override]
        """What pykka's proxies read: the actor (``weakref.ref``'s call)."""
        return cast("Mailbox", self.actor_inbox)._actor


class _Request:
    """Mailbox item for an ask: the message and where its answer goes.

    To an actor on the loop it is its own envelope (``message`` is itself, no pykka
    future waits for it): one object per ask instead of two.
    """

    __slots__ = ("reply", "request")

    reply_to = None
    """As a mailbox item: no pykka future waits for it."""

    def __init__(self, request: object, reply: Reply) -> None:
        self.request = request
        self.reply = reply

    @property
    def message(self) -> _Request:
        """As a mailbox item: itself."""
        return self


class ChildExited:
    """Mailbox item a supervisor receives when one of its children stops."""

    __slots__ = ("crashed", "error", "incarnation", "name")

    def __init__(self, name: str, incarnation: int, *, crashed: bool, error: str) -> None:
        self.name = name
        self.incarnation = incarnation
        self.crashed = crashed
        self.error = error


class _Binding(threading.local):
    """Who the actor being constructed on this thread is (set by its supervisor).

    ``(name, runtime, supervisor, incarnation, on_loop)``.
    """

    def __init__(self) -> None:
        self.current: tuple[str, Runtime, pykka.ActorRef[Any] | None, int, bool] | None = None


binding = _Binding()


class Ref(Generic[M]):
    """The handle to a named actor, stable across restarts.

    ``tell`` sends one-way; ``ask`` (blocking, for plain threads) and ``ask_async``
    (for asyncio code) send a request and return its answer, raising
    :class:`~actors.AskError` when the answer is a failure. Every ask has a deadline:
    the message's own ``deadline``, else ``timeout``, else the system default.
    """

    __slots__ = ("_rt", "_target", "name")

    def __init__(self, name: str, runtime: Runtime) -> None:
        self.name = name
        self._rt = runtime
        self._target: pykka.ActorRef[Any] | None = None

    def __repr__(self) -> str:
        state = "alive" if self.is_alive() else "not running"
        return f"<Ref {self.name!r} ({state})>"

    def is_alive(self) -> bool:
        """Whether the current incarnation is running."""
        target = self._target
        return target is not None and target.is_alive()

    def tell(self, message: M) -> None:
        """Send a one-way message; if the actor is not running it becomes a dead letter."""
        if not self.tell_if_alive(message):
            self._rt.dead_letters.record(self.name, message)

    def tell_if_alive(self, message: object) -> bool:
        """Send a one-way message; return False (recording nothing) if none is running."""
        if isinstance(message, Message) and message.trace is None and _tracing.tracer is not None:
            message = msgspec.structs.replace(message, trace=otel.inject())
        target = self._target
        if target is None:
            return False
        try:
            target.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    @overload
    def ask(self, message: Request[R], *, timeout: float | None = None) -> R: ...
    @overload
    def ask(self, message: object, *, timeout: float | None = None) -> Any: ...
    def ask(self, message: object, *, timeout: float | None = None) -> Any:
        """Send a request and block until its answer (for threads outside the system).

        Raises:
            AskError: The answer is a failure (``timeout``, ``actor_crashed``, ...).
            BlockingCallError: Called from an actor's thread or the I/O loop.
        """
        check_may_block(f"{self.name}.ask()")
        message, remaining = self._stamp(message, timeout)
        reply = SyncReply()
        self.send_request(message, reply)
        value = reply.wait(remaining, lambda: self._timeout(message, remaining))
        if type(value) is Failure:
            raise AskError(value)
        return value

    @overload
    async def ask_async(self, message: Request[R], *, timeout: float | None = None) -> R: ...
    @overload
    async def ask_async(self, message: object, *, timeout: float | None = None) -> Any: ...
    async def ask_async(self, message: object, *, timeout: float | None = None) -> Any:
        """Send a request and await its answer without blocking the event loop.

        Raises:
            AskError: The answer is a failure (``timeout``, ``actor_crashed``, ...).
        """
        import asyncio  # noqa: PLC0415 - only async callers pay for the lookup

        message, remaining = self._stamp(message, timeout)
        loop = asyncio.get_running_loop()
        reply = AsyncReply(loop)
        self.send_request(message, reply)
        reply.expires(self, message, remaining)  # what its deadline answers (no closure)
        rt = self._rt
        # On the system's own I/O loop the deadline is a loop timer (an append to its
        # bucket), not a push onto asyncio's heap. The future is awaited here, not in a
        # coroutine of the reply's: one frame less to resume.
        future = reply.arm(remaining, rt.loop_timers if loop is rt.bridge.loop else None)
        try:
            value = await future
        finally:
            reply.disarm()
        if type(value) is Failure:
            raise AskError(value)
        return value

    def send_request(self, message: object, reply: Reply) -> None:
        """Put a request in the mailbox; answer ``actor_stopped`` if nobody is running."""
        target = self._target
        try:
            if target is None:
                raise pykka.ActorDeadError(self.name)
            item = _Request(message, reply)
            posted = post(target, item)  # to a loop actor: the request is its own envelope
            if posted is None:
                target.tell(item)
            elif not posted:
                raise pykka.ActorDeadError(self.name)
        except pykka.ActorDeadError:
            self._rt.dead_letters.record(self.name, message)
            reply.resolve(
                Failure(
                    kind=FailureKind.ACTOR_STOPPED,
                    message=f"actor {self.name!r} is not running; "
                    f"{type(message).__name__} was not delivered",
                    source=self.name,
                )
            )

    def _stamp(self, message: Any, timeout: float | None) -> tuple[Any, float]:
        """Give the message a deadline (and the trace context); return the time left.

        Plain objects (the runtime's own in-process messages) carry no fields, so only
        the time left is computed for them.
        """
        now = time.time()
        if not isinstance(message, Message):
            return message, timeout if timeout is not None else self._rt.default_timeout
        deadline = message.deadline
        if deadline is None:
            deadline = now + (timeout if timeout is not None else self._rt.default_timeout)
            if _tracing.tracer is not None and message.trace is None:
                message = msgspec.structs.replace(message, deadline=deadline, trace=otel.inject())
            else:
                message = msgspec.structs.replace(message, deadline=deadline)
        elif _tracing.tracer is not None and message.trace is None:
            message = msgspec.structs.replace(message, trace=otel.inject())
        return message, deadline - now

    def _timeout(self, message: object, waited: float) -> Failure:
        return Failure(
            kind=FailureKind.TIMEOUT,
            message=f"no answer from {self.name!r} to {type(message).__name__} "
            f"within {waited:.3g}s",
            source=self.name,
        )


class _Piped(IoHandle):
    """One ``pipe_to_self`` coroutine: its handle, and where its outcome goes.

    To an actor on the loop it is also the mailbox item that brings the outcome
    (see :func:`~actors._reply.post`).
    """

    __slots__ = ("answer", "label", "owner", "target", "then", "trace", "value")

    reply_to = None
    """As a mailbox item: no pykka future waits for it."""

    def __init__(  # noqa: PLR0917 - one object instead of a handle and a callback
        self,
        name: str,
        bridge: IoBridge,
        target: pykka.ActorRef[Any],
        then: Callable[[Any], object],
        owner: Actor[Any],
        answer: Deferred[Any] | None,
    ) -> None:
        super().__init__(name, bridge)
        self.target = target
        self.then = then
        self.owner = owner
        self.label = f"io {name}"
        self.answer = answer
        self.value: object = None
        self.trace: dict[str, str] | None = None

    @property
    def message(self) -> _Piped:
        """As a mailbox item: itself."""
        return self

    @property
    def fn(self) -> Callable[[Any], object]:
        """As a mailbox item: what the outcome is handed to."""
        return self.finished

    def deliver(self, outcome: object, carrier: dict[str, str] | None) -> None:
        """On the I/O loop: queue the outcome for the actor, then answer the asker."""
        self.value, self.trace = outcome, carrier
        posted = post(self.target, self)
        if posted is False:
            return  # the actor stopped, and answered every reply it held as it did
        if posted is None:
            try:
                self.target.tell(Callback(self.finished, outcome, carrier, self.label))
            except pykka.ActorDeadError:
                return
        if self.answer is not None:
            self.answer._reply.resolve(outcome)

    def finished(self, outcome: object) -> None:
        """On the actor's thread."""
        self.owner._io_done(self)
        self.then(outcome)


class _Fire:
    """A timer of an actor's ``call_later``: queue ``fn`` as a callback message when due.

    To an actor on the loop it is its own mailbox item (see ``actors._reply.post``).
    """

    __slots__ = ("_call", "label", "target", "trace")

    reply_to = None
    """As a mailbox item: no pykka future waits for it."""
    value = None
    """As a mailbox item: what ``fn`` is called with (nothing)."""

    def __init__(
        self,
        target: pykka.ActorRef[Any],
        fn: Callable[[], object],
        carrier: dict[str, str] | None,
        label: str,
    ) -> None:
        self.target = target
        self._call = fn
        self.trace = carrier
        self.label = label

    @property
    def message(self) -> _Fire:
        """As a mailbox item: itself."""
        return self

    @property
    def fn(self) -> Callable[[Any], object]:
        """As a mailbox item: what runs in the actor's turn."""
        return self._run

    def __call__(self) -> None:
        if post(self.target, self) is not None:
            return  # queued, or the actor stopped (its timers die with it)
        try:
            self.target.tell(Callback(self._run, None, self.trace, self.label))
        except pykka.ActorDeadError:
            return  # the actor stopped; its timers die with it

    def _run(self, _: object) -> None:
        self._call()


_POSTED = frozenset({_Piped, _Fire, ActorReply})
"""Mailbox items that are their own :class:`Callback` (see ``actors._reply.post``)."""

_OWN_ENVELOPE = frozenset({_Request, *_POSTED})
"""Mailbox items that are their own envelope (``message`` is the item, ``reply_to`` None)."""


class Deferred(Generic[T]):
    """A reply slot taken out of a handler, to answer later (see ``defer_reply``)."""

    __slots__ = ("_owner", "_reply")

    def __init__(self, reply: Reply, owner: set[Reply]) -> None:
        self._reply = reply
        self._owner = owner

    def send(self, value: T | Failure) -> bool:
        """Answer with a result or a failure; returns False if already answered."""
        self._owner.discard(self._reply)
        return self._reply.resolve(value)

    def fail(self, kind: FailureKind, message: str, **details: str) -> bool:
        """Answer with a failure of ``kind``."""
        return self.send(Failure(kind=kind, message=message, details=details))

    @property
    def answered(self) -> bool:
        """Whether an answer was already sent (or the caller gave up)."""
        return self._reply.resolved

    def detach(self) -> None:
        """Leave this reply out of what the actor answers when it stops or crashes.

        For work the actor has handed to a thread of its own that outlives the turn
        and finishes it whatever happens to the actor (the Store's writer commits the
        writes it accepted): that thread must answer it. The caller's own deadline
        still applies.
        """
        self._owner.discard(self._reply)


class Actor(pykka.ThreadingActor, Generic[M]):
    """Base class of every actor: implement :meth:`receive`.

    Actors are started by a :class:`~actors.System` or a supervisor, never with
    pykka's ``start()``, so they know their name and where to report a crash.

    Each actor owns a thread unless it runs on the I/O loop: a :class:`LoopActor`, or
    a spec with ``on_loop=True``. Everything below holds for both.

    Attributes:
        name: The name the actor is registered under.
        incarnation: 1 for the first start, +1 for every restart.
        log: A structlog logger bound to the actor's name.
        on_loop: Class default: whether instances run on the I/O loop (a spec's
            ``on_loop`` overrides it).
    """

    name: str
    incarnation: int
    on_loop: ClassVar[bool] = False

    def __init__(self) -> None:
        bound = binding.current
        if bound is None:
            msg = (
                f"{type(self).__name__} must be started by a System or a Supervisor "
                "(system.spawn(...)), not with pykka's start()"
            )
            raise RuntimeError(msg)
        self.name, self._rt, self._parent, self.incarnation, on_loop = bound
        self._mailbox: Mailbox | None = None
        if on_loop:
            # No thread: the mailbox takes turns on the I/O loop. What pykka's
            # constructor makes for a thread (a queue, an event, a random URN) is not
            # needed; a loop actor costs a few objects, and there may be thousands.
            self._mailbox = Mailbox(self._rt.scheduler, self)
            self.actor_urn = f"urn:loop:{id(self):x}"
            self.actor_inbox = self._mailbox
            self.actor_stopped = cast("threading.Event", self._mailbox)  # its stopped flag
            self._actor_ref = _LoopActorRef(self)
        else:
            super().__init__()
        self.log = _log  # the actor name is bound on the actor thread (contextvars)
        self._current: Reply | None = None
        self._deferred: set[Reply] | None = None  # made by the first defer_reply()
        self._io: set[IoHandle] | None = None  # while coroutines it piped run
        self._exit_reported = False
        self._span_name = f"{type(self).__name__} "
        self._begun = False

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> pykka.ActorRef[Self]:
        """Construct and start (for supervisors, which set up the binding first)."""
        actor = cls(*args, **kwargs)
        actor.begin()
        return actor.actor_ref

    @final
    def begin(self) -> None:
        """Start a constructed actor: its thread, or its first turn on the loop.

        A loop actor is not registered with pykka: nothing looks it up there, and
        pykka's registry is a list that every stop searches.
        """
        if self._mailbox is None:
            pykka.ActorRegistry.register(self.actor_ref)
            self._start_actor_loop()
        else:
            self._mailbox.open()

    def _io_done(self, handle: IoHandle) -> None:
        """A piped coroutine's outcome is being handled: it no longer runs."""
        io = self._io
        if io is not None:
            io.discard(handle)
            if not io:
                self._io = None  # most of the time nothing runs: no set is kept

    @property
    def running_on_loop(self) -> bool:
        """Whether this actor takes turns on the I/O loop (else it has a thread)."""
        return self._mailbox is not None

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:
        # pykka's default is a queue.Queue, whose put and get run in Python under a
        # Condition; the C SimpleQueue does the same FIFO hand-off for a fraction of the
        # cost, and the inbox only ever needs put, get and empty.
        return queue.SimpleQueue()

    # ---- what subclasses implement -------------------------------------------------

    def receive(self, message: M) -> object:
        """Handle one message; the return value answers an ask (ignored for a tell)."""
        raise NotImplementedError

    def started(self) -> None:
        """Called on the actor's thread before the first message."""

    def stopped(self) -> None:
        """Called on the actor's thread when it stops, whether it crashed or not."""

    def stop(self) -> None:
        """Stop this actor once the mail already in its mailbox is handled.

        Safe from any thread, and more than once; asks that arrive meanwhile are
        answered ``actor_stopped``. :meth:`stopped` runs, then the supervisor hears of
        a normal exit.
        """
        try:
            self.actor_ref.tell(_ActorStop())
        except pykka.ActorDeadError:
            return  # stopped already

    # ---- tools for handlers ------------------------------------------------------

    def defer_reply(self) -> Deferred[Any]:
        """Take the reply slot of the ask being handled, to answer it later.

        The handler's return value is then ignored. If the actor crashes first, the
        asker gets ``actor_crashed``; if nobody answers, the asker's deadline fires.
        """
        reply = self._current
        if reply is None:
            msg = f"{self.name}: defer_reply() called outside the handling of an ask"
            raise RuntimeError(msg)
        self._current = None
        deferred = self._deferred
        if deferred is None:
            deferred = self._deferred = set()
        deferred.add(reply)
        return Deferred(reply, deferred)

    def pipe_to_self(
        self,
        coro: Coroutine[Any, Any, T],
        then: Callable[[T | Failure], object],
        *,
        name: str | None = None,
        answer: Deferred[Any] | None = None,
    ) -> IoHandle:
        """Run ``coro`` on the I/O loop; call ``then(outcome)`` on this actor's thread.

        The outcome is the coroutine's result, or a :class:`Failure` if it raised or was
        cancelled. While it runs, the actor keeps handling other messages.

        With ``answer``, the outcome is also the answer to that deferred reply, sent from
        the I/O loop as soon as ``then`` is queued in this actor's mailbox: the asker
        does not wait for this actor's thread, and whatever it sends next is handled
        after ``then``. ``then`` still runs (its ``send`` of the same reply is then a
        no-op), and whoever answers the reply first wins, as always.
        """
        label = name or str(getattr(coro, "__qualname__", "coroutine"))
        bridge = self._rt.bridge
        io = self._io
        if io is None:
            io = self._io = set()
        piped = _Piped(label, bridge, self.actor_ref, then, self, answer)
        bridge.run_with(piped, coro)
        io.add(piped)
        return piped

    def ask(
        self,
        ref: Ref[Any],
        message: Request[R],
        then: Callable[[R | Failure], object],
        *,
        timeout: float | None = None,
    ) -> None:
        """Ask another actor; ``then(answer)`` runs on this actor's thread.

        The answer is the result or a :class:`Failure` (``timeout`` at the deadline).
        """
        stamped, remaining = ref._stamp(message, timeout)
        reply = ActorReply(
            self.actor_ref, cast("Callable[[Any], object]", then), ref, stamped, remaining
        )
        target = ref._target
        if (
            self._mailbox is not None
            and target is not None
            and type(target.actor_inbox) is Mailbox
            and self._rt.bridge.on_loop_thread()
        ):
            # A loop actor asking another: the answer comes on the loop, where
            # cancelling a loop timer is counted (and cheap); no lock, no timer thread.
            reply.timer = self._rt.loop_timers.call_later(remaining, reply)
        else:
            # An answer from a thread cancels the deadline there, which a loop timer
            # would notice only when due: the timer thread's heap compacts at once.
            reply.timer = self._rt.timers.call_later(remaining, reply)
        ref.send_request(stamped, reply)

    def schedule(self, delay: float, message: M) -> TimerHandle:
        """Send ``message`` to this actor after ``delay`` seconds."""
        target = self.actor_ref
        name = self.name
        dead_letters = self._rt.dead_letters

        def fire() -> None:
            try:
                target.tell(message)
            except pykka.ActorDeadError:
                dead_letters.record(name, message, "scheduled for a stopped actor")

        return self._after(delay, fire)

    def call_later(
        self, delay: float, fn: Callable[[], object], *, name: str | None = None
    ) -> TimerHandle:
        """Run ``fn()`` on this actor's thread after ``delay`` seconds (retries, backoff).

        The callback's span continues the trace that was current when it was scheduled.
        """
        label = f"timer {name or getattr(fn, '__qualname__', 'callback')}"
        carrier = otel.inject() if _tracing.tracer is not None else None
        return self._after(delay, _Fire(self.actor_ref, fn, carrier, label))

    def call_soon(self, fn: Callable[[], object], *, name: str | None = None) -> None:
        """Run ``fn()`` on this actor's thread once what the current turn woke has gone on.

        For work that can wait until an answer is out (learning from it, bookkeeping).
        On the loop, ``fn`` is queued behind the callbacks already waiting there, so an
        asker on the loop that this turn answered resumes first; from a thread, ``fn``
        joins the mailbox at once. Unlike ``call_later(0, fn)`` it sets no timer.
        Dropped if the actor stops first.
        """
        label = f"soon {name or getattr(fn, '__qualname__', 'callback')}"
        fire = _Fire(
            self.actor_ref, fn, otel.inject() if _tracing.tracer is not None else None, label
        )
        bridge = self._rt.bridge
        if self._mailbox is not None and bridge.on_loop_thread():
            bridge.loop.call_soon(fire)
            return
        fire()

    def _after(self, delay: float, fire: Callable[[], object]) -> TimerHandle:
        """A timer: on the loop for a loop actor (no thread hop when it fires)."""
        if self._mailbox is not None and self._rt.bridge.on_loop_thread():
            return self._rt.loop_timers.call_later(delay, fire)
        return self._rt.timers.call_later(delay, fire)

    @property
    def self_ref(self) -> Ref[M]:
        """A Ref to this actor, usable even in ``started()`` (before its name is registered).

        It points at this incarnation: after a restart the new incarnation makes its own.
        """
        ref: Ref[M] = Ref(self.name, self._rt)
        ref._target = self.actor_ref
        return ref

    @property
    def runtime(self) -> Runtime:
        """The system's shared services (bus, bridge, timers, dead letters)."""
        return self._rt

    # ---- pykka hooks: the runtime's, not to be overridden ---------------------------

    @final
    def on_start(self) -> None:
        """Bind logging context and run :meth:`started` (a failure is a crash)."""
        structlog.contextvars.bind_contextvars(actor=self.name)
        if self._mailbox is None:  # the loop thread is marked already, once for all
            forbid_blocking(f"actor {self.name!r}")
        try:
            self.started()
        except Exception as exc:  # noqa: BLE001 - a failing start is a crash
            self._crash(exc, "start")
            return
        self._rt.bus.publish(ActorStarted(name=self.name, incarnation=self.incarnation))

    @final
    def on_receive(self, message: Any) -> Any:
        """Unwrap a mailbox item and dispatch it (see the module docstring)."""
        kind = type(message)
        if kind is _Request:
            request = message.request
            reply = message.reply
            deadline = getattr(request, "deadline", None)
            if deadline is not None and deadline < time.time():
                # Nobody waits any more; skip the work rather than do it for no one.
                reply.resolve(
                    Failure(
                        kind=FailureKind.TIMEOUT,
                        message=f"{type(request).__name__} expired in {self.name!r}'s mailbox",
                        source=self.name,
                    )
                )
                return None
            self._current = reply
            if _tracing.tracer is None:
                # The common case, without the two calls of _dispatch and
                # _receive_and_reply (what they do, for an ask with no tracing).
                try:
                    result = self.receive(request)
                except Exception as exc:  # noqa: BLE001 - a raising handler is a crash
                    self._crash(exc, type(request).__name__)
                    return None
                reply = self._current
                if reply is not None:
                    self._current = None
                    reply.resolve(result)
                return None
        elif kind is Callback or kind in _POSTED:
            if _tracing.tracer is None:
                # The common case, without the call of _dispatch (its label is made
                # only if the handler raises).
                try:
                    message.fn(message.value)
                except Exception as exc:  # noqa: BLE001 - a raising handler is a crash
                    self._crash(exc, message.label)
                return None
            self._dispatch(message.fn, message.value, message.trace, message.label)
            return None
        else:
            request = message
            self._current = None
        self._dispatch(
            self._receive_and_reply,
            request,
            getattr(request, "trace", None),
            type(request).__name__,
        )
        return None

    def _receive_and_reply(self, message: M) -> None:
        result = self.receive(message)
        reply = self._current
        if reply is not None:
            self._current = None
            reply.resolve(result)

    def _dispatch(
        self,
        fn: Callable[[Any], object],
        value: object,
        carrier: dict[str, str] | None,
        label: str,
    ) -> None:
        if _tracing.tracer is None:
            try:
                fn(value)
            except Exception as exc:  # noqa: BLE001 - a raising handler is a crash
                self._crash(exc, label)
            return
        parent = otel.extract(carrier)
        if parent is None or not otel.trace_actors():
            # The handler runs in the sender's trace (so what it starts joins it), but
            # the message is no span of its own.
            token = otel_context.attach(parent) if parent is not None else None
            try:
                fn(value)
            except Exception as exc:  # noqa: BLE001 - a raising handler is a crash
                self._crash(exc, label)
            finally:
                if token is not None:
                    otel_context.detach(token)
            return
        with otel.tracer().start_as_current_span(
            self._span_name + label,
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={"actor.name": self.name, "actor.message": label},  # ids live here
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                fn(value)
            except Exception as exc:  # noqa: BLE001 - a raising handler is a crash
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
                self._crash(exc, label)

    @final
    def on_stop(self) -> None:
        """A normal stop: answer what is pending with ``actor_stopped``, then report."""
        failure = Failure(
            kind=FailureKind.ACTOR_STOPPED,
            message=f"actor {self.name!r} stopped before answering",
            source=self.name,
        )
        self._terminate(failure)
        self._rt.bus.publish(ActorStopped(name=self.name, incarnation=self.incarnation))
        self._report_exit(crashed=False, error="")

    def _crash(self, exc: BaseException, during: str) -> None:
        """Stop now: fail every pending ask with ``actor_crashed`` and report upwards."""
        error = f"{type(exc).__name__}: {exc}"
        if self._mailbox is None:
            pykka.ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        failure = Failure(
            kind=FailureKind.ACTOR_CRASHED,
            message=f"actor {self.name!r} crashed handling {during}: {error}",
            source=self.name,
        )
        failed = self._terminate(failure)
        self.log.error(
            "actor crashed", during=during, failed_asks=failed, exception=plain_traceback(exc)
        )
        self._rt.bus.publish(
            ActorCrashed(
                name=self.name, incarnation=self.incarnation, error=error, failed_asks=failed
            )
        )
        self._escalate(error)

    def _escalate(self, error: str) -> None:
        """Tell the supervisor that this incarnation died abnormally."""
        self._report_exit(crashed=True, error=error)

    def _terminate(self, failure: Failure) -> int:
        """Answer every pending ask, cancel I/O, run :meth:`stopped`; count the answers."""
        failed = 0
        if self._current is not None and self._current.resolve(failure):
            failed += 1
        self._current = None
        if self._deferred:
            for reply in list(self._deferred):
                failed += reply.resolve(failure)
            self._deferred.clear()
        failed += self._drain_mailbox(failure)
        if self._io:
            for handle in list(self._io):
                handle.cancel()
        self._io = None
        try:
            self.stopped()
        except Exception as exc:  # noqa: BLE001 - logged; the actor stops anyway
            self.log.error("stopped() hook raised", exception=plain_traceback(exc))
        return failed

    def _drain_mailbox(self, failure: Failure) -> int:
        failed = 0
        # The stopped flag is set, so nothing new is accepted; this thread is the
        # only consumer, so get() after a non-empty check never blocks.
        while not self.actor_inbox.empty():
            envelope = self.actor_inbox.get()
            item = envelope.message
            if type(item) is _Request:
                failed += item.reply.resolve(failure)
            elif envelope.reply_to is not None:  # a raw pykka ask
                envelope.reply_to.set_exception(exc_info=(AskError, AskError(failure), None))
            elif type(item) is not Callback and type(item) not in _POSTED:
                self._rt.dead_letters.record(self.name, item, "actor stopped with it queued")
        return failed

    def _report_exit(self, *, crashed: bool, error: str) -> None:
        parent = self._parent
        if parent is None or self._exit_reported:
            return
        self._exit_reported = True
        try:
            parent.tell(ChildExited(self.name, self.incarnation, crashed=crashed, error=error))
        except pykka.ActorDeadError:
            self.log.warning("supervisor gone; exit not reported", crashed=crashed)

    # ---- turns on the loop (actors._loop.Mailbox calls these) ------------------------

    def _loop_turn(self, items: Mailbox) -> None:
        """On the loop, in the actor's context: start if new, then handle some mail.

        ``items`` is the actor's mailbox, and so its "stopped" flag (read as it is).
        """
        if not self._begun:
            self._begun = True
            self._loop_guard(self.on_start, "start")
        for _ in range(min(len(items), TURN)):
            if items._stopped:
                break
            self._loop_handle(items.popleft())
        if items._stopped and items:
            # Mail that slipped in as the actor stopped: answered, never left waiting.
            self._drain_mailbox(
                Failure(
                    kind=FailureKind.ACTOR_STOPPED,
                    message=f"actor {self.name!r} is not running",
                    source=self.name,
                )
            )

    def _loop_handle(self, envelope: Envelope[Any]) -> None:
        """One message, as pykka's thread loop handles it (raw asks included)."""
        if type(envelope) in _OWN_ENVELOPE:  # an ask, an answer, an outcome: no pykka future
            try:
                self.on_receive(envelope)
            except BaseException as exc:  # noqa: BLE001 - on the shared loop, even SystemExit
                self._loop_crash(exc, type(envelope).__name__)
            return
        reply_to = envelope.reply_to
        message = envelope.message
        try:
            if type(message) is _ActorStop:
                self._stop()
                response = None
            elif reply_to is None:  # the runtime's own mail: never a pykka proxy call
                self.on_receive(message)
                return
            else:
                response = self._handle_receive(message)
        except BaseException as exc:  # noqa: BLE001 - on the shared loop, even SystemExit
            if reply_to is not None:
                reply_to.set_exception(exc_info=(type(exc), exc, exc.__traceback__))
            else:
                self._loop_crash(exc, type(message).__name__)
            return
        if reply_to is not None:
            reply_to.set(response)

    def _loop_guard(self, fn: Callable[[], object], during: str) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - crashes this actor, not the loop
            self._loop_crash(exc, during)

    def _loop_crash(self, exc: BaseException, during: str) -> None:
        """What escaped a handler on the loop (a ``BaseException``) crashes this actor only.

        A thread actor's thread would die of it; the loop is shared, so the actor
        crashes as it would for an ``Exception``.
        """
        if self.actor_stopped.is_set():
            self.log.error(
                "a stopped loop actor raised", during=during, exception=plain_traceback(exc)
            )
            return
        self._crash(exc, during)


class LoopActor(Actor[M]):
    """An :class:`Actor` without a thread: it takes turns on the system's I/O loop.

    For actors that exist in thousands (runs, sessions, agents): ten thousand of them
    cost memory, not threads. The programming model is the same (``receive``,
    ``started``, ``stopped``, ``pipe_to_self``, ``ask``, ``defer_reply``, timers,
    supervision, crash answers) and so is the guarantee: one message at a time. The
    difference is what a handler shares: the loop, with every other loop actor and all
    I/O. A handler must stay short and never block (a blocking ``Ref.ask`` raises
    ``BlockingCallError``, as it does on an actor thread); a coroutine it pipes to itself
    starts without a thread hop, and its outcome comes back the same way.
    """

    on_loop: ClassVar[bool] = True
