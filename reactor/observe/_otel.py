"""The built-in middleware: tracing (OpenTelemetry spans) and logging (structlog lines).

:class:`TracingMiddleware` makes a span per run, ``reactor.run {Reactor}`` (the child
of the step that composed it, if any), and a child span per step attempt,
``reactor.step {step}``, which is current while the attempt runs, so the spans it makes
(an LLM call's ``chat {model}``) nest under it. Retries, skips, guards,
compensations and undos are span events (``step.retry``, ``step.undo``, ...) on the
run's span; a failed attempt's span has an error status and ``error.type``, and,
when user code raised, an ``exception`` event with ``exception.stacktrace``.

:class:`LoggingMiddleware` writes a structlog line per run and per step event, bound to
``run_id``, ``reactor`` and ``step``: starts and completions at debug, retries and
errors at warning (an exception raised by user code at error, its traceback as
``exception``), runs at info.
"""

from __future__ import annotations

import threading
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


class TracingMiddleware(Middleware):
    """A span per run and per step attempt (see the module docstring)."""

    def __init__(self) -> None:
        self._runs: dict[str, Span] = {}
        self._steps: dict[tuple[str, str], Span] = {}
        self._lock = threading.Lock()

    def run_started(self, run: RunInfo) -> None:
        """Open the run's span."""
        if not otel.enabled():
            return
        # No carrier: a root span. (The current context here is whatever message the
        # Run actor is handling, a journal reply, which is no parent of the run.)
        parent = otel.extract(dict(run.carrier)) if run.carrier else None
        span = otel.tracer().start_span(
            f"reactor.run {run.reactor}",
            context=parent if parent is not None else otel_context.Context(),
            attributes={
                "reactor.name": run.reactor,
                "reactor.run_id": run.run_id,
                "reactor.resumed": run.resumed,
                "reactor.depth": len(run.stack),
                **({"reactor.parent_run_id": run.parent} if run.parent else {}),
            },
        )
        with self._lock:
            self._runs[run.run_id] = span

    def step_event(self, run: RunInfo, event: StepEvent) -> None:
        """Open, close or annotate spans."""
        with self._lock:
            run_span = self._runs.get(run.run_id)
        if run_span is None or event.replayed:
            return
        key = (run.run_id, event.step)
        match event.kind:
            case StepEventKind.START:
                span = otel.tracer().start_span(
                    f"reactor.step {event.step}",
                    context=trace.set_span_in_context(run_span),
                    attributes={
                        "reactor.step": event.step,
                        "reactor.attempt": event.attempt,
                        "reactor.run_id": run.run_id,
                    },
                )
                with self._lock:
                    self._steps[key] = span
            case StepEventKind.COMPLETE:
                self._end_step(key, None)
            case StepEventKind.ERROR:
                self._end_step(key, event)
            case _:
                attributes: dict[str, Any] = {
                    "reactor.step": event.step,
                    "reactor.attempt": event.attempt,
                }
                if event.delay is not None:
                    attributes["reactor.delay_s"] = event.delay
                if event.detail:
                    attributes["reactor.detail"] = event.detail
                if event.error is not None:
                    attributes["error.type"] = str(getattr(event.error, "kind", "error"))
                if event.kind is StepEventKind.HALT:
                    self._end_step(key, None)
                run_span.add_event(
                    _RUN_EVENTS.get(event.kind, f"step.{event.kind.value}"), attributes
                )

    def _end_step(self, key: tuple[str, str], failed: StepEvent | None) -> None:
        with self._lock:
            span = self._steps.pop(key, None)
        if span is None:
            return
        if failed is not None and failed.error is not None:
            error = failed.error
            span.set_attribute("error.type", str(getattr(error, "error", "error")))
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

    def step_context(self, run: RunInfo, step: str, attempt: int) -> Any:
        """The attempt's span, so that what the step does nests under it."""
        with self._lock:
            span = self._steps.get((run.run_id, step))
        return trace.set_span_in_context(span) if span is not None else None

    def run_finished(self, run: RunInfo, outcome: RunOutcome) -> None:
        """Close the run's span (and any step span left open)."""
        with self._lock:
            span = self._runs.pop(run.run_id, None)
            left = [k for k in self._steps if k[0] == run.run_id]
            spans = [self._steps.pop(k) for k in left]
        for step_span in spans:
            step_span.end()
        if span is None:
            return
        span.set_attribute("reactor.status", outcome.status)
        for name, count in outcome.stats.items():
            span.set_attribute(f"reactor.steps.{name}", count)
        if outcome.status in ("failed", "cancelled"):
            first = outcome.errors[0] if outcome.errors else None
            message = getattr(first, "message", outcome.reason)
            span.set_status(Status(StatusCode.ERROR, f"{outcome.status}: {message}"))
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
