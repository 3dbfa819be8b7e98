"""Running a ``recurse`` step: child runs one after another, each fed the last one's result.

Iteration ``i`` (from 1) is the child run ``<run>/<step>.<attempt>/<i>``. After a crash
the parent's re-run of the step starts from iteration 1 again, but each iteration that
completed answers from its journal (nothing runs twice), so the loop reaches the
unfinished one quickly. A rollback of the parent undoes the completed iterations
newest first, through the composite executors' shared undo. A failing iteration fails
the step with :class:`~reactor.run.IterationFailedError`, naming it; an iteration that
halts halts the step (a resume continues it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import msgspec

from dsl import RecurseImpl
from reactor.kinds._composite import CompositeExecutor, child_cause, inputs_of, maybe_await
from reactor.run import (
    ChildRunner,
    IterationFailedError,
    RunHaltedError,
    StepError,
)

__all__ = ["RecurseExecutor", "next_inputs"]


class RecurseExecutor(CompositeExecutor[RecurseImpl]):
    """Iterates the reactor until ``exit_condition`` holds or ``max_iterations`` ran."""

    async def body(self, impl: RecurseImpl, arguments: dict[str, Any], child: ChildRunner) -> Any:
        """The last iteration's result."""
        inputs = inputs_of(impl.reactor, arguments)
        iteration = 0
        while True:
            iteration += 1
            try:
                result = await child(impl.reactor, inputs, str(iteration))
            except RunHaltedError:
                raise  # the step halts; a resume continues from this iteration
            except Exception as exc:
                raise iteration_error(impl, iteration, exc) from exc
            if impl.exit_condition is not None:
                try:
                    done = await maybe_await(impl.exit_condition(result))
                except Exception as exc:
                    cause = _cause(exc, f"its exit_condition raised {type(exc).__name__}: {exc}")
                    raise _failed(impl, iteration, cause) from exc
                if done:
                    return result
            if impl.max_iterations is not None and iteration >= impl.max_iterations:
                return result  # a success, with the last result (as Ash Reactor does)
            try:
                inputs = next_inputs(impl.reactor, result)
            except ValueError as exc:
                cause = StepError(step="", kind="bad_result", error="bad_result", message=str(exc))
                raise _failed(impl, iteration, cause) from exc


def next_inputs(reactor: type[Any], result: Any) -> dict[str, Any]:
    """The next iteration's inputs: ``result``'s entries that are ``reactor``'s inputs.

    Raises:
        ValueError: ``result`` is no mapping (nor a dataclass or ``msgspec.Struct``), or
            it lacks a required input (saying which).
    """
    fields: Mapping[Any, Any]
    if isinstance(result, Mapping):
        fields = result
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    elif isinstance(result, msgspec.Struct):
        fields = {name: getattr(result, name) for name in result.__struct_fields__}
    else:
        shown = repr(result)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        msg = (
            f"its result {shown} is not a mapping of {reactor.__name__}'s inputs, "
            "so it cannot be the next iteration's inputs"
        )
        raise ValueError(msg)
    plan = reactor.__plan__
    missing = [n for n, spec in plan.inputs.items() if spec.required and n not in fields]
    if missing:
        msg = (
            f"its result has no {', '.join(map(repr, missing))} for the next iteration's "
            f"required input{'s' if len(missing) > 1 else ''} (its keys: "
            f"{', '.join(sorted(map(str, fields)))})"
        )
        raise ValueError(msg)
    return {k: v for k, v in fields.items() if k in plan.inputs}


def iteration_error(impl: RecurseImpl, iteration: int, error: Exception) -> IterationFailedError:
    """The step's error for iteration ``iteration``'s failure: its kind and its own message."""
    cause = child_cause(error)
    return _failed(impl, iteration, cause, getattr(error, "run_id", ""))


def _cause(error: Exception, message: str) -> StepError:
    return StepError(step="", kind="error", error=type(error).__name__, message=message)


def _failed(
    impl: RecurseImpl, iteration: int, cause: StepError, run_id: str = ""
) -> IterationFailedError:
    return IterationFailedError(
        run_id=run_id,
        reactor=impl.reactor.__plan__.reactor,
        iteration=iteration,
        cause=cause,
    )
