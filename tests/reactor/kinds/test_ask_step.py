"""The ``ask`` step against real ModelHost actors and loopback fake LLM servers.

The prompt is rendered from the step's arguments and sent as a typed request to the
model host the engine resolves (``Engine(hosts=...)``, ``ask(..., host=...)`` or a
fleet); the step's result is the typed :class:`~actors.Completion`. Retryable failures
(a 429) are retried by the step's retry policy; an unknown model fails the run, naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import System
from actors.llm import Completion, Config, HostConfig, HostProtocol, start_fleet
from actors.testing import FakeServer, Fault, Reply, fake_servers
from dsl import Input, Reactor, ask, step
from reactor.app import Engine
from reactor.run import RunFailedError
from reactor.run._records import StepCompleted, StepFailed, StepStarted
from tests.support.hosts import start_host


def host_settings(server: FakeServer, protocol: HostProtocol) -> HostConfig:
    """A host for ``server`` with short timeouts."""
    return HostConfig(
        url=server.url,
        protocol=protocol,
        connect_timeout_s=1.0,
        timeout_s=5.0,
        stream_idle_timeout_s=1.0,
    )


@pytest.fixture
def openai(system: System) -> Iterator[FakeServer]:
    """An OpenAI-compatible fake server, with a ModelHost named ``local`` for it."""
    with FakeServer("openai", models=["fake-small", "fake-large"]) as server:
        start_host(system, host_settings(server, "openai"))
        yield server


@pytest.fixture
def engine(system: System, tmp_path: Path, openai: FakeServer) -> Iterator[Engine]:
    """An engine whose ask steps find both fake models on ``local``."""
    hosts = {"fake-small": "local", "fake-large": "local"}
    with Engine(system, db_path=tmp_path / "runs.db", logging=False, hosts=hosts) as running:
        yield running


def prompts(server: FakeServer) -> dict[str, list[str]]:
    """The user messages the server received, by model."""
    found: dict[str, list[str]] = {}
    for call in server.calls:
        if call.body and "messages" in call.body:
            users = [m["content"] for m in call.body["messages"] if m["role"] == "user"]
            found.setdefault(call.model or "", []).extend(users)
    return found


class Briefing(Reactor):
    """Two models answer in parallel; a step combines their completions."""

    topic = Input(str)
    optimist = ask("Why is {topic} promising?", model="fake-small", backoff=0)
    sceptic = ask("Why might {topic} fail?", model="fake-large", backoff=0)

    @step
    def brief(optimist: Completion, sceptic: Completion) -> dict[str, Any]:
        return {
            "types": [type(optimist).__name__, type(sceptic).__name__],
            "for": optimist.content,
            "against": sceptic.content,
            "models": [optimist.model, sceptic.model],
        }


def test_two_parallel_asks_feed_a_combining_step(engine: Engine, openai: FakeServer) -> None:
    """Both asks start before either completes; the combining step gets two Completions."""
    openai.script(Reply(text="cheap energy"), Reply(text="plasma leaks"))
    handle = engine.start(Briefing, {"topic": "fusion"})
    brief = handle.result(10)
    assert brief["types"] == ["Completion", "Completion"]
    assert {brief["for"], brief["against"]} == {"cheap energy", "plasma leaks"}
    assert brief["models"] == ["fake-small", "fake-large"]
    # A StepStarted row is left out when its StepCompleted is in the same journal batch,
    # so the start times come from the completions themselves.
    done = {e.step: e for e in engine.history(handle.run_id) if isinstance(e, StepCompleted)}
    first_done = min(done["optimist"].at, done["sceptic"].at)
    assert done["optimist"].started_at <= first_done
    assert done["sceptic"].started_at <= first_done


def test_the_prompt_is_rendered_from_the_arguments(engine: Engine, openai: FakeServer) -> None:
    """Each placeholder is replaced by its input; the server's answer is the step's content."""
    brief = engine.run(Briefing, {"topic": "fusion"})
    assert prompts(openai) == {
        "fake-small": ["Why is fusion promising?"],
        "fake-large": ["Why might fusion fail?"],
    }
    assert brief["for"] == "[fake-small] simulated answer to: Why is fusion promising?"


class Chain(Reactor):
    """A second ask whose prompt and system prompt use the first one's completion."""

    topic = Input(str)
    persona = Input(str, default="an editor")
    draft = ask("Write one line about {topic}.", model="fake-small", backoff=0)
    review = ask(
        "Review: {draft.content}",
        model="fake-large",
        system="You are {persona}.",
        backoff=0,
    )


def test_a_prompt_can_use_an_earlier_completion_and_a_system_template(
    engine: Engine, openai: FakeServer
) -> None:
    """``{draft.content}`` and the system template render; the run's result is a Completion."""
    openai.script(Reply(text="Fusion is near."), Reply(text="Too optimistic."))
    result = engine.run(Chain, {"topic": "fusion", "persona": "a sceptic"})
    assert isinstance(result, Completion)
    assert result.content == "Too optimistic."
    review = openai.calls[-1].body["messages"]
    assert review == [
        {"role": "system", "content": "You are a sceptic."},
        {"role": "user", "content": "Review: Fusion is near."},
    ]


def test_a_429_is_retried_and_the_retry_is_journaled(engine: Engine, openai: FakeServer) -> None:
    """One rate-limited answer: the step fails once (will_retry), then completes on attempt 2."""
    openai.inject(Fault(status=429, model="fake-small", times=1))
    handle = engine.start(Briefing, {"topic": "fusion"})
    brief = handle.result(10)
    assert brief["for"].startswith("[fake-small]")
    history = engine.history(handle.run_id)
    failed = [e for e in history if isinstance(e, StepFailed)]
    assert [(e.step, e.attempt, e.error.kind, e.will_retry) for e in failed] == [
        ("optimist", 1, "rate_limited", True)
    ]
    completed = {e.step: e.attempt for e in history if isinstance(e, StepCompleted)}
    assert completed["optimist"] == 2
    assert completed["sceptic"] == 1
    assert len(prompts(openai)["fake-small"]) == 2


def test_a_429_retry_waits_at_least_the_servers_retry_after(
    engine: Engine, openai: FakeServer
) -> None:
    """The journaled delay before the retry is no less than the server's retry-after."""
    openai.inject(Fault(status=429, model="fake-small", times=1, retry_after=0.05))
    handle = engine.start(Briefing, {"topic": "fusion"})
    handle.result(10)
    [failed] = [e for e in engine.history(handle.run_id) if isinstance(e, StepFailed)]
    assert failed.delay is not None
    assert failed.delay >= 0.05


class Stubborn(Reactor):
    """An ask with one retry."""

    topic = Input(str)
    answer = ask("About {topic}?", model="fake-small", max_retries=1, backoff=0)


def test_rate_limited_past_the_retries_fails_the_run(engine: Engine, openai: FakeServer) -> None:
    """Every answer a 429: two attempts, then the run fails with kind rate_limited."""
    openai.inject(Fault(status=429, model="fake-small", times=None))
    handle = engine.start(Stubborn, {"topic": "x"})
    with pytest.raises(RunFailedError) as caught:
        handle.result(10)
    error = caught.value.errors[0]
    assert (error.step, error.kind) == ("answer", "rate_limited")
    assert "gave up after 2 attempts" in error.message
    started = [e for e in engine.history(handle.run_id) if isinstance(e, StepStarted)]
    assert [e.attempt for e in started] == [1, 2]


def test_the_servers_x_should_retry_overrides_the_status(
    engine: Engine, openai: FakeServer
) -> None:
    """``x-should-retry: false`` on a 429: not retried; ``true`` on a 409: retried.

    The vendors' SDKs take the header's word over the status's; so does a step.
    """
    openai.inject(Fault(status=429, model="fake-small", times=1, should_retry=False))
    with pytest.raises(RunFailedError) as caught:
        engine.run(Stubborn, {"topic": "x"})
    error = caught.value.errors[0]
    assert (error.step, error.kind, error.retryable) == ("answer", "rate_limited", False)
    assert len(prompts(openai)["fake-small"]) == 1

    openai.calls.clear()
    openai.inject(Fault(status=409, model="fake-small", times=1, should_retry=True))
    assert engine.run(Stubborn, {"topic": "y"}).content.startswith("[fake-small]")
    assert len(prompts(openai)["fake-small"]) == 2


def test_a_conflict_is_retried_unless_the_server_says_not(
    engine: Engine, openai: FakeServer
) -> None:
    """A 409 (OpenAI's lock timeout) is retried, as the vendors' SDKs retry it."""
    openai.inject(Fault(status=409, model="fake-small", times=1))
    assert engine.run(Stubborn, {"topic": "x"}).content.startswith("[fake-small]")
    assert len(prompts(openai)["fake-small"]) == 2

    openai.calls.clear()
    openai.inject(Fault(status=409, model="fake-small", times=1, should_retry=False))
    with pytest.raises(RunFailedError) as caught:
        engine.run(Stubborn, {"topic": "y"})
    error = caught.value.errors[0]
    assert (error.kind, error.retryable) == ("bad_request", False)
    assert len(prompts(openai)["fake-small"]) == 1


class Unknown(Reactor):
    """Asks a model no host serves."""

    topic = Input(str)
    answer = ask("About {topic}?", model="no-such-model")


def test_an_unknown_model_fails_the_run_naming_the_model(
    engine: Engine, openai: FakeServer
) -> None:
    """No host serves the model: the run fails at once (not_found), naming it and the known ones."""
    with pytest.raises(RunFailedError) as caught:
        engine.run(Unknown, {"topic": "x"})
    error = caught.value.errors[0]
    assert (error.step, error.kind) == ("answer", "not_found")
    assert "'no-such-model'" in error.message
    assert "fake-small (on local)" in error.message
    assert "Engine(fleet=" not in error.message  # models are known: the name is at fault
    assert openai.calls == []


class Misspelt(Reactor):
    """Asks a model whose name is one letter off a served one."""

    topic = Input(str)
    answer = ask("About {topic}?", model="fake-smal")


def test_a_misspelt_model_is_named_with_the_close_one(engine: Engine) -> None:
    """A model name one typo away from a known one: the error suggests the known one."""
    with pytest.raises(RunFailedError) as caught:
        engine.run(Misspelt, {"topic": "x"})
    message = caught.value.errors[0].message
    assert "no model host serves 'fake-smal' (did you mean 'fake-small'?); known models:" in message


def test_an_engine_without_hosts_says_how_to_give_it_some(system: System, tmp_path: Path) -> None:
    """No model known at all: the error says how an engine is given hosts."""
    with (
        Engine(system, db_path=tmp_path / "runs.db", logging=False) as bare,
        pytest.raises(RunFailedError) as caught,
    ):
        bare.run(Unknown, {"topic": "x"})
    message = caught.value.errors[0].message
    assert "known models: none (pass Engine(fleet=...)" in message


class Pinned(Reactor):
    """Names its host explicitly."""

    topic = Input(str)
    answer = ask("About {topic}?", model="fake-large", host="local")


class PinnedElsewhere(Reactor):
    """Names a host that does not exist."""

    topic = Input(str)
    answer = ask("About {topic}?", model="fake-large", host="nowhere")


def test_ask_with_an_explicit_host_needs_no_mapping(
    system: System, tmp_path: Path, openai: FakeServer
) -> None:
    """ask(..., host="local") reaches that host without Engine(hosts=...)."""
    with Engine(system, db_path=tmp_path / "runs.db", logging=False) as bare:
        answer = bare.run(Pinned, {"topic": "tea"})
    assert answer.host == "local"
    assert answer.content == "[fake-large] simulated answer to: About tea?"


def test_ask_naming_an_unknown_host_fails_naming_it(
    system: System, tmp_path: Path, openai: FakeServer
) -> None:
    """A host name that no actor has: the step fails not_found, naming the host."""
    with (
        Engine(system, db_path=tmp_path / "runs.db", logging=False) as bare,
        pytest.raises(RunFailedError) as caught,
    ):
        bare.run(PinnedElsewhere, {"topic": "tea"})
    error = caught.value.errors[0]
    assert (error.step, error.kind) == ("answer", "not_found")
    assert "nowhere" in error.message


def test_a_model_the_server_does_not_have_fails_not_found(
    system: System, tmp_path: Path, openai: FakeServer
) -> None:
    """Mapped to a host that lacks it: the server's 404 fails the step (not retried)."""
    with Engine(
        system, db_path=tmp_path / "runs.db", logging=False, hosts={"no-such-model": "local"}
    ) as mapped:
        handle = mapped.start(Unknown, {"topic": "x"})
        with pytest.raises(RunFailedError) as caught:
            handle.result(10)
        assert caught.value.errors[0].kind == "not_found"
        started = [e for e in mapped.history(handle.run_id) if isinstance(e, StepStarted)]
    assert len(started) == 1


def test_ask_against_an_ollama_server(system: System, tmp_path: Path) -> None:
    """The same reactor runs against Ollama's native protocol."""
    with FakeServer("ollama", models=["fake-small", "fake-large"]) as ollama:
        start_host(system, host_settings(ollama, "ollama"), name="ollama")
        hosts = {"fake-small": "ollama", "fake-large": "ollama"}
        with Engine(system, db_path=tmp_path / "runs.db", logging=False, hosts=hosts) as engine:
            ollama.inject(Fault(status=429, model="fake-large", times=1))
            brief = engine.run(Briefing, {"topic": "tides"})
        assert brief["for"] == "[fake-small] simulated answer to: Why is tides promising?"
        assert brief["against"] == "[fake-large] simulated answer to: Why might tides fail?"
        assert {c.path for c in ollama.calls} == {"/api/chat"}
        assert prompts(ollama)["fake-large"] == ["Why might tides fail?"] * 2


def test_ask_through_a_fleet_of_fakes(system: System, tmp_path: Path) -> None:
    """Engine(fleet=...) finds a host for each model from the fleet's inventories."""
    config = Config.model_validate(
        {"discovery": {"enabled": False, "default_ports": False}, "resources": {"nvml": False}}
    )
    fleet = start_fleet(system, config, discovery=False, fallback=fake_servers)
    try:
        assert fleet.is_simulated
        with Engine(system, db_path=tmp_path / "runs.db", logging=False, fleet=fleet) as engine:
            brief = engine.run(Briefing, {"topic": "kites"})
        assert brief["for"] == "[fake-small] simulated answer to: Why is kites promising?"
        assert brief["models"] == ["fake-small", "fake-large"]
    finally:
        fleet.close()
