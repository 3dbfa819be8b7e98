"""Steps placed on a two-node Ray cluster (on loopback), the reactors unchanged.

Results (typed arguments and results, sync and async steps, resources that pick a
node), retries after a killed worker, timeouts and cancellation that reach the Ray
task, an argument that cannot cross, trace continuity, a ``for_each`` spread over
the cluster with ``batch_size`` in flight, a pool of warm actors, and no Ray socket
on anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import System
from actors.llm import RayConfig
from otel.testing import InMemorySpanExporter
from reactor.app import Engine
from reactor.placement import RayPlacement
from reactor.run import RunCancelledError, RunFailedError, StepFailed
from tests.reactor.placement.conftest import RayCluster
from tests.support import ray_steps as rs

pytestmark = pytest.mark.slow

WAIT = 60.0
"""Seconds a test waits for a run (a Ray worker's first start imports the package)."""


@pytest.fixture
def engine(ray_cluster: RayCluster, system: System, tmp_path: Path) -> Iterator[Engine]:
    """An engine whose Ray placement finds the session's cluster already joined."""
    with Engine(system, db_path=tmp_path / "journal.db") as running:
        yield running


def _wait(ray_cluster: RayCluster, name: str) -> object:
    import ray

    return ray.get(ray_cluster.recorder.wait.remote(name, WAIT), timeout=WAIT + 5)


def _all_cpus_free(ray_cluster: RayCluster) -> None:
    """Wait until no task holds a CPU (one an earlier test cancelled may still be ending)."""
    import ray

    available: Any = ray.available_resources  # (untyped in Ray)
    total: Any = ray.cluster_resources
    deadline = time.monotonic() + WAIT
    while available().get("CPU", 0) < total().get("CPU", 0):
        if time.monotonic() > deadline:
            steps = ray.get(ray_cluster.recorder.recorded.remote(), timeout=WAIT)
            pytest.fail(f"CPUs still held: {available()}; the steps' reports: {steps}")
        time.sleep(0.05)  # the cluster's state is polled: Ray offers no event for it


@pytest.mark.timeout(2 * WAIT + 30)  # the CPUs' wait, then the run's
def test_for_each_spreads_over_the_cluster_within_batch_size(
    engine: Engine, ray_cluster: RayCluster
) -> None:
    """Elements run on both nodes, never more than ``batch_size`` at once, results in order.

    The first test on the cluster: it needs both nodes' CPUs free, and after other
    tests a CPU has been seen held for over a minute (a warm runner of a closed engine,
    or a killed worker's, still counted by Ray), whatever the cause.
    """
    _all_cpus_free(ray_cluster)  # with a CPU held, both elements of a batch queue on the other
    results = engine.run(rs.FanOut, {"items": list(range(6))}, timeout=WAIT)
    assert [r["item"] for r in results] == list(range(6))
    assert len({r["node"] for r in results}) == 2
    assert max(r["peak"] for r in results) <= 2


def test_steps_run_on_ray_with_typed_values(engine: Engine) -> None:
    """Sync and async steps run in Ray workers; a Struct crosses both ways as itself."""
    result = engine.run(rs.Scoring, {"doc": rs.Doc(title="ray", words=42)}, timeout=WAIT)
    assert result["pid"] == os.getpid()  # `combine` said local
    scored = result["scored"]
    assert isinstance(scored, rs.Scored)
    assert scored.score == 4.2
    assert scored.pid != os.getpid()
    tagged = result["tagged"]
    assert tagged["tag"] == "RAY"
    assert tagged["step"] == "tagged"
    assert tagged["attempt"] == 1
    assert tagged["pid"] != os.getpid()


def test_resources_choose_the_node(engine: Engine, ray_cluster: RayCluster) -> None:
    """A GPU, memory and a custom resource: the call runs on the node that has them."""
    result = engine.run(rs.NeedsGpu, {}, timeout=WAIT)
    assert result["node"] == ray_cluster.gpu_node
    assert result["gpus"] == [0]


def test_the_engine_places_without_the_definition_changing(
    ray_cluster: RayCluster, system: System, tmp_path: Path
) -> None:
    """Engine-wide Ray placement moves an unplaced reactor; an override brings a step back."""
    del ray_cluster
    with Engine(system, db_path=tmp_path / "a.db", placement="ray") as engine:
        assert engine.run(rs.Unplaced, {}, timeout=WAIT)["pid"] != os.getpid()
    overrides = {"Scoring.scored": "local", "Unplaced": "local"}
    with Engine(system, db_path=tmp_path / "b.db", placement="ray", placements=overrides) as e:
        assert e.run(rs.Unplaced, {}, timeout=WAIT)["pid"] == os.getpid()
        result = e.run(rs.Scoring, {"doc": rs.Doc(title="x", words=1)}, timeout=WAIT)
        assert result["scored"].pid == os.getpid()
        assert result["tagged"]["pid"] != os.getpid()


def test_a_killed_worker_is_retried(engine: Engine, ray_cluster: RayCluster) -> None:
    """The worker dies mid-call: a transient failure (actor_crashed), so the step retries."""
    handle = engine.start(rs.KilledWorker, {})
    pid = _wait(ray_cluster, "dies:pid")
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)
    assert handle.result(WAIT) == "survived on attempt 2"
    failed = [e for e in engine.history(handle.run_id) if isinstance(e, StepFailed)]
    assert [(f.error.kind, f.error.retryable) for f in failed] == [("actor_crashed", True)]
    assert "Ray worker running step 'survived' was lost" in failed[0].error.message


def test_a_timeout_cancels_the_ray_task(engine: Engine, ray_cluster: RayCluster) -> None:
    """Past the step's timeout the attempt fails as a timeout, and the task is interrupted.

    A run first, so that the cluster has a worker started: on a loaded machine a
    worker's first start can take longer than the step's timeout, and a task that
    never started has nothing to interrupt.
    """
    engine.run(rs.Scoring, {"doc": rs.Doc(title="warm", words=1)}, timeout=WAIT)
    with pytest.raises(RunFailedError) as caught:
        engine.run(rs.TimesOut, {"key": "timeout"}, timeout=WAIT)
    (error,) = caught.value.errors
    assert error.kind == "timeout"
    assert "on Ray took longer than its timeout" in error.message
    assert isinstance(_wait(ray_cluster, "timeout:interrupted"), int)


def test_cancelling_the_run_cancels_the_ray_task(engine: Engine, ray_cluster: RayCluster) -> None:
    """A cancelled run stops its step's Ray task."""
    handle = engine.start(rs.Cancelled, {"key": "cancel"})
    _wait(ray_cluster, "cancel:started")
    handle.cancel("the test is done with it")
    with pytest.raises(RunCancelledError):
        handle.result(WAIT)
    assert isinstance(_wait(ray_cluster, "cancel:interrupted"), int)


def test_an_argument_that_cannot_cross_fails_naming_it(engine: Engine) -> None:
    """Msgspec's rule, as in the journal: the step fails at once, naming step and argument."""
    handle = engine.start(rs.Unencodable, {})
    with pytest.raises(RunFailedError) as caught:
        handle.result(WAIT)
    (error,) = caught.value.errors
    assert error.step == "use"
    assert error.error == "UnencodableError"
    assert "step 'use'" in error.message
    assert "argument 'thing'" in error.message
    assert "Opaque" in error.message
    failed = [e for e in engine.history(handle.run_id) if isinstance(e, StepFailed)]
    assert len(failed) == 1  # not retried: it would fail the same way


def test_spans_on_the_worker_join_the_run_trace(
    engine: Engine, spans: InMemorySpanExporter
) -> None:
    """The step's trace context travels into the task: its spans are the step span's children."""
    result = engine.run(rs.Traced, {}, timeout=WAIT)
    step_spans = [s for s in spans.get_finished_spans() if "remote" in s.name]
    assert step_spans, [s.name for s in spans.get_finished_spans()]
    step_span = step_spans[0]
    assert result["trace_id"] == f"{step_span.context.trace_id:032x}"
    assert result["parent_id"] == f"{step_span.context.span_id:016x}"


def test_a_pool_of_actors_keeps_state(engine: Engine) -> None:
    """``actors=1``: every call goes to one warm process, which keeps its state."""
    first = engine.run(rs.Warm, {"n": 1}, timeout=WAIT)
    second = engine.run(rs.Warm, {"n": 2}, timeout=WAIT)
    assert second["pid"] == first["pid"] != os.getpid()
    assert second["calls"] == first["calls"] + 1


def _descendants(pid: int) -> set[int]:
    found = {pid}
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            found |= _descendants(int(child))
    return found


def _listening(pids: set[int]) -> list[tuple[int, str]]:
    """``(pid, address)`` of every TCP socket that ``pids`` listen on (from ``/proc``)."""
    by_inode: dict[str, str] = {}
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            raw = fields[1].split(":")[0]
            assert len(raw) == width
            if width == 8:
                address = socket.inet_ntop(socket.AF_INET, bytes.fromhex(raw)[::-1])
            else:
                words = b"".join(bytes.fromhex(raw[i : i + 8])[::-1] for i in range(0, 32, 8))
                address = socket.inet_ntop(socket.AF_INET6, words)
            by_inode[fields[9]] = address
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inode = target[len("socket:[") : -1]
                        if inode in by_inode:
                            found.append((pid, by_inode[inode]))
    return found


def test_no_ray_socket_listens_beyond_loopback(engine: Engine) -> None:
    """Every listening socket of the cluster's processes is on 127.0.0.1."""
    engine.run(rs.Unplaced, {}, timeout=WAIT)  # the workers are up
    ours = _descendants(os.getpid())  # the driver too: its core worker listens
    listening = _listening(ours)
    assert len({pid for pid, _ in listening}) >= 4, listening  # gcs, raylets, workers
    loopback = {"127.0.0.1", "::ffff:127.0.0.1"}
    assert [(pid, a) for pid, a in listening if a not in loopback] == []


def test_a_node_that_dies_fails_the_attempt_transiently(
    engine: Engine, ray_cluster: RayCluster
) -> None:
    """The node running the call is removed: the attempt is retried on a node that joins."""
    doomed = ray_cluster.cluster.add_node(num_cpus=1, resources={"doomed": 1})
    handle = engine.start(rs.NodeDies, {})
    assert _wait(ray_cluster, "node:started") == doomed.node_id
    ray_cluster.cluster.remove_node(doomed)
    replacement = ray_cluster.cluster.add_node(num_cpus=1, resources={"doomed": 1})
    try:
        result = handle.result(WAIT)
        assert result == {"attempt": 2, "node": replacement.node_id}
        failed = [e for e in engine.history(handle.run_id) if isinstance(e, StepFailed)]
        assert [(f.error.kind, f.error.retryable) for f in failed] == [("actor_crashed", True)]
    finally:
        ray_cluster.cluster.remove_node(replacement)


def test_cancelling_a_sync_call_on_an_actor_interrupts_it(
    engine: Engine, ray_cluster: RayCluster
) -> None:
    """Ray cannot interrupt a sync actor's running call; the actor's control thread does."""
    handle = engine.start(rs.CancelledOnPool, {"key": "pool-cancel"})
    started = _wait(ray_cluster, "pool-cancel:started")
    handle.cancel("the test is done with it")
    with pytest.raises(RunCancelledError):
        handle.result(WAIT)
    assert _wait(ray_cluster, "pool-cancel:interrupted") == started  # in place: same process


def test_a_call_deaf_to_the_interrupt_is_killed_after_the_grace(
    ray_cluster: RayCluster, system: System, tmp_path: Path
) -> None:
    """Blocked inside C past ``cancel_grace_s``: the actor is killed and replaced."""
    placement = RayPlacement(RayConfig(cancel_grace_s=0.2))
    targets = {"ray": placement}
    with Engine(system, db_path=tmp_path / "j.db", placement_targets=targets) as engine:
        first = engine.start(rs.StuckOnPool, {"key": "stuck-1"})
        stuck = _wait(ray_cluster, "stuck-1:started")
        first.cancel("the test is done with it")
        with pytest.raises(RunCancelledError):
            first.result(WAIT)
        second = engine.start(rs.StuckOnPool, {"key": "stuck-2"})  # runs once it is replaced
        assert _wait(ray_cluster, "stuck-2:started") != stuck
        second.cancel("the test is done with it")
        with pytest.raises(RunCancelledError):
            second.result(WAIT)


def test_resources_no_node_has_fail_at_once_naming_them(
    engine: Engine, ray_cluster: RayCluster, system: System, tmp_path: Path
) -> None:
    """64 GPUs, a resource nobody offers, two that no one node has: failed before sending."""
    del ray_cluster
    cases = {
        rs.TooManyGpus: ("big", "GPU=64", "no node of the cluster has enough GPU"),
        rs.NoSuchResource: ("odd", "quantum=1", "enough quantum (the most one node has: 0)"),
        rs.NotTogether: ("split", "GPU=1", "no single node has all of them together"),
    }
    for reactor, (step_name, asked, why) in cases.items():
        handle = engine.start(reactor, {})
        with pytest.raises(RunFailedError) as caught:
            handle.result(WAIT)
        (error,) = caught.value.errors
        assert error.error == "InfeasibleResourcesError"
        assert f"step {step_name!r} of reactor {reactor.__name__!r}" in error.message
        assert asked in error.message
        assert why in error.message
        assert "check_resources = false" in error.message
        failed = [e for e in engine.history(handle.run_id) if isinstance(e, StepFailed)]
        assert len(failed) == 1  # not retried: it would fail the same way
    # An autoscaling cluster turns the check off: the step waits for its nodes (here,
    # until its timeout).
    targets = {"ray": RayPlacement(RayConfig(check_resources=False))}
    with Engine(system, db_path=tmp_path / "a.db", placement_targets=targets) as autoscaled:
        with pytest.raises(RunFailedError) as caught:
            autoscaled.run(rs.TooManyGpus, {}, timeout=WAIT)
        assert {e.kind for e in caught.value.errors} == {"timeout"}
