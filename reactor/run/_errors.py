"""Errors the engine raises to whoever started or resumed a run.

The tree::

    RunError              something stopped a run (or kept one from starting)
    ├── InputError        an input is missing, unknown or of the wrong type
    ├── RunFailedError         a step failed for good; the run was rolled back
    ├── RunHaltedError         a step (or the run's timeout) halted the run; resume it
    ├── RunCancelledError      the run was cancelled
    ├── RunExistsError    a new run was started under the id of a run that exists
    ├── ResumeError       the run cannot be resumed (unknown, finished, not loadable)
    │   ├── PlanChangedError   its reactor's steps changed since it started
    │   └── JournalCorruptError  a row of its journal cannot be read
    ├── UndoError         a completed run cannot be undone (not completed, or a step
    │                     has no ``undo``); nothing was undone
    ├── ElementFailedError     one element of a ``for_each`` failed (its step's error)
    └── IterationFailedError   one iteration of a ``recurse`` failed (its step's error)

    ForcedFailureError    a ``flunk`` step's error (an ``Exception``, not a ``RunError``:
                          the step's, journaled as kind ``forced_failure``)

Each carries the run id and the reactor's name; :class:`RunFailedError` carries every
:class:`~reactor.StepError` (step, kind, message), first failure first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reactor.run._records import StepError

__all__ = [
    "ElementFailedError",
    "ForcedFailureError",
    "InputError",
    "IterationFailedError",
    "JournalCorruptError",
    "PlanChangedError",
    "ResumeError",
    "RunCancelledError",
    "RunError",
    "RunExistsError",
    "RunFailedError",
    "RunHaltedError",
    "UndoError",
]


class RunError(Exception):
    """A run did not produce a result.

    Attributes:
        run_id: The run (empty when it never started).
        reactor: The reactor's name.
    """

    def __init__(self, message: str, *, run_id: str, reactor: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.reactor = reactor


class InputError(RunError, ValueError):
    """An input is missing, unknown, or cannot be converted to its type.

    Attributes:
        input: The input concerned.
        missing: Every required input that was not given (empty for other problems).
    """

    def __init__(
        self, problem: str, *, reactor: str, input: str, missing: tuple[str, ...] = ()
    ) -> None:
        super().__init__(
            f"reactor {reactor!r}, input {input!r}: {problem}", run_id="", reactor=reactor
        )
        self.input = input
        self.missing = missing


class RunFailedError(RunError):
    """A step failed for good; completed steps with an ``undo`` were rolled back.

    Attributes:
        errors: Every failure, the one that failed the run first.
    """

    def __init__(self, *, run_id: str, reactor: str, errors: Sequence[StepError]) -> None:
        self.errors = tuple(errors)
        first = self.errors[0] if self.errors else None
        if first is None:
            what = "failed"
        elif not first.step:  # the run's own failure (its timeout, a journal it cannot replay)
            what = f"failed ({first.kind}: {first.message})"
        else:
            what = f"step {first.step!r} failed ({first.kind}: {first.message})"
        more = f" and {len(self.errors) - 1} more" if len(self.errors) > 1 else ""
        super().__init__(
            f"run {run_id} of reactor {reactor!r}: {what}{more}", run_id=run_id, reactor=reactor
        )


class RunHaltedError(RunError):
    """The run halted; :meth:`reactor.Engine.resume` continues it.

    A step halted it (``Halt(reason)``, or a composed run that halted), or its own
    timeout passed under ``on_timeout="halt"`` (then ``step`` is empty and ``reason``
    says so).

    Attributes:
        step: The step that halted it first (empty: the run's timeout did).
        reason: Why.
        halted: Every ``(step, reason)`` that halted the run, the first first: steps
            running side by side may each halt it (several approvals, say).
    """

    def __init__(
        self,
        *,
        run_id: str,
        reactor: str,
        step: str,
        reason: str,
        halted: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.step = step
        self.reason = reason
        self.halted = halted or ((step, reason),)
        where = f" at step {step!r}" if step else ""
        others = [f"{name!r} ({why})" for name, why in self.halted[1:]]
        also = f"; also halted: {', '.join(others)}" if others else ""
        super().__init__(
            f"run {run_id} of reactor {reactor!r} halted{where}: {reason}{also} "
            f"(resume it with `reactor runs resume {run_id}`)",
            run_id=run_id,
            reactor=reactor,
        )


class RunCancelledError(RunError):
    """The run was cancelled (and rolled back).

    Attributes:
        reason: Who or what cancelled it.
    """

    def __init__(self, *, run_id: str, reactor: str, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"run {run_id} of reactor {reactor!r} was cancelled: {reason}",
            run_id=run_id,
            reactor=reactor,
        )


class ResumeError(RunError):
    """The run cannot be resumed: unknown, already finished, or its reactor is gone."""


class RunExistsError(RunError):
    """A new run was started under an id that names a run already (nothing ran).

    A run id names one run: starting another under it would throw away what was asked
    for (or mix two runs' inputs), so it is refused, atomically (the journal accepts a
    run's first event only on an empty stream). Resume the existing run instead.
    """

    def __init__(self, *, run_id: str, reactor: str, detail: str = "") -> None:
        about = f" ({detail})" if detail else ""
        super().__init__(
            f"run {run_id} already exists{about}: a run id names one run; continue it "
            f"with `reactor runs resume {run_id}` (Engine.resume), or start a new run "
            "under another id",
            run_id=run_id,
            reactor=reactor,
        )


class PlanChangedError(ResumeError):
    """The reactor's steps changed since the run started: resuming would mix two plans.

    Attributes:
        changes: What changed, one phrase each (``step 'b' was added``, ...).
    """

    def __init__(self, *, run_id: str, reactor: str, changes: Sequence[str]) -> None:
        self.changes = tuple(changes)
        super().__init__(
            f"run {run_id} of reactor {reactor!r} cannot be resumed: its steps changed "
            f"since it started: {'; '.join(self.changes)} (resume with force=True / "
            "`--force` to run the new steps against the results it has)",
            run_id=run_id,
            reactor=reactor,
        )


class JournalCorruptError(ResumeError):
    """A row of the run's journal cannot be decoded.

    Attributes:
        seq: The row's position in the run's stream (from 1).
        problem: What is wrong with it.
    """

    def __init__(self, *, run_id: str, reactor: str, seq: int, problem: str) -> None:
        self.seq = seq
        self.problem = problem
        super().__init__(
            f"run {run_id}: journal row seq {seq} cannot be read: {problem}",
            run_id=run_id,
            reactor=reactor,
        )


class UndoError(RunError):
    """A run cannot be undone; nothing was undone.

    Attributes:
        steps: The completed steps that have no ``undo`` (``child_run/step`` for a
            composed run's), empty when the run itself is the problem (unknown, not
            completed, already undone).
    """

    def __init__(
        self, message: str, *, run_id: str, reactor: str, steps: Sequence[str] = ()
    ) -> None:
        super().__init__(message, run_id=run_id, reactor=reactor)
        self.steps = tuple(steps)


class ElementFailedError(RunError):
    """One element of a ``for_each`` failed: the step fails with the element's own error.

    The step's :class:`~reactor.StepError` takes the element's kind and error type, and
    a message that names the element by its index; the elements that completed are
    undone when the run rolls back.

    Attributes:
        index: The element's position in the collection, from 0.
        cause: The element run's first failure (its step, kind, error and message).
    """

    def __init__(self, *, run_id: str, reactor: str, index: int, cause: StepError) -> None:
        self.index = index
        self.cause = cause
        at = f" at step {cause.step!r}" if cause.step else ""
        super().__init__(
            f"element {index} failed{at} ({cause.error}: {cause.message})",
            run_id=run_id,
            reactor=reactor,
        )


class IterationFailedError(RunError):
    """One iteration of a ``recurse`` step failed: the step fails with the iteration's error.

    The step's :class:`~reactor.StepError` takes the iteration's kind and error type,
    and a message that names the iteration; the iterations that completed before it
    are undone (newest first) when the run rolls back.

    Attributes:
        iteration: The iteration that failed, from 1.
        cause: Its first failure (its step, kind, error and message); ``step`` is empty
            when the failure was not a step's (the ``exit_condition`` raised, the
            result cannot be the next inputs).
    """

    def __init__(self, *, run_id: str, reactor: str, iteration: int, cause: StepError) -> None:
        self.iteration = iteration
        self.cause = cause
        at = f" at step {cause.step!r}" if cause.step else ""
        super().__init__(
            f"iteration {iteration} of {reactor} failed{at} ({cause.error}: {cause.message})",
            run_id=run_id,
            reactor=reactor,
        )


class ForcedFailureError(Exception):
    """What a ``flunk`` step fails with: a failure the reactor asked for.

    Journaled with kind ``forced_failure``; never retried.

    Attributes:
        kind: ``forced_failure``, the journal's kind for it.
        message: The step's message, rendered with its arguments.
        arguments: The step's arguments.
    """

    kind = "forced_failure"

    def __init__(self, message: str, arguments: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.arguments: dict[str, Any] = dict(arguments or {})
