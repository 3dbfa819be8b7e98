"""A run's state while it runs: each step's status, the results, and the graph's bookkeeping.

The definition (:class:`~dsl.Plan`, :class:`~dsl.StepSpec`) is immutable and shared by
every run; what one run changes lives here, touched only by its Run actor while it
handles a message. :class:`RunState` keeps the graph's counters honest: a step becomes
ready when its last unsettled dependency settles (completes or is skipped).
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from dsl import Plan, StepSpec
from reactor.run._executor import Cancellable
from reactor.run._records import StepError

__all__ = ["SETTLED", "Iteration", "Mode", "RunState", "Status", "StepState"]


class Status(enum.Enum):
    """Where one step is."""

    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    WAITING = "waiting"  # for a retry's backoff
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNDONE = "undone"


SETTLED = frozenset({Status.DONE, Status.SKIPPED})
"""Statuses that let dependents run."""


class Mode(enum.Enum):
    """Where the whole run is (see the loop's numbered steps in ``_run.py``)."""

    STARTING = "starting"
    RUNNING = "running"
    HALTING = "halting"
    ROLLING_BACK = "rolling_back"
    FINISHING = "finishing"


@dataclass(slots=True)
class StepState:
    """One step of one run.

    Attributes:
        spec: Its definition.
        status: Where it is.
        blockers: Dependencies not yet settled.
        attempt: The current (or last) attempt, from 1.
        started_at: When that attempt started (epoch seconds).
        arguments: The resolved arguments of that attempt.
        ran: Completed by running, or rescued by ``compensate`` (not by a guard, or a
            replay of one): only such steps are undone.
        handle: The running attempt, to cancel it.
        holds_slot: Whether it holds a concurrency-key slot.
        partial: A composite attempt that ended unfinished (failed, or cancelled):
            rollback undoes the child runs it completed.
    """

    spec: StepSpec
    status: Status = Status.PENDING
    blockers: int = 0
    attempt: int = 0
    started_at: float = 0.0
    arguments: dict[str, Any] = field(default_factory=dict)
    ran: bool = False
    handle: Cancellable | None = None
    holds_slot: bool = False
    partial: bool = False


@dataclass(frozen=True, slots=True)
class Iteration:
    """One iteration of a step that re-emitted itself, kept to be undone on rollback.

    Attributes:
        spec: The definition that ran (its ``undo`` undoes it).
        arguments: The arguments it ran with.
        value: Its result.
    """

    spec: StepSpec
    arguments: dict[str, Any]
    value: Any


class RunState:
    """The steps of one run, their results, and what is ready.

    Attributes:
        plan: The reactor's plan.
        steps: Step name to its state (planned steps, then steps added while running).
        dependents: Step name to the steps that need it: the plan's own mapping,
            shared by every run, until a step is added while running (then a copy of
            its own).
        values: Input and step name to its value (inputs and completed results).
        ready: Steps ready to dispatch, in order.
        completed: Completed steps in completion order (rolled back newest first); an
            iteration of a step that re-emitted itself is there as its
            :class:`Iteration`.
        errors: The failures that end the run.
    """

    __slots__ = ("completed", "dependents", "errors", "plan", "ready", "steps", "values")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        # Thousands of runs may be alive at once: what every run of the plan shares
        # (its dependents) is not copied, and each container here is one object the
        # garbage collector walks per run.
        self.steps: dict[str, StepState] = {
            name: StepState(spec) for name, spec in plan.steps.items()
        }
        self.dependents: Mapping[str, Sequence[str]] = plan.dependents
        self.values: dict[str, Any] = {}
        self.ready: collections.deque[str] = collections.deque()
        self.completed: list[str | Iteration] = []
        # A tuple, the shared empty one until a failure: most runs never fail.
        self.errors: tuple[StepError, ...] = ()

    def add_errors(self, *errors: StepError) -> None:
        """Record failures that end the run."""
        self.errors = (*self.errors, *errors)

    def add_step(self, spec: StepSpec) -> None:
        """Track a step added while running."""
        self.steps[spec.name] = StepState(spec)
        owned = self._owned_dependents()
        for dependency in spec.depends_on:
            if dependency not in self.plan.inputs:
                owned.setdefault(dependency, []).append(spec.name)

    def _owned_dependents(self) -> dict[str, list[str]]:
        if isinstance(self.dependents, dict):
            return cast("dict[str, list[str]]", self.dependents)
        owned = {k: list(v) for k, v in self.dependents.items()}  # the plan's: copy it
        self.dependents = owned
        return owned

    def blockers(self, spec: StepSpec) -> int:
        """How many of ``spec``'s step dependencies are not settled yet.

        A step that re-emitted itself may read its own previous result: not a blocker.
        """
        name = spec.name
        return sum(
            1
            for d in spec.depends_on
            if d not in self.plan.inputs and d != name and self.steps[d].status not in SETTLED
        )

    def iterated(self, iteration: Iteration) -> None:
        """An iteration of a looping step completed: its result is the step's latest."""
        self.values[iteration.spec.name] = iteration.value
        self.completed.append(iteration)

    def iteration_undone(self, name: str) -> None:
        """The newest iteration of ``name`` still to undo was undone (or failed to be)."""
        completed = self.completed
        for index in range(len(completed) - 1, -1, -1):
            entry = completed[index]
            if isinstance(entry, Iteration) and entry.spec.name == name:
                del completed[index]
                return

    def again(self, spec: StepSpec, *, replayed: bool) -> StepState:
        """A step re-emitted itself: ``spec`` runs next in its place.

        Its previous iteration's result stays in :attr:`values` (the new definition may
        read it under the step's name); its dependents keep waiting. Unless replayed,
        it is queued once its own dependencies have settled.
        """
        name = spec.name
        old = self.steps[name]
        step = self.steps[name] = StepState(spec)
        if old.spec.depends_on != spec.depends_on:
            owned = self._owned_dependents()
            for dependency in old.spec.depends_on:
                users = owned.get(dependency)
                if users is not None and name in users:
                    users.remove(name)
            for dependency in spec.depends_on:
                if dependency not in self.plan.inputs and dependency != name:
                    owned.setdefault(dependency, []).append(name)
        if not replayed:
            step.blockers = self.blockers(spec)
            if step.blockers == 0:
                step.status = Status.READY
                self.ready.append(name)
        return step

    def add_dynamic(self, specs: Mapping[str, StepSpec], *, replayed: bool) -> None:
        """Add steps a step returned (``WithSteps``); unless replayed, queue the ready ones."""
        for spec in specs.values():  # all first: they may refer to each other
            self.add_step(spec)
        for spec in specs.values():
            step = self.steps[spec.name]
            if not replayed:
                step.blockers = self.blockers(spec)
                if step.blockers == 0:
                    step.status = Status.READY
                    self.ready.append(spec.name)

    def start(self) -> None:
        """Count every waiting step's blockers and queue those ready, in plan order."""
        for step in self.steps.values():
            if step.status is Status.PENDING or step.status is Status.READY:
                step.status = Status.PENDING
                step.blockers = self.blockers(step.spec)
        planned = self.plan.order
        added = tuple(n for n in self.steps if n not in self.plan.steps)
        for name in planned + added:
            step = self.steps[name]
            if step.status is Status.PENDING and step.blockers == 0:
                step.status = Status.READY
                self.ready.append(name)

    def settled(self, name: str) -> None:
        """``name`` completed or was skipped: its dependents may become ready."""
        for dependent in self.dependents.get(name, ()):
            step = self.steps[dependent]
            if step.status is Status.PENDING:
                step.blockers -= 1
                if step.blockers <= 0:
                    step.status = Status.READY
                    self.ready.append(dependent)

    def done(self, step: StepState, value: Any) -> None:
        """Record ``step``'s result (its dependents are released by :meth:`settled`)."""
        step.status = Status.DONE
        self.values[step.spec.name] = value
        self.completed.append(step.spec.name)

    def mark_partial(self, step: StepState) -> None:
        """A composite attempt ended unfinished: roll back the child runs it completed.

        A failed ``for_each`` (or a group whose ``after`` raised, ...) may have
        completed child runs; rollback undoes them (newest first) at the point where
        the step ended, before the steps that completed earlier.
        """
        if step.spec.sub_reactors and step.attempt > 0 and not step.partial:
            step.partial = True
            self.completed.append(step.spec.name)

    def settle_replayed(
        self, step: StepState, status: Status, value: Any, *, ran: bool = False
    ) -> None:
        """Set a step's outcome read from the journal."""
        step.status = status
        if status is Status.DONE:
            self.values[step.spec.name] = value
            self.completed.append(step.spec.name)
            step.ran = ran
