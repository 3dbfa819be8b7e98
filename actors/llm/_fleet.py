"""Start every model host from configuration (and discovery), with a ResourceMonitor.

:func:`start_fleet` is what an application (the daemon, the demo, a user's own service)
calls once after starting its :class:`~actors.System`:

1. the configuration is loaded (:func:`~actors.load_config`) unless one is given;
2. each configured host becomes a ModelHost; a host without a ``protocol`` is probed
   to recognise its server;
3. when discovery is on, the default local ports and ``discovery.urls`` are probed, and
   every server that answers and is not configured already becomes a host too, named
   after its kind (``lmstudio``, ``ollama``, ``llamacpp``, ``vllm``, ...);
4. with ``fallback="fakes"`` and no host at all, built-in fake servers are started
   instead (the result says so: ``Fleet.simulated``);
5. one ResourceMonitor watches them all and admits models before they are loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from actors import Ref
from actors.llm._breaker import BreakerSettings
from actors.llm._config import BreakerConfig, Config, HostConfig, load_config
from actors.llm._discovery import DEFAULT_ENDPOINTS, SERVER_PROTOCOL, discover, probe
from actors.llm._host import HostMessage, HostSettings, Price
from actors.llm._messages import HostInventory, InventoryQuery
from actors.llm.providers import Timeouts
from actors.llm.resources import RegisterHost, ResourceMonitor

if TYPE_CHECKING:
    from actors import System
    from actors.testing import FakeServer

__all__ = ["Fleet", "breaker_settings", "host_settings", "start_fleet"]


@dataclass
class Fleet:
    """The model hosts an application runs, and how they were found.

    Attributes:
        hosts: Host name -> its ModelHost.
        monitor: The ResourceMonitor.
        inventories: What was found for each host when it started (discovered or probed).
        simulated: Fake servers started because no real one was found (stopped by
            :meth:`close`); empty when every host is real.
    """

    hosts: dict[str, Ref[HostMessage]] = field(default_factory=dict)
    monitor: Ref[Any] | None = None
    inventories: dict[str, HostInventory] = field(default_factory=dict)
    simulated: list[FakeServer] = field(default_factory=list)

    @property
    def is_simulated(self) -> bool:
        """Whether the hosts are the built-in fake servers."""
        return bool(self.simulated)

    def models(self) -> list[tuple[str, str]]:
        """Every (host, chat model) found when the fleet started."""
        return [
            (host, m.id)
            for host, inv in self.inventories.items()
            for m in inv.models
            if "chat" in m.capabilities
        ]

    def close(self) -> None:
        """Stop the fake servers, if any were started (the System stops the actors)."""
        for server in self.simulated:
            server.stop()
        self.simulated.clear()


def breaker_settings(config: BreakerConfig) -> BreakerSettings:
    """The breaker settings a configuration section describes."""
    return BreakerSettings(
        failure_threshold=config.failure_threshold,
        failure_rate=config.failure_rate,
        window=config.window,
        min_calls=config.min_calls,
        open_s=config.open_s,
        max_open_s=config.max_open_s,
        backoff=config.backoff,
        half_open_probes=config.half_open_probes,
        counted=frozenset(config.counted),
    )


def host_settings(config: Config, name: str, host: HostConfig, protocol: str) -> HostSettings:
    """The settings of one ModelHost, from its section and the global ones."""
    prices: dict[str, Price] = {}
    for key, price in config.prices.items():
        owner, _, model = key.rpartition("/")
        as_price = Price(input_per_mtok=price.input_per_mtok, output_per_mtok=price.output_per_mtok)
        if owner == name:
            prices[model] = as_price  # "host/model" wins over a bare "model"
        elif not owner:
            prices.setdefault(key, as_price)
    return HostSettings(
        name=name,
        url=host.url,
        protocol=protocol,
        api_key=host.resolved_api_key(),
        headers=dict(host.headers),
        max_parallel=host.max_parallel,
        queue_limit=host.queue_limit,
        timeouts=Timeouts(
            connect=host.connect_timeout_s,
            read=host.timeout_s,
            stream_idle=host.stream_idle_timeout_s,
        ),
        breaker=breaker_settings(config.breaker_for(name)),
        prices=prices,
        models=tuple(host.models),
    )


async def _survey(config: Config, discovery: bool) -> tuple[dict[str, HostInventory], list[str]]:
    """Probe configured hosts without a protocol, and discover the rest."""
    found: dict[str, HostInventory] = {}
    problems: list[str] = []
    unknown = {n: h for n, h in config.hosts.items() if h.protocol is None}
    probes = await asyncio.gather(
        *(probe(h.url, timeout=config.discovery.timeout_s) for h in unknown.values())
    )
    for (name, host), inventory in zip(unknown.items(), probes, strict=True):
        if not inventory.server:
            problems.append(
                f"hosts.{name}: no protocol configured and {host.url} could not be recognised "
                f"({inventory.error}); set hosts.{name}.protocol"
            )
            continue
        found[name] = inventory
    if discovery and config.discovery.enabled:
        configured = {h.url.rstrip("/") for h in config.hosts.values()}
        wanted = [*config.discovery.urls]
        if config.discovery.default_ports:
            wanted += DEFAULT_ENDPOINTS
        extra = await discover(
            [u for u in wanted if u.rstrip("/") not in configured],
            default_ports=False,
            timeout=config.discovery.timeout_s,
            reachable_only=True,
        )
        for inventory in extra:
            if not inventory.server:
                continue
            name = inventory.server
            suffix = 2
            while name in config.hosts or name in found:
                name = f"{inventory.server}{suffix}"
                suffix += 1
            found[name] = inventory
    return found, problems


def start_fleet(
    system: System,
    config: Config | None = None,
    *,
    discovery: bool = True,
    fallback: Literal["fakes"] | None = None,
    fake_models: Sequence[str] = ("fake-small", "fake-large"),
) -> Fleet:
    """Start the model hosts (and a ResourceMonitor) that the configuration describes.

    Args:
        system: A running System.
        config: The configuration (default: :func:`~actors.load_config`).
        discovery: Probe the default local ports and ``discovery.urls`` for more servers.
        fallback: ``"fakes"`` starts built-in fake servers (OpenAI-compatible and
            Ollama) when no host is found, so that everything still runs offline.
        fake_models: The fake servers' models.

    Call it from sync code (it probes with ``asyncio.run`` and asks the hosts for their
    inventories); from asyncio code, run it in a worker thread.

    Raises:
        ValueError: A configured host has no protocol and could not be recognised.
    """
    config = config or load_config()
    found, problems = asyncio.run(_survey(config, discovery))
    if problems:
        raise ValueError("; ".join(problems))
    fleet = Fleet()
    settings: list[HostSettings] = []
    for name, host in config.hosts.items():
        protocol = host.protocol or SERVER_PROTOCOL[found[name].server]
        settings.append(host_settings(config, name, host, protocol))
    for name, inventory in found.items():
        fleet.inventories[name] = inventory
        if name not in config.hosts:
            host = HostConfig(url=inventory.url)
            settings.append(host_settings(config, name, host, inventory.provider))
    if not settings and fallback == "fakes":
        from actors.testing import FakeServer  # noqa: PLC0415 - only when falling back

        for kind in ("openai", "ollama"):
            server = FakeServer(kind, models=list(fake_models)).start()
            fleet.simulated.append(server)
            name = f"simulated-{kind}"
            settings.append(host_settings(config, name, HostConfig(url=server.url), kind))
    resources = config.resources
    fleet.monitor = system.spawn(
        ResourceMonitor,
        name="resources",
        kwargs={
            "budget_bytes": resources.budget(),
            "poll_s": resources.poll_s,
            "use_nvml": resources.nvml,
        },
    )
    for entry in settings:
        ref = system.add_host(entry, monitor=fleet.monitor)
        fleet.hosts[entry.name] = ref
        fleet.monitor.tell(RegisterHost(host=entry.name, ref=ref))
    for entry in settings:
        if entry.name not in fleet.inventories:
            fleet.inventories[entry.name] = fleet.hosts[entry.name].ask(InventoryQuery())
    return fleet
