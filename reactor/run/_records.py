"""What a run writes to the journal: one event per transition, in order.

A run is one journal stream, ``run:<run_id>`` (:func:`stream_of`). Its first event is
:class:`RunStarted`; every later transition of the run or of one of its steps appends
one event, and the last one is terminal (:class:`RunCompleted`, :class:`RunFailed`,
:class:`RunCancelled`) or :class:`RunHalted` (a halted run is resumed later). Replaying
the stream from the start rebuilds the run's state exactly: which steps completed with
which results (step results are stored as msgspec-encoded JSON, :class:`msgspec.Raw`),
which were added while it ran, which were undone.

These structs are tagged messages like every other, so the CLI, the HTTP API and the
tests read them back with :func:`actors.decode` or :data:`RUN_EVENT_DECODER`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actors import Message

__all__ = [
    "END_STATUS",
    "RUN_EVENT_DECODER",
    "STREAM_PREFIX",
    "TERMINAL_EVENTS",
    "TRACEBACK_LIMIT",
    "Owner",
    "RunCancelled",
    "RunCompleted",
    "RunEvent",
    "RunFailed",
    "RunHalted",
    "RunResumed",
    "RunStarted",
    "RunUndone",
    "StepCompensated",
    "StepCompleted",
    "StepError",
    "StepFailed",
    "StepSkipped",
    "StepStarted",
    "StepUndoFailed",
    "StepUndone",
    "StepsAdded",
    "stream_of",
]

TRACEBACK_LIMIT = 8192
"""The most characters of a failure's traceback a journal row keeps (the innermost
frames, which say where it was raised, are at the end and are the ones kept)."""

STREAM_PREFIX = "run:"
"""Every run's journal stream is this prefix followed by the run id."""


def stream_of(run_id: str) -> str:
    """The journal stream of a run."""
    return STREAM_PREFIX + run_id


class Owner(Message, frozen=True, kw_only=True):
    """The process that runs a run, so a restarted process can tell orphans apart.

    Attributes:
        host: The machine's host name.
        pid: The process id.
        started_at: When that process started (``time.time()``), which tells a reused
            pid apart from the original process.
        engine: Which :class:`~reactor.app.Engine` of that process runs it (a token
            made when the engine was created), so that two engines of one process
            tell each other's runs apart; empty in journals written before engines
            had one (then the process is the owner).
    """

    host: str
    pid: int
    started_at: float
    engine: str = ""

    def describe(self) -> str:
        """Who this is, in words: ``process P on HOST (engine E)`` (for messages)."""
        process = f"process {self.pid} on {self.host}"
        return f"{process} (engine {self.engine})" if self.engine else process


class StepError(Message, frozen=True, kw_only=True):
    """Why a step attempt failed.

    Attributes:
        step: The step's name.
        kind: A :class:`~actors.FailureKind` value, or ``"error"`` for an exception
            raised by user code.
        error: The exception's type name (``"ValueError"``) or the failure's kind.
        message: What went wrong, in words.
        retryable: Whether the same attempt could succeed later.
        traceback: The exception's traceback as Python prints it, for an exception
            raised by user code (empty otherwise); only its last
            :data:`TRACEBACK_LIMIT` characters are kept.
    """

    step: str
    kind: str
    error: str
    message: str
    retryable: bool = False
    traceback: str = ""


class RunStarted(Message, frozen=True, kw_only=True):
    """The first event of a run.

    Attributes:
        run_id: The run.
        reactor: The reactor's name.
        locator: Where to load the reactor from in another process
            (``"module:Qualname"`` or ``"/path/file.py:Name"``).
        inputs: The inputs as given (before transforms), JSON-encoded.
        options: The run options (``max_concurrency``, ``timeout``, ...).
        parent: The run that composed this one, if any.
        owner: The process running it.
        at: When it started.
        context: The run's context (``Engine.start(context=...)``), as JSON values;
            a resumed run reads it back from here.
        plan: The reactor's plan and source hash when it started (a
            ``reactor.run._fingerprint.PlanPrint``, JSON; ``null`` in runs journaled
            before plans were), compared with the reactor's when it resumes.
    """

    run_id: str
    reactor: str
    locator: str
    inputs: msgspec.Raw
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    parent: str | None = None
    owner: Owner
    at: float
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    plan: msgspec.Raw = msgspec.Raw(b"null")


class RunResumed(Message, frozen=True, kw_only=True):
    """The run was picked up again (after a halt, a crash or ``reactor runs resume``).

    ``locator`` is where the reactor was loaded from this time when that is not where
    it was before (its file moved); later resumes load it from there. ``options``
    are the run options given anew for this resume (only those given: ``timeout``,
    ``on_timeout``, ``max_iterations``, ``halt_timeout``, ``max_concurrency``); they
    replace ``RunStarted.options``' for this resume and every later one.
    """

    run_id: str
    owner: Owner
    reason: str
    at: float
    locator: str = ""
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class StepStarted(Message, frozen=True, kw_only=True):
    """A step attempt was dispatched (``attempt`` counts from 1)."""

    step: str
    attempt: int
    at: float


class StepCompleted(Message, frozen=True, kw_only=True):
    """A step produced its result (``guarded``: a guard supplied it instead).

    ``again``: the step re-emitted itself (``WithSteps`` naming it): this is one
    iteration's result, which its next definition (in the ``StepsAdded`` that follows)
    may read under its name; its dependents wait for the last iteration.
    """

    step: str
    attempt: int
    value: msgspec.Raw
    started_at: float
    at: float
    guarded: bool = False
    again: bool = False


class StepSkipped(Message, frozen=True, kw_only=True):
    """A step's ``where`` predicate was false: it did not run and has no result."""

    step: str
    at: float


class StepFailed(Message, frozen=True, kw_only=True):
    """A step attempt failed; ``will_retry`` says whether another attempt follows."""

    step: str
    attempt: int
    error: StepError
    will_retry: bool
    delay: float = 0.0
    started_at: float
    at: float


class StepCompensated(Message, frozen=True, kw_only=True):
    """What a failed step's ``compensate`` decided: ``continue``, ``retry`` or ``fail``.

    ``value`` is the substitute result (``continue``), JSON ``null`` otherwise. It is a
    plain ``Raw``, not ``Raw | None``: msgspec cannot decode a ``Raw`` inside a union.
    """

    step: str
    decision: str
    value: msgspec.Raw = msgspec.Raw(b"null")
    at: float


class StepsAdded(Message, frozen=True, kw_only=True):
    """Steps added while the run was running, by ``by`` (a step or a composite).

    Attributes:
        by: The step that added them.
        steps: One locatable description per new step (see ``dsl`` dynamic steps).
    """

    by: str
    steps: tuple[dict[str, Any], ...]
    at: float


class StepUndone(Message, frozen=True, kw_only=True):
    """A completed step was rolled back by its ``undo``.

    ``again``: one iteration of a step that re-emitted itself (the newest not yet
    undone), not the step's last.
    """

    step: str
    at: float
    again: bool = False


class StepUndoFailed(Message, frozen=True, kw_only=True):
    """A step's ``undo`` failed for good; rollback went on with the others.

    ``again``: as :class:`StepUndone`'s.
    """

    step: str
    error: StepError
    at: float
    again: bool = False


class RunHalted(Message, frozen=True, kw_only=True):
    """The run halted; ``reactor runs resume`` (or ``Engine.resume``) continues it.

    ``step`` is the step that halted it, empty when the run's own timeout passed under
    ``on_timeout="halt"`` (``reason`` then says so).
    """

    run_id: str
    step: str
    reason: str
    at: float


class RunCompleted(Message, frozen=True, kw_only=True):
    """The run finished; ``value`` is the returned step's result."""

    run_id: str
    value: msgspec.Raw
    at: float


class RunFailed(Message, frozen=True, kw_only=True):
    """The run failed (after rollback); ``errors`` lists every failure, first first."""

    run_id: str
    errors: tuple[StepError, ...]
    at: float


class RunCancelled(Message, frozen=True, kw_only=True):
    """The run was cancelled (``reason``: who or what cancelled it)."""

    run_id: str
    reason: str
    at: float


class RunUndone(Message, frozen=True, kw_only=True):
    """A completed run was rolled back (its parent failed later, or ``Engine.undo``).

    ``errors`` lists the undos that failed (empty when every one succeeded).
    """

    run_id: str
    errors: tuple[StepError, ...] = ()
    at: float


RunEvent = (
    RunStarted
    | RunResumed
    | StepStarted
    | StepCompleted
    | StepSkipped
    | StepFailed
    | StepCompensated
    | StepsAdded
    | StepUndone
    | StepUndoFailed
    | RunHalted
    | RunCompleted
    | RunFailed
    | RunCancelled
    | RunUndone
)
"""Every event of a run's stream."""

RUN_EVENT_DECODER: msgspec.json.Decoder[RunEvent] = msgspec.json.Decoder(RunEvent)
"""Decodes one journal entry's ``data`` into its event."""

END_STATUS = {
    "RunCompleted": "completed",
    "RunFailed": "failed",
    "RunCancelled": "cancelled",
    "RunHalted": "halted",
    "RunUndone": "undone",
}
"""A run's status after the event that ended (or halted) it."""

TERMINAL_EVENTS = frozenset({"RunCompleted", "RunFailed", "RunCancelled", "RunUndone"})
"""The event types after which a run never continues."""
