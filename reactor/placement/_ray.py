"""Ray placement: a step's calls run as Ray tasks (or on a pool of Ray actors).

The engine stays where it is: the Run actor dispatches, journals and retries; here a
call is submitted and awaited on the event loop (``await ref``), without a thread.

1. Connect once, in a worker thread (``ray.init`` takes seconds): to the configured
   address, or to a local instance bound to 127.0.0.1 only (:func:`loopback_only`).
2. Encode the arguments as the journal does; one that cannot be encoded fails the
   step with :class:`UnencodableError` naming it (before anything is sent).
3. Check the call's resources against the cluster's nodes, once per shape (unless
   ``check_resources`` is off): more than any one node has fails the step at once with
   :class:`InfeasibleResourcesError`.
4. Submit: to a warm runner actor of the call's resource shape if one is idle (one
   actor call, no lease from a raylet); else a task with the placement's resources and
   ``max_retries=0`` (the journal owns retries); or, with ``actors=n``, a call to the
   least busy actor of the step's pool. Runners start in the background once a shape's
   tasks run one at a time, hold what one call of the shape holds, and are given back
   after ``warm_idle_s`` idle, or at once when a task of this engine waits; shapes the
   cluster fits fewer than twice get none.
5. Await the reply within the step's timeout. At the timeout, or when the attempt is
   cancelled, stop the call: ``ray.cancel`` for a task (``KeyboardInterrupt`` in it);
   for a sync call on an actor, the actor's ``interrupt`` (its ``control`` group runs
   beside the call and raises ``KeyboardInterrupt`` in the call's thread). A call still
   running ``cancel_grace_s`` later is ended by force: ``ray.cancel(force=True)`` kills
   a task's worker, and a pool's actor is killed and replaced.
6. A worker or node that died is :class:`WorkerLostError`, transient: the step's
   retry policy applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate

from reactor.placement._errors import (
    InfeasibleResourcesError,
    PlacementError,
    RayNotInstalledError,
    UnencodableError,
    WorkerLostError,
)
from reactor.placement._placement import PlacedCall
from reactor.placement._ray_worker import runner_message
from reactor.run import EncodeError, Err, Ok, Outcome, decode_value, encode_value

if TYPE_CHECKING:
    from actors.llm import RayConfig

__all__ = ["LOOPBACK_ENV", "RayPlacement", "loopback_only"]

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to ``0``, every process of a Ray instance started here binds 127.0.0.1 only.

By default Ray binds the machine's network address (and its servers every interface).
With this set to ``0`` Ray takes the loopback address as the node's, and its servers
listen there, as it does by default on macOS and Windows.
"""


def loopback_only() -> None:
    """Make Ray instances started from this process bind 127.0.0.1 only.

    Sets :data:`LOOPBACK_ENV` for the processes Ray starts, and the constant Ray read
    from it at import (when it was imported before).
    """
    os.environ[LOOPBACK_ENV] = "0"
    try:
        from ray._private import ray_constants  # noqa: PLC0415 - Ray is optional
    except ImportError:
        return
    ray_constants.ENABLE_RAY_CLUSTER = False


def _import_ray(where: str) -> Any:
    try:
        import ray  # noqa: PLC0415 - Ray is optional
    except ImportError as exc:
        raise RayNotInstalledError(where) from exc
    return ray


def _key(call: PlacedCall) -> tuple[Any, ...]:
    p = call.placement
    return (call.fn, p.num_cpus, p.num_gpus, p.memory, tuple(sorted(p.resources.items())))


def _options(call: PlacedCall) -> dict[str, Any]:
    """The Ray options of one call's resources (what a task of it asks for)."""
    p = call.placement
    options: dict[str, Any] = {}
    if p.num_cpus is not None:
        options["num_cpus"] = p.num_cpus
    if p.num_gpus is not None:
        options["num_gpus"] = p.num_gpus
    if p.memory is not None:
        options["memory"] = p.memory
    if p.resources:
        options["resources"] = dict(p.resources)
    return options


def _wanted(call: PlacedCall) -> dict[str, float]:
    """What one call holds on its node, by Ray's resource names (a task's default CPU)."""
    p = call.placement
    wanted = {"CPU": 1.0 if p.num_cpus is None else float(p.num_cpus)}
    if p.num_gpus:
        wanted["GPU"] = float(p.num_gpus)
    if p.memory:
        wanted["memory"] = float(p.memory)
    wanted.update({name: float(amount) for name, amount in p.resources.items()})
    return {name: amount for name, amount in wanted.items() if amount > 0}


def _missing(wanted: dict[str, float], nodes: list[dict[str, float]]) -> dict[str, float] | None:
    """``None`` if a node has all of ``wanted``; else what no node has enough of."""
    most: dict[str, float] = {}
    for have in nodes:
        if all(have.get(name, 0.0) >= amount for name, amount in wanted.items()):
            return None
        for name in wanted:
            most[name] = max(most.get(name, 0.0), have.get(name, 0.0))
    return {
        name: most.get(name, 0.0) for name, amount in wanted.items() if most.get(name, 0.0) < amount
    }


def _fits(wanted: dict[str, float], nodes: list[dict[str, float]]) -> float:
    """How many calls that each hold ``wanted`` the nodes can run at once."""
    if not wanted:
        return float("inf")
    return sum(
        min(have.get(name, 0.0) // amount for name, amount in wanted.items()) for have in nodes
    )


class _Pool:
    """``n`` Ray actors for one step function; each call goes to the least busy."""

    def __init__(self, ray: Any, call: PlacedCall, options: dict[str, Any]) -> None:
        from reactor.placement._ray_worker import (  # noqa: PLC0415
            CONTROL,
            AsyncStepHost,
            SyncStepHost,
        )

        self.is_async = call.is_async
        if call.is_async:
            cls = ray.remote(AsyncStepHost)
        else:  # interrupt() runs beside a call, in its own group
            cls = ray.remote(concurrency_groups=CONTROL)(SyncStepHost)
        self._cls = cls = cls.options(**options, max_restarts=-1, max_task_retries=0)
        self._args = (call.fn, call.step)
        self.actors = [cls.remote(*self._args) for _ in range(call.placement.actors)]
        self.busy = [0] * len(self.actors)

    def submit(self, ray: Any, payload: bytes, carrier: dict[str, str] | None, token: str) -> _Sent:
        index = min(range(len(self.busy)), key=self.busy.__getitem__)
        self.busy[index] += 1
        actor = self.actors[index]
        if self.is_async:
            ref = actor.call.remote(payload, carrier)
            return _Sent(ref, lambda: _cancel(ray, ref), None, lambda _: self._done(index))
        ref = actor.call.remote(payload, carrier, token)

        def stop() -> None:
            _cancel(ray, ref)  # a call still queued
            actor.interrupt.options(concurrency_group="control").remote(token)  # the call running

        def kill() -> None:  # a new actor takes its place (calls queued on it fail: transient)
            if self.actors[index] is actor:
                self.actors[index] = self._cls.remote(*self._args)
            ray.kill(actor, no_restart=True)

        return _Sent(ref, stop, kill, lambda _: self._done(index))

    def _done(self, index: int) -> None:
        self.busy[index] -= 1


def _cancel(ray: Any, ref: Any, *, force: bool = False) -> None:
    with contextlib.suppress(Exception):
        ray.cancel(ref, force=force, recursive=True)


class _Sent:
    """One call on its way: its reply, how to stop it, and what to do once it is over.

    Attributes:
        ref: The reply's ObjectRef.
        stop: Interrupt it (``ray.cancel`` for a task; the actor's ``interrupt``).
        kill: End it by force once ``stop`` did not within the grace period (``None``:
            leave it be).
        settled: Called once, when it is over: ``True`` if it ended (by itself or when
            stopped), ``False`` if it was killed or its worker was lost.
    """

    __slots__ = ("kill", "ref", "settled", "stop")

    def __init__(
        self,
        ref: Any,
        stop: Callable[[], None],
        kill: Callable[[], None] | None,
        settled: Callable[[bool], None],
    ) -> None:
        self.ref = ref
        self.stop = stop
        self.kill = kill
        self.settled = settled


class _Runner:
    """A warm :class:`~reactor.placement._ray_worker.StepRunner` and what it was sent."""

    __slots__ = ("fns", "handle", "uses")

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.fns: set[str] = set()
        self.uses = 0


class _Warm:
    """The warm runners of one resource shape."""

    __slots__ = ("closed", "count", "enabled", "idle", "options", "runners", "shed_at", "starting")

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.enabled = True
        self.closed = False  # the placement closed: it starts no more runners
        self.idle: list[_Runner] = []
        self.runners: list[_Runner] = []  # alive or starting
        self.count = 0
        self.starting = 0
        self.shed_at = -1e9

    def open(self) -> bool:
        """Whether its placement is still open (read anew each time: see ``_grow``)."""
        return not self.closed


class RayPlacement:
    """Runs step calls on a Ray cluster.

    Args:
        config: Where the cluster is (``None``: the configuration's ``[ray]`` section,
            which ``REACTOR_RAY__ADDRESS`` sets; without an address, a local instance
            on 127.0.0.1), and how calls are run (warm actors, the cancel grace, the
            resource check).

    Raises:
        RayNotInstalledError: Ray is not installed (``pip install 'reactor-swarm[ray]'``).
    """

    name = "ray"

    def __init__(self, config: RayConfig | None = None) -> None:
        self._ray = _import_ray("a step")
        self._config = config
        self._lock = threading.Lock()
        self._connected = False
        self._started = False
        self._tasks: dict[Any, Any] = {}
        self._pools: dict[tuple[Any, ...], _Pool] = {}
        self._warm: dict[tuple[Any, ...], _Warm] = {}
        self._fn_keys: dict[Any, str] = {}
        self._feasible: set[tuple[Any, ...]] = set()
        self._tasks_out = 0
        self._tokens = itertools.count()
        self._background: set[asyncio.Future[Any]] = set()
        self._lost: tuple[type[BaseException], ...] = self._lost_errors()

    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        rx = self._ray.exceptions
        return (
            rx.WorkerCrashedError,
            rx.NodeDiedError,
            rx.RayActorError,
            rx.ObjectLostError,
            rx.LocalRayletDiedError,
            rx.OutOfMemoryError,
        )

    @property
    def warm_actors(self) -> int:
        """Warm actors up now (idle or busy), over every resource shape."""
        return sum(warm.count - warm.starting for warm in self._warm.values())

    @property
    def started(self) -> bool:
        """Whether this placement started the Ray instance it uses (and shuts it down)."""
        return self._started

    def connect(self) -> None:
        """Join the configured cluster, or start a local one on loopback (blocking, once).

        An already initialised Ray (``ray.init`` called by the application) is used as
        it is.
        """
        with self._lock:
            if self._connected:
                return
            ray = self._ray
            config = self._config
            if config is None:
                from actors.llm import load_config  # noqa: PLC0415 - only when needed

                config = self._config = load_config().ray
            if not ray.is_initialized():
                options: dict[str, Any] = {
                    "namespace": config.namespace,
                    "include_dashboard": False,
                    "log_to_driver": False,
                }
                if config.address:
                    ray.init(address=config.address, **options)
                else:
                    loopback_only()
                    ray.init(  # "local": a new instance, never one found running
                        address="local",
                        num_cpus=config.num_cpus,
                        num_gpus=config.num_gpus,
                        **options,
                    )
                self._started = True
            self._connected = True

    def place(self, call: PlacedCall) -> Any:
        """The coroutine that runs ``call`` on the cluster and yields its outcome."""
        return self._run(call)

    def _task(self, call: PlacedCall) -> Any:
        key = _key(call)
        task = self._tasks.get(key)
        if task is None:
            from reactor.placement._ray_worker import run_placed  # noqa: PLC0415

            fn, is_async, step = call.fn, call.is_async, call.step

            def placed(payload: bytes, carrier: dict[str, str] | None) -> Any:
                return run_placed(fn, is_async, step, payload, carrier)

            placed.__name__ = placed.__qualname__ = getattr(fn, "__name__", step)
            remote = self._ray.remote(max_retries=0, retry_exceptions=False)(placed)
            options = _options(call)
            task = remote.options(**options) if options else remote
            self._tasks[key] = task
        return task

    def _encode(self, call: PlacedCall) -> bytes:
        try:
            return bytes(encode_value(call.kwargs))
        except EncodeError:
            pass
        for name, value in call.kwargs.items():
            try:
                encode_value(value)
            except EncodeError as exc:
                raise UnencodableError(call.step, f"argument {name!r}", str(exc)) from None
        raise UnencodableError(call.step, "arguments", "msgspec cannot encode them")

    def _check(self, call: PlacedCall) -> InfeasibleResourcesError | None:
        """An error if no node of the cluster has what one call holds (cached if some does)."""
        shape = _key(call)[1:]
        if shape in self._feasible:
            return None
        wanted = _wanted(call)
        missing = _missing(wanted, self._nodes())
        if missing is None:
            self._feasible.add(shape)
            return None
        return InfeasibleResourcesError(call.reactor, call.step, wanted, missing)

    async def _run(self, call: PlacedCall) -> Outcome:
        if not self._connected:
            try:
                await asyncio.to_thread(self.connect)
            except Exception as exc:  # noqa: BLE001 - the step fails, naming the cause
                msg = f"step {call.step!r} is placed on Ray, and Ray could not be reached: {exc}"
                return Err(PlacementError(msg))
        try:
            payload = self._encode(call)
        except UnencodableError as exc:
            return Err(exc)
        config = self._config
        assert config is not None
        if config.check_resources:
            try:
                infeasible = self._check(call)
            except Exception as exc:  # noqa: BLE001 - the step fails, naming the cause
                msg = f"step {call.step!r}: Ray's nodes could not be listed: {exc}"
                return Err(PlacementError(msg))
            if infeasible is not None:
                return Err(infeasible)
        carrier: dict[str, str] | None = None
        if call.trace is not None:
            carrier = {}
            propagate.inject(carrier, context=call.trace)
        try:
            sent = self._send(call, payload, carrier)
        except Exception as exc:  # noqa: BLE001 - e.g. a function Ray cannot pickle
            msg = f"step {call.step!r} could not be sent to Ray: {type(exc).__name__}: {exc}"
            return Err(PlacementError(msg))
        return await self._await(call, sent)

    def _send(self, call: PlacedCall, payload: bytes, carrier: dict[str, str] | None) -> _Sent:
        ray = self._ray
        token = f"{call.run_id}/{call.step}/{call.attempt}/{next(self._tokens)}"
        if call.placement.actors:
            return self._pool(call).submit(ray, payload, carrier, token)
        warm = self._warm_for(call)
        runner = warm.idle.pop() if warm is not None and warm.idle else None
        if warm is not None and runner is not None:
            try:
                return self._on_runner(warm, runner, call, payload, carrier, token)
            except BaseException:
                self._drop(warm, runner)  # e.g. a function Ray cannot pickle
                raise
        ref = self._task(call).remote(payload, carrier)
        self._tasks_out += 1
        self._shed_idle()  # a task of ours waits: give back what idle runners hold

        def settled(_: bool) -> None:
            self._tasks_out -= 1
            if warm is not None and not self._tasks_out:  # calls one at a time: warm up
                self._grow(warm)

        return _Sent(ref, lambda: _cancel(ray, ref), lambda: _cancel(ray, ref, force=True), settled)

    # ---- warm runners ------------------------------------------------------------------

    def _warm_for(self, call: PlacedCall) -> _Warm | None:
        config = self._config
        if config is None or not config.warm_actors:
            return None
        options = _options(call)
        options.setdefault("num_cpus", 1)  # as a task holds (an actor's default is 0)
        shape = tuple(sorted((k, repr(v)) for k, v in options.items()))
        warm = self._warm.get(shape)
        if warm is None:
            warm = self._warm[shape] = _Warm(options)
            # Only where the cluster fits two calls of this shape at once: a runner
            # must never be what keeps a task of its own shape waiting.
            warm.enabled = _fits(_wanted(call), self._nodes()) >= 2
        return warm if warm.enabled else None

    def _nodes(self) -> list[dict[str, float]]:
        """What each live node of the cluster has, by resource."""
        return [
            {name: float(amount) for name, amount in node.get("Resources", {}).items()}
            for node in self._ray.nodes()
            if node.get("Alive")
        ]

    def _on_runner(  # noqa: PLR0917 - one call's parts
        self,
        warm: _Warm,
        runner: _Runner,
        call: PlacedCall,
        payload: bytes,
        carrier: dict[str, str] | None,
        token: str,
    ) -> _Sent:
        ray = self._ray
        fn_key = self._fn_keys.get(call.fn)
        if fn_key is None:
            fn_key = self._fn_keys[call.fn] = str(len(self._fn_keys))
        message = runner_message(token, fn_key, call.is_async, call.step, payload, carrier)
        handle = runner.handle
        if fn_key in runner.fns:
            ref = handle.call.remote(message)
        else:
            ref = handle.call.remote(message, call.fn)
            runner.fns.add(fn_key)
        runner.uses += 1

        def stop() -> None:
            handle.interrupt.options(concurrency_group="control").remote(token)

        def kill() -> None:
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)

        def settled(ended: bool) -> None:
            if ended:
                self._idle(warm, runner)
            else:
                self._drop(warm, runner)

        return _Sent(ref, stop, kill, settled)

    def _grow(self, warm: _Warm) -> None:
        """Start one more runner of this shape (in the background), if it may have one."""
        config = self._config
        assert config is not None
        loop = asyncio.get_running_loop()
        if not warm.open():  # a call ended after the engine closed: no runner to start and kill
            return
        if warm.count >= config.warm_actors or loop.time() - warm.shed_at < config.warm_idle_s:
            return
        from reactor.placement._ray_worker import CONTROL, StepRunner  # noqa: PLC0415

        ray = self._ray
        cls = ray.remote(concurrency_groups=CONTROL)(StepRunner)
        handle = cls.options(**warm.options, max_restarts=0, max_task_retries=0).remote()
        runner = _Runner(handle)
        warm.runners.append(runner)
        warm.count += 1
        if not warm.open():  # closed (on another thread) meanwhile, maybe after it killed runners
            self._drop(warm, runner)
            return
        warm.starting += 1

        async def started() -> None:
            try:
                await handle.ready.remote()
            except Exception:  # noqa: BLE001 - it could not start: calls go as tasks
                warm.starting -= 1
                self._drop(warm, runner)
                return
            warm.starting -= 1
            self._idle(warm, runner, fresh=True)

        self._keep(loop.create_task(started()))

    def _idle(self, warm: _Warm, runner: _Runner, *, fresh: bool = False) -> None:
        """Keep the runner for the next call (given back after ``warm_idle_s``).

        After a call, while tasks of this engine wait, it is given back at once
        (they may wait for what it holds).
        """
        if not self._connected or (self._tasks_out and not fresh):
            self._drop(warm, runner, shed=True)
            return
        warm.idle.append(runner)
        uses = runner.uses
        config = self._config
        assert config is not None

        def expire() -> None:
            if runner.uses == uses and runner in warm.idle:
                warm.idle.remove(runner)
                self._drop(warm, runner)

        asyncio.get_running_loop().call_later(config.warm_idle_s, expire)

    def _drop(self, warm: _Warm, runner: _Runner, *, shed: bool = False) -> None:
        if runner not in warm.runners:
            return
        warm.runners.remove(runner)
        warm.count -= 1
        if shed:
            with contextlib.suppress(RuntimeError):
                warm.shed_at = asyncio.get_running_loop().time()
        with contextlib.suppress(Exception):
            self._ray.kill(runner.handle, no_restart=True)

    def _shed_idle(self) -> None:
        for warm in self._warm.values():
            while warm.idle:
                self._drop(warm, warm.idle.pop(), shed=True)

    def _keep(self, task: asyncio.Future[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- pools, replies ----------------------------------------------------------------

    def _pool(self, call: PlacedCall) -> _Pool:
        key = (*_key(call), call.placement.actors, call.is_async)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(self._ray, call, _options(call))
        return pool

    async def _await(self, call: PlacedCall, sent: _Sent) -> Outcome:
        ray = self._ray
        try:
            if call.timeout is None:
                reply = await sent.ref
            else:
                async with asyncio.timeout(call.timeout):
                    reply = await sent.ref
        except TimeoutError:
            self._stop(sent)
            msg = f"step {call.step!r} on Ray took longer than its timeout ({call.timeout} s)"
            return Err(TimeoutError(msg))
        except asyncio.CancelledError:
            self._stop(sent)
            raise
        except self._lost as exc:
            sent.settled(False)
            return Err(WorkerLostError(call.step, f"{type(exc).__name__}: {exc}"))
        except ray.exceptions.TaskCancelledError as exc:
            sent.settled(True)
            return Err(PlacementError(f"step {call.step!r}: its Ray task was cancelled: {exc}"))
        except ray.exceptions.RayError as exc:
            sent.settled(True)
            cause = getattr(exc, "cause", None) or exc
            msg = f"step {call.step!r} could not run on Ray: {type(cause).__name__}: {cause}"
            return Err(PlacementError(msg))
        sent.settled(True)
        return _outcome(call, reply)

    def _stop(self, sent: _Sent) -> None:
        """Interrupt the call; past the grace period, kill what runs it (in the background)."""
        with contextlib.suppress(Exception):
            sent.stop()
        config = self._config
        grace = config.cancel_grace_s if config is not None else 5.0

        async def watch() -> None:
            ended = True
            try:
                await asyncio.wait_for(asyncio.wrap_future(sent.ref.future()), grace)
            except TimeoutError:
                if sent.kill is not None:
                    sent.kill()
                    ended = False
            except self._lost:
                ended = False
            except Exception:  # noqa: BLE001 - it ended (cancelled, failed): the reply is not wanted
                ended = True
            sent.settled(ended)

        self._keep(asyncio.get_running_loop().create_task(watch()))

    def close(self) -> None:
        """Kill the step actors; shut Ray down if this placement started it.

        On a cluster that outlives the engine it waits (5 s at most) until the warm
        actors are gone, so that what they held is free for whoever comes next.
        """
        ray = self._ray
        for pool in self._pools.values():
            for actor in pool.actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
        killed = []
        for warm in self._warm.values():
            warm.closed = True  # before the runners are read: see `_grow`
            for runner in list(warm.runners):  # `_grow` may add one on the loop's thread
                with contextlib.suppress(Exception):
                    ray.kill(runner.handle, no_restart=True)
                    killed.append(runner.handle.ready.remote())
        if killed and not self._started:  # the cluster lives on: free what they held
            with contextlib.suppress(Exception):
                ray.wait(killed, num_returns=len(killed), timeout=5.0)
        self._pools.clear()
        self._warm.clear()
        self._tasks.clear()
        self._feasible.clear()
        if self._started:
            ray.shutdown()
            self._started = False
        self._connected = False


class RemoteTraceback(Exception):  # noqa: N818 - a traceback, shown as the error's cause
    """The traceback of an exception raised on a Ray worker."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _outcome(call: PlacedCall, reply: tuple[str, Any]) -> Outcome:
    tag, body = reply
    if tag == "value":
        try:
            return Ok(decode_value(body, call.result_type))
        except Exception as exc:  # noqa: BLE001 - a result that does not decode to its type
            return Err(UnencodableError(call.step, "result", str(exc)))
    if tag == "outcome":
        return Ok(body)
    if tag == "unencodable":
        return Err(UnencodableError(call.step, "result", str(body)))
    error, text = body
    try:
        raise error from RemoteTraceback(text)
    except BaseException as raised:  # noqa: BLE001 - the step's failure, as a value
        return Err(raised)
