"""The Run actor: one run of a reactor, event-driven, journaled step by step.

The executor loop. Each numbered item happens while handling one message of the Run
actor, a :class:`~actors.LoopActor`: runs take turns on the I/O loop, with no thread
each, so an ``async def`` step's outcome reaches its run without a thread hop. Nothing
in it blocks (step code runs on the event loop or in the worker pool, LLM calls are
asks to a model host, the journal is asks to the Store):

1. Start. A new run checks its inputs (done by the engine before the actor starts) and
   journals ``RunStarted`` (with its plan's fingerprint) with ``expected_seq=0``. If the
   stream already exists and the run is a new top-level one under an id its caller
   chose, it fails with ``RunExistsError`` before any step runs (the Store's
   ``expected_seq`` makes that atomic, across processes too). If it exists for a
   composed run started again after a crash, or for ``resume``, the journal is read
   and replayed instead: completed steps get their results back without running, steps
   added while it ran are rebuilt, a rollback that was under way goes on. Then
   ``RunResumed`` is journaled.
2. Dispatch (``_pump``). Take ready steps (every dependency completed or skipped), in plan order:
   a. resolve the arguments (inputs, results with sub-paths and transforms, literal
      values);
   b. if an argument comes from a skipped step, or ``where`` is false: skip the step
      (journal ``StepSkipped``); its dependents become ready in turn;
   c. if its ``guard`` returns a ``Shortcut``: complete it with that value (3a);
   d. if fewer than ``max_concurrency`` steps run and the concurrency key has a slot:
      journal ``StepStarted`` and hand the attempt to the executor registered for
      the step's kind (``executor_for(kind).start(attempt)``; ``reactor.kinds`` has
      one per kind: ``async def`` steps and composites run on the event loop, ``def``
      steps in the worker pool, ``ask`` steps are a message to a model host,
      templates and collects complete at once). Otherwise the step waits for a slot.
3. An attempt's outcome arrives (a message), and its executor interprets it:
   a. a value: encode it (a value that cannot be encoded fails the step, 3e),
      journal ``StepCompleted``, mark the dependents whose dependencies are now all
      settled as ready, and go to 2;
   b. ``WithSteps``: check the new steps against the graph, journal ``StepsAdded``,
      add them, then 3a. One named like the step itself is a loop (Ash's
      re-emission): the value is journaled as an iteration (``StepCompleted`` with
      ``again``, kept on the rollback stack), the new definition takes the step's
      place and is dispatched when its own dependencies allow, and the dependents go
      on waiting; past the run's ``max_iterations`` the run halts instead (3c);
   c. ``Halt``: stop dispatching; once nothing runs, journal ``RunHalted`` and answer
      "halted" (``resume`` runs that step again); an attempt that fails meanwhile
      still fails the run (5);
   d. ``Retry`` or a transient error (timeout, connection, a retryable model
      failure), with retries left: journal ``StepFailed(will_retry)`` and start it
      again after its backoff (a timer message, then 2), or after the server's
      ``retry_after`` if that is longer (one over :data:`RETRY_AFTER_LIMIT_S` is
      ignored, as the vendors' SDKs ignore it, and the backoff used). A wait that
      would end after the run's deadline (its timeout) is not waited out: the run
      acts at once as its timeout would (6), the step failed (or, halting, pending)
      with a reason that names the wait and the time left. A transient error with
      no retries left is 3e;
   e. any other error: run ``compensate`` if the step has one; ``Continue(v)`` is 3a
      with ``v`` (the step counts as completed: a rollback undoes it), ``Retry`` is 3d;
      otherwise journal ``StepFailed`` and go to 5.
4. When no step is pending or running: journal ``RunCompleted`` with the returned
   step's result; once that is durable, answer the caller and stop.
5. Rollback. Stop dispatching; wait for running attempts (a result that arrives now
   still counts as completed, so it is undone too); then undo each completed step
   that has an ``undo`` (or whose kind's executor can undo it: a composite rolls back
   its child runs), newest first, one at a time, journaling ``StepUndone`` or
   ``StepUndoFailed`` (an undo that keeps failing is recorded, and rollback goes on).
   A composite that failed or was cancelled itself (a ``for_each`` whose element
   failed) has its completed child runs rolled back too, at the point where it ended.
   Then journal ``RunFailed`` and answer.
6. ``CancelRun`` or the run's timeout: cancel running attempts (through their
   executors), then 5, ending in ``RunCancelled`` (or ``RunFailed`` with a timeout
   error). A run whose ``on_timeout`` is ``"halt"`` is not cancelled at its timeout:
   it halts as in 3c, with no step named (the timeout's reason instead): running
   attempts finish and keep their results, and ``resume`` continues with the steps
   that had not started (the resumed run's timeout counts from the resume).
   ``idle_timeout`` is the same limit on time without progress (anything journaled,
   a step's ``StepContext.heartbeat()``, a composed run's progress): its timer reads
   the progress stamp and sets itself again while there was some; when there was none
   (no retry is scheduled, and no step of a kind that ends by its own deadline, a
   model call's, is running), ``"fail"`` is 6 with the idle steps named, and
   ``"halt"`` halts as above but cancels the plain steps still running at once (they
   are the idle ones; they run again on resume).

Results are journaled before their dependents finish but not necessarily before they
start: the journal is a single ordered stream, so whatever a crash leaves durable is a
prefix of it, and a dependent's completion is never durable without its
dependencies'. Steps whose completion was not durable run again on resume, under the
same attempt number: a composite's child runs are named after the attempt, so the re-run
finds them and continues them (a child that had ended answers from its journal).

This module is the loop only. What it keeps per run is in ``_state`` (``RunState``,
``StepState``, the statuses and modes); reading a journal back is ``_replay``; batching
journal appends is ``_outbox``; calling user code is ``_invoke``; what a failure means
(retry or not, and its journal form) is ``_classify``; the executor protocol and its
registry are ``_executor``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import Any

import msgspec
from opentelemetry import context as otel_context

import otel
from actors import AskError, Failure, FailureKind, LoopActor, Ref
from actors.store import JournalAppended, JournalEntries, JournalEntry, JournalRead
from dsl import (
    Continue,
    DefinitionError,
    Fail,
    Halt,
    PathError,
    Plan,
    Retry,
    Shortcut,
    StepSpec,
    WithSteps,
    resolve_path,
)
from dsl import (
    Ref as SourceRef,
)
from dsl.kinds import KindError, kind_of
from reactor.run._classify import RetryRequested, StepFailure, step_error, transient
from reactor.run._codec import EncodeError, decode_value, encode_value
from reactor.run._done import RunDone
from reactor.run._errors import (
    JournalCorruptError,
    PlanChangedError,
    ResumeError,
    RunCancelledError,
    RunExistsError,
    RunFailedError,
    RunHaltedError,
)
from reactor.run._executor import Attempt, Cancellable, StepExecutor, executor_for
from reactor.run._fingerprint import compare_plan, decode_plan, plan_print_raw
from reactor.run._growth import plan_added, transformed, transformed_arguments
from reactor.run._inputs import check_inputs
from reactor.run._invoke import Err, Ok, Outcome, call_any, guarded, positional
from reactor.run._listing import decode_history
from reactor.run._middleware import (
    RunInfo,
    RunOutcome,
    StepEvent,
    StepEventKind,
    notify,
    step_event,
)
from reactor.run._outbox import JournalOutbox
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
from reactor.run._replay import apply_history
from reactor.run._services import CancelRun, RunOptions, RunServices
from reactor.run._state import SETTLED, Iteration, Mode, RunState, Status, StepState

__all__ = ["Run"]


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
        input_check: Re-checks replayed inputs: ``(raw) -> dict`` (by default the
            reactor's own input check, :func:`~reactor.run.check_inputs`).
        fresh: The run id was just made up, so its stream cannot exist: start
            dispatching without waiting for ``RunStarted`` to be durable.
        undo_only: Roll back a completed run (a composed run whose parent failed
            later, or ``Engine.undo``): replay its journal, undo its completed steps,
            journal ``RunUndone``.
        context: The run's context, JSON values (journaled with ``RunStarted``; a
            replayed run reads it back from there).
        refuse_existing: A new top-level run under an id its caller chose: if the
            stream exists, fail with :class:`~reactor.run.RunExistsError` instead of
            continuing that run (composed runs continue theirs; see 1).
        lenient: Replay leaves out events of steps the reactor no longer has (a
            resume forced although the plan changed).
        resume_locator: Where the reactor was loaded from for this resume, when its
            file moved (journaled with ``RunResumed``).
        resume_options: The run options given anew for this resume (journaled with
            ``RunResumed``; ``options`` has them already).
        resume_seq: How many events the journal had when the engine checked that the
            run may be resumed: if it has more when the run reads it back, another
            process continued the run meanwhile and this resume is refused.
        parent_beat: Stamps the progress of the composing run's step (a composed
            run's progress is its parent step's, for the parent's ``idle_timeout``).
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
        done: RunDone,
        parent: str | None = None,
        stack: tuple[str, ...] = (),
        carrier: dict[str, str] | None = None,
        resume_reason: str = "resumed",
        input_check: Callable[[Any], dict[str, Any]] | None = None,
        fresh: bool = False,
        undo_only: bool = False,
        context: Mapping[str, Any] | None = None,
        refuse_existing: bool = False,
        lenient: bool = False,
        resume_locator: str = "",
        resume_options: Mapping[str, Any] | None = None,
        resume_seq: int | None = None,
        parent_beat: Callable[[], object] | None = None,
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
        self._resume_reason = resume_reason
        self._input_check = input_check
        self._fresh = fresh
        self._undo_only = undo_only
        self._refuse_existing = refuse_existing
        self._lenient = lenient
        self._resume_locator = resume_locator
        self._resume_options = dict(resume_options or {})
        self._resume_seq = resume_seq
        self._run_context: Mapping[str, Any] = (
            MappingProxyType(dict(context)) if context else _NO_CONTEXT
        )
        self._mw = services.middleware
        # Only middleware reads the RunInfo: a run nobody observes shares a placeholder.
        self._info = (
            RunInfo(
                run_id=run_id,
                reactor=self._plan.reactor,
                parent=parent,
                stack=self._stack,
                steps=tuple(self._plan.steps),
                carrier=carrier,
                context=self._run_context,
            )
            if self._mw
            else _UNOBSERVED
        )
        self._state = RunState(self._plan)
        self._running = 0
        self._mode = Mode.STARTING
        self._journal = JournalOutbox(
            self._stream,
            services.store,
            owner=self,
            timeout=services.journal_timeout,
            linger=services.journal_linger,
        )
        self._halt: tuple[str, str] | None = None
        self._halts: list[tuple[str, str]] = []  # every halt, the first first
        self._ending: RunOutcome | None = None  # how the run ends, once that is journaled
        self._cancel: str | None = None
        self._started = time.monotonic()
        self._timer: Any = None
        self._deadline: float | None = None  # time.monotonic() when the timeout passes
        # The progress stamp (idle_timeout): only runs that keep an idle clock, or whose
        # parent does, have one; the others pay one `is None` per journaled event.
        self._pulse = (
            Pulse(parent_beat)
            if options.idle_timeout is not None or parent_beat is not None
            else None
        )
        self._idle_timer: Any = None
        # Counts for RunOutcome.stats: plain ints, not a Counter (one object fewer per run).
        self._n_attempts = self._n_completed = self._n_retries = 0
        self._iterations = 0  # steps that re-emitted themselves (max_iterations)
        self._n_compensated = self._n_undone = 0
        self._replays: list[StepEvent] = []  # replayed step events, told after run_started
        self._previous: dict[str, str] | None = None  # the last trace journaled (a resume)

    # ---- lifecycle --------------------------------------------------------------------

    def started(self) -> None:
        """Journal the start, or read the journal back (1)."""
        if self._inputs is None:
            self._read_journal()
            return
        self._state.values.update(self._inputs)
        started = RunStarted(
            run_id=self._run_id,
            reactor=self._plan.reactor,
            locator=self._locator,
            inputs=self._raw_inputs or msgspec.Raw(b"{}"),
            options=msgspec.structs.asdict(_options_record(self._options)),
            parent=self._parent_run,
            owner=self._svc.owner,
            at=time.time(),
            context=dict(self._run_context),
            plan=plan_print_raw(self._reactor),
        )
        if self._fresh and self._svc.journal_proof.proven:
            # A new id nobody else can have used: no need to wait for the journal to
            # confirm the stream is new before dispatching (the appends stay in order).
            # Until one append has succeeded, though, the store may be unusable: then
            # the run waits (below), so that no step runs unrecorded.
            self._append(started)
            self._begin(resumed=False)
            return
        self._append(started, self._start_appended)
        self._journal.flush()  # its answer says whether the stream is new: no lingering

    def stopped(self) -> None:
        """Answer the caller if the actor stops before the run ended."""
        if self._timer is not None:
            self._timer.cancel()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._release_all_slots()
        # Stopped unexpectedly: what lingers still goes to the journal, so that the run
        # (its RunStarted at least) is there to be shown and resumed.
        self._journal.flush()
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
                if self._mode is Mode.RUNNING:
                    self._pump()
            case _:
                self.log.warning("unknown message to a run", type=type(message).__name__)
        return None

    # ---- 1. start and replay -----------------------------------------------------------

    def _start_appended(self, outcome: JournalAppended | Failure) -> None:
        if isinstance(outcome, Failure):
            exists = outcome.kind is FailureKind.BAD_REQUEST and "actual_seq" in outcome.details
            if exists and self._refuse_existing:
                # A new run under a used id: refused before anything ran (1).
                self._finish_now(RunExistsError(run_id=self._run_id, reactor=self._plan.reactor))
                return
            if exists:
                # The stream exists: this run was started before (a composed run after
                # a crash). Continue it from its journal.
                self._journal.seq = 0
                self._inputs = None
                self._read_journal()
                return
            self._journal_failed(outcome)
            return
        self._svc.journal_proof.proven = True
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
            if self._resume_seq is not None and len(outcome.entries) != self._resume_seq:
                raise self._resumed_elsewhere(outcome.entries)
            events = decode_history(self._run_id, outcome.entries)
            self._journal.seq = len(outcome.entries)
            if self._undo_only:
                self._undo_completed(events)
                return
            if events and isinstance(events[-1], RunCompleted | RunFailed | RunCancelled):
                self._already_ended(events[-1])
                return
            changed = self._plan_changes(events)
            if changed:
                self._finish_now(
                    PlanChangedError(
                        run_id=self._run_id, reactor=self._plan.reactor, changes=changed
                    )
                )
                return
            self._apply_history(events)
            if self._mw:
                self._previous = _last_trace(events)
        except (JournalCorruptError, ResumeError) as exc:
            self._finish_now(exc)
            return
        except (msgspec.DecodeError, LookupError, DefinitionError, ValueError) as exc:
            self._finish_now(
                RunFailedError(
                    run_id=self._run_id,
                    reactor=self._plan.reactor,
                    errors=[
                        StepError(step="", kind="internal", error="ResumeError", message=_why(exc))
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
                locator=self._resume_locator,
                options=self._resume_options,
            ),
            self._resume_appended,
        )
        # No step runs before RunResumed is durable: its expected seq is what makes a
        # resume exclusive (two engines or processes resuming the run at once: the
        # Store checks the seq in the transaction that writes it, so one is refused
        # before it runs anything, instead of both running the pending steps).
        self._journal.flush()

    def _resume_appended(self, outcome: JournalAppended | Failure) -> None:
        if isinstance(outcome, Failure):
            if outcome.kind is FailureKind.BAD_REQUEST and "actual_seq" in outcome.details:
                # Another resume won: read the journal again to name its owner.
                self.ask(
                    self._svc.store,
                    JournalRead(stream_id=self._stream),
                    self._lost_resume,
                    timeout=self._svc.journal_timeout,
                )
            else:
                self._journal_failed(outcome)
            return
        self._begin(resumed=True)

    def _lost_resume(self, outcome: JournalEntries | Failure) -> None:
        entries = () if isinstance(outcome, Failure) else outcome.entries
        self._finish_now(self._resumed_elsewhere(entries))

    def _resumed_elsewhere(self, entries: tuple[JournalEntry, ...]) -> ResumeError:
        """The error of a resume that lost: ``entries`` (the journal now) name the winner."""
        winner = _last_resumer(entries)
        by = winner.describe() if winner is not None else "another engine or process"
        return ResumeError(
            f"run {self._run_id} was resumed by {by} while {self._svc.owner.describe()} "
            "was resuming it; nothing ran here (see `reactor runs show "
            f"{self._run_id}`)",
            run_id=self._run_id,
            reactor=self._plan.reactor,
        )

    def _plan_changes(self, events: list[RunEvent]) -> tuple[str, ...]:
        """How the reactor's steps changed since the run started (empty: they did not).

        The engine checks a top-level run before resuming it; this catches a composed
        run continued by its resumed parent. A forced resume (``lenient``) goes on.
        """
        first = events[0] if events else None
        if self._lenient or not isinstance(first, RunStarted):
            return ()
        return compare_plan(decode_plan(first.plan), self._reactor).changes

    def _undo_completed(self, events: list[RunEvent]) -> None:
        """Replay a completed run, then roll it back (undo-only mode)."""
        if not events or not isinstance(events[-1], RunCompleted):
            self._mode = Mode.FINISHING  # it failed (rolled back), or was undone already
            if not self._done.done():
                self._done.set_result(None)
            self.stop()
            return
        self._apply_history(events[:-1])
        if self._mw:
            self._run_started(_replace(self._info, resumed=True))
        self._mode = Mode.ROLLING_BACK
        self._roll_back()

    def _already_ended(self, event: RunCompleted | RunFailed | RunCancelled) -> None:
        """Answer with the outcome a composed run already journaled, without running it.

        A parent that crashed after its child ended (but before its own step's outcome
        was durable) starts the child again under the same run id; the child's journal
        has the answer.
        """
        self._mode = Mode.FINISHING
        reactor = self._plan.reactor
        error: BaseException
        match event:
            case RunCompleted():
                returns = self._plan.returns
                try:
                    value = decode_value(event.value, self._state.steps[returns].spec.result_type)
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

    def _apply_history(self, events: list[RunEvent]) -> None:
        """Replay ``events`` into the run's state; their step events wait for ``run_started``."""
        self._replays = []
        self._inputs = apply_history(
            self._state,
            events,
            input_check=self._input_check or functools.partial(check_inputs, self._plan),
            replayed=self._replayed_event,
            context=self._restore_context,
            lenient=self._lenient,
            arguments=self._rebuilt_arguments,
        )

    def _rebuilt_arguments(self, spec: StepSpec) -> dict[str, Any]:
        """A replayed attempt's arguments, as far as they can be resolved again."""
        with contextlib.suppress(StepFailure, KeyError):
            return self._arguments(spec)[0]
        return {}

    def _restore_context(self, context: dict[str, Any]) -> None:
        """The run's context, read back from its ``RunStarted``."""
        self._run_context = MappingProxyType(context)
        if self._mw:
            self._info = _replace(self._info, context=self._run_context)

    def _replayed_event(
        self, kind: StepEventKind, step: StepState, at: float, started_at: float | None = None
    ) -> None:
        if self._mw:
            duration = at - started_at if started_at is not None else None
            self._replays.append(
                StepEvent(
                    kind=kind,
                    step=step.spec.name,
                    attempt=step.attempt,
                    at=at,
                    duration=duration,
                    replayed=True,
                ),
            )

    def _run_started(self, info: RunInfo | None = None) -> None:
        """Tell middleware the run started, then what the journal replayed (in its order)."""
        notify(self._mw, "run_started", info or self._info)
        replays, self._replays = self._replays, []
        for event in replays:
            notify(self._mw, "step_event", self._info, event)

    def _begin(self, *, resumed: bool) -> None:
        if resumed and self._mw:
            self._info = _replace(
                self._info, resumed=True, steps=tuple(self._state.steps), previous=self._previous
            )
        self._run_started()
        timeout = self._options.timeout
        if timeout is not None:
            self._deadline = time.monotonic() + timeout
            self._timer = self.call_later(timeout, self._on_timeout, name="run timeout")
        idle = self._options.idle_timeout
        if idle is not None and self._pulse is not None:
            self._pulse.last = time.monotonic()  # a resumed run's clock starts afresh
            self._idle_timer = self.call_later(idle, self._on_idle, name="idle timeout")
        if self._state.errors:
            self._mode = Mode.ROLLING_BACK
            self._roll_back()
            return
        self._mode = Mode.RUNNING
        self._state.start()
        self._pump()

    # ---- 2. dispatch ------------------------------------------------------------------------

    def _pump(self) -> None:
        if self._mode is not Mode.RUNNING:
            return
        limit = self._options.max_concurrency
        while self._state.ready and self._mode is Mode.RUNNING:
            if self._running >= limit:
                return
            name = self._state.ready[0]
            step = self._state.steps[name]
            if step.status is not Status.READY:
                self._state.ready.popleft()
                continue
            if not step.holds_slot and not self._take_slot(step):
                return
            self._state.ready.popleft()
            self._prepare(step)
        if self._mode is Mode.RUNNING and self._running == 0 and not self._state.ready:
            self._maybe_complete()

    def _take_slot(self, step: StepState) -> bool:
        key = self._options.concurrency_key
        if key is None or step.spec.sub_reactors:
            return True  # composites wait for their children, which take slots
        if self._svc.limits.try_acquire(key, self._options.max_concurrency, self._wake):
            step.holds_slot = True
            return True
        return False

    def _wake(self) -> None:
        ref = self.actor_ref
        with contextlib.suppress(Exception):
            ref.tell(_SlotFree())

    def _release_slot(self, step: StepState) -> None:
        if step.holds_slot:
            step.holds_slot = False
            key = self._options.concurrency_key
            if key is not None:
                self._svc.limits.release(key)

    def _release_all_slots(self) -> None:
        for step in self._state.steps.values():
            self._release_slot(step)

    def _prepare(self, step: StepState) -> None:
        spec = step.spec
        try:
            arguments, skipped_by = self._arguments(spec)
        except StepFailure as exc:
            self._release_slot(step)
            self._fail_for_good(
                step,
                StepError(step=spec.name, kind=exc.kind, error="ArgumentError", message=str(exc)),
            )
            return
        if skipped_by is None and spec.where is not None:
            try:
                if not spec.where(arguments, self._run_context):
                    skipped_by = "where"
            except BaseException as exc:  # noqa: BLE001 - the predicate's failure fails the step
                self._release_slot(step)
                self._fail_for_good(step, _with_reason(step_error(spec.name, exc), "in its where"))
                return
        if skipped_by is not None:
            self._release_slot(step)
            self._skip(step, skipped_by)
            return
        step.arguments = arguments
        if spec.guard is not None:
            try:
                verdict = spec.guard(arguments, self._run_context)
            except BaseException as exc:  # noqa: BLE001 - even SystemExit fails only the step
                self._release_slot(step)
                self._fail_for_good(step, _with_reason(step_error(spec.name, exc), "in its guard"))
                return
            if isinstance(verdict, Shortcut):
                self._release_slot(step)
                step.attempt = max(step.attempt, 1)
                step.started_at = time.time()
                self._event(StepEventKind.GUARD, step)
                self._complete(step, verdict.value, guarded=True)
                return
            if verdict is not None:  # a value meant as the result, say: a mistake, not "run"
                self._release_slot(step)
                problem = (
                    f"guard returned {_short(verdict)}; it must return None or Shortcut(value)"
                )
                self._fail_for_good(
                    step,
                    StepError(step=spec.name, kind="error", error="TypeError", message=problem),
                )
                return
        self._launch(step)

    def _arguments(self, spec: StepSpec) -> tuple[dict[str, Any], str | None]:
        values = self._state.values
        arguments: dict[str, Any] = {}
        for argument, source in spec.arguments.items():
            if not isinstance(source, SourceRef):
                arguments[argument] = source.value
                continue
            name = source.name
            other = self._state.steps.get(name)
            if other is not None and other.status is Status.SKIPPED:
                return arguments, f"needs {name}, which was skipped"
            root = values[name]
            if source.path:
                try:
                    root = resolve_path(root, source.path, what=name)
                except PathError as exc:
                    msg = f"argument {argument!r}: {exc}"
                    raise StepFailure("bad_argument", msg) from exc
            if source.transform is not None:
                root = transformed(argument, source, root)
            arguments[argument] = root
        if spec.transform is not None:
            arguments = transformed_arguments(spec.transform, arguments)
        return arguments, None

    def _skip(self, step: StepState, why: str) -> None:
        step.status = Status.SKIPPED
        now = time.time()
        self._append(StepSkipped(step=step.spec.name, at=now))
        self._event(StepEventKind.SKIP, step, detail=why)
        self._state.settled(step.spec.name)
        self._dispatch_soon()

    def _launch(self, step: StepState) -> None:
        spec = step.spec
        try:
            executor = executor_for(spec.kind)
        except KindError as exc:
            self._release_slot(step)
            self._fail_for_good(
                step,
                StepError(step=spec.name, kind="internal", error="KindError", message=str(exc)),
            )
            return
        name = spec.name
        step.attempt += 1
        step.status = Status.RUNNING
        step.started_at = now = time.time()
        self._running += 1
        self._n_attempts += 1
        trace = self._event(StepEventKind.START, step, want_context=True)
        # The attempt's span goes in the journal with it: a resumed run's span links to
        # the last one journaled (the trace of the run it continues).
        carrier = otel.carrier_of(trace) if trace is not None else None
        self._append(StepStarted(step=name, attempt=step.attempt, at=now, trace=carrier))
        attempt = self._attempt(step, executor, trace)
        try:
            running = executor.start(attempt)
        except BaseException as exc:  # noqa: BLE001 - a faulty executor fails its step, not the run
            self.attempt_deliver(attempt, Err(exc))
            return
        if running is not None and step.status is Status.RUNNING and step.attempt == attempt.number:
            step.handle = running

    def _attempt(self, step: StepState, executor: StepExecutor, trace: Any) -> Attempt[Any]:
        return Attempt(
            self,
            step.spec,
            step.attempt,
            step.arguments,
            services=self._svc,
            trace=trace,
            run_id=self._run_id,
            reactor=self._plan.reactor,
            stack=self._stack,
            options=self._options,
            executor=executor,
            context_values=self._run_context,
            forced=self._lenient,
            beat=self._pulse.beat if self._pulse is not None else None,
        )

    # ---- what an attempt's executor calls (AttemptPort) -------------------------------------

    def attempt_pipe(self, attempt: Attempt[Any], coro: Coroutine[Any, Any, Any]) -> Cancellable:
        """Run ``coro`` on the loop; its outcome is this attempt's."""
        return self.pipe_to_self(coro, attempt.delivered, name=f"step {attempt.spec.name}")

    def attempt_ask(self, attempt: Attempt[Any], to: Ref[Any], request: Any) -> None:
        """Ask ``to``; its answer is this attempt's outcome (``timeout``: the step's)."""
        ctx = attempt.trace
        token = otel_context.attach(ctx) if ctx is not None else None
        try:
            self.ask(to, request, attempt.delivered, timeout=attempt.spec.timeout)
        finally:
            if token is not None:
                otel_context.detach(token)

    def attempt_deliver(self, attempt: Attempt[Any], reply: Any) -> None:
        """The attempt ended: its executor interprets ``reply``, then the run goes on (3)."""
        try:
            outcome = attempt.executor.outcome(attempt, reply)
        except BaseException as exc:  # noqa: BLE001 - a faulty executor fails its step, not the run
            outcome = Err(exc)
        self._finished(attempt.spec.name, attempt.number, outcome)

    # ---- 3. outcomes ------------------------------------------------------------------------

    def _finished(self, name: str, attempt: int, outcome: Outcome | Failure) -> None:
        step = self._state.steps[name]
        if step.status is not Status.RUNNING or step.attempt != attempt:
            return  # a late outcome of an attempt given up on (cancelled, timed out)
        step.handle = None
        self._running -= 1
        self._release_slot(step)
        if isinstance(outcome, Failure):
            outcome = Err(AskError(outcome))
        if isinstance(outcome, Err):
            if isinstance(outcome.error, RunHaltedError):  # a composed run halted
                halted = outcome.error  # its step, or none when its own timeout halted it
                where = f"{halted.step}: " if halted.step else ""
                self._halted(step, f"{where}{halted.reason}")
            else:
                self._failed(step, outcome.error)
            return
        value = outcome.value
        match value:
            case Halt(reason=reason):
                self._halted(step, reason)
            case Retry(reason=reason):
                self._failed(step, RetryRequested(reason))
            case Fail(reason=reason):  # Ash's {:error, reason}: as if the step raised
                self._failed(step, StepFailure("error", reason or "the step returned Fail()"))
            case WithSteps():
                self._grow(step, value)
            case _:
                step.ran = True
                self._complete(step, value)

    def _grow(self, step: StepState, grown: WithSteps) -> None:
        name = step.spec.name
        try:
            existing = {n: s.spec for n, s in self._state.steps.items()}
            specs, described = plan_added(self._plan, existing, grown.steps, by=name)
        except Exception as exc:  # noqa: BLE001 - bad added steps fail the step, not the run
            problem = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            failure = StepFailure("bad_step", f"the steps it added: {problem}")
            self._failed(step, failure, retry=False)
            return
        again = specs.pop(name, None)
        if again is not None and not self._iterated(step, grown.value):
            return  # its value cannot be journaled: the step failed
        self._append(StepsAdded(by=name, steps=described, at=time.time()))
        self._state.add_dynamic(specs, replayed=False)
        if again is not None:
            self._state.again(again, replayed=False)
        if self._mw:
            self._info = _replace(self._info, steps=tuple(self._state.steps))
        for spec in specs.values():
            self._event(StepEventKind.ADDED, self._state.steps[spec.name], detail=f"by {name}")
        if again is not None:
            looping = self._state.steps[name]
            self._event(StepEventKind.ADDED, looping, detail="by itself, again")
            self._iterations += 1
            limit = self._options.max_iterations
            if limit is not None and self._iterations > limit:
                # Ash's max_iterations: halt before the next iteration (resume runs it).
                self._halted(looping, f"the run reached max_iterations={limit}")
                return
            if self._mode is Mode.RUNNING:
                self._pump()
            else:
                self._after_settle()
            return
        step.ran = True
        self._complete(step, grown.value)

    def _iterated(self, step: StepState, value: Any) -> bool:
        """One iteration of a step that re-emits itself: journal its result, keep it.

        The result is what the step's next definition reads under its name; it is not
        the step's result yet (its dependents wait). On rollback each iteration is
        undone, newest first, by its own definition's ``undo``, as a completed step is.
        """
        name = step.spec.name
        raw = self._encoded(step, value)
        if raw is None:
            return False
        now = time.time()
        self._state.iterated(Iteration(step.spec, step.arguments, value))
        self._n_completed += 1
        self._append(
            StepCompleted(
                step=name,
                attempt=step.attempt,
                value=raw,
                started_at=step.started_at,
                at=now,
                again=True,
            )
        )
        if self._mw:
            self._event(
                StepEventKind.COMPLETE,
                step,
                value=value,
                duration=now - step.started_at,
                detail="re-emits itself",
            )
        return True

    def _encoded(self, step: StepState, value: Any) -> msgspec.Raw | None:
        """``value`` ready to journal; ``None`` when it cannot be (the step then failed)."""
        try:
            return encode_value(value)
        except EncodeError as exc:
            self._failed(
                step,
                StepFailure("unencodable_result", f"its result cannot be journaled: {exc}"),
                retry=False,
            )
            return None

    def _complete(self, step: StepState, value: Any, *, guarded: bool = False) -> None:
        name = step.spec.name
        raw = self._encoded(step, value)
        if raw is None:
            return
        now = time.time()
        step.status = Status.DONE
        self._state.values[name] = value
        self._state.completed.append(name)
        self._n_completed += 1
        self._append(
            StepCompleted(
                step=name,
                attempt=step.attempt,
                value=raw,
                started_at=step.started_at,
                at=now,
                guarded=guarded,
            ),
        )
        if self._mw:
            self._event(StepEventKind.COMPLETE, step, value=value, duration=now - step.started_at)
        self._state.settled(name)
        if self._mode is Mode.RUNNING:
            self._pump()
        else:
            self._after_settle()

    def _failed(self, step: StepState, error: BaseException, *, retry: bool = True) -> None:
        if self._pulse is not None:
            self._pulse.beat()  # a failure is progress (compensate runs before any append)
        spec = step.spec
        now = time.time()
        described = step_error(spec.name, error)
        self._event(StepEventKind.ERROR, step, error=described, duration=now - step.started_at)
        if self._mode is not Mode.RUNNING:
            self._record_failure(step, described, now)
            self._after_settle()
            return
        wants_retry = retry and (isinstance(error, RetryRequested) or transient(error))
        if wants_retry or spec.compensate is None or not retry:
            self._retry_or_fail(step, described, error, wants_retry, now)
            return
        self._compensate(step, described, error, now)

    def _retry_or_fail(
        self,
        step: StepState,
        described: StepError,
        error: BaseException,
        wants_retry: bool,
        now: float,
    ) -> None:
        spec = step.spec
        if wants_retry and step.attempt <= spec.max_retries:
            try:
                delay = _backoff_delay(spec, step.attempt, error)
            except ValueError as exc:  # user code: it fails the step, never the run actor
                described = _with_reason(described, str(exc))
                self._record_failure(step, described, now)
                self._start_rollback()
                return
            asked = error.failure.retry_after if isinstance(error, AskError) else None
            waited_for = "backoff"
            if asked and asked > RETRY_AFTER_LIMIT_S:
                described = _with_reason(
                    described,
                    f"the server's retry_after of {asked:g} s is over "
                    f"{RETRY_AFTER_LIMIT_S:g} s and was ignored; retried after the "
                    f"step's backoff of {delay:g} s",
                )
            elif asked and asked > delay:
                delay, waited_for = asked, "retry_after"
            if self._retry_past_deadline(step, described, delay, waited_for, now):
                return
            step.status = Status.WAITING
            self._n_retries += 1
            self._append(
                StepFailed(
                    step=spec.name,
                    attempt=step.attempt,
                    error=described,
                    will_retry=True,
                    delay=delay,
                    started_at=step.started_at,
                    at=now,
                )
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
            tries = f"{step.attempt} attempt{'' if step.attempt == 1 else 's'}"
            described = _with_reason(described, f"gave up after {tries}")
            if spec.compensate is not None and transient(error):
                # The step's own failure, with no retries left: compensate has the last
                # word (its Continue rescues it; its Retry finds none left).
                self._compensate(step, described, error, now)
                return
        self._record_failure(step, described, now)
        self._start_rollback()

    def _retry_past_deadline(
        self, step: StepState, described: StepError, delay: float, waited_for: str, now: float
    ) -> bool:
        """Act now if waiting ``delay`` to retry would outlast the run's deadline.

        Sleeping until a deadline known to pass before the retry helps nobody: the run
        does at once what its timeout would do then. With ``on_timeout="fail"`` the
        step fails, naming the wait and the time left, and the run fails with a
        ``timeout`` error (running steps are cancelled, completed ones undone); with
        ``"halt"`` the step stays pending (``resume`` retries it) and the run halts with
        that reason. Returns whether it did (``False``: the retry may wait).
        """
        deadline, timeout = self._deadline, self._options.timeout
        if deadline is None or timeout is None or delay <= 0:
            return False
        left = max(0.0, deadline - time.monotonic())
        if delay <= left:
            return False
        name = step.spec.name
        wait = (
            f"the server's retry_after of {delay:g} s"
            if waited_for == "retry_after"
            else f"its backoff of {delay:g} s"
        )
        why = (
            f"step {name!r} would wait {wait} to retry, but the run's timeout of "
            f"{timeout:g} s leaves {left:.3g} s"
        )
        if self._options.on_timeout == "halt":
            self._append(
                StepFailed(
                    step=name,
                    attempt=step.attempt,
                    error=_with_reason(described, f"not retried before the timeout: {why}"),
                    will_retry=True,
                    started_at=step.started_at,
                    at=now,
                )
            )
            step.status = Status.PENDING
            self._event(StepEventKind.HALT, step, detail=why)
            self._halt_run("", f"{why}: halted at once (resume retries it)")
            return True
        self._record_failure(step, _with_reason(described, f"not retried: {why}"), now)
        self._time_out(f"the run failed at once, before its timeout of {timeout:g} s: {why}")
        return True

    def _retry_now(self, name: str) -> None:
        step = self._state.steps[name]
        if step.status is not Status.WAITING:
            return
        if self._mode is not Mode.RUNNING:
            step.status = Status.PENDING
            self._after_settle()
            return
        step.status = Status.READY
        self._state.ready.appendleft(name)
        self._pump()

    def _record_failure(self, step: StepState, described: StepError, now: float) -> None:
        step.status = Status.FAILED
        self._state.mark_partial(step)
        self._state.add_errors(described)
        self._append(
            StepFailed(
                step=step.spec.name,
                attempt=step.attempt,
                error=described,
                will_retry=False,
                started_at=step.started_at,
                at=now,
            ),
        )

    def _fail_for_good(self, step: StepState, described: StepError) -> None:
        self._event(StepEventKind.ERROR, step, error=described)
        self._record_failure(step, described, time.time())
        self._start_rollback()

    def _compensate(
        self, step: StepState, described: StepError, error: BaseException, now: float
    ) -> None:
        spec = step.spec
        assert spec.compensate is not None
        step.status = Status.RUNNING  # busy compensating: not ready, not settled
        self._running += 1
        ctx = self._context(step)
        name, attempt = spec.name, step.attempt
        coro = call_any(
            self._svc.pool, spec.compensate, {"error": error, "arguments": step.arguments}, ctx
        )

        def decided(outcome: Outcome | Failure) -> None:
            self._running -= 1
            self._compensated(
                self._state.steps[name],
                attempt=attempt,
                described=described,
                error=error,
                outcome=outcome,
                now=now,
            )

        self.pipe_to_self(positional(coro), decided, name=f"compensate {name}")

    def _compensated(
        self,
        step: StepState,
        *,
        attempt: int,
        described: StepError,
        error: BaseException,
        outcome: Outcome | Failure,
        now: float,
    ) -> None:
        spec = step.spec
        decision: Any = outcome.value if isinstance(outcome, Ok) else Fail(str(outcome))
        if self._mode is not Mode.RUNNING:
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
                        )
                    )
                    self._append(
                        StepCompensated(
                            step=spec.name, decision="continue", value=raw, at=time.time()
                        )
                    )
                    self._event(StepEventKind.COMPENSATE, step, detail="continue")
                    self._n_compensated += 1
                    step.status = Status.DONE
                    step.ran = True  # rescued: completed like any other, so undone too
                    self._state.values[spec.name] = value
                    self._state.completed.append(spec.name)
                    self._state.settled(spec.name)
                    self._pump()
                    return
            case Retry():
                self._append(StepCompensated(step=spec.name, decision="retry", at=time.time()))
                self._event(StepEventKind.COMPENSATE, step, detail="retry")
                step.status = Status.RUNNING
                self._retry_or_fail(
                    step, described, RetryRequested("compensate asked to retry"), True, now
                )
                return
            case Fail() | None:
                pass
            case _:
                returned = _short(decision)
                decision = Fail(f"compensate returned {returned}, not Continue, Retry or Fail")
        reason = decision.reason if isinstance(decision, Fail) and decision.reason else ""
        if isinstance(outcome, Err):
            reason = f"compensate raised {type(outcome.error).__name__}: {outcome.error}"
        self._append(StepCompensated(step=spec.name, decision="fail", at=time.time()))
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

    def _halted(self, step: StepState, reason: str) -> None:
        step.status = Status.PENDING
        step.blockers = 0
        self._event(StepEventKind.HALT, step, detail=reason)
        self._halt_run(step.spec.name, reason)

    def _halt_run(self, step: str, reason: str) -> None:
        """Stop dispatching; once nothing runs, journal ``RunHalted`` (3c).

        ``step`` is the step that halted the run, empty when the run's own timeout did
        (``on_timeout="halt"``). The first halt's step and reason are the ones kept.
        """
        if self._halt is None:
            self._halt = (step, reason)
        if step and all(step != name for name, _ in self._halts):
            self._halts.append((step, reason))
        if self._mode is Mode.RUNNING:
            self._mode = Mode.HALTING
            wait = self._options.halt_timeout
            if wait is not None and self._running > 0:
                self.call_later(wait, self._halt_overdue, name="halt timeout")
        self._after_settle()

    def _halt_overdue(self) -> None:
        """``halt_timeout`` passed while halting: cancel the plain steps still running.

        Each runs again on resume, under the same attempt number (a plain ``def`` step
        goes on to its end on its thread; what it returns then is dropped). A
        composite's child run is waited for.
        """
        if self._mode is not Mode.HALTING or self._running == 0:
            return
        why = f"the run is halting and waited halt_timeout={self._options.halt_timeout} s for it"
        self._cancel_plain(why)
        self._after_settle()

    def _cancel_plain(self, why: str) -> None:
        """Cancel the running attempts of plain steps (a composite's child run is waited for)."""
        for step in self._state.steps.values():
            running = step.handle if step.status is Status.RUNNING else None
            if running is not None and not step.spec.sub_reactors:
                self._cancel_running(step, running, why)
                step.blockers = 0

    # ---- 4. completion ----------------------------------------------------------------------

    def _maybe_complete(self) -> None:
        if any(
            s.status not in SETTLED and s.status is not Status.UNDONE
            for s in self._state.steps.values()
        ):
            return  # waiting for a retry's backoff or a concurrency slot
        returns = self._plan.returns
        value = (
            self._state.values.get(returns)
            if self._state.steps[returns].status is Status.DONE
            else None
        )
        self._mode = Mode.FINISHING
        raw = self._values_raw(returns)
        self._append_end(
            RunCompleted(run_id=self._run_id, value=raw, at=time.time()),
            RunOutcome(status="completed", value=value),
        )

    def _values_raw(self, name: str) -> msgspec.Raw:
        if self._state.steps[name].status is not Status.DONE:
            return msgspec.Raw(b"null")
        return encode_value(self._state.values[name])

    def _after_settle(self) -> None:
        """Called when an attempt ends while the run is not dispatching."""
        if self._running > 0:
            return
        match self._mode:
            case Mode.HALTING:
                if self._state.errors:
                    self._mode = Mode.ROLLING_BACK
                    self._roll_back()
                    return
                step, reason = self._halt or ("", "halted")
                self._mode = Mode.FINISHING
                self._append_end(
                    RunHalted(run_id=self._run_id, step=step, reason=reason, at=time.time()),
                    RunOutcome(status="halted", reason=reason),
                )
            case Mode.ROLLING_BACK:
                self._roll_back()
            case Mode.RUNNING:
                self._pump()
            case Mode.STARTING | Mode.FINISHING:
                pass

    # ---- 5. rollback ------------------------------------------------------------------------

    def _start_rollback(self) -> None:
        if self._mode in (Mode.ROLLING_BACK, Mode.FINISHING):
            return
        self._mode = Mode.ROLLING_BACK
        self._after_settle()

    def _roll_back(self) -> None:
        while self._state.completed:
            name = self._state.completed.pop()
            if isinstance(name, Iteration):
                if name.spec.undo is not None:
                    self._undo_iteration(name, tries=0)
                    return
                continue
            step = self._state.steps[name]
            completed = step.status is Status.DONE and step.ran
            unfinished = step.partial and step.status is not Status.UNDONE
            if (completed or unfinished) and self._undo(step, tries=0):
                return
        self._end_failed()

    def _kind_undo(self, step: StepState) -> Coroutine[Any, Any, Any] | None:
        """The step's kind's own rollback (a composite's child runs), if it has one."""
        try:
            executor = executor_for(step.spec.kind)
        except KindError:
            return None
        attempt = self._attempt(step, executor, None)
        return executor.undo(attempt, self._state.values.get(step.spec.name))

    def _undo(self, step: StepState, tries: int) -> bool:
        """Start undoing ``step``; ``False`` if nothing undoes it (no ``undo``, nor its kind)."""
        spec = step.spec
        name = spec.name
        by_kind = self._kind_undo(step) if spec.undo is None else None
        if spec.undo is None and by_kind is None:
            return False
        if tries == 0:
            self._event(StepEventKind.UNDO_START, step)
        ctx = self._context(step)
        coro: Coroutine[Any, Any, Outcome]
        if by_kind is not None:
            coro = guarded(by_kind, None, ctx)
        else:
            assert spec.undo is not None
            arguments = step.arguments
            if not arguments:  # completed before a resume: rebuild them
                arguments = self._rebuilt_arguments(spec)
            coro = call_any(
                self._svc.pool,
                spec.undo,
                {"value": self._state.values.get(name), "arguments": arguments},
                ctx,
            )

        def undone(outcome: Outcome | Failure) -> None:
            step = self._state.steps[name]
            if step.partial and isinstance(outcome, Ok) and not outcome.value:
                step.status = Status.UNDONE  # no child run had completed: nothing to record
                self._roll_back()
                return
            self._undone(step, tries, outcome)

        self.pipe_to_self(positional(coro), undone, name=f"undo {name}")
        return True

    def _undo_iteration(self, iteration: Iteration, tries: int) -> None:
        """Start undoing one iteration of a step that re-emitted itself (its own ``undo``)."""
        spec = iteration.spec
        assert spec.undo is not None
        step = self._state.steps[spec.name]
        if tries == 0:
            self._event(StepEventKind.UNDO_START, step, detail="an iteration")
        coro = call_any(
            self._svc.pool,
            spec.undo,
            {"value": iteration.value, "arguments": iteration.arguments},
            self._context(step),
        )

        def undone(outcome: Outcome | Failure) -> None:
            self._iteration_undone(iteration, tries, outcome)

        self.pipe_to_self(positional(coro), undone, name=f"undo {spec.name}")

    def _iteration_undone(
        self, iteration: Iteration, tries: int, outcome: Outcome | Failure
    ) -> None:
        spec = iteration.spec
        name = spec.name
        step = self._state.steps[name]
        error, tries = _undo_error(spec, outcome, tries)
        if error is None:
            self._n_undone += 1
            self._append(StepUndone(step=name, at=time.time(), again=True))
            self._event(StepEventKind.UNDO_COMPLETE, step, detail="an iteration")
            self._roll_back()
            return
        if tries < spec.max_retries:
            delay = float(spec.backoff(tries + 1, error))
            self.call_later(
                delay, lambda: self._undo_iteration(iteration, tries + 1), name=f"undo {name}"
            )
            return
        described = step_error(name, error)
        self._state.add_errors(
            StepError(
                step=name,
                kind="undo_failed",
                error=described.error,
                message=f"undo of an iteration failed: {described.message}",
            )
        )
        self._append(StepUndoFailed(step=name, error=described, at=time.time(), again=True))
        self._event(StepEventKind.UNDO_ERROR, step, error=described)
        self._roll_back()

    def _undone(self, step: StepState, tries: int, outcome: Outcome | Failure) -> None:
        spec = step.spec
        error, tries = _undo_error(spec, outcome, tries)
        if error is None:
            step.status = Status.UNDONE
            self._n_undone += 1
            self._append(StepUndone(step=spec.name, at=time.time()))
            self._event(StepEventKind.UNDO_COMPLETE, step)
            self._roll_back()
            return
        if tries < spec.max_retries:
            delay = float(spec.backoff(tries + 1, error))
            name = spec.name
            self.call_later(
                delay, lambda: self._undo(self._state.steps[name], tries + 1), name=f"undo {name}"
            )
            return
        described = step_error(spec.name, error)
        step.status = Status.UNDONE
        self._state.add_errors(
            StepError(
                step=spec.name,
                kind="undo_failed",
                error=described.error,
                message=f"undo failed: {described.message}",
            )
        )
        self._append(StepUndoFailed(step=spec.name, error=described, at=time.time()))
        self._event(StepEventKind.UNDO_ERROR, step, error=described)
        self._roll_back()

    def _end_failed(self) -> None:
        self._mode = Mode.FINISHING
        if self._undo_only:
            errors = tuple(self._state.errors)
            self._append_end(
                RunUndone(run_id=self._run_id, errors=errors, at=time.time()),
                RunOutcome(status="undone", errors=errors),
            )
            return
        if self._cancel is not None:
            reason = self._cancel
            self._append_end(
                RunCancelled(run_id=self._run_id, reason=reason, at=time.time()),
                RunOutcome(status="cancelled", reason=reason),
            )
            return
        errors = tuple(self._state.errors)
        self._append_end(
            RunFailed(run_id=self._run_id, errors=errors, at=time.time()),
            RunOutcome(status="failed", errors=errors),
        )

    # ---- 6. cancel and timeout --------------------------------------------------------------

    def _cancel_run(self, reason: str) -> None:
        if self._mode in (Mode.FINISHING,) or self._cancel is not None:
            return
        self._cancel = reason
        self._stop_attempts(reason)
        if self._mode is Mode.STARTING:
            return  # _begin() will find _cancel set
        self._mode = Mode.ROLLING_BACK
        self._after_settle()

    def _on_timeout(self) -> None:
        if self._mode in (Mode.FINISHING, Mode.ROLLING_BACK):
            return
        timeout = self._options.timeout
        if self._options.on_timeout == "halt":
            self._halt_run("", _timeout_reason(timeout))
            return
        self._time_out(f"the run took longer than its timeout of {timeout} s")

    def _on_idle(self) -> None:
        """The idle timer fired: act as the run's timeout would if nothing progressed.

        Steps stamp the run's progress (:class:`Pulse`) without a message; the timer
        reads the stamp and, when there was progress since, sets itself again for
        ``idle_timeout`` after it. A run with nothing running (it waits for a
        concurrency slot or a scheduled retry, both bounded by others), with a retry
        scheduled, or with a step running whose kind ends its work by its own deadline
        (``StepKind.bounded``: a model call) is not idle: the clock waits another period.
        """
        self._idle_timer = None
        idle, pulse = self._options.idle_timeout, self._pulse
        if idle is None or pulse is None or self._mode not in (Mode.RUNNING, Mode.HALTING):
            return
        quiet = time.monotonic() - pulse.last
        if quiet < idle:  # progress since: look again an idle period after it
            self._idle_timer = self.call_later(idle - quiet, self._on_idle, name="idle timeout")
            return
        if self._running == 0 or any(
            s.status is Status.WAITING or (s.status is Status.RUNNING and _bounded(s.spec))
            for s in self._state.steps.values()
        ):
            self._idle_timer = self.call_later(idle, self._on_idle, name="idle timeout")
            return
        self._idle_out(idle)

    def _idle_out(self, idle: float) -> None:
        """``idle_timeout`` passed with no progress: fail or halt, as ``on_timeout`` says."""
        now = time.time()
        running = [
            f"{s.spec.name!r} (for {max(0.0, now - s.started_at):.3g} s)"
            for s in self._state.steps.values()
            if s.status is Status.RUNNING
        ]
        still = f"; still running: {', '.join(running)}" if running else ""
        if self._options.on_timeout == "halt":
            self._halt_run("", _idle_reason(idle) + still)
            # The running steps are the ones making no progress: waiting for them to
            # finish could take forever. They run again on resume.
            self._cancel_plain(f"the run halted: no progress for {idle:g} s (idle_timeout)")
            self._after_settle()
            return
        self._time_out(f"the run made no progress for {idle:g} s (its idle_timeout){still}")

    def _time_out(self, message: str) -> None:
        """Fail the run with a ``timeout`` error: cancel running attempts, roll back (6)."""
        self._state.add_errors(
            StepError(step="", kind="timeout", error="RunTimeout", message=message)
        )
        self._stop_attempts("the run timed out")
        self._mode = Mode.ROLLING_BACK
        self._after_settle()

    def _stop_attempts(self, reason: str) -> None:
        for step in self._state.steps.values():
            if step.status is Status.RUNNING and step.handle is not None:
                self._cancel_running(step, step.handle, reason)
                self._state.mark_partial(step)
            elif step.status is Status.WAITING:
                step.status = Status.PENDING

    def _cancel_running(self, step: StepState, running: Cancellable, reason: str) -> None:
        """Cancel ``step``'s running attempt: it is pending again, its slot is free."""
        self._cancel_attempt(step, running)
        step.handle = None
        step.status = Status.PENDING
        self._running -= 1
        self._release_slot(step)
        self._event(
            StepEventKind.ERROR,
            step,
            error=StepError(
                step=step.spec.name, kind="cancelled", error="Cancelled", message=reason
            ),
        )

    def _cancel_attempt(self, step: StepState, running: Cancellable) -> None:
        try:
            executor_for(step.spec.kind).cancel(running)
        except Exception:  # a faulty executor must not keep the run from ending
            self.log.exception("cancelling an attempt failed", run_id=self._run_id)
            running.cancel()

    # ---- the journal and the end --------------------------------------------------------------

    def _append(
        self, event: Any, then: Callable[[JournalAppended | Failure], object] | None = None
    ) -> None:
        """Journal ``event`` through the outbox; ``then(outcome)`` once it is durable.

        Without ``then``: :meth:`journal_checked` (a failure fails the run). Whatever a
        run journals is progress (``idle_timeout``).
        """
        if self._pulse is not None:
            self._pulse.beat()
        self._journal.append(event, then)

    def _append_end(self, event: Any, outcome: RunOutcome) -> None:
        """Journal the event that ends the run; once it is durable, answer with ``outcome``."""
        self._ending = outcome
        self._append(event, self._end_appended)

    def _end_appended(self, appended: JournalAppended | Failure) -> None:
        ending = self._ending
        assert ending is not None  # set before the event was appended
        self._ended(appended, ending)

    def journal_checked(self, outcome: JournalAppended | Failure) -> None:
        """An event's append was answered: a failure to journal fails the run."""
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
        self._mode = Mode.FINISHING
        if not self._done.done():
            self._done.set_exception(error)
        self.stop()

    def _ended(self, appended: JournalAppended | Failure, outcome: RunOutcome) -> None:
        if isinstance(appended, Failure):
            self._journal_failed(appended)
            return
        if self._timer is not None:
            self._timer.cancel()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        outcome = _replace(outcome, duration=time.monotonic() - self._started, stats=self._stats())
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
                            halted=tuple(self._halts) if step else (),
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

    def _stats(self) -> dict[str, int]:
        counts = (
            ("attempts", self._n_attempts),
            ("completed", self._n_completed),
            ("retries", self._n_retries),
            ("compensated", self._n_compensated),
            ("undone", self._n_undone),
        )
        return {name: count for name, count in counts if count}

    # ---- middleware -------------------------------------------------------------------------

    def _event(
        self,
        kind: StepEventKind,
        step: StepState,
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
        event = step_event(
            kind, step.spec.name, step.attempt, time.time(), duration, value, error, delay, detail
        )
        notify(self._mw, "step_event", self._info, event)
        return self._context(step) if want_context else None

    def _context(self, step: StepState) -> Any:
        for each in self._mw:
            try:
                ctx = each.step_context(self._info, step.spec.name, step.attempt)
            except BaseException:  # user code, as in notify(): SystemExit too
                self.log.exception("middleware step_context failed", run_id=self._run_id)
                continue
            if ctx is not None:
                return ctx
        return None

    def _dispatch_soon(self) -> None:
        if self._mode is Mode.RUNNING:
            self._pump()
        else:
            self._after_settle()


_UNOBSERVED = RunInfo(run_id="", reactor="")
"""The RunInfo of runs without middleware: never read (only middleware hooks read it)."""

RETRY_AFTER_LIMIT_S = 60.0
"""The longest ``retry_after`` a step retry waits for. A server asking for more is not
waited for: the step's own backoff applies instead, and its ``StepFailed`` says so.
OpenAI's and Anthropic's SDKs ignore a ``retry-after`` over 60 s the same way (a wait
that long is more often a quota window than a pause worth holding a run for)."""

_NO_CONTEXT: Mapping[str, Any] = MappingProxyType({})
"""The context of runs started without one (read-only, so all of them share it)."""


class Pulse:
    """When a run last made progress: the stamp its idle timer reads.

    :meth:`beat` is what ``StepContext.heartbeat()`` calls, from any thread: one
    attribute store of a float (atomic), and the same for the composing run's step when
    the run is a composed one, so a parent sees its child's progress as its own.
    """

    __slots__ = ("last", "up")

    def __init__(self, up: Callable[[], object] | None = None) -> None:
        self.last = time.monotonic()
        self.up = up

    def beat(self) -> None:
        """Stamp progress now (and in the composing run, if any)."""
        self.last = time.monotonic()
        up = self.up
        if up is not None:
            up()


class _SlotFree:
    """A concurrency-key slot may be free: dispatch again."""


def _options_record(options: RunOptions) -> Any:
    return _RunOptionsRecord(
        max_concurrency=options.max_concurrency,
        timeout=options.timeout,
        concurrency_key=options.concurrency_key,
        on_timeout=options.on_timeout,
        max_iterations=options.max_iterations,
        halt_timeout=options.halt_timeout,
        idle_timeout=options.idle_timeout,
    )


class _RunOptionsRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A run's options as ``RunStarted.options`` journals them.

    A journal written before a field existed lacks it: the field's default here must be
    :class:`RunOptions`' (``Engine.resume`` rebuilds the options from the names it finds).
    """

    max_concurrency: int
    timeout: float | None = None
    concurrency_key: str | None = None
    on_timeout: str = "fail"
    max_iterations: int | None = None
    halt_timeout: float | None = None
    idle_timeout: float | None = None


def _undo_error(
    spec: StepSpec, outcome: Outcome | Failure, tries: int
) -> tuple[BaseException | None, int]:
    """What went wrong with an undo (``None``: it undid), and the tries it counts as."""
    if isinstance(outcome, Failure):
        return AskError(outcome), tries
    if isinstance(outcome, Err):
        return outcome.error, tries
    if isinstance(outcome.value, Retry):
        return RetryRequested(outcome.value.reason), tries
    if isinstance(outcome.value, Fail) and spec.undo is not None:
        # The undo says it cannot: recorded at once, as Ash's {:error, reason} is.
        reason = outcome.value.reason or "undo returned Fail()"
        return StepFailure("error", reason), spec.max_retries
    return None, tries


def _timeout_reason(timeout: float | None) -> str:
    """Why a run whose ``on_timeout`` is ``"halt"`` halted (``RunHalted.reason``)."""
    return f"the run's timeout of {timeout} s passed"


def _bounded(spec: StepSpec) -> bool:
    """Whether ``spec``'s kind ends its work by a deadline of its own (a model call's).

    A step of such a kind still running is not a run without progress (``idle_timeout``):
    it will finish or fail by that deadline, and either is progress.
    """
    try:
        return kind_of(spec.impl).bounded
    except KindError:
        return False


def _idle_reason(idle: float) -> str:
    """Why a run whose ``on_timeout`` is ``"halt"`` halted at its ``idle_timeout``."""
    return f"the run's idle_timeout of {idle} s passed with no progress"


def _why(exc: BaseException) -> str:
    """What a replay error says: a bare ``KeyError('a')`` names the step it missed."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return (
            f"the journal names step {exc.args[0]!r}, which the reactor no longer has "
            "(renamed or removed since the run started?)"
        )
    return str(exc)


def _last_trace(events: list[Any]) -> dict[str, str] | None:
    """The newest trace context journaled with a run's events (a step attempt's span)."""
    for event in reversed(events):
        carrier = getattr(event, "trace", None)
        if carrier:
            return dict(carrier)
    return None


def _replace(obj: Any, **changes: Any) -> Any:
    import dataclasses  # noqa: PLC0415

    return dataclasses.replace(obj, **changes)


def _last_resumer(entries: tuple[JournalEntry, ...]) -> Owner | None:
    """The owner of the latest ``RunResumed`` among ``entries`` (``None``: none, or unreadable)."""
    for entry in reversed(entries):
        if entry.event_type == "RunResumed":
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                event = RUN_EVENT_DECODER.decode(entry.data)
                if isinstance(event, RunResumed):
                    return event.owner
            return None
    return None


def _with_reason(described: StepError, reason: str) -> StepError:
    """``described`` with ``(reason)`` after its message (its traceback kept)."""
    return msgspec.structs.replace(described, message=f"{described.message} ({reason})")


def _backoff_delay(spec: StepSpec, attempt: int, error: BaseException) -> float:
    """Seconds before retry ``attempt`` of ``spec``, from its ``backoff`` (user code).

    Raises:
        ValueError: The backoff raised, or did not return a finite number of seconds.
    """
    try:
        delay = spec.backoff(attempt, error)
    except BaseException as exc:  # even SystemExit fails only the step
        msg = f"backoff raised {type(exc).__name__}: {exc}"
        raise ValueError(msg) from exc
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not math.isfinite(delay):
        msg = f"backoff returned {delay!r}, not a finite number of seconds"
        raise ValueError(msg)
    return float(delay)


def _short(value: Any) -> str:
    """``repr(value)``, cut to a length an error message can carry."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
