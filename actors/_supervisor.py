"""Supervision in the manner of Erlang/OTP, for pykka actors.

A :class:`Supervisor` is an actor that starts its children in order, stops them in
reverse order, and restarts them when they exit:

* **strategy**: ``one_for_one`` restarts the child that exited; ``one_for_all`` stops
  every other child (in reverse order) and restarts them all (in order);
  ``rest_for_one`` does the same for the child and those started after it.
* **restart type** of each child: ``permanent`` is always restarted, ``transient`` only
  after a crash, ``temporary`` never.
* **restart intensity**: more than ``max_restarts`` restarts within ``within`` seconds
  means something is deeply wrong (say, an LLM server that dies whenever a model is
  loaded). The supervisor then stops all its children and exits abnormally itself, so
  the failure escalates to its own supervisor, which applies *its* strategy.

Stopping is event-driven like everything else: the supervisor asks one child to stop,
handles that child's exit message, then moves to the next; a child that does not stop
within its ``shutdown_timeout`` is logged and passed over.

Children (and supervisors) may run on the I/O loop instead of a thread of their own
(``on_loop``, or a :class:`~actors.LoopActor`). Where children come and go in thousands
(runs), :func:`start_child` starts one on the caller's thread at once and tells the
supervisor to adopt it, instead of asking the supervisor to start it and waiting.
"""

from __future__ import annotations

import collections
import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors._actor import Actor, ChildExited, Deferred, Ref, binding
from actors._errors import DuplicateActorName, SystemNotRunning
from actors._events import ActorRestarted, SupervisorGaveUp
from actors._tb import plain_traceback

__all__ = [
    "ChildInfo",
    "ChildSpec",
    "Restart",
    "Strategy",
    "Supervisor",
    "SupervisorSpec",
    "mailbox_depth",
    "start_child",
]


class Restart(enum.StrEnum):
    """When a child is restarted after it exits."""

    PERMANENT = "permanent"
    """Always (after a crash and after a normal stop)."""
    TRANSIENT = "transient"
    """Only after a crash."""
    TEMPORARY = "temporary"
    """Never; the child is forgotten when it exits."""


class Strategy(enum.StrEnum):
    """Which children a supervisor restarts when one of them exits."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start (and restart) one worker actor.

    Attributes:
        name: System-wide unique name; the actor is found by it after every restart.
        actor: The :class:`Actor` subclass.
        args: Positional arguments for its constructor.
        kwargs: Keyword arguments for its constructor.
        restart: When it is restarted.
        shutdown_timeout: Seconds to wait for it to stop before moving on.
        on_loop: Run it on the I/O loop instead of a thread of its own; ``None``
            follows the class (``True`` for a :class:`~actors.LoopActor`).
    """

    name: str
    actor: type[Actor[Any]]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    restart: Restart = Restart.PERMANENT
    shutdown_timeout: float = 5.0
    on_loop: bool | None = None

    @property
    def runs_on_loop(self) -> bool:
        """Whether the child runs on the I/O loop (the spec's choice, else its class's)."""
        return self.actor.on_loop if self.on_loop is None else self.on_loop

    def __post_init__(self) -> None:
        _check_name(self.name, "ChildSpec")
        candidate: object = self.actor  # checked at run time: callers may be untyped
        if not (isinstance(candidate, type) and issubclass(candidate, Actor)):
            msg = f"ChildSpec {self.name!r}: actor={self.actor!r} is not an Actor subclass"
            raise TypeError(msg)
        _check_positive(self.name, "shutdown_timeout", self.shutdown_timeout)


@dataclass(frozen=True, slots=True)
class SupervisorSpec:
    """A supervisor and its children (which may be supervisors in turn).

    Attributes:
        name: System-wide unique name of the supervisor itself.
        children: Started in this order, stopped in reverse.
        strategy: Which children restart when one exits.
        max_restarts: Restarts allowed within ``within`` seconds before giving up.
        within: The intensity window, in seconds.
        restart: The supervisor's own restart type, under its parent.
        shutdown_timeout: Seconds its parent waits for the whole subtree to stop.
        on_loop: Run the supervisor itself on the I/O loop (its children choose for
            themselves): cheap for a supervisor of loop children, which then hears
            of their exits without a thread hop.
    """

    name: str
    children: Sequence[ChildSpec | SupervisorSpec] = ()
    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = 3
    within: float = 5.0
    restart: Restart = Restart.PERMANENT
    shutdown_timeout: float = 30.0
    on_loop: bool = False

    @property
    def runs_on_loop(self) -> bool:
        """Whether the supervisor runs on the I/O loop."""
        return self.on_loop

    def __post_init__(self) -> None:
        _check_name(self.name, "SupervisorSpec")
        object.__setattr__(self, "children", tuple(self.children))
        if self.max_restarts < 0:
            msg = f"SupervisorSpec {self.name!r}: max_restarts={self.max_restarts} is negative"
            raise ValueError(msg)
        _check_positive(self.name, "within", self.within)
        _check_positive(self.name, "shutdown_timeout", self.shutdown_timeout)
        seen: set[str] = {self.name}
        for name in _all_names(self.children):
            if name in seen:
                msg = f"SupervisorSpec {self.name!r}: the name {name!r} is used twice"
                raise ValueError(msg)
            seen.add(name)


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """What a supervisor knows about one child.

    Attributes:
        name: The child's name.
        running: Whether its current incarnation runs.
        incarnation: 1 for the first start, one more for each restart.
        restart: Its restart type.
        supervisor: Whether it is a supervisor (with children of its own).
        mailbox: Messages waiting in its mailbox when asked (0 when it is not running).
        on_loop: Whether it runs on the I/O loop rather than a thread of its own.
    """

    name: str
    running: bool
    incarnation: int
    restart: Restart
    supervisor: bool
    mailbox: int = 0
    on_loop: bool = False

    @property
    def restarts(self) -> int:
        """How many times it was restarted."""
        return max(0, self.incarnation - 1)


def mailbox_depth(ref: Ref[Any]) -> int:
    """Messages waiting in the mailbox of ``ref``'s current incarnation (0: none runs).

    A snapshot read without asking the actor (which may be busy): the thread actors'
    queue size, or the length of a loop actor's mailbox.
    """
    target = ref._target
    inbox = getattr(target, "actor_inbox", None) if target is not None else None
    if inbox is None:
        return 0
    size = getattr(inbox, "qsize", None)
    if size is not None:
        return int(size())
    try:
        return len(inbox)
    except TypeError:
        return 0


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not name.strip():
        msg = f"{what}: name={name!r} must be a non-empty string"
        raise ValueError(msg)


def _check_positive(name: str, option: str, value: float) -> None:
    if not value > 0:
        msg = f"spec {name!r}: {option}={value!r} must be greater than zero"
        raise ValueError(msg)


def _all_names(children: Sequence[ChildSpec | SupervisorSpec]) -> list[str]:
    names: list[str] = []
    for child in children:
        names.append(child.name)
        if isinstance(child, SupervisorSpec):
            names.extend(_all_names(child.children))
    return names


# ---- the supervisor's own protocol (in-process only, never serialised) ---------------


class StartChild:
    """Ask a supervisor to start one more child; answered with its Ref."""

    __slots__ = ("spec",)

    def __init__(self, spec: ChildSpec | SupervisorSpec) -> None:
        self.spec = spec


class Adopt:
    """Tell a supervisor about a child started for it elsewhere (see :func:`start_child`)."""

    __slots__ = ("incarnation", "ref", "spec")

    def __init__(self, spec: ChildSpec, ref: Ref[Any], incarnation: int) -> None:
        self.spec = spec
        self.ref = ref
        self.incarnation = incarnation


class Shutdown:
    """Stop every child in reverse order, then the supervisor itself."""

    __slots__ = ()


class WhichChildren:
    """Ask for a list of :class:`ChildInfo`."""

    __slots__ = ()


class _Adoptions:
    """Adopt what waits in the supervisor's adoption queue (see :func:`start_child`)."""

    __slots__ = ()


_ADOPTIONS = _Adoptions()


class _StopTimeout:
    __slots__ = ("incarnation", "name")

    def __init__(self, name: str, incarnation: int) -> None:
        self.name = name
        self.incarnation = incarnation


class _Child:
    __slots__ = ("incarnation", "ref", "running", "spec")

    def __init__(self, spec: ChildSpec | SupervisorSpec, ref: Ref[Any]) -> None:
        self.spec = spec
        self.ref = ref
        self.incarnation = 0
        self.running = False


class _Mode(enum.Enum):
    RUNNING = "running"
    RESTARTING = "restarting"
    GIVING_UP = "giving up"
    SHUTTING_DOWN = "shutting down"


class Supervisor(Actor[object]):
    """Owns children and restarts them under a strategy (see the module docstring)."""

    def __init__(
        self, spec: SupervisorSpec, on_give_up: Callable[[str], None] | None = None
    ) -> None:
        super().__init__()
        self.spec = spec
        self._on_give_up = on_give_up
        self._children: dict[str, _Child] = {}
        self._restarts: collections.deque[float] = collections.deque()
        self._mode = _Mode.RUNNING
        self._stop_queue: list[_Child] = []
        self._waiting: _Child | None = None
        self._after_stop: Callable[[], None] | None = None
        self._held_exits: list[ChildExited] = []
        self._shutdown_replies: list[Deferred[Any]] = []
        # Children started elsewhere (start_child), to adopt: any thread appends; one
        # _Adoptions message (sent when the flag was down) adopts everything queued.
        self._adoptions: collections.deque[Adopt] = collections.deque()
        self._adoptions_armed = False
        # Children start here, on the thread that starts this supervisor, so that when
        # spawning a subtree returns, every actor in it is running and registered.
        for child in spec.children:
            result = self._add(child)
            if isinstance(result, Exception):
                self.stopped()
                raise result

    def stopped(self) -> None:
        """The supervisor is going away: no child may outlive it or keep its name."""
        self._adopt_queued()  # started for it, not adopted yet: they go too
        for child in self._children.values():
            target = child.ref._target
            if child.running and target is not None:
                if isinstance(child.spec, SupervisorSpec):
                    child.ref.tell_if_alive(Shutdown())
                else:
                    target.stop(block=False)
            self.runtime.unregister(child.spec.name)
        self._children.clear()

    def receive(self, message: object) -> object:
        """Handle child exits and the supervisor protocol."""
        match message:
            case ChildExited():
                self._on_exit(message)
            case StartChild(spec=spec):
                return self._add(spec)
            case _Adoptions():
                self._adopt_queued()
            case Adopt():
                self._adopt(message)
            case WhichChildren():
                return [self._info(c) for c in self._children.values()]
            case Shutdown():
                self._shutdown()
            case _StopTimeout(name=name, incarnation=incarnation):
                self._on_stop_timeout(name, incarnation)
            case _:
                self.log.warning("unknown message to supervisor", type=type(message).__name__)
        return None

    # ---- starting ------------------------------------------------------------------

    def _add(self, spec: ChildSpec | SupervisorSpec) -> Ref[Any] | Exception:
        if self._mode is not _Mode.RUNNING:
            return RuntimeError(f"supervisor {self.name!r} is {self._mode.value}")
        ref: Ref[Any] = Ref(spec.name, self.runtime)
        if self.runtime.is_registered(spec.name):
            return self.runtime.duplicate(spec.name)
        child = _Child(spec, ref)
        self._start(child)
        try:
            # Registered once running, so a lookup never finds a ref with no actor.
            self.runtime.register(ref)
        except DuplicateActorName as exc:  # lost a race for the name
            target = child.ref._target
            if target is not None:
                target.stop(block=False)
            return exc
        self._children[spec.name] = child
        return ref

    def queue_adoption(self, adopted: Adopt) -> None:
        """Any thread: adopt a child started elsewhere, in this supervisor's next turn.

        One message per batch, not one per child: a burst of runs started at once
        costs the supervisor's mailbox one item. Sent when the flag is down; the turn
        that takes the queue lowers the flag first, so a child queued meanwhile either
        is taken by that turn or sends a message of its own, and every child is adopted
        before its exit report (sent after this returns) is handled.

        Raises:
            pykka.ActorDeadError: The supervisor has stopped.
        """
        if self.actor_stopped.is_set():
            msg = f"supervisor {self.name!r} has stopped"
            raise pykka.ActorDeadError(msg)
        self._adoptions.append(adopted)
        if self._adoptions_armed:
            return
        self._adoptions_armed = True
        try:
            self.actor_ref.tell(_ADOPTIONS)
        except pykka.ActorDeadError:
            self._adoptions_armed = False
            raise

    def _adopt_queued(self) -> None:
        self._adoptions_armed = False
        adoptions = self._adoptions
        while adoptions:
            self._adopt(adoptions.popleft())

    def _adopt(self, adopted: Adopt) -> None:
        spec = adopted.spec
        if self._mode in {_Mode.SHUTTING_DOWN, _Mode.GIVING_UP}:
            # The child goes too. Its exit report finds no child of that name: ignored.
            self.log.info("adopted child stopped", child=spec.name, mode=self._mode.value)
            target = adopted.ref._target
            if target is not None:
                target.stop(block=False)
            self.runtime.unregister(spec.name)
            return
        child = _Child(spec, adopted.ref)
        child.incarnation = adopted.incarnation
        child.running = True
        self._children[spec.name] = child

    def _start(self, child: _Child) -> None:
        child.incarnation += 1
        spec = child.spec
        binding.current = (
            spec.name,
            self.runtime,
            self.actor_ref,
            child.incarnation,
            spec.runs_on_loop,
        )
        target: pykka.ActorRef[Any]
        try:
            if isinstance(spec, SupervisorSpec):
                target = Supervisor.start(spec)
            else:
                target = spec.actor.start(*spec.args, **spec.kwargs)
        except Exception as exc:  # noqa: BLE001 - logged, and reported as the child's exit
            self.log.error(
                "child failed to construct", child=spec.name, exception=plain_traceback(exc)
            )
            self.actor_ref.tell(
                ChildExited(
                    spec.name, child.incarnation, crashed=True, error=f"{type(exc).__name__}: {exc}"
                )
            )
            child.running = True  # so that the exit message is not taken as stale
            return
        finally:
            binding.current = None
        child.ref._target = target
        child.running = True

    # ---- exits and restarts -----------------------------------------------------------

    def _on_exit(self, exited: ChildExited) -> None:
        child = self._children.get(exited.name)
        if child is None or exited.incarnation != child.incarnation or not child.running:
            return  # a stale report from an incarnation already dealt with
        child.running = False
        if self._waiting is child:
            self._stop_next()
            return
        if self._mode is _Mode.RESTARTING:
            self._held_exits.append(exited)
            return
        if self._mode is not _Mode.RUNNING:
            return
        restart = child.spec.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and not exited.crashed):
            (self.log.warning if exited.crashed else self.log.debug)(
                "child exited and is not restarted",
                child=child.spec.name,
                restart=restart.value,
                crashed=exited.crashed,
            )
            self._forget(child)
            return
        if not self._may_restart():
            self._give_up(f"{exited.name}: {exited.error or 'stopped'}")
            return
        match self.spec.strategy:
            case Strategy.ONE_FOR_ONE:
                self._restart(child, cause=child)
            case Strategy.ONE_FOR_ALL:
                self._restart_group(list(self._children.values()), cause=child)
            case Strategy.REST_FOR_ONE:
                names = list(self._children)
                group = [self._children[n] for n in names[names.index(child.spec.name) :]]
                self._restart_group(group, cause=child)

    def _may_restart(self) -> bool:
        now = time.monotonic()
        window = self._restarts
        window.append(now)
        while window and window[0] < now - self.spec.within:
            window.popleft()
        return len(window) <= self.spec.max_restarts

    def _restart(self, child: _Child, cause: _Child) -> None:
        self._start(child)
        self.log.info(
            "child restarted",
            child=child.spec.name,
            cause=cause.spec.name,
            incarnation=child.incarnation,
        )
        self.runtime.bus.publish(
            ActorRestarted(
                name=child.spec.name,
                supervisor=self.name,
                cause=cause.spec.name,
                restarts_in_window=len(self._restarts),
            )
        )

    def _restart_group(self, group: list[_Child], cause: _Child) -> None:
        self._mode = _Mode.RESTARTING

        def restart_all() -> None:
            for child in group:
                if child.spec.restart is Restart.TEMPORARY and child is not cause:
                    self._forget(child)
                else:
                    self._restart(child, cause)
            self._mode = _Mode.RUNNING
            held, self._held_exits = self._held_exits, []
            for exited in held:
                self._on_exit(exited)

        self._stop_in_reverse(group, then=restart_all)

    def _give_up(self, error: str) -> None:
        self._mode = _Mode.GIVING_UP
        self.log.error(
            "restart intensity exceeded; giving up",
            max_restarts=self.spec.max_restarts,
            within_s=self.spec.within,
            last_error=error,
        )
        self.runtime.bus.publish(
            SupervisorGaveUp(
                name=self.name,
                max_restarts=self.spec.max_restarts,
                within_s=self.spec.within,
                last_error=error,
            )
        )
        reason = (
            f"supervisor {self.name!r} gave up after more than {self.spec.max_restarts} "
            f"restarts in {self.spec.within:g}s (last: {error})"
        )

        def escalate() -> None:
            for child in list(self._children.values()):
                self._forget(child)
            if self._on_give_up is not None:
                self._on_give_up(reason)
            self._escalate(reason)
            self.stop()

        self._stop_in_reverse(list(self._children.values()), then=escalate)

    def _forget(self, child: _Child) -> None:
        self._children.pop(child.spec.name, None)
        self.runtime.unregister(child.spec.name)

    # ---- stopping -------------------------------------------------------------------

    def _shutdown(self) -> None:
        if self._current is not None:
            self._shutdown_replies.append(self.defer_reply())
        if self._mode is _Mode.SHUTTING_DOWN:
            return
        self._mode = _Mode.SHUTTING_DOWN

        def finish() -> None:
            for child in list(self._children.values()):
                self._forget(child)
            for reply in self._shutdown_replies:
                reply.send(None)
            self.stop()

        self._stop_in_reverse(list(self._children.values()), then=finish)

    def _stop_in_reverse(self, children: list[_Child], then: Callable[[], None]) -> None:
        self._stop_queue = list(reversed(children))
        self._after_stop = then
        if self._waiting is None:
            self._stop_next()

    def _stop_next(self) -> None:
        self._waiting = None
        while self._stop_queue:
            child = self._stop_queue.pop(0)
            if child.running:
                self._waiting = child
                self._send_stop(child)
                return
        then, self._after_stop = self._after_stop, None
        if then is not None:
            then()

    def _send_stop(self, child: _Child) -> None:
        spec = child.spec
        target = child.ref._target
        if isinstance(spec, SupervisorSpec):
            child.ref.tell_if_alive(Shutdown())
        elif target is not None:
            # Non-blocking; if the child is already gone its exit report is on the way.
            target.stop(block=False)
        self.schedule(spec.shutdown_timeout, _StopTimeout(spec.name, child.incarnation))

    def _on_stop_timeout(self, name: str, incarnation: int) -> None:
        child = self._waiting
        if child is None or child.spec.name != name or child.incarnation != incarnation:
            return
        self.log.warning(
            "child did not stop in time; moving on",
            child=name,
            shutdown_timeout_s=child.spec.shutdown_timeout,
        )
        child.running = False
        self._stop_next()

    @staticmethod
    def _info(child: _Child) -> ChildInfo:
        return ChildInfo(
            name=child.spec.name,
            running=child.running,
            incarnation=child.incarnation,
            restart=child.spec.restart,
            supervisor=isinstance(child.spec, SupervisorSpec),
            mailbox=mailbox_depth(child.ref) if child.running else 0,
            on_loop=child.spec.runs_on_loop,
        )


def start_child(supervisor: Ref[Any], spec: ChildSpec) -> Ref[Any]:
    """Start a child of ``supervisor`` here and now, without waiting for the supervisor.

    The actor is constructed on the calling thread, its name registered, the
    supervisor told to adopt it (a one-way message, handled before any exit report of
    the child's), and then it starts. From then on it is the supervisor's child like
    any other: restarted by its restart type, stopped in a shutdown. Cheap enough to
    call per run, from sync code, asyncio code or an actor's handler (nothing blocks).

    Raises:
        DuplicateActorName: The name is taken (nothing was started).
        SystemNotRunning: The supervisor is not running.
        Exception: Whatever the actor's constructor raised (nothing was started).
    """
    parent = supervisor._target
    if parent is None or not parent.is_alive():
        msg = f"supervisor {supervisor.name!r} is not running"
        raise SystemNotRunning(msg)
    runtime = supervisor._rt
    if runtime.is_registered(spec.name):
        raise runtime.duplicate(spec.name)
    binding.current = (spec.name, runtime, parent, 1, spec.runs_on_loop)
    try:
        actor = spec.actor(*spec.args, **spec.kwargs)
    finally:
        binding.current = None
    ref: Ref[Any] = Ref(spec.name, runtime)
    ref._target = actor.actor_ref
    runtime.register(ref)  # a race lost for the name raises here, before anything runs
    supervisor_actor = parent._actor_weakref()  # pykka's: the supervisor itself, if alive
    try:
        if isinstance(supervisor_actor, Supervisor):
            supervisor_actor.queue_adoption(Adopt(spec, ref, 1))
        else:
            parent.tell(Adopt(spec, ref, 1))
    except pykka.ActorDeadError:
        runtime.unregister(spec.name)
        msg = f"supervisor {supervisor.name!r} is not running"
        raise SystemNotRunning(msg) from None
    actor.begin()
    return ref
