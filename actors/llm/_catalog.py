"""The model catalog: which models exist, on which hosts, and what each can do now.

One :class:`Catalog` per application (the fleet builds it, :func:`~actors.start_fleet`).
It answers, without a message round trip, the questions every router asks before a
call: which hosts serve a model, whether it is loaded, its context window, its
capabilities, its price, its declared tier, whether its breaker is open, and whether it
fits the GPU memory that is free.

Names: ``host/model`` names one model on one host; a bare ``model`` names it on every
host that serves it; an alias (``[aliases]`` in the configuration) stands for one or
more names. Model ids may hold a ``/`` themselves (``meta-llama/Llama-3``): a name is
qualified only when what precedes its first ``/`` is a known host.

Kept current by a :class:`CatalogWatcher` actor, which follows the event bus:

* :class:`~actors.llm.HostAdded`: a host joined (its inventory) or left;
* :class:`~actors.llm.ModelLoadChanged`: a model was loaded or unloaded;
* :class:`~actors.llm.BreakerTransition`: a model's breaker opened, half-opened, closed;
* :class:`~actors.llm.ResourceSnapshot`: what GPU memory is free, which models are resident;

and asks every host for its inventory every minute (or on :class:`RefreshCatalog`), so
that a model pulled onto a server after start becomes a candidate.

Reads are lock-free and cheap (a router reads it on every request): the state is an
immutable snapshot that each update replaces whole; updates are serialised by a lock.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, assert_never

from actors import ActorNotFound, Deferred, Failure, LoopActor, Message, Request, Subscription
from actors.llm._config import Config, ModelConfig, PriceConfig
from actors.llm._messages import (
    BreakerState,
    BreakerTransition,
    HostAdded,
    HostInventory,
    InventoryQuery,
    ModelInfo,
    ModelLoadChanged,
    ResourceSnapshot,
)

if TYPE_CHECKING:
    from actors import Ref, System
    from actors.lowlevel import TimerHandle

__all__ = [
    "JSON_PROTOCOLS",
    "Catalog",
    "CatalogRefreshed",
    "CatalogWatcher",
    "ModelEntry",
    "RefreshCatalog",
]

JSON_PROTOCOLS = frozenset({"openai", "lmstudio", "ollama", "gemini"})
"""Protocols with a JSON output mode: their chat models get the ``json`` capability."""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model on one host, as the catalog knows it now.

    Attributes:
        host: The ModelHost's name.
        model: The model's id, as requests name it.
        provider: The host's wire protocol (``openai``, ``ollama``, ...; "" unknown).
        loaded: Whether it is resident now (``None``: the server cannot say, e.g. cloud).
        context_length: Its context window in tokens (``None``: unknown).
        capabilities: What it can do: ``chat``, ``embeddings``, ``tools``, ``vision``, ``json``.
        price: Its price per million tokens (``None``: no price configured; never 0 by default).
        size_bytes: What it needs in memory to load (``None``: unknown).
        breaker: Its circuit breaker's state on that host.
        tier: Its declared quality tier, 1 to 3 (``None``: not declared).
        strengths: Task types it is declared good at.
        trained_context_length: The context it was trained for, where the server says
            and it differs from ``context_length`` (an Ollama model is served with less
            unless told otherwise): shown, never used to route.
    """

    host: str
    model: str
    provider: str = ""
    loaded: bool | None = None
    context_length: int | None = None
    capabilities: frozenset[str] = frozenset({"chat"})
    price: PriceConfig | None = None
    size_bytes: int | None = None
    breaker: BreakerState = BreakerState.CLOSED
    tier: int | None = None
    strengths: tuple[str, ...] = ()
    trained_context_length: int | None = None
    qualified: str = field(init=False, repr=False, compare=False)
    """``host/model``: the name that picks this entry and no other (made once: selection
    reads it for every candidate of every request)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "qualified", f"{self.host}/{self.model}")

    @property
    def healthy(self) -> bool:
        """Whether its breaker lets requests through (closed, or half-open for a probe)."""
        return self.breaker is not BreakerState.OPEN

    def has(self, capabilities: Iterable[str]) -> bool:
        """Whether it has every one of ``capabilities``."""
        return self.capabilities.issuperset(capabilities)

    def fits_context(self, tokens: int) -> bool:
        """Whether ``tokens`` (prompt plus output) fit its window (unknown: assumed to)."""
        return self.context_length is None or tokens <= self.context_length

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (what ``reactor models --json`` prints)."""
        return {
            "host": self.host,
            "model": self.model,
            "provider": self.provider,
            "loaded": self.loaded,
            "context_length": self.context_length,
            "trained_context_length": self.trained_context_length,
            "capabilities": sorted(self.capabilities),
            "price": None
            if self.price is None
            else {
                "input_per_mtok": self.price.input_per_mtok,
                "output_per_mtok": self.price.output_per_mtok,
                "per_gpu_second": self.price.per_gpu_second,
            },
            "size_bytes": self.size_bytes,
            "breaker": str(self.breaker),
            "healthy": self.healthy,
            "tier": self.tier,
            "strengths": list(self.strengths),
        }


@dataclass(frozen=True, slots=True)
class _State:
    """One immutable version of the catalog (replaced whole on every update)."""

    entries: Mapping[tuple[str, str], ModelEntry] = field(default_factory=dict)
    ordered: tuple[ModelEntry, ...] = ()  # by host, then model
    by_model: Mapping[str, tuple[ModelEntry, ...]] = field(default_factory=dict)
    hosts: Mapping[str, str] = field(default_factory=dict)  # host -> provider
    free_bytes: int | None = None
    budget_bytes: int | None = None
    version: int = 0


def _rank(entry: ModelEntry) -> tuple[int, int, str]:
    """Best first: healthy before open breakers, loaded before not, then by host name."""
    return (0 if entry.healthy else 1, 0 if entry.loaded is not False else 1, entry.host)


class Catalog:
    """Which models are where, with what they can do; read from any thread.

    Args:
        config: Declarations (``[models]``), aliases (``[aliases]``) and prices
            (``[prices]`` and each host's ``prices``) come from it.
        aliases: More aliases (they win over the configuration's).
        declared: More declarations by ``model`` or ``host/model`` (they win too).
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        aliases: Mapping[str, str | Sequence[str]] | None = None,
        declared: Mapping[str, ModelConfig] | None = None,
    ) -> None:
        self._config = config or Config()
        self._aliases: dict[str, tuple[str, ...]] = {}
        for source in (self._config.aliases, aliases or {}):
            for name, target in source.items():
                self._aliases[name] = (target,) if isinstance(target, str) else tuple(target)
        self._declared: dict[str, ModelConfig] = {**self._config.models, **(declared or {})}
        self._host_prices: dict[str, dict[str, PriceConfig]] = {}
        self._changed = threading.Condition()
        self._state = _State()

    # ---- reading ------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Grows by one on every change (a cache keyed on it is never stale)."""
        return self._state.version

    @property
    def free_bytes(self) -> int | None:
        """GPU memory free for models, per the last ResourceMonitor snapshot (``None``: unknown)."""
        return self._state.free_bytes

    def entries(self) -> tuple[ModelEntry, ...]:
        """Every model on every host, by host then model."""
        return self._state.ordered

    def hosts(self) -> tuple[str, ...]:
        """The hosts the catalog knows, by name."""
        return tuple(sorted(self._state.hosts))

    def aliases(self) -> dict[str, tuple[str, ...]]:
        """Every alias and the names it stands for."""
        return dict(self._aliases)

    def wait_until(self, predicate: Callable[[Catalog], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds (checked after each change); ``False`` on timeout.

        For sync code that must see an event's effect (tests, a CLI waiting for a load);
        never call it from an actor or the I/O loop.
        """
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def get(self, host: str, model: str) -> ModelEntry | None:
        """The entry for ``model`` on ``host``, if the catalog knows it."""
        return self._state.entries.get((host, model))

    def lookup(self, name: str) -> tuple[ModelEntry, ...]:
        """Every entry ``name`` stands for, best first (healthy, then loaded).

        ``name`` is ``host/model``, a bare model id, or an alias. Unknown: ``()``.
        """
        return self._lookup(name, self._state, 0)

    def resolve(self, name: str) -> ModelEntry:
        """The best entry for ``name`` (see :meth:`lookup`).

        Raises:
            LookupError: Nothing is called ``name``; the message lists what is.
        """
        found = self.lookup(name)
        if not found:
            raise LookupError(self.unknown(name))
        return found[0]

    def unknown(self, name: str) -> str:
        """The message for a name the catalog does not know, listing what it knows."""
        known = ", ".join(e.qualified for e in self.entries()) or "none"
        aliases = ", ".join(sorted(self._aliases))
        also = f"; aliases: {aliases}" if aliases else ""
        return f"no model host serves {name!r}; known models: {known}{also}"

    @property
    def budget_bytes(self) -> int | None:
        """The GPU memory budget for models, per the last snapshot (``None``: unknown)."""
        return self._state.budget_bytes

    def could_fit(self, entry: ModelEntry) -> bool:
        """Whether ``entry`` fits the whole budget (so: now, or after unloading idle models).

        Loaded models, models of unknown size and an unknown budget: ``True``.
        """
        if entry.loaded is not False or entry.size_bytes is None:
            return True
        budget = self._state.budget_bytes
        return budget is None or entry.size_bytes <= budget

    def fits_memory(self, entry: ModelEntry) -> bool:
        """Whether ``entry`` can run without evicting anything: loaded, or fits what is free.

        A model that is not loaded and of unknown size, or with no known free memory
        (no NVML, a cloud host), is taken on trust, as the ResourceMonitor admits it.
        """
        if entry.loaded is not False or entry.size_bytes is None:
            return True
        free = self._state.free_bytes
        return free is None or entry.size_bytes <= free

    def _lookup(self, name: str, state: _State, depth: int) -> tuple[ModelEntry, ...]:
        head, sep, rest = name.partition("/")
        if sep and head in state.hosts:
            entry = state.entries.get((head, rest))
            if entry is not None:
                return (entry,)
        found = state.by_model.get(name)
        if found:
            return found
        targets = self._aliases.get(name)
        if targets and depth < 8:
            seen: dict[tuple[str, str], ModelEntry] = {}
            for target in targets:
                for entry in self._lookup(target, state, depth + 1):
                    seen.setdefault((entry.host, entry.model), entry)
            return tuple(sorted(seen.values(), key=_rank))
        return ()

    # ---- updating ------------------------------------------------------------------------

    def add_host(
        self,
        host: str,
        inventory: HostInventory,
        *,
        prices: Mapping[str, PriceConfig] | None = None,
    ) -> None:
        """Add a host and its models from its inventory, or refresh them.

        A refresh replaces the host's models (new ones appear, gone ones go) and keeps
        each known model's breaker state.

        Args:
            host: The ModelHost's name.
            inventory: Its models, as the host or discovery found them.
            prices: Prices by model id on that host (default: those given for it before,
                else the configuration's, as :meth:`Config.host` merges them).
        """
        if prices is not None:
            self._host_prices[host] = dict(prices)
        known = self._host_prices.get(host)
        table = known if known is not None else self._prices_for(host)

        def change(state: _State) -> _State:
            provider = inventory.provider or state.hosts.get(host, "")
            made = {}
            for info in inventory.models:
                entry = self._entry(host, provider, info, table.get(info.id))
                before = state.entries.get((host, info.id))
                if before is not None:  # a refresh: the breaker's state is the host's news
                    entry = replace(entry, breaker=before.breaker)
                made[(host, info.id)] = entry
            entries = {k: v for k, v in state.entries.items() if k[0] != host}
            entries.update(made)
            return _rebuild(state, entries, {**state.hosts, host: provider})

        self._update(change)

    def remove_host(self, host: str) -> None:
        """Forget a host and its models."""
        self._host_prices.pop(host, None)

        def change(state: _State) -> _State:
            entries = {k: v for k, v in state.entries.items() if k[0] != host}
            hosts = {h: p for h, p in state.hosts.items() if h != host}
            return _rebuild(state, entries, hosts)

        self._update(change)

    def set_loaded(self, host: str, model: str, loaded: bool) -> None:
        """Record that ``model`` was loaded or unloaded on ``host`` (a new model is added)."""
        self._patch(host, model, loaded=loaded)

    def set_breaker(self, host: str, model: str, state: BreakerState) -> None:
        """Record a breaker transition of ``model`` on ``host``."""
        self._patch(host, model, breaker=state)

    def set_free_bytes(
        self, free: int | None, resident: Iterable[str] = (), *, budget: int | None = None
    ) -> None:
        """Record the free GPU memory (of ``budget``) and which ``host/model`` s are resident."""
        resident_keys = [(host, model) for host, _, model in (k.partition("/") for k in resident)]

        def change(state: _State) -> _State:
            entries = dict(state.entries)
            for key in resident_keys:
                entry = entries.get(key)
                if entry is not None and entry.loaded is False:
                    entries[key] = replace(entry, loaded=True)
            rebuilt = _rebuild(state, entries, state.hosts)
            return replace(rebuilt, free_bytes=free, budget_bytes=budget)

        self._update(change)

    def apply(self, event: object) -> bool:
        """Follow one bus event; returns whether the catalog uses that kind of event."""
        match event:
            case HostAdded(removed=True):
                self.remove_host(event.host)
            case HostAdded(inventory=inventory) if inventory is not None:
                prices = {
                    m: PriceConfig(input_per_mtok=i, output_per_mtok=o)
                    for m, (i, o) in event.prices.items()
                }
                self.add_host(event.host, inventory, prices=prices or None)
            case ModelLoadChanged():
                self.set_loaded(event.host, event.model, event.loaded)
            case BreakerTransition():
                self.set_breaker(event.host, event.model, event.to_state)
            case ResourceSnapshot():
                self.set_free_bytes(event.free_bytes, event.models_bytes, budget=event.budget_bytes)
            case _:
                return False
        return True

    def watch(
        self, system: System, *, name: str = "catalog", refresh_s: float | None = 60.0
    ) -> Ref[Any]:
        """Start a :class:`CatalogWatcher` that keeps this catalog current (see there)."""
        return system.spawn(CatalogWatcher, name=name, args=(self, refresh_s))

    # ---- internals ----------------------------------------------------------------------

    def _prices_for(self, host: str) -> dict[str, PriceConfig]:
        if host in self._config.hosts:
            return dict(self._config.host(host).prices)
        mine = f"{host}/"
        prices: dict[str, PriceConfig] = {}
        for key, price in self._config.prices.items():
            if key.startswith(mine):
                prices[key.removeprefix(mine)] = price
            elif key.partition("/")[0] not in self._config.hosts:
                prices.setdefault(key, price)
        return prices

    def _entry(
        self, host: str, provider: str, info: ModelInfo, price: PriceConfig | None
    ) -> ModelEntry:
        caps = set(info.capabilities)
        if "chat" in caps and provider in JSON_PROTOCOLS:
            caps.add("json")
        declared = self._declared.get(f"{host}/{info.id}") or self._declared.get(info.id)
        section = self._config.hosts.get(host)
        context = info.context_length
        if context is None and section is not None:
            context = section.context_windows.get(info.id)  # for servers that do not say
        trained = info.details.get("trained_context_length")
        if not isinstance(trained, int) or isinstance(trained, bool) or trained == context:
            trained = None
        entry = ModelEntry(
            host=host,
            model=info.id,
            provider=provider,
            loaded=info.loaded,
            context_length=context,
            capabilities=frozenset(caps),
            price=price,
            size_bytes=info.vram_bytes if info.vram_bytes is not None else info.size_bytes,
            trained_context_length=trained,
        )
        return _declare(entry, declared)

    def _patch(self, host: str, model: str, **fields: Any) -> None:
        def change(state: _State) -> _State:
            entry = state.entries.get((host, model))
            if entry is None:
                if host not in state.hosts:
                    return state  # a host the catalog does not follow
                info = ModelInfo(id=model, loaded=fields.get("loaded"))
                entry = self._entry(
                    host, state.hosts[host], info, self._prices_for(host).get(model)
                )
            entries = {**state.entries, (host, model): replace(entry, **fields)}
            return _rebuild(state, entries, state.hosts)

        self._update(change)

    def _update(self, change: Callable[[_State], _State]) -> None:
        with self._changed:
            state = change(self._state)
            if state is not self._state:
                self._state = replace(state, version=self._state.version + 1)
                self._changed.notify_all()


def _declare(entry: ModelEntry, declared: ModelConfig | None) -> ModelEntry:
    if declared is None:
        return entry
    return replace(
        entry,
        tier=declared.tier,
        strengths=tuple(declared.strengths),
        context_length=declared.context_length or entry.context_length,
        capabilities=frozenset(declared.capabilities)
        if declared.capabilities is not None
        else entry.capabilities,
    )


def _rebuild(
    state: _State, entries: Mapping[tuple[str, str], ModelEntry], hosts: Mapping[str, str]
) -> _State:
    by_model: dict[str, list[ModelEntry]] = {}
    for entry in entries.values():
        by_model.setdefault(entry.model, []).append(entry)
    ranked = {model: tuple(sorted(found, key=_rank)) for model, found in by_model.items()}
    return _State(
        entries=dict(entries),
        ordered=tuple(entries[key] for key in sorted(entries)),
        by_model=ranked,
        hosts=dict(hosts),
        free_bytes=state.free_bytes,
        budget_bytes=state.budget_bytes,
        version=state.version,
    )


class CatalogRefreshed(Message, frozen=True, kw_only=True):
    """The answer to :class:`RefreshCatalog`: how many hosts answered with their inventory."""

    hosts: int = 0


class RefreshCatalog(Request[CatalogRefreshed], frozen=True, kw_only=True):
    """Ask every host in the catalog for its inventory now (models added or removed)."""


@dataclass(frozen=True, slots=True)
class _Tick:
    """Time for a periodic refresh."""


CatalogEvent = HostAdded | ModelLoadChanged | BreakerTransition | ResourceSnapshot
WatcherMessage = CatalogEvent | RefreshCatalog | _Tick


class CatalogWatcher(LoopActor[WatcherMessage]):
    """Keeps a :class:`Catalog` current: follows the bus, and asks hosts for their inventory.

    A loop actor: it has no thread of its own, and each event costs one short turn. Every
    ``refresh_s`` seconds (and on :class:`RefreshCatalog`) it asks each host of the
    catalog for its inventory again, so that models pulled onto a server (or deleted)
    after start appear (or go).

    Args:
        catalog: The catalog it updates.
        refresh_s: Seconds between inventory refreshes (``None``: only when asked).
    """

    def __init__(self, catalog: Catalog, refresh_s: float | None = 60.0) -> None:
        super().__init__()
        self.catalog = catalog
        self._refresh_s = refresh_s
        self._subscriptions: list[Subscription] = []
        self._timer: TimerHandle | None = None

    def started(self) -> None:
        """Subscribe (a restarted watcher subscribes again; the old sinks are dropped)."""
        bus = self.runtime.bus
        for kind in (HostAdded, ModelLoadChanged, BreakerTransition, ResourceSnapshot):
            self._subscriptions.append(bus.subscribe(kind, self.self_ref))
        if self._refresh_s is not None:
            self._timer = self.schedule(self._refresh_s, _Tick())

    def stopped(self) -> None:
        """Unsubscribe and stop refreshing."""
        for sub in self._subscriptions:
            sub.cancel()
        if self._timer is not None:
            self._timer.cancel()

    def receive(self, message: WatcherMessage) -> object:
        """Apply one event to the catalog, or refresh the inventories."""
        match message:
            case HostAdded() | ModelLoadChanged() | BreakerTransition() | ResourceSnapshot():
                self.catalog.apply(message)
            case RefreshCatalog():
                self._refresh(self.defer_reply())
            case _Tick():
                self._refresh(None)
                if self._refresh_s is not None:
                    self._timer = self.schedule(self._refresh_s, _Tick())
            case _:
                assert_never(message)
        return None

    def _refresh(self, reply: Deferred[Any] | None) -> None:
        hosts = []
        for name in self.catalog.hosts():
            with contextlib.suppress(ActorNotFound):
                hosts.append((name, self.runtime.lookup(name)))
        waiting = {name for name, _ in hosts}
        answered = [0]

        def arrived(name: str, answer: HostInventory | Failure) -> None:
            waiting.discard(name)
            if isinstance(answer, HostInventory) and answer.reachable is not False:
                answered[0] += 1
                if name in self.catalog.hosts():  # not removed meanwhile
                    self.catalog.add_host(name, answer)
            if not waiting and reply is not None:
                reply.send(CatalogRefreshed(hosts=answered[0]))

        if not hosts and reply is not None:
            reply.send(CatalogRefreshed())
        for name, ref in hosts:
            self.ask(ref, InventoryQuery(refresh=True), functools.partial(arrived, name))
