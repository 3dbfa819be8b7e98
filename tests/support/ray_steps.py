"""Reactors whose steps run on Ray, and a recorder the steps report to (Ray tests).

The module is importable by the Ray workers (the repository is on their path), so the
steps travel by reference, as a user's steps would.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import msgspec

from dsl import Input, Placement, Reactor, StepContext, for_each, ref, step, value

RECORDER = "reactor-test-recorder"
"""The name of the :class:`Recorder` actor the steps find."""


class Recorder:
    """A Ray actor: steps record events, tests wait for them (no sleeps)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.events: dict[str, asyncio.Event] = {}
        self.running = 0
        self.peak = 0

    def _event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    async def record(self, name: str, value: Any = None) -> None:
        """Note ``name`` (with ``value``) and wake whoever waits for it."""
        self.values[name] = value
        self._event(name).set()

    async def wait(self, name: str, timeout: float = 30.0) -> Any:
        """The value recorded under ``name``, once it is."""
        await asyncio.wait_for(self._event(name).wait(), timeout)
        return self.values[name]

    async def recorded(self) -> dict[str, Any]:
        """Everything recorded so far (for a failing test's message)."""
        return dict(self.values)

    async def enter(self) -> None:
        """A call started: counts calls under way, and the most at once."""
        self.running += 1
        self.peak = max(self.peak, self.running)

    async def leave(self) -> int:
        """A call ended; returns the most calls that were under way at once."""
        self.running -= 1
        return self.peak


def recorder() -> Any:
    """The recorder actor (from inside a Ray worker)."""
    import ray

    return ray.get_actor(RECORDER, namespace="reactor-tests")


def _node() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


class Doc(msgspec.Struct, frozen=True):
    """A typed argument: it crosses as JSON and is a Doc again on the worker."""

    title: str
    words: int


class Scored(msgspec.Struct, frozen=True):
    """A typed result."""

    title: str
    score: float
    pid: int


# ---- results -------------------------------------------------------------------------


def score(doc: Doc) -> Scored:
    """A sync step on Ray: gets a Doc (not a dict), returns a Scored."""
    assert isinstance(doc, Doc), type(doc)
    return Scored(title=doc.title, score=doc.words / 10, pid=os.getpid())


async def tag(doc: Doc, ctx: StepContext) -> dict[str, Any]:
    """An async step on Ray, with its context."""
    await asyncio.sleep(0)
    return {"tag": doc.title.upper(), "step": ctx.step, "attempt": ctx.attempt, "pid": os.getpid()}


class Scoring(Reactor, placement="ray"):
    """Every step on Ray, but ``combine``, which says local."""

    doc = Input(Doc)
    scored = step(score)
    tagged = step(tag)

    @step(placement="local")
    def combine(scored: Scored, tagged: dict[str, Any]) -> dict[str, Any]:
        return {"scored": scored, "tagged": tagged, "pid": os.getpid()}


def where_am_i() -> dict[str, Any]:
    """Which node and process ran it, and what Ray gave it."""
    import ray

    return {
        "node": _node(),
        "pid": os.getpid(),
        "gpus": list(ray.get_gpu_ids()),
    }


class Unplaced(Reactor):
    """Says nothing about placement: the engine decides."""

    @step
    def where() -> dict[str, Any]:
        return {"pid": os.getpid()}


class NeedsGpu(Reactor):
    """A step that holds a GPU, a custom resource and memory: only the GPU node fits."""

    where = step(
        where_am_i,
        placement=Placement("ray", num_gpus=1, memory=10 * 2**20, resources={"scorer": 1}),
    )


# ---- failures ------------------------------------------------------------------------


def dies_once(ctx: StepContext) -> str:
    """Attempt 1 reports its pid and blocks until the test kills the process."""
    if ctx.attempt == 1:
        # The pid is sent without waiting for the answer, and the kill finds the worker
        # in a plain sleep: killed while Ray counts it blocked in (or waking from) a
        # ray.get, a worker's CPU can stay counted as held.
        recorder().record.remote("dies:pid", os.getpid())
        time.sleep(60.0)
        return "not killed"
    return f"survived on attempt {ctx.attempt}"


class KilledWorker(Reactor, placement="ray"):
    """A step whose worker is killed mid-call; its retry policy retries it."""

    survived = step(dies_once, max_retries=2, backoff=0)


def blocks(key: str) -> str:
    """Reports that it started, then runs until interrupted (which it reports too)."""
    import ray

    try:
        ray.get(recorder().record.remote(f"{key}:started", os.getpid()))
        # Long enough for any test to interrupt it; short enough that a call whose
        # interrupt went astray frees its CPU before the next test needs the cluster.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.01)
    except KeyboardInterrupt:
        ray.get(recorder().record.remote(f"{key}:interrupted", os.getpid()))
        raise
    return "ran to the end"


class TimesOut(Reactor, placement="ray"):
    """A step past its timeout: the Ray task is cancelled."""

    key = Input(str)
    slow = step(blocks, timeout=5.0, max_retries=0)  # time for a busy worker to start it


class Cancelled(Reactor, placement="ray"):
    """A step whose run is cancelled while it runs on Ray."""

    key = Input(str)
    slow = step(blocks, max_retries=0)


class Opaque:
    """Not something msgspec can encode."""


OPAQUE = value(Opaque())
"""A constant source the definition holds, which cannot be encoded."""


class Unencodable(Reactor):
    """A Ray step gets a value that cannot cross (a constant of the definition)."""

    @step(placement="ray", max_retries=3)
    def use(thing: Any = OPAQUE) -> str:
        return "never runs"


# ---- tracing -------------------------------------------------------------------------


def traced() -> dict[str, str]:
    """Makes a span on the worker (its own exporter) and says where it hangs."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("worker").start_as_current_span("work on the worker"):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.parent is not None
    return {
        "trace_id": f"{span.context.trace_id:032x}",
        "parent_id": f"{span.parent.span_id:016x}",
    }


class Traced(Reactor, placement="ray"):
    """One step on Ray that makes a span there."""

    remote = step(traced)


# ---- for_each and actors -------------------------------------------------------------


def visit(item: int) -> dict[str, Any]:
    """One element: counts the calls under way (at the recorder) and says where it ran."""
    import ray

    ray.get(recorder().enter.remote())
    time.sleep(0.2)
    peak = ray.get(recorder().leave.remote())
    return {"item": item, "node": _node(), "peak": peak}


class Visit(Reactor, placement=Placement("ray", num_cpus=1)):
    """One element of the fan-out."""

    item = Input(int)
    visited = step(visit)


class FanOut(Reactor):
    """Every element of a collection on the cluster, two at a time."""

    items = Input(list[int])
    each = for_each(ref("items"), Visit, element="item", batch_size=2)


_CALLS: list[int] = []
"""Calls this process served: an actor keeps it between calls."""


def counted(n: int) -> dict[str, int]:
    """State kept in the process between calls (a warm model would be kept the same way)."""
    _CALLS.append(n)
    return {"calls": len(_CALLS), "pid": os.getpid()}


class Warm(Reactor):
    """A step on a pool of one Ray actor."""

    n = Input(int)
    count = step(counted, placement=Placement("ray", actors=1, num_cpus=0))


# ---- a node that dies ----------------------------------------------------------------


def on_doomed_node(ctx: StepContext) -> dict[str, Any]:
    """Attempt 1 reports its node and blocks until the test removes that node."""
    import ray

    if ctx.attempt == 1:
        ray.get(recorder().record.remote("node:started", _node()))
        ray.get(recorder().wait.remote("never", 60.0))
    return {"attempt": ctx.attempt, "node": _node()}


class NodeDies(Reactor):
    """A step on the only node with the ``doomed`` resource, which the test removes."""

    survived = step(
        on_doomed_node,
        placement=Placement("ray", num_cpus=0, resources={"doomed": 1}),
        max_retries=2,
        backoff=0,
    )


# ---- cancelling sync calls on actors -------------------------------------------------


class CancelledOnPool(Reactor):
    """A sync step on a pool of one Ray actor, cancelled while it runs."""

    key = Input(str)
    slow = step(blocks, placement=Placement("ray", actors=1, num_cpus=0), max_retries=0)


def sleeps_in_c(key: str) -> str:
    """Reports its pid, then blocks inside C (one ``time.sleep``), deaf to interrupts."""
    import ray

    ray.get(recorder().record.remote(f"{key}:started", os.getpid()))
    time.sleep(60)
    return "slept"


class StuckOnPool(Reactor):
    """A sync step on a pool of one actor that an interrupt cannot reach."""

    key = Input(str)
    # A call queued behind the stuck one fails transiently when the actor is killed:
    # its retry finds the actor restarted.
    stuck = step(
        sleeps_in_c,
        placement=Placement("ray", actors=1, num_cpus=0),
        max_retries=1,
        backoff=0,
    )


# ---- resources no node has -----------------------------------------------------------


def never_runs() -> str:
    """A step that the cluster can never place."""
    return "ran"


class TooManyGpus(Reactor):
    """64 GPUs, on a cluster with one."""

    big = step(never_runs, placement=Placement("ray", num_gpus=64), timeout=1.0, max_retries=3)


class NoSuchResource(Reactor):
    """A custom resource no node offers."""

    odd = step(never_runs, placement=Placement("ray", resources={"quantum": 1}), max_retries=3)


class NotTogether(Reactor):
    """A GPU (the second node's) and the head's own resource: no node has both."""

    split = step(
        never_runs,
        placement=Placement("ray", num_gpus=1, resources={"node:__internal_head__": 0.001}),
    )
