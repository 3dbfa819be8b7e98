"""The ResourceMonitor: what is on the GPUs, and whether one more model fits.

The monitor polls on a timer. Each poll reads every GPU through NVML (local calls of a
millisecond or less, so on the actor's own thread) and asks every registered ModelHost
for its inventory (non-blocking asks). When every host has answered, or its ask timed
out, it merges the two into a :class:`~actors.ResourceSnapshot` and publishes it on the
event bus; a :class:`~actors.ResourceQuery` is answered with the snapshot of a fresh poll.

**The budget** is the configured figure when there is one. Otherwise it is the free VRAM
(summed over the GPUs) plus what the hosts' loaded models already take, so that what is
free is the free VRAM. With no NVML and no configured figure there is no budget: every
model is admitted on trust (a Mac running LM Studio has no NVML, and refusing everything
there would be worse than not checking). With a configured figure and no NVML, the
budget is enforced against what the hosts report about their loaded models.

What a loaded model takes is its ``vram_bytes``, else its ``size_bytes``, else the size
an admission was told for it; models of unknown size count for nothing. The monitor
assumes that the hosts registered with it share the GPUs it reads; register only hosts on
this machine.

**Admission** (:class:`~actors.AdmitModel`), before a request goes to a model that is not
loaded:

1. the model is loaded on that host already: admitted at once;
2. what it needs is the request's ``required_bytes``, else the model's size from the
   host's inventory (asked afresh); unknown: admitted on trust (``required_bytes=None``);
3. it fits what is free: admitted;
4. else idle models on *that* host (loaded, nothing in flight, of known size, not the
   requested one) are unloaded through the host (:class:`~actors.UnloadModel`), least
   recently used first (never used counts as oldest), one at a time, each answer awaited
   before deciding on the next, until it fits;
5. if it cannot fit, even with every idle model unloaded, the answer is an
   ``insufficient_memory`` failure naming what is needed, what is free and what was
   unloaded. Nothing is unloaded when unloading every candidate would not be enough.

**Concurrent admissions** are serialised (one at a time, in arrival order), and each
admitted model's bytes are *reserved* until a poll shows it loaded (or
``reservation_s`` passes, in case it never loads), so two admissions between polls never
count the same free bytes twice. A second admission of a model whose reservation is
still open is admitted without reserving again. While a model is loading, its bytes may
briefly be counted both as used VRAM and as a reservation: the error is on the safe side.
"""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never

import msgspec

from actors import Actor, Deferred, Failure, FailureKind, Ref, Subscription
from actors.llm._messages import (
    Admission,
    AdmitModel,
    HostInventory,
    InventoryQuery,
    LoadedModel,
    ModelInfo,
    ModelLoadChanged,
    ResourceQuery,
    ResourceSnapshot,
    UnloadModel,
)
from actors.llm.resources._nvml import GpuReading, NvmlReader
from actors.lowlevel import TimerHandle

__all__ = ["RegisterHost", "ResourceMonitor", "format_bytes"]

_GIB = 1024**3


def format_bytes(n: int | None) -> str:
    """Bytes for people: ``"12.5 GiB"``, ``"512.0 MiB"``, ``"unknown"`` for ``None``."""
    if n is None:
        return "unknown"
    if abs(n) >= _GIB:
        return f"{n / _GIB:.1f} GiB"
    return f"{n / 1024**2:.1f} MiB"


@dataclass(frozen=True, slots=True)
class RegisterHost:
    """Tell the monitor about a ModelHost (``ref=None`` forgets it).

    Not a wire message: a :class:`~actors.Ref` only makes sense inside one process.
    Hosts registered this way are lost if the monitor restarts; pass the hosts that are
    known at start to the constructor.
    """

    host: str
    ref: Ref[Any] | None


class _Poll:
    """The poll timer's tick."""

    __slots__ = ()


MonitorMessage = ResourceQuery | AdmitModel | RegisterHost | ModelLoadChanged | _Poll


@dataclass(slots=True)
class _Round:
    """One poll in progress: the hosts still to answer and who waits for the result."""

    pending: set[str]
    waiters: list[Deferred[Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Admitting:
    """The admission being worked on (only one at a time)."""

    request: AdmitModel
    reply: Deferred[Any]
    required: int = 0
    free: int = 0
    budget: int = 0
    candidates: list[ModelInfo] = field(default_factory=list)
    unloaded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _footprint(info: ModelInfo) -> int | None:
    return info.vram_bytes if info.vram_bytes is not None else info.size_bytes


class ResourceMonitor(Actor[MonitorMessage]):
    """Polls GPUs and model hosts, publishes snapshots, and admits models to load.

    Args:
        hosts: ModelHost refs by host name (more with :class:`RegisterHost`).
        budget_bytes: The configured memory budget; ``None`` uses the free VRAM plus
            what loaded models take (see the module docstring).
        poll_s: Seconds between polls.
        nvml: A ``pynvml``-shaped module (tests pass a fake); ``None`` imports pynvml.
        use_nvml: ``False`` never touches NVML (``[resources] nvml = false``).
        inventory_timeout_s: How long a poll waits for one host's inventory.
        unload_timeout_s: How long an admission waits for one model to unload.
        reservation_s: How long admitted bytes stay reserved if the model never loads.
        refresh_inventory: Whether polls ask hosts to ask their servers again
            (admissions always do, for the host concerned).
    """

    def __init__(
        self,
        hosts: Mapping[str, Ref[Any]] | None = None,
        budget_bytes: int | None = None,
        poll_s: float = 5.0,
        nvml: Any = None,
        *,
        use_nvml: bool = True,
        inventory_timeout_s: float = 5.0,
        unload_timeout_s: float = 60.0,
        reservation_s: float = 120.0,
        refresh_inventory: bool = False,
    ) -> None:
        super().__init__()
        if not poll_s > 0:
            msg = f"ResourceMonitor(poll_s={poll_s!r}): must be greater than zero"
            raise ValueError(msg)
        self._hosts: dict[str, Ref[Any]] = dict(hosts or {})
        self._budget_bytes = budget_bytes
        self._poll_s = poll_s
        self._nvml_module = nvml
        self._use_nvml = use_nvml
        self._inventory_timeout_s = inventory_timeout_s
        self._unload_timeout_s = unload_timeout_s
        self._reservation_s = reservation_s
        self._refresh = refresh_inventory
        self._reader: NvmlReader | None = None
        self._reading = GpuReading(error="NVML not read yet")
        self._inventories: dict[str, HostInventory] = {}
        self._learned: dict[str, int] = {}  # host/model -> bytes an admission was told
        self._reservations: dict[str, tuple[int, float]] = {}  # key -> (bytes, expiry)
        self._round: _Round | None = None
        self._snapshot: ResourceSnapshot | None = None
        self._queue: collections.deque[tuple[AdmitModel, Deferred[Any]]] = collections.deque()
        self._admitting: _Admitting | None = None
        self._timer: TimerHandle | None = None
        self._subscription: Subscription | None = None

    # ---- lifecycle -----------------------------------------------------------------

    def started(self) -> None:
        """Open NVML, follow load changes on the bus, and start polling."""
        if self._use_nvml:
            self._reader = NvmlReader(self._nvml_module)
        else:
            self._reading = GpuReading(error="NVML disabled by configuration")
        # A restarted monitor subscribes again (the old sink is dropped as dead).
        self._subscription = self.runtime.bus.subscribe(ModelLoadChanged, self.self_ref)
        self._tick()

    def stopped(self) -> None:
        """Stop polling, unsubscribe, and shut NVML down."""
        if self._timer is not None:
            self._timer.cancel()
        if self._subscription is not None:
            self._subscription.cancel()
        if self._reader is not None:
            self._reader.close()

    # ---- messages ------------------------------------------------------------------

    def receive(self, message: MonitorMessage) -> object:
        """Dispatch one message."""
        match message:
            case _Poll():
                self._tick()
            case ResourceQuery():
                self._start_round(self.defer_reply())
            case AdmitModel():
                self._queue.append((message, self.defer_reply()))
                self._pump()
            case RegisterHost(host=host, ref=ref):
                self._register(host, ref)
            case ModelLoadChanged(host=host):
                if host in self._hosts:
                    self._start_round()
            case _:
                assert_never(message)
        return None

    def _register(self, host: str, ref: Ref[Any] | None) -> None:
        if ref is None:
            self._hosts.pop(host, None)
            self._inventories.pop(host, None)
            prefix = f"{host}/"
            for table in (self._learned, self._reservations):
                for key in [k for k in table if k.startswith(prefix)]:
                    del table[key]
        else:
            self._hosts[host] = ref
        self._start_round()

    # ---- polling -------------------------------------------------------------------

    def _tick(self) -> None:
        self._timer = self.schedule(self._poll_s, _Poll())
        self._start_round()

    def _start_round(self, waiter: Deferred[Any] | None = None) -> None:
        """Join the poll in progress, or start one; ``waiter`` gets its snapshot."""
        if self._round is not None:
            if waiter is not None:
                self._round.waiters.append(waiter)
            return
        hosts = dict(self._hosts)
        current = _Round(pending=set(hosts), waiters=[waiter] if waiter is not None else [])
        self._round = current
        for name, ref in hosts.items():
            self.ask(
                ref,
                InventoryQuery(refresh=self._refresh),
                functools.partial(self._inventory_in, current, name),
                timeout=self._inventory_timeout_s,
            )
        if not hosts:
            self._finish_round(current)

    def _inventory_in(self, current: _Round, host: str, answer: HostInventory | Failure) -> None:
        if isinstance(answer, HostInventory):
            if host in self._hosts:
                self._inventories[host] = answer
        else:
            # Keep what the host said last: a slow answer is no reason to forget it.
            self.log.info("no inventory from host", host=host, failure=str(answer))
        current.pending.discard(host)
        if not current.pending:
            self._finish_round(current)

    def _finish_round(self, current: _Round) -> None:
        if self._round is current:
            self._round = None
        self._read_gpus()
        snapshot = self._publish()
        for waiter in current.waiters:
            waiter.send(snapshot)
        self._pump()

    def _read_gpus(self) -> None:
        if self._reader is not None:
            self._reading = self._reader.read()

    def _publish(self) -> ResourceSnapshot:
        snapshot = self._take_snapshot()
        self._snapshot = snapshot
        self.runtime.bus.publish(snapshot)
        return snapshot

    # ---- accounting ----------------------------------------------------------------

    def _models_bytes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for host, inventory in self._inventories.items():
            for info in inventory.models:
                if info.loaded is not True:
                    continue
                key = f"{host}/{info.id}"
                size = _footprint(info)
                if size is None:
                    size = self._learned.get(key)
                if size is not None:
                    out[key] = size
        return out

    def _loaded_keys(self) -> set[str]:
        return {
            f"{host}/{info.id}"
            for host, inventory in self._inventories.items()
            for info in inventory.models
            if info.loaded is True
        }

    def _expire_reservations(self) -> None:
        now = time.monotonic()
        loaded = self._loaded_keys()
        for key, (_, expiry) in list(self._reservations.items()):
            if key in loaded or expiry <= now:
                del self._reservations[key]

    def _budget(self, models: Mapping[str, int]) -> int | None:
        if self._budget_bytes is not None:
            return self._budget_bytes
        if self._reading.available:
            return self._reading.free_bytes + sum(models.values())
        return None

    def _free(self, budget: int | None, models: Mapping[str, int]) -> int | None:
        if budget is None:
            return None
        reserved = sum(size for size, _ in self._reservations.values())
        return max(0, budget - sum(models.values()) - reserved)

    def _take_snapshot(self) -> ResourceSnapshot:
        self._expire_reservations()
        models = self._models_bytes()
        budget = self._budget(models)
        reading = self._reading
        return ResourceSnapshot(
            gpus=reading.gpus,
            nvml=reading.available,
            nvml_error=reading.error,
            budget_bytes=budget,
            models_bytes=models,
            free_bytes=self._free(budget, models),
            at=time.time(),
        )

    # ---- admission -----------------------------------------------------------------

    def _pump(self) -> None:
        """Start the next admission, if none is running and a first poll is done."""
        if self._admitting is not None:
            return
        if self._snapshot is None:
            self._start_round()  # know every host's models before admitting anything
            return
        while self._queue:
            request, reply = self._queue.popleft()
            if reply.answered:
                continue  # the caller gave up while it waited its turn
            self._admitting = _Admitting(request=request, reply=reply)
            ref = self._hosts.get(request.host)
            if ref is None:
                self._decide(None)
            else:
                self.ask(
                    ref,
                    InventoryQuery(refresh=True),
                    self._decide,
                    timeout=self._inventory_timeout_s,
                )
            return

    def _decide(self, answer: HostInventory | Failure | None) -> None:
        work = self._admitting
        assert work is not None
        request = work.request
        host, model = request.host, request.model
        if isinstance(answer, HostInventory) and host in self._hosts:
            self._inventories[host] = answer
        elif isinstance(answer, Failure):
            self.log.info("admission uses the last known inventory", host=host, failure=str(answer))
        self._read_gpus()
        self._expire_reservations()
        inventory = self._inventories.get(host)
        models = inventory.models if inventory is not None else ()
        info = next((m for m in models if m.id == model), None)
        key = f"{host}/{model}"
        all_models = self._models_bytes()
        budget = self._budget(all_models)
        free = self._free(budget, all_models)

        known = _footprint(info) if info is not None else None
        if known is None:
            known = self._learned.get(key)
        if info is not None and info.loaded is True:
            self._admit(required=known or request.required_bytes, free=free)
            return
        required = request.required_bytes if request.required_bytes is not None else known
        if required is None or budget is None or free is None:
            # Unknown size, or no budget at all (no NVML, none configured): on trust.
            self._admit(required=required, free=free)
            return
        if key in self._reservations:
            self._admit(required=required, free=free)  # admitted already, still loading
            return
        work.required, work.free, work.budget = required, free, budget
        if required <= free:
            self._admit(required=required, free=free, reserve=True)
            return
        work.candidates = sorted(
            (
                m
                for m in models
                if m.loaded is True and m.in_flight == 0 and m.id != model and _footprint(m)
            ),
            key=lambda m: (m.last_used is not None, m.last_used or 0.0),
        )
        could_free = sum(_footprint(m) or 0 for m in work.candidates)
        if free + could_free < required:
            work.notes.append(
                f"unloading every idle model on {host!r} would free only {format_bytes(could_free)}"
            )
            work.candidates = []
        self._unload_next()

    def _unload_next(self) -> None:
        work = self._admitting
        assert work is not None
        if work.free >= work.required:
            self._admit(required=work.required, free=work.free, reserve=True)
            return
        ref = self._hosts.get(work.request.host)
        if not work.candidates or ref is None or work.reply.answered:
            self._refuse()
            return
        victim = work.candidates.pop(0)
        self.log.info(
            "unloading idle model to make room",
            host=work.request.host,
            model=victim.id,
            for_model=work.request.model,
        )
        self.ask(
            ref,
            UnloadModel(model=victim.id),
            lambda answer: self._unloaded(victim, answer),
            timeout=self._unload_timeout_s,
        )

    def _unloaded(self, victim: ModelInfo, answer: LoadedModel | Failure) -> None:
        work = self._admitting
        assert work is not None
        host = work.request.host
        key = f"{host}/{victim.id}"
        if isinstance(answer, LoadedModel) and not answer.loaded:
            work.free += _footprint(victim) or self._learned.get(key, 0)
            work.unloaded.append(key)
            self._mark_unloaded(host, victim.id)
        elif isinstance(answer, LoadedModel):
            work.notes.append(f"{key} is still loaded after the unload request")
        else:
            work.notes.append(f"unloading {key} failed: {answer.message}")
        self._unload_next()

    def _mark_unloaded(self, host: str, model: str) -> None:
        inventory = self._inventories.get(host)
        if inventory is None:
            return
        models = tuple(
            msgspec.structs.replace(m, loaded=False, vram_bytes=None) if m.id == model else m
            for m in inventory.models
        )
        self._inventories[host] = msgspec.structs.replace(inventory, models=models)

    def _admit(self, *, required: int | None, free: int | None, reserve: bool = False) -> None:
        work = self._admitting
        assert work is not None
        key = f"{work.request.host}/{work.request.model}"
        if reserve and required is not None:
            self._reservations[key] = (required, time.monotonic() + self._reservation_s)
            self._learned[key] = required
        work.reply.send(
            Admission(
                host=work.request.host,
                model=work.request.model,
                required_bytes=required,
                free_bytes=free,
                unloaded=tuple(work.unloaded),
            )
        )
        self._done(work)

    def _refuse(self) -> None:
        work = self._admitting
        assert work is not None
        key = f"{work.request.host}/{work.request.model}"
        unloaded = ", ".join(work.unloaded) if work.unloaded else "nothing"
        message = (
            f"{key} needs {format_bytes(work.required)} but only {format_bytes(work.free)} "
            f"of the {format_bytes(work.budget)} budget is free; unloaded {unloaded}"
        )
        if work.notes:
            message += "; " + "; ".join(work.notes)
        work.reply.send(
            Failure(
                kind=FailureKind.INSUFFICIENT_MEMORY,
                message=message,
                source=self.name,
                details={
                    "host": work.request.host,
                    "model": work.request.model,
                    "needed_bytes": str(work.required),
                    "free_bytes": str(work.free),
                    "budget_bytes": str(work.budget),
                    "unloaded": ",".join(work.unloaded),
                },
            )
        )
        self._done(work)

    def _done(self, work: _Admitting) -> None:
        self._admitting = None
        if work.unloaded:
            self._publish()
        self._pump()
