"""The engine that runs reactors, and the application around it (CLI, demo).

:class:`Engine` starts, resumes, lists and cancels runs of :mod:`dsl` reactors in an
actor system: one Run actor per run, every transition journaled in SQLite so that a
halted or interrupted run continues where it stopped. :class:`Middleware` observes
every run and step event; tracing and logging are middleware.

Subpackages: :mod:`reactor.run` (the Run actor's loop and journal records),
:mod:`reactor.kinds` (one executor per step kind), :mod:`reactor.observe` (tracing,
logging, progress), :mod:`reactor.app` (the Engine and its wiring), :mod:`reactor.cli`.
"""

from reactor.app import DEFAULT_MAX_DEPTH, Engine, RunHandle
from reactor.observe import LoggingMiddleware, TracingMiddleware
from reactor.run import (
    RUN_EVENT_DECODER,
    InputError,
    Middleware,
    Owner,
    ResumeError,
    RunCancelled,
    RunCancelledError,
    RunCompleted,
    RunError,
    RunEvent,
    RunFailed,
    RunFailedError,
    RunHalted,
    RunHaltedError,
    RunInfo,
    RunOutcome,
    RunResumed,
    RunStarted,
    RunSummary,
    StepCompensated,
    StepCompleted,
    StepError,
    StepEvent,
    StepEventKind,
    StepFailed,
    StepsAdded,
    StepSkipped,
    StepStarted,
    StepUndoFailed,
    StepUndone,
    check_inputs,
    stream_of,
)

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "RUN_EVENT_DECODER",
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
