"""Runs observed: spans from the tracing middleware, log lines from the logging middleware.

A run is a span ``reactor.run {Reactor}``; each step attempt is a child span
``reactor.step {step}``, current while the attempt runs, so what the step does (an LLM
call's ``chat {model}`` span, a composed run's span) nests under it. Retries and undos
are events on the run's span. The logging middleware writes a structlog line per run
and per step event, carrying the run id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from structlog.testing import capture_logs

import otel
from actors import System
from actors.llm import Completion, HostConfig
from actors.testing import FakeServer
from dsl import Halt, Input, Reactor, Retry, StepContext, ask, compose, step
from otel.testing import InMemorySpanExporter, wait_for_spans
from reactor.app import Engine
from reactor.run import RunFailedError, RunHaltedError
from tests.support.hosts import start_host

# -- helpers ----------------------------------------------------------------------------------


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    """Every finished span called ``name``, oldest first."""
    return sorted((s for s in spans if s.name == name), key=lambda s: s.start_time or 0)


def one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    """The one finished span called ``name``."""
    found = named(spans, name)
    assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in spans]}"
    return found[0]


def span_id(span: ReadableSpan) -> int:
    """A span's own id."""
    assert span.context is not None
    value: int = span.context.span_id
    return value


def parent_id(span: ReadableSpan) -> int | None:
    """The span's parent's id (``None`` for a root span)."""
    return span.parent.span_id if span.parent is not None else None


def is_descendant(
    span: ReadableSpan, ancestor: ReadableSpan, spans: tuple[ReadableSpan, ...]
) -> bool:
    """Whether ``ancestor`` is on ``span``'s chain of parents (among ``spans``)."""
    by_id = {span_id(s): s for s in spans}
    current: ReadableSpan | None = span
    while current is not None:
        parent = parent_id(current)
        if parent == span_id(ancestor):
            return True
        current = by_id.get(parent) if parent is not None else None
    return False


def event_names(span: ReadableSpan) -> list[str]:
    """The names of a span's events, in order."""
    return [e.name for e in span.events]


@pytest.fixture
def engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine with tracing on (the default) and logging off."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as running:
        yield running


# -- reactors ---------------------------------------------------------------------------------


class Flow(Reactor):
    """Two steps in a row."""

    x = Input(int)

    @step
    def first(x: int) -> int:
        return x + 1

    @step
    def second(first: int) -> int:
        return first * 2


class Flaky(Reactor):
    """A step that asks to be retried on its first attempt."""

    x = Input(int)

    @step(backoff=0)
    def flaky(x: int, ctx: StepContext) -> int:
        if ctx.attempt == 1:
            return Retry("not yet")  # type: ignore[return-value]
        return x


undone: list[Any] = []


def _undo_reserve(value: Any, arguments: dict[str, Any]) -> None:
    undone.append(value)


class RollsBack(Reactor):
    """An undoable step, then one that fails."""

    x = Input(int)

    @step(undo=_undo_reserve)
    def reserve(x: int) -> int:
        return x

    @step
    def charge(reserve: int) -> int:
        msg = "card declined"
        raise ValueError(msg)


class Child(Reactor):
    """Composed by :class:`Parent`."""

    x = Input(int)

    @step
    def inner(x: int) -> int:
        return x * 3


class Parent(Reactor):
    """Composes :class:`Child`."""

    x = Input(int)
    sub = compose(Child)


# -- spans ------------------------------------------------------------------------------------


def test_a_run_is_a_span_with_a_child_span_per_step(
    engine: Engine, spans: InMemorySpanExporter
) -> None:
    """``reactor.run Flow`` has one ``reactor.step`` child per step, carrying the run id."""
    handle = engine.start(Flow, {"x": 1})
    assert handle.result(10) == 4
    finished = wait_for_spans(spans, ["reactor.run Flow", "reactor.step second"])
    run = one(finished, "reactor.run Flow")
    assert run.attributes is not None
    assert run.attributes["reactor.run_id"] == handle.run_id
    assert run.attributes["reactor.status"] == "completed"
    for name in ("first", "second"):
        step_span = one(finished, f"reactor.step {name}")
        assert parent_id(step_span) == span_id(run)
        assert step_span.attributes is not None
        assert step_span.attributes["reactor.attempt"] == 1
        assert step_span.attributes["reactor.run_id"] == handle.run_id


HALTS: list[int] = []


class HaltsOnce(Reactor):
    """A step, then one that halts the first time it runs."""

    x = Input(int)

    @step
    def first(x: int) -> int:
        return x + 1

    @step
    def gate(first: int) -> int:
        HALTS.append(first)
        if len(HALTS) == 1:
            return Halt("look first")  # type: ignore[return-value]
        return first


def test_a_resumed_runs_span_links_to_the_trace_it_continues(
    engine: Engine, spans: InMemorySpanExporter
) -> None:
    """The resumed run is a new trace, linked to the last step span journaled before."""
    HALTS.clear()
    with pytest.raises(RunHaltedError) as halted:
        engine.run(HaltsOnce, {"x": 1})
    assert engine.resume(halted.value.run_id).result(10) == 2
    finished = wait_for_spans(spans, ["reactor.run HaltsOnce", "reactor.run HaltsOnce"])
    first_run, resumed = named(finished, "reactor.run HaltsOnce")
    assert not first_run.links
    [link] = resumed.links
    gate = [
        s
        for s in named(finished, "reactor.step gate")
        if s.context is not None
        and first_run.context is not None
        and s.context.trace_id == first_run.context.trace_id
    ]
    assert len(gate) == 1
    assert link.context.trace_id == first_run.context.trace_id
    assert link.context.span_id == span_id(gate[0])
    assert link.attributes is not None
    assert link.attributes["reactor.link"] == "resumed_from"


def test_a_top_level_run_span_is_a_root(engine: Engine, spans: InMemorySpanExporter) -> None:
    """Started with no span current, the run's span starts a trace (not under the store's spans)."""
    engine.run(Flow, {"x": 1})
    run = one(wait_for_spans(spans, ["reactor.run Flow"]), "reactor.run Flow")
    assert run.parent is None


def test_a_run_started_inside_a_span_is_its_child(
    engine: Engine, spans: InMemorySpanExporter
) -> None:
    """engine.run() under the caller's span: the run's span is a child of it."""
    with otel.tracer().start_as_current_span("caller"):
        engine.run(Flow, {"x": 1})
    finished = wait_for_spans(spans, ["caller", "reactor.run Flow"])
    assert parent_id(one(finished, "reactor.run Flow")) == span_id(one(finished, "caller"))


def test_a_retried_step_has_a_span_per_attempt_and_a_retry_event(
    engine: Engine, spans: InMemorySpanExporter
) -> None:
    """Two attempt spans (the first in error) and a ``step.retry`` event on the run span."""
    assert engine.run(Flaky, {"x": 5}) == 5
    finished = wait_for_spans(spans, ["reactor.run Flaky"])
    run = one(finished, "reactor.run Flaky")
    attempts = named(finished, "reactor.step flaky")
    assert len(attempts) == 2
    assert [a.attributes["reactor.attempt"] for a in attempts if a.attributes] == [1, 2]
    assert [a.status.status_code for a in attempts] == [StatusCode.ERROR, StatusCode.UNSET]
    assert all(parent_id(a) == span_id(run) for a in attempts)
    assert event_names(run) == ["step.retry"]
    retry = run.events[0]
    assert retry.attributes is not None
    assert (retry.attributes["reactor.step"], retry.attributes["reactor.attempt"]) == ("flaky", 1)


def test_an_undo_is_an_event_on_the_run_span(engine: Engine, spans: InMemorySpanExporter) -> None:
    """Rolling back gives ``step.undo_start`` and ``step.undo`` events; the run span is an error."""
    undone.clear()
    with pytest.raises(RunFailedError):
        engine.run(RollsBack, {"x": 7})
    assert undone == [7]
    finished = wait_for_spans(spans, ["reactor.run RollsBack"])
    run = one(finished, "reactor.run RollsBack")
    assert event_names(run) == ["step.undo_start", "step.undo"]
    assert run.events[1].attributes is not None
    assert run.events[1].attributes["reactor.step"] == "reserve"
    assert run.status.status_code is StatusCode.ERROR
    charge = one(finished, "reactor.step charge")
    assert charge.status.status_code is StatusCode.ERROR
    assert charge.attributes is not None
    assert charge.attributes["error.type"] == "ValueError"


def test_a_composed_runs_span_is_a_child_of_the_compose_steps_span(
    engine: Engine, spans: InMemorySpanExporter
) -> None:
    """``reactor.run Child`` nests under ``reactor.step sub`` of the parent run, in one trace."""
    assert engine.run(Parent, {"x": 2}) == 6
    finished = wait_for_spans(spans, ["reactor.run Parent", "reactor.run Child"])
    parent_run = one(finished, "reactor.run Parent")
    sub = one(finished, "reactor.step sub")
    child_run = one(finished, "reactor.run Child")
    assert parent_id(sub) == span_id(parent_run)
    assert parent_id(child_run) == span_id(sub)
    assert child_run.context is not None
    assert parent_run.context is not None
    assert child_run.context.trace_id == parent_run.context.trace_id
    assert parent_id(one(finished, "reactor.step inner")) == span_id(child_run)
    assert child_run.attributes is not None
    assert child_run.attributes["reactor.depth"] == 2


class Asking(Reactor):
    """One ask step, then a step using its completion."""

    topic = Input(str)
    question = ask("What about {topic}?", model="fake-small")

    @step
    def answer(question: Completion) -> str:
        return question.content


def test_an_ask_steps_chat_span_nests_under_its_step_span(
    system: System, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    """The ModelHost's ``chat fake-small`` span descends from ``reactor.step question``."""
    with FakeServer("openai") as server:
        start_host(
            system,
            HostConfig(
                url=server.url,
                protocol="openai",
                connect_timeout_s=1.0,
                timeout_s=5.0,
                stream_idle_timeout_s=1.0,
            ),
        )
        with Engine(
            system, db_path=tmp_path / "runs.db", logging=False, hosts={"fake-small": "local"}
        ) as engine:
            assert engine.run(Asking, {"topic": "owls"}).endswith("What about owls?")
    finished = wait_for_spans(spans, ["reactor.run Asking", "chat fake-small"])
    chat = one(finished, "chat fake-small")
    question = one(finished, "reactor.step question")
    assert is_descendant(chat, question, finished)
    assert not is_descendant(chat, one(finished, "reactor.step answer"), finished)
    assert chat.attributes is not None
    assert chat.attributes[otel.GEN_AI_REQUEST_MODEL] == "fake-small"


# -- logs -------------------------------------------------------------------------------------


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog line (debug and up) written during the test."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as entries:
            yield entries
    finally:
        structlog.configure(**saved)


@pytest.fixture
def logging_engine(system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine with the logging middleware on (tracing off)."""
    with Engine(system, db_path=tmp_path / "runs.db", tracing=False) as running:
        yield running


def run_lines(logs: list[MutableMapping[str, Any]], run_id: str) -> list[tuple[str, Any]]:
    """(event, step) of each line about ``run_id``, in order."""
    return [(e["event"], e.get("step")) for e in logs if e.get("run_id") == run_id]


def test_the_logging_middleware_logs_run_start_and_completion(
    logging_engine: Engine, logs: list[MutableMapping[str, Any]]
) -> None:
    """'run started' and 'run completed' lines carry the run id; steps log start and complete."""
    handle = logging_engine.start(Flow, {"x": 1})
    handle.result(10)
    lines = run_lines(logs, handle.run_id)
    assert lines[0] == ("run started", None)
    assert lines[-1] == ("run completed", None)
    assert ("step start", "first") in lines
    assert lines.index(("step complete", "first")) < lines.index(("step start", "second"))
    completed = next(e for e in logs if e["event"] == "run completed")
    assert (completed["log_level"], completed["reactor"], completed["status"]) == (
        "info",
        "Flow",
        "completed",
    )


def test_the_logging_middleware_logs_retries_and_failures_as_warnings(
    logging_engine: Engine, logs: list[MutableMapping[str, Any]]
) -> None:
    """A retry logs 'step retry'; a failed run logs 'run failed' with its error, at warning."""
    flaky = logging_engine.start(Flaky, {"x": 1})
    flaky.result(10)
    retry = next(e for e in logs if e["event"] == "step retry" and e["run_id"] == flaky.run_id)
    assert (retry["log_level"], retry["step"], retry["attempt"]) == ("warning", "flaky", 1)
    failing = logging_engine.start(RollsBack, {"x": 1})
    with pytest.raises(RunFailedError):
        failing.result(10)
    failed = next(e for e in logs if e["event"] == "run failed")
    assert failed["run_id"] == failing.run_id
    assert failed["log_level"] == "warning"
    assert "card declined" in failed["error"]
    assert ("step undo_complete", "reserve") in run_lines(logs, failing.run_id)


def test_a_composed_run_logs_its_parent(
    logging_engine: Engine, logs: list[MutableMapping[str, Any]]
) -> None:
    """The child run's 'run started' line names the parent run."""
    handle = logging_engine.start(Parent, {"x": 1})
    handle.result(10)
    started = [e for e in logs if e["event"] == "run started"]
    assert [(e["reactor"], e["parent"]) for e in started] == [
        ("Parent", None),
        ("Child", handle.run_id),
    ]
