"""A step retry and the server's ``retry_after``: bounded by the run's deadline and a cap.

Against a loopback fake OpenAI server whose scripted 429s carry a ``retry-after``:

* a wait that would end after the run's timeout is not waited out: the run does at once
  what its timeout would (fails, or halts under ``on_timeout="halt"``), saying which
  step would have waited how long and how much time was left;
* a ``retry_after`` over :data:`~reactor.run._run.RETRY_AFTER_LIMIT_S` is ignored (the
  vendors' SDKs ignore one over 60 s): the step's own backoff applies, and its
  ``StepFailed`` says so.

Nothing here waits for the server's long ``retry_after``: each test would hang until
its bound (and fail) if a step did.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import System
from actors.llm import HostConfig
from actors.testing import FakeServer, Fault
from dsl import Input, Reactor, ask
from reactor.app import Engine
from reactor.run import RunFailedError, RunHaltedError
from reactor.run._records import RunHalted, StepCompleted, StepFailed
from reactor.run._run import RETRY_AFTER_LIMIT_S
from tests.support.hosts import start_host

_WAIT_S = 30.0  # a bound against hanging (shorter than any retry_after below), not a timing


@pytest.fixture
def openai(system: System) -> Iterator[FakeServer]:
    """An OpenAI-compatible fake server, with a ModelHost named ``local`` for it."""
    with FakeServer("openai", models=["fake-small"]) as server:
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
        yield server


@pytest.fixture
def engine(system: System, tmp_path: Path, openai: FakeServer) -> Iterator[Engine]:
    with Engine(
        system, db_path=tmp_path / "runs.db", logging=False, hosts={"fake-small": "local"}
    ) as running:
        yield running


class Patient(Reactor):
    """One ask, retried up to twice, with no backoff of its own."""

    topic = Input(str)
    answer = ask("About {topic}?", model="fake-small", max_retries=2, backoff=0)


def _failed(engine: Engine, run_id: str) -> list[StepFailed]:
    return [e for e in engine.history(run_id) if isinstance(e, StepFailed)]


def test_a_retry_after_past_the_runs_deadline_fails_the_run_at_once(
    engine: Engine, openai: FakeServer
) -> None:
    """retry_after 40 s, timeout 20 s: the run fails now, naming step, wait and time left."""
    assert RETRY_AFTER_LIMIT_S > 40.0
    openai.inject(Fault(status=429, model="fake-small", times=1, retry_after=40))
    handle = engine.start(Patient, {"topic": "x"}, timeout=20.0)
    with pytest.raises(RunFailedError) as caught:
        handle.result(_WAIT_S)
    step_error, timeout_error = caught.value.errors
    assert (step_error.step, step_error.kind) == ("answer", "rate_limited")
    assert "not retried: step 'answer' would wait the server's retry_after of 40 s" in (
        step_error.message
    )
    assert "the run's timeout of 20 s leaves" in step_error.message
    assert (timeout_error.step, timeout_error.kind) == ("", "timeout")
    assert "before its timeout of 20 s" in timeout_error.message
    assert "retry_after of 40 s" in timeout_error.message
    [failed] = _failed(engine, handle.run_id)
    assert not failed.will_retry
    assert len(openai.calls) == 1  # not asked again


def test_a_retry_after_past_the_deadline_halts_a_soft_timeout_run_resumably(
    engine: Engine, openai: FakeServer
) -> None:
    """on_timeout="halt": the run halts now with that reason; resume retries the step."""
    openai.inject(Fault(status=429, model="fake-small", times=1, retry_after=40))
    handle = engine.start(Patient, {"topic": "x"}, timeout=20.0, on_timeout="halt")
    with pytest.raises(RunHaltedError) as caught:
        handle.result(_WAIT_S)
    assert caught.value.step == ""
    assert "step 'answer' would wait the server's retry_after of 40 s" in caught.value.reason
    assert "leaves" in caught.value.reason
    history = engine.history(handle.run_id)
    assert isinstance(history[-1], RunHalted)
    [failed] = _failed(engine, handle.run_id)
    assert failed.will_retry
    assert "not retried before the timeout" in failed.error.message

    resumed = engine.resume(handle.run_id)
    assert resumed.result(_WAIT_S).content.startswith("[fake-small]")
    completed = [e for e in engine.history(handle.run_id) if isinstance(e, StepCompleted)]
    assert [(e.step, e.attempt) for e in completed] == [("answer", 2)]


def test_a_retry_after_over_the_limit_is_ignored_for_the_steps_backoff(
    engine: Engine, openai: FakeServer
) -> None:
    """retry_after 600 s (no timeout): retried after the backoff (0 s), and the event says so."""
    openai.inject(Fault(status=429, model="fake-small", times=1, retry_after=600))
    handle = engine.start(Patient, {"topic": "x"})
    assert handle.result(_WAIT_S).content.startswith("[fake-small]")
    [failed] = _failed(engine, handle.run_id)
    assert failed.will_retry
    assert failed.delay == 0
    assert (
        f"the server's retry_after of 600 s is over {RETRY_AFTER_LIMIT_S:g} s and was "
        "ignored; retried after the step's backoff of 0 s"
    ) in failed.error.message
    assert len(openai.calls) == 2


def test_a_retry_after_within_the_deadline_is_waited_for(
    engine: Engine, openai: FakeServer
) -> None:
    """A short retry_after well inside the timeout: the step waits it, then succeeds."""
    openai.inject(Fault(status=429, model="fake-small", times=1, retry_after=0.05))
    handle = engine.start(Patient, {"topic": "x"}, timeout=20.0)
    assert handle.result(_WAIT_S).content.startswith("[fake-small]")
    [failed] = _failed(engine, handle.run_id)
    assert failed.delay == 0.05
