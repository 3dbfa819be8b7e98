"""Errors the engine raises to whoever started or resumed a run.

The tree::

    RunError              something stopped a run (or kept one from starting)
    ├── InputError        an input is missing, unknown or of the wrong type
    ├── RunFailedError         a step failed for good; the run was rolled back
    ├── RunHaltedError         a step halted the run; resume it later
    ├── RunCancelledError      the run was cancelled
    └── ResumeError       the run cannot be resumed (unknown, finished, not loadable)

Each carries the run id and the reactor's name; :class:`RunFailedError` carries every
:class:`~reactor.StepError` (step, kind, message), first failure first.
"""

from __future__ import annotations

from collections.abc import Sequence

from reactor.run._records import StepError

__all__ = [
    "InputError",
    "ResumeError",
    "RunCancelledError",
    "RunError",
    "RunFailedError",
    "RunHaltedError",
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
        what = f"step {first.step!r} failed ({first.kind}: {first.message})" if first else "failed"
        more = f" and {len(self.errors) - 1} more" if len(self.errors) > 1 else ""
        super().__init__(
            f"run {run_id} of reactor {reactor!r}: {what}{more}", run_id=run_id, reactor=reactor
        )


class RunHaltedError(RunError):
    """A step halted the run; :meth:`reactor.Engine.resume` continues it.

    Attributes:
        step: The step that halted it.
        reason: Why.
    """

    def __init__(self, *, run_id: str, reactor: str, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(
            f"run {run_id} of reactor {reactor!r} halted at step {step!r}: {reason} "
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
