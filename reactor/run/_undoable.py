"""Whether a completed run can be rolled back, read from its journal.

``Engine.undo`` refuses a run before undoing anything unless every step that completed
can be rolled back: a function step needs an ``undo`` (one rescued by ``compensate``
counts as completed too); a composite step is rolled back through its child runs,
which must pass the same check; ``ask``, ``template`` and ``collect`` steps have
nothing to roll back (they take no ``undo``); a step a guard answered for, or one
that was skipped, never ran.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dsl import FunctionImpl, Plan, StepSpec, plan_steps
from dsl.kinds import rebuild_steps
from reactor.run._records import (
    RunEvent,
    StepCompensated,
    StepCompleted,
    StepFailed,
    StepsAdded,
    StepUndoFailed,
    StepUndone,
)

__all__ = ["Undoability", "undoability"]


@dataclass(frozen=True, slots=True)
class Undoability:
    """What rolling back one completed run takes.

    Attributes:
        missing: The completed function steps that have no ``undo``, in completion
            order: while there is one, the run cannot be undone.
        composites: ``(step, attempt)`` of each completed composite step: its child
            runs are named ``<run_id>/<step>.<attempt>[/...]`` and must be
            undoable too.
    """

    missing: tuple[str, ...]
    composites: tuple[tuple[str, int], ...]


def undoability(plan: Plan, events: Iterable[RunEvent]) -> Undoability:
    """Fold a run's journal into what undoing it takes (see :class:`Undoability`).

    Raises:
        DefinitionError, LookupError, ValueError: Steps it added while running cannot
            be rebuilt (their functions moved, say).
    """
    specs: dict[str, StepSpec] = dict(plan.steps)
    completed: dict[str, int] = {}  # step -> the attempt that completed it
    failed: dict[str, int] = {}
    looped: set[str] = set()  # steps with an iteration that nothing undoes
    for event in events:
        match event:
            case StepsAdded():
                added = rebuild_steps(event.steps)
                again = event.by if event.by in added else None
                specs.update(
                    plan_steps(plan.reactor, plan.inputs, added, existing=specs, again=again)
                )
            case StepCompleted(again=True):
                if specs[event.step].undo is None:  # an iteration that nothing undoes
                    looped.add(event.step)
            case StepCompleted(guarded=False):
                completed[event.step] = event.attempt
            case StepFailed(will_retry=False):
                failed[event.step] = event.attempt
            case StepCompensated(decision="continue"):
                completed[event.step] = failed.get(event.step, 1)
            case StepUndone(again=True) | StepUndoFailed(again=True):
                pass
            case StepUndone() | StepUndoFailed():
                completed.pop(event.step, None)
            case _:
                pass
    missing = tuple(
        name
        for name in completed
        if isinstance(specs[name].impl, FunctionImpl) and specs[name].undo is None
    )
    missing += tuple(sorted(looped.difference(missing)))
    composites = tuple(
        (name, attempt) for name, attempt in completed.items() if specs[name].sub_reactors
    )
    return Undoability(missing=missing, composites=composites)
