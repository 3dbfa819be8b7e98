"""Start every model host from configuration (and discovery), with a ResourceMonitor.

:func:`start_fleet` is what an application (the daemon, the demo, a user's own service)
calls once after starting its :class:`~actors.System`:

1. the configuration is loaded (:func:`~actors.load_config`) unless one is given;
2. each configured host becomes a ModelHost; a host without a ``protocol`` is probed
   to recognise its server;
3. when discovery is on, the default local ports and ``discovery.urls`` are probed, and
   every server that answers and is not configured already becomes a host too, named
   after its kind (``lmstudio``, ``ollama``, ``llamacpp``, ``vllm``, ...);
4. with a ``fallback`` and no host at all, the fallback starts stand-in servers
   instead (``actors.testing.fake_servers`` starts the built-in fakes; the result says
   so: ``Fleet.simulated``);
5. one ResourceMonitor watches them all and admits models before they are loaded;
6. a :class:`~actors.llm.Catalog` is filled from every host's inventory and prices, and a
   ``catalog`` watcher keeps it current from the bus (loads, unloads, breakers, memory,
   hosts added later with :class:`~actors.llm.HostAdded`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import structlog

from actors import Ref
from actors.llm._catalog import Catalog, CatalogWatcher
from actors.llm._config import Config, HostConfig, HostProtocol, load_config, mask_url
from actors.llm._discovery import DEFAULT_ENDPOINTS, SERVER_PROTOCOL, discover, probe
from actors.llm._host import HostMessage, ModelHost
from actors.llm._messages import HostInventory, InventoryQuery
from actors.llm.resources import RegisterHost, ResourceMonitor
from actors.lowlevel import check_may_block

if TYPE_CHECKING:
    from actors import System

__all__ = ["Fleet", "StandIn", "start_fleet", "start_fleet_async"]

_log = structlog.get_logger("actors.llm.fleet")


class StandIn(Protocol):
    """A server started because no real one was found (a fake of :mod:`actors.testing`)."""

    @property
    def url(self) -> str:
        """Its base URL."""
        ...

    def stop(self) -> None:
        """Stop serving."""
        ...


Fallback = Callable[[], Mapping[HostProtocol, StandIn]]
"""Starts stand-in servers, by the protocol each speaks (``actors.testing.fake_servers``)."""


@dataclass
class Fleet:
    """The model hosts an application runs, and how they were found.

    Attributes:
        hosts: Host name -> its ModelHost.
        monitor: The ResourceMonitor.
        inventories: What was found for each host when it started (discovered or probed).
        simulated: Fake servers started because no real one was found (stopped by
            :meth:`close`); empty when every host is real.
        warnings: One line per problem found at start, naming the host (also logged).
        catalog: Which model is where, kept current by the ``catalog`` watcher.
        config: The configuration the fleet was started with.
    """

    hosts: dict[str, Ref[HostMessage]] = field(default_factory=dict)
    monitor: Ref[Any] | None = None
    inventories: dict[str, HostInventory] = field(default_factory=dict)
    simulated: list[StandIn] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Problems worth telling the user at start (an ``api_key_env`` that is not set)."""
    catalog: Catalog = field(default_factory=Catalog)
    config: Config = field(default_factory=Config)

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

    async def close_async(self) -> None:
        """:meth:`close` for asyncio code (stopping a fake server joins its thread)."""
        await asyncio.to_thread(self.close)


async def _survey(config: Config, discovery: bool) -> tuple[dict[str, HostInventory], list[str]]:
    """Probe configured hosts without a protocol, and discover the rest."""
    found: dict[str, HostInventory] = {}
    problems: list[str] = []
    unknown = {n: h for n, h in config.hosts.items() if h.protocol is None}
    probes = await asyncio.gather(
        *(
            probe(
                h.url,
                timeout=config.discovery.timeout_s,
                api_key=h.resolved_api_key(),
                tls=h.tls_context(),
                proxy=h.proxy_url(),
            )
            for h in unknown.values()
        )
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
    fallback: Fallback | None = None,
) -> Fleet:
    """Start the model hosts (and a ResourceMonitor) that the configuration describes.

    Args:
        system: A running System.
        config: The configuration (default: :func:`~actors.load_config`).
        discovery: Probe the default local ports and ``discovery.urls`` for more servers.
        fallback: Starts stand-in servers when no host is found, so that everything
            still runs offline (``actors.testing.fake_servers``: OpenAI-compatible and
            Ollama fakes); each becomes the host ``simulated-<protocol>``.

    For sync code: it probes with ``asyncio.run`` and waits for the hosts. Asyncio code
    awaits :func:`start_fleet_async` instead.

    Raises:
        ValueError: A configured host has no protocol and could not be recognised.
        BlockingCallError: Called on a running event loop.
    """
    check_may_block("start_fleet()", "`await start_fleet_async(...)`")
    config = config or load_config()
    found, problems = asyncio.run(_survey(config, discovery))
    hosts, fleet = _plan(config, found, problems)
    if not hosts and fallback is not None:
        _add_stand_ins(config, hosts, fleet, fallback())
    fleet.monitor = system.spawn(ResourceMonitor, name="resources", kwargs=_monitor_args(config))
    for name, settings in hosts.items():
        ref = system.spawn(
            ModelHost, name=name, args=(settings,), kwargs=_host_args(fleet, found, name)
        )
        _register(fleet, name, ref)
    fleet.catalog.watch(system)
    for name in hosts:
        if name not in fleet.inventories:
            fleet.inventories[name] = fleet.hosts[name].ask(InventoryQuery())
    _catalogue(fleet, hosts)
    return fleet


async def start_fleet_async(
    system: System,
    config: Config | None = None,
    *,
    discovery: bool = True,
    fallback: Fallback | None = None,
) -> Fleet:
    """:func:`start_fleet` for asyncio code: nothing it does blocks the caller's loop.

    The probes run on the caller's loop; the hosts are spawned and asked for their
    inventories with awaits; stand-in servers (which start threads) are started in a
    worker thread.
    """
    if config is None:
        config = await asyncio.to_thread(load_config)
    found, problems = await _survey(config, discovery)
    hosts, fleet = _plan(config, found, problems)
    if not hosts and fallback is not None:
        _add_stand_ins(config, hosts, fleet, await asyncio.to_thread(fallback))
    fleet.monitor = await system.spawn_async(
        ResourceMonitor, name="resources", kwargs=_monitor_args(config)
    )
    for name, settings in hosts.items():
        ref = await system.spawn_async(
            ModelHost, name=name, args=(settings,), kwargs=_host_args(fleet, found, name)
        )
        _register(fleet, name, ref)
    missing = [name for name in hosts if name not in fleet.inventories]
    answers = await asyncio.gather(*(fleet.hosts[n].ask_async(InventoryQuery()) for n in missing))
    fleet.inventories.update(zip(missing, answers, strict=True))
    await system.spawn_async(CatalogWatcher, name="catalog", args=(fleet.catalog, 60.0))
    _catalogue(fleet, hosts)
    return fleet


def _plan(
    config: Config, found: dict[str, HostInventory], problems: list[str]
) -> tuple[dict[str, HostConfig], Fleet]:
    """Each host's settings (configured, then discovered), and the fleet to fill in."""
    if problems:
        raise ValueError("; ".join(problems))
    fleet = Fleet(catalog=Catalog(config), config=config)
    hosts: dict[str, HostConfig] = {}
    for name, host in config.hosts.items():
        protocol = host.protocol or SERVER_PROTOCOL[found[name].server]
        kind = host.server or (found[name].server if name in found else None)
        hosts[name] = config.host(name, protocol=protocol, server=kind)
        missing = host.missing_api_key_env()
        if missing is not None:
            warning = (
                f"host {name!r} ({mask_url(host.url)}): api_key_env names {missing}, "
                "which is not set; its requests go without a key"
            )
            fleet.warnings.append(warning)
            _log.warning("api_key_env is not set", host=name, variable=missing)
    for name, inventory in found.items():
        fleet.inventories[name] = inventory
        if name not in config.hosts:
            host = HostConfig(url=inventory.url)
            hosts[name] = config.host(
                name, host, protocol=inventory.provider, server=inventory.server or None
            )
    return hosts, fleet


def _add_stand_ins(
    config: Config,
    hosts: dict[str, HostConfig],
    fleet: Fleet,
    servers: Mapping[HostProtocol, StandIn],
) -> None:
    for protocol, server in servers.items():
        fleet.simulated.append(server)
        name = f"simulated-{protocol}"
        hosts[name] = config.host(name, HostConfig(url=server.url), protocol=protocol)


def _monitor_args(config: Config) -> dict[str, Any]:
    resources = config.resources
    return {
        "budget_bytes": resources.budget(),
        "poll_s": resources.poll_s,
        "use_nvml": resources.nvml,
    }


def _host_args(fleet: Fleet, found: Mapping[str, HostInventory], name: str) -> dict[str, Any]:
    """A ModelHost's keyword arguments: the monitor, and what the survey found there."""
    return {"monitor": fleet.monitor, "inventory": found.get(name)}


def _register(fleet: Fleet, name: str, ref: Ref[HostMessage]) -> None:
    fleet.hosts[name] = ref
    assert fleet.monitor is not None
    fleet.monitor.tell(RegisterHost(host=name, ref=ref))


def _catalogue(fleet: Fleet, hosts: Mapping[str, HostConfig]) -> None:
    """Enter every host's inventory into the fleet's catalog (which model is where)."""
    for name, settings in hosts.items():
        inventory = fleet.inventories[name]
        if not inventory.provider:
            inventory = msgspec.structs.replace(inventory, provider=settings.protocol or "")
        fleet.catalog.add_host(name, inventory, prices=settings.prices)
