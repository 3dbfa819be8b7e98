"""Running one reactor: the Run actor's loop, its journal records, errors and middleware protocol.

A run is a :class:`Run` actor: it dispatches ready steps, receives each outcome as a
message, journals it, and rolls back completed steps when the run fails. Its journal is
a stream of :class:`RunEvent` records (``run:<run_id>``).
"""

from reactor.run._codec import EncodeError, encode_value
from reactor.run._errors import (
    ElementFailedError,
    InputError,
    ResumeError,
    RunCancelledError,
    RunError,
    RunFailedError,
    RunHaltedError,
    UndoError,
)
from reactor.run._inputs import check_inputs
from reactor.run._limits import Limits
from reactor.run._listing import RunSummary, latest_owner, list_runs, read_history, run_status
from reactor.run._middleware import Middleware, RunInfo, RunOutcome, StepEvent, StepEventKind
from reactor.run._owner import THIS_PROCESS, owner_alive
from reactor.run._records import (
    RUN_EVENT_DECODER,
    STREAM_PREFIX,
    TERMINAL_EVENTS,
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
from reactor.run._run import CancelRun, ChildRunner, Run, RunOptions, RunServices
from reactor.run._undoable import Undoability, undoability

__all__ = [
    "RUN_EVENT_DECODER",
    "STREAM_PREFIX",
    "TERMINAL_EVENTS",
    "THIS_PROCESS",
    "CancelRun",
    "ChildRunner",
    "ElementFailedError",
    "EncodeError",
    "InputError",
    "Limits",
    "Middleware",
    "Owner",
    "ResumeError",
    "Run",
    "RunCancelled",
    "RunCancelledError",
    "RunCompleted",
    "RunError",
    "RunEvent",
    "RunFailed",
    "RunFailedError",
    "RunHalted",
    "RunHaltedError",
    "RunInfo",
    "RunOptions",
    "RunOutcome",
    "RunResumed",
    "RunServices",
    "RunStarted",
    "RunSummary",
    "RunUndone",
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
    "UndoError",
    "Undoability",
    "check_inputs",
    "encode_value",
    "latest_owner",
    "list_runs",
    "owner_alive",
    "read_history",
    "run_status",
    "stream_of",
    "undoability",
]
