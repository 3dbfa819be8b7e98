"""The System: the root of one actor tree and the services its actors share.

A System starts, in order, the actors it was given (and any spawned later) under a root
supervisor, and stops them in reverse order. It works from sync code::

    with System(ChildSpec(name="greeter", actor=Greeter)) as system:
        system.lookup("greeter").ask(Greet(name="Ada"))

and from asyncio code, without blocking the caller's loop::

    async with System() as system:
        ref = await system.spawn_async(Greeter, name="greeter")
        await ref.ask_async(Greet(name="Ada"))

It owns one I/O event loop thread (the bridge), one timer thread, the event bus, the
dead-letter office and the name registry.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import structlog

from actors._actor import Actor, Ref, binding
from actors._bridge import IoBridge
from actors._bus import DeadLetters, EventBus
from actors._errors import AskError, SystemNotRunning
from actors._local import check_may_block
from actors._runtime import Runtime
from actors._supervisor import (
    ChildInfo,
    ChildSpec,
    Restart,
    Shutdown,
    StartChild,
    Strategy,
    Supervisor,
    SupervisorSpec,
    WhichChildren,
    mailbox_depth,
)
from actors._timers import Timers
from actors._tree import ActorNode, build_tree, build_tree_async

__all__ = ["System"]

M = TypeVar("M")
_log = structlog.get_logger("actors.system")
_counter = itertools.count(1)


class System:
    """An actor system: a root supervisor plus shared services.

    Args:
        *children: Started in order by :meth:`start`, stopped in reverse by :meth:`stop`.
        name: Names the system's threads and appears in errors.
        default_timeout: Seconds an ask waits when neither the message nor the call
            sets a deadline.
        strategy: The root supervisor's strategy.
        max_restarts: The root supervisor's restart intensity (restarts ...
        within: ... within this many seconds) before the whole system gives up.
        loop_factory: Makes the I/O loop (default: ``asyncio.new_event_loop``); the
            daemon passes ``uvloop.new_event_loop`` where uvloop is installed.
    """

    def __init__(
        self,
        *children: ChildSpec | SupervisorSpec,
        name: str = "reactor",
        default_timeout: float = 30.0,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        within: float = 5.0,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        if not default_timeout > 0:
            msg = f"System(default_timeout={default_timeout!r}): must be greater than zero"
            raise ValueError(msg)
        self.name = name
        self._spec = SupervisorSpec(
            name=f"{name}.root",
            children=children,
            strategy=strategy,
            max_restarts=max_restarts,
            within=within,
        )
        self._default_timeout = default_timeout
        self._loop_factory = loop_factory
        self._rt: Runtime | None = None
        self._root: Ref[object] | None = None
        self._lock = threading.Lock()
        self.failure: str | None = None
        """Set when the root supervisor gave up: the reason, else ``None``."""

    # ---- lifecycle -----------------------------------------------------------------

    def start(self) -> Self:
        """Start the I/O loop, the timers and the root supervisor with its children.

        Raises:
            BlockingCallError: Called on a running event loop (starting waits for
                threads): asyncio code writes ``async with System()``. Nothing has been
                started then, so nothing is left to keep the process alive.
        """
        check_may_block("System.start() (or `with System()`)", "`async with System()`")
        with self._lock:
            if self._rt is not None:
                msg = f"system {self.name!r} is already running"
                raise RuntimeError(msg)
            rt = Runtime(self.name, self._default_timeout, self._loop_factory)
            rt.bridge.start()
            rt.timers.start()
            root: Ref[object] = Ref(self._spec.name, rt)
            rt.register(root)
            binding.current = (self._spec.name, rt, None, 1, self._spec.runs_on_loop)
            try:
                root._target = Supervisor.start(self._spec, self._root_gave_up)
            except BaseException:
                rt.timers.stop()
                rt.bridge.stop()
                raise
            finally:
                binding.current = None
            self._rt, self._root = rt, root
        # One round trip: the root has run started(), so every child has been started.
        try:
            root.ask(WhichChildren())
        except BaseException:
            self.stop()  # a start that fails leaves no thread behind
            raise
        _log.info("system started", system=self.name, actors=len(self._spec.children))
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every actor in reverse start order, then the timers and the I/O loop.

        Raises:
            BlockingCallError: Called on a running event loop: asyncio code awaits
                :meth:`stop_async` (or writes ``async with System()``). The system
                is still running then, so that call can still stop it.
        """
        if self._rt is not None:
            check_may_block("System.stop()", "`await system.stop_async()`")
        with self._lock:
            rt, root = self._rt, self._root
            self._rt = self._root = None
        if rt is None or root is None:
            return
        try:
            if root.is_alive():
                root.ask(Shutdown(), timeout=timeout)
        except AskError as exc:
            _log.warning("shutdown incomplete", system=self.name, error=str(exc))
        target = root._target
        if target is not None:
            target.actor_stopped.wait(timeout)
        rt.timers.stop()
        rt.bridge.stop()
        _log.info("system stopped", system=self.name, dead_letters=rt.dead_letters.count)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def start_async(self) -> Self:
        """:meth:`start` for asyncio code: the waiting for threads happens off the loop."""
        return await asyncio.to_thread(self.start)

    async def stop_async(self, timeout: float = 30.0) -> None:
        """:meth:`stop` for asyncio code: the waiting happens off the caller's loop."""
        await asyncio.to_thread(self.stop, timeout)

    async def __aenter__(self) -> Self:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()

    @property
    def running(self) -> bool:
        """Whether the system has been started and not stopped."""
        return self._rt is not None

    # ---- actors --------------------------------------------------------------------

    def spawn(
        self,
        actor: type[Actor[M]] | ChildSpec | SupervisorSpec,
        *,
        name: str | None = None,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        restart: Restart = Restart.PERMANENT,
    ) -> Ref[M]:
        """Start an actor (or a supervisor subtree) under the root supervisor.

        Args:
            actor: An :class:`Actor` subclass, or a complete spec.
            name: Unique name; by default the class name with a number.
            args: Constructor arguments.
            kwargs: Constructor keyword arguments.
            restart: Restart type under the root supervisor.

        Raises:
            DuplicateActorName: The name is taken.
        """
        result = self._root_ref().ask(StartChild(self._spec_of(actor, name, args, kwargs, restart)))
        return self._spawned(result)

    async def spawn_async(
        self,
        actor: type[Actor[M]] | ChildSpec | SupervisorSpec,
        *,
        name: str | None = None,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        restart: Restart = Restart.PERMANENT,
    ) -> Ref[M]:
        """:meth:`spawn` for asyncio code: awaits the root supervisor's answer."""
        spec = self._spec_of(actor, name, args, kwargs, restart)
        return self._spawned(await self._root_ref().ask_async(StartChild(spec)))

    def lookup(self, name: str) -> Ref[Any]:
        """The actor registered under ``name`` (the same Ref across restarts).

        Raises:
            ActorNotFound: No actor has that name.
        """
        return self.runtime.lookup(name)

    def children(self) -> list[ChildInfo]:
        """The root supervisor's children, in start order."""
        result: list[ChildInfo] = self._root_ref().ask(WhichChildren())
        return result

    def tree(self, *, max_children: int = 100, timeout: float = 5.0) -> ActorNode:
        """The whole supervision tree: each actor's parent, restarts and mailbox depth.

        Every supervisor is asked for its children (see :class:`ActorNode`); one that
        does not answer within ``timeout`` seconds shows its ``error`` instead.

        Args:
            max_children: Children listed per supervisor; the rest are counted in ``more``.
            timeout: Seconds each supervisor has to answer.

        Raises:
            BlockingCallError: Called on the I/O loop or an actor's thread: use
                :meth:`tree_async` there.
        """

        def ask(name: str) -> list[ChildInfo]:
            result: list[ChildInfo] = self.runtime.lookup(name).ask(
                WhichChildren(), timeout=timeout
            )
            return result

        return build_tree(self._root_info(), ask, max_children)

    async def tree_async(self, *, max_children: int = 100, timeout: float = 5.0) -> ActorNode:
        """:meth:`tree` for asyncio code (each supervisor is awaited, never blocked on)."""

        async def ask(name: str) -> list[ChildInfo]:
            result: list[ChildInfo] = await self.runtime.lookup(name).ask_async(
                WhichChildren(), timeout=timeout
            )
            return result

        return await build_tree_async(self._root_info(), ask, max_children)

    def _root_info(self) -> ChildInfo:
        root = self._root_ref()
        return ChildInfo(
            name=self._spec.name,
            running=root.is_alive(),
            incarnation=1,
            restart=Restart.PERMANENT,
            supervisor=True,
            mailbox=mailbox_depth(root),
            on_loop=self._spec.runs_on_loop,
        )

    # ---- shared services -----------------------------------------------------------

    @property
    def runtime(self) -> Runtime:
        """The shared services; raises :class:`SystemNotRunning` when stopped."""
        rt = self._rt
        if rt is None:
            msg = f"system {self.name!r} is not running (call start() or use 'with')"
            raise SystemNotRunning(msg)
        return rt

    @property
    def bus(self) -> EventBus:
        """The event bus."""
        return self.runtime.bus

    @property
    def dead_letters(self) -> DeadLetters:
        """The dead-letter office."""
        return self.runtime.dead_letters

    @property
    def bridge(self) -> IoBridge:
        """The I/O loop."""
        return self.runtime.bridge

    @property
    def timers(self) -> Timers:
        """The timer thread."""
        return self.runtime.timers

    # ---- internals -----------------------------------------------------------------

    def _root_ref(self) -> Ref[object]:
        root = self._root
        if root is None:
            msg = f"system {self.name!r} is not running (call start() or use 'with')"
            raise SystemNotRunning(msg)
        if self.failure is not None:
            msg = f"system {self.name!r} has failed: {self.failure}"
            raise SystemNotRunning(msg)
        return root

    @staticmethod
    def _spec_of(
        actor: type[Actor[Any]] | ChildSpec | SupervisorSpec,
        name: str | None,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any] | None,
        restart: Restart,
    ) -> ChildSpec | SupervisorSpec:
        if isinstance(actor, ChildSpec | SupervisorSpec):
            return actor
        return ChildSpec(
            name=name or f"{getattr(actor, '__name__', 'actor')}-{next(_counter)}",
            actor=actor,
            args=args,
            kwargs=dict(kwargs or {}),
            restart=restart,
        )

    @staticmethod
    def _spawned(result: object) -> Ref[Any]:
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, Ref)
        return result

    def _root_gave_up(self, reason: str) -> None:
        self.failure = reason
        _log.critical(
            "root supervisor gave up; the system has no running actors",
            system=self.name,
            reason=reason,
        )
