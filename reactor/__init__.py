"""The engine that runs reactors, and the application around it (CLI, demo).

:class:`Engine` starts, resumes, lists and cancels runs of :mod:`dsl` reactors in an
actor system: one Run actor per run, every transition journaled in SQLite so that a
halted or interrupted run continues where it stopped. :class:`Middleware` observes
every run and step event; tracing and logging are middleware.
"""

from reactor._engine import DEFAULT_MAX_DEPTH, Engine, RunHandle, RunSummary, check_inputs
from reactor._errors import (
    InputError,
    ResumeError,
    RunCancelledError,
    RunError,
    RunFailedError,
    RunHaltedError,
)
from reactor._middleware import Middleware, RunInfo, RunOutcome, StepEvent, StepEventKind
from reactor._observe import LoggingMiddleware, TracingMiddleware
from reactor._records import (
    RUN_EVENT_DECODER,
    Owner,
    RunCancelled,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunHalted,
    RunResumed,
    RunStarted,
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
from reactor._run import CancelRun

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "RUN_EVENT_DECODER",
    "CancelRun",
    "Engine",
    "InputError",
    "LoggingMiddleware",
    "Middleware",
    "Owner",
    "ResumeError",
    "RunCancelled",
    "RunCancelledError",
    "RunCompleted",
    "RunError",
    "RunEvent",
    "RunFailed",
    "RunFailedError",
    "RunHalted",
    "RunHaltedError",
    "RunHandle",
    "RunInfo",
    "RunOutcome",
    "RunResumed",
    "RunStarted",
    "RunSummary",
    "StepCompensated",
    "StepCompleted",
    "StepError",
    "StepEvent",
    "StepEventKind",
    "StepFailed",
    "StepSkipped",
    "StepStarted",
    "StepUndoFailed",
    "StepUndone",
    "StepsAdded",
    "TracingMiddleware",
    "check_inputs",
    "stream_of",
]
