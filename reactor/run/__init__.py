"""Running one reactor: the Run actor's loop, its journal records, errors and middleware protocol.

A run is a :class:`Run` actor: it dispatches ready steps, receives each outcome as a
message, journals it, and rolls back completed steps when the run fails. Its journal is
a stream of :class:`RunEvent` records (``run:<run_id>``). The loop knows no step kinds:
each kind's :class:`StepExecutor` (registered with :func:`register_executor`; the
built-in ones by :mod:`reactor.kinds`) starts, interprets, cancels and undoes its
attempts.

Modules: ``_run`` (the loop), ``_state`` (run-time state), ``_replay`` (reading the
journal back), ``_outbox`` (batched journal appends), ``_invoke`` (calling user code),
``_classify`` (what a failure means), ``_executor`` (the executor protocol and registry),
``_services`` (what the engine hands a run), ``_fingerprint`` (a reactor's plan
and source, journaled at the start and compared on resume), ``_fold`` (a run's state
read back from its journal, for those that show or check a run).
"""

from reactor.run._classify import StepFailure
from reactor.run._codec import EncodeError, decode_value, encode_value
from reactor.run._done import RunDone
from reactor.run._errors import (
    ElementFailedError,
    ForcedFailureError,
    InputError,
    IterationFailedError,
    JournalCorruptError,
    PlanChangedError,
    ResumeError,
    RunCancelledError,
    RunError,
    RunExistsError,
    RunFailedError,
    RunHaltedError,
    UndoError,
)
from reactor.run._executor import (
    Attempt,
    Cancellable,
    StepExecutor,
    executor_for,
    register_executor,
    unregister_executor,
)
from reactor.run._fingerprint import (
    PlanCheck,
    PlanPrint,
    StepPrint,
    compare_plan,
    decode_plan,
    plan_print,
)
from reactor.run._fold import RunView, StepView, fold, format_seconds
from reactor.run._inputs import check_inputs
from reactor.run._invoke import Err, Ok, Outcome
from reactor.run._limits import Limits
from reactor.run._listing import RunSummary, latest_owner, list_runs, read_history, run_status
from reactor.run._middleware import Middleware, RunInfo, RunOutcome, StepEvent, StepEventKind
from reactor.run._owner import THIS_PROCESS, engine_owner, forget_engine, owner_alive
from reactor.run._records import (
    RUN_EVENT_DECODER,
    STREAM_PREFIX,
    TERMINAL_EVENTS,
    TRACEBACK_LIMIT,
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
from reactor.run._run import Run
from reactor.run._services import (
    CancelRun,
    ChildRunner,
    JournalProof,
    OnTimeout,
    Placer,
    RunOptions,
    RunServices,
)
from reactor.run._undoable import Undoability, undoability

__all__ = [
    "RUN_EVENT_DECODER",
    "STREAM_PREFIX",
    "TERMINAL_EVENTS",
    "THIS_PROCESS",
    "TRACEBACK_LIMIT",
    "Attempt",
    "CancelRun",
    "Cancellable",
    "ChildRunner",
    "ElementFailedError",
    "EncodeError",
    "Err",
    "ForcedFailureError",
    "InputError",
    "IterationFailedError",
    "JournalCorruptError",
    "JournalProof",
    "Limits",
    "Middleware",
    "Ok",
    "OnTimeout",
    "Outcome",
    "Owner",
    "Placer",
    "PlanChangedError",
    "PlanCheck",
    "PlanPrint",
    "ResumeError",
    "Run",
    "RunCancelled",
    "RunCancelledError",
    "RunCompleted",
    "RunDone",
    "RunError",
    "RunEvent",
    "RunExistsError",
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
    "RunView",
    "StepCompensated",
    "StepCompleted",
    "StepError",
    "StepEvent",
    "StepEventKind",
    "StepExecutor",
    "StepFailed",
    "StepFailure",
    "StepPrint",
    "StepSkipped",
    "StepStarted",
    "StepUndoFailed",
    "StepUndone",
    "StepView",
    "StepsAdded",
    "UndoError",
    "Undoability",
    "check_inputs",
    "compare_plan",
    "decode_plan",
    "decode_value",
    "encode_value",
    "engine_owner",
    "executor_for",
    "fold",
    "forget_engine",
    "format_seconds",
    "latest_owner",
    "list_runs",
    "owner_alive",
    "plan_print",
    "read_history",
    "register_executor",
    "run_status",
    "stream_of",
    "undoability",
    "unregister_executor",
]
