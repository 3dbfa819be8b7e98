"""Folding a run's journal: hand-made events, in order, give the run's state (a pure function)."""

from __future__ import annotations

import pytest

from reactor.run import (
    Owner,
    RunCancelled,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunHalted,
    RunResumed,
    StepCompensated,
    StepCompleted,
    StepFailed,
    StepsAdded,
    StepSkipped,
    StepStarted,
    StepUndone,
    fold,
)
from tests.support.run_events import T0, raw_json, run_started, step_error


def test_fold_a_completed_run() -> None:
    """A completed run: inputs, result, every step done with its attempts and times."""
    view = fold(
        [
            run_started(),
            StepStarted(step="fetch", attempt=1, at=T0 + 0.1),
            StepCompleted(
                step="fetch", attempt=1, value=raw_json([1, 2]), started_at=T0 + 0.1, at=T0 + 0.6
            ),
            StepSkipped(step="extra", at=T0 + 0.6),
            StepCompleted(
                step="cached",
                attempt=0,
                value=raw_json("hit"),
                started_at=T0 + 0.6,
                at=T0 + 0.6,
                guarded=True,
            ),
            StepStarted(step="total", attempt=1, at=T0 + 0.7),
            StepCompleted(
                step="total", attempt=1, value=raw_json(3), started_at=T0 + 0.7, at=T0 + 1
            ),
            RunCompleted(run_id="r1", value=raw_json({"total": 3}), at=T0 + 1.1),
        ]
    )
    assert (view.run_id, view.reactor, view.status) == ("r1", "Demo", "completed")
    assert view.inputs == {"topic": "actors"}
    assert view.options == {"max_concurrency": 4}
    assert view.result == {"total": 3}
    assert (view.started_at, view.ended_at) == (T0, T0 + 1.1)
    assert (view.events, view.last_event) == (8, "RunCompleted")
    steps = {s.name: s for s in view.steps}
    assert [s.name for s in view.steps] == ["fetch", "extra", "cached", "total"]
    assert steps["fetch"].status == "done"
    assert steps["fetch"].value == [1, 2]
    assert steps["fetch"].duration == pytest.approx(0.5)
    assert steps["extra"].status == "skipped"
    assert (steps["cached"].status, steps["cached"].detail) == ("done", "result from its guard")
    assert steps["total"].attempts == 1


def test_fold_a_run_that_failed_after_retries_and_undid_a_step() -> None:
    """Retries count attempts; the last failure fails the run; undone steps are undone."""
    view = fold(
        [
            run_started(),
            StepStarted(step="book", attempt=1, at=T0 + 0.1),
            StepCompleted(
                step="book", attempt=1, value=raw_json("b-1"), started_at=T0, at=T0 + 0.2
            ),
            StepStarted(step="pay", attempt=1, at=T0 + 0.3),
            StepFailed(
                step="pay",
                attempt=1,
                error=step_error("pay", "timed out", kind="timeout", error="TimeoutError"),
                will_retry=True,
                delay=0.05,
                started_at=T0 + 0.3,
                at=T0 + 0.4,
            ),
            StepStarted(step="pay", attempt=2, at=T0 + 0.5),
            StepFailed(
                step="pay",
                attempt=2,
                error=step_error("pay", "card declined"),
                will_retry=False,
                started_at=T0 + 0.5,
                at=T0 + 0.6,
            ),
            StepStarted(step="slow", attempt=1, at=T0 + 0.3),
            StepUndone(step="book", at=T0 + 0.7),
            RunFailed(run_id="r1", errors=(step_error("pay", "card declined"),), at=T0 + 0.8),
        ]
    )
    assert view.status == "failed"
    assert [(e.step, e.message) for e in view.errors] == [("pay", "card declined")]
    steps = {s.name: s for s in view.steps}
    assert steps["pay"].status == "failed"
    assert steps["pay"].attempts == 2
    assert steps["pay"].error is not None
    assert steps["pay"].error.message == "card declined"
    assert steps["pay"].duration == pytest.approx(0.3)  # first start to final failure
    assert steps["book"].status == "undone"
    assert steps["slow"].status == "cancelled"  # still running when the run failed


def test_fold_a_retrying_step_then_success_keeps_the_earlier_error() -> None:
    """A step retried and then completed is done, with the failed attempt's error kept."""
    view = fold(
        [
            run_started(),
            StepStarted(step="call", attempt=1, at=T0),
            StepFailed(
                step="call",
                attempt=1,
                error=step_error("call", "rate limited", kind="rate_limited", error="rate_limited"),
                will_retry=True,
                delay=0.5,
                started_at=T0,
                at=T0 + 0.1,
            ),
        ]
    )
    call = view.steps[0]
    assert (call.status, call.detail) == ("retrying", "retry in 0.50s")
    view = fold(
        [
            run_started(),
            StepStarted(step="call", attempt=1, at=T0),
            StepFailed(
                step="call",
                attempt=1,
                error=step_error("call", "rate limited", kind="rate_limited"),
                will_retry=True,
                started_at=T0,
                at=T0 + 0.1,
            ),
            StepStarted(step="call", attempt=2, at=T0 + 0.6),
            StepCompleted(
                step="call", attempt=2, value=raw_json("ok"), started_at=T0 + 0.6, at=T0 + 1
            ),
        ]
    )
    call = view.steps[0]
    assert (call.status, call.attempts, call.value) == ("done", 2, "ok")
    assert call.error is not None
    assert call.error.kind == "rate_limited"
    assert view.status == "running"


def test_fold_a_halted_run_and_its_resumption() -> None:
    """A halted run names the step and reason; a resume makes that step pending again."""
    halted: list[RunEvent] = [
        run_started(),
        StepStarted(step="draft", attempt=1, at=T0),
        StepCompleted(step="draft", attempt=1, value=raw_json("text"), started_at=T0, at=T0 + 1),
        StepStarted(step="approve", attempt=1, at=T0 + 1),
        RunHalted(run_id="r1", step="approve", reason="waiting for a human", at=T0 + 2),
    ]
    view = fold(halted)
    assert (view.status, view.halted_step, view.reason) == (
        "halted",
        "approve",
        "waiting for a human",
    )
    assert {s.name: s.status for s in view.steps} == {"draft": "done", "approve": "halted"}
    new_owner = Owner(host="elsewhere", pid=2, started_at=T0 + 50)
    view = fold(
        [
            *halted,
            RunResumed(run_id="r1", owner=new_owner, reason="reactor runs resume", at=T0 + 60),
        ]
    )
    assert (view.status, view.resumed, view.owner) == ("running", 1, new_owner)
    assert (view.halted_step, view.reason, view.ended_at) == (None, None, None)
    assert {s.name: s.status for s in view.steps} == {"draft": "done", "approve": "pending"}
    view = fold(
        [
            *halted,
            RunResumed(run_id="r1", owner=new_owner, reason="resume", at=T0 + 60),
            StepStarted(step="approve", attempt=2, at=T0 + 61),
            StepCompleted(
                step="approve", attempt=2, value=raw_json(True), started_at=T0, at=T0 + 62
            ),
            RunCompleted(run_id="r1", value=raw_json("text"), at=T0 + 63),
        ]
    )
    assert (view.status, view.result) == ("completed", "text")
    assert view.steps[1].attempts == 2


def test_fold_compensation_added_steps_and_cancellation() -> None:
    """Compensate-continue completes a step; added steps name their origin; cancel ends it."""
    view = fold(
        [
            run_started(),
            StepStarted(step="lookup", attempt=1, at=T0),
            StepFailed(
                step="lookup",
                attempt=1,
                error=step_error("lookup", "not there", kind="not_found"),
                will_retry=False,
                started_at=T0,
                at=T0 + 0.1,
            ),
            StepCompensated(
                step="lookup", decision="continue", value=raw_json("default"), at=T0 + 1
            ),
            StepsAdded(by="plan", steps=({"name": "extra", "kind": "function"},), at=T0 + 1),
            StepStarted(step="extra", attempt=1, at=T0 + 1),
            RunCancelled(run_id="r1", reason="cancelled by the user", at=T0 + 2),
        ]
    )
    steps = {s.name: s for s in view.steps}
    assert (steps["lookup"].status, steps["lookup"].value) == ("done", "default")
    assert steps["lookup"].detail == "compensated: continue"
    assert steps["extra"].added_by == "plan"
    assert steps["extra"].status == "cancelled"
    assert (view.status, view.reason) == ("cancelled", "cancelled by the user")
