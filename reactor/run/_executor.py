"""A step kind's executor: how one attempt of a step of that kind runs, and is undone.

The Run loop knows nothing of kinds. To run an attempt it looks up the executor
registered under the step's kind name (:func:`executor_for`) and calls
:meth:`StepExecutor.start` with an :class:`Attempt`: the step, its resolved arguments,
its :class:`~dsl.StepContext`, the run's services, and the ways to get work done without
blocking the run, each delivering its outcome to the run as a message:

* :meth:`Attempt.call`: user code, ``async def`` on the event loop, ``def`` in the
  worker pool, under the step's timeout; or wherever the engine's placer puts it (a
  Ray cluster: ``reactor.placement``);
* :meth:`Attempt.run`: an engine coroutine (a composite running child runs);
* :meth:`Attempt.ask`: a request to another actor (an ``ask`` step's model host);
* :meth:`Attempt.succeed` / :meth:`Attempt.fail`: the outcome is known at once.

What comes back goes through :meth:`StepExecutor.outcome` (a reply becomes a value or an
error) before the run decides what it means (retry, compensate, complete, ...).
:meth:`StepExecutor.cancel` stops a running attempt; :meth:`StepExecutor.undo` rolls
back a completed step whose kind knows how (a composite undoes its child runs).

The built-in executors live in :mod:`reactor.kinds`, one file per kind, registered when
it is imported; a kind of your own registers its executor the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Generic, Protocol, TypeVar

import otel
from actors import AskError, Failure, Ref
from dsl import StepContext, StepSpec
from dsl.kinds import KindError
from reactor.run._invoke import Err, Ok, Outcome, call_async, call_sync, guarded
from reactor.run._services import RunOptions, RunServices

__all__ = [
    "Attempt",
    "AttemptPort",
    "Cancellable",
    "StepExecutor",
    "executor_for",
    "register_executor",
    "unregister_executor",
]

I = TypeVar("I")  # noqa: E741 - the kind's definition class


class Cancellable(Protocol):
    """Work under way that can be stopped (an ``IoHandle``)."""

    def cancel(self) -> object:
        """Stop it; its outcome, if it still comes, is ignored."""


class AttemptPort(Protocol):
    """What an :class:`Attempt` needs from its run (the Run actor provides it)."""

    def attempt_pipe(
        self, attempt: Attempt[Any], coro: Coroutine[Any, Any, Any]
    ) -> Cancellable: ...

    def attempt_ask(self, attempt: Attempt[Any], to: Ref[Any], request: Any) -> None: ...

    def attempt_deliver(self, attempt: Attempt[Any], reply: Any) -> None: ...


class Attempt(Generic[I]):
    """One attempt of one step, as its executor sees it.

    Attributes:
        impl: The step's definition (its kind's definition class).
        spec: The bound step.
        number: This attempt, from 1.
        arguments: The resolved arguments.
        services: The engine's services (the worker pool, model hosts, child runs).
        trace: The trace context the attempt's work runs in (``None``: not traced).
        run_id: The run.
        reactor: The reactor's name.
        stack: Reactor names from the outermost run down to this one.
        options: The run's options (child runs share its concurrency key).
        executor: The executor running it.
        context_values: The run's context (``StepContext.context``; child runs share it).
        forced: The run was resumed with ``force``: its composed runs, continued, are
            too (their changed steps do not refuse the resume either).
        beat: Stamps the run's progress (``StepContext.heartbeat``; a composed run's
            progress is its parent step's); ``None``: nothing keeps an idle clock.
    """

    __slots__ = (
        "_context",
        "_port",
        "arguments",
        "beat",
        "context_values",
        "executor",
        "forced",
        "impl",
        "number",
        "options",
        "reactor",
        "run_id",
        "services",
        "spec",
        "stack",
        "trace",
    )

    def __init__(
        self,
        port: AttemptPort,
        spec: StepSpec,
        number: int,
        arguments: dict[str, Any],
        *,
        services: RunServices,
        trace: Any,
        run_id: str,
        reactor: str,
        stack: tuple[str, ...],
        options: RunOptions,
        executor: StepExecutor,
        context_values: Mapping[str, Any] | None = None,
        forced: bool = False,
        beat: Callable[[], object] | None = None,
    ) -> None:
        self._port = port
        self.forced = forced
        self.beat = beat
        self.context_values: Mapping[str, Any] = context_values or {}
        self.executor = executor
        self.spec = spec
        self.impl: I = spec.impl  # type: ignore[assignment]
        self.number = number
        self.arguments = arguments
        self.services = services
        self.trace = trace
        self.run_id = run_id
        self.reactor = reactor
        self.stack = stack
        self.options = options
        self._context: StepContext | None = None

    @property
    def context(self) -> StepContext:
        """What a step may know about its run (for functions that declare it)."""
        if self._context is None:
            self._context = StepContext(
                run_id=self.run_id,
                reactor=self.reactor,
                step=self.spec.name,
                attempt=self.number,
                retries_left=max(0, self.spec.max_retries - (self.number - 1)),
                context=self.context_values,
                concurrency_key=self.options.concurrency_key,
                beat=self.beat,
            )
        return self._context

    @property
    def child_prefix(self) -> str:
        """``<run>/<step>.<attempt>``: the run id of this attempt's child runs (and prefix)."""
        return f"{self.run_id}/{self.spec.name}.{self.number}"

    def call(
        self, fn: Callable[..., Any], kwargs: dict[str, Any], *, is_async: bool | None = None
    ) -> Cancellable:
        """Call user code where it belongs, under the step's timeout; deliver its outcome.

        ``async def`` runs on the event loop, a plain ``def`` in the worker pool (whose
        thread cannot be stopped at the timeout: its late result is ignored), unless
        the engine's placer (``reactor.placement``) runs it elsewhere.
        """
        if is_async is None:
            is_async = inspect.iscoroutinefunction(fn)
        placer = self.services.placer
        if placer is not None:
            placed = placer(self, fn, kwargs, is_async)
            if placed is not None:
                return self._port.attempt_pipe(self, placed)
        timeout = self.spec.timeout
        if is_async:
            coro = call_async(fn, kwargs, timeout, self.trace)
        else:
            coro = call_sync(self.services.pool, fn, kwargs, timeout, self.trace)
        return self._port.attempt_pipe(self, coro)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Cancellable:
        """Await an engine coroutine on the loop, under the step's timeout; deliver its result."""
        return self._port.attempt_pipe(self, guarded(coro, self.spec.timeout, self.trace))

    def ask(self, to: Ref[Any], request: Any) -> None:
        """Ask another actor, within the step's timeout; its answer is the outcome."""
        self._port.attempt_ask(self, to, request)

    def delivered(self, reply: Any) -> None:
        """What ran for the attempt ended with ``reply``: hand it to the run.

        The run passes this bound method as the callback of the attempt's coroutine or
        ask (one object, where a closure over the run and the attempt is three).
        """
        self._port.attempt_deliver(self, reply)

    def succeed(self, value: Any) -> None:
        """The attempt returned ``value`` (now)."""
        self._port.attempt_deliver(self, Ok(value))

    def fail(self, error: BaseException) -> None:
        """The attempt failed with ``error`` (now)."""
        self._port.attempt_deliver(self, Err(error))

    async def run_child(self, reactor: type[Any], inputs: dict[str, Any], suffix: str = "") -> Any:
        """Run ``reactor`` as a child run of this attempt; returns its result.

        Child runs are named after the attempt (and ``suffix``, which tells the children
        of one attempt apart), so that after a crash the re-run attempt finds them.
        """
        prefix = self.child_prefix
        return await self.services.start_child(
            reactor,
            inputs,
            run_id=f"{prefix}/{suffix}" if suffix else prefix,
            parent=self.run_id,
            parent_step=self.spec.name,
            stack=self.stack,
            concurrency_key=self.options.concurrency_key,
            max_concurrency=self.options.max_concurrency,
            carrier=otel.inject(),
            context=self.context_values,
            forced=self.forced,
            beat=self.beat,
        )


class StepExecutor(Protocol):
    """How steps of one kind run: subclass it (for the defaults) and implement ``start``.

    One instance serves every run (it must keep no per-run state): whatever an attempt
    needs is on the :class:`Attempt`.
    """

    def start(self, attempt: Attempt[Any]) -> Cancellable | None:
        """Start the attempt; its outcome comes back through ``attempt``.

        Returns:
            What :meth:`cancel` stops, or ``None`` when nothing can be (the outcome
            was delivered already, or is an actor's answer with its own deadline).
        """
        ...

    def outcome(self, attempt: Attempt[Any], reply: Any) -> Outcome:
        """What came back, as a value or an error (a ``Failure`` from an actor is an error).

        The default suits most kinds: outcomes of :meth:`Attempt.call` and
        :meth:`Attempt.run` as they are, an actor's ``Failure`` as an ``AskError``, any
        other answer as the value.
        """
        if isinstance(reply, Ok | Err):
            return reply
        if isinstance(reply, Failure):
            return Err(AskError(reply))
        return Ok(reply)

    def cancel(self, running: Cancellable) -> None:
        """Stop a running attempt (the run is cancelled, timed out, or failing)."""
        running.cancel()

    def undo(self, attempt: Attempt[Any], value: Any) -> Coroutine[Any, Any, Any] | None:
        """Roll back a completed step whose kind knows how; ``None``: it does not.

        Runs when no ``undo`` option was given. A composite returns the coroutine
        that rolls back its child runs.
        """
        return None


_EXECUTORS: dict[str, StepExecutor] = {}


def _origin(executor: StepExecutor) -> tuple[str, str]:
    cls = type(executor)
    try:
        where = inspect.getfile(cls)
    except TypeError:
        where = cls.__module__
    return where, cls.__qualname__


def register_executor(kind: str, executor: StepExecutor) -> StepExecutor:
    """Make ``executor`` run the steps of ``kind`` (the definition side's kind name).

    Registering the same executor class again (its module imported a second time) keeps
    the first.

    Raises:
        KindError: Another executor runs that kind already.
    """
    existing = _EXECUTORS.get(kind)
    if existing is not None:
        if _origin(existing) == _origin(executor):
            return existing
        cls = type(existing)
        msg = (
            f"the step kind {kind!r} already has an executor "
            f"({cls.__module__}.{cls.__qualname__}); unregister it first"
        )
        raise KindError(msg)
    _EXECUTORS[kind] = executor
    return executor


def unregister_executor(kind: str) -> None:
    """Forget the executor of ``kind`` (tests that register kinds of their own clean up)."""
    _EXECUTORS.pop(kind, None)


def executor_for(kind: str) -> StepExecutor:
    """The executor registered for ``kind``.

    Raises:
        KindError: None is (the module that registers it was not imported).
    """
    executor = _EXECUTORS.get(kind)
    if executor is None:
        msg = (
            f"no executor for the step kind {kind!r}: import the module that registers it "
            "(reactor.kinds registers the built-in ones)"
        )
        raise KindError(msg)
    return executor
