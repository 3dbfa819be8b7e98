"""What a step's failure means: transient (retry it) or not, and how the journal says it.

One place decides which errors are retried (:func:`transient`: timeouts, connection
errors, model failures whose kind is retryable, but not an open circuit breaker) and
turns any error into the journal's :class:`~reactor.run.StepError`
(:func:`step_error`).

An exception raised by user code keeps its traceback in the journal (bounded by
:data:`~reactor.run.TRACEBACK_LIMIT`): it is what ``reactor runs show --traceback``
prints, what the tracing middleware records as the span's exception event and what the
logging middleware logs. A ``BaseException`` that is not an ``Exception``
(``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``, a stray ``CancelledError``)
is kind ``internal``: user code tried to stop something it does not own, and only its
own step fails.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from actors import AskError, FailureKind
from reactor.run._errors import ElementFailedError, ForcedFailureError, IterationFailedError
from reactor.run._records import TRACEBACK_LIMIT, StepError

__all__ = ["RetryRequested", "StepFailure", "format_traceback", "step_error", "transient"]


class StepFailure(Exception):  # noqa: N818 - a failure value, not raised to users
    """A failure the engine (or an executor) found: a bad argument path, a model not found.

    Attributes:
        kind: The journal's kind for it (``bad_argument``, ``not_found``, ...).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class RetryRequested(Exception):  # noqa: N818 - a request, not an error
    """The step (or its compensation) asked to be retried."""


_INVOKE_FILE = str(Path(__file__).with_name("_invoke.py"))
"""Where the engine calls user code (its frame leads every step's traceback)."""


def transient(error: BaseException) -> bool:
    """Whether ``error`` is worth retrying (with backoff, within ``max_retries``)."""
    if isinstance(error, AskError):
        failure = error.failure
        return failure.retryable and failure.kind is not FailureKind.CIRCUIT_OPEN
    return isinstance(error, TimeoutError | ConnectionError)


def step_error(step: str, error: BaseException) -> StepError:
    """The journal's description of ``error`` raised by ``step``."""
    if isinstance(error, StepFailure | ForcedFailureError):
        name = error.kind if isinstance(error, StepFailure) else type(error).__name__
        return StepError(step=step, kind=error.kind, error=name, message=str(error))
    if isinstance(error, ElementFailedError | IterationFailedError):  # the child's kind and error
        cause = error.cause
        return StepError(step=step, kind=cause.kind, error=cause.error, message=str(error))
    if isinstance(error, AskError):
        failure = error.failure
        return StepError(
            step=step,
            kind=failure.kind.value,
            error=failure.kind.value,
            message=failure.message,
            retryable=transient(error),
        )
    if isinstance(error, TimeoutError):
        return StepError(
            step=step,
            kind="timeout",
            error=type(error).__name__,
            message=str(error) or "the attempt took longer than its timeout",
            retryable=True,
        )
    if not isinstance(error, Exception):  # SystemExit, KeyboardInterrupt, ...
        return StepError(
            step=step,
            kind="internal",
            error=type(error).__name__,
            message=f"the step raised {error!r}, which fails only this step "
            "(user code cannot stop the runtime)",
            traceback=format_traceback(error),
        )
    return StepError(
        step=step,
        kind="error",
        error=type(error).__name__,
        message=str(error) or repr(error),
        retryable=transient(error),
        traceback=format_traceback(error),
    )


def format_traceback(error: BaseException, limit: int = TRACEBACK_LIMIT) -> str:
    """``error``'s traceback as Python prints it, cut to its last ``limit`` characters.

    Empty when it has none (an exception made but never raised). The cut is made at a
    line boundary and says how much was left out.
    """
    frames = error.__traceback__
    while frames is not None and frames.tb_frame.f_code.co_filename == _INVOKE_FILE:
        frames = frames.tb_next  # the engine's call of the user's code: not theirs
    if frames is None:
        frames = error.__traceback__
    if frames is None:
        return ""
    text = "".join(traceback.format_exception(type(error), error, frames))
    if len(text) <= limit:
        return text
    tail = text[-limit:]
    tail = tail[tail.find("\n") + 1 :] if "\n" in tail else tail
    return f"... ({len(text) - len(tail)} characters left out)\n{tail}"
