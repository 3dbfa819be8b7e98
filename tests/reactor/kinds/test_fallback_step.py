"""The ``fallback`` step and budgets in runs: an Engine, real ModelHosts and a fake server.

A chain written in the reactor, or configured by name, answers with its provenance; a
budget configured on the engine refuses an ``ask`` before its request is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import System
from actors.llm import Config, HostConfig, start_fleet
from actors.orchestration import FallbackResult, link
from actors.testing import FakeServer, Fault
from dsl import Input, Reactor, ask, fallback, step
from reactor.app import Engine
from reactor.run import RunFailedError
from tests.support.hosts import start_host
from tests.support.local import asked, local_engine


@pytest.fixture
def server(system: System) -> Iterator[FakeServer]:
    """A fake OpenAI server with two models, behind a host ``local``."""
    with FakeServer("openai", models=["primary", "backup"]) as fake:
        start_host(system, HostConfig(url=fake.url, protocol="openai", timeout_s=5.0))
        yield fake


def engine_for(system: System, tmp_path: Path, config: Config | None = None) -> Engine:
    """An engine whose models are all on ``local``."""
    return local_engine(system, tmp_path, ["primary", "backup"], config=config)


class Answer(Reactor):
    """Ask a chain; a step reads the answer and the link that gave it."""

    question = Input(str)
    reply = fallback(
        "Answer: {question}", chain=["primary", link("backup")], name="inline", backoff=0
    )

    @step
    def summary(reply: FallbackResult) -> dict[str, Any]:
        return {
            "text": reply.content,
            "link": reply.link,
            "path": [(a.link, a.outcome) for a in reply.attempts],
        }


def test_a_fallback_step_answers_from_the_next_link(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """The first model fails with a 500; the step's result comes from the second."""
    server.inject(Fault(status=500, model="primary"))
    with engine_for(system, tmp_path) as engine:
        result = engine.run(Answer, {"question": "why?"})
    assert result["link"] == "backup"
    assert result["path"] == [("primary", "server_error"), ("backup", "ok")]
    assert result["text"].startswith("[backup]")
    assert asked(server) == ["primary", "backup"]


class Walked(Reactor):
    """A chain left at the step's default retries."""

    question = Input(str)
    once = fallback("{question}", chain=["primary", "backup"], name="once", backoff_s=0)


class WalkedTwice(Reactor):
    """The same chain, walked a second time when the first walk fails (``max_retries=1``)."""

    question = Input(str)
    twice = fallback(
        "{question}", chain=["primary", "backup"], name="twice", backoff_s=0, max_retries=1
    )


def test_a_failed_chain_is_not_walked_again_by_the_step(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """The chain is the retry loop: a fallback step's max_retries defaults to 0.

    Both links answer 500 (retryable): the step fails after one walk, each link asked
    once, where a step's usual 3 retries would have walked the chain 4 times.
    """
    server.inject(Fault(status=500, times=None))
    with engine_for(system, tmp_path) as engine:
        with pytest.raises(RunFailedError) as caught:
            engine.run(Walked, {"question": "why?"})
        assert asked(server) == ["primary", "backup"]
        (error,) = caught.value.errors
        assert error.step == "once"
        server.calls.clear()
        with pytest.raises(RunFailedError):
            engine.run(WalkedTwice, {"question": "why?"})
    assert asked(server) == ["primary", "backup"] * 2


class RetriesFirst(Reactor):
    """A chain that retries a server error on the same link before moving on."""

    question = Input(str)
    reply = fallback(
        "{question}",
        chain=["primary", "backup"],
        name="retrying",
        on={"server_error": "retry"},
        retries=2,
        backoff_s=0,
    )


def test_a_link_the_server_says_not_to_retry_is_passed_at_once(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """``x-should-retry: false``: the chain moves on instead of retrying the link."""
    server.inject(Fault(status=500, model="primary", times=None, should_retry=False))
    with engine_for(system, tmp_path) as engine:
        result: FallbackResult = engine.run(RetriesFirst, {"question": "why?"})
    assert result.link == "backup"
    assert asked(server) == ["primary", "backup"]
    (passed, _) = result.attempts
    assert (passed.outcome, passed.action) == ("server_error", "next")
    assert "the server said not to retry it" in passed.why


class Named(Reactor):
    """A chain configured by name."""

    question = Input(str)
    reply = fallback("{question}", chain="cheap-first")


def test_a_configured_chain_is_found_by_name(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """``[fallback.chains.cheap-first]`` from the configuration drives the step."""
    config = Config.model_validate(
        {"fallback": {"chains": {"cheap-first": {"links": ["backup", "primary"]}}}}
    )
    server.inject(Fault(status=503, model="backup"))
    with engine_for(system, tmp_path, config) as engine:
        result: FallbackResult = engine.run(Named, {"question": "hi"})
    assert result.link == "primary"
    assert result.chain == "cheap-first"


def test_an_unknown_chain_fails_the_step_naming_the_known_ones(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """No chain of that name: the run fails not_found, listing the configured chains."""
    config = Config.model_validate({"fallback": {"chains": {"other": {"links": ["backup"]}}}})
    with engine_for(system, tmp_path, config) as engine, pytest.raises(RunFailedError) as caught:
        engine.run(Named, {"question": "hi"})
    (error,) = caught.value.errors
    assert error.kind == "not_found"
    assert "chains: other" in error.message


def test_chain_rules_go_with_the_chain_not_a_configured_name() -> None:
    """Rules given beside a configured chain's name are refused where the step is written."""
    with pytest.raises(ValueError, match="keeps its own rules"):
        fallback("x", chain="cloud", retries=3)
    with pytest.raises(ValueError, match="not retry, next or stop"):
        fallback("x", chain=["a"], on={"timeout": "panic"})  # type: ignore[dict-item]


class Costly(Reactor):
    """One ask with a large output limit."""

    question = Input(str)
    reply = ask("{question}", model="primary", max_tokens=1000, backoff=0)


def test_an_ask_over_budget_fails_before_its_request_is_sent(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """$1 per 1000 output tokens, a $0.50 run budget: refused, and the server never asked."""
    config = Config.model_validate(
        {
            "prices": {"primary": {"input_per_mtok": 0, "output_per_mtok": 1000}},
            "budgets": {"limits": [{"scope": "run", "usd": 0.5}]},
        }
    )
    with engine_for(system, tmp_path, config) as engine, pytest.raises(RunFailedError) as caught:
        engine.run(Costly, {"question": "hi"})
    (error,) = caught.value.errors
    assert error.kind == "budget_exceeded"
    assert "run budget" in error.message
    assert asked(server) == []


def test_an_ask_within_budget_is_sent_and_its_spend_kept(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """Within the budget the ask runs; its cost is in the spend table, under its run."""
    config = Config.model_validate(
        {
            "prices": {"primary": {"input_per_mtok": 0, "output_per_mtok": 1000}},
            "budgets": {"limits": [{"scope": "global", "usd": 5, "period": "1d"}]},
        }
    )
    with engine_for(system, tmp_path, config) as engine:
        handle = engine.start(Costly, {"question": "hi"})
        handle.result(10)
        rows: list[Any] = []
        while not rows:  # the settle is one-way; its row follows in the next commit
            rows = engine.journal.query("SELECT run_id, reactor, model, cost_usd FROM spend")
    ((run_id, reactor_name, model, cost),) = rows
    assert (run_id, reactor_name, model) == (handle.run_id, "Costly", "primary")
    assert isinstance(cost, float)
    assert cost > 0


def test_the_fallback_step_is_drawn_as_a_trapezoid() -> None:
    """The Mermaid diagram marks a fallback step with its own shape."""
    assert "reply[/" in Answer.to_mermaid()


class Templated(Reactor):
    """A chain whose first link is the input's model."""

    first = Input(str)
    reply = fallback("hello", chain=["{first}", "backup"])


def test_link_templates_are_filled_from_the_arguments(
    system: System, tmp_path: Path, server: FakeServer
) -> None:
    """``"{first}"`` names a model per run; each filling shares one actor across runs."""
    server.inject(Fault(status=500, model="primary"))
    with engine_for(system, tmp_path) as engine:
        first: FallbackResult = engine.run(Templated, {"first": "primary"})
        again: FallbackResult = engine.run(Templated, {"first": "backup"})
    assert [a.link for a in first.attempts] == ["primary", "backup"]
    assert again.link == "backup"
    assert asked(server) == ["primary", "backup", "backup"]


class LocalThenAuto(Reactor):
    """A fixed local link first, then whatever the Selector picks."""

    question = Input(str)
    reply = fallback("{question}", chain=["local/small", "auto:steady"])


def test_an_auto_link_lets_the_selector_choose(system: System, tmp_path: Path) -> None:
    """The local model fails; the ``auto:steady`` link asks the Selector, which picks 'large'.

    The fleet's configuration also brings its budgets: the call is admitted and its
    spend recorded under the run.
    """
    with (
        FakeServer("ollama", models=["small"]) as ollama,
        FakeServer("openai", models=["large"]) as openai,
    ):
        config = Config.model_validate(
            {
                "discovery": {"enabled": False},
                "resources": {"nvml": False},
                "hosts": {
                    "local": {"url": ollama.url, "protocol": "ollama"},
                    "cloud": {"url": openai.url, "protocol": "openai"},
                },
                "prices": {
                    "cloud/large": {"input_per_mtok": 3, "output_per_mtok": 15},
                    "local/small": {"per_gpu_second": 0.001},
                },
                "models": {"large": {"tier": 3}, "small": {"tier": 1}},
                "selection": {"policies": {"steady": {"kind": "best", "explore": False}}},
                "budgets": {"limits": [{"scope": "global", "usd": 10, "period": "1d"}]},
            }
        )
        fleet = start_fleet(system, config)
        ollama.inject(Fault(status=500, times=None))
        with Engine(system, db_path=tmp_path / "runs.db", logging=False, fleet=fleet) as engine:
            result: FallbackResult = engine.run(LocalThenAuto, {"question": "hi"})
            assert engine.budget is not None
        fleet.close()
    assert [(a.link, a.outcome) for a in result.attempts] == [
        ("local/small", "server_error"),
        ("auto:steady", "ok"),
    ]
    assert result.completion.model == "large"
