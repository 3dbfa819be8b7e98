"""The model catalog: filled from the fleet's hosts, kept current from bus events, names resolved.

Real fake servers over loopback HTTP and real ModelHost actors; the catalog follows what
they publish (loads, breakers) without being told.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors import AskError, System
from actors.llm import (
    BreakerState,
    Catalog,
    Config,
    ConfigError,
    HostAdded,
    HostConfig,
    HostInventory,
    InventoryQuery,
    LoadModel,
    ModelConfig,
    ModelInfo,
    RefreshCatalog,
    ResourceSnapshot,
    UnloadModel,
    load_config,
    start_fleet,
)
from actors.testing import FakeModel, FakeServer, Fault
from tests.support.hosts import chat, start_host

GB = 1_000_000_000


def config(**sections: object) -> Config:
    base: dict[str, object] = {"discovery": {"enabled": False}, "resources": {"nvml": False}}
    base.update(sections)
    return Config.model_validate(base)


@pytest.fixture
def servers() -> Iterator[tuple[FakeServer, FakeServer]]:
    ollama_models = [
        FakeModel("llama3.2", context_length=4096),
        FakeModel("qwen2.5", loaded=False, size_bytes=8 * GB, context_length=32768),
    ]
    with (
        FakeServer("ollama", models=ollama_models) as ollama,
        FakeServer("openai", models=["llama3.2", "meta/llama-70b"]) as openai,
    ):
        yield ollama, openai


def start(system: System, ollama: FakeServer, openai: FakeServer, **extra: object) -> Catalog:
    cfg = config(
        hosts={
            "local": {"url": ollama.url, "protocol": "ollama", "breaker": {"failure_threshold": 1}},
            "cloud": {
                "url": openai.url,
                "protocol": "openai",
                "context_windows": {"meta/llama-70b": 65536},
            },
        },
        prices={"cloud/llama3.2": {"input_per_mtok": 0.5, "output_per_mtok": 1.5}},
        **extra,
    )
    return start_fleet(system, cfg).catalog


def test_the_fleet_fills_the_catalog_with_every_host_model_and_price(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """Each host's models appear with context, loaded state, capabilities and price."""
    catalog = start(system, *servers)
    assert catalog.hosts() == ("cloud", "local")
    local = catalog.get("local", "qwen2.5")
    assert local is not None
    assert local.loaded is False
    assert catalog.resolve("local/llama3.2").context_length == 4096
    assert local.size_bytes == 8 * GB
    assert local.provider == "ollama"
    assert "json" in local.capabilities
    cloud = catalog.get("cloud", "llama3.2")
    assert cloud is not None
    assert cloud.price is not None
    assert cloud.price.output_per_mtok == 1.5
    unpriced = catalog.get("local", "llama3.2")
    assert unpriced is not None
    assert unpriced.price is None  # never a silent $0


def test_names_resolve_qualified_bare_with_slash_and_by_alias(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """``host/model`` picks one host; a bare name every host; an alias what it names."""
    catalog = start(
        system, *servers, aliases={"fast": "local/llama3.2", "any": ["qwen2.5", "meta/llama-70b"]}
    )
    assert [e.qualified for e in catalog.lookup("cloud/llama3.2")] == ["cloud/llama3.2"]
    assert {e.host for e in catalog.lookup("llama3.2")} == {"local", "cloud"}
    assert catalog.resolve("meta/llama-70b").host == "cloud"  # "meta" is no host
    assert catalog.resolve("fast").qualified == "local/llama3.2"
    assert {e.model for e in catalog.lookup("any")} == {"qwen2.5", "meta/llama-70b"}
    with pytest.raises(LookupError, match=r"no model host serves 'gpt-9'.*local/llama3\.2"):
        catalog.resolve("gpt-9")


def test_declared_tier_strengths_and_context_win_over_the_server(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """``[models]`` declarations fill in what servers do not say; the qualified key wins."""
    catalog = start(
        system,
        *servers,
        models={
            "llama3.2": {"tier": 1, "context_length": 2048},
            "cloud/meta/llama-70b": {"tier": 3},
            "cloud/llama3.2": {"tier": 3, "strengths": ["code"], "capabilities": ["chat"]},
        },
    )
    local = catalog.resolve("local/llama3.2")
    cloud = catalog.resolve("cloud/llama3.2")
    assert (local.tier, local.context_length) == (1, 2048)
    assert (cloud.tier, cloud.strengths, cloud.capabilities) == (3, ("code",), frozenset({"chat"}))
    assert not local.fits_context(3000)
    assert cloud.fits_context(3000)
    assert catalog.resolve("meta/llama-70b").context_length == 65536  # the host's window


def test_loads_and_unloads_on_a_host_reach_the_catalog(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """ModelLoadChanged from a real load through Ollama's API updates ``loaded``."""
    catalog = start(system, *servers)
    host = system.lookup("local")
    host.ask(LoadModel(model="qwen2.5"))
    assert catalog.wait_until(lambda c: c.resolve("local/qwen2.5").loaded is True, 10)
    host.ask(UnloadModel(model="qwen2.5"))
    assert catalog.wait_until(lambda c: c.resolve("local/qwen2.5").loaded is False, 10)


def test_an_open_breaker_makes_the_entry_unhealthy_and_ranks_it_last(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """A BreakerTransition to open marks the model unhealthy; bare names rank it last."""
    ollama, openai = servers
    catalog = start(system, ollama, openai)
    ollama.inject(Fault(status=500, model="llama3.2"))
    with pytest.raises(AskError):
        chat(system, "local", "hi", model="llama3.2")
    assert catalog.wait_until(
        lambda c: c.resolve("local/llama3.2").breaker is BreakerState.OPEN, 10
    )
    assert not catalog.resolve("local/llama3.2").healthy
    assert [e.host for e in catalog.lookup("llama3.2")] == ["cloud", "local"]


def test_a_host_added_on_the_bus_joins_and_leaves(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """HostAdded brings a new host's models in (with prices); removed=True forgets them."""
    catalog = start(system, *servers)
    inventory = HostInventory(
        url="http://127.0.0.1:1", provider="anthropic", models=(ModelInfo(id="claude"),)
    )
    system.bus.publish(HostAdded(host="remote", inventory=inventory, prices={"claude": (3, 15)}))
    assert catalog.wait_until(lambda c: c.get("remote", "claude") is not None, 10)
    entry = catalog.resolve("claude")
    assert entry.price is not None
    assert entry.price.input_per_mtok == 3
    assert "json" not in entry.capabilities  # no JSON mode on that protocol
    system.bus.publish(HostAdded(host="remote", removed=True))
    assert catalog.wait_until(lambda c: not c.lookup("claude"), 10)


def test_a_refresh_finds_models_added_on_a_server_and_keeps_breaker_states(
    system: System, servers: tuple[FakeServer, FakeServer]
) -> None:
    """RefreshCatalog asks every host again: a model pulled later appears; state is kept."""
    ollama, openai = servers
    catalog = start(system, ollama, openai)
    catalog.set_breaker("local", "llama3.2", BreakerState.OPEN)
    ollama.add_model(FakeModel("mistral", context_length=8192))
    answer = system.lookup("catalog").ask(RefreshCatalog())
    assert answer.hosts == 2
    # Loaded: /api/ps says the context it is served with (Ollama's default), not 8192.
    assert catalog.resolve("local/mistral").context_length == 4096
    assert catalog.resolve("local/llama3.2").breaker is BreakerState.OPEN
    cloud = catalog.resolve("cloud/llama3.2")
    assert cloud.price is not None  # prices survive a refresh


def test_free_memory_from_snapshots_decides_what_fits(system: System) -> None:
    """A model not loaded fits only what the monitor last reported free; loaded ones always.

    No fleet here, so no ResourceMonitor publishes snapshots of its own meanwhile.
    """
    catalog = Catalog()
    models = (
        ModelInfo(id="llama3.2", loaded=True, size_bytes=2 * GB),
        ModelInfo(id="qwen2.5", loaded=False, size_bytes=8 * GB),
    )
    catalog.add_host("local", HostInventory(url="http://127.0.0.1:1", models=models))
    watcher = catalog.watch(system, refresh_s=None)
    watcher.ask(RefreshCatalog())  # answered once started, hence subscribed to the bus
    assert catalog.fits_memory(catalog.resolve("local/qwen2.5"))  # nothing known: on trust
    system.bus.publish(ResourceSnapshot(free_bytes=4 * GB, budget_bytes=6 * GB))
    assert catalog.wait_until(lambda c: c.free_bytes == 4 * GB, 10)
    assert not catalog.fits_memory(catalog.resolve("local/qwen2.5"))
    assert not catalog.could_fit(catalog.resolve("local/qwen2.5"))  # 8 GB > the 6 GB budget
    assert catalog.fits_memory(catalog.resolve("local/llama3.2"))
    system.bus.publish(ResourceSnapshot(free_bytes=4 * GB, models_bytes={"local/qwen2.5": 8 * GB}))
    assert catalog.wait_until(lambda c: c.resolve("local/qwen2.5").loaded is True, 10)


def test_the_engine_finds_hosts_through_the_catalog(
    system: System, servers: tuple[FakeServer, FakeServer], tmp_path: Path
) -> None:
    """A qualified name reaches that host; a bare one the healthy loaded host."""
    from dsl import Reactor, ask
    from reactor.app import Engine

    ollama, openai = servers
    fleet_catalog = start(system, ollama, openai)

    class Two(Reactor):
        a = ask("hi", model="cloud/llama3.2")
        b = ask("hi", model="qwen2.5")

    with Engine(system, db_path=f"{tmp_path}/runs.db", logging=False, catalog=fleet_catalog) as e:
        result = e.run(Two, {})
    assert result.provider == "ollama"  # the last step's result: qwen2.5 lives on local only
    assert [c.model for c in openai.calls if c.model] == ["llama3.2"]


def test_a_host_added_while_running_serves_the_engine_s_next_steps(
    system: System, servers: tuple[FakeServer, FakeServer], tmp_path: Path
) -> None:
    """No fixed map: a host that joins later (HostAdded) serves its models at once."""
    from dsl import Reactor, ask
    from reactor.app import Engine

    catalog = start(system, *servers)

    class Late(Reactor):
        a = ask("hi", model="gemma")

    with (
        FakeServer("lmstudio", models=["gemma"]) as lmstudio,
        Engine(system, db_path=tmp_path / "runs.db", logging=False, catalog=catalog) as engine,
    ):
        host = start_host(system, HostConfig(url=lmstudio.url, protocol="lmstudio"), name="late")
        inventory = host.ask(InventoryQuery())
        system.bus.publish(HostAdded(host="late", inventory=inventory))
        assert catalog.wait_until(lambda c: bool(c.lookup("gemma")), 10)
        result = engine.run(Late, {})
    assert (result.host, result.model) == ("late", "gemma")


def test_declarations_are_validated_naming_the_field(tmp_path: Path) -> None:
    """A tier out of range, an unknown task type or a bad alias: errors name the field."""
    path = tmp_path / "config.toml"
    path.write_text(
        '[models."llama3.2"]\ntier = 5\nstrengths = ["poetry"]\n[aliases]\n"a b" = "x"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    fields = [where for where, _ in caught.value.problems]
    assert fields == ["models.llama3.2.tier", "models.llama3.2.strengths[0]", "aliases"]
    assert ModelConfig(strengths=("code",)).strengths == ("code",)
