"""The ResourceMonitor: snapshots on the bus, budgets, and admission with unloading."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from actors import Actor, AskError, Failure, FailureKind, Ref, System
from actors._reply import SyncReply
from actors.llm._messages import (
    Admission,
    AdmitModel,
    ModelInfo,
    ModelLoadChanged,
    ResourceQuery,
    ResourceSnapshot,
)
from actors.llm.resources._monitor import RegisterHost, ResourceMonitor, format_bytes
from tests.support.fake_nvml import FakeGpu, FakeNvml, FakeProcess, driver_missing
from tests.support.stub_host import GIB, StubHost, model


class Collector(Actor[ResourceSnapshot]):
    """Keeps every snapshot published on the bus."""

    def __init__(self, seen: list[ResourceSnapshot]) -> None:
        super().__init__()
        self.seen = seen

    def receive(self, message: ResourceSnapshot) -> object:
        self.seen.append(message)
        return None


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``check`` until it holds (or fail the test)."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            pytest.fail("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def snapshots(system: System) -> list[ResourceSnapshot]:
    """Every ResourceSnapshot published while the test runs."""
    seen: list[ResourceSnapshot] = []
    ref = system.spawn(Collector, name="collector", args=(seen,))
    system.bus.subscribe(ResourceSnapshot, ref)
    return seen


def spawn_host(
    system: System,
    name: str,
    models: list[ModelInfo],
    *,
    unloads: list[str] | None = None,
    fail_unload: frozenset[str] = frozenset(),
    silent: bool = False,
    queries: list[bool] | None = None,
) -> tuple[Ref[Any], dict[str, ModelInfo]]:
    table = {m.id: m for m in models}
    ref = system.spawn(
        StubHost,
        name=f"host-{name}",
        args=(name, table, unloads, fail_unload),
        kwargs={"silent": silent, "queries": queries},
    )
    return ref, table


def spawn_monitor(
    system: System,
    hosts: dict[str, Ref[Any]],
    *,
    nvml: Any = None,
    budget_gb: float | None = None,
    poll_s: float = 60.0,
    **kwargs: Any,
) -> Ref[Any]:
    return system.spawn(
        ResourceMonitor,
        name="monitor",
        kwargs={
            "hosts": hosts,
            "budget_bytes": int(budget_gb * GIB) if budget_gb is not None else None,
            "poll_s": poll_s,
            "nvml": nvml if nvml is not None else FakeNvml(),
            **kwargs,
        },
    )


def admit(monitor: Ref[Any], host: str, name: str, required_gb: float | None = None) -> Admission:
    required = int(required_gb * GIB) if required_gb is not None else None
    answer: Admission = monitor.ask(AdmitModel(host=host, model=name, required_bytes=required))
    return answer


def refused(monitor: Ref[Any], host: str, name: str, required_gb: float | None = None) -> Failure:
    with pytest.raises(AskError) as caught:
        admit(monitor, host, name, required_gb)
    assert caught.value.kind is FailureKind.INSUFFICIENT_MEMORY
    return caught.value.failure


# ---- snapshots ------------------------------------------------------------------------


def test_snapshot_merges_gpus_and_loaded_models_and_is_published_each_poll(
    system: System, snapshots: list[ResourceSnapshot]
) -> None:
    """models_bytes by host/model (vram, else size); budget = free VRAM + models."""
    gpu = FakeGpu(total=24 * GIB, used=10 * GIB, processes=[FakeProcess(pid=9, used=8 * GIB)])
    lms, _ = spawn_host(
        system,
        "lms",
        [
            model("a", vram_gb=6),
            model("b", size_gb=4),
            model("c", loaded=False, size_gb=3),
            model("unknown-size"),
        ],
    )
    oll, _ = spawn_host(system, "oll", [model("d", vram_gb=2, size_gb=5)])
    spawn_monitor(system, {"lms": lms, "oll": oll}, nvml=FakeNvml([gpu]), poll_s=0.05)
    wait_for(lambda: len(snapshots) >= 3)  # the timer keeps polling
    snap = snapshots[-1]
    assert snap.nvml
    assert snap.nvml_error is None
    assert snap.gpus[0].free_bytes == 14 * GIB
    assert snap.gpus[0].processes[0].pid == 9
    assert snap.models_bytes == {"lms/a": 6 * GIB, "lms/b": 4 * GIB, "oll/d": 2 * GIB}
    assert snap.budget_bytes == 26 * GIB
    assert snap.free_bytes == 14 * GIB
    assert snap.at > 0


def test_resource_query_answers_a_fresh_snapshot(system: System) -> None:
    """A ResourceQuery polls again: a change on the GPU and the host shows at once."""
    gpu = FakeGpu(total=24 * GIB, used=4 * GIB)
    host, table = spawn_host(system, "h", [model("a", loaded=False, size_gb=5)])
    monitor = spawn_monitor(system, {"h": host}, nvml=FakeNvml([gpu]))
    first: ResourceSnapshot = monitor.ask(ResourceQuery())
    assert (first.free_bytes, first.models_bytes) == (20 * GIB, {})
    gpu.used = 9 * GIB
    table["a"] = model("a", vram_gb=5)
    second: ResourceSnapshot = monitor.ask(ResourceQuery())
    assert second.models_bytes == {"h/a": 5 * GIB}
    assert second.free_bytes == 15 * GIB
    assert second.budget_bytes == 20 * GIB


def test_configured_budget_wins_over_free_vram(system: System) -> None:
    """With budget_bytes set, the budget is that figure; free is budget minus models."""
    host, _ = spawn_host(system, "h", [model("a", vram_gb=3)])
    monitor = spawn_monitor(system, {"h": host}, budget_gb=8)
    snap: ResourceSnapshot = monitor.ask(ResourceQuery())
    assert snap.nvml  # the fake GPU has 24 GiB free, but the budget is 8
    assert snap.budget_bytes == 8 * GIB
    assert snap.free_bytes == 5 * GIB


def test_no_gpu_and_no_budget_admits_on_trust(system: System) -> None:
    """No driver: the snapshot says why; with no budget every model is admitted."""
    host, _ = spawn_host(system, "h", [model("big", loaded=False, size_gb=500)])
    monitor = spawn_monitor(system, {"h": host}, nvml=driver_missing())
    snap: ResourceSnapshot = monitor.ask(ResourceQuery())
    assert not snap.nvml
    assert snap.gpus == ()
    assert snap.nvml_error is not None
    assert "Driver Not Loaded" in snap.nvml_error
    assert (snap.budget_bytes, snap.free_bytes) == (None, None)
    answer = admit(monitor, "h", "big")
    assert answer.required_bytes == 500 * GIB
    assert answer.free_bytes is None


def test_no_gpu_with_a_configured_budget_enforces_it(system: System) -> None:
    """No NVML, but a configured budget: what the hosts report is held against it."""
    host, _ = spawn_host(system, "h", [model("a", vram_gb=6, last_used=1.0, in_flight=1)])
    monitor = spawn_monitor(system, {"h": host}, nvml=driver_missing(), budget_gb=10)
    assert admit(monitor, "h", "small", 3).free_bytes == 4 * GIB
    failure = refused(monitor, "h", "big", 5)
    assert failure.details["free_bytes"] == str(1 * GIB)


def test_nvml_can_be_switched_off(system: System) -> None:
    """use_nvml=False never touches the module."""
    fake = FakeNvml()
    monitor = spawn_monitor(system, {}, nvml=fake, use_nvml=False)
    snap: ResourceSnapshot = monitor.ask(ResourceQuery())
    assert not snap.nvml
    assert snap.nvml_error == "NVML disabled by configuration"
    assert fake.init_calls == 0


# ---- admission ------------------------------------------------------------------------


def test_loaded_model_is_admitted_at_once(system: System) -> None:
    """A model already loaded needs no room, however full the budget is."""
    unloads: list[str] = []
    host, _ = spawn_host(
        system, "h", [model("a", vram_gb=7), model("b", vram_gb=3)], unloads=unloads
    )
    monitor = spawn_monitor(system, {"h": host}, budget_gb=10)
    answer = admit(monitor, "h", "a")
    assert answer == Admission(host="h", model="a", required_bytes=7 * GIB, free_bytes=0)
    assert unloads == []


def test_admission_fits_using_the_inventory_size(system: System) -> None:
    """Without required_bytes the model's size comes from the host's fresh inventory."""
    host, _ = spawn_host(system, "h", [model("a", loaded=False, size_gb=4)])
    monitor = spawn_monitor(system, {"h": host}, budget_gb=10)
    answer = admit(monitor, "h", "a")
    assert (answer.required_bytes, answer.free_bytes, answer.unloaded) == (4 * GIB, 10 * GIB, ())


def test_admission_of_unknown_size_is_on_trust(system: System) -> None:
    """A model whose size nobody knows is admitted with required_bytes None."""
    host, _ = spawn_host(system, "h", [model("mystery", loaded=False)])
    monitor = spawn_monitor(system, {"h": host}, budget_gb=1)
    answer = admit(monitor, "h", "mystery")
    assert answer.required_bytes is None
    assert answer.unloaded == ()


def test_admission_asks_the_host_for_a_fresh_inventory(system: System) -> None:
    """Polls take the host's cached inventory; an admission asks for a refresh."""
    queries: list[bool] = []
    host, _ = spawn_host(system, "h", [model("a", loaded=False, size_gb=1)], queries=queries)
    monitor = spawn_monitor(system, {"h": host}, budget_gb=10)
    monitor.ask(ResourceQuery())
    admit(monitor, "h", "a")
    assert queries[0] is False
    assert queries[-1] is True


def test_admission_unloads_idle_models_on_that_host_lru_first(system: System) -> None:
    """Never-used first, then oldest; busy models and other hosts are left alone."""
    unloads: list[str] = []
    other_unloads: list[str] = []
    host, table = spawn_host(
        system,
        "h",
        [
            model("recent", vram_gb=4, last_used=300.0),
            model("never", vram_gb=4, last_used=None),
            model("busy", vram_gb=4, last_used=100.0, in_flight=1),
            model("older", vram_gb=2, last_used=200.0),
            model("wanted", loaded=False, size_gb=7),
        ],
        unloads=unloads,
    )
    other, _ = spawn_host(
        system, "o", [model("x", vram_gb=0.5, last_used=1.0)], unloads=other_unloads
    )
    monitor = spawn_monitor(system, {"h": host, "o": other}, budget_gb=16.5)
    # Free: 16.5 - 14 - 0.5 = 2 GiB; "wanted" needs 7: unload "never" (4), then "older" (2).
    answer = admit(monitor, "h", "wanted")
    assert unloads == ["never", "older"]
    assert other_unloads == []
    assert answer.unloaded == ("h/never", "h/older")
    assert answer.required_bytes == 7 * GIB
    assert answer.free_bytes == 8 * GIB
    assert table["recent"].loaded is True
    assert table["busy"].loaded is True
    snap: ResourceSnapshot = monitor.ask(ResourceQuery())
    assert set(snap.models_bytes) == {"h/recent", "h/busy", "o/x"}
    assert snap.free_bytes == 1 * GIB  # 16.5 - 8.5 loaded - 7 reserved for "wanted"


def test_insufficient_memory_says_what_is_needed_and_unloads_nothing_in_vain(
    system: System,
) -> None:
    """If unloading every idle model could not make room, nothing is unloaded."""
    unloads: list[str] = []
    host, _ = spawn_host(
        system, "h", [model("a", vram_gb=2), model("b", vram_gb=2, in_flight=2)], unloads=unloads
    )
    monitor = spawn_monitor(system, {"h": host}, budget_gb=10)
    failure = refused(monitor, "h", "huge", 20)
    assert unloads == []
    assert failure.details["needed_bytes"] == str(20 * GIB)
    assert failure.details["free_bytes"] == str(6 * GIB)
    assert failure.details["unloaded"] == ""
    assert "h/huge needs 20.0 GiB" in failure.message
    assert "only 6.0 GiB of the 10.0 GiB budget is free" in failure.message
    assert "unloaded nothing" in failure.message
    assert "would free only 2.0 GiB" in failure.message
    assert failure.source == "monitor"


def test_failed_unload_is_reported_with_what_was_unloaded(system: System) -> None:
    """An unload that fails: the admission fails, naming what was unloaded and what not."""
    unloads: list[str] = []
    host, _ = spawn_host(
        system,
        "h",
        [model("a", vram_gb=3, last_used=1.0), model("b", vram_gb=3, last_used=2.0)],
        unloads=unloads,
        fail_unload=frozenset({"b"}),
    )
    monitor = spawn_monitor(system, {"h": host}, budget_gb=8)
    failure = refused(monitor, "h", "c", 7)  # free 2; a frees 3 -> 5; b refuses
    assert unloads == ["a", "b"]
    assert failure.details["unloaded"] == "h/a"
    assert failure.details["free_bytes"] == str(5 * GIB)
    assert "unloaded h/a" in failure.message
    assert "unloading h/b failed: server refused to unload b" in failure.message


def test_concurrent_admissions_do_not_count_the_same_bytes_twice(system: System) -> None:
    """Two 6 GiB models into 10 GiB, asked at once: one admitted, one refused."""
    host, table = spawn_host(system, "h", [])
    monitor = spawn_monitor(system, {"h": host}, budget_gb=10)
    replies = [SyncReply(), SyncReply()]
    for name, reply in zip(("m1", "m2"), replies, strict=True):
        request = AdmitModel(host="h", model=name, required_bytes=6 * GIB, deadline=time.time() + 5)
        monitor.send_request(request, reply)
    answers = [r.wait(5, lambda: pytest.fail("no answer")) for r in replies]
    assert isinstance(answers[0], Admission)
    assert isinstance(answers[1], Failure)
    assert answers[1].kind is FailureKind.INSUFFICIENT_MEMORY
    assert answers[1].details["free_bytes"] == str(4 * GIB)
    # The same model again while it loads: admitted, not reserved twice.
    assert admit(monitor, "h", "m1", 6).free_bytes == 4 * GIB
    # Once the host reports it loaded, its size counts as a model, not a reservation.
    table["m1"] = model("m1", vram_gb=6)
    snap: ResourceSnapshot = monitor.ask(ResourceQuery())
    assert snap.models_bytes == {"h/m1": 6 * GIB}
    assert snap.free_bytes == 4 * GIB


def test_reservation_expires_when_the_model_never_loads(system: System) -> None:
    """Admitted bytes are released after reservation_s if no poll shows the model."""
    host, _ = spawn_host(system, "h", [])
    monitor = spawn_monitor(system, {"h": host}, budget_gb=10, reservation_s=0.1)
    admit(monitor, "h", "m1", 6)
    time.sleep(0.15)
    snap: ResourceSnapshot = monitor.ask(ResourceQuery())
    assert snap.free_bytes == 10 * GIB


def test_learned_size_counts_when_the_host_reports_none(system: System) -> None:
    """A model admitted with a given size and loaded without one keeps that size."""
    host, table = spawn_host(system, "h", [])
    monitor = spawn_monitor(system, {"h": host}, budget_gb=10)
    admit(monitor, "h", "m", 3)
    table["m"] = model("m")  # loaded, size not reported
    snap: ResourceSnapshot = monitor.ask(ResourceQuery())
    assert snap.models_bytes == {"h/m": 3 * GIB}
    assert snap.free_bytes == 7 * GIB


def test_unknown_host_is_judged_on_the_budget_alone(system: System) -> None:
    """A host the monitor does not know: fits or not, nothing can be unloaded."""
    monitor = spawn_monitor(system, {}, budget_gb=4)
    assert admit(monitor, "nowhere", "m", 3).required_bytes == 3 * GIB
    refused(monitor, "nowhere", "n", 3)


# ---- hosts ----------------------------------------------------------------------------


def test_registered_host_joins_the_next_snapshot_and_can_be_forgotten(system: System) -> None:
    """RegisterHost adds a host; RegisterHost with ref None removes it."""
    monitor = spawn_monitor(system, {}, budget_gb=10)
    host, _ = spawn_host(system, "late", [model("a", vram_gb=1)])
    monitor.tell(RegisterHost("late", host))
    snap: ResourceSnapshot = monitor.ask(ResourceQuery())
    assert snap.models_bytes == {"late/a": 1 * GIB}
    monitor.tell(RegisterHost("late", None))
    snap = monitor.ask(ResourceQuery())
    assert snap.models_bytes == {}


def test_silent_host_does_not_hold_up_the_snapshot(system: System) -> None:
    """A host that never answers is given up on after inventory_timeout_s."""
    quiet, _ = spawn_host(system, "quiet", [], silent=True)
    fine, _ = spawn_host(system, "fine", [model("a", vram_gb=1)])
    monitor = spawn_monitor(system, {"quiet": quiet, "fine": fine}, inventory_timeout_s=0.1)
    started = time.monotonic()
    snap: ResourceSnapshot = monitor.ask(ResourceQuery())
    assert snap.models_bytes == {"fine/a": 1 * GIB}
    assert time.monotonic() - started < 3


def test_model_load_change_on_the_bus_triggers_a_poll(
    system: System, snapshots: list[ResourceSnapshot]
) -> None:
    """A host's ModelLoadChanged event makes the monitor look again before its timer."""
    host, table = spawn_host(system, "h", [model("a", loaded=False, size_gb=2)])
    monitor = spawn_monitor(system, {"h": host}, budget_gb=10)
    monitor.ask(ResourceQuery())
    table["a"] = msgspec.structs.replace(table["a"], loaded=True)
    system.bus.publish(ModelLoadChanged(host="h", model="a", loaded=True))
    wait_for(lambda: bool(snapshots) and snapshots[-1].models_bytes == {"h/a": 2 * GIB})


def test_stopping_the_monitor_shuts_nvml_down() -> None:
    """NVML is initialised once while the monitor runs and shut down when it stops."""
    fake = FakeNvml()
    with System(name="mon", default_timeout=20.0) as system:
        monitor = spawn_monitor(system, {}, nvml=fake, poll_s=0.02)
        wait_for(lambda: fake.init_calls == 1)
        monitor.ask(ResourceQuery())
        time.sleep(0.1)
    assert fake.init_calls == 1
    assert fake.shutdown_calls == 1
    assert fake.initialised == 0


def test_format_bytes() -> None:
    """Bytes for messages."""
    assert format_bytes(None) == "unknown"
    assert format_bytes(3 * GIB // 2) == "1.5 GiB"
    assert format_bytes(512 * 1024**2) == "512.0 MiB"
