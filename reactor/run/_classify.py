"""What a step's failure means: transient (retry it) or not, and how the journal says it.

One place decides which errors are retried (:func:`transient`: timeouts, connection
errors, model failures whose kind is retryable, but not an open circuit breaker) and
turns any error into the journal's :class:`~reactor.run.StepError`
(:func:`step_error`).
"""

from __future__ import annotations

from actors import AskError, FailureKind
from reactor.run._errors import ElementFailedError
from reactor.run._records import StepError

__all__ = ["RetryRequested", "StepFailure", "step_error", "transient"]


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


def transient(error: BaseException) -> bool:
    """Whether ``error`` is worth retrying (with backoff, within ``max_retries``)."""
    if isinstance(error, AskError):
        kind = error.failure.kind
        return kind.retryable and kind is not FailureKind.CIRCUIT_OPEN
    return isinstance(error, TimeoutError | ConnectionError)


def step_error(step: str, error: BaseException) -> StepError:
    """The journal's description of ``error`` raised by ``step``."""
    if isinstance(error, StepFailure):
        return StepError(step=step, kind=error.kind, error=error.kind, message=str(error))
    if isinstance(error, ElementFailedError):  # the element's own kind and error
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
    return StepError(
        step=step,
        kind="error",
        error=type(error).__name__,
        message=str(error) or repr(error),
        retryable=transient(error),
    )
