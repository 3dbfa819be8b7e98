"""Replaying a run's journal: the events of an earlier life, folded back into its state.

Completed steps get their results back (decoded to their kinds' result types) without
running; steps added while the run ran are rebuilt from their journal form and planned
again; failures without a compensation that rescued them are failures again; undone
steps stay undone. An attempt with no journaled outcome (in flight when the process
died, or halted) is set to run again under the same number, so that a composite finds
the child runs it started (named after the attempt) and continues them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_never

import msgspec

from dsl import StepSpec, plan_steps
from dsl.kinds import rebuild_steps
from reactor.run._codec import decode_value
from reactor.run._middleware import StepEventKind
from reactor.run._records import (
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
)
from reactor.run._state import Iteration, RunState, Status, StepState

__all__ = ["ReplayedEvent", "apply_history"]

ReplayedEvent = Callable[[StepEventKind, StepState, float, float | None], None]
"""``(kind, step, at, started_at)``: tells middleware about a step event read back."""


def apply_history(  # noqa: PLR0912, PLR0915 - one branch per event
    state: RunState,
    events: list[RunEvent],
    *,
    input_check: Callable[[Any], dict[str, Any]] | None,
    replayed: ReplayedEvent,
    context: Callable[[dict[str, Any]], None] | None = None,
    lenient: bool = False,
    arguments: Callable[[StepSpec], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Fold ``events`` (a run's journal, not ended) into ``state``; returns the inputs.

    ``context`` is given the run's context from its ``RunStarted``. ``lenient`` (a
    forced resume of a run whose steps changed) leaves out the events of steps the
    reactor no longer has, instead of failing on them. ``arguments`` resolves a step's
    arguments again from the values replayed so far (what an iteration of a looping
    step ran with, for its undo).

    Raises:
        ValueError: The journal ends the run (it cannot be continued).
        DefinitionError: Steps added while running no longer plan.
        LookupError: Their functions or reactors cannot be found.
        msgspec.DecodeError: An event's value does not decode to its step's type.
    """
    inputs: dict[str, Any] = {}
    steps = state.steps
    failed: dict[str, StepError] = {}
    unfinished: dict[str, int] = {}
    for event in events:
        named = getattr(event, "step", None)
        if lenient and isinstance(named, str) and named not in steps:
            continue  # a step that was removed or renamed since (a forced resume)
        match event:
            case RunStarted():
                raw = msgspec.json.decode(event.inputs)
                inputs = input_check(raw) if input_check else dict(raw)
                state.values.update(inputs)
                if context is not None:
                    context(dict(event.context))
            case StepsAdded():
                added = rebuild_steps(event.steps)
                again = event.by if event.by in added else None
                specs = plan_steps(
                    state.plan.reactor,
                    state.plan.inputs,
                    added,
                    existing={n: s.spec for n, s in steps.items()},
                    again=again,
                )
                looped = specs.pop(again) if again is not None else None
                state.add_dynamic(specs, replayed=True)
                if looped is not None:  # it re-emitted itself: its next definition
                    state.again(looped, replayed=True)
            case StepStarted():
                steps[event.step].attempt = event.attempt
                unfinished[event.step] = event.attempt
            case StepCompleted(again=True):  # an iteration: its result, not the step's
                unfinished.pop(event.step, None)
                step = steps[event.step]
                spec = step.spec
                ran_with = arguments(spec) if arguments is not None else {}
                value = decode_value(event.value, spec.result_type)
                state.iterated(Iteration(spec, ran_with, value))
                replayed(StepEventKind.COMPLETE, step, event.at, event.started_at)
            case StepCompleted():
                unfinished.pop(event.step, None)
                step = steps[event.step]
                step.attempt = event.attempt  # its StepStarted may not have been written
                if arguments is not None and event.step in step.spec.depends_on:
                    # The last iteration of a loop read its previous one, which its own
                    # result replaces next: resolved now, for its undo.
                    step.arguments = arguments(step.spec)
                value = decode_value(event.value, step.spec.result_type)
                state.settle_replayed(step, Status.DONE, value, ran=not event.guarded)
                replayed(StepEventKind.COMPLETE, step, event.at, event.started_at)
            case StepSkipped():
                state.settle_replayed(steps[event.step], Status.SKIPPED, None)
                replayed(StepEventKind.SKIP, steps[event.step], event.at, None)
            case StepFailed():
                unfinished.pop(event.step, None)
                steps[event.step].attempt = event.attempt
                if not event.will_retry:
                    failed[event.step] = event.error
                    state.mark_partial(steps[event.step])
            case StepCompensated():
                if event.decision == "continue" and event.step in failed:
                    del failed[event.step]
                    value = decode_value(event.value or b"null", steps[event.step].spec.result_type)
                    state.settle_replayed(steps[event.step], Status.DONE, value, ran=True)
            case StepUndone(again=True) | StepUndoFailed(again=True):
                state.iteration_undone(event.step)
            case StepUndone() | StepUndoFailed():
                steps[event.step].status = Status.UNDONE
            case RunHalted() | RunResumed():
                pass
            case RunCompleted() | RunFailed() | RunCancelled() | RunUndone():
                msg = f"the run already ended ({type(event).__name__})"
                raise ValueError(msg)
            case _:
                assert_never(event)
    state.add_errors(*failed.values())
    for name in failed:
        if steps[name].status is not Status.UNDONE:
            steps[name].status = Status.FAILED
    for name, attempt in unfinished.items():
        step = steps[name]
        if step.status is Status.PENDING:
            step.attempt = attempt - 1  # the launch counts it again
    return inputs
