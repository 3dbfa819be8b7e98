"""Hosts from configuration and discovery, the fake fallback, and GPU admission end to end.

Everything here is real: fake servers over loopback HTTP, ModelHost actors, the
ResourceMonitor asking hosts to unload through Ollama's own API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from actors import AskError, FailureKind, System
from actors.llm._config import Config
from actors.llm._fleet import start_fleet
from actors.llm._messages import InventoryQuery
from actors.testing import FakeModel, FakeServer, fake_servers
from tests.support.hosts import chat

GB = 1_000_000_000


def config(**sections: object) -> Config:
    base: dict[str, object] = {"discovery": {"default_ports": False}, "resources": {"nvml": False}}
    base.update(sections)
    return Config.model_validate(base)


@pytest.fixture
def ollama() -> Iterator[FakeServer]:
    with FakeServer("ollama", models=["llama3.2", "qwen2.5"]) as server:
        yield server


def test_configured_hosts_are_probed_and_discovered_ones_added(
    system: System, ollama: FakeServer
) -> None:
    with FakeServer("lmstudio", models=["gemma"]) as lmstudio:
        cfg = config(
            hosts={"mine": {"url": ollama.url}},  # no protocol: recognised by probing
            discovery={"default_ports": False, "urls": [lmstudio.url]},
            prices={"mine/llama3.2": {"input_per_mtok": 1, "output_per_mtok": 1}},
        )
        fleet = start_fleet(system, cfg)
        assert set(fleet.hosts) == {"mine", "lmstudio"}
        assert not fleet.is_simulated
        assert fleet.inventories["mine"].server == "ollama"
        assert ("lmstudio", "gemma") in fleet.models()
        answer = chat(system, "mine", "hi", model="llama3.2")
        assert answer.provider == "ollama"
        assert answer.cost_usd is not None
        assert chat(system, "lmstudio", "hi", model="gemma").provider == "lmstudio"


def test_an_unrecognisable_host_without_protocol_is_an_error_naming_it(system: System) -> None:
    cfg = config(hosts={"ghost": {"url": "http://127.0.0.1:9"}})
    with pytest.raises(ValueError, match=r"hosts\.ghost: no protocol configured"):
        start_fleet(system, cfg)


def test_no_server_found_falls_back_to_fakes_and_says_so(system: System) -> None:
    fleet = start_fleet(system, config(discovery={"enabled": False}), fallback=fake_servers)
    try:
        assert fleet.is_simulated
        assert set(fleet.hosts) == {"simulated-openai", "simulated-ollama"}
        answer = chat(system, "simulated-ollama", "hello", model="fake-small")
        assert "fake-small" in answer.content
    finally:
        fleet.close()


def test_admission_unloads_the_least_recently_used_idle_model(system: System) -> None:
    models = [
        FakeModel("old", loaded=True, size_bytes=6 * GB),
        FakeModel("recent", loaded=True, size_bytes=6 * GB),
        FakeModel("new", loaded=False, size_bytes=6 * GB),
        FakeModel("huge", loaded=False, size_bytes=40 * GB),
    ]
    with FakeServer("ollama", models=models) as server:
        cfg = config(
            hosts={"gpu": {"url": server.url, "protocol": "ollama"}},
            resources={"nvml": False, "budget_bytes": 14 * GB, "poll_s": 0.2},
        )
        fleet = start_fleet(system, cfg)
        chat(system, "gpu", "a", model="old")
        time.sleep(0.01)
        chat(system, "gpu", "b", model="recent")
        system.lookup("gpu").ask(InventoryQuery(refresh=True))
        answer = chat(system, "gpu", "c", model="new", timeout=10)
        assert answer.content
        assert not server.models["old"].loaded  # unloaded through /api/chat keep_alive 0
        assert server.models["recent"].loaded
        assert server.models["new"].loaded
        with pytest.raises(AskError) as caught:
            chat(system, "gpu", "d", model="huge", timeout=10)
        assert caught.value.kind is FailureKind.INSUFFICIENT_MEMORY
        assert "huge" in caught.value.failure.message
        assert fleet.monitor is not None


def test_an_unset_api_key_env_is_a_warning_naming_the_host(
    system: System, ollama: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host whose api_key_env variable is not set still starts, with a warning naming it."""
    monkeypatch.delenv("REACTOR_TEST_NO_SUCH_KEY", raising=False)
    cfg = config(
        hosts={
            "keyless": {
                "url": ollama.url,
                "protocol": "ollama",
                "api_key_env": "REACTOR_TEST_NO_SUCH_KEY",
            },
        },
        discovery={"enabled": False},
    )
    fleet = start_fleet(system, cfg)
    assert fleet.warnings == [
        f"host 'keyless' ({ollama.url}): api_key_env names REACTOR_TEST_NO_SUCH_KEY, "
        "which is not set; its requests go without a key"
    ]
    monkeypatch.setenv("REACTOR_TEST_NO_SUCH_KEY", "k")
    system.stop()
    system.start()
    assert start_fleet(system, cfg).warnings == []
