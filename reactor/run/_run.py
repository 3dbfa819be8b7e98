"""The Run actor: one run of a reactor, event-driven, journaled step by step.

The executor loop. Each numbered item happens while handling one message of the Run
actor, a :class:`~actors.LoopActor`: runs take turns on the I/O loop, with no thread
each, so an ``async def`` step's outcome reaches its run without a thread hop. Nothing
in it blocks (step code runs on the event loop or in the worker pool, LLM calls are
asks to a model host, the journal is asks to the Store):

1. Start. A new run checks its inputs (done by the engine before the actor starts) and
   journals ``RunStarted`` with ``expected_seq=0``. If the stream already exists (a
   composed run started again after a crash, or ``resume``), the journal is read and
   replayed instead: completed steps get their results back without running, steps
   added while it ran are rebuilt, a rollback that was under way goes on. Then
   ``RunResumed`` is journaled.
2. Dispatch (``_pump``). Take ready steps (every dependency completed or skipped), in plan order:
   a. resolve the arguments (inputs, results with sub-paths, literal values);
   b. if an argument comes from a skipped step, or ``where`` is false: skip the step
      (journal ``StepSkipped``); its dependents become ready in turn;
   c. if its ``guard`` returns a ``Shortcut``: complete it with that value (3a);
   d. if fewer than ``max_concurrency`` steps run and the concurrency key has a slot:
      journal ``StepStarted`` and start the attempt. ``async def`` steps and
      composites run on the event loop, ``def`` steps in the worker pool, ``ask``
      steps are a message to a model host, templates and collects complete at once.
      Otherwise the step waits for a slot.
3. An attempt's outcome arrives (a message):
   a. a value: encode it (a value that cannot be encoded fails the step, 3e),
      journal ``StepCompleted``, mark the dependents whose dependencies are now all
      settled as ready, and go to 2;
   b. ``WithSteps``: check the new steps against the graph, journal ``StepsAdded``,
      add them, then 3a;
   c. ``Halt``: stop dispatching; once nothing runs, journal ``RunHalted`` and answer
      "halted" (``resume`` runs that step again);
   d. ``Retry`` or a transient error (timeout, connection, a retryable model
      failure), with retries left: journal ``StepFailed(will_retry)`` and start it
      again after its backoff (a timer message, then 2);
   e. any other error: run ``compensate`` if the step has one; ``Continue(v)`` is 3a
      with ``v``, ``Retry`` is 3d; otherwise journal ``StepFailed`` and go to 5.
4. When no step is pending or running: journal ``RunCompleted`` with the returned
   step's result; once that is durable, answer the caller and stop.
5. Rollback. Stop dispatching; wait for running attempts (a result that arrives now
   still counts as completed, so it is undone too); then undo each completed step
   that has an ``undo``, newest first, one at a time, journaling ``StepUndone`` or
   ``StepUndoFailed`` (an undo that keeps failing is recorded, and rollback goes on);
   journal ``RunFailed`` and answer.
6. ``CancelRun`` or the run's timeout: cancel running attempts, then 5, ending in
   ``RunCancelled`` (or ``RunFailed`` with a timeout error).

Results are journaled before their dependents finish but not necessarily before they
start: the journal is a single ordered stream, so whatever a crash leaves durable is a
prefix of it, and a dependent's completion is never durable without its
dependencies'. Steps whose completion was not durable run again on resume, under the
same attempt number: a composite's child runs are named after the attempt, so the re-run
finds them and continues them (a child that had ended answers from its journal).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, assert_never

import msgspec
from opentelemetry import context as otel_context

import otel
from actors import AskError, Failure, FailureKind, LoopActor, Ref
from actors.llm import ChatRequest, Completion
from actors.lowlevel import IoHandle
from actors.store import JournalAppend, JournalAppended, JournalEntries, JournalEvent, JournalRead
from dsl import (
    AskImpl,
    CollectImpl,
    Continue,
    DefinitionError,
    Fail,
    FunctionImpl,
    Halt,
    PathError,
    Plan,
    Retry,
    Shortcut,
    StepContext,
    StepSpec,
    TemplateImpl,
    WithSteps,
    plan_steps,
    resolve_path,
)
from dsl import (
    Ref as SourceRef,
)
from reactor.run._codec import EncodeError, decode_value, encode_value
from reactor.run._dynamic import describe_steps, rebuild_steps
from reactor.run._errors import RunCancelledError, RunFailedError, RunHaltedError
from reactor.run._limits import Limits
from reactor.run._middleware import (
    Middleware,
    RunInfo,
    RunOutcome,
    StepEvent,
    StepEventKind,
    notify,
)
from reactor.run._records import (
    RUN_EVENT_DECODER,
    Owner,
    RunCancelled,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunHalted,
    RunResumed,
    RunStarted,
    RunUndone,
    StepCompensated,
    StepCompleted,
    StepError,
    StepFailed,
    StepsAdded,
    StepSkipped,
    StepStarted,
    StepUndoFailed,
    StepUndone,
    stream_of,
)

__all__ = ["CancelRun", "ChildRunner", "Run", "RunOptions", "RunServices"]


# -- what the engine hands a run ---------------------------------------------------------

ChildRunner = Callable[..., Coroutine[Any, Any, Any]]
"""``await run_child(reactor, inputs, suffix)``: run a composed reactor to its result."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How one run runs.

    Attributes:
        max_concurrency: Steps running at once.
        timeout: Seconds the run may take (from its start or resume).
        concurrency_key: A pool of step slots shared with other runs.
    """

    max_concurrency: int = 8
    timeout: float | None = None
    concurrency_key: str | None = None


@dataclass(frozen=True, slots=True)
class RunServices:
    """The engine's services a run uses (one instance shared by all runs).

    Attributes:
        store: The Store actor.
        pool: The worker pool for plain ``def`` steps.
        limits: The concurrency-key pools.
        middleware: Observers of every run.
        owner: This process.
        resolve_host: ``(model, host) -> (Ref, model)``: the ModelHost for an ``ask``
            step, and the model (an empty model means the engine's default one);
            raises ``LookupError`` naming what is available.
        start_child: Starts a composed run; see :class:`ChildRunner`.
        undo_children: Rolls back the completed child runs under a run-id prefix.
        journal_timeout: Seconds a journal append may wait.
        journal_linger: Seconds a run's journal events may wait to be sent together.
    """

    store: Ref[Any]
    pool: ThreadPoolExecutor
    limits: Limits
    middleware: tuple[Middleware, ...]
    owner: Owner
    resolve_host: Callable[[str, str | None], tuple[Ref[Any], str]]
    start_child: Callable[..., Coroutine[Any, Any, Any]]
    undo_children: Callable[[str], Coroutine[Any, Any, Any]]
    journal_timeout: float = 30.0
    journal_linger: float = 0.002


@dataclass(frozen=True, slots=True)
class CancelRun:
    """Tell a Run to stop: running attempts are cancelled and completed steps undone."""

    reason: str = "cancelled"


# -- per-step state ----------------------------------------------------------------------


class _Status(enum.Enum):
    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    WAITING = "waiting"  # for a retry's backoff
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNDONE = "undone"


_SETTLED = frozenset({_Status.DONE, _Status.SKIPPED})


class _Mode(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    HALTING = "halting"
    ROLLING_BACK = "rolling_back"
    FINISHING = "finishing"


@dataclass(slots=True)
class _Step:
    spec: StepSpec
    status: _Status = _Status.PENDING
    blockers: int = 0
    attempt: int = 0
    started_at: float = 0.0
    arguments: dict[str, Any] = field(default_factory=dict)
    ran: bool = False  # completed by running (not by a guard or a replay of one)
    handle: IoHandle | None = None
    holds_slot: bool = False


class _Ok:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Err:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_Outcome = _Ok | _Err


# -- invoking user code --------------------------------------------------------------------


async def _call_async(
    fn: Callable[..., Any], kwargs: dict[str, Any], timeout: float | None, ctx: Any
) -> _Outcome:
    token = otel_context.attach(ctx) if ctx is not None else None
    try:
        if timeout is None:
            return _Ok(await fn(**kwargs))
        async with asyncio.timeout(timeout):
            return _Ok(await fn(**kwargs))
    except Exception as exc:  # noqa: BLE001 - the step's failure is a value here
        return _Err(exc)
    finally:
        if token is not None:
            otel_context.detach(token)


def _in_context(fn: Callable[..., Any], kwargs: dict[str, Any], ctx: Any) -> Any:
    token = otel_context.attach(ctx) if ctx is not None else None
    try:
        return fn(**kwargs)
    finally:
        if token is not None:
            otel_context.detach(token)


async def _call_sync(
    pool: ThreadPoolExecutor,
    fn: Callable[..., Any],
    kwargs: dict[str, Any],
    timeout: float | None,
    ctx: Any,
) -> _Outcome:
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(pool, _in_context, fn, kwargs, ctx)
        if timeout is None:
            return _Ok(await future)
        return _Ok(await asyncio.wait_for(future, timeout))
    except Exception as exc:  # noqa: BLE001 - the step's failure is a value here
        return _Err(exc)


async def _call_any(
    pool: ThreadPoolExecutor, fn: Callable[..., Any], kwargs: dict[str, Any], ctx: Any
) -> _Outcome:
    """Call a hook (compensate, undo) where its kind belongs: the loop or the pool."""
    if asyncio.iscoroutinefunction(fn):
        return await _call_async(fn, kwargs, None, ctx)
    outcome = await _call_sync(pool, fn, kwargs, None, ctx)
    if isinstance(outcome, _Ok) and asyncio.iscoroutine(outcome.value):
        try:
            return _Ok(await outcome.value)
        except Exception as exc:  # noqa: BLE001
            return _Err(exc)
    return outcome


async def _guarded(coro: Coroutine[Any, Any, Any], timeout: float | None, ctx: Any) -> _Outcome:
    token = otel_context.attach(ctx) if ctx is not None else None
    try:
        if timeout is None:
            return _Ok(await coro)
        async with asyncio.timeout(timeout):
            return _Ok(await coro)
    except Exception as exc:  # noqa: BLE001
        return _Err(exc)
    finally:
        if token is not None:
            otel_context.detach(token)


def _transient(error: BaseException) -> bool:
    if isinstance(error, AskError):
        kind = error.failure.kind
        return kind.retryable and kind is not FailureKind.CIRCUIT_OPEN
    return isinstance(error, TimeoutError | ConnectionError)


def step_error(step: str, error: BaseException) -> StepError:
    """The journal's description of ``error`` raised by ``step``."""
    if isinstance(error, AskError):
        failure = error.failure
        return StepError(
            step=step,
            kind=failure.kind.value,
            error=failure.kind.value,
            message=failure.message,
            retryable=_transient(error),
        )
    if isinstance(error, TimeoutError):
        return StepError(
            step=step,
            kind="timeout",
            error=type(error).__name__,
            message=str(error) or "the attempt took longer than its timeout",
            retryable=True,
        )
    return StepError(
        step=step,
        kind="error",
        error=type(error).__name__,
        message=str(error) or repr(error),
        retryable=_transient(error),
    )


class _StepFailure(Exception):  # noqa: N818 - a failure value, not raised to users
    """A failure the engine found (bad argument path, unencodable result, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# -- the actor -----------------------------------------------------------------------------


class Run(LoopActor[object]):
    """Executes one run (see the module docstring for the loop).

    Args:
        services: The engine's services.
        reactor: The reactor class.
        run_id: The run's id (its stream is ``run:<run_id>``).
        inputs: The checked inputs (``None``: the run exists; replay its journal).
        raw_inputs: The inputs as given, encoded, for ``RunStarted``.
        locator: Where the reactor is found again (for ``RunStarted``).
        options: Concurrency and timeout.
        done: Resolved with the result or a :class:`~reactor.RunError`.
        parent: The composing run, if any.
        stack: Reactor names from the outermost run down to this one.
        carrier: The trace context to start the run's span in.
        resume_reason: Why the run is being resumed (``RunResumed.reason``).
        input_check: Re-checks replayed inputs: ``(raw) -> dict``.
        fresh: The run id was just made up, so its stream cannot exist: start
            dispatching without waiting for ``RunStarted`` to be durable.
        undo_only: Roll back a completed run (a composed run whose parent failed
            later): replay its journal, undo its completed steps, journal
            ``RunUndone``.
    """

    def __init__(
        self,
        services: RunServices,
        reactor: type[Any],
        run_id: str,
        *,
        inputs: dict[str, Any] | None,
        raw_inputs: msgspec.Raw | None,
        locator: str,
        options: RunOptions,
        done: Future[Any],
        parent: str | None = None,
        stack: tuple[str, ...] = (),
        carrier: dict[str, str] | None = None,
        resume_reason: str = "resumed",
        input_check: Callable[[Any], dict[str, Any]] | None = None,
        fresh: bool = False,
        undo_only: bool = False,
    ) -> None:
        super().__init__()
        self._svc = services
        self._reactor = reactor
        self._plan: Plan = reactor.__plan__
        self._run_id = run_id
        self._stream = stream_of(run_id)
        self._inputs = inputs
        self._raw_inputs = raw_inputs
        self._locator = locator
        self._options = options
        self._done = done
        self._parent_run = parent
        self._stack = stack or (self._plan.reactor,)
        self._carrier = carrier
        self._resume_reason = resume_reason
        self._input_check = input_check
        self._fresh = fresh
        self._undo_only = undo_only
        self._mw = services.middleware
        self._info = RunInfo(
            run_id=run_id,
            reactor=self._plan.reactor,
            parent=parent,
            stack=self._stack,
            steps=tuple(self._plan.steps),
            carrier=carrier,
        )
        self._steps: dict[str, _Step] = {}
        self._dependents: dict[str, list[str]] = collections.defaultdict(list)
        self._values: dict[str, Any] = {}
        self._ready: collections.deque[str] = collections.deque()
        self._running = 0
        self._completed: list[str] = []  # completion order, for undo
        self._errors: list[StepError] = []
        self._mode = _Mode.STARTING
        self._seq = 0
        self._acked = 0
        self._outbox: list[tuple[str, bytes, Callable[[JournalAppended | Failure], object]]] = []
        self._flush_armed = False
        self._halt: tuple[str, str] | None = None
        self._cancel: str | None = None
        self._started = time.monotonic()
        self._timer: Any = None
        self._waiting_slot = False
        self._stats: collections.Counter[str] = collections.Counter()

    # ---- lifecycle --------------------------------------------------------------------

    def started(self) -> None:
        """Journal the start, or read the journal back (1)."""
        for spec in self._plan.steps.values():
            self._add_step(spec)
        if self._inputs is None:
            self._read_journal()
            return
        self._values.update(self._inputs)
        started = RunStarted(
            run_id=self._run_id,
            reactor=self._plan.reactor,
            locator=self._locator,
            inputs=self._raw_inputs or msgspec.Raw(b"{}"),
            options=msgspec.structs.asdict(_options_record(self._options)),
            parent=self._parent_run,
            owner=self._svc.owner,
            at=time.time(),
        )
        if self._fresh:
            # A new id nobody else can have used: no need to wait for the journal to
            # confirm the stream is new before dispatching (the appends stay in order).
            self._append(started, self._check_appended)
            self._begin(resumed=False)
            return
        self._append(started, self._start_appended)
        self._flush_journal()  # its answer says whether the stream is new: no lingering

    def stopped(self) -> None:
        """Answer the caller if the actor stops before the run ended."""
        if self._timer is not None:
            self._timer.cancel()
        self._release_all_slots()
        if not self._done.done():
            self._done.set_exception(
                RunFailedError(
                    run_id=self._run_id,
                    reactor=self._plan.reactor,
                    errors=[
                        StepError(
                            step="",
                            kind=FailureKind.ACTOR_STOPPED.value,
                            error="RunStopped",
                            message="the run's actor stopped before the run ended; "
                            "it can be resumed",
                        )
                    ],
                )
            )

    def receive(self, message: object) -> object:
        """Handle a cancellation; everything else arrives as callbacks."""
        match message:
            case CancelRun(reason=reason):
                self._cancel_run(reason)
            case _SlotFree():
                self._waiting_slot = False
                if self._mode is _Mode.RUNNING:
                    self._pump()
            case _:
                self.log.warning("unknown message to a run", type=type(message).__name__)
        return None

    # ---- 1. start and replay -----------------------------------------------------------

    def _start_appended(self, outcome: JournalAppended | Failure) -> None:
        if isinstance(outcome, Failure):
            if outcome.kind is FailureKind.BAD_REQUEST and "actual_seq" in outcome.details:
                # The stream exists: this run was started before (a composed run after
                # a crash). Continue it from its journal.
                self._seq = 0
                self._inputs = None
                self._read_journal()
                return
            self._journal_failed(outcome)
            return
        self._begin(resumed=False)

    def _read_journal(self) -> None:
        self.ask(
            self._svc.store,
            JournalRead(stream_id=self._stream),
            self._replay,
            timeout=self._svc.journal_timeout,
        )

    def _replay(self, outcome: JournalEntries | Failure) -> None:
        if isinstance(outcome, Failure):
            self._journal_failed(outcome)
            return
        try:
            events = [RUN_EVENT_DECODER.decode(e.data) for e in outcome.entries]
            self._seq = self._acked = len(outcome.entries)
            if self._undo_only:
                self._undo_completed(events)
                return
            if events and isinstance(events[-1], RunCompleted | RunFailed | RunCancelled):
                self._already_ended(events[-1])
                return
            self._apply_history(events)
        except (msgspec.DecodeError, LookupError, DefinitionError, ValueError) as exc:
            self._finish_now(
                RunFailedError(
                    run_id=self._run_id,
                    reactor=self._plan.reactor,
                    errors=[
                        StepError(step="", kind="internal", error="ResumeError", message=str(exc))
                    ],
                )
            )
            return
        self._append(
            RunResumed(
                run_id=self._run_id,
                owner=self._svc.owner,
                reason=self._resume_reason,
                at=time.time(),
            ),
            self._check_appended,
        )
        self._begin(resumed=True)

    def _undo_completed(self, events: list[RunEvent]) -> None:
        """Replay a completed run, then roll it back (undo-only mode)."""
        if not events or not isinstance(events[-1], RunCompleted):
            self._mode = _Mode.FINISHING  # it failed (rolled back), or was undone already
            if not self._done.done():
                self._done.set_result(None)
            self.stop()
            return
        self._apply_history(events[:-1])
        notify(self._mw, "run_started", _replace(self._info, resumed=True))
        self._mode = _Mode.ROLLING_BACK
        self._roll_back()

    def _already_ended(self, event: RunCompleted | RunFailed | RunCancelled) -> None:
        """Answer with the outcome a composed run already journaled, without running it.

        A parent that crashed after its child ended (but before its own step's outcome
        was durable) starts the child again under the same run id; the child's journal
        has the answer.
        """
        self._mode = _Mode.FINISHING
        reactor = self._plan.reactor
        error: BaseException
        match event:
            case RunCompleted():
                returns = self._plan.returns
                try:
                    value = decode_value(event.value, self._steps[returns].spec.result_type)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    error = RunFailedError(
                        run_id=self._run_id,
                        reactor=reactor,
                        errors=[
                            StepError(
                                step="", kind="internal", error="ResumeError", message=str(exc)
                            )
                        ],
                    )
                else:
                    if not self._done.done():
                        self._done.set_result(value)
                    self.stop()
                    return
            case RunFailed():
                error = RunFailedError(run_id=self._run_id, reactor=reactor, errors=event.errors)
            case RunCancelled():
                error = RunCancelledError(run_id=self._run_id, reactor=reactor, reason=event.reason)
        self._finish_now(error)

    def _apply_history(self, events: list[RunEvent]) -> None:  # noqa: PLR0912 - one branch per event
        failed: dict[str, StepError] = {}
        # Attempts with no journaled outcome (in flight when the process died, or
        # halted): they run again under the same number, so a composite finds the
        # child runs it started (named after the attempt) and continues them.
        unfinished: dict[str, int] = {}
        for event in events:
            match event:
                case RunStarted():
                    check = self._input_check
                    raw = msgspec.json.decode(event.inputs)
                    self._inputs = check(raw) if check else dict(raw)
                    self._values.update(self._inputs)
                case StepsAdded():
                    specs = plan_steps(
                        self._plan.reactor,
                        self._plan.inputs,
                        rebuild_steps(event.steps),
                        existing={n: s.spec for n, s in self._steps.items()},
                    )
                    self._add_dynamic(specs, replayed=True)
                case StepStarted():
                    self._steps[event.step].attempt = event.attempt
                    unfinished[event.step] = event.attempt
                case StepCompleted():
                    unfinished.pop(event.step, None)
                    step = self._steps[event.step]
                    value = decode_value(event.value, step.spec.result_type)
                    self._settle_replayed(step, _Status.DONE, value, ran=not event.guarded)
                    self._replayed_event(StepEventKind.COMPLETE, step, event.at, event.started_at)
                case StepSkipped():
                    self._settle_replayed(self._steps[event.step], _Status.SKIPPED, None)
                    self._replayed_event(StepEventKind.SKIP, self._steps[event.step], event.at)
                case StepFailed():
                    unfinished.pop(event.step, None)
                    self._steps[event.step].attempt = event.attempt
                    if not event.will_retry:
                        failed[event.step] = event.error
                case StepCompensated():
                    if event.decision == "continue" and event.step in failed:
                        del failed[event.step]
                        value = decode_value(
                            event.value or b"null", self._steps[event.step].spec.result_type
                        )
                        self._settle_replayed(self._steps[event.step], _Status.DONE, value)
                case StepUndone() | StepUndoFailed():
                    self._steps[event.step].status = _Status.UNDONE
                case RunHalted() | RunResumed():
                    pass
                case RunCompleted() | RunFailed() | RunCancelled() | RunUndone():
                    msg = f"run {self._run_id} already ended ({type(event).__name__})"
                    raise ValueError(msg)
                case _:
                    assert_never(event)
        self._errors.extend(failed.values())
        for name in failed:
            self._steps[name].status = _Status.FAILED
        for name, attempt in unfinished.items():
            step = self._steps[name]
            if step.status is _Status.PENDING:
                step.attempt = attempt - 1  # _launch counts it again

    def _settle_replayed(
        self, step: _Step, status: _Status, value: Any, *, ran: bool = False
    ) -> None:
        step.status = status
        if status is _Status.DONE:
            self._values[step.spec.name] = value
            self._completed.append(step.spec.name)
            step.ran = ran

    def _replayed_event(
        self, kind: StepEventKind, step: _Step, at: float, started_at: float | None = None
    ) -> None:
        if self._mw:
            duration = at - started_at if started_at is not None else None
            notify(
                self._mw,
                "step_event",
                self._info,
                StepEvent(
                    kind=kind,
                    step=step.spec.name,
                    attempt=step.attempt,
                    at=at,
                    duration=duration,
                    replayed=True,
                ),
            )

    def _begin(self, *, resumed: bool) -> None:
        if resumed:
            self._info = _replace(self._info, resumed=True, steps=tuple(self._steps))
        notify(self._mw, "run_started", self._info)
        timeout = self._options.timeout
        if timeout is not None:
            self._timer = self.call_later(timeout, self._on_timeout, name="run timeout")
        if self._errors:
            self._mode = _Mode.ROLLING_BACK
            self._roll_back()
            return
        self._mode = _Mode.RUNNING
        for step in self._steps.values():
            if step.status is _Status.PENDING or step.status is _Status.READY:
                step.status = _Status.PENDING
                step.blockers = self._blockers(step.spec)
        for name in self._plan.order + tuple(n for n in self._steps if n not in self._plan.steps):
            step = self._steps[name]
            if step.status is _Status.PENDING and step.blockers == 0:
                step.status = _Status.READY
                self._ready.append(name)
        self._pump()

    # ---- the graph ----------------------------------------------------------------------

    def _add_step(self, spec: StepSpec) -> None:
        self._steps[spec.name] = _Step(spec)
        for dependency in spec.depends_on:
            if dependency not in self._plan.inputs:
                self._dependents[dependency].append(spec.name)

    def _blockers(self, spec: StepSpec) -> int:
        return sum(
            1
            for d in spec.depends_on
            if d not in self._plan.inputs and self._steps[d].status not in _SETTLED
        )

    def _add_dynamic(self, specs: Mapping[str, StepSpec], *, replayed: bool) -> None:
        for spec in specs.values():
            self._add_step(spec)
            step = self._steps[spec.name]
            if not replayed:
                step.blockers = self._blockers(spec)
                if step.blockers == 0:
                    step.status = _Status.READY
                    self._ready.append(spec.name)

    def _settled(self, name: str) -> None:
        for dependent in self._dependents.get(name, ()):
            step = self._steps[dependent]
            if step.status is _Status.PENDING:
                step.blockers -= 1
                if step.blockers <= 0:
                    step.status = _Status.READY
                    self._ready.append(dependent)

    # ---- 2. dispatch ------------------------------------------------------------------------

    def _pump(self) -> None:
        if self._mode is not _Mode.RUNNING:
            return
        limit = self._options.max_concurrency
        while self._ready and self._mode is _Mode.RUNNING:
            if self._running >= limit:
                return
            name = self._ready[0]
            step = self._steps[name]
            if step.status is not _Status.READY:
                self._ready.popleft()
                continue
            if not step.holds_slot and not self._take_slot(step):
                return
            self._ready.popleft()
            self._prepare(step)
        if self._mode is _Mode.RUNNING and self._running == 0 and not self._ready:
            self._maybe_complete()

    def _take_slot(self, step: _Step) -> bool:
        key = self._options.concurrency_key
        if key is None or step.spec.sub_reactors:
            return True  # composites wait for their children, which take slots
        if self._svc.limits.try_acquire(key, self._options.max_concurrency, self._wake):
            step.holds_slot = True
            return True
        self._waiting_slot = True
        return False

    def _wake(self) -> None:
        ref = self.actor_ref
        with contextlib.suppress(Exception):
            ref.tell(_SlotFree())

    def _release_slot(self, step: _Step) -> None:
        if step.holds_slot:
            step.holds_slot = False
            key = self._options.concurrency_key
            if key is not None:
                self._svc.limits.release(key)

    def _release_all_slots(self) -> None:
        for step in self._steps.values():
            self._release_slot(step)

    def _prepare(self, step: _Step) -> None:
        spec = step.spec
        try:
            arguments, skipped_by = self._arguments(spec)
        except _StepFailure as exc:
            self._release_slot(step)
            self._fail_for_good(
                step,
                StepError(step=spec.name, kind=exc.kind, error="ArgumentError", message=str(exc)),
            )
            return
        if skipped_by is None and spec.where is not None:
            try:
                if not spec.where(arguments):
                    skipped_by = "where"
            except Exception as exc:  # noqa: BLE001 - the predicate's failure fails the step
                self._release_slot(step)
                self._fail_for_good(step, step_error(spec.name, exc))
                return
        if skipped_by is not None:
            self._release_slot(step)
            self._skip(step, skipped_by)
            return
        step.arguments = arguments
        if spec.guard is not None:
            try:
                verdict = spec.guard(arguments)
            except Exception as exc:  # noqa: BLE001
                self._release_slot(step)
                self._fail_for_good(step, step_error(spec.name, exc))
                return
            if isinstance(verdict, Shortcut):
                self._release_slot(step)
                step.attempt = max(step.attempt, 1)
                step.started_at = time.time()
                self._event(StepEventKind.GUARD, step)
                self._complete(step, verdict.value, guarded=True)
                return
        self._launch(step)

    def _arguments(self, spec: StepSpec) -> tuple[dict[str, Any], str | None]:
        values = self._values
        arguments: dict[str, Any] = {}
        for argument, source in spec.arguments.items():
            if not isinstance(source, SourceRef):
                arguments[argument] = source.value
                continue
            name = source.name
            other = self._steps.get(name)
            if other is not None and other.status is _Status.SKIPPED:
                return arguments, f"needs {name}, which was skipped"
            root = values[name]
            if source.path:
                try:
                    root = resolve_path(root, source.path, what=name)
                except PathError as exc:
                    msg = f"argument {argument!r}: {exc}"
                    raise _StepFailure("bad_argument", msg) from exc
            arguments[argument] = root
        return arguments, None

    def _skip(self, step: _Step, why: str) -> None:
        step.status = _Status.SKIPPED
        now = time.time()
        self._append(StepSkipped(step=step.spec.name, at=now), self._check_appended)
        self._event(StepEventKind.SKIP, step, detail=why)
        self._settled(step.spec.name)
        self._dispatch_soon()

    def _launch(self, step: _Step) -> None:
        spec = step.spec
        name = spec.name
        step.attempt += 1
        attempt = step.attempt
        step.status = _Status.RUNNING
        step.started_at = now = time.time()
        self._running += 1
        self._stats["attempts"] += 1
        self._append(StepStarted(step=name, attempt=attempt, at=now), self._check_appended)
        ctx = self._event(StepEventKind.START, step, want_context=True)

        def then(outcome: _Outcome | Failure) -> None:
            self._finished(name, attempt, outcome)

        impl = spec.impl
        match impl:
            case FunctionImpl():
                kwargs = step.arguments
                if impl.context_param is not None:
                    kwargs = {
                        **kwargs,
                        impl.context_param: StepContext(
                            run_id=self._run_id,
                            reactor=self._plan.reactor,
                            step=name,
                            attempt=attempt,
                            retries_left=max(0, spec.max_retries - (attempt - 1)),
                        ),
                    }
                if impl.is_async:
                    coro = _call_async(impl.fn, kwargs, spec.timeout, ctx)
                else:
                    coro = _call_sync(self._svc.pool, impl.fn, kwargs, spec.timeout, ctx)
                step.handle = self.pipe_to_self(coro, then, name=f"step {name}")
            case AskImpl():
                self._ask(step, impl, ctx, then)
            case TemplateImpl():
                try:
                    then(_Ok(impl.text.format_map(step.arguments)))
                except (KeyError, IndexError, AttributeError, ValueError) as exc:
                    then(_Err(exc))
            case CollectImpl():
                then(_Ok(dict(step.arguments)))
            case _:
                child = self._child_runner(step)
                from reactor.kinds import run_composite  # noqa: PLC0415

                coro = _guarded(run_composite(impl, step.arguments, child), spec.timeout, ctx)
                step.handle = self.pipe_to_self(coro, then, name=f"step {name}")

    def _ask(
        self, step: _Step, impl: AskImpl, ctx: Any, then: Callable[[_Outcome | Failure], None]
    ) -> None:
        try:
            model = impl.model.format_map(step.arguments)
            host, model = self._svc.resolve_host(model, impl.host)
            prompt = impl.prompt.format_map(step.arguments)
            system = impl.system.format_map(step.arguments) if impl.system else None
        except (LookupError, AttributeError, ValueError) as exc:
            then(
                _Err(
                    _StepFailure(
                        "not_found" if isinstance(exc, LookupError) else "bad_argument", str(exc)
                    )
                )
            )
            return
        request = ChatRequest.prompt(
            model,
            prompt,
            system=system,
            temperature=impl.temperature,
            max_tokens=impl.max_tokens,
            options=dict(impl.options),
        )

        def answered(reply: Completion | Failure) -> None:
            then(_Err(AskError(reply)) if isinstance(reply, Failure) else _Ok(reply))

        token = otel_context.attach(ctx) if ctx is not None else None
        try:
            self.ask(host, request, answered, timeout=step.spec.timeout)
        finally:
            if token is not None:
                otel_context.detach(token)

    def _child_runner(self, step: _Step) -> ChildRunner:
        base = f"{self._run_id}/{step.spec.name}.{step.attempt}"
        start_child = self._svc.start_child
        parent, stack, key, step_name = (
            self._run_id,
            self._stack,
            self._options.concurrency_key,
            step.spec.name,
        )
        max_concurrency = self._options.max_concurrency

        async def run_child(reactor: type[Any], inputs: dict[str, Any], suffix: str = "") -> Any:
            run_id = f"{base}/{suffix}" if suffix else base
            return await start_child(
                reactor,
                inputs,
                run_id=run_id,
                parent=parent,
                parent_step=step_name,
                stack=stack,
                concurrency_key=key,
                max_concurrency=max_concurrency,
                carrier=otel.inject(),
            )

        return run_child

    # ---- 3. outcomes ------------------------------------------------------------------------

    def _finished(self, name: str, attempt: int, outcome: _Outcome | Failure) -> None:
        step = self._steps[name]
        if step.status is not _Status.RUNNING or step.attempt != attempt:
            return  # a late outcome of an attempt given up on (cancelled, timed out)
        step.handle = None
        self._running -= 1
        self._release_slot(step)
        if isinstance(outcome, Failure):
            outcome = _Err(AskError(outcome))
        if isinstance(outcome, _Err):
            if isinstance(outcome.error, RunHaltedError):  # a composed run halted
                self._halted(step, f"{outcome.error.step}: {outcome.error.reason}")
            else:
                self._failed(step, outcome.error)
            return
        value = outcome.value
        match value:
            case Halt(reason=reason):
                self._halted(step, reason)
            case Retry(reason=reason):
                self._failed(step, _RetryRequested(reason))
            case WithSteps():
                self._grow(step, value)
            case _:
                step.ran = True
                self._complete(step, value)

    def _grow(self, step: _Step, grown: WithSteps) -> None:
        name = step.spec.name
        try:
            defs = {d.name or "": d for d in grown.steps}
            if "" in defs:
                raise _StepFailure("bad_step", "every added step needs a name: step(fn, name=...)")
            specs = plan_steps(
                self._plan.reactor,
                self._plan.inputs,
                defs,
                existing={n: s.spec for n, s in self._steps.items()},
            )
            described = describe_steps(grown.steps)
        except (DefinitionError, _StepFailure, ValueError) as exc:
            self._failed(step, _StepFailure("bad_step", f"the steps it added: {exc}"), retry=False)
            return
        self._append(StepsAdded(by=name, steps=described, at=time.time()), self._check_appended)
        self._add_dynamic(specs, replayed=False)
        self._info = _replace(self._info, steps=tuple(self._steps))
        for spec in specs.values():
            self._event(StepEventKind.ADDED, self._steps[spec.name], detail=f"by {name}")
        step.ran = True
        self._complete(step, grown.value)

    def _complete(self, step: _Step, value: Any, *, guarded: bool = False) -> None:
        name = step.spec.name
        try:
            raw = encode_value(value)
        except EncodeError as exc:
            self._failed(
                step,
                _StepFailure("unencodable_result", f"its result cannot be journaled: {exc}"),
                retry=False,
            )
            return
        now = time.time()
        step.status = _Status.DONE
        self._values[name] = value
        self._completed.append(name)
        self._stats["completed"] += 1
        self._append(
            StepCompleted(
                step=name,
                attempt=step.attempt,
                value=raw,
                started_at=step.started_at,
                at=now,
                guarded=guarded,
            ),
            self._check_appended,
        )
        if self._mw:
            self._event(StepEventKind.COMPLETE, step, value=value, duration=now - step.started_at)
        self._settled(name)
        if self._mode is _Mode.RUNNING:
            self._pump()
        else:
            self._after_settle()

    def _failed(self, step: _Step, error: BaseException, *, retry: bool = True) -> None:
        spec = step.spec
        now = time.time()
        described = step_error(spec.name, error)
        if isinstance(error, _StepFailure):
            described = StepError(
                step=spec.name, kind=error.kind, error=error.kind, message=str(error)
            )
        self._event(StepEventKind.ERROR, step, error=described, duration=now - step.started_at)
        if self._mode is not _Mode.RUNNING:
            self._record_failure(step, described, now)
            self._after_settle()
            return
        wants_retry = retry and (isinstance(error, _RetryRequested) or _transient(error))
        if wants_retry or spec.compensate is None or not retry:
            self._retry_or_fail(step, described, error, wants_retry, now)
            return
        self._compensate(step, described, error, now)

    def _retry_or_fail(
        self, step: _Step, described: StepError, error: BaseException, wants_retry: bool, now: float
    ) -> None:
        spec = step.spec
        if wants_retry and step.attempt <= spec.max_retries:
            delay = float(spec.backoff(step.attempt, error))
            if isinstance(error, AskError) and error.failure.retry_after:
                delay = max(delay, error.failure.retry_after)
            step.status = _Status.WAITING
            self._stats["retries"] += 1
            self._append(
                StepFailed(
                    step=spec.name,
                    attempt=step.attempt,
                    error=described,
                    will_retry=True,
                    delay=delay,
                    started_at=step.started_at,
                    at=now,
                ),
                self._check_appended,
            )
            self._event(StepEventKind.RETRY, step, error=described, delay=delay)
            name = spec.name
            if delay <= 0:
                self._retry_now(name)
            else:
                self.call_later(delay, lambda: self._retry_now(name), name=f"retry {name}")
            self._pump()
            return
        if wants_retry:
            described = StepError(
                step=described.step,
                kind=described.kind,
                error=described.error,
                message=f"{described.message} (gave up after {step.attempt} attempts)",
                retryable=described.retryable,
            )
        self._record_failure(step, described, now)
        self._start_rollback()

    def _retry_now(self, name: str) -> None:
        step = self._steps[name]
        if step.status is not _Status.WAITING:
            return
        if self._mode is not _Mode.RUNNING:
            step.status = _Status.PENDING
            self._after_settle()
            return
        step.status = _Status.READY
        self._ready.appendleft(name)
        self._pump()

    def _record_failure(self, step: _Step, described: StepError, now: float) -> None:
        step.status = _Status.FAILED
        self._errors.append(described)
        self._append(
            StepFailed(
                step=step.spec.name,
                attempt=step.attempt,
                error=described,
                will_retry=False,
                started_at=step.started_at,
                at=now,
            ),
            self._check_appended,
        )

    def _fail_for_good(self, step: _Step, described: StepError) -> None:
        self._event(StepEventKind.ERROR, step, error=described)
        self._record_failure(step, described, time.time())
        self._start_rollback()

    def _compensate(
        self, step: _Step, described: StepError, error: BaseException, now: float
    ) -> None:
        spec = step.spec
        assert spec.compensate is not None
        step.status = _Status.RUNNING  # busy compensating: not ready, not settled
        self._running += 1
        ctx = self._context(step)
        name, attempt = spec.name, step.attempt
        coro = _call_any(
            self._svc.pool, spec.compensate, {"error": error, "arguments": step.arguments}, ctx
        )

        def decided(outcome: _Outcome | Failure) -> None:
            self._running -= 1
            self._compensated(
                self._steps[name],
                attempt=attempt,
                described=described,
                error=error,
                outcome=outcome,
                now=now,
            )

        self.pipe_to_self(_positional(coro), decided, name=f"compensate {name}")

    def _compensated(
        self,
        step: _Step,
        *,
        attempt: int,
        described: StepError,
        error: BaseException,
        outcome: _Outcome | Failure,
        now: float,
    ) -> None:
        spec = step.spec
        decision: Any = outcome.value if isinstance(outcome, _Ok) else Fail(str(outcome))
        if self._mode is not _Mode.RUNNING:
            decision = Fail("the run is ending")
        match decision:
            case Continue(value=value):
                try:
                    raw = encode_value(value)
                except EncodeError as exc:
                    decision = Fail(f"compensation value cannot be journaled: {exc}")
                else:
                    self._append(
                        StepFailed(
                            step=spec.name,
                            attempt=attempt,
                            error=described,
                            will_retry=False,
                            started_at=step.started_at,
                            at=now,
                        ),
                        self._check_appended,
                    )
                    self._append(
                        StepCompensated(
                            step=spec.name, decision="continue", value=raw, at=time.time()
                        ),
                        self._check_appended,
                    )
                    self._event(StepEventKind.COMPENSATE, step, detail="continue")
                    self._stats["compensated"] += 1
                    step.status = _Status.DONE
                    self._values[spec.name] = value
                    self._completed.append(spec.name)
                    self._settled(spec.name)
                    self._pump()
                    return
            case Retry():
                self._append(
                    StepCompensated(step=spec.name, decision="retry", at=time.time()),
                    self._check_appended,
                )
                self._event(StepEventKind.COMPENSATE, step, detail="retry")
                step.status = _Status.RUNNING
                self._retry_or_fail(
                    step, described, _RetryRequested("compensate asked to retry"), True, now
                )
                return
            case _:
                pass
        reason = decision.reason if isinstance(decision, Fail) and decision.reason else ""
        if isinstance(outcome, _Err):
            reason = f"compensate raised {type(outcome.error).__name__}: {outcome.error}"
        self._append(
            StepCompensated(step=spec.name, decision="fail", at=time.time()), self._check_appended
        )
        self._event(StepEventKind.COMPENSATE, step, detail=f"fail {reason}".strip())
        if reason:
            described = StepError(
                step=described.step,
                kind=described.kind,
                error=described.error,
                message=f"{described.message} ({reason})",
                retryable=described.retryable,
            )
        self._record_failure(step, described, now)
        self._start_rollback()

    def _halted(self, step: _Step, reason: str) -> None:
        step.status = _Status.PENDING
        step.blockers = 0
        self._event(StepEventKind.HALT, step, detail=reason)
        if self._halt is None:
            self._halt = (step.spec.name, reason)
        if self._mode is _Mode.RUNNING:
            self._mode = _Mode.HALTING
        self._after_settle()

    # ---- 4. completion ----------------------------------------------------------------------

    def _maybe_complete(self) -> None:
        if any(
            s.status not in _SETTLED and s.status is not _Status.UNDONE
            for s in self._steps.values()
        ):
            return  # waiting for a retry's backoff or a concurrency slot
        returns = self._plan.returns
        value = self._values.get(returns) if self._steps[returns].status is _Status.DONE else None
        self._mode = _Mode.FINISHING
        raw = self._values_raw(returns)
        self._append(
            RunCompleted(run_id=self._run_id, value=raw, at=time.time()),
            lambda outcome: self._ended(outcome, RunOutcome(status="completed", value=value)),
        )

    def _values_raw(self, name: str) -> msgspec.Raw:
        if self._steps[name].status is not _Status.DONE:
            return msgspec.Raw(b"null")
        return encode_value(self._values[name])

    def _after_settle(self) -> None:
        """Called when an attempt ends while the run is not dispatching."""
        if self._running > 0:
            return
        match self._mode:
            case _Mode.HALTING:
                if self._errors:
                    self._mode = _Mode.ROLLING_BACK
                    self._roll_back()
                    return
                step, reason = self._halt or ("", "halted")
                self._mode = _Mode.FINISHING
                self._append(
                    RunHalted(run_id=self._run_id, step=step, reason=reason, at=time.time()),
                    lambda outcome: self._ended(
                        outcome, RunOutcome(status="halted", reason=reason)
                    ),
                )
            case _Mode.ROLLING_BACK:
                self._roll_back()
            case _Mode.RUNNING:
                self._pump()
            case _Mode.STARTING | _Mode.FINISHING:
                pass

    # ---- 5. rollback ------------------------------------------------------------------------

    def _start_rollback(self) -> None:
        if self._mode in (_Mode.ROLLING_BACK, _Mode.FINISHING):
            return
        self._mode = _Mode.ROLLING_BACK
        self._after_settle()

    def _roll_back(self) -> None:
        while self._completed:
            name = self._completed.pop()
            step = self._steps[name]
            undoable = step.spec.undo is not None or bool(step.spec.sub_reactors)
            if step.status is _Status.DONE and undoable and step.ran:
                self._undo(step, tries=0)
                return
        self._end_failed()

    def _undo(self, step: _Step, tries: int) -> None:
        spec = step.spec
        if tries == 0:
            self._event(StepEventKind.UNDO_START, step)
        ctx = self._context(step)
        name = spec.name
        coro: Coroutine[Any, Any, _Outcome]
        if spec.undo is None:
            # A composite: roll back the child runs it completed, newest first.
            prefix = f"{self._run_id}/{name}.{step.attempt}"
            coro = _guarded(self._svc.undo_children(prefix), None, ctx)
        else:
            arguments = step.arguments
            if not arguments:  # completed before a resume: rebuild them
                with contextlib.suppress(_StepFailure, KeyError):
                    arguments = self._arguments(spec)[0]
            coro = _call_any(
                self._svc.pool,
                spec.undo,
                {"value": self._values.get(name), "arguments": arguments},
                ctx,
            )

        def undone(outcome: _Outcome | Failure) -> None:
            self._undone(self._steps[name], tries, outcome)

        self.pipe_to_self(_positional(coro), undone, name=f"undo {name}")

    def _undone(self, step: _Step, tries: int, outcome: _Outcome | Failure) -> None:
        spec = step.spec
        error: BaseException | None = None
        if isinstance(outcome, Failure):
            error = AskError(outcome)
        elif isinstance(outcome, _Err):
            error = outcome.error
        elif isinstance(outcome.value, Retry):
            error = _RetryRequested(outcome.value.reason)
        if error is None:
            step.status = _Status.UNDONE
            self._stats["undone"] += 1
            self._append(StepUndone(step=spec.name, at=time.time()), self._check_appended)
            self._event(StepEventKind.UNDO_COMPLETE, step)
            self._roll_back()
            return
        if tries < spec.max_retries:
            delay = float(spec.backoff(tries + 1, error))
            name = spec.name
            self.call_later(
                delay, lambda: self._undo(self._steps[name], tries + 1), name=f"undo {name}"
            )
            return
        described = step_error(spec.name, error)
        step.status = _Status.UNDONE
        self._errors.append(
            StepError(
                step=spec.name,
                kind="undo_failed",
                error=described.error,
                message=f"undo failed: {described.message}",
            )
        )
        self._append(
            StepUndoFailed(step=spec.name, error=described, at=time.time()), self._check_appended
        )
        self._event(StepEventKind.UNDO_ERROR, step, error=described)
        self._roll_back()

    def _end_failed(self) -> None:
        self._mode = _Mode.FINISHING
        if self._undo_only:
            errors = tuple(self._errors)
            self._append(
                RunUndone(run_id=self._run_id, errors=errors, at=time.time()),
                lambda outcome: self._ended(outcome, RunOutcome(status="undone", errors=errors)),
            )
            return
        if self._cancel is not None:
            reason = self._cancel
            self._append(
                RunCancelled(run_id=self._run_id, reason=reason, at=time.time()),
                lambda outcome: self._ended(outcome, RunOutcome(status="cancelled", reason=reason)),
            )
            return
        errors = tuple(self._errors)
        self._append(
            RunFailed(run_id=self._run_id, errors=errors, at=time.time()),
            lambda outcome: self._ended(outcome, RunOutcome(status="failed", errors=errors)),
        )

    # ---- 6. cancel and timeout --------------------------------------------------------------

    def _cancel_run(self, reason: str) -> None:
        if self._mode in (_Mode.FINISHING,) or self._cancel is not None:
            return
        self._cancel = reason
        self._stop_attempts(reason)
        if self._mode is _Mode.STARTING:
            return  # _begin() will find _cancel set
        self._mode = _Mode.ROLLING_BACK
        self._after_settle()

    def _on_timeout(self) -> None:
        if self._mode in (_Mode.FINISHING, _Mode.ROLLING_BACK):
            return
        timeout = self._options.timeout
        self._errors.append(
            StepError(
                step="",
                kind="timeout",
                error="RunTimeout",
                message=f"the run took longer than its timeout of {timeout} s",
            )
        )
        self._stop_attempts("the run timed out")
        self._mode = _Mode.ROLLING_BACK
        self._after_settle()

    def _stop_attempts(self, reason: str) -> None:
        for step in self._steps.values():
            if step.status is _Status.RUNNING and step.handle is not None:
                step.handle.cancel()
                step.handle = None
                step.status = _Status.PENDING
                self._running -= 1
                self._release_slot(step)
                self._event(
                    StepEventKind.ERROR,
                    step,
                    error=StepError(
                        step=step.spec.name, kind="cancelled", error="Cancelled", message=reason
                    ),
                )
            elif step.status is _Status.WAITING:
                step.status = _Status.PENDING

    # ---- the journal and the end --------------------------------------------------------------

    def _append(self, event: Any, then: Callable[[JournalAppended | Failure], object]) -> None:
        """Journal ``event``; ``then(outcome)`` once it is durable (or failed).

        Events wait in the outbox for at most ``journal_linger`` seconds and go to the
        Store together (one request, one transaction), so a busy run writes a few
        batches instead of an append per transition. The events that end a run go at
        once, with whatever waits before them: the caller is answered only once they
        are durable. Order is kept (one writer, one mailbox), so what a crash leaves
        durable is always a prefix of the run's events; what lingered is lost, and
        the steps it recorded run again on resume (at least once, as ever).
        """
        self._outbox.append((type(event).__name__, msgspec.json.encode(event), then))
        if isinstance(event, _ENDING):
            self._flush_journal()
        elif not self._flush_armed:
            self._flush_armed = True
            linger = self._svc.journal_linger
            if linger <= 0:
                self._flush_journal()
            else:
                self.call_later(linger, self._flush_journal, name="journal flush")

    def _flush_journal(self) -> None:
        self._flush_armed = False
        batch, self._outbox = self._outbox, []
        if not batch:
            return
        first_type, first_data, _ = batch[0]
        expected = self._seq
        self._seq += len(batch)
        request = JournalAppend(
            stream_id=self._stream,
            event_type=first_type,
            data=first_data,
            expected_seq=expected,
            more=tuple(JournalEvent(event_type=t, data=d) for t, d, _ in batch[1:]),
        )

        def appended(outcome: JournalAppended | Failure) -> None:
            for _, _, then in batch:
                then(outcome)

        self.ask(self._svc.store, request, appended, timeout=self._svc.journal_timeout)

    def _check_appended(self, outcome: JournalAppended | Failure) -> None:
        if isinstance(outcome, Failure):
            self._journal_failed(outcome)

    def _journal_failed(self, failure: Failure) -> None:
        if self._done.done():
            return
        self.log.error("run journal failed", run_id=self._run_id, failure=failure.message)
        self._stop_attempts("the journal failed")
        self._finish_now(
            RunFailedError(
                run_id=self._run_id,
                reactor=self._plan.reactor,
                errors=[
                    StepError(
                        step="",
                        kind=failure.kind.value,
                        error="JournalError",
                        message=f"the journal could not be written: {failure.message}",
                    )
                ],
            )
        )

    def _finish_now(self, error: BaseException) -> None:
        self._mode = _Mode.FINISHING
        if not self._done.done():
            self._done.set_exception(error)
        self.stop()

    def _ended(self, appended: JournalAppended | Failure, outcome: RunOutcome) -> None:
        if isinstance(appended, Failure):
            self._journal_failed(appended)
            return
        if self._timer is not None:
            self._timer.cancel()
        outcome = _replace(
            outcome, duration=time.monotonic() - self._started, stats=dict(self._stats)
        )
        notify(self._mw, "run_finished", self._info, outcome)
        if not self._done.done():
            match outcome.status:
                case "completed":
                    self._done.set_result(outcome.value)
                case "halted":
                    step, reason = self._halt or ("", "halted")
                    self._done.set_exception(
                        RunHaltedError(
                            run_id=self._run_id,
                            reactor=self._plan.reactor,
                            step=step,
                            reason=reason,
                        )
                    )
                case "undone" if not outcome.errors:
                    self._done.set_result(None)
                case "cancelled":
                    self._done.set_exception(
                        RunCancelledError(
                            run_id=self._run_id, reactor=self._plan.reactor, reason=outcome.reason
                        )
                    )
                case _:
                    self._done.set_exception(
                        RunFailedError(
                            run_id=self._run_id, reactor=self._plan.reactor, errors=outcome.errors
                        )
                    )
        self.stop()

    # ---- middleware -------------------------------------------------------------------------

    def _event(
        self,
        kind: StepEventKind,
        step: _Step,
        *,
        want_context: bool = False,
        value: Any = None,
        error: Any = None,
        duration: float | None = None,
        delay: float | None = None,
        detail: str = "",
    ) -> Any:
        if not self._mw:
            return None
        event = StepEvent(
            kind=kind,
            step=step.spec.name,
            attempt=step.attempt,
            at=time.time(),
            duration=duration,
            value=value,
            error=error,
            delay=delay,
            detail=detail,
        )
        notify(self._mw, "step_event", self._info, event)
        return self._context(step) if want_context else None

    def _context(self, step: _Step) -> Any:
        for each in self._mw:
            try:
                ctx = each.step_context(self._info, step.spec.name, step.attempt)
            except Exception:
                self.log.exception("middleware step_context failed", run_id=self._run_id)
                continue
            if ctx is not None:
                return ctx
        return None

    def _dispatch_soon(self) -> None:
        if self._mode is _Mode.RUNNING:
            self._pump()
        else:
            self._after_settle()


_ENDING = (RunCompleted, RunFailed, RunHalted, RunCancelled, RunUndone)
"""Events sent to the journal at once: the ones that end a run."""


class _SlotFree:
    """A concurrency-key slot may be free: dispatch again."""


class _RetryRequested(Exception):  # noqa: N818 - a request, not an error
    """The step (or its compensation) asked to be retried."""


def _options_record(options: RunOptions) -> Any:
    return _RunOptionsRecord(
        max_concurrency=options.max_concurrency,
        timeout=options.timeout,
        concurrency_key=options.concurrency_key,
    )


class _RunOptionsRecord(msgspec.Struct, frozen=True, kw_only=True):
    max_concurrency: int
    timeout: float | None = None
    concurrency_key: str | None = None


async def _positional(coro: Coroutine[Any, Any, _Outcome]) -> _Outcome:
    return await coro


def _replace(obj: Any, **changes: Any) -> Any:
    import dataclasses  # noqa: PLC0415

    return dataclasses.replace(obj, **changes)
