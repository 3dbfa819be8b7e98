"""The built-in middleware: tracing (OpenTelemetry spans) and logging (structlog lines).

:class:`TracingMiddleware` makes a span per run, ``reactor.run {Reactor}`` (the child
of the step that composed it, if any, else the root of its own trace), and a child
span per step attempt, ``reactor.step {step}``, which is current while the attempt
runs, so the spans it makes (an LLM call's ``chat {model}``, an ``execute_tool``, a
composed run) nest under it: one trace per run. Run spans carry the GenAI
conventions' workflow attributes (``gen_ai.operation.name=invoke_workflow``,
``gen_ai.workflow.name`` = the reactor). Retries, skips, guards, compensations and
undos are span events (``step.retry``, ``step.undo``, ...) on the run's span; a failed
attempt's span, and a failed run's, have an error status and ``error.type`` (the
failure kind, or the exception's qualified name for an error in user code) and, when
user code raised, an ``exception`` event with ``exception.stacktrace``.

It also records the run metrics when metrics are on (``otel.configure_metrics``):
``reactor.runs.started``, ``reactor.runs.ended`` (by ``reactor.status``) and
``reactor.step.duration`` (by step and outcome).

:class:`LoggingMiddleware` writes a structlog line per run and per step event, bound to
``run_id``, ``reactor`` and ``step``: starts and completions at debug, retries and
errors at warning (an exception raised by user code at error, its traceback as
``exception``), runs at info.
"""

from __future__ import annotations

from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

import otel
from reactor.run import Middleware, RunInfo, RunOutcome, StepEvent, StepEventKind

__all__ = ["LoggingMiddleware", "TracingMiddleware", "log"]

log = structlog.get_logger("reactor.run")

_RUN_EVENTS = {
    StepEventKind.RETRY: "step.retry",
    StepEventKind.SKIP: "step.skip",
    StepEventKind.GUARD: "step.guard",
    StepEventKind.COMPENSATE: "step.compensate",
    StepEventKind.UNDO_START: "step.undo_start",
    StepEventKind.UNDO_COMPLETE: "step.undo",
    StepEventKind.UNDO_ERROR: "step.undo_error",
    StepEventKind.ADDED: "step.added",
    StepEventKind.HALT: "step.halt",
}


class _RunSpans:
    """One run's open spans: its own, the starter of its attempts', the attempts'.

    Only the run's own actor calls the hooks for a run, one at a time, so this needs no
    lock; the middleware's table of runs is a dict whose get, set and pop are atomic.
    """

    __slots__ = ("children", "span", "steps")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.children = otel.child_spans(span)  # made once, shared by every attempt
        self.steps: dict[str, Span] = {}


class TracingMiddleware(Middleware):
    """A span per run and per step attempt (see the module docstring).

    On the hot path (a span per step attempt) it does the least it can: one table
    look-up per hook, the run's span's children started by :func:`otel.child_spans`
    (the sampling decision and the parent's context made once per run), the
    attributes passed at start in one dict and those known at the end in one more.
    """

    def __init__(self) -> None:
        self._runs: dict[str, _RunSpans] = {}

    def run_started(self, run: RunInfo) -> None:
        """Open the run's span."""
        meters = otel.instruments()
        if meters is not None:
            meters.runs_started.add(1, {"reactor.name": run.reactor})
        if not otel.enabled():
            return
        # No carrier: a root span. (The current context here is whatever message the
        # Run actor is handling, a journal reply, which is no parent of the run.)
        parent = otel.extract(run.carrier) if run.carrier else None
        attributes: dict[str, Any] = {
            otel.GEN_AI_OPERATION_NAME: "invoke_workflow",
            otel.GEN_AI_WORKFLOW_NAME: run.reactor,
            "reactor.name": run.reactor,
            "reactor.run_id": run.run_id,
            "reactor.resumed": run.resumed,
            "reactor.depth": len(run.stack),
        }
        if run.parent:
            attributes["reactor.parent_run_id"] = run.parent
        span = otel.start_span(
            f"reactor.run {run.reactor}",
            context=parent if parent is not None else _ROOT,
            attributes=attributes,
        )
        if run.previous:
            # A resumed run: a link to the trace of the run it continues (its last step
            # attempt journaled), so a trace viewer leads from one to the other.
            before = trace.get_current_span(otel.extract(run.previous)).get_span_context()
            if before.is_valid:
                span.add_link(before, {"reactor.link": "resumed_from"})
        self._runs[run.run_id] = _RunSpans(span)

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        """Open, close or annotate spans."""
        if event.replayed:
            return
        kind = event.kind
        if event.duration is not None:
            meters = otel.instruments()
            if meters is not None and kind in (StepEventKind.COMPLETE, StepEventKind.ERROR):
                outcome = "ok" if kind is StepEventKind.COMPLETE else "error"
                meters.step_duration.record(
                    event.duration,
                    {"reactor.name": run.reactor, "reactor.step": event.step, "outcome": outcome},
                )
        spans = self._runs.get(run.run_id)
        if spans is None:
            return
        if kind is StepEventKind.START:
            spans.steps[event.step] = spans.children.start(
                f"reactor.step {event.step}",
                {
                    "reactor.step": event.step,
                    "reactor.attempt": event.attempt,
                    "reactor.run_id": run.run_id,
                },
            )
        elif kind is StepEventKind.COMPLETE:
            step_span = spans.steps.pop(event.step, None)
            if step_span is not None:
                step_span.end()
        elif kind is StepEventKind.ERROR:
            _end_failed(spans.steps.pop(event.step, None), event)
        else:
            _annotate(spans, event)

    def step_context(self, run: RunInfo, step: str, attempt: int) -> Any:
        """The attempt's span, so that what the step does nests under it."""
        spans = self._runs.get(run.run_id)
        span = spans.steps.get(step) if spans is not None else None
        return trace.set_span_in_context(span) if span is not None else None

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        """Close the run's span (and any step span left open)."""
        meters = otel.instruments()
        if meters is not None:
            meters.runs_ended.add(
                1, {"reactor.name": run.reactor, "reactor.status": outcome.status}
            )
        spans = self._runs.pop(run.run_id, None)
        if spans is None:
            return
        for step_span in spans.steps.values():
            step_span.end()
        span = spans.span
        attributes: dict[str, Any] = {"reactor.status": outcome.status}
        for name, count in outcome.stats.items():
            attributes[f"reactor.steps.{name}"] = count
        if outcome.status in ("failed", "cancelled"):
            first = outcome.errors[0] if outcome.errors else None
            message = getattr(first, "message", outcome.reason)
            attributes[otel.ERROR_TYPE] = (
                otel.error_type(first) if first is not None else outcome.status
            )
            span.set_attributes(attributes)
            span.set_status(Status(StatusCode.ERROR, f"{outcome.status}: {message}"))
        else:
            if outcome.status == "halted" and outcome.reason:
                # A step's halt is also an event on the span; the run's timeout
                # (on_timeout="halt") is said only here.
                attributes["reactor.halt_reason"] = outcome.reason
            span.set_attributes(attributes)
        span.end()


_ROOT = otel_context.Context()
"""An empty context: the parent of a run's span that has no carrier (a new trace)."""


def _annotate(spans: _RunSpans, event: StepEvent) -> None:
    """A retry, skip, guard, compensation, undo, addition or halt: an event on the run's span."""
    kind = event.kind
    attributes: dict[str, Any] = {"reactor.step": event.step, "reactor.attempt": event.attempt}
    if event.delay is not None:
        attributes["reactor.delay_s"] = event.delay
    if event.detail:
        attributes["reactor.detail"] = event.detail
    if event.error is not None:
        attributes[otel.ERROR_TYPE] = otel.error_type(event.error)
    if kind is StepEventKind.HALT:
        step_span = spans.steps.pop(event.step, None)
        if step_span is not None:
            step_span.end()
    spans.span.add_event(_RUN_EVENTS.get(kind, f"step.{kind.value}"), attributes)


def _end_failed(span: Span | None, failed: StepEvent) -> None:
    """End a failed attempt's span with ``error.type`` and, for user code, the exception."""
    if span is None:
        return
    error = failed.error
    if error is not None:
        span.set_attribute(otel.ERROR_TYPE, otel.error_type(error))
        span.set_status(Status(StatusCode.ERROR, str(getattr(error, "message", ""))))
        stacktrace = getattr(error, "traceback", "")
        if stacktrace:  # raised by user code: the semantic conventions' exception event
            span.add_event(
                "exception",
                {
                    "exception.type": str(getattr(error, "error", "")),
                    "exception.message": str(getattr(error, "message", "")),
                    "exception.stacktrace": stacktrace,
                },
            )
    span.end()


class LoggingMiddleware(Middleware):
    """A structlog line per run and per step event (see the module docstring)."""

    def run_started(self, run: RunInfo) -> None:
        """Log the start (or resume)."""
        log.info(
            "run resumed" if run.resumed else "run started",
            run_id=run.run_id,
            reactor=run.reactor,
            parent=run.parent,
        )

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        """Log the event at a level that fits it."""
        if event.replayed:
            return
        fields: dict[str, Any] = {
            "run_id": run.run_id,
            "reactor": run.reactor,
            "step": event.step,
            "attempt": event.attempt,
        }
        if event.duration is not None:
            fields["duration_s"] = round(event.duration, 6)
        if event.delay is not None:
            fields["delay_s"] = round(event.delay, 3)
        if event.detail:
            fields["detail"] = event.detail
        if event.error is not None:
            kind = getattr(event.error, "kind", "")
            fields["error"] = f"{kind}: {getattr(event.error, 'message', event.error)}"
        stacktrace = getattr(event.error, "traceback", "")
        match event.kind:
            case StepEventKind.ERROR if stacktrace:  # user code raised: where, at error level
                log.error(f"step {event.kind.value}", exception=stacktrace, **fields)
            case (
                StepEventKind.ERROR
                | StepEventKind.RETRY
                | StepEventKind.UNDO_ERROR
                | StepEventKind.HALT
            ):
                log.warning(f"step {event.kind.value}", **fields)
            case StepEventKind.UNDO_START | StepEventKind.UNDO_COMPLETE | StepEventKind.COMPENSATE:
                log.info(f"step {event.kind.value}", **fields)
            case _:
                log.debug(f"step {event.kind.value}", **fields)

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        """Log how the run ended."""
        fields: dict[str, Any] = {
            "run_id": run.run_id,
            "reactor": run.reactor,
            "status": outcome.status,
            "duration_s": round(outcome.duration, 6),
            **{f"steps_{k}": v for k, v in outcome.stats.items()},
        }
        if outcome.errors:
            first = outcome.errors[0]
            fields["error"] = f"{getattr(first, 'step', '')}: {getattr(first, 'message', first)}"
        if outcome.reason:
            fields["reason"] = outcome.reason
        level = log.info if outcome.status in ("completed", "halted") else log.warning
        level(f"run {outcome.status}", **fields)
